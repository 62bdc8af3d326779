--- What a bulk run does with what happens during it, the same for a plan
-- (`zcrm.plan.apply`) and a change set (`zcrm.plan.changeset_apply`): a user
-- callback that raises is noted and the run goes on; an error that every
-- further call would share stops the run; `only` and `exclude` narrow it;
-- `pump` keeps a run's calls in flight.
-- @module zcrm.plan.policy

local core = require "zcrm.core"

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

--- select(list, only, exclude, name_of) -> the entries of `list` that `only`
-- (when given) names and `exclude` does not, or nil, err (INVALID_ARGUMENT)
-- when a name matches no entry. Each entry is named by `name_of(entry)`, a
-- list of the names it answers to (its API name, its id).
function M.select(list, only, exclude, name_of)
  if only == nil and exclude == nil then return list end
  local names = {}
  for _, e in ipairs(list) do
    for _, n in ipairs(name_of(e)) do names[n] = true end
  end
  local function set_of(t, flag)
    local set = {}
    for _, n in ipairs(t or {}) do
      n = tostring(n)
      if not names[n] then
        return nil, core.error { kind = "validation", code = "INVALID_ARGUMENT", field = flag,
          message = string.format("%s names module %q, which is not in the plan", flag, n),
          resolution = "Give API names or ids of modules the plan changes (zcrm show or zcrm plan lists them)." }
      end
      set[n] = true
    end
    return set
  end
  local keep, err = set_of(only, "only")
  if not keep then return nil, err end
  local drop
  drop, err = set_of(exclude, "exclude")
  if not drop then return nil, err end
  local out = {}
  for _, e in ipairs(list) do
    local wanted, dropped = only == nil, false
    for _, n in ipairs(name_of(e)) do
      if keep[n] then wanted = true end
      if drop[n] then dropped = true end
    end
    if wanted and not dropped then out[#out + 1] = e end
  end
  return out
end

--- estimate(costs, items) -> the credits sending `items` costs (the API
-- Limits page's costs: `costs.create_module` for an item with `create`,
-- `costs.update_module` for any other). `costs` is a client's
-- `credit_costs`, or `zcrm.http.DEFAULT_COSTS` with no client at hand.
function M.estimate(costs, items)
  local n = 0
  for _, item in ipairs(items) do
    n = n + ((item.create and costs.create_module or costs.update_module) or 0)
  end
  return n
end

--- budget_error(estimate, max) -> the error of a run whose estimate is over
-- its budget (`max_credits`): nothing is sent.
function M.budget_error(estimate, max)
  return core.error { kind = "limit", code = "MAX_CREDITS_EXCEEDED", retryable = false,
    message = string.format("the run would spend %d credits, more than the %d allowed; nothing was sent",
      estimate, max), details = { estimate = estimate, max_credits = max },
    resolution = "Raise the limit (--max-credits), or narrow the run with --only or --exclude." }
end

--- pump(client, items, window, submit, handle, opts, report): runs `submit(item)` (a zcrm.request) for each item, at most `window` at
-- once, in the caller's loop, and `handle(item, res, err)` for each one that
-- completes. Once opts.stop() is true (report.interrupted) or report.aborted,
-- nothing new starts; those in flight get opts.stop_grace seconds, then are
-- cancelled. The window narrows to the engine's limit (lowered after a 429),
-- so that what has started is what is in flight, not queued in the engine
-- where a stop would not hold it. Returns the index of the first item not started.
function M.pump(client, items, window, submit, handle, opts, report)
  local next_i, in_flight, completed, live, deadline = 1, 0, {}, {}, nil
  while true do
    if not report.interrupted and opts.stop and opts.stop() then
      report.interrupted = true
      deadline = core.now() + (opts.stop_grace or 5)
    end
    while not report.aborted and not report.interrupted and in_flight < window and in_flight < client:limit()
        and next_i <= #items do
      local item = items[next_i]
      next_i, in_flight = next_i + 1, in_flight + 1
      local req, ended
      req = submit(item):on_done(function(res, err)
        ended = true                         -- may be at once, inside submit
        if req then live[req] = nil end
        completed[#completed + 1] = { item, res, err }
      end)
      if not ended then live[req] = true end
    end
    if in_flight == 0 then break end
    if deadline and core.now() >= deadline then
      for req in pairs(live) do req:cancel() end
    end
    client:poll(0.05)
    local done = completed
    completed = {}
    for _, e in ipairs(done) do
      in_flight = in_flight - 1
      handle(e[1], e[2], e[3])
    end
  end
  return next_i
end

return M
