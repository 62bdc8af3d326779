--- Profile names to ids: the one resolver (the engine's updates and plans
-- with state both use it), and the profile list read once per client.
-- @module zcrm.modules.profiles

local core = require "zcrm.core"
local util = require "zcrm.util"
local read = require "zcrm.modules.read"

local M = {}

local PROFILES_EVENT = "zcrm.profiles"

-- The profile list, read once per client: an engine task reads it, and every
-- call that needs it waits for that one read (single flight).
local function keep_profiles(client, list, err)
  if list then client:_cache("profiles").list = list end
  return list, err
end

local function cached_profiles(client)
  local cache = client:_cache("profiles")
  if cache.list then return cache.list end
  return client:_single_flight(PROFILES_EVENT, "profiles read", read.get_profiles, keep_profiles)
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

--- profile_id(p, by_name, known_ids, use_id) -> the id `p` (`{ id = }` or
-- `{ name = }`) stands for, or nil, the key at fault ("name" or "id"), why.
-- `by_name` is as `by_name` makes it; with `known_ids` (id -> anything), an
-- id not in it is at fault. `use_id` ends the message for a shared name
-- ("use its id" when nil). The one lookup: updates and profile_set use it.
function M.profile_id(p, by_name, known_ids, use_id)
  local id = p.id
  if id == nil then
    id = by_name[p.name]
    if id == nil then
      return nil, "name", string.format("no profile named '%s' in this org", p.name)
    elseif id == "ambiguous" then
      return nil, "name", string.format("more than one profile is named '%s'; %s", p.name, use_id or "use its id")
    end
  elseif known_ids and not known_ids[id] then
    return nil, "id", string.format("no profile with id %s in this org", id)
  end
  return id
end

--- resolve_profiles(list, by_name, known_ids) -> a copy of `list` (a checked
-- update's profiles) with every `{ name = }` replaced by its id, or nil, err.
-- Unknown or ambiguous names, and an id given twice, are errors; with
-- `known_ids` (id -> anything), so is an id that is not in it. The one
-- resolver: the engine's updates and plans with state both use it.
function M.resolve_profiles(list, by_name, known_ids)
  local resolved, seen = {}, {}
  for i, p in ipairs(list) do
    local id, key, why = M.profile_id(p, by_name, known_ids)
    if not id then return nil, profile_fault(i, why, key, p[key]) end
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
  if not list then return false end
  for _, p in ipairs(list) do
    if p.name then return true end
  end
  return false
end

-- Replaces `{ name = ... }` entries by ids, reading the profile list once per client.
function M.resolve_names(client, clean)
  if not has_names(clean.profiles) then return clean end
  local profiles, err = cached_profiles(client)
  if not profiles then return nil, err end
  return M.resolve_update(clean, M.by_name(profiles))
end

return M
