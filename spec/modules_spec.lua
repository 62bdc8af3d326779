-- The custom-module surface (issue 15), end to end against the emulator: module
-- names as Zoho has them, create_module, update_modules (the batch PUT and its
-- fallback), and reads that follow every page.
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"

local ADMIN, STANDARD, CONTRACTOR = "2423488000000015972", "2423488000000015975", "2423488000000015990"
local SIGN, HISTORY = "zohosign__ZohoSign_Documents", "Appointments_Rescheduled_History__s"

local function new_client(emu, extra)
  local opts = { api_domain = emu.url, access_token = "emulator-token", retry_base = 0.01, env = false }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(zcrm.new(opts))
end

local function requests(emu, route)
  local r = emu:stats().requests
  if route then return r.by_route[route] or 0 end
  return r.total
end

-- PUTs to settings/modules itself (the batch endpoint): every PUT but the single-module ones.
local function batch_puts(emu)
  local r = emu:stats().requests
  return (r.by_method.PUT or 0) - (r.by_route["PUT /crm/v8/settings/modules/{module}"] or 0)
end

local function find(state, api_name)
  for _, m in ipairs(state.modules) do
    if m.api_name == api_name then return m end
  end
end

local function has_profile(m, id)
  for _, p in ipairs(m.profiles) do
    if p.id == id then return true end
  end
  return false
end

-- An emulator whose org holds modules with real Zoho name forms: the extension
-- module zohosign__ZohoSign_Documents and the system-style History__s one.
local function start_real_names(args)
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("l")
  p:close()
  local state = dir .. "/org.json"
  files.write(state, files.read("spec/fixtures/org_real_names.json"))
  local a = { "--state", state }
  for _, v in ipairs(args or {}) do a[#a + 1] = v end
  local emu = emulator.start(a)
  emu.state_dir = dir
  return emu
end

local function stop(emu)
  emu:stop()
  if emu.state_dir then os.execute("rm -rf '" .. emu.state_dir .. "'") end
end

describe("module API names as Zoho has them", function()
  local emu, client
  setup(function() emu = start_real_names() end)
  teardown(function() stop(emu) end)
  before_each(function() client = new_client(emu) end)

  it("update_module and get_module reach an extension module namespace__Name", function()
    local res, err = client:update_module(SIGN, { plural_label = "Signed Documents", singular_label = "Signed Document",
                                                  profiles = { { name = "Contractor", _delete = true } } })
    assert.is_nil(err)
    assert.equal("2423488000000871001", res.id)
    local m = assert(client:get_module(SIGN))
    assert.equal(SIGN, m.api_name)
    assert.equal("Signed Documents", m.plural_label)
    assert.is_false(has_profile(m, CONTRACTOR))
  end)

  it("update_module and get_module reach a system module ending in __s", function()
    local res, err = client:update_module(HISTORY, { singular_label = "Moved Appointment" })
    assert.is_nil(err)
    assert.equal("2423488000000871002", res.id)
    assert.equal("Moved Appointment", assert(client:get_module(HISTORY)).singular_label)
  end)

  it("a plan names them, checked against the state, diffed and applied", function()
    local report, err = client:apply({
      { module = SIGN, plural_label = "Sign Envelopes", profiles = { { name = "Standard" } } },
      { module = HISTORY, plural_label = "Reschedules" },
    }, { diff = true })
    assert.is_nil(err)
    assert.is_true(report.ok)
    assert.equal(2, #report.applied)
    assert.same({ SIGN, HISTORY }, { report.changes[1].module, report.changes[2].module })
    local state = emu:state()
    assert.equal("Sign Envelopes", find(state, SIGN).plural_label)
    assert.is_true(has_profile(find(state, SIGN), STANDARD))
    assert.equal("Reschedules", find(state, HISTORY).plural_label)
  end)
end)

describe("create_module", function()
  local emu, client
  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    client = new_client(emu)
  end)

  it("POSTs the documented body, returns the new id, and costs 500 credits", function()
    local res, err = client:create_module { plural_label = "Field Visits", singular_label = "Field Visit",
                                            profiles = { { name = "Administrator" }, { id = STANDARD } } }
    assert.is_nil(err)
    assert.equal("SUCCESS", res.code)
    assert.matches("^%d+$", res.id)
    assert.equal(500 + 1, (client:credits()))                  -- the create, and one profile read for the name
    local m = assert(client:get_module(res.id))
    assert.equal("Field Visits", m.plural_label)
    assert.equal("Field Visit", m.singular_label)
    assert.is_true(has_profile(m, ADMIN))
    assert.is_true(has_profile(m, STANDARD))
    assert.equal(1, requests(emu, "POST /crm/v8/settings/modules"))
  end)

  it("checks the module locally like an update, sending nothing when it is invalid", function()
    local before = requests(emu)
    local cases = {
      { { plural_label = "Visits", profiles = { { id = ADMIN } } }, "MANDATORY_NOT_FOUND", "singular_label" },
      { { plural_label = "Visits", singular_label = "Visit" }, "MANDATORY_NOT_FOUND", "profiles" },
      { { plural_label = "Visits!", singular_label = "Visit", profiles = { { id = ADMIN } } }, "INVALID_DATA", "plural_label" },
      { { plural_label = string.rep("V", 26), singular_label = "Visit", profiles = { { id = ADMIN } } },
        "INVALID_DATA", "plural_label" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = {} }, "MINIMUM_DATA_NOT_FOUND", "profiles" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN, _delete = true } } },
        "INVALID_DATA", "profiles[1]._delete" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } }, api_name = "Visits" },
        "INVALID_DATA", "api_name" },
      { { plural_lable = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } } }, "INVALID_DATA", "plural_lable" },
    }
    for _, case in ipairs(cases) do
      local res, err = client:create_module(case[1])
      assert.is_nil(res)
      assert.equal("validation", err.kind)
      assert.equal(case[2], err.code)
      assert.equal(case[3], err.field)
      assert.is_nil(err.status)
      assert.is_false(err.retryable)
    end
    local _, err = client:create_module("Visits")
    assert.equal("INVALID_DATA", err.code)
    assert.equal(before, requests(emu))
    assert.equal(0, (client:credits()))
  end)

  it("reports Zoho's DUPLICATE_DATA for a label in use, and an unknown profile name before sending", function()
    local _, err = client:create_module { plural_label = "Projects", singular_label = "Undertaking",
                                          profiles = { { id = ADMIN } } }
    assert.equal("api", err.kind)
    assert.equal("DUPLICATE_DATA", err.code)
    local before = requests(emu, "POST /crm/v8/settings/modules")
    _, err = client:create_module { plural_label = "Visits", singular_label = "Visit", profiles = { { name = "Interns" } } }
    assert.equal("INVALID_DATA", err.code)
    assert.equal("profiles[1].name", err.field)
    assert.equal(before, requests(emu, "POST /crm/v8/settings/modules"))
  end)

  it("is an operation like the others: submit returns a request", function()
    local req = client:submit("create_module", { plural_label = "Audits", singular_label = "Audit",
                                                 profiles = { { id = ADMIN } } })
    local res = assert(client:wait(req))
    assert.matches("^%d+$", res.id)
  end)
end)

describe("update_modules against a server without the batch endpoint", function()
  local emu, client, logged
  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    logged = {}
    client = new_client(emu, { logger = function(level, msg) logged[#logged + 1] = { level, msg } end })
  end)

  it("falls back to one PUT per module, says so once, and loses nothing", function()
    local list = {}
    for _, name in ipairs { "Projects", "Shipments", "Suppliers", "Assets" } do
      list[#list + 1] = { module = name, plural_label = name .. " Renamed" }
    end
    list[#list + 1] = { module = "Tickets", plural_label = "Bad!" }       -- invalid: never sent
    local results = client:update_modules(list)
    assert.equal(5, #results)
    for i = 1, 4 do assert.equal("SUCCESS", results[i].code) end
    assert.equal("INVALID_DATA", results[5].code)
    assert.is_table(results.fallback)
    assert.equal("INVALID_REQUEST_METHOD", results.fallback.code)
    assert.equal(1, batch_puts(emu))                                       -- refused once
    assert.equal(4, requests(emu, "PUT /crm/v8/settings/modules/{module}"))
    -- the rest of the run goes one by one at once, and the log says so once
    results = client:update_modules { { module = "Contracts", plural_label = "Agreements" } }
    assert.equal("SUCCESS", results[1].code)
    assert.equal(1, batch_puts(emu))
    local says = 0
    for _, l in ipairs(logged) do
      if l[2]:find("refused the batch endpoint", 1, true) then says = says + 1 end
    end
    assert.equal(1, says)
    local state = emu:state()
    for _, name in ipairs { "Projects", "Shipments", "Suppliers", "Assets" } do
      assert.equal(name .. " Renamed", find(state, name).plural_label)
    end
    assert.equal("Agreements", find(state, "Contracts").plural_label)
  end)
end)
