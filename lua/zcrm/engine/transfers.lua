--- The transfers of one engine: the libcurl multi, the queue of API calls
-- waiting under the in-flight limit, and that limit itself, which follows
-- the server (halved by a 429, raised again as calls succeed). The engine
-- (`zcrm.engine`) hands it the requests that yield "http", and gets back
-- each transfer's answer from `perform`.
-- @module zcrm.engine.transfers

local core = require "zcrm.core"

local M = {}

local Transfers = {}
Transfers.__index = Transfers
Transfers.__name = "zcrm.transfers"

--- Makes the transfers of an engine. `opts`: concurrency, ca_file, proxy,
-- user_agent, max_response_bytes (checked by `zcrm.options` already);
-- `owner`: the first argument of a spec's `before_start` and `after`;
-- `log(level, message)`; `redact(text)`; `fail(req, err)`: makes `req`
-- ready with `nil, err` (a transfer that could not start).
-- @treturn Transfers
function M.new(opts, owner, log, redact, fail)
  local self = setmetatable({ owner = owner, log = log, redact = redact, fail = fail }, Transfers)
  self.concurrency = opts.concurrency or 10
  self.multi = core.new_multi {
    ca_file = opts.ca_file, proxy = opts.proxy, user_agent = opts.user_agent,
    max_response_bytes = opts.max_response_bytes,
  }
  -- Transfers waiting for a concurrency slot: a FIFO with explicit ends, since
  -- `#` is unreliable on a table whose front has been emptied.
  self.queue = {}
  self.qhead, self.qtail = 1, 0
  self.inflight = 0       -- API transfers in flight (counted against limit_)
  -- The in-flight limit, from 1 to concurrency: halved by the server's 429
  -- (once per round: a 429 to a transfer started before the last cut does
  -- not cut again), raised by 1/limit per other answer (additive increase,
  -- multiplicative decrease, as TCP does). A too-high concurrency then
  -- costs time, not failures; Zoho's limit differs by edition.
  self.limit_ = self.concurrency
  self.cuts = 0           -- how many times limit_ was cut
  self.of = {}            -- core transfer -> owning zcrm.request
  self.max_in_flight_seen = 0
  return self
end

-- Starts the transfer of `req` now.
local function start(self, req, spec)
  if spec.before_start then
    local ok, err = spec.before_start(self.owner, spec)
    if not ok then return self.fail(req, err) end
  end
  -- start raises only on misuse (a bad header type given to `request`); that
  -- must fail this request alone, not the poll that started it.
  local ok, creq, err = pcall(self.multi.start, self.multi, spec)
  if not ok then
    err, creq = core.error { kind = "validation", code = "INVALID_REQUEST", message = self.redact(tostring(creq)) }, nil
  end
  if not creq then
    if spec.after then spec.after(self.owner, spec, nil, err) end
    return self.fail(req, err)
  end
  if not spec.bypass_limit then
    self.inflight = self.inflight + 1
    if self.inflight > self.max_in_flight_seen then self.max_in_flight_seen = self.inflight end
    -- For http.lua: a 429 to a call sent alongside others is the server's
    -- concurrency signal, not the call's failure.
    spec.crowded = self.inflight > 1
    spec.round = self.cuts
  end
  req._creq = creq
  self.of[creq] = req
end

--- Starts the transfer `spec` of `req`, or queues it while the limit is reached.
function Transfers:add(req, spec)
  req._spec = spec
  if spec.bypass_limit or self.inflight < self.limit_ then return start(self, req, spec) end
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = req
end

--- Starts queued transfers while slots are free.
function Transfers:fill()
  local q = self.queue
  while self.inflight < self.limit_ and self.qhead <= self.qtail do
    local req = q[self.qhead]
    q[self.qhead] = nil
    self.qhead = self.qhead + 1
    if not req._done then start(self, req, req._spec) end
  end
end

--- The number of transfers waiting for a concurrency slot.
function Transfers:queued()
  return self.qtail - self.qhead + 1
end

--- The calls in flight allowed now.
function Transfers:limit()
  return math.floor(self.limit_)
end

-- An API transfer got `code` (nil: no answer): the in-flight limit follows
-- the server (see limit_ in M.new).
local function adapt(self, spec, code)
  if code == 429 then
    if spec.round == self.cuts and self.limit_ > 1 then
      self.cuts = self.cuts + 1
      self.limit_ = math.max(1, self.limit_ // 2)
      self.log("info", string.format("HTTP 429: at most %d calls in flight now (concurrency %d)",
        self.limit_, self.concurrency))
    end
  elseif code and self.limit_ < self.concurrency then
    self.limit_ = math.min(self.concurrency, self.limit_ + 1 / self.limit_)
  end
end

--- Aborts the transfer of `req`, if it has one in flight (a queued one is
-- skipped by `fill` once `req` is done).
function Transfers:abort(req)
  local creq, spec = req._creq, req._spec
  if not creq then return end
  self.of[creq] = nil
  creq:cancel()
  req._creq = nil
  if not spec.bypass_limit then self.inflight = self.inflight - 1 end
  if spec.after then spec.after(self.owner, spec, nil) end -- refunds its credits
end

--- Waits at most `wait` seconds for transfers, and calls `done(req, code,
-- body, headers)` for each one that finished. With no transfer running,
-- only sleeps.
function Transfers:perform(wait, done)
  if self.multi:running() == 0 then
    if wait > 0 then core.sleep(wait) end
    return
  end
  for _, creq in ipairs(self.multi:perform(wait)) do
    local req = self.of[creq]
    if req then
      self.of[creq] = nil
      req._creq = nil
      local spec = req._spec
      local code, body, headers = creq:result(spec.want_headers)
      if not spec.bypass_limit then
        self.inflight = self.inflight - 1
        adapt(self, spec, code)
      end
      if spec.after then spec.after(self.owner, spec, code, body, headers) end
      done(req, code, body, headers)
    end
  end
end

M.Transfers = Transfers

return M
