-- Reliability under a fault storm (issue 8, item 3): 500 module updates through
-- client:apply with a journal, against an emulator that spoils 20% of the API
-- calls with 500, 503, connection resets, answers slower than the client's
-- timeout, 429 and garbage bodies. Every update must end applied or reported
-- failed with a clear error after bounded retries; the emulator's final state
-- must match the plan for every update reported applied; the report must
-- account for all 500; a rerun with the same journal sends only what failed.
-- (engine_spec.lua has a 40-update storm without slow answers or garbage.)
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"

local N = 500
local MAX_RETRIES = 3

-- The codes each injected fault may end in once retries run out (README, "The
-- error convention"; emulator/README.md, "Script modes").
local EXPECTED_CODES = {
  INTERNAL_ERROR = "api",            -- 500
  SERVICE_UNAVAILABLE = "api",       -- 503
  TOO_MANY_REQUESTS = "limit",       -- 429
  UNEXPECTED_RESPONSE = "transport", -- garbage (200 with a non-JSON body): not retried
  TIMEOUT = "transport",             -- slow (5 s) against a 1 s timeout
  RECV_ERROR = "transport",          -- reset
  SEND_ERROR = "transport",          -- reset
  CONNECTION_FAILED = "transport",   -- reset
}

local function plan_of(tag)
  local plan = {}
  for i = 1, N do
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
    emu = emulator.start { "--fault-rate", "0.2", "--faults", "500,503,reset,slow,429,garbage",
                           "--seed", "8", "--extra-modules", tostring(N), "--concurrency", "50" }
    journal = os.tmpname()
    os.remove(journal)
  end)
  teardown(function()
    os.remove(journal)
    emu:stop()
  end)

  it("accounts for all 500 updates, each applied or failed with a clear error", function()
    local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                     timeout = 1, connect_timeout = 1, max_retries = MAX_RETRIES,
                                     retry_base = 0.01, retry_max_delay = 0.05, concurrency = 10 })
    local plan = plan_of("Storm")
    local results = 0
    local t0 = os.time()
    local report = assert(client:apply(plan, {
      journal = journal,
      on_result = function() results = results + 1 end,
    }))
    local elapsed = os.time() - t0
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
    -- a failed one is either untouched or fully applied (a slow answer the
    -- client gave up on may still have landed), never half
    local by = state_by_api_name(emu)
    for _, a in ipairs(report.applied) do
      local want, got = plan[a.index], by[a.module]
      assert.equal(want.plural_label, got.plural_label)
      assert.equal(want.singular_label, got.singular_label)
    end
    for _, f in ipairs(report.failed) do
      local want, got = plan[f.index], by[f.module]
      local i = f.index
      local untouched = got.plural_label == "Bulk Modules " .. i and got.singular_label == "Bulk Module " .. i
      local applied = got.plural_label == want.plural_label and got.singular_label == want.singular_label
      assert.is_true(untouched or applied, f.module .. " is half-updated")
    end

    -- the journal holds one line per update, agreeing with the report
    local lines = read_journal(journal)
    assert.equal(N, #lines)
    local applied_in_journal = 0
    for _, rec in ipairs(lines) do
      if rec.status == "applied" then applied_in_journal = applied_in_journal + 1 end
    end
    assert.equal(#report.applied, applied_in_journal)
    assert.is_true(elapsed < 60, "the storm took " .. elapsed .. " s")
    local codes = {}
    for _, f in ipairs(report.failed) do codes[f.error.code] = (codes[f.error.code] or 0) + 1 end
    local parts = {}
    for code, n in pairs(codes) do parts[#parts + 1] = code .. " " .. n end
    table.sort(parts)
    io.stderr:write(string.format("\nstorm: %d updates, %d applied, %d failed (%s); %d API requests, %d PUTs; %.1f s\n",
      N, #report.applied, #report.failed, table.concat(parts, ", "), stats.requests.total, put_count(stats),
      report.elapsed))

    -- a rerun with the same journal sends only what failed, and loses nothing
    local before = put_count(emu:stats())
    local again = assert(client:apply(plan, { journal = journal }))
    local sent = put_count(emu:stats()) - before
    assert.equal(#report.applied, #again.skipped)
    for _, s in ipairs(again.skipped) do assert.equal("journal", s.reason) end
    assert.equal(#report.failed, #again.applied + #again.failed)
    assert.is_true(sent >= #report.failed and sent <= #report.failed * (1 + MAX_RETRIES),
      "rerun sent " .. sent .. " PUTs for " .. #report.failed .. " failed updates")
    by = state_by_api_name(emu)
    for _, a in ipairs(again.applied) do
      assert.equal(plan[a.index].plural_label, by[a.module].plural_label)
    end
  end)
end)
