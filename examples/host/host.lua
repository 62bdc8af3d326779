-- The Lua side of the C host in examples/host/host.c (see its usage comment).
-- The host loads this file once per thread, each time in a new lua_State,
-- and calls these functions from its own epoll loop:
--
--   start(url, first, count) -> pollfd   a client; updates Bulk_Module_first..+count-1
--   tick()                               once per 60 Hz frame: submits a few updates
--   timeout() -> seconds | nil           when zcrm wants poll() even without readiness
--   poll()                               the descriptor was readable or the timer fired
--   finished() -> boolean                everything submitted has its result
--   report() -> line, ok                 the update results, for the host to print
--
-- Nothing here blocks: the host watches one descriptor and one timer.
local zcrm = require "zcrm"

local PER_TICK = 5 -- updates submitted per frame

local game = {}
local client
local first, last, next_id
local counts, failures = {}, {}
local sample
local fd_min, fd_max

function game.start(url, from, count)
  client = assert(zcrm.new { api_domain = url, access_token = "emulator-token", concurrency = 10, env = false })
  first, last, next_id = from, from + count - 1, from
  return client:pollfd()
end

local function on_done(name)
  return function(res, err)
    local code = res and res.code or err.code
    counts[code] = (counts[code] or 0) + 1
    if not res then failures[#failures + 1] = name .. ": " .. tostring(err) end
    sample = sample or string.format("%s: %s %s", name, code, res and res.message or "")
  end
end

function game.tick()
  for _ = 1, PER_TICK do
    if next_id > last then break end
    local name = "Bulk_Module_" .. next_id
    client:submit("update_module", name, {
      plural_label = "Host Items " .. next_id, singular_label = "Host Item " .. next_id,
    }):on_done(on_done(name))
    next_id = next_id + 1
  end
  for _, s in ipairs(client:fds()) do -- which numbers zcrm's sockets got
    fd_min = math.min(fd_min or s.fd, s.fd)
    fd_max = math.max(fd_max or s.fd, s.fd)
  end
end

function game.timeout() return client:timeout() end

function game.poll() client:poll(0) end

function game.finished() return next_id > last and client:pending() == 0 end

function game.report()
  local codes, n_ok = {}, counts.SUCCESS or 0
  for code, n in pairs(counts) do codes[#codes + 1] = n .. " " .. code end
  table.sort(codes)
  local line = string.format("%d updates: %s; zcrm sockets %s-%s; e.g. %s", last - first + 1,
    table.concat(codes, ", "), tostring(fd_min), tostring(fd_max), tostring(sample))
  for _, f in ipairs(failures) do line = line .. "\n  " .. f end
  client:close()
  return line, n_ok == last - first + 1
end

return game
