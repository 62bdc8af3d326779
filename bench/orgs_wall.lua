-- Many orgs at once: zcrm.apply_orgs with three orgs, each a
-- separate emulator answering after L ms, each with N updates at concurrency C,
-- against the same run with one org. The orgs run concurrently in one process,
-- so three should take about as long as one: the figure is wall(3) / wall(1),
-- target <= 1.3. Both are measured in this run, alternating, R times each; the
-- medians are compared. Each apply_orgs does what `zcrm apply --orgs` does:
-- check every org (state read, dry run), then apply (N updates, against the state
-- the check read).
--
-- Usage (from the repo root, after `make`): lua5.4 bench/orgs_wall.lua [N] [L_ms] [C] [R]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"
local median = require("bench.support").median

local N = tonumber(arg[1]) or 100
local LATENCY_MS = tonumber(arg[2]) or 100
local C = tonumber(arg[3]) or 10
local R = tonumber(arg[4]) or 3
local ORGS = 3

local emus, orgs = {}, {}
for i = 1, ORGS do
  emus[i] = emulator.start { "--latency-ms", tostring(LATENCY_MS), "--extra-modules", tostring(N) }
  orgs[i] = { name = "org" .. i,
              options = { api_domain = emus[i].url, access_token = "emulator-token", concurrency = C, env = false } }
end

local run_no = 0
-- Each run sets labels no run set before, so every entry is an update.
local function plan(ctx)
  local list = {}
  for i = 1, N do
    list[i] = { module = "Bulk_Module_" .. i, plural_label = string.format("B %s R%d Items %d", ctx.args.org, run_no, i),
                singular_label = string.format("B %s R%d Item %d", ctx.args.org, run_no, i) }
  end
  return list
end

local function times(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = string.format("%.3f", v) end
  return table.concat(s, ", ")
end

local function run(list)
  run_no = run_no + 1
  local t0 = core.now()
  local result = assert(zcrm.apply_orgs(list, plan))
  local wall = core.now() - t0
  for _, o in ipairs(result.orgs) do
    if not (o.report and o.report.ok and #o.report.applied == N) then
      error(string.format("%s: %s", o.name, tostring(o.error or "not every update applied")))
    end
  end
  return wall
end

local one, three = {}, {}
for _ = 1, R do
  one[#one + 1] = run { orgs[1] }
  three[#three + 1] = run(orgs)
end
local in_flight = {}
for i, e in ipairs(emus) do
  in_flight[i] = string.format("%d", math.floor(e:stats().max_in_flight))
  e:stop()
end

local w1, w3 = median(one), median(three)
print(string.format("orgs: %d updates per org, latency %d ms, concurrency %d per org; %d runs each, alternating",
  N, LATENCY_MS, C, R))
print(string.format("orgs: 1 org  %.3f s (median of %s)", w1, times(one)))
print(string.format("orgs: %d orgs %.3f s (median of %s)", ORGS, w3, times(three)))
print(string.format("orgs: ratio %d orgs / 1 org %.2f (target <= 1.30: %s); one after another would be ~%.1f",
  ORGS, w3 / w1, w3 / w1 <= 1.3 and "met" or "MISSED", ORGS))
print(string.format("orgs: server max_in_flight per org %s (cap %d each)", table.concat(in_flight, ", "), C))
os.exit(w3 / w1 <= 1.3 and 0 or 1)
