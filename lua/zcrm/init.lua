--- zcrm: change Zoho CRM custom-module configuration from Lua.
--
-- Returns: every runtime failure is `nil, err`, where `err` is a `zcrm.error`
-- (fields: kind, code, status, message, details, field, retryable, resolution);
-- misuse of the API (a wrong argument type) raises. "Returns: `T` or `nil, err`"
-- below means exactly that.
--
-- The public functions; the client they make is `zcrm.client`'s (its
-- methods are documented here too, as `Client`).
-- @module zcrm

local core = require "zcrm.core"
local cjson = require "cjson.safe"
local dc = require "zcrm.dc"
local http = require "zcrm.http"
local options = require "zcrm.options"
local plan = require "zcrm.plan"
local client = require "zcrm.client"
local export = require "zcrm.plan.export"
local changeset = require "zcrm.plan.changeset"
local orgs = require "zcrm.orgs"

local zcrm = {}

--- "zcrm 0.1.0".
zcrm._VERSION = "zcrm 0.1.0"
--- "0.1.0".
zcrm.VERSION = "0.1.0"
--- JSON null: write `_delete = zcrm.null` (or `_delete = true`) to revoke a profile.
zcrm.null = cjson.null
assert(core.null == cjson.null, "zcrm.core and lua-cjson disagree on null")

--- True for error objects (`zcrm.error`).
-- @function is_error
-- @tparam any v
-- @treturn boolean
zcrm.is_error = core.is_error

--- Builds an error object from a table of its fields; fields not given come
-- from the catalogue entry of `code`.
-- @function error
-- @tparam table fields kind, code, status, message, details, field, retryable, resolution
-- @treturn zcrm.error
zcrm.error = core.error

--- The error catalogue: `code -> { status =, kind =, retryable =, message =, resolution = }`.
-- @table catalogue
zcrm.catalogue = core.catalogue

--- Checks an update table against the Update Custom Module page's rules.
-- Pure: no network.
-- @function validate_update
-- @tparam table update `{ plural_label =, singular_label =, profiles = }`
-- @treturn true|nil true, or nil and a `zcrm.error` (kind "validation")
zcrm.validate_update = core.validate_update

--- Checks a module id or API name.
-- @function check_module
-- @tparam string|integer module an id (digits) or an API name
-- @treturn string|nil the path segment, or nil and a `zcrm.error`
zcrm.check_module = core.check_module


--- Configuration as code: exports, change-set files and many orgs.
-- @section config

--- The text of a plan file for an export (every value an escaped Lua literal).
-- @function export_source
-- @tparam table plan from `Client:export`
-- @tparam[opt] string heading where it came from (the API domain)
-- @treturn string
zcrm.export_source = export.source

--- Change-set files: `read(path)` and `write(path, changes)`.
-- @table changes
-- @field read `function(path)` -> the change set, or nil and a `zcrm.error`
-- @field write `function(path, changes)` -> true (a JSON file, mode 0600), or nil and a `zcrm.error`
zcrm.changes = { read = changeset.read, write = changeset.write }

--- One plan, many orgs, concurrently in this process: every org is checked
-- before any is changed, then `opts.confirm` decides once. See `zcrm.orgs`.
-- @function apply_orgs
-- @tparam table list `{ { name =, options = <zcrm.new options> }, ... }`
-- @tparam table|function|string p the plan
-- @tparam[opt] table opts see `zcrm.options.apply_orgs_options`
-- @treturn table|nil the result, or nil and a `zcrm.error` (INVALID_PLAN with
-- details.orgs; INVALID_CONFIG for a bad option)
function zcrm.apply_orgs(list, p, opts)
  return orgs.apply_orgs(zcrm, list, p, opts)
end

--- Making a client.
-- @section new

--- Makes a client. The options are checked in one place, `zcrm.options`;
-- options not given fall back to the ZOHO_* environment variables.
-- @tparam[opt] table opts see `zcrm.options.client_options`
-- @treturn Client|nil the client, or nil and a `zcrm.error` (kind "config")
function zcrm.new(opts)
  local ua = string.format("zcrm/%s (%s; %s)", zcrm.VERSION, _VERSION, core.curl_version or "libcurl")
  local s, err = options.client(opts, { credit_costs = http.DEFAULT_COSTS, user_agent = ua })
  if not s then return nil, err end
  return client.new(s)
end

--- The plan functions (`zcrm.plan`): validate, load, build, read_csv, apply.
zcrm.plan = plan
--- The client class, for `getmetatable(client) == zcrm.Client` checks.
zcrm.Client = client.Client
--- Data centres and environments (`zcrm.dc`).
zcrm.dc = dc

return zcrm
