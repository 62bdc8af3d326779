--- The settings endpoints: modules and profiles (Zoho's "Modules", "Specific
-- Module", "Update Custom Module" and "Profiles" pages), gathered in one
-- table from the files beside this one: `read` (lists, paging, one
-- module, `request`), `profiles` (the one profile-name resolver), `update`
-- (one update, one create) and `batch` (update_modules). Each function is an
-- operation: it runs inside the engine's coroutine, and the client exposes it
-- both as a blocking method and through `submit`.
-- @module zcrm.modules

local read = require "zcrm.modules.read"
local profiles = require "zcrm.modules.profiles"
local one = require "zcrm.modules.update"
local batch = require "zcrm.modules.batch"

return {
  list_of = read.list_of,
  get_modules = read.get_modules,
  get_module = read.get_module,
  get_profiles = read.get_profiles,
  request = read.request,
  by_name = profiles.by_name,
  resolve_profiles = profiles.resolve_profiles,
  resolve_update = profiles.resolve_update,
  send_update = one.send_update,
  update_module = one.update_module,
  check_create = one.check_create,
  create_module = one.create_module,
  BATCH_MAX = batch.BATCH_MAX,
  send_updates = batch.send_updates,
  update_modules = batch.update_modules,
  batch_fallback = batch.fallback,
}
