--- Small helpers shared by the Lua modules: a shallow copy and the one hash.

local M = {}

--- copy(t) -> a shallow copy of `t` (an empty table for nil).
function M.copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
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
