--- A plain Lua implementation of zcrm.validate_update's rules, written only to
-- compare its speed with the C core's (figure 5 of bench/README.md). Not used by
-- zcrm itself.
--
-- Same rules and order as csrc/validate.c (see csrc/API.md, "Validation"):
-- update type; api_name / access_type (NOT_ALLOWED); unknown keys (the smallest
-- string key); none of the three keys (MANDATORY_NOT_FOUND); each label (strict
-- UTF-8; letters, decimal digits, letter numbers, U+0020, and combining marks
-- right after a letter; not empty, not only spaces; at most 25 code points);
-- profiles (a non-empty sequence of at most 203 entries; each with exactly one
-- of id / name, optional _delete; ids of 1-19 digits without a leading zero,
-- at most 2^63-1, or positive integers; names of 1-50 bytes of UTF-8 without
-- control characters; no duplicates). Returns true, or nil and a plain table
-- { code =, field =, message =, details = } with the code and field the C core
-- gives.
--
-- UTF-8 is decoded by hand, byte by byte. Unicode categories are the one part
-- that is approximated: plain Lua has no Unicode database, so a code point is
-- classed by a sorted table of 110 ranges (binary search) covering the
-- letters, digits and combining marks of the main blocks: Latin (with
-- Latin-1, Extended-A/B, IPA and Extended Additional), Greek, Cyrillic,
-- Armenian, Hebrew, Arabic, Devanagari, Bengali, Tamil, Thai, Georgian, Hangul,
-- Hiragana, Katakana, CJK ideographs (with extensions) and fullwidth forms.
-- Letters of scripts outside those ranges are refused, and the few
-- non-letters inside a range are accepted; bench/validate_throughput.lua counts
-- how many code points it classes differently from utf8proc, which the C core
-- uses.

local null = require("cjson").null

local M = {}

local LABEL_MAX, MAX_PROFILES, NAME_MAX = 25, 203, 50

-- Classes: 1 letter (L*), 2 digit (Nd, Nl), 3 combining mark (Mn, Mc).
local L, N, MK = 1, 2, 3
local RANGES = {
  -- first, last, class; sorted, not overlapping
  { 0x30, 0x39, N }, { 0x41, 0x5A, L }, { 0x61, 0x7A, L }, { 0xAA, 0xAA, L }, { 0xB5, 0xB5, L },
  { 0xBA, 0xBA, L }, { 0xC0, 0xD6, L }, { 0xD8, 0xF6, L }, { 0xF8, 0x2C1, L }, { 0x2C6, 0x2D1, L },
  { 0x2E0, 0x2E4, L }, { 0x2EC, 0x2EC, L }, { 0x2EE, 0x2EE, L }, { 0x300, 0x36F, MK },
  { 0x370, 0x374, L }, { 0x376, 0x377, L }, { 0x37B, 0x37D, L }, { 0x37F, 0x37F, L },
  { 0x386, 0x386, L }, { 0x388, 0x3F5, L }, { 0x3F7, 0x481, L }, { 0x483, 0x487, MK },
  { 0x48A, 0x52F, L }, { 0x531, 0x556, L }, { 0x559, 0x559, L }, { 0x560, 0x588, L },
  { 0x591, 0x5BD, MK }, { 0x5BF, 0x5BF, MK }, { 0x5C1, 0x5C2, MK }, { 0x5C4, 0x5C5, MK },
  { 0x5C7, 0x5C7, MK }, { 0x5D0, 0x5EA, L }, { 0x5EF, 0x5F2, L }, { 0x610, 0x61A, MK },
  { 0x620, 0x64A, L }, { 0x64B, 0x65F, MK }, { 0x660, 0x669, N }, { 0x66E, 0x66F, L },
  { 0x670, 0x670, MK }, { 0x671, 0x6D3, L }, { 0x6D5, 0x6D5, L }, { 0x6D6, 0x6DC, MK },
  { 0x6F0, 0x6F9, N }, { 0x6FA, 0x6FC, L }, { 0x900, 0x903, MK }, { 0x904, 0x939, L },
  { 0x93A, 0x93C, MK }, { 0x93D, 0x93D, L }, { 0x93E, 0x94F, MK }, { 0x950, 0x950, L },
  { 0x951, 0x957, MK }, { 0x958, 0x961, L }, { 0x962, 0x963, MK }, { 0x966, 0x96F, N },
  { 0x971, 0x980, L }, { 0x981, 0x983, MK }, { 0x985, 0x9B9, L }, { 0x9BC, 0x9BC, MK },
  { 0x9BD, 0x9BD, L }, { 0x9BE, 0x9CD, MK }, { 0x9CE, 0x9CE, L }, { 0x9D7, 0x9D7, MK },
  { 0x9DC, 0x9E1, L }, { 0x9E2, 0x9E3, MK }, { 0x9E6, 0x9EF, N }, { 0x9F0, 0x9F1, L },
  { 0xB82, 0xB82, MK }, { 0xB83, 0xBB9, L }, { 0xBBE, 0xBCD, MK }, { 0xBD0, 0xBD0, L },
  { 0xBD7, 0xBD7, MK }, { 0xBE6, 0xBEF, N }, { 0xE01, 0xE30, L }, { 0xE31, 0xE31, MK },
  { 0xE32, 0xE33, L }, { 0xE34, 0xE3A, MK }, { 0xE40, 0xE46, L }, { 0xE47, 0xE4E, MK },
  { 0xE50, 0xE59, N }, { 0x10A0, 0x10C5, L }, { 0x10D0, 0x10FA, L }, { 0x10FC, 0x11FF, L },
  { 0x1AB0, 0x1ABD, MK }, { 0x1DC0, 0x1DFF, MK }, { 0x1E00, 0x1F15, L }, { 0x1F18, 0x1FBC, L },
  { 0x20D0, 0x20DC, MK }, { 0x2160, 0x2188, N }, { 0x3005, 0x3006, L }, { 0x3007, 0x3007, N },
  { 0x3021, 0x3029, N }, { 0x3031, 0x3035, L }, { 0x3041, 0x3096, L }, { 0x3099, 0x309A, MK },
  { 0x309D, 0x309F, L }, { 0x30A1, 0x30FA, L }, { 0x30FC, 0x30FF, L }, { 0x3131, 0x318E, L },
  { 0x3400, 0x4DBF, L }, { 0x4E00, 0x9FFF, L }, { 0xAC00, 0xD7A3, L }, { 0xF900, 0xFA6D, L },
  { 0xFE20, 0xFE2F, MK }, { 0xFF10, 0xFF19, N }, { 0xFF21, 0xFF3A, L }, { 0xFF41, 0xFF5A, L },
  { 0xFF66, 0xFFBE, L }, { 0x20000, 0x2A6DF, L }, { 0x2A700, 0x2EBE0, L }, { 0x30000, 0x3134A, L },
}
local NR = #RANGES

-- The class of code point cp, or nil (punctuation, symbols, other spaces, controls...).
local function class(cp)
  if cp < 0x80 then
    if cp >= 0x61 then return cp <= 0x7A and L or nil end
    if cp >= 0x41 then return cp <= 0x5A and L or nil end
    if cp >= 0x30 and cp <= 0x39 then return N end
    return nil
  end
  local lo, hi = 1, NR
  while lo <= hi do
    local mid = (lo + hi) // 2
    local r = RANGES[mid]
    if cp < r[1] then hi = mid - 1
    elseif cp > r[2] then lo = mid + 1
    else return r[3] end
  end
  return nil
end
M.class = class

local byte = string.byte

-- Decodes one code point of strict UTF-8 at byte i: returns cp, next i; or nil.
local function next_cp(s, i, len)
  local b = byte(s, i)
  if b < 0x80 then return b, i + 1 end
  if b < 0xC2 then return nil end
  if b < 0xE0 then
    local c = byte(s, i + 1)
    if not c or c < 0x80 or c > 0xBF then return nil end
    return ((b & 0x1F) << 6) | (c & 0x3F), i + 2
  end
  if b < 0xF0 then
    if i + 2 > len then return nil end
    local c1, c2 = byte(s, i + 1, i + 2)
    local lo, hi = 0x80, 0xBF
    if b == 0xE0 then lo = 0xA0 elseif b == 0xED then hi = 0x9F end -- overlongs, surrogates
    if c1 < lo or c1 > hi or c2 < 0x80 or c2 > 0xBF then return nil end
    return ((b & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F), i + 3
  end
  if b < 0xF5 then
    if i + 3 > len then return nil end
    local c1, c2, c3 = byte(s, i + 1, i + 3)
    local lo, hi = 0x80, 0xBF
    if b == 0xF0 then lo = 0x90 elseif b == 0xF4 then hi = 0x8F end -- overlongs, > U+10FFFF
    if c1 < lo or c1 > hi or c2 < 0x80 or c2 > 0xBF or c3 < 0x80 or c3 > 0xBF then return nil end
    return ((b & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F), i + 4
  end
  return nil
end
M.next_cp = next_cp

local function fail(code, field, api_name, json_path, message, max)
  local details
  if api_name then
    details = { api_name = api_name, json_path = json_path, maximum_length = max }
  end
  return nil, { code = code, field = field, message = message, details = details, kind = "validation" }
end

local function typename(v)
  if v == null then return "null" end
  return type(v)
end

local function check_label(v, key)
  local path = "$.modules[0]." .. key
  if type(v) ~= "string" then
    return fail("INVALID_DATA", key, key, path, string.format("%s must be a string, got %s", key, typename(v)))
  end
  local len = #v
  if len == 0 then return fail("INVALID_DATA", key, key, path, key .. " must not be empty") end
  local i, count, nonspace, after_letter, bad_cp, bad_at = 1, 0, false, false, nil, nil
  while i <= len do
    local cp, j = next_cp(v, i, len)
    if not cp then
      return fail("INVALID_DATA", key, key, path,
        string.format("%s is not valid UTF-8 (bad byte sequence at byte %d)", key, i))
    end
    count = count + 1
    local ok = false
    if cp == 0x20 then
      ok, after_letter = true, false
    else
      local c = class(cp)
      if c == L then
        ok, nonspace, after_letter = true, true, true
      elseif c == N then
        ok, nonspace, after_letter = true, true, false
      elseif c == MK then
        ok = after_letter
      end
    end
    if not ok and not bad_cp then bad_cp, bad_at = cp, count end
    i = j
  end
  if bad_cp then
    return fail("INVALID_DATA", key, key, path, string.format(
      "%s contains U+%04X at character %d; only letters, digits and spaces are allowed", key, bad_cp, bad_at))
  end
  if not nonspace then return fail("INVALID_DATA", key, key, path, key .. " must not be only spaces") end
  if count > LABEL_MAX then
    return fail("INVALID_DATA", key, key, path,
      string.format("%s has %d characters; at most %d allowed", key, count, LABEL_MAX), LABEL_MAX)
  end
  return true
end

local MAXID = "9223372036854775807"

-- An id string: returns the id as an integer, or nil, reason.
local function parse_id(s)
  local len = #s
  if len == 0 then return nil, "is empty (an id is 1 to 19 digits)" end
  if s:find("[^0-9]") then return nil, "must contain only digits (an id is 1 to 19 digits)" end
  if len > 19 then return nil, "has more than 19 digits" end
  if byte(s, 1) == 48 then return nil, "must not start with 0" end
  if len == 19 and s > MAXID then return nil, "is larger than 9223372036854775807, the largest 64-bit id" end
  return math.tointeger(tonumber(s))
end

local function check_name(s)
  local len = #s
  if len == 0 then return "must not be empty" end
  if len > NAME_MAX then return "is longer than 50 bytes" end
  local i = 1
  while i <= len do
    local cp, j = next_cp(s, i, len)
    if not cp then return "is not valid UTF-8" end
    if cp < 0x20 or (cp >= 0x7F and cp <= 0x9F) then return "must not contain control characters" end
    i = j
  end
  return nil
end

-- The unknown key of t, if any: the smallest string key not in `allowed`, else
-- the first other key met. Returns its printable name and whether it is a string.
local function unknown_key(t, allowed)
  local best, isstr
  for k in next, t do
    if type(k) == "string" then
      if not allowed[k] and (best == nil or not isstr or k < best) then best, isstr = k, true end
    elseif best == nil then
      best = math.type(k) == "integer" and ("[" .. k .. "]") or ("(a " .. type(k) .. " key)")
      isstr = false
    end
  end
  return best, isstr
end

local PROFILE_KEYS = { id = true, name = true, _delete = true }

local function check_profile(e, i, seen_ids, seen_names)
  local field = "profiles[" .. i .. "]"
  local path = "$.modules[0].profiles[" .. (i - 1) .. "]"
  if type(e) ~= "table" then
    return fail("INVALID_DATA", field, "profiles", path,
      string.format('%s must be a table like { id = "..." }, got %s', field, typename(e)))
  end
  local k = unknown_key(e, PROFILE_KEYS)
  if k then
    return fail("INVALID_DATA", field, "profiles", path,
      string.format("%s has an unknown key %s (allowed: id, name, _delete)", field, k))
  end
  local id, name, del = rawget(e, "id"), rawget(e, "name"), rawget(e, "_delete")
  local idfield, idpath = field .. ".id", path .. ".id"
  if id ~= nil and name ~= nil then
    return fail("INVALID_DATA", field, "profiles", path, field .. " has both id and name; give one of them")
  end
  if id == nil and name == nil then
    return fail("MANDATORY_NOT_FOUND", idfield, "id", idpath,
      idfield .. " is missing (each profile needs an id or a name)")
  end
  if type(id) == "number" then
    if math.type(id) ~= "integer" then
      return fail("INVALID_DATA", idfield, "id", idpath,
        string.format("%s must be a string of digits or an integer, not the float %f", idfield, id))
    end
    if id <= 0 then
      return fail("INVALID_DATA", idfield, "id", idpath, string.format("%s must be positive, got %d", idfield, id))
    end
  elseif type(id) == "string" then
    local n, why = parse_id(id)
    if not n then return fail("INVALID_DATA", idfield, "id", idpath, idfield .. " " .. why) end
    id = n
  elseif id ~= nil then
    return fail("INVALID_DATA", idfield, "id", idpath,
      string.format("%s must be a string of digits or an integer, got %s", idfield, typename(id)))
  else
    local nfield, npath = field .. ".name", path .. ".name"
    if type(name) ~= "string" then
      return fail("INVALID_DATA", nfield, "name", npath,
        string.format("%s must be a string, got %s", nfield, typename(name)))
    end
    local why = check_name(name)
    if why then
      return fail("INVALID_DATA", nfield, "name", npath, nfield .. " " .. why, #name > NAME_MAX and NAME_MAX or nil)
    end
  end
  if not (del == nil or del == false or del == true or del == null) then
    return fail("INVALID_DATA", field .. "._delete", "_delete", path .. "._delete",
      string.format("%s._delete must be true or zcrm.null (revoke), or false or absent (grant), got %s",
        field, typename(del)))
  end
  if id then
    local j = seen_ids[id]
    if j then
      return fail("INVALID_DATA", idfield, "id", "$.modules[0].profiles[" .. (i - 1) .. "].id",
        string.format("profiles[%d].id duplicates profiles[%d].id", i, j))
    end
    seen_ids[id] = i
  else
    local j = seen_names[name]
    if j then
      return fail("INVALID_DATA", field .. ".name", "name", "$.modules[0].profiles[" .. (i - 1) .. "].name",
        string.format("profiles[%d].name duplicates profiles[%d].name", i, j))
    end
    seen_names[name] = i
  end
  return true
end

local function check_profiles(list)
  local path = "$.modules[0].profiles"
  if list == null then
    return fail("MINIMUM_DATA_NOT_FOUND", "profiles", "profiles", path,
      "profiles must not be null; at least one profile is needed")
  end
  if type(list) ~= "table" then
    return fail("INVALID_DATA", "profiles", "profiles", path,
      "profiles must be a list of { id = ... } tables, got " .. typename(list))
  end
  local n, maxkey, bad = 0, 0, false
  for k in next, list do
    n = n + 1
    if math.type(k) == "integer" and k >= 1 then
      if k > maxkey then maxkey = k end
    else
      bad = true
    end
  end
  if n == 0 then
    return fail("MINIMUM_DATA_NOT_FOUND", "profiles", "profiles", path,
      "profiles is empty; at least one profile is needed")
  end
  if bad or maxkey ~= n then
    return fail("INVALID_DATA", "profiles", "profiles", path, "profiles must be a sequence (a list indexed 1..n)")
  end
  if n > MAX_PROFILES then
    return fail("INVALID_DATA", "profiles", "profiles", path,
      string.format("profiles has %d entries; at most %d allowed", n, MAX_PROFILES), MAX_PROFILES)
  end
  local seen_ids, seen_names = {}, {}
  for i = 1, n do
    local ok, err = check_profile(rawget(list, i), i, seen_ids, seen_names)
    if not ok then return nil, err end
  end
  return true
end

local UPDATE_KEYS = { plural_label = true, singular_label = true, profiles = true }

--- validate_update(update) -> true, or nil, { code, field, message, details }.
function M.validate_update(u)
  if type(u) ~= "table" then
    return fail("INVALID_DATA", nil, nil, nil, "the update must be a table, got " .. typename(u))
  end
  if rawget(u, "api_name") ~= nil then
    return fail("NOT_ALLOWED", "api_name", "api_name", "$.modules[0].api_name",
      "api_name cannot be updated through the API; change it in the UI")
  end
  if rawget(u, "access_type") ~= nil then
    return fail("NOT_ALLOWED", "access_type", "access_type", "$.modules[0].access_type",
      "access_type cannot be changed after the module is created")
  end
  local k, isstr = unknown_key(u, UPDATE_KEYS)
  if k then
    return fail("INVALID_DATA", k, isstr and k or nil, isstr and ("$.modules[0]." .. k) or nil,
      string.format("unknown key %s in the update (allowed: plural_label, singular_label, profiles)",
        isstr and string.format("%q", k) or k))
  end
  local plural, singular, profiles = rawget(u, "plural_label"), rawget(u, "singular_label"), rawget(u, "profiles")
  if plural == nil and singular == nil and profiles == nil then
    return fail("MANDATORY_NOT_FOUND", nil, nil, nil, "the update has none of plural_label, singular_label, profiles")
  end
  if plural ~= nil then
    local ok, err = check_label(plural, "plural_label")
    if not ok then return nil, err end
  end
  if singular ~= nil then
    local ok, err = check_label(singular, "singular_label")
    if not ok then return nil, err end
  end
  if profiles ~= nil then
    local ok, err = check_profiles(profiles)
    if not ok then return nil, err end
  end
  return true
end

return M
