--- client:export(): an org's custom modules as a plan.
--
-- The plan has one entry per custom module, sorted by API name: the module's
-- API name, both labels, and `profile_set`, the exact set of profiles (by
-- name) that have access. Ids never appear: the plan applies to any org that
-- has modules and profiles of those names. Applied to the org it came from, it
-- sends nothing (entries with a profile set are always diffed).
-- @module zcrm.plan.export

local core = require "zcrm.core"
local options = require "zcrm.options"
local util = require "zcrm.util"

local M = {}

local function export_error(code, message, details)
  return core.error { kind = "validation", code = code, message = message, details = details }
end

-- Reads every module, then (concurrently) the ones whose profile list the
-- list answer left out or cut short. Returns the custom modules.
local function read_custom_modules(client)
  local mods, err = client:get_modules()
  if not mods then return nil, err end
  local custom, pending = {}, {}
  for _, m in ipairs(mods) do
    if type(m) == "table" and m.generated_type == "custom" and type(m.api_name) == "string" then
      custom[#custom + 1] = m
      if type(m.profiles) ~= "table" or m.has_more_profiles == true then
        pending[#pending + 1] = { m, client:submit("get_module", m.id) }
      end
    end
  end
  for _, p in ipairs(pending) do
    local full, ferr = client:wait(p[2])
    if not full then return nil, ferr end
    p[1].profiles = full.profiles or {}
  end
  return custom
end

M.read_custom_modules = read_custom_modules

--- export(client [, opts]) -> plan (a list of entries), or nil, err.
-- opts.out: also write the plan file there (mode 0600, written whole and
-- renamed into place, never through a symbolic link at the path).
function M.export(client, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("export: opts must be a table", 2) end
    for k, v in pairs(opts) do
      if k ~= "out" or type(v) ~= "string" then error("export: the one option is out = PATH (a string)", 2) end
    end
  end
  local okp, perr = options.check_path(opts and opts.out, "out")
  if not okp then return nil, perr end
  local plan, err = M.read(client)
  if not plan then return nil, err end
  if opts and opts.out then
    local ok, werr = core.write_private_file(opts.out, M.source(plan, client.api_domain))
    if not ok then return nil, werr end
  end
  return plan
end

--- read(client) -> the export plan, or nil, err (nothing written).
function M.read(client)
  local custom, err = read_custom_modules(client)
  if not custom then return nil, err end
  table.sort(custom, function(a, b) return a.api_name < b.api_name end)
  local plan = {}
  for _, m in ipairs(custom) do
    local names, seen = {}, {}
    for _, p in ipairs(m.profiles) do
      if type(p) ~= "table" or type(p.name) ~= "string" then
        return nil, export_error("UNEXPECTED_RESPONSE",
          string.format("module %s lists a profile without a name", m.api_name), { module = m.api_name })
      end
      if seen[p.name] then
        return nil, export_error("DUPLICATE_DATA", string.format(
          "two profiles with access to %s are named '%s'; rename one, since an export names profiles",
          m.api_name, p.name), { module = m.api_name, profile = p.name })
      end
      seen[p.name] = true
      names[#names + 1] = p.name
    end
    table.sort(names)
    local entry = {
      module = m.api_name,
      plural_label = m.actual_plural_label or m.plural_label,
      singular_label = m.actual_singular_label or m.singular_label,
      profile_set = names,
    }
    if type(entry.plural_label) ~= "string" or type(entry.singular_label) ~= "string" then
      return nil, export_error("UNEXPECTED_RESPONSE",
        string.format("module %s has no plural or singular label in the answer", m.api_name), { module = m.api_name })
    end
    plan[#plan + 1] = entry
  end
  return plan
end

--- source(plan, heading) -> the text of a plan file for `plan` (an export).
function M.source(plan, heading)
  local lines = {
    util.lua_comment("Custom modules" .. (heading and (" of " .. heading) or "") .. ", exported by zcrm."),
    "-- profile_set lists exactly the profiles that have access: applied to an org,",
    "-- profiles not listed lose access to the module. Apply it with",
    "--   zcrm apply THIS_FILE      or      client:apply(\"THIS_FILE\")",
    "return {",
  }
  for _, e in ipairs(plan) do
    local names = {}
    -- Every value is a literal from util (a label can never end its string or add code).
    for i, n in ipairs(e.profile_set) do names[i] = util.lua_string(n) end
    lines[#lines + 1] = string.format("  { module = %s, plural_label = %s, singular_label = %s,",
      util.lua_string(e.module), util.lua_string(e.plural_label), util.lua_string(e.singular_label))
    lines[#lines + 1] = string.format("    profile_set = { %s } },", table.concat(names, ", "))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

return M
