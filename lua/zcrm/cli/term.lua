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

-- Display width of a string: characters, not bytes (labels are UTF-8).
local function width(s)
  return utf8.len(s) or #s
end

-- A header row and aligned columns; the last column is not padded. Every
-- cell is shown through util.escape_untrusted (rows hold a server's labels).
local function print_table(header, rows)
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
local function print_changes(changes)
  if #changes == 0 then out("No changes: the org is already as planned.\n") return end
  out(string.format("Changes (%s):\n", plural(#changes, "module")))
  local rows = {}
  for _, c in ipairs(changes) do
    local fields = {}
    for _, field in ipairs { "plural_label", "singular_label" } do
      if c[field] then fields[#fields + 1] = { field, show_value(c[field].old) .. " -> " .. show_value(c[field].new) } end
    end
    if #c.granted > 0 then fields[#fields + 1] = { "profiles", "grant " .. profile_names(c.granted) } end
    if #c.revoked > 0 then
      fields[#fields + 1] = { #c.granted > 0 and "" or "profiles", "revoke " .. profile_names(c.revoked) }
    end
    local module = util.printable(c.module)
    for i, f in ipairs(fields) do rows[#rows + 1] = { i == 1 and module or "", f[1], f[2] } end
  end
  local w = 0
  for _, r in ipairs(rows) do w = math.max(w, width(r[1])) end
  for _, r in ipairs(rows) do
    out(string.format("  %s%s  %-15s %s\n", r[1], string.rep(" ", w - width(r[1])), r[2], r[3]))
  end
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

-- {==== asking

-- Whether there is a terminal to ask on (stdin to read the answer, stderr
-- to show the question).
local function interactive()
  return core.isatty(io.stdin) and core.isatty(io.stderr)
end

-- Asks on the terminal; true only for an answer of yes.
local function ask(question)
  clear_progress()
  io.stdout:flush()
  io.stderr:write(util.terminal_text(question), " ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  if answer == nil then io.stderr:write("\n") end
  return answer ~= nil and answer:lower():match("^%s*y[e]?[s]?%s*$") ~= nil
end

--- cannot_ask(flags) -> nil to go on, or the exit code after saying why:
-- `zcrm apply` asks before changing anything, so without --yes or --dry-run
-- there must be a terminal to ask on.
local function cannot_ask(flags)
  if flags["dry-run"] or flags.yes or interactive() then return nil end
  print_error(flags, nil, zcrm.error { kind = "config", code = "CONFIRMATION_REQUIRED",
    message = "apply asks before changing anything, and there is no terminal to ask on; nothing was sent",
    resolution = "Pass --yes to apply without asking, or --dry-run to see what would change." })
  return EXIT_USAGE
end

-- After an answer that was not yes.
local function not_applied()
  err_line("zcrm: not applied (the answer was not yes); nothing was sent")
end

-- }====

M.term = term
M.setup_terminal = setup_terminal
M.paint = paint
M.clear_progress = clear_progress
M.out = out
M.err_line = err_line
M.json_line = json_line
M.hint_of = hint_of
M.error_json = error_json
M.print_error = print_error
M.usage_error = usage_error
M.list_or_nil = list_or_nil
M.plural = plural
M.width = width
M.print_table = print_table
M.progress_bar = progress_bar
M.ask = ask
M.interactive = interactive
M.cannot_ask = cannot_ask
M.not_applied = not_applied
M.print_changes = print_changes

return M
