--- The change set as data: the values a change reads and writes (before,
-- after, the body sent), and the file format (encode, decode, check, read,
-- write). `zcrm.plan.changeset_apply` makes, diffs and applies change sets with them.
-- @module zcrm.plan.changeset

local cjson = require "cjson.safe"
local core = require "zcrm.core"

local M = {}

local FORMAT, VERSION = "zcrm.changes", 1

M.FORMAT, M.VERSION = FORMAT, VERSION

local function verror(code, message, field, details)
  local e = core.error { kind = "validation", code = code, message = message, field = field, details = details }
  e.status = nil
  return e
end

M.verror = verror

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

-- The values `body` (checked by `check_body`: profiles by id, `_delete`
-- absent for a grant or null for a revoke) gives a module that has the values `v`.
local function body_result(v, body, names_after)
  local has, names = {}, {}
  for _, p in ipairs(v.profiles) do has[p.id], names[p.id] = true, p.name end
  for _, p in ipairs(names_after or {}) do names[p.id] = names[p.id] or p.name end
  for _, p in ipairs(type(body.profiles) == "table" and body.profiles or {}) do
    has[p.id] = p._delete == nil or nil
  end
  local ids = {}
  for id in pairs(has) do ids[#ids + 1] = id end
  return values(body.plural_label or v.plural_label, body.singular_label or v.singular_label, ids, names)
end

--- effect(c) -> what change `c` does, drawn from the body it sends (never from
-- its `after`): { module =, id =, plural_label = { old =, new = } when it
-- changes, singular_label likewise, granted = { {id=, name=} }, revoked = {...} },
-- the shape `zcrm.cli.term`'s print_changes shows. Names come from before and
-- after, which apply checks against the org.
function M.effect(c)
  local had, name = {}, {}
  for _, p in ipairs(c.before.profiles) do had[p.id], name[p.id] = true, p.name end
  for _, p in ipairs(c.after.profiles) do name[p.id] = name[p.id] or p.name end
  local d = { module = c.module, id = c.id, granted = {}, revoked = {}, profiles_left = #c.after.profiles }
  for _, field in ipairs { "plural_label", "singular_label" } do
    local new = c.body[field]
    if new ~= nil and new ~= c.before[field] then d[field] = { old = c.before[field], new = new } end
  end
  for _, p in ipairs(type(c.body.profiles) == "table" and c.body.profiles or {}) do
    if p._delete == nil and not had[p.id] then
      d.granted[#d.granted + 1] = { id = p.id, name = name[p.id] }
    elseif p._delete ~= nil and had[p.id] then
      d.revoked[#d.revoked + 1] = { id = p.id, name = name[p.id] }
    end
  end
  return d
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

M.values, M.after_of, M.current_values, M.difference = values, after_of, current_values, difference
M.body_result = body_result

-- {==== files

local function io_error(code, message)
  return core.error { kind = "io", code = code, message = message, retryable = false }
end

--- read(path) -> change set, or nil, err.
function M.read(path)
  local f, oerr = core.open_file(path, "r")
  if not f then
    return nil, io_error("CHANGES_FILE_ERROR", "cannot read change set: " .. (oerr.message or tostring(oerr)))
  end
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
local ORDER = { "format", "version", "created", "zcrm_version", "api_domain", "org", "plan", "args", "plan_hash",
                "label_rules",
                "changes",
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

-- The error names its field (tostring shows "field: message"), so a message
-- that starts with the field says it once.
local function bad(message, field)
  if field and message:sub(1, #field + 1) == field .. ":" then message = message:sub(#field + 3) end
  return nil, verror("INVALID_CHANGES", message, field)
end

-- The keys each part of a change set may hold: anything else is refused, so
-- nothing in the file goes unshown.
local KEYS = {
  top = { format = true, version = true, created = true, api_domain = true, org = true, plan = true,
          args = true, plan_hash = true, zcrm_version = true, label_rules = true, changes = true },
  change = { module = true, id = true, before = true, after = true, body = true },
  values = { plural_label = true, singular_label = true, profiles = true },
  profile = { id = true, name = true },
  sent = { id = true, _delete = true },
}

local function unknown_key(t, known)
  for k in pairs(t) do
    if not known[k] then return tostring(k) end
  end
end

-- A JSON array as lua-cjson reads it: a table whose keys are exactly 1..n (an
-- object read as a list would hide its entries from every check and from the review).
local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local function is_id(v) return type(v) == "string" and v:match("^[1-9]%d*$") ~= nil and #v <= 19 end

-- Text a person reads in the header: one line, no control characters.
local function plain_text(v) return type(v) == "string" and not v:find("[%c\127]") end

-- The header fields that say how the set was made (zcrm plan writes them;
-- older sets lack the last four). Each is checked, as it is printed.
local function check_header(t)
  if type(t.created) ~= "string" or not t.created:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$") then
    return bad("created must be a UTC time such as 2026-12-07T10:00:00Z", "created")
  end
  if t.plan ~= nil and (not plain_text(t.plan) or #t.plan == 0 or #t.plan > 4096) then
    return bad("plan must be the path of the plan file, on one line", "plan")
  end
  if t.args ~= nil then
    if not is_list(t.args) then return bad("args must be a list of strings", "args") end
    for i, a in ipairs(t.args) do
      if type(a) ~= "string" then return bad(string.format("args[%d] must be a string", i), "args") end
    end
  end
  if t.plan_hash ~= nil and (type(t.plan_hash) ~= "string" or not t.plan_hash:match("^fnv1a64:%x+$")) then
    return bad("plan_hash must be fnv1a64: and hex digits", "plan_hash")
  end
  if t.label_rules ~= nil and t.label_rules ~= "reference" and t.label_rules ~= "openapi" then
    return bad('label_rules must be "reference" or "openapi"', "label_rules")
  end
  if t.zcrm_version ~= nil and (not plain_text(t.zcrm_version) or #t.zcrm_version > 64) then
    return bad("zcrm_version must be one line of text", "zcrm_version")
  end
  return true
end

-- A body as a change set may hold it: what `zcrm apply` shows is computed
-- from it, so only what can be shown exactly is accepted: profiles by id,
-- `_delete` absent (grant) or null (revoke). Then every rule of an update
-- (core.prepare_update, the code that builds the request).
local function check_body(body, field, rules)
  if type(body) ~= "table" then return bad(field .. " is missing", field) end
  if type(body.profiles) == "table" then
    for j, p in ipairs(body.profiles) do
      local pf = string.format("%s.profiles[%d]", field, j)
      if type(p) ~= "table" then return bad(pf .. " must be an object", pf) end
      local k = unknown_key(p, KEYS.sent)
      if k then return bad(string.format("%s: %s is not allowed in a change set (a profile is given by id)", pf, k), pf) end
      if not is_id(p.id) then return bad(pf .. ".id must be a profile id (a digit string)", pf) end
      if p._delete ~= nil and p._delete ~= cjson.null then
        return bad(pf .. "._delete must be null (a revoke) or absent (a grant)", pf)
      end
    end
  end
  local ok, verr = core.prepare_update(body, rules)
  if not ok then return nil, verr end
  return true
end

--- check(t) -> t, or nil, err: the shape of a change set, and every body as
-- update_module checks it (no request is sent for a malformed change set).
-- Anything it cannot show exactly is refused (INVALID_CHANGES).
function M.check(t)
  if type(t) ~= "table" then return bad("a change set is a JSON object", nil) end
  if t.format ~= FORMAT then return bad("not a zcrm change set (format is not \"zcrm.changes\")", "format") end
  if t.version ~= VERSION then return bad("change set version " .. tostring(t.version) .. " (this zcrm reads 1)", "version") end
  local k = unknown_key(t, KEYS.top)
  if k then return bad(string.format("unknown field %q in the change set", k), k) end
  if type(t.api_domain) ~= "string" or not plain_text(t.api_domain) then
    return bad("the change set names no api_domain", "api_domain")
  end
  if not is_id(t.org) then return bad("the change set names no org (a module id)", "org") end
  local hok, herr = check_header(t)
  if not hok then return nil, herr end
  if type(t.changes) ~= "table" then return bad("the change set has no list of changes", "changes") end
  if not is_list(t.changes) then return bad("changes must be a list (a JSON array), not an object", "changes") end
  local seen = {}
  for i, c in ipairs(t.changes) do
    local field = string.format("changes[%d]", i)
    if type(c) ~= "table" or not is_id(c.id) or not plain_text(c.module) then
      return bad(field .. " needs a module (API name) and its id", field)
    end
    k = unknown_key(c, KEYS.change)
    if k then return bad(string.format("%s (%s): unknown field %q", field, c.module, k), field) end
    if seen[c.id] then return bad(string.format("%s repeats module id %s (%s)", field, c.id, seen[c.id]), field) end
    seen[c.id] = c.module
    for _, part in ipairs { "before", "after" } do
      local v, pf = c[part], field .. "." .. part
      if type(v) ~= "table" or type(v.profiles) ~= "table" then return bad(pf .. " is missing", pf) end
      if not is_list(v.profiles) then return bad(pf .. ".profiles must be a list (a JSON array), not an object", pf) end
      k = unknown_key(v, KEYS.values)
      if k then return bad(string.format("%s: unknown field %q", pf, k), pf) end
      for _, label in ipairs { "plural_label", "singular_label" } do
        if type(v[label]) ~= "string" then return bad(string.format("%s.%s must be a string", pf, label), pf) end
      end
      local ids = {}
      for j, p in ipairs(v.profiles) do
        local ppf = string.format("%s.profiles[%d]", pf, j)
        if type(p) ~= "table" or not is_id(p.id) then return bad(ppf .. " needs an id", ppf) end
        k = unknown_key(p, KEYS.profile)
        if k then return bad(string.format("%s: unknown field %q", ppf, k), ppf) end
        if p.name ~= nil and type(p.name) ~= "string" then return bad(ppf .. ".name must be a string", ppf) end
        if ids[p.id] then return bad(ppf .. " repeats profile " .. p.id, ppf) end
        ids[p.id] = true
      end
    end
    local ok, verr = check_body(c.body, field .. ".body", t.label_rules)
    if not ok then
      if verr.code == "INVALID_CHANGES" then return nil, verr end
      return nil, verror("INVALID_CHANGES", string.format("%s (%s): %s", field, c.module, tostring(verr)),
        field .. ".body", { error = verr })
    end
    -- What is reviewed (before -> after) must be what is sent (body).
    local why = difference(c.after, body_result(c.before, c.body, c.after.profiles))
    if why then
      return bad(string.format("%s (%s): its body does not turn before into after (%s)", field, c.module,
        why:gsub("the plan saw", "after says")), field .. ".body")
    end
  end
  return t
end

-- }====

return M
