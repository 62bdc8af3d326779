-- Where figure 4's memory goes: the Lua heap (collectgarbage("count")) of one
-- client:apply of N updates, at each stage, in two runs: one as zcrm runs
-- (the peak includes garbage not yet collected), one with a full collection
-- at each stage (what is live). Figures are KiB, and bytes per entry.
--
-- usage: lua5.4 bench/memory_profile.lua URL N
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local url, N = arg[1], tonumber(arg[2]) or 10000
local build = dofile("bench/plans/n_updates.lua")

local function kib() return collectgarbage("count") end

local function run(forced)
  collectgarbage("collect")
  local client = assert(zcrm.new { api_domain = url, access_token = "emulator-token", env = false })
  local function sample() if forced then collectgarbage("collect") end return kib() end
  local s = { start = sample() }
  local plan = build { args = { tostring(N) } }
  s.plan = sample()
  local peak = 0
  local report = assert(client:apply(plan, {
    on_plan = function() s.checked = sample() end,
    on_progress = function(done, total)
      if not forced or done % 500 == 0 then
        local k = sample()
        if k > peak then peak = k end
      end
      if done == total then s.sent = sample() end
    end,
  }))
  assert(#report.applied == N)
  s.peak = peak
  s.after = sample()
  plan = nil -- luacheck: ignore 311 (dropped so that the collector can free it)
  collectgarbage("collect")
  s.report_only = kib()
  client:close()
  return s, report
end

local natural = run(false)
local live = run(true)
local function row(name, what, base)
  print(string.format("memory profile: %-44s natural %8.0f KiB   live %8.0f KiB  (live %5.0f bytes/entry)", name,
    natural[what], live[what], (live[what] - live[base]) * 1024 / N))
end
print(string.format("memory profile: client:apply of %d updates, Lua heap (collectgarbage count)", N))
row("client created", "start", "start")
row("+ the plan list built", "plan", "start")
row("+ every entry checked (on_plan)", "checked", "start")
row("peak while sending", "peak", "start")
row("all sent", "sent", "start")
row("apply returned (report held)", "after", "start")
row("report alone (plan dropped)", "report_only", "start")
