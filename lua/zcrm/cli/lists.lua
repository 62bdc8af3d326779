--- The listing commands of `zcrm` (modules, profiles) and `zcrm emulator`.
-- @module zcrm.cli.lists

local core = require "zcrm.core"
local proc = require "zcrm.proc"
local term = require "zcrm.cli.term"
local words = require "zcrm.cli.args"
local connect = require("zcrm.cli.connect").connect

local M = {}

local EXIT_OK, EXIT_FAILED = 0, 1
local out, err_line, json_line, print_error = term.out, term.err_line, term.json_line, term.print_error
local list_or_nil, print_table = term.list_or_nil, term.print_table

--- Their entries in the flag table (lua/zcrm/cli/args.lua).
M.COMMANDS = {
  modules = {
    summary = "list the org's modules", connection = true,
    text = [[
Lists the org's modules: API name, id, type, labels and the profiles that see them.
On a terminal the table fits its width, long cells cut with an ellipsis.
]],
    flags = { { name = "json", help = "JSON lines on stdout, one module a line" },
              { name = "wide", help = "every cell whole, however wide the table" } },
  },
  profiles = {
    summary = "list the org's profiles", connection = true,
    text = "Lists the org's profiles: id and name.\n",
    flags = { { name = "json", help = "JSON lines on stdout, one profile a line" },
              { name = "wide", help = "every cell whole, however wide the table" } },
  },
  emulator = {
    summary = "run the local Zoho CRM emulator", usage = { "[flags]" }, raw = true, arguments = true,
    text = [[
Runs zcrm-emulator, a local stand-in for Zoho CRM's settings API, in this
process (stopping it frees its port), with these flags (its own list follows).
Its access token is "emulator-token".
]],
  },
}

local function exists(path)
  return core.file_mode(path) ~= nil
end

local function profile_names(m)
  local names = {}
  for _, p in ipairs(type(m.profiles) == "table" and m.profiles or {}) do names[#names + 1] = p.name or p.id end
  return table.concat(names, ", ")
end

-- Runs `fetch(client)` and prints its list: JSON lines, or a table that fits
-- the terminal (columns `shrink` cut with an ellipsis) unless --wide or
-- stdout is not a terminal.
local function list_command(flags, fetch, json_of, header, row_of, shrink)
  local client, code = connect(flags)
  if not client then return code end
  local list, err = fetch(client)
  client:close()
  if not list then
    print_error(flags, nil, err)
    return EXIT_FAILED
  end
  if flags.json then
    for _, item in ipairs(list) do json_line(json_of(item)) end
  else
    local rows = {}
    for i, item in ipairs(list) do rows[i] = row_of(item) end
    local fitted = not flags.wide and proc.isatty(io.stdout)
    print_table(header, rows, { max_width = fitted and term.columns() or nil, shrink = shrink })
  end
  return EXIT_OK
end

local function cmd_modules(flags)
  return list_command(flags, function(c) return c:get_modules() end,
    function(m)
      return { id = m.id, api_name = m.api_name, generated_type = m.generated_type,
               plural_label = m.plural_label, singular_label = m.singular_label,
               status = m.status, profiles = list_or_nil(m.profiles) }
    end,
    { "API NAME", "ID", "TYPE", "PLURAL LABEL", "SINGULAR LABEL", "PROFILES" },
    function(m)
      return { tostring(m.api_name or "?"), tostring(m.id or "?"), tostring(m.generated_type or "?"),
               tostring(m.plural_label or ""), tostring(m.singular_label or ""), profile_names(m) }
    end, { 4, 5, 6, 1 })
end

local function cmd_profiles(flags)
  return list_command(flags, function(c) return c:get_profiles() end,
    function(p) return { id = p.id, name = p.name, custom = p.custom } end,
    { "ID", "NAME" },
    function(p) return { tostring(p.id or "?"), tostring(p.name or "") } end, { 2 })
end

-- The emulator beside this script (a checkout's bin/, or the install's
-- BINDIR), else zcrm-emulator on PATH.
local function emulator_binary(argv)
  local dir = (argv[0] or ""):match("^(.*)/[^/]*$")
  if dir and exists(dir .. "/zcrm-emulator") then return dir .. "/zcrm-emulator" end
  return "zcrm-emulator"
end

-- Replaces this process by the emulator: one process, so stopping it (kill,
-- Ctrl-C) frees the port.
local function cmd_emulator(argv, first)
  local bin = emulator_binary(argv)
  local args = { [0] = "zcrm-emulator" }
  for i = first, #argv do
    if argv[i] == "--help" or argv[i] == "-h" then out(words.help_text("emulator"), "\n") end
    args[#args + 1] = argv[i]
  end
  io.stdout:flush()
  local _, message, errno = proc.exec(bin, args)
  if errno == 2 then
    err_line("zcrm: zcrm-emulator not found (hint: run make in the zcrm checkout, or install it on PATH)")
    return 127
  end
  err_line("zcrm: " .. tostring(message))
  return 126
end

M.COMMANDS.modules.run = cmd_modules
M.COMMANDS.profiles.run = cmd_profiles
M.COMMANDS.emulator.run = cmd_emulator

return M
