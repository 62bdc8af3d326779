-- Configuration as code: export, exact profile sets, saved change
-- sets, drift checks and many orgs, against two and three emulators.
local zcrm = require "zcrm"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local clients = require "spec.support.client"

local new_client, puts = clients.maker { retry_base = 0.01 }, clients.puts

-- The org's custom modules as a user sees them: API name, labels, profile names.
local function custom_modules(emu)
  local out = {}
  for _, m in ipairs(emu:state().modules) do
    if m.generated_type == "custom" then
      local names = {}
      for _, p in ipairs(m.profiles) do names[#names + 1] = p.name end
      table.sort(names)
      out[m.api_name] = { m.plural_label, m.singular_label, table.concat(names, ",") }
    end
  end
  return out
end

-- A direct PUT, behind zcrm's back.
local function put(emu, module, body)
  local status, text = emu:request("PUT", "/crm/v8/settings/modules/" .. module, {
    headers = { Authorization = "Zoho-oauthtoken emulator-token", ["Content-Type"] = "application/json" },
    body = cjson.encode { modules = { body } } })
  assert.equal(200, status, text)
end

describe("exact profile sets (profile_set)", function()
  it("are checked offline like every other field", function()
    local ok, err = zcrm.plan.validate {
      { module = "Projects", profile_set = { "Administrator" } },
      { module = "Tickets", profile_set = {} },
      { module = "Assets", profile_set = { "Sales", "Sales" } },
      { module = "Trainings", profile_set = { "Sales" }, profiles = { { name = "Sales" } } },
      { module = "Vehicles", profile_set = { 42 } },
      { module = "Contracts", profile_set = { "Bad\nName" } },
    }
    assert.is_nil(ok)
    local e = err.details.errors
    assert.same({ 2, 3, 4, 5, 6 }, { e[1].index, e[2].index, e[3].index, e[4].index, e[5].index })
    assert.equal("MINIMUM_DATA_NOT_FOUND", e[1].error.code)
    assert.equal("DUPLICATE_DATA", e[2].error.code)
    assert.equal("profile_set[2]", e[2].error.field)
    assert.equal("profile_set", e[3].error.field)
    assert.equal("profile_set[1]", e[4].error.field)
    assert.equal("profile_set[1]", e[5].error.field)
  end)
end)

describe("export and apply across two orgs", function()
  local a, b
  before_each(function()
    a, b = emulator.start(), emulator.start()
  end)
  after_each(function()
    a:stop()
    b:stop()
  end)

  it("round trip: an export applied to its own org sends nothing; applied to another, makes it match", function()
    local ca, cb = new_client(a), new_client(b)
    local plan = assert(ca:export())
    local text = zcrm.export_source(plan, a.url)
    assert.is_nil(text:find("2423488", 1, true)) -- no ids in the file
    local f = assert(load(text, "export", "t", {}))
    local reloaded = f()
    assert.same(plan, reloaded)

    local report = assert(ca:apply(reloaded))
    assert.is_true(report.ok)
    assert.equal(0, #report.applied)
    assert.equal(0, puts(a))

    -- Org B drifts: labels and profile access, both ways.
    put(b, "Projects", { plural_label = "Programs", singular_label = "Program",
                         profiles = { { id = "2423488000000015978" }, { id = "2423488000000015984", _delete = cjson.null } } })
    put(b, "Assets", { profiles = { { id = "2423488000000015987" } } })
    assert.are_not.same(custom_modules(a), custom_modules(b))

    report = assert(cb:apply(reloaded))
    assert.is_true(report.ok)
    assert.equal(2, #report.applied)
    assert.same(custom_modules(a), custom_modules(b))
    -- and again: nothing left to send
    report = assert(cb:apply(reloaded))
    assert.equal(0, #report.applied)
  end)

  it("a module or profile the target org lacks is a per-entry error, found before anything is sent", function()
    local ca = new_client(a)
    local plan = assert(ca:export())
    plan[1].profile_set[#plan[1].profile_set + 1] = "Interns"
    plan[#plan + 1] = { module = "No_Such_Module", profile_set = { "Administrator" } }
    local report, err = new_client(b):apply(plan)
    assert.is_nil(report)
    assert.equal("INVALID_PLAN", err.code)
    assert.equal(2, #err.details.errors)
    assert.matches("no profile named 'Interns'", tostring(err.details.errors[1].error))
    assert.equal("INVALID_MODULE", err.details.errors[2].error.code)
    assert.equal(0, puts(b))
  end)

  it("changed since the plan: the whole set is refused; with partial, that module keeps the other change", function()
    local c = new_client(a)
    local plan = {
      { module = "Projects", plural_label = "Client Projects", singular_label = "Client Project" },
      { module = "Tickets", plural_label = "Support Tickets", singular_label = "Support Ticket" },
      { module = "Assets", profile_set = { "Administrator", "Marketing" } },
    }
    local cs = assert(c:plan(plan))
    assert.equal(3, #cs.changes)
    local dir = files.tmpdir()
    local path = dir .. "/changes.json"
    assert(zcrm.changes.write(path, cs))
    put(a, "Tickets", { plural_label = "Help Desk", singular_label = "Help Desk Item" })
    local report = assert(c:apply(path))
    assert.is_false(report.ok)
    assert.is_true(report.drift_refused)
    assert.equal(0, #report.applied)
    assert.equal(2, #report.not_sent)
    assert.equal(1, puts(a))                  -- the direct PUT alone
    report = assert(c:apply(path, { partial = true }))
    files.remove_tree(dir)
    assert.is_false(report.ok)
    assert.equal(2, #report.applied)
    assert.equal(1, #report.refused)
    assert.equal("Tickets", report.refused[1].module)
    assert.equal("CHANGED_SINCE_PLAN", report.refused[1].error.code)
    local now = custom_modules(a)
    assert.same({ "Help Desk", "Help Desk Item", "Administrator,Contractor,Standard" }, now.Tickets)
    assert.same({ "Client Projects", "Client Project", "Administrator,Contractor,Standard" }, now.Projects)
    assert.same({ "Assets", "Asset", "Administrator,Marketing" }, now.Assets)
  end)

  it("a change set made for one org is refused against another, before anything is sent", function()
    local cs = assert(new_client(a):plan { { module = "Projects", plural_label = "Client Projects" } })
    local report, err = new_client(b):apply(cs)
    assert.is_nil(report)
    assert.equal("ORG_MISMATCH", err.code)
    assert.equal(0, puts(b))
  end)

  it("a change set whose body does not match its before and after is refused before anything is sent", function()
    local c = new_client(a)
    local cs = assert(c:plan { { module = "Projects", plural_label = "Client Projects" },
                               { module = "Assets", profile_set = { "Administrator" } } })
    local plain = cjson.decode(zcrm.changes.encode(cs))
    plain.changes[1].body.plural_label = "Something Else" -- reviewed: "Client Projects"
    local ok, err = zcrm.changes.decode(cjson.encode(plain))
    assert.is_nil(ok)
    assert.equal("INVALID_CHANGES", err.code)
    assert.matches("does not turn before into after", err.message, 1, true)
    plain = cjson.decode(zcrm.changes.encode(cs))
    plain.changes[2].body.profiles = { { id = "2423488000000015987" } } -- a grant of Marketing, not reviewed
    ok, err = zcrm.changes.decode(cjson.encode(plain))
    assert.is_nil(ok)
    assert.matches("changes[2] (Assets): its body does not turn before into after", err.message, 1, true)
    local report
    report, err = c:apply(plain)
    assert.is_nil(report)
    assert.equal("INVALID_CHANGES", err.code)
    assert(zcrm.changes.decode(zcrm.changes.encode(cs))) -- untouched, it reads back
    assert.equal(0, puts(a))
  end)

  it("a change set names its org: at the same API domain, another org refuses it", function()
    local c = new_client(a)
    local cs = assert(c:plan { { module = "Projects", plural_label = "Client Projects" } })
    assert.equal("2423488000000002175", cs.org) -- the smallest module id of the seeded org
    cs.org = "2423488000000001000"
    local report, err = c:apply(cs)
    assert.is_nil(report)
    assert.equal("ORG_MISMATCH", err.code)
    assert.equal("org", err.field)
    assert.equal(0, puts(a))
  end)
end)

describe("a journal", function()
  local emu, dir
  local core = require "zcrm.core"
  setup(function()
    -- each answer takes 2 s: the first run's updates are still in flight
    -- when the spec stops it, however slowly (valgrind) the spec runs
    emu = emulator.start { "--latency-ms", "2000" }
    dir = files.tmpdir()
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  local function command(plan_path, journal)
    return string.format("ZOHO_ACCESS_TOKEN=emulator-token exec bin/zcrm apply %s --diff --yes --journal %s --api-domain %s",
      emulator.quote(plan_path), emulator.quote(journal), emu.url)
  end

  local function alive(pid)
    local stat = files.read("/proc/" .. pid .. "/stat")
    return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
  end

  it("refuses a second run while one is using it, and is free again once that run is killed", function()
    local plan_path, journal = dir .. "/plan.lua", dir .. "/plan.journal"
    files.write(plan_path, 'return { { module = "Projects", plural_label = "Locked Projects" },\n'
      .. '  { module = "Tickets", plural_label = "Locked Tickets" } }\n')
    local p = assert(io.popen(command(plan_path, journal) .. " >/dev/null 2>&1 & echo $!"))
    local pid = assert(tonumber(p:read("l")))
    p:close()
    -- The journal's state line is written once the run holds the lock, before
    -- its updates (2 s each here) are sent: stop the run right there.
    while not (files.read(journal) or ""):find('"kind":"state"', 1, true) do
      assert.is_true(alive(pid), "the first run ended before writing its journal")
      core.sleep(0.01)
    end
    os.execute("kill -STOP " .. pid)
    assert.is_true(alive(pid), "the first run ended before it was stopped")
    assert.is_nil((files.read(journal) or ""):find('"kind":"item"', 1, true), "the first run finished an update")

    p = assert(io.popen(command(plan_path, journal) .. " 2>&1"))
    local output = p:read("a")
    local _, _, code = p:close()
    assert.equal(1, code)
    assert.matches("JOURNAL_BUSY", output, 1, true)
    assert.matches("in use by another run", output, 1, true)

    os.execute("kill -KILL " .. pid)
    while alive(pid) do core.sleep(0.01) end
    p = assert(io.popen(command(plan_path, journal) .. " 2>&1"))
    output = p:read("a")
    _, _, code = p:close()
    assert.equal(0, code, output)
    local state = custom_modules(emu)
    assert.equal("Locked Projects", state.Projects[1])
    assert.equal("Locked Tickets", state.Tickets[1])
  end)
end)

describe("zcrm.apply_orgs across three orgs", function()
  local emus
  before_each(function()
    emus = { emulator.start(), emulator.start(), emulator.start() }
  end)
  after_each(function()
    for _, e in ipairs(emus) do e:stop() end
  end)

  local function orgs()
    local list = {}
    for i, e in ipairs(emus) do
      list[i] = { name = "org" .. i, options = { api_domain = e.url, access_token = "emulator-token", env = false } }
    end
    return list
  end

  -- A plan function: each org gets its own label, by ctx.args.org.
  local function plan(ctx)
    return { { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper(),
               profile_set = { "Administrator", "Standard" } } }
  end

  it("applies one plan to every org, with one confirmation and a report per org", function()
    local asked = 0
    local result = assert(zcrm.apply_orgs(orgs(), plan, {
      confirm = function(r)
        asked = asked + 1
        assert.equal(3, #r.orgs)
        for _, o in ipairs(r.orgs) do assert.equal(1, #o.checked.would_send) end
        return true
      end,
    }))
    assert.equal(1, asked)
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.equal("org" .. i, result.orgs[i].name)
      assert.equal(1, #result.orgs[i].report.applied)
      local projects = custom_modules(e).Projects
      assert.same({ "Projects ORG" .. i, "Project", "Administrator,Standard" }, projects)
    end
  end)

  it("reads each org's state once: the check's read serves the apply", function()
    local result = assert(zcrm.apply_orgs(orgs(), plan, { confirm = function() return true end }))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      local by_route = e:stats().requests.by_route
      assert.equal(1, by_route["GET /crm/v8/settings/modules"], "module lists read from org" .. i)
      assert.equal(1, by_route["GET /crm/v8/settings/profiles"], "profile lists read from org" .. i)
      assert.equal(1, puts(e))
    end
  end)

  it("reads what the check's state lacks when a plan function gives the apply more", function()
    local calls = {}
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      calls[ctx.args.org] = (calls[ctx.args.org] or 0) + 1
      local entry = { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper() }
      -- the first call (the check) names no profile; the second (the apply) does
      if calls[ctx.args.org] == 2 then entry.profile_set = { "Administrator", "Standard" } end
      return { entry }
    end))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.same({ "Projects ORG" .. i, "Project", "Administrator,Standard" }, custom_modules(e).Projects)
      assert.equal(1, e:stats().requests.by_route["GET /crm/v8/settings/profiles"])
    end
  end)

  it("sends what the apply's plan gives when it differs from the check's deep inside an entry", function()
    local calls = {}
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      calls[ctx.args.org] = (calls[ctx.args.org] or 0) + 1
      -- the same entry but for one profile less in the second call (the apply)
      local set = calls[ctx.args.org] == 1 and { "Administrator", "Standard" } or { "Administrator" }
      return { { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper(), profile_set = set } }
    end))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.same({ "Projects ORG" .. i, "Project", "Administrator" }, custom_modules(e).Projects)
    end
  end)

  it("applies a plan table as it is after the confirmation, when confirm changed it", function()
    local list = { { module = "Projects", plural_label = "Projects Shown", profile_set = { "Administrator" } } }
    local result = assert(zcrm.apply_orgs(orgs(), list, {
      confirm = function()
        list[1].plural_label = "Projects Changed"
        list[1].profile_set[2] = "Standard"
        return true
      end,
    }))
    assert.is_true(result.ok)
    for _, e in ipairs(emus) do
      assert.same({ "Projects Changed", "Project", "Administrator,Standard" }, custom_modules(e).Projects)
    end
  end)

  it("checks every org before changing any: one org that refuses the plan stops them all", function()
    put(emus[3], "Tickets", { plural_label = "Projects ORG3" }) -- the label org3 would get is taken there
    local result, err = zcrm.apply_orgs(orgs(), plan, { confirm = function() return true end })
    assert.is_nil(result)
    assert.equal("INVALID_PLAN", err.code)
    assert.equal(1, #err.details.orgs)
    assert.equal("org3", err.details.orgs[1].org)
    for _, e in ipairs(emus) do assert.equal(e == emus[3] and 1 or 0, puts(e)) end
  end)

  it("runs the orgs at the same time: the others are under way before the first one finishes", function()
    for _, e in ipairs(emus) do e:stop() end
    emus = {}
    for i = 1, 3 do emus[i] = emulator.start { "--latency-ms", "100", "--extra-modules", "30" } end
    local done, seen = {}, nil
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      local list = {}
      for i = 1, 30 do list[i] = { module = "Bulk_Module_" .. i, plural_label = "Bulk " .. ctx.args.org .. " " .. i } end
      return list
    end, {
      concurrency = 5,
      on_progress = function(org, n, total)
        done[org] = n
        if n == total and not seen then -- the first org to finish: what had the others done?
          seen = {}
          for _, name in ipairs { "org1", "org2", "org3" } do seen[name] = done[name] or 0 end
        end
      end,
    }))
    assert.is_true(result.ok)
    for name, n in pairs(seen) do assert.is_true(n > 0, name .. " had not started when the first org finished") end
  end)

  it("refuses before any org runs when one org's undo file already exists", function()
    local dir = files.tmpdir()
    local f = assert(io.open(dir .. "/undo-org2.lua", "w"))
    f:write("-- an older undo plan\n")
    f:close()
    local result, err = zcrm.apply_orgs(orgs(), plan, { undo_file = dir .. "/undo-{org}.lua" })
    files.remove_tree(dir)
    assert.is_nil(result)
    assert.equal("UNDO_FILE_EXISTS", err.code)
    assert.matches("org org2", err.message, 1, true)
    for _, e in ipairs(emus) do assert.equal(0, puts(e)) end
  end)

  it("changes nothing when the confirmation says no", function()
    local result = assert(zcrm.apply_orgs(orgs(), plan, { confirm = function() return false end }))
    assert.is_false(result.confirmed)
    for _, e in ipairs(emus) do assert.equal(0, puts(e)) end
  end)
end)

describe("the zcrm command", function()
  local a, b, dir
  local core = require "zcrm.core"
  before_each(function()
    a, b = emulator.start(), emulator.start()
    dir = files.tmpdir()
  end)
  after_each(function()
    a:stop()
    b:stop()
    files.remove_tree(dir)
  end)

  -- Runs bin/zcrm with ARGs against `emu`; returns exit code, stdout+stderr.
  local function zcrm_cmd(emu, ...)
    local parts = { "ZOHO_ACCESS_TOKEN=emulator-token bin/zcrm" }
    for _, arg in ipairs { ... } do parts[#parts + 1] = emulator.quote(arg) end
    if emu then parts[#parts + 1] = "--api-domain " .. emu.url end
    local p = assert(io.popen(table.concat(parts, " ") .. " 2>&1 </dev/null"))
    local output = p:read("a")
    local _, _, code = p:close()
    return code, output
  end

  it("export writes a private plan file; diff exits 0 when the org matches, 1 when it differs, 2 on error", function()
    local export = dir .. "/sandbox.lua"
    local code, output = zcrm_cmd(a, "export", "--out", export)
    assert.equal(0, code, output)
    assert.equal(tonumber("600", 8), core.file_mode(export))
    code, output = zcrm_cmd(a, "diff", export)
    assert.equal(0, code, output)
    assert.matches("matches", output)
    code, output = zcrm_cmd(b, "diff", export)
    assert.equal(0, code, output) -- both emulators start from the same seeded org
    put(b, "Projects", { plural_label = "Programs" })
    code, output = zcrm_cmd(b, "diff", export)
    assert.equal(1, code, output)
    assert.matches('Projects%s+plural_label%s+"Programs" %-> "Projects"', output)
    files.write(dir .. "/bad.lua", 'return { { module = "Projects", plural_label = "Bad!" } }\n')
    code, output = zcrm_cmd(b, "diff", dir .. "/bad.lua")
    assert.equal(2, code, output)
    code, output = zcrm_cmd(nil, "diff", export, "--api-domain", "http://127.0.0.1:1")
    assert.equal(2, code, output)
    assert.equal(0, puts(a))
    assert.equal(1, puts(b)) -- the direct PUT alone
  end)

  it("export and plan never write through a symbolic link at the path", function()
    local target = dir .. "/target.txt"
    files.write(target, "keep me\n")
    os.execute("ln -s " .. emulator.quote(target) .. " " .. emulator.quote(dir .. "/link.lua"))
    os.execute("ln -s " .. emulator.quote(target) .. " " .. emulator.quote(dir .. "/link.json"))
    files.write(dir .. "/plan.lua", 'return { { module = "Projects", plural_label = "Client Projects" } }\n')
    local code, output = zcrm_cmd(a, "export", "--out", dir .. "/link.lua")
    assert.equal(0, code, output)
    code, output = zcrm_cmd(a, "plan", dir .. "/plan.lua", "--out", dir .. "/link.json")
    assert.equal(2, code, output) -- something is there: replaced only with --force
    code, output = zcrm_cmd(a, "plan", dir .. "/plan.lua", "--out", dir .. "/link.json", "--force")
    assert.equal(0, code, output)
    assert.equal("keep me\n", files.read(target))
    assert.matches("^%-%- Custom modules", files.read(dir .. "/link.lua"))
  end)

  it("plan --out, then apply the change set: a module changed since the plan refuses the set, exit 1", function()
    local plan_path, cs_path = dir .. "/plan.lua", dir .. "/changes.json"
    files.write(plan_path, 'return { { module = "Projects", plural_label = "Client Projects" },\n'
      .. '  { module = "Tickets", plural_label = "Support Tickets" },\n'
      .. '  { module = "Assets", profile_set = { "Administrator" } } }\n')
    local code, output = zcrm_cmd(a, "plan", plan_path, "--out", cs_path)
    assert.equal(0, code, output)
    assert.equal(tonumber("600", 8), core.file_mode(cs_path))
    assert.equal(0, puts(a))
    put(a, "Tickets", { plural_label = "Help Desk" })
    code, output = zcrm_cmd(a, "apply", cs_path, "--yes")
    assert.equal(1, code, output)
    assert.matches("Tickets: CHANGED_SINCE_PLAN", output, 1, true)
    assert.matches("nothing was sent", output, 1, true)
    assert.equal("Projects", custom_modules(a).Projects[1])
    code, output = zcrm_cmd(a, "apply", cs_path, "--yes", "--partial")
    assert.equal(1, code, output)
    assert.matches("applied 2, already applied 0, changed since the plan 1", output, 1, true)
    local now = custom_modules(a)
    assert.equal("Help Desk", now.Tickets[1])
    assert.equal("Client Projects", now.Projects[1])
    assert.equal("Administrator", now.Assets[3])
    -- bound to its org: refused against the other emulator, exit 2
    code, output = zcrm_cmd(b, "apply", cs_path, "--yes")
    assert.equal(2, code, output)
    assert.matches("ORG_MISMATCH", output, 1, true)
    assert.equal(0, puts(b))
  end)

  it("apply CHANGES.json --json: stdout holds one JSON event per line", function()
    local cs_path = dir .. "/changes.json"
    files.write(dir .. "/plan.lua", 'return { { module = "Projects", plural_label = "Client Projects" },\n'
      .. '  { module = "Tickets", plural_label = "Support Tickets" } }\n')
    assert.equal(0, (zcrm_cmd(a, "plan", dir .. "/plan.lua", "--out", cs_path)))
    put(a, "Projects", { singular_label = "Programme" })
    local p = assert(io.popen(string.format(
      "ZOHO_ACCESS_TOKEN=emulator-token bin/zcrm apply %s --json --yes --partial --api-domain %s 2>/dev/null",
      emulator.quote(cs_path), a.url)))
    local events = {}
    for line in p:lines() do
      local ev = cjson.decode(line)
      events[#events + 1] = ev.event .. (ev.status and (":" .. ev.module .. ":" .. ev.status) or "")
    end
    local _, _, code = p:close()
    assert.equal(1, code)
    table.sort(events)
    assert.same({ "change", "report", "result:Projects:changed", "result:Tickets:applied" }, events)
  end)

  it("applies a change set or a plan to many orgs only when asked on a terminal, or with --yes", function()
    local cs_path = dir .. "/changes.json"
    files.write(dir .. "/plan.lua", 'return { { module = "Projects", plural_label = "Client Projects" } }\n')
    assert.equal(0, (zcrm_cmd(a, "plan", dir .. "/plan.lua", "--out", cs_path)))
    local code, output = zcrm_cmd(a, "apply", cs_path) -- stdin is /dev/null: no terminal to ask on
    assert.equal(2, code, output)
    assert.matches("no terminal to ask on; nothing was sent", output, 1, true)
    local orgs_path = dir .. "/orgs.lua"
    files.write(orgs_path, string.format(
      'return { { name = "a", options = { api_domain = %q, access_token = "emulator-token" } } }\n', a.url))
    code, output = zcrm_cmd(nil, "apply", dir .. "/plan.lua", "--orgs", orgs_path)
    assert.equal(2, code, output)
    assert.equal(0, puts(a))
    code, output = zcrm_cmd(a, "apply", cs_path, "--dry-run")
    assert.equal(0, code, output)
    assert.equal(0, puts(a))
  end)

  it("--orgs: an orgs file that does not load is named with its line, never quoted (it holds secrets)", function()
    local orgs_path = dir .. "/broken-orgs.lua"
    files.write(orgs_path, 'return { { name = "a", options = { access_token = "1000.orgs.SECRET.value" oops } } }\n')
    os.execute("chmod 600 " .. orgs_path)
    files.write(dir .. "/plan.lua", 'return { { module = "Projects", plural_label = "P" } }\n')
    local code, output = zcrm_cmd(nil, "diff", dir .. "/plan.lua", "--orgs", orgs_path)
    assert.equal(2, code, output)
    assert.matches("Lua syntax error at line 1", output, 1, true)
    assert.is_nil(output:find("SECRET", 1, true), output)
    files.write(orgs_path, 'error("failed with 1000.orgs.SECRET.value")\n')
    code, output = zcrm_cmd(nil, "diff", dir .. "/plan.lua", "--orgs", orgs_path)
    assert.equal(2, code, output)
    assert.matches("raised an error", output, 1, true)
    assert.is_nil(output:find("SECRET", 1, true), output)
  end)

  it("--orgs: diff and apply one plan across orgs, with a summary per org", function()
    local orgs_path = dir .. "/orgs.lua"
    files.write(orgs_path, string.format('local token = os.getenv("ZOHO_ACCESS_TOKEN")\n'
      .. 'return { { name = "sandbox", options = { api_domain = %q, access_token = token } },\n'
      .. '  { name = "production", options = { api_domain = %q, access_token = token } } }\n', a.url, b.url))
    files.write(dir .. "/plan.lua",
      'return function(ctx) return { { module = "Projects", plural_label = "Projects of " .. ctx.args.org } } end\n')
    local code, output = zcrm_cmd(nil, "diff", dir .. "/plan.lua", "--orgs", orgs_path)
    assert.equal(1, code, output)
    code, output = zcrm_cmd(nil, "apply", dir .. "/plan.lua", "--orgs", orgs_path, "--yes")
    assert.equal(0, code, output)
    assert.matches("sandbox%s+applied 1", output)
    assert.matches("production%s+applied 1", output)
    assert.equal("Projects of sandbox", custom_modules(a).Projects[1])
    assert.equal("Projects of production", custom_modules(b).Projects[1])
    code, output = zcrm_cmd(nil, "diff", dir .. "/plan.lua", "--orgs", orgs_path)
    assert.equal(0, code, output)
  end)

  it("--orgs: plan writes one change set per org, and apply --orgs applies each to its org", function()
    local orgs_path = dir .. "/orgs.lua"
    files.write(orgs_path, string.format('local token = os.getenv("ZOHO_ACCESS_TOKEN")\n'
      .. 'return { { name = "sandbox", options = { api_domain = %q, access_token = token } },\n'
      .. '  { name = "production", options = { api_domain = %q, access_token = token } } }\n', a.url, b.url))
    files.write(dir .. "/plan.lua",
      'return function(ctx) return { { module = "Tickets", plural_label = "Tickets of " .. ctx.args.org } } end\n')
    local code0, output0 = zcrm_cmd(nil, "export", "--orgs", orgs_path, "--out", dir .. "/modules-{org}.lua")
    assert.equal(0, code0, output0)
    assert.matches("^%-%- Custom modules of " .. a.url:gsub("%p", "%%%0"), files.read(dir .. "/modules-sandbox.lua"))
    assert.matches("^%-%- Custom modules of " .. b.url:gsub("%p", "%%%0"), files.read(dir .. "/modules-production.lua"))
    local pattern = dir .. "/changes-{org}.json"
    local code, output = zcrm_cmd(nil, "plan", dir .. "/plan.lua", "--orgs", orgs_path, "--out", pattern)
    assert.equal(0, code, output)
    assert.truthy(files.read(dir .. "/changes-sandbox.json"))
    assert.truthy(files.read(dir .. "/changes-production.json"))
    code, output = zcrm_cmd(nil, "apply", pattern, "--orgs", orgs_path, "--yes")
    assert.equal(0, code, output)
    assert.equal("Tickets of sandbox", custom_modules(a).Tickets[1])
    assert.equal("Tickets of production", custom_modules(b).Tickets[1])
  end)
end)

describe("the example ORGS.lua", function()
  it("is accepted as shipped (mode 644, its token from the environment), as the README runs it", function()
    local a, b = emulator.start(), emulator.start()
    local cli = require "spec.support.cli"
    local code, out, err = cli.run({ "diff", "examples/plans/regional_labels.lua", "--orgs",
      "examples/plans/orgs.example.lua" }, { AMERICAS_API_DOMAIN = a.url, EMEA_API_DOMAIN = b.url,
      ZOHO_ACCESS_TOKEN = "emulator-token" })
    a:stop()
    b:stop()
    assert.equal(1, code, err)                        -- both seeded orgs differ from the plan
    assert.is_nil(err:find("UNSAFE_CONFIG", 1, true), err)
    assert.matches("americas", out, 1, true)
  end)
end)

describe("config and orgs files: one rule, judged by what they contain", function()
  local core = require "zcrm.core"
  local REAL = "1000.configspec.REALTOKEN.5e1f"
  local emu, dir
  setup(function() emu = emulator.start { "--access-token", REAL } end)
  teardown(function() emu:stop() end)
  before_each(function() dir = files.tmpdir() end)
  after_each(function() files.remove_tree(dir) end)

  -- runs bin/zcrm with ORG_TOKEN in its environment; returns code, output
  local function run(...)
    local parts = { "ORG_TOKEN=" .. emulator.quote(REAL) .. " bin/zcrm" }
    for _, arg in ipairs { ... } do parts[#parts + 1] = emulator.quote(arg) end
    local p = assert(io.popen(table.concat(parts, " ") .. " 2>&1 </dev/null"))
    local output = p:read("a")
    local _, _, code = p:close()
    return code, output
  end

  local function write(name, text, mode)
    local path = dir .. "/" .. name
    files.write(path, text)
    assert.truthy(os.execute("chmod " .. mode .. " " .. emulator.quote(path)))
    return path
  end

  local function config_of(token_expr)
    return string.format("return { api_domain = %q, access_token = %s }\n", emu.url, token_expr)
  end
  local function orgs_of(token_expr, extra)
    return string.format('return { { name = "one", options = { api_domain = %q, access_token = %s%s } } }\n',
      emu.url, token_expr, extra or "")
  end

  it("accepts a 644 file that reads a real token from the environment, config and orgs alike", function()
    local cfg = write("config.lua", config_of('os.getenv("ORG_TOKEN")'), "644")
    local code, output = run("profiles", "--config", cfg)
    assert.equal(0, code, output)
    local orgs = write("orgs.lua", orgs_of('os.getenv("ORG_TOKEN")'), "644")
    local plan = write("plan.lua", 'return { { module = "Projects", plural_label = "Projects" } }\n', "644")
    code, output = run("diff", plan, "--orgs", orgs)
    assert.equal(0, code, output)
    assert.is_nil(output:find(REAL, 1, true))
  end)

  it("refuses a 644 file with a secret written in it, whatever the secret looks like", function()
    -- an emulator-looking token no longer lets a literal client secret through
    local orgs = write("orgs.lua", orgs_of('"emulator-token"',
      ', oauth = { client_id = "1000.x", client_secret = "literal-SECRET-in-file", refresh_token = "1000.r" }'), "644")
    local plan = write("plan.lua", 'return { { module = "Projects", plural_label = "Projects" } }\n', "644")
    local code, output = run("diff", plan, "--orgs", orgs)
    assert.equal(2, code, output)
    assert.matches("UNSAFE_CONFIG", output, 1, true)
    assert.matches("oauth.client_secret", output, 1, true)
    assert.is_nil(output:find("literal-SECRET-in-file", 1, true))
    -- the same literal from a config file; and a literal equal to the environment's value
    for _, text in ipairs { config_of('"literal-SECRET-in-file"'), config_of(string.format("%q", REAL)) } do
      local cfg = write("config.lua", text, "644")
      code, output = run("profiles", "--config", cfg)
      assert.equal(2, code, output)
      assert.matches("UNSAFE_CONFIG", output, 1, true)
    end
    -- 600 and the user's own: accepted
    local cfg = write("config.lua", config_of(string.format("%q", REAL)), "600")
    code, output = run("profiles", "--config", cfg)
    assert.equal(0, code, output)
  end)

  it("refuses a 600 file with a secret written in it that another user owns", function()
    local cfg = write("config.lua", config_of(string.format("%q", REAL)), "600")
    local _, owned = core.file_mode(cfg)
    assert.is_true(owned)
    if not os.execute("chown 65534 " .. emulator.quote(cfg) .. " 2>/dev/null") then
      pending("chown needs root")
      return
    end
    local code, output = run("profiles", "--config", cfg)
    assert.equal(2, code, output)
    assert.matches("owned by another user", output, 1, true)
  end)

  it("runs both in the same restricted environment: os.getenv, but no io, os.execute or require", function()
    local plan = write("plan.lua", 'return { { module = "Projects", plural_label = "Projects" } }\n', "644")
    local marker = dir .. "/written"
    for _, act in ipairs { string.format("io.open(%q, 'w'):write('x')", marker),
                           string.format("os.execute('touch %s')", marker), 'require("os")', "load('return 1')()" } do
      local orgs = write("orgs.lua", act .. "\n" .. orgs_of('os.getenv("ORG_TOKEN")'), "600")
      local code, output = run("diff", plan, "--orgs", orgs)
      assert.equal(2, code, output)
      assert.matches("INVALID_ORGS", output, 1, true)
      assert.matches("raised an error at line 1", output, 1, true)
      local cfg = write("config.lua", act .. "\n" .. config_of('os.getenv("ORG_TOKEN")'), "600")
      code, output = run("profiles", "--config", cfg)
      assert.equal(2, code, output)
      assert.matches("INVALID_CONFIG", output, 1, true)
      assert.is_nil(files.read(marker), act .. " wrote a file")
    end
  end)
end)
