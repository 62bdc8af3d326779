-- Look-ups in what an emulator holds and served, for assertions.
--
--   local state = require "spec.support.state"
--   state.module(emu_or_state, "Projects")     -- the module with that API name, or nil
--   state.by_api_name(emu_or_state)            -- every module, keyed by API name
--   state.has_profile(module, id)              -- the module grants that profile
--   state.custom_modules(emu_or_state)         -- api_name -> { plural, singular, "Profile,Names" }
--   state.requests(emu [, route]), state.puts(emu), state.batch_puts(emu)
--
-- `emu_or_state` is an emulator (its org is read through /__emulator/state)
-- or a state table it answered earlier.
local M = {}

--- The route of a single-module update, as the emulator's stats name it.
M.PUT_ROUTE = "PUT /crm/v8/settings/modules/{module}"
--- The route of the batch update, PUT settings/modules itself.
M.BATCH_ROUTE = "PUT /crm/v8/settings/modules"

local function modules_of(x)
  if type(x.state) == "function" then x = x:state() end
  return x.modules
end

--- The module whose api_name is `api_name`, or nil.
function M.module(x, api_name)
  for _, m in ipairs(modules_of(x)) do
    if m.api_name == api_name then return m end
  end
end

--- Every module, keyed by its api_name.
function M.by_api_name(x)
  local by = {}
  for _, m in ipairs(modules_of(x)) do by[m.api_name] = m end
  return by
end

--- The org's custom modules as a user sees them: api_name -> { plural
-- label, singular label, its profiles' names sorted and joined by "," }.
function M.custom_modules(x)
  local out = {}
  for _, m in ipairs(modules_of(x)) do
    if m.generated_type == "custom" then
      local names = {}
      for _, p in ipairs(m.profiles) do names[#names + 1] = p.name end
      table.sort(names)
      out[m.api_name] = { m.plural_label, m.singular_label, table.concat(names, ",") }
    end
  end
  return out
end

--- True when module `m` grants the profile with id `id`.
function M.has_profile(m, id)
  for _, p in ipairs(m.profiles) do
    if p.id == id then return true end
  end
  return false
end

--- The requests `emu` served on `route` ("METHOD /path" as its stats name
-- it) since its last reset, or in all when `route` is nil.
function M.requests(emu, route)
  local r = emu:stats().requests
  if route then return r.by_route[route] or 0 end
  return r.total
end

--- The single-module updates (PUT settings/modules/{module}) `emu` served.
function M.puts(emu)
  return M.requests(emu, M.PUT_ROUTE)
end

--- The batch updates (PUT settings/modules) `emu` served: every PUT but
-- the single-module ones, so a refused batch call counts too.
function M.batch_puts(emu)
  local r = emu:stats().requests
  return (r.by_method.PUT or 0) - (r.by_route[M.PUT_ROUTE] or 0)
end

return M
