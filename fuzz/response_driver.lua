-- Driver of fuzz_response: the Lua layer's reading of answers (lua/zcrm/http.lua
-- decode/api_error/retry policy, modules.lua result reading, auth.lua token
-- answers) fed fuzzed status, headers and bodies through lua-cjson.
--
-- An operation runs in a coroutine exactly as the engine runs it; each time it
-- yields "http" the driver answers with the next fuzzed response (or a transport
-- error), each "sleep" is answered at once. The real client object is used
-- (zcrm.new), with its multi: every request spec the Lua layer builds is also
-- started on it and cancelled, so a spec libcurl would refuse is caught too.
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
local modules = require "zcrm.modules"
local auth = require "zcrm.auth"

local API = "https://crm.fuzz.test"
local SECRETS = { "fuzz-access-token-0001", "fuzz-client-secret-0001", "fuzz-refresh-token-0001" }

local plain = assert(zcrm.new { api_domain = API, access_token = SECRETS[1], env = false,
                                max_retries = 2, retry_base = 0 })
local oauth = assert(zcrm.new { api_domain = API, env = false, max_retries = 2, retry_base = 0,
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

local OPS = {
  function(c) return modules.update_module(c, "Digital_Marketing", UPDATE) end,
  function(c) return modules.update_module(c, 2423488000000834002, BY_NAME) end,
  function(c) return modules.get_modules(c, { status = "visible,user_hidden", if_modified_since = 1700000000 }) end,
  function(c) return modules.get_module(c, "2423488000000834002") end,
  function(c) return modules.get_profiles(c) end,
  function(c) return modules.request(c, "GET", "settings/modules", { key = "modules" }) end,
}

local function reset(c)
  c.credits_spent, c.credits_remaining = 0, nil
  c._profiles, c._profiles_loading = nil, false
  c.api_domain = API
  if c.oauth then
    c.oauth.access_token, c.oauth.expires_at, c.oauth.ttl, c.oauth.refreshing = nil, nil, nil, false
  end
  for k in pairs(refresh_times) do refresh_times[k] = nil end
end

local function no_secret(s, where)
  s = tostring(s)
  for _, secret in ipairs(SECRETS) do
    assert(not s:find(secret, 1, true), where .. " holds a secret: " .. s)
  end
end

-- Findings reported and not fixed yet (fuzz/README.md, "Findings"): the
-- driver counts them instead of stopping, so a run can look further. Remove
-- an entry once its fix lands; ZCRM_FUZZ_STRICT=1 ignores this list.
local KNOWN = {
  -- F1: a 304 answer to get_module/get_profiles (no If-Modified-Since sent)
  -- reaches list_of(nil): raises instead of UNEXPECTED_RESPONSE.
  "modules.lua:%d+: attempt to index a nil value %(local 'doc'%)",
}
-- F2: a token answer whose access_token holds CR, LF, a space or a control byte
-- is kept; the next API call's Authorization header is then refused by the core
-- (INVALID_HEADER, kind config) instead of the token answer being reported as
-- UNEXPECTED_RESPONSE (kind auth). Checked in check_spec.
local strict = os.getenv("ZCRM_FUZZ_STRICT") == "1"
known_hits = 0 -- luacheck: ignore (global, read by nobody but a debugger)

local function check_spec(c, spec)
  assert(type(spec) == "table" and type(spec.url) == "string", "http yield without a spec")
  assert(spec.url:sub(1, #API) == API or spec.url:sub(1, 26) == "https://accounts.fuzz.test",
    "request to an unexpected host: " .. spec.url)
  local creq, err = c.multi:start(spec)
  if not creq and not strict and err.code == "INVALID_HEADER" and c.oauth and spec.url:find(API, 1, true) then
    known_hits = known_hits + 1 -- F2 (above)
    return
  end
  assert(creq, "the core refuses a request the Lua layer built: " .. tostring(err))
  creq:cancel()
end

local function check_result(c, ok, a, b)
  if not ok and not strict then
    for _, pat in ipairs(KNOWN) do
      if tostring(a):find(pat) then known_hits = known_hits + 1 return end
    end
  end
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
    local got = c.oauth and c.oauth.access_token
    if type(got) == "string" and #got >= 8 and got:find("[^%s]") then
      assert(not text:find(got, 1, true), "tostring(err) holds the received access token")
    end
  else
    -- a result: a table (status for request), never an error object
    assert(not zcrm.is_error(a), "an error object returned as a result")
  end
end

return function(data)
  local pos = 1
  local op = data:byte(1) or 0
  pos = 2
  local c = (op & 0x80) ~= 0 and oauth or plain
  reset(c)
  local fn = OPS[(op & 0x7f) % #OPS + 1]
  local co = coroutine.create(fn)
  local resume_args = table.pack(c)
  for _ = 1, 64 do
    local r = table.pack(coroutine.resume(co, table.unpack(resume_args, 1, resume_args.n)))
    if coroutine.status(co) == "dead" then
      return check_result(c, r[1], r[2], r[3])
    end
    assert(r[1], "operation raised: " .. tostring(r[2]))
    local what, spec = r[2], r[3]
    if what == "sleep" then
      assert(type(spec) == "number" and spec >= 0 and spec <= c.retry_max_delay, "bad delay " .. tostring(spec))
      resume_args = table.pack()
    elseif what == "http" then
      check_spec(c, spec)
      if spec.before_start then
        local ok, err = spec.before_start(c, spec)
        if not ok then resume_args = table.pack(nil, err) goto continue end
      end
      if pos + 1 > #data then
        local err = core.error { kind = "transport", code = "CONNECTION_FAILED", message = "no more input", retryable = true }
        if spec.after then spec.after(c, spec, nil, err) end
        resume_args = table.pack(nil, err)
      else
        local function u8() local b = data:byte(pos) or 0; pos = pos + 1; return b end
        local status = u8() * 256 + u8()
        local flags = u8()
        local headers = {}
        if flags & 1 ~= 0 then headers["retry-after"] = tostring(u8()) end
        if flags & 2 ~= 0 then headers["x-api-credits-remaining"] = tostring(u8()) end
        if flags & 4 ~= 0 then headers["content-type"] = "text/html" end
        local len = u8() * 256 + u8()
        local body = data:sub(pos, pos + len - 1)
        pos = pos + len
        if status < 100 then
          local err = core.error { kind = "transport", code = TRANSPORT[status % #TRANSPORT + 1],
                                   message = "injected", retryable = status % #TRANSPORT < 4 }
          if spec.after then spec.after(c, spec, nil, err) end
          resume_args = table.pack(nil, err)
        else
          status = 100 + (status - 100) % 900 -- curl reads any three digits
          if spec.after then spec.after(c, spec, status, body, headers) end
          resume_args = table.pack(status, body, headers)
        end
      end
    else
      error("unexpected yield " .. tostring(what))
    end
    ::continue::
  end
  error("operation did not finish after 64 steps (unbounded retries?)")
end
