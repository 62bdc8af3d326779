-- zcrm report and client:report: the access matrix of custom modules by
-- profiles, for one org and for two orgs that differ, as a terminal table,
-- JSON and one self-contained HTML page; server strings escaped; no secret shown.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local cli = require "spec.support.cli"
local new_client = require("spec.support.client").maker { retry_base = 0.01 }

local TOKEN = "emulator-token"

local function env_of(emu, extra)
  local env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN, HOME = "/nonexistent" }
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

-- The emulator's custom modules: api_name -> { plural, singular, set of profile names }.
local function custom_of(emu)
  local state = emu:state()
  local out = {}
  for _, m in ipairs(state.modules) do
    if m.generated_type == "custom" then
      local with = {}
      for _, p in ipairs(m.profiles) do with[p.name] = true end
      out[m.api_name] = { m.plural_label, m.singular_label, with }
    end
  end
  return out, state.profiles
end

local function no_secret(...)
  for _, text in ipairs { ... } do assert.is_nil(text:find(TOKEN, 1, true), "a secret was shown") end
end

-- The org's matrix as the library reads it matches the emulator's own state.
local function assert_matches_state(r, emu)
  local custom, profiles = custom_of(emu)
  local n = 0
  for _ in pairs(custom) do n = n + 1 end
  assert.equal(n, #r.modules)
  assert.equal(#profiles, #r.profiles)
  for i, p in ipairs(profiles) do assert.equal(p.name, r.profiles[i].name) end
  for _, m in ipairs(r.modules) do
    local want = custom[m.api_name]
    assert.equal(want[1], m.plural_label)
    assert.equal(want[2], m.singular_label)
    for _, p in ipairs(profiles) do assert.equal(want[3][p.name] == true, m.access[p.name], m.api_name .. "/" .. p.name) end
  end
end

describe("client:report", function()
  local emu
  before_each(function() emu = emulator.start() end)
  after_each(function() emu:stop() end)

  it("reads every custom module by every profile, sorted by API name", function()
    local client = new_client(emu)
    local r = assert(client:report { org = "emea" })
    client:close()
    assert.equal("emea", r.org)
    assert.equal(emu.url, r.api_domain)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", r.read_at)
    assert_matches_state(r, emu)
    for i = 2, #r.modules do assert.is_true(r.modules[i - 1].api_name < r.modules[i].api_name) end
    assert.is_true(r.modules[1].access.Administrator)
  end)

  it("reads every page of a long profile list", function()
    emu:stop()
    emu = emulator.start { "--extra-profiles", "230" }
    local client = new_client(emu)
    local r = assert(client:report())
    client:close()
    assert.equal(236, #r.profiles)
    assert.equal(false, r.modules[1].access["Extra Profile 230"])
  end)

  it("fails with the error, not a partial matrix", function()
    local client = new_client(emu, { access_token = "wrong-token", max_retries = 0 })
    local r, err = client:report()
    client:close()
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)
end)

describe("zcrm report, one org", function()
  local emu
  before_each(function() emu = emulator.start() end)
  after_each(function() emu:stop() end)

  it("prints the matrix with profile names as columns when they fit", function()
    local code, out, err = cli.run({ "report" }, env_of(emu, { COLUMNS = "200" }))
    assert.equal(0, code, err)
    no_secret(out, err)
    local header = out:match("\n(MODULE[^\n]*)")
    assert.matches("LABELS%s+Administrator%s+Standard%s+Sales%s+Support%s+Contractor%s+Marketing$", header)
    -- Contracts: Administrator, Standard and Contractor have access.
    assert.matches("\nContracts%s+Contracts / Contract%s+X%s+X%s+%.%s+%.%s+X%s+%.\n", out)
    assert.matches("\nAssets%s+Assets / Asset%s+X%s+X%s+%.%s+%.%s+%.%s+%.\n", out)
    assert.matches("14 custom modules, 6 profiles", out)
  end)

  it("fits a narrow terminal: numbered profiles with a key, tables split", function()
    for _, cols in ipairs { 60, 30 } do
      local code, out = cli.run({ "report" }, env_of(emu, { COLUMNS = tostring(cols) }))
      assert.equal(0, code)
      for line in out:gmatch("[^\n]+") do
        if not line:match("^Profiles: ") and not line:match(", read ") then
          assert.is_true(utf8.len(line) <= cols, string.format("%d > %d: %s", utf8.len(line), cols, line))
        end
      end
      assert.matches("Profiles: 1 Administrator, 2 Standard, 3 Sales, 4 Support, 5 Contractor, 6 Marketing", out)
    end
  end)

  it("gives the same data with --json", function()
    local code, out, err = cli.run({ "report", "--json" }, env_of(emu))
    assert.equal(0, code, err)
    no_secret(out, err)
    local doc = cjson.decode(out)
    assert.equal(1, #doc.orgs)
    assert.same({}, doc.differences)
    assert_matches_state(doc.orgs[1], emu)
  end)

  it("writes one self-contained HTML page with --out", function()
    local dir = files.tmpdir()
    local path = dir .. "/access.html"
    local code, out, err = cli.run({ "report", "--out", path }, env_of(emu))
    assert.equal(0, code, err)
    assert.matches("Wrote .*access.html: 1 org", out)
    local html = assert(files.read(path))
    files.remove_tree(dir)
    no_secret(out, err, html)
    assert.matches("^<!DOCTYPE html>", html)
    assert.matches("<style>", html)
    assert.matches(emu.url, html, 1, true)
    assert.matches("read %d%d%d%d%-%d%d%-%d%dT", html)
    for _, banned in ipairs { "<script", "<link", "<img", "<iframe", "<object", "@import", "url(", "src=", "href=" } do
      assert.is_nil(html:find(banned, 1, true), banned)
    end
    for name in pairs(custom_of(emu)) do assert.truthy(html:find(">" .. name .. "<br>", 1, true), name) end
    assert.truthy(html:find('<th class="profile" scope="col">Marketing</th>', 1, true))
  end)

  it("refuses --json with --out, and an --out that is not HTML, before any request", function()
    local code, _, err = cli.run({ "report", "--json", "--out", "x.html" }, env_of(emu))
    assert.equal(2, code)
    assert.matches("exclude", err)
    code, _, err = cli.run({ "report", "--out", "x.txt" }, env_of(emu))
    assert.equal(2, code)
    assert.matches("HTML", err)
    assert.is_nil(emu:stats().requests.by_route["GET /crm/v8/settings/profiles"])
  end)
end)

describe("zcrm report, server strings", function()
  it("are escaped in HTML and shown inert on the terminal", function()
    local dir = files.tmpdir()
    local seed = emulator.start()
    local state = seed:state()
    seed:stop()
    local evil = '<script>alert(1)</script> & "Q\'s"\27]0;x\7'
    for _, p in ipairs(state.profiles) do
      if p.name == "Sales" then p.name = evil end
    end
    for _, m in ipairs(state.modules) do
      for _, p in ipairs(m.profiles or {}) do
        if p.name == "Sales" then p.name = evil end
      end
      if m.api_name == "Assets" then m.plural_label = "<b>Gear</b>" end
    end
    files.write(dir .. "/state.json", cjson.encode(state))
    local emu = emulator.start { "--state", dir .. "/state.json" }
    local code, _, err = cli.run({ "report", "--out", dir .. "/r.html" }, env_of(emu))
    assert.equal(0, code, err)
    local out
    local html = files.read(dir .. "/r.html")
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("<b>", 1, true))
    assert.is_nil(html:find("\27", 1, true))
    assert.truthy(html:find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Q&#39;s&quot;", 1, true))
    assert.truthy(html:find("&lt;b&gt;Gear&lt;/b&gt;", 1, true))
    code, out = cli.run({ "report" }, env_of(emu, { COLUMNS = "300" }))
    assert.equal(0, code)
    assert.is_nil(out:find("\27]", 1, true))
    emu:stop()
    files.remove_tree(dir)
  end)
end)

describe("zcrm report --orgs", function()
  local a, b, dir, orgs_file
  before_each(function()
    a, b = emulator.start(), emulator.start()
    -- b differs: Assets relabelled, Sales granted Projects.
    local client = new_client(b)
    assert(client:update_module("Assets", { plural_label = "Gear", singular_label = "Gear Item" }))
    assert(client:update_module("Projects", { profiles = { { name = "Sales" } } }))
    client:close()
    dir = files.tmpdir()
    orgs_file = dir .. "/ORGS.lua"
    files.write(orgs_file, string.format([[return {
  { name = "emea", options = { api_domain = %q, access_token = %q } },
  { name = "us", options = { api_domain = %q, access_token = %q } },
}
]], a.url, TOKEN, b.url, TOKEN))
    assert.truthy(os.execute("chmod 600 " .. orgs_file)) -- it holds a token: the owner's alone
  end)
  after_each(function()
    a:stop()
    b:stop()
    files.remove_tree(dir)
  end)

  it("shows both matrices and lists every difference", function()
    local code, out, err = cli.run({ "report", "--orgs", orgs_file }, env_of(a, { COLUMNS = "200" }))
    assert.equal(0, code, err)
    no_secret(out, err)
    assert.matches("emea %(" .. a.url:gsub("%p", "%%%0") .. "%)", out)
    assert.matches("us %(" .. b.url:gsub("%p", "%%%0") .. "%)", out)
    assert.matches("Differences: 3", out)
    assert.matches("Assets, plural label: emea: Assets; us: Gear", out)
    assert.matches("Assets, singular label: emea: Asset; us: Gear Item", out)
    assert.matches("Projects, profile Sales: emea: no access; us: access", out)
    assert.matches("\nProjects%s+Projects / Project%s+X%s+X%s+X%*", out)
    assert.matches("\nAssets%s+Gear / Gear Item %*", out)
  end)

  it("gives the differences with --json", function()
    local code, out, err = cli.run({ "report", "--orgs", orgs_file, "--json" }, env_of(a))
    assert.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.same({ "emea", "us" }, { doc.orgs[1].org, doc.orgs[2].org })
    assert.same({
      { kind = "label", module = "Assets", field = "plural_label", values = { emea = "Assets", us = "Gear" } },
      { kind = "label", module = "Assets", field = "singular_label", values = { emea = "Asset", us = "Gear Item" } },
      { kind = "access", module = "Projects", profile = "Sales", values = { emea = false, us = true } },
    }, doc.differences)
  end)

  it("highlights and lists the differences in the HTML page", function()
    local path = dir .. "/orgs.html"
    local code, out, err = cli.run({ "report", "--orgs", orgs_file, "--out", path }, env_of(a))
    assert.equal(0, code, err)
    assert.matches("2 orgs, 3 differences", out)
    local html = files.read(path)
    no_secret(html)
    assert.equal(2, select(2, html:gsub('<section class="org">', "")))
    assert.truthy(html:find("<h2>Differences (3)</h2>", 1, true))
    assert.truthy(html:find("<li>Projects, profile Sales: emea: no access; us: access</li>", 1, true))
    -- the differing cells, in both orgs' tables
    assert.equal(2, select(2, html:gsub('class="[a-z]+ diff" title="Sales', "")))
    assert.equal(4, select(2, html:gsub('<span class="diff">', "")))
  end)

  it("reports the same orgs as the same", function()
    files.write(orgs_file, string.format([[return {
  { name = "one", options = { api_domain = %q, access_token = %q } },
  { name = "two", options = { api_domain = %q, access_token = %q } },
}
]], a.url, TOKEN, a.url, TOKEN))
    assert.truthy(os.execute("chmod 600 " .. orgs_file))
    local code, out = cli.run({ "report", "--orgs", orgs_file }, env_of(a))
    assert.equal(0, code)
    assert.matches("Differences: 0", out)
  end)
end)
