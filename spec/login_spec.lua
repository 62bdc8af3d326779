-- zcrm login, named orgs and zcrm logout, against the emulator's accounts
-- server: a grant code exchanged and stored (directory 0700, file 0600, other
-- orgs kept, a refused code changing nothing), then used with --org, ZCRM_ORG,
-- zcrm.new { org = }, and ORGS.lua; revoked by logout. No secret in any output.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local cli = require "spec.support.cli"
local requests = require("spec.support.client").requests

local ID, SECRET = "emulator-client-id", "emulator-client-secret"
local TOKEN_ROUTE = "POST /oauth/v2/token"

local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. cli.quote(path)))
  local m = p:read("l")
  p:close()
  return m
end

-- Runs bin/zcrm with only XDG_CONFIG_HOME (and `extra`) in its environment.
local function run(home, args, extra)
  local env = { XDG_CONFIG_HOME = home }
  for k, v in pairs(extra or {}) do env[k] = v end
  return cli.run(args, env)
end

local function login_args(emu, org, code)
  return { "login", "--org", org, "--accounts-url", emu.url, "--client-id", ID, "--client-secret", SECRET,
           "--code", code or emu:grant_code().code }
end

-- Every secret the store holds (and the code) must appear in no output.
local function assert_no_secret(home, ...)
  local secrets = { SECRET }
  local text = files.read(home .. "/zcrm/orgs.json")
  for _, org in pairs(text and cjson.decode(text).orgs or {}) do secrets[#secrets + 1] = org.refresh_token end
  for _, out in ipairs { ... } do
    for _, s in ipairs(secrets) do assert.is_nil(out:find(s, 1, true), "a secret was shown") end
  end
end

local function stored(home)
  local text = files.read(home .. "/zcrm/orgs.json")
  assert.is_string(text)
  return cjson.decode(text).orgs
end

describe("zcrm help", function()
  it("describes login, logout and report", function()
    for _, command in ipairs { "login", "logout", "report" } do
      local rc, out = cli.run { "help", command }
      assert.equal(0, rc, command)
      assert.matches("^usage: zcrm " .. command, out)
      local _, main = cli.run { "help" }
      assert.matches("\n  " .. command .. " ", main)
    end
    local _, out = cli.run { "help", "login" }
    assert.matches("Self Client", out)
    assert.is_nil(out:find("--access-token", 1, true))
  end)
end)

describe("zcrm login", function()
  local emu, home
  before_each(function()
    emu = emulator.start()
    home = files.tmpdir() .. "/config"
  end)
  after_each(function()
    emu:stop()
    files.remove_tree(home:match("^(.*)/config$"))
  end)

  it("exchanges a code; zcrm modules --org then works with no ZOHO_* variable", function()
    local code = emu:grant_code().code
    local rc, out, err = run(home, login_args(emu, "emea", code))
    assert.equal(0, rc, err)
    assert.equal(string.format("Logged in: org emea, API domain %s (stored in %s/zcrm/orgs.json)\n", emu.url, home), out)
    assert.is_nil(out:find(code, 1, true))
    assert_no_secret(home, out, err)
    local org = stored(home).emea
    assert.same({ ID, SECRET, emu.url, emu.url }, { org.client_id, org.client_secret, org.accounts_url, org.api_domain })
    assert.matches("^1000%.", org.refresh_token)
    rc, out, err = run(home, { "modules", "--org", "emea", "--json" })
    assert.equal(0, rc, err)
    assert.matches('"api_name":"Digital_Marketing"', out)
    assert_no_secret(home, out, err)
  end)

  it("keeps secrets private: directory 0700, file 0600, even under a wider umask", function()
    local rc = os.execute("umask 000; " .. cli.command(login_args(emu, "emea"), { XDG_CONFIG_HOME = home })
      .. " >/dev/null 2>&1")
    assert.is_true(rc)
    assert.equal("700", mode_of(home .. "/zcrm"))
    assert.equal("600", mode_of(home .. "/zcrm/orgs.json"))
  end)

  it("keeps the first org when a second is stored; --list shows both without secrets", function()
    local other = emulator.start()
    assert.equal(0, (run(home, login_args(emu, "emea"))))
    assert.equal(0, (run(home, login_args(other, "us"))))
    local orgs = stored(home)
    assert.equal(emu.url, orgs.emea.api_domain)
    assert.equal(other.url, orgs.us.api_domain)
    local rc, out, err = run(home, { "modules", "--org", "emea" })
    assert.equal(0, rc, err)
    assert.matches("Digital_Marketing", out)
    rc, out, err = run(home, { "login", "--list" })
    assert.equal(0, rc, err)
    assert.matches("\n  emea%s+" .. emu.url:gsub("%p", "%%%0"), out)
    assert.matches("\n  us%s+" .. other.url:gsub("%p", "%%%0"), out)
    assert_no_secret(home, out, err)
    rc, out = run(home, { "login", "--list", "--json" })
    assert.equal(0, rc)
    assert.equal(2, select(2, out:gsub("\n", "")))
    assert_no_secret(home, out)
    other:stop()
  end)

  it("refuses a used code in one line, exit 1, the stored orgs unchanged", function()
    local code = emu:grant_code().code
    assert.equal(0, (run(home, login_args(emu, "emea", code))))
    local before = files.read(home .. "/zcrm/orgs.json")
    local rc, out, err = run(home, login_args(emu, "emea", code))
    assert.equal(1, rc)
    assert.equal("", out)
    assert.equal(1, select(2, err:gsub("\n", "")))
    assert.matches("invalid_code", err)
    assert.is_nil(err:find(code, 1, true))
    assert_no_secret(home, err)
    assert.equal(before, files.read(home .. "/zcrm/orgs.json"))
    rc, out, err = run(home, login_args(emu, "other", code))
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("invalid_code", err)
    assert.equal(before, files.read(home .. "/zcrm/orgs.json"))
  end)

  it("without a terminal, names the missing flag (exit 2) and sends nothing", function()
    local rc, _, err = run(home, { "login", "--accounts-url", emu.url, "--client-id", ID, "--client-secret", SECRET })
    assert.equal(2, rc)
    assert.matches("%-%-code is needed", err)
    rc, _, err = run(home, { "login", "--accounts-url", emu.url })
    assert.equal(2, rc)
    assert.matches("%-%-client%-id is needed", err)
    rc, _, err = run(home, { "login", "--org", "../x", "--accounts-url", emu.url, "--client-id", ID })
    assert.equal(2, rc)
    assert.matches("org", err)
    assert.equal(0, requests(emu, TOKEN_ROUTE))
    assert.is_nil(files.read(home .. "/zcrm/orgs.json"))
  end)

  it("asks on a terminal without echoing what is typed", function()
    local code = emu:grant_code().code
    local rc, screen = cli.run_dialog({ "login", "--org", "tty", "--accounts-url", emu.url },
      { XDG_CONFIG_HOME = home }, { { "Client ID: ", ID }, { "Client secret: ", SECRET }, { "Grant code: ", code } })
    assert.equal(0, rc, screen)
    assert.matches("Client ID: ", screen)
    assert.matches("Client secret: ", screen)
    assert.matches("Grant code: ", screen)
    assert.matches("Logged in: org tty", screen)
    assert.is_nil(screen:find(SECRET, 1, true))
    assert.is_nil(screen:find(code, 1, true))
    assert.is_nil(screen:find(ID, 1, true))
    assert.equal(SECRET, stored(home).tty.client_secret)
  end)

  it("ends at Ctrl-C on the prompt with the terminal echoing again, nothing stored", function()
    local _, screen = cli.run_dialog({ "login", "--org", "tty", "--accounts-url", emu.url },
      { XDG_CONFIG_HOME = home }, { { "Client ID: ", "\3" } }, "echo exit=$?; stty -a")
    assert.matches("exit=130", screen)
    assert.matches("[^-]echo ", screen:match("exit=130(.*)$"))
    assert.is_nil(files.read(home .. "/zcrm/orgs.json"))
  end)

  it("does not read or write through a symbolic link at the file", function()
    os.execute("mkdir -p " .. cli.quote(home .. "/zcrm") .. " && chmod 700 " .. cli.quote(home .. "/zcrm"))
    files.write(home .. "/target.json", '{"orgs":{}}')
    os.execute("chmod 600 " .. cli.quote(home .. "/target.json"))
    os.execute("ln -s ../target.json " .. cli.quote(home .. "/zcrm/orgs.json"))
    local rc, _, err = run(home, login_args(emu, "emea"))
    assert.equal(1, rc)
    assert.matches("symbolic link", err)
    assert.equal('{"orgs":{}}', files.read(home .. "/target.json"))
  end)
end)

describe("named orgs", function()
  local a, b, home
  before_each(function()
    a, b = emulator.start(), emulator.start()
    home = files.tmpdir() .. "/config"
    assert.equal(0, (run(home, login_args(a, "a"))))
    assert.equal(0, (run(home, login_args(b, "b"))))
  end)
  after_each(function()
    a:stop()
    b:stop()
    files.remove_tree(home:match("^(.*)/config$"))
  end)

  local function profiles_read(emu) return requests(emu, "GET /crm/v8/settings/profiles") end

  it("ZCRM_ORG names the org; --org wins over it", function()
    local rc, _, err = run(home, { "profiles" }, { ZCRM_ORG = "b" })
    assert.equal(0, rc, err)
    assert.same({ 0, 1 }, { profiles_read(a), profiles_read(b) })
    rc = run(home, { "profiles", "--org", "a" }, { ZCRM_ORG = "b" })
    assert.equal(0, rc)
    assert.same({ 1, 1 }, { profiles_read(a), profiles_read(b) })
  end)

  it("the org named default is used when none is named", function()
    local rc, _, err = run(home, { "profiles" })
    assert.equal(2, rc)
    assert.matches("no credentials", err)
    assert.equal(0, (run(home, login_args(b, "default"))))
    rc, _, err = run(home, { "profiles" })
    assert.equal(0, rc, err)
    assert.equal(1, profiles_read(b))
  end)

  it("flags win over ZOHO_* variables, which win over the named org", function()
    local env = { ZOHO_API_DOMAIN = b.url, ZOHO_ACCESS_TOKEN = "emulator-token" }
    local rc, _, err = run(home, { "profiles", "--org", "a" }, env)
    assert.equal(0, rc, err)
    assert.same({ 0, 1 }, { profiles_read(a), profiles_read(b) })
    assert.equal(0, requests(b, TOKEN_ROUTE) - 1) -- only b's login exchange: the env token was used
    rc, _, err = run(home, { "profiles", "--org", "a", "--api-domain", a.url }, env)
    assert.equal(0, rc, err)
    assert.same({ 1, 1 }, { profiles_read(a), profiles_read(b) })
  end)

  it("an unknown org is an error naming it, before any request", function()
    local rc, out, err = run(home, { "profiles", "--org", "nope" })
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("no stored org named nope", err)
    assert.same({ 0, 0 }, { profiles_read(a), profiles_read(b) })
  end)

  it("zcrm.new { org = NAME } reads the stored org in the library", function()
    local script = [[
      package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
      package.cpath = "./csrc/?.so;" .. package.cpath
      local zcrm = require "zcrm"
      local c = assert(zcrm.new { org = "b" })
      local p = assert(c:get_profiles())
      local _, err = zcrm.new { org = "nope" }
      io.write(c.api_domain, " ", #p, " ", err.code)
    ]]
    local p = io.popen((cli.command({}, { XDG_CONFIG_HOME = home }):gsub("bin/zcrm$", "lua5.4 -e " .. cli.quote(script))))
    local out = p:read("a")
    p:close()
    assert.equal(b.url .. " 6 UNKNOWN_ORG", out)
  end)

  it("ORGS.lua entries and --orgs name stored orgs", function()
    local orgs_file = home .. "/ORGS.lua"
    files.write(orgs_file, 'return { { name = "first", org = "a" }, { name = "second", org = "b" } }\n')
    local rc, out, err = run(home, { "report", "--orgs", orgs_file, "--json" })
    assert.equal(0, rc, err)
    local doc = cjson.decode(out)
    assert.same({ "first", "second" }, { doc.orgs[1].org, doc.orgs[2].org })
    assert.same({ a.url, b.url }, { doc.orgs[1].api_domain, doc.orgs[2].api_domain })
    assert_no_secret(home, out, err)
    rc, out, err = run(home, { "report", "--orgs", "a,b" })
    assert.equal(0, rc, err)
    assert.matches("Differences: 0", out)
    assert_no_secret(home, out, err)
  end)
end)

describe("zcrm logout", function()
  local emu, home
  before_each(function()
    emu = emulator.start()
    home = files.tmpdir() .. "/config"
    assert.equal(0, (run(home, login_args(emu, "emea"))))
    assert.equal(0, (run(home, login_args(emu, "us"))))
  end)
  after_each(function()
    emu:stop()
    files.remove_tree(home:match("^(.*)/config$"))
  end)

  it("revokes the refresh token at the accounts server and forgets only that org", function()
    local token = stored(home).emea.refresh_token
    local rc, out, err = run(home, { "logout", "--org", "emea" })
    assert.equal(0, rc, err)
    assert.equal("Logged out: org emea forgotten, its refresh token revoked\n", out)
    assert.is_nil(out:find(token, 1, true))
    assert.is_nil(err:find(token, 1, true))
    local orgs = stored(home)
    assert.is_nil(orgs.emea)
    assert.is_table(orgs.us)
    local status, body = emu:request("POST", "/oauth/v2/token", { body = string.format(
      "grant_type=refresh_token&client_id=%s&client_secret=%s&refresh_token=%s", ID, SECRET, token) })
    assert.equal(200, status)
    assert.equal("invalid_code", cjson.decode(body).error)
    rc = run(home, { "modules", "--org", "us" })
    assert.equal(0, rc)
  end)

  it("keeps the org when the accounts server cannot be reached; --force forgets it", function()
    emu:stop()
    local rc, out, err = run(home, { "logout" }, { ZCRM_ORG = "emea" })
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("not revoked", err)
    assert.matches("%-%-force", err)
    assert.is_table(stored(home).emea)
    rc, out, err = run(home, { "logout", "--org", "emea", "--force" })
    assert.equal(0, rc)
    assert.matches("forgotten without revoking", err)
    assert.matches("Logged out: org emea forgotten\n", out)
    assert.is_nil(stored(home).emea)
    assert.is_table(stored(home).us)
    assert_no_secret(home, out, err)
    emu = emulator.start()
  end)

  it("an org that is not stored is an error, exit 2", function()
    local rc, _, err = run(home, { "logout", "--org", "nope" })
    assert.equal(2, rc)
    assert.matches("no stored org named nope", err)
  end)
end)
