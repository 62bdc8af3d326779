-- Reviewed change sets: `zcrm plan --out`, `zcrm show`, `zcrm apply CHANGES.json`
-- run as a user runs them (the real bin/zcrm) against the emulator. What is
-- shown is what is sent; a rerun converges; drift refuses the whole set.
local cjson = require "cjson"
local zcrm = require "zcrm"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local clients = require "spec.support.client"
local cli = require "spec.support.cli"

local puts, new_client = clients.puts, clients.maker { retry_base = 0.01 }

local ADMINISTRATOR, CONTRACTOR, MARKETING = "2423488000000015972", "2423488000000015984", "2423488000000015987"

-- bin/zcrm with ARGs against `emu` (none: no connection at all); returns the
-- exit code, stdout and stderr.
local function run(emu, dir, ...)
  local parts = { "ZOHO_ACCESS_TOKEN=emulator-token bin/zcrm" }
  for _, a in ipairs { ... } do parts[#parts + 1] = emulator.quote(a) end
  if emu then parts[#parts + 1] = "--api-domain " .. emu.url end
  local out, err = dir .. "/stdout", dir .. "/stderr"
  local cmd = table.concat(parts, " ") .. " >" .. out .. " 2>" .. err .. " </dev/null"
  local _, _, code = os.execute(cmd)
  return code, files.read(out) or "", files.read(err) or ""
end

local function module_of(emu, api_name)
  for _, m in ipairs(emu:state().modules) do
    if m.api_name == api_name then
      local names = {}
      for _, p in ipairs(m.profiles) do names[#names + 1] = p.name end
      table.sort(names)
      return { plural = m.plural_label, singular = m.singular_label, profiles = table.concat(names, ",") }
    end
  end
end

local PLAN = 'return function(ctx) return {\n'
  .. '  { module = "Suppliers", plural_label = ctx.args[1] or "Partners" },\n'
  .. '  { module = "Projects", plural_label = "Client Projects", singular_label = "Client Project" },\n'
  .. '  { module = "Tickets", plural_label = "Support Tickets" },\n'
  .. '  { module = "Assets", profiles = { { name = "Marketing" } } },\n'
  .. '} end\n'

describe("zcrm plan, show and apply of a change set", function()
  local emu, dir, plan_path, cs_path
  before_each(function()
    emu = emulator.start()
    dir = files.tmpdir()
    plan_path, cs_path = dir .. "/plan.lua", dir .. "/changes.json"
    files.write(plan_path, PLAN)
  end)
  after_each(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  local function plan(...)
    local code, out, err = run(emu, dir, "plan", plan_path, "--out", cs_path, ...)
    assert.equal(0, code, out .. err)
    return cjson.decode(files.read(cs_path))
  end

  it("refuses a hand-edited set that would do more than it shows: exit 2, nothing sent", function()
    local cs = plan()
    local function tampered(edit)
      local t = cjson.decode(files.read(cs_path))
      edit(t)
      local path = dir .. "/tampered.json"
      files.write(path, cjson.encode(t))
      return path
    end
    local function change(t, module)
      for _, c in ipairs(t.changes) do if c.module == module then return c end end
    end
    local cases = {
      -- a profile by name: the model could not say whom it grants
      { "profile by name", function(t)
        change(t, "Suppliers").body.profiles = { { name = "Administrator", _delete = cjson.null } }
      end, "a profile is given by id" },
      -- `_delete: false` is a grant when sent, and was shown as a revoke
      { "_delete false", function(t)
        local c = change(t, "Assets")
        c.body.profiles = { { id = MARKETING, _delete = false } }
      end, "_delete must be null" },
      -- shown as "grant Marketing", the id is Contractor's
      { "a name that is not the id's", function(t)
        local c = change(t, "Assets")
        c.body.profiles = { { id = CONTRACTOR } }
        for _, p in ipairs(c.after.profiles) do if p.id == MARKETING then p.id = CONTRACTOR end end
      end, "but in this org it is" },
      { "an unknown key", function(t) change(t, "Projects").note = "x" end, 'unknown field "note"' },
      { "a body that revokes what after keeps", function(t)
        change(t, "Suppliers").body.profiles = { { id = ADMINISTRATOR, _delete = cjson.null } }
      end, "does not turn before into after" },
      { "a module id of another module", function(t)
        change(t, "Tickets").id = change(t, "Projects").id
        change(t, "Projects").id = "2423488000000834002"
      end, "in this org" },
    }
    assert.equal(4, #cs.changes)
    for _, case in ipairs(cases) do
      local path = tampered(case[2])
      local code, out, err = run(emu, dir, "apply", path, "--yes")
      assert.equal(2, code, case[1] .. ": " .. out .. err)
      assert.matches("INVALID_CHANGES", err, 1, true)
      assert.matches(case[3], err, 1, true)
    end
    assert.equal(0, puts(emu))
    assert.same({ plural = "Suppliers", singular = "Supplier", profiles = "Administrator,Standard" },
      module_of(emu, "Suppliers"))
  end)

  it("records how it was made, and zcrm show prints it and its changes offline", function()
    local cs = plan("Sellers")
    assert.equal(plan_path, cs.plan)
    assert.same({ "Sellers" }, cs.args)
    assert.equal("fnv1a64:" .. require("zcrm.util").fnv1a64(PLAN), cs.plan_hash)
    assert.equal(zcrm._VERSION, cs.zcrm_version)
    assert.equal(emu.url, cs.api_domain)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", cs.created)
    local requests = clients.requests(emu)
    emu:stop()                                  -- offline: no org to ask
    local code, out, err = run(nil, dir, "show", cs_path)
    assert.equal(0, code, err)
    assert.matches(plan_path .. ' "Sellers"', out, 1, true)
    assert.matches(cs.plan_hash, out, 1, true)
    assert.matches('Suppliers%s+plural_label%s+"Suppliers" %-> "Sellers"', out)
    assert.matches("Assets%s+profiles%s+grant Marketing", out)
    code, out = run(nil, dir, "show", cs_path, "--json")
    assert.equal(0, code)
    local doc = cjson.decode(out)
    assert.equal("zcrm.show", doc.format)
    assert.same({ "Sellers" }, doc.args)
    assert.equal(4, #doc.changes)
    assert.equal("Marketing", doc.changes[4].granted[1].name)
    -- a set zcrm apply would refuse, show refuses too
    files.write(dir .. "/bad.json", '{"format":"zcrm.changes","version":1}')
    code = run(nil, dir, "show", dir .. "/bad.json")
    assert.equal(2, code)
    emu = emulator.start()                       -- for after_each
    assert.is_true(requests > 0)
  end)

  -- fuzz_changes (fuzz/README.md, F6): a JSON object where a list goes read as
  -- an empty list, so its entries were neither checked nor shown.
  it("F6: refuses a set whose changes or profiles are an object, not a list: exit 2, nothing sent #fuzz_finding",
    function()
    plan()
    local function suppliers(t)
      for _, c in ipairs(t.changes) do if c.module == "Suppliers" then return c end end
    end
    local cases = {
      { "changes", function(t) t.changes = { hidden = suppliers(t) } end },
      { "changes[1].before", function(t)
        local c = suppliers(t)
        t.changes = { c }
        c.before.profiles = { a = c.before.profiles[1], b = c.before.profiles[2] }
        c.after.profiles = { a = c.after.profiles[1], b = c.after.profiles[2] }
      end },
    }
    for _, case in ipairs(cases) do
      local t = cjson.decode(files.read(cs_path))
      case[2](t)
      local path = dir .. "/object.json"
      files.write(path, cjson.encode(t))
      for _, cmd in ipairs { { "show", path }, { "apply", path, "--yes" } } do
        -- show is offline: it takes no connection options
        local code, out, err = run(cmd[1] ~= "show" and emu or nil, dir, table.unpack(cmd))
        assert.equal(2, code, cmd[1] .. " " .. case[1] .. ": " .. out .. err)
        assert.matches("INVALID_CHANGES", err, 1, true)
        assert.matches(case[1], err, 1, true)
        assert.matches("must be a list", err, 1, true)
      end
    end
    assert.equal(0, puts(emu))
  end)

  it("re-applied once finished: every module 'already applied', exit 0, no PUT", function()
    plan()
    local code, out, err = run(emu, dir, "apply", cs_path, "--yes")
    assert.equal(0, code, out .. err)
    assert.equal(4, puts(emu))
    code, out, err = run(emu, dir, "apply", cs_path, "--yes")
    assert.equal(0, code, out .. err)
    assert.matches("applied 0, already applied 4, changed since the plan 0", out, 1, true)
    assert.equal(4, puts(emu))
  end)

  it("one drifted module refuses the whole set; --partial applies the others, exit 1", function()
    plan()
    local c = new_client(emu)
    assert(c:update_module("Tickets", { plural_label = "Help Desk" }))  -- behind the plan's back
    local code, out, err = run(emu, dir, "apply", cs_path, "--yes")
    assert.equal(1, code, out .. err)
    assert.matches("Tickets: CHANGED_SINCE_PLAN", err, 1, true)
    assert.matches('plural_label is now "Help Desk"', err, 1, true)
    assert.matches("nothing was sent", err, 1, true)
    assert.equal(1, puts(emu))                  -- the drift alone
    assert.equal("Projects", module_of(emu, "Projects").plural)
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--partial")
    assert.equal(1, code, out .. err)
    assert.matches("applied 3, already applied 0, changed since the plan 1", out, 1, true)
    assert.equal(4, puts(emu))
    assert.equal("Client Projects", module_of(emu, "Projects").plural)
    assert.equal("Help Desk", module_of(emu, "Tickets").plural)
    c:close()
  end)

  it("--out onto an existing file: refused, exit 2, the file untouched; --force replaces it", function()
    files.write(cs_path, "approved by a colleague\n")
    local code, out, err = run(emu, dir, "plan", plan_path, "--out", cs_path)
    assert.equal(2, code, out .. err)
    assert.matches("FILE_EXISTS", err, 1, true)
    assert.equal("approved by a colleague\n", files.read(cs_path))
    code, out, err = run(emu, dir, "plan", plan_path, "--out", cs_path, "--force")
    assert.equal(0, code, out .. err)
    assert.equal("zcrm.changes", cjson.decode(files.read(cs_path)).format)
  end)

  it("--journal and --undo: an audit line per update, and an undo plan that restores the labels", function()
    plan()
    local journal, undo = dir .. "/journal", dir .. "/undo.lua"
    local code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--journal", journal, "--undo", undo)
    assert.equal(0, code, out .. err)
    local lines = {}
    for line in files.read(journal):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
    assert.equal("change_set", lines[1].kind)
    assert.equal(5, #lines)
    for i = 2, 5 do assert.equal("applied", lines[i].status) end
    assert.equal("Client Projects", module_of(emu, "Projects").plural)
    -- the undo file is never replaced
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--undo", undo)
    assert.equal(2, code, out .. err)
    assert.matches("UNDO_FILE_EXISTS", err, 1, true)
    code, out, err = run(emu, dir, "apply", undo, "--yes")
    assert.equal(0, code, out .. err)
    assert.same({ plural = "Projects", singular = "Project", profiles = "Administrator,Contractor,Standard" },
      module_of(emu, "Projects"))
    assert.equal("Tickets", module_of(emu, "Tickets").plural)
    assert.equal("Administrator,Standard", module_of(emu, "Assets").profiles)
  end)

  it("states the credits it will spend; --max-credits refuses over budget; --only and --exclude narrow", function()
    plan()
    local code, out, err = run(emu, dir, "apply", cs_path, "--dry-run")
    assert.equal(0, code, out .. err)
    assert.matches("would apply 4 changes to " .. emu.url .. " (20 credits)", out, 1, true)
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--max-credits", "19")
    assert.equal(2, code, out .. err)
    assert.matches("MAX_CREDITS_EXCEEDED", err, 1, true)
    assert.equal(0, puts(emu))
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--only", "Nope")
    assert.equal(2, code, out .. err)
    assert.matches('"Nope"', err, 1, true)
    assert.equal(0, puts(emu))
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--only", "Projects,Tickets", "--max-credits", "10")
    assert.equal(0, code, out .. err)
    assert.equal(2, puts(emu))
    assert.equal("Suppliers", module_of(emu, "Suppliers").plural)
    code, out, err = run(emu, dir, "apply", cs_path, "--yes", "--exclude", "Suppliers")
    assert.equal(0, code, out .. err)
    assert.matches("applied 1, already applied 2", out, 1, true)
    assert.equal(3, puts(emu))
    assert.equal("Suppliers", module_of(emu, "Suppliers").plural)
    -- a plan narrows the same way, by API name or id
    local id = cjson.decode(files.read(cs_path)).changes[1].id
    code, out, err = run(emu, dir, "apply", plan_path, "--yes", "--only", id)
    assert.equal(0, code, out .. err)
    assert.equal("Partners", module_of(emu, "Suppliers").plural)
    assert.equal(4, puts(emu))
  end)
end)

describe("a change set planned under label_rules = \"openapi\"", function()
  it("records the rule and is read back by it: a 40-character label stays valid", function()
    local emu = emulator.start()
    local c = new_client(emu, { label_rules = "openapi" })
    local label = string.rep("Long Label ", 4):sub(1, 40)
    local cs, err = c:plan { { module = "Projects", plural_label = label } }
    c:close()
    emu:stop()
    assert.is_table(cs, tostring(err))
    assert.equal("openapi", cs.label_rules)
    local back = assert(require("zcrm.plan.changeset").decode(require("zcrm.plan.changeset").encode(cs)))
    assert.equal(label, back.changes[1].body.plural_label)
    cs.label_rules = nil                      -- by the reference page's rule, 40 characters are too many
    local bad, berr = require("zcrm.plan.changeset").decode(require("zcrm.plan.changeset").encode(cs))
    assert.is_nil(bad)
    assert.equal("INVALID_CHANGES", berr.code)
  end)
end)

describe("zcrm apply CHANGES.json, Ctrl-C, then the same command", function()
  local emu, dir
  setup(function()
    emu = emulator.start { "--latency-ms", "200" }
    dir = files.tmpdir()
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  it("finishes the set: exit 0, every module at its after, at most the set's size plus the concurrency PUTs", function()
    local cs = dir .. "/changes.json"
    local env = "ZOHO_ACCESS_TOKEN=emulator-token "
    assert.is_true(os.execute(env .. "bin/zcrm plan examples/plans/relabel.lua --out " .. emulator.quote(cs)
      .. " --api-domain " .. emu.url .. " >/dev/null 2>&1"))
    local set = cjson.decode(files.read(cs))
    local total, concurrency = #set.changes, 2
    local running = cli.start({ "apply", cs, "--yes", "--concurrency", tostring(concurrency) },
      { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = "emulator-token" })
    while puts(emu) < 1 do core.sleep(0.01) end -- an update is in flight: an event, not a time
    os.execute("kill -INT " .. running.pid)
    local code, output, errors = cli.finish(running)
    assert.equal(130, code)
    assert.is_nil(errors:find("traceback", 1, true), errors)
    assert.is_nil(errors:find("interrupted!", 1, true), errors)
    assert.matches("interrupted by Ctrl%-C", errors)
    assert.matches("applied %d+, already applied 0, changed since the plan 0, failed 0, not sent %d+ of " .. total
      .. " changes", output)
    -- the advice is the same command, never a new plan over the reviewed file
    assert.matches("Running the same command again resumes: bin/zcrm apply " .. cs, errors, 1, true)
    assert.is_nil(errors:find("zcrm plan", 1, true), errors)
    assert.is_true(puts(emu) < total, "the run completed before the signal")
    emu:drain()
    local out, err
    code, out, err = run(emu, dir, "apply", cs, "--yes", "--concurrency", tostring(concurrency))
    assert.equal(0, code, out .. err)
    assert.is_true(puts(emu) <= total + concurrency, "PUTs: " .. puts(emu))
    for _, c in ipairs(set.changes) do
      assert.equal(c.after.plural_label, module_of(emu, c.module).plural, c.module)
    end
  end)
end)

describe("client:apply", function()
  local emu
  before_each(function() emu = emulator.start() end)
  after_each(function() emu:stop() end)

  it("compares a plan with the org by default: the second run sends nothing", function()
    local c = new_client(emu)
    local plan = { { module = "Projects", plural_label = "Client Projects" },
                   { create = true, plural_label = "Sellers", singular_label = "Seller", profiles = { { name = "Administrator" } } } }
    local first = assert(c:apply(plan))
    assert.is_true(first.ok, tostring(first.failed[1] and first.failed[1].error))
    assert.equal(2, #first.applied)
    local creates = function() return clients.requests(emu, "POST /crm/v8/settings/modules") end
    assert.equal(1, puts(emu))
    assert.equal(1, creates())
    local second = assert(c:apply(plan))
    assert.is_true(second.ok)
    assert.equal(0, #second.applied)
    assert.equal(1, puts(emu))
    assert.equal(1, creates())
    -- diff = false opts out: the entry is sent as written
    local third = assert(c:apply({ plan[1] }, { diff = false }))
    assert.equal(1, #third.applied)
    assert.equal(2, puts(emu))
    c:close()
  end)

  it("zcrm.apply_orgs applies a change set, per org by {org}", function()
    local dir = files.tmpdir()
    local c = new_client(emu)
    local cs = assert(c:plan { { module = "Projects", plural_label = "Client Projects" } })
    assert(zcrm.changes.write(dir .. "/changes-a.json", cs))
    c:close()
    local orgs = { { name = "a", options = { api_domain = emu.url, access_token = "emulator-token", env = false } } }
    local result, err = zcrm.apply_orgs(orgs, dir .. "/changes-{org}.json")
    assert.is_table(result, tostring(err))
    assert.is_true(result.ok)
    assert.equal(1, #result.orgs[1].report.applied)
    result = assert(zcrm.apply_orgs(orgs, cs))       -- the table itself; now already applied
    assert.is_true(result.ok)
    assert.equal(1, #result.orgs[1].report.already)
    assert.equal(1, puts(emu))
    files.remove_tree(dir)
  end)
end)
