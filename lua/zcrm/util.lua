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
  if s:find('^[^%c"\\]*$') then return '"' .. s .. '"' end -- nothing to escape
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

-- Code points that act on a terminal or reorder what it shows: C1 controls,
-- and the bidi marks, embeddings, overrides and isolates (Trojan Source).
local function is_invisible_control(cp)
  return (cp >= 0x80 and cp <= 0x9F) or cp == 0x061C or cp == 0x200E or cp == 0x200F
    or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
end

-- A run of non-ASCII bytes: each valid UTF-8 character kept unless it is one
-- of the controls above (shown as \u{XXXX}); a byte that starts no valid
-- character (a stray continuation byte, a raw 0x9B CSI) as \xNN.
local function escape_non_ascii(run)
  local parts, i, n = {}, 1, #run
  while i <= n do
    local b = run:byte(i)
    local len = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC2 and 2 or 0
    local ch = len > 0 and run:sub(i, i + len - 1) or nil
    if ch and #ch == len and utf8.len(ch) == 1 then
      local cp = utf8.codepoint(ch)
      parts[#parts + 1] = is_invisible_control(cp) and string.format("\\u{%04X}", cp) or ch
      i = i + len
    else
      parts[#parts + 1] = string.format("\\x%02X", b)
      i = i + 1
    end
  end
  return table.concat(parts)
end

--- escape_untrusted(s) -> `s` on one line with every control shown escaped:
-- C0 (newline and tab included) and DEL as \xNN, C1 controls and the bidi
-- marks, overrides and isolates (U+061C, U+200E, U+200F, U+202A..U+202E,
-- U+2066..U+2069) as \u{XXXX}, bytes that are not UTF-8 as \xNN. The one
-- escaping function for text zcrm did not write itself (a server's label or
-- message, a file's name or field) on its way to a terminal, a log line or a
-- comment in a file zcrm writes. Printable text, UTF-8 included, is kept.
function M.escape_untrusted(s)
  s = tostring(s)
  -- Printable ASCII (the common case) is kept as it is: one scan, no copy.
  if s:find("^[ -~]*$") then return s end
  s = s:gsub("[%z\1-\31\127]", hex_escape)
  return (s:gsub("[\128-\255]+", escape_non_ascii))
end

--- printable(s) -> M.escape_untrusted(s) (its older name).
M.printable = M.escape_untrusted

-- The colour sequences zcrm itself writes (cli/term.lua's paint): reset,
-- bold, dim, red, green, yellow. No other (conceal, ESC[8m, among them).
local OWN_SGR = { ["\27[0m"] = true, ["\27[1m"] = true, ["\27[2m"] = true,
                  ["\27[31m"] = true, ["\27[32m"] = true, ["\27[33m"] = true }

--- terminal_text(s) -> the last guard of zcrm's own output streams: `s`
-- with newlines, tabs and zcrm's own colour sequences kept and everything
-- else M.escape_untrusted escapes escaped. It lets zcrm's layout through, so
-- untrusted text must already have gone through M.escape_untrusted (which
-- leaves no newline and no ESC) before it is put into `s`.
function M.terminal_text(s)
  -- Printable ASCII, newlines and tabs (most output, a change list of
  -- thousands of lines among it) need nothing: one scan, no copy.
  if s:find("^[\t\n -~]*$") then return s end
  local parts, pos = {}, 1
  local sgr_from, sgr_to = 0, 0
  while true do
    local from, to = s:find("[\n\t]", pos)
    -- The next own colour sequence at or after pos; one found earlier that
    -- still lies ahead is kept, so a long text is scanned once, not per line.
    if sgr_from and sgr_from < pos then
      sgr_from, sgr_to = s:find("\27%[%d*m", pos)
      while sgr_from and not OWN_SGR[s:sub(sgr_from, sgr_to)] do
        sgr_from, sgr_to = s:find("\27%[%d*m", sgr_to + 1)
      end
    end
    if sgr_from and (not from or sgr_from < from) then from, to = sgr_from, sgr_to end
    parts[#parts + 1] = M.escape_untrusted(s:sub(pos, (from or 0) - 1))
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
