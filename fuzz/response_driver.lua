-- Driver of fuzz_response: the Lua layer's reading of answers (lua/zcrm/http.lua
-- decode/api_error/retry policy, modules.lua result reading, auth.lua token
-- answers) fed fuzzed status, headers and bodies through lua-cjson.
--
-- An operation is submitted to the real client (zcrm.new) and driven by the
-- real engine (client:poll); only the transport is replaced: the client's
-- multi is a fake whose transfers end with the next fuzzed response (or a
-- transport error). Every request spec the Lua layer builds is also started on
-- a real core multi and cancelled, so a spec libcurl would refuse is caught.
--
-- Input: byte 0 = operation (bit 7: OAuth client); then responses, each:
--   status  u16 big-endian, folded into 100-999 (below 100: a transport error instead)
--   flags   u8  (1: Retry-After, 2: X-API-CREDITS-REMAINING, 4: Content-Type html,
--                values as u8 after the flags when set)
--   length  u16 big-endian, then that many body bytes
-- When the input runs out, every further call gets CONNECTION_FAILED.
--
-- Raises (a finding) when an operation raises instead of returning, returns
-- something that is neither a result nor `nil, zcrm.error`, yields more than a
-- bounded number of times, or puts a secret into an error message.

local zcrm = require "zcrm"
local core = require "zcrm.core"
local auth = require "zcrm.auth"
local engine = require "zcrm.engine"
local client_mod = require "zcrm.client"
local private = client_mod.private

local API, ACCOUNTS = "https://crm.fuzz.test", "https://accounts.fuzz.test"
local SECRETS = { "fuzz-access-token-0001", "fuzz-client-secret-0001", "fuzz-refresh-token-0001" }

-- timeout bounds the window in which refused connections are retried (they
-- do not count against max_retries), so every input ends in bounded time.
local plain = assert(zcrm.new { api_domain = API, access_token = SECRETS[1], env = false, timeout = 0.05,
                                max_retries = 2, retry_base = 0, retry_max_delay = 0.001 })
local oauth = assert(zcrm.new { api_domain = API, env = false, max_retries = 2, retry_base = 0, retry_max_delay = 0.001,
  timeout = 0.05,
  oauth = { client_id = "1000.FUZZCLIENT", client_secret = SECRETS[2], refresh_token = SECRETS[3],
            accounts_url = "https://accounts.fuzz.test" } })

-- auth.lua keeps refresh times per refresh token for the whole Lua state (Zoho's
-- 10 per 10 minutes); each input starts with none, as a fresh process would.
local function find_upvalue(fn, name, depth)
  for i = 1, 255 do
    local n, v = debug.getupvalue(fn, i)
    if not n then break end
    if n == name then return v end
    if type(v) == "function" and depth > 0 then
      local found = find_upvalue(v, name, depth - 1)
      if found then return found end
    end
  end
end
local refresh_times = assert(find_upvalue(auth.access_token, "refresh_times", 3), "refresh_times not found")

local KINDS = { validation = true, config = true, api = true, auth = true, limit = true, transport = true }
local TRANSPORT = { "CONNECTION_FAILED", "TIMEOUT", "RECV_ERROR", "SEND_ERROR", "TLS_ERROR",
                    "RESPONSE_TOO_LARGE", "DNS_ERROR" }

local UPDATE = {
  plural_label = "Digital Marketings", singular_label = "Digital Marketing",
  profiles = { { id = "2423488000000015972", _delete = zcrm.null }, { id = "2423488000000015975" } },
}
local BY_NAME = { plural_label = "Campaigns", profiles = { { name = "Administrator" }, { name = "Standard", _delete = true } } }

-- A fresh engine for every input (its queue, timers and waiters start empty),
-- driving the fake transport below instead of a real multi.
local function reset(c, transport)
  local r = private(c)
  r.credits.spent, r.credits.remaining = 0, nil
  r.caches = {}
  c.api_domain = API
  local old = r.engine
  old:close()
  r.engine = engine.new { ops = client_mod.OPS, owner = c, transport = { concurrency = c.concurrency },
                          redact = old.redact, log = old.log }
  r.engine.multi:close()
  r.engine.multi, r.engine.transfers.multi = transport, transport
  local o = r.auth.oauth
  if o then
    o.access_token, o.expires_at, o.ttl, o.refreshing = nil, nil, nil, false
  end
  for k in pairs(refresh_times) do refresh_times[k] = nil end
end

local function no_secret(s, where)
  s = tostring(s)
  for _, secret in ipairs(SECRETS) do
    assert(not s:find(secret, 1, true), where .. " holds a secret: " .. s)
  end
end

local function check_result(c, ok, a, b)
  assert(ok, "operation raised: " .. tostring(a))
  if a == nil then
    assert(zcrm.is_error(b), "nil without an error object: " .. tostring(b))
    assert(KINDS[b.kind], "unknown kind " .. tostring(b.kind))
    assert(type(b.code) == "string" and #b.code > 0, "error without a code")
    assert(b.status == nil or math.type(b.status) == "integer", "status not an integer")
    local text = tostring(b)
    assert(type(text) == "string" and #text > 0)
    no_secret(text, "tostring(err)")
    no_secret(b.message, "err.message")
    -- an access token received from the token endpoint is a secret too
    local got = private(c).auth.oauth and private(c).auth.oauth.access_token
    if type(got) == "string" and #got >= 8 and got:find("[^%s]") then
      assert(not text:find(got, 1, true), "tostring(err) holds the received access token")
    end
  else
    -- a result: a table (status for request), never an error object
    assert(not zcrm.is_error(a), "an error object returned as a result")
  end
end

-- {==== the fake transport

local real_multi = core.new_multi {}
local input = { data = "", pos = 1 }

local function next_response(spec)
  local data, pos = input.data, input.pos
  if pos + 1 > #data then
    -- a timeout, not a refusal: it counts against max_retries, so running out
    -- of input ends the operation at once
    return nil, core.error { kind = "transport", code = "TIMEOUT", message = "no more input", retryable = true }
  end
  local function u8() local b = data:byte(pos) or 0; pos = pos + 1; return b end
  local status = u8() * 256 + u8()
  local flags = u8()
  local headers = {}
  if flags & 1 ~= 0 then headers["retry-after"] = tostring(u8()) end
  if flags & 2 ~= 0 then headers["x-api-credits-remaining"] = tostring(u8()) end
  if flags & 4 ~= 0 then headers["content-type"] = "text/html" end
  local len = u8() * 256 + u8()
  local body = data:sub(pos, pos + len - 1)
  input.pos = pos + len
  if status < 100 then
    return nil, core.error { kind = "transport", code = TRANSPORT[status % #TRANSPORT + 1],
                             message = "injected", retryable = status % #TRANSPORT < 4 }
  end
  assert(spec.method ~= nil)
  return 100 + (status - 100) % 900, body, headers -- curl reads any three digits
end

local Fake = {}
Fake.__index = Fake
function Fake.new() return setmetatable({ started = {} }, Fake) end
function Fake:start(spec)
  -- the engine pcalls start: findings are noted, then raised by the driver
  if not (spec.url:sub(1, #API) == API or spec.url:sub(1, #ACCOUNTS) == ACCOUNTS) then
    input.finding = "request to an unexpected host: " .. spec.url
  end
  local creq, err = real_multi:start(spec)     -- would libcurl take it?
  if not creq then
    input.finding = input.finding or ("the core refuses a request the Lua layer built: " .. tostring(err))
    return nil, err
  end
  creq:cancel()
  local t = { spec = spec }
  function t.result() return table.unpack(t.res, 1, t.res.n) end
  function t.cancel() t.cancelled = true end
  self.started[#self.started + 1] = t
  return t
end
function Fake:perform()
  local done = {}
  for _, t in ipairs(self.started) do
    if not t.cancelled then
      t.res = table.pack(next_response(t.spec))
      done[#done + 1] = t
    end
  end
  self.started = {}
  return done
end
function Fake:running() return #self.started end
function Fake:timeout() return #self.started > 0 and 0 or nil end
function Fake.fds() return {} end
function Fake:close() self.started = {} end

-- }====

local OP_ARGS = {
  { "update_module", "Digital_Marketing", UPDATE },
  { "update_module", 2423488000000834002, BY_NAME },
  { "get_modules", { status = "visible,user_hidden", if_modified_since = 1700000000 } },
  { "get_module", "2423488000000834002" },
  { "get_profiles" },
  { "request", "GET", "settings/modules", { key = "modules" } },
}

return function(data)
  input.data, input.pos, input.finding = data, 2, nil
  local op = data:byte(1) or 0
  local c = (op & 0x80) ~= 0 and oauth or plain
  reset(c, Fake.new())
  local args = OP_ARGS[(op & 0x7f) % #OP_ARGS + 1]
  local req = c:submit(table.unpack(args))
  -- polls that may wait a millisecond, so retry timers fall due
  for _ = 1, 400 do
    c:poll(0.001)
    if req:done() then break end
  end
  assert(req:done(), "operation did not finish after 400 polls (unbounded retries?)")
  -- a refresh or profile read the operation started must be over too
  for _ = 1, 50 do
    local e = private(c).engine
    if next(e._waiters) == nil and #e._ready == 0 then break end
    c:poll(0)
  end
  assert(not input.finding, input.finding)
  local a, b = req:result()
  check_result(c, true, a, b)
end
