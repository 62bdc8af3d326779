--- A plan against the org's current state: reading it (modules, profiles),
-- the checks that need it, the diff of each entry, and the undo plan that
-- reverses a run.
-- @module zcrm.plan.state

local cjson = require "cjson.safe"
local modules = require "zcrm.modules"
local util = require "zcrm.util"
local check = require "zcrm.plan.check"
local exact = require "zcrm.plan.exact"

local plan_error, fold = check.plan_error, check.fold
local lua_value, lua_comment = util.lua_value, util.lua_comment

local M = {}

-- {==== current state: read, checked against, diffed

-- (A segment is never empty: core.check_module made it.)
local function find_module(state, segment)
  if not segment:find("%D") then return state.by_id[segment] end
  return state.by_api[segment]
end

-- The ids of a module's profile list, sorted, each once. Built without a
-- set: this runs for every entry of every plan run with state.
local function profile_ids(list)
  local ids, n = {}, 0
  if type(list) ~= "table" then return ids end
  for _, p in ipairs(list) do
    local id = type(p) == "table" and p.id
    if id then
      n = n + 1
      ids[n] = type(id) == "string" and id or tostring(id)
    end
  end
  if n > 1 then
    table.sort(ids)
    local k = 1
    for i = 2, n do
      if ids[i] ~= ids[k] then k = k + 1; ids[k] = ids[i] end
    end
    for i = k + 1, n do ids[i] = nil end
  end
  return ids
end

-- Only strings are labels: a server's null or number is no label to restore.
local function label(a, b)
  if type(a) == "string" then return a end
  if type(b) == "string" then return b end
  return nil
end

-- A module's state as the diff and the journal need it.
local function snapshot(m)
  local ids = profile_ids(m.profiles)
  return {
    id = m.id, api_name = type(m.api_name) == "string" and m.api_name or nil, generated_type = m.generated_type,
    plural_label = label(m.actual_plural_label, m.plural_label),
    singular_label = label(m.actual_singular_label, m.singular_label),
    profiles = ids,
  }
end

local function needs_profiles(items)
  for _, item in ipairs(items) do
    if item.update.profiles or item.profile_set then return true end
  end
  return false
end

-- Reads every module (one call) and, when entries name profiles, the profile
-- list (one more call, in parallel). Modules of the plan whose profile list is
-- truncated in the list answer are read one by one. Given `state`, read
-- earlier in the same run (zcrm.apply_orgs checks every org, then applies),
-- only what it lacks for these items is read: the items of a plan function
-- may differ between the two calls.
function M.read_state(client, items, state)
  if not (state and (state.read_profiles or not needs_profiles(items))) then
    local mreq = client:submit("get_modules")
    local preq = needs_profiles(items) and client:submit("get_profiles")
    local mods, err = client:wait(mreq)
    if not mods then return nil, err end
    local profiles = {}
    if preq then
      local perr
      profiles, perr = client:wait(preq)
      if not profiles then return nil, perr end
    end
    state = M.index(mods, profiles)
    state.read_profiles = preq ~= false
  end
  for _, item in ipairs(items) do
    local m = item.segment and find_module(state, item.segment)
    if m and (type(m.profiles) ~= "table" or m.has_more_profiles == true) then
      local full, ferr = client:get_module(m.id)
      if not full then return nil, ferr end
      m.profiles, m.has_more_profiles = full.profiles or {}, false
    end
  end
  return state
end

-- Of a module in the list answer, what the checks, the diff and the undo
-- plan read. The state is held until the run ends (with --orgs, every org's
-- until its apply): the rest of the answer (some 40 fields a module) is not.
local function slim(m)
  return { id = m.id, api_name = m.api_name, generated_type = m.generated_type,
           plural_label = m.plural_label, singular_label = m.singular_label,
           actual_plural_label = m.actual_plural_label, actual_singular_label = m.actual_singular_label,
           profiles = m.profiles, has_more_profiles = m.has_more_profiles }
end

--- index(mods, profiles) -> the state of the org from the module and profile
-- lists as read (ids already checked by zcrm.modules).
function M.index(mods, profiles)
  local state = { by_id = {}, by_api = {}, plural_owner = {}, singular_owner = {},
                  profile_by_id = {}, profile_by_name = {} }
  for _, m in ipairs(mods) do
    if type(m) == "table" and m.id then
      m = slim(m)
      state.by_id[m.id] = m
      if m.api_name then state.by_api[m.api_name] = m end
      -- (each label by name: no list of two names made per module)
      local plural_owner, singular_owner = state.plural_owner, state.singular_owner
      if type(m.plural_label) == "string" then plural_owner[fold(m.plural_label)] = m end
      if type(m.actual_plural_label) == "string" then plural_owner[fold(m.actual_plural_label)] = m end
      if type(m.singular_label) == "string" then singular_owner[fold(m.singular_label)] = m end
      if type(m.actual_singular_label) == "string" then singular_owner[fold(m.actual_singular_label)] = m end
      for _, p in ipairs(type(m.profiles) == "table" and m.profiles or {}) do
        if p.id and p.name then state.profile_by_id[p.id] = p.name end
      end
    end
  end
  for _, p in ipairs(profiles) do
    if p.id then state.profile_by_id[p.id] = p.name or state.profile_by_id[p.id] end
  end
  modules.by_name(profiles, state.profile_by_name)
  return state
end

-- Replaces profile names by ids in item.update (a copy of it), through the
-- one resolver (zcrm.modules); with the profile list read, unknown ids are
-- faults too.
local function resolve_profiles(item, state)
  local update, err = modules.resolve_update(item.update, state.profile_by_name,
    state.read_profiles and state.profile_by_id or nil)
  if not update then return nil, err end
  item.update = update
  return true
end

--- diff(before, update, names) -> change: what `update` does to a module whose
-- state is `before` (a snapshot). Profile names come from `names` (id -> name).
function M.diff(before, update, names)
  local change = { module = before.api_name, id = before.id, granted = {}, revoked = {} }
  local changed = false
  local new = update.plural_label
  if new ~= nil and new ~= before.plural_label then
    change.plural_label = { old = before.plural_label, new = new }
    changed = true
  end
  new = update.singular_label
  if new ~= nil and new ~= before.singular_label then
    change.singular_label = { old = before.singular_label, new = new }
    changed = true
  end
  local wanted = update.profiles
  if wanted then
    local has = {}
    for _, id in ipairs(before.profiles) do has[id] = true end
    for _, p in ipairs(wanted) do
      local revoke = p._delete ~= nil
      if revoke == (has[p.id] == true) then
        local list = revoke and change.revoked or change.granted
        list[#list + 1] = { id = p.id, name = names[p.id] }
        has[p.id] = not revoke or nil
        changed = true
      end
    end
    change.profiles_after = next(has) ~= nil
  else -- the profiles stay as they are (ids are never false)
    change.profiles_after = before.profiles[1] ~= nil
  end
  change.noop = not changed
  return change
end

-- The update that makes exactly `change`: only the fields that differ.
function M.reduced_update(change)
  local u = {}
  if change.plural_label then u.plural_label = change.plural_label.new end
  if change.singular_label then u.singular_label = change.singular_label.new end
  if #change.granted + #change.revoked > 0 then
    local profiles = {}
    for _, p in ipairs(change.granted) do profiles[#profiles + 1] = { id = p.id } end
    for _, p in ipairs(change.revoked) do profiles[#profiles + 1] = { id = p.id, _delete = cjson.null } end
    u.profiles = profiles
  end
  return u
end

-- The entry that undoes `change` (old labels back, grants revoked, revokes
-- granted), and a note for the undo file's comments: module id, profile names.
function M.undo_entry(change)
  local e, note = { module = change.module or change.id }, { id = change.id, names = {} }
  for _, field in ipairs { "plural_label", "singular_label" } do
    if change[field] then e[field] = change[field].old end
  end
  local profiles = {}
  for _, p in ipairs(change.revoked) do profiles[#profiles + 1] = { id = p.id } end
  for _, p in ipairs(change.granted) do profiles[#profiles + 1] = { id = p.id, _delete = true } end
  for _, p in ipairs(change.revoked) do note.names[p.id] = p.name end
  for _, p in ipairs(change.granted) do note.names[p.id] = p.name end
  if #profiles > 0 then e.profiles = profiles end
  return e, note
end

-- A create entry against the state: profile names and ids must exist, and its
-- labels must be free. A module that already has both labels is taken as this
-- entry's, created by an earlier run: the change is then a no-op, so a rerun
-- with diff converges instead of failing on DUPLICATE_DATA.
local function check_create(item, state)
  local ok, perr = resolve_profiles(item, state)
  if not ok then return nil, perr end
  local u = item.update
  local plural, singular = state.plural_owner[fold(u.plural_label)], state.singular_owner[fold(u.singular_label)]
  local change = { create = true, module = item.module, granted = {}, revoked = {},
                   plural_label = { new = u.plural_label }, singular_label = { new = u.singular_label } }
  if plural and plural == singular then
    change.noop, change.id = true, plural.id
  else
    for field, owner in pairs { plural_label = plural, singular_label = singular } do
      if owner then
        return nil, plan_error("DUPLICATE_DATA", string.format("%s '%s' is already the %s of module %s",
          field, u[field], field:gsub("_", " "), owner.api_name), field, { module = owner.api_name, id = owner.id })
      end
    end
    for _, p in ipairs(u.profiles) do
      change.granted[#change.granted + 1] = { id = p.id, name = state.profile_by_id[p.id] }
    end
    change.noop = false
  end
  item.change = change
  return true
end

-- The checks that need the org's state, for one entry.
function M.check_against_state(item, state)
  if item.create then return check_create(item, state) end
  local m = find_module(state, item.segment)
  if not m then
    return nil, plan_error("INVALID_MODULE", string.format("no module '%s' in this org", item.segment), "module",
      nil, "Check the module's API name or id: zcrm modules lists the org's modules.")
  end
  item.current = snapshot(m)
  item.names = state.profile_by_id
  -- No refusal by generated_type: Zoho's newer OpenAPI relabels standard
  -- modules (Deals), so the server decides which modules it changes.
  if item.profile_set then
    local profiles, xerr = exact.expand(item.profile_set, item.current, state)
    if not profiles then return nil, xerr end
    local update = { profiles = profiles }
    for k, v in pairs(item.update) do update[k] = v end
    item.update = update
  end
  local ok, perr = resolve_profiles(item, state)
  if not ok then return nil, perr end
  for i = 1, 2 do -- a label another module has (no table made per entry)
    local field = i == 1 and "plural_label" or "singular_label"
    local text = item.update[field]
    local owner = text and (i == 1 and state.plural_owner or state.singular_owner)[fold(text)]
    if owner and owner.id ~= m.id then
      return nil, plan_error("DUPLICATE_DATA", string.format(
        "%s '%s' is already the %s of module %s", field, text, field:gsub("_", " "), owner.api_name), field,
        { module = owner.api_name, id = owner.id })
    end
  end
  local change = M.diff(item.current, item.update, state.profile_by_id)
  if not change.profiles_after then
    return nil, plan_error("MINIMUM_DATA_NOT_FOUND",
      string.format("this entry would leave %s with no profile; each module keeps at least one", m.api_name), "profiles")
  end
  item.change = change
  return true
end

-- }====

-- {==== undo plan file

-- Every value is a literal (util.lua_value), every comment one line
-- (util.lua_comment): the undo plan is code that apply and validate run.
local function render_undo_entry(e, note)
  note = note or { names = {} }
  local parts = { "module = " .. lua_value(e.module) }
  for _, field in ipairs { "plural_label", "singular_label" } do
    if e[field] then parts[#parts + 1] = field .. " = " .. lua_value(e[field]) end
  end
  local head = "  { " .. table.concat(parts, ", ")
  local comment = note.id and (" " .. lua_comment("module id " .. tostring(note.id))) or ""
  if not e.profiles then return head .. " }," .. comment end
  local lines = { head .. "," .. comment, "    profiles = {" }
  for _, p in ipairs(e.profiles) do
    local name = note.names[p.id]
    lines[#lines + 1] = "      { id = " .. lua_value(p.id) .. (p._delete and ", _delete = true" or "") .. " },"
      .. (name and (" " .. lua_comment((p._delete and "revoke " or "grant ") .. tostring(name))) or "")
  end
  lines[#lines + 1] = "    },"
  lines[#lines + 1] = "  },"
  return table.concat(lines, "\n")
end

--- undo_source(entries, notes, note) -> the text of a plan file that applies
-- `entries`; notes[i] (optional) = { id =, names = { [profile id] = name } }.
function M.undo_source(entries, notes, heading)
  local lines = {
    lua_comment("Undo plan written by zcrm" .. (heading and (" " .. heading) or "") .. "."),
    "-- It restores the labels and profile access read before that run. Apply it with",
    "--   zcrm apply THIS_FILE      or      client:apply(\"THIS_FILE\", { diff = true })",
    "return {",
  }
  for i, e in ipairs(entries) do lines[#lines + 1] = render_undo_entry(e, notes and notes[i]) end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- Undo entries from the state before the first run: the journal's record when
-- resuming (the org is half changed by then), else the state just read.
function M.undo_entries(items, state, journal)
  local recorded = journal and journal.state or {}
  local entries, notes = {}, {}
  for _, item in ipairs(items) do
    -- A module created by the run stays: the API has no delete (see README, Plans).
    if item.create then goto continue end
    local before = recorded[item.current.id] or item.current
    -- Against the state just read, the entry's change is the diff already made.
    local change = before == item.current and item.change or M.diff(before, item.update, state.profile_by_id)
    if not change.noop then
      local n = #entries + 1
      entries[n], notes[n] = M.undo_entry(change)
    end
    ::continue::
  end
  return entries, notes
end

-- }====

return M
