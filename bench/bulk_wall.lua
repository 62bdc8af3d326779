-- Bulk wall time against the ideal: N updates through one client with
-- `concurrency` C against an emulator answering after L ms and refusing more than
-- C calls in flight. The ideal is N * L / C; the figure printed is elapsed / ideal.
--
-- Usage (from the repo root, after `make`): lua5.4 bench/bulk_wall.lua [N] [L_ms] [C]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local support = require "bench.support"

local function name(i) return "Bulk_Module_" .. i end

local emu, N, LATENCY_MS, C = support.bulk_emulator(arg)
local client = support.warm_client(emu, C, name)
local elapsed, failed = support.timed_updates(client, N, name, function(i)
  return { plural_label = "Bench Items " .. i, singular_label = "Bench Item " .. i }
end)
local stats = emu:stats()
emu:stop()

local ideal = N * LATENCY_MS / 1000 / C
print(string.format("bulk: %d updates, latency %d ms, concurrency %d", N, LATENCY_MS, C))
print(string.format("bulk: elapsed %.3f s, ideal %.3f s, ratio %.3f (target <= 1.10)", elapsed, ideal, elapsed / ideal))
print(string.format("bulk: failed %d, 429s %d, server max_in_flight %d",
  failed, stats.responses["429"] or 0, stats.max_in_flight))
os.exit(failed == 0 and 0 or 1)
