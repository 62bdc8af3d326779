-- zcrm clients aimed at an emulator, and counts of the requests it served.
--
--   local clients = require "spec.support.client"
--   local new_client = clients.maker { retry_base = 0.01 }
--   local client = new_client(emu, { concurrency = 4 })
--   clients.requests(emu [, route]), clients.puts(emu)

local M = {}

--- The route of a single-module update, as the emulator's stats name it.
M.PUT_ROUTE = "PUT /crm/v8/settings/modules/{module}"

--- A function `new_client(emu, opts)` that returns a client of `emu` with the
-- emulator's token and no environment, `defaults` over that and `opts` over
-- both; it raises if zcrm.new fails.
function M.maker(defaults)
  -- Required here, so that a spec that only counts requests (cli_spec runs
  -- bin/zcrm in child processes) does not load zcrm itself.
  local zcrm = require "zcrm"
  return function(emu, opts)
    local o = { api_domain = emu.url, access_token = "emulator-token", env = false }
    for k, v in pairs(defaults or {}) do o[k] = v end
    for k, v in pairs(opts or {}) do o[k] = v end
    return assert(zcrm.new(o))
  end
end

--- The requests `emu` served on `route` ("METHOD /path" as its stats name
-- it), or in all when `route` is nil.
function M.requests(emu, route)
  local r = emu:stats().requests
  if route then return r.by_route[route] or 0 end
  return r.total
end

--- The single-module updates (PUT settings/modules/{module}) `emu` served.
function M.puts(emu)
  return M.requests(emu, M.PUT_ROUTE)
end

return M
