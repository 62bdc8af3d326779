--- Change sets made, diffed and applied: `client:plan`, `client:diff` and
-- `client:apply(changes)` (the values and the file format are
-- `zcrm.plan.changeset`'s).
--
--   client:plan(plan, opts)   -> change set: what applying `plan` to this org
--                                would change, read from the live state
--   client:apply(changes)     -> applies exactly that change set; a module that
--                                no longer has its "before" values is refused
--   client:diff(plan, opts)   -> the difference between the plan and the org
--
-- A change set is a table that encodes to JSON as it is (see `encode`):
--
--   { format = "zcrm.changes", version = 1, created = "2026-12-02T17:30:00Z",
--     api_domain = "https://www.zohoapis.eu", org = "2423488000000002175",
--     changes = { { module = "Projects", id = "2423488000000834005",
--                   before = { plural_label =, singular_label =, profiles = { { id =, name = } } },
--                   after  = { ... },
--                   body   = { <the update sent: only the fields that differ> } } } }
--
-- `org` identifies the org as the API shows it with the settings scope alone:
-- the smallest module id. Zoho's standard modules are created with the org and
-- cannot be deleted, and ids are unique to an org, so it stays the same for
-- the org's life and differs between orgs. (GET /org would give the org id but
-- needs the ZohoCRM.org.READ scope, which a settings script need not hold.)
-- @module zcrm.plan.changeset_apply

local core = require "zcrm.core"
local util = require "zcrm.util"
local options = require "zcrm.options"
local changeset = require "zcrm.plan.changeset"
local policy = require "zcrm.plan.policy"
local st = require "zcrm.plan.state"
local jn = require "zcrm.plan.journal"
local plan_apply = require "zcrm.plan.apply"

local M = {}

local FORMAT, VERSION, verror = changeset.FORMAT, changeset.VERSION, changeset.verror
local values, after_of = changeset.values, changeset.after_of
local current_values, difference = changeset.current_values, changeset.difference
local call_back = policy.call_back

-- {==== the org's identity

local function id_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

--- org_id(modules) -> the smallest module id (a digit string), or nil.
function M.org_id(modules)
  local best
  for _, m in ipairs(modules) do
    local id = type(m) == "table" and m.id
    if type(id) == "string" and id:match("^%d+$") and (not best or id_less(id, best)) then best = id end
  end
  return best
end

-- }====

-- {==== plan

--- The options of `client:plan` and `client:diff` (schemas of `zcrm.options.check`).
M.PLAN_OPTIONS = { args = "table", dir = "string", source = "string", only = "table", exclude = "table" }
M.DIFF_OPTIONS = { args = "table", dir = "string" }

-- The checked plan against the live state (a dry run with diff): the report.
local function dry_run(client, plan, opts)
  local plan_mod = require "zcrm.plan"
  local apply = plan_mod.apply_plan or plan_mod.apply
  return apply(client, plan, { dry_run = true, diff = true, args = opts.args, dir = opts.dir,
                               only = opts.only, exclude = opts.exclude })
end

-- The plan's arguments as the change set records them: the list of strings
-- a command line gave (ctx.args); other values are left out.
local function plan_args(args)
  local list = {}
  for _, a in ipairs(args or {}) do
    if type(a) == "string" then list[#list + 1] = a end
  end
  return list
end

-- A hash of the plan file's text (of a plan given as a path), so a reviewer
-- can tell the plan changed since the set was made.
local function plan_hash(plan)
  if type(plan) ~= "string" then return nil end
  local f = core.open_file(plan, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text and ("fnv1a64:" .. util.fnv1a64(text)) or nil
end

--- plan(client, plan, opts) -> change set, or nil, err (an invalid plan is
-- INVALID_PLAN, as in apply). opts: args (ctx.args), dir, source (the plan
-- file's path, kept in the change set; the default for a plan given as a
-- path), only and exclude (as in apply). The set records how it was made:
-- the plan's path, its arguments and a hash of its text, the zcrm version,
-- the time, the API domain and the org.
function M.plan(client, plan, opts)
  local oerr
  opts, oerr = options.check(opts, M.PLAN_OPTIONS, "plan")
  if not opts then return nil, oerr end
  local mods, merr = client:get_modules()
  if not mods then return nil, merr end
  local report, err = dry_run(client, plan, opts)
  if not report then return nil, err end
  local body_of = {}
  for _, w in ipairs(report.would_send) do body_of[w.index] = w.update end
  local changes = {}
  for _, c in ipairs(report.changes) do
    local names = c.names or {}
    changes[#changes + 1] = {
      module = c.module, id = c.id,
      before = values(c.before.plural_label, c.before.singular_label, c.before.profiles, names),
      after = after_of(c),
      body = body_of[c.index],
    }
  end
  local source = opts.source or (type(plan) == "string" and plan or nil)
  return {
    format = FORMAT, version = VERSION, created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    zcrm_version = require("zcrm")._VERSION,
    api_domain = client.api_domain, org = M.org_id(mods), plan = source,
    args = source and plan_args(opts.args) or nil, plan_hash = source and plan_hash(plan) or nil,
    -- the label rule the bodies were checked by, when not the default
    label_rules = client.label_rules ~= "reference" and client.label_rules or nil,
    changes = changes,
  }
end

--- diff(client, plan, opts) -> { changes = report.changes, same = { API names },
-- total = n, differs = bool }, or nil, err.
function M.diff(client, plan, opts)
  local oerr
  opts, oerr = options.check(opts, M.DIFF_OPTIONS, "diff")
  if not opts then return nil, oerr end
  local report, err = dry_run(client, plan, opts)
  if not report then return nil, err end
  local same = {}
  for _, s in ipairs(report.skipped) do
    if s.reason == "no change" then same[#same + 1] = s.module end
  end
  return { changes = report.changes, same = same, total = report.total, differs = #report.changes > 0 }
end

-- }====

-- {==== files: the change-set format (lua/zcrm/plan/changeset.lua)

M.read, M.write, M.is_changes = changeset.read, changeset.write, changeset.is_changes
M.encode, M.decode, M.check = changeset.encode, changeset.decode, changeset.check

-- }====

-- {==== apply

--- The options of `client:apply(changes)` (a schema of `zcrm.options.check`).
M.APPLY_OPTIONS = { on_result = "function", on_progress = "function", concurrency = { type = "integer", min = 1 },
                    stop = "function", stop_grace = { type = "number", min = 0 }, partial = "boolean",
                    dry_run = "boolean", journal = "string", undo_file = "string", only = "table",
                    exclude = "table", max_credits = { type = "integer", min = 0 }, on_plan = "function",
                    confirm = "function" }

local function change_names(c) return { c.module, c.id } end

local function invalid(i, c, message)
  return nil, verror("INVALID_CHANGES", string.format("changes[%d] (%s): %s; nothing was sent", i, c.module, message),
    string.format("changes[%d]", i))
end

-- Every module id and API name, profile id and profile name the set holds
-- must be the org's: a name shown for one profile cannot stand for another.
local function check_against_org(list, mods, profiles)
  local module_by_id, name_of = {}, {}
  for _, m in ipairs(mods) do module_by_id[tostring(m.id)] = m end
  for _, p in ipairs(profiles) do name_of[tostring(p.id)] = p.name end
  for i, c in ipairs(list) do
    local m = module_by_id[c.id]
    if not m then return invalid(i, c, "this org has no module with id " .. c.id) end
    if m.api_name ~= c.module then
      return invalid(i, c, string.format("module id %s is %s in this org, not %s", c.id, tostring(m.api_name), c.module))
    end
    for _, part in ipairs { "before", "after", "body" } do
      for _, p in ipairs(type(c[part].profiles) == "table" and c[part].profiles or {}) do
        local real = name_of[p.id]
        if not real then return invalid(i, c, string.format("%s names profile id %s, which this org lacks", part, p.id)) end
        if p.name ~= nil and p.name ~= real then
          return invalid(i, c, string.format("%s names profile %s %q, but in this org it is %q", part, p.id, p.name, real))
        end
      end
    end
  end
  return true
end
M.check_against_org = check_against_org

local function write_undo(path, list, changes)
  local entries, notes = {}, {}
  for _, c in ipairs(list) do
    local e, note = st.undo_entry(changeset.effect(c))
    if e.plural_label or e.singular_label or e.profiles then entries[#entries + 1], notes[#notes + 1] = e, note end
  end
  local text = st.undo_source(entries, notes, string.format("on %s for the change set planned %s",
    os.date("!%Y-%m-%d %H:%M:%S UTC"), tostring(changes.created)))
  return plan_apply.write_undo(path, text)
end


--- apply_changes(client, changes, opts) -> report, or nil, err when nothing
-- was sent: a malformed change set or one that names what the org lacks
-- (INVALID_CHANGES), one made for another org (ORG_MISMATCH), an unknown
-- name in `only`/`exclude` (INVALID_ARGUMENT), an estimate over
-- `max_credits` (MAX_CREDITS_EXCEEDED), an undo file that exists, or a state
-- read that failed.
--
-- Every module is read first. One at its `before` values is sent its body; one
-- already at its `after` values is `report.already` (not sent, not an error:
-- a rerun converges); any other has drifted and is in `report.refused`
-- (CHANGED_SINCE_PLAN, with what changed). Drift (or a failed read) refuses
-- the whole set: nothing is sent (`report.not_sent`) unless `opts.partial`.
-- Then `on_plan(report)`, `confirm(report)` as for a plan; a journal line per
-- completed update (`journal`), an undo plan that restores every `before`
-- (`undo_file`). The run stops as a plan's does (`zcrm.plan.policy`).
-- report.ok is true when every selected change is applied or already applied.
function M.apply(client, changes, opts)
  local oerr
  opts, oerr = options.check(opts, M.APPLY_OPTIONS, "apply")
  if not opts then return nil, oerr end
  local t0, credits0, waited = core.now(), client:credits(), 0
  local ok, cerr = M.check(changes)
  if not ok then return nil, cerr end
  if changes.api_domain ~= client.api_domain then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for %s, not %s",
      changes.api_domain, client.api_domain), "api_domain",
      { planned = changes.api_domain, target = client.api_domain })
  end
  local list, serr = policy.select(changes.changes, opts.only, opts.exclude, change_names)
  if not list then return nil, serr end
  if opts.undo_file and not opts.dry_run and core.file_mode(opts.undo_file) then
    return nil, plan_apply.undo_exists(opts.undo_file)
  end
  local mods, merr = client:get_modules()
  if not mods then return nil, merr end
  local org = M.org_id(mods)
  if org ~= changes.org then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for org %s; %s serves org %s",
      changes.org, client.api_domain, tostring(org)), "org", { planned = changes.org, target = org })
  end
  local profiles, perr = client:get_profiles()
  if not profiles then return nil, perr end
  local vok, verr = check_against_org(list, mods, profiles)
  if not vok then return nil, verr end
  local journal
  if opts.journal then
    local jerr
    journal, jerr = jn.open(opts.journal, opts.dry_run)
    if not journal then return nil, jerr end
  end

  local report = { total = #changes.changes, selected = #list, applied = {}, already = {}, refused = {},
                   failed = {}, not_sent = {}, pending = {}, callback_errors = {}, dry_run = opts.dry_run == true }
  local function finish()
    if journal then journal:close() end
    local spent, remaining = client:credits()
    report.credits, report.credits_remaining = spent - credits0, remaining
    report.elapsed = core.now() - t0 - waited
    report.ok = #report.refused == 0 and #report.failed == 0 and #report.not_sent == 0 and not report.aborted
      and not report.interrupted and not report.declined
    return report
  end
  local window = math.min(opts.concurrency or client.concurrency, client.concurrency)

  -- 1. Read every module; each is at before (to send), at after (already), or drifted.
  local state = {}
  local stops = policy.stop_rule()           -- errors every further call would share, as in a plan's run
  policy.pump(client, list, window, function(c) return client:submit("get_module", c.id) end,
    function(c, m, err)
      if not m then
        state[c] = { "failed", err }
        if stops(err) then report.aborted = report.aborted or err end
        return
      end
      local now = current_values(m)
      if m.api_name ~= c.module then
        state[c] = { "refused", verror("CHANGED_SINCE_PLAN", string.format("%s changed since the plan: id %s is now "
          .. "module %s", c.module, c.id, tostring(m.api_name)), nil, { module = c.module, id = c.id }) }
      elseif not difference(c.after, now) then
        state[c] = { "already" }             -- applied by an earlier run (or by someone else)
      elseif not difference(c.before, now) then
        state[c] = { "pending" }
      else
        state[c] = { "refused", verror("CHANGED_SINCE_PLAN", string.format("%s changed since the plan: %s",
          c.module, difference(c.before, now)), nil, { module = c.module, id = c.id }) }
      end
    end, opts, report)
  for _, c in ipairs(list) do
    local s = state[c]
    local entry = { module = c.module, id = c.id }
    if not s then
      report.not_sent[#report.not_sent + 1] = entry
    elseif s[1] == "pending" then
      report.pending[#report.pending + 1] = c
    elseif s[1] == "already" then
      report.already[#report.already + 1] = entry
    else
      entry.error = s[2]
      local into = s[1] == "failed" and report.failed or report.refused
      into[#into + 1] = entry
    end
  end
  report.estimate = policy.estimate(client.credit_costs, report.pending)
  report.drift_refused = (#report.refused > 0 or #report.failed > 0) and not opts.partial or nil
  call_back(report, opts.on_plan, report)
  local function hold(why)
    report[why] = true
    for _, c in ipairs(report.pending) do report.not_sent[#report.not_sent + 1] = { module = c.module, id = c.id } end
    return finish()
  end
  if report.interrupted or report.aborted then return hold("interrupted_reading") end
  if (#report.refused > 0 or #report.failed > 0) and not opts.partial then return hold("drift_refused") end
  if opts.dry_run or #report.pending == 0 then return finish() end
  if opts.max_credits and report.estimate > opts.max_credits then
    if journal then journal:close() end
    return nil, policy.budget_error(report.estimate, opts.max_credits)
  end
  if opts.confirm then
    local w0 = core.now()
    local cok, yes = pcall(opts.confirm, report)
    waited = core.now() - w0
    if not (cok and yes) then
      if not cok then report.callback_errors[#report.callback_errors + 1] = tostring(yes) end
      return hold("declined")
    end
  end
  if opts.undo_file then
    local undo_list = {}
    for _, c in ipairs(list) do
      local s = state[c]
      if s and (s[1] == "pending" or s[1] == "already") then undo_list[#undo_list + 1] = c end
    end
    local uok, uerr = write_undo(opts.undo_file, undo_list, changes)
    if not uok then
      if journal then journal:close() end
      return nil, uerr
    end
    report.undo_file = opts.undo_file
  end
  if journal then
    local jok, jerr = journal:write { kind = "change_set", time = os.time(), created = changes.created,
      plan = changes.plan, plan_hash = changes.plan_hash, api_domain = changes.api_domain, org = changes.org }
    if not jok then journal:close(); return nil, jerr end
    report.journal = opts.journal
  end

  -- 2. Send the pending ones.
  local done = 0
  call_back(report, opts.on_progress, 0, #report.pending)
  local sent_to = policy.pump(client, report.pending, window, function(c) return client:submit("update_module", c.id, c.body) end,
    function(c, res, err)
      done = done + 1
      if res then
        report.applied[#report.applied + 1] = { module = c.module, id = c.id, code = res.code }
      else
        report.failed[#report.failed + 1] = { module = c.module, id = c.id, error = err }
      end
      if journal then
        local rec = { kind = "change", module = c.module, id = c.id, time = os.time(),
                      status = res and "applied" or "failed", code = res and res.code or err.code }
        local jok, jerr = journal:write(rec)
        if not jok then report.aborted = report.aborted or jerr end
      end
      if stops(err) then report.aborted = report.aborted or err end
      call_back(report, opts.on_result, c, res, err)
      call_back(report, opts.on_progress, done, #report.pending)
    end, opts, report)
  for i = sent_to, #report.pending do
    local c = report.pending[i]
    report.not_sent[#report.not_sent + 1] = { module = c.module, id = c.id }
  end
  return finish()
end

-- }====

return M
