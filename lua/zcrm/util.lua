--- Small helpers shared by the Lua modules: a shallow copy, the one hash, and
-- the writers of Lua source text (undo plans, exports, change sets).
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

-- {==== writing Lua source
--
-- Files zcrm writes as Lua (undo plans, exports) are code that `zcrm apply`
-- and `zcrm validate` run: every value in them comes from a server or a user,
-- so each is written as a string literal or a checked number, and comments
-- cannot end early. Nothing else is ever written into such a file.

--- lua_string(s) -> `s` as a one-line Lua string literal that reads back as
-- exactly `s`: control bytes, `"` and `\` as decimal escapes; other bytes
-- (UTF-8 included) as they are.
function M.lua_string(s)
  assert(type(s) == "string", "lua_string: string expected")
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\%03d", c:byte()) end) .. '"'
end

--- lua_value(v) -> a literal for a string, an integer, a boolean; anything
-- else (floats, tables, functions) is refused: raises.
function M.lua_value(v)
  if type(v) == "string" then return M.lua_string(v) end
  if math.type(v) == "integer" then return string.format("%d", v) end
  if type(v) == "boolean" then return tostring(v) end
  error("lua_value: cannot write a " .. (math.type(v) or type(v)) .. " into a Lua file", 2)
end

local function hex_escape(c) return string.format("\\x%02X", c:byte()) end

--- printable(s) -> `s` on one line: control bytes (CR, LF, ESC...) as \xNN,
-- as zcrm.error's tostring shows them.
function M.printable(s)
  return (tostring(s):gsub("%c", hex_escape))
end

--- terminal_text(s) -> `s` safe to write to a terminal: newlines, tabs and
-- colour (SGR) sequences are kept, every other control byte is shown as \xNN,
-- so text from a server (a label, a profile name) cannot move the cursor,
-- clear the screen, set the title or reach the clipboard (OSC 52).
function M.terminal_text(s)
  local parts, pos = {}, 1
  while true do
    local from, to = s:find("\27%[[%d;]*m", pos)
    parts[#parts + 1] = (s:sub(pos, (from or 0) - 1):gsub("[%z\1-\8\11-\31\127]", hex_escape))
    if not from then break end
    parts[#parts + 1] = s:sub(from, to)
    pos = to + 1
  end
  return table.concat(parts)
end

--- lua_comment(s) -> "-- " .. s on one line (M.printable), so the comment ends
-- where the line does (and "-- " never opens a long comment).
function M.lua_comment(s)
  return "-- " .. M.printable(s)
end

-- }====

return M
