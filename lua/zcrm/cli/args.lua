--- The words of `zcrm`: help texts, the flags each command takes, parsing
-- them, and the command line that resumes an interrupted run.


local dc = require "zcrm.dc"

local M = {}

-- {==== the flag table
--
-- One definition per command, the only place its flags are named: the parser
-- reads their kinds (a flag with a `value` name takes one), `zcrm help CMD`
-- and `zcrm CMD --help` are drawn from it (usage lines, option list; the prose
-- stays hand-written), and so are the man page and the shell completions
-- (lua/zcrm/cli/manual.lua); spec/help_spec.lua holds the README to it.
--
--   define(name, {
--     summary = "one line",                   -- man page, completion
--     usage = { "PLAN.lua [ARG...]", ... },   -- forms; a form's flags are all the
--                                             -- command's, or { "X", flags = {...} }
--                                             -- names them, or { "...", literal = true }
--     text = "prose after the usage lines", after = "prose after the options",
--     flags = { { name =, value = "NAME" (absent: a switch), help = "line\nline",
--                 short = "y", complete = "file" | { "a", "b" }, usage = false }, ... },
--     connection = true,                      -- takes the connection options
--     operands = "plan" | "changes" | "plan-or-changes" | "shells" | "commands",
--     arguments = true,                       -- takes words besides its flags
--   })

local COMMANDS, NAMES = {}, {}

-- Every command takes these (but `emulator`, which passes its words on).
local COMMON_FLAGS = {
  { name = "no-color", help = "no colours (NO_COLOR=1 does the same)" },
  { name = "help", short = "h", help = "this text" },
}

local CONNECTION_FLAGS = {
  { name = "api-domain", value = "URL", env = "ZOHO_API_DOMAIN", help = "API base, e.g. https://www.zohoapis.eu" },
  { name = "dc", value = "DC", env = "ZOHO_DC", help = table.concat(dc.names, ", "), complete = dc.names },
  { name = "environment", value = "ENV", env = "ZOHO_ENVIRONMENT", help = table.concat(dc.environments, ", "),
    complete = dc.environments },
  { name = "config", value = "FILE", complete = "file", help = [[
a Lua file returning zcrm.new options, e.g.
return { dc = "eu", oauth = { client_id = "...", client_secret = "...",
         refresh_token = "..." } }
secrets written in it: chmod 600, yours; or os.getenv("...") them]] },
  { name = "access-token", value = "T", help = "discouraged: other users can read it in the process list" },
  { name = "org", value = "NAME", env = "ZCRM_ORG", help = "an org stored by zcrm login" },
}

local CONNECTION_HEAD = "Connection (flags win over --config, which wins over the environment):"
local CONNECTION_TAIL = [[
Credentials otherwise come from ZOHO_ACCESS_TOKEN, or from ZOHO_CLIENT_ID,
ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN (ZOHO_ACCOUNTS_URL for the accounts server),
then from the named org (the org "default" when none is named and it is stored).
]]

--- define(name, def): adds a command's definition to the table (see above).
local function define(name, def)
  if not COMMANDS[name] then NAMES[#NAMES + 1] = name end
  def.name = name
  def.flags = def.flags or {}
  COMMANDS[name] = def
end

--- flags_of(name) -> every flag `zcrm name` takes, in the order its help
-- lists them: its own, the connection options, then --no-color and --help.
local function flags_of(name)
  local def = COMMANDS[name]
  local list = {}
  for _, f in ipairs(def.flags) do list[#list + 1] = f end
  if def.connection then
    for _, f in ipairs(CONNECTION_FLAGS) do list[#list + 1] = f end
  end
  if not def.raw then
    for _, f in ipairs(COMMON_FLAGS) do list[#list + 1] = f end
  end
  return list
end

--- names() -> the commands, sorted.
local function command_names()
  local list = { table.unpack(NAMES) }
  table.sort(list)
  return list
end

-- "--journal F", "--yes, -y"
local function flag_words(f)
  return "--" .. f.name .. (f.value and (" " .. f.value) or "") .. (f.short and (", -" .. f.short) or "")
end

-- Words wrapped into lines of at most 79 columns, continuation lines indented.
local function wrap(first, words, indent)
  local lines, line = {}, first
  for _, w in ipairs(words) do
    if #line + 1 + #w > 79 and #line > #indent then
      lines[#lines + 1] = line
      line = indent .. w
    else
      line = line .. (line:sub(-1) == " " and "" or " ") .. w
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function usage_lines(def)
  local forms, lines = def.usage or { "" }, {}
  for i, form in ipairs(forms) do
    if type(form) == "string" then form = { form } end
    local head = (i == 1 and "usage: " or "       ") .. "zcrm " .. def.name
    local words = {}
    for w in form[1]:gmatch("%S+") do
      -- a bracketed group ("[--undo 'F-{org}']") is one word
      local last = words[#words]
      if last and select(2, last:gsub("%[", "")) > select(2, last:gsub("%]", "")) then
        words[#words] = last .. " " .. w
      else
        words[#words + 1] = w
      end
    end
    if not form.literal then
      local only
      if form.flags then
        only = {}
        for _, n in ipairs(form.flags) do only[n] = true end
      end
      for _, f in ipairs(def.flags) do
        if f.usage ~= false and (not only or only[f.name]) then
          words[#words + 1] = "[--" .. f.name .. (f.value and (" " .. f.value) or "") .. "]"
        end
      end
      if def.connection then words[#words + 1] = "[connection options]" end
    end
    -- "[connection options]" is one word: never split across lines
    for j, w in ipairs(words) do words[j] = w:gsub(" ", "\0") end
    lines[#lines + 1] = wrap(head, words, string.rep(" ", #head + 1)):gsub("%z", " ")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- An option list: each flag, its help's lines aligned in one column; `env`
-- names the variable that sets it, at the end of its first line.
local function option_list(list)
  local w = 0
  for _, f in ipairs(list) do w = math.max(w, #flag_words(f)) end
  local hw = 0
  for _, f in ipairs(list) do
    if f.env then hw = math.max(hw, #f.help:match("^[^\n]*")) end
  end
  local lines = {}
  for _, f in ipairs(list) do
    local first = true
    for line in (f.help .. "\n"):gmatch("([^\n]*)\n") do
      if first and f.env then line = line .. string.rep(" ", hw - #line + 2) .. "(" .. f.env .. ")" end
      lines[#lines + 1] = string.format("  %-" .. w .. "s  %s", first and flag_words(f) or "", line)
      first = false
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- help_text(name) -> what `zcrm help name` and `zcrm name --help` print.
local function help_text(name)
  local def = COMMANDS[name]
  local parts = { usage_lines(def) }
  if def.text then parts[#parts + 1] = "\n" .. def.text end
  -- its own flags, then --no-color and --help; the connection options last
  local own = {}
  for _, f in ipairs(def.flags) do own[#own + 1] = f end
  if not def.raw then
    for _, f in ipairs(COMMON_FLAGS) do own[#own + 1] = f end
  end
  if not def.raw and #own > 0 then parts[#parts + 1] = "\n" .. option_list(own) end
  if def.after then parts[#parts + 1] = "\n" .. def.after end
  if def.connection then
    parts[#parts + 1] = "\n" .. CONNECTION_HEAD .. "\n" .. option_list(CONNECTION_FLAGS) .. CONNECTION_TAIL
  end
  return table.concat(parts)
end

-- The main help: hand-written, with the rooms' sections appended at install.
local HELP = {
  main = [[
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
]],
}

define("apply", {
  summary = "show what a plan or a change set changes, ask, apply it",
  usage = { "PLAN.lua [ARG...]",
            { "CHANGES.json", flags = { "yes", "dry-run", "partial", "journal", "undo", "concurrency", "json", "only",
                                        "exclude", "max-credits", "orgs" } },
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
    { name = "no-diff", help = "do not read the state: send every entry as written" },
    { name = "partial", help = "send the valid entries even when others are invalid" },
    { name = "journal", value = "F", complete = "file", help = "append each completed update to F (JSON lines, "
      .. "fsync'd): an\naudit record; it never makes a run skip anything" },
    { name = "undo", value = "F", complete = "file",
      help = "write F, a plan that restores the state read (F must not exist)" },
    { name = "concurrency", value = "N", help = "at most N updates in flight (default 10; Zoho allows 5 to 25\n"
      .. "by edition); a 429 answer lowers it for a while" },
    { name = "batch", help = "send updates 100 modules per call (PUT settings/modules);\n"
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
    { name = "diff", usage = false, help = "accepted for older scripts; reading the state is the default" },
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
})

define("validate", {
  summary = "check a plan without contacting Zoho",
  usage = { "PLAN.lua [ARG...]" }, operands = "plan", arguments = true,
  text = [[
Checks every entry of PLAN.lua (labels, profiles, module names, duplicates)
without contacting Zoho, and lists all faults with their entry index. Checks that
need the org's state (unknown modules, unknown profiles, label
collisions with other modules) run in `zcrm apply PLAN.lua --dry-run`.
]],
  flags = { { name = "json", help = "JSON lines on stdout: one per fault, or one saying all is valid" } },
})

define("modules", {
  summary = "list the org's modules", connection = true,
  text = [[
Lists the org's modules: API name, id, type, labels and the profiles that see them.
On a terminal the table fits its width, long cells cut with an ellipsis.
]],
  flags = { { name = "json", help = "JSON lines on stdout, one module a line" },
            { name = "wide", help = "every cell whole, however wide the table" } },
})

define("profiles", {
  summary = "list the org's profiles", connection = true,
  text = "Lists the org's profiles: id and name.\n",
  flags = { { name = "json", help = "JSON lines on stdout, one profile a line" },
            { name = "wide", help = "every cell whole, however wide the table" } },
})

define("emulator", {
  summary = "run the local Zoho CRM emulator", usage = { "[flags]" }, raw = true, arguments = true,
  text = [[
Runs zcrm-emulator, a local stand-in for Zoho CRM's settings API, in this
process (stopping it frees its port), with these flags (its own list follows).
Its access token is "emulator-token".
]],
})

define("help", {
  summary = "the options of a command", usage = { "[COMMAND]" }, operands = "commands", arguments = true,
  text = [[
Prints what COMMAND does and every option it takes (zcrm COMMAND --help prints
the same); without COMMAND, the list of commands.
]],
})

-- }====

-- {==== arguments

--- takes_arguments(name) -> true when `zcrm name` takes words besides flags.
local function takes_arguments(name)
  return COMMANDS[name] and COMMANDS[name].arguments or false
end

-- Returns flags, positionals, or nil, nil, message.
local function parse(command, argv, first)
  local known, short = {}, {}
  for _, f in ipairs(flags_of(command)) do
    known[f.name] = f.value and "value" or "boolean"
    if f.short then short[f.short] = f.name end
  end
  local flags, positional = {}, {}
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    elseif short[a:match("^%-(%w)$") or ""] then
      flags[short[a:sub(2)]] = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = known[name]
      if not kind then
        local names = {}
        for n in pairs(known) do names[#names + 1] = n end
        local near = M.nearest(name, names)          -- defined below; called once parsing
        return nil, nil, "unknown option '--" .. name .. "' for zcrm " .. command
          .. (near and string.format("; did you mean '--%s'?", near) or "")
      end
      if kind == "boolean" then
        if value then return nil, nil, "option '--" .. name .. "' takes no value" end
        flags[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, nil, "option '--" .. name .. "' needs a value" end
        end
        flags[name] = value
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      return nil, nil, "unknown option '" .. a .. "' for zcrm " .. command
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return flags, positional
end

local function shell_quote(s)
  s = tostring(s)
  if s:match("^[%w%./_=:,@%+%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Flags left out of the "run it again" hint, with their values: --undo (the
-- undo plan this run wrote stays the way back, and a rerun would refuse to
-- overwrite it) and --access-token (a secret never reaches the output).
local RESUME_DROPS = { undo = true, ["access-token"] = true }

-- The command line as typed, for "run it again" hints, without RESUME_DROPS;
-- the second result is true when a secret was left out.
local function resume_command(argv)
  local parts = { shell_quote(argv[0] or "zcrm") }
  local secret_dropped = false
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^%-%-([%w-]+)(=?)")
    if name and RESUME_DROPS[name] then
      if inline == "" then i = i + 1 end
      if name == "access-token" then secret_dropped = true end
    else
      parts[#parts + 1] = shell_quote(a)
    end
    i = i + 1
  end
  return table.concat(parts, " "), secret_dropped
end

-- Edit distance (insertions, deletions, substitutions, swaps of neighbours,
-- each one step), as git counts it for "did you mean".
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

--- nearest(word, names) -> the name in `names` closest to `word` when it is
-- close (at most 2 edits, and fewer than the word has letters), or nil; a tie
-- goes to the name first in alphabetical order.
local function nearest(word, names)
  local best, best_d
  for _, name in ipairs(names) do
    local d = distance(word, name)
    if d <= 2 and d < #word and (not best_d or d < best_d or (d == best_d and name < best)) then
      best, best_d = name, d
    end
  end
  return best
end

-- }====

M.HELP = HELP
M.COMMANDS = COMMANDS
M.CONNECTION_FLAGS = CONNECTION_FLAGS
M.define = define
M.flags_of = flags_of
M.names = command_names
M.help_text = help_text
M.takes_arguments = takes_arguments
M.parse = parse
M.resume_command = resume_command
M.nearest = nearest

return M
