--- Plans: many module updates applied as one change (issue 6).
--
-- A plan is a list of entries `{ module =, plural_label =, singular_label =,
-- profiles = }`. `apply` checks every entry before anything is sent, can read the
-- current state to diff against it and to write an undo plan, sends the updates
-- concurrently through the engine, and records each completed item in an
-- append-only journal, so that a run killed at any point resumes without
-- repeating what completed.
--
-- Returns: `apply` gives a report table, or `nil, err` when nothing could be sent
-- (an invalid plan, a state read that failed, a journal that cannot be opened).
-- Failures of single entries are in `report.failed`, not an error return: a bulk
-- run that is half done is a result to read, like Zoho's 207.

local cjson = require "cjson.safe"
local core = require "zcrm.core"
local exact = require "zcrm.plan.exact"

local M = {}

local JOURNAL_FORMAT = 1

-- {==== errors

-- A fault found here, before any request: like the core's own validation
-- errors it has Zoho's code for the same fault but no HTTP status.
local function plan_error(code, message, field, details)
  local e = core.error { kind = "validation", code = code, message = message, field = field, details = details }
  e.status = nil
  return e
end

local function io_error(code, message)
  return core.error { kind = "io", code = code, message = message, retryable = false }
end

local function entry_fault(item, err)
  return { index = item.index, module = item.module, error = err }
end

local function invalid_plan(faults, total)
  return core.error {
    kind = "validation", code = "INVALID_PLAN",
    message = string.format("%d of %d entries are invalid (first: entry %d: %s); nothing was sent",
      #faults, total, faults[1].index, tostring(faults[1].error)),
    details = { errors = faults },
    resolution = "Fix the entries listed in err.details.errors (each has its index), "
      .. "or pass partial = true to send only the valid ones.",
  }
end

-- }====

-- {==== canonical form and content hash (journal keys)

local function sort_keys(t)
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

-- One stable string per value: the same entry hashes the same in every run.
local function canonical(v, out)
  if type(v) == "table" then
    out[#out + 1] = "{"
    for _, k in ipairs(sort_keys(v)) do
      canonical(k, out)
      out[#out + 1] = "="
      canonical(v[k], out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  elseif type(v) == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif math.type(v) == "integer" then
    out[#out + 1] = string.format("%d", v)
  elseif type(v) == "number" then
    out[#out + 1] = string.format("%.17g", v)
  elseif v == cjson.null then
    out[#out + 1] = "null"
  else
    out[#out + 1] = tostring(v)
  end
  return out
end

-- FNV-1a, 64 bits: Lua 5.4 integers wrap, which is the arithmetic FNV wants.
local function fnv1a64(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001b3
  end
  return string.format("%016x", h)
end

--- hash(entry) -> 16 hex digits identifying the entry's content.
function M.hash(entry)
  return fnv1a64(table.concat(canonical(entry, {})))
end

-- }====

-- {==== loading plans

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve_path(dir, path)
  if path:sub(1, 1) == "/" or not dir then return path end
  return dir .. "/" .. path
end

-- A CSV parser for RFC 4180 files: quoted fields, "" inside quotes, CRLF or LF.
local function parse_csv(text)
  local rows, row, pos, len = {}, {}, 1, #text
  while true do
    local value
    if text:sub(pos, pos) == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = text:find('"', i, true)
        if not q then return nil, string.format("record %d: unterminated quoted field", #rows + 1) end
        parts[#parts + 1] = text:sub(i, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          i = q + 2
        else
          pos = q + 1
          break
        end
      end
      value = table.concat(parts)
    else
      local stop = text:find("[,\r\n]", pos) or len + 1
      value = text:sub(pos, stop - 1)
      pos = stop
    end
    row[#row + 1] = value
    local sep = text:sub(pos, pos)
    if sep == "," then
      pos = pos + 1
    elseif sep == "\r" or sep == "\n" or sep == "" then
      pos = pos + ((text:sub(pos, pos + 1) == "\r\n") and 2 or #sep)
      if not (#row == 1 and row[1] == "") then rows[#rows + 1] = row end -- blank line
      row = {}
      if pos > len then break end
    else
      return nil, string.format("record %d: text after a closing quote", #rows + 1)
    end
  end
  return rows
end

--- read_csv(path) -> list of records keyed by the header row's names, or nil, message.
function M.read_csv(path)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, oerr end
  local text = f:read("a")
  f:close()
  text = text:gsub("^\239\187\191", "") -- a BOM from spreadsheet exports
  local rows, perr = parse_csv(text)
  if not rows then return nil, path .. ": " .. perr end
  local header = rows[1] or {}
  local records = {}
  for r = 2, #rows do
    local rec = {}
    for j, name in ipairs(header) do
      rec[(name:gsub("^%s+", ""):gsub("%s+$", ""))] = rows[r][j]
    end
    records[#records + 1] = rec
  end
  return records
end

-- What a plan function receives: client (absent offline), dir (the plan file's
-- directory), args, read_csv, and path(p) for a file beside the plan.
local function context(ctx)
  local c = {}
  for k, v in pairs(ctx or {}) do c[k] = v end
  c.args = c.args or {}
  c.read_csv = M.read_csv
  c.path = function(p) return resolve_path(c.dir, p) end
  return c
end

--- build(plan, ctx) -> list, or nil, err. A plan is a list of entries, or a
-- function(ctx) returning one; see `context` for what ctx holds.
function M.build(plan, ctx)
  if type(plan) == "function" then
    local ok, list, ferr = pcall(plan, context(ctx))
    if not ok then
      return nil, plan_error("INVALID_PLAN", "the plan function raised: " .. tostring(list))
    end
    if list == nil and ferr ~= nil then
      return nil, plan_error("INVALID_PLAN", "the plan function failed: " .. tostring(ferr))
    end
    plan = list
  end
  if type(plan) ~= "table" then
    return nil, plan_error("INVALID_PLAN", "a plan is a list of entries (or a function returning one), got " .. type(plan))
  end
  return plan
end

--- load(path, ctx) -> list, or nil, err: runs a plan file (a Lua file returning
-- a list, or a function of ctx); ctx.dir defaults to the file's directory.
function M.load(path, ctx)
  local chunk, lerr = loadfile(path, "t")
  if not chunk then return nil, plan_error("INVALID_PLAN", "cannot load plan: " .. tostring(lerr)) end
  local ok, value = pcall(chunk)
  if not ok then return nil, plan_error("INVALID_PLAN", "plan file raised: " .. tostring(value)) end
  local c = {}
  for k, v in pairs(ctx or {}) do c[k] = v end
  c.dir = c.dir or dirname(path)
  return M.build(value, c)
end

-- }====

-- {==== checks of single entries (no network)

local function module_name(m)
  if type(m) == "string" then return m end
  if math.type(m) == "integer" then return string.format("%d", m) end
  return nil
end

-- Returns item, or nil, fault. An item carries what the later stages need.
local function check_entry(index, entry)
  local item = { index = index, entry = entry }
  if type(entry) ~= "table" then
    return nil, entry_fault(item, plan_error("INVALID_DATA", "an entry is a table, got " .. type(entry)))
  end
  item.module = module_name(entry.module)
  if entry.module == nil then
    return nil, entry_fault(item, plan_error("INVALID_MODULE", "the entry has no 'module' (an id or API name)", "module"))
  end
  if not item.module then
    return nil, entry_fault(item, plan_error("INVALID_MODULE", "'module' is an id or API name, got " .. type(entry.module), "module"))
  end
  local ok, segment, merr = pcall(core.check_module, entry.module)
  if not ok or not segment then
    return nil, entry_fault(item, ok and merr or plan_error("INVALID_MODULE", tostring(segment), "module"))
  end
  item.segment = segment
  item.module = segment
  local update = {}
  for k, v in pairs(entry) do
    if k ~= "module" and k ~= "profile_set" then update[k] = v end
  end
  if entry.profile_set ~= nil then
    if entry.profiles ~= nil then
      return nil, entry_fault(item, plan_error("INVALID_DATA",
        "give profiles (grants and revokes) or profile_set (exactly these), not both", "profile_set"))
    end
    local set, serr = exact.check(entry.profile_set)
    if not set then return nil, entry_fault(item, serr) end
    item.profile_set = set
    if next(update) == nil then item.update = {}; return item end
  end
  local cok, clean, verr = pcall(core.prepare_update, update)
  if not cok or not clean then
    return nil, entry_fault(item, cok and verr or plan_error("INVALID_DATA", tostring(clean)))
  end
  item.update = clean
  return item
end

-- The journal key: the entry's index, module and a hash of its content. Only
-- runs with a journal need it, and hashing in Lua is most of the CPU that apply
-- spends per entry (bench/README.md, figure 2), so it is computed only then.
local function set_key(item)
  item.hash = M.hash(item.entry)
  item.key = string.format("%d:%s:%s", item.index, item.segment, item.hash)
end

local function fold(label)
  return (label:lower():gsub("%s+", " "))
end

-- Plan-level: a module given twice, a label given twice. With state, modules
-- are compared by id, so an API name and its id count as the same module.
local function check_duplicates(items, faults)
  local modules = {}
  local label_sets = { plural_label = {}, singular_label = {} }
  for _, item in ipairs(items) do
    local key = item.current and item.current.id or item.segment
    local first = modules[key]
    if first then
      faults[#faults + 1] = entry_fault(item, plan_error("DUPLICATE_DATA",
        string.format("module %s is already updated by entry %d; give each module once", item.module, first.index),
        "module", { index = first.index }))
    else
      modules[key] = item
    end
    for field, seen in pairs(label_sets) do
      local label = item.update[field]
      if label then
        local folded = fold(label)
        local other = seen[folded]
        if other and other ~= item then
          faults[#faults + 1] = entry_fault(item, plan_error("DUPLICATE_DATA",
            string.format("%s '%s' is also given by entry %d; labels must be unique", field, label, other.index),
            field, { index = other.index }))
        else
          seen[folded] = item
        end
      end
    end
  end
end

local function check_all(list)
  local items, faults = {}, {}
  for i = 1, #list do
    local item, fault = check_entry(i, list[i])
    if item then items[#items + 1] = item else faults[#faults + 1] = fault end
  end
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      faults[#faults + 1] = { index = 0, error = plan_error("INVALID_PLAN",
        string.format("the plan has a key %s outside its list of entries", tostring(k))) }
      break
    end
  end
  return items, faults
end

local function by_index(a, b)
  return a.index < b.index
end

--- validate(plan) -> true, or nil, err (code INVALID_PLAN, err.details.errors =
-- { { index =, module =, error = }, ... }). No network: the checks that need the
-- org's current state run in apply (with diff or undo_file).
function M.validate(plan, ctx)
  local list, lerr = M.build(plan, ctx)
  if not list then return nil, lerr end
  local items, faults = check_all(list)
  check_duplicates(items, faults)
  if #faults > 0 then
    table.sort(faults, by_index)
    return nil, invalid_plan(faults, #list)
  end
  return true
end

-- }====

-- {==== current state: read, checked against, diffed

local function find_module(state, segment)
  if segment:match("^%d+$") then return state.by_id[segment] end
  return state.by_api[segment]
end

local function profile_ids(list)
  local set = {}
  for _, p in ipairs(type(list) == "table" and list or {}) do
    if type(p) == "table" and p.id then set[tostring(p.id)] = true end
  end
  return set
end

-- A module's state as the diff and the journal need it.
local function snapshot(m)
  local ids = {}
  for id in pairs(profile_ids(m.profiles)) do ids[#ids + 1] = id end
  table.sort(ids)
  return {
    id = m.id, api_name = m.api_name, generated_type = m.generated_type,
    plural_label = m.actual_plural_label or m.plural_label,
    singular_label = m.actual_singular_label or m.singular_label,
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
-- truncated in the list answer are read one by one.
local function read_state(client, items)
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
  local state = { by_id = {}, by_api = {}, plural_owner = {}, singular_owner = {},
                  profile_by_id = {}, profile_by_name = {} }
  for _, m in ipairs(mods) do
    if type(m) == "table" and m.id then
      state.by_id[m.id] = m
      if m.api_name then state.by_api[m.api_name] = m end
      for _, k in ipairs { "plural_label", "actual_plural_label" } do
        if type(m[k]) == "string" then state.plural_owner[fold(m[k])] = m end
      end
      for _, k in ipairs { "singular_label", "actual_singular_label" } do
        if type(m[k]) == "string" then state.singular_owner[fold(m[k])] = m end
      end
      for _, p in ipairs(type(m.profiles) == "table" and m.profiles or {}) do
        if p.id and p.name then state.profile_by_id[p.id] = p.name end
      end
    end
  end
  for _, item in ipairs(items) do
    local m = find_module(state, item.segment)
    if m and (type(m.profiles) ~= "table" or m.has_more_profiles == true) then
      local full, ferr = client:get_module(m.id)
      if not full then return nil, ferr end
      m.profiles = full.profiles or {}
    end
  end
  for _, p in ipairs(profiles) do
    if p.id then
      state.profile_by_id[p.id] = p.name or state.profile_by_id[p.id]
      if p.name then
        state.profile_by_name[p.name] = state.profile_by_name[p.name] and "ambiguous" or p.id
      end
    end
  end
  state.read_profiles = preq ~= false
  return state
end

-- Replaces profile names by ids in item.update (a copy of it); faults name the
-- entry. Without the profile list (no state), names stay for the engine.
local function resolve_profiles(item, state)
  local list = item.update.profiles
  if not list then return true end
  local resolved = {}
  for i, p in ipairs(list) do
    local id = p.id
    if id == nil then
      id = state.profile_by_name[p.name]
      if id == nil or id == "ambiguous" then
        return nil, plan_error("INVALID_DATA",
          id and string.format("more than one profile is named '%s'; use its id", p.name)
             or string.format("no profile named '%s' in this org", p.name),
          string.format("profiles[%d].name", i))
      end
    elseif state.read_profiles and not state.profile_by_id[id] then
      return nil, plan_error("INVALID_DATA", string.format("no profile with id %s in this org", id),
        string.format("profiles[%d].id", i))
    end
    resolved[i] = { id = id, _delete = p._delete }
  end
  local update = {}
  for k, v in pairs(item.update) do update[k] = v end
  update.profiles = resolved
  item.update = update
  return true
end

--- diff(before, update, names) -> change: what `update` does to a module whose
-- state is `before` (a snapshot). Profile names come from `names` (id -> name).
local function diff(before, update, names)
  local change = { module = before.api_name, id = before.id, granted = {}, revoked = {} }
  local has = {}
  for _, id in ipairs(before.profiles) do has[id] = true end
  local changed = false
  for _, field in ipairs { "plural_label", "singular_label" } do
    local new = update[field]
    if new ~= nil and new ~= before[field] then
      change[field] = { old = before[field], new = new }
      changed = true
    end
  end
  for _, p in ipairs(update.profiles or {}) do
    local revoke = p._delete ~= nil
    if revoke == (has[p.id] == true) then
      local list = revoke and change.revoked or change.granted
      list[#list + 1] = { id = p.id, name = names[p.id] }
      has[p.id] = not revoke or nil
      changed = true
    end
  end
  change.noop = not changed
  change.profiles_after = next(has) ~= nil
  return change
end

-- The update that makes exactly `change`: only the fields that differ.
local function reduced_update(change)
  local u = {}
  for _, field in ipairs { "plural_label", "singular_label" } do
    if change[field] then u[field] = change[field].new end
  end
  local profiles = {}
  for _, p in ipairs(change.granted) do profiles[#profiles + 1] = { id = p.id } end
  for _, p in ipairs(change.revoked) do profiles[#profiles + 1] = { id = p.id, _delete = cjson.null } end
  if #profiles > 0 then u.profiles = profiles end
  return u
end

-- The entry that undoes `change` (old labels back, grants revoked, revokes
-- granted), and a note for the undo file's comments: module id, profile names.
local function undo_entry(change)
  local e, note = { module = change.module }, { id = change.id, names = {} }
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

-- The checks that need the org's state, for one entry.
local function check_against_state(item, state)
  local m = find_module(state, item.segment)
  if not m then
    return nil, plan_error("INVALID_MODULE", string.format("no module '%s' in this org", item.segment), "module")
  end
  item.current = snapshot(m)
  item.names = state.profile_by_id
  if m.generated_type ~= nil and m.generated_type ~= "custom" then
    return nil, plan_error("NOT_SUPPORTED", string.format(
      "%s is not a custom module (generated_type '%s'); only custom modules can be updated through the API",
      m.api_name, tostring(m.generated_type)), "module")
  end
  if item.profile_set then
    local profiles, xerr = exact.expand(item.profile_set, item.current, state)
    if not profiles then return nil, xerr end
    local update = { profiles = profiles }
    for k, v in pairs(item.update) do update[k] = v end
    item.update = update
  end
  local ok, perr = resolve_profiles(item, state)
  if not ok then return nil, perr end
  for field, owners in pairs { plural_label = state.plural_owner, singular_label = state.singular_owner } do
    local label = item.update[field]
    local owner = label and owners[fold(label)]
    if owner and owner.id ~= m.id then
      return nil, plan_error("DUPLICATE_DATA", string.format(
        "%s '%s' is already the %s of module %s", field, label, field:gsub("_", " "), owner.api_name), field,
        { module = owner.api_name, id = owner.id })
    end
  end
  local change = diff(item.current, item.update, state.profile_by_id)
  if not change.profiles_after then
    return nil, plan_error("MINIMUM_DATA_NOT_FOUND",
      string.format("this entry would leave %s with no profile; each module keeps at least one", m.api_name), "profiles")
  end
  item.change = change
  return true
end

-- }====

-- {==== the journal: JSON lines, one per completed item, on disk before we move on

local sync = core.fsync or function(fh) return fh:flush() end

local Journal = {}
Journal.__index = Journal

local function read_journal(path)
  local f = io.open(path, "rb")
  if not f then return { applied = {}, lines = 0, text = "" } end
  local text = f:read("a")
  f:close()
  local j = { applied = {}, lines = 0, text = text }
  for line in text:gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    -- A line torn by a kill is not JSON: it recorded nothing, so it is skipped.
    if type(rec) == "table" then
      j.lines = j.lines + 1
      if rec.kind == "item" and rec.status == "applied" and type(rec.key) == "string" then
        j.applied[rec.key] = true
      elseif rec.kind == "state" and type(rec.modules) == "table" and not j.state then
        j.state = rec.modules
      end
    end
  end
  return j
end

--- Opens (or creates) the journal at `path`. read_only: read what it holds, write nothing.
local function open_journal(path, read_only)
  if read_only then return setmetatable(read_journal(path), Journal) end
  local fh, err = io.open(path, "ab")
  if not fh then return nil, io_error("JOURNAL_ERROR", "cannot open journal: " .. tostring(err)) end
  -- One run per journal: a second one refuses at once. The lock dies with its
  -- process, so a journal left by a killed run is free again.
  local locked, lerr, busy = core.lock_file(fh)
  if not locked then
    fh:close()
    return nil, io_error(busy and "JOURNAL_BUSY" or "JOURNAL_ERROR", busy
      and string.format("journal %s is in use by another run (it holds the lock); wait for it to finish", path)
      or string.format("cannot lock journal %s: %s", path, tostring(lerr)))
  end
  local j = read_journal(path)
  j.fh = fh
  if #j.text > 0 and j.text:sub(-1) ~= "\n" then
    fh:write("\n") -- end the torn line, so the next record starts on its own
  end
  j.text = nil
  return setmetatable(j, Journal)
end

function Journal:write(rec)
  if not self.fh then return true end
  rec.v = JOURNAL_FORMAT
  local line = assert(cjson.encode(rec))
  local ok, err = self.fh:write(line, "\n")
  if ok then ok, err = sync(self.fh) end
  if not ok then return nil, io_error("JOURNAL_ERROR", "cannot write journal: " .. tostring(err)) end
  return true
end

function Journal:close()
  if self.fh then self.fh:close(); self.fh = nil end
end

-- }====

-- {==== undo plan file

local function lua_string(s)
  return string.format("%q", s)
end

local function render_undo_entry(e, note)
  note = note or { names = {} }
  local parts = { "module = " .. lua_string(e.module) }
  for _, field in ipairs { "plural_label", "singular_label" } do
    if e[field] then parts[#parts + 1] = field .. " = " .. lua_string(e[field]) end
  end
  local head = "  { " .. table.concat(parts, ", ")
  local comment = note.id and (" -- " .. note.id) or ""
  if not e.profiles then return head .. " }," .. comment end
  local lines = { head .. "," .. comment, "    profiles = {" }
  for _, p in ipairs(e.profiles) do
    local name = note.names[p.id]
    lines[#lines + 1] = "      { id = " .. lua_string(p.id) .. (p._delete and ", _delete = true" or "") .. " },"
      .. (name and (" -- " .. (p._delete and "revoke " or "grant ") .. name:gsub("[\r\n]", " ")) or "")
  end
  lines[#lines + 1] = "    },"
  lines[#lines + 1] = "  },"
  return table.concat(lines, "\n")
end

--- undo_source(entries, notes, note) -> the text of a plan file that applies
-- `entries`; notes[i] (optional) = { id =, names = { [profile id] = name } }.
function M.undo_source(entries, notes, heading)
  local lines = {
    "-- Undo plan written by zcrm" .. (heading and (" " .. heading) or "") .. ".",
    "-- It restores the labels and profile access read before that run. Apply it with",
    "--   zcrm apply THIS_FILE --diff      or      client:apply(\"THIS_FILE\", { diff = true })",
    "return {",
  }
  for i, e in ipairs(entries) do lines[#lines + 1] = render_undo_entry(e, notes and notes[i]) end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- Written whole, then renamed over `path`: a reader never sees half a plan.
local function write_file_atomically(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  if ok then ok, werr = sync(f) end
  f:close()
  if not ok then os.remove(tmp); return nil, werr end
  local rok, rerr = os.rename(tmp, path)
  if not rok then os.remove(tmp); return nil, rerr end
  return true
end

-- }====

-- {==== apply

local KNOWN_OPTIONS = {
  dry_run = "boolean", diff = "boolean", undo_file = "string", journal = "string",
  partial = "boolean", concurrency = "number", on_result = "function", on_progress = "function",
  on_plan = "function",
  read_state = "boolean", args = "table", dir = "string",
}

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("apply: opts must be a table", 3) end
  for k, v in pairs(opts) do
    local want = KNOWN_OPTIONS[k]
    if not want then error("apply: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then error(string.format("apply: option '%s' must be a %s, got %s", k, want, type(v)), 3) end
  end
  local c = opts.concurrency
  if c ~= nil and (math.type(c) ~= "integer" or c < 1) then error("apply: concurrency must be a positive integer", 3) end
  return opts
end

-- Errors after which sending more cannot succeed: stop, and report what was not sent.
local function fatal(err)
  return err.kind == "auth" or err.kind == "config" or err.kind == "io" or err.code == "CREDIT_LIMIT"
end

local function error_fields(err)
  if not core.is_error(err) then return { code = "ERROR", message = tostring(err) } end
  return { kind = err.kind, code = err.code, status = err.status, message = err.message, field = err.field }
end

-- Calls a user callback; an error in it is kept, never breaks the run.
local function call_back(report, fn, ...)
  if not fn then return end
  local ok, err = pcall(fn, ...)
  if not ok then report.callback_errors[#report.callback_errors + 1] = tostring(err) end
end

-- An exact profile set needs the state: its revokes depend on who has access.
local function needs_state(items)
  for _, item in ipairs(items) do
    if item.profile_set then return true end
  end
  return false
end

-- Runs the checks; returns the valid items, or nil, err. Duplicates are looked
-- for among all entries that name a module, even those invalid for another reason.
local function prepare(client, list, opts, report)
  local items, faults = check_all(list)
  local state
  if opts.diff or opts.undo_file or opts.read_state or needs_state(items) then
    local err
    state, err = read_state(client, items)
    if not state then return nil, err end
    for _, item in ipairs(items) do
      local ok, serr = check_against_state(item, state)
      if not ok then faults[#faults + 1] = entry_fault(item, serr) end
    end
  end
  check_duplicates(items, faults)
  if #faults == 0 then return items, nil, state end
  table.sort(faults, by_index)
  if not opts.partial then return nil, invalid_plan(faults, #list) end
  local bad = {}
  for _, f in ipairs(faults) do bad[f.index] = true end
  local valid = {}
  for _, item in ipairs(items) do
    if not bad[item.index] then valid[#valid + 1] = item end
  end
  report.invalid = faults
  return valid, nil, state
end

-- Undo entries from the state before the first run: the journal's record when
-- resuming (the org is half changed by then), else the state just read.
local function undo_entries(items, state, journal)
  local recorded = journal and journal.state or {}
  local entries, notes = {}, {}
  for _, item in ipairs(items) do
    local before = recorded[item.current.id] or item.current
    local change = diff(before, item.update, state.profile_by_id)
    if not change.noop then
      local n = #entries + 1
      entries[n], notes[n] = undo_entry(change)
    end
  end
  return entries, notes
end

local function state_record(items)
  local modules = {}
  for _, item in ipairs(items) do modules[item.current.id] = item.current end
  return { kind = "state", time = os.time(), modules = modules }
end

local function change_report(item)
  local c = item.change
  return {
    index = item.index, module = c.module, id = c.id,
    plural_label = c.plural_label, singular_label = c.singular_label,
    granted = c.granted, revoked = c.revoked, before = item.current, names = item.names,
  }
end


-- Decides, per item, whether it is sent and what is sent.
local function plan_work(items, opts, journal, report)
  local work = {}
  for _, item in ipairs(items) do
    if item.change and not item.change.noop then report.changes[#report.changes + 1] = change_report(item) end
    if journal and journal.applied[item.key] then
      report.skipped[#report.skipped + 1] = { index = item.index, module = item.module, reason = "journal" }
    elseif (opts.diff or item.profile_set) and item.change.noop then
      report.skipped[#report.skipped + 1] = { index = item.index, module = item.module, reason = "no change" }
    else
      -- An entry with an exact profile set says how the module should be, so it
      -- is always compared with the state: only what differs is sent.
      item.send = (opts.diff or item.profile_set) and reduced_update(item.change) or item.update
      work[#work + 1] = item
    end
  end
  return work
end

local function record_result(report, journal, item, res, err)
  if res then
    report.applied[#report.applied + 1] = { index = item.index, module = item.module, id = res.id, code = res.code }
  else
    report.failed[#report.failed + 1] = { index = item.index, module = item.module, error = err }
  end
  if not journal then return true end
  local rec = { kind = "item", key = item.key, index = item.index, module = item.module, hash = item.hash,
                time = os.time() }
  if res then
    rec.status, rec.code, rec.id = "applied", res.code, res.id
  else
    rec.status, rec.error = "failed", error_fields(err)
  end
  return journal:write(rec)
end

-- Sends the work through the engine, at most `window` in flight, and handles
-- each completion here, in the caller's loop: journal line on disk first, then
-- the report and the callbacks.
local function send_all(client, work, opts, report, journal)
  local window = math.min(opts.concurrency or client.concurrency, client.concurrency)
  local total, done, next_i, in_flight = #work, 0, 1, 0
  local completed = {}
  call_back(report, opts.on_progress, 0, total)
  while done < total do
    while not report.aborted and in_flight < window and next_i <= total do
      local item = work[next_i]
      next_i = next_i + 1
      in_flight = in_flight + 1
      client:submit("update_module", item.segment, item.send):on_done(function(res, err)
        completed[#completed + 1] = { item, res, err }
      end)
    end
    if in_flight == 0 then break end -- aborted, and nothing left in flight
    client:poll(0.05)
    local batch = completed
    completed = {}
    for _, c in ipairs(batch) do
      local item, res, err = c[1], c[2], c[3]
      in_flight, done = in_flight - 1, done + 1
      local ok, jerr = record_result(report, journal, item, res, err)
      if not ok then report.aborted = report.aborted or jerr end
      if err and fatal(err) then report.aborted = report.aborted or err end
      call_back(report, opts.on_result, item.entry, res, err)
      call_back(report, opts.on_progress, done, total)
    end
  end
  for i = next_i, total do
    report.not_sent[#report.not_sent + 1] = { index = work[i].index, module = work[i].module }
  end
end

local function new_report(list, opts)
  return {
    total = #list, dry_run = opts.dry_run == true, diff = opts.diff == true,
    applied = {}, skipped = {}, failed = {}, invalid = {}, not_sent = {}, changes = {},
    callback_errors = {}, journal = opts.journal, undo_file = nil,
  }
end

local function finish(client, report, t0, credits0)
  local spent, remaining = client:credits()
  report.credits = spent - credits0
  report.credits_remaining = remaining
  report.elapsed = core.now() - t0
  report.ok = #report.failed == 0 and #report.invalid == 0 and #report.not_sent == 0 and not report.aborted
  return report
end

--- apply(client, plan, opts) -> report, or nil, err. See doc/plans.md.
function M.apply(client, plan, opts)
  opts = check_options(opts)
  local t0, credits0 = core.now(), client:credits()
  local ctx = { client = client, args = opts.args, dir = opts.dir }
  local list, lerr
  if type(plan) == "string" then
    list, lerr = M.load(plan, ctx)
  else
    list, lerr = M.build(plan, ctx)
  end
  if not list then return nil, lerr end
  local report = new_report(list, opts)
  local items, err, state = prepare(client, list, opts, report)
  if not items then return nil, err end

  local journal
  if opts.journal then
    journal, err = open_journal(opts.journal, opts.dry_run)
    if not journal then return nil, err end
    for _, item in ipairs(items) do set_key(item) end
  end
  local undo_notes
  if state then report.undo, undo_notes = undo_entries(items, state, journal) end
  local work = plan_work(items, opts, journal, report)
  report.would_send = {}
  for _, item in ipairs(work) do
    report.would_send[#report.would_send + 1] = { index = item.index, module = item.module, update = item.send }
  end
  call_back(report, opts.on_plan, report)
  if opts.dry_run then return finish(client, report, t0, credits0) end

  if state and journal and not journal.state then
    local ok, werr = journal:write(state_record(items))
    if not ok then journal:close(); return nil, werr end
  end
  if opts.undo_file then
    local ok, uerr = write_file_atomically(opts.undo_file,
      M.undo_source(report.undo, undo_notes, "on " .. os.date("!%Y-%m-%d %H:%M:%S UTC")))
    if not ok then
      if journal then journal:close() end
      return nil, io_error("UNDO_FILE_ERROR", "cannot write undo plan: " .. tostring(uerr))
    end
    report.undo_file = opts.undo_file
  end

  send_all(client, work, opts, report, journal)
  if journal then journal:close() end
  return finish(client, report, t0, credits0)
end

-- }====

M.parse_csv = parse_csv

return M
