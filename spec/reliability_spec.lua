-- Reliability under a fault storm: 500 module updates through
-- client:apply with a journal, against an emulator that spoils 20% of the API
-- calls with 500, 503, connection resets, answers slower than the client's
-- timeout, 429 and garbage bodies. Every update must end applied or reported
-- failed with a clear error after bounded retries; the emulator's final state
-- must match the plan for every update reported applied; the report must
-- account for all 500; a rerun with the state read sends only what the org
-- still lacks (a failed update may have landed: a slow answer given up on).
-- (engine_spec.lua has a 40-update storm without slow answers or garbage.)
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"
local with_emulator = require("spec.support.fixture").with_emulator
local clients = require "spec.support.client"
local files = require "spec.support.files"

local N = 500
local MAX_RETRIES = 3

-- The codes each injected fault may end in once retries run out (README, "The
-- error convention"; emulator/README.md, "Script modes").
local EXPECTED_CODES = {
  INTERNAL_ERROR = "api",            -- 500
  SERVICE_UNAVAILABLE = "api",       -- 503
  TOO_MANY_REQUESTS = "limit",       -- 429
  UNEXPECTED_RESPONSE = "transport", -- garbage (200 with a non-JSON body), still so after retries
  TIMEOUT = "transport",             -- slow (5 s) against a 1 s timeout (4 s under valgrind)
  RECV_ERROR = "transport",          -- reset
  SEND_ERROR = "transport",          -- reset
  CONNECTION_FAILED = "transport",   -- reset
}

local function plan_of(tag, n)
  local plan = {}
  for i = 1, n or N do
    plan[i] = { module = "Bulk_Module_" .. i,
                plural_label = string.format("%s Items %d", tag, i),
                singular_label = string.format("%s Item %d", tag, i) }
  end
  return plan
end

local function state_by_api_name(emu)
  local by = {}
  for _, m in ipairs(emu:state().modules) do by[m.api_name] = m end
  return by
end

local function read_journal(path)
  local items = {}
  for line in io.lines(path) do
    local ok, rec = pcall(require("cjson").decode, line)
    if ok and type(rec) == "table" and rec.kind == "item" then items[#items + 1] = rec end
  end
  return items
end

local function put_count(stats)
  return stats.requests.by_route["PUT /crm/v8/settings/modules/{module}"] or 0
end

describe("fault storm", function()
  local emu, journal

  setup(function()
    -- the server's cap is out of the way: the 429s are the injected ones
    emu = emulator.start { "--fault-rate", "0.2", "--faults", "500,503,reset,slow,429,garbage",
                           "--seed", "8", "--extra-modules", tostring(N), "--concurrency", "200" }
    journal = os.tmpname()
    os.remove(journal)
  end)
  teardown(function()
    os.remove(journal)
    emu:stop()
  end)

  it("accounts for all 500 updates, each applied or failed with a clear error", function()
    -- A slow answer takes 5 s and must time out; an ordinary one must not,
    -- which under valgrind (a 500-module read, gzip) can take over 1 s.
    local timeout = emu.slow and 4 or 1
    local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                     timeout = timeout, connect_timeout = timeout, max_retries = MAX_RETRIES,
                                     retry_base = 0.01, retry_max_delay = 0.05, concurrency = 10 })
    local plan = plan_of("Storm")
    local results = 0
    local report = assert(client:apply(plan, {
      journal = journal,
      on_result = function() results = results + 1 end,
    }))
    local stats = emu:stats()

    -- the report accounts for every entry, exactly once
    assert.equal(N, report.total)
    assert.equal(0, #report.not_sent)
    assert.equal(0, #report.skipped)
    assert.equal(0, #report.invalid)
    assert.is_nil(report.aborted)
    assert.equal(N, #report.applied + #report.failed)
    assert.equal(N, results)
    local seen = {}
    for _, list in ipairs { report.applied, report.failed } do
      for _, r in ipairs(list) do
        assert.is_nil(seen[r.index], "entry " .. r.index .. " reported twice")
        seen[r.index] = true
      end
    end
    for i = 1, N do assert.is_true(seen[i], "entry " .. i .. " not reported") end

    -- faults happened, most updates still went through
    assert.is_true(stats.requests.total > N * 1.1, "the storm injected too few faults: " .. stats.requests.total)
    assert.is_true(#report.applied >= N * 0.9, #report.applied .. " applied")

    -- each failure is a zcrm.error with a code the injected faults explain
    for _, f in ipairs(report.failed) do
      local err = f.error
      assert.is_true(zcrm.is_error(err), tostring(err))
      assert.is_string(EXPECTED_CODES[err.code], "unexpected code " .. tostring(err) .. " for " .. f.module)
      assert.equal(EXPECTED_CODES[err.code], err.kind)
      assert.is_string(err.message)
      assert.matches("^" .. err.code, tostring(err))
    end

    -- bounded retries: never more than 1 + max_retries sends per update
    assert.is_true(put_count(stats) <= N * (1 + MAX_RETRIES), "PUTs: " .. put_count(stats))

    -- the server's state matches the plan for every update reported applied;
    -- a failed one is either untouched or fully applied, never half: an
    -- attempt the client gave up on (slow) lands when its server thread
    -- wakes, maybe after the run, so the state is read once those have
    emu:drain()
    local by = state_by_api_name(emu)
    for _, a in ipairs(report.applied) do
      local want, got = plan[a.index], by[a.module]
      assert.equal(want.plural_label, got.plural_label)
      assert.equal(want.singular_label, got.singular_label)
    end
    local missing = 0   -- failed updates the org still lacks
    for _, f in ipairs(report.failed) do
      local want, got = plan[f.index], by[f.module]
      local i = f.index
      local untouched = got.plural_label == "Bulk Modules " .. i and got.singular_label == "Bulk Module " .. i
      local applied = got.plural_label == want.plural_label and got.singular_label == want.singular_label
      assert.is_true(untouched or applied, f.module .. " is half-updated")
      if untouched then missing = missing + 1 end
    end

    -- the journal holds one line per update, agreeing with the report
    local lines = read_journal(journal)
    assert.equal(N, #lines)
    local applied_in_journal = 0
    for _, rec in ipairs(lines) do
      if rec.status == "applied" then applied_in_journal = applied_in_journal + 1 end
    end
    assert.equal(#report.applied, applied_in_journal)
    local codes = {}
    for _, f in ipairs(report.failed) do codes[f.error.code] = (codes[f.error.code] or 0) + 1 end
    local parts = {}
    for code, n in pairs(codes) do parts[#parts + 1] = code .. " " .. n end
    table.sort(parts)
    io.stderr:write(string.format("\nstorm: %d updates, %d applied, %d failed (%s); %d API requests, %d PUTs; %.1f s\n",
      N, #report.applied, #report.failed, table.concat(parts, ", "), stats.requests.total, put_count(stats),
      report.elapsed))

    -- a rerun reads the org's state and sends exactly what it still lacks,
    -- and loses nothing (the journal is an audit record; the state decides).
    -- Its client retries longer, so that the state read gets through the storm.
    local rerun_retries = 12
    local client2 = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                      timeout = timeout, connect_timeout = timeout, max_retries = rerun_retries,
                                      retry_base = 0.01, retry_max_delay = 0.05, concurrency = 10 })
    local before = put_count(emu:stats())
    local again = assert(client2:apply(plan, { journal = journal, diff = true }))
    local sent = put_count(emu:stats()) - before
    assert.equal(N - missing, #again.skipped)
    assert.equal(missing, #again.applied + #again.failed)
    for _, s in ipairs(again.skipped) do assert.equal("no change", s.reason) end
    assert.is_true(sent >= missing and sent <= missing * (1 + rerun_retries),
      "rerun sent " .. sent .. " PUTs for " .. missing .. " updates the org lacked (" ..
      #report.failed .. " failed)")
    by = state_by_api_name(emu)
    for _, a in ipairs(again.applied) do
      assert.equal(plan[a.index].plural_label, by[a.module].plural_label)
    end
  end)
end)

-- Hostile input: each case ends in an error object with the
-- right kind (or a correct result), with no crash, no request sent for input
-- that is invalid, and bounded memory. zcrm_spec.lua covers update_module
-- against empty, garbage, truncated, wrongtype, html and deep answers;
-- this extends it to the read calls, the token endpoint, non-UTF-8, 10 MB and
-- dripped answers, and to hostile labels, module names and tokens.
-- Server restarts: the server is killed (kill -9, no clean exit) a third of
-- the way through a run and comes back on the same port a second later, with
-- the org it had saved (--state) before answering each update.
describe("a server killed with kill -9 mid-run and restarted", function()
  local RUN, WINDOW, KILL_AT = 300, 4, 100

  -- PUTs per module in an emulator's --verbose log.
  local function puts_by_module(log)
    local n = {}
    for name in log:gmatch("PUT /crm/v8/settings/modules/([%w_]+) %->") do n[name] = (n[name] or 0) + 1 end
    return n
  end

  it("finishes client:apply with every update applied, and sends none that had completed again", function()
    local state = os.tmpname()
    os.remove(state)
    local args = { "--state", state, "--extra-modules", tostring(RUN), "--latency-ms", "20", "--verbose" }
    local first = emulator.start(args)
    local logged = {}
    -- max_retries 3 with delays of at most 0.2 s spans well under the second
    -- the server is away: only retrying refused connections for the call's
    -- `timeout` carries the run across it. 120 s, since under valgrind on a
    -- busy machine the restarted emulator can take half a minute to listen.
    local client = assert(zcrm.new { api_domain = first.url, access_token = "emulator-token", env = false,
                                     concurrency = WINDOW, max_retries = 3, retry_base = 0.05, retry_max_delay = 0.2,
                                     timeout = 120,
                                     logger = function(_, message) logged[#logged + 1] = message end })
    local plan = plan_of("Restart", RUN)
    local completed, done_at_kill, second, first_log = {}, nil, nil, nil
    local report = assert(client:apply(plan, { on_result = function(entry, res)
      if res then completed[#completed + 1] = entry.module end
      if #completed == KILL_AT and not second then
        done_at_kill = {}
        for _, m in ipairs(completed) do done_at_kill[m] = true end
        first_log = first:kill()
        second = emulator.start(args, { port = first.port, delay = 1, wait = false })
      end
    end }))
    assert.truthy(second, "the run ended before the kill")
    second:ready()
    local second_stats, by_name = second:stats(), state_by_api_name(second)
    local second_log = second:kill()
    os.remove(state)

    assert.equal(RUN, #report.applied)
    assert.equal(0, #report.failed)
    assert.equal(0, #report.not_sent)
    for i = 1, RUN do
      assert.equal("Restart Items " .. i, by_name["Bulk_Module_" .. i].plural_label)
    end
    -- nothing completed before the kill went to the restarted server
    local before, after = puts_by_module(first_log), puts_by_module(second_log)
    local again, twice = {}, 0
    for name in pairs(after) do
      if done_at_kill[name] then again[#again + 1] = name end
      if before[name] then twice = twice + 1 end
    end
    table.sort(again)
    assert.same({}, again)
    -- only calls in flight at the kill reached both servers
    assert.is_true(twice <= WINDOW, twice .. " modules were sent to both servers")
    -- and the restarted server changed each module at most once: a call whose
    -- answer the kill lost finds its update already there
    local sent_after = 0
    for _ in pairs(after) do sent_after = sent_after + 1 end
    assert.is_true(second_stats.updates_applied <= sent_after)
    assert.is_true(second_stats.updates_applied >= sent_after - twice)
    -- the run met refused connections while the server was away, and tried again
    local retried = 0
    for _, m in ipairs(logged) do
      if m:find("CONNECTION_FAILED; trying again", 1, true) then retried = retried + 1 end
    end
    assert.is_true(retried > 0, "no refused connection was retried")
    io.stderr:write(string.format("\nrestart: %d updates, killed after %d, %d PUTs before, %d after the restart, "
      .. "%d sent to both, %d refused connections retried; %.1f s\n", RUN, KILL_AT,
      (function() local n = 0; for _, c in pairs(before) do n = n + c end; return n end)(),
      (function() local n = 0; for _, c in pairs(after) do n = n + c end; return n end)(),
      twice, retried, report.elapsed))
  end)
end)

-- A server that goes away for good mid-run (kill -9, nothing listens on its
-- port again): a plan's run and a change set's run stop alike, after three
-- refused connections in a row, and list what they did not send.
describe("a server killed with kill -9 mid-run and not restarted", function()
  local RUN = 10
  local emu

  before_each(function() emu = emulator.start { "--extra-modules", tostring(RUN) } end)
  after_each(function() emu:stop() end)

  -- One call at a time and no retries: the kill comes right after the first
  -- update is applied, and every later call is refused at once.
  local function killed_run(what)
    local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                     concurrency = 1, max_retries = 0 })
    local plan = plan_of("Gone", RUN)
    if what == "a change set" then plan = assert(client:plan(plan)) end
    local report = assert(client:apply(plan, {
      on_result = function(_, res) if res then emu:kill() end end,
    }))
    client:close()
    return report
  end

  for _, what in ipairs { "a plan", "a change set" } do
    it("stops " .. what .. " after three refused connections in a row and lists the rest as not sent", function()
      local report = killed_run(what)
      assert.equal(1, #report.applied)
      assert.equal(3, #report.failed)
      for _, f in ipairs(report.failed) do assert.equal("CONNECTION_FAILED", f.error.code) end
      assert.truthy(zcrm.is_error(report.aborted), "the run did not stop")
      assert.equal("CONNECTION_FAILED", report.aborted.code)
      assert.equal(RUN - 4, #report.not_sent)
      assert.equal("Bulk_Module_5", report.not_sent[1].module)
      assert.is_false(report.ok)
    end)
  end
end)

-- Full disk: the disk that holds the journal or the undo plan fills up.
-- A 2 MiB tmpfs (mount needs root, as `make test` runs here and in CI) with a
-- filler file; removing the filler is "space freed".
describe("a full disk", function()
  local RUN, WINDOW, SIZE_KIB = 300, 4, 2048
  local dir, mounted, emu

  local function sh(cmd) local ok = os.execute(cmd); return ok == true or ok == 0 end
  local function fill(kib) assert(sh(string.format("dd if=/dev/zero of=%s/filler bs=1k count=%d 2>/dev/null", dir, kib))) end
  local function free() os.remove(dir .. "/filler") end
  local new_client = clients.maker { concurrency = WINDOW }

  setup(function()
    dir = files.tmpdir()
    mounted = sh(string.format("mount -t tmpfs -o size=%dk,mode=0700 tmpfs %s 2>/dev/null", SIZE_KIB,
      emulator.quote(dir)))
    emu = emulator.start { "--extra-modules", tostring(RUN), "--latency-ms", "5" }
  end)
  teardown(function()
    emu:stop()
    if mounted then sh("umount " .. emulator.quote(dir)) end
    files.remove_tree(dir)
  end)
  before_each(function()
    emu:reset()
    if mounted then sh("rm -f " .. emulator.quote(dir) .. "/*") end
  end)

  it("stops sending when the journal cannot be written, says why, reports what was sent, and a rerun completes", function()
    if not mounted then pending("needs a tmpfs (mount, as root)") return end
    fill(SIZE_KIB - 16)                        -- 16 KiB left: room for about 80 journal lines
    local journal = dir .. "/run.journal"
    local plan = plan_of("Full", RUN)
    -- without diff: no state line, so the first item lines are what fills the disk
    local report = assert(new_client(emu):apply(plan, { journal = journal, diff = false }))
    local puts = put_count(emu:stats())
    local err = report.aborted
    assert.truthy(zcrm.is_error(err), "the run did not stop")
    assert.equal("io", err.kind)
    assert.equal("JOURNAL_ERROR", err.code)
    assert.truthy(err.message:find(journal, 1, true), err.message)
    assert.truthy(err.message:find("No space left on device", 1, true), err.message)
    assert.equal(journal, err.details.path)
    assert.is_false(report.ok)
    -- what was sent is reported, the rest listed as not sent
    assert.equal(puts, #report.applied + #report.failed)
    assert.equal(RUN, #report.applied + #report.failed + #report.not_sent)
    assert.is_true(#report.not_sent > 0)
    -- nothing more was sent once a line failed: only the calls already in flight
    local journalled = #read_journal(journal)
    assert.is_true(puts <= journalled + WINDOW, puts .. " PUTs for " .. journalled .. " journal lines")

    -- run again once there is room, reading the org's state: only what it lacks is sent
    free()
    local rerun = assert(new_client(emu):apply(plan, { journal = journal, diff = true }))
    assert.is_true(rerun.ok)
    assert.equal(#report.applied, #rerun.skipped)
    assert.equal(RUN - #report.applied, #rerun.applied)
    local by = state_by_api_name(emu)
    for i = 1, RUN do assert.equal("Full Items " .. i, by["Bulk_Module_" .. i].plural_label) end
  end)

  it("sends nothing when the undo plan cannot be written, says why, and a rerun completes", function()
    if not mounted then pending("needs a tmpfs (mount, as root)") return end
    fill(SIZE_KIB)
    local undo = dir .. "/undo.lua"
    local plan = plan_of("Undo", RUN)
    local report, err = new_client(emu):apply(plan, { undo_file = undo })
    assert.is_nil(report)
    assert.equal("UNDO_FILE_ERROR", err.code)
    assert.truthy(err.message:find(undo, 1, true), err.message)
    assert.truthy(err.message:find("No space left on device", 1, true), err.message)
    assert.equal(0, put_count(emu:stats()))

    free()
    local rerun = assert(new_client(emu):apply(plan, { undo_file = undo }))
    assert.is_true(rerun.ok)
    assert.equal(RUN, #rerun.applied)
    assert.equal(undo, rerun.undo_file)
  end)
end)

describe("hostile input", function()
  local emu

  setup(function() emu = emulator.start { "--extra-modules", "5" } end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  local new_client, requests = clients.maker { max_retries = 0, retry_base = 0.01 }, clients.requests

  local function rss_kb()
    for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmRSS:%s+(%d+)")
      if kb then return tonumber(kb) end
    end
  end

  -- Under make asan, freed memory waits in ASan's quarantine (256 MB), so RSS
  -- measures the quarantine, not zcrm; LeakSanitizer checks leaks there.
  local function under_asan()
    local f = io.open("/proc/self/maps")
    local text = f and f:read("a") or ""
    if f then f:close() end
    return text:find("libclang_rt.asan", 1, true) ~= nil
  end

  local function assert_error(err, kind, code)
    assert.is_true(zcrm.is_error(err), "not an error object: " .. tostring(err))
    assert.equal(kind, err.kind, tostring(err))
    if code then assert.equal(code, err.code, tostring(err)) end
    assert.not_matches("[\r\n]", tostring(err))
  end

  describe("labels", function()
    local bad = {
      ["CR"] = "Label\rX", ["LF"] = "Label\nX", ["CRLF header injection"] = "A\r\nX-Evil: 1",
      ["NUL"] = "Label\0X", ["invalid UTF-8 (lone continuation)"] = "Caf\128",
      ["invalid UTF-8 (truncated)"] = "Caf\195", ["invalid UTF-8 (0xFF)"] = "\255\254",
      ["overlong '/'"] = "A\192\175B", ["overlong NUL"] = "A\192\128B",
      ["overlong 3-byte 'A'"] = "\224\129\129", ["UTF-16 surrogate"] = "A\237\160\128",
      ["above U+10FFFF"] = "A\244\144\128\128",
      ["26 code points"] = string.rep("\195\169", 26), ["26 ASCII"] = string.rep("a", 26),
      ["emoji"] = "Deals \240\159\152\128", ["flag emoji"] = "\240\159\135\174\240\159\135\179",
      ["bidi override U+202E"] = "Abc\226\128\174def", ["bidi mark U+200F"] = "Abc\226\128\143",
      ["zero-width space"] = "Ab\226\128\139c", ["zero-width joiner"] = "Ab\226\128\141c",
      ["BOM"] = "\239\187\191Abc", ["only spaces"] = "   ", ["empty"] = "",
      ["ideographic space"] = "A\227\128\128B", ["tab"] = "A\tB",
    }
    for name, label in pairs(bad) do
      it("refuses " .. name .. " before sending anything", function()
        local client = new_client(emu)
        local before = requests(emu)
        for _, key in ipairs { "plural_label", "singular_label" } do
          local res, err = client:update_module("Digital_Marketing", { [key] = label })
          assert.is_nil(res)
          assert_error(err, "validation", "INVALID_DATA")
          assert.equal(key, err.field)
          assert.equal("$.modules[0]." .. key, err.details.json_path)
        end
        assert.equal(before, requests(emu))
      end)
    end

    it("accepts 25 code points of Unicode letters and sends them byte for byte", function()
      local client = new_client(emu)
      local label = string.rep("\195\169", 24) .. "A" -- 24 x e-acute + A: 25 code points, 49 bytes
      assert.truthy(client:update_module("Digital_Marketing", { plural_label = label }))
      local m = assert(client:get_module("Digital_Marketing"))
      assert.equal(label, m.plural_label)
      assert.truthy(client:update_module("Projects", { plural_label = "\233\161\167\229\174\162\231\174\161\231\144\134" }))
    end)
  end)

  describe("module names", function()
    local bad = {
      ["a slash"] = "Leads/../Deals", ["dot-dot"] = "..", ["encoded dot-dot"] = "%2e%2e",
      ["a query"] = "Leads?x=1", ["a fragment"] = "Leads#x", ["a space"] = "Digital Marketing",
      ["10 KB"] = string.rep("A", 10240), ["CR/LF"] = "Leads\r\nX-Evil: 1", ["NUL"] = "Leads\0",
      ["a leading digit"] = "1Leads", ["a leading underscore"] = "_Leads", ["101 characters"] = string.rep("A", 101),
      ["an extension name with a dot"] = "zohosign__ZohoSign.Documents", ["an id of 20 digits"] = "24234880000008340021",
      ["an id above 2^63-1"] = "9223372036854775808", ["an id with a leading zero"] = "0123",
      ["a negative id"] = -5, ["a float"] = 1.5, ["a table"] = {}, ["non-ASCII"] = "L\195\169ads",
    }
    for name, module in pairs(bad) do
      it("refuses " .. name .. " as INVALID_MODULE, sending nothing", function()
        local client = new_client(emu)
        local before = requests(emu)
        local _, err = client:update_module(module, { plural_label = "Fine Label" })
        assert_error(err, "validation", "INVALID_MODULE")
        _, err = client:get_module(module)
        assert_error(err, "validation", "INVALID_MODULE")
        assert.equal(before, requests(emu))
      end)
    end
  end)

  describe("tokens and credentials", function()
    for name, bad in pairs { CR = "1000.abc\rdef", LF = "1000.abc\ndef", CRLF = "1000.abc\r\nX-Evil: 1",
                             NUL = "1000.abc\0def", space = "1000.abc def", DEL = "1000.abc\127",
                             ["non-ASCII"] = "1000.\195\169", ["5000 bytes"] = string.rep("t", 5000) } do
      it("refuses " .. name .. " in every credential, naming no secret", function()
        local c, err = zcrm.new { api_domain = emu.url, access_token = bad, env = false }
        assert.is_nil(c)
        assert_error(err, "config", "INVALID_TOKEN_FORMAT")
        for _, k in ipairs { "client_id", "client_secret", "refresh_token" } do
          local oauth = { client_id = "1000.ID", client_secret = "secret-x", refresh_token = "1000.r.t",
                          accounts_url = emu.url }
          oauth[k] = bad
          c, err = zcrm.new { api_domain = emu.url, oauth = oauth, env = false }
          assert.is_nil(c)
          assert_error(err, "config", "INVALID_TOKEN_FORMAT")
          if #bad > 8 then assert.is_nil(tostring(err):find(bad, 1, true)) end
        end
      end)
    end
  end)

  describe("responses", function()
    -- mode -> { kind, code } expected from each read call (max_retries = 0)
    local cases = {
      empty = { "transport", "UNEXPECTED_RESPONSE" },
      html = { "transport", "UNEXPECTED_RESPONSE" },
      garbage = { "transport", "UNEXPECTED_RESPONSE" },
      wrongtype = { "transport", "UNEXPECTED_RESPONSE" },
      deep = { "transport", "UNEXPECTED_RESPONSE" },
      truncated = { "transport", "UNEXPECTED_RESPONSE" },
      huge = { "transport", "RESPONSE_TOO_LARGE" },
      reset = { "transport" },
      ["status:500"] = { "api", "INTERNAL_ERROR" },
      ["status:503"] = { "api", "SERVICE_UNAVAILABLE" },
    }
    local calls = {
      get_modules = function(c) return c:get_modules() end,
      get_module = function(c) return c:get_module("Digital_Marketing") end,
      get_profiles = function(c) return c:get_profiles() end,
    }
    for mode, want in pairs(cases) do
      for name, call in pairs(calls) do
        it(name .. " turns a '" .. mode .. "' answer into " .. (want[2] or want[1]), function()
          emu:script(mode, 1)
          local res, err = call(new_client(emu))
          assert.is_nil(res)
          assert_error(err, want[1], want[2])
        end)
      end
    end

    it("reads JSON holding invalid UTF-8 without crashing: an error or the bytes as sent", function()
      for name, call in pairs(calls) do
        emu:script("nonutf8", 1)
        local res, err = call(new_client(emu))
        if res == nil then
          assert_error(err, "transport", "UNEXPECTED_RESPONSE")
        else
          assert.is_table(res, name)
        end
      end
      emu:script("nonutf8", 1)
      local res, err = new_client(emu):update_module("Digital_Marketing", { plural_label = "Non Utf" })
      if res == nil then assert_error(err, "transport", "UNEXPECTED_RESPONSE") end
    end)

    it("refuses a 10 MB answer at the default max_response_bytes with bounded memory", function()
      local client = new_client(emu)
      collectgarbage() collectgarbage()
      local lua_before, rss_before = collectgarbage("count"), rss_kb()
      for _ = 1, 3 do
        emu:script("huge", 1)
        local res, err = client:get_modules()
        assert.is_nil(res)
        assert_error(err, "transport", "RESPONSE_TOO_LARGE")
      end
      collectgarbage() collectgarbage()
      local lua_growth = collectgarbage("count") - lua_before
      local rss_growth = rss_kb() - rss_before
      assert.is_true(lua_growth < 1024, string.format("Lua heap grew by %.0f KB", lua_growth))
      -- the 8 MiB limit is checked while receiving; three answers must not pile up
      if not under_asan() then
        assert.is_true(rss_growth < 48 * 1024, string.format("RSS grew by %d KB", rss_growth))
      end
    end)

    it("accepts a 10 MB answer when max_response_bytes allows it", function()
      emu:script("huge", 1)
      -- 65,000 modules of 160 bytes: past the default max_read_items too
      local client = new_client(emu, { max_response_bytes = 16 * 1024 * 1024, max_read_items = 100000 })
      local res, err = client:get_modules()
      -- the body is valid JSON: either its modules, or a clear error if it is not a module list
      if res == nil then assert_error(err, "transport", "UNEXPECTED_RESPONSE") else assert.is_table(res) end
    end)

    it("times out an answer dripped one byte per 50 ms, and the server still applied it", function()
      emu:script("drip", 1)
      local client = new_client(emu, { timeout = 1.5 })
      -- bytes keep coming, so only a limit on the whole transfer ends it before the last one
      local res, err = client:update_module("Digital_Marketing", { plural_label = "Dripped Labels" })
      assert.is_nil(res)
      assert_error(err, "transport", "TIMEOUT")
      assert.is_true(err.retryable)
      local m = assert(new_client(emu):get_module("Digital_Marketing"))
      assert.equal("Dripped Labels", m.plural_label)
    end)

    describe("from the token endpoint", function()
      local function oauth_client()
        return assert(zcrm.new { api_domain = emu.url, env = false, max_retries = 0,
          oauth = { client_id = "emulator-client-id", client_secret = "emulator-client-secret",
                    refresh_token = "emulator-refresh-token", accounts_url = emu.url } })
      end
      for _, mode in ipairs { "empty", "html", "garbage", "wrongtype", "deep", "nonutf8", "truncated" } do
        it("reports a '" .. mode .. "' token answer as an auth error, no API call made", function()
          emu:script(mode, 1, "token")
          local before = emu:stats().requests.by_route["GET /crm/v8/settings/modules/{module}"]
          local res, err = oauth_client():get_module("Digital_Marketing")
          assert.is_nil(res)
          assert_error(err, "auth")
          assert.equal(before, emu:stats().requests.by_route["GET /crm/v8/settings/modules/{module}"])
        end)
      end
    end)
  end)
end)

-- Bugs the fuzz targets found (fuzz/README.md, "Findings"), fixed in 575c9c3;
-- these keep them fixed. Select them with `busted --tags=fuzz_finding`.
describe("fuzz findings #fuzz_finding", function()
  local fx = with_emulator { client = false }
  local emu
  before_each(function() emu = fx.emu end)

  it("F1: a 304 to a read that sent no If-Modified-Since is UNEXPECTED_RESPONSE, not an internal error", function()
    local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                     max_retries = 0 })
    for _, call in ipairs { function() return client:get_module("Digital_Marketing") end,
                            function() return client:get_profiles() end } do
      emu:script("status:304", 1)
      local res, err = call()
      assert.is_nil(res)
      assert.is_true(zcrm.is_error(err))
      assert.equal("UNEXPECTED_RESPONSE", err.code, tostring(err))
      assert.equal("transport", err.kind)
      assert.equal(304, err.status)
    end
  end)

  it("F3: tostring(err) stays one line when the field holds CR or LF", function()
    local _, err = zcrm.validate_update { ["plural\r\nlabel"] = "x" }
    assert.equal("INVALID_DATA", err.code)
    assert.equal("plural\r\nlabel", err.field) -- the exact key, for scripts
    assert.not_matches("[\r\n]", tostring(err))
  end)

  it("F4: core.error raises for a code that is not a string (csrc/API.md)", function()
    assert.has_error(function() zcrm.error { code = 5 } end)
    assert.has_error(function() zcrm.error { code = 5.5 } end)
  end)
end)
