-- The cost of client:poll(0) when nothing is ready (target: under 2 us),
-- in the two states a host loop meets: an idle client (nothing pending), and
-- a client with 10 transfers in flight that the server has not answered yet
-- (emulator latency 5 s), so that every poll drives libcurl and finds nothing.
-- CPU time from os.clock over batches of calls; the best of 5 batches counts.
--
-- usage: lua5.4 bench/poll_cost.lua [CALLS]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"

local CALLS = tonumber(arg[1]) or 20000

local emu = emulator.start { "--latency-ms", "5000", "--concurrency", "1000", "--extra-modules", "10" }

local function cost(client)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    for _ = 1, CALLS do client:poll(0) end
    best = math.min(best, (os.clock() - t0) / CALLS)
  end
  return best
end

local function new_client()
  return assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", concurrency = 10, env = false })
end

local idle = new_client()
local busy = new_client()
for i = 1, 10 do
  busy:submit("update_module", "Bulk_Module_" .. i, { plural_label = "Poll Items " .. i })
end
busy:poll(0.2) -- connected and sent: from here on nothing happens for 5 s
local t_idle, t_busy = cost(idle), cost(busy)
assert(busy:pending() == 10, "the answers came early")
busy:close()
idle:close()
emu:stop()
local function verdict(t) return t < 2e-6 and "met" or "MISSED" end
print(string.format("poll: poll(0) with nothing ready, idle client: %.2f us (target < 2 us: %s)",
  t_idle * 1e6, verdict(t_idle)))
print(string.format("poll: poll(0) with nothing ready, 10 in flight unanswered: %.2f us (target < 2 us: %s)",
  t_busy * 1e6, verdict(t_busy)))
