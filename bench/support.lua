--- Helpers shared by the bench drivers.
local emulator = require "spec.support.emulator"

local M = {}

function M.sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- Runs `cmd` (a program and its arguments: the helper execs it without a
-- shell) under the rusage helper (bench/rusage.c), with the shell's `env`
-- assignments if any, its output to `scratch`.out, and returns { cpu = user+sys s, rss = KiB, wall = s }; a
-- failed run raises with `what` and the command's output.
function M.measure(rusage, cmd, scratch, what, env)
  local out = scratch .. ".rusage"
  os.remove(out)
  local ok = M.sh(string.format("%s %s -o '%s' %s >'%s.out' 2>&1", env or "", rusage, out, cmd, scratch))
  local f = io.open(out, "rb")
  local line = f and f:read("l") or ""
  if f then f:close() end
  os.remove(out)
  local u, s, rss, wall, code = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)")
  if not ok or code ~= "0" then
    local o = io.open(scratch .. ".out", "rb")
    error(string.format("%s failed (exit %s): %s", what, tostring(code), o and o:read("a") or ""))
  end
  return { cpu = tonumber(u) + tonumber(s), rss = tonumber(rss), wall = tonumber(wall) }
end

--- Writes a curl config file at `path` sending the n PUTs zcrm sends for
-- Bulk_Module_1..n: one block each, "next" between them so that headers do
-- not pile up from one transfer to the next; answers go to /dev/null.
function M.curl_config(path, url, n)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do
    if i > 1 then f:write("next\n") end
    f:write(string.format('url = "%s/crm/v8/settings/modules/Bulk_Module_%d"\n', url, i),
      'request = "PUT"\n',
      'header = "Authorization: Zoho-oauthtoken emulator-token"\n',
      'header = "Content-Type: application/json"\n',
      string.format('data = "{\\"modules\\":[{\\"plural_label\\":\\"Bench Items %d\\",'
        .. '\\"singular_label\\":\\"Bench Item %d\\"}]}"\n', i, i),
      'output = "/dev/null"\n')
  end
  f:close()
  return path
end

--- The set-up of figures 1 and 7: N updates, latency L ms and concurrency C
-- from the driver's `args` (defaults 200, 100, 10), and an emulator answering
-- after L ms, refusing more than C calls in flight and holding
-- Bulk_Module_1..N. Returns the emulator, N, L, C.
function M.bulk_emulator(args)
  local n = tonumber(args[1]) or 200
  local latency_ms = tonumber(args[2]) or 100
  local c = tonumber(args[3]) or 10
  local emu = emulator.start { "--latency-ms", tostring(latency_ms), "--concurrency", tostring(c),
                               "--extra-modules", tostring(n) }
  return emu, n, latency_ms, c
end

--- A client of `emu` with concurrency `c` and one connection warmed per slot
-- (get_module of `module(i)` for i = 1..c), then the emulator reset, so that
-- a figure measures the steady state a long-running bulk job sees.
function M.warm_client(emu, c, module)
  -- Required here, not at the top: the drivers that measure zcrm in a child
  -- process use this file without loading zcrm themselves.
  local zcrm = require "zcrm"
  local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                   concurrency = c, env = false })
  for i = 1, c do client:submit("get_module", module(i)) end
  assert(client:drain(30))
  emu:reset()
  return client
end

--- The timed run of figures 1 and 7: `n` update_module calls on `module(i)`
-- with `fields(i)`, submitted at once through `client` and drained. Returns
-- the seconds taken and the number of updates that failed.
function M.timed_updates(client, n, module, fields)
  local core = require "zcrm.core"
  local reqs = {}
  local t0 = core.now()
  for i = 1, n do reqs[i] = client:submit("update_module", module(i), fields(i)) end
  assert(client:drain(600))
  local elapsed = core.now() - t0
  local failed = 0
  for _, r in ipairs(reqs) do
    if not r:result() then failed = failed + 1 end
  end
  return elapsed, failed
end

return M
