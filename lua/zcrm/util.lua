--- Small helpers shared by the Lua modules: a shallow copy and the one hash.
-- @module zcrm.util

local M = {}

--- copy(t) -> a shallow copy of `t` (an empty table for nil).
function M.copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

--- sorted_keys(t) -> the keys of `t` in a stable order: strings and numbers
-- by value, grouped by type (booleans, numbers, strings, ...), anything else
-- by its tostring.
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb and (ta == "string" or ta == "number") then return a < b end
    if ta ~= tb then return ta < tb end
    return tostring(a) < tostring(b)
  end)
  return keys
end

--- fnv1a64(s) -> 16 hex digits: FNV-1a, 64 bits. Lua 5.4 integers wrap,
-- which is the arithmetic FNV wants. Not a secret-keeping hash: it names
-- content (journal keys) and ties a token cache to its credentials.
function M.fnv1a64(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001b3
  end
  return string.format("%016x", h)
end

return M
