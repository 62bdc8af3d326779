--- What a bulk run does with what happens during it, the same for a plan
-- (`zcrm.plan.apply`) and a change set (`zcrm.plan.changes`): a user
-- callback that raises is noted and the run goes on; an error that every
-- further call would share stops the run.
-- @module zcrm.plan.policy

local M = {}

-- Errors that every further call would share (token, scope, DNS, TLS,
-- credits): after the first, sending more cannot succeed, so the run stops
-- and reports what was not sent. A refused connection can also be one
-- request's bad luck (each has been retried already): three in a row, with
-- no other result between them, mean the host is gone.
local SHARED = { CREDIT_LIMIT = true, DNS_ERROR = true, TLS_ERROR = true }
M.REFUSED_IN_A_ROW = 3

--- stop_rule() -> a function `stops(err)` for one run, called with each
-- completed call's error (nil for a success, in the order they complete):
-- true when the run must stop. It counts the refused connections in a row.
function M.stop_rule()
  local refused = 0
  return function(err)
    refused = err and err.code == "CONNECTION_FAILED" and refused + 1 or 0
    if not err then return false end
    return err.kind == "auth" or err.kind == "config" or err.kind == "io" or SHARED[err.code] == true
      or refused >= M.REFUSED_IN_A_ROW
  end
end

--- call_back(report, fn, ...): calls a user callback (none when fn is nil); an
-- error it raises is kept in `report.callback_errors` and never breaks the run.
function M.call_back(report, fn, ...)
  if not fn then return end
  local ok, err = pcall(fn, ...)
  if not ok then report.callback_errors[#report.callback_errors + 1] = tostring(err) end
end

return M
