--- The settings endpoints: modules and profiles (Zoho's "Modules", "Specific
-- Module", "Update Custom Module" and "Profiles" pages). Each
-- function here is an operation: it runs inside the engine's coroutine, and the
-- client exposes it both as a blocking method and through `submit`.
-- @module zcrm.modules

local core = require "zcrm.core"
local http = require "zcrm.http"
local util = require "zcrm.util"

local M = {}

local PROFILES_EVENT = "zcrm.profiles"

-- An id from a server answer (reference §1: a string of 1-19 digits): a
-- digit string as it is, or a JSON number that is an exact integer (lua-cjson
-- decodes numbers as floats, exact below 2^53) as its digits. Anything else
-- is nil: never a rounded id, and never text that ends up in a file zcrm
-- writes (an undo plan is Lua code).
local function server_id(v)
  if type(v) == "string" then
    if #v <= 19 and v:match("^%d+$") then return v end
  elseif type(v) == "number" then
    local i = math.tointeger(v)
    if i and i > 0 and i < 2 ^ 53 then return string.format("%d", i) end
  end
  return nil
end

-- Checks and mends the ids of a list (modules or profiles, with a module's
-- profiles): ids are kept as strings, since they are 64-bit integers, which
-- JSON numbers and doubles cannot all hold. nil, reason for one that is not
-- an id.
local function normalise_ids(list)
  local function fix(t, what, i)
    if type(t) ~= "table" or t.id == nil then return true end
    local id = server_id(t.id)
    if not id then
      return nil, string.format("%s %d has an id that is not a string of digits or an exact integer", what, i)
    end
    t.id = id
    return true
  end
  for i, item in ipairs(list) do
    local ok, why = fix(item, "item", i)
    if not ok then return nil, why end
    if type(item) == "table" and type(item.profiles) == "table" then
      for j, p in ipairs(item.profiles) do
        ok, why = fix(p, string.format("item %d's profile", i), j)
        if not ok then return nil, why end
      end
    end
  end
  return list
end

--- list_of(doc, key, status) -> doc[key], a list whose ids are checked
-- digit strings, or nil, UNEXPECTED_RESPONSE. The reader of every list answer.
local function list_of(doc, key, status)
  local list = doc[key]
  if type(list) ~= "table" then
    return nil, http.unexpected(status, "no '" .. key .. "' array in the body")
  end
  local ok, why = normalise_ids(list)
  if not ok then return nil, http.unexpected(status, why) end
  return list
end

M.list_of = list_of

-- {==== profiles

local function fetch_profiles(client)
  local all, page = {}, 1
  while true do
    local status, doc = http.call(client, "GET", "settings/profiles",
      { query = page > 1 and { page = page } or nil, key = "profiles", cost = client.credit_costs.read })
    if not status then return nil, doc end
    if status == 204 then break end
    local list, err = list_of(doc, "profiles", status)
    if not list then return nil, err end
    for _, p in ipairs(list) do all[#all + 1] = p end
    local info = doc.info
    if not (type(info) == "table" and info.more_records == true) then break end
    page = page + 1
  end
  return all
end

--- get_profiles(): every profile of the org, ids as strings.
M.get_profiles = fetch_profiles

-- The profile list, read once per client: an engine task reads it, and every
-- call that needs it waits for that one read (single flight).
local function keep_profiles(client, list, err)
  if list then client._profiles = list end
  return list, err
end

local function cached_profiles(client)
  if client._profiles then return client._profiles end
  return client._engine:single_flight(PROFILES_EVENT, "profiles read", fetch_profiles, keep_profiles)
end

local function profile_fault(i, message, key, value)
  return core.error {
    kind = "validation", code = "INVALID_DATA", field = string.format("profiles[%d]%s", i, key and "." .. key or ""),
    message = message,
    details = key and { api_name = key, json_path = string.format("$.modules[0].profiles[%d].%s", i - 1, key),
                        [key] = value } or nil,
  }
end

--- by_name(profiles) -> { [name] = id, or "ambiguous" when two share it }.
function M.by_name(profiles, into)
  local map = into or {}
  for _, p in ipairs(profiles) do
    if type(p) == "table" and type(p.name) == "string" and p.id then
      map[p.name] = map[p.name] and "ambiguous" or p.id
    end
  end
  return map
end

--- resolve_profiles(list, by_name, known_ids) -> a copy of `list` (a checked
-- update's profiles) with every `{ name = }` replaced by its id, or nil, err.
-- Unknown or ambiguous names, and an id given twice, are errors; with
-- `known_ids` (id -> anything), so is an id that is not in it. The one
-- resolver: the engine's updates and plans with state both use it.
function M.resolve_profiles(list, by_name, known_ids)
  local resolved, seen = {}, {}
  for i, p in ipairs(list) do
    local id = p.id
    if id == nil then
      id = by_name[p.name]
      if id == nil then
        return nil, profile_fault(i, string.format("no profile named '%s' in this org", p.name), "name", p.name)
      elseif id == "ambiguous" then
        return nil, profile_fault(i, string.format("more than one profile is named '%s'; use its id", p.name),
          "name", p.name)
      end
    elseif known_ids and not known_ids[id] then
      return nil, profile_fault(i, string.format("no profile with id %s in this org", id), "id", id)
    end
    if seen[id] then
      return nil, profile_fault(i, string.format("profile %s is given twice", id))
    end
    seen[id] = true
    resolved[i] = { id = id, _delete = p._delete }
  end
  return resolved
end

--- resolve_update(update, by_name, known_ids) -> `update` with its profiles
-- resolved (a copy when it has any), or nil, err; see `resolve_profiles`.
function M.resolve_update(update, by_name, known_ids)
  if not update.profiles then return update end
  local list, err = M.resolve_profiles(update.profiles, by_name, known_ids)
  if not list then return nil, err end
  local copy = util.copy(update)
  copy.profiles = list
  return copy
end

local function has_names(list)
  for _, p in ipairs(list or {}) do
    if p.name then return true end
  end
  return false
end

-- Replaces `{ name = ... }` entries by ids, reading the profile list once per client.
local function resolve_names(client, clean)
  if not has_names(clean.profiles) then return clean end
  local profiles, err = cached_profiles(client)
  if not profiles then return nil, err end
  return M.resolve_update(clean, M.by_name(profiles))
end

-- }====

-- {==== modules

--- send_update(segment, clean) -> as update_module. The internal operation
-- behind it: `segment` and `clean` have passed core.check_module and
-- core.prepare_update already (a plan checks every entry before sending), so
-- they are not checked again; profile names left in `clean` are resolved.
function M.send_update(client, segment, clean)
  local verr
  clean, verr = resolve_names(client, clean)
  if not clean then return nil, verr end
  local status, doc = http.call(client, "PUT", "settings/modules/" .. segment,
    { body = { modules = { clean } }, key = "modules", cost = client.credit_costs.update_module })
  if not status then return nil, doc end
  local item = type(doc) == "table" and type(doc.modules) == "table" and doc.modules[1]
  if type(item) ~= "table" or type(item.code) ~= "string" then
    return nil, http.unexpected(status, "no result item under 'modules'")
  end
  if item.status ~= "success" then
    return nil, http.api_error(client, status, doc, nil, "modules")
  end
  local details = type(item.details) == "table" and item.details or {}
  local id = details.id
  if id ~= nil then
    id = server_id(id)
    if not id then return nil, http.unexpected(status, "the result's details.id is not an id") end
  end
  details = client:_redact_value(details)
  details.id = id
  return {
    id = id, code = item.code, message = item.message,
    status = item.status, details = details,
  }
end

--- update_module(module, update) -> { id, code, message, status, details } or nil, err.
-- Validates locally first: an invalid update or module sends nothing.
function M.update_module(client, module, update)
  local segment, merr = core.check_module(module)
  if not segment then return nil, merr end
  local clean, verr = core.prepare_update(update)
  if not clean then return nil, verr end
  return M.send_update(client, segment, clean)
end

local function http_date(t)
  if type(t) == "number" then return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
  return t
end

--- get_modules{ status =, if_modified_since = } -> list of modules. When nothing
-- changed since `if_modified_since` (HTTP 304), an empty list with
-- `not_modified = true`.
function M.get_modules(client, opts)
  opts = opts or {}
  local headers
  if opts.if_modified_since then
    headers = { "If-Modified-Since: " .. http_date(opts.if_modified_since) }
  end
  local status, doc = http.call(client, "GET", "settings/modules", {
    query = opts.status and { status = opts.status } or nil, headers = headers, conditional = headers ~= nil,
    key = "modules", cost = client.credit_costs.read,
  })
  if not status then return nil, doc end
  if status == 304 then return { not_modified = true } end
  if status == 204 then return {} end
  return list_of(doc, "modules", status)
end

--- get_module(id_or_api_name) -> the module's full metadata.
function M.get_module(client, module)
  local segment, merr = core.check_module(module)
  if not segment then return nil, merr end
  local status, doc = http.call(client, "GET", "settings/modules/" .. segment,
    { key = "modules", cost = client.credit_costs.read })
  if not status then return nil, doc end
  if status == 204 then
    return nil, core.error { kind = "api", code = "NOT_SUPPORTED", status = 204,
      message = "the module exists but this endpoint does not expose it (HTTP 204)" }
  end
  local list, err = list_of(doc, "modules", status)
  if not list then return nil, err end
  if type(list[1]) ~= "table" then return nil, http.unexpected(status, "empty 'modules' array") end
  return list[1]
end

-- }====

--- request(method, path, opts) -> status, doc, headers, or nil, err: any CRM
-- call (`path` after /crm/{version}/) with zcrm's auth, retries and error
-- reading. opts: query, body (Lua table), key, cost (default 1), headers.
function M.request(client, method, path, opts)
  if type(method) ~= "string" or not method:match("^%u+$") then
    error("zcrm: request: method must be an upper-case HTTP method such as \"GET\"", 0)
  end
  if type(path) ~= "string" or path:find("[%c%s?#]") or path:find("%.%.") then
    return nil, core.error { kind = "validation", code = "INVALID_URL_PATTERN",
      message = "request: path must be a plain path such as 'settings/modules'" }
  end
  local o = util.copy(opts)
  o.cost = o.cost or client.credit_costs.read
  return http.call(client, method, (path:gsub("^/", "")), o)
end


return M
