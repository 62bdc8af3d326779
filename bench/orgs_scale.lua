-- Figure 10: many orgs at scale (issue 25). `bin/zcrm apply PLAN --orgs
-- ORGS.lua --yes` with 50 orgs, each its own emulator answering after L ms and
-- seeded with N extra modules, each org N label updates at concurrency C,
-- against the same command with one of those orgs. Each command runs as a
-- child of bench/.build/rusage, which gives its wall time and peak RSS
-- (wait4's ru_maxrss; the emulators are other processes and not counted).
-- The two alternate, R times each; the medians are compared. Targets:
-- wall(50 orgs) / wall(1 org) <= 1.3, peak RSS of the 50-org run <= 150 MB.
-- Each command does what a user's does: read every org's state, check, show
-- the changes (stdout to a file), apply, one summary line per org.
--
-- Usage (from the repo root, after `make` and bench/run.sh's set-up, which
-- builds bench/.build/rusage): lua5.4 bench/orgs_scale.lua [ORGS] [N] [L_ms] [C] [R]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local emulator = require "spec.support.emulator"
local support = require "bench.support"
local files = require "spec.support.files"
local quote = emulator.quote
local median = support.median

local ORGS = tonumber(arg[1]) or 50
local N = tonumber(arg[2]) or 100
local LATENCY_MS = tonumber(arg[3]) or 100
local C = tonumber(arg[4]) or 10
local R = tonumber(arg[5]) or 3
local RUSAGE = "bench/.build/rusage"
local NCPU = (function()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and p:read("l")
  if p then p:close() end
  return n or "?"
end)()
local WALL_TARGET, RSS_TARGET_MB = 1.3, 150

assert(io.open(RUSAGE, "rb"), RUSAGE .. " missing: run sh bench/run.sh (or cc -O2 -o " .. RUSAGE .. " bench/rusage.c)")
  :close()

local dir = files.tmpdir()
local emus = {}
local function stop_all()
  for _, e in ipairs(emus) do e:stop() end
  files.remove_tree(dir)
end

local ok, err = pcall(function()
  for i = 1, ORGS do
    emus[i] = emulator.start { "--latency-ms", tostring(LATENCY_MS), "--extra-modules", tostring(N) }
  end
end)
if not ok then
  stop_all()
  error(err, 0)
end

-- Orgs files: all of them, and the first alone. The token comes from the
-- environment, so the files hold no secret.
local function orgs_file(path, count)
  local lines = { 'local token = os.getenv("ZOHO_ACCESS_TOKEN")', "return {" }
  for i = 1, count do
    lines[#lines + 1] = string.format("  { name = %q, options = { api_domain = %q, access_token = token, "
      .. "concurrency = %d } },", "org" .. i, emus[i].url, C)
  end
  lines[#lines + 1] = "}"
  files.write(path, table.concat(lines, "\n") .. "\n")
  return path
end
local all, one = orgs_file(dir .. "/orgs.lua", ORGS), orgs_file(dir .. "/one.lua", 1)
-- Each run sets labels no run set before (ARG 1 is the run's number), so every
-- entry is an update.
files.write(dir .. "/plan.lua", string.format([[
return function(ctx)
  local list = {}
  for i = 1, %d do
    list[i] = { module = "Bulk_Module_" .. i,
                plural_label = string.format("S %%s R%%s Items %%d", ctx.args.org, ctx.args[1], i),
                singular_label = string.format("S %%s R%%s Item %%d", ctx.args.org, ctx.args[1], i) }
  end
  return list
end
]], N))

-- CPU seconds (user + sys) the first `count` emulators have used so far,
-- from /proc (Linux; 0 elsewhere): the client shares the machine with them.
local TICKS = 100 -- USER_HZ, 100 on Linux
local function emulators_cpu(count)
  local sum = 0
  for i = 1, count do
    local f = io.open("/proc/" .. emus[i].pid .. "/stat", "rb")
    if f then
      local stat = f:read("a")
      f:close()
      local rest = stat:match("%) (.*)$") or ""
      local fields = {}
      for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
      -- utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
      sum = sum + ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / TICKS
    end
  end
  return sum
end

local run_no = 0
local function run(orgs_path, count)
  run_no = run_no + 1
  local before = {}
  for i = 1, count do before[i] = emus[i]:stats().updates_applied end
  local cpu0 = emulators_cpu(count)
  local r = support.measure(RUSAGE, string.format("bin/zcrm apply %s %d --orgs %s --yes", quote(dir .. "/plan.lua"),
    run_no, quote(orgs_path)), dir .. "/scratch", string.format("zcrm apply --orgs with %d orgs", count),
    "ZOHO_ACCESS_TOKEN=emulator-token")
  for i = 1, count do
    local applied = emus[i]:stats().updates_applied - before[i]
    if applied ~= N then
      error(string.format("org%d: %d of %d updates applied", i, applied, N))
    end
  end
  r.emu_cpu = emulators_cpu(count) - cpu0
  return r
end

local walls1, wallsn, rss1, rssn, cpu1, cpun, emu1, emun = {}, {}, {}, {}, {}, {}, {}, {}
ok, err = pcall(function()
  for _ = 1, R do
    local a = run(one, 1)
    walls1[#walls1 + 1], rss1[#rss1 + 1], cpu1[#cpu1 + 1], emu1[#emu1 + 1] = a.wall, a.rss, a.cpu, a.emu_cpu
    local b = run(all, ORGS)
    wallsn[#wallsn + 1], rssn[#rssn + 1], cpun[#cpun + 1], emun[#emun + 1] = b.wall, b.rss, b.cpu, b.emu_cpu
  end
end)
local in_flight = 0
for _, e in ipairs(emus) do in_flight = math.max(in_flight, math.floor(e:stats().max_in_flight)) end
stop_all()
if not ok then error(err, 0) end

local function list(t, fmt)
  local s = {}
  for i, v in ipairs(t) do s[i] = string.format(fmt, v) end
  return table.concat(s, ", ")
end

local w1, wn = median(walls1), median(wallsn)
local m1, mn = median(rss1) / 1024, median(rssn) / 1024
local ratio = wn / w1
print(string.format("orgs at scale: zcrm apply --orgs, %d updates per org, latency %d ms, concurrency %d per org, "
  .. "one emulator per org; %d runs each, alternating", N, LATENCY_MS, C, R))
print(string.format("orgs at scale: 1 org   %.3f s, peak RSS %.1f MB, CPU %.2f s, its emulator's CPU %.2f s "
  .. "(medians; walls %s s)", w1, m1, median(cpu1), median(emu1), list(walls1, "%.3f")))
local rssn_mb = {}
for i, k in ipairs(rssn) do rssn_mb[i] = k / 1024 end
print(string.format("orgs at scale: %d orgs %.3f s, peak RSS %.1f MB, CPU %.2f s, the emulators' CPU %.2f s "
  .. "(medians; walls %s s; RSS %s MB)", ORGS, wn, mn, median(cpun), median(emun), list(wallsn, "%.3f"),
  list(rssn_mb, "%.1f")))
print(string.format("orgs at scale: CPU of zcrm and the emulators together, %d orgs: %.2f s on %s cores in %.3f s",
  ORGS, median(cpun) + median(emun), NCPU, wn))
print(string.format("orgs at scale: wall ratio %d orgs / 1 org %.2f (target <= %.2f: %s); one after another would be ~%d",
  ORGS, ratio, WALL_TARGET, ratio <= WALL_TARGET and "met" or "MISSED", ORGS))
print(string.format("orgs at scale: peak RSS %.1f MB for %d orgs, %.1f MB for 1 (target <= %d MB: %s); "
  .. "%.2f MB per org added", mn, ORGS, m1, RSS_TARGET_MB, mn <= RSS_TARGET_MB and "met" or "MISSED",
  (mn - m1) / math.max(1, ORGS - 1)))
print(string.format("orgs at scale: server max_in_flight, highest of any org %d (cap %d each)", in_flight, C))
os.exit((ratio <= WALL_TARGET and mn <= RSS_TARGET_MB) and 0 or 1)
