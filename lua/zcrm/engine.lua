--- The non-blocking engine: every client call runs as a coroutine that yields
-- what it waits for (a transfer, a delay, an event such as "a token is ready"),
-- and `poll` resumes it once libcurl or the clock has the answer. Blocking calls
-- are `submit` followed by `wait`.
--
-- Nothing here runs inside libcurl: `multi:perform` returns the finished
-- transfers, and only then are coroutines resumed and callbacks called.
--
-- One file of about 530 lines, because it reads best whole: the
-- request object, the queue, the timers, the waiters and `poll` all act on
-- the same engine state, and each would reach into the others if split.
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

-- {==== request objects

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
  if self._done then self.engine._to_notify[#self.engine._to_notify + 1] = self end
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

M.Request = Request

-- }====

-- {==== the engine object, held by its client as `client._engine`

--- The engine (`zcrm.engine`): one per client, held as `client._engine`. Its
-- state (the transfer queue, timers, waiters) is its own; the client
-- forwards `submit`, `poll`, `wait` and the host-loop methods to it.
-- @type Engine
local Engine = {}
Engine.__index = Engine
Engine.__name = "zcrm.engine"

--- Makes the engine of `client`. `ops` maps an operation's name to
-- `function(client, ...)`, run as a coroutine; opts: concurrency, ca_file,
-- proxy, user_agent, max_response_bytes (checked by the client already).
-- @treturn Engine
function M.new(client, ops, opts)
  local self = setmetatable({ client = client, ops = ops }, Engine)
  self.concurrency = opts.concurrency or 10
  self.multi = core.new_multi {
    ca_file = opts.ca_file, proxy = opts.proxy, user_agent = opts.user_agent,
    max_response_bytes = opts.max_response_bytes,
  }
  self._live = {}         -- request -> true, until done
  self._npending = 0      -- the number of entries in _live
  -- Transfers waiting for a concurrency slot: a FIFO with explicit ends, since
  -- `#` is unreliable on a table whose front has been emptied.
  self._queue = {}
  self._qhead, self._qtail = 1, 0
  self._inflight = 0      -- API transfers in flight (counted against _limit)
  -- The in-flight limit, from 1 to concurrency: halved by the server's 429
  -- (once per round: a 429 to a transfer started before the last cut does
  -- not cut again), raised by 1/limit per other answer (additive increase,
  -- multiplicative decrease, as TCP does). A too-high concurrency then
  -- costs time, not failures; Zoho's limit differs by edition.
  self._limit = self.concurrency
  self._cuts = 0          -- how many times _limit was cut
  self._transfers = {}    -- core transfer -> owning zcrm.request
  self._timers = {}       -- { at =, req = }, kept sorted by `at`
  self._waiters = {}      -- event name -> list of requests
  self._flights = {}      -- event name -> true while its single-flight task runs
  self._ready = {}        -- requests to resume at the next step (make_ready)
  self._idle = {}         -- coroutines waiting for their next operation (run_ops)
  self._to_notify = {}    -- done requests whose callback has not run yet
  self.callback_errors = {}
  self.max_in_flight_seen = 0
  -- Set by an event-loop adapter (zcrm.luv, zcrm.cqueues): wake_host(client)
  -- after each submit and on close; host_wait(client, seconds) -> true when
  -- it waited for activity its own way, instead of poll blocking;
  -- close_host(client) before the descriptor closes, to wake what waits on it.
  self.wake_host, self.host_wait, self.close_host = nil, nil, nil
  return self
end

-- A request's values live in its own fields, with no table for up to three
-- (the common case): its result in _r1.._r3 (count _n), and the values its
-- coroutine is resumed with in _a1.._a3 (count _an); more than three are
-- packed into _r1 or _a1.

-- Queues `req` to be resumed with `...` at the next step.
local function make_ready(self, req, ...)
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
    local message = self.client:_redact(tostring(e))
    self.client:_log("error", "internal error in " .. req.method .. ": " .. message)
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
    req._spec = a
    if a.bypass_limit or self._inflight < self._limit then
      self:start_transfer(req, a)
    else
      self._qtail = self._qtail + 1
      self._queue[self._qtail] = req
    end
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

-- Runs `fn(client)` as an engine-owned task: no request object reaches the
-- user, so nobody can cancel it half way. Single-flight work (a token
-- refresh, the profile list) runs this way, and its waiters always wake.
function Engine:spawn(name, fn)
  local task = setmetatable({ engine = self, method = name }, Request)
  local client = self.client
  task.co = coroutine.create(function() return fn(client) end)
  make_ready(self, task)
end

-- Runs `fn(client)` once for every caller that asks while it runs (single
-- flight): the first call starts it as an engine task, and every caller
-- waits for its results. An error raised by `fn` becomes an internal error;
-- `after(client, ...)`, when given, turns the results into what the callers
-- get. Runs inside an operation's coroutine.
function Engine:single_flight(event, name, fn, after)
  if not self._flights[event] then
    self._flights[event] = true
    self:spawn(name, function(client)
      local r = pack(pcall(fn, client))
      if not r[1] then
        r = pack(true, nil, core.error { kind = "internal", code = "INTERNAL_CLIENT_ERROR",
                                         message = name .. " failed: " .. client:_redact(tostring(r[2])) })
      end
      if after then r = pack(true, after(client, unpack(r, 2, r.n))) end
      self._flights[event] = nil
      self:signal(event, unpack(r, 2, r.n))
    end)
  end
  return coroutine.yield("wait", event)
end

function Engine:start_transfer(req, spec)
  if spec.before_start then
    local ok, err = spec.before_start(self.client, spec)
    if not ok then
      make_ready(self, req, nil, err)
      return
    end
  end
  -- start raises only on misuse (a bad header type given to `request`); that
  -- must fail this request alone, not the poll that started it.
  local ok, creq, err = pcall(self.multi.start, self.multi, spec)
  if not ok then
    err, creq = core.error { kind = "validation", code = "INVALID_REQUEST",
                             message = self.client:_redact(tostring(creq)) }, nil
  end
  if not creq then
    if spec.after then spec.after(self.client, spec, nil, err) end
    make_ready(self, req, nil, err)
    return
  end
  if not spec.bypass_limit then
    self._inflight = self._inflight + 1
    if self._inflight > self.max_in_flight_seen then self.max_in_flight_seen = self._inflight end
    -- For http.lua: a 429 to a call sent alongside others is the server's
    -- concurrency signal, not the call's failure.
    spec.crowded = self._inflight > 1
    spec.round = self._cuts
  end
  req._creq = creq
  self._transfers[creq] = req
end

-- An API transfer got `code` (nil: no answer): the in-flight limit follows
-- the server (see _limit in M.new).
local function adapt(self, spec, code)
  if code == 429 then
    if spec.round == self._cuts and self._limit > 1 then
      self._cuts = self._cuts + 1
      self._limit = math.max(1, self._limit // 2)
      self.client:_log("info", string.format("HTTP 429: at most %d calls in flight now (concurrency %d)",
        self._limit, self.concurrency))
    end
  elseif code and self._limit < self.concurrency then
    self._limit = math.min(self.concurrency, self._limit + 1 / self._limit)
  end
end

--- The calls this engine lets be in flight now: `concurrency`, lowered
-- after the server's 429s and raised again as calls succeed.
-- @treturn integer
function Engine:limit()
  return math.floor(self._limit)
end

-- Starts queued transfers while slots are free.
function Engine:fill()
  local q = self._queue
  while self._inflight < self._limit and self._qhead <= self._qtail do
    local req = q[self._qhead]
    q[self._qhead] = nil
    self._qhead = self._qhead + 1
    if not req._done then self:start_transfer(req, req._spec) end
  end
end

--- Number of transfers waiting for a concurrency slot.
function Engine:queued()
  return self._qtail - self._qhead + 1
end

-- Ends `req` with `err` (default: CANCELLED), aborting its transfer.
function Engine:cancel(req, err)
  local creq, spec = req._creq, req._spec
  if creq then
    self._transfers[creq] = nil
    creq:cancel()
    req._creq = nil
    if not spec.bypass_limit then self._inflight = self._inflight - 1 end
    if spec.after then spec.after(self.client, spec, nil) end -- refunds its credits
  end
  for i = #self._timers, 1, -1 do
    if self._timers[i].req == req then table.remove(self._timers, i) end
  end
  finish(self, req, nil, err or core.error {
    kind = "transport", code = "CANCELLED", message = "the request was cancelled",
    retryable = false,
  })
  self:fill() -- its slot may start a queued request
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
    self:fill()
  end
  self:fill()
end

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
          message = "error in on_done callback of " .. req.method .. ": " .. self.client:_redact(text),
        }
        self.callback_errors[#self.callback_errors + 1] = e
        self.client:_log("error", e.message)
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
  local misuse = self:step(req, true, op, self.client, ...)
  if misuse then error(misuse, level) end
  self:run_ready()
  if self.wake_host then self.wake_host(self.client) end
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
  -- An adapter may wait its own way (zcrm.cqueues: yield to the controller).
  if wait > 0 and self.host_wait and self.host_wait(self.client, wait) then wait = 0 end
  if self.multi:running() == 0 then
    if wait > 0 then core.sleep(wait) end
  else
    for _, creq in ipairs(self.multi:perform(wait)) do
      local req = self._transfers[creq]
      if req then
        self._transfers[creq] = nil
        req._creq = nil
        local spec = req._spec
        local code, body, headers = creq:result(spec.want_headers)
        if not spec.bypass_limit then
          self._inflight = self._inflight - 1
          adapt(self, spec, code)
        end
        if spec.after then spec.after(self.client, spec, code, body, headers) end
        make_ready(self, req, code, body, headers)
      end
    end
  end
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

--- Releases the transport; pending requests end as CLOSED, and an adapter
-- wakes what waits on the client (its descriptor closes here).
function Engine:close()
  if self.close_host then self.close_host(self.client) end
  local closed = core.error { kind = "transport", code = "CLOSED", retryable = false,
                              message = "the client was closed before the request was done" }
  for req in pairs(self._live) do
    if not req._done then self:cancel(req, closed) end
  end
  if self.wake_host then self.wake_host(self.client) end -- an adapter stops watching
  self.multi:close()
end

M.Engine = Engine

-- }====

return M
