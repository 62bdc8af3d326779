--- `zcrm apply` and `zcrm validate`. apply chooses, in one place, what runs:
-- a plan (lua/zcrm/cli/apply_plan.lua) or a change set
-- (lua/zcrm/cli/apply_changeset.lua), to one org or, with --orgs, to many.
-- Every form checks every input before its question, and asks only when
-- there is something to send.
-- @module zcrm.cli.apply

local plan = require "zcrm.plan"
local term = require "zcrm.cli.term"
local words = require "zcrm.cli.args"
local apply_plan = require "zcrm.cli.apply_plan"
local apply_changeset = require "zcrm.cli.apply_changeset"
local print_invalid = require("zcrm.cli.changes").print_invalid

local M = {}

local EXIT_OK, EXIT_USAGE = 0, 2
local out, err_line, json_line, usage_error = term.out, term.err_line, term.json_line, term.usage_error

--- Their entries in the flag table (lua/zcrm/cli/args.lua).
M.COMMANDS = {
  apply = {
    summary = "show what a plan or a change set changes, ask, apply it",
    usage = { "PLAN.lua [ARG...]",
              { "CHANGES.json", change_set = true },
              { "PLAN.lua --orgs ORGS.lua [--journal 'F-{org}'] [--undo 'F-{org}'] [--yes]", literal = true },
              { "'CHANGES-{org}.json' --orgs ORGS.lua [--yes]", literal = true } },
    connection = true, operands = "plan-or-changes", arguments = true,
    text = [[
Checks every entry of PLAN.lua, reads the org's current state, shows what would
change, asks "Apply N changes to <api domain> (N credits)? [y/N]" on a terminal, then sends
only what differs from the plan, concurrently. Running the same command again
converges: an interrupted run is resumed by running it again. ARGs reach a plan
function as ctx.args.
]],
    flags = {
      { name = "yes", short = "y", help = "apply without asking (needed without a terminal)" },
      { name = "dry-run", help = "everything but the writes: reads the state, runs every check,\n"
        .. "shows the request bodies that would be sent; sends nothing" },
      { name = "no-diff", plans_only = true, help = "do not read the state: send every entry as written" },
      { name = "partial", help = "send the valid entries even when others are invalid" },
      { name = "journal", value = "F", complete = "file", help = "append each completed update to F (JSON lines, "
        .. "fsync'd): an\naudit record; it never makes a run skip anything" },
      { name = "undo", value = "F", complete = "file",
        help = "write F, a plan that restores the state read (F must not exist)" },
      { name = "concurrency", value = "N", help = "at most N updates in flight (default 10; Zoho allows 5 to 25\n"
        .. "by edition); a 429 answer lowers it for a while" },
      { name = "batch", plans_only = true, help = "send updates 100 modules per call (PUT settings/modules);\n"
        .. "if the server refuses that, one per call, said once" },
      { name = "json", help = "JSON lines on stdout: one event per line" },
      { name = "only", value = "M,...", help = "apply only these modules (API names or ids; an unknown one\n"
        .. "is an error, exit 2)" },
      { name = "exclude", value = "M,...", help = "leave these modules out (the same rule)" },
      { name = "max-credits", value = "N", help = "refuse (exit 2, nothing sent) when the updates would spend\n"
        .. "more than N credits (5 an update, 500 a new module)" },
      { name = "orgs", value = "ORGS.lua", complete = "file", help = "apply to every org of ORGS.lua (a list of "
        .. "{ name =, options = }),\nconcurrently; every org is checked first, one confirmation;\n"
        .. "--journal and --undo must hold {org}" },
      { name = "diff", usage = false, plans_only = true, help = "accepted for older scripts; reading the state is the default" },
    },
    after = [[
Ctrl-C (or SIGTERM) before the question (with --yes, before the first update)
ends zcrm at once: nothing was sent. After it, the first one stops sending, lets
the updates in flight finish (a few seconds at most), prints the summary and the
command that resumes; a second one stops at once.

A change set (CHANGES.json, from zcrm plan --out) is applied exactly: every
body is checked by the code that builds the request, and every module id,
profile id and profile name must be the org's (else INVALID_CHANGES, exit 2,
nothing sent). Each module is read first: one at its "before" values gets its
body; one already at its "after" values is "already applied" (not sent, not an
error: running the same command again after Ctrl-C or a failure finishes the
set, exit 0); any other has changed since the plan. One such module refuses
the whole set (nothing sent, each named with what changed, exit 1); --partial
applies the rest (still exit 1). --journal and --undo mean what they mean for
plans. A change set made for another org is refused (exit 2). --no-diff,
--batch and plan arguments do not apply to a change set (exit 2).
]],
  },
  validate = {
    summary = "check a plan without contacting Zoho",
    usage = { "PLAN.lua [ARG...]" }, operands = "plan", arguments = true,
    text = [[
Checks every entry of PLAN.lua (labels, profiles, module names, duplicates)
without contacting Zoho, and lists all faults with their entry index. Checks that
need the org's state (unknown modules, unknown profiles, label
collisions with other modules) run in `zcrm apply PLAN.lua --dry-run`.
]],
    flags = { { name = "json", help = "JSON lines on stdout: one per fault, or one saying all is valid" } },
  },
}

local function whole(value)
  return math.tointeger(tonumber(value)) ~= nil
end

--- `zcrm apply PATH`: a change set (PATH ends in .json) or a plan, to one
-- org or (--orgs) to many.
function M.COMMANDS.apply.run(flags, positional, argv)
  local path = positional[1]
  if not path then return usage_error("apply needs a plan file", "apply") end
  if flags.concurrency and not whole(flags.concurrency) then
    return usage_error("--concurrency needs a whole number", "apply")
  end
  local max = flags["max-credits"]
  if max and not (whole(max) and tonumber(max) >= 0) then
    return usage_error("--max-credits needs a whole number of credits", "apply")
  end
  if path:match("%.json$") then
    local refused = words.plans_only("apply", flags)
    if refused then
      return usage_error(string.format("--%s is for plans; a change set is compared with the org and applied "
        .. "exactly as planned", refused), "apply")
    end
    if #positional > 1 then
      return usage_error("a change set takes no plan arguments (they were recorded by zcrm plan)", "apply")
    end
    if flags.orgs then return apply_changeset.orgs(flags, path, argv) end
    return apply_changeset.one(flags, path, argv)
  end
  if flags.orgs then return apply_plan.orgs(flags, positional, argv) end
  return apply_plan.one(flags, positional, argv)
end

--- `zcrm validate PLAN.lua`: every entry checked, without contacting Zoho.
function M.COMMANDS.validate.run(flags, positional)
  local path = positional[1]
  if not path then return usage_error("validate needs a plan file", "validate") end
  local list, lerr = plan.load(path, { args = { table.unpack(positional, 2) } })
  local ok, err = false, lerr
  if list then ok, err = plan.validate(list) end
  if ok then
    if flags.json then json_line { event = "valid", path = path, entries = #list }
    else out(string.format("%s: %s, all valid\n", path, term.plural(#list, "entry"))) end
    return EXIT_OK
  end
  if err.details and err.details.errors then
    print_invalid(flags, err.details.errors)
    err_line(string.format("zcrm: %s: %d of %d entries are invalid", path, #err.details.errors, #list))
  else
    term.print_error(flags, path, err)
  end
  return EXIT_USAGE
end

return M
