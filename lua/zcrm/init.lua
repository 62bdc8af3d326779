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

for k, v in pairs(engine.methods) do Client[k] = v end

function Client:__tostring()
  return string.format("zcrm.client (%p) %s", self, self.api_domain)
end

-- Operations: each runs in the engine; each is also a blocking method.
Client._ops = {
  update_module = modules.update_module,
  update_modules = modules.update_modules,
  create_module = modules.create_module,
  get_modules = modules.get_modules,
  get_module = modules.get_module,
  get_profiles = modules.get_profiles,
  request = modules.request,
}

for name in pairs(Client._ops) do
  Client[name] = function(self, ...)
    return self:_call(name, ...)
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

--- apply(plan, opts): bulk apply; see lua/zcrm/plan.lua.
Client.apply = plan.apply
zcrm.plan = plan

--- Credits spent by this client so far, and the server's last
-- X-API-CREDITS-REMAINING (nil until Zoho sends it).
function Client:credits()
  return self.credits_spent, self.credits_remaining
end

--- Releases the transport; pending requests end as CANCELLED.
function Client:close()
  for req in pairs(self._live) do req:cancel() end
  self.multi:close()
end
Client.__close = Client.close

-- }====

-- {==== options

local KNOWN_OPTIONS = {
  api_domain = "string", dc = "string", environment = "string", access_token = "string",
  oauth = "table", version = "string", timeout = "number", connect_timeout = "number",
  max_retries = "number", concurrency = "number", ca_file = "string", proxy = "string",
  user_agent = "string", logger = "function", max_credits = "number", credit_costs = "table",
  retry_base = "number", retry_max_delay = "number", max_response_bytes = "number",
  env = "boolean",
}
local KNOWN_OAUTH = {
  client_id = "string", client_secret = "string", refresh_token = "string",
  accounts_url = "string", refresh_margin = "number", token_cache = "string",
  refresh_limit = "number",
}

local function config_error(message, field)
  return core.error { kind = "config", code = "INVALID_CONFIG", message = message, field = field }
end

local function check_types(t, known, prefix)
  for k, v in pairs(t) do
    local want = known[k]
    if not want then
      return config_error(string.format("unknown option '%s%s'", prefix, tostring(k)), prefix .. tostring(k))
    end
    if type(v) ~= want and not (want == "function" and v == false) then
      return config_error(string.format("option '%s%s' must be a %s, got %s", prefix, k, want, type(v)), prefix .. k)
    end
  end
end

-- Options not given fall back to the ZOHO_* environment variables (README,
-- "Authentication"), unless `env = false`.
local function from_env(opts)
  if opts.env == false then return opts end
  local getenv = os.getenv
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local explicit_auth = o.access_token or o.oauth
  if not explicit_auth then
    local id, secret, refresh = getenv("ZOHO_CLIENT_ID"), getenv("ZOHO_CLIENT_SECRET"), getenv("ZOHO_REFRESH_TOKEN")
    if id or secret or refresh then
      o.oauth = { client_id = id, client_secret = secret, refresh_token = refresh,
                  accounts_url = not (opts.dc or opts.environment) and getenv("ZOHO_ACCOUNTS_URL") or nil }
    elseif getenv("ZOHO_ACCESS_TOKEN") then
      o.access_token = getenv("ZOHO_ACCESS_TOKEN")
    end
  elseif o.oauth and not o.oauth.accounts_url and not opts.dc and not opts.environment
      and getenv("ZOHO_ACCOUNTS_URL") then
    local copy = {}
    for k, v in pairs(o.oauth) do copy[k] = v end
    copy.accounts_url = getenv("ZOHO_ACCOUNTS_URL")
    o.oauth = copy
  end
  o.dc = o.dc or getenv("ZOHO_DC")
  o.environment = o.environment or getenv("ZOHO_ENVIRONMENT")
  if not o.api_domain and not opts.dc and not opts.environment then
    o.api_domain = getenv("ZOHO_API_DOMAIN")
  end
  return o
end

local function positive(n) return n == nil or n > 0 end

--- zcrm.new(opts) -> client, or nil, err (kind "config").
function zcrm.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("zcrm.new expects a table of options", 2) end
  local bad = check_types(opts, KNOWN_OPTIONS, "")
  if bad then return nil, bad end
  if opts.oauth then
    bad = check_types(opts.oauth, KNOWN_OAUTH, "oauth.")
    if bad then return nil, bad end
  end
  opts = from_env(opts)

  local self = setmetatable({
    version = opts.version or "v8",
    request_timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    max_retries = opts.max_retries or 3,
    retry_base = opts.retry_base or 0.5,
    retry_max_delay = opts.retry_max_delay or 30,
    max_credits = opts.max_credits,
    credits_spent = 0,
    token_refreshes = 0,
    logger = opts.logger or nil,
    _secrets = {},
  }, Client)

  if not (positive(opts.timeout) and positive(opts.connect_timeout)) then
    return nil, config_error("timeout and connect_timeout must be positive", "timeout")
  end
  local conc = opts.concurrency
  if conc ~= nil and (math.type(conc) ~= "integer" or conc < 1 or conc > 1000) then
    return nil, config_error("concurrency must be an integer from 1 to 1000 (Zoho allows 5 to 25 by edition)", "concurrency")
  end
  if math.type(self.max_retries) ~= "integer" or self.max_retries < 0 then
    return nil, config_error("max_retries must be a non-negative integer", "max_retries")
  end
  if not self.version:match("^v%d+$") then
    return nil, config_error("version must look like 'v8'", "version")
  end

  self.credit_costs = {}
  for k, v in pairs(http.DEFAULT_COSTS) do self.credit_costs[k] = v end
  for k, v in pairs(opts.credit_costs or {}) do self.credit_costs[k] = v end

  -- Where the API lives: an explicit api_domain wins; otherwise dc + environment.
  self.dc, self.environment = opts.dc or "us", opts.environment or "production"
  local where, derr = dc.resolve(self.dc, self.environment)
  if not where and (opts.dc or opts.environment) then
    return nil, config_error(derr, opts.dc and "dc" or "environment")
  end
  if opts.api_domain then
    self.api_domain_explicit = true
    where = where or {}
    where.api_domain = opts.api_domain
  elseif not where then
    return nil, config_error(derr, opts.dc and "dc" or "environment")
  end
  local domain, uerr = core.check_base_url(where.api_domain)
  if not domain then uerr.field = "api_domain"; return nil, uerr end
  self.api_domain = domain

  -- Credentials.
  if opts.oauth then
    local o = {}
    for k, v in pairs(opts.oauth) do o[k] = v end
    for _, k in ipairs { "client_id", "client_secret", "refresh_token" } do
      if o[k] == nil then
        return nil, config_error("oauth." .. k .. " is missing (or set ZOHO_" .. k:upper() .. ")", "oauth." .. k)
      end
      local ok, terr = core.check_token(o[k], "oauth." .. k)
      if not ok then return nil, terr end
    end
    self:_add_secret(o.client_secret)
    self:_add_secret(o.refresh_token)
    local accounts = o.accounts_url or (where and where.accounts_url)
    if not accounts then
      return nil, config_error("oauth.accounts_url is needed when dc is unknown", "oauth.accounts_url")
    end
    local acc, aerr = core.check_base_url(accounts)
    if not acc then aerr.field = "oauth.accounts_url"; return nil, aerr end
    o.accounts_url = acc
    o.refresh_margin = o.refresh_margin or 60
    self.oauth = o
    local ok, cerr = auth.load_cache(self)
    if not ok then return nil, cerr end
  elseif opts.access_token then
    local ok, terr = core.check_token(opts.access_token, "access_token")
    if not ok then return nil, terr end
    self.access_token = opts.access_token
    self:_add_secret(opts.access_token)
  else
    return nil, config_error("no credentials: give access_token or oauth (or set ZOHO_ACCESS_TOKEN, "
      .. "or ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN)", "access_token")
  end

  if opts.user_agent ~= nil then
    local ok, terr = core.check_token((opts.user_agent:gsub(" ", "_")), "user_agent")
    if not ok then return nil, terr end
  end
  local ua = opts.user_agent or string.format("zcrm/%s (%s; %s)", zcrm.VERSION, _VERSION, core.curl_version or "libcurl")
  self:_engine_init {
    concurrency = conc, ca_file = opts.ca_file, proxy = opts.proxy, user_agent = ua,
    max_response_bytes = opts.max_response_bytes,
  }
  return self
end

-- }====

zcrm.Client = Client
zcrm.dc = dc

return zcrm
