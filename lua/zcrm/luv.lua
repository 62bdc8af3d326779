--- zcrm.luv: drive a zcrm client from a luv (libuv) loop.
--
--   local uv = require "luv"
--   local h = require("zcrm.luv").attach(client)     -- or attach(client, vim.uv)
--   client:submit("update_module", "Leads", { plural_label = "Prospects" })
--     :on_done(function(res, err) print(res and res.code or err) end)
--   h:run(function() local report = client:apply(plan, { on_result = print }) end)
--   uv.run()          -- returns by itself once every request and task is done
--   h:detach()
--
-- One `uv.new_poll` on `client:pollfd()` and one `uv` timer set from
-- `client:timeout()`; either calls `client:poll(0)`, so callbacks (`on_done`)
-- run on the loop. With nothing pending both handles are stopped, and a
-- submit starts them again. `h:run(fn)` runs `fn` as a task on the loop: a
-- blocking call inside it (`apply`, `update_module`, `wait`, ...) waits for
-- the loop instead of blocking it, so `apply`'s `on_result` runs on the loop
-- too. `uv` is the luv module bound to the loop to use (default
-- `require "luv"`; in Neovim `vim.uv`).
--
-- An error a task raises after its first wait goes to `opts.on_error(err,
-- traceback)` of `attach(client, uv, opts)`; without one it is kept in
-- `h.errors` and logged (the client's logger). Either way the loop goes on,
-- and so do the tasks resumed in the same pass.
--
-- The adapter drives the client through its one host hook, `client:set_host`.
-- @module zcrm.luv

local M = {}

local Handle = {}
Handle.__index = Handle
Handle.__name = "zcrm.luv"

--- Stops driving the client and closes the adapter's handles. Idempotent.
-- Tasks still waiting are not resumed again.
function Handle:detach()
  if self.detached then return end
  self.detached = true
  local before = self.client:set_host(nil)
  if before ~= self.host then self.client:set_host(before) end -- another host took over since
  for _, h in ipairs { self.poll, self.timer } do
    if not h:is_closing() then h:close() end
  end
  -- Outside uv.run, let the closes complete now: luv 1.44 (Debian 12) crashes
  -- at exit on a handle closed but never finished by the loop.
  if self.uv.loop_mode and self.uv.loop_mode() == nil then self.uv.run("nowait") end
end

-- A task resumed by the loop raised `err`: its error handler gets it, or
-- h.errors and the log do. Never raises: a raise inside a luv callback ends
-- the process, and the other tasks of this pass must still be resumed.
function Handle:_failed(co, err)
  local shown, text = pcall(tostring, err)
  if not shown or type(text) ~= "string" then text = "(a " .. type(err) .. " that cannot be shown)" end
  local trace = self.client:_redact(debug.traceback(co, text))
  if self.on_error then
    local ok, herr = pcall(self.on_error, err, trace)
    if ok then return end
    trace = trace .. "; and its error handler raised: " .. self.client:_redact(tostring(herr))
  else
    self.errors[#self.errors + 1] = err
  end
  self.client:_log("error", "zcrm.luv: a task failed: " .. trace)
end

--- Runs `fn(...)` as a task on the loop, at once until its first wait.
-- Inside it, a blocking client call waits for the loop instead of blocking
-- it. An error raised by `fn` before its first wait is raised here; one
-- raised later goes to the error handler (see `attach`).
function Handle:run(fn, ...)
  if self.detached then error("zcrm.luv: run on a detached handle", 2) end
  local co = coroutine.create(fn)
  self.tasks[co] = true
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(debug.traceback(co, tostring(err)), 0) end
end

--- Attaches `client` to the loop of `uv`. Returns a handle with `:run(fn)`
-- and `:detach()`; raises when the client has no pollable descriptor (no
-- epoll) or is attached already. `opts.on_error(err, traceback)` receives
-- the errors of tasks resumed by the loop (default: kept in `h.errors`, and
-- logged).
-- @tparam Client client
-- @tparam[opt] table uv the luv module (default: `require "luv"`)
-- @tparam[opt] table opts `on_error`: `function(err, traceback)`
-- @treturn Handle the adapter
function M.attach(client, uv, opts)
  uv = uv or require "luv"
  local on_error = opts and opts.on_error
  if on_error ~= nil and type(on_error) ~= "function" then
    error("zcrm.luv: on_error must be a function", 2)
  end
  local fd, err = client:pollfd()
  if not fd then error("zcrm.luv: " .. tostring(err), 2) end
  local placeholder = {}
  local before = client:set_host(placeholder)
  if before then
    client:set_host(before)
    error("zcrm.luv: the client is attached to a loop already", 2)
  end
  local self = setmetatable({
    client = client, uv = uv, poll = uv.new_poll(fd), timer = uv.new_timer(),
    tasks = setmetatable({}, { __mode = "k" }), -- coroutines started by run
    waiting = {},                               -- tasks waiting for the loop
    on_error = on_error, errors = {},           -- what tasks resumed by the loop raised
  }, Handle)
  local polling, max_wait, closed = false, nil, false
  local drive

  -- Watches the descriptor and sets the timer while anything is pending;
  -- stops both once the client is idle and no task waits, so uv.run() can
  -- return. A task waiting on an idle client (poll(t) with nothing to do)
  -- is resumed after the wait it asked for.
  local function rearm()
    if self.detached then return end
    local t = client:timeout()
    if t == nil and client:pending() == 0 then
      if polling then self.poll:stop(); polling = false end
      if #self.waiting == 0 then self.timer:stop(); return end
      t = max_wait
    end
    if not polling and not closed then self.poll:start("r", drive); polling = true end
    if t then self.timer:start(math.ceil(t * 1000), 0, drive) else self.timer:stop() end
  end

  function drive()
    if self.detached then return end
    client:poll(0)
    local waiting = self.waiting
    if #waiting > 0 then
      self.waiting, max_wait = {}, nil
      for _, co in ipairs(waiting) do
        local ok, raised = coroutine.resume(co)
        if not ok then self:_failed(co, raised) end
      end
    end
    rearm()
  end

  -- The engine's poll(t > 0) inside a task: yield to the loop until the
  -- descriptor or the timer fires (the engine then does the ready work).
  local function wait_on_loop(wait)
    local co, main = coroutine.running()
    if main or not self.tasks[co] then return nil end
    self.waiting[#self.waiting + 1] = co
    max_wait = math.min(max_wait or wait, wait)
    rearm()
    coroutine.yield()
    return 0
  end

  -- The client closes: stop watching its descriptor before it goes (libuv
  -- must never poll a closed one); waiting tasks are resumed by the timer
  -- and find their requests CLOSED.
  local function close()
    closed = true
    if polling then self.poll:stop(); polling = false end
  end

  self.host = { wait = wait_on_loop, wake = rearm, close = close }
  client:set_host(self.host)
  rearm()
  return self
end

return M
