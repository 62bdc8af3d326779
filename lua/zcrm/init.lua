--- zcrm: change Zoho CRM custom-module configuration from Lua.
--
-- Returns: every runtime failure is `nil, err`, where `err` is a `zcrm.error`
-- (fields: kind, code, status, message, details, field, retryable, resolution);
-- misuse of the API (a wrong argument type) raises. "Returns: `T` or `nil, err`"
-- below means exactly that.
--
-- One file of about 420 lines, because it reads best whole: it is the public
-- face, every public function and client method with its doc comment in the
-- one LDoc module `zcrm`; the work itself is in the files it requires.
-- @module zcrm

local core = require "zcrm.core"
local cjson = require "cjson.safe"
local dc = require "zcrm.dc"
local engine = require "zcrm.engine"
local http = require "zcrm.http"
local auth = require "zcrm.auth"
local modules = require "zcrm.modules"
local options = require "zcrm.options"
local plan = require "zcrm.plan"
local util = require "zcrm.util"

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

-- {==== client

--- A client of one Zoho CRM org (`zcrm.client`), made by `zcrm.new`. Every
-- blocking method is also available non-blocking through `Client:submit`.
-- Fields a caller may read: `api_domain`, `dc`, `environment`, `version`,
-- `concurrency`, `callback_errors` (errors raised by `on_done` callbacks).
-- @type Client
local Client = {}
Client.__index = Client
Client.__name = "zcrm.client"

function Client:__tostring()
  return string.format("zcrm.client (%p) %s", self, self.api_domain)
end

-- Operations: each runs in the engine as a coroutine of `function(client, ...)`.
-- Public ones are also blocking methods; names starting with `_` are internal
-- (`_send_update` and `_send_updates` send updates already checked by a plan).
Client._ops = {
  update_module = modules.update_module,
  update_modules = modules.update_modules,
  create_module = modules.create_module,
  get_modules = modules.get_modules,
  get_module = modules.get_module,
  get_profiles = modules.get_profiles,
  request = modules.request,
  _send_update = modules.send_update,
  _send_updates = modules.send_updates,
  _exchange_code = auth.exchange_code,  -- zcrm login
  _revoke_token = auth.revoke,          -- zcrm logout
}

for name in pairs(Client._ops) do
  if name:sub(1, 1) ~= "_" then
    Client[name] = function(self, ...)
      return self._engine:call(name, ...)
    end
  end
end

--- Updates one custom module (PUT /settings/modules/{module}). Checked
-- locally first: an invalid update or module sends nothing. Profiles may be
-- given by `name`; the org's profile list is then read once per client.
-- @function Client:update_module
-- @tparam string|integer module the module's id or API name
-- @tparam table update `{ plural_label =, singular_label =, profiles = { { id = | name = [, _delete = true] }, ... } }`
-- @treturn table|nil `{ id =, code =, message =, status =, details = }`, or nil and a `zcrm.error`

--- Creates one custom module (POST /settings/modules, 500 credits). Checked
-- locally first, as an update is, and more: all three keys are mandatory,
-- profiles are grants (no `_delete`), the optional `api_name` and
-- `display_field` follow "Create Custom Module". Never sent twice.
-- @function Client:create_module
-- @tparam table spec `{ plural_label =, singular_label =, profiles = { { id = | name = }, ... }
-- [, api_name = "Vehicles"] [, display_field = { field_label =, data_type = "text" | "autonumber",
-- auto_number = { start_number =, prefix =, suffix = } }] }`
-- @treturn table|nil `{ id =, code =, message =, status =, details = }` with the new
-- module's id, or nil and a `zcrm.error`

--- Updates many modules through the batch endpoint (PUT /settings/modules), at
-- most 100 per call, the calls at once within the concurrency cap. Each entry is
-- checked as update_module checks it; API names become ids (one read of the
-- module list). A server that refuses the batch endpoint gets one module per
-- call, for this call and every later one of the client, and the logger is told once.
-- @function Client:update_modules
-- @tparam table list entries `{ module = id or API name, plural_label =, singular_label =, profiles = }`
-- @treturn table `results`: `results[i]` is entry i's result (as update_module's) or
-- its `zcrm.error`; `results.fallback` is the refusal when the entries went one per call

--- Every module of the org (GET /settings/modules, all pages), ids as strings.
-- @function Client:get_modules
-- @tparam[opt] table opts `status` (Zoho's filter), `if_modified_since` (a time or an HTTP date)
-- @treturn table|nil the list of modules (with `not_modified = true` and no
-- items when nothing changed since `if_modified_since`), or nil and a `zcrm.error`

--- One module's full metadata (GET /settings/modules/{module}).
-- @function Client:get_module
-- @tparam string|integer module the module's id or API name
-- @treturn table|nil the module, or nil and a `zcrm.error`

--- Every profile of the org (GET /settings/profiles, all pages), ids as strings.
-- @function Client:get_profiles
-- @treturn table|nil the list of profiles, or nil and a `zcrm.error`

--- Any CRM call with zcrm's auth, credits, retries and error reading.
-- @function Client:request
-- @tparam string method an upper-case HTTP method such as "GET"
-- @tparam string path the path after /crm/{version}/, such as "settings/modules"
-- @tparam[opt] table opts `query` (table), `body` (Lua table, sent as JSON), `key`
-- (the resource key of Zoho's answer), `cost` (credits, default 1), `headers` (list)
-- @treturn integer|nil the HTTP status, or nil and a `zcrm.error`
-- @treturn table the decoded body (nil for 204 and 304)
-- @treturn table the response headers

-- The engine's public methods, as client methods (see lua/zcrm/engine.lua).
for _, name in ipairs { "submit", "poll", "timeout", "pollfd", "events", "fds", "pending", "wait", "await",
                        "drain", "queued" } do
  Client[name] = function(self, ...)
    local e = self._engine
    return e[name](e, ...)
  end
end

--- Starts `method` (the name of any blocking method above) and returns at once.
-- @function Client:submit
-- @string method such as "update_module"
-- @param ... the method's arguments
-- @treturn zcrm.request the running call (see `zcrm.engine`)

--- Does what can be done without waiting longer than `timeout` seconds:
-- finished requests get their results, and their callbacks run here.
-- @function Client:poll
-- @tparam[opt=0] number timeout seconds; 0 never blocks
-- @treturn integer the number of callbacks run

--- Seconds a host loop may sleep before calling `poll` again.
-- @function Client:timeout
-- @treturn number|nil seconds, or nil when idle

--- The one descriptor a host loop watches for reading, with `timeout` as its
-- one timer: readable whenever a transfer needs `poll(0)`. An epoll descriptor
-- owned by the client (close-on-exec), the same for its whole life, closed
-- with it. See README, "Embedding zcrm in an event loop".
-- @function Client:pollfd
-- @treturn integer|nil the descriptor, or nil and a `zcrm.error` (NOT_SUPPORTED)
-- where the core was built without epoll; nil once closed

--- For cqueues' pollable protocol (with `pollfd` and `timeout`): the client
-- waits for reading.
-- @function Client:events
-- @treturn string "r"

--- The sockets libcurl watches now, for a host that registers each one with
-- its own poller (any descriptor number); `pollfd` is the one that does not change.
-- @function Client:fds
-- @treturn table `{ { fd =, read =, write = }, ... }`

--- The number of requests not yet done, in constant time.
-- @function Client:pending
-- @treturn integer

--- Drives the client until `req` is done and returns its result. Inside a
-- coroutine with `{ yield = true }`, it yields to the host between polls.
-- @function Client:wait
-- @tparam zcrm.request req a request from `submit`
-- @tparam[opt] table opts `yield` (boolean)
-- @return the request's results: `res`, or nil and a `zcrm.error`

--- Like `wait`, but yields to the host between polls when run in a coroutine.
-- @function Client:await
-- @tparam zcrm.request req
-- @return the request's results: `res`, or nil and a `zcrm.error`

--- Runs until no request is pending, or `timeout` seconds pass.
-- @function Client:drain
-- @tparam[opt] number timeout seconds
-- @treturn boolean true when nothing is pending any more

--- The number of transfers waiting for a concurrency slot.
-- @function Client:queued
-- @treturn integer

-- {==== redaction: every string that leaves zcrm (messages, details, logs)

-- The forms a secret may take in text a server echoes: as it is, and
-- percent-encoded (only what must be, or every byte; upper- and lower-case
-- hex), as Lua patterns.
local function secret_patterns(s)
  local forms, seen, out = { s }, {}, {}
  local min = core.url_escape(s)
  local all = s:gsub(".", function(c) return string.format("%%%02X", c:byte()) end)
  for _, f in ipairs { min, min:lower(), all, all:lower() } do forms[#forms + 1] = f end
  local plain = {}
  for _, f in ipairs(forms) do
    if not seen[f] then
      seen[f] = true
      out[#out + 1] = f:gsub("%p", "%%%0")
      plain[#plain + 1] = f
    end
  end
  return out, plain
end

-- Replaces every known secret in `s` (raw or percent-encoded) by "[REDACTED]".
function Client:_redact(s)
  s = tostring(s)
  for _, pats in ipairs(self._secret_patterns) do
    for _, pat in ipairs(pats) do s = s:gsub(pat, "[REDACTED]") end
  end
  return s
end

-- True when the text `raw` (a body as it arrived) may hold a secret once
-- decoded: it holds one of the secret's forms, or a JSON escape (through
-- which any character, and so any secret, can be spelt).
function Client:_may_hold_secret(raw)
  if raw:find("\\", 1, true) then return true end
  for _, f in ipairs(self._secret_forms) do
    if raw:find(f, 1, true) then return true end
  end
  return false
end

-- A copy of `v` with every string in it, keys included, redacted; tables
-- copied recursively (a cycle or a depth over 32 becomes "[...]"). Used for
-- every answer a server sends (http.call), before any of it is read.
function Client:_redact_value(v, seen, depth)
  if type(v) == "string" then return self:_redact(v) end
  if type(v) ~= "table" then return v end
  seen, depth = seen or {}, depth or 0
  if seen[v] or depth > 32 then return "[...]" end
  seen[v] = true
  local c = {}
  for k, x in next, v do c[self:_redact_value(k, seen, depth + 1)] = self:_redact_value(x, seen, depth + 1) end
  seen[v] = nil
  return c
end

function Client:_add_secret(s)
  if type(s) == "string" and #s >= 4 then
    for _, known in ipairs(self._secrets) do
      if known == s then return end
    end
    self._secrets[#self._secrets + 1] = s
    -- Longest first, so a secret containing another is redacted whole.
    table.sort(self._secrets, function(a, b) return #a > #b end)
    -- _secret_forms: every form as plain text, for core.read_update_answer,
    -- which leaves an answer holding one to the Lua path (and its redaction).
    self._secret_patterns, self._secret_forms = {}, {}
    for i, secret in ipairs(self._secrets) do
      local pats, plain = secret_patterns(secret)
      self._secret_patterns[i] = pats
      for _, f in ipairs(plain) do self._secret_forms[#self._secret_forms + 1] = f end
    end
  end
end

-- Hands `message` to the logger redacted, on one line: control characters
-- (CR, LF, ESC...) as \xNN, so text from a server cannot forge log lines.
function Client:_log(level, message)
  local logger = self.logger
  if not logger then return end
  pcall(logger, level, util.printable(self:_redact(message)))
end

-- }====

-- {==== configuration as code: lua/zcrm/plan/{export,changes}.lua, lua/zcrm/orgs.lua

local export = require "zcrm.plan.export"
local changes = require "zcrm.plan.changes"
local orgs = require "zcrm.orgs"

--- Applies a plan: checks every entry first, compares it with the org (by
-- default; `diff = false` opts out), then sends what differs concurrently: a
-- rerun sends only what the org still lacks;
-- reversible with an undo file, recorded in a journal.
-- See doc/plans.md and `zcrm.plan.apply`. Given a change set instead (a table
-- from `Client:plan`, or the path of its `.json` file), applies exactly that
-- change set: see `zcrm.plan.changes.apply`.
-- @function Client:apply
-- @tparam table|function|string p a list of entries, a function of a
-- context returning one, the path of a plan file, a change set, or the path of
-- a change set's JSON file
-- @tparam[opt] table opts see `zcrm.plan.apply.options` (plans) or
-- `zcrm.plan.changes.apply` (change sets)
-- @treturn table|nil the report, or nil and a `zcrm.error` when nothing could be sent
function Client:apply(p, opts)
  if type(p) == "string" and p:match("%.json$") then
    local cs, err = changes.read(p)
    if not cs then return nil, err end
    return changes.apply(self, cs, opts)
  end
  if changes.is_changes(p) then return changes.apply(self, p, opts) end
  return plan.apply(self, p, opts)
end

--- The org's custom modules as a plan: API name, labels and the exact set of
-- profiles with access (`profile_set`), sorted; no ids. See `zcrm.plan.export`.
-- @function Client:export
-- @tparam[opt] table opts `out`: also write the plan file there (mode 0600, no symlink followed)
-- @treturn table|nil the plan (a list of entries), or nil and a `zcrm.error`
Client.export = export.export

--- The access matrix: every custom module by every profile, read through
-- the API. See `zcrm.report` (compare, html).
-- @function Client:report
-- @tparam[opt] table opts `org`: the org's name to show
-- @treturn table|nil `{ org =, api_domain =, read_at =, profiles =, modules = }`,
-- or nil and a `zcrm.error`
Client.report = require("zcrm.report").report

--- The exact change set that applying `plan` would make, read from the live
-- state: per module the values before, after, and the request body.
-- @function Client:plan
-- @tparam table|function|string plan as for `Client:apply`
-- @tparam[opt] table opts `args` (the plan function's ctx.args), `dir`, `source`
-- @treturn table|nil the change set, or nil and a `zcrm.error` (INVALID_PLAN)
Client.plan = changes.plan

--- The difference between a plan and the live org.
-- @function Client:diff
-- @tparam table|function|string plan as for `Client:apply`
-- @tparam[opt] table opts `args`, `dir`
-- @treturn table|nil `{ differs =, changes =, same =, total = }`, or nil and a `zcrm.error`
Client.diff = changes.diff

--- Configuration as code: exports and many orgs.
-- @section config

--- The text of a plan file for an export (every value an escaped Lua literal).
-- @function export_source
-- @tparam table plan from `Client:export`
-- @tparam[opt] string heading where it came from (the API domain)
-- @treturn string
zcrm.export_source = export.source
zcrm.changes = changes

--- One plan, many orgs, concurrently in this process: every org is checked
-- before any is changed, then `opts.confirm` decides once. See `zcrm.orgs`.
-- @function apply_orgs
-- @tparam table list `{ { name =, options = <zcrm.new options> }, ... }`
-- @tparam table|function|string p the plan
-- @tparam[opt] table opts dry_run, journal, undo_file (with {org}), args,
-- concurrency, confirm, on_plan, on_result, on_progress
-- @treturn table|nil the result, or nil and a `zcrm.error` (INVALID_PLAN with details.orgs)
function zcrm.apply_orgs(list, p, opts)
  return orgs.apply_orgs(zcrm, list, p, opts)
end
zcrm.orgs = orgs

-- }====

--- Credits spent by this client so far, and the server's last
-- X-API-CREDITS-REMAINING (nil until Zoho sends it).
-- @treturn integer credits spent
-- @treturn integer|nil credits remaining
function Client:credits()
  return self.credits_spent, self.credits_remaining
end

--- Releases the transport; pending requests end as CLOSED (a request
-- cancelled by `cancel` ends as CANCELLED). Also `__close`.
-- @treturn nil
function Client:close()
  self._engine:close()
end
Client.__close = Client.close

-- }====

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
  local self = setmetatable({
    version = s.version, api_domain = s.api_domain, api_domain_explicit = s.api_domain_explicit,
    dc = s.dc, environment = s.environment, concurrency = s.concurrency,
    request_timeout = s.request_timeout, connect_timeout = s.connect_timeout,
    max_retries = s.max_retries, retry_base = s.retry_base, retry_max_delay = s.retry_max_delay,
    max_credits = s.max_credits, credit_costs = s.credit_costs, credits_spent = 0,
    max_read_items = s.max_read_items, max_read_bytes = s.max_read_bytes,
    oauth = s.oauth, access_token = s.access_token, token_refreshes = 0,
    logger = s.logger, label_rules = s.label_rules, _secrets = {}, _secret_patterns = {}, _secret_forms = {},
  }, Client)
  for _, secret in ipairs(s.secrets) do self:_add_secret(secret) end
  if self.oauth then
    local ok, cerr = auth.load_cache(self)
    if not ok then return nil, cerr end
  end
  self._engine = engine.new(self, Client._ops, s.transport)
  -- Errors raised by on_done callbacks (see zcrm.request:on_done).
  self.callback_errors = self._engine.callback_errors
  return self
end

--- The plan functions (`zcrm.plan`): validate, load, build, read_csv, apply.
zcrm.plan = plan
--- The client class, for `getmetatable(client) == zcrm.Client` checks.
zcrm.Client = Client
--- Data centres and environments (`zcrm.dc`).
zcrm.dc = dc

return zcrm
