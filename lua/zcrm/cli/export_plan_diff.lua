--- The configuration-as-code commands of `zcrm`: export (the org as a plan
-- file), plan (the change set a plan makes) and show (a change set, read
-- back), diff (the org against a plan). Each is a thin layer over the Lua
-- API (client:export, client:plan, client:diff); applying a change set is
-- lua/zcrm/cli/apply_changeset.lua's.
-- @module zcrm.cli.export_plan_diff

local zcrm = require "zcrm"
local core = require "zcrm.core"
local changes = require "zcrm.plan.changeset_apply"
local changeset = require "zcrm.plan.changeset"
local check = require "zcrm.plan.check"
local policy = require "zcrm.plan.policy"
local http = require "zcrm.http"
local orgs_mod = require "zcrm.orgs"
local connection = require "zcrm.cli.connect"
local term = require "zcrm.cli.term"
local printer = require "zcrm.cli.changes"
local name_list = require("zcrm.cli.args").name_list

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local connect_orgs, per_org, connect = connection.connect_orgs, connection.per_org, connection.connect
local out, err_line, json_line, plural = term.out, term.err_line, term.json_line, term.plural
local usage_error, error_line, list_or_nil = term.usage_error, term.error_line, term.list_or_nil
local show_changes, print_changes = printer.show_changes, printer.print_changes

--- Their entries in the flag table (lua/zcrm/cli/args.lua).
M.COMMANDS = {
  export = {
    summary = "write the org's custom modules as a plan file", connection = true,
    text = [[
Writes the org's custom modules as a plan file (Lua, sorted by API name): for
each module its API name, both labels and profile_set, the exact set of
profiles (by name) that have access. No ids: apply it to another org with
`zcrm apply FILE` and that org's custom modules come to match (profiles not
listed lose access). Applied to the org it came from, it sends nothing.
]],
    flags = {
      { name = "out", value = "FILE", complete = "file", help = "write FILE (mode 0600) instead of stdout" },
      { name = "orgs", value = "ORGS.lua", complete = "file",
        help = "export every org of ORGS.lua; FILE must hold {org}, which\nbecomes each org's name" },
      { name = "json", help = "one JSON document (the modules; with --out, what was\n"
        .. "written); with --orgs a line per org" },
    },
  },
  plan = {
    summary = "write the exact change set a plan makes", usage = { "PLAN.lua [ARG...]" }, connection = true,
    operands = "plan", arguments = true,
    text = [[
Reads the live state, checks the plan against it and writes the exact change
set: for each module that would change, its values before, its values after,
and the request body, with how the set was made (the plan file, its ARGs and
a hash of its text, the zcrm version, the time, the org). Review it (zcrm show
CHANGES.json), then `zcrm apply CHANGES.json` sends exactly those bodies.
A change set is bound to its org: it is refused against any other.
]],
    flags = {
      { name = "out", value = "CHANGES.json", complete = "file", help = "write the change set there (JSON, "
        .. "mode 0600); without it,\nonly show the changes. An existing file is never replaced\n"
        .. "(it may be a reviewed set): exit 2, unless --force" },
      { name = "force", help = "replace the --out file when it exists" },
      { name = "only", value = "M,...", help = "plan only these modules (API names or ids)" },
      { name = "exclude", value = "M,...", help = "leave these modules out" },
      { name = "orgs", value = "ORGS.lua", complete = "file",
        help = "plan for every org of ORGS.lua; the --out file must hold {org}" },
      { name = "json", help = "print the change set itself (one JSON document, as --out\n"
        .. "writes it); with --orgs a line per org" },
    },
  },
  show = {
    summary = "print a change set as apply would show it (no network)", usage = { "CHANGES.json" },
    operands = "changes", arguments = true,
    text = [[
Prints a change set as zcrm apply would show it, without contacting Zoho: how
it was made (plan file, arguments, plan hash, zcrm version, time, org, API
domain) and each change, drawn from the request body it sends. Exit 0 for a
valid set, 2 for one zcrm apply would refuse (INVALID_CHANGES).
]],
    flags = { { name = "json", help = "one JSON document: the header fields and the changes" } },
  },
  diff = {
    summary = "show how the org differs from a plan", usage = { "PLAN.lua [ARG...]" }, connection = true,
    operands = "plan", arguments = true,
    text = [[
Prints the difference between the plan and the live org, field by field. Exit
codes as diff(1): 0 the org matches the plan, 1 it differs, 2 error (invalid
plan, unreachable org, bad options). A nightly drift check in CI:
  zcrm diff production.lua || echo "production drifted"
]],
    flags = {
      { name = "orgs", value = "ORGS.lua", complete = "file", help = "compare every org of ORGS.lua; 1 when any differs" },
      { name = "json", help = "JSON lines on stdout: a diff event per org, then one change\nevent per module "
        .. "that differs" },
    },
  },
}

-- {==== helpers

local function needs_org_pattern(flags, command)
  if flags.orgs and flags.out and not flags.out:find("{org}", 1, true) then
    return usage_error("with --orgs, --out must hold {org} (each org gets its own file)", command)
  end
end

-- }====

-- {==== export

local function export_one(client, path, flags, org)
  local plan, err = client:export { out = path }
  if not plan then return nil, err end
  if flags.json then
    -- one document (a line per org with --orgs): the modules, or where they went
    json_line { org = org, api_domain = client.api_domain, out = path, count = #plan,
                modules = not path and list_or_nil(plan) or nil }
  elseif path then
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
      return export_one(client, per_org(flags.out, list[i].name), flags, list[i].name)
    end)
    local code = EXIT_OK
    for i, r in ipairs(results) do
      if not r[1] then error_line(list[i].name, r[2]); code = EXIT_FAILED end
      clients[i]:close()
    end
    return code
  end
  local client, code = connect(flags)
  if not client then return code end
  local plan, err = export_one(client, flags.out, flags)
  client:close()
  if not plan then error_line(nil, err); return EXIT_FAILED end
  return EXIT_OK
end

-- }====

-- {==== plan

local function load_plan_args(positional)
  return { table.unpack(positional, 2) }
end

-- A change set file that exists may be one a colleague approved: it is
-- replaced only with --force.
local function file_exists_error(path)
  return zcrm.error { kind = "validation", code = "FILE_EXISTS",
    message = string.format("%s exists (it may be a reviewed change set); nothing was written", path),
    resolution = string.format("Choose another --out file, or pass --force to replace %s.", path) }
end

local function write_changes(path, cs, force)
  if force then return changes.write(path, cs) end
  local ok, err, exists = check.write_new(path, changes.encode(cs), "change set", "CHANGES_FILE_ERROR")
  if exists then return nil, file_exists_error(path) end -- created since the check at the start
  return ok, err
end

local function plan_one(client, path, args, out_path, flags)
  local cs, err = client:plan(path, { args = args, source = path, only = name_list(flags.only),
                                      exclude = name_list(flags.exclude) })
  if not cs then return nil, err end
  if out_path then
    local ok, werr = write_changes(out_path, cs, flags.force)
    if not ok then return nil, werr end
  end
  return cs
end

local function report_plan_error(prefix, err)
  if err.code == "INVALID_PLAN" and err.details and err.details.errors then
    printer.print_invalid({}, err.details.errors)
  end
  error_line(prefix, err)
  return err.kind == "validation" and EXIT_USAGE or EXIT_FAILED
end

local function cmd_plan(flags, positional)
  local path = positional[1]
  if not path then return usage_error("plan needs a plan file", "plan") end
  local bad = needs_org_pattern(flags, "plan")
  if bad then return bad end
  local args = load_plan_args(positional)
  if flags.force and not flags.out then return usage_error("--force is for --out FILE", "plan") end
  if flags.out and not flags.force then
    local targets = {}
    if flags.orgs then
      local list = connection.read_orgs(flags.orgs)
      for _, org in ipairs(list or {}) do targets[#targets + 1] = per_org(flags.out, org.name) end
    else
      targets[1] = flags.out
    end
    for _, t in ipairs(targets) do
      if core.file_mode(t) then error_line(nil, file_exists_error(t)); return EXIT_USAGE end
    end
  end
  local function show(cs, name, out_path)
    if flags.json then
      -- one org: the change set itself is the document; --orgs: a line per org
      if flags.orgs then json_line { org = name, out = out_path, change_set = cs } else out(changes.encode(cs)) end
      return
    end
    out(string.format("Plan %s for %s%s:\n", path, name and (name .. " (" .. cs.api_domain .. ")") or cs.api_domain,
      out_path and (" -> " .. out_path) or ""))
    show_changes(cs.changes)
  end
  if flags.orgs then
    local list, clients = connect_orgs(flags)
    if not list then return clients end
    local results = orgs_mod.each(clients, function(client, i)
      return plan_one(client, path, orgs_mod.with_org(args, list[i]), flags.out and per_org(flags.out, list[i].name),
        flags)
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
  local cs, err = plan_one(client, path, args, flags.out, flags)
  client:close()
  if not cs then return report_plan_error(path, err) end
  show(cs, nil, flags.out)
  if flags.out and not flags.json then
    out(string.format("Wrote %s to %s. Review it (zcrm show %s), then: zcrm apply %s\n",
      plural(#cs.changes, "change"), flags.out, flags.out, flags.out))
  end
  return EXIT_OK
end

-- }====

-- {==== show

local function cmd_show(flags, positional)
  local path = positional[1]
  if not path then return usage_error("show needs a change set file", "show") end
  if #positional > 1 then return usage_error("show takes one change set file", "show") end
  local cs, err = changes.read(path)
  if not cs then error_line(nil, err); return EXIT_USAGE end
  if flags.json then
    local list = {}
    for i, c in ipairs(cs.changes) do
      local e = changeset.effect(c)
      list[i] = { module = c.module, id = c.id, before = c.before, after = c.after, body = c.body,
                  plural_label = e.plural_label, singular_label = e.singular_label,
                  granted = list_or_nil(e.granted), revoked = list_or_nil(e.revoked) }
    end
    json_line { format = "zcrm.show", version = 1, path = path, created = cs.created, zcrm_version = cs.zcrm_version,
                api_domain = cs.api_domain, org = cs.org, plan = cs.plan, args = list_or_nil(cs.args),
                plan_hash = cs.plan_hash, changes = list_or_nil(list), total = #cs.changes }
    return EXIT_OK
  end
  printer.header(cs, path)
  show_changes(cs.changes)
  out(string.format("%s; applying them costs about %s.\n", plural(#cs.changes, "change"),
    term.credits(policy.estimate(http.DEFAULT_COSTS, cs.changes))))
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

M.COMMANDS.export.run = cmd_export
M.COMMANDS.plan.run = cmd_plan
M.COMMANDS.show.run = cmd_show
M.COMMANDS.diff.run = cmd_diff

return M
