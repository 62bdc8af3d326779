--- The `zcrm` command: apply and validate plans, list modules and profiles,
-- run the emulator. `bin/zcrm` calls `main(arg)` and exits with its result:
-- 0 all applied, 1 some failed (or a runtime error), 2 invalid plan or usage.

local cjson = require "cjson.safe"
local zcrm = require "zcrm"
local plan = require "zcrm.plan"
local core = require "zcrm.core"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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
  apply PLAN.lua      check a plan, then apply it (see zcrm apply --help)
  validate PLAN.lua   check a plan without contacting Zoho
  modules             list the org's modules
  profiles            list the org's profiles
  emulator [flags]    run the local Zoho CRM emulator (zcrm emulator --help)

Every command takes --help. Exit codes: 0 all applied, 1 some failed, 2 invalid
plan or usage.
]],
  apply = [[
usage: zcrm apply PLAN.lua [ARG...] [--dry-run] [--diff] [--journal F] [--undo F]
                  [--concurrency N] [--json] [connection options]

Checks every entry of PLAN.lua first and sends nothing unless all are valid, then
applies the updates concurrently. ARGs reach a plan function as ctx.args.

  --dry-run          report what would be sent; send nothing
  --diff             read the current state, skip entries that change nothing,
                     show each change field by field
  --journal F        record each completed item in F (JSON lines, fsync'd); a run
                     started again with the same F skips what completed
  --undo F           read the current state and write F, a plan that restores it
  --concurrency N    at most N updates in flight (default 10; Zoho allows 5 to 25)
  --json             JSON lines on stdout: one event per line
]],
  validate = [[
usage: zcrm validate PLAN.lua [ARG...] [--json]

Checks every entry of PLAN.lua (labels, profiles, module names, duplicates)
without contacting Zoho, and lists all faults with their entry index. Checks that
need the org's state (label collisions with other modules, unknown modules or
profiles) run in `zcrm apply --diff --dry-run`.
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

Runs zcrm-emulator, a local stand-in for Zoho CRM's settings API, with these
flags (its own list follows). Its access token is "emulator-token".
]],
}

-- }====

-- {==== output

local function out(...)
  io.stdout:write(...)
end

local function json_line(t)
  io.stdout:write(assert(cjson.encode(t)), "\n")
  io.stdout:flush()
end

-- One line per error, with Zoho's (or our) resolution hint.
local function error_line(prefix, err)
  local line = "zcrm: " .. (prefix and (prefix .. ": ") or "") .. tostring(err)
  local hint = type(err) == "table" and err.resolution or nil
  if hint then line = line .. " (hint: " .. hint .. ")" end
  io.stderr:write((line:gsub("[\r\n]+", " ")), "\n")
end

local function usage_error(message, command)
  io.stderr:write("zcrm: ", message, " (see zcrm ", command and (command .. " ") or "", "--help)\n")
  return EXIT_USAGE
end

local function error_json(err)
  if not zcrm.is_error(err) then return { message = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, message = err.message,
           field = err.field, resolution = err.resolution,
           details = err.code ~= "INVALID_PLAN" and err.details or nil } -- INVALID_PLAN: one event per entry
end

-- lua-cjson 2.1 writes an empty table as {}: empty lists are left out instead.
local function list_or_nil(t)
  if type(t) == "table" and next(t) ~= nil then return t end
  return nil
end

local function is_tty(fd)
  local ok = os.execute("test -t " .. fd)
  return ok == true or ok == 0
end

-- }====

-- {==== arguments

-- Flags each command takes: name -> "boolean" or "value".
local CONNECTION_FLAGS = { ["api-domain"] = "value", dc = "value", environment = "value",
                           config = "value", ["access-token"] = "value" }
local COMMAND_FLAGS = {
  apply = { ["dry-run"] = "boolean", diff = "boolean", journal = "value", undo = "value",
            concurrency = "value", json = "boolean" },
  validate = { json = "boolean" },
  modules = { json = "boolean" },
  profiles = { json = "boolean" },
}

-- Returns flags, positionals, or nil, message.
local function parse(command, argv, first)
  local known = {}
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

-- }====

-- {==== connection

local function holds_secrets(t)
  local o = type(t.oauth) == "table" and t.oauth or {}
  return t.access_token ~= nil or o.client_secret ~= nil or o.refresh_token ~= nil
end

-- Reads a config file: Lua returning a table of zcrm.new options, run with no
-- globals so that it can only describe, not act.
-- Errors name the file and the line only: Lua's own messages quote the file's
-- text (`near '...'`) or values, and a config holds secrets.
local function config_fault(path, what, lua_message)
  local line = type(lua_message) == "string" and lua_message:match(":(%d+):")
  return zcrm.error { kind = "config", code = "INVALID_CONFIG",
    message = string.format("config %s: %s%s (the file's text is not shown: it may hold secrets)", path, what,
      line and (" at line " .. line) or ""),
    resolution = "The file must be Lua ending with `return { ... }` holding zcrm.new options." }
end

local function read_config(path)
  local chunk, lerr = loadfile(path, "t", {})
  if not chunk then
    if tostring(lerr):match("^cannot ") then return nil, config_fault(path, "cannot be read") end
    return nil, config_fault(path, "Lua syntax error", lerr)
  end
  local ok, t = pcall(chunk)
  if not ok then return nil, config_fault(path, "raised an error", t) end
  if type(t) ~= "table" then return nil, config_fault(path, "does not return a table") end
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
    io.stderr:write("zcrm: warning: --access-token is visible to other users in the process list; ",
      "prefer ZOHO_ACCESS_TOKEN or --config\n")
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
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(nil, err)
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

-- A bar on stderr, redrawn at most ten times a second: counts, rate, ETA.
local function progress_bar()
  local t0, last = core.now(), 0
  return function(done, total)
    local t = core.now()
    if done < total and t - last < 0.1 then return end
    last = t
    local width = 30
    local filled = total > 0 and math.floor(width * done / total) or width
    local rate = done / math.max(t - t0, 1e-3)
    local eta = rate > 0 and (total - done) / rate or 0
    io.stderr:write(string.format("\r[%s%s] %d/%d  %.1f/s  ETA %s ",
      string.rep("#", filled), string.rep("-", width - filled), done, total, rate, format_seconds(eta)))
    if done >= total then io.stderr:write("\n") end
    io.stderr:flush()
  end
end

-- }====

-- {==== apply and validate

local function show_value(v)
  return string.format("%q", v)
end

local function print_changes(changes)
  if #changes == 0 then out("No changes.\n") return end
  out(string.format("Changes (%d module%s):\n", #changes, #changes == 1 and "" or "s"))
  for _, c in ipairs(changes) do
    local rows = {}
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c[field] then rows[#rows + 1] = { field, show_value(c[field].old) .. " -> " .. show_value(c[field].new) } end
    end
    local function names(list)
      local n = {}
      for _, p in ipairs(list) do n[#n + 1] = p.name or p.id end
      return table.concat(n, ", ")
    end
    if #c.granted > 0 then rows[#rows + 1] = { "profiles", "grant " .. names(c.granted) } end
    if #c.revoked > 0 then rows[#rows + 1] = { #c.granted > 0 and "" or "profiles", "revoke " .. names(c.revoked) } end
    for i, r in ipairs(rows) do
      out(string.format("  %-22s %-15s %s\n", i == 1 and c.module or "", r[1], r[2]))
    end
  end
end

local function plural(n, word)
  return string.format("%d %s%s", n, word, n == 1 and "" or "s")
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
  out(string.format("%s %d, skipped %d%s, failed %d%s",
    report.dry_run and "would apply" or "applied", report.dry_run and #report.would_send or #report.applied,
    #report.skipped, #why > 0 and (" (" .. table.concat(why, ", ") .. ")") or "", #report.failed,
    #report.not_sent > 0 and (", not sent " .. #report.not_sent) or ""))
  out(string.format(" of %s; %s spent; %.2f s\n", plural(report.total, "entry"):gsub("entrys", "entries"),
    plural(report.credits, "credit"), report.elapsed))
  if report.undo_file then out("Undo plan: ", report.undo_file, "\n") end
  if report.journal and not report.dry_run then out("Journal: ", report.journal, "\n") end
end

local function print_invalid(faults, as_json)
  for _, f in ipairs(faults) do
    if as_json then
      json_line { event = "invalid", index = f.index, module = f.module, error = error_json(f.error) }
    end
    error_line(string.format("entry %d%s", f.index, f.module and (" (" .. f.module .. ")") or ""), f.error)
  end
end

-- The `on_result` callback: one line per completed item (plain or JSON).
local function result_printer(flags, total_ref, index_of)
  local done = 0
  return function(entry, res, err)
    done = done + 1
    local module = type(entry) == "table" and tostring(entry.module) or "?"
    if flags.json then
      json_line { event = "result", index = index_of[entry], module = module, status = res and "applied" or "failed",
                  code = res and res.code or nil, id = res and res.id or nil,
                  error = err and error_json(err) or nil, done = done, total = total_ref.total }
    elseif err then
      error_line(string.format("%s failed", module), err)
    elseif total_ref.plain then
      local width = #tostring(total_ref.total)
      out(string.format("  applied %" .. width .. "d/%d  %s\n", done, total_ref.total, module))
    end
  end
end

local function load_plan(path, ctx)
  if not path then return nil, nil end
  return plan.load(path, ctx)
end

local function report_json(report)
  json_line {
    event = "report", ok = report.ok, dry_run = report.dry_run, total = report.total,
    applied = #report.applied, skipped = #report.skipped, failed = #report.failed,
    invalid = #report.invalid, not_sent = #report.not_sent, credits = report.credits,
    elapsed = report.elapsed, undo_file = report.undo_file, journal = report.journal,
  }
end

-- The checked plan, before anything is sent: entries left out (partial),
-- the changes (with --diff), what a dry run would send, and what is skipped.
local function show_plan(report, flags, heading)
  print_invalid(report.invalid, flags.json)
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
  if flags.diff then
    print_changes(report.changes)
    local same = {}
    for _, sk in ipairs(report.skipped) do
      if sk.reason == "no change" then same[#same + 1] = sk.module end
    end
    if #same > 0 then out("Already as planned: ", table.concat(same, ", "), "\n") end
  end
  if report.dry_run then
    for _, w in ipairs(report.would_send) do
      out(string.format("  would send  %-22s %s\n", w.module, cjson.encode(w.update)))
    end
  end
  io.stdout:flush()
end

local function cmd_apply(flags, positional)
  local path = positional[1]
  if not path then return usage_error("apply needs a plan file", "apply") end
  if flags.concurrency and not math.tointeger(tonumber(flags.concurrency)) then
    return usage_error("--concurrency needs a whole number", "apply")
  end
  local client, code = connect(flags)
  if not client then return code end
  local ctx = { client = client, args = { table.unpack(positional, 2) } }
  local list, lerr = load_plan(path, ctx)
  if not list then
    if flags.json then json_line { event = "error", error = error_json(lerr) } end
    error_line(path, lerr)
    return EXIT_USAGE
  end

  local index_of = {}
  for i, entry in ipairs(list) do index_of[entry] = i end
  local plain = not flags.json and not is_tty(2)
  local total_ref = { total = 0, plain = plain }
  local bar = not flags.json and not plain and progress_bar()
  local opts = {
    dry_run = flags["dry-run"], diff = flags.diff, journal = flags.journal, undo_file = flags.undo,
    concurrency = client.concurrency,
    on_result = result_printer(flags, total_ref, index_of),
    on_plan = function(report)
      show_plan(report, flags, string.format("Plan %s: %s for %s%s", path,
        plural(report.total, "entry"):gsub("entrys", "entries"), client.api_domain,
        flags["dry-run"] and " (dry run: nothing is sent)" or ""))
    end,
    on_progress = function(done, total)
      total_ref.total = total
      if bar and total > 0 then bar(done, total) end
    end,
  }
  local report, err = client:apply(list, opts)
  client:close()
  if not report then
    if err.code == "INVALID_PLAN" and err.details and err.details.errors then
      print_invalid(err.details.errors, flags.json)
      if flags.json then json_line { event = "error", error = error_json(err) } end
      io.stderr:write(string.format("zcrm: %s: %d invalid entr%s; nothing was sent\n", path,
        #err.details.errors, #err.details.errors == 1 and "y" or "ies"))
      return EXIT_USAGE
    end
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(path, err)
    return err.kind == "validation" and EXIT_USAGE or EXIT_FAILED
  end

  if flags.json then report_json(report) else print_summary(report) end
  if report.aborted then error_line("stopped early", report.aborted) end
  return report.ok and EXIT_OK or EXIT_FAILED
end

local function cmd_validate(flags, positional)
  local path = positional[1]
  if not path then return usage_error("validate needs a plan file", "validate") end
  local list, lerr = load_plan(path, { args = { table.unpack(positional, 2) } })
  local ok, err = false, lerr
  if list then ok, err = plan.validate(list) end
  if ok then
    if flags.json then json_line { event = "valid", path = path, entries = #list }
    else out(string.format("%s: %s, all valid\n", path, plural(#list, "entry"):gsub("entrys", "entries"))) end
    return EXIT_OK
  end
  if err.details and err.details.errors then
    print_invalid(err.details.errors, flags.json)
    io.stderr:write(string.format("zcrm: %s: %d of %d entries are invalid\n", path, #err.details.errors, #list))
  else
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(path, err)
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

local function cmd_modules(flags)
  local client, code = connect(flags)
  if not client then return code end
  local mods, err = client:get_modules()
  client:close()
  if not mods then
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(nil, err)
    return EXIT_FAILED
  end
  for _, m in ipairs(mods) do
    if flags.json then
      json_line { id = m.id, api_name = m.api_name, generated_type = m.generated_type,
                  plural_label = m.plural_label, singular_label = m.singular_label,
                  status = m.status, profiles = list_or_nil(m.profiles) }
    else
      out(string.format("%-24s %-20s %-8s %-26s %-26s %s\n", m.api_name, m.id, m.generated_type or "?",
        m.plural_label or "", m.singular_label or "", profile_names(m)))
    end
  end
  return EXIT_OK
end

local function cmd_profiles(flags)
  local client, code = connect(flags)
  if not client then return code end
  local profiles, err = client:get_profiles()
  client:close()
  if not profiles then
    if flags.json then json_line { event = "error", error = error_json(err) } end
    error_line(nil, err)
    return EXIT_FAILED
  end
  for _, p in ipairs(profiles) do
    if flags.json then json_line { id = p.id, name = p.name, custom = p.custom }
    else out(string.format("%-20s %s\n", p.id, p.name)) end
  end
  return EXIT_OK
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The emulator beside this script (a checkout), else on PATH (installed).
local function emulator_binary(argv)
  local dir = (argv[0] or ""):match("^(.*)/[^/]*$")
  if dir and file_exists(dir .. "/zcrm-emulator") then return dir .. "/zcrm-emulator" end
  return "zcrm-emulator"
end

local function cmd_emulator(argv, first)
  local parts = { shell_quote(emulator_binary(argv)) }
  for i = first, #argv do
    if argv[i] == "--help" or argv[i] == "-h" then out(HELP.emulator, "\n") end
    parts[#parts + 1] = shell_quote(argv[i])
  end
  local ok, how, code = os.execute(table.concat(parts, " "))
  if ok then return EXIT_OK end
  if how == "exit" and code == 127 then
    io.stderr:write("zcrm: zcrm-emulator not found (hint: run make in the zcrm checkout, or install it on PATH)\n")
  end
  return how == "exit" and code or EXIT_FAILED
end

-- }====

local COMMANDS = { apply = cmd_apply, validate = cmd_validate, modules = cmd_modules, profiles = cmd_profiles }

--- main(argv) -> exit code. argv is the script's `arg` (argv[0] its path).
function M.main(argv)
  argv = argv or {}
  local command = argv[1]
  if command == nil or command == "-h" or command == "--help" or command == "help" then
    out(HELP.main)
    return command == nil and EXIT_USAGE or EXIT_OK
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
  if flags.help then
    out(HELP[command])
    if command ~= "validate" then out("\n", CONNECTION_HELP) end
    return EXIT_OK
  end
  if command ~= "apply" and command ~= "validate" and #positional > 0 then
    return usage_error("zcrm " .. command .. " takes no arguments", command)
  end
  return run(flags, positional)
end

return M
