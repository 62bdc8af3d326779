-- The custom-module surface, end to end against the emulator: module
-- names as Zoho has them, create_module, update_modules (the batch PUT and its
-- fallback), and reads that follow every page.
local zcrm = require "zcrm"
local files = require "spec.support.files"
local lookup = require "spec.support.state"
local with_emulator = require("spec.support.fixture").with_emulator

local ADMIN, STANDARD, CONTRACTOR = "2423488000000015972", "2423488000000015975", "2423488000000015990"
local SIGN, HISTORY = "zohosign__ZohoSign_Documents", "Appointments_Rescheduled_History__s"

local requests, batch_puts, find, has_profile = lookup.requests, lookup.batch_puts, lookup.module, lookup.has_profile
local CLIENT = { retry_base = 0.01 }

describe("module API names as Zoho has them", function()
  -- an org holding modules with real Zoho name forms: the extension module
  -- zohosign__ZohoSign_Documents and the system-style History__s one
  local fx = with_emulator { org = "spec/fixtures/org_real_names.json", client = CLIENT }

  it("update_module and get_module reach an extension module namespace__Name", function()
    local res, err = fx.client:update_module(SIGN, { plural_label = "Signed Documents", singular_label = "Signed Document",
                                                  profiles = { { name = "Contractor", _delete = true } } })
    assert.is_nil(err)
    assert.equal("2423488000000871001", res.id)
    local m = assert(fx.client:get_module(SIGN))
    assert.equal(SIGN, m.api_name)
    assert.equal("Signed Documents", m.plural_label)
    assert.is_false(has_profile(m, CONTRACTOR))
  end)

  it("update_module and get_module reach a system module ending in __s", function()
    local res, err = fx.client:update_module(HISTORY, { singular_label = "Moved Appointment" })
    assert.is_nil(err)
    assert.equal("2423488000000871002", res.id)
    assert.equal("Moved Appointment", assert(fx.client:get_module(HISTORY)).singular_label)
  end)

  it("update_modules resolves them to ids and updates both in one batch call", function()
    local results = fx.client:update_modules {
      { module = SIGN, singular_label = "Envelope" },
      { module = HISTORY, singular_label = "Reschedule" },
    }
    assert.same({ "2423488000000871001", "2423488000000871002" }, { results[1].id, results[2].id })
    assert.equal(1, requests(fx.emu, "PUT /crm/v8/settings/modules"))
    local state = fx.emu:state()
    assert.equal("Envelope", find(state, SIGN).singular_label)
    assert.equal("Reschedule", find(state, HISTORY).singular_label)
  end)

  it("a plan names them, checked against the state, diffed and applied", function()
    local report, err = fx.client:apply({
      { module = SIGN, plural_label = "Sign Envelopes", profiles = { { name = "Standard" } } },
      { module = HISTORY, plural_label = "Reschedules" },
    }, { diff = true })
    assert.is_nil(err)
    assert.is_true(report.ok)
    assert.equal(2, #report.applied)
    assert.same({ SIGN, HISTORY }, { report.changes[1].module, report.changes[2].module })
    local state = fx.emu:state()
    assert.equal("Sign Envelopes", find(state, SIGN).plural_label)
    assert.is_true(has_profile(find(state, SIGN), STANDARD))
    assert.equal("Reschedules", find(state, HISTORY).plural_label)
  end)
end)

describe("create_module", function()
  local fx = with_emulator { client = CLIENT }

  it("POSTs the documented body, returns the new id, and costs 500 credits", function()
    local res, err = fx.client:create_module { plural_label = "Field Visits", singular_label = "Field Visit",
                                            profiles = { { name = "Administrator" }, { id = STANDARD } } }
    assert.is_nil(err)
    assert.equal("SUCCESS", res.code)
    assert.matches("^%d+$", res.id)
    assert.equal(500 + 1, (fx.client:credits()))                  -- the create, and one profile read for the name
    local m = assert(fx.client:get_module(res.id))
    assert.equal("Field Visits", m.plural_label)
    assert.equal("Field Visit", m.singular_label)
    assert.is_true(has_profile(m, ADMIN))
    assert.is_true(has_profile(m, STANDARD))
    assert.equal(1, requests(fx.emu, "POST /crm/v8/settings/modules"))
  end)

  it("checks the module locally like an update, sending nothing when it is invalid", function()
    local before = requests(fx.emu)
    local cases = {
      { { plural_label = "Visits", profiles = { { id = ADMIN } } }, "MANDATORY_NOT_FOUND", "singular_label" },
      { { plural_label = "Visits", singular_label = "Visit" }, "MANDATORY_NOT_FOUND", "profiles" },
      { { plural_label = "Visits!", singular_label = "Visit", profiles = { { id = ADMIN } } }, "INVALID_DATA", "plural_label" },
      { { plural_label = string.rep("V", 26), singular_label = "Visit", profiles = { { id = ADMIN } } },
        "INVALID_DATA", "plural_label" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = {} }, "MINIMUM_DATA_NOT_FOUND", "profiles" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN, _delete = true } } },
        "INVALID_DATA", "profiles[1]._delete" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } }, api_name = "Site__Visits" },
        "INVALID_DATA", "api_name" },
      { { plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } },
          display_field = { field_label = "Plate", data_type = "autonumber" } }, "DEPENDENT_FIELD_MISSING", "auto_number" },
      { { plural_lable = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } } }, "INVALID_DATA", "plural_lable" },
    }
    for _, case in ipairs(cases) do
      local res, err = fx.client:create_module(case[1])
      assert.is_nil(res)
      assert.equal("validation", err.kind)
      assert.equal(case[2], err.code)
      assert.equal(case[3], err.field)
      assert.is_nil(err.status)
      assert.is_false(err.retryable)
    end
    local _, err = fx.client:create_module("Visits")
    assert.equal("INVALID_DATA", err.code)
    assert.equal(before, requests(fx.emu))
    assert.equal(0, (fx.client:credits()))
  end)

  it("takes an api_name and a display_field, checked by the page's rules", function()
    local res = assert(fx.client:create_module { plural_label = "Fleet Cars", singular_label = "Fleet Car",
      api_name = "Fleet_Cars", profiles = { { id = ADMIN } },
      display_field = { field_label = "Plate", data_type = "autonumber",
                        auto_number = { prefix = "V-", start_number = 1000 } } })
    local m = assert(fx.client:get_module("Fleet_Cars"))
    assert.equal(res.id, m.id)
    assert.equal("Fleet Cars", m.plural_label)
    local before = requests(fx.emu)
    local bad = {
      { "1Cars", "must start with an English letter" }, { "Fleet Cars", "only letters, digits and _" },
      { "Fleet__Cars", "__" }, { "Fleet_", "must not end in _" }, { string.rep("A", 51), "at most 50" },
    }
    for _, case in ipairs(bad) do
      local _, err = fx.client:create_module { plural_label = "Trucks", singular_label = "Truck", api_name = case[1],
                                            profiles = { { id = ADMIN } } }
      assert.equal("INVALID_DATA", err.code, case[1])
      assert.equal("api_name", err.field)
      assert.equal("$.modules[0].api_name", err.details.json_path)
      assert.matches(case[2], err.message, 1, true)
    end
    for _, df in ipairs {
      { field_label = "" }, { field_label = string.rep("x", 101) }, { data_type = "text" },
      { field_label = "Plate", data_type = "date" }, { field_label = "Plate", colour = "red" },
      { field_label = "Plate", data_type = "autonumber", auto_number = { start_number = "12a" } },
      { field_label = "Plate", data_type = "autonumber", auto_number = { start_number = "1", prefix = string.rep("p", 51) } },
    } do
      local _, err = fx.client:create_module { plural_label = "Trucks", singular_label = "Truck",
                                            profiles = { { id = ADMIN } }, display_field = df }
      assert.equal("validation", err.kind)
      assert.matches("^%$%.modules%[0%]%.display_field", err.details.json_path)
    end
    assert.equal(before, requests(fx.emu))
  end)

  it("reports Zoho's DUPLICATE_DATA for a label in use, and an unknown profile name before sending", function()
    local _, err = fx.client:create_module { plural_label = "Projects", singular_label = "Undertaking",
                                          profiles = { { id = ADMIN } } }
    assert.equal("api", err.kind)
    assert.equal("DUPLICATE_DATA", err.code)
    local before = requests(fx.emu, "POST /crm/v8/settings/modules")
    _, err = fx.client:create_module { plural_label = "Visits", singular_label = "Visit", profiles = { { name = "Interns" } } }
    assert.equal("INVALID_DATA", err.code)
    assert.equal("profiles[1].name", err.field)
    assert.equal(before, requests(fx.emu, "POST /crm/v8/settings/modules"))
  end)

  it("is sent once: an answer lost on a reused connection is OUTCOME_UNKNOWN, and the module exists once", function()
    -- A first call leaves a keep-alive connection that the POST could reuse.
    assert(fx.client:get_modules())
    fx.emu:script("lost", 1)                       -- the create is applied, then its connection closes unanswered
    local res, err = fx.client:create_module { plural_label = "Field Visits", singular_label = "Field Visit",
                                            profiles = { { id = ADMIN } } }
    assert.is_nil(res)
    assert.equal("OUTCOME_UNKNOWN", err.code)
    assert.equal("transport", err.kind)
    assert.is_false(err.retryable)
    assert.is_nil(err.status)
    assert.equal("RECV_ERROR", err.details.cause)
    assert.matches("may have been applied", err.message)
    assert.equal(1, requests(fx.emu, "POST /crm/v8/settings/modules"))
    local created = 0
    for _, m in ipairs(fx.emu:state().modules) do
      if m.plural_label == "Field Visits" then created = created + 1 end
    end
    assert.equal(1, created)
  end)

  it("is an operation like the others: submit returns a request", function()
    local req = fx.client:submit("create_module", { plural_label = "Audits", singular_label = "Audit",
                                                 profiles = { { id = ADMIN } } })
    local res = assert(fx.client:wait(req))
    assert.matches("^%d+$", res.id)
  end)
end)

describe("update_modules through the batch endpoint", function()
  local fx = with_emulator { args = { "--extra-modules", "150" }, client = CLIENT }
  local BATCH_ROUTE = lookup.BATCH_ROUTE

  it("sends 150 updates in 2 calls, names resolved to ids, all applied (200)", function()
    local list = {}
    for i = 1, 150 do
      list[i] = { module = (i % 2 == 0) and ("Bulk_Module_" .. i) or nil, plural_label = "Batch Items " .. i }
    end
    local ids = {}
    for _, m in ipairs(assert(fx.client:get_modules())) do ids[m.api_name] = m.id end
    for i = 1, 150, 2 do list[i].module = ids["Bulk_Module_" .. i] end      -- odd ones by id
    fx.emu:reset()
    local results = fx.client:update_modules(list)
    assert.equal(150, #results)
    for i = 1, 150 do
      assert.equal("SUCCESS", results[i].code, tostring(results[i]))
      assert.equal(ids["Bulk_Module_" .. i], results[i].id)
    end
    assert.is_nil(results.fallback)
    assert.equal(2, requests(fx.emu, BATCH_ROUTE))
    assert.equal(1, requests(fx.emu, "GET /crm/v8/settings/modules"))        -- one read for the names
    assert.is_nil(fx.emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"])
    local state = fx.emu:state()
    for i = 1, 150 do assert.equal("Batch Items " .. i, find(state, "Bulk_Module_" .. i).plural_label) end
  end)

  it("reads a 207 item by item: one result or error per entry, in order, local faults unsent", function()
    local results = fx.client:update_modules {
      { module = "Projects", plural_label = "Client Projects" },
      { module = "Shipments", profiles = { { id = "1234567890123456789" } } },  -- no such profile: Zoho says so
      { module = "Suppliers", plural_label = "Partners!" },                     -- refused here, never sent
      { module = "No_Such_Module", plural_label = "Ghosts" },                   -- no such API name
      { module = SIGN, plural_label = "Signatures" },                           -- no such module here either
      { module = "Assets", singular_label = "Equipment Item", profiles = { { name = "Standard" } } },
    }
    assert.equal(6, #results)
    assert.equal("SUCCESS", results[1].code)
    assert.equal("api", results[2].kind)
    assert.equal("INVALID_DATA", results[2].code)
    assert.equal("$.modules[1].profiles[0].id", results[2].details.json_path)
    assert.equal("validation", results[3].kind)
    assert.equal("plural_label", results[3].field)
    assert.equal("$.modules[2].plural_label", results[3].details.json_path)  -- its own entry, the third
    assert.equal("INVALID_MODULE", results[4].code)
    assert.equal("INVALID_MODULE", results[5].code)
    assert.equal("SUCCESS", results[6].code)
    assert.equal(1, requests(fx.emu, BATCH_ROUTE))
    local state = fx.emu:state()
    assert.equal("Client Projects", find(state, "Projects").plural_label)
    assert.equal("Equipment Item", find(state, "Assets").singular_label)
    assert.equal("Suppliers", find(state, "Suppliers").plural_label)
  end)

  it("reads a 400 in which every item failed item by item, each with its own error", function()
    local results = fx.client:update_modules {
      { module = "Projects", profiles = { { id = "1234567890123456789" } } },
      { module = "Shipments", plural_label = "Tickets" },                       -- another module's label
    }
    assert.equal(2, #results)
    assert.equal("INVALID_DATA", results[1].code)
    assert.equal(400, results[1].status)
    assert.equal("$.modules[0].profiles[0].id", results[1].details.json_path)
    assert.equal("DUPLICATE_DATA", results[2].code)
    assert.equal(1, requests(fx.emu, BATCH_ROUTE))
  end)

  it("counts 5 credits per module sent in a batch, like single updates", function()
    fx.client:update_modules { { module = "Projects", plural_label = "Client Projects" },
                            { module = "Shipments", plural_label = "Deliveries" } }
    assert.equal(1 + 2 * 5, (fx.client:credits()))                             -- the name read, two updates
  end)
end)

describe("apply with batch = true", function()
  local fx = with_emulator { args = { "--extra-modules", "250" }, client = CLIENT }

  it("sends 250 updates in 3 calls with diff, journals every item, and a rerun sends nothing", function()
    local dir = files.tmpdir()
    local list = {}
    for i = 1, 250 do list[i] = { module = "Bulk_Module_" .. i, plural_label = "Batch Items " .. i } end
    local progress = 0
    local report = assert(fx.client:apply(list, { batch = true, diff = true, journal = dir .. "/j",
                                               on_progress = function(done) progress = done end }))
    assert.is_true(report.ok)
    assert.equal(250, #report.applied)
    assert.equal(250, progress)
    assert.is_nil(report.batch_fallback)
    assert.equal(3, requests(fx.emu, "PUT /crm/v8/settings/modules"))
    local lines = 0
    for line in io.lines(dir .. "/j") do
      if line:find('"kind":"item"', 1, true) then lines = lines + 1 end
    end
    assert.equal(250, lines)
    local again = assert(fx.client:apply(list, { batch = true, diff = true }))
    assert.equal(0, #again.applied)
    assert.equal(250, #again.skipped)
    assert.equal(3, requests(fx.emu, "PUT /crm/v8/settings/modules"))
    files.remove_tree(dir)
  end)
end)

describe("zcrm apply --batch", function()
  local fx = with_emulator { args = { "--extra-modules", "3" }, client = false }

  it("sends the plan's updates in one batch call, its create alone, and reports them as usual", function()
    local dir = files.tmpdir()
    files.write(dir .. "/plan.lua", [[return {
      { module = "Bulk_Module_1", plural_label = "Batch One" },
      { module = "Bulk_Module_2", plural_label = "Batch Two" },
      { module = "Bulk_Module_3", plural_label = "Batch Three" },
      { create = true, plural_label = "Field Visits", singular_label = "Field Visit",
        profiles = { { name = "Administrator" } } },
    }]])
    local out = os.tmpname()
    local cmd = string.format("env -i PATH=\"$PATH\" ZOHO_API_DOMAIN=%s ZOHO_ACCESS_TOKEN=emulator-token "
      .. "bin/zcrm apply %s/plan.lua --batch --yes >%s 2>&1", fx.emu.url, dir, out)
    local _, _, code = os.execute(cmd)
    local text = files.read(out)
    os.remove(out)
    files.remove_tree(dir)
    assert.equal(0, code, text)
    assert.matches("applied 4, already applied 0, skipped 0, invalid 0, failed 0", text)
    assert.matches("%(new%) Field Visits%s+plural_label%s+%(new%) %-> \"Field Visits\"", text)
    assert.matches("applied 4/4  ", text, 1, true)
    assert.is_truthy(text:find("/4  (new) Field Visits\n", 1, true), text)
    assert.is_nil(text:find("refused", 1, true))
    assert.equal(1, requests(fx.emu, "PUT /crm/v8/settings/modules"))
    assert.is_nil(fx.emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"])
  end)
end)

describe("reads that follow every page", function()
  local fx = with_emulator { args = { "--extra-profiles", "450" }, client = CLIENT }

  it("get_profiles asks for page 2 and 3 while info.more_records is true and returns every profile", function()
    local list = assert(fx.client:get_profiles())
    local names = {}
    for _, p in ipairs(list) do names[p.name] = (names[p.name] or 0) + 1 end
    assert.equal(#fx.emu:state().profiles, #list)
    assert.is_true(#list > 450)
    assert.equal(1, names["Extra Profile 1"])
    assert.equal(1, names["Extra Profile 450"])
    assert.equal(3, requests(fx.emu, "GET /crm/v8/settings/profiles"))
  end)

  it("a profile named on the last page resolves in an update", function()
    local res, err = fx.client:update_module("Projects", { profiles = { { name = "Extra Profile 450" } } })
    assert.is_nil(err)
    assert.equal("SUCCESS", res.code)
    local m = find(fx.emu:state(), "Projects")
    local granted = false
    for _, p in ipairs(m.profiles) do granted = granted or p.name == "Extra Profile 450" end
    assert.is_true(granted)
  end)

  it("get_modules reads the one page the server sends (Zoho documents no paging for it)", function()
    assert.is_true(#assert(fx.client:get_modules()) > 0)
    assert.equal(1, requests(fx.emu, "GET /crm/v8/settings/modules"))
  end)
end)

describe("update_modules against a server without the batch endpoint", function()
  local fx = with_emulator { args = { "--no-batch" }, client = false }
  local client, logged
  before_each(function()
    logged = {}
    client = fx:new_client { retry_base = 0.01, logger = function(level, msg) logged[#logged + 1] = { level, msg } end }
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
    assert.equal(1, batch_puts(fx.emu))                                       -- refused once
    assert.equal(4, requests(fx.emu, "PUT /crm/v8/settings/modules/{module}"))
    -- the rest of the run goes one by one at once, and the log says so once
    results = client:update_modules { { module = "Contracts", plural_label = "Agreements" } }
    assert.equal("SUCCESS", results[1].code)
    assert.equal(1, batch_puts(fx.emu))
    local says = 0
    for _, l in ipairs(logged) do
      if l[2]:find("refused the batch endpoint", 1, true) then says = says + 1 end
    end
    assert.equal(1, says)
    local state = fx.emu:state()
    for _, name in ipairs { "Projects", "Shipments", "Suppliers", "Assets" } do
      assert.equal(name .. " Renamed", find(state, name).plural_label)
    end
    assert.equal("Agreements", find(state, "Contracts").plural_label)
  end)
end)

describe("plans with create entries", function()
  local fx = with_emulator { client = CLIENT }

  local function plan()
    return {
      { create = true, plural_label = "Field Visits", singular_label = "Field Visit",
        profiles = { { name = "Administrator" }, { name = "Standard" } } },
      { module = "Projects", plural_label = "Client Projects" },
    }
  end

  it("are checked offline like create_module, with their index", function()
    local ok, err = zcrm.plan.validate {
      { create = true, plural_label = "Visits", profiles = { { id = ADMIN } } },              -- no singular
      { create = true, module = "Visits", plural_label = "Visits", singular_label = "Visit",
        profiles = { { id = ADMIN } } },                                                       -- module given
      { create = "yes", plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN } } },
      { create = true, plural_label = "Visits", singular_label = "Visit", profiles = { { id = ADMIN, _delete = true } } },
      { create = true, plural_label = "Projects", singular_label = "Thing", profiles = { { id = ADMIN } } },
      { module = "Assets", plural_label = "projects" },                                        -- same label, case folded
    }
    assert.is_nil(ok)
    local e = err.details.errors
    assert.same({ "MANDATORY_NOT_FOUND", "INVALID_DATA", "INVALID_DATA", "INVALID_DATA", "DUPLICATE_DATA" },
                { e[1].error.code, e[2].error.code, e[3].error.code, e[4].error.code, e[5].error.code })
    assert.same({ 1, 2, 3, 4, 6 }, { e[1].index, e[2].index, e[3].index, e[4].index, e[5].index })
    assert.same({ "singular_label", "module", "create", "profiles[1]._delete" },
                { e[1].error.field, e[2].error.field, e[3].error.field, e[4].error.field })
  end)

  it("show in the diff as new modules, are created, and a rerun with diff sends nothing", function()
    local report, err = fx.client:apply(plan(), { diff = true })
    assert.is_nil(err)
    assert.is_true(report.ok)
    local c = report.changes[1]
    assert.is_true(c.create)
    assert.equal("(new) Field Visits", c.module)
    assert.same({ new = "Field Visits" }, c.plural_label)
    assert.same({ ADMIN, STANDARD }, { c.granted[1].id, c.granted[2].id })
    assert.equal("Administrator", c.granted[1].name)
    assert.equal(2, #report.applied)
    local created                             -- report.applied is in completion order
    for _, a in ipairs(report.applied) do
      if a.index == 1 then created = a end
    end
    assert.equal("(new) Field Visits", created.module)
    assert.matches("^%d+$", created.id)
    local m
    for _, mod in ipairs(fx.emu:state().modules) do
      if mod.plural_label == "Field Visits" then m = mod end
    end
    assert.is_table(m)
    assert.equal(created.id, m.id)
    assert.equal(1, requests(fx.emu, "POST /crm/v8/settings/modules"))
    -- again: the module with both labels is there, so nothing is sent
    local again = assert(fx.client:apply(plan(), { diff = true }))
    assert.equal(0, #again.applied)
    assert.equal(2, #again.skipped)
    assert.equal("no change", again.skipped[1].reason)
    assert.equal(1, requests(fx.emu, "POST /crm/v8/settings/modules"))
  end)

  it("refuse a label that another module already has, before sending", function()
    local before = requests(fx.emu)
    local report, err = fx.client:apply({
      { create = true, plural_label = "Projects", singular_label = "Undertaking", profiles = { { id = ADMIN } } },
    }, { diff = true })
    assert.is_nil(report)
    assert.equal("DUPLICATE_DATA", err.details.errors[1].error.code)
    assert.equal("plural_label", err.details.errors[1].error.field)
    assert.equal(0, requests(fx.emu, "POST /crm/v8/settings/modules"))
    assert.is_true(requests(fx.emu) > before) -- the state was read
  end)

  it("are journalled like updates, and a rerun that reads the state sends no second POST", function()
    local dir = files.tmpdir()
    local journal = dir .. "/run.journal"
    local report = assert(fx.client:apply(plan(), { journal = journal }))
    assert.equal(2, #report.applied)
    local lines = {}
    for line in io.lines(journal) do
      if line:find('"kind":"item"', 1, true) then lines[#lines + 1] = line end
    end
    assert.equal(2, #lines)
    assert.is_truthy(table.concat(lines, "\n"):find("(new) Field Visits", 1, true))
    local again = assert(fx.client:apply(plan(), { journal = journal, diff = true }))
    assert.equal(0, #again.applied)
    assert.equal(1, requests(fx.emu, "POST /crm/v8/settings/modules"))
    files.remove_tree(dir)
  end)
end)

describe("apply with batch = true against a server without the batch endpoint", function()
  local fx = with_emulator { args = { "--extra-modules", "150", "--no-batch" }, client = CLIENT }

  it("falls back to single PUTs for the rest of the run, says so once, and loses nothing", function()
    local logged = {}
    local client = fx:new_client { logger = function(_, msg) logged[#logged + 1] = msg end }
    local list, results = {}, 0
    for i = 1, 150 do list[i] = { module = "Bulk_Module_" .. i, plural_label = "Batch Items " .. i } end
    list[151] = { create = true, plural_label = "Field Visits", singular_label = "Field Visit",
                  profiles = { { id = ADMIN } } }
    local report = assert(client:apply(list, { batch = true, on_result = function() results = results + 1 end }))
    assert.is_true(report.ok)
    assert.equal(151, #report.applied)
    assert.equal(151, results)
    assert.equal("INVALID_REQUEST_METHOD", report.batch_fallback.code)
    local refusals = batch_puts(fx.emu)
    assert.is_true(refusals >= 1 and refusals <= 2)                         -- both groups may be in flight
    assert.equal(150, requests(fx.emu, "PUT /crm/v8/settings/modules/{module}"))
    local says = 0
    for _, msg in ipairs(logged) do
      if msg:find("refused the batch endpoint", 1, true) then says = says + 1 end
    end
    assert.equal(1, says)
    local state = fx.emu:state()
    for i = 1, 150 do assert.equal("Batch Items " .. i, find(state, "Bulk_Module_" .. i).plural_label) end
  end)

  it("zcrm apply --batch says so once on stderr", function()
    local dir = files.tmpdir()
    files.write(dir .. "/plan.lua", [[return {
      { module = "Bulk_Module_1", plural_label = "Batch One" },
      { module = "Bulk_Module_2", plural_label = "Batch Two" },
    }]])
    local out = os.tmpname()
    local cmd = string.format("env -i PATH=\"$PATH\" ZOHO_API_DOMAIN=%s ZOHO_ACCESS_TOKEN=emulator-token "
      .. "bin/zcrm apply %s/plan.lua --batch --yes >%s 2>&1", fx.emu.url, dir, out)
    local _, _, code = os.execute(cmd)
    local text = files.read(out)
    os.remove(out)
    files.remove_tree(dir)
    assert.equal(0, code, text)
    local _, n = text:gsub("refused the batch endpoint", "")
    assert.equal(1, n, text)
    assert.matches("applied 2, already applied 0, skipped 0, invalid 0, failed 0", text)
  end)
end)
