-- Driver of fuzz_undo: undo plans written from a random (hostile) server state.
--
-- The input builds what a server could answer to GET settings/modules and
-- GET settings/profiles (ids as digit strings, hostile strings, JSON numbers,
-- absent; api names, labels and profile names of any bytes), and a plan that
-- changes those modules. The answer goes through the reader of every list
-- answer (zcrm.modules.list_of), the state through the plan's own stages
-- (check_entry, check_against_state, undo_entries), and the undo plan text
-- (undo_source) is loaded as `zcrm apply` would load it, in an environment
-- where any global read or write raises.
--
-- Input: a stream of bytes read by `u8` and `str` (a length byte, then that
-- many bytes); past the end, zeros. Layout: module count, then per module an
-- id kind and value, api name, two labels, profile count and profiles; then a
-- heading; then per module the plan's change (labels, grants, revokes).
--
-- Raises (a finding) when an id that is not a digit string gets past the
-- reader, when the undo plan fails to load, touches a global, or reads back as
-- anything but the undo entries.

local core = require "zcrm.core"
local modules = require "zcrm.modules"
local check = require "zcrm.plan.check"
local state_mod = require "zcrm.plan.state"

local function reader(data)
  local pos = 1
  local r = {}
  function r.u8()
    local b = data:byte(pos) or 0
    pos = pos + 1
    return b
  end
  function r.str()
    local n = r.u8() % 48
    local s = data:sub(pos, pos + n - 1)
    pos = pos + n
    return s
  end
  return r
end

local NUMBERS = { 123, 2 ^ 53 + 2, 1.5, -4, 0, 2423488000000015972, 9007199254740991, 1e300 }

local function server_id(r)
  local kind = r.u8() % 5
  if kind == 0 then return tostring(r.u8() * 256 + r.u8() + 1) end
  if kind == 1 then return r.str() end
  if kind == 2 then return NUMBERS[r.u8() % #NUMBERS + 1] end
  if kind == 3 then return nil end
  return "2423488000000" .. string.format("%06d", r.u8() * 997 % 1000000)
end

-- A label as a server may send it: mostly a string of any bytes, now and
-- then JSON null, a number or nothing.
local function label(r)
  local kind = r.u8()
  if kind == 250 then return core.null end
  if kind == 251 then return 42 end
  if kind == 252 then return nil end
  return r.str()
end

local function sandbox()
  local touched = {}
  local env = setmetatable({}, {
    __index = function(_, k) touched[#touched + 1] = tostring(k); error("global read " .. tostring(k)) end,
    __newindex = function(_, k) touched[#touched + 1] = tostring(k); error("global write " .. tostring(k)) end,
  })
  return env, touched
end

local function same(a, b, path)
  if type(a) ~= type(b) then error(path .. ": " .. type(a) .. " written, " .. type(b) .. " read back") end
  if type(a) ~= "table" then
    if a ~= b then error(path .. ": value changed") end
    return
  end
  for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then error(path .. "." .. tostring(k) .. ": read back but not written") end
  end
end

return function(data)
  local r = reader(data)
  local mods, all_profiles = {}, {}
  for i = 1, r.u8() % 4 + 1 do
    local m = { id = server_id(r), api_name = r.str(), plural_label = label(r), singular_label = label(r),
                generated_type = "custom", profiles = {} }
    if m.api_name == "" then m.api_name = "Module_" .. i end
    for j = 1, r.u8() % 4 do
      local p = { id = server_id(r), name = r.str() }
      m.profiles[j] = p
      all_profiles[#all_profiles + 1] = { id = p.id, name = p.name }
    end
    mods[i] = m
  end
  local heading = r.str()

  local list, err = modules.list_of({ modules = mods }, "modules", 200)
  if not list then
    assert(core.is_error(err) and err.code == "UNEXPECTED_RESPONSE", "reader: " .. tostring(err))
    return
  end
  local profiles = modules.list_of({ profiles = all_profiles }, "profiles", 200)
  if not profiles then return end
  for _, m in ipairs(list) do
    assert(m.id == nil or (type(m.id) == "string" and m.id:match("^%d+$")), "an id that is not digits got through")
    for _, p in ipairs(m.profiles) do
      assert(p.id == nil or (type(p.id) == "string" and p.id:match("^%d+$")), "a profile id that is not digits")
    end
  end

  local state = state_mod.index(list, profiles)
  state.read_profiles = true
  local items = {}
  for i, m in ipairs(list) do
    if m.id then
      local entry = { module = m.id }
      local what = r.u8()
      if what & 1 ~= 0 then entry.plural_label = "Undo Fuzz " .. i end
      if what & 2 ~= 0 then entry.singular_label = "Undo Fuzzed " .. i end
      local grants = {}
      for _, p in ipairs(profiles) do
        if p.id and r.u8() % 3 == 0 then grants[#grants + 1] = { id = p.id, _delete = r.u8() % 2 == 0 or nil } end
      end
      if #grants > 0 then entry.profiles = grants end
      local item = check.check_entry(i, entry)
      if item and state_mod.check_against_state(item, state) then items[#items + 1] = item end
    end
  end

  local entries, notes = state_mod.undo_entries(items, state, nil)
  local source = state_mod.undo_source(entries, notes, heading)
  local env, touched = sandbox()
  local chunk, lerr = load(source, "=undo", "t", env)
  assert(chunk, "the undo plan does not load: " .. tostring(lerr))
  local ok, back = pcall(chunk)
  assert(#touched == 0, "the undo plan touched globals: " .. table.concat(touched, ", "))
  assert(ok, "the undo plan raised: " .. tostring(back))
  same(entries, back, "undo")
end
