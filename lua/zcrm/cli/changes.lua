--- What a plan or a change set does, as `zcrm` prints it: the changes
-- module by module (one printer for both), a plan's counts and its invalid
-- entries, and how a change set was made.
-- @module zcrm.cli.changes

local changeset = require "zcrm.plan.changeset"
local util = require "zcrm.util"
local term = require "zcrm.cli.term"

local M = {}

local out, paint, plural, width = term.out, term.paint, term.plural, term.width

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

--- print_changes(changes): what differs, module by module, field by field:
-- the plan's view (report.changes, client:diff) and a change set's (turned
-- into that shape). Each change: module, plural_label and singular_label
-- ({ old =, new = }, present when they differ), granted, revoked (profiles).
-- Names are shown with their control bytes escaped: they may come from a file.
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

--- already_count(report) -> the plan's entries the org already had ("no change").
local function already_count(report)
  local n = 0
  for _, sk in ipairs(report.skipped) do
    if sk.reason == "no change" then n = n + 1 end
  end
  return n
end

--- plan_counts(report [, paint_fn]) -> "applied 3, already applied 9, skipped 0,
-- invalid 1, failed 0, not sent 0 of 13 entries": every entry of the plan in
-- exactly one count (a dry run says "would apply"). `paint_fn(color, text)`
-- colours the applied and failed counts.
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

--- show_changes(list): the changes of a change set as `zcrm apply PLAN`
-- shows a plan's, each drawn from the body it sends (changeset.effect).
local function show_changes(list)
  local shown = {}
  for _, c in ipairs(list) do shown[#shown + 1] = changeset.effect(c) end
  print_changes(shown)
end

--- header(cs, path): how a change set was made, every value escaped.
local function header(cs, path)
  local p = util.printable
  out(string.format("Change set %s for %s (org %s)\n", p(path), p(cs.api_domain), p(cs.org)))
  local from = cs.plan and ("from " .. p(cs.plan)) or "from a plan not recorded"
  if cs.args and #cs.args > 0 then
    local quoted = {}
    for i, a in ipairs(cs.args) do quoted[i] = p(string.format("%q", a)) end
    from = from .. " " .. table.concat(quoted, " ")
  end
  out(string.format("  planned %s%s, %s%s\n", p(cs.created), cs.zcrm_version and (" by " .. p(cs.zcrm_version)) or "",
    from, cs.plan_hash and (" (" .. p(cs.plan_hash) .. ")") or ""))
end

--- print_invalid(flags, faults): a line per invalid entry of a plan (with
-- --json, an "invalid" event each too).
local function print_invalid(flags, faults)
  for _, f in ipairs(faults) do
    term.print_error(flags, string.format("entry %d%s", f.index, f.module and (" (" .. f.module .. ")") or ""), f.error,
      { event = "invalid", index = f.index, module = f.module })
  end
end

M.print_changes = print_changes
M.show_changes = show_changes
M.header = header
M.already_count = already_count
M.plan_counts = plan_counts
M.print_invalid = print_invalid

return M
