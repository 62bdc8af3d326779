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
local util = require "zcrm.util"

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

-- {==== redaction: every string that leaves zcrm (messages, details, logs)

-- The forms a secret may take in text a server echoes: as it is, and
-- percent-encoded (only what must be, or every byte; upper- and lower-case
-- hex), as Lua patterns.
local function secret_patterns(s)
  local forms, seen, out = { s }, {}, {}
  local min = core.url_escape(s)
  local all = s:gsub(".", function(c) return string.format("%%%02X", c:byte()) end)
  for _, f in ipairs { min, min:lower(), all, all:lower() } do forms[#forms + 1] = f end
  for _, f in ipairs(forms) do
    if not seen[f] then
      seen[f] = true
      out[#out + 1] = f:gsub("%p", "%%%0")
    end
  end
  return out
end

--- Replaces every known secret in `s` (raw or percent-encoded) by "[REDACTED]".
function Client:_redact(s)
  s = tostring(s)
  for _, pats in ipairs(self._secret_patterns) do
    for _, pat in ipairs(pats) do s = s:gsub(pat, "[REDACTED]") end
  end
  return s
end

--- A copy of `v` with every string in it, keys included, redacted; tables
-- copied recursively (a cycle or a depth over 32 becomes "[...]"). Used for
-- the `details` of errors and results, which come from the server.
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
    self._secret_patterns = {}
    for i, secret in ipairs(self._secrets) do self._secret_patterns[i] = secret_patterns(secret) end
  end
end

--- Hands `message` to the logger redacted, on one line: control characters
-- (CR, LF, ESC...) as \xNN, so text from a server cannot forge log lines.
function Client:_log(level, message)
  local logger = self.logger
  if not logger then return end
  pcall(logger, level, util.printable(self:_redact(message)))
end

-- }====

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
    logger = s.logger, _secrets = {}, _secret_patterns = {},
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
