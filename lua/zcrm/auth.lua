--- Access tokens: a static token, or OAuth refresh (Zoho's "Step 4: Refreshing
-- your Access Tokens" page).
--
-- Refresh happens when a token is first needed, ahead of expiry, and once after
-- a 401 INVALID_TOKEN. It is single-flight: however many calls need a token at
-- once, one refresh request is made and the others wait for its answer. Zoho
-- allows 10 refreshes per 10 minutes per refresh token ("Token Validity"); the client never
-- sends an 11th, it answers with a `REFRESH_LIMIT` error instead.
--
-- A client's auth record, made by `new`, is the only place its tokens and
-- credentials live; the client keeps it private and hands it to this module
-- (`client:_auth()`).
-- @module zcrm.auth

local cjson = require "cjson.safe"
local core = require "zcrm.core"
local util = require "zcrm.util"

local M = {}

local REFRESH_WINDOW, REFRESH_MAX = 600, 10
local TOKEN_EVENT = "zcrm.token"

-- Refresh times per accounts server and refresh token, shared by every client
-- in this Lua state: Zoho counts per refresh token, not per client object.
local refresh_times = {}


local function auth_error(code, message, extra)
  local e = util.copy(extra)
  e.kind, e.code, e.message = "auth", code, message
  return core.error(e)
end

--- The auth record of a client: `oauth` (the checked `oauth` options, whose
-- `access_token`, `expires_at` and `ttl` this module keeps) or a static
-- `access_token`, and `refreshes`, the number of refreshes asked for.
-- @tparam table|nil oauth
-- @tparam string|nil access_token
-- @treturn table
function M.new(oauth, access_token)
  return { oauth = oauth, access_token = access_token, refreshes = 0 }
end

--- True when the client refreshes its tokens (OAuth), and so may get a
-- fresh one after a 401.
function M.refreshable(client)
  return client:_auth().oauth ~= nil
end

-- {==== token cache file

-- Ties a token cache to its credentials without storing them.
local function cache_key(o)
  return o.client_id .. ":" .. util.fnv1a64(o.refresh_token)
end

--- Reads the token cache named in `o.token_cache`. Returns true, or nil, err when
-- the file is unsafe (readable by group or others).
function M.load_cache(client)
  local o = client:_auth().oauth
  local path = o and o.token_cache
  if not path then return true end
  local mode = core.file_mode(path)
  if not mode then return true end -- no cache yet
  if mode & 0x3f ~= 0 then -- any group or other bit (077)
    return nil, core.error {
      kind = "config", code = "UNSAFE_TOKEN_CACHE",
      message = string.format("token cache %s has mode %03o: it must be readable by its owner only (chmod 600 %s)",
        path, mode, path),
    }
  end
  -- Never through a symbolic link: a planted one cannot hand us a token.
  local f = core.open_file(path, "r")
  if not f then return true end
  local doc = cjson.decode(f:read("a") or "")
  f:close()
  if type(doc) == "table" and doc.key == cache_key(o) and type(doc.access_token) == "string"
      and type(doc.expires_at) == "number" then
    local left = doc.expires_at - os.time()
    if left > 0 then
      o.access_token = doc.access_token
      o.expires_at = core.now() + left
      o.ttl = doc.ttl or left
      client:_add_secret(doc.access_token)
    end
  end
  return true
end

local function save_cache(client)
  local o = client:_auth().oauth
  if not o.token_cache then return end
  local doc = cjson.encode {
    key = cache_key(o), access_token = o.access_token, ttl = o.ttl,
    expires_at = os.time() + math.floor(o.expires_at - core.now()),
  }
  -- No fsync: a lost cache only costs a refresh, and poll(0) must not wait on disk.
  local ok, err = core.write_private_file(o.token_cache, doc, false)
  if not ok then client:_log("warn", "token cache not written: " .. tostring(err)) end
end

-- }====

-- Seconds of validity in a token answer: `expires_in_sec` means `expires_in` is
-- in milliseconds (the official SDK's rule); else `expires_in` is seconds.
local function lifetime(doc)
  local sec = tonumber(doc.expires_in_sec)
  if sec then return sec end
  local v = tonumber(doc.expires_in)
  if v then return v end
  return 3600
end
M.lifetime = lifetime

local function note_refresh(o)
  local key = o.accounts_url .. "\0" .. o.refresh_token
  local times = refresh_times[key] or {}
  refresh_times[key] = times
  local t = core.now()
  while times[1] and times[1] <= t - REFRESH_WINDOW do table.remove(times, 1) end
  if #times >= (o.refresh_limit or REFRESH_MAX) then
    return nil, auth_error("REFRESH_LIMIT",
      string.format("%d token refreshes in the last 10 minutes for this refresh token; Zoho allows %d. Wait %.0f s.",
        #times, o.refresh_limit or REFRESH_MAX, times[1] + REFRESH_WINDOW - t),
      { retryable = true, details = { retry_after = times[1] + REFRESH_WINDOW - t } })
  end
  times[#times + 1] = t
  return true
end

-- A form body (application/x-www-form-urlencoded) of `fields`, a list of {name, value}.
local function form(fields)
  local parts = {}
  for i, f in ipairs(fields) do parts[i] = f[1] .. "=" .. core.url_escape(f[2]) end
  return table.concat(parts, "&")
end

-- One POST to the accounts server, from inside an operation: status, body
-- text, or nil, err when no answer came.
local function post_accounts(client, url, body)
  return coroutine.yield("http", {
    method = "POST", url = url, body = body,
    headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" },
    timeout = client.request_timeout, connect_timeout = client.connect_timeout,
    bypass_limit = true, -- the accounts server is not the CRM API's concurrency pool
  })
end

-- The token endpoint's answer as a table holding a valid access token, or
-- nil, err. `what` names the request in messages ("token refresh").
local function token_answer(client, status, raw, what)
  local doc = cjson.decode(raw or "")
  if type(doc) ~= "table" then
    return nil, auth_error("UNEXPECTED_RESPONSE",
      string.format("token endpoint answered HTTP %d with no JSON object", status),
      { status = status, retryable = status >= 500 })
  end
  -- Zoho answers token errors with HTTP 200 and an `error` key ("Step 4:
  -- Refreshing your Access Tokens").
  if doc.error ~= nil or type(doc.access_token) ~= "string" then
    -- Zoho's error names are short words; anything else is not one of them.
    local code = type(doc.error) == "string" and doc.error:match("^[%w_ ]+$") and #doc.error <= 64
      and doc.error or "UNEXPECTED_RESPONSE"
    -- A client secret is a short word too: an echo of one is no error name.
    if client:_redact(code) ~= code then code = "UNEXPECTED_RESPONSE" end
    local desc = type(doc.error_description) == "string" and doc.error_description or nil
    return nil, auth_error(code == "Access Denied" and "ACCESS_DENIED" or code,
      what .. " failed: " .. code .. (desc and (" (" .. client:_redact(desc) .. ")") or ""),
      { status = status, retryable = code == "Access Denied" })
  end
  -- The token goes into a header line: one with CR, LF or spaces is the
  -- accounts server's fault, and must never reach a request.
  if not core.check_token(doc.access_token, "access_token") then
    return nil, auth_error("UNEXPECTED_RESPONSE",
      "token endpoint answered an access token that is not a valid header value",
      { status = status, retryable = false })
  end
  client:_add_secret(doc.access_token)
  return doc
end

-- Runs inside an operation: one refresh request, its answer read and stored.
local function refresh(client)
  local rec = client:_auth()
  local o = rec.oauth
  local ok, lerr = note_refresh(o)
  if not ok then return nil, lerr end
  rec.refreshes = rec.refreshes + 1
  local status, raw = post_accounts(client, o.accounts_url .. "/oauth/v2/token", form {
    { "grant_type", "refresh_token" }, { "client_id", o.client_id },
    { "client_secret", o.client_secret }, { "refresh_token", o.refresh_token } })
  if status == nil then return nil, raw end
  local doc, derr = token_answer(client, status, raw, "token refresh")
  if not doc then return nil, derr end
  local ttl = lifetime(doc)
  o.access_token = doc.access_token
  o.ttl = ttl
  o.expires_at = core.now() + ttl
  -- The client's own api_domain came from its dc and environment (or was given
  -- explicitly), so an answer naming another one is not followed: a sandbox
  -- client must not drift to production.
  if type(doc.api_domain) == "string" and doc.api_domain ~= client.api_domain then
    client:_log("warn", string.format("token response names api_domain %s; keeping this client's %s (%s, %s)",
      doc.api_domain, client.api_domain, client.dc, client.environment))
  end
  save_cache(client)
  return o.access_token
end

-- A refresh that fails while the current token is still valid (inside the
-- refresh margin) keeps that token: one accounts-server hiccup must not fail
-- calls that can still succeed.
local function keep_current(client, token, err)
  local o = client:_auth().oauth
  if not token and o.access_token and core.now() < o.expires_at then
    client:_log("warn", "token refresh failed (" .. tostring(err) .. "); using the current token until it expires")
    token, err = o.access_token, nil
  end
  return token, err
end

--- Returns a usable access token (refreshing when needed), or nil, err. Runs
-- inside an operation's coroutine; however many calls need a token at once,
-- one refresh runs and they all wait for it (single flight).
function M.access_token(client)
  local rec = client:_auth()
  local o = rec.oauth
  if not o then return rec.access_token end
  if o.access_token then
    local margin = math.min(o.refresh_margin, (o.ttl or 3600) / 2)
    if core.now() < o.expires_at - margin then return o.access_token end
  end
  return client:_single_flight(TOKEN_EVENT, "token refresh", refresh, keep_current)
end

--- Exchanges a grant code for a refresh token (Zoho's "Step 3: Generating
-- Access and Refresh Tokens"): `grant_type=authorization_code`. An operation:
-- runs inside the engine. The tokens become secrets of `client` (redacted
-- from its errors and logs).
-- @tparam table client
-- @tparam string accounts_url the accounts server
-- @tparam table p `client_id`, `client_secret`, `code`, optional `redirect_uri`
-- @treturn table|nil `{ access_token =, refresh_token =, api_domain =, expires_in = }`,
-- or nil and a `zcrm.error` (kind "auth": `invalid_code`, `invalid_client`...)
function M.exchange_code(client, accounts_url, p)
  for _, s in ipairs { p.client_secret, p.code } do client:_add_secret(s) end
  local fields = { { "grant_type", "authorization_code" }, { "client_id", p.client_id },
    { "client_secret", p.client_secret }, { "code", p.code } }
  if p.redirect_uri then fields[#fields + 1] = { "redirect_uri", p.redirect_uri } end
  local status, raw = post_accounts(client, accounts_url .. "/oauth/v2/token", form(fields))
  if status == nil then return nil, raw end
  local doc, err = token_answer(client, status, raw, "code exchange")
  if not doc then return nil, err end
  if not core.check_token(doc.refresh_token, "refresh_token") then
    return nil, auth_error("UNEXPECTED_RESPONSE", "the code exchange answered no valid refresh token",
      { status = status })
  end
  client:_add_secret(doc.refresh_token)
  return { access_token = doc.access_token, refresh_token = doc.refresh_token,
           api_domain = type(doc.api_domain) == "string" and doc.api_domain or nil, expires_in = lifetime(doc) }
end

--- Revokes a refresh token (and its access tokens) at the accounts server:
-- `POST /oauth/v2/token/revoke?token=T`. An operation.
-- @tparam table client
-- @tparam string accounts_url
-- @tparam string token the refresh token
-- @treturn true|false|nil true when revoked, false when the server does not
-- know the token (revoked already, or expired), or nil and a `zcrm.error`
function M.revoke(client, accounts_url, token)
  client:_add_secret(token)
  local status, raw = post_accounts(client, accounts_url .. "/oauth/v2/token/revoke?token=" .. core.url_escape(token), "")
  if status == nil then return nil, raw end
  local doc = cjson.decode(raw or "")
  if type(doc) == "table" and status == 200 and doc.status == "success" then return true end
  if type(doc) == "table" and (doc.error == "invalid_token" or doc.error == "invalid_code") then return false end
  return nil, auth_error("UNEXPECTED_RESPONSE", string.format("token revocation answered HTTP %d%s", status,
    type(doc) == "table" and type(doc.error) == "string" and doc.error:match("^[%w_ ]+$") and (": " .. doc.error) or ""),
    { status = status, retryable = status >= 500 })
end

--- Forgets `token` after the server refused it, unless a newer one is in use.
function M.invalidate(client, token)
  local o = client:_auth().oauth
  if o and o.access_token == token then
    o.access_token = nil
  end
end


return M
