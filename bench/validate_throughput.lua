-- Figure 5: validate_update calls per second, the C core against a plain Lua
-- implementation of the same rules (bench/validate_lua.lua), on the same inputs.
--
-- The inputs are ten updates as scripts write them: ASCII, Latin with accents,
-- CJK and Devanagari (combining marks) labels, profile lists by id and by name,
-- and three faults (a '!', a misspelt key, 26 characters) plus one NOT_ALLOWED.
-- Both implementations must give the same verdict (and code and field) on
-- every input before anything is timed. Each side runs for about SECONDS
-- seconds of CPU (os.clock), three times alternately; the best run counts.
-- Then every code point U+0000..U+10FFFF is put after a letter ("a" .. cp)
-- through both, to say how far the Lua side's range table is from utf8proc's
-- categories.
--
-- usage: lua5.4 bench/validate_throughput.lua [SECONDS]
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local plain = require "bench.validate_lua"

local SECONDS = tonumber(arg[1]) or 1.0

local inputs = {
  { plural_label = "Marketing Assets", singular_label = "Marketing Asset" },
  { plural_label = "Équipes de Vente", singular_label = "Équipe de Vente" },
  { plural_label = "顧客管理", singular_label = "顧客" },
  { singular_label = "कार्य सूची" },
  { plural_label = "Projects 2025", profiles = { { id = "2423488000000015972" }, { name = "Standard", _delete = true } } },
  { profiles = { { id = 2423488000000015975, _delete = zcrm.null }, { name = "Marketing" } } },
  { plural_label = "Tickets!" },
  { plural_lable = "Tickets" },
  { plural_label = "Abcdefghijklmnopqrstuvwxyz" },
  { api_name = "Tickets_New", plural_label = "Tickets" },
}

local c_validate, lua_validate = zcrm.validate_update, plain.validate_update
local valid = 0
for i, u in ipairs(inputs) do
  local cok, cerr = c_validate(u)
  local lok, lerr = lua_validate(u)
  if (cok == true) ~= (lok == true) or (cerr and (cerr.code ~= lerr.code or cerr.field ~= lerr.field)) then
    error(string.format("input %d: C says %s, Lua says %s", i, cok and "ok" or (cerr.code .. " " .. tostring(cerr.field)),
      lok and "ok" or (lerr.code .. " " .. tostring(lerr.field))))
  end
  if cok then valid = valid + 1 end
end

local n_inputs = #inputs
local function rate(fn)
  local calls, t0 = 0, os.clock()
  local elapsed
  repeat
    for _ = 1, 2000 do
      for i = 1, n_inputs do fn(inputs[i]) end
    end
    calls = calls + 2000 * n_inputs
    elapsed = os.clock() - t0
  until elapsed >= SECONDS
  return calls / elapsed
end

local best_c, best_lua = 0, 0
for _ = 1, 3 do
  best_c = math.max(best_c, rate(c_validate))
  best_lua = math.max(best_lua, rate(lua_validate))
end

-- How far the range table is from utf8proc: each code point after a letter.
local differ, missed, extra, total = 0, 0, 0, 0
local uchar = utf8.char
for cp = 0, 0x10FFFF do
  if cp < 0xD800 or cp > 0xDFFF then
    total = total + 1
    local label = "a" .. uchar(cp)
    local c = c_validate { plural_label = label } == true
    local l = lua_validate { plural_label = label } == true
    if c ~= l then
      differ = differ + 1
      if c then missed = missed + 1 else extra = extra + 1 end
    end
  end
end

print(string.format("validate: %d inputs (%d valid, %d faults), same verdict, code and field from both", n_inputs,
  valid, n_inputs - valid))
print(string.format("validate: C core (zcrm.validate_update)  %12.0f calls/s  %6.2f us/call", best_c, 1e6 / best_c))
print(string.format("validate: plain Lua (bench/validate_lua) %12.0f calls/s  %6.2f us/call", best_lua, 1e6 / best_lua))
print(string.format("validate: ratio C/Lua %.2f (C is %.2fx as fast)", best_c / best_lua, best_c / best_lua))
print(string.format("validate: Lua's ranges differ from utf8proc on %d of %d code points (%.2f%%): "
  .. "%d letters/digits/marks refused, %d others accepted", differ, total, 100 * differ / total, missed, extra))
