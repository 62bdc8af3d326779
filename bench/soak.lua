-- make soak: 100,000 module updates through client:submit
-- and client:poll against the emulator with 1% of the API calls spoiled
-- (--fault-rate 0.01, its default fault list: 500, 503, reset, slow, 429,
-- garbage). Prints its figures and exits non-zero unless all three hold:
--   1. RSS after 100,000 updates is within 10% of RSS after 20,000;
--   2. every update came back once, applied or with a zcrm.error;
--   3. the emulator applied no update twice beyond the retries of calls whose
--      answer was lost (a slow answer the client's 2 s timeout gave up on:
--      the emulator applies it after 5 s anyway).
-- Updates go to MODULES modules in rounds (round r labels module m
-- "Soak r Items m"), so each update is a real change; a round starts when the
-- one before it is drained, and at the end each module must hold the last
-- round's labels. A round of 20,000 takes far longer than the 5 s a slow
-- answer sleeps: with small rounds, a call the client gave up on can land
-- after the next round's update of its module (no client can stop that).
--
-- usage: lua5.4 bench/soak.lua [N] [MODULES]   (from the repository root)
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"

local N = math.tointeger(tonumber(arg[1] or "100000"))
local MODULES = math.tointeger(tonumber(arg[2] or "20000"))
local EARLY = N // 5                      -- the first RSS sample: after 20,000 of 100,000
local CONCURRENCY, TIMEOUT, MAX_RETRIES = 10, 2, 3
assert(N and MODULES and N % MODULES == 0 and EARLY % MODULES == 0,
  "usage: lua5.4 bench/soak.lua [N] [MODULES], N and N/5 multiples of MODULES")

local function rss_kib()
  collectgarbage("collect")
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

local emu = emulator.start { "--fault-rate", "0.01", "--seed", "16", "--extra-modules", tostring(MODULES),
                             "--concurrency", "40" }

-- Client retries, by the code of the failure retried; the log line is the
-- client's own record of each one (lua/zcrm/http.lua).
local retries, retried = {}, 0
local function logger(_, message)
  local code = message:match("^%u+ %S+: ([%u_]+); retry")
    or message:match("^%u+ %S+: ([%u_]+); trying again")
  if code then
    retries[code] = (retries[code] or 0) + 1
    retried = retried + 1
  end
end

local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                 concurrency = CONCURRENCY, timeout = TIMEOUT, connect_timeout = TIMEOUT,
                                 max_retries = MAX_RETRIES, retry_base = 0.01, retry_max_delay = 0.1,
                                 logger = logger })

local ok, failed, odd, answers = 0, {}, 0, 0
local function on_done(res, err)
  answers = answers + 1
  if res and res.code == "SUCCESS" then
    ok = ok + 1
  elseif not res and zcrm.is_error(err) then
    failed[err.code] = (failed[err.code] or 0) + 1
  else
    odd = odd + 1 -- neither a success nor a zcrm.error
  end
end

local t0 = core.now()
local rss_early, rss_end, heap_early
local sent = 0
for round = 1, N // MODULES do
  for m = 1, MODULES do
    while sent - answers >= 2 * CONCURRENCY do client:poll(0.05) end
    sent = sent + 1
    client:submit("update_module", "Bulk_Module_" .. m, {
      plural_label = string.format("Soak %d Items %d", round, m),
      singular_label = string.format("Soak %d Item %d", round, m),
    }):on_done(on_done)
  end
  -- the round is drained before the next one touches the same modules
  while answers < sent do client:poll(0.05) end
  if sent == EARLY then rss_early, heap_early = rss_kib(), collectgarbage("count") end
  io.stderr:write(string.format("soak: %d updates, %.0f s, RSS %d KiB\n", sent, core.now() - t0, rss_kib()))
end
rss_end = rss_kib()
local heap_end = collectgarbage("count")
local elapsed = core.now() - t0

-- Answers the client gave up on may still be asleep in the emulator (slow
-- faults apply after 5 s): wait for it to hold none, then read its figures.
local stats = emu:stats()
while stats.in_flight > 0 do
  core.sleep(0.2)
  stats = emu:stats()
end
local state = emu:state()
emu:stop()

local wrong = 0
local last = N // MODULES
for _, m in ipairs(state.modules) do
  local i = m.api_name:match("^Bulk_Module_(%d+)$")
  if i and m.plural_label ~= string.format("Soak %d Items %s", last, i) then wrong = wrong + 1 end
end

local puts = stats.requests.by_route["PUT /crm/v8/settings/modules/{module}"] or 0
-- A "reset" fault closes the connection with no answer (not counted in
-- responses); on a reused connection libcurl sends the request again itself.
local answered = 0
for _, n in pairs(stats.responses) do answered = answered + n end
local hangups = stats.requests.total - answered
local nfailed = 0
for _, n in pairs(failed) do nfailed = nfailed + n end
-- Every successful PUT the emulator carried out counts in updates_applied,
-- the same labels again included: beyond one per update, each is a repeat.
local repeats = stats.updates_applied - ok
local lost = retries.TIMEOUT or 0
local growth = (rss_end - rss_early) / rss_early

local function list(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = k .. " " .. v end
  table.sort(parts)
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

print(string.format("soak: %d updates in %.0f s (%.0f/s), concurrency %d, timeout %d s, max_retries %d",
  N, elapsed, N / elapsed, CONCURRENCY, TIMEOUT, MAX_RETRIES))
print(string.format("soak: RSS %d KiB after %d, %d KiB after %d: %+.1f%% (target within 10%%); Lua heap %.0f KiB, %.0f KiB",
  rss_early, EARLY, rss_end, N, growth * 100, heap_early, heap_end))
print(string.format("soak: %d answers for %d updates: %d applied, %d failed (%s), %d neither",
  answers, N, ok, nfailed, list(failed), odd))
print(string.format("soak: emulator: %d API requests, %d PUTs: %d updates, %d client retries (%s), "
  .. "%d hang-ups without an answer", stats.requests.total, puts, N, retried, list(retries), hangups))
print(string.format("soak: emulator applied %d PUTs for %d applied updates: %d repeats, %d answers lost to the timeout; "
  .. "%d modules not at the last round's labels", stats.updates_applied, ok, repeats, lost, wrong))

local good = true
local function check(cond, what)
  if not cond then print("soak: FAILED: " .. what); good = false end
end
check(math.abs(growth) <= 0.10, "RSS after " .. N .. " is not within 10% of RSS after " .. EARLY)
check(answers == N and odd == 0 and ok + nfailed == N, "not every update came back applied or with an error")
check(repeats >= 0 and repeats <= lost, "the emulator applied updates twice beyond the lost answers' retries")
check(wrong == 0 or nfailed > 0, "modules left at an older round's labels")
check(puts == stats.requests.total and puts <= N + retried + hangups,
  "the emulator saw PUTs beyond the updates, the client's retries and libcurl's resends after a hang-up")
if good then print("soak: all targets met") end
os.exit(good and 0 or 1)
