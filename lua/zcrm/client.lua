--- The client: what `zcrm.new` returns. This module owns its state. A
-- client's own fields are the public, documented ones below; everything
-- else (the engine, the auth record with every token and secret, the
-- credits spent, the caches of the endpoint modules) is in a private record
-- that only this module reaches, kept in a weak-keyed table, so `pairs` and
-- `print` on a client show no secret. Other modules reach the record through
-- the client's methods (those starting with `_` are zcrm's own).
-- The doc comments merge into the module `zcrm`.
-- @module zcrm

local engine = require "zcrm.engine"
local auth = require "zcrm.auth"
local modules = require "zcrm.modules"
local secrets = require "zcrm.secrets"
local util = require "zcrm.util"
local plan = require "zcrm.plan"
local export = require "zcrm.plan.export"
local changes = require "zcrm.plan.changeset_apply"

local M = {}

-- client -> its private record: { engine =, auth =, secrets =, logger =,
-- credits = { spent =, remaining = }, caches = { [owner] = table }, base = }.
-- Weak keys: the record goes with its client.
local private = setmetatable({}, { __mode = "k" })

-- {==== client

--- A client of one Zoho CRM org (`zcrm.client`), made by `zcrm.new`. Every
-- blocking method is also available non-blocking through `Client:submit`.
-- Its fields, read-only: `api_domain`, `dc`, `environment`, `version`,
-- `concurrency`, `request_timeout` (the option `timeout`), `connect_timeout`,
-- `max_retries`, `retry_base`, `retry_max_delay`, `max_credits`,
-- `credit_costs`, `max_read_items`, `max_read_bytes`, `label_rules` (as
-- resolved from the options of `zcrm.new`), and `callback_errors` (errors
-- raised by `on_done` callbacks).
-- No field holds a token or a secret.
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
local OPS = {
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
M.OPS = OPS

for name in pairs(OPS) do
  if name:sub(1, 1) ~= "_" then
    Client[name] = function(self, ...)
      return private[self].engine:call(name, ...)
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

-- The engine's public methods, as client methods (see lua/zcrm/engine).
for _, name in ipairs { "submit", "poll", "timeout", "pollfd", "events", "fds", "pending", "wait", "await",
                        "drain", "queued", "limit", "set_host" } do
  Client[name] = function(self, ...)
    local e = private[self].engine
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

--- The calls the client lets be in flight now: `concurrency`, lowered after
-- the server's 429s and raised again as calls succeed.
-- @function Client:limit
-- @treturn integer

--- The one hook for a host that drives the client its own way (an event
-- loop, a scheduler of coroutines): `zcrm.luv`, `zcrm.cqueues` and
-- `zcrm.apply_orgs` use it. See `zcrm.engine` `Engine:set_host`.
-- @function Client:set_host
-- @tparam table|nil host `{ wait = function(timeout) -> seconds|nil, wake = function(),
-- close = function() }`, each optional; nil removes the host
-- @treturn table|nil the host set before, for the caller to put back

--- Credits spent by this client so far, and the server's last
-- X-API-CREDITS-REMAINING (nil until Zoho sends it).
-- @treturn integer credits spent
-- @treturn integer|nil credits remaining
function Client:credits()
  local c = private[self].credits
  return c.spent, c.remaining
end

--- Releases the transport; pending requests end as CLOSED (a request
-- cancelled by `cancel` ends as CANCELLED). Also `__close`.
-- @treturn nil
function Client:close()
  private[self].engine:close()
end
Client.__close = Client.close

-- }====

-- {==== configuration as code: lua/zcrm/plan/{apply,export,changeset_apply}.lua

--- Applies a plan: checks every entry first, compares it with the org (by
-- default; `diff = false` opts out), then sends what differs concurrently: a
-- rerun sends only what the org still lacks;
-- reversible with an undo file, recorded in a journal.
-- See doc/plans.md and `zcrm.plan.apply`. Given a change set instead (a table
-- from `Client:plan`, or the path of its `.json` file), applies exactly that
-- change set: see the README's "Change sets". Bad options are
-- `nil, err` (INVALID_CONFIG, `err.field` the option).
-- @function Client:apply
-- @tparam table|function|string p a list of entries, a function of a
-- context returning one, a path of a plan file, a change set, or the path of
-- a change set's JSON file
-- @tparam[opt] table opts see `zcrm.plan.apply.options` (plans) or
-- `zcrm.options.changes_options` (change sets)
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
-- @tparam[opt] table opts see `zcrm.options.plan_options`
-- @treturn table|nil the change set, or nil and a `zcrm.error` (INVALID_PLAN, INVALID_CONFIG)
Client.plan = changes.plan

--- The difference between a plan and the live org.
-- @function Client:diff
-- @tparam table|function|string plan as for `Client:apply`
-- @tparam[opt] table opts see `zcrm.options.diff_options`
-- @treturn table|nil `{ differs =, changes =, same =, total = }`, or nil and a `zcrm.error`
Client.diff = changes.diff

-- }====

-- {==== what zcrm's own modules use (names starting with `_`)

-- The client's secrets (zcrm.secrets): `s` redacted, a copy of `v` with
-- every string redacted, whether a body as it arrived may hold one, every
-- form as plain text (for core.read_update_answer), and one more secret (a
-- token received, a code sent).
function Client:_redact(s) return private[self].secrets:redact(s) end
function Client:_redact_value(v) return private[self].secrets:redact_value(v) end
function Client:_may_hold_secret(raw) return private[self].secrets:may_hold(raw) end
function Client:_secret_forms() return private[self].secrets.forms end
function Client:_add_secret(s) private[self].secrets:add(s) end

-- Hands `message` to the logger redacted, on one line: control characters
-- (CR, LF, ESC...) as \xNN, so text from a server cannot forge log lines.
function Client:_log(level, message)
  local r = private[self]
  if not r.logger then return end
  pcall(r.logger, level, util.printable(r.secrets:redact(message)))
end

-- The auth record (zcrm.auth): the tokens, the OAuth credentials. Only
-- zcrm.auth reads it.
function Client:_auth() return private[self].auth end

-- The table module `owner` keeps for this client (made on first use): the
-- caches of the endpoint modules (the profile list, the batch refusal, the
-- request headers), each module its own.
function Client:_cache(owner)
  local caches = private[self].caches
  local t = caches[owner]
  if not t then t = {}; caches[owner] = t end
  return t
end

-- Credits: `cost` more spent (less, for a refund), and the server's count
-- of those remaining when it sent one.
function Client:_spend(cost, remaining)
  local c = private[self].credits
  c.spent = c.spent + cost
  if remaining then c.remaining = remaining end
end

-- "{api_domain}/crm/{version}/", made again only when either changes.
function Client:_base_url()
  local r = private[self]
  local domain, version = self.api_domain, self.version
  if r.base_domain ~= domain or r.base_version ~= version then
    r.base = domain .. "/crm/" .. version .. "/"
    r.base_domain, r.base_version = domain, version
  end
  return r.base
end

-- The engine's tasks and events, for operations that run work of their own
-- (a token refresh, the profile list, the parts of a batch).
function Client:_spawn(name, fn) return private[self].engine:spawn(name, fn) end
function Client:_signal(event, ...) return private[self].engine:signal(event, ...) end
function Client:_single_flight(event, name, fn, after)
  return private[self].engine:single_flight(event, name, fn, after)
end

-- The blocking form of any operation, internal ones included (zcrm login).
function Client:_call(name, ...) return private[self].engine:call(name, ...) end

-- }====

--- Makes a client from settings that `zcrm.options` resolved (see
-- `zcrm.new`). Returns the client, or nil and a `zcrm.error`.
-- @local
function M.new(s)
  local self = setmetatable({
    version = s.version, api_domain = s.api_domain, dc = s.dc, environment = s.environment,
    concurrency = s.concurrency, request_timeout = s.timeout, connect_timeout = s.connect_timeout,
    max_retries = s.max_retries, retry_base = s.retry_base, retry_max_delay = s.retry_max_delay,
    max_credits = s.max_credits, credit_costs = s.credit_costs,
    max_read_items = s.max_read_items, max_read_bytes = s.max_read_bytes, label_rules = s.label_rules,
  }, Client)
  local r = {
    secrets = secrets.new(), logger = s.logger, credits = { spent = 0 }, caches = {},
    auth = auth.new(s.oauth, s.access_token),
  }
  private[self] = r
  for _, secret in ipairs(s.secrets) do r.secrets:add(secret) end
  local ok, err = auth.load_cache(self)
  if not ok then return nil, err end
  r.engine = engine.new {
    ops = OPS, owner = self, transport = s.transport,
    redact = function(text) return r.secrets:redact(text) end,
    log = function(level, message) self:_log(level, message) end,
  }
  -- Errors raised by on_done callbacks (see zcrm.request:on_done).
  self.callback_errors = r.engine.callback_errors
  return self
end

--- The private record of `client` (the engine, the auth record, the
-- credits, the caches), for zcrm's specs and fuzz drivers: a small internal
-- accessor, never used by zcrm's modules, which call the client's methods.
-- @local
function M.private(client)
  return private[client]
end

M.Client = Client

return M
