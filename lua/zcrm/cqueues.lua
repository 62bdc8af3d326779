--- zcrm.cqueues: blocking-style client calls that yield to cqueues.
--
--   local cqueues = require "cqueues"
--   require("zcrm.cqueues").attach(client)
--   local cq = cqueues.new()
--   cq:wrap(function() print(client:update_module("Leads", { plural_label = "Prospects" })) end)
--   cq:wrap(function() for _ = 1, 10 do cqueues.sleep(0.01) end end)  -- keeps running
--   assert(cq:loop())
--
-- Once attached, every call that would block (`update_module`, `get_modules`,
-- `apply`, `wait`, `drain`, `poll(t)`), made from a coroutine that a cqueues
-- controller runs, waits in `cqueues.poll(client, t)` instead: the controller
-- runs its other coroutines meanwhile. The client is a cqueues pollable
-- (`pollfd()`, `events()` = "r", `timeout()`). Outside a controller the
-- calls block as before.
-- @module zcrm.cqueues

local cqueues = require "cqueues"

local M = {}

local function host_wait(client, wait)
  local cq, inside = cqueues.running() -- inside: in one of cq's own coroutines
  if not (cq and inside) then return false end
  cqueues.poll(client, wait)
  return true
end

--- Makes `client`'s blocking calls yield to cqueues. Returns a handle with
-- `:detach()`; raises when the client has no pollable descriptor (no epoll).
function M.attach(client)
  local fd, err = client:pollfd()
  if not fd then error("zcrm.cqueues: " .. tostring(err), 2) end
  client._engine.host_wait = host_wait
  return {
    detach = function()
      if client._engine.host_wait == host_wait then client._engine.host_wait = nil end
    end,
  }
end

return M
