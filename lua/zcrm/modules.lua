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

-- A fault found here, before any request: Zoho's code for the same fault, no
-- HTTP status (nothing was sent), never retryable.
local function local_error(code, message, field, details)
  local e = core.error { kind = "validation", code = code, message = message, field = field,
                         details = details, retryable = false }
  e.status = nil
  return e
end

-- {==== every page

-- A bound on pages, so that a server that always says more_records cannot keep
-- a read going for ever: 1,000 pages of 200 is far past Zoho's limits (600
-- modules, 200 profiles per licence).
local MAX_PAGES = 1000

-- GETs `path` page by page while `info.more_records` is true, and returns every
-- item under `key`. The first request is the plain one (with `opts.query` and
-- `opts.headers`); later ones add `page` and the `per_page` the server reported.
-- One page at a time: each page needs the answer of the one before, so a read
-- holds one slot of the concurrency cap.
-- Returns the list, `{ not_modified = true }` for a 304, or nil, err.
local function fetch_pages(client, path, key, opts)
  local all, page, per_page = {}, 1, nil
  while true do
    local query = {}
    for k, v in pairs(opts.query or {}) do query[k] = v end
    if page > 1 then
      query.page = tostring(page)
      query.per_page = per_page and tostring(per_page) or nil
    end
    local first = page == 1
    local status, doc = http.call(client, "GET", path, {
      query = next(query) and query or nil, headers = first and opts.headers or nil,
      conditional = first and opts.headers ~= nil, key = key, cost = client.credit_costs.read,
    })
    if not status then return nil, doc end
    if status == 304 then return { not_modified = true } end
    if status == 204 then break end
    local list, err = list_of(doc, key, status)
    if not list then return nil, err end
    for _, item in ipairs(list) do all[#all + 1] = item end
    local info = doc.info
    if not (type(info) == "table" and info.more_records == true) or #list == 0 then break end
    if page >= MAX_PAGES then
      return nil, http.unexpected(status, string.format("more_records still true after %d pages", MAX_PAGES))
    end
    page = page + 1
    if math.type(info.per_page) == "integer" and info.per_page > 0 then per_page = info.per_page end
  end
  return all
end

-- }====

-- {==== profiles

local function fetch_profiles(client)
  return fetch_pages(client, "settings/profiles", "profiles", {})
end

--- get_profiles(): every profile of the org, every page of it, ids as strings.
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

-- {==== modules: one update, one create

-- One item of a `modules` answer: the result, or the item's error.
local function item_result(client, status, item)
  if type(item) ~= "table" or type(item.code) ~= "string" or item.code == "" then
    return nil, http.unexpected(status, "no result item under 'modules'")
  end
  if item.status ~= "success" then
    return nil, http.api_error(client, status, { modules = { item } }, nil, "modules")
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

local function first_item(client, status, doc)
  local list = type(doc) == "table" and doc.modules
  return item_result(client, status, type(list) == "table" and list[1] or nil)
end

-- Checks a module and an update as update_module does; returns the path
-- segment and the clean update, or nil, err. Profile names stay for send_update.
local function prepare_one(module, update)
  local segment, merr = core.check_module(module)
  if not segment then return nil, merr end
  local clean, verr = core.prepare_update(update)
  if not clean then return nil, verr end
  return segment, clean
end

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
  return first_item(client, status, doc)
end

--- update_module(module, update) -> { id, code, message, status, details } or nil, err.
-- Validates locally first: an invalid update or module sends nothing.
function M.update_module(client, module, update)
  local segment, clean = prepare_one(module, update)
  if not segment then return nil, clean end
  return M.send_update(client, segment, clean)
end

local CREATE_KEYS = { "plural_label", "singular_label", "profiles" }

--- check_create(spec) -> the clean body item, or nil, err: create_module's
-- local checks (no network). Those of an update (core.prepare_update), and: the
-- three keys are mandatory ("Create Custom Module"), profiles are grants only (`_delete`
-- is refused), and `api_name` is refused (Zoho makes it from plural_label).
function M.check_create(spec)
  if type(spec) ~= "table" then
    return nil, local_error("INVALID_DATA", "create_module expects a table { plural_label =, singular_label =, "
      .. "profiles = }, got " .. (spec == nil and "nothing" or type(spec)))
  end
  if rawget(spec, "api_name") ~= nil then
    return nil, local_error("INVALID_DATA", "create_module takes plural_label, singular_label and profiles; "
      .. "Zoho makes the API name from plural_label", "api_name",
      { api_name = "api_name", json_path = "$.modules[0].api_name" })
  end
  local clean, verr = core.prepare_update(spec)
  if not clean then return nil, verr end
  for _, k in ipairs(CREATE_KEYS) do
    if clean[k] == nil then
      return nil, local_error("MANDATORY_NOT_FOUND", k .. " is required to create a module", k,
        { api_name = k, json_path = "$.modules[0]." .. k })
    end
  end
  for i, p in ipairs(clean.profiles) do
    if p._delete ~= nil then
      return nil, local_error("INVALID_DATA", string.format(
        "profiles[%d] has _delete; a new module's profiles are grants only", i),
        string.format("profiles[%d]._delete", i),
        { api_name = "_delete", json_path = string.format("$.modules[0].profiles[%d]._delete", i - 1) })
    end
  end
  return clean
end

--- create_module{ plural_label =, singular_label =, profiles = } -> { id, code,
-- message, status, details } or nil, err. POST /settings/modules ("Create
-- Custom Module"), checked first by check_create; profile names become ids. Costs
-- `credit_costs.create_module` (500). A POST is never repeated once it may have
-- reached Zoho.
function M.create_module(client, spec)
  local clean, verr = M.check_create(spec)
  if not clean then return nil, verr end
  clean, verr = resolve_names(client, clean)
  if not clean then return nil, verr end
  local status, doc = http.call(client, "POST", "settings/modules",
    { body = { modules = { clean } }, key = "modules", cost = client.credit_costs.create_module })
  if not status then return nil, doc end
  return first_item(client, status, doc)
end

-- }====

-- {==== modules: batch update

-- Zoho's ceiling per batch call (the OpenAPI file for modules: 1 to 100 items).
M.BATCH_MAX = 100

-- Runs `fns` (functions of the client) at once as engine tasks, each as its own
-- coroutine so that their transfers share the concurrency cap, and returns when
-- all have returned. Called from inside an operation.
local function run_all(client, fns)
  if #fns == 1 then return fns[1](client) end
  local left, event = #fns, {}
  for _, fn in ipairs(fns) do
    client._engine:spawn("update_modules part", function(c)
      local ok, err = pcall(fn, c)
      if not ok then c:_log("error", "update_modules: " .. c:_redact(tostring(err))) end
      left = left - 1
      if left == 0 then c._engine:signal(event) end
    end)
  end
  -- The tasks start only after this yield, so the signal cannot come first.
  coroutine.yield("wait", event)
end

-- Answers that mean "this server has no batch endpoint": the documented wrong
-- URL and wrong method answers ("Update Custom Module"), and 404/405 of any kind.
local function batch_refused(err)
  return err.code == "INVALID_URL_PATTERN" or err.code == "INVALID_REQUEST_METHOD"
      or err.status == 404 or err.status == 405
end

local function note_refusal(client, err)
  if client.batch_fallback then return end
  client.batch_fallback = err
  client:_log("warn", string.format("the server refused the batch endpoint PUT settings/modules (%s); "
    .. "sending one module per call from now on", tostring(err)))
end

-- Sends each entry of `part` alone (PUT settings/modules/{id}), all at once.
local function send_singly(client, part, results)
  local fns = {}
  for _, e in ipairs(part) do
    fns[#fns + 1] = function(c)
      local res, err = M.send_update(c, e.segment, e.clean)
      results[e.index] = res or err
    end
  end
  run_all(client, fns)
end

-- One batch call for at most BATCH_MAX entries; every entry gets its result.
local function send_batch(client, part, results)
  if client.batch_fallback then return send_singly(client, part, results) end
  local items = {}
  for i, e in ipairs(part) do
    local item = { id = e.segment }
    for k, v in pairs(e.clean) do item[k] = v end
    items[i] = item
  end
  local status, doc = http.call(client, "PUT", "settings/modules", {
    body = { modules = items }, key = "modules", item_errors = true,
    cost = client.credit_costs.update_module * #part,
  })
  if not status then
    if batch_refused(doc) then
      note_refusal(client, doc)
      return send_singly(client, part, results)
    end
    for _, e in ipairs(part) do results[e.index] = doc end
    return
  end
  -- 200, 207 and 400: one item per entry, in the order sent.
  local list = type(doc) == "table" and doc.modules
  if type(list) ~= "table" then list = {} end
  for i, e in ipairs(part) do
    local item = list[i]
    if item == nil then
      results[e.index] = http.unexpected(status, string.format(
        "the answer has %d result items for %d modules sent; the outcome of module %s is unknown",
        #list, #part, e.segment))
    else
      local res, err = item_result(client, status, item)
      results[e.index] = res or err
    end
  end
end

-- API names to ids, from one read of the module list (only when a name is
-- given), and profile names to ids. An entry that cannot be resolved gets its
-- error and loses its segment.
local function resolve_entries(client, entries, results)
  local by_name
  for _, e in ipairs(entries) do
    if not e.segment:match("^%d+$") then
      if not by_name then
        local mods, err = M.get_modules(client)
        if not mods then return nil, err end
        by_name = {}
        for _, m in ipairs(mods) do
          if type(m) == "table" and type(m.api_name) == "string" then by_name[m.api_name] = m.id end
        end
      end
      local id = by_name[e.segment]
      if id then
        e.segment = id
      else
        results[e.index] = local_error("INVALID_MODULE", string.format("no module has the API name '%s'",
          e.segment), "module", { resource_path_index = 2 })
        e.segment = nil
      end
    end
    if e.segment then
      local clean, err = resolve_names(client, e.clean)
      if clean then e.clean = clean else results[e.index], e.segment = err, nil end
    end
  end
  return true
end

-- Sends checked entries `{ index =, segment =, clean = }` in batches; every
-- entry's result or error lands in results[index].
local function send_checked(client, entries, results)
  local ok, err = resolve_entries(client, entries, results)
  if not ok then
    for _, e in ipairs(entries) do results[e.index] = err end
    return results
  end
  local parts, part = {}, nil
  for _, e in ipairs(entries) do
    if e.segment then
      if not part or #part == M.BATCH_MAX then part = {}; parts[#parts + 1] = part end
      part[#part + 1] = e
    end
  end
  local fns = {}
  for _, p in ipairs(parts) do
    fns[#fns + 1] = function(c) send_batch(c, p, results) end
  end
  if #fns > 0 then run_all(client, fns) end
  for _, e in ipairs(entries) do
    if results[e.index] == nil then
      results[e.index] = core.error { kind = "internal", code = "INTERNAL_CLIENT_ERROR",
                                      message = "update_modules: no result for entry " .. e.index }
    end
  end
  results.fallback = client.batch_fallback
  return results
end

--- send_updates(list) -> results: the internal operation behind update_modules
-- for entries that passed core.check_module and core.prepare_update already
-- (a plan's): `list[i]` is `{ segment, clean }`, `results[i]` its result or error.
function M.send_updates(client, list)
  local entries = {}
  for i, e in ipairs(list) do entries[i] = { index = i, segment = e[1], clean = e[2] } end
  return send_checked(client, entries, {})
end

--- update_modules(list) -> results. `list` holds entries `{ module = id or API
-- name, plural_label =, singular_label =, profiles = }` (plan entries). Each is
-- checked as update_module checks it; API names become ids (one GET of the module
-- list); the valid entries go to PUT settings/modules, at most BATCH_MAX per call,
-- the calls at once within the concurrency cap. `results[i]` is entry i's result
-- (as update_module's) or its error object; `results.fallback` is set when the
-- server refused the batch endpoint and the entries went one per call (then for
-- every later call of this client too).
function M.update_modules(client, list)
  if type(list) ~= "table" then
    error("zcrm: update_modules expects a list of { module =, ... } entries", 0)
  end
  local results, entries = {}, {}
  for i = 1, #list do
    local entry = list[i]
    if type(entry) ~= "table" then
      results[i] = local_error("INVALID_DATA", string.format("entry %d must be a table, got %s", i, type(entry)))
    else
      local update = {}
      for k, v in pairs(entry) do
        if k ~= "module" then update[k] = v end
      end
      local segment, clean = prepare_one(rawget(entry, "module"), update)
      if segment then
        entries[#entries + 1] = { index = i, segment = segment, clean = clean }
      else
        results[i] = clean
      end
    end
  end
  return send_checked(client, entries, results)
end

-- }====

local function http_date(t)
  if type(t) == "number" then return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
  return t
end

--- get_modules{ status =, if_modified_since = } -> list of modules, every page
-- of it. When nothing changed since `if_modified_since` (HTTP 304), an empty list
-- with `not_modified = true`.
function M.get_modules(client, opts)
  opts = opts or {}
  local headers
  if opts.if_modified_since then
    headers = { "If-Modified-Since: " .. http_date(opts.if_modified_since) }
  end
  return fetch_pages(client, "settings/modules", "modules",
    { query = opts.status and { status = opts.status } or nil, headers = headers })
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
