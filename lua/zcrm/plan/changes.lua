--- Saved change sets and drift checks.
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

local core = require "zcrm.core"
local changeset = require "zcrm.plan.changeset"
local policy = require "zcrm.plan.policy"

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

local PLAN_OPTIONS = { args = "table", dir = "string", source = "string" }

local function check_options(opts, known, fn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fn .. ": opts must be a table", 3) end
  for k, v in pairs(opts) do
    local want = known[k]
    if not want then error(fn .. ": unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then error(string.format("%s: option '%s' must be a %s, got %s", fn, k, want, type(v)), 3) end
  end
  return opts
end

-- The checked plan against the live state (a dry run with diff): the report.
local function dry_run(client, plan, opts)
  local plan_mod = require "zcrm.plan"
  local apply = plan_mod.apply_plan or plan_mod.apply
  return apply(client, plan, { dry_run = true, diff = true, args = opts.args, dir = opts.dir })
end

--- plan(client, plan, opts) -> change set, or nil, err (an invalid plan is
-- INVALID_PLAN, as in apply). opts: args (ctx.args), dir, source (a note of
-- where the plan came from, kept in the change set).
function M.plan(client, plan, opts)
  opts = check_options(opts, PLAN_OPTIONS, "plan")
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
  return {
    format = FORMAT, version = VERSION, created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    api_domain = client.api_domain, org = M.org_id(mods), plan = opts.source,
    changes = changes,
  }
end

--- diff(client, plan, opts) -> { changes = report.changes, same = { API names },
-- total = n, differs = bool }, or nil, err.
function M.diff(client, plan, opts)
  opts = check_options(opts, { args = "table", dir = "string" }, "diff")
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

local APPLY_OPTIONS = { on_result = "function", on_progress = "function", concurrency = "number",
                        stop = "function", stop_grace = "number" }

--- apply_changes(client, changes, opts) -> report, or nil, err when nothing
-- was sent: a malformed change set, one made for another org
-- (ORG_MISMATCH), or a state read that failed. Each module is read again
-- right before its update; one that no longer has its `before` values is not
-- updated and is in report.refused with code CHANGED_SINCE_PLAN. The run
-- stops as a plan's does (`zcrm.plan.policy`): after an error every further
-- call would share (auth, config, CREDIT_LIMIT, DNS, TLS, three refused
-- connections in a row) it is `report.aborted`, and once `opts.stop()` is true
-- `report.interrupted`. Then nothing new is sent, not even the update of a
-- module already read (`report.not_sent` lists them all), and the updates in
-- flight complete (after `stop`: within `opts.stop_grace` seconds, default 5,
-- or are cancelled).
function M.apply(client, changes, opts)
  opts = check_options(opts, APPLY_OPTIONS, "apply")
  local t0, credits0 = core.now(), client:credits()
  local ok, cerr = M.check(changes)
  if not ok then return nil, cerr end
  if changes.api_domain ~= client.api_domain then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for %s, not %s",
      changes.api_domain, client.api_domain), "api_domain",
      { planned = changes.api_domain, target = client.api_domain })
  end
  local mods, merr = client:get_modules()
  if not mods then return nil, merr end
  local org = M.org_id(mods)
  if org ~= changes.org then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for org %s; %s serves org %s",
      changes.org, client.api_domain, tostring(org)), "org", { planned = changes.org, target = org })
  end

  local report = { total = #changes.changes, applied = {}, refused = {}, failed = {}, not_sent = {},
                   callback_errors = {} }
  local list, window = changes.changes, math.min(opts.concurrency or client.concurrency, client.concurrency)
  local next_i, in_flight, done, completed, live, deadline = 1, 0, 0, {}, {}, nil
  local stops = policy.stop_rule()           -- errors every further call would share, as in a plan's run
  local function finished(c, res, err, refused)
    in_flight, done = in_flight - 1, done + 1
    if res then
      report.applied[#report.applied + 1] = { module = c.module, id = c.id, code = res.code }
    elseif refused then
      report.refused[#report.refused + 1] = { module = c.module, id = c.id, error = err }
    else
      report.failed[#report.failed + 1] = { module = c.module, id = c.id, error = err }
    end
    if stops(err) then report.aborted = report.aborted or err end
    call_back(report, opts.on_result, c, res, err)
    call_back(report, opts.on_progress, done, report.total)
  end
  call_back(report, opts.on_progress, 0, report.total)
  local held = {}                            -- read, but left unsent by the stop or the abort
  while done < report.total do
    if not report.interrupted and opts.stop and opts.stop() then
      report.interrupted = true
      deadline = core.now() + (opts.stop_grace or 5)
    end
    while not report.aborted and not report.interrupted and in_flight < window and next_i <= #list do
      local c = list[next_i]
      next_i, in_flight = next_i + 1, in_flight + 1
      client:submit("get_module", c.id):on_done(function(m, err)
        completed[#completed + 1] = { c, "read", m, err }
      end)
    end
    if in_flight == 0 then break end
    if deadline and core.now() >= deadline then
      for req in pairs(live) do req:cancel() end
    end
    client:poll(0.05)
    local batch = completed
    completed = {}
    for _, e in ipairs(batch) do
      local c, stage, res, err = e[1], e[2], e[3], e[4]
      if stage == "sent" then
        live[e[5]] = nil
        finished(c, res, err)
      elseif res and (report.interrupted or report.aborted) then
        in_flight = in_flight - 1
        held[#held + 1] = { module = c.module, id = c.id }
      elseif not res then
        finished(c, nil, err)
      else
        local why = res.api_name ~= c.module and string.format("id %s is now module %s", c.id, tostring(res.api_name))
          or difference(c.before, current_values(res))
        if why then
          finished(c, nil, verror("CHANGED_SINCE_PLAN", string.format("%s changed since the plan: %s; not updated",
            c.module, why), nil, { module = c.module, id = c.id }), true)
        else
          local req
          req = client:submit("update_module", c.id, c.body):on_done(function(r, uerr)
            completed[#completed + 1] = { c, "sent", r, uerr, req }
          end)
          live[req] = true
        end
      end
    end
  end
  for _, h in ipairs(held) do report.not_sent[#report.not_sent + 1] = h end
  for i = next_i, #list do report.not_sent[#report.not_sent + 1] = { module = list[i].module, id = list[i].id } end
  local spent, remaining = client:credits()
  report.credits, report.credits_remaining = spent - credits0, remaining
  report.elapsed = core.now() - t0
  report.ok = #report.refused == 0 and #report.failed == 0 and #report.not_sent == 0
  return report
end

-- }====

return M
