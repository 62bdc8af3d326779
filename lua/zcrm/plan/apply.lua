--- Applying a plan: many module updates as one change.
--
-- A plan is a list of entries `{ module =, plural_label =, singular_label =,
-- profiles = }`. `apply` checks every entry before anything is sent, can read the
-- current state to diff against it and to write an undo plan, sends the updates
-- concurrently through the engine, and records each completed item in an
-- append-only journal, so that a run killed at any point resumes without
-- repeating what completed.
--
-- Returns: `apply` gives a report table, or `nil, err` when nothing could be sent
-- (an invalid plan, a state read that failed, a journal that cannot be opened).
-- Failures of single entries are in `report.failed`, not an error return: a bulk
-- run that is half done is a result to read, like Zoho's 207.
-- @module zcrm.plan.apply

local core = require "zcrm.core"
local options = require "zcrm.options"
local check = require "zcrm.plan.check"
local load = require "zcrm.plan.load"
local st = require "zcrm.plan.state"
local jn = require "zcrm.plan.journal"

local M = {}

-- {==== apply

--- The options of `client:apply` (name -> Lua type). An unknown or mistyped
-- option raises: a `dryrun = true` typo must not apply for real.
-- @table options
-- @tfield boolean dry_run check, diff if asked, and report what would be sent; send nothing
-- @tfield boolean diff read the current state; skip entries that change nothing
-- and send only the fields that differ
-- @tfield string undo_file before the first update, write a plan that restores the state read
-- @tfield string journal the journal's path: completed items are recorded, a rerun skips them
-- @tfield boolean partial send the valid entries even when some are invalid
-- @tfield integer concurrency updates in flight at most (default and cap: the client's)
-- @tfield function on_result `function(entry, res, err)` after each update completes
-- @tfield function on_progress `function(done, total)`, first with done = 0
-- @tfield function on_plan `function(report)` once the plan is checked, before anything is sent
-- @tfield boolean read_state read the current state (as diff and undo_file do) without diffing
-- @tfield table args the plan function's `ctx.args`
-- @tfield string dir the directory a plan function's `ctx.path` resolves against
local KNOWN_OPTIONS = {
  dry_run = "boolean", diff = "boolean", undo_file = "string", journal = "string",
  partial = "boolean", concurrency = "number", on_result = "function", on_progress = "function",
  on_plan = "function",
  read_state = "boolean", args = "table", dir = "string",
}

M.OPTIONS = KNOWN_OPTIONS

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("apply: opts must be a table", 3) end
  local message = options.check_types(opts, KNOWN_OPTIONS)
  if message then error("apply: " .. message, 3) end
  local c = opts.concurrency
  if c ~= nil and (math.type(c) ~= "integer" or c < 1) then error("apply: concurrency must be a positive integer", 3) end
  return opts
end

-- Errors after which sending more cannot succeed: stop, and report what was not sent.
local function fatal(err)
  return err.kind == "auth" or err.kind == "config" or err.kind == "io" or err.code == "CREDIT_LIMIT"
end

local function error_fields(err)
  if not core.is_error(err) then return { code = "ERROR", message = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, message = err.message, field = err.field }
end

-- Calls a user callback; an error in it is kept, never breaks the run.
local function call_back(report, fn, ...)
  if not fn then return end
  local ok, err = pcall(fn, ...)
  if not ok then report.callback_errors[#report.callback_errors + 1] = tostring(err) end
end

-- Runs the checks; returns the valid items, or nil, err. Duplicates are looked
-- for among all entries that name a module, even those invalid for another reason.
local function prepare(client, list, opts, report)
  local state
  local against_state
  if opts.diff or opts.undo_file or opts.read_state then
    against_state = function(items, faults)
      local err
      state, err = st.read_state(client, items)
      if not state then return nil, err end
      for _, item in ipairs(items) do
        local ok, serr = st.check_against_state(item, state)
        if not ok then faults[#faults + 1] = check.entry_fault(item, serr) end
      end
      return true
    end
  end
  local items, faults = check.plan(list, against_state)
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

local function change_report(item)
  local c = item.change
  return {
    index = item.index, module = c.module, id = c.id,
    plural_label = c.plural_label, singular_label = c.singular_label,
    granted = c.granted, revoked = c.revoked,
  }
end

-- Decides, per item, whether it is sent and what is sent.
local function plan_work(items, opts, journal, report)
  local work = {}
  for _, item in ipairs(items) do
    if item.change and not item.change.noop then report.changes[#report.changes + 1] = change_report(item) end
    if journal and journal.applied[item.key] then
      report.skipped[#report.skipped + 1] = { index = item.index, module = item.module, reason = "journal" }
    elseif opts.diff and item.change.noop then
      report.skipped[#report.skipped + 1] = { index = item.index, module = item.module, reason = "no change" }
    else
      item.send = opts.diff and st.reduced_update(item.change) or item.update
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

-- Sends the work through the engine, at most `window` in flight, and handles
-- each completion here, in the caller's loop: journal line on disk first, then
-- the report and the callbacks.
local function send_all(client, work, opts, report, journal)
  local window = math.min(opts.concurrency or client.concurrency, client.concurrency)
  local total, done, next_i, in_flight = #work, 0, 1, 0
  local completed = {}
  call_back(report, opts.on_progress, 0, total)
  while done < total do
    while not report.aborted and in_flight < window and next_i <= total do
      local item = work[next_i]
      next_i = next_i + 1
      in_flight = in_flight + 1
      client:submit("_send_update", item.segment, item.send):on_done(function(res, err)
        completed[#completed + 1] = { item, res, err }
      end)
    end
    if in_flight == 0 then break end -- aborted, and nothing left in flight
    client:poll(0.05)
    local batch = completed
    completed = {}
    for _, c in ipairs(batch) do
      local item, res, err = c[1], c[2], c[3]
      in_flight, done = in_flight - 1, done + 1
      local ok, jerr = record_result(report, journal, item, res, err)
      if not ok then report.aborted = report.aborted or jerr end
      if err and fatal(err) then report.aborted = report.aborted or err end
      call_back(report, opts.on_result, item.entry, res, err)
      call_back(report, opts.on_progress, done, total)
    end
  end
  for i = next_i, total do
    report.not_sent[#report.not_sent + 1] = { index = work[i].index, module = work[i].module }
  end
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
  return report
end

--- Applies a plan (this is `client:apply`). See doc/plans.md for the report's fields.
-- @tparam Client client
-- @tparam table|function|string plan a list of entries, a function of a
-- context returning one, or the path of a plan file
-- @tparam[opt] table opts see `options`
-- @treturn table|nil the report, or nil and a `zcrm.error` when nothing could be sent
function M.apply(client, plan, opts)
  opts = check_options(opts)
  local t0, credits0 = core.now(), client:credits()
  local ctx = { client = client, args = opts.args, dir = opts.dir }
  local list, lerr
  if type(plan) == "string" then
    list, lerr = load.load(plan, ctx)
  else
    list, lerr = load.build(plan, ctx)
  end
  if not list then return nil, lerr end
  local report = new_report(list, opts)
  local items, err, state = prepare(client, list, opts, report)
  if not items then return nil, err end

  local journal
  if opts.journal then
    journal, err = jn.open(opts.journal, opts.dry_run)
    if not journal then return nil, err end
    for _, item in ipairs(items) do jn.set_key(item) end
  end
  local undo_notes
  if state then report.undo, undo_notes = st.undo_entries(items, state, journal) end
  local work = plan_work(items, opts, journal, report)
  report.would_send = {}
  for _, item in ipairs(work) do
    report.would_send[#report.would_send + 1] = { index = item.index, module = item.module, update = item.send }
  end
  call_back(report, opts.on_plan, report)
  if opts.dry_run then return finish(client, report, t0, credits0) end

  if state and journal and not journal.state then
    local ok, werr = journal:write(jn.state_record(items))
    if not ok then journal:close(); return nil, werr end
  end
  if opts.undo_file then
    -- Written whole to a temporary file, then renamed: a reader never sees half a plan.
    local ok, uerr = core.write_private_file(opts.undo_file,
      st.undo_source(report.undo, undo_notes, "on " .. os.date("!%Y-%m-%d %H:%M:%S UTC")))
    if not ok then
      if journal then journal:close() end
      return nil, check.io_error("UNDO_FILE_ERROR", "cannot write undo plan: " .. tostring(uerr))
    end
    report.undo_file = opts.undo_file
  end

  send_all(client, work, opts, report, journal)
  if journal then journal:close() end
  return finish(client, report, t0, credits0)
end

-- }====


return M
