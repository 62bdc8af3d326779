-- Event-loop hosts: what a host pays to wait, to poll and to ask.
--
--   a. CPU time of a process that waits on 10 slow updates (emulator latency
--      2 s) through zcrm.luv, against the same wait in a 60 Hz poll(0) loop
--      (the only choice a host had before pollfd()). From the rusage helper
--      (whole process) and from inside (only the wait).
--   b. The cost of one client:poll(0) with 10 in flight and 10,000 queued,
--      against 10 in flight and 100 queued.
--   c. The cost of client:pending() with 10,000 pending against 100.
--   d. Wall time of 200 updates (emulator latency 50 ms, 10 in flight) driven
--      from uv.run() through zcrm.luv, against the ideal 200 x 50 ms / 10.
--   b and c: both clients live in one process (one heap), and their rounds
--   alternate; the best of 15 rounds of each counts.
--
-- Usage (from the repo root, after `make`; bench/run.sh builds the rusage
-- helper): lua5.4 bench/event_loop.lua
-- The child modes (--wait luv|tick URL) are what part a runs.
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local core = require "zcrm.core"

local SLOW, N_SLOW = 2000, 10

local function cpu()
  local uv = require "luv"
  local r = uv.getrusage()
  return r.utime.sec + r.utime.usec / 1e6 + r.stime.sec + r.stime.usec / 1e6
end

local function new_client(url, conc)
  return assert(zcrm.new { api_domain = url, access_token = "emulator-token", concurrency = conc or 10, env = false })
end

local function submit_updates(client, n, name)
  local reqs = {}
  for i = 1, n do
    reqs[i] = client:submit("update_module", name or ("Bulk_Module_" .. i),
      { plural_label = "Loop Items " .. i, singular_label = "Loop Item " .. i })
  end
  return reqs
end

-- {==== a. child: wait on N_SLOW slow updates, print "cpu_during_wait ok"

if arg[1] == "--wait" then
  local mode, url = arg[2], arg[3]
  local client = new_client(url)
  local uv = require "luv"
  local reqs = submit_updates(client, N_SLOW)
  local c0 = cpu()
  if mode == "luv" then
    local h = require("zcrm.luv").attach(client)
    uv.run()
    h:detach()
  else -- a game loop's tick: poll(0) every 16 ms
    while client:pending() > 0 do
      client:poll(0)
      core.sleep(1 / 60)
    end
  end
  local used = cpu() - c0
  local ok = 0
  for _, r in ipairs(reqs) do if r:result() then ok = ok + 1 end end
  print(string.format("%.6f %d", used, ok))
  os.exit(ok == N_SLOW and 0 or 1)
end

-- }====

local emulator = require "spec.support.emulator"
local support = require "bench.support"

local function line(fmt, ...) print(string.format("loop: " .. fmt, ...)) end

-- {==== a.

do
  local emu = emulator.start { "--latency-ms", tostring(SLOW), "--extra-modules", tostring(N_SLOW) }
  local tmp = os.tmpname()
  line("a. %d updates, emulator latency %d ms: CPU of the waiting process (user+sys), median of 3", N_SLOW, SLOW)
  local res = {}
  for _, mode in ipairs { "luv", "tick" } do
    local whole, wait, wall = {}, {}, {}
    for k = 1, 3 do
      local r = support.measure("bench/.build/rusage", "lua5.4 bench/event_loop.lua --wait " .. mode .. " " .. emu.url,
        tmp, mode .. " wait")
      local f = assert(io.open(tmp .. ".out", "rb"))
      local during = tonumber(f:read("a"):match("^(%S+)"))
      f:close()
      whole[k], wait[k], wall[k] = r.cpu, during, r.wall
    end
    res[mode] = { whole = support.median(whole), wait = support.median(wait), wall = support.median(wall) }
  end
  os.remove(tmp); os.remove(tmp .. ".out")
  line("   %-34s %10s %14s %9s", "host", "process s", "during wait ms", "wall s")
  line("   %-34s %10.3f %14.2f %9.2f", "zcrm.luv (pollfd + timer)", res.luv.whole, res.luv.wait * 1000, res.luv.wall)
  line("   %-34s %10.3f %14.2f %9.2f", "60 Hz loop calling poll(0)", res.tick.whole, res.tick.wait * 1000, res.tick.wall)
  line("   the luv wait costs %.2f ms of CPU over %.1f s (%.1f%% of the poll(0) loop's)",
    res.luv.wait * 1000, res.luv.wall, res.luv.wait / res.tick.wait * 100)
  emu:stop()
end

-- }====

-- {==== b. and c.

do
  -- 5 s latency: the 10 in flight stay in flight while we measure.
  local emu = emulator.start { "--latency-ms", "5000", "--extra-modules", "10" }
  local function setup(queued)
    local client = new_client(emu.url, 10)
    submit_updates(client, 10 + queued, "Bulk_Module_1")
    for _ = 1, 20 do client:poll(0.01) end -- the 10 transfers are connected and sent
    assert(require("zcrm.client").private(client).engine.multi:running() == 10 and client:queued() == queued)
    return client
  end

  -- Time per call of fn_a and fn_b, the best of 15 rounds (the least
  -- disturbed by the shared machine), alternated, each side first in turn.
  local function per_call(fn_a, fn_b, calls)
    local ra, rb = {}, {}
    for _ = 1, calls do fn_a(); fn_b() end -- warm-up, not counted
    for k = 1, 15 do
      local a, b = { fn_a, ra }, { fn_b, rb }
      for _, side in ipairs(k % 2 == 1 and { a, b } or { b, a }) do
        local fn, t0 = side[1], core.now()
        for _ = 1, calls do fn() end
        side[2][k] = (core.now() - t0) / calls
      end
    end
    return math.min(table.unpack(ra)), math.min(table.unpack(rb))
  end

  local small, big = setup(100), setup(10000)
  local p_small, p_big = per_call(function() small:poll(0) end, function() big:poll(0) end, 2000)
  line("b. client:poll(0), 10 in flight, best of 15 alternated rounds of 2000 calls")
  line("   100 queued      %8.2f us/call", p_small * 1e6)
  line("   10,000 queued   %8.2f us/call", p_big * 1e6)
  line("   ratio 10,000/100 queued %.2f (target: about 1, independent of the queue)", p_big / p_small)
  local n_small, n_big = small:pending(), big:pending()
  local q_small, q_big = per_call(function() return small:pending() end, function() return big:pending() end, 300000)
  line("c. client:pending(), best of 15 alternated rounds of 300,000 calls")
  line("   %6d pending   %8.1f ns/call", n_small, q_small * 1e9)
  line("   %6d pending   %8.1f ns/call", n_big, q_big * 1e9)
  line("   ratio %.2f (constant time: about 1)", q_big / q_small)
  small:close()
  big:close()
  emu:stop()
end

-- }====

-- {==== d.

do
  local uv, zluv = require "luv", require "zcrm.luv"
  local N, LATENCY_MS, CAP = 200, 50, 10
  local emu = emulator.start { "--latency-ms", tostring(LATENCY_MS), "--extra-modules", tostring(N) }
  local walls, failed = {}, 0
  for k = 1, 3 do
    local client = new_client(emu.url, CAP)
    local handle = zluv.attach(client)
    local t0 = uv.hrtime()
    for _, r in ipairs(submit_updates(client, N)) do
      r:on_done(function(res) if not (res and res.code == "SUCCESS") then failed = failed + 1 end end)
    end
    uv.run()
    walls[k] = (uv.hrtime() - t0) / 1e9
    handle:detach()
    client:close()
  end
  local ideal, wall = N * LATENCY_MS / 1000 / CAP, support.median(walls)
  line("d. %d updates from uv.run() through zcrm.luv, latency %d ms, %d in flight, median of 3", N, LATENCY_MS, CAP)
  line("   wall %.3f s, ideal %.3f s: ratio %.3f (target: at most 1.15), %d failed", wall, ideal, wall / ideal, failed)
  emu:stop()
end

-- }====
