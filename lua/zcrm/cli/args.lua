--- The words of `zcrm`: help texts, the flags each command takes, parsing
-- them, and the command line that resumes an interrupted run.


local M = {}

-- {==== help texts

local CONNECTION_HELP = [[
Connection (flags win over --config, which wins over the environment):
  --api-domain URL    API base, e.g. https://www.zohoapis.eu        (ZOHO_API_DOMAIN)
  --dc DC             us, eu, in, au, jp, ca, sa, cn                (ZOHO_DC)
  --environment ENV   production, sandbox, developer                (ZOHO_ENVIRONMENT)
  --config FILE       a Lua file returning zcrm.new options, e.g.
                      return { dc = "eu", oauth = { client_id = "...", client_secret = "...",
                               refresh_token = "..." } }
                      secrets written in it: chmod 600, yours; or os.getenv("...") them
  --access-token T    discouraged: other users can read it in the process list
  --org NAME          an org stored by zcrm login                   (ZCRM_ORG)
Credentials otherwise come from ZOHO_ACCESS_TOKEN, or from ZOHO_CLIENT_ID,
ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN (ZOHO_ACCOUNTS_URL for the accounts server),
then from the named org (the org "default" when none is named and it is stored).
]]

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
  help COMMAND        the options of COMMAND (or: zcrm COMMAND --help)

Exit codes: 0 all applied (a change set already applied too), 1 some failed,
changed since the plan, or not confirmed, 2 invalid plan, change set or usage,
130/143 interrupted. Colours only on a terminal; NO_COLOR or --no-color
turns them off.
]],
  apply = [[
usage: zcrm apply PLAN.lua [ARG...] [--yes] [--dry-run] [--no-diff] [--partial]
                  [--journal F] [--undo F] [--concurrency N] [--batch] [--json]
                  [--only M,...] [--exclude M,...] [--max-credits N] [connection options]

Checks every entry of PLAN.lua, reads the org's current state, shows what would
change, asks "Apply N changes to <api domain> (N credits)? [y/N]" on a terminal, then sends
only what differs from the plan, concurrently. Running the same command again
converges: an interrupted run is resumed by running it again. ARGs reach a plan
function as ctx.args.

  --yes              apply without asking (needed without a terminal)
  --dry-run          everything but the writes: reads the state, runs every check,
                     shows the request bodies that would be sent; sends nothing
  --no-diff          do not read the state: send every entry as written
  --partial          send the valid entries even when others are invalid
  --journal F        append each completed update to F (JSON lines, fsync'd): an
                     audit record; it never makes a run skip anything
  --undo F           write F, a plan that restores the state read (F must not exist)
  --concurrency N    at most N updates in flight (default 10; Zoho allows 5 to 25)
  --batch            send updates 100 modules per call (PUT settings/modules);
                     if the server refuses that, one per call, said once
  --json             JSON lines on stdout: one event per line
  --only M,...       apply only these modules (API names or ids; an unknown one
                     is an error, exit 2)
  --exclude M,...    leave these modules out (the same rule)
  --max-credits N    refuse (exit 2, nothing sent) when the updates would spend
                     more than N credits (5 an update, 500 a new module)
  --diff             accepted for older scripts; reading the state is the default

Ctrl-C (or SIGTERM) before the question (with --yes, before the first update)
ends zcrm at once: nothing was sent. After it, the first one stops sending, lets
the updates in flight finish (a few seconds at most), prints the summary and the
command that resumes; a second one stops at once.
]],
  validate = [[
usage: zcrm validate PLAN.lua [ARG...] [--json]

Checks every entry of PLAN.lua (labels, profiles, module names, duplicates)
without contacting Zoho, and lists all faults with their entry index. Checks that
need the org's state (unknown or standard modules, unknown profiles, label
collisions with other modules) run in `zcrm apply PLAN.lua --dry-run`.
]],
  modules = [[
usage: zcrm modules [--json] [connection options]

Lists the org's modules: API name, id, type, labels and the profiles that see them.
]],
  profiles = [[
usage: zcrm profiles [--json] [connection options]

Lists the org's profiles: id and name.
]],
  emulator = [[
usage: zcrm emulator [flags]

Runs zcrm-emulator, a local stand-in for Zoho CRM's settings API, in this
process (stopping it frees its port), with these flags (its own list follows).
Its access token is "emulator-token".
]],
}

-- }====

-- {==== arguments

-- Flags each command takes: name -> "boolean" or "value".
local CONNECTION_FLAGS = { ["api-domain"] = "value", dc = "value", environment = "value",
                           config = "value", ["access-token"] = "value", org = "value" }
local COMMAND_FLAGS = {
  apply = { ["dry-run"] = "boolean", diff = "boolean", ["no-diff"] = "boolean", journal = "value",
            undo = "value", concurrency = "value", json = "boolean", yes = "boolean",
            partial = "boolean", batch = "boolean" },
  validate = { json = "boolean" },
  modules = { json = "boolean" },
  profiles = { json = "boolean" },
}

-- Returns flags, positionals, or nil, nil, message.
local function parse(command, argv, first)
  local known = { ["no-color"] = "boolean" }
  for k, v in pairs(COMMAND_FLAGS[command]) do known[k] = v end
  if command ~= "validate" then
    for k, v in pairs(CONNECTION_FLAGS) do known[k] = v end
  end
  local flags, positional = {}, {}
  local i = first
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    elseif a == "-h" or a == "--help" then
      flags.help = true
    elseif a == "-y" and command == "apply" then
      flags.yes = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = known[name]
      if not kind then return nil, nil, "unknown option '--" .. name .. "' for zcrm " .. command end
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

M.CONNECTION_HELP = CONNECTION_HELP
M.HELP = HELP
M.CONNECTION_FLAGS = CONNECTION_FLAGS
M.COMMAND_FLAGS = COMMAND_FLAGS
M.parse = parse
M.resume_command = resume_command
M.nearest = nearest

return M
