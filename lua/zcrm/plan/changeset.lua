--- The change set as data: the values a change reads and writes (before,
-- after, the body sent), and the file format (encode, decode, check, read,
-- write). `zcrm.plan.changes` makes, diffs and applies change sets with them.
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

M.values, M.after_of, M.current_values, M.difference = values, after_of, current_values, difference

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

return M
