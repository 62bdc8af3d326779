-- client:apply and zcrm.plan: validation of whole plans, dry run, diff, undo,
-- the journal (including kill -9 and resume), callbacks and the report.
local zcrm = require "zcrm"
local core = require "zcrm.core"
local plan = require "zcrm.plan"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local clients = require "spec.support.client"

local CONTRACTOR, SALES = "2423488000000015984", "2423488000000015978"
local new_client, puts = clients.maker { retry_base = 0.01 }, clients.puts

local files = require "spec.support.files"
local slurp, spit = files.read, files.write

local function by_api_name(state)
  local t = {}
  for _, m in ipairs(state.modules) do t[m.api_name] = m end
  return t
end

local function profile_set(m)
  local set = {}
  for _, p in ipairs(m.profiles) do set[p.id] = true end
  return set
end

-- The org without the fields a change always touches (modification stamps).
local function comparable(state)
  local copy = cjson.decode(cjson.encode(state))
  for _, m in ipairs(copy.modules) do
    m.modified_time, m.modified_by = nil, nil
    table.sort(m.profiles, function(a, b) return a.id < b.id end)
  end
  return copy
end

local function indices(faults)
  local list = {}
  for _, f in ipairs(faults) do list[#list + 1] = f.index end
  return list
end

describe("zcrm.plan without a server", function()
  it("reports every invalid entry at once, with its index and the field at fault", function()
    local ok, err = plan.validate {
      { module = "Projects", plural_label = "Client Projects" },
      { module = "Tickets", plural_label = "Tickets!" },                 -- bad character
      { plural_label = "No Module" },                                     -- no module
      { module = "Bad-Name", singular_label = "X" },                      -- malformed API name
      { module = "Assets", plural_lable = "Typo" },                       -- unknown key
      { module = "Trainings", profiles = {} },                            -- empty profiles
      "not a table",
    }
    assert.is_nil(ok)
    assert.is_true(zcrm.is_error(err))
    assert.equal("INVALID_PLAN", err.code)
    assert.equal("validation", err.kind)
    assert.same({ 2, 3, 4, 5, 6, 7 }, indices(err.details.errors))
    local e = err.details.errors
    assert.equal("INVALID_DATA", e[1].error.code)
    assert.equal("plural_label", e[1].error.field)
    assert.equal("INVALID_MODULE", e[2].error.code)
    assert.equal("INVALID_MODULE", e[3].error.code)
    assert.equal("plural_lable", e[4].error.field)
    assert.equal("MINIMUM_DATA_NOT_FOUND", e[5].error.code)
    assert.matches("7 entries", err.message)
    assert.is_string(err.resolution)
  end)

  it("finds a module given twice and a label given twice (ignoring case)", function()
    local ok, err = plan.validate {
      { module = "Projects", plural_label = "Engagements", singular_label = "Engagement" },
      { module = "Tickets", plural_label = "engagements" },
      { module = "Projects", singular_label = "Project Item" },
      { module = "Assets", singular_label = "ENGAGEMENT" },
    }
    assert.is_nil(ok)
    local e = err.details.errors
    assert.same({ 2, 3, 4 }, indices(e))
    assert.equal("DUPLICATE_DATA", e[1].error.code)
    assert.equal("plural_label", e[1].error.field)
    assert.equal(1, e[1].error.details.index)
    assert.equal("module", e[2].error.field)
    assert.equal("singular_label", e[3].error.field)
  end)

  it("accepts a valid plan, and a plan function receives its context", function()
    assert.is_true(plan.validate { { module = 2423488000000834005, plural_label = "Client Projects" } })
    local seen
    assert.is_true(plan.validate(function(ctx)
      seen = ctx
      return { { module = "Projects", plural_label = ctx.args[1] } }
    end, { args = { "Client Projects" }, dir = "/tmp" }))
    assert.equal("/tmp/x.csv", seen.path("x.csv"))
    assert.is_function(seen.read_csv)
    local ok, err = plan.validate(function() error("no CSV here") end)
    assert.is_nil(ok)
    assert.matches("no CSV here", err.message)
  end)

  it("hashes an entry's content, not its identity", function()
    local a = { module = "Projects", plural_label = "A", profiles = { { id = SALES, _delete = zcrm.null } } }
    local b = { profiles = { { _delete = zcrm.null, id = SALES } }, plural_label = "A", module = "Projects" }
    assert.equal(plan.hash(a), plan.hash(b))
    assert.matches("^%x+$", plan.hash(a))
    b.plural_label = "B"
    assert.not_equal(plan.hash(a), plan.hash(b))
  end)

  it("reads CSV with quotes, doubled quotes, CRLF and blank lines", function()
    local path = os.tmpname()
    spit(path, '\239\187\191module,plural_label, note \r\n"Projects","Client, Projects","say ""hi"""\r\n\r\nTickets,,"two\nlines"\n')
    local rows = assert(plan.read_csv(path))
    os.remove(path)
    assert.same({
      { module = "Projects", plural_label = "Client, Projects", note = 'say "hi"' },
      { module = "Tickets", plural_label = "", note = "two\nlines" },
    }, rows)
    assert.is_nil(plan.parse_csv('a,"b\n'))
  end)

  it("builds the example CSV plan", function()
    local list = assert(plan.load("examples/plans/from_csv.lua"))
    assert.equal(5, #list)
    assert.same({ module = "Projects", plural_label = "Engagements", singular_label = "Engagement",
                  profiles = { { name = "Sales" }, { name = "Contractor", _delete = true } } }, list[1])
    assert.same({ module = "Trainings", profiles = { { name = "Support" }, { name = "Sales" } } }, list[4])
    assert.is_true(plan.validate(list))
    assert.is_true(plan.validate(assert(plan.load("examples/plans/relabel.lua"))))
  end)

  it("refuses an unknown or mistyped option, sending nothing (a typo must not send for real)", function()
    local client = assert(zcrm.new { api_domain = "http://127.0.0.1:9", access_token = "t0ken", env = false })
    for name, opts in pairs { dryrun = { dryrun = true }, diff = { diff = "yes" }, concurrency = { concurrency = 0 } } do
      local report, err = client:apply({ { module = "Projects", plural_label = "P" } }, opts)
      assert.is_nil(report)
      assert.equal("INVALID_CONFIG", err.code)
      assert.equal(name, err.field)
    end
    assert.equal(0, (client:credits()))
  end)
end)

describe("client:apply against the emulator", function()
  local emu, client

  setup(function() emu = emulator.start { "--extra-modules", "20" } end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    client = new_client(emu)
  end)
  after_each(function() client:close() end)

  describe("validation", function()
    it("sends nothing when one entry is invalid, and lists every fault", function()
      local before = emu:stats().requests.total
      local report, err = client:apply {
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Tickets", plural_label = string.rep("x", 26) },
        { module = "Assets", profiles = { { id = "12ab" } } },
      }
      assert.is_nil(report)
      assert.equal("INVALID_PLAN", err.code)
      assert.same({ 2, 3 }, indices(err.details.errors))
      assert.equal(before, emu:stats().requests.total)
    end)

    it("with the state read, finds collisions, unknown modules and profiles; leaves standard modules to the server", function()
      local report, err = client:apply({
        { module = "Projects", plural_label = "Shipments" },                        -- another module's label
        { module = "No_Such_Module", plural_label = "Nothing" },
        { module = "Leads", plural_label = "Prospects" },                           -- a standard module: valid
        { module = "Tickets", profiles = { { name = "Interns" } } },                -- no such profile
        { module = "Assets", profiles = { { name = "Administrator", _delete = true },
                                          { name = "Standard", _delete = true } } }, -- no profile left
        { module = "2423488000000834005", singular_label = "Thing" },               -- Projects again, by id
        { module = "Trainings", singular_label = "Course" },                        -- valid
      }, { diff = true })
      assert.is_nil(report)
      local e = err.details.errors
      assert.same({ 1, 2, 4, 5, 6 }, indices(e))
      assert.equal("DUPLICATE_DATA", e[1].error.code)
      assert.equal("Shipments", e[1].error.details.module)
      assert.equal("INVALID_MODULE", e[2].error.code)
      assert.equal("profiles[1].name", e[3].error.field)
      assert.equal("MINIMUM_DATA_NOT_FOUND", e[4].error.code)
      assert.equal("DUPLICATE_DATA", e[5].error.code)
      assert.equal(0, puts(emu))
    end)

    it("with partial = true, sends the valid entries and reports the others", function()
      local report = assert(client:apply({
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Tickets", plural_label = "Bad!" },
        { module = "Assets", singular_label = "Equipment Item" },
      }, { partial = true }))
      assert.same({ 2 }, indices(report.invalid))
      assert.equal(2, #report.applied)
      assert.is_false(report.ok)
      assert.equal(2, puts(emu))
    end)
  end)

  describe("dry run", function()
    it("sends no request at all without diff, and says what it would send", function()
      local before = emu:stats().requests.total
      local report = assert(client:apply({
        { module = "Projects", plural_label = "Client Projects", profiles = { { name = "Sales" } } },
        { module = "Tickets", singular_label = "Support Ticket" },
      }, { dry_run = true, diff = false }))
      assert.equal(before, emu:stats().requests.total)
      assert.is_true(report.dry_run)
      assert.equal(0, #report.applied)
      assert.equal(2, #report.would_send)
      assert.same({ singular_label = "Support Ticket" }, report.would_send[2].update)
      assert.equal(0, report.credits)
    end)

    it("with diff, reads the state but sends no update", function()
      local report = assert(client:apply(assert(plan.load("examples/plans/relabel.lua")),
        { dry_run = true, diff = true }))
      assert.equal(0, puts(emu))
      assert.equal(0, emu:stats().updates_applied)
      assert.equal(13, #report.would_send)
      assert.equal(13, #report.changes)
    end)
  end)

  describe("diff", function()
    it("reports changes field by field and sends only what differs", function()
      local report = assert(client:apply({
        { module = "Projects", plural_label = "Client Projects", singular_label = "Project",
          profiles = { { name = "Sales" }, { name = "Contractor", _delete = true } } },
      }, { diff = true }))
      assert.equal(1, #report.applied)
      local c = report.changes[1]
      assert.same({ old = "Projects", new = "Client Projects" }, c.plural_label)
      assert.is_nil(c.singular_label)                  -- already "Project"
      assert.same({ { id = SALES, name = "Sales" } }, c.granted)
      assert.same({ { id = CONTRACTOR, name = "Contractor" } }, c.revoked)
      local projects = by_api_name(emu:state()).Projects
      assert.equal("Client Projects", projects.plural_label)
      assert.is_true(profile_set(projects)[SALES])
    end)

    it("skips entries that change nothing", function()
      local list = {
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Tickets", singular_label = "Ticket" },                       -- as seeded
        { module = "Assets", profiles = { { name = "Contractor", _delete = true } } }, -- not granted
      }
      local report = assert(client:apply(list, { diff = true }))
      assert.equal(1, #report.applied)
      assert.same({ 2, 3 }, indices(report.skipped))
      assert.equal("no change", report.skipped[1].reason)
      assert.equal(1, puts(emu))
      report = assert(client:apply(list, { diff = true }))
      assert.equal(0, #report.applied)
      assert.equal(3, #report.skipped)
      assert.equal(1, puts(emu))
    end)
  end)

  describe("undo", function()
    it("apply then undo restores the seeded state exactly", function()
      local seeded = comparable(emu:state())
      local undo = os.tmpname()
      os.remove(undo)
      local report = assert(client:apply("examples/plans/relabel.lua", { diff = true, undo_file = undo }))
      assert.equal(13, #report.applied)
      assert.equal(undo, report.undo_file)
      assert.are_not.same(seeded, comparable(emu:state()))
      local undo_plan = assert(plan.load(undo))
      assert.is_true(plan.validate(undo_plan))
      assert.equal(13, #undo_plan)
      local back = assert(client:apply(undo_plan))
      assert.equal(13, #back.applied)
      assert.same(seeded, comparable(emu:state()))
      os.remove(undo)
    end)

    it("never replaces an existing file: nothing is read or sent, the file is untouched", function()
      local undo = os.tmpname()
      spit(undo, "-- the only way back\n")
      local report, err = client:apply("examples/plans/relabel.lua", { diff = true, undo_file = undo })
      assert.is_nil(report)
      assert.equal("UNDO_FILE_EXISTS", err.code)
      assert.matches("already exists", err.message)
      assert.equal("-- the only way back\n", slurp(undo))
      assert.equal(0, emu:stats().requests.total)
      os.remove(undo)
    end)

    it("revokes what was granted and grants back what was revoked", function()
      local undo = os.tmpname()
      os.remove(undo)
      assert(client:apply({ { module = "Assets",
        profiles = { { name = "Contractor" }, { name = "Standard", _delete = true } } } },
        { undo_file = undo }))
      local projects = profile_set(by_api_name(emu:state()).Assets)
      assert.is_true(projects[CONTRACTOR])
      assert.is_nil(projects["2423488000000015975"])
      local text = slurp(undo)
      assert.matches("revoke Contractor", text, 1, true)
      assert.matches("grant Standard", text, 1, true)
      assert(client:apply(undo))
      projects = profile_set(by_api_name(emu:state()).Assets)
      assert.same({ ["2423488000000015972"] = true, ["2423488000000015975"] = true }, projects)
      os.remove(undo)
    end)
  end)

  describe("callbacks and report", function()
    it("calls on_result per item and on_progress up to (n, n), from the apply loop", function()
      local results, progress = {}, {}
      local in_poll = false
      local poll = client.poll
      client.poll = function(...) in_poll = true; local r = poll(...); in_poll = false; return r end
      local list = {}
      for i = 1, 8 do list[i] = { module = "Bulk_Module_" .. i, plural_label = "Renamed " .. i } end
      list[9] = { module = "Visits", plural_label = "Site Visits" } -- the server refuses to rename it
      local report = assert(client:apply(list, {
        concurrency = 3, diff = false, -- sent as written: the server refuses Leads
        on_result = function(entry, res, err)
          assert.is_false(in_poll)
          results[#results + 1] = { entry = entry, res = res, err = err }
        end,
        on_progress = function(done, total) progress[#progress + 1] = { done, total } end,
      }))
      assert.equal(9, #results)
      assert.same({ 0, 9 }, progress[1])
      assert.same({ 9, 9 }, progress[#progress])
      assert.equal(8, #report.applied)
      assert.equal(1, #report.failed)
      local failed = report.failed[1]
      assert.equal(9, failed.index)
      assert.is_true(zcrm.is_error(failed.error))
      assert.equal("INVALID_DATA", failed.error.code)
      assert.is_false(report.ok)
      assert.equal(45, report.credits)   -- 9 updates, 5 credits each
      assert.is_number(report.elapsed)
      for _, r in ipairs(results) do
        if r.entry == list[9] then assert.is_nil(r.res) else assert.equal("SUCCESS", r.res.code) end
      end
      assert.is_true(emu:stats().max_in_flight <= 3)
    end)

    it("keeps running when a callback raises, and reports the callback's error", function()
      local report = assert(client:apply({ { module = "Projects", plural_label = "Client Projects" } },
        { on_result = function() error("boom") end }))
      assert.equal(1, #report.applied)
      assert.matches("boom", report.callback_errors[1])
    end)
  end)

  describe("journal", function()
    local journal
    before_each(function() journal = os.tmpname(); os.remove(journal) end)
    after_each(function() os.remove(journal) end)

    local function bulk(n, tag)
      local list = {}
      for i = 1, n do
        list[i] = { module = "Bulk_Module_" .. i, plural_label = tag .. " Items " .. i, singular_label = tag .. " Item " .. i }
      end
      return list
    end

    it("is closed when the run sends nothing: declined, or a dry run", function()
      local function open_journals()
        local n = 0
        local p = io.popen("ls -l /proc/$PPID/fd 2>/dev/null") -- the shell's parent: this process
        for line in p:lines() do if line:find(journal, 1, true) then n = n + 1 end end
        p:close()
        return n
      end
      collectgarbage("stop")
      for _ = 1, 3 do
        assert(client:apply(bulk(2, "Declined"), { journal = journal, confirm = function() return false end }))
        assert(client:apply(bulk(2, "Dry"), { journal = journal, dry_run = true }))
      end
      local open = open_journals()
      collectgarbage("restart")
      assert.equal(0, open)
    end)

    it("writes one JSON line per completed item, an audit record that never makes a run skip a change", function()
      local list = bulk(10, "Journal")
      list[11] = { module = "Visits", singular_label = "Site Visit" } -- fails on the server
      local report = assert(client:apply(list, { journal = journal, diff = false }))
      assert.equal(10, #report.applied)
      local lines = {}
      for line in slurp(journal):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
      assert.equal(11, #lines)
      for _, rec in ipairs(lines) do
        assert.equal("item", rec.kind)
        assert.matches("^%d+:[%w_]+:%x+$", rec.key)
      end
      -- The org loses a change that the journal lists as applied: a rerun with
      -- the state read sends exactly that one, whatever the journal says.
      assert(client:update_module("Bulk_Module_3", { plural_label = "Reverted Items 3" }))
      local before = puts(emu)
      local again = assert(client:apply({ table.unpack(list, 1, 10) }, { journal = journal, diff = true }))
      assert.same({ 3 }, indices(again.applied))
      assert.equal(9, #again.skipped)
      assert.equal("no change", again.skipped[1].reason)
      assert.equal(before + 1, puts(emu))
      assert.equal("Journal Items 3", by_api_name(emu:state()).Bulk_Module_3.plural_label)
      -- Without the state, nothing is skipped: every entry is sent again.
      local third = assert(client:apply(list, { journal = journal, diff = false }))
      assert.equal(0, #third.skipped)
      assert.equal(10, #third.applied)
      assert.equal(1, #third.failed)
      assert.equal(before + 1 + 11, puts(emu))
    end)

    it("survives a torn last line, and sends only what changed when diffing", function()
      local list = bulk(3, "Torn")
      assert(client:apply(list, { journal = journal }))
      local f = assert(io.open(journal, "ab"))
      f:write('{"kind":"item","key":"3:Bulk_Mod') -- a kill in the middle of a write
      f:close()
      list[2].plural_label = "Changed Items 2"
      local report = assert(client:apply(list, { journal = journal, diff = true }))
      assert.same({ 2 }, indices(report.applied))
      assert.equal(2, #report.skipped)
      for line in slurp(journal):gmatch("[^\n]+") do
        if not line:match("Bulk_Mod$") then assert.is_table(cjson.decode(line)) end
      end
    end)

    it("on resume, writes the undo plan from the state recorded before the first run", function()
      local undo1, undo2 = os.tmpname(), os.tmpname()
      os.remove(undo1)
      os.remove(undo2) -- an undo plan is never written over an existing file
      local list = bulk(4, "Resume")
      assert(client:apply({ list[1], list[2] }, { journal = journal, undo_file = undo1 }))
      -- The same plan, resumed: entries 1-2 are done, the org is half changed.
      local report = assert(client:apply(list, { journal = journal, undo_file = undo2, diff = true }))
      assert.equal(2, #report.applied)
      local undo = assert(plan.load(undo2))
      assert.equal(4, #undo)
      assert.equal("Bulk Modules 1", undo[1].plural_label)
      assert(client:apply(undo))
      assert.equal("Bulk Modules 1", by_api_name(emu:state()).Bulk_Module_1.plural_label)
      os.remove(undo1)
      os.remove(undo2)
    end)
  end)
end)

describe("a journalled run killed with SIGKILL", function()
  local N, KILLS, CONCURRENCY = 300, 5, 4
  local KILL_AFTER = { 3, 17, 1, 9, 25 }   -- updates each killed run gets to send first
  local emu, dir

  setup(function()
    emu = emulator.start { "--latency-ms", "100", "--extra-modules", tostring(N) }
    dir = files.tmpdir()
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  local function write_plan(path)
    local lines = { "local t = {}", "for i = 1, " .. N .. " do",
      "  t[i] = { module = 'Bulk_Module_' .. i, plural_label = 'Killed Bulk ' .. i,",
      "           singular_label = 'Killed Item ' .. i, profiles = { { name = 'Sales' } } }",
      "end", "return t" }
    spit(path, table.concat(lines, "\n") .. "\n")
  end

  local function command(plan_path, journal)
    return string.format("ZOHO_ACCESS_TOKEN=emulator-token exec bin/zcrm apply %s --journal %s --concurrency %d "
      .. "--api-domain %s --json --yes",
      emulator.quote(plan_path), emulator.quote(journal), CONCURRENCY, emu.url)
  end

  -- A killed child stays a zombie until init reaps it, which can take a while
  -- in containers: a zombie runs no more code, so it counts as dead.
  local function alive(pid)
    local stat = slurp("/proc/" .. pid .. "/stat")
    if stat then return stat:match("^%d+ %b() (%a)") ~= "Z" end
    return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
  end

  local function applied_lines(journal)
    local n = 0
    for line in (slurp(journal) or ""):gmatch("[^\n]+") do
      if line:find('"status":"applied"', 1, true) then n = n + 1 end
    end
    return n
  end

  it("resumes to the planned state, sending at most kills x concurrency twice", function()
    local plan_path, journal = dir .. "/bulk.lua", dir .. "/bulk.journal"
    write_plan(plan_path)
    local killed_mid_run = 0
    for k = 1, KILLS do
      local sent_before = puts(emu)
      local p = assert(io.popen(command(plan_path, journal) .. " >/dev/null 2>&1 & echo $!"))
      local pid = assert(tonumber(p:read("l")), "no pid")
      p:close()
      -- The run reads the org's state first: the kill comes once the server
      -- has seen the run's KILL_AFTER[k]-th update (an event, not a time since
      -- its start). At 100 ms an answer, a slow poll (valgrind) lets the
      -- child send a few more before the kill, not the whole plan.
      local hang_guard = os.time() + 120
      while puts(emu) < sent_before + KILL_AFTER[k] and alive(pid) and os.time() < hang_guard do
        core.sleep(0.005)
      end
      if alive(pid) then killed_mid_run = killed_mid_run + 1 end
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      while alive(pid) do core.sleep(0.01) end
      assert.is_true(applied_lines(journal) < N, "run " .. k .. " completed before its kill")
    end
    assert.equal(KILLS, killed_mid_run)
    local done_before = applied_lines(journal)
    assert.is_true(done_before > 0, "no progress before the kills")

    local p = assert(io.popen(command(plan_path, journal) .. " 2>&1"))
    local final
    for line in p:lines() do
      local ev = cjson.decode(line)
      if ev.event == "report" then final = ev end
    end
    local _, _, code = p:close()
    assert.equal(0, code)
    assert.equal(N, final.skipped + final.applied)
    -- what the journal lists, and what landed while a kill cut its line, is
    -- found in the org's state and skipped
    assert.is_true(final.skipped >= done_before)
    assert.equal(done_before + final.applied, applied_lines(journal))

    local mods = by_api_name(emu:state())
    for i = 1, N do
      local m = mods["Bulk_Module_" .. i]
      assert.equal("Killed Bulk " .. i, m.plural_label)
      assert.equal("Killed Item " .. i, m.singular_label)
      assert.is_true(profile_set(m)[SALES])
    end
    local sent = puts(emu)
    assert.is_true(sent >= N)
    assert.is_true(sent <= N + KILLS * CONCURRENCY,
      string.format("%d PUTs for %d items and %d kills at concurrency %d", sent, N, KILLS, CONCURRENCY))
  end)
end)
