-- zcrm clients aimed at an emulator, and counts of the requests it served.
--
--   local clients = require "spec.support.client"
--   local new_client = clients.maker { retry_base = 0.01 }
--   local client = new_client(emu, { concurrency = 4 })
--   clients.requests(emu [, route]), clients.puts(emu)   (spec.support.state's)

local M = {}

--- The route of a single-module update, as the emulator's stats name it.
M.PUT_ROUTE = require("spec.support.state").PUT_ROUTE

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

-- Request counts live in spec/support/state.lua; these names stay for the
-- specs that count through this module.
local state = require "spec.support.state"
M.requests, M.puts = state.requests, state.puts

return M
