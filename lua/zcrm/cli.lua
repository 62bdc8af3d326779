--- The `zcrm` command: apply and validate plans, list modules and profiles,
-- run the emulator. `bin/zcrm` calls `main(arg)` and exits with its result:
-- 0 all applied, 1 some failed (or a runtime error, or the question was not
-- answered yes), 2 invalid plan or usage, 130/143 interrupted (SIGINT/SIGTERM).
--
-- `apply` shows, asks, applies, summarises: it reads the live state, shows
-- what differs, asks on a terminal (`--yes` skips the question; without a
-- terminal it must be given), sends only what differs, and prints a summary.

local cjson = require "cjson.safe"
local zcrm = require "zcrm"
local plan = require "zcrm.plan"
local core = require "zcrm.core"
local util = require "zcrm.util"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local EXIT_SIGNAL = { [2] = 130, [15] = 143 }
local SIGNAL_NAME = { [2] = "Ctrl-C (SIGINT)", [15] = "SIGTERM" }
-- After an interrupt, how long the updates in flight get to finish.
local INTERRUPT_GRACE = 5

-- {==== help texts

local CONNECTION_HELP = [[
Connection (flags win over --config, which wins over the environment):
  --api-domain URL    API base, e.g. https://www.zohoapis.eu        (ZOHO_API_DOMAIN)
  --dc DC             us, eu, in, au, jp, ca, sa, cn                (ZOHO_DC)
  --environment ENV   production, sandbox, developer                (ZOHO_ENVIRONMENT)
  --config FILE       a Lua file returning zcrm.new options, e.g.
                      return { dc = "eu", oauth = { client_id = "...", client_secret = "...",
                               refresh_token = "..." } }   (chmod 600 when it holds secrets)
  --access-token T    discouraged: other users can read it in the process list
Credentials otherwise come from ZOHO_ACCESS_TOKEN, or from ZOHO_CLIENT_ID,
ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN (ZOHO_ACCOUNTS_URL for the accounts server).
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

Exit codes: 0 all applied, 1 some failed (or not confirmed), 2 invalid plan or
usage, 130/143 interrupted. Colours only on a terminal; NO_COLOR or --no-color
turns them off.
]],
  apply = [[
usage: zcrm apply PLAN.lua [ARG...] [--yes] [--dry-run] [--no-diff] [--partial]
                  [--journal F] [--undo F] [--concurrency N] [--batch] [--json]
                  [connection options]

Checks every entry of PLAN.lua, reads the org's current state, shows what would
change, asks "Apply N changes to <api domain>? [y/N]" on a terminal, then sends
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
  --diff             accepted for older scripts; reading the state is the default

The first Ctrl-C (or SIGTERM) stops sending, lets the updates in flight finish
(a few seconds at most), prints the summary and the command that resumes; a
second one stops at once.
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

-- {==== terminal output: colours, the progress line, errors

-- What the streams are, set once per run by `setup_terminal`.
local term = { color_out = false, color_err = false, progress = false }

local function setup_terminal(flags)
  local no_color = flags["no-color"] or (os.getenv("NO_COLOR") or "") ~= ""
  term.color_out = not no_color and core.isatty(io.stdout)
  term.color_err = not no_color and core.isatty(io.stderr)
  term.progress = false
end

local COLORS = { red = "31", green = "32", yellow = "33", bold = "1", dim = "2" }

local function paint(on_stderr, color, text)
  if not (on_stderr and term.color_err or not on_stderr and term.color_out) then return text end
  return "\27[" .. COLORS[color] .. "m" .. text .. "\27[0m"
end

-- The progress line lives on stderr; it is cleared before any other line is
-- written, so no line ever starts in the middle of it.
local function clear_progress()
  if term.progress then
    io.stderr:write("\r\27[K")
    term.progress = false
  end
end

-- Everything the command prints goes through out or err_line, which keep a
-- server's text from acting on the terminal (util.terminal_text).
local function out(...)
  clear_progress()
  io.stdout:write(util.terminal_text(table.concat({ ... })))
end

local function err_line(text)
  clear_progress()
  io.stdout:flush()
  io.stderr:write(util.terminal_text((text:gsub("[\r\n]+", " "))), "\n")
end

local function json_line(t)
  io.stdout:write(assert(cjson.encode(t)), "\n")
  io.stdout:flush()
end

-- The hint shown with an error: its resolution, in the command's own words
-- where the library's names an option of `client:apply`.
local function hint_of(err)
  local hint = type(err) == "table" and err.resolution or nil
  if hint then hint = hint:gsub("pass partial = true", "pass --partial") end
  return hint
end

local function error_json(err)
  if not zcrm.is_error(err) then return { message = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, message = err.message,
           field = err.field, resolution = hint_of(err),
           details = err.code ~= "INVALID_PLAN" and err.details or nil } -- INVALID_PLAN: one event per entry
end

--- The one way an error reaches the user: with --json, an event on stdout
-- (`event`, default `{ event = "error" }`, gets the error object; false: none);
-- always one line on stderr, "zcrm: PREFIX: CODE (HTTP n): message (hint: ...)".
local function print_error(flags, prefix, err, event)
  if flags.json and event ~= false then
    event = event or { event = "error" }
    event.error = error_json(err)
    json_line(event)
  end
  local hint = hint_of(err)
  err_line(paint(true, "red", "zcrm: ") .. (prefix and (prefix .. ": ") or "") .. tostring(err)
    .. (hint and paint(true, "dim", " (hint: " .. hint .. ")") or ""))
end

local function usage_error(message, command)
  err_line("zcrm: " .. message .. " (see zcrm " .. (command and (command .. " ") or "") .. "--help)")
  return EXIT_USAGE
end

-- lua-cjson 2.1 writes an empty table as {}: empty lists are left out instead.
local function list_or_nil(t)
  if type(t) == "table" and next(t) ~= nil then return t end
  return nil
end

local function plural(n, word)
  if n == 1 then return "1 " .. word end
  return string.format("%d %s", n, word:match("y$") and word:gsub("y$", "ies") or (word .. "s"))
end

-- Display width of a string: characters, not bytes (labels are UTF-8).
local function width(s)
  return utf8.len(s) or #s
end

-- A header row and aligned columns; the last column is not padded.
local function print_table(header, rows)
  local widths = {}
  for _, row in ipairs { header, table.unpack(rows) } do
    for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, width(cell)) end
  end
  local function line(row, color)
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i < #row and (cell .. string.rep(" ", widths[i] - width(cell))) or cell
    end
    local text = table.concat(cells, "  ")
    out(color and paint(false, color, text) or text, "\n")
  end
  line(header, "bold")
  for _, row in ipairs(rows) do line(row) end
end

-- }====

-- {==== arguments

-- Flags each command takes: name -> "boolean" or "value".
local CONNECTION_FLAGS = { ["api-domain"] = "value", dc = "value", environment = "value",
                           config = "value", ["access-token"] = "value" }
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

-- }====

-- {==== connection

local function holds_secrets(t)
  local o = type(t.oauth) == "table" and t.oauth or {}
  return t.access_token ~= nil or o.client_secret ~= nil or o.refresh_token ~= nil
end

-- Loads a Lua file that may hold secrets (a config, an orgs file) and returns
-- the value it returns, or nil, err with `code`. Errors name the file and the
-- line only: Lua's own messages quote the file's text (`near '...'`) or values.
-- `env` is the chunk's environment (nil: the full one).
local function load_secret_file(path, env, code, label, resolution)
  local function fault(what, lua_message)
    local line = type(lua_message) == "string" and lua_message:match(":(%d+):")
    return nil, zcrm.error { kind = "config", code = code, resolution = resolution,
      message = string.format("%s %s: %s%s (the file's text is not shown: it may hold secrets)", label, path, what,
        line and (" at line " .. line) or "") }
  end
  local chunk, lerr
  if env then chunk, lerr = loadfile(path, "t", env) else chunk, lerr = loadfile(path, "t") end
  if not chunk then
    if tostring(lerr):match("^cannot ") then return fault("cannot be read") end
    return fault("Lua syntax error", lerr)
  end
  local ok, t = pcall(chunk)
  if not ok then return fault("raised an error", t) end
  if type(t) ~= "table" then return fault("does not return a table") end
  return t
end

-- Reads a config file: Lua returning a table of zcrm.new options, run with no
-- globals so that it can only describe, not act.
local function read_config(path)
  local t, err = load_secret_file(path, {}, "INVALID_CONFIG", "config",
    "The file must be Lua ending with `return { ... }` holding zcrm.new options.")
  if not t then return nil, err end
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 and holds_secrets(t) then
    return nil, zcrm.error { kind = "config", code = "UNSAFE_CONFIG",
      message = string.format("config %s holds secrets and has mode %03o", path, mode),
      resolution = string.format("Make it readable by its owner only: chmod 600 %s", path) }
  end
  return t
end

local function client_options(flags)
  local opts = {}
  if flags.config then
    local t, err = read_config(flags.config)
    if not t then return nil, err end
    for k, v in pairs(t) do opts[k] = v end
  end
  if flags.dc or flags.environment then opts.api_domain = nil end
  opts.api_domain = flags["api-domain"] or opts.api_domain
  opts.dc = flags.dc or opts.dc
  opts.environment = flags.environment or opts.environment
  if flags["access-token"] then
    err_line("zcrm: warning: --access-token is visible to other users in the process list; "
      .. "prefer ZOHO_ACCESS_TOKEN or --config")
    opts.access_token = flags["access-token"]
    opts.oauth = nil
  end
  if flags.concurrency then opts.concurrency = math.tointeger(tonumber(flags.concurrency)) end
  return opts
end

-- Returns a client, or nil, exit code (the error already printed).
local function connect(flags)
  local opts, err = client_options(flags)
  local client
  if opts then client, err = zcrm.new(opts) end
  if not client then
    print_error(flags, nil, err)
    return nil, EXIT_USAGE
  end
  return client
end

-- }====

-- {==== progress

local function format_seconds(s)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, math.floor(s % 60)) end
  return string.format("%.0fs", s)
end

-- A bar on stderr (a terminal), redrawn at most ten times a second: counts,
-- rate, ETA. Cleared when done, and before any other line is written.
local function progress_bar()
  local t0, last = core.now(), 0
  return function(done, total)
    local t = core.now()
    if done >= total then clear_progress() return end
    if t - last < 0.1 then return end
    last = t
    local bar_width = 30
    local filled = total > 0 and math.floor(bar_width * done / total) or bar_width
    local rate = done / math.max(t - t0, 1e-3)
    local eta = rate > 0 and (total - done) / rate or 0
    io.stderr:write(string.format("\r[%s%s] %d/%d  %.1f/s  ETA %s \27[K",
      string.rep("#", filled), string.rep("-", bar_width - filled), done, total, rate, format_seconds(eta)))
    io.stderr:flush()
    term.progress = true
  end
end

-- }====

-- {==== apply and validate

-- A label as a Lua string literal: quoted, control bytes escaped, one line.
local function show_value(v)
  if v == nil then return "(new)" end        -- a module a create entry makes
  return type(v) == "string" and util.lua_string(v) or tostring(v)
end

local function print_changes(changes)
  if #changes == 0 then out("No changes: the org is already as planned.\n") return end
  out(string.format("Changes (%s):\n", plural(#changes, "module")))
  local rows = {}
  for _, c in ipairs(changes) do
    local fields = {}
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c[field] then fields[#fields + 1] = { field, show_value(c[field].old) .. " -> " .. show_value(c[field].new) } end
    end
    local function names(list)
      local n = {}
      for _, p in ipairs(list) do n[#n + 1] = p.name or p.id end
      return table.concat(n, ", ")
    end
    if #c.granted > 0 then fields[#fields + 1] = { "profiles", "grant " .. names(c.granted) } end
    if #c.revoked > 0 then fields[#fields + 1] = { #c.granted > 0 and "" or "profiles", "revoke " .. names(c.revoked) } end
    for i, f in ipairs(fields) do rows[#rows + 1] = { i == 1 and c.module or "", f[1], f[2] } end
  end
  local w = 0
  for _, r in ipairs(rows) do w = math.max(w, width(r[1])) end
  for _, r in ipairs(rows) do
    out(string.format("  %s%s  %-15s %s\n", r[1], string.rep(" ", w - width(r[1])), r[2], r[3]))
  end
end

local function print_summary(report)
  local reasons, kinds = {}, 0
  for _, s in ipairs(report.skipped) do
    if not reasons[s.reason] then kinds = kinds + 1 end
    reasons[s.reason] = (reasons[s.reason] or 0) + 1
  end
  local why = {}
  for reason, n in pairs(reasons) do why[#why + 1] = kinds == 1 and reason or string.format("%d %s", n, reason) end
  table.sort(why)
  local applied = report.dry_run and #report.would_send or #report.applied
  local failed = #report.failed
  out(string.format("%s, skipped %d%s, %s%s",
    paint(false, report.ok and "green" or "bold",
      string.format("%s %d", report.dry_run and "would apply" or "applied", applied)),
    #report.skipped, #why > 0 and (" (" .. table.concat(why, ", ") .. ")") or "",
    paint(false, failed > 0 and "red" or "bold", "failed " .. failed),
    #report.not_sent > 0 and paint(false, "yellow", ", not sent " .. #report.not_sent) or ""))
  out(string.format(" of %s; %s spent; %.2f s\n", plural(report.total, "entry"),
    plural(report.credits, "credit"), report.elapsed))
  if report.undo_file then out("Undo plan: ", report.undo_file, "\n") end
  if report.journal and not report.dry_run then out("Journal: ", report.journal, "\n") end
end

local function print_invalid(flags, faults)
  for _, f in ipairs(faults) do
    print_error(flags, string.format("entry %d%s", f.index, f.module and (" (" .. f.module .. ")") or ""), f.error,
      { event = "invalid", index = f.index, module = f.module })
  end
end

-- Failures, grouped: entries that failed the same way make one line with their
-- count and modules. The error that stopped the run (one every call would
-- share: token, host) is said once, with the count left unsent.
local function error_key(e)
  if not zcrm.is_error(e) then return tostring(e) end
  return table.concat({ e.code, tostring(e.status), e.message or "" }, "\0")
end

local function print_failures(flags, report)
  local groups, order = {}, {}
  for _, f in ipairs(report.failed) do
    local e = f.error
    local key = error_key(e)
    local g = groups[key]
    if not g then
      g = { error = e, modules = {} }
      groups[key] = g
      order[#order + 1] = key
    end
    g.modules[#g.modules + 1] = f.module or "?"
  end
  local stop = report.aborted
  local stop_key = stop and error_key(stop)
  for _, key in ipairs(order) do
    local g = groups[key]
    local n = #g.modules
    local shown = { table.unpack(g.modules, 1, math.min(n, 5)) }
    local names = table.concat(shown, ", ") .. (n > 5 and string.format(" and %d more", n - 5) or "")
    local prefix = n == 1 and (names .. " failed") or string.format("%d entries failed (%s)", n, names)
    if key == stop_key then
      prefix = prefix .. string.format("; stopped, %d not sent", #report.not_sent)
      stop = nil
    end
    print_error(flags, prefix, g.error, false)
  end
  if stop then
    print_error(flags, string.format("stopped, %d not sent", #report.not_sent), stop, false)
  end
end

-- The `on_result` callback: with --json one event per completed item; off a
-- terminal one line per update applied (failures come grouped at the end).
local function result_printer(flags, total_ref, index_of)
  local done = 0
  return function(entry, res, err)
    done = done + 1
    local module = "?"
    if type(entry) == "table" then
      -- a create entry has no module: it is named as the report names it
      module = entry.create and entry.module == nil and ("(new) " .. tostring(entry.plural_label))
        or tostring(entry.module)
    end
    if flags.json then
      json_line { event = "result", index = index_of[entry], module = module, status = res and "applied" or "failed",
                  code = res and res.code or nil, id = res and res.id or nil,
                  error = err and error_json(err) or nil, done = done, total = total_ref.total }
    elseif res and total_ref.plain then
      local w = #tostring(total_ref.total)
      out(string.format("  %s %" .. w .. "d/%d  %s\n", paint(false, "green", "applied"), done, total_ref.total, module))
    end
  end
end

local function report_json(report, extra)
  local event = {
    event = "report", ok = report.ok, dry_run = report.dry_run, total = report.total,
    applied = #report.applied, skipped = #report.skipped, failed = #report.failed,
    invalid = #report.invalid, not_sent = #report.not_sent, credits = report.credits,
    elapsed = report.elapsed, undo_file = report.undo_file, journal = report.journal,
    batch_fallback = report.batch_fallback and error_json(report.batch_fallback) or nil,
  }
  for k, v in pairs(extra or {}) do event[k] = v end
  json_line(event)
end

-- The checked plan, before anything is sent: entries left out (--partial),
-- the changes, what a dry run would send, and what is already as planned.
local function show_plan(report, flags, heading)
  print_invalid(flags, report.invalid)
  if flags.json then
    for _, c in ipairs(report.changes) do
      json_line { event = "change", index = c.index, module = c.module, id = c.id,
                  plural_label = c.plural_label, singular_label = c.singular_label,
                  granted = list_or_nil(c.granted), revoked = list_or_nil(c.revoked) }
    end
    for _, s in ipairs(report.skipped) do
      json_line { event = "skipped", index = s.index, module = s.module, reason = s.reason }
    end
    if report.dry_run then
      for _, w in ipairs(report.would_send) do
        json_line { event = "would_send", index = w.index, module = w.module, update = w.update }
      end
    end
    return
  end
  out(heading, "\n")
  if report.diff then
    print_changes(report.changes)
    local same = {}
    for _, sk in ipairs(report.skipped) do
      if sk.reason == "no change" then same[#same + 1] = sk.module end
    end
    if #same > 0 then out("Already as planned: ", table.concat(same, ", "), "\n") end
  end
  if report.dry_run then
    local w = 0
    for _, s in ipairs(report.would_send) do w = math.max(w, width(s.module)) end
    for _, s in ipairs(report.would_send) do
      out(string.format("  would send  %s%s  %s\n", s.module, string.rep(" ", w - width(s.module)), cjson.encode(s.update)))
    end
  end
  io.stdout:flush()
end

-- Asks on the terminal; true only for an answer of yes.
local function ask(question)
  clear_progress()
  io.stdout:flush()
  io.stderr:write(question, " ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  if answer == nil then io.stderr:write("\n") end
  return answer ~= nil and answer:lower():match("^%s*y[e]?[s]?%s*$") ~= nil
end

local function exists(path)
  return core.file_mode(path) ~= nil
end

local function cmd_apply(flags, positional, argv)
  local path = positional[1]
  if not path then return usage_error("apply needs a plan file", "apply") end
  if flags.concurrency and not math.tointeger(tonumber(flags.concurrency)) then
    return usage_error("--concurrency needs a whole number", "apply")
  end
  if flags.diff and flags["no-diff"] then return usage_error("--diff and --no-diff contradict each other", "apply") end
  if flags.undo and exists(flags.undo) then
    print_error(flags, nil, zcrm.error { kind = "io", code = "UNDO_FILE_EXISTS",
      message = string.format("the undo file %s already exists; zcrm never overwrites it, so nothing was sent",
        flags.undo),
      resolution = string.format("Give --undo a new file name, or move %s away first.", flags.undo) })
    return EXIT_USAGE
  end
  local interactive = core.isatty(io.stdin) and core.isatty(io.stderr)
  if not flags["dry-run"] and not flags.yes and not interactive then
    print_error(flags, nil, zcrm.error { kind = "config", code = "CONFIRMATION_REQUIRED",
      message = "apply asks before changing anything, and there is no terminal to ask on; nothing was sent",
      resolution = "Pass --yes to apply without asking, or --dry-run to see what would change." })
    return EXIT_USAGE
  end
  local client, code = connect(flags)
  if not client then return code end
  local ctx = { client = client, args = { table.unpack(positional, 2) } }
  local list, lerr = plan.load(path, ctx)
  if not list then
    print_error(flags, path, lerr)
    return EXIT_USAGE
  end

  local index_of = {}
  for i, entry in ipairs(list) do index_of[entry] = i end
  local plain = not flags.json and not core.isatty(io.stderr)
  local total_ref = { total = 0, plain = plain }
  local bar = not flags.json and not plain and progress_bar()
  local declined = false
  core.catch_interrupts()
  local opts = {
    dry_run = flags["dry-run"], diff = not flags["no-diff"], read_state = flags["dry-run"] or nil,
    journal = flags.journal, undo_file = flags.undo, partial = flags.partial,
    concurrency = client.concurrency, batch = flags.batch,
    on_result = result_printer(flags, total_ref, index_of),
    on_plan = function(report)
      show_plan(report, flags, string.format("Plan %s: %s for %s%s", path, plural(report.total, "entry"),
        client.api_domain, flags["dry-run"] and " (dry run: nothing is sent)" or ""))
    end,
    confirm = function(report)
      if flags.yes or core.interrupted() then return not core.interrupted() end
      local ok = ask(string.format("Apply %s to %s? [y/N]", plural(#report.would_send, "change"), client.api_domain))
      declined = not ok
      return ok
    end,
    stop = function() return core.interrupted() ~= nil end,
    stop_grace = INTERRUPT_GRACE,
    on_progress = function(done, total)
      total_ref.total = total
      if bar and total > 0 then bar(done, total) end
    end,
  }
  local report, err = client:apply(list, opts)
  client:close()
  local sig = core.interrupted()
  if not report then
    if err.code == "INVALID_PLAN" and err.details and err.details.errors then
      print_invalid(flags, err.details.errors)
      print_error(flags, path, zcrm.error { kind = "validation", code = "INVALID_PLAN",
        message = string.format("%s invalid; nothing was sent", plural(#err.details.errors, "entry")),
        resolution = "Fix the entries listed above, or pass --partial to send only the valid ones." })
      return EXIT_USAGE
    end
    local before_sending = err.kind ~= "validation" and err.kind ~= "io"
    print_error(flags, before_sending and "reading the org's state failed; nothing was sent" or path, err)
    if sig then return EXIT_SIGNAL[sig] end
    return (err.kind == "validation" or err.code == "UNDO_FILE_EXISTS") and EXIT_USAGE or EXIT_FAILED
  end

  if declined and not sig then
    if flags.json then report_json(report, { declined = true }) end
    err_line("zcrm: not applied (the answer was not yes); nothing was sent")
    return EXIT_FAILED
  end
  print_failures(flags, report)
  if flags.json then
    report_json(report, { interrupted = sig and SIGNAL_NAME[sig] or nil })
  else
    print_summary(report)
  end
  if report.batch_fallback then
    err_line(string.format("zcrm: the server refused the batch endpoint (%s); the updates went one "
      .. "module per call", tostring(report.batch_fallback)))
  end
  if sig then
    local again, secret_dropped = resume_command(argv)
    err_line(string.format("zcrm: interrupted by %s: %s; %s. Running the same command again resumes: %s%s%s",
      SIGNAL_NAME[sig], report.dry_run and "nothing was sent" or (#report.applied .. " applied"),
      plural(#report.not_sent, "update") .. " not sent", again,
      secret_dropped and " (with your access token, best in ZOHO_ACCESS_TOKEN)" or "",
      report.undo_file and string.format(" (%s stays the way back)", report.undo_file) or ""))
    return EXIT_SIGNAL[sig]
  end
  return report.ok and EXIT_OK or EXIT_FAILED
end

local function cmd_validate(flags, positional)
  local path = positional[1]
  if not path then return usage_error("validate needs a plan file", "validate") end
  local list, lerr = plan.load(path, { args = { table.unpack(positional, 2) } })
  local ok, err = false, lerr
  if list then ok, err = plan.validate(list) end
  if ok then
    if flags.json then json_line { event = "valid", path = path, entries = #list }
    else out(string.format("%s: %s, all valid\n", path, plural(#list, "entry"))) end
    return EXIT_OK
  end
  if err.details and err.details.errors then
    print_invalid(flags, err.details.errors)
    err_line(string.format("zcrm: %s: %d of %d entries are invalid", path, #err.details.errors, #list))
  else
    print_error(flags, path, err)
  end
  return EXIT_USAGE
end

-- }====

-- {==== modules, profiles, emulator

local function profile_names(m)
  local names = {}
  for _, p in ipairs(type(m.profiles) == "table" and m.profiles or {}) do names[#names + 1] = p.name or p.id end
  return table.concat(names, ", ")
end

-- Runs `fetch(client)` and prints its list: JSON lines, or a table.
local function list_command(flags, fetch, json_of, header, row_of)
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
    print_table(header, rows)
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
    end)
end

local function cmd_profiles(flags)
  return list_command(flags, function(c) return c:get_profiles() end,
    function(p) return { id = p.id, name = p.name, custom = p.custom } end,
    { "ID", "NAME" },
    function(p) return { tostring(p.id or "?"), tostring(p.name or "") } end)
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
    if argv[i] == "--help" or argv[i] == "-h" then out(HELP.emulator, "\n") end
    args[#args + 1] = argv[i]
  end
  io.stdout:flush()
  local _, message, errno = core.exec(bin, args)
  if errno == 2 then
    err_line("zcrm: zcrm-emulator not found (hint: run make in the zcrm checkout, or install it on PATH)")
    return 127
  end
  err_line("zcrm: " .. tostring(message))
  return 126
end

-- }====

local COMMANDS = { apply = cmd_apply, validate = cmd_validate, modules = cmd_modules, profiles = cmd_profiles }

-- Configuration as code (issue 13): export, plan, diff, change sets and --orgs
-- live in lua/zcrm/cli_config.lua; this plugs them in, with the helpers here.
local config = require "zcrm.cli_config"
config.install {
  commands = COMMANDS, flags = COMMAND_FLAGS, help = HELP,
  helpers = { out = out, json_line = json_line, error_json = error_json, usage_error = usage_error,
              load_secret_file = load_secret_file,
              connect = connect, print_changes = print_changes, list_or_nil = list_or_nil, ask = ask,
              error_line = function(prefix, err) print_error({}, prefix, err) end,
              print_invalid = function(faults) print_invalid({}, faults) end },
}

local function command_help(command)
  out(HELP[command])
  if command ~= "validate" and command ~= "emulator" then out("\n", CONNECTION_HELP) end
  return EXIT_OK
end

--- main(argv) -> exit code. argv is the script's `arg` (argv[0] its path).
function M.main(argv)
  argv = argv or {}
  -- Until apply takes them over, SIGINT and SIGTERM end the process at once,
  -- without the interpreter's "interrupted!" traceback.
  core.catch_interrupts(false)
  setup_terminal {}
  local command = argv[1]
  if command == nil or command == "-h" or command == "--help" then
    out(HELP.main)
    return command == nil and EXIT_USAGE or EXIT_OK
  end
  if command == "help" then
    local topic = argv[2]
    if topic == nil then out(HELP.main) return EXIT_OK end
    if not HELP[topic] or topic == "main" then return usage_error("no command '" .. topic .. "'") end
    if topic == "emulator" then return cmd_emulator({ [0] = argv[0], "emulator", "--help" }, 2) end
    return command_help(topic)
  end
  if command == "--version" then
    out(zcrm._VERSION, "\n")
    return EXIT_OK
  end
  if command == "emulator" then return cmd_emulator(argv, 2) end
  local run = COMMANDS[command]
  if not run then return usage_error("unknown command '" .. command .. "'") end
  local flags, positional, perr = parse(command, argv, 2)
  if not flags then return usage_error(perr, command) end
  setup_terminal(flags)
  if flags.help then return command_help(command) end
  if command ~= "apply" and command ~= "validate" and not config.TAKES_ARGUMENTS[command] and #positional > 0 then
    return usage_error("zcrm " .. command .. " takes no arguments", command)
  end
  return run(flags, positional, argv)
end

return M
