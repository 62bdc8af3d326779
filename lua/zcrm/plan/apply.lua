--- Applying a plan: many module updates as one change.
--
-- A plan is a list of entries `{ module =, plural_label =, singular_label =,
-- profiles = }`. `apply` checks every entry before anything is sent, can read the
-- current state to diff against it and to write an undo plan, sends the updates
-- concurrently through the engine, and records each completed item in an
-- append-only journal (an audit record). With the state read, a run killed at
-- any point is resumed by running it again: only what the org lacks is sent.
--
-- Returns: `apply` gives a report table, or `nil, err` when nothing could be sent
-- (an invalid plan, a state read that failed, a journal that cannot be opened).
-- Failures of single entries are in `report.failed`, not an error return: a bulk
-- run that is half done is a result to read, like Zoho's 207.
--
-- One job: a run whose stages (check, read, send, journal, report) share
-- one run state.
-- @module zcrm.plan.apply

local core = require "zcrm.core"
local modules = require "zcrm.modules"
local options = require "zcrm.options"
local check = require "zcrm.plan.check"
local load = require "zcrm.plan.load"
local st = require "zcrm.plan.state"
local jn = require "zcrm.plan.journal"
local policy = require "zcrm.plan.policy"

local call_back = policy.call_back

local M = {}

-- {==== apply

-- An undo plan is the way back: one that exists is never replaced.
local function undo_exists(path)
  return core.error { kind = "io", code = "UNDO_FILE_EXISTS", retryable = false,
    message = string.format("the undo file %s already exists; nothing was sent", path),
    resolution = "Give undo_file (zcrm apply --undo) a new file name, or move the old one away first." }
end

--- write_undo(path, text) -> true, or nil, err: the undo plan, in a file
-- that must not exist yet (UNDO_FILE_EXISTS when it does).
-- @local
function M.write_undo(path, text)
  local ok, err, exists = check.write_new(path, text, "undo plan", "UNDO_FILE_ERROR")
  if exists then return nil, undo_exists(path) end -- made since the check at the start
  return ok, err
end
M.undo_exists = undo_exists

--- The options of `client:apply` (a schema of `zcrm.options.check`). An
-- unknown, mistyped or out-of-range option is `nil, err` (INVALID_CONFIG,
-- nothing sent): a `dryrun = true` typo must not apply for real.
-- @table options
-- @tfield boolean dry_run check, diff, and report what would be sent; send nothing
-- @tfield boolean diff read the current state; skip entries that change nothing
-- and send only the fields that differ (default true: a rerun converges; false
-- sends every entry as written)
-- @tfield string undo_file before the first update, write a plan that restores the state read;
-- the file must not exist (UNDO_FILE_EXISTS, nothing is sent)
-- @tfield string journal the journal's path: an audit record of completed items (a rerun skips
-- nothing because of it)
-- @tfield boolean partial send the valid entries even when some are invalid
-- @tfield integer concurrency updates in flight at most (default and cap: the client's)
-- @tfield function on_result `function(entry, res, err)` after each update completes
-- @tfield function on_progress `function(done, total)`, first with done = 0
-- @tfield function on_plan `function(report)` once the plan is checked, before anything is sent
-- @tfield function confirm `function(report)` after on_plan, when there is something to send: anything
-- but a true result sends nothing (`report.declined`, the entries in `report.not_sent`)
-- @tfield function stop `function()` asked before each new update is sent: once true, nothing more is
-- sent (`report.interrupted`); those in flight get `stop_grace` seconds, then are cancelled
-- @tfield number stop_grace seconds the updates in flight get after `stop` (default 5)
-- @tfield boolean read_state read the current state (as diff and undo_file do) without diffing
-- @tfield table args the plan function's `ctx.args`
-- @tfield string dir the directory a plan function's `ctx.path` resolves against
-- @tfield table only API names or ids of the modules to apply (the others are left out);
-- a name no entry has is INVALID_ARGUMENT, nothing sent
-- @tfield table exclude API names or ids of the modules to leave out (the same rule)
-- @tfield number max_credits refuse the run (MAX_CREDITS_EXCEEDED, nothing sent) when its
-- updates would spend more credits than this
-- @tfield boolean batch send updates 100 modules per call (PUT /settings/modules); a server
-- that refuses it gets one module per call, said once in `report.batch_fallback`
local KNOWN_OPTIONS = {
  dry_run = "boolean", diff = "boolean", undo_file = "string", journal = "string",
  partial = "boolean", concurrency = { type = "integer", min = 1 }, on_result = "function",
  on_progress = "function", on_plan = "function", confirm = "function", stop = "function",
  stop_grace = { type = "number", min = 0 }, read_state = "boolean", args = "table", dir = "string",
  batch = "boolean", only = "table", exclude = "table", max_credits = { type = "integer", min = 0 },
}

M.OPTIONS = KNOWN_OPTIONS

local function check_options(opts)
  local _, err = options.check(opts, KNOWN_OPTIONS, "apply")
  if err then return nil, err end
  local copy = {}
  for k, v in pairs(opts or {}) do copy[k] = v end
  if copy.diff == nil then copy.diff = true end -- compare with the org: a rerun converges
  return copy
end

-- The plan's entries that opts.only names and opts.exclude does not; each
-- entry answers to its module's API name and id (read from the org).
local function narrow(client, list, opts)
  if opts.only == nil and opts.exclude == nil then return list end
  local mods, err = client:get_modules()
  if not mods then return nil, err end
  local alias = {}
  for _, m in ipairs(mods) do
    local pair = { tostring(m.api_name), tostring(m.id) }
    alias[pair[1]], alias[pair[2]] = pair, pair
  end
  return policy.select(list, opts.only, opts.exclude, function(entry)
    if type(entry) ~= "table" or entry.module == nil then return {} end
    local name = tostring(entry.module)
    return alias[name] or { name }
  end)
end


local function error_fields(err)
  if not core.is_error(err) then return { code = "ERROR", message = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, message = err.message, field = err.field }
end

-- An exact profile set needs the state: its revokes depend on who has access.
local function needs_state(list)
  for _, entry in ipairs(list) do
    if type(entry) == "table" and entry.profile_set ~= nil then return true end
  end
  return false
end

-- Runs the checks; returns the valid items, or nil, err. Duplicates are looked
-- for among all entries that name a module, even those invalid for another reason.
-- The state read is kept in `known.state` (see `apply`).
local function prepare(client, list, opts, report, known)
  local state
  local against_state
  if opts.diff or opts.undo_file or opts.read_state or needs_state(list) then
    against_state = function(items, faults)
      -- A plan with faults found offline sends no request at all, not even a read.
      if #faults > 0 and not opts.partial then return true end
      local err
      state, err = st.read_state(client, items, known and known.state)
      if not state then return nil, err end
      if known then known.state = state end
      for _, item in ipairs(items) do
        local ok, serr = st.check_against_state(item, state)
        if not ok then faults[#faults + 1] = check.entry_fault(item, serr) end
      end
      return true
    end
  end
  local items, faults = check.plan(list, against_state, client.label_rules)
  if not items then return nil, faults end
  if #faults == 0 then return items, nil, state end
  if not opts.partial then return nil, check.invalid_plan(faults, #list) end
  local bad = {}
  for _, f in ipairs(faults) do bad[f.index] = true end
  local valid = {}
  for _, item in ipairs(items) do
    if not bad[item.index] then valid[#valid + 1] = item end
  end
  report.invalid = faults
  return valid, nil, state
end

-- The plan's entries as plain data (tables without metatables, at most
-- four deep: entry, profiles, profile, value), or nil when they hold
-- anything else. A two-pass run keeps this copy of its first pass's entries;
-- the second pass reuses the first's checks when its entries are the same.
local function plain_copy(v, depth)
  if type(v) ~= "table" then return v end
  if depth == 0 or getmetatable(v) ~= nil then return nil end
  local c = {}
  for k, x in pairs(v) do
    local y = plain_copy(x, depth - 1)
    if y == nil then return nil end
    c[k] = y
  end
  return c
end

local function same_plain(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return rawequal(a, b) end
  if getmetatable(a) ~= nil then return false end
  local n = 0
  for k, x in pairs(a) do
    if not same_plain(x, b[k]) then return false end
    n = n + 1
  end
  for _ in pairs(b) do n = n - 1 end
  return n == 0
end

local function change_report(item)
  local c = item.change
  return {
    index = item.index, module = c.module, id = c.id, create = c.create,
    plural_label = c.plural_label, singular_label = c.singular_label,
    granted = c.granted, revoked = c.revoked, before = item.current, names = item.names,
  }
end

-- Decides, per item, whether it is sent and what is sent. Only the live
-- state skips an entry: the journal is an audit record, and a change it lists
-- may have been undone since.
local function plan_work(items, opts, report)
  local work = {}
  for _, item in ipairs(items) do
    if item.change and not item.change.noop then report.changes[#report.changes + 1] = change_report(item) end
    if (opts.diff or item.profile_set) and item.change.noop then
      report.skipped[#report.skipped + 1] = { index = item.index, module = item.module, reason = "no change" }
    else
      -- A new module is sent whole. An entry with an exact profile set says how
      -- the module should be, so it is always compared with the state: only
      -- what differs is sent; other updates too with diff.
      item.send = ((opts.diff or item.profile_set) and not item.create) and st.reduced_update(item.change)
        or item.update
      work[#work + 1] = item
    end
  end
  return work
end

local function record_result(report, journal, item, res, err)
  if res then
    report.applied[#report.applied + 1] = { index = item.index, module = item.module, id = res.id, code = res.code }
  else
    report.failed[#report.failed + 1] = { index = item.index, module = item.module, error = err }
  end
  if not journal then return true end
  local rec = { kind = "item", key = item.key, index = item.index, module = item.module, hash = item.hash,
                time = os.time() }
  if res then
    rec.status, rec.code, rec.id = "applied", res.code, res.id
  else
    rec.status, rec.error = "failed", error_fields(err)
  end
  return journal:write(rec)
end

-- The calls to make: with `batch`, the updates in groups `{ group = items }` of
-- at most modules.BATCH_MAX (one PUT settings/modules each); otherwise, and for
-- creates always (Zoho creates one module per POST), the items themselves.
local function batch_units(work)
  local list, group = {}, nil
  for _, item in ipairs(work) do
    if item.create then
      list[#list + 1] = item
    else
      if not group or #group == modules.BATCH_MAX then
        group = {}
        list[#list + 1] = { group = group }
      end
      group[#group + 1] = item
    end
  end
  return list
end

-- Starts one call (a zcrm.request); for a group, its result is the list of
-- per-module results.
local function submit_unit(client, unit)
  if unit.group then
    local list = {}
    for i, it in ipairs(unit.group) do list[i] = { it.current and it.current.id or it.segment, it.send } end
    return client:submit("_send_updates", list)
  elseif unit.create then
    return client:submit("create_module", unit.send)
  end
  return client:submit("_send_update", unit.segment, unit.send)
end

-- Sends the work through the engine, at most `window` calls in flight (with
-- `batch`, a call carries up to 100 updates), and handles each completed item
-- here, in the caller's loop: journal line on disk first, then the report and
-- the callbacks. Once `opts.stop()` is true nothing new is sent; the calls in
-- flight get `opts.stop_grace` seconds, then are cancelled (policy.pump).
local function send_all(client, work, opts, report, journal)
  local window = math.min(opts.concurrency or client.concurrency, client.concurrency)
  local total, done = #work, 0
  local list = opts.batch and batch_units(work) or work
  local stops = policy.stop_rule()           -- errors every further call would share
  local function item_done(item, res, err)
    done = done + 1
    local ok, jerr = record_result(report, journal, item, res, err)
    if not ok then report.aborted = report.aborted or jerr end
    if stops(err) then report.aborted = report.aborted or err end
    call_back(report, opts.on_result, item.entry, res, err)
    call_back(report, opts.on_progress, done, total)
  end
  call_back(report, opts.on_progress, 0, total)
  local next_u = policy.pump(client, list, window, function(unit) return submit_unit(client, unit) end,
    function(unit, res, err)
      if not unit.group then return item_done(unit, res, err) end
      for i, it in ipairs(unit.group) do
        local r = res and res[i] or err
        if core.is_error(r) then item_done(it, nil, r) else item_done(it, r, nil) end
      end
    end, opts, report)
  for u = next_u, #list do
    for _, item in ipairs(list[u].group or { list[u] }) do
      report.not_sent[#report.not_sent + 1] = { index = item.index, module = item.module }
    end
  end
  if opts.batch then report.batch_fallback = modules.batch_fallback(client) end
end

local function new_report(list, opts)
  return {
    total = #list, dry_run = opts.dry_run == true, diff = opts.diff == true,
    applied = {}, skipped = {}, failed = {}, invalid = {}, not_sent = {}, changes = {},
    callback_errors = {}, journal = opts.journal, undo_file = nil,
  }
end

local function finish(client, report, t0, credits0)
  local spent, remaining = client:credits()
  report.credits = spent - credits0
  report.credits_remaining = remaining
  report.elapsed = core.now() - t0
  report.ok = #report.failed == 0 and #report.invalid == 0 and #report.not_sent == 0 and not report.aborted
    and not report.interrupted and not report.declined
  return report
end

--- Applies a plan (this is `client:apply`). See doc/plans.md for the report's fields.
-- @tparam Client client
-- @tparam table|function|string plan a list of entries, a function of a
-- context returning one, or the path of a plan file
-- @tparam[opt] table opts see `options`
-- @tparam[opt] table known for a run of two passes over one org (`zcrm.apply_orgs`
-- checks every org with a dry run, asks, then applies): `known.state` holds the
-- org's state once a pass has read it, and a later pass reads only what it lacks;
-- `known.checked` the first pass's checked entries, which a later pass whose
-- plan gives the same entries (the same plain values) uses instead of checking again
-- @treturn table|nil the report, or nil and a `zcrm.error` when nothing could be sent
-- @local
function M.apply(client, plan, opts, known)
  local oerr
  opts, oerr = check_options(opts)
  if not opts then return nil, oerr end
  for _, k in ipairs { "undo_file", "journal", "dir" } do
    local ok, perr = options.check_path(opts[k], k)
    if not ok then return nil, perr end
  end
  local t0, credits0 = core.now(), client:credits()
  local ctx = { client = client, args = opts.args, dir = opts.dir }
  local list, lerr
  if type(plan) == "string" then
    list, lerr = load.load(plan, ctx)
  else
    list, lerr = load.build(plan, ctx)
  end
  if not list then return nil, lerr end
  if opts.undo_file and core.file_mode(opts.undo_file) then return nil, undo_exists(opts.undo_file) end
  local excluded = #list
  list, lerr = narrow(client, list, opts)
  if not list then return nil, lerr end
  excluded = excluded - #list
  local report = new_report(list, opts)
  report.excluded = excluded
  -- The second pass of a two-pass run (known.checked, see below) whose plan
  -- gives the same entries against the same state: the first pass's checks
  -- stand, and are not made again.
  local items, err, state
  local checked = known and known.checked
  local how = (opts.partial and "partial" or "whole") .. ((opts.diff or opts.undo_file or opts.read_state) and "+state" or "")
  if checked and checked.how == how and checked.state == known.state and same_plain(list, checked.list) then
    items, state, report.invalid = checked.items, checked.state, checked.invalid
  else
    items, err, state = prepare(client, list, opts, report, known)
    if not items then return nil, err end
    if known then
      known.checked = { list = plain_copy(list, 4), how = how, items = items, state = state, invalid = report.invalid }
    end
  end

  local journal
  if opts.journal then
    journal, err = jn.open(opts.journal, opts.dry_run)
    if not journal then return nil, err end
    for _, item in ipairs(items) do jn.set_key(item) end
  end
  local undo_notes
  if state then report.undo, undo_notes = st.undo_entries(items, state, journal) end
  local work = plan_work(items, opts, report)
  report.would_send = {}
  for _, item in ipairs(work) do
    report.would_send[#report.would_send + 1] = { index = item.index, module = item.module, update = item.send }
  end
  report.estimate = policy.estimate(client.credit_costs, work)
  call_back(report, opts.on_plan, report)
  if opts.max_credits and report.estimate > opts.max_credits then
    if journal then journal:close() end
    return nil, policy.budget_error(report.estimate, opts.max_credits)
  end
  if opts.dry_run then
    if journal then journal:close() end
    return finish(client, report, t0, credits0)
  end
  if opts.confirm and #work > 0 then
    local w0 = core.now()
    local ok, yes = pcall(opts.confirm, report)
    t0 = t0 + (core.now() - w0) -- the wait at the question is not the run's time
    if not (ok and yes) then
      if not ok then report.callback_errors[#report.callback_errors + 1] = tostring(yes) end
      report.declined = true
      for _, item in ipairs(work) do report.not_sent[#report.not_sent + 1] = { index = item.index, module = item.module } end
      if journal then journal:close() end
      return finish(client, report, t0, credits0)
    end
  end

  if state and journal and not journal.state then
    local ok, werr = journal:write(jn.state_record(items))
    if not ok then journal:close(); return nil, werr end
  end
  if opts.undo_file then
    local ok, uerr = M.write_undo(opts.undo_file,
      st.undo_source(report.undo, undo_notes, "on " .. os.date("!%Y-%m-%d %H:%M:%S UTC")))
    if not ok then
      if journal then journal:close() end
      return nil, uerr
    end
    report.undo_file = opts.undo_file
  end

  send_all(client, work, opts, report, journal)
  if journal then journal:close() end
  return finish(client, report, t0, credits0)
end

-- }====


return M
