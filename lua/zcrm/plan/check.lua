--- Plan checks that need no network: each entry on its own (module, update
-- rules through the C core), then the plan as a whole (a module or a label
-- given twice). The errors a plan reports are built here too.
-- @module zcrm.plan.check

local core = require "zcrm.core"
local exact = require "zcrm.plan.exact"
local modules = require "zcrm.modules"

local M = {}

-- {==== errors

-- A fault found here, before any request: like the core's own validation
-- errors it has Zoho's code for the same fault but no HTTP status.
function M.plan_error(code, message, field, details, resolution)
  return core.error { kind = "validation", code = code, message = message, field = field, details = details,
                      resolution = resolution }
end

function M.io_error(code, message, details)
  return core.error { kind = "io", code = code, message = message, details = details, retryable = false }
end

--- write_new(path, text, what, code) -> true, or nil, err, exists: writes a
-- file that must not exist yet ("wx": created here, never through a link),
-- fsync'd; a failed write removes what it made. `exists` is true when the
-- path was taken (the caller names that fault); other faults are `code`.
function M.write_new(path, text, what, code)
  local f, err = core.open_file(path, "wx")
  if not f then
    if core.file_mode(path) or (err.details and err.details.errno == 17) then return nil, nil, true end -- EEXIST
    return nil, M.io_error(code, string.format("cannot write %s %s: %s", what, path, tostring(err.message or err)),
      { path = path })
  end
  local ok, werr = f:write(text)
  if ok then ok, werr = core.fsync(f) end
  f:close()
  if not ok then
    os.remove(path)
    -- a full disk or an I/O error: name the file and the cause
    return nil, M.io_error(code, string.format("cannot write %s %s: %s", what, path,
      core.is_error(werr) and werr.message or tostring(werr)), { path = path })
  end
  return true
end

function M.entry_fault(item, err)
  return { index = item.index, module = item.module, error = err }
end

function M.invalid_plan(faults, total)
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

-- {==== checks of single entries (no network)

local function module_name(m)
  if type(m) == "string" then return m end
  if math.type(m) == "integer" then return string.format("%d", m) end
  return nil
end

-- Runs a check of the C core or of zcrm.modules on `arg` for `item`: its
-- result, or nil, the entry's fault (a check that raised becomes `code`).
local function run_check(item, check, arg, code, field, rules)
  local ok, res, err = pcall(check, arg, rules)
  if not ok or not res then
    return nil, M.entry_fault(item, ok and err or M.plan_error(code, tostring(res), field))
  end
  return res
end

-- A create entry `{ create = true, plural_label =, singular_label =, profiles = }`:
-- a new module, checked as client:create_module checks it. It has no `module`
-- (Zoho names the new module); in reports it is "(new) <plural label>".
local function check_create(item, entry, rules)
  if entry.create ~= true then
    return nil, M.entry_fault(item, M.plan_error("INVALID_DATA",
      "'create' is true (a new module) or absent, got " .. tostring(entry.create), "create"))
  end
  if entry.module ~= nil then
    return nil, M.entry_fault(item, M.plan_error("INVALID_DATA",
      "a create entry has no 'module': Zoho gives the new module its API name", "module"))
  end
  local spec = {}
  for k, v in pairs(entry) do
    if k ~= "create" then spec[k] = v end
  end
  local clean, fault = run_check(item, modules.check_create, spec, "INVALID_DATA", nil, rules)
  if not clean then return nil, fault end
  item.create = true
  item.module = "(new) " .. clean.plural_label
  item.update = clean
  return item
end

-- Returns item, or nil, fault. An item carries what the later stages need.
-- `rules`: the client's label_rules ("reference" when nil).
function M.check_entry(index, entry, rules)
  local item = { index = index, entry = entry }
  if type(entry) ~= "table" then
    return nil, M.entry_fault(item, M.plan_error("INVALID_DATA", "an entry is a table, got " .. type(entry)))
  end
  if entry.create ~= nil then return check_create(item, entry, rules) end
  item.module = module_name(entry.module)
  if entry.module == nil then
    return nil, M.entry_fault(item, M.plan_error("INVALID_MODULE", "the entry has no 'module' (an id or API name)", "module",
      nil, "Add module = \"API_Name\" (or the module's id) to the entry; zcrm modules lists them."))
  end
  if not item.module then
    return nil, M.entry_fault(item, M.plan_error("INVALID_MODULE", "'module' is an id or API name, got " .. type(entry.module), "module"))
  end
  local segment, mfault = run_check(item, core.check_module, entry.module, "INVALID_MODULE", "module")
  if not segment then return nil, mfault end
  item.segment = segment
  item.module = segment
  local update = {}
  for k, v in pairs(entry) do
    if k ~= "module" and k ~= "profile_set" then update[k] = v end
  end
  if entry.profile_set ~= nil then -- exactly these profiles (lua/zcrm/plan/exact.lua)
    if entry.profiles ~= nil then
      return nil, M.entry_fault(item, M.plan_error("INVALID_DATA",
        "give profiles (grants and revokes) or profile_set (exactly these), not both", "profile_set"))
    end
    local set, serr = exact.check(entry.profile_set)
    if not set then return nil, M.entry_fault(item, serr) end
    item.profile_set = set
    if next(update) == nil then item.update = {}; return item end
  end
  local clean, vfault = run_check(item, core.prepare_update, update, "INVALID_DATA", nil, rules)
  if not clean then return nil, vfault end
  item.update = clean
  return item
end

-- The key under which a label is unique, as the emulator compares labels:
-- case (Unicode), edge spaces and runs of spaces do not count.
M.fold = core.label_key

-- Plan-level: a module given twice, a label given twice. With state, modules
-- are compared by id, so an API name and its id count as the same module.
function M.check_duplicates(items, faults)
  local seen_modules = {}
  local label_sets = { plural_label = {}, singular_label = {} }
  for _, item in ipairs(items) do
    local key = item.current and item.current.id or item.segment
    local first = key and seen_modules[key]
    if first then
      faults[#faults + 1] = M.entry_fault(item, M.plan_error("DUPLICATE_DATA",
        string.format("module %s is already updated by entry %d; give each module once", item.module, first.index),
        "module", { index = first.index }, "Merge the two entries into one, or remove one of them."))
    elseif key then                           -- a create entry has none: only its labels can clash
      seen_modules[key] = item
    end
    for field, seen in pairs(label_sets) do
      local label = item.update[field]
      if label then
        local folded = M.fold(label)
        local other = seen[folded]
        if other and other ~= item then
          faults[#faults + 1] = M.entry_fault(item, M.plan_error("DUPLICATE_DATA",
            string.format("%s '%s' is also given by entry %d; labels must be unique", field, label, other.index),
            field, { index = other.index }))
        else
          seen[folded] = item
        end
      end
    end
  end
end

function M.check_all(list, rules)
  local items, faults = {}, {}
  for i = 1, #list do
    local item, fault = M.check_entry(i, list[i], rules)
    if item then items[#items + 1] = item else faults[#faults + 1] = fault end
  end
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      faults[#faults + 1] = { index = 0, error = M.plan_error("INVALID_PLAN",
        string.format("the plan has a key %s outside its list of entries", tostring(k))) }
      break
    end
  end
  return items, faults
end

function M.by_index(a, b)
  return a.index < b.index
end

-- }====

--- plan(list, more [, rules]) -> items, faults (sorted by index).
-- `more(items, faults)`, when given, adds the checks that need the org's
-- state (it returns true, or nil, err to stop); duplicates are looked for
-- after it, among all entries that name a module, even those invalid for
-- another reason. `rules` is the client's label_rules.
function M.plan(list, more, rules)
  local items, faults = M.check_all(list, rules)
  if more then
    local ok, err = more(items, faults)
    if not ok then return nil, err end
  end
  M.check_duplicates(items, faults)
  table.sort(faults, M.by_index)
  return items, faults
end

return M
