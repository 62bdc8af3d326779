--- Many modules at once: update_modules through the batch endpoint (PUT
-- settings/modules, at most BATCH_MAX per call), falling back to one call per
-- module when the server refuses it. Operations: each runs inside the
-- engine's coroutine.
-- @module zcrm.modules.batch

local core = require "zcrm.core"
local http = require "zcrm.http"
local read = require "zcrm.modules.read"
local profiles = require "zcrm.modules.profiles"
local one = require "zcrm.modules.update"

local local_error, item_result = one.local_error, one.item_result

local M = {}

-- Zoho's ceiling per batch call (the OpenAPI file for modules: 1 to 100 items).
M.BATCH_MAX = 100

-- Runs `fns` (functions of the client) at once as engine tasks, each as its own
-- coroutine so that their transfers share the concurrency cap, and returns when
-- all have returned. Called from inside an operation.
local function run_all(client, fns)
  if #fns == 1 then return fns[1](client) end
  local left, event = #fns, {}
  for _, fn in ipairs(fns) do
    client:_spawn("update_modules part", function(c)
      local ok, err = pcall(fn, c)
      if not ok then c:_log("error", "update_modules: " .. c:_redact(tostring(err))) end
      left = left - 1
      if left == 0 then c:_signal(event) end
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

--- fallback(client) -> the server's refusal of the batch endpoint, once it
-- refused it (every later update_modules of the client then sends one
-- module per call), or nil.
function M.fallback(client)
  return client:_cache("batch").fallback
end

local function note_refusal(client, err)
  local cache = client:_cache("batch")
  if cache.fallback then return end
  cache.fallback = err
  client:_log("warn", string.format("the server refused the batch endpoint PUT settings/modules (%s); "
    .. "sending one module per call from now on", tostring(err)))
end

-- Sends each entry of `part` alone (PUT settings/modules/{id}), all at once.
local function send_singly(client, part, results)
  local fns = {}
  for _, e in ipairs(part) do
    fns[#fns + 1] = function(c)
      local res, err = one.send_update(c, e.segment, e.clean)
      results[e.index] = res or err
    end
  end
  run_all(client, fns)
end

-- The entry of `part` an answer's item `i` is about, or nil: a success by
-- its details.id (the id sent; of two entries for one module, the one at
-- the item's position first, then the first without an item yet), an error
-- by its details.id or else the index in its json_path ("$.modules[k]...",
-- as in Zoho's 207 example of the batch update).
local function item_entry(part, item, i, got)
  if type(item) ~= "table" then return nil end
  local details = type(item.details) == "table" and item.details or {}
  local id = details.id ~= nil and read.server_id(details.id)
  if id then
    if part[i] and part[i].segment == id and got[i] == nil then return i end
    local any
    for j, e in ipairs(part) do
      if e.segment == id then
        if got[j] == nil then return j end
        any = j
      end
    end
    return any
  end
  if item.status ~= "success" and type(details.json_path) == "string" then
    local k = math.tointeger(tonumber(details.json_path:match("^%$%.modules%[(%d+)%]")))
    if k and part[k + 1] then return k + 1 end
  end
  return nil
end

-- One batch call for at most BATCH_MAX entries; every entry gets its result.
local function send_batch(client, part, results)
  if M.fallback(client) then return send_singly(client, part, results) end
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
  -- 200, 207 and 400: one item per entry. The order is documented, but an
  -- item is taken as being about the module it names, never about the one
  -- at its position: a success that named another module would report a
  -- change that did not happen.
  local list = type(doc) == "table" and doc.modules
  if type(list) ~= "table" then list = {} end
  local got, twice = {}, {}
  for i, item in ipairs(list) do
    local j = item_entry(part, item, i, got)
    if j and got[j] ~= nil then twice[j] = true elseif j then got[j] = item end
  end
  for j, e in ipairs(part) do
    if got[j] == nil or twice[j] then
      results[e.index] = http.unexpected(status, string.format(
        "%s result item names module %s (by details.id, or json_path for an error) among the %d items"
        .. " for %d modules sent; its outcome is unknown", twice[j] and "more than one" or "no",
        e.segment, #list, #part))
    else
      local res, err = item_result(client, status, got[j])
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
        local mods, err = read.get_modules(client)
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
      local clean, err = profiles.resolve_names(client, e.clean)
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
  results.fallback = M.fallback(client)
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

-- The C checks see one update at a time and point at $.modules[0]; in a
-- batch the fault is entry i's, so its json_path says $.modules[i-1].
local function at_entry(err, i)
  local d = err.details
  if type(d) == "table" and type(d.json_path) == "string" then
    d.json_path = d.json_path:gsub("^%$%.modules%[0%]", "$.modules[" .. (i - 1) .. "]", 1)
  end
  return err
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
      local segment, clean = one.prepare_one(rawget(entry, "module"), update, client.label_rules)
      if segment then
        entries[#entries + 1] = { index = i, segment = segment, clean = clean }
      else
        results[i] = at_entry(clean, i)
      end
    end
  end
  return send_checked(client, entries, results)
end

return M
