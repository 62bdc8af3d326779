--- A running call (`zcrm.request`), as `client:submit` returns it. Its
-- engine (`zcrm.engine`) sets its state; a request only reads it.
--
-- A request's values live in its own fields, with no table for up to three
-- (the common case): its result in _r1.._r3 (count _n), and the values its
-- coroutine is resumed with in _a1.._a3 (count _an); more than three are
-- packed into _r1 or _a1.
-- @module zcrm.engine

local unpack = table.unpack

--- A running call (`zcrm.request`), as `client:submit` returns it.
-- @type Request
local Request = {}
Request.__index = Request
Request.__name = "zcrm.request"

function Request:__tostring()
  return string.format("zcrm.request %s (%s)", self.method, self._done and "done" or "pending")
end

--- True once the request has a result (success or failure).
-- @treturn boolean
function Request:done()
  return self._done == true
end

--- The call's results once done; nothing before.
-- @return `res`, or nil and a `zcrm.error`
function Request:result()
  if not self._done then return nil end
  local n = self._n
  if n <= 3 then
    if n == 2 then return self._r1, self._r2 end
    if n == 1 then return self._r1 end
    if n == 3 then return self._r1, self._r2, self._r3 end
    return
  end
  return unpack(self._r1, 1, n)
end

--- Calls `fn(res, err)` from `poll` once the request is done (also when it is
-- done already). Errors raised by `fn` are logged and kept in
-- `client.callback_errors`; they never break the engine.
-- @tparam function fn `function(res, err)`
-- @treturn Request the request itself
function Request:on_done(fn)
  assert(type(fn) == "function", "on_done expects a function")
  self._on_done = fn
  if self._done then self.engine:notify_later(self) end
  return self
end

--- Stops the request: a transfer in flight is aborted, a queued one is never
-- sent. The result becomes `nil, err` with code CANCELLED. Idempotent.
-- @treturn boolean false when the request was done already
function Request:cancel()
  if self._done then return false end
  self.engine:cancel(self)
  return true
end

return Request
