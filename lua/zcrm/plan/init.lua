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

--- Runs a plan file (a Lua file returning a list of entries, or a function
-- of `ctx` returning one) and builds its entries.
-- @function load
-- @tparam string path the plan file
-- @tparam[opt] table ctx `args` (the plan function's `ctx.args`), `dir`
-- (what `ctx.path` resolves against; default: the file's directory), `client`
-- @treturn table|nil the list of entries, or nil and a `zcrm.error` (INVALID_PLAN)
M.load = load.load

--- Builds a plan's entries: a list as it is, or the list a plan function
-- returns for `ctx` (`client`, `dir`, `args`, `read_csv`, `path(p)`).
-- @function build
-- @tparam table|function plan
-- @tparam[opt] table ctx as for `load`
-- @treturn table|nil the list of entries, or nil and a `zcrm.error` (INVALID_PLAN)
M.build = load.build

--- Reads a CSV file (RFC 4180; a BOM is skipped) into records keyed by the
-- header row's names, for plans built from spreadsheets.
-- @function read_csv
-- @tparam string path
-- @treturn table|nil the records, or nil and a message
M.read_csv = load.read_csv

--- Parses CSV text (RFC 4180: quoted fields, `""` inside quotes, CRLF or LF).
-- @function parse_csv
-- @tparam string text
-- @treturn table|nil the rows (each a list of strings), or nil and a message
M.parse_csv = load.parse_csv

--- What identifies an entry's content in a journal: 16 hex digits of its
-- canonical form's FNV-1a 64 hash (the same entry, the same hash).
-- @function hash
-- @tparam table entry a plan entry
-- @treturn string
M.hash = journal.hash

--- The text of a plan file that applies `entries` (every value an escaped
-- Lua literal): how undo plans are written.
-- @function undo_source
-- @tparam table entries plan entries
-- @tparam[opt] table notes `notes[i] = { id =, names = { [profile id] = name } }`,
-- shown as comments beside entry i
-- @tparam[opt] string heading a first comment line
-- @treturn string
M.undo_source = state.undo_source

--- Applies a plan: `client:apply(plan, opts)`, as a function.
-- @function apply
-- @tparam Client client
-- @tparam table|function|string plan
-- @tparam[opt] table opts see `zcrm.plan.apply.options`
-- @treturn table|nil the report (doc/plans.md), or nil and a `zcrm.error`
M.apply = apply.apply

--- Checks a plan without a network: every entry as `zcrm.validate_update`
-- does, and the plan as a whole (duplicates, `profile_set`). The checks that
-- need the org's current state run in apply (with diff or undo_file).
-- @tparam table|function plan
-- @tparam[opt] table ctx as for `load`
-- @treturn true|nil true, or nil and a `zcrm.error` (INVALID_PLAN,
-- `details.errors = { { index =, module =, error = }, ... }`)
function M.validate(plan, ctx)
  local list, lerr = load.build(plan, ctx)
  if not list then return nil, lerr end
  local _, faults = check.plan(list)
  if #faults > 0 then return nil, check.invalid_plan(faults, #list) end
  return true
end

return M
