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
-- calls block as before. The adapter is the client's one host hook,
-- `client:set_host`.
-- @module zcrm.cqueues

local cqueues = require "cqueues"

local M = {}

--- Makes `client`'s blocking calls yield to cqueues. Returns a handle with
-- `:detach()`; raises when the client has no pollable descriptor (no epoll).
-- Closing the client wakes the coroutines waiting on it (results: CLOSED).
-- An error raised in a coroutine is cqueues' to report: `cq:loop()` returns
-- it, and calling `cq:loop()` again runs the other coroutines on.
-- @tparam Client client
-- @treturn table the handle (`:detach()`)
function M.attach(client)
  local fd, err = client:pollfd()
  if not fd then error("zcrm.cqueues: " .. tostring(err), 2) end
  local host = {
    -- Inside one of a controller's own coroutines: wait in cqueues.poll.
    wait = function(wait)
      local cq, inside = cqueues.running()
      if not (cq and inside) or not client:pollfd() then return nil end
      cqueues.poll(client, wait)
      return 0
    end,
    -- Before the client's descriptor closes: wakes every coroutine polling
    -- it, in any controller (its requests end as CLOSED), so no controller
    -- is left watching a closed descriptor.
    close = function()
      local pfd = client:pollfd()
      if pfd then cqueues.cancel(pfd) end
    end,
  }
  client:set_host(host)
  return {
    detach = function()
      local before = client:set_host(nil)
      if before ~= host then client:set_host(before) end
    end,
  }
end

return M
