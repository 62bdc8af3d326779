--- Options, checked in one place by one rule: `check` serves every call
-- that takes options (`zcrm.new`, `client:apply`, `client:plan`,
-- `client:diff`, `zcrm.apply_orgs`, change sets), and a bad option is
-- `nil, err` with code INVALID_CONFIG naming it (`err.field`,
-- `err.details.option`). `zcrm.new` hands its table to `client` and gets
-- back the settings a client is built from; options not given fall back to
-- the ZOHO_* environment variables, unless `env = false`.
-- @module zcrm.options

local core = require "zcrm.core"
local dc = require "zcrm.dc"
local util = require "zcrm.util"
local store = require "zcrm.store"

local M = {}

-- Schema entries of numbers (see `check`): at least `min` (above it, when
-- `above`), at most `max`.
local function int(min, max, hint) return { type = "integer", min = min, max = max, hint = hint } end
local function num(min, above) return { type = "number", min = min, above = above } end

--- The options of `zcrm.new` (a schema of `check`). An unknown option, a
-- wrong type or a number out of range is INVALID_CONFIG.
-- @table client_options
-- @tfield string api_domain the API's base URL, e.g. "https://www.zohoapis.eu";
-- wins over `dc` and `environment`; `http://` only to loopback (ZOHO_API_DOMAIN)
-- @tfield string dc data centre: us, eu, in, au, jp, ca, sa, cn, uk (default "us"; ZOHO_DC)
-- @tfield string environment production, sandbox or developer (default
-- "production"; ZOHO_ENVIRONMENT)
-- @tfield string access_token a static token (ZOHO_ACCESS_TOKEN)
-- @tfield table oauth refresh-token credentials; see `oauth_options`
-- @tfield string version the API version, "v8" (default)
-- @tfield number timeout seconds for a whole call, greater than 0 (default 30)
-- @tfield number connect_timeout seconds to connect, greater than 0 (default 10)
-- @tfield integer max_retries retries of a retryable failure, 0 or more (default 3)
-- @tfield integer concurrency calls in flight at once, 1 to 1000 (default 10;
-- Zoho allows 5 to 25 by edition)
-- @tfield string ca_file a CA bundle for TLS verification
-- @tfield string proxy a proxy URL for libcurl
-- @tfield string user_agent the User-Agent header (default "zcrm/VERSION (...)")
-- @tfield function|false logger `function(level, message)`; secrets never reach it
-- @tfield integer max_credits a budget, 0 or more: a call past it fails with CREDIT_LIMIT
-- @tfield table credit_costs credits per call kind: see `credit_costs`
-- (defaults from the API Limits page)
-- @tfield number retry_base seconds of the first backoff step, 0 or more (default 0.5)
-- @tfield number retry_max_delay the longest wait between retries, seconds, 0 or more (default 30)
-- @tfield integer max_response_bytes a larger response body fails the call (1 or more; default 8 MiB)
-- @tfield integer max_read_items the most items one read (every page of
-- get_modules, get_profiles) may gather (default 10,000)
-- @tfield integer max_read_bytes the most answer bytes one read may gather,
-- across its pages (default 16 MiB)
-- @tfield string label_rules which label rule the local checks apply:
-- "reference" (default: the Update Custom Module page, at most 25 characters,
-- letters of any script) or "openapi" (Zoho's newer OpenAPI file: at most 50,
-- ASCII letters, digits and spaces)
-- @tfield boolean env false: ignore the ZOHO_* environment variables
-- @tfield string org a stored org (`zcrm login --org NAME`; ZCRM_ORG): what
-- the other options and the ZOHO_* variables leave unset comes from it
M.CLIENT = {
  api_domain = "string", dc = "string", environment = "string", access_token = "string",
  oauth = { type = "table", fields = "OAUTH" }, version = { type = "string", pattern = "^v%d+$", like = "'v8'" },
  timeout = num(0, true), connect_timeout = num(0, true),
  max_retries = int(0), concurrency = int(1, 1000, "Zoho allows 5 to 25 by edition"),
  ca_file = "string", proxy = "string", user_agent = "string", logger = "function|false",
  max_credits = int(0), credit_costs = { type = "table", fields = "CREDIT_COSTS" },
  retry_base = num(0), retry_max_delay = num(0), max_response_bytes = int(1),
  max_read_items = int(1), max_read_bytes = int(1),
  env = "boolean", org = "string", label_rules = { type = "string", one_of = { "reference", "openapi" } },
}
--- The fields of `oauth` in `zcrm.new`'s options.
-- @table oauth_options
-- @tfield string client_id (ZOHO_CLIENT_ID)
-- @tfield string client_secret (ZOHO_CLIENT_SECRET); never logged
-- @tfield string refresh_token (ZOHO_REFRESH_TOKEN); never logged
-- @tfield string accounts_url the accounts server (default: the dc's; ZOHO_ACCOUNTS_URL)
-- @tfield number refresh_margin refresh this many seconds before expiry (default 60; 0 or more)
-- @tfield string token_cache a file (mode 0600) keeping the access token between runs
-- @tfield integer refresh_limit refreshes per 10 minutes (default 10, Zoho's limit; 1 or more)
M.OAUTH = {
  client_id = "string", client_secret = "string", refresh_token = "string",
  accounts_url = "string", refresh_margin = num(0), token_cache = "string",
  refresh_limit = int(1),
}
--- The fields of `credit_costs` in `zcrm.new`'s options: credits per call
-- kind, each an integer, 0 or more.
-- @table credit_costs
-- @tfield integer read a read (GET; default 1)
-- @tfield integer update_module a module update (default 5)
-- @tfield integer create_module a module creation (default 500)
-- @tfield integer token a token refresh (default 0)
M.CREDIT_COSTS = { read = int(0), update_module = int(0), create_module = int(0), token = int(0) }

local function config_error(message, field)
  return core.error { kind = "config", code = "INVALID_CONFIG", message = message, field = field,
                      details = field and { option = field } or nil }
end

local function a(what) return (what:match("^[aeiou]") and "an " or "a ") .. what end

-- Why `v` does not fit `want` (an entry of a schema), or nil when it does;
-- the option at fault (a field of a nested table) as the second result.
local function misfit(v, want, name)
  if type(want) == "string" then want = { type = want } end
  local base, or_false = want.type:match("^(%a+)(.*)$")
  if or_false == "|false" and v == false then return nil end
  if base == "integer" or base == "number" then
    if type(v) ~= "number" then return "must be " .. a(base) .. ", got " .. type(v) end
    if v ~= v or v == math.huge or v == -math.huge then return "must be a finite number, got " .. tostring(v) end
    if base == "integer" and not math.tointeger(v) then return "must be an integer, got " .. tostring(v) end
    local low = want.min and (v < want.min or (want.above and v == want.min))
    if low or (want.max and v > want.max) then
      local range = want.max and string.format("from %s to %s", want.min, want.max)
        or string.format("%s %s", want.above and "greater than" or "at least", want.min)
      return string.format("must be %s %s, got %s%s", base == "integer" and "an integer" or "a number", range,
        tostring(v), want.hint and " (" .. want.hint .. ")" or "")
    end
  elseif type(v) ~= base then
    return "must be " .. a(base) .. ", got " .. type(v)
  elseif want.one_of then
    for _, ok in ipairs(want.one_of) do if v == ok then return nil end end
    return "must be one of \"" .. table.concat(want.one_of, "\", \"") .. "\", got " .. string.format("%q", v)
  elseif want.pattern and not v:match(want.pattern) then
    return "must look like " .. want.like
  elseif want.fields then
    local fields = M[want.fields] or want.fields
    for k, x in pairs(v) do
      local sub = name .. "." .. tostring(k)
      if not fields[k] then return "unknown option '" .. sub .. "'", sub end
      local why = misfit(x, fields[k], sub)
      if why then return why, sub end
    end
  end
  return nil
end

--- The options of `client:apply(changes)`, a change set (the schema is
-- `zcrm.plan.changeset_apply`'s APPLY_OPTIONS). A bad one is INVALID_CONFIG.
-- @table changes_options
-- @tfield boolean dry_run read the org and report what would be sent; send nothing
-- @tfield boolean partial when some modules drifted, send the others (default: refuse the set)
-- @tfield string journal the journal's path (as for plans)
-- @tfield string undo_file before the first update, write a plan restoring the state read (a new file)
-- @tfield table only API names or ids of the modules to apply
-- @tfield table exclude API names or ids of the modules to leave out
-- @tfield integer max_credits refuse a run that would spend more credits (nothing sent)
-- @tfield integer concurrency updates in flight at most (default and cap: the client's)
-- @tfield function on_plan `function(report)` once the set is checked against the org
-- @tfield function confirm `function(report)` before anything is sent: anything but true sends nothing
-- @tfield function on_result `function(change, res, err)` after each update
-- @tfield function on_progress `function(done, total)`
-- @tfield function stop `function()` asked before each new update; once true, nothing more is sent
-- @tfield number stop_grace seconds the updates in flight get after `stop` (default 5)

--- The options of `client:plan` (a schema of `check`).
-- @table plan_options
-- @tfield table args the plan function's `ctx.args`
-- @tfield string dir the directory a plan function's `ctx.path` resolves against
-- @tfield string source the plan file to record in the change set (default: `plan` when a path)
-- @tfield table only API names or ids of the modules to plan
-- @tfield table exclude API names or ids of the modules to leave out

--- The options of `client:diff` (a schema of `check`).
-- @table diff_options
-- @tfield table args the plan function's `ctx.args`
-- @tfield string dir the directory a plan function's `ctx.path` resolves against

--- The options of `zcrm.apply_orgs` (the schema is `zcrm.orgs`' OPTIONS). In
-- `journal` and `undo_file`, `{org}` becomes each org's name (and must be
-- there when several orgs write a file). The callbacks get the org's name first.
-- @table apply_orgs_options
-- @tfield boolean dry_run check every org and report what would be sent; send nothing
-- @tfield string journal a journal per org (`{org}` in the path)
-- @tfield string undo_file an undo plan per org (`{org}` in the path)
-- @tfield table args the plan function's `ctx.args` (each org's own fields are added, and `org`, its name)
-- @tfield string dir the directory a plan function's `ctx.path` resolves against
-- @tfield function on_plan `function(result)` once every org is checked
-- @tfield function confirm `function(result)` once for all orgs: anything but true sends nothing
-- @tfield function on_result `function(org, entry, res, err)` after each update
-- @tfield function on_progress `function(org, done, total)`
-- @tfield integer concurrency updates in flight per org at most
-- @tfield function stop `function()` asked before each new update; once true, nothing more is sent
-- @tfield number stop_grace seconds the updates in flight get after `stop` (default 5)

--- The one checker of options, for every call that takes them (`zcrm.new`,
-- `client:apply`, `client:plan`, `client:diff`, `zcrm.apply_orgs`, change
-- sets): every key of `opts` must be in `schema`, with its type, and for a
-- number its integer-ness and range. A schema maps an option's name to a type
-- name ("string", "boolean", "table", "function", "function|false") or to
-- `{ type =, min =, above =, max =, one_of =, pattern =, fields = }`.
-- @tparam table|nil opts the options (nil: none)
-- @tparam table schema
-- @tparam string call the call's name, for messages, e.g. "apply"
-- @treturn table|nil `opts` (or an empty table for nil), or nil and a
-- `zcrm.error`: kind "config", code INVALID_CONFIG, `field` and
-- `details.option` the option at fault
-- @local
function M.check(opts, schema, call)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("zcrm: " .. call .. ": opts must be a table, got " .. type(opts), 3) end
  for k, v in pairs(opts) do
    local name = tostring(k)
    local want = type(k) == "string" and schema[k]
    if not want then return nil, config_error(call .. ": unknown option '" .. name .. "'", name) end
    local why, field = misfit(v, want, name)
    if why then
      field = field or name
      return nil, config_error(string.format("%s: option '%s' %s", call, field, why), field)
    end
  end
  return opts
end

--- Checks a string that becomes a path or a URL: one with a NUL byte is
-- refused, since a C call would silently use the shorter string before it.
-- @param v the value (anything but a string passes)
-- @tparam string field its name, for the error
-- @tparam[opt] string kind the error's kind (default "validation")
-- @treturn true|nil true, or nil and an INVALID_ARGUMENT error
-- @local
function M.check_path(v, field, kind)
  if type(v) ~= "string" or not v:find("\0", 1, true) then return true end
  return nil, core.error { kind = kind or "validation", code = "INVALID_ARGUMENT", field = field,
                           message = field .. " contains a NUL byte" }
end

--- The bounds of one read across its pages (a server that always says
-- more_records must not make a client hold more): far above Zoho's own
-- limits (600 modules, 200 profiles per licence; a module list of 600 is
-- about 2 MB).
-- @local
M.READ_LIMITS = { max_read_items = 10000, max_read_bytes = 16 * 1024 * 1024 }

-- Options not given fall back to the ZOHO_* environment variables (README,
-- "Authentication"), unless `env = false`.
local function from_env(opts)
  if opts.env == false then return opts end
  local getenv = os.getenv
  local o = util.copy(opts)
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
    o.oauth = util.copy(o.oauth)
    o.oauth.accounts_url = getenv("ZOHO_ACCOUNTS_URL")
  end
  o.org = o.org or getenv("ZCRM_ORG")
  o.dc = o.dc or getenv("ZOHO_DC")
  o.environment = o.environment or getenv("ZOHO_ENVIRONMENT")
  if not o.api_domain and not opts.dc and not opts.environment then
    o.api_domain = getenv("ZOHO_API_DOMAIN")
  end
  return o
end

-- A stored org comes last: options, then the ZOHO_* variables, then the
-- org fill what is unset. Its accounts server goes with its refresh token.
local function with_org(opts)
  local org, err = store.get(opts.org)
  if not org then return nil, err end
  local o = util.copy(opts)
  local stored = store.options(org)
  if not (o.access_token or o.oauth) then o.oauth = stored.oauth end
  if not (o.api_domain or o.dc or o.environment) then o.api_domain = stored.api_domain end
  return o
end

-- Where the API lives: an explicit api_domain wins; otherwise dc + environment.
local function resolve_domain(opts, s)
  s.dc, s.environment = opts.dc or "us", opts.environment or "production"
  local where, derr = dc.resolve(s.dc, s.environment)
  if not where and (opts.dc or opts.environment) then
    return nil, config_error(derr, opts.dc and "dc" or "environment")
  end
  if opts.api_domain then
    s.api_domain_explicit = true
    where = where or {}
    where.api_domain = opts.api_domain
  elseif not where then
    return nil, config_error(derr, opts.dc and "dc" or "environment")
  end
  local domain, uerr = core.check_base_url(where.api_domain)
  if not domain then uerr.field = "api_domain"; return nil, uerr end
  s.api_domain = domain
  return where
end

-- Credentials: an OAuth triple (with its accounts server) or a static token.
local function credentials(opts, s, where)
  if opts.oauth then
    local o = util.copy(opts.oauth)
    for _, k in ipairs { "client_id", "client_secret", "refresh_token" } do
      if o[k] == nil then
        return nil, config_error("oauth." .. k .. " is missing (or set ZOHO_" .. k:upper() .. ")", "oauth." .. k)
      end
      local ok, terr = core.check_token(o[k], "oauth." .. k)
      if not ok then return nil, terr end
    end
    s.secrets = { o.client_secret, o.refresh_token }
    local accounts = o.accounts_url or (where and where.accounts_url)
    if not accounts then
      return nil, config_error("oauth.accounts_url is needed when dc is unknown", "oauth.accounts_url")
    end
    local acc, aerr = core.check_base_url(accounts)
    if not acc then aerr.field = "oauth.accounts_url"; return nil, aerr end
    o.accounts_url = acc
    o.refresh_margin = o.refresh_margin or 60
    s.oauth = o
  elseif opts.access_token then
    local ok, terr = core.check_token(opts.access_token, "access_token")
    if not ok then return nil, terr end
    s.access_token = opts.access_token
    s.secrets = { opts.access_token }
  else
    return nil, config_error("no credentials: give access_token or oauth (or set ZOHO_ACCESS_TOKEN, "
      .. "or ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN)", "access_token")
  end
  return true
end

--- Checks `zcrm.new`'s options and resolves them to settings. `defaults`
-- holds `credit_costs` and `user_agent` for options not given. Settings:
-- version, timeout, connect_timeout, max_retries, retry_base,
-- retry_max_delay, max_credits, max_read_items, max_read_bytes, logger,
-- credit_costs, dc, environment, label_rules,
-- api_domain, api_domain_explicit, oauth or access_token, secrets, and
-- `transport` (what the engine needs: concurrency, ca_file, proxy,
-- user_agent, max_response_bytes).
-- @tparam table|nil opts see `client_options`
-- @tparam table defaults
-- @treturn table|nil the settings, or nil and a `zcrm.error` (kind "config")
-- @local
function M.client(opts, defaults)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("zcrm.new expects a table of options", 3) end
  local _, err = M.check(opts, M.CLIENT, "zcrm.new")
  if err then return nil, err end
  opts = from_env(opts)
  if opts.org then
    local with, oerr = with_org(opts)
    if not with then return nil, oerr end
    opts = with
  end
  for _, k in ipairs { "ca_file", "proxy", "api_domain" } do
    local ok, perr = M.check_path(opts[k], k, "config")
    if not ok then return nil, perr end
  end
  if type(opts.oauth) == "table" then
    for _, k in ipairs { "token_cache", "accounts_url" } do
      local ok, perr = M.check_path(opts.oauth[k], "oauth." .. k, "config")
      if not ok then return nil, perr end
    end
  end

  local s = {
    version = opts.version or "v8",
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    max_retries = opts.max_retries or 3,
    retry_base = opts.retry_base or 0.5,
    retry_max_delay = opts.retry_max_delay or 30,
    max_credits = opts.max_credits,
    logger = opts.logger or nil,
    label_rules = opts.label_rules or "reference",
    max_read_items = opts.max_read_items or M.READ_LIMITS.max_read_items,
    max_read_bytes = opts.max_read_bytes or M.READ_LIMITS.max_read_bytes,
  }
  s.credit_costs = util.copy(defaults.credit_costs)
  for k, v in pairs(opts.credit_costs or {}) do s.credit_costs[k] = v end

  local where, werr = resolve_domain(opts, s)
  if not where then return nil, werr end
  local ok, cerr = credentials(opts, s, where)
  if not ok then return nil, cerr end

  if opts.user_agent ~= nil then
    local uok, terr = core.check_token((opts.user_agent:gsub(" ", "_")), "user_agent")
    if not uok then return nil, terr end
  end
  -- A proxy URL's password is a secret like the tokens.
  local proxy_password = type(opts.proxy) == "string" and opts.proxy:match("^%a[%w+.-]*://[^/@:]*:([^/@]+)@")
  if proxy_password then s.secrets[#s.secrets + 1] = proxy_password end
  s.concurrency = opts.concurrency or 10
  s.transport = {
    concurrency = s.concurrency, ca_file = opts.ca_file, proxy = opts.proxy,
    user_agent = opts.user_agent or defaults.user_agent, max_response_bytes = opts.max_response_bytes,
  }
  return s
end

return M
