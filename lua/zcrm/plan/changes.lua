--- Saved change sets and drift checks (issue 13).
--
--   client:plan(plan, opts)   -> change set: what applying `plan` to this org
--                                would change, read from the live state
--   client:apply(changes)     -> applies exactly that change set; a module that
--                                no longer has its "before" values is refused
--   client:diff(plan, opts)   -> the difference between the plan and the org
--
-- A change set is a table that encodes to JSON as it is (see `encode`):
--
--   { format = "zcrm.changes", version = 1, created = "2026-12-02T17:30:00Z",
--     api_domain = "https://www.zohoapis.eu", org = "2423488000000002175",
--     changes = { { module = "Projects", id = "2423488000000834005",
--                   before = { plural_label =, singular_label =, profiles = { { id =, name = } } },
--                   after  = { ... },
--                   body   = { <the update sent: only the fields that differ> } } } }
--
-- `org` identifies the org as the API shows it with the settings scope alone:
-- the smallest module id. Zoho's standard modules are created with the org and
-- cannot be deleted, and ids are unique to an org, so it stays the same for
-- the org's life and differs between orgs. (GET /org would give the org id but
-- needs the ZohoCRM.org.READ scope, which a settings script need not hold.)

local cjson = require "cjson.safe"
local core = require "zcrm.core"

local M = {}

local FORMAT, VERSION = "zcrm.changes", 1

local function verror(code, message, field, details)
  local e = core.error { kind = "validation", code = code, message = message, field = field, details = details }
  e.status = nil
  return e
end

-- {==== the org's identity

local function id_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

--- org_id(modules) -> the smallest module id (a digit string), or nil.
function M.org_id(modules)
  local best
  for _, m in ipairs(modules) do
    local id = type(m) == "table" and m.id
    if type(id) == "string" and id:match("^%d+$") and (not best or id_less(id, best)) then best = id end
  end
  return best
end

-- }====

-- {==== module values: before and after

local function by_name(a, b)
  if a.name ~= b.name then return tostring(a.name) < tostring(b.name) end
  return a.id < b.id
end

-- The values a change set records for a module: labels, and profiles with names.
local function values(plural, singular, ids, names)
  local profiles = {}
  for _, id in ipairs(ids) do profiles[#profiles + 1] = { id = id, name = names[id] } end
  table.sort(profiles, by_name)
  return { plural_label = plural, singular_label = singular, profiles = profiles }
end

local function after_of(c)
  local has = {}
  for _, id in ipairs(c.before.profiles) do has[id] = true end
  for _, p in ipairs(c.granted) do has[p.id] = true end
  for _, p in ipairs(c.revoked) do has[p.id] = nil end
  local ids = {}
  for id in pairs(has) do ids[#ids + 1] = id end
  return values(c.plural_label and c.plural_label.new or c.before.plural_label,
    c.singular_label and c.singular_label.new or c.before.singular_label, ids, c.names or {})
end

-- The module's values now, from a GET of the module, in the same shape.
local function current_values(m)
  local ids, names = {}, {}
  for _, p in ipairs(type(m.profiles) == "table" and m.profiles or {}) do
    if type(p) == "table" and p.id then
      ids[#ids + 1] = tostring(p.id)
      names[tostring(p.id)] = p.name
    end
  end
  return values(m.actual_plural_label or m.plural_label, m.actual_singular_label or m.singular_label, ids, names)
end

local function id_list(v)
  local ids = {}
  for _, p in ipairs(v.profiles) do ids[#ids + 1] = p.id end
  table.sort(ids)
  return table.concat(ids, ",")
end

-- The values `body` gives a module that has the values `v`.
local function body_result(v, body)
  local has, names = {}, {}
  for _, p in ipairs(v.profiles) do has[p.id], names[p.id] = true, p.name end
  for _, p in ipairs(type(body.profiles) == "table" and body.profiles or {}) do
    local id = tostring(p.id)
    has[id] = p._delete == nil or nil
  end
  local ids = {}
  for id in pairs(has) do ids[#ids + 1] = id end
  return values(body.plural_label or v.plural_label, body.singular_label or v.singular_label, ids, names)
end

-- nil when `now` still has the `before` values; else the first difference.
local function difference(before, now)
  for _, field in ipairs { "plural_label", "singular_label" } do
    if before[field] ~= now[field] then
      return string.format("%s is now %q (the plan saw %q)", field, tostring(now[field]), tostring(before[field]))
    end
  end
  if id_list(before) ~= id_list(now) then
    local names = {}
    for _, p in ipairs(now.profiles) do names[#names + 1] = p.name or p.id end
    return "its profiles are now " .. table.concat(names, ", ")
  end
  return nil
end

-- }====

-- {==== plan

local PLAN_OPTIONS = { args = "table", dir = "string", source = "string" }

local function check_options(opts, known, fn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fn .. ": opts must be a table", 3) end
  for k, v in pairs(opts) do
    local want = known[k]
    if not want then error(fn .. ": unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then error(string.format("%s: option '%s' must be a %s, got %s", fn, k, want, type(v)), 3) end
  end
  return opts
end

-- The checked plan against the live state (a dry run with diff): the report.
local function dry_run(client, plan, opts)
  local plan_mod = require "zcrm.plan"
  local apply = plan_mod.apply_plan or plan_mod.apply
  return apply(client, plan, { dry_run = true, diff = true, args = opts.args, dir = opts.dir })
end

--- plan(client, plan, opts) -> change set, or nil, err (an invalid plan is
-- INVALID_PLAN, as in apply). opts: args (ctx.args), dir, source (a note of
-- where the plan came from, kept in the change set).
function M.plan(client, plan, opts)
  opts = check_options(opts, PLAN_OPTIONS, "plan")
  local mods, merr = client:get_modules()
  if not mods then return nil, merr end
  local report, err = dry_run(client, plan, opts)
  if not report then return nil, err end
  local body_of = {}
  for _, w in ipairs(report.would_send) do body_of[w.index] = w.update end
  local changes = {}
  for _, c in ipairs(report.changes) do
    local names = c.names or {}
    changes[#changes + 1] = {
      module = c.module, id = c.id,
      before = values(c.before.plural_label, c.before.singular_label, c.before.profiles, names),
      after = after_of(c),
      body = body_of[c.index],
    }
  end
  return {
    format = FORMAT, version = VERSION, created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    api_domain = client.api_domain, org = M.org_id(mods), plan = opts.source,
    changes = changes,
  }
end

--- diff(client, plan, opts) -> { changes = report.changes, same = { API names },
-- total = n, differs = bool }, or nil, err.
function M.diff(client, plan, opts)
  opts = check_options(opts, { args = "table", dir = "string" }, "diff")
  local report, err = dry_run(client, plan, opts)
  if not report then return nil, err end
  local same = {}
  for _, s in ipairs(report.skipped) do
    if s.reason == "no change" then same[#same + 1] = s.module end
  end
  return { changes = report.changes, same = same, total = report.total, differs = #report.changes > 0 }
end

-- }====

-- {==== files

local function io_error(code, message)
  return core.error { kind = "io", code = code, message = message, retryable = false }
end

--- read(path) -> change set, or nil, err.
function M.read(path)
  local f, oerr = core.open_file(path, "r")
  if not f then return nil, io_error("CHANGES_FILE_ERROR", "cannot read change set: " .. tostring(oerr)) end
  local text = f:read("a")
  f:close()
  local t, err = M.decode(text or "")
  if not t then err.message = path .. ": " .. err.message end
  return t, err
end

--- write(path, changes) -> true, or nil, err.
function M.write(path, changes)
  -- mode 0600, written whole and renamed into place, never through a symlink
  local ok, err = core.write_private_file(path, M.encode(changes))
  if not ok then return nil, io_error("CHANGES_FILE_ERROR", "cannot write change set: " .. tostring(err)) end
  return true
end

--- is_changes(t) -> true when `t` is a change set (its format field says so).
function M.is_changes(t)
  return type(t) == "table" and t.format == FORMAT
end

-- JSON with keys in a fixed order (the ones listed first, the rest sorted),
-- so that a change set reads well and diffs well in review. lua-cjson writes
-- every leaf; "\/" is its escape of "/", which JSON does not need.
local ORDER = { "format", "version", "created", "api_domain", "org", "plan", "changes",
                "module", "id", "before", "after", "body", "plural_label", "singular_label", "profiles",
                "name", "_delete" }
local RANK = {}
for i, k in ipairs(ORDER) do RANK[k] = i end

local function ordered_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ra, rb = RANK[a] or math.huge, RANK[b] or math.huge
    if ra ~= rb then return ra < rb end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function encode_value(v)
  if type(v) ~= "table" or v == cjson.null then return assert(cjson.encode(v)) end
  local parts = {}
  if #v > 0 or next(v) == nil then
    for i = 1, #v do parts[i] = encode_value(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for _, k in ipairs(ordered_keys(v)) do
    parts[#parts + 1] = assert(cjson.encode(tostring(k))) .. ":" .. encode_value(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- encode(changes) -> JSON text: the header fields one per line, then each
-- change on its own lines (module and id, before, after, body).
function M.encode(changes)
  local head = {}
  for _, k in ipairs(ordered_keys(changes)) do
    if k ~= "changes" then head[#head + 1] = "  " .. assert(cjson.encode(k)) .. ": " .. encode_value(changes[k]) end
  end
  local items = {}
  for _, c in ipairs(changes.changes) do
    local lines = { string.format('    {"module": %s, "id": %s,', encode_value(c.module), encode_value(c.id)) }
    for _, part in ipairs { "before", "after", "body" } do
      lines[#lines + 1] = string.format('     %-9s %s%s', '"' .. part .. '":', encode_value(c[part]),
        part == "body" and "}" or ",")
    end
    items[#items + 1] = table.concat(lines, "\n")
  end
  head[#head + 1] = #items == 0 and '  "changes": []'
    or ('  "changes": [\n' .. table.concat(items, ",\n") .. "\n  ]")
  return (("{\n" .. table.concat(head, ",\n") .. "\n}\n"):gsub("\\/", "/"))
end

--- decode(text) -> change set, or nil, err (INVALID_CHANGES, naming the fault).
function M.decode(text)
  local t, jerr = cjson.decode(text)
  if type(t) ~= "table" then
    return nil, verror("INVALID_CHANGES", "a change set is a JSON object: " .. tostring(jerr or "got " .. type(t)))
  end
  return M.check(t)
end

local function bad(message, field)
  return nil, verror("INVALID_CHANGES", message, field)
end

--- check(t) -> t, or nil, err: the shape of a change set, and every body as
-- update_module checks it (no request is sent for a malformed change set).
function M.check(t)
  if t.format ~= FORMAT then return bad("not a zcrm change set (format is not \"zcrm.changes\")", "format") end
  if t.version ~= VERSION then return bad("change set version " .. tostring(t.version) .. " (this zcrm reads 1)", "version") end
  if type(t.api_domain) ~= "string" then return bad("the change set names no api_domain", "api_domain") end
  if type(t.org) ~= "string" then return bad("the change set names no org", "org") end
  if type(t.changes) ~= "table" then return bad("the change set has no list of changes", "changes") end
  local seen = {}
  for i, c in ipairs(t.changes) do
    local field = string.format("changes[%d]", i)
    if type(c) ~= "table" or type(c.id) ~= "string" or not c.id:match("^%d+$") or type(c.module) ~= "string" then
      return bad(field .. " needs a module (API name) and its id", field)
    end
    if seen[c.id] then return bad(field .. " repeats module " .. c.module, field) end
    seen[c.id] = true
    for _, part in ipairs { "before", "after" } do
      local v = c[part]
      if type(v) ~= "table" or type(v.profiles) ~= "table" then return bad(field .. "." .. part .. " is missing", field .. "." .. part) end
      for j, p in ipairs(v.profiles) do
        if type(p) ~= "table" or type(p.id) ~= "string" then
          return bad(string.format("%s.%s.profiles[%d] needs an id", field, part, j), field .. "." .. part)
        end
      end
    end
    if type(c.body) ~= "table" then return bad(field .. ".body is missing", field .. ".body") end
    local ok, verr = core.validate_update(c.body)
    if not ok then
      return nil, verror("INVALID_CHANGES", string.format("%s (%s): %s", field, c.module, tostring(verr)),
        field .. ".body", { error = verr })
    end
    -- What is reviewed (before -> after) must be what is sent (body).
    local why = difference(c.after, body_result(c.before, c.body))
    if why then
      return bad(string.format("%s (%s): its body does not turn before into after (%s)", field, c.module,
        why:gsub("the plan saw", "after says")), field .. ".body")
    end
  end
  return t
end

-- }====

-- {==== apply

local APPLY_OPTIONS = { on_result = "function", on_progress = "function", concurrency = "number" }

local function call_back(report, fn, ...)
  if not fn then return end
  local ok, err = pcall(fn, ...)
  if not ok then report.callback_errors[#report.callback_errors + 1] = tostring(err) end
end

local function fatal(err)
  return err.kind == "auth" or err.kind == "config" or err.code == "CREDIT_LIMIT"
end

--- apply_changes(client, changes, opts) -> report, or nil, err when nothing
-- was sent: a malformed change set, one made for another org
-- (ORG_MISMATCH), or a state read that failed. Each module is read again
-- right before its update; one that no longer has its `before` values is not
-- updated and is in report.refused with code CHANGED_SINCE_PLAN.
function M.apply(client, changes, opts)
  opts = check_options(opts, APPLY_OPTIONS, "apply")
  local t0, credits0 = core.now(), client:credits()
  local ok, cerr = M.check(changes)
  if not ok then return nil, cerr end
  if changes.api_domain ~= client.api_domain then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for %s, not %s",
      changes.api_domain, client.api_domain), "api_domain",
      { planned = changes.api_domain, target = client.api_domain })
  end
  local mods, merr = client:get_modules()
  if not mods then return nil, merr end
  local org = M.org_id(mods)
  if org ~= changes.org then
    return nil, verror("ORG_MISMATCH", string.format("the change set was made for org %s; %s serves org %s",
      changes.org, client.api_domain, tostring(org)), "org", { planned = changes.org, target = org })
  end

  local report = { total = #changes.changes, applied = {}, refused = {}, failed = {}, not_sent = {},
                   callback_errors = {} }
  local list, window = changes.changes, math.min(opts.concurrency or client.concurrency, client.concurrency)
  local next_i, in_flight, done, completed = 1, 0, 0, {}
  local function finished(c, res, err, refused)
    in_flight, done = in_flight - 1, done + 1
    if res then
      report.applied[#report.applied + 1] = { module = c.module, id = c.id, code = res.code }
    elseif refused then
      report.refused[#report.refused + 1] = { module = c.module, id = c.id, error = err }
    else
      report.failed[#report.failed + 1] = { module = c.module, id = c.id, error = err }
      if fatal(err) then report.aborted = report.aborted or err end
    end
    call_back(report, opts.on_result, c, res, err)
    call_back(report, opts.on_progress, done, report.total)
  end
  call_back(report, opts.on_progress, 0, report.total)
  while done < report.total do
    while not report.aborted and in_flight < window and next_i <= #list do
      local c = list[next_i]
      next_i, in_flight = next_i + 1, in_flight + 1
      client:submit("get_module", c.id):on_done(function(m, err)
        completed[#completed + 1] = { c, "read", m, err }
      end)
    end
    if in_flight == 0 then break end
    client:poll(0.05)
    local batch = completed
    completed = {}
    for _, e in ipairs(batch) do
      local c, stage, res, err = e[1], e[2], e[3], e[4]
      if stage == "sent" then
        finished(c, res, err)
      elseif not res then
        finished(c, nil, err)
      else
        local why = res.api_name ~= c.module and string.format("id %s is now module %s", c.id, tostring(res.api_name))
          or difference(c.before, current_values(res))
        if why then
          finished(c, nil, verror("CHANGED_SINCE_PLAN", string.format("%s changed since the plan: %s; not updated",
            c.module, why), nil, { module = c.module, id = c.id }), true)
        else
          client:submit("update_module", c.id, c.body):on_done(function(r, uerr)
            completed[#completed + 1] = { c, "sent", r, uerr }
          end)
        end
      end
    end
  end
  for i = next_i, #list do report.not_sent[#report.not_sent + 1] = { module = list[i].module, id = list[i].id } end
  local spent, remaining = client:credits()
  report.credits, report.credits_remaining = spent - credits0, remaining
  report.elapsed = core.now() - t0
  report.ok = #report.refused == 0 and #report.failed == 0 and #report.not_sent == 0
  return report
end

-- }====

return M
