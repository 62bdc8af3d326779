--- The configuration-as-code commands of `zcrm`: export, plan and
-- diff, and the install hook that plugs them, with apply of a saved change
-- set and --orgs (lua/zcrm/cli/changesets.lua), into lua/zcrm/cli.lua. Each
-- is a thin layer over the Lua API (client:export, client:plan, client:diff,
-- client:apply(changes), zcrm.apply_orgs); cli.lua parses the arguments and
-- calls them; they print through lua/zcrm/cli/term.lua.

local zcrm = require "zcrm"
local changes = require "zcrm.plan.changes"
local orgs_mod = require "zcrm.orgs"
local connection = require "zcrm.cli.connect"
local changesets = require "zcrm.cli.changesets"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local connect_orgs, per_org = connection.connect_orgs, connection.per_org
local term = require "zcrm.cli.term"
local show_changes, connect = changesets.show_changes, connection.connect
local out, err_line, json_line, plural = term.out, term.err_line, term.json_line, term.plural
local usage_error, print_changes, list_or_nil = term.usage_error, term.print_changes, term.list_or_nil

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

local function needs_org_pattern(flags, command)
  if flags.orgs and flags.out and not flags.out:find("{org}", 1, true) then
    return usage_error("with --orgs, --out must hold {org} (each org gets its own file)", command)
  end
end

-- }====

-- {==== export

local function export_one(client, path)
  local plan, err = client:export { out = path }
  if not plan then return nil, err end
  if path then
    err_line(string.format("zcrm: exported %s of %s to %s", plural(#plan, "custom module"),
      client.api_domain, path))
  else
    out(zcrm.export_source(plan, client.api_domain))
  end
  return plan
end

local function cmd_export(flags)
  if flags.orgs then
    if not flags.out then return usage_error("with --orgs, give --out FILE holding {org}", "export") end
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
  local client, code = connect(flags)
  if not client then return code end
  local plan, err = export_one(client, flags.out)
  client:close()
  if not plan then H.error_line(nil, err); return EXIT_FAILED end
  return EXIT_OK
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
  if not path then return usage_error("plan needs a plan file", "plan") end
  local bad = needs_org_pattern(flags, "plan")
  if bad then return bad end
  local args = load_plan_args(positional)
  local function show(cs, name, out_path)
    out(string.format("Plan %s for %s%s:\n", path, name and (name .. " (" .. cs.api_domain .. ")") or cs.api_domain,
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
  local client, code = connect(flags)
  if not client then return code end
  local cs, err = plan_one(client, path, args, flags.out)
  client:close()
  if not cs then return report_plan_error(path, err) end
  show(cs, nil, flags.out)
  if flags.out then
    out(string.format("Wrote %s to %s. Review it, then: zcrm apply %s\n", plural(#cs.changes, "change"),
      flags.out, flags.out))
  end
  return EXIT_OK
end

-- }====

-- {==== diff

local function cmd_diff(flags, positional)
  local path = positional[1]
  if not path then return usage_error("diff needs a plan file", "diff") end
  local args = load_plan_args(positional)
  local targets, clients = {}, {}
  if flags.orgs then
    local list, c = connect_orgs(flags)
    if not list then return c end
    targets, clients = list, c
  else
    local client, code = connect(flags)
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
      json_line { event = "diff", org = targets[i].name, api_domain = clients[i].api_domain,
                    differs = d.differs, changes = #d.changes, same = #d.same, total = d.total }
      for _, c in ipairs(d.changes) do
        json_line { event = "change", org = targets[i].name, module = c.module, id = c.id,
                      plural_label = c.plural_label, singular_label = c.singular_label,
                      granted = list_or_nil(c.granted), revoked = list_or_nil(c.revoked) }
      end
      if d.differs and code == EXIT_OK then code = EXIT_FAILED end
    elseif d.differs then
      out(string.format("%s differs from %s:\n", who, path))
      print_changes(d.changes)
      if code == EXIT_OK then code = EXIT_FAILED end
    else
      out(string.format("%s matches %s (%s)\n", who, path, plural(d.total, "entry")))
    end
  end
  return code
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
-- cli.helpers (error_line, print_invalid, interrupted_exit, interrupt_grace).
function M.install(cli)
  H = cli.helpers
  changesets.use(H)
  cli.commands.export, cli.commands.plan, cli.commands.diff = cmd_export, cmd_plan, cmd_diff
  local apply_plan = cli.commands.apply
  cli.commands.apply = function(flags, positional, ...)
    if flags.concurrency and not math.tointeger(tonumber(flags.concurrency)) then
      return apply_plan(flags, positional, ...) -- it reports the bad flag
    end
    return changesets.apply(flags, positional, ...) or apply_plan(flags, positional, ...)
  end
  for name, flags in pairs(M.FLAGS) do cli.flags[name] = flags end
  for name, kind in pairs(M.APPLY_FLAGS) do cli.flags.apply[name] = kind end
  for name, text in pairs(M.HELP) do cli.help[name] = text end
  cli.help.main = cli.help.main .. MAIN_HELP
  cli.help.apply = cli.help.apply .. APPLY_HELP
end

return M
