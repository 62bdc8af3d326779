--- What a host calls on an engine: `poll` and the waits built on it
-- (`wait`, `await`, `drain`), the host-loop protocol (`timeout`, `pollfd`,
-- `events`, `fds`, `pending`), the one host hook (`set_host`) and `close`.
-- These are methods of `Engine` (lua/zcrm/engine/init.lua installs them);
-- they reach the engine's state only through its other methods and the
-- fields it documents (transfers, multi, _ready, _timers, _to_notify, _live).
-- @module zcrm.engine

local core = require "zcrm.core"
local Request = require "zcrm.engine.request"

local now = core.now

local Engine = {}

--- Does what can be done without waiting longer than `timeout` seconds
-- (default 0: never blocks). Finished requests get their results, and their
-- callbacks run here. Returns the number of callbacks run.
function Engine:poll(timeout)
  timeout = timeout or 0
  if timeout ~= timeout or timeout < 0 then timeout = 0 end -- NaN and negatives: do not wait
  self:run_ready()
  local wait = timeout
  local next_timer = self._timers[1]
  if next_timer then wait = math.max(0, math.min(wait, next_timer.at - now())) end
  if #self._ready > 0 or #self._to_notify > 0 then wait = 0 end
  -- A host may wait its own way (see set_host).
  local host = self._host
  if wait > 0 and host and host.wait then
    local left = host.wait(wait)
    if left then wait = math.max(0, math.min(wait, left)) end
  end
  self.transfers:perform(wait, self._answered)
  self:run_ready()
  return self:notify()
end

--- Seconds a host may sleep before calling `poll` again; nil when idle.
function Engine:timeout()
  if #self._ready > 0 or #self._to_notify > 0 then return 0 end
  local t = self.multi:timeout()
  local timer = self._timers[1]
  if timer then
    local dt = math.max(0, timer.at - now())
    t = t and math.min(t, dt) or dt
  end
  return t
end

--- The one descriptor a host loop watches for reading (with `timeout()` as
-- its one timer): readable whenever a transfer needs `poll(0)`. Owned by the
-- client, closed with it. nil, err where there is no epoll.
function Engine:pollfd()
  return self.multi:pollfd()
end

--- For cqueues' pollable protocol (with `pollfd` and `timeout`): "r".
function Engine.events()
  return "r"
end

--- The sockets libcurl watches now: { { fd =, read =, write = }, ... }.
function Engine:fds()
  return self.multi:fds()
end

--- Number of requests not yet done (a count kept as they come and go).
function Engine:pending()
  return self._npending
end

--- Drives the engine until `req` is done and returns its result. Inside a
-- coroutine that the host resumes (coroutine.isyieldable()), it yields instead
-- of blocking, so `apply`-style code can run under a host scheduler. A
-- request of another client is `nil, err` (INVALID_ARGUMENT): this engine
-- could never finish it.
function Engine:wait(req, opts)
  if getmetatable(req) ~= Request then error("zcrm: wait expects a zcrm.request, got " .. type(req), 3) end
  if req.engine ~= self then
    return nil, core.error { kind = "validation", code = "INVALID_ARGUMENT", field = "req", retryable = false,
      message = "the request belongs to another client: wait on it with the client that submitted it" }
  end
  local to_host = opts and opts.yield
  while not req._done do
    if to_host and coroutine.isyieldable() then
      coroutine.yield(req)
      self:poll(0)
    else
      self:poll(0.05)
    end
  end
  self:notify()
  return req:result()
end

--- Like `wait`, but yields to the host between polls when running in a coroutine.
function Engine:await(req)
  return self:wait(req, { yield = true })
end

--- Runs until no request is pending (or `timeout` seconds pass).
function Engine:drain(timeout)
  local deadline = timeout and now() + timeout
  while next(self._live) or #self._to_notify > 0 do
    if deadline and now() >= deadline then return false end
    self:poll(0.05)
  end
  return true
end

--- The one hook for a host that drives this engine its own way: an event
-- loop (`zcrm.luv`), a scheduler of coroutines (`zcrm.cqueues`, many-org
-- runs). Every hook is optional:
--
-- - `wait(timeout)`: `poll` is about to wait up to `timeout` seconds (> 0)
--   for transfers; the host may wait its own way (yield to its loop) and
--   returns the seconds the engine still waits itself (0: none), or nil to
--   leave the whole wait to the engine. Every blocking call waits through
--   `poll`, so this one hook covers them all.
-- - `wake()`: after each `submit` and on `close`: something may need the
--   host's attention (re-arm a timer, start watching `pollfd`).
-- - `close()`: before the descriptor closes, to wake what waits on it.
--
-- Misuse (a hook that is not a function) raises.
-- @tparam table|nil host `{ wait =, wake =, close = }`, or nil to remove the host
-- @treturn table|nil the host set before, for the caller to put back
function Engine:set_host(host)
  if host ~= nil then
    if type(host) ~= "table" then error("zcrm: set_host expects a table { wait =, wake =, close = } or nil", 3) end
    for _, k in ipairs { "wait", "wake", "close" } do
      if host[k] ~= nil and type(host[k]) ~= "function" then
        error("zcrm: set_host: '" .. k .. "' must be a function", 3)
      end
    end
  end
  local before = self._host
  self._host = host
  return before
end

--- Releases the transport; pending requests end as CLOSED, and the host
-- wakes what waits on the client (its descriptor closes here).
function Engine:close()
  local host = self._host
  if host and host.close then host.close() end
  local closed = core.error { kind = "transport", code = "CLOSED", retryable = false,
                              message = "the client was closed before the request was done" }
  for req in pairs(self._live) do
    if not req._done then self:cancel(req, closed) end
  end
  if host and host.wake then host.wake() end -- a host stops watching
  self.multi:close()
end

return Engine
