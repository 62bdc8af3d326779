--- The `zcrm` command. `bin/zcrm` calls `main(arg)` and exits with its
-- result: 0 all applied, 1 some failed (or a runtime error, or the question
-- was not answered yes), 2 invalid plan or usage, 130/143 interrupted
-- (SIGINT/SIGTERM).
--
-- Every command comes from the module that runs it (COMMAND_MODULES below):
-- each exports `COMMANDS`, its commands' entries in the flag table
-- (lua/zcrm/cli/args.lua), each with the function that runs it (`run`).
-- This file defines them all, before any command runs, and dispatches.
-- @module zcrm.cli

local zcrm = require "zcrm"
local proc = require "zcrm.proc"
local term = require "zcrm.cli.term"
local words = require "zcrm.cli.args"

local M = {}

local EXIT_OK, EXIT_USAGE = 0, 2
local out, usage_error = term.out, term.usage_error

local MAIN_HELP = [[
usage: zcrm <command> [options]

Change Zoho CRM custom-module configuration from plan files.

Commands:
  modules             list the org's modules
  profiles            list the org's profiles
  validate PLAN.lua   check a plan without contacting Zoho
  apply PLAN.lua      show what a plan changes, ask, apply it (see zcrm help apply)
  emulator [flags]    run the local Zoho CRM emulator (zcrm help emulator)
  completion SHELL    a completion script for bash, zsh or fish
  help COMMAND        the options of COMMAND (or: zcrm COMMAND --help)

Exit codes: 0 all applied (a change set already applied too), 1 some failed,
changed since the plan, or not confirmed, 2 invalid plan, change set or usage,
130/143 interrupted. Colours only on a terminal; NO_COLOR or --no-color
turns them off.

Configuration as code (each takes --help):
  export              write the org's custom modules as a plan file
  plan PLAN.lua       write the exact change set a plan makes (--out CHANGES.json)
  show CHANGES.json   print a change set as apply would show it (no network)
  diff PLAN.lua       show how the org differs from a plan (exit 0 same, 1 differs, 2 error)
  apply CHANGES.json  apply exactly a change set written by zcrm plan

Access:
  report              which profiles reach which custom modules (--orgs: compare orgs)

Credentials:
  login               exchange a grant code and store the org (--list: the stored orgs)
  logout              revoke an org's refresh token and forget the org
]]

-- `zcrm help` is main's own: its words are command names, not flags.
local HELP_COMMAND = {
  summary = "the options of a command", usage = { "[COMMAND]" }, operands = "commands", arguments = true,
  text = [[
Prints what COMMAND does and every option it takes (zcrm COMMAND --help prints
the same); without COMMAND, the list of commands.
]],
}

local COMMAND_MODULES = {
  "zcrm.cli.apply",            -- apply (plans and change sets), validate
  "zcrm.cli.lists",            -- modules, profiles, emulator
  "zcrm.cli.manual",           -- completion
  "zcrm.cli.export_plan_diff", -- export, plan, show, diff
  "zcrm.cli.report",           -- report
  "zcrm.cli.login",            -- login, logout
}

for _, module in ipairs(COMMAND_MODULES) do
  for name, def in pairs(require(module).COMMANDS) do words.define(name, def) end
end
words.define("help", HELP_COMMAND)

-- 'unknown command "aply"; did you mean "apply"?': `what` names the word
-- ("unknown command", "no command"), `names` the words it could have been
-- besides the commands; the nearest is suggested when one is close.
local function no_such_command(what, word, names)
  for _, name in ipairs(words.names()) do names[#names + 1] = name end
  local near = words.nearest(word, names)
  return usage_error(string.format('%s "%s"%s', what, word, near and string.format('; did you mean "%s"?', near) or ""))
end

local function command_help(command)
  out(words.help_text(command))
  return EXIT_OK
end

--- main(argv) -> exit code. argv is the script's `arg` (argv[0] its path).
function M.main(argv)
  argv = argv or {}
  -- Until apply is about to send (its question, or --yes), SIGINT and SIGTERM
  -- end the process at once, without the interpreter's "interrupted!"
  -- traceback: nothing has been sent that a summary would have to account for.
  proc.catch_interrupts(false)
  -- Line by line whatever stdout is (a file, a pipe): a second Ctrl-C, which
  -- ends the process at once, loses no line already printed.
  io.stdout:setvbuf("line")
  term.setup_terminal {}
  local command = argv[1]
  if command == nil or command == "-h" or command == "--help" then
    out(MAIN_HELP)
    return command == nil and EXIT_USAGE or EXIT_OK
  end
  if command == "help" then
    local topic = argv[2]
    if topic == nil then out(MAIN_HELP) return EXIT_OK end
    if topic == "--help" or topic == "-h" then topic = "help" end
    local def = words.COMMANDS[topic]
    if not def then return no_such_command("no command", topic, {}) end
    if def.raw then return def.run({ [0] = argv[0], topic, "--help" }, 2) end
    return command_help(topic)
  end
  if command == "--version" then
    out(zcrm._VERSION, "\n")
    return EXIT_OK
  end
  local def = words.COMMANDS[command]
  if not (def and def.run) then return no_such_command("unknown command", command, { "help" }) end
  if def.raw then return def.run(argv, 2) end
  local flags, positional, perr = words.parse(command, argv, 2)
  if not flags then return usage_error(perr, command) end
  term.setup_terminal(flags)
  if flags.help then return command_help(command) end
  if flags.json then
    -- stdout holds JSON only: what a plan prints (print, io.write) goes to stderr
    term.json_output(command)
  end
  if not words.takes_arguments(command) and #positional > 0 then
    return usage_error("zcrm " .. command .. " takes no arguments", command)
  end
  return def.run(flags, positional, argv)
end

return M
