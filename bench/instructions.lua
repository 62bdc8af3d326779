-- Figure 3: instructions per update, counted by valgrind's callgrind: a
-- repeatable figure (unlike CPU time on a shared machine) to track from run to
-- run.
--
-- The zcrm client (bench/zcrm_updates.lua, client:apply) runs under callgrind
-- twice against the same emulator (latency 0): with N updates and with 0. The
-- difference, divided by N, is the cost of one update without the start-up
-- (loading Lua, libcurl, OpenSSL). The same is done for the curl command line
-- (N+1 and 1 PUTs from a config file, --parallel-max 10) as a reference, and
-- the difference is split by shared object, which says where an update's
-- instructions go (the Lua VM with its GC, libc's malloc, libcurl, ...).
--
-- usage: lua5.4 bench/instructions.lua [N]
-- Needs valgrind (bench/run.sh installs it when it can).
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local emulator = require "spec.support.emulator"
local support = require "bench.support"
local quote = emulator.quote

local N = tonumber(arg[1]) or 200
local OUT_PREFIX = os.getenv("ZCRM_BENCH_CALLGRIND") -- keep the profiles here when set

local sh = support.sh

if not sh("command -v valgrind >/dev/null 2>&1") then
  print("instructions: valgrind is not installed: figure skipped")
  os.exit(0)
end

local emu = emulator.start { "--latency-ms", "0", "--concurrency", "1000", "--credits", "100000000",
                             "--extra-modules", tostring(N + 1) }
local tmp = os.tmpname()

local function curl_config(n)
  return support.curl_config(tmp .. ".curl" .. n, emu.url, n)
end

-- Runs cmd under callgrind; returns the total instruction count and the
-- per-object totals (from callgrind_annotate).
local function callgrind(name, cmd, want_puts)
  emu:reset()
  local out = (OUT_PREFIX and (OUT_PREFIX .. "." .. name) or (tmp .. "." .. name)) .. ".callgrind"
  local log = tmp .. ".log"
  if not sh(string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s >%s 2>&1", quote(out), cmd, quote(log))) then
    local f = io.open(log, "rb")
    error(name .. " failed under callgrind: " .. (f and f:read("a") or ""))
  end
  local puts = emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"] or 0
  assert(puts == want_puts, string.format("%s: %d PUTs, wanted %d", name, puts, want_puts))
  local total
  for line in io.lines(out) do
    local t = line:match("^summary:%s*(%d+)") or line:match("^totals:%s*(%d+)")
    if t then total = tonumber(t) end
  end
  local objects = {}
  local p = io.popen("callgrind_annotate --threshold=100 " .. quote(out) .. " 2>/dev/null")
  for line in p:lines() do
    local n, obj = line:match("^%s*([%d,]+)%s+%(.-%)%s+.-%[(.-)%]%s*$")
    if n then
      obj = obj:match("([^/]+)$")
      objects[obj] = (objects[obj] or 0) + tonumber((n:gsub(",", "")))
    end
  end
  p:close()
  if not OUT_PREFIX then os.remove(out) end
  os.remove(log)
  return total, objects
end

local lua_cmd = "lua5.4 bench/zcrm_updates.lua " .. quote(emu.url) .. " %d %s 10"
local z0, zobj0 = callgrind("zcrm-0", string.format(lua_cmd, 0, "apply"), 0)
local zn, zobj = callgrind("zcrm-" .. N, string.format(lua_cmd, N, "apply"), N)
-- The same updates through submit + poll (client:submit each, then drain).
local s0 = callgrind("zcrm-submit-0", string.format(lua_cmd, 0, "submit"), 0)
local sn = callgrind("zcrm-submit-" .. N, string.format(lua_cmd, N, "submit"), N)
local curl_cmd = "curl -s --no-progress-meter --parallel --parallel-max 10 -K %s"
local c1 = callgrind("curl-1", string.format(curl_cmd, quote(curl_config(1))), 1)
local cn = callgrind("curl-" .. (N + 1), string.format(curl_cmd, quote(curl_config(N + 1))), N + 1)
emu:stop()
for _, s in ipairs { ".curl1", ".curl" .. (N + 1), "" } do os.remove(tmp .. s) end

local per = (zn - z0) / N
local cper = (cn - c1) / N
local function m(x) return x / 1e6 end
print(string.format("instructions: zcrm client:apply, %d updates: %.1f M instructions; 0 updates (start-up): %.1f M",
  N, m(zn), m(z0)))
print(string.format("instructions: zcrm per update %.0f (%.1f k); curl per request %.0f (%.1f k); ratio zcrm/curl %.2f",
  per, per / 1e3, cper, cper / 1e3, per / cper))
local sper = (sn - s0) / N
local function verdict(r) return r <= 0.8 and "met" or "MISSED" end
print(string.format("instructions: ratio zcrm/curl through client:apply %.2f (%.1f k / %.1f k; target <= 0.80: %s)",
  per / cper, per / 1e3, cper / 1e3, verdict(per / cper)))
print(string.format("instructions: ratio zcrm/curl through submit + poll %.2f (%.1f k / %.1f k; target <= 0.80: %s)",
  sper / cper, sper / 1e3, cper / 1e3, verdict(sper / cper)))
local rows = {}
for obj, n in pairs(zobj) do
  local d = (n - (zobj0[obj] or 0)) / N
  if d > per * 0.01 then rows[#rows + 1] = { obj, d } end
end
table.sort(rows, function(a, b) return a[2] > b[2] end)
local parts = {}
for _, r in ipairs(rows) do parts[#parts + 1] = string.format("%s %.1f k (%.0f%%)", r[1], r[2] / 1e3, 100 * r[2] / per) end
print("instructions: zcrm per update by object: " .. table.concat(parts, ", "))
