--- The terminal side of `zcrm`: colours, the progress line, every line the
-- command prints (out, err_line, json_line), errors and their hints, tables,
-- the changes a plan or a change set makes, and the yes/no question.

local cjson = require "cjson.safe"
local zcrm = require "zcrm"
local core = require "zcrm.core"
local util = require "zcrm.util"

local M = {}

local EXIT_USAGE = 2

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

-- Everything the command prints goes through out or err_line. Text zcrm did
-- not write (a server's label or message, a file's name) is put into a line
-- through util.escape_untrusted first; util.terminal_text, which keeps only
-- zcrm's own newlines and colours, is the streams' last guard.
local function out(...)
  clear_progress()
  io.stdout:write(util.terminal_text(table.concat({ ... })))
end

local function err_line(text)
  clear_progress()
  io.stdout:flush()
  io.stderr:write(util.terminal_text((text:gsub("[\r\n]+", " "))), "\n")
end

-- With --json every document or line says what it is: "format" (zcrm.CMD)
-- and "version" (of that format), unless it carries its own.
local function json_line(t)
  if t.format == nil then t.format, t.version = term.json_format, 1 end
  io.stdout:write(assert(cjson.encode(t)), "\n")
  io.stdout:flush()
end

--- json_output(command): from now on stdout is for JSON: `print` and
-- `io.write` (a plan file's own output) go to stderr, and each JSON line is
-- marked "zcrm.COMMAND".
local function json_output(command)
  term.json_format = "zcrm." .. command
  io.output(io.stderr)
  _G.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    io.stderr:write(table.concat(parts, "\t", 1, parts.n), "\n")
  end
end

-- The flag (or variable) that sets each zcrm.new option the CLI gives.
local FLAG_OF = { dc = "--dc (ZOHO_DC)", environment = "--environment (ZOHO_ENVIRONMENT)",
                  api_domain = "--api-domain (ZOHO_API_DOMAIN)", access_token = "--access-token (ZOHO_ACCESS_TOKEN)",
                  concurrency = "--concurrency", org = "--org (ZCRM_ORG)" }

-- The library's words in a resolution, and what the command line calls them.
local CLI_WORDS = {
  { "pass partial = true", "pass --partial" },
  { "Fix the entries listed in err%.details%.errors %(each has its index%)", "Fix the entries listed above" },
  { "Fix every entry listed in details%.errors", "Fix the entries listed above" },
  { "Correct the value named in details %(api_name, json_path%)", "Correct the value named above in the plan" },
  { "undo_file %(zcrm apply %-%-undo%)", "--undo" },
  { "in details%.([%w_]+)", "in the error's details (%1)" },
  { "and send the request again", "and run the command again" },
  { "with a static access_token", "with ZOHO_ACCESS_TOKEN or --access-token" },
}

-- The hint shown with an error: its resolution, in the command's own words
-- (flags, files, commands) where the library's speak of options and fields.
local function hint_of(err)
  local hint = type(err) == "table" and err.resolution or nil
  if not hint then return nil end
  if err.kind == "config" and err.field and FLAG_OF[err.field] then
    return string.format("Check %s: zcrm help apply lists the connection flags and their values.", FLAG_OF[err.field])
  end
  if err.kind == "config" and hint:find("zcrm.new", 1, true) then
    return "Check the connection flags and the --config file: zcrm help apply lists them."
  end
  for _, w in ipairs(CLI_WORDS) do hint = hint:gsub(w[1], w[2]) end
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
  err_line(paint(true, "red", "zcrm: ") .. (prefix and (prefix .. ": ") or "") .. util.escape_untrusted(tostring(err))
    .. (hint and paint(true, "dim", " (hint: " .. util.escape_untrusted(hint) .. ")") or ""))
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

--- credits(n) -> "1,500 credits": thousands grouped, as a person reads them.
local function credits(n)
  local s = tostring(math.tointeger(n) or n)
  local grouped = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return grouped .. (n == 1 and " credit" or " credits")
end

-- Display width of a string: characters, not bytes (labels are UTF-8).
local function width(s)
  return utf8.len(s) or #s
end

--- columns() -> the terminal's width in columns (stdout's, else COLUMNS, else 80).
local function columns()
  return core.term_width(1) or math.tointeger(tonumber(os.getenv("COLUMNS") or "")) or 80
end

-- `s` cut to `n` columns, the cut marked with an ellipsis.
local function clip(s, n)
  if width(s) <= n then return s end
  if n < 1 then return "" end
  local cut = utf8.offset(s, n) or n
  return s:sub(1, cut - 1) .. "\u{2026}"
end

-- Narrows the widest of the `shrink` columns, one column at a time, until
-- the row fits `max` columns (or each is down to 8).
local function fit(widths, shrink, max)
  local function total()
    local t = 2 * (#widths - 1)
    for _, w in ipairs(widths) do t = t + w end
    return t
  end
  while total() > max do
    local widest
    for _, i in ipairs(shrink) do
      if widths[i] > 8 and (not widest or widths[i] > widths[widest]) then widest = i end
    end
    if not widest then break end
    widths[widest] = math.max(8, widths[widest] - (total() - max))
  end
end

--- print_table(header, rows [, opts]): a header row and aligned columns; the
-- last column is not padded. Every cell is shown through
-- util.escape_untrusted (rows hold a server's labels). opts.max_width: the
-- row fits it, the columns opts.shrink (indices) cut with an ellipsis.
local function print_table(header, rows, opts)
  opts = opts or {}
  local escaped = {}
  for r, row in ipairs(rows) do
    escaped[r] = {}
    for i, cell in ipairs(row) do escaped[r][i] = util.escape_untrusted(cell) end
  end
  rows = escaped
  local widths = {}
  for _, row in ipairs { header, table.unpack(rows) } do
    for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, width(cell)) end
  end
  if opts.max_width then fit(widths, opts.shrink or {}, opts.max_width) end
  local function line(row, color)
    local cells = {}
    for i, cell in ipairs(row) do
      cell = clip(cell, widths[i])
      cells[i] = i < #row and (cell .. string.rep(" ", widths[i] - width(cell))) or cell
    end
    local text = table.concat(cells, "  ")
    out(color and paint(false, color, text) or text, "\n")
  end
  line(header, "bold")
  for _, row in ipairs(rows) do line(row) end
end

--- wrap_list(prefix, names): "prefix a, b, c" over as many lines as the
-- terminal's width needs, continuation lines indented.
local function wrap_list(prefix, names)
  local max, lines, line, indent = math.max(columns(), 40), {}, prefix, "  "
  for i, n in ipairs(names) do
    local item = util.escape_untrusted(n) .. (i < #names and "," or "")
    if line ~= prefix and line ~= indent and width(line) + 1 + width(item) > max then
      lines[#lines + 1] = line
      line = indent
    end
    line = line .. (line == indent and "" or " ") .. item
  end
  lines[#lines + 1] = line
  out(table.concat(lines, "\n"), "\n")
end

-- A label as a Lua string literal: quoted, control bytes escaped, one line;
-- C1 and bidi controls as \u{XXXX}, which Lua reads back as the same text.
local function show_value(v)
  if v == nil then return "(new)" end        -- a module a create entry makes
  return util.escape_untrusted(type(v) == "string" and util.lua_string(v) or tostring(v))
end

local function profile_names(list)
  local n = {}
  for _, p in ipairs(list) do n[#n + 1] = util.printable(p.name or p.id) end
  return table.concat(n, ", ")
end

--- print_changes(changes): what differs, module by module, field by field:
-- the plan's view (report.changes, client:diff) and a change set's (turned
-- into that shape). Each change: module, plural_label and singular_label
-- ({ old =, new = }, present when they differ), granted, revoked (profiles).
-- Names are shown with their control bytes escaped: they may come from a file.
-- Changes that deserve a second look before the question: revoking the
-- Administrator profile, and leaving a module with no profile at all.
local function risks(c)
  local found = {}
  for _, p in ipairs(c.revoked) do
    if p.name == "Administrator" then found[#found + 1] = "revokes Administrator" end
  end
  if c.profiles_left == 0 then found[#found + 1] = "leaves no profile with access" end
  return found
end

local function print_changes(changes)
  if #changes == 0 then out("No changes: the org is already as planned.\n") return end
  out(string.format("Changes (%s):\n", plural(#changes, "module")))
  local rows, warnings = {}, {}
  for _, c in ipairs(changes) do
    local fields = {}
    -- removals red, additions green, changed values yellow, per attribute
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c[field] then
        fields[#fields + 1] = { field, paint(false, "yellow", show_value(c[field].old) .. " -> " .. show_value(c[field].new)) }
      end
    end
    if #c.granted > 0 then fields[#fields + 1] = { "profiles", paint(false, "green", "grant " .. profile_names(c.granted)) } end
    if #c.revoked > 0 then
      fields[#fields + 1] = { #c.granted > 0 and "" or "profiles", paint(false, "red", "revoke " .. profile_names(c.revoked)) }
    end
    local module = util.printable(c.module)
    for i, f in ipairs(fields) do rows[#rows + 1] = { i == 1 and module or "", f[1], f[2] } end
    for _, r in ipairs(risks(c)) do warnings[#warnings + 1] = module .. ": " .. r end
  end
  local w = 0
  for _, r in ipairs(rows) do w = math.max(w, width(r[1])) end
  -- One write for the whole list (thousands of lines with --orgs), not one
  -- system call per line of a line-buffered stdout.
  local lines = {}
  for i, r in ipairs(rows) do
    lines[i] = string.format("  %s%s  %-15s %s\n", r[1], string.rep(" ", w - width(r[1])), r[2], r[3])
  end
  for _, text in ipairs(warnings) do lines[#lines + 1] = paint(false, "red", "Warning: " .. text) .. "\n" end
  out(table.concat(lines))
end

--- plan_counts(report [, paint_fn]) -> "applied 3, already applied 9, skipped 0,
-- invalid 1, failed 0, not sent 0 of 13 entries": every entry of the plan in
-- exactly one count (a dry run says "would apply"). `paint_fn(color, text)`
-- colours the applied and failed counts.
--- already_count(report) -> the plan's entries the org already had ("no change").
local function already_count(report)
  local n = 0
  for _, sk in ipairs(report.skipped) do
    if sk.reason == "no change" then n = n + 1 end
  end
  return n
end

local function plan_counts(report, paint_fn)
  paint_fn = paint_fn or function(_, text) return text end
  local same = already_count(report)
  local other = #report.skipped - same
  local invalid = {}
  for _, f in ipairs(report.invalid or {}) do invalid[f.index] = true end
  local n_invalid = 0
  for _ in pairs(invalid) do n_invalid = n_invalid + 1 end
  local applied = report.dry_run and #report.would_send or #report.applied
  local text = string.format("%s, already applied %d, skipped %d, invalid %d, %s, not sent %d of %s",
    paint_fn(report.ok and "green" or "bold", string.format("%s %d", report.dry_run and "would apply" or "applied",
      applied)), same, other, n_invalid, paint_fn(#report.failed > 0 and "red" or "bold", "failed " .. #report.failed),
    #report.not_sent, plural(report.total, "entry"))
  if (report.excluded or 0) > 0 then
    text = text .. string.format(" (%d more left out by --only/--exclude)", report.excluded)
  end
  return text
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
    -- rate and ETA once there is something to measure them by
    local rate = done / math.max(t - t0, 1e-3)
    local speed = (done > 0 and t - t0 >= 0.5)
      and string.format("  %.1f/s  ETA %s", rate, format_seconds((total - done) / rate)) or "  starting"
    io.stderr:write(string.format("\r[%s%s] %d/%d%s \27[K",
      string.rep("#", filled), string.rep("-", bar_width - filled), done, total, speed))
    io.stderr:flush()
    term.progress = true
  end
end

--- orgs_progress() -> `function(org, done, total)` for a run over many orgs:
-- on a terminal one status line on stderr with every org's count
-- ("emea 40/100 · apac 12/100"), redrawn at most ten times a second;
-- elsewhere one line per org as it finishes sending.
local function orgs_progress()
  local counts, order, last = {}, {}, 0
  local tty = core.isatty(io.stderr)
  return function(org, done, total)
    if not counts[org] then order[#order + 1] = org end
    counts[org] = { done, total }
    if not tty then
      if done == total and total > 0 then err_line(string.format("zcrm: %s: %d/%d sent", org, done, total)) end
      return
    end
    local t = core.now()
    if t - last < 0.1 then return end
    last = t
    local parts = {}
    for _, name in ipairs(order) do
      parts[#parts + 1] = string.format("%s %d/%d", util.escape_untrusted(name), counts[name][1], counts[name][2])
    end
    io.stderr:write("\r", clip(table.concat(parts, " \u{00B7} "), columns() - 1), "\27[K")
    io.stderr:flush()
    term.progress = true
  end
end

-- }====

-- {==== asking

-- The controlling terminal, where the question is asked and answered, so
-- that redirecting stdout or stderr (2>err.log) does not prevent it. nil when
-- the process has none.
local function open_tty()
  return io.open("/dev/tty", "r+")
end

-- Whether there is someone to ask: stdin is a terminal (typed input, not a
-- file or a pipe) and the controlling terminal opens.
local function interactive()
  if not core.isatty(io.stdin) then return false end
  local tty = open_tty()
  if not tty then return false end
  tty:close()
  return true
end

-- Asks on the controlling terminal; true only for an answer of yes.
local function ask(question)
  clear_progress()
  io.stdout:flush()
  local tty = open_tty()
  local to, from = tty or io.stderr, tty or io.stdin
  to:write(util.terminal_text(question), " ")
  to:flush()
  local answer = from:read("l")
  if answer == nil then to:write("\n") end
  if tty then tty:close() end
  return answer ~= nil and answer:lower():match("^%s*y[e]?[s]?%s*$") ~= nil
end

--- confirm(flags, question) -> true to go on; false, exit code when not:
-- --yes answers for the user; without it there must be someone to ask
-- (CONFIRMATION_REQUIRED, exit 2, said here), and any answer but yes is a
-- no (exit 1, said here). Asked only once every input was checked and there
-- is something to send, so a bad file or flag is never hidden behind it.
local function confirm(flags, question)
  if flags.yes then return true end
  if not interactive() then
    print_error(flags, nil, zcrm.error { kind = "config", code = "CONFIRMATION_REQUIRED",
      message = "apply asks before changing anything, and there is no terminal to ask on; nothing was sent",
      resolution = "Pass --yes to apply without asking, or --dry-run to see what would change." })
    return false, EXIT_USAGE
  end
  if ask(question .. " [y/N]") then return true end
  err_line("zcrm: not applied (the answer was not yes); nothing was sent")
  return false, 1
end

-- }====

M.term = term
M.setup_terminal = setup_terminal
M.paint = paint
M.clear_progress = clear_progress
M.out = out
M.err_line = err_line
M.json_line = json_line
M.json_output = json_output
M.hint_of = hint_of
M.error_json = error_json
M.print_error = print_error
M.usage_error = usage_error
M.list_or_nil = list_or_nil
M.plural = plural
M.credits = credits
M.width = width
M.print_table = print_table
M.columns = columns
M.clip = clip
M.wrap_list = wrap_list
M.progress_bar = progress_bar
M.orgs_progress = orgs_progress
M.ask = ask
M.interactive = interactive
M.confirm = confirm
M.print_changes = print_changes
M.plan_counts = plan_counts
M.already_count = already_count

return M
