-- OAuth refresh, data centres, credentials from the environment, the token
-- cache, reads, profile names and redaction, against the emulator.
local zcrm = require "zcrm"
local core = require "zcrm.core"
-- The auth record a client keeps private (tokens, refresh count).
local function auth_of(c) return require("zcrm.client").private(c).auth end
local emulator = require "spec.support.emulator"

-- Recognisable secrets: the redaction test looks for them everywhere.
local CLIENT_ID = "1000.CLIENTIDXYZ"
local SECRET = "s3cr3t-CLIENT-SECRET-7f9a"
local REFRESH = "1000.REFRESHTOKEN.abcdef123456"

local OAUTH_ARGS = { "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH,
                     "--refresh-rate-limit", "1000" }

local function args(extra)
  local a = {}
  for _, v in ipairs(OAUTH_ARGS) do a[#a + 1] = v end
  for _, v in ipairs(extra or {}) do a[#a + 1] = v end
  return a
end

-- Everything the running test's clients logged or returned as an error, or
-- printed, for the leak check after it.
local captured = {}
local function logger(level, message) captured[#captured + 1] = level .. " " .. message end
local function keep(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if zcrm.is_error(v) then
      captured[#captured + 1] = tostring(v)
      captured[#captured + 1] = tostring(v.message)
      for k, d in pairs(v.details or {}) do captured[#captured + 1] = tostring(k) .. "=" .. tostring(d) end
    end
  end
  return ...
end

local function oauth_client(emu, extra)
  local o = {
    api_domain = emu.url, env = false, logger = logger, retry_base = 0.01,
    oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH,
              accounts_url = emu.url, refresh_limit = 1000 },
  }
  for k, v in pairs(extra or {}) do
    if k == "oauth" then for ok, ov in pairs(v) do o.oauth[ok] = ov end else o[k] = v end
  end
  local c, err = zcrm.new(o)
  keep(err)
  captured[#captured + 1] = tostring(c)
  return assert(c, err)
end

describe("auth", function()
  local emu
  setup(function() emu = emulator.start(args { "--token-ttl", "3600" }) end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  -- The leak check, after every test whatever ran before: no secret in
  -- what its clients logged, returned as errors or printed.
  local function assert_no_secret_in(text)
    for _, secret in ipairs { SECRET, REFRESH } do
      assert.is_nil(text:find(secret, 1, true), "secret leaked: " .. secret)
    end
    assert.is_nil(text:find("1000%.%x+%.%x+"), "an access token leaked")
  end
  after_each(function()
    local text = table.concat(captured, "\n")
    captured = {}
    assert_no_secret_in(text)
  end)

  it("fetches a token when first needed and reuses it", function()
    local c = oauth_client(emu)
    assert.equal(0, emu:stats().token_refreshes)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    assert.truthy(keep(c:get_profiles()))
    assert.equal(1, emu:stats().token_refreshes)
  end)

  it("refreshes once and retries once after 401 INVALID_TOKEN", function()
    local c = oauth_client(emu)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    emu:expire_tokens()
    local res = keep(c:update_module("Digital_Marketing", { plural_label = "After Expiry" }))
    assert.equal("SUCCESS", res.code)
    local stats = emu:stats()
    assert.equal(2, stats.token_refreshes)
    assert.equal(1, stats.responses["401"])
  end)

  it("does not loop when the fresh token is refused too", function()
    local c = oauth_client(emu)
    -- every API call answers 401 INVALID_TOKEN, whatever the token
    emu:script("status:401", 10)
    local _, err = keep(c:get_module("Digital_Marketing"))
    assert.equal("INVALID_TOKEN", err.code)
    assert.equal("auth", err.kind)
    assert.equal(2, emu:stats().requests.by_route["GET /crm/v8/settings/modules/{module}"])
  end)

  it("makes one refresh for 50 concurrent calls needing a token", function()
    local c = oauth_client(emu, { concurrency = 10 })
    local reqs = {}
    for i = 1, 50 do reqs[i] = c:submit("get_module", "Digital_Marketing") end
    assert.is_true(c:drain(30))
    for _, r in ipairs(reqs) do assert.truthy(keep(r:result())) end
    assert.equal(1, emu:stats().token_refreshes)
    -- and again when they all find their token expired at once
    emu:expire_tokens()
    for i = 1, 50 do reqs[i] = c:submit("get_module", "Digital_Marketing") end
    assert.is_true(c:drain(30))
    for _, r in ipairs(reqs) do assert.truthy(keep(r:result())) end
    assert.equal(2, emu:stats().token_refreshes)
  end)

  it("wakes every waiter even when the call that started the refresh is cancelled", function()
    local c = oauth_client(emu)
    local a = c:submit("get_module", "Digital_Marketing")
    local b = c:submit("get_module", "Digital_Marketing")
    a:cancel()
    assert.is_true(c:drain(10))
    assert.equal("Digital_Marketing", keep(b:result()).api_name)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    assert.equal(1, emu:stats().token_refreshes)
  end)

  -- Expiry is the client's own reading of core.now; these move that clock
  -- instead of sleeping through a short token lifetime, so a slow machine or
  -- valgrind cannot push a call past the server's expiry. The emulator's
  -- tokens (3600 s) stay valid on the server whatever the client's clock says.
  local function client_clock()
    local real = core.now
    local offset = 0
    core.now = function() return real() + offset end
    finally(function() core.now = real end)
    return function(t) offset = t - real() end
  end

  it("keeps using a still-valid token when a refresh ahead of expiry fails", function()
    local c = oauth_client(emu, { oauth = { refresh_margin = 60 } })
    local set_clock = client_clock()
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    local token = auth_of(c).oauth.access_token
    -- 30 s before expiry: inside the margin, so the next call refreshes, and the accounts server fails
    set_clock(auth_of(c).oauth.expires_at - 30)
    emu:script("status:500", 1, "token")
    local mod = keep(c:get_module("Digital_Marketing"))
    local stats = emu:stats()
    assert.equal("Digital_Marketing", mod and mod.api_name)
    assert.equal(2, auth_of(c).refreshes)           -- it asked, and got the 500
    assert.equal(1, stats.responses["500"])
    assert.equal(token, auth_of(c).oauth.access_token)
    assert.is_nil(stats.responses["401"])
  end)

  it("refreshes ahead of expiry during a run, once the clock is inside the margin", function()
    local c = oauth_client(emu, { oauth = { refresh_margin = 60 } })
    local set_clock = client_clock()
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    for i = 1, 3 do
      local token, expires_at = auth_of(c).oauth.access_token, auth_of(c).oauth.expires_at
      set_clock(expires_at - 61)   -- just outside the margin: the token is used as it is
      assert.truthy(keep(c:get_module("Digital_Marketing")))
      assert.equal(i, emu:stats().token_refreshes)
      assert.equal(token, auth_of(c).oauth.access_token)
      set_clock(expires_at - 59)   -- inside it: a new token before the call
      assert.truthy(keep(c:get_module("Digital_Marketing")))
      assert.equal(i + 1, emu:stats().token_refreshes)
      assert.are_not.equal(token, auth_of(c).oauth.access_token)
    end
    assert.is_nil(emu:stats().responses["401"])
  end)

  it("reads expires_in as milliseconds when expires_in_sec is present", function()
    local quirky = emulator.start(args { "--token-ttl", "3600", "--expires-in-ms" })
    local c = oauth_client(quirky)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    quirky:stop()
    assert.equal(3600, auth_of(c).oauth.ttl)
  end)

  it("reports a revoked refresh token as invalid_code with a hint", function()
    local c = oauth_client(emu, { oauth = { refresh_token = "1000.revoked.token" } })
    local _, err = keep(c:get_module("Digital_Marketing"))
    assert.equal("auth", err.kind)
    assert.equal("invalid_code", err.code)
    assert.matches("refresh token", err.resolution)
    assert.is_nil(tostring(err):find("1000.revoked.token", 1, true))
  end)

  it("reports a wrong client secret as invalid_client with a hint", function()
    local c = oauth_client(emu, { oauth = { client_secret = "wrong-secret-value" } })
    local _, err = keep(c:get_module("Digital_Marketing"))
    assert.equal("invalid_client", err.code)
    assert.equal("auth", err.kind)
    assert.matches("client_secret", err.resolution)
  end)

  it("reports Zoho's refresh throttle as a retryable ACCESS_DENIED", function()
    local throttled = emulator.start(args { "--refresh-rate-limit", "1" })
    local c = oauth_client(throttled)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    throttled:expire_tokens()
    local _, err = keep(c:get_module("Digital_Marketing"))
    throttled:stop()
    assert.equal("ACCESS_DENIED", err.code)
    assert.is_true(err.retryable)
  end)

  it("never sends more refreshes than its refresh_limit allows", function()
    local own = emulator.start(args {}) -- its own accounts URL, so earlier refreshes do not count
    local c = oauth_client(own, { oauth = { refresh_limit = 2 } })
    for _ = 1, 2 do
      assert.truthy(keep(c:get_module("Digital_Marketing")))
      own:expire_tokens()
    end
    local _, err = keep(c:get_module("Digital_Marketing"))
    local stats = own:stats()
    own:stop()
    assert.equal("REFRESH_LIMIT", err.code)
    assert.equal("auth", err.kind)
    assert.is_true(err.retryable)
    assert.equal(2, stats.token_refreshes)
  end)

  -- An emulator whose token answers name api_domain, and a client of it whose
  -- log lines land in `logs`.
  local function logged_client(api_domain, extra, logs)
    local e = emulator.start(args { "--token-api-domain", api_domain })
    extra.logger = function(level, m) logs[#logs + 1] = m; logger(level, m) end
    return e, oauth_client(e, extra)
  end

  it("keeps its own api_domain when a token answer names another environment's", function()
    local logs = {}
    local prod, c = logged_client("https://www.zohoapis.com", { environment = "sandbox" }, logs)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    prod:stop()
    assert.equal(prod.url, c.api_domain)
    assert.matches("keeping this client's " .. prod.url, table.concat(logs, "\n"), 1, true)
  end)

  describe("data centres", function()
    it("resolves every dc and environment from one table", function()
      local cases = {
        { "us", "production", "https://www.zohoapis.com", "https://accounts.zoho.com" },
        { "eu", "sandbox", "https://sandbox.zohoapis.eu", "https://accounts.zoho.eu" },
        { "in", "developer", "https://developer.zohoapis.in", "https://accounts.zoho.in" },
        { "au", "production", "https://www.zohoapis.com.au", "https://accounts.zoho.com.au" },
        { "jp", "production", "https://www.zohoapis.jp", "https://accounts.zoho.jp" },
        { "ca", "production", "https://www.zohoapis.ca", "https://accounts.zohocloud.ca" },
        { "sa", "production", "https://www.zohoapis.sa", "https://accounts.zoho.sa" },
        { "cn", "sandbox", "https://sandbox.zohoapis.com.cn", "https://accounts.zoho.com.cn" },
        { "uk", "production", "https://www.zohoapis.uk", "https://accounts.zoho.uk" },
        { "uk", "sandbox", "https://sandbox.zohoapis.uk", "https://accounts.zoho.uk" },
        { "uk", "developer", "https://developer.zohoapis.uk", "https://accounts.zoho.uk" },
      }
      for _, case in ipairs(cases) do
        local c = assert(zcrm.new { dc = case[1], environment = case[2], env = false,
          oauth = { client_id = "a", client_secret = "b", refresh_token = "c" } })
        assert.equal(case[3], c.api_domain)
        assert.equal(case[4], auth_of(c).oauth.accounts_url)
      end
    end)

    it("dc = \"uk\": refreshes and calls through the emulator standing in for accounts.zoho.uk", function()
      local logs = {}
      local uk, c = logged_client("https://www.zohoapis.uk", { dc = "uk" }, logs)
      assert.truthy(keep(c:get_module("Digital_Marketing")))
      local stats = uk:stats()
      uk:stop()
      assert.equal("uk", c.dc)
      assert.equal(1, stats.tokens_issued)
      assert.matches("(uk, production)", table.concat(logs, "\n"), 1, true)
    end)

    it("refuses an unknown dc, listing the valid ones", function()
      local c, err = zcrm.new { dc = "xx", access_token = "t", env = false }
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.matches("au, ca, cn, eu, in, jp, sa, uk, us", err.message, 1, true)
    end)

    it("lets ZOHO_ACCOUNTS_URL yield to an explicit dc", function()
      local p = assert(io.popen("ZOHO_ACCOUNTS_URL=http://127.0.0.1:1 lua5.4 -e '"
        .. "package.path = \"./lua/?.lua;./lua/?/init.lua;\" .. package.path; "
        .. "package.cpath = \"./csrc/?.so;\" .. package.cpath; "
        .. "local c = assert(require(\"zcrm\").new { dc = \"eu\", "
        .. "oauth = { client_id = \"a\", client_secret = \"b\", refresh_token = \"c\" } }); "
        .. "io.write(require([[zcrm.client]]).private(c).auth.oauth.accounts_url)'"))
      local out = p:read("a")
      p:close()
      assert.equal("https://accounts.zoho.eu", out)
    end)

    it("refuses an unknown dc or environment even with an explicit api_domain", function()
      for _, o in ipairs { { dc = "xx" }, { environment = "prod" } } do
        o.api_domain, o.access_token, o.env = "https://crm.example.test", "t", false
        local c, err = zcrm.new(o)
        assert.is_nil(c)
        assert.equal("config", err.kind)
      end
    end)

    it("lets api_domain and accounts_url override the table", function()
      local c = assert(zcrm.new { dc = "eu", api_domain = "https://crm.example.test", env = false,
        oauth = { client_id = "a", client_secret = "b", refresh_token = "c", accounts_url = "https://acc.example.test/" } })
      assert.equal("https://crm.example.test", c.api_domain)
      assert.equal("https://acc.example.test", auth_of(c).oauth.accounts_url)
    end)
  end)

  describe("token cache", function()
    local path
    before_each(function() path = os.tmpname(); os.remove(path) end)
    after_each(function() os.remove(path) end)

    it("is written with mode 0600 and spares the next client a refresh", function()
      local c = oauth_client(emu, { oauth = { token_cache = path } })
      assert.truthy(keep(c:get_module("Digital_Marketing")))
      assert.equal(tonumber("600", 8), core.file_mode(path))
      local c2 = oauth_client(emu, { oauth = { token_cache = path } })
      assert.truthy(keep(c2:get_module("Digital_Marketing")))
      assert.equal(1, emu:stats().token_refreshes)
    end)

    it("is refused when group or others can read it", function()
      local f = assert(io.open(path, "w")); f:write("{}"); f:close()
      os.execute("chmod 644 " .. path)
      local c, err = zcrm.new { api_domain = emu.url, env = false,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH,
                  accounts_url = emu.url, token_cache = path } }
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.equal("UNSAFE_TOKEN_CACHE", err.code)
      assert.matches("chmod 600", err.message, 1, true)
    end)
  end)

  describe("reads", function()
    it("lists modules with a status filter, ids as strings", function()
      local c = oauth_client(emu)
      local mods = assert(keep(c:get_modules { status = "visible" }))
      assert.is_true(#mods > 10)
      for _, m in ipairs(mods) do
        assert.is_string(m.id)
        assert.equal("visible", m.status)
      end
    end)

    it("returns 'not modified' for If-Modified-Since in the future", function()
      local c = oauth_client(emu)
      local mods = assert(keep(c:get_modules { if_modified_since = os.time() + 86400 }))
      assert.is_true(mods.not_modified)
      assert.equal(0, #mods)
    end)

    it("lists profiles", function()
      local c = oauth_client(emu)
      local profiles = assert(keep(c:get_profiles()))
      local names = {}
      for _, p in ipairs(profiles) do names[p.name] = p.id end
      assert.equal("2423488000000015972", names.Administrator)
      assert.equal("2423488000000015975", names.Standard)
    end)
  end)

  describe("profiles by name", function()
    it("resolves names with one profiles read per client", function()
      local c = oauth_client(emu)
      assert.truthy(keep(c:update_module("Digital_Marketing", { profiles = { { name = "Standard" } } })))
      assert.truthy(keep(c:update_module("Digital_Marketing",
        { profiles = { { name = "Standard" }, { name = "Administrator", _delete = true } } })))
      local by_route = emu:stats().requests.by_route
      assert.equal(1, by_route["GET /crm/v8/settings/profiles"])
      local mod = assert(c:get_module("Digital_Marketing"))
      for _, p in ipairs(mod.profiles) do assert.not_equal("Administrator", p.name) end
    end)

    it("refuses an unknown name before sending the update", function()
      local c = oauth_client(emu)
      local _, err = keep(c:update_module("Digital_Marketing", { profiles = { { name = "Nobody" } } }))
      assert.equal("INVALID_DATA", err.code)
      assert.equal("validation", err.kind)
      assert.equal("profiles[1].name", err.field)
      assert.matches("Nobody", err.message)
      assert.is_nil(emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"])
    end)
  end)

  describe("credentials from the environment", function()
    it("runs the example with OAuth settings only in ZOHO_* variables", function()
      local cmd = string.format(
        "ZOHO_CLIENT_ID='%s' ZOHO_CLIENT_SECRET='%s' ZOHO_REFRESH_TOKEN='%s' "
          .. "ZOHO_API_DOMAIN='%s' ZOHO_ACCOUNTS_URL='%s' lua5.4 examples/update_module.lua 2>&1",
        CLIENT_ID, SECRET, REFRESH, emu.url, emu.url)
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      local ok = p:close()
      captured[#captured + 1] = out
      assert.is_true(ok, out)
      assert.matches('"code":"SUCCESS"', out, 1, true)
      assert.equal(1, emu:stats().token_refreshes)
    end)
  end)

  it("lets no secret into logs, errors or printed objects", function()
    -- a refresh, a 401 and its refresh, a refused secret, a revoked refresh
    -- token, an invalid label and a client printed; after_each checks every test the same way
    local c = oauth_client(emu)
    assert.truthy(keep(c:get_module("Digital_Marketing")))
    emu:expire_tokens()
    assert.truthy(keep(c:update_module("Digital_Marketing", { plural_label = "After Expiry" })))
    keep(oauth_client(emu, { oauth = { client_secret = "wrong-secret-value" } }):get_module("Digital_Marketing"))
    keep(oauth_client(emu, { oauth = { refresh_token = "1000.revoked.token" } }):get_module("Digital_Marketing"))
    keep(c:update_module("Digital_Marketing", { plural_label = "Bad!" }))
    emu:script("status:401", 10)
    keep(c:get_module("Digital_Marketing"))
    local text = table.concat(captured, "\n")
    assert.is_true(#captured > 10)
    assert_no_secret_in(text)
  end)
end)
