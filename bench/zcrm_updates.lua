-- The zcrm side of figures 2 and 3: one process that sends N module updates
-- (Bulk_Module_1..N) through one client, concurrency C, and exits. The bench
-- drivers run it as a child under bench/.build/rusage or valgrind, so only this
-- process is measured (the emulator is started by the driver).
--
-- usage: lua5.4 bench/zcrm_updates.lua URL N [MODE] [C]
--   MODE apply  (default) client:apply(plan): every entry checked, then sent
--        submit client:submit("update_module", ...) for each, then drain
--   Exit 0 only if all N updates succeeded.
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"

local url, N = arg[1], tonumber(arg[2])
local mode, C = arg[3] or "apply", tonumber(arg[4]) or 10
assert(url and N, "usage: lua5.4 bench/zcrm_updates.lua URL N [apply|submit] [C]")

local client = assert(zcrm.new { api_domain = url, access_token = "emulator-token", concurrency = C, env = false })
local ok = 0
if mode == "apply" then
  local plan = {}
  for i = 1, N do
    plan[i] = { module = "Bulk_Module_" .. i, plural_label = "Bench Items " .. i, singular_label = "Bench Item " .. i }
  end
  local report = assert(client:apply(plan))
  ok = #report.applied
elseif mode == "submit" then
  local reqs = {}
  for i = 1, N do
    reqs[i] = client:submit("update_module", "Bulk_Module_" .. i,
      { plural_label = "Bench Items " .. i, singular_label = "Bench Item " .. i })
  end
  assert(client:drain(600))
  for i = 1, N do
    if reqs[i]:result() then ok = ok + 1 end
  end
else
  error("unknown mode " .. tostring(mode))
end
client:close()
if ok ~= N then
  io.stderr:write(string.format("zcrm_updates: %d of %d updates succeeded\n", ok, N))
  os.exit(1)
end
