--- One module at a time: update_module and create_module, and the reader of
-- one result item (shared with the batch). Operations: each runs inside the
-- engine's coroutine.
-- @module zcrm.modules.update

local core = require "zcrm.core"
local http = require "zcrm.http"
local reads = require "zcrm.modules.read"
local profiles = require "zcrm.modules.profiles"

local M = {}

-- A fault found here, before any request: Zoho's code for the same fault, no
-- HTTP status (nothing was sent), never retryable.
local function local_error(code, message, field, details)
  local e = core.error { kind = "validation", code = code, message = message, field = field,
                         details = details, retryable = false }
  e.status = nil
  return e
end

M.local_error = local_error

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
    id = reads.server_id(id)
    if not id then return nil, http.unexpected(status, "the result's details.id is not an id") end
  end
  details.id = id
  return {
    id = id, code = item.code, message = item.message,
    status = item.status, details = details,
  }
end

M.item_result = item_result

local function first_item(client, status, doc)
  local list = type(doc) == "table" and doc.modules
  return item_result(client, status, type(list) == "table" and list[1] or nil)
end

-- Checks a module and an update as update_module does; returns the path
-- segment and the clean update, or nil, err. Profile names stay for send_update.
local function prepare_one(module, update, rules)
  local segment, merr = core.check_module(module)
  if not segment then return nil, merr end
  local clean, verr = core.prepare_update(update, rules)
  if not clean then return nil, verr end
  return segment, clean
end

M.prepare_one = prepare_one

--- send_update(segment, clean) -> as update_module. The internal operation
-- behind it: `segment` and `clean` have passed core.check_module and
-- core.prepare_update already (a plan checks every entry before sending), so
-- they are not checked again; profile names left in `clean` are resolved.
function M.send_update(client, segment, clean)
  local verr
  clean, verr = profiles.resolve_names(client, clean)
  if not clean then return nil, verr end
  -- The URL and body in one C call, and the plain success answer read in C;
  -- lua-cjson for anything else (core.update_request, core.read_update_answer).
  -- The options are the same for every update of a client: made once.
  local cost = client.credit_costs.update_module
  local cache = client:_cache("update")
  local opts = cache.opts
  if not opts or opts.cost ~= cost then
    opts = { read = core.read_update_answer, key = "modules", cost = cost }
    cache.opts = opts
  end
  local url, json = core.update_request(http.base_url(client), segment, clean)
  local status, doc, read, _
  if url then
    status, doc, _, read = http.call(client, "PUT", nil, opts, url, json)
  else
    status, doc, _, read = http.call(client, "PUT", "settings/modules/" .. segment, {
      body = { modules = { clean } }, read = opts.read, key = opts.key, cost = cost,
    })
  end
  if not status then return nil, doc end
  if read then return doc end
  return first_item(client, status, doc)
end

--- update_module(module, update) -> { id, code, message, status, details } or nil, err.
-- Validates locally first: an invalid update or module sends nothing.
function M.update_module(client, module, update)
  local segment, clean = prepare_one(module, update, client.label_rules)
  if not segment then return nil, clean end
  return M.send_update(client, segment, clean)
end

local CREATE_KEYS = { "plural_label", "singular_label", "profiles" }

--- check_create(spec [, rules]) -> the clean body item, or nil, err: create_module's
-- local checks (no network). Those of an update (core.prepare_update), and
-- ("Create Custom Module"): the three keys are mandatory, profiles are grants
-- only (`_delete` is refused), the optional `api_name` follows the page's rule
-- (core.check_api_name) and the optional `display_field` its shape
-- (core.check_display_field).
function M.check_create(spec, rules)
  if type(spec) ~= "table" then
    return nil, local_error("INVALID_DATA", "create_module expects a table { plural_label =, singular_label =, "
      .. "profiles = [, api_name =, display_field =] }, got " .. (spec == nil and "nothing" or type(spec)))
  end
  local update, extra = {}, {}
  for k, v in next, spec do
    if k == "api_name" or k == "display_field" then extra[k] = v else update[k] = v end
  end
  local clean, verr = core.prepare_update(update, rules)
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
  if extra.api_name ~= nil then
    local name, nerr = core.check_api_name(extra.api_name)
    if not name then return nil, nerr end
    clean.api_name = name
  end
  if extra.display_field ~= nil then
    local field, ferr = core.check_display_field(extra.display_field)
    if not field then return nil, ferr end
    clean.display_field = field
  end
  return clean
end

--- create_module{ plural_label =, singular_label =, profiles = [, api_name =,
-- display_field =] } -> { id, code,
-- message, status, details } or nil, err. POST /settings/modules ("Create
-- Custom Module"), checked first by check_create; profile names become ids. Costs
-- `credit_costs.create_module` (500). A POST is never repeated once it may have
-- reached Zoho.
function M.create_module(client, spec)
  local clean, verr = M.check_create(spec, client.label_rules)
  if not clean then return nil, verr end
  clean, verr = profiles.resolve_names(client, clean)
  if not clean then return nil, verr end
  local status, doc = http.call(client, "POST", "settings/modules",
    { body = { modules = { clean } }, key = "modules", cost = client.credit_costs.create_module })
  if not status then return nil, doc end
  return first_item(client, status, doc)
end

return M
