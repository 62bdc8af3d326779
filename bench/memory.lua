-- Figure 4: memory against plan size. Peak RSS (wait4's ru_maxrss, through
-- bench/.build/rusage) of `bin/zcrm apply bench/plans/n_updates.lua N --no-diff --yes` for N =
-- 100, 1,000 and 10,000 against an emulator with --extra-modules 10000,
-- latency 0; stdout (one line per update) goes to /dev/null. Each size runs
-- ROUNDS times; the median counts. Target: RSS(10,000) / RSS(100) <= 1.5.
-- Then bench/memory_profile.lua says where the Lua heap goes at 10,000.
--
-- usage: lua5.4 bench/memory.lua [ROUNDS]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local emulator = require "spec.support.emulator"
local support = require "bench.support"
local quote = emulator.quote

local ROUNDS = tonumber(arg[1]) or 3
local SIZES = { 100, 1000, 10000 }
local RUSAGE = "bench/.build/rusage"

local median = support.median

local emu = emulator.start { "--latency-ms", "0", "--concurrency", "1000", "--credits", "100000000",
                             "--extra-modules", "10000" }
local tmp = os.tmpname()

local rss, cpu = {}, {}
for _, n in ipairs(SIZES) do
  rss[n], cpu[n] = {}, {}
  for _ = 1, ROUNDS do
    emu:reset()
    -- --no-diff: the figure is the apply itself, as before reading the state became
    -- the default; --yes: there is no terminal to ask on.
    local r = support.measure(RUSAGE, "bin/zcrm apply bench/plans/n_updates.lua " .. n .. " --no-diff --yes", tmp,
      string.format("zcrm apply of %d updates", n),
      string.format("ZOHO_API_DOMAIN=%s ZOHO_ACCESS_TOKEN=emulator-token", quote(emu.url)))
    local puts = emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"] or 0
    assert(puts == n, string.format("%d updates: the emulator saw %d PUTs", n, puts))
    table.insert(rss[n], r.rss)
    table.insert(cpu[n], r.cpu)
  end
end
os.remove(tmp .. ".out"); os.remove(tmp)

print(string.format("memory: peak RSS of bin/zcrm apply, N updates (median of %d runs)", ROUNDS))
local base = median(rss[SIZES[1]])
for _, n in ipairs(SIZES) do
  local m = median(rss[n])
  print(string.format("memory: %6d updates  %7.1f MB  x%.2f of %d  (%+.0f bytes/update over %d; CPU %.2f s)", n, m / 1024,
    m / base, SIZES[1], (m - base) * 1024 / (n - SIZES[1] > 0 and n - SIZES[1] or 1), SIZES[1], median(cpu[n])))
end
local ratio = median(rss[10000]) / base
print(string.format("memory: ratio 10,000 / 100 = %.2f (target <= 1.5: %s)", ratio, ratio <= 1.5 and "met" or "MISSED"))

-- Where it goes: the Lua heap of client:apply at each stage.
local p = io.popen("lua5.4 bench/memory_profile.lua " .. quote(emu.url) .. " 10000 2>&1")
io.write(p:read("a"))
p:close()
emu:stop()
