--- Many orgs in one run: `zcrm.apply_orgs(orgs, plan, opts)`, and
-- `each`, which runs one function per org concurrently in this process.
--
-- Each org has its own client (its own concurrency cap, credit budget, token
-- and connections). Each org's work runs in a coroutine; while it waits for
-- the network, its client's `poll` yields to the others, so all orgs' transfers
-- are in flight at once and the wall time is close to the slowest org's.
-- @module zcrm.orgs

local core = require "zcrm.core"
local options = require "zcrm.options"

local M = {}

-- Where a client has no pollfd() (no epoll): a poll that waits at most
-- this long before letting the next org run. The transfers keep going
-- meanwhile (libcurl's multi), so this only bounds how late a finished
-- transfer is noticed.
local SLICE = 0.002
-- The longest the scheduler sleeps at once (a poll's own timeout is 0.05 s).
local MAX_WAIT = 0.05

local function orgs_error(code, message, details)
  local e = core.error { kind = "validation", code = code, message = message, details = details }
  e.status = nil
  return e
end

--- check(orgs) -> true, or nil, err: a non-empty list of { name =, options = }
-- (or { name =, org = <a stored org> })
-- with distinct names.
function M.check(orgs)
  if type(orgs) ~= "table" or #orgs == 0 then
    return nil, orgs_error("INVALID_ORGS", "orgs is a non-empty list of { name =, options = }")
  end
  local seen = {}
  for i, org in ipairs(orgs) do
    -- An entry may name an org stored by `zcrm login` instead of giving
    -- options: { name = "emea", org = "emea" } reads as options = { org = "emea" }.
    if type(org) == "table" and org.options == nil and type(org.org) == "string" then org.options = { org = org.org } end
    if type(org) ~= "table" or type(org.name) ~= "string" or org.name == "" or type(org.options) ~= "table" then
      return nil, orgs_error("INVALID_ORGS", string.format(
        "orgs[%d] needs a name (a string) and options (a table) or org (a stored org's name)", i), { index = i })
    end
    if not org.name:match("^[%w_.-]+$") then
      return nil, orgs_error("INVALID_ORGS", string.format(
        "orgs[%d]: the name %q may hold only letters, digits, '_', '.' and '-' (it names journal files)", i, org.name),
        { index = i })
    end
    if seen[org.name] then
      return nil, orgs_error("INVALID_ORGS", string.format("orgs[%d] repeats the name %s", i, org.name), { index = i })
    end
    seen[org.name] = true
  end
  return true
end

--- connect(zcrm, orgs) -> list of clients (in the orgs' order), or nil, err
-- naming the org whose options are bad.
function M.connect(zcrm, orgs)
  local ok, err = M.check(orgs)
  if not ok then return nil, err end
  local clients = {}
  for i, org in ipairs(orgs) do
    local client, cerr = zcrm.new(org.options)
    if not client then
      for _, c in ipairs(clients) do c:close() end
      return nil, orgs_error(cerr.code, string.format("org %s: %s", org.name, tostring(cerr)),
        { org = org.name, index = i, error = cerr })
    end
    clients[i] = client
  end
  return clients
end

-- The host hook of an org's client while its task runs: a wait inside the
-- task yields the time it may wait, so the other orgs run; `each` sleeps
-- once for all of them, until any org's pollfd() is readable (or the
-- soonest of their deadlines), and the engine then does what is ready
-- without waiting. Without a pollfd for every org (`slice`), the task
-- yields at once and the engine waits at most SLICE itself. Every wait of a
-- client (its poll, wait, drain, and so every blocking call) goes through
-- this one hook. Outside the task, and for wake and close, the host the
-- client had before (if any) serves.
local function cooperative(task, before, slice)
  before = before or {}
  return {
    wait = function(timeout)
      if coroutine.running() == task then
        if slice then
          coroutine.yield(0)
          return math.min(timeout, SLICE)
        end
        coroutine.yield(timeout)
        return 0
      end
      if before.wait then return before.wait(timeout) end
    end,
    wake = before.wake, close = before.close,
  }
end

--- each(clients, fn) -> list of packed results: runs fn(client, i) for every
-- client concurrently; an error raised in one is its result `nil, message`.
function M.each(clients, fn)
  local tasks, results, live, before = {}, {}, 0, {}
  -- Every client's descriptor, when each has one: the one wait of a round.
  local fds = {}
  for i, client in ipairs(clients) do
    fds[i] = client:pollfd()
    if not fds[i] then fds = nil; break end
  end
  for i, client in ipairs(clients) do
    local co = coroutine.create(function() return table.pack(fn(client, i)) end)
    before[i] = client:set_host(nil)
    client:set_host(cooperative(co, before[i], fds == nil))
    tasks[i] = co
    live = live + 1
  end
  while live > 0 do
    local wait, waiting = MAX_WAIT, {}
    for i, co in ipairs(tasks) do
      if coroutine.status(co) == "suspended" then
        local ok, res = coroutine.resume(co)
        if coroutine.status(co) == "dead" then
          live = live - 1
          results[i] = ok and res or table.pack(nil, orgs_error("INTERNAL_CLIENT_ERROR",
            "error in the run of org " .. i .. ": " .. clients[i]:_redact(tostring(res))))
          clients[i]:set_host(before[i]) -- the client's own host again
        else
          -- What it asked to wait, but no later than its client's next
          -- deadline (0 when it has work ready).
          local t = clients[i]:timeout()
          wait = math.min(wait, math.type(res) and res or 0, t or math.huge)
          if fds then waiting[#waiting + 1] = fds[i] end
        end
      end
    end
    if fds and live > 0 and wait > 0 then core.wait_readable(waiting, wait) end
  end
  return results
end

--- The options of `zcrm.apply_orgs` (a schema of `zcrm.options.check`).
M.OPTIONS = {
  dry_run = "boolean", journal = "string", undo_file = "string", args = "table", dir = "string",
  confirm = "function", on_result = "function", on_plan = "function", on_progress = "function",
  concurrency = { type = "integer", min = 1 }, stop = "function", stop_grace = { type = "number", min = 0 },
}

-- "{org}" in a file name option becomes the org's name.
local changes = require "zcrm.plan.changeset_apply"

local function per_org(path, org)
  return path and (path:gsub("{org}", function() return org.name end))
end

-- A plan function's ctx.args for one org: the run's args, the org's name as
-- `org`, and the org entry's own plain fields (e.g. `region`).
local function with_org(args, org)
  local a = {}
  for k, v in pairs(args or {}) do a[k] = v end
  for k, v in pairs(org) do
    if k ~= "options" and k ~= "name" and (type(v) == "string" or type(v) == "number" or type(v) == "boolean") then
      a[k] = v
    end
  end
  a.org = org.name
  return a
end
M.with_org = with_org

--- apply_orgs(zcrm, orgs, plan, opts) -> result, or nil, err.
-- Every org's plan is checked against its live state (a dry run with diff)
-- before any org is changed; one invalid org stops the run (INVALID_PLAN with
-- details.orgs). Then opts.confirm(result) (if given) decides, once for all;
-- then every org applies concurrently, diffed against the state its check
-- read (read once per org, as a run on one org reads it once before its
-- confirmation).
-- `plan` may be a change set, or the path of one (holding "{org}" for each
-- org's own, as `zcrm plan --orgs --out` writes them): each org is checked
-- (a dry run of client:apply(changes)) and applied as one org would be.
-- result = { ok =, confirmed =, elapsed =, orgs = { { name =, report =, error =, checked = }, ... } }
function M.apply_orgs(zcrm, orgs, plan, opts)
  local oerr
  opts, oerr = options.check(opts, M.OPTIONS, "apply_orgs")
  if not opts then return nil, oerr end
  for _, k in ipairs { "journal", "undo_file" } do
    if opts[k] and type(orgs) == "table" and #orgs > 1 and not opts[k]:find("{org}", 1, true) then
      return nil, core.error { kind = "config", code = "INVALID_CONFIG", field = k, details = { option = k },
        message = string.format("apply_orgs: option '%s' must hold {org} (each org writes its own file)", k) }
    end
  end
  for _, k in ipairs { "journal", "undo_file", "dir" } do
    local ok, perr = options.check_path(opts[k], k)
    if not ok then return nil, perr end
  end
  local t0 = core.now()
  if opts.undo_file and not opts.dry_run then -- an undo plan is never replaced: refuse before any org runs
    local ok, err = M.check(orgs)
    if not ok then return nil, err end
    for _, org in ipairs(orgs) do
      local path = per_org(opts.undo_file, org)
      if core.file_mode(path) then
        return nil, core.error { kind = "io", code = "UNDO_FILE_EXISTS", retryable = false,
          message = string.format("org %s: the undo file %s already exists; no org was changed", org.name, path),
          resolution = "Give undo_file (--undo) a new name holding {org}, or move the old files away first." }
      end
    end
  end
  -- A change set (or the path of one, "{org}" naming each org's own) is
  -- checked and applied per org as client:apply(changes) does.
  local sets
  if changes.is_changes(plan) or (type(plan) == "string" and plan:match("%.json$")) then
    local ok, err = M.check(orgs)
    if not ok then return nil, err end
    sets = {}
    for i, org in ipairs(orgs) do
      if type(plan) == "string" then
        local cs, rerr = changes.read(per_org(plan, org))
        if not cs then return nil, rerr end
        sets[i] = cs
      else
        sets[i] = plan
      end
    end
  end
  local clients, cerr = M.connect(zcrm, orgs)
  if not clients then return nil, cerr end
  local result = { orgs = {}, ok = true }
  local function close()
    for _, c in ipairs(clients) do c:close() end
  end

  -- 1. Check every org. The state each check reads is kept for its apply
  -- (`known`): what was shown and confirmed is what is sent, as in a run on
  -- one org, and each org's state is read once.
  local known = {}
  local checks = M.each(clients, function(client, i)
    known[i] = {}
    if sets then return changes.apply(client, sets[i], { dry_run = true }) end
    return zcrm.plan.apply(client, plan, { dry_run = true, diff = true, dir = opts.dir,
      args = with_org(opts.args, orgs[i]) }, known[i])
  end)
  local bad = {}
  for i, r in ipairs(checks) do
    result.orgs[i] = { name = orgs[i].name, api_domain = clients[i].api_domain, checked = r[1], error = r[2] }
    if not r[1] then bad[#bad + 1] = { org = orgs[i].name, error = r[2] } end
    local drift = sets and r[1] and (r[1].refused[1] or r[1].failed[1])
    if drift then bad[#bad + 1] = { org = orgs[i].name, error = drift.error } end
  end
  if #bad > 0 then
    close()
    return nil, orgs_error(sets and bad[1].error.code or "INVALID_PLAN", string.format(
      "%d of %d orgs refuse the %s (first: %s: %s); no org was changed", #bad, #orgs, sets and "change set" or "plan",
      bad[1].org, tostring(bad[1].error)), { orgs = bad })
  end
  if opts.on_plan then opts.on_plan(result) end
  if opts.dry_run then
    close()
    result.elapsed = core.now() - t0
    return result
  end
  if opts.confirm then
    local w0 = core.now()
    result.confirmed = opts.confirm(result) == true
    t0 = t0 + (core.now() - w0) -- the wait at the question is not the run's time
    if not result.confirmed then close(); result.ok = false; return result end
  end

  -- 2. Apply everywhere, concurrently.
  local runs = M.each(clients, function(client, i)
    local org = orgs[i]
    if sets then
      return changes.apply(client, sets[i], {
        concurrency = opts.concurrency, journal = per_org(opts.journal, org), undo_file = per_org(opts.undo_file, org),
        stop = opts.stop, stop_grace = opts.stop_grace,
        on_result = opts.on_result and function(c, res, err) opts.on_result(org.name, c, res, err) end,
        on_progress = opts.on_progress and function(done, total) opts.on_progress(org.name, done, total) end,
      })
    end
    return zcrm.plan.apply(client, plan, {
      diff = true, dir = opts.dir, args = with_org(opts.args, org), concurrency = opts.concurrency,
      journal = per_org(opts.journal, org), undo_file = per_org(opts.undo_file, org),
      stop = opts.stop, stop_grace = opts.stop_grace,
      on_result = opts.on_result and function(entry, res, err) opts.on_result(org.name, entry, res, err) end,
      on_progress = opts.on_progress and function(done, total) opts.on_progress(org.name, done, total) end,
    }, known[i])
  end)
  for i, r in ipairs(runs) do
    local o = result.orgs[i]
    o.report, o.error = r[1], r[2]
    if not (o.report and o.report.ok) then result.ok = false end
  end
  close()
  result.elapsed = core.now() - t0
  return result
end

return M
