-- Batch against single updates: N module updates through one client with
-- `concurrency` C against an emulator answering after L ms and refusing more than
-- C calls in flight, sent once as N single PUTs (client:update_module, C at once)
-- and once through the batch endpoint (client:update_modules: ceil(N / 100) PUTs
-- of at most 100 modules, at once). Both runs name modules by id, so neither reads
-- the module list; each gets a fresh org and connections warmed one per slot.
--
-- Usage (from the repo root, after `make`): lua5.4 bench/batch_vs_single.lua [N] [L_ms] [C]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local core = require "zcrm.core"
local support = require "bench.support"

local emu, N, LATENCY_MS, C = support.bulk_emulator(arg)

-- The ids of Bulk_Module_1..N, read once.
local ids = {}
do
  local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false })
  for _, m in ipairs(assert(client:get_modules())) do
    local i = tonumber(m.api_name:match("^Bulk_Module_(%d+)$"))
    if i and i <= N then ids[i] = m.id end
  end
  client:close()
  assert(#ids == N, "the emulator has fewer bulk modules than asked")
end

local function id(i) return ids[i] end

local function fresh_client()
  emu:reset()
  return support.warm_client(emu, C, id)
end

local function update(i, run)
  return { plural_label = "Bench Items " .. run .. i, singular_label = "Bench Item " .. run .. i }
end

-- single: N update_module calls, C in flight
local client = fresh_client()
local single, single_failed = support.timed_updates(client, N, id, function(i) return update(i, "A") end)
local single_puts = emu:stats().requests.by_method.PUT or 0
client:close()

-- batch: one update_modules call
client = fresh_client()
local list = {}
for i = 1, N do
  local e = update(i, "B")
  e.module = ids[i]
  list[i] = e
end
local t0 = core.now()
local results = client:update_modules(list)
local batch = core.now() - t0
local batch_failed = 0
for i = 1, N do
  if zcrm.is_error(results[i]) then batch_failed = batch_failed + 1 end
end
local batch_puts = emu:stats().requests.by_method.PUT or 0
client:close()
emu:stop()

print(string.format("batch: %d updates, latency %d ms, concurrency %d", N, LATENCY_MS, C))
print(string.format("batch: single PUTs   %7.3f s  %4d calls  failed %d  (ideal %.3f s)",
  single, single_puts, single_failed, N * LATENCY_MS / 1000 / C))
print(string.format("batch: batch PUT     %7.3f s  %4d calls  failed %d%s", batch, batch_puts, batch_failed,
  results.fallback and ("  FELL BACK: " .. tostring(results.fallback)) or ""))
print(string.format("batch: ratio single/batch %.1f (batch is %.1fx as fast; %d calls instead of %d)",
  single / batch, single / batch, batch_puts, single_puts))
os.exit((single_failed == 0 and batch_failed == 0 and not results.fallback) and 0 or 1)
