--- Exact profile sets in plans: `profile_set = { "Administrator", "Sales" }`
-- says "exactly these profiles have access to the module": a profile listed
-- is granted, a profile not listed loses access. Names are profile names
-- (strings); `{ id = "..." }` names a profile by id.
--
-- The form is checked offline like every other field (`check`); with the org's
-- state read it becomes an ordinary `profiles` list of grants and revokes
-- (`expand`), so the diff, the undo plan and the journal treat it as any entry.
-- @module zcrm.plan.exact

local core = require "zcrm.core"
local resolver = require "zcrm.modules.profiles"

local M = {}

local function fault(code, message, field)
  local e = core.error { kind = "validation", code = code, message = message, field = field }
  e.status = nil
  return e
end

-- A profile name as Zoho allows it: non-empty, no control characters.
local function bad_name(s)
  if s == "" or #s > 255 then return "is empty or longer than 255 bytes" end
  if s:find("[%z\1-\31\127]") then return "contains a control character" end
  if not utf8.len(s) then return "is not valid UTF-8" end
  return nil
end

--- check(set) -> list of { name = } / { id = } (a copy), or nil, err. No network.
function M.check(set)
  if type(set) ~= "table" then
    return nil, fault("INVALID_DATA", "profile_set is a list of profile names, got " .. type(set), "profile_set")
  end
  if #set == 0 then
    return nil, fault("MINIMUM_DATA_NOT_FOUND",
      "profile_set is empty; a module keeps at least one profile", "profile_set")
  end
  for k in pairs(set) do
    if math.type(k) ~= "integer" or k < 1 or k > #set then
      return nil, fault("INVALID_DATA", "profile_set is a list; it has the key " .. tostring(k), "profile_set")
    end
  end
  local list, seen = {}, {}
  for i, p in ipairs(set) do
    local field = string.format("profile_set[%d]", i)
    local item
    if type(p) == "string" then
      local why = bad_name(p)
      if why then return nil, fault("INVALID_DATA", string.format("%s %s", field, why), field) end
      item = { name = p }
    elseif type(p) == "table" then
      for k in pairs(p) do
        if k ~= "id" then
          return nil, fault("INVALID_DATA", string.format("%s has the key %s; give a name, or { id = \"...\" }",
            field, tostring(k)), field)
        end
      end
      local id = p.id
      if math.type(id) == "integer" and id > 0 then id = string.format("%d", id) end
      if type(id) ~= "string" or not id:match("^%d+$") or #id > 19 then
        return nil, fault("INVALID_DATA", field .. ".id is a profile id (digits)", field .. ".id")
      end
      item = { id = id }
    else
      return nil, fault("INVALID_DATA", string.format("%s is a profile name, got %s", field, type(p)), field)
    end
    local key = item.id and ("id:" .. item.id) or ("name:" .. item.name)
    if seen[key] then
      return nil, fault("DUPLICATE_DATA", string.format("%s repeats profile_set[%d]", field, seen[key]), field)
    end
    seen[key] = i
    list[i] = item
  end
  return list
end

--- expand(set, current, state) -> a `profiles` list (grants, then revokes), or
-- nil, err. `set` is what `check` returned; `current` the module's snapshot
-- (profiles = list of ids); `state` has profile_by_name and profile_by_id.
function M.expand(set, current, state)
  local want, profiles = {}, {}
  for i, p in ipairs(set) do
    local id, key, why = resolver.profile_id(p, state.profile_by_name, state.profile_by_id, "use { id = ... }")
    if not id then
      return nil, fault("INVALID_DATA", why, string.format("profile_set[%d]%s", i, key == "id" and ".id" or ""))
    end
    want[id] = true
    profiles[#profiles + 1] = { id = id }
  end
  for _, id in ipairs(current.profiles) do
    if not want[id] then profiles[#profiles + 1] = { id = id, _delete = true } end
  end
  return profiles
end

return M
