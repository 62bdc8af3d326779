--- zcrm.luv: drive a zcrm client from a luv (libuv) loop.
--
--   local uv = require "luv"
--   local h = require("zcrm.luv").attach(client)     -- or attach(client, vim.uv)
--   client:submit("update_module", "Leads", { plural_label = "Prospects" })
--     :on_done(function(res, err) print(res and res.code or err) end)
--   uv.run()          -- returns by itself once every request is done
--   h:detach()
--
-- One `uv.new_poll` on `client:pollfd()` and one `uv` timer set from
-- `client:timeout()`; either calls `client:poll(0)`, so callbacks (`on_done`)
-- run on the loop. With nothing pending both handles are stopped, and a
-- submit starts them again. `uv` is the luv module bound to the loop to use
-- (default `require "luv"`; in Neovim `vim.uv`).
-- @module zcrm.luv

local M = {}

local Handle = {}
Handle.__index = Handle
Handle.__name = "zcrm.luv"

--- Stops driving the client and closes the adapter's handles. Idempotent.
function Handle:detach()
  if self.detached then return end
  self.detached = true
  local e = self.client._engine
  if e.wake_host == self.wake then e.wake_host = nil end
  for _, h in ipairs { self.poll, self.timer } do
    if not h:is_closing() then h:close() end
  end
  -- Outside uv.run, let the closes complete now: luv 1.44 (Debian 12) crashes
  -- at exit on a handle closed but never finished by the loop.
  if self.uv.loop_mode and self.uv.loop_mode() == nil then self.uv.run("nowait") end
end

--- Attaches `client` to the loop of `uv`. Returns a handle with `:detach()`;
-- raises when the client has no pollable descriptor (no epoll) or is
-- attached already.
function M.attach(client, uv)
  uv = uv or require "luv"
  if client._engine.wake_host then error("zcrm.luv: the client is attached to a loop already", 2) end
  local fd, err = client:pollfd()
  if not fd then error("zcrm.luv: " .. tostring(err), 2) end
  local self = setmetatable({ client = client, uv = uv, poll = uv.new_poll(fd), timer = uv.new_timer() }, Handle)
  local polling = false
  local drive

  -- Watches the descriptor and sets the timer while anything is pending;
  -- stops both once the client is idle, so uv.run() can return.
  local function rearm()
    if self.detached then return end
    local t = client:timeout()
    if t == nil and client:pending() == 0 then
      if polling then self.poll:stop(); polling = false end
      self.timer:stop()
      return
    end
    if not polling then self.poll:start("r", drive); polling = true end
    if t then self.timer:start(math.ceil(t * 1000), 0, drive) else self.timer:stop() end
  end

  function drive()
    if self.detached then return end
    client:poll(0)
    rearm()
  end

  self.wake = rearm
  client._engine.wake_host = rearm
  rearm()
  return self
end

return M
