--- `zcrm apply CHANGES.json`: a change set applied exactly to its org, or
-- with --orgs each org's own change set: read, checked against the org,
-- shown, asked, applied, summarised. lua/zcrm/cli/apply.lua chooses between
-- this and lua/zcrm/cli/apply_plan.lua.
-- @module zcrm.cli.apply_changeset

local proc = require "zcrm.proc"
local changes = require "zcrm.plan.changeset_apply"
local changeset = require "zcrm.plan.changeset"
local orgs_mod = require "zcrm.orgs"
local policy = require "zcrm.plan.policy"
local connection = require "zcrm.cli.connect"
local term = require "zcrm.cli.term"
local printer = require "zcrm.cli.changes"
local interrupt = require "zcrm.cli.interrupt"
local name_list = require("zcrm.cli.args").name_list

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local connect_orgs, per_org = connection.connect_orgs, connection.per_org
local out, err_line, json_line, error_json = term.out, term.err_line, term.json_line, term.error_json
local error_line, plural, confirm, credits = term.error_line, term.plural, term.confirm, term.credits
local list_or_nil = term.list_or_nil
local header, show_changes = printer.header, printer.show_changes

local function names_of(list)
  local names = {}
  for i, e in ipairs(list) do names[i] = e.module end
  return names
end

-- {==== one org

local function summary(report)
  local left_out = report.total - report.selected
  return string.format("applied %d, already applied %d, changed since the plan %d, failed %d%s of %s%s; %s; %.2f s",
    #report.applied, #report.already, #report.refused, #report.failed,
    #report.not_sent > 0 and (", not sent " .. #report.not_sent) or "",
    plural(report.selected, "change"), left_out > 0 and string.format(" (%d more left out by --only/--exclude)", left_out) or "",
    credits(report.credits), report.elapsed)
end

-- What stands in the way, from `on_plan`: each drifted module with what
-- changed, each module that could not be read, then one line when that
-- refuses the whole set.
local function print_refused(report, flags, prefix)
  prefix = prefix or ""
  for _, list in ipairs { report.refused, report.failed } do
    for _, r in ipairs(list) do
      if flags.json then
        json_line { event = "result", org = prefix ~= "" and prefix or nil, module = r.module, id = r.id,
                    status = r.error.code == "CHANGED_SINCE_PLAN" and "changed" or "failed", error = error_json(r.error) }
      end
      error_line((prefix ~= "" and (prefix .. ": ") or "") .. r.module, r.error)
    end
  end
  if report.drift_refused then
    err_line(string.format("zcrm: %s%s changed since the plan or could not be read, so nothing was sent. "
      .. "Plan again (zcrm plan ... --out NEW.json), or pass --partial to apply the rest.",
      prefix ~= "" and (prefix .. ": ") or "", plural(#report.refused + #report.failed, "module")))
  end
end

-- The options of client:apply(changes) that the flags give.
local function apply_options(flags)
  return {
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    stop = interrupt.stop, stop_grace = interrupt.GRACE, partial = flags.partial or nil,
    journal = flags.journal, undo_file = flags.undo,
    only = name_list(flags.only), exclude = name_list(flags.exclude),
    max_credits = flags["max-credits"] and tonumber(flags["max-credits"]) or nil,
  }
end

local function exit_for(err)
  local usage = { validation = true, config = true }
  if usage[err.kind] or err.code == "UNDO_FILE_EXISTS" or err.code == "MAX_CREDITS_EXCEEDED" then return EXIT_USAGE end
  return EXIT_FAILED
end

--- apply_one(flags, path, argv) -> exit code: the change set at `path`
-- applied to the org it was made for.
local function apply_one(flags, path, argv)
  local cs, err = changes.read(path)
  if not cs then error_line(nil, err); return EXIT_USAGE end
  local client, code = connection.connect(flags)
  if not client then return code end
  local opts = apply_options(flags)
  opts.dry_run = flags["dry-run"] or nil
  opts.on_plan = function(report)
    if flags.json then
      for _, c in ipairs(report.pending) do
        local e = changeset.effect(c)
        json_line { event = "change", module = c.module, id = c.id, before = c.before, after = c.after, body = c.body,
                    plural_label = e.plural_label, singular_label = e.singular_label,
                    granted = list_or_nil(e.granted), revoked = list_or_nil(e.revoked) }
      end
      for _, a in ipairs(report.already) do json_line { event = "already", module = a.module, id = a.id } end
    else
      header(cs, path)
      show_changes(report.pending)
      if #report.already > 0 then term.wrap_list("Already applied:", names_of(report.already)) end
    end
    print_refused(report, flags)
    if report.dry_run and not report.drift_refused and #report.pending > 0 then
      out(string.format("Dry run: would apply %s to %s (%s); nothing was sent.\n", plural(#report.pending, "change"),
        client.api_domain, credits(report.estimate)))
    end
  end
  local declined
  opts.confirm = function(report)
    proc.catch_interrupts() -- from the question on, Ctrl-C stops sending (lua/zcrm/cli/init.lua's main)
    local ok, exit_code = confirm(flags, string.format("Apply %s to %s (%s)?", plural(#report.pending, "change"),
      client.api_domain, credits(report.estimate)))
    declined = exit_code
    return ok
  end
  opts.on_result = function(c, res, rerr)
    if flags.json then
      json_line { event = "result", module = c.module, id = c.id, status = res and "applied" or "failed",
                  code = res and res.code or nil, error = rerr and error_json(rerr) or nil }
    end
    if res then
      if not flags.json then out(string.format("  applied  %s\n", c.module)) end
    else
      error_line(c.module, rerr)
    end
  end
  local report
  report, err = client:apply(cs, opts)
  client:close()
  local sig = proc.interrupted()
  if not report then
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(path, err)
    if sig then return interrupt.exit(sig, argv, "nothing was sent") end
    return exit_for(err)
  end
  if report.declined and not sig then return declined or EXIT_FAILED end
  if flags.json then
    json_line { event = "report", ok = report.ok, total = report.total, applied = #report.applied,
                already = #report.already, changed = #report.refused, failed = #report.failed,
                not_sent = #report.not_sent, credits = report.credits, elapsed = report.elapsed,
                dry_run = report.dry_run, interrupted = report.interrupted, undo_file = report.undo_file,
                journal = report.journal }
  elseif not report.dry_run then
    out(summary(report), "\n")
    if report.undo_file then out("Undo plan: ", report.undo_file, "\n") end
    if report.journal then out("Journal: ", report.journal, "\n") end
  end
  if report.aborted then error_line("stopped early", report.aborted) end
  if sig then
    return interrupt.exit(sig, argv, string.format("%d applied; %s not sent", #report.applied,
      plural(#report.not_sent, "change")), nil, report.undo_file)
  end
  if report.dry_run then return (#report.refused == 0 and #report.failed == 0) and EXIT_OK or EXIT_FAILED end
  return report.ok and EXIT_OK or EXIT_FAILED
end

-- }====

-- {==== every org of an orgs file

--- apply_orgs(flags, path, argv) -> exit code: `zcrm apply 'C-{org}.json'
-- --orgs ORGS.lua`, each org's own change set (as `zcrm plan --orgs --out`
-- wrote them), all read, checked against their orgs and shown first, one
-- confirmation, then applied concurrently.
local function apply_orgs(flags, path, argv)
  if not path:find("{org}", 1, true) then
    return term.usage_error("with --orgs, the change set path must hold {org} (each org has its own)", "apply")
  end
  for _, k in ipairs { "journal", "undo" } do
    if flags[k] and not flags[k]:find("{org}", 1, true) then
      return term.usage_error(string.format("with --orgs, --%s must hold {org} (each org writes its own file)", k),
        "apply")
    end
  end
  local list, clients = connect_orgs(flags)
  if not list then return clients end
  local sets = {}
  local function close() for _, c in ipairs(clients) do c:close() end end
  for i, org in ipairs(list) do
    local cs, err = changes.read(per_org(path, org.name))
    if not cs then close(); error_line(org.name, err); return EXIT_USAGE end
    sets[i] = cs
  end
  local base = apply_options(flags)
  local function options_for(i, dry)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    o.journal, o.undo_file = flags.journal and per_org(flags.journal, list[i].name), flags.undo and per_org(flags.undo, list[i].name)
    o.dry_run = dry or nil
    return o
  end
  local checks = orgs_mod.each(clients, function(client, i) return client:apply(sets[i], options_for(i, true)) end)
  local total, estimate, code, drift = 0, 0, EXIT_OK, false
  for i, r in ipairs(checks) do
    local report, err = r[1], r[2]
    if not report then
      error_line(list[i].name, err)
      code = exit_for(err)
    else
      if flags.json then
        for _, c in ipairs(report.pending) do
          json_line { event = "change", org = list[i].name, module = c.module, id = c.id, body = c.body }
        end
        for _, a in ipairs(report.already) do json_line { event = "already", org = list[i].name, module = a.module } end
      else
        out(string.format("Org %s: ", list[i].name))
        header(sets[i], per_org(path, list[i].name))
        show_changes(report.pending)
        if #report.already > 0 then term.wrap_list("Already applied:", names_of(report.already)) end
      end
      print_refused(report, flags, list[i].name)
      if (#report.refused > 0 or #report.failed > 0) and not flags.partial then drift = true end
      total, estimate = total + #report.pending, estimate + report.estimate
    end
  end
  if code ~= EXIT_OK or drift then close(); return code ~= EXIT_OK and code or EXIT_FAILED end
  if flags["dry-run"] or total == 0 then close(); return EXIT_OK end
  if base.max_credits and estimate > base.max_credits then
    close()
    error_line(nil, policy.budget_error(estimate, base.max_credits))
    return EXIT_USAGE
  end
  proc.catch_interrupts() -- from the question on, Ctrl-C stops sending (lua/zcrm/cli/init.lua's main)
  local ok, no = confirm(flags, string.format("Apply %s to %s (%s)?", plural(total, "change"), plural(#list, "org"),
    credits(estimate)))
  if not ok then
    close()
    local sig = proc.interrupted()
    if sig then return interrupt.exit(sig, argv, "nothing was sent") end
    return no
  end
  local progress = not flags.json and term.orgs_progress() or nil
  local runs = orgs_mod.each(clients, function(client, i)
    local o = options_for(i, false)
    o.on_progress = progress and function(done, n) progress(list[i].name, done, n) end
    o.on_result = function(c, res, rerr)
      if flags.json then
        json_line { event = "result", org = list[i].name, module = c.module, id = c.id,
                    status = res and "applied" or "failed", error = rerr and error_json(rerr) or nil }
      end
      if rerr then error_line(list[i].name .. ": " .. c.module, rerr) end
    end
    return client:apply(sets[i], o)
  end)
  close()
  local applied, not_sent = 0, 0
  for i, r in ipairs(runs) do
    if r[1] then
      if flags.json then
        json_line { event = "report", org = list[i].name, ok = r[1].ok, total = r[1].total,
                    applied = #r[1].applied, already = #r[1].already, changed = #r[1].refused,
                    failed = #r[1].failed, not_sent = #r[1].not_sent, credits = r[1].credits, elapsed = r[1].elapsed }
      else
        out(string.format("%-12s %s\n", list[i].name, summary(r[1])))
      end
      for _, f in ipairs(r[1].refused) do error_line(list[i].name .. ": " .. f.module, f.error) end
      if not r[1].ok then code = math.max(code, EXIT_FAILED) end
      applied, not_sent = applied + #r[1].applied, not_sent + #r[1].not_sent
    else
      error_line(list[i].name, r[2])
      code = math.max(code, exit_for(r[2]))
    end
  end
  local sig = proc.interrupted()
  if sig then
    return interrupt.exit(sig, argv, string.format("%d applied; %s not sent", applied, plural(not_sent, "change")))
  end
  return code
end

-- }====

M.one = apply_one
M.orgs = apply_orgs

return M
