-- One label rule: zcrm.validate_update gives every label of
-- spec/fixtures/labels.json its verdict. The emulator is checked against the
-- same table in emulator_spec.lua.
local zcrm = require "zcrm"
local labels = require "spec.support.labels"

describe("the label rule (spec/fixtures/labels.json)", function()
  local list = labels.load()

  it("has at least 60 labels, of every kind", function()
    assert.is_true(#list >= 60)
    local seen = {}
    for _, e in ipairs(list) do seen[e.why] = true end
    assert.same({ ok = true, char = true, empty = true, length = true, utf8 = true }, seen)
  end)

  for _, e in ipairs(list) do
    it("validate_update: " .. labels.name(e), function()
      for _, key in ipairs { "plural_label", "singular_label" } do
        local ok, err = zcrm.validate_update { [key] = e.text }
        if e.ok then
          assert.is_true(ok, err and tostring(err))
        else
          assert.is_nil(ok)
          assert.equal("INVALID_DATA", err.code)
          assert.equal("validation", err.kind)
          assert.equal(key, err.field)
          assert.equal("$.modules[0]." .. key, err.details.json_path)
          -- only a length fault names the maximum, as the server's does
          assert.equal(e.why == "length" and 25 or nil, err.details.maximum_length)
        end
      end
    end)
  end
end)

-- One verdict: where the client checks something locally, the emulator
-- answers the same for the same body. Each case goes to both; the verdicts
-- (the code, or "ok") and the JSON path must match. The rules followed are in
-- the README's validation rules table.
describe("one verdict, client and emulator", function()
  local cjson = require "cjson"
  local emulator = require "spec.support.emulator"
  local ADMIN, SALES = "2423488000000015972", "2423488000000015978"
  local emu, client
  setup(function()
    emu = emulator.start {}
    client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false })
  end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  -- The client's verdict: its offline check, then its check against the
  -- org's state (a dry run reads the state and sends nothing).
  local function client_verdict(module, update)
    local ok, err = zcrm.validate_update(update)
    if not ok then return err.code, err.details and err.details.json_path end
    local entry = { module = module }
    for k, v in pairs(update) do entry[k] = v end
    local report, perr = client:apply({ entry }, { dry_run = true, diff = true })
    if report then return "ok" end
    local e = perr.details.errors[1].error
    return e.code, e.details and e.details.json_path
  end

  local function emulator_verdict(module, update)
    local body = {}
    for k, v in pairs(update) do body[k] = v end
    if body.profiles then
      local list = {}
      for i, p in ipairs(body.profiles) do
        list[i] = { id = p.id, _delete = p._delete and cjson.null or nil }
      end
      body.profiles = list
    end
    local status, text = emu:request("PUT", "/crm/v8/settings/modules/" .. module, {
      headers = { Authorization = "Zoho-oauthtoken emulator-token" },
      body = cjson.encode { modules = { body } } })
    local doc = cjson.decode(text)
    emu:reset()
    if status == 200 then return "ok" end
    local item = doc.modules and doc.modules[1] or doc
    return item.code, item.details and item.details.json_path
  end

  local cases = {
    { "a label another module has, with a trailing space", "Tickets", { plural_label = "Projects " }, "DUPLICATE_DATA" },
    { "a label another module has, with a leading space", "Tickets", { plural_label = " Projects" }, "DUPLICATE_DATA" },
    { "a label another module has, other case and inner spaces", "Tickets", { singular_label = "PRO JECT" }, "ok" },
    { "another module's label in another case", "Tickets", { singular_label = "PROJECT" }, "DUPLICATE_DATA" },
    { "another module's plural label in capitals", "Tickets", { plural_label = "CAMPAIGN ASSETS" }, "DUPLICATE_DATA" },
    { "its own label with spaces at the edges", "Tickets", { plural_label = " Tickets " }, "ok" },
    { "the same profile id twice", "Tickets", { profiles = { { id = ADMIN }, { id = ADMIN } } }, "INVALID_DATA",
      "$.modules[0].profiles[1].id" },
    { "one profile granted and revoked", "Tickets", { profiles = { { id = SALES }, { id = SALES, _delete = true } } },
      "INVALID_DATA", "$.modules[0].profiles[1].id" },
    { "its own api_name, unchanged", "Tickets", { api_name = "Tickets", plural_label = "Help Tickets" }, "NOT_ALLOWED",
      "$.modules[0].api_name" },
    { "another api_name", "Tickets", { api_name = "Help_Tickets" }, "NOT_ALLOWED", "$.modules[0].api_name" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local ccode, cpath = client_verdict(c[2], c[3])
      local ecode, epath = emulator_verdict(c[2], c[3])
      assert.equal(c[4], ccode, "client")
      assert.equal(c[4], ecode, "emulator")
      if c[5] then
        assert.equal(c[5], cpath, "client path")
        assert.equal(c[5], epath, "emulator path")
      end
    end)
  end
end)
