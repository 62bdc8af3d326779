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

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local EXIT_SIGNAL = { [2] = 130, [15] = 143 }
local SIGNAL_NAME = { [2] = "Ctrl-C (SIGINT)", [15] = "SIGTERM" }
-- After an interrupt, how long the updates in flight get to finish.
local INTERRUPT_GRACE = 5

-- The rooms: lua/zcrm/cli/term.lua (terminal, output, errors, the changes, the
-- question), cli/args.lua (help texts, flags, "did you mean"), cli/connect.lua
-- (config files, the client), cli/lists.lua (modules, profiles, emulator);
-- apply and validate are here; export, plan, diff (cli/config.lua), change
-- sets and --orgs (cli/changesets.lua).
local term = require "zcrm.cli.term"
local words = require "zcrm.cli.args"
local connection = require "zcrm.cli.connect"
local setup_terminal, paint, out, err_line, json_line = term.setup_terminal, term.paint, term.out, term.err_line,
  term.json_line
local error_json, print_error, usage_error, list_or_nil = term.error_json, term.print_error, term.usage_error,
  term.list_or_nil
local plural, width, progress_bar = term.plural, term.width, term.progress_bar
local print_changes, confirm = term.print_changes, term.confirm
local HELP, parse, resume_command, nearest = words.HELP, words.parse, words.resume_command, words.nearest
local connect = connection.connect
local changesets = require "zcrm.cli.changesets"
local lists = require "zcrm.cli.lists"
local cmd_modules, cmd_profiles, cmd_emulator = lists.cmd_modules, lists.cmd_profiles, lists.cmd_emulator

-- {==== apply and validate

-- After a run a signal stopped: what was done, the command that resumes
-- (`resume`: how, default running the same command again), and the exit code.
local function interrupted_exit(sig, argv, done, resume, undo_file)
  local again, secret_dropped = resume_command(argv)
  err_line(string.format("zcrm: interrupted by %s: %s. %s: %s%s%s",
    SIGNAL_NAME[sig], done, resume or "Running the same command again resumes", again,
    secret_dropped and " (with your access token, best in ZOHO_ACCESS_TOKEN)" or "",
    undo_file and string.format(" (%s stays the way back)", undo_file) or ""))
  return EXIT_SIGNAL[sig]
end

local function print_summary(report)
  local why = {}
  for _, sk in ipairs(report.skipped) do
    if sk.reason ~= "no change" then why[sk.reason] = (why[sk.reason] or 0) + 1 end
  end
  local reasons = {}
  for reason, n in pairs(why) do reasons[#reasons + 1] = string.format("%d %s", n, reason) end
  table.sort(reasons)
  out(term.plan_counts(report, function(color, text) return paint(false, color, text) end),
    #reasons > 0 and (" (skipped: " .. table.concat(reasons, ", ") .. ")") or "")
  out(string.format("; %s spent; %.2f s\n", plural(report.credits, "credit"), report.elapsed))
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
    applied = #report.applied, skipped = #report.skipped, already = term.already_count(report), failed = #report.failed,
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
    if #same > 0 then term.wrap_list("Already as planned:", same) end
  end
  if report.dry_run then
    local w = 0
    for _, s in ipairs(report.would_send) do w = math.max(w, width(s.module)) end
    for _, s in ipairs(report.would_send) do
      out(string.format("  would send  %s%s  %s\n", s.module, string.rep(" ", w - width(s.module)), cjson.encode(s.update)))
    end
    if #report.would_send > 0 then
      out(string.format("Would spend %s.\n", term.credits(report.estimate)))
    end
  end
  io.stdout:flush()
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
  -- Every input is checked before the question: the plan file first, then
  -- the connection, then (in client:apply) every entry against the org.
  local list, lerr = plan.load(path, { args = { table.unpack(positional, 2) } })
  if not list then
    print_error(flags, path, lerr)
    return EXIT_USAGE
  end
  local client, code = connect(flags)
  if not client then return code end

  local index_of = {}
  for i, entry in ipairs(list) do index_of[entry] = i end
  local plain = not flags.json and not core.isatty(io.stderr)
  local total_ref = { total = 0, plain = plain }
  local bar = not flags.json and not plain and progress_bar()
  local declined
  local opts = {
    dry_run = flags["dry-run"], diff = not flags["no-diff"], read_state = flags["dry-run"] or nil,
    journal = flags.journal, undo_file = flags.undo, partial = flags.partial,
    concurrency = client.concurrency, batch = flags.batch,
    only = changesets.name_list(flags.only), exclude = changesets.name_list(flags.exclude),
    max_credits = flags["max-credits"] and tonumber(flags["max-credits"]) or nil,
    on_result = result_printer(flags, total_ref, index_of),
    on_plan = function(report)
      show_plan(report, flags, string.format("Plan %s: %s for %s%s", path, plural(report.total, "entry"),
        client.api_domain, flags["dry-run"] and " (dry run: nothing is sent)" or ""))
    end,
    confirm = function(report)
      -- Until now nothing was sent, and Ctrl-C ends the process at once (main);
      -- from here on the first one stops sending, for a summary that resumes.
      core.catch_interrupts()
      local ok, exit_code = confirm(flags, string.format("Apply %s to %s (%s)?", plural(#report.would_send, "change"),
        client.api_domain, term.credits(report.estimate)))
      declined = exit_code
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
    if err.code == "MAX_CREDITS_EXCEEDED" or err.code == "INVALID_ARGUMENT" then
      print_error(flags, path, err)
      return EXIT_USAGE
    end
    local before_sending = err.kind ~= "validation" and err.kind ~= "io"
    print_error(flags, before_sending and "reading the org's state failed; nothing was sent" or path, err)
    if sig then return EXIT_SIGNAL[sig] end
    return (err.kind == "validation" or err.code == "UNDO_FILE_EXISTS") and EXIT_USAGE or EXIT_FAILED
  end

  if declined and not sig then
    if flags.json then report_json(report, { declined = true }) end
    return declined
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
    return interrupted_exit(sig, argv, string.format("%s; %s not sent",
      report.dry_run and "nothing was sent" or (#report.applied .. " applied"), plural(#report.not_sent, "update")),
      nil, report.undo_file)
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

local COMMANDS = { apply = cmd_apply, validate = cmd_validate, modules = cmd_modules, profiles = cmd_profiles,
                   completion = require("zcrm.cli.manual").cmd_completion }

-- Configuration as code: export, plan, diff, change sets and --orgs
-- live in lua/zcrm/cli/config.lua and cli/changesets.lua; this plugs them in, with the helpers here.
local config = require "zcrm.cli.config"
config.install {
  commands = COMMANDS, define = words.define, help = HELP,
  helpers = { interrupted_exit = interrupted_exit, interrupt_grace = INTERRUPT_GRACE,
              error_line = function(prefix, err) print_error({}, prefix, err) end,
              print_invalid = function(faults) print_invalid({}, faults) end },
}

-- The access report (cli/report.lua) and login, logout (cli/login.lua).
for _, room in ipairs { "zcrm.cli.report", "zcrm.cli.login" } do
  require(room).install { commands = COMMANDS, define = words.define, help = HELP }
end

-- 'unknown command "aply"; did you mean "apply"?': `what` names the word
-- ("unknown command", "no command"), `names` the words it could have been
-- besides the commands; the nearest is suggested when one is close.
local function no_such_command(what, word, names)
  for _, name in ipairs(words.names()) do names[#names + 1] = name end
  local near = nearest(word, names)
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
  core.catch_interrupts(false)
  -- Line by line whatever stdout is (a file, a pipe): a second Ctrl-C, which
  -- ends the process at once, loses no line already printed.
  io.stdout:setvbuf("line")
  setup_terminal {}
  local command = argv[1]
  if command == nil or command == "-h" or command == "--help" then
    out(HELP.main)
    return command == nil and EXIT_USAGE or EXIT_OK
  end
  if command == "help" then
    local topic = argv[2]
    if topic == nil then out(HELP.main) return EXIT_OK end
    if topic == "--help" or topic == "-h" then topic = "help" end
    if not words.COMMANDS[topic] then return no_such_command("no command", topic, {}) end
    if topic == "emulator" then return cmd_emulator({ [0] = argv[0], "emulator", "--help" }, 2) end
    return command_help(topic)
  end
  if command == "--version" then
    out(zcrm._VERSION, "\n")
    return EXIT_OK
  end
  if command == "emulator" then return cmd_emulator(argv, 2) end
  local run = COMMANDS[command]
  if not run then return no_such_command("unknown command", command, { "help" }) end
  local flags, positional, perr = parse(command, argv, 2)
  if not flags then return usage_error(perr, command) end
  setup_terminal(flags)
  if flags.help then return command_help(command) end
  if flags.json then
    -- stdout holds JSON only: what a plan prints (print, io.write) goes to stderr
    term.json_output(command)
  end
  if not words.takes_arguments(command) and #positional > 0 then
    return usage_error("zcrm " .. command .. " takes no arguments", command)
  end
  return run(flags, positional, argv)
end

return M
