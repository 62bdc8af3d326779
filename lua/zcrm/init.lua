--- zcrm: change Zoho CRM custom-module configuration from Lua.
--
-- Returns: every runtime failure is `nil, err`, where `err` is a `zcrm.error`
-- (fields: kind, code, status, message, details, field, retryable, resolution);
-- misuse of the API (a wrong argument type) raises.

local core = require "zcrm.core"
local cjson = require "cjson.safe"
local dc = require "zcrm.dc"
local engine = require "zcrm.engine"
local http = require "zcrm.http"
local auth = require "zcrm.auth"
local modules = require "zcrm.modules"
local options = require "zcrm.options"
local plan = require "zcrm.plan"

local zcrm = {}

zcrm._VERSION = "zcrm 0.1.0"
zcrm.VERSION = "0.1.0"
--- JSON null: write `_delete = zcrm.null` (or `_delete = true`) to revoke a profile.
zcrm.null = cjson.null
assert(core.null == cjson.null, "zcrm.core and lua-cjson disagree on null")

zcrm.is_error = core.is_error
zcrm.error = core.error
zcrm.catalogue = core.catalogue

--- validate_update(update) -> true, or nil, err. Pure: no network.
zcrm.validate_update = core.validate_update
--- check_module(module) -> path segment, or nil, err.
zcrm.check_module = core.check_module

-- {==== client

local Client = {}
Client.__index = Client
Client.__name = "zcrm.client"

function Client:__tostring()
  return string.format("zcrm.client (%p) %s", self, self.api_domain)
end

-- Operations: each runs in the engine as a coroutine of `function(client, ...)`.
-- Public ones are also blocking methods; names starting with `_` are internal
-- (`_send_update` sends an update already checked by a plan).
Client._ops = {
  update_module = modules.update_module,
  get_modules = modules.get_modules,
  get_module = modules.get_module,
  get_profiles = modules.get_profiles,
  request = modules.request,
  _send_update = modules.send_update,
}

for name in pairs(Client._ops) do
  if name:sub(1, 1) ~= "_" then
    Client[name] = function(self, ...)
      return self._engine:call(name, ...)
    end
  end
end

-- The engine's public methods, as client methods (see lua/zcrm/engine.lua).
for _, name in ipairs { "submit", "poll", "timeout", "fds", "pending", "wait", "await", "drain", "queued" } do
  Client[name] = function(self, ...)
    local e = self._engine
    return e[name](e, ...)
  end
end

--- Replaces every known secret in `s` by "[REDACTED]".
function Client:_redact(s)
  s = tostring(s)
  for _, secret in ipairs(self._secrets) do
    s = s:gsub(secret:gsub("%p", "%%%0"), "[REDACTED]")
  end
  return s
end

function Client:_add_secret(s)
  if type(s) == "string" and #s >= 4 then
    for _, known in ipairs(self._secrets) do
      if known == s then return end
    end
    self._secrets[#self._secrets + 1] = s
    -- Longest first, so a secret containing another is redacted whole.
    table.sort(self._secrets, function(a, b) return #a > #b end)
  end
end

function Client:_log(level, message)
  local logger = self.logger
  if not logger then return end
  pcall(logger, level, self:_redact(message))
end

--- apply(plan, opts): bulk apply; see lua/zcrm/plan/apply.lua.
Client.apply = plan.apply
zcrm.plan = plan

--- Credits spent by this client so far, and the server's last
-- X-API-CREDITS-REMAINING (nil until Zoho sends it).
function Client:credits()
  return self.credits_spent, self.credits_remaining
end

--- Releases the transport; pending requests end as CANCELLED.
function Client:close()
  self._engine:close()
end
Client.__close = Client.close

-- }====

--- zcrm.new(opts) -> client, or nil, err (kind "config"). The options are
-- checked in lua/zcrm/options.lua.
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
    oauth = s.oauth, access_token = s.access_token, token_refreshes = 0,
    logger = s.logger, _secrets = {},
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

zcrm.Client = Client
zcrm.dc = dc

return zcrm
