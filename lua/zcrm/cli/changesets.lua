--- `zcrm apply` of a change set (CHANGES.json, one org or one per org with
-- --orgs) and of a plan to many orgs (--orgs): shown, asked, applied,
-- summarised. lua/zcrm/cli/config.lua plugs `apply` into `zcrm apply` and
-- gives it cli.lua's helpers (`use`); `show_changes` serves `zcrm plan` too.

local zcrm = require "zcrm"
local core = require "zcrm.core"
local changes = require "zcrm.plan.changes"
local orgs_mod = require "zcrm.orgs"
local connection = require "zcrm.cli.connect"
local term = require "zcrm.cli.term"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local read_orgs, connect_orgs, per_org = connection.read_orgs, connection.connect_orgs, connection.per_org
local connect = connection.connect
local out, err_line, json_line, error_json = term.out, term.err_line, term.json_line, term.error_json
local plural, ask, cannot_ask, not_applied = term.plural, term.ask, term.cannot_ask, term.not_applied
local usage_error, print_changes = term.usage_error, term.print_changes

-- {==== helpers

local H -- cli.lua's helpers, given to `use`

-- Asks once; --yes answers for the user. Returns true to go on.
local function confirm(flags, question)
  if flags.yes then return true end
  local ok = ask(question .. " [y/N]")
  if not ok then not_applied() end
  return ok
end

--- show_changes(cs): a change set's changes, as `zcrm apply PLAN` shows a
-- plan's (the before and after values turned into what differs).
local function show_changes(cs)
  local shown = {}
  for _, c in ipairs(cs.changes) do
    local d = { module = c.module, granted = {}, revoked = {} }
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c.before[field] ~= c.after[field] then d[field] = { old = c.before[field], new = c.after[field] } end
    end
    local had, has = {}, {}
    for _, p in ipairs(c.before.profiles) do had[p.id] = true end
    for _, p in ipairs(c.after.profiles) do has[p.id] = true end
    for _, p in ipairs(c.after.profiles) do if not had[p.id] then d.granted[#d.granted + 1] = p end end
    for _, p in ipairs(c.before.profiles) do if not has[p.id] then d.revoked[#d.revoked + 1] = p end end
    shown[#shown + 1] = d
  end
  print_changes(shown)
end

-- }====

-- {==== apply: a change set, or a plan to many orgs

local function summary(report)
  return string.format("applied %d, refused %d (changed since the plan), failed %d%s of %s; %s; %.2f s",
    #report.applied, #report.refused, #report.failed,
    #report.not_sent > 0 and (", not sent " .. #report.not_sent) or "",
    plural(report.total, "change"), plural(report.credits, "credit"), report.elapsed)
end

local function stop() return core.interrupted() ~= nil end

-- After a change set run a signal stopped: re-running the same change set
-- would refuse the modules it applied (changed since the plan), so the way on
-- is a new change set for the rest, written where this one was.
local function changes_interrupted(sig, argv, sets, out_path, orgs_path, applied, not_sent)
  local source = sets[1] and sets[1].plan or "PLAN.lua"
  return H.interrupted_exit(sig, argv, string.format("%d applied; %s not sent", applied, plural(not_sent, "update")),
    string.format("Plan the rest again (zcrm plan %s%s --out %s, with the same connection options), then run the "
      .. "same command again", source, orgs_path and (" --orgs " .. orgs_path) or "", out_path))
end

local function apply_changes(flags, path, argv)
  local refused = cannot_ask(flags)
  if refused then return refused end
  local cs, err = changes.read(path)
  if not cs then H.error_line(nil, err); return EXIT_USAGE end
  local client, code = connect(flags)
  if not client then return code end
  if flags.json then
    for _, c in ipairs(cs.changes) do
      json_line { event = "change", module = c.module, id = c.id, before = c.before, after = c.after, body = c.body }
    end
  else
    out(string.format("Change set %s (planned %s) for %s:\n", path, tostring(cs.created), cs.api_domain))
    show_changes(cs)
  end
  if cs.api_domain ~= client.api_domain then
    client:close()
    H.error_line(path, zcrm.error { kind = "validation", code = "ORG_MISMATCH",
      message = string.format("the change set was made for %s, not %s", cs.api_domain, client.api_domain) })
    return EXIT_USAGE
  end
  if #cs.changes == 0 then client:close(); return EXIT_OK end
  if flags["dry-run"] or not confirm(flags, string.format("Apply %s to %s?", plural(#cs.changes, "change"), client.api_domain)) then
    client:close()
    return flags["dry-run"] and EXIT_OK or EXIT_FAILED
  end
  local report
  core.catch_interrupts()
  report, err = client:apply(cs, {
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    stop = stop, stop_grace = H.interrupt_grace,
    on_result = function(c, res, rerr)
      if flags.json then
        json_line { event = "result", module = c.module, id = c.id,
                      status = res and "applied" or (rerr.code == "CHANGED_SINCE_PLAN" and "refused" or "failed"),
                      code = res and res.code or nil, error = rerr and error_json(rerr) or nil }
      end
      if res then
        if not flags.json then out(string.format("  applied  %s\n", c.module)) end
      else
        H.error_line(c.module, rerr)
      end
    end,
  })
  client:close()
  local sig = core.interrupted()
  if not report then
    if flags.json then json_line { event = "error", error = error_json(err) } end
    H.error_line(path, err)
    if sig then return H.interrupted_exit(sig, argv, "nothing was sent") end
    return err.kind == "validation" and EXIT_USAGE or EXIT_FAILED
  end
  if flags.json then
    json_line { event = "report", ok = report.ok, total = report.total, applied = #report.applied,
                  refused = #report.refused, failed = #report.failed, not_sent = #report.not_sent,
                  credits = report.credits, elapsed = report.elapsed, interrupted = report.interrupted }
  else
    out(summary(report), "\n")
  end
  if report.aborted then H.error_line("stopped early", report.aborted) end
  if sig then return changes_interrupted(sig, argv, { cs }, path, nil, #report.applied, #report.not_sent) end
  return report.ok and EXIT_OK or EXIT_FAILED
end

-- `zcrm apply 'C-{org}.json' --orgs ORGS.lua`: each org's own change set (as
-- `zcrm plan --orgs --out` wrote them), all read and shown first, one
-- confirmation, then applied concurrently.
local function apply_changes_orgs(flags, path, argv)
  if not path:find("{org}", 1, true) then
    return usage_error("with --orgs, the change set path must hold {org} (each org has its own)", "apply")
  end
  local refused = cannot_ask(flags)
  if refused then return refused end
  local list, clients = connect_orgs(flags)
  if not list then return clients end
  local sets, total = {}, 0
  local function close() for _, c in ipairs(clients) do c:close() end end
  for i, org in ipairs(list) do
    local file = per_org(path, org.name)
    local cs, err = changes.read(file)
    if cs and cs.api_domain ~= clients[i].api_domain then
      err = zcrm.error { kind = "validation", code = "ORG_MISMATCH", message = string.format(
        "%s was made for %s, not %s", file, cs.api_domain, clients[i].api_domain) }
      cs = nil
    end
    if not cs then close(); H.error_line(org.name, err); return EXIT_USAGE end
    out(string.format("Org %s: change set %s (planned %s) for %s:\n", org.name, file, tostring(cs.created), cs.api_domain))
    show_changes(cs)
    sets[i], total = cs, total + #cs.changes
  end
  if flags["dry-run"] or (total > 0 and not confirm(flags, string.format("Apply %s to %s?",
      plural(total, "change"), plural(#list, "org")))) then
    close()
    return flags["dry-run"] and EXIT_OK or EXIT_FAILED
  end
  core.catch_interrupts()
  local runs = orgs_mod.each(clients, function(client, i)
    return client:apply(sets[i], {
      stop = stop, stop_grace = H.interrupt_grace,
      on_result = function(c, _, rerr)
        if rerr then H.error_line(list[i].name .. ": " .. c.module, rerr) end
      end,
    })
  end)
  close()
  local code, applied, not_sent = EXIT_OK, 0, 0
  for i, r in ipairs(runs) do
    if r[1] then
      out(string.format("%-12s %s\n", list[i].name, summary(r[1])))
      if not r[1].ok then code = math.max(code, EXIT_FAILED) end
      applied, not_sent = applied + #r[1].applied, not_sent + #r[1].not_sent
    else
      H.error_line(list[i].name, r[2])
      code = (r[2].kind == "validation") and EXIT_USAGE or math.max(code, EXIT_FAILED)
    end
  end
  local sig = core.interrupted()
  if sig then return changes_interrupted(sig, argv, sets, path, flags.orgs, applied, not_sent) end
  return code
end

local function apply_orgs(flags, path, positional, argv)
  local refused = cannot_ask(flags)
  if refused then return refused end
  local list, err = read_orgs(flags.orgs)
  if not list then H.error_line(flags.orgs, err); return EXIT_USAGE end
  for _, k in ipairs { "journal", "undo" } do
    if flags[k] and not flags[k]:find("{org}", 1, true) then
      return usage_error(string.format("with --orgs, --%s must hold {org} (each org writes its own file)", k), "apply")
    end
  end
  local total = 0
  local result
  core.catch_interrupts()
  result, err = zcrm.apply_orgs(list, path, {
    stop = stop, stop_grace = H.interrupt_grace,
    dry_run = flags["dry-run"] == true, journal = flags.journal, undo_file = flags.undo,
    args = { table.unpack(positional, 2) },
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    on_plan = function(r)
      for _, o in ipairs(r.orgs) do
        out(string.format("Org %s (%s): %s\n", o.name, o.api_domain, plural(#o.checked.would_send, "update")))
        print_changes(o.checked.changes)
        total = total + #o.checked.would_send
      end
    end,
    confirm = function(r)
      if core.interrupted() then return false end
      if total == 0 then return true end
      local names = {}
      for _, o in ipairs(r.orgs) do names[#names + 1] = o.name end
      return confirm(flags, string.format("Apply %s to %s (%s)?", plural(total, "change"),
        plural(#r.orgs, "org"), table.concat(names, ", ")))
    end,
    on_result = function(org, entry, _, rerr)
      if rerr then H.error_line(string.format("%s: %s failed", org, tostring(entry.module)), rerr) end
    end,
  })
  if not result then
    if err.details and err.details.orgs then
      for _, o in ipairs(err.details.orgs) do
        local e = o.error
        if zcrm.is_error(e) and e.details and e.details.errors then
          for _, f in ipairs(e.details.errors) do
            H.error_line(string.format("%s: entry %d (%s)", o.org, f.index, tostring(f.module)), f.error)
          end
        else
          H.error_line(o.org, e)
        end
      end
      err_line(string.format("zcrm: %s refuse the plan; no org was changed", plural(#err.details.orgs, "org")))
      return EXIT_USAGE
    end
    H.error_line(flags.orgs, err)
    local sig = core.interrupted()
    if sig then return H.interrupted_exit(sig, argv, "nothing was sent") end
    return (err.kind == "validation" or err.kind == "config") and EXIT_USAGE or EXIT_FAILED
  end
  local sig = core.interrupted()
  if result.confirmed == false then
    if sig then return H.interrupted_exit(sig, argv, "nothing was sent") end
    return EXIT_FAILED
  end
  if flags["dry-run"] then return EXIT_OK end
  local applied, not_sent = 0, 0
  for _, o in ipairs(result.orgs) do
    local r = o.report
    if r then
      applied, not_sent = applied + #r.applied, not_sent + #r.not_sent
      out(string.format("%-12s applied %d, skipped %d, failed %d%s; %s; %.2f s\n", o.name, #r.applied, #r.skipped,
        #r.failed, #r.not_sent > 0 and (", not sent " .. #r.not_sent) or "", plural(r.credits, "credit"), r.elapsed))
      if r.aborted then H.error_line(o.name .. ": stopped early", r.aborted) end
    else
      H.error_line(o.name, o.error)
    end
  end
  out(string.format("%s in %.2f s: %s\n", plural(#result.orgs, "org"), result.elapsed,
    result.ok and "all applied" or "some failed"))
  if sig then
    return H.interrupted_exit(sig, argv, string.format("%d applied; %s not sent", applied, plural(not_sent, "update")))
  end
  return result.ok and EXIT_OK or EXIT_FAILED
end

--- apply(flags, positional) -> exit code, or nil when `zcrm apply` should run
-- as before (a plan, one org).
function M.apply(flags, positional, argv)
  local path = positional[1]
  if not path then return nil end
  local change_set = path:match("%.json$")
  for _, flag in ipairs { "diff", "journal", "undo" } do
    if change_set and flags[flag] then
      return usage_error(string.format("--%s is for plans; a change set is applied exactly as planned", flag), "apply")
    end
  end
  if flags.orgs and flags.json then
    return usage_error("--json is not available with --orgs yet; use the per-org summary lines", "apply")
  end
  if change_set then
    if flags.orgs then return apply_changes_orgs(flags, path, argv) end
    return apply_changes(flags, path, argv)
  end
  if flags.orgs then return apply_orgs(flags, path, positional, argv) end
  return nil
end

-- }====

--- use(helpers): cli.lua's helpers (error_line, interrupted_exit, interrupt_grace).
function M.use(helpers) H = helpers end

M.show_changes = show_changes

return M
