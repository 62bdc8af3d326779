--- Plans: `require "zcrm.plan"`. Its files, each with one job:
--
-- - `zcrm.plan.load`: plan files, plan functions, CSV files;
-- - `zcrm.plan.check`: checks that need no network, and the plan's errors;
-- - `zcrm.plan.state`: the org's current state, the diff, the undo plan;
-- - `zcrm.plan.journal`: the audit record of a run (never a reason to skip);
-- - `zcrm.plan.apply`: the run itself (`client:apply`);
-- - `zcrm.plan.policy`: when a run stops, and user callbacks (change sets too).
-- @module zcrm.plan

local check = require "zcrm.plan.check"
local load = require "zcrm.plan.load"
local state = require "zcrm.plan.state"
local journal = require "zcrm.plan.journal"
local apply = require "zcrm.plan.apply"

local M = {}

M.load = load.load
M.build = load.build
M.read_csv = load.read_csv
M.parse_csv = load.parse_csv
M.hash = journal.hash
M.undo_source = state.undo_source
M.apply = apply.apply

--- validate(plan, ctx) -> true, or nil, err (code INVALID_PLAN, err.details.errors =
-- { { index =, module =, error = }, ... }). No network: the checks that need the
-- org's current state run in apply (with diff or undo_file).
function M.validate(plan, ctx)
  local list, lerr = load.build(plan, ctx)
  if not list then return nil, lerr end
  local _, faults = check.plan(list)
  if #faults > 0 then return nil, check.invalid_plan(faults, #list) end
  return true
end

return M
