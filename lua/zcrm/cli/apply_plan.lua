--- `zcrm apply PLAN.lua`: a plan applied to one org (shown, asked,
-- applied, summarised, with a progress bar on a terminal) or, with --orgs,
-- to every org of an orgs file. lua/zcrm/cli/apply.lua chooses between
-- these and lua/zcrm/cli/apply_changeset.lua.
-- @module zcrm.cli.apply_plan

local cjson = require "cjson.safe"
local zcrm = require "zcrm"
local plan = require "zcrm.plan"
local core = require "zcrm.core"
local proc = require "zcrm.proc"
local term = require "zcrm.cli.term"
local changes = require "zcrm.cli.changes"
local interrupt = require "zcrm.cli.interrupt"
local name_list = require("zcrm.cli.args").name_list
local connection = require "zcrm.cli.connect"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local paint, out, err_line, json_line = term.paint, term.out, term.err_line, term.json_line
local error_json, print_error, error_line, list_or_nil = term.error_json, term.print_error, term.error_line,
  term.list_or_nil
local plural, width, credits, confirm = term.plural, term.width, term.credits, term.confirm
local print_changes, print_invalid = changes.print_changes, changes.print_invalid

-- {==== one org

local function print_summary(report)
  local why = {}
  for _, sk in ipairs(report.skipped) do
    if sk.reason ~= "no change" then why[sk.reason] = (why[sk.reason] or 0) + 1 end
  end
  local reasons = {}
  for reason, n in pairs(why) do reasons[#reasons + 1] = string.format("%d %s", n, reason) end
  table.sort(reasons)
  out(changes.plan_counts(report, function(color, text) return paint(false, color, text) end),
    #reasons > 0 and (" (skipped: " .. table.concat(reasons, ", ") .. ")") or "")
  out(string.format("; %s spent; %.2f s\n", plural(report.credits, "credit"), report.elapsed))
  if report.undo_file then out("Undo plan: ", report.undo_file, "\n") end
  if report.journal and not report.dry_run then out("Journal: ", report.journal, "\n") end
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
    applied = #report.applied, skipped = #report.skipped, already = changes.already_count(report), failed = #report.failed,
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
      out(string.format("Would spend %s.\n", credits(report.estimate)))
    end
  end
  io.stdout:flush()
end

--- apply_one(flags, positional, argv) -> exit code: `zcrm apply PLAN.lua`
-- to one org (lua/zcrm/cli/apply.lua checked the path and the numbers).
local function apply_one(flags, positional, argv)
  local path = positional[1]
  if flags.diff and flags["no-diff"] then return term.usage_error("--diff and --no-diff contradict each other", "apply") end
  if flags.undo and core.file_mode(flags.undo) ~= nil then
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
  local client, code = connection.connect(flags)
  if not client then return code end

  local index_of = {}
  for i, entry in ipairs(list) do index_of[entry] = i end
  local plain = not flags.json and not proc.isatty(io.stderr)
  local total_ref = { total = 0, plain = plain }
  local bar = not flags.json and not plain and term.progress_bar()
  local declined
  local opts = {
    dry_run = flags["dry-run"], diff = not flags["no-diff"], read_state = flags["dry-run"] or nil,
    journal = flags.journal, undo_file = flags.undo, partial = flags.partial,
    concurrency = client.concurrency, batch = flags.batch,
    only = name_list(flags.only), exclude = name_list(flags.exclude),
    max_credits = flags["max-credits"] and tonumber(flags["max-credits"]) or nil,
    on_result = result_printer(flags, total_ref, index_of),
    on_plan = function(report)
      show_plan(report, flags, string.format("Plan %s: %s for %s%s", path, plural(report.total, "entry"),
        client.api_domain, flags["dry-run"] and " (dry run: nothing is sent)" or ""))
    end,
    confirm = function(report)
      -- Until now nothing was sent, and Ctrl-C ends the process at once (main);
      -- from here on the first one stops sending, for a summary that resumes.
      proc.catch_interrupts()
      local ok, exit_code = confirm(flags, string.format("Apply %s to %s (%s)?", plural(#report.would_send, "change"),
        client.api_domain, term.credits(report.estimate)))
      declined = exit_code
      return ok
    end,
    stop = interrupt.stop,
    stop_grace = interrupt.GRACE,
    on_progress = function(done, total)
      total_ref.total = total
      if bar and total > 0 then bar(done, total) end
    end,
  }
  local report, err = client:apply(list, opts)
  client:close()
  local sig = proc.interrupted()
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
    if sig then return interrupt.EXIT[sig] end
    return (err.kind == "validation" or err.code == "UNDO_FILE_EXISTS") and EXIT_USAGE or EXIT_FAILED
  end

  if declined and not sig then
    if flags.json then report_json(report, { declined = true }) end
    return declined
  end
  print_failures(flags, report)
  if flags.json then
    report_json(report, { interrupted = sig and interrupt.NAME[sig] or nil })
  else
    print_summary(report)
  end
  if report.batch_fallback then
    err_line(string.format("zcrm: the server refused the batch endpoint (%s); the updates went one "
      .. "module per call", tostring(report.batch_fallback)))
  end
  if sig then
    return interrupt.exit(sig, argv, string.format("%s; %s not sent",
      report.dry_run and "nothing was sent" or (#report.applied .. " applied"), plural(#report.not_sent, "update")),
      nil, report.undo_file)
  end
  return report.ok and EXIT_OK or EXIT_FAILED
end

-- }====

-- {==== every org of an orgs file

--- apply_orgs(flags, positional, argv) -> exit code: `zcrm apply PLAN.lua
-- --orgs ORGS.lua`, every org checked first, one question.
local function apply_orgs(flags, positional, argv)
  local path = positional[1]
  local list, err = connection.read_orgs(flags.orgs)
  if not list then error_line(flags.orgs, err); return EXIT_USAGE end
  for _, k in ipairs { "journal", "undo" } do
    if flags[k] and not flags[k]:find("{org}", 1, true) then
      return term.usage_error(string.format("with --orgs, --%s must hold {org} (each org writes its own file)", k),
        "apply")
    end
  end
  local total, declined = 0, nil
  local result
  result, err = zcrm.apply_orgs(list, path, {
    stop = interrupt.stop, stop_grace = interrupt.GRACE,
    dry_run = flags["dry-run"] == true, journal = flags.journal, undo_file = flags.undo,
    args = { table.unpack(positional, 2) },
    concurrency = flags.concurrency and math.tointeger(tonumber(flags.concurrency)) or nil,
    on_plan = function(r)
      for _, o in ipairs(r.orgs) do
        if flags.json then
          for _, c in ipairs(o.checked.changes) do
            json_line { event = "change", org = o.name, module = c.module, id = c.id,
                        plural_label = c.plural_label, singular_label = c.singular_label,
                        granted = list_or_nil(c.granted), revoked = list_or_nil(c.revoked) }
          end
        else
          out(string.format("Org %s (%s): %s\n", o.name, o.api_domain, plural(#o.checked.would_send, "update")))
          print_changes(o.checked.changes)
        end
        total = total + #o.checked.would_send
      end
    end,
    confirm = function(r)
      proc.catch_interrupts() -- from the question on, Ctrl-C stops sending (lua/zcrm/cli/init.lua's main)
      if total == 0 then return true end
      local names = {}
      for _, o in ipairs(r.orgs) do names[#names + 1] = o.name end
      local ok, exit_code = confirm(flags, string.format("Apply %s to %s (%s)?", plural(total, "change"),
        plural(#r.orgs, "org"), table.concat(names, ", ")))
      declined = exit_code
      return ok
    end,
    on_progress = not flags.json and term.orgs_progress() or nil,
    on_result = function(org, entry, res, rerr)
      if flags.json then
        json_line { event = "result", org = org, module = tostring(entry.module), status = res and "applied" or "failed",
                    code = res and res.code or nil, error = rerr and error_json(rerr) or nil }
      end
      if rerr then error_line(string.format("%s: %s failed", org, tostring(entry.module)), rerr) end
    end,
  })
  if not result then
    if err.details and err.details.orgs then
      for _, o in ipairs(err.details.orgs) do
        local e = o.error
        if zcrm.is_error(e) and e.details and e.details.errors then
          for _, f in ipairs(e.details.errors) do
            error_line(string.format("%s: entry %d (%s)", o.org, f.index, tostring(f.module)), f.error)
          end
        else
          error_line(o.org, e)
        end
      end
      -- an invalid plan is the input's fault (2); an org that could not be
      -- read (network, token) is a runtime failure (1)
      local input = true
      for _, o in ipairs(err.details.orgs) do
        if not (zcrm.is_error(o.error) and (o.error.kind == "validation" or o.error.kind == "config")) then input = false end
      end
      local n = #err.details.orgs
      err_line(string.format("zcrm: %s %s; no org was changed", plural(n, "org"),
        input and (n == 1 and "refuses the plan" or "refuse the plan") or "could not be checked"))
      return input and EXIT_USAGE or EXIT_FAILED
    end
    error_line(flags.orgs, err)
    local sig = proc.interrupted()
    if sig then return interrupt.exit(sig, argv, "nothing was sent") end
    return (err.kind == "validation" or err.kind == "config") and EXIT_USAGE or EXIT_FAILED
  end
  local sig = proc.interrupted()
  if result.confirmed == false then
    if sig then return interrupt.exit(sig, argv, "nothing was sent") end
    return declined or EXIT_FAILED
  end
  if flags["dry-run"] then return EXIT_OK end
  local applied, not_sent = 0, 0
  for _, o in ipairs(result.orgs) do
    local r = o.report
    if r then
      applied, not_sent = applied + #r.applied, not_sent + #r.not_sent
      if flags.json then
        json_line { event = "report", org = o.name, ok = r.ok, total = r.total, applied = #r.applied,
                    skipped = #r.skipped, invalid = #r.invalid, failed = #r.failed, not_sent = #r.not_sent,
                    credits = r.credits, elapsed = r.elapsed }
      else
        out(string.format("%-12s %s; %s; %.2f s\n", o.name, changes.plan_counts(r), credits(r.credits), r.elapsed))
      end
      if r.aborted then error_line(o.name .. ": stopped early", r.aborted) end
    else
      error_line(o.name, o.error)
    end
  end
  if flags.json then
    json_line { event = "orgs", ok = result.ok, orgs = #result.orgs, elapsed = result.elapsed }
  else
    out(string.format("%s in %.2f s: %s\n", plural(#result.orgs, "org"), result.elapsed,
      result.ok and "all applied" or "some failed"))
  end
  if sig then
    return interrupt.exit(sig, argv, string.format("%d applied; %s not sent", applied, plural(not_sent, "update")))
  end
  return result.ok and EXIT_OK or EXIT_FAILED
end


-- }====

M.one = apply_one
M.orgs = apply_orgs

return M
