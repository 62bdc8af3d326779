--- One CRM API call as seen from inside an operation's coroutine: the auth
-- header, credits, the transfer, reading Zoho's two error shapes, and the retry
-- policy (429, 5xx and connection failures; backoff with full jitter).
--
-- Source of the shapes: Zoho's "Status Codes" page and the error tables of the
-- "Update Custom Module" page; of the limits: the "API Limits" page.
-- @module zcrm.http

local cjson = require "cjson.safe"
local core = require "zcrm.core"
local auth = require "zcrm.auth"

local M = {}

-- Credits each call costs (the "API Limits" page); `credit_costs` in zcrm.new overrides.
M.DEFAULT_COSTS = { read = 1, update_module = 5, create_module = 500, token = 0 }

-- Transport failures after which a request may have reached the server
-- (the others fail before anything is sent, or after an answer arrived).
local MAYBE_APPLIED = { SEND_ERROR = true, RECV_ERROR = true, TIMEOUT = true, TRANSPORT_ERROR = true }

-- A non-idempotent call is never sent again once it may have been applied:
-- the caller gets OUTCOME_UNKNOWN, with the transport fault as its cause.
local function outcome_unknown(method, err)
  return core.error {
    kind = "transport", code = "OUTCOME_UNKNOWN", retryable = false,
    message = string.format("%s may have been applied: it may have reached the server, and no answer came (%s: %s)",
      method, err.code, tostring(err.message)),
    details = { cause = err.code, curl_code = err.details and err.details.curl_code },
  }
end

local function unexpected(status, why)
  return core.error {
    kind = "transport", code = "UNEXPECTED_RESPONSE", status = status,
    message = string.format("unexpected response (HTTP %s): %s", tostring(status), why),
    retryable = status ~= nil and (status == 429 or status >= 500),
  }
end
M.unexpected = unexpected

-- Decodes a JSON object body; anything else is nil, reason.
local function decode(raw)
  if raw == nil or raw == "" then return nil, "empty body" end
  local doc, err = cjson.decode(raw)
  if doc == nil then return nil, "body is not JSON (" .. tostring(err) .. ")" end
  if type(doc) ~= "table" then return nil, "body is not a JSON object" end
  return doc
end
M.decode = decode

-- Builds the error object for a Zoho error answer, whichever shape it has
-- (A: top-level `code`; B: an item under `key`), or an UNEXPECTED_RESPONSE.
-- `doc` is redacted already (M.call).
local function api_error(_, status, doc, why, key)
  local item
  if doc then
    if type(doc.code) == "string" and doc.code ~= "" then
      item = doc
    elseif key and type(doc[key]) == "table" then
      for _, it in ipairs(doc[key]) do
        if type(it) == "table" and it.status == "error" and type(it.code) == "string" and it.code ~= "" then
          item = it
          break
        end
      end
    end
  end
  if not item then
    return unexpected(status, why or "no Zoho error object in the body")
  end
  local details = type(item.details) == "table" and item.details or nil
  local message = type(item.message) == "string" and item.message or nil
  return core.error {
    code = item.code, status = status, message = message, details = details,
    retryable = (status == 429 or status >= 500) or nil,
  }
end
M.api_error = api_error

-- Exponential backoff with full jitter, never sooner than the server's Retry-After.
local function backoff(client, attempt, retry_after)
  local cap = math.min(client.retry_max_delay, client.retry_base * 2 ^ attempt)
  local delay = math.random() * cap
  if retry_after then delay = math.max(delay, retry_after) end
  return delay
end

-- The origins ("https://host:port") that have answered this process (any
-- HTTP status). A refused connection to one of them is a restart, waited for;
-- to any other, a host that was never reached (a mistyped domain, a server
-- that is not running), which fails at once. One table for every client: a
-- new client of a host that answered an earlier one sees the same server.
local answered = {}

local function origin(url)
  local slash = url:find("/", 9, true) -- past "https://" and the host's first character
  return slash and url:sub(1, slash - 1) or url
end

-- A call that never reached a host that never answered: nothing to wait for.
local function never_answered(url, err)
  local host = origin(url)
  return core.error {
    kind = err.kind, code = err.code, retryable = err.retryable,
    message = string.format("%s never answered (%s)", host, tostring(err.message)),
    details = { host = host, curl_code = err.details and err.details.curl_code },
  }
end

-- The response headers this module reads (credits_after, the retry policy).
local READ_HEADERS = { "retry-after", "x-api-credits-remaining" }

local function parse_retry_after(v)
  local n = v and tonumber(v)
  if n and n >= 0 then return n end
  return nil
end

-- Credits: reserved when a transfer starts, refunded when no charge can have
-- happened (nothing answered, or 429).
local function credits_before(client, spec)
  local cost = spec.cost or 0
  local spent = client:credits()
  if client.max_credits and spent + cost > client.max_credits then
    return nil, core.error {
      kind = "limit", code = "CREDIT_LIMIT",
      message = string.format("this call costs %d credits; %d of max_credits %d are spent",
        cost, spent, client.max_credits),
      details = { cost = cost, spent = spent, max_credits = client.max_credits },
    }
  end
  client:_spend(cost)
  return true
end

local function credits_after(client, spec, status, _, headers)
  local refund = (status == nil or status == 429) and -(spec.cost or 0) or 0
  client:_spend(refund, headers and tonumber(headers["x-api-credits-remaining"]))
end


--- base_url(client) -> "{api_domain}/crm/{version}/", made once per client
-- (again only if either field changes).
function M.base_url(client)
  return client:_base_url()
end

-- The headers of a call with no headers of its own, checked and built once
-- per token in C (core.new_headers): { token =, [true] = with a body,
-- [false] = without }. A list that core.new_headers refuses stays a Lua
-- list, for multi:start to refuse with the same error.
local function plain_headers(client, token, has_body)
  local cache = client:_cache("http")
  local c = cache.headers
  if not c or c.token ~= token then
    local auth_line = "Authorization: Zoho-oauthtoken " .. token
    local with = { "Accept: application/json", auth_line, "Content-Type: application/json" }
    local without = { "Accept: application/json", auth_line }
    c = { token = token, [true] = core.new_headers(with) or with, [false] = core.new_headers(without) or without }
    cache.headers = c
  end
  return c[has_body]
end

--- Performs one API call from inside an operation. Returns `status, doc,
-- headers` for 2xx and 304 (`doc` is nil for 204 and 304), or `nil, err`;
-- a 2xx answer read with lua-cjson adds `nil, size` (the body's bytes).
-- opts: query (table), body (Lua table, JSON-encoded), key (resource key of
-- shape-B answers), cost (credits), headers (list), idempotent (default: not POST),
-- auth (false: send no Authorization header), conditional (true when the
-- headers make it a conditional GET, so that 304 is an answer), item_errors
-- (true: a 400 whose body is a list of result items under `key` is returned
-- like a success, for a batch call to read item by item).
-- The hot path of an update gives besides: `url` (the whole URL, `path`
-- then nil), `json` (the body, encoded already), and opts.read
-- (`read(body, secrets)` -> a result or nil, tried on a 2xx answer before
-- lua-cjson; a result is returned as `status, result, headers, true`).
-- `opts` is only read, so one table may serve many calls.
function M.call(client, method, path, opts, url, json)
  opts = opts or {}
  url = url or (M.base_url(client) .. path)
  if opts.query then
    local parts = {}
    for k, v in pairs(opts.query) do parts[#parts + 1] = core.url_escape(k) .. "=" .. core.url_escape(v) end
    table.sort(parts)
    if #parts > 0 then url = url .. "?" .. table.concat(parts, "&") end
  end
  local body = json
  if body == nil and opts.body ~= nil then
    local err
    body, err = cjson.encode(opts.body)
    if not body then
      return nil, core.error { kind = "validation", code = "INVALID_DATA", message = "cannot encode body: " .. tostring(err) }
    end
  end
  local idempotent = opts.idempotent
  if idempotent == nil then idempotent = method ~= "POST" end
  local attempt, reauthed = 0, false
  -- Failures that cost time, not retries (see below): how many, since when.
  local waits, waiting_since = 0, nil
  while true do
    local token, headers
    if opts.auth ~= false then
      local terr
      token, terr = auth.access_token(client)
      if not token then return nil, terr end
    end
    if token and not opts.headers then
      headers = plain_headers(client, token, body ~= nil)
    else
      headers = { "Accept: application/json" }
      if token then headers[2] = "Authorization: Zoho-oauthtoken " .. token end
      if body then headers[#headers + 1] = "Content-Type: application/json" end
      for _, h in ipairs(opts.headers or {}) do headers[#headers + 1] = h end
    end
    local spec = {
      method = method, url = url, headers = headers, body = body,
      timeout = client.request_timeout, connect_timeout = client.connect_timeout,
      cost = opts.cost, before_start = credits_before, after = credits_after,
      -- An update returns no headers: only those read here are made.
      want_headers = opts.read and READ_HEADERS or nil,
    }
    local status, raw, rheaders = coroutine.yield("http", spec)
    local err, retry_after
    if status == nil then
      err = raw
      if (err.code == "CONNECTION_FAILED" or err.code == "DNS_ERROR") and not answered[origin(url)] then
        return nil, never_answered(url, err)
      end
      -- A POST that never connected was never sent: safe to retry.
      if not idempotent and err.code ~= "CONNECTION_FAILED" then
        return nil, MAYBE_APPLIED[err.code] and outcome_unknown(method, err) or err
      end
    elseif status == 204 or (status == 304 and opts.conditional) then
      -- No body; 304 only answers a conditional request (If-Modified-Since).
      return status, nil, rheaders
    else
      local o = origin(url)
      if not answered[o] then answered[o] = true end
      if opts.read and status >= 200 and status < 300 then
        local res = opts.read(raw, client:_secret_forms())
        if res then return status, res, rheaders, true end
      end
      local doc, why = decode(raw)
      -- Every string a server chose (codes, messages, statuses, details, keys
      -- and values, of errors and successes) is redacted here, once, before
      -- any of it reaches an error, a result, a log line or output.
      if doc and client:_may_hold_secret(raw) then doc = client:_redact_value(doc) end
      if status >= 200 and status < 300 then
        if doc then return status, doc, rheaders, nil, #raw end
        -- An unreadable success leaves the outcome unknown: an idempotent call
        -- is simply asked again, which gives a definite answer.
        err = unexpected(status, why)
        if not idempotent then return nil, err end
        err.retryable = true
      elseif opts.item_errors and status == 400 and doc and doc.code == nil and opts.key
          and type(doc[opts.key]) == "table" and type(doc[opts.key][1]) == "table" then
        -- A batch answer in which every item failed: the caller reads the items.
        return status, doc, rheaders
      else
        err = api_error(client, status, doc, why, opts.key)
        if status == 401 and (err.code == "INVALID_TOKEN" or err.code == "INVALID_OAUTHTOKEN")
            and auth.refreshable(client) and not reauthed then
          -- The token died early (revoked, or more than 15 issued): refresh once, retry once.
          reauthed = true
          auth.invalidate(client, token)
          err = nil
        elseif status ~= 429 and not idempotent then
          return nil, err
        end
        retry_after = parse_retry_after(rheaders and rheaders["retry-after"])
      end
    end
    if err and retry_after and retry_after > client.retry_max_delay then
      -- The server asks for a longer wait than this client may sleep.
      err.details = err.details or {}
      err.details.retry_after = retry_after
      return nil, err
    end
    -- Two failures cost time, not retries: a refused connection to a host
    -- that answered before (nothing reached a server that is restarting),
    -- and a 429 to a call sent while others were in flight (the server's
    -- concurrency limit: the engine has lowered its in-flight count, and the
    -- call waits its turn). The call keeps trying, with backoff, for
    -- `timeout` seconds from the first of them; max_retries counts only the
    -- other failures, among them a 429 to a call that was alone in flight
    -- (the status does not say whether credits or concurrency ran out).
    local waits_out = err and (err.code == "CONNECTION_FAILED" or (status == 429 and spec.crowded))
    if waits_out then waiting_since = waiting_since or core.now() end
    local left = waiting_since and waiting_since + client.request_timeout - core.now()
    if waits_out and client.max_retries > 0 and left > 0 then
      waits = waits + 1
      local delay = math.min(backoff(client, waits, retry_after), left)
      client:_log("info", string.format("%s %s: %s; trying again in %.2fs (%.0fs left of timeout)",
        method, path or url:sub(#M.base_url(client) + 1), err.code, delay, left))
      coroutine.yield("sleep", delay)
    elseif err then
      if not err.retryable or attempt >= client.max_retries then return nil, err end
      attempt = attempt + 1
      local delay = backoff(client, attempt, retry_after)
      client:_log("info", string.format("%s %s: %s; retry %d/%d in %.2fs",
        method, path or url:sub(#M.base_url(client) + 1), err.code, attempt, client.max_retries, delay))
      coroutine.yield("sleep", delay)
    end
  end
end

return M
