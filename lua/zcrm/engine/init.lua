--- The non-blocking engine: every client call runs as a coroutine that yields
-- what it waits for (a transfer, a delay, an event such as "a token is ready"),
-- and `poll` resumes it once libcurl or the clock has the answer. Blocking calls
-- are `submit` followed by `wait`.
--
-- Nothing here runs inside libcurl: `multi:perform` returns the finished
-- transfers, and only then are coroutines resumed and callbacks called.
--
-- A host drives the engine its own way through one hook, `set_host`.
-- @module zcrm.engine

local core = require "zcrm.core"

local now = core.now
local unpack = table.unpack
local pack = table.pack
local select = select
local create, resume, status, yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield

-- Yielded by a request's coroutine when its operation returned (run_ops).
local DONE = {}
-- At most this many idle coroutines are kept for the next requests.
local MAX_IDLE = 64

local M = {}

local Request = require "zcrm.engine.request"
local transfers = require "zcrm.engine.transfers"

M.Request = Request

-- {==== the engine object, held in its client's private record

--- The engine (`zcrm.engine`): one per client, in the client's private
-- record. Its state (the coroutines, timers, waiters and the transfers of
-- `zcrm.engine.transfers`) is its own; the client forwards `submit`, `poll`,
-- `wait`, `set_host` and the host-loop methods to it.
-- @type Engine
local Engine = {}
Engine.__index = Engine
Engine.__name = "zcrm.engine"

local make_ready

--- Makes an engine. `opts`: `ops` maps an operation's name to
-- `function(owner, ...)`, run as a coroutine; `owner` is that first
-- argument (the client); `redact(text)` and `log(level, message)` serve the
-- engine's own messages; `transport` holds concurrency, ca_file, proxy,
-- user_agent, max_response_bytes (checked by `zcrm.options` already).
-- @tparam table opts
-- @treturn Engine
function M.new(opts)
  local self = setmetatable({ owner = opts.owner, ops = opts.ops, redact = opts.redact, log = opts.log }, Engine)
  local t = opts.transport or {}
  self.concurrency = t.concurrency or 10
  self.transfers = transfers.new(t, opts.owner, opts.log, opts.redact,
    function(req, err) make_ready(self, req, nil, err) end)
  self.multi = self.transfers.multi
  self._live = {}         -- request -> true, until done
  self._npending = 0      -- the number of entries in _live
  self._timers = {}       -- { at =, req = }, kept sorted by `at`
  self._waiters = {}      -- event name -> list of requests
  self._flights = {}      -- event name -> true while its single-flight task runs
  self._ready = {}        -- requests to resume at the next step (make_ready)
  self._idle = {}         -- coroutines waiting for their next operation (run_ops)
  self._to_notify = {}    -- done requests whose callback has not run yet
  self.callback_errors = {}
  self._host = nil        -- set_host's hooks
  -- A finished transfer's answer resumes its request.
  self._answered = function(req, code, body, headers) make_ready(self, req, code, body, headers) end
  return self
end

-- A request's values live in its own fields, with no table for up to three
-- (the common case): its result in _r1.._r3 (count _n), and the values its
-- coroutine is resumed with in _a1.._a3 (count _an); more than three are
-- packed into _r1 or _a1.

-- Queues `req` to be resumed with `...` at the next step.
function make_ready(self, req, ...)
  local n = select("#", ...)
  req._an = n
  if n <= 3 then req._a1, req._a2, req._a3 = ... else req._a1 = pack(...) end
  local ready = self._ready
  ready[#ready + 1] = req
end

local function finish(self, req, ...)
  local n = select("#", ...)
  req._done = true
  req._n = n
  if n <= 3 then req._r1, req._r2, req._r3 = ... else req._r1 = pack(...) end
  req.co = nil
  req._spec = nil -- it holds the Authorization header or a token request's body
  if self._live[req] then
    self._live[req] = nil
    self._npending = self._npending - 1
  end
  if req._on_done then self._to_notify[#self._to_notify + 1] = req end
end

-- Resumes `req`'s coroutine with the given values and acts on what it yields.
-- During `submit` (`first`), an error raised by the operation is misuse by the
-- caller: it is returned, for `submit` to raise. Later it can only be a bug in
-- zcrm, and it becomes the request's error result.
local function resumed(self, req, first, co, ok, ...)
  if not ok then
    local e = ...
    if first then
      finish(self, req, nil)
      return e
    end
    local message = self.redact(tostring(e))
    self.log("error", "internal error in " .. req.method .. ": " .. message)
    return finish(self, req, nil, core.error {
      kind = "internal", code = "INTERNAL_CLIENT_ERROR", message = "zcrm internal error: " .. message,
    })
  end
  local what, a = ...
  if what == DONE then -- the operation returned; its coroutine waits for another
    local idle = self._idle
    if #idle < MAX_IDLE then idle[#idle + 1] = co end
    return finish(self, req, select(2, ...))
  end
  if status(co) == "dead" then -- an engine task (spawn)
    return finish(self, req, ...)
  end
  if what == "http" then
    self.transfers:add(req, a)
  elseif what == "sleep" then
    local t = { at = now() + a, req = req }
    local timers = self._timers
    local i = #timers
    while i > 0 and timers[i].at > t.at do i = i - 1 end
    table.insert(timers, i + 1, t)
  elseif what == "wait" then
    local list = self._waiters[a]
    if not list then list = {}; self._waiters[a] = list end
    list[#list + 1] = req
  else
    error("engine: unexpected yield " .. tostring(what))
  end
end

function Engine:step(req, first, ...)
  local co = req.co
  if not co then return end
  return resumed(self, req, first, co, resume(co, ...))
end

-- Runs `fn(owner)` as an engine-owned task: no request object reaches the
-- user, so nobody can cancel it half way. Single-flight work (a token
-- refresh, the profile list) runs this way, and its waiters always wake.
function Engine:spawn(name, fn)
  local task = setmetatable({ engine = self, method = name }, Request)
  local owner = self.owner
  task.co = coroutine.create(function() return fn(owner) end)
  make_ready(self, task)
end

-- Runs `fn(owner)` once for every caller that asks while it runs (single
-- flight): the first call starts it as an engine task, and every caller
-- waits for its results. An error raised by `fn` becomes an internal error;
-- `after(owner, ...)`, when given, turns the results into what the callers
-- get. Runs inside an operation's coroutine.
function Engine:single_flight(event, name, fn, after)
  if not self._flights[event] then
    self._flights[event] = true
    self:spawn(name, function(client)
      local r = pack(pcall(fn, client))
      if not r[1] then
        r = pack(true, nil, core.error { kind = "internal", code = "INTERNAL_CLIENT_ERROR",
                                         message = name .. " failed: " .. self.redact(tostring(r[2])) })
      end
      if after then r = pack(true, after(client, unpack(r, 2, r.n))) end
      self._flights[event] = nil
      self:signal(event, unpack(r, 2, r.n))
    end)
  end
  return coroutine.yield("wait", event)
end

--- The calls this engine lets be in flight now: `concurrency`, lowered
-- after the server's 429s and raised again as calls succeed.
-- @treturn integer
function Engine:limit()
  return self.transfers:limit()
end

--- Number of transfers waiting for a concurrency slot.
-- @treturn integer
function Engine:queued()
  return self.transfers:queued()
end

-- Ends `req` with `err` (default: CANCELLED), aborting its transfer.
function Engine:cancel(req, err)
  self.transfers:abort(req)
  for i = #self._timers, 1, -1 do
    if self._timers[i].req == req then table.remove(self._timers, i) end
  end
  finish(self, req, nil, err or core.error {
    kind = "transport", code = "CANCELLED", message = "the request was cancelled",
    retryable = false,
  })
  self.transfers:fill() -- its slot may start a queued request
end

--- Wakes every request waiting on `event`, passing them `...`.
function Engine:signal(event, ...)
  local list = self._waiters[event]
  if not list then return end
  self._waiters[event] = nil
  for _, req in ipairs(list) do make_ready(self, req, ...) end
end

-- Resumes what is ready (finished transfers, due timers, signalled events) until
-- nothing more is, then starts queued transfers.
function Engine:run_ready()
  while true do
    local ready = self._ready
    if #ready == 0 then
      local timers = self._timers
      if timers[1] then
        local t = now()
        while timers[1] and timers[1].at <= t do
          make_ready(self, table.remove(timers, 1).req)
        end
      end
      if #ready == 0 then break end
    end
    self._ready = {}
    for i = 1, #ready do
      local req = ready[i]
      local n, a1, a2, a3 = req._an, req._a1, req._a2, req._a3
      req._a1, req._a2, req._a3 = nil, nil, nil
      if n == 3 then self:step(req, false, a1, a2, a3)
      elseif n == 2 then self:step(req, false, a1, a2)
      elseif n == 1 then self:step(req, false, a1)
      elseif n == 0 then self:step(req, false)
      else self:step(req, false, unpack(a1, 1, n)) end
    end
    self.transfers:fill()
  end
  self.transfers:fill()
end

-- Has the callback of `req`, done already, run at the next poll.
function Engine:notify_later(req)
  self._to_notify[#self._to_notify + 1] = req
end

-- Runs the callbacks of the requests done since the last time.
function Engine:notify()
  local list = self._to_notify
  if #list == 0 then return 0 end
  self._to_notify = {}
  for _, req in ipairs(list) do
    local fn = req._on_done
    if fn and not req._notified then
      req._notified = true
      local ok, err = pcall(fn, req:result())
      if not ok then
        -- Any error value: one whose __tostring raises, or returns no string,
        -- must not escape poll and skip the other callbacks of this round.
        local shown, text = pcall(tostring, err)
        if not shown or type(text) ~= "string" then text = "(a " .. type(err) .. " that cannot be shown)" end
        local e = core.error {
          kind = "callback", code = "CALLBACK_ERROR",
          message = "error in on_done callback of " .. req.method .. ": " .. self.redact(text),
        }
        self.callback_errors[#self.callback_errors + 1] = e
        self.log("error", e.message)
      end
    end
  end
  return #list
end

-- Starts an operation; misuse raises at `level` (the caller's line).
-- The body of every request's coroutine: it runs operations one after the
-- other, yielding DONE and each one's results in between (a tail call: the
-- stack does not grow). A coroutine that finished an operation goes back to
-- the engine's idle list and runs the next request's, so a request makes
-- neither a closure nor, most of the time, a coroutine (with its stack).
local function run_ops(op, client, ...)
  return run_ops(yield(DONE, op(client, ...)))
end

local function start(self, level, method, ...)
  local op = self.ops[method]
  if not op then error("zcrm: unknown method '" .. tostring(method) .. "'", level) end
  -- Every field a request gets, made at once (one hash part, no rehash as
  -- they are added); each is set before it is read.
  local req = setmetatable({ engine = self, method = method, co = false, _done = false, _n = 0,
    _r1 = false, _r2 = false, _r3 = false, _an = 0, _a1 = false, _a2 = false, _a3 = false,
    _creq = false, _spec = false, _on_done = false }, Request)
  local idle = self._idle
  local n = #idle
  if n > 0 then
    req.co = idle[n]
    idle[n] = nil
  else
    req.co = create(run_ops)
  end
  self._live[req] = true
  self._npending = self._npending + 1
  local misuse = self:step(req, true, op, self.owner, ...)
  if misuse then error(misuse, level) end
  self:run_ready()
  local host = self._host
  if host and host.wake then host.wake() end
  return req
end

--- Starts `method` (the name of any blocking client method) with its arguments
-- and returns a request object at once.
function Engine:submit(method, ...)
  return start(self, 3, method, ...)
end

--- The blocking form of `method`: submit, then wait for the result.
function Engine:call(method, ...)
  return self:wait(start(self, 4, method, ...))
end

-- What a host calls: poll and the waits on it, the host-loop protocol,
-- the host hook, close (lua/zcrm/engine/host.lua).
for name, f in pairs(require "zcrm.engine.host") do Engine[name] = f end

M.Engine = Engine

-- }====

return M
