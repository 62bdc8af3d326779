-- zcrm report's HTML page as a real browser shows it: headless Chromium
-- renders it to a DOM, a screenshot and a PDF (printable). The page holds no
-- script and its Content-Security-Policy allows none (headless Chromium's
-- own --dump-dom and --screenshot stop working with scripts switched off, so
-- the page is read as it is: with nothing to run). Skipped with a message where Chromium is absent;
-- required under CI=true (make test installs it: make browser-deps).
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local cli = require "spec.support.cli"
local new_client = require("spec.support.client").maker { retry_base = 0.01 }

local function find_chromium()
  for _, name in ipairs { "chromium", "chromium-browser", "google-chrome" } do
    local p = io.popen("command -v " .. name .. " 2>/dev/null")
    local path = p:read("l")
    p:close()
    if path then return path end
  end
end

-- Runs headless Chromium on a local file with `args`; its own profile and
-- home in `dir`, no sandbox (specs may run as root).
local function chromium(bin, dir, page, args)
  local cmd = { "HOME=" .. cli.quote(dir), cli.quote(bin), "--headless", "--no-sandbox", "--disable-gpu",
    "--user-data-dir=" .. cli.quote(dir .. "/profile"), "--no-first-run", "--disable-extensions", "--disable-background-networking" }
  for _, a in ipairs(args) do cmd[#cmd + 1] = a end
  cmd[#cmd + 1] = cli.quote("file://" .. page)
  local out = dir .. "/stdout"
  local ok = os.execute(table.concat(cmd, " ") .. " >" .. cli.quote(out) .. " 2>/dev/null")
  local text = files.read(out) or ""
  os.remove(out)
  return ok, text
end

-- Width and height from a PNG's IHDR chunk.
local function png_size(png)
  assert.equal("\137PNG\r\n\26\n", png:sub(1, 8))
  assert.equal("IHDR", png:sub(13, 16))
  local w, h = string.unpack(">I4I4", png, 17)
  return w, h
end

describe("zcrm report's HTML page in Chromium", function()
  local bin = find_chromium()
  if not bin then
    if os.getenv("CI") == "true" then
      it("needs Chromium under CI=true", function()
        error("chromium not found: make browser-deps installs it (apt-get install chromium)")
      end)
    else
      pending("Chromium is not installed: the browser spec is skipped (make browser-deps installs it)")
    end
    return
  end

  local a, b, dir, page
  setup(function()
    a, b = emulator.start(), emulator.start()
    local client = new_client(b)
    assert(client:update_module("Projects", { profiles = { { name = "Sales" } } }))
    assert(client:update_module("Assets", { plural_label = "Gear" }))
    client:close()
    dir = files.tmpdir()
    files.write(dir .. "/ORGS.lua", string.format([[return {
  { name = "emea", options = { api_domain = %q, access_token = "emulator-token" } },
  { name = "us", options = { api_domain = %q, access_token = "emulator-token" } },
}
]], a.url, b.url))
    assert.truthy(os.execute("chmod 600 " .. dir .. "/ORGS.lua")) -- it holds a token
    page = dir .. "/access.html"
    local code, _, err = cli.run({ "report", "--orgs", dir .. "/ORGS.lua", "--out", page }, {})
    assert.equal(0, code, err)
  end)
  teardown(function()
    a:stop()
    b:stop()
    files.remove_tree(dir)
  end)

  it("lays out both orgs and the differences, with nothing to run", function()
    local ok, dom = chromium(bin, dir, page, { "--dump-dom" })
    assert.is_true(ok)
    -- the browser's own parse of the page: every table, cell and difference is there
    assert.equal(2, select(2, dom:gsub('<section class="org">', "")))
    local _, json = cli.run({ "report", "--orgs", dir .. "/ORGS.lua", "--json" }, {})
    local want = cjson.decode(json)
    for _, r in ipairs(want.orgs) do
      for _, m in ipairs(r.modules) do assert.truthy(dom:find(">" .. m.api_name .. "<br>", 1, true), m.api_name) end
    end
    assert.truthy(dom:find("<h2>Differences (2)</h2>", 1, true))
    assert.truthy(dom:find("<li>Projects, profile Sales: emea: no access; us: access</li>", 1, true))
    assert.truthy(dom:find("<li>Assets, plural label: emea: Assets; us: Gear</li>", 1, true))
    assert.is_nil(dom:find("<script", 1, true))
  end)

  it("renders to a screenshot of the window's size that is not blank", function()
    local shot = dir .. "/access.png"
    assert.is_true((chromium(bin, dir, page, { "--screenshot=" .. shot, "--window-size=1200,800",
      "--hide-scrollbars" })))
    local png = assert(files.read(shot))
    assert.same({ 1200, 800 }, { png_size(png) })
    -- a blank page of the same size, for comparison: the report's has content
    files.write(dir .. "/blank.html", "<!DOCTYPE html><html><body></body></html>")
    local blank_shot = dir .. "/blank.png"
    assert.is_true((chromium(bin, dir, dir .. "/blank.html", { "--screenshot=" .. blank_shot,
      "--window-size=1200,800", "--hide-scrollbars" })))
    assert.is_true(#png > 4 * #assert(files.read(blank_shot)))
  end)

  it("prints to PDF", function()
    local pdf = dir .. "/access.pdf"
    assert.is_true((chromium(bin, dir, page, { "--print-to-pdf=" .. pdf, "--no-pdf-header-footer" })))
    local text = assert(files.read(pdf))
    assert.equal("%PDF-", text:sub(1, 5))
    assert.truthy(text:find("/Type%s*/Page[^s]"))
  end)
end)
