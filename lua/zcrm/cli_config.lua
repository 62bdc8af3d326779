--- The configuration-as-code commands of `zcrm` (issue 13): export, plan,
-- diff, apply of a saved change set, and --orgs. Each is a thin layer over the
-- Lua API (client:export, client:plan, client:diff, client:apply(changes),
-- zcrm.apply_orgs); lua/zcrm/cli.lua parses the arguments and calls them with
-- its helpers (output, errors, connection).

local zcrm = require "zcrm"
local core = require "zcrm.core"
local changes = require "zcrm.plan.changes"
local orgs_mod = require "zcrm.orgs"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

M.FLAGS = {
  export = { out = "value", orgs = "value" },
  plan = { out = "value", orgs = "value" },
  diff = { orgs = "value", json = "boolean" },
}
-- Added to `zcrm apply`'s own flags.
M.APPLY_FLAGS = { orgs = "value", yes = "boolean" }

M.HELP = {
  export = [[
usage: zcrm export [--out FILE] [--orgs ORGS.lua] [connection options]

Writes the org's custom modules as a plan file (Lua, sorted by API name): for
each module its API name, both labels and profile_set, the exact set of
profiles (by name) that have access. No ids: apply it to another org with
`zcrm apply FILE` and that org's custom modules come to match (profiles not
listed lose access). Applied to the org it came from, it sends nothing.

  --out FILE        write FILE (mode 0600) instead of stdout
  --orgs ORGS.lua   export every org of ORGS.lua; FILE must hold {org}, which
                    becomes each org's name
]],
  plan = [[
usage: zcrm plan PLAN.lua [ARG...] --out CHANGES.json [--orgs ORGS.lua] [--json] [connection options]

Reads the live state, checks the plan against it and writes the exact change
set: for each module that would change, its values before, its values after,
and the request body. `zcrm apply CHANGES.json` applies exactly that, and
refuses each module changed since (by anyone) as "changed since the plan".
A change set is bound to its org: it is refused against any other.

  --out FILE        write the change set there (JSON, mode 0600); without it,
                    only show the changes
  --orgs ORGS.lua   plan for every org of ORGS.lua; FILE must hold {org}
]],
  diff = [[
usage: zcrm diff PLAN.lua [ARG...] [--orgs ORGS.lua] [--json] [connection options]

Prints the difference between the plan and the live org, field by field. Exit
codes as diff(1): 0 the org matches the plan, 1 it differs, 2 error (invalid
plan, unreachable org, bad options). A nightly drift check in CI:
  zcrm diff production.lua || echo "production drifted"

  --orgs ORGS.lua   compare every org of ORGS.lua; 1 when any differs
]],
}

-- {==== helpers

local H -- cli.lua's helpers, given to `commands`

local function plural(n, word, many)
  return string.format("%d %s", n, n == 1 and word or (many or (word .. "s")))
end

-- Reads ORGS.lua: a list of { name =, options = <zcrm.new options> }. Like a
-- config file, one that holds a secret must be readable by its owner only.
local function read_orgs(path)
  local resolution = "ORGS.lua returns a list of { name = \"...\", options = { <zcrm.new options> } }."
  local list, lerr = H.load_secret_file(path, nil, "INVALID_ORGS", "orgs file", resolution)
  if not list then return nil, lerr end
  local valid, verr = orgs_mod.check(list)
  if not valid then
    return nil, zcrm.error { kind = "config", code = "INVALID_ORGS", message = path .. ": " .. verr.message,
      resolution = resolution }
  end
  local mode = core.file_mode(path)
  for _, org in ipairs(list) do
    local o = org.options
    local secret = o.access_token or (type(o.oauth) == "table" and (o.oauth.client_secret or o.oauth.refresh_token))
    if secret and mode and mode & 0x3f ~= 0 and type(secret) == "string" and not secret:match("^emulator%-") then
      return nil, zcrm.error { kind = "config", code = "UNSAFE_CONFIG",
        message = string.format("orgs file %s holds secrets (org %s) and has mode %03o", path, org.name, mode),
        resolution = string.format("Make it readable by its owner only (chmod 600 %s), or take secrets from the environment", path) }
    end
  end
  return list
end

-- Returns orgs and their clients, or nil, exit code (the error printed).
local function connect_orgs(flags)
  local list, err = read_orgs(flags.orgs)
  local clients
  if list then clients, err = orgs_mod.connect(zcrm, list) end
  if not clients then
    H.error_line(flags.orgs, err)
    return nil, EXIT_USAGE
  end
  return list, clients
end

local function per_org(path, name)
  return (path:gsub("{org}", function() return name end))
end

local function needs_org_pattern(flags, command)
  if flags.orgs and flags.out and not flags.out:find("{org}", 1, true) then
    return H.usage_error("with --orgs, --out must hold {org} (each org gets its own file)", command)
  end
end

local function interactive()
  if core.isatty then return core.isatty(io.stdin) and core.isatty(io.stderr) end
  local ok = os.execute("test -t 0 && test -t 2")
  return ok == true or ok == 0
end

-- As `zcrm apply` of a plan: with neither --yes nor --dry-run there must be a
-- terminal to ask on. Returns nil to go on, or the exit code (message printed).
local function cannot_ask(flags)
  if flags.yes or flags["dry-run"] or interactive() then return nil end
  io.stderr:write("zcrm: apply asks before changing anything, and there is no terminal to ask on; nothing was sent "
    .. "(hint: pass --yes to apply without asking, or --dry-run to see what would change)\n")
  return EXIT_USAGE
end

-- Asks once; --yes answers for the user. Returns true to go on.
local function confirm(flags, question)
  if flags.yes then return true end
  local ok
  if H.ask then
    ok = H.ask(question .. " [y/N]") -- cli.lua's prompt
  else
    io.stdout:flush()
    io.stderr:write(question, " [y/N] ")
    io.stderr:flush()
    local answer = io.stdin:read("l")
    ok = answer ~= nil and answer:lower():match("^%s*y[e]?[s]?%s*$") ~= nil
  end
  if not ok then io.stderr:write("zcrm: not applied (the answer was not yes); nothing was sent\n") end
  return ok
end

-- }====

-- {==== export

local function export_one(client, path)
  local plan, err = client:export { out = path }
  if not plan then return nil, err end
  if path then
    io.stderr:write(string.format("zcrm: exported %s of %s to %s\n", plural(#plan, "custom module"),
      client.api_domain, path))
  else
    io.stdout:write(zcrm.export_source(plan, client.api_domain))
  end
  return plan
end

local function cmd_export(flags)
  if flags.orgs then
    if not flags.out then return H.usage_error("with --orgs, give --out FILE holding {org}", "export") end
    local bad = needs_org_pattern(flags, "export")
    if bad then return bad end
    local list, clients = connect_orgs(flags)
    if not list then return clients end
    local results = orgs_mod.each(clients, function(client, i)
      return export_one(client, per_org(flags.out, list[i].name))
    end)
    local code = EXIT_OK
    for i, r in ipairs(results) do
      if not r[1] then H.error_line(list[i].name, r[2]); code = EXIT_FAILED end
      clients[i]:close()
    end
    return code
  end
  local client, code = H.connect(flags)
  if not client then return code end
  local plan, err = export_one(client, flags.out)
  client:close()
  if not plan then H.error_line(nil, err); return EXIT_FAILED end
  return EXIT_OK
end

-- }====

-- {==== showing change sets

local function profile_names(list)
  local names = {}
  for _, p in ipairs(list) do names[#names + 1] = p.name or p.id end
  return table.concat(names, ", ")
end

--- show_changes(cs, heading): one block per module, field by field.
local function show_changes(cs)
  local out = H.out
  if #cs.changes == 0 then out("No changes.\n") return end
  out(string.format("Changes (%s):\n", plural(#cs.changes, "module")))
  for _, c in ipairs(cs.changes) do
    local rows = {}
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c.before[field] ~= c.after[field] then
        rows[#rows + 1] = { field, string.format("%q -> %q", tostring(c.before[field]), tostring(c.after[field])) }
      end
    end
    local had, has = {}, {}
    for _, p in ipairs(c.before.profiles) do had[p.id] = true end
    for _, p in ipairs(c.after.profiles) do has[p.id] = true end
    local granted, revoked = {}, {}
    for _, p in ipairs(c.after.profiles) do if not had[p.id] then granted[#granted + 1] = p end end
    for _, p in ipairs(c.before.profiles) do if not has[p.id] then revoked[#revoked + 1] = p end end
    if #granted > 0 then rows[#rows + 1] = { "profiles", "grant " .. profile_names(granted) } end
    if #revoked > 0 then rows[#rows + 1] = { #granted > 0 and "" or "profiles", "revoke " .. profile_names(revoked) } end
    for i, r in ipairs(rows) do
      out(string.format("  %-22s %-15s %s\n", i == 1 and c.module or "", r[1], r[2]))
    end
  end
end

-- }====

-- {==== plan

local function load_plan_args(positional)
  return { table.unpack(positional, 2) }
end

local function plan_one(client, path, args, out_path)
  local cs, err = client:plan(path, { args = args, source = path })
  if not cs then return nil, err end
  if out_path then
    local ok, werr = changes.write(out_path, cs)
    if not ok then return nil, werr end
  end
  return cs
end

local function report_plan_error(prefix, err)
  if err.code == "INVALID_PLAN" and err.details and err.details.errors then
    H.print_invalid(err.details.errors, false)
  end
  H.error_line(prefix, err)
  return err.kind == "validation" and EXIT_USAGE or EXIT_FAILED
end

local function cmd_plan(flags, positional)
  local path = positional[1]
  if not path then return H.usage_error("plan needs a plan file", "plan") end
  local bad = needs_org_pattern(flags, "plan")
  if bad then return bad end
  local args = load_plan_args(positional)
  local function show(cs, name, out_path)
    H.out(string.format("Plan %s for %s%s:\n", path, name and (name .. " (" .. cs.api_domain .. ")") or cs.api_domain,
      out_path and (" -> " .. out_path) or ""))
    show_changes(cs)
  end
  if flags.orgs then
    local list, clients = connect_orgs(flags)
    if not list then return clients end
    local results = orgs_mod.each(clients, function(client, i)
      return plan_one(client, path, orgs_mod.with_org(args, list[i]), flags.out and per_org(flags.out, list[i].name))
    end)
    local code = EXIT_OK
    for i, r in ipairs(results) do
      clients[i]:close()
      if r[1] then
        show(r[1], list[i].name, flags.out and per_org(flags.out, list[i].name))
      else
        code = math.max(code, report_plan_error(list[i].name, r[2]))
      end
    end
    return code
  end
  local client, code = H.connect(flags)
  if not client then return code end
  local cs, err = plan_one(client, path, args, flags.out)
  client:close()
  if not cs then return report_plan_error(path, err) end
  show(cs, nil, flags.out)
  if flags.out then
    H.out(string.format("Wrote %s to %s. Review it, then: zcrm apply %s\n", plural(#cs.changes, "change"),
      flags.out, flags.out))
  end
  return EXIT_OK
end

-- }====

-- {==== diff

local function cmd_diff(flags, positional)
  local path = positional[1]
  if not path then return H.usage_error("diff needs a plan file", "diff") end
  local args = load_plan_args(positional)
  local targets, clients = {}, {}
  if flags.orgs then
    local list, c = connect_orgs(flags)
    if not list then return c end
    targets, clients = list, c
  else
    local client, code = H.connect(flags)
    if not client then return code end
    targets[1], clients[1] = { name = nil }, client
  end
  local results = orgs_mod.each(clients, function(client, i)
    return client:diff(path, { args = targets[i].name and orgs_mod.with_org(args, targets[i]) or args })
  end)
  local code = EXIT_OK
  for i, r in ipairs(results) do
    local who = targets[i].name and (targets[i].name .. " (" .. clients[i].api_domain .. ")") or clients[i].api_domain
    clients[i]:close()
    local d, err = r[1], r[2]
    if not d then
      report_plan_error(targets[i].name or path, err)
      code = EXIT_USAGE
    elseif flags.json then
      H.json_line { event = "diff", org = targets[i].name, api_domain = clients[i].api_domain,
                    differs = d.differs, changes = #d.changes, same = #d.same, total = d.total }
      for _, c in ipairs(d.changes) do
        H.json_line { event = "change", org = targets[i].name, module = c.module, id = c.id,
                      plural_label = c.plural_label, singular_label = c.singular_label,
                      granted = H.list_or_nil(c.granted), revoked = H.list_or_nil(c.revoked) }
      end
      if d.differs and code == EXIT_OK then code = EXIT_FAILED end
    elseif d.differs then
      H.out(string.format("%s differs from %s:\n", who, path))
      H.print_changes(d.changes)
      if code == EXIT_OK then code = EXIT_FAILED end
    else
      H.out(string.format("%s matches %s (%s)\n", who, path, plural(d.total, "entry", "entries")))
    end
  end
  return code
end

-- }====

-- {==== apply: a change set, or a plan to many orgs

local function summary(report)
  return string.format("applied %d, refused %d (changed since the plan), failed %d%s of %s; %s; %.2f s",
    #report.applied, #report.refused, #report.failed,
    #report.not_sent > 0 and (", not sent " .. #report.not_sent) or "",
    plural(report.total, "change"), plural(report.credits, "credit"), report.elapsed)
end

local function apply_changes(flags, path)
  local refused = cannot_ask(flags)
  if refused then return refused end
  local cs, err = changes.read(path)
  if not cs then H.error_line(nil, err); return EXIT_USAGE end
  local client, code = H.connect(flags)
  if not client then return code end
  if flags.json then
    for _, c in ipairs(cs.changes) do
      H.json_line { event = "change", module = c.module, id = c.id, before = c.before, after = c.after, body = c.body }
    end
  else
    H.out(string.format("Change set %s (planned %s) for %s:\n", path, tostring(cs.created), cs.api_domain))
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
  report, err = client:apply(cs, {
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    on_result = function(c, res, rerr)
      if flags.json then
        H.json_line { event = "result", module = c.module, id = c.id,
                      status = res and "applied" or (rerr.code == "CHANGED_SINCE_PLAN" and "refused" or "failed"),
                      code = res and res.code or nil, error = rerr and H.error_json(rerr) or nil }
      end
      if res then
        if not flags.json then H.out(string.format("  applied  %s\n", c.module)) end
      else
        H.error_line(c.module, rerr)
      end
    end,
  })
  client:close()
  if not report then
    if flags.json then H.json_line { event = "error", error = H.error_json(err) } end
    H.error_line(path, err)
    return err.kind == "validation" and EXIT_USAGE or EXIT_FAILED
  end
  if flags.json then
    H.json_line { event = "report", ok = report.ok, total = report.total, applied = #report.applied,
                  refused = #report.refused, failed = #report.failed, not_sent = #report.not_sent,
                  credits = report.credits, elapsed = report.elapsed }
  else
    H.out(summary(report), "\n")
  end
  if report.aborted then H.error_line("stopped early", report.aborted) end
  return report.ok and EXIT_OK or EXIT_FAILED
end

-- `zcrm apply 'C-{org}.json' --orgs ORGS.lua`: each org's own change set (as
-- `zcrm plan --orgs --out` wrote them), all read and shown first, one
-- confirmation, then applied concurrently.
local function apply_changes_orgs(flags, path)
  if not path:find("{org}", 1, true) then
    return H.usage_error("with --orgs, the change set path must hold {org} (each org has its own)", "apply")
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
    H.out(string.format("Org %s: change set %s (planned %s) for %s:\n", org.name, file, tostring(cs.created), cs.api_domain))
    show_changes(cs)
    sets[i], total = cs, total + #cs.changes
  end
  if flags["dry-run"] or (total > 0 and not confirm(flags, string.format("Apply %s to %s?",
      plural(total, "change"), plural(#list, "org")))) then
    close()
    return flags["dry-run"] and EXIT_OK or EXIT_FAILED
  end
  local runs = orgs_mod.each(clients, function(client, i)
    return client:apply(sets[i], {
      on_result = function(c, _, rerr)
        if rerr then H.error_line(list[i].name .. ": " .. c.module, rerr) end
      end,
    })
  end)
  close()
  local code = EXIT_OK
  for i, r in ipairs(runs) do
    if r[1] then
      H.out(string.format("%-12s %s\n", list[i].name, summary(r[1])))
      if not r[1].ok then code = math.max(code, EXIT_FAILED) end
    else
      H.error_line(list[i].name, r[2])
      code = (r[2].kind == "validation") and EXIT_USAGE or math.max(code, EXIT_FAILED)
    end
  end
  return code
end

local function apply_orgs(flags, path, positional)
  local refused = cannot_ask(flags)
  if refused then return refused end
  local list, err = read_orgs(flags.orgs)
  if not list then H.error_line(flags.orgs, err); return EXIT_USAGE end
  for _, k in ipairs { "journal", "undo" } do
    if flags[k] and not flags[k]:find("{org}", 1, true) then
      return H.usage_error(string.format("with --orgs, --%s must hold {org} (each org writes its own file)", k), "apply")
    end
  end
  local total = 0
  local result
  result, err = zcrm.apply_orgs(list, path, {
    dry_run = flags["dry-run"] == true, journal = flags.journal, undo_file = flags.undo,
    args = { table.unpack(positional, 2) },
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    on_plan = function(r)
      for _, o in ipairs(r.orgs) do
        H.out(string.format("Org %s (%s): %s\n", o.name, o.api_domain, plural(#o.checked.would_send, "update")))
        H.print_changes(o.checked.changes)
        total = total + #o.checked.would_send
      end
    end,
    confirm = function(r)
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
      io.stderr:write(string.format("zcrm: %s refuse the plan; no org was changed\n", plural(#err.details.orgs, "org")))
      return EXIT_USAGE
    end
    H.error_line(flags.orgs, err)
    return (err.kind == "validation" or err.kind == "config") and EXIT_USAGE or EXIT_FAILED
  end
  if result.confirmed == false then return EXIT_FAILED end
  if flags["dry-run"] then return EXIT_OK end
  for _, o in ipairs(result.orgs) do
    local r = o.report
    if r then
      H.out(string.format("%-12s applied %d, skipped %d, failed %d%s; %s; %.2f s\n", o.name, #r.applied, #r.skipped,
        #r.failed, #r.not_sent > 0 and (", not sent " .. #r.not_sent) or "", plural(r.credits, "credit"), r.elapsed))
      if r.aborted then H.error_line(o.name .. ": stopped early", r.aborted) end
    else
      H.error_line(o.name, o.error)
    end
  end
  H.out(string.format("%s in %.2f s: %s\n", plural(#result.orgs, "org"), result.elapsed,
    result.ok and "all applied" or "some failed"))
  return result.ok and EXIT_OK or EXIT_FAILED
end

--- apply(flags, positional) -> exit code, or nil when `zcrm apply` should run
-- as before (a plan, one org).
function M.apply(flags, positional)
  local path = positional[1]
  if not path then return nil end
  local change_set = path:match("%.json$")
  for _, flag in ipairs { "diff", "journal", "undo" } do
    if change_set and flags[flag] then
      return H.usage_error(string.format("--%s is for plans; a change set is applied exactly as planned", flag), "apply")
    end
  end
  if flags.orgs and flags.json then
    return H.usage_error("--json is not available with --orgs yet; use the per-org summary lines", "apply")
  end
  if change_set then
    if flags.orgs then return apply_changes_orgs(flags, path) end
    return apply_changes(flags, path)
  end
  if flags.orgs then return apply_orgs(flags, path, positional) end
  return nil
end

-- }====

M.TAKES_ARGUMENTS = { plan = true, diff = true }

local MAIN_HELP = [[

Configuration as code (each takes --help):
  export              write the org's custom modules as a plan file
  plan PLAN.lua       write the exact change set a plan makes (--out CHANGES.json)
  diff PLAN.lua       show how the org differs from a plan (exit 0 same, 1 differs, 2 error)
  apply CHANGES.json  apply exactly a change set written by zcrm plan
]]

local APPLY_HELP = [[

Change sets and many orgs:
       zcrm apply CHANGES.json [--dry-run] [--yes] [--json] [connection options]
       zcrm apply PLAN.lua --orgs ORGS.lua [--journal 'F-{org}'] [--undo 'F-{org}'] [--yes]
       zcrm apply 'CHANGES-{org}.json' --orgs ORGS.lua [--yes]

  --orgs ORGS.lua    apply to every org of ORGS.lua (a list of { name =, options = }),
                     concurrently; every org is checked first, one confirmation;
                     --journal and --undo must hold {org}
  --yes              do not ask for confirmation

A change set (CHANGES.json, from zcrm plan --out) is applied exactly: each
module is read again first, and one changed since the plan is refused and
reported, never overwritten (exit 1). A change set made for another org is
refused (exit 2).
]]

--- install(cli) plugs these commands into lua/zcrm/cli.lua: cli.commands (the
-- command table), cli.flags (flags per command), cli.help (help texts) and
-- cli.helpers (out, json_line, error_line, error_json, usage_error, connect,
-- print_changes, print_invalid, list_or_nil).
function M.install(cli)
  H = cli.helpers
  cli.commands.export, cli.commands.plan, cli.commands.diff = cmd_export, cmd_plan, cmd_diff
  local apply_plan = cli.commands.apply
  cli.commands.apply = function(flags, positional, ...)
    if flags.concurrency and not math.tointeger(tonumber(flags.concurrency)) then
      return apply_plan(flags, positional, ...) -- it reports the bad flag
    end
    return M.apply(flags, positional) or apply_plan(flags, positional, ...)
  end
  for name, flags in pairs(M.FLAGS) do cli.flags[name] = flags end
  for name, kind in pairs(M.APPLY_FLAGS) do cli.flags.apply[name] = kind end
  for name, text in pairs(M.HELP) do cli.help[name] = text end
  cli.help.main = cli.help.main .. MAIN_HELP
  cli.help.apply = cli.help.apply .. APPLY_HELP
end

return M
