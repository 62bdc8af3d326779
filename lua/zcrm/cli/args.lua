--- The flag table of `zcrm`: what each command takes, the help texts drawn
-- from it, parsing a command line against it, and "did you mean".
-- @module zcrm.cli.args

local dc = require "zcrm.dc"

local M = {}

-- {==== the flag table
--
-- One definition per command, the only place its flags are named (each
-- command's module holds its own, lua/zcrm/cli/init.lua defines them all in
-- one place, before any command runs): the parser
-- reads their kinds (a flag with a `value` name takes one), `zcrm help CMD`
-- and `zcrm CMD --help` are drawn from it (usage lines, option list; the prose
-- stays hand-written), and so are the man page and the shell completions
-- (lua/zcrm/cli/manual.lua); spec/help_spec.lua holds the README to it.
--
--   define(name, {
--     summary = "one line",                   -- man page, completion
--     usage = { "PLAN.lua [ARG...]", ... },   -- forms; a form's flags are all the
--                                             -- command's, or { "X", flags = {...} }
--                                             -- names them, or { "X", change_set = true }:
--                                             -- all but those marked plans_only,
--                                             -- or { "...", literal = true }
--     text = "prose after the usage lines", after = "prose after the options",
--     flags = { { name =, value = "NAME" (absent: a switch), help = "line\nline",
--                 short = "y", complete = "file" | { "a", "b" }, usage = false,
--                 plans_only = true (a change set refuses it) }, ... },
--     connection = true,                      -- takes the connection options
--     operands = "plan" | "changes" | "plan-or-changes" | "shells" | "commands",
--     arguments = true,                       -- takes words besides its flags
--     run = function(flags, positional, argv) -> exit code,  -- the command
--     raw = true,                             -- run(argv, first): its words unparsed
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
        if f.usage ~= false and (not only or only[f.name]) and not (form.change_set and f.plans_only) then
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

-- }====

-- {==== arguments

--- takes_arguments(name) -> true when `zcrm name` takes words besides flags.
local function takes_arguments(name)
  return COMMANDS[name] and COMMANDS[name].arguments or false
end

--- plans_only(name, flags) -> the first flag of `flags` (parsed) that
-- `zcrm name` takes for a plan only (marked plans_only), or nil.
local function plans_only(name, flags)
  for _, f in ipairs(COMMANDS[name].flags) do
    if f.plans_only and flags[f.name] then return f.name end
  end
  return nil
end

--- name_list(value) -> "A,B" (the value of --only, --exclude) as { "A", "B" },
-- or nil when the flag was not given.
local function name_list(value)
  if not value then return nil end
  local list = {}
  for n in value:gmatch("[^,%s]+") do list[#list + 1] = n end
  return list
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

M.COMMANDS = COMMANDS
M.CONNECTION_FLAGS = CONNECTION_FLAGS
M.define = define
M.flags_of = flags_of
M.names = command_names
M.help_text = help_text
M.takes_arguments = takes_arguments
M.parse = parse
M.plans_only = plans_only
M.name_list = name_list
M.nearest = nearest

return M
