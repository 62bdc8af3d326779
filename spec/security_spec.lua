-- Security checks: TLS verified by default against a
-- throwaway CA made with openssl at test time; no credentials sent to a
-- redirect target (zcrm never follows redirects); plain http:// refused off
-- loopback; secrets kept out of output; the token cache file's mode.
-- (.ci/run also greps the whole suite's output for the specs' secrets.)
local zcrm = require "zcrm"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"

local quote = emulator.quote

-- Recognisable secrets (.ci/run greps the suite's output for these too).
local CLIENT_ID = "1000.SECURITYSPECID"
local SECRET = "sec-spec-CLIENT-SECRET-41c7"
local REFRESH = "1000.SECSPECREFRESH.9d2e77"

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local files = require "spec.support.files"
local slurp, tmpdir = files.read, files.tmpdir

-- A CA and a server certificate signed by it, for `sans` (openssl syntax).
local function make_certs(dir, name, sans)
  local ca, cakey = dir .. "/ca.pem", dir .. "/ca.key"
  if not slurp(ca) then
    assert(sh(string.format("openssl req -x509 -newkey rsa:2048 -nodes "
      .. "-keyout %s -out %s -days 2 -subj '/CN=zcrm throwaway test CA' >/dev/null 2>&1", quote(cakey), quote(ca))),
      "openssl could not make the CA")
  end
  local key, csr, crt, ext = dir .. "/" .. name .. ".key", dir .. "/" .. name .. ".csr",
                             dir .. "/" .. name .. ".pem", dir .. "/" .. name .. ".ext"
  local f = assert(io.open(ext, "w"))
  f:write("subjectAltName=", sans, "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
  f:close()
  assert(sh(string.format("openssl req -newkey rsa:2048 -nodes -keyout %s "
    .. "-out %s -subj '/CN=%s' >/dev/null 2>&1 && openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial "
    .. "-out %s -days 2 -extfile %s >/dev/null 2>&1", quote(key), quote(csr), name, quote(csr), quote(ca),
    quote(cakey), quote(crt), quote(ext))), "openssl could not sign " .. name)
  return ca, crt, key
end

-- The spec helper's hooks use curl without our CA; these ask with -k.
local function https_stats(emu)
  local status, body = emu:request("GET", "/__emulator/stats", { insecure = true })
  assert(status == 200, "stats hook answered " .. status)
  return require("cjson").decode(body)
end

describe("security", function()
  describe("TLS", function()
    local dir, ca, emu, wrong_host

    setup(function()
      dir = tmpdir()
      local crt, key
      ca, crt, key = make_certs(dir, "server", "IP:127.0.0.1,DNS:localhost")
      emu = emulator.start { "--tls-cert", crt, "--tls-key", key,
        "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH }
      local _, wcrt, wkey = make_certs(dir, "wrong", "DNS:wrong.example.test")
      wrong_host = emulator.start { "--tls-cert", wcrt, "--tls-key", wkey }
    end)
    teardown(function()
      if emu then emu:stop() end
      if wrong_host then wrong_host:stop() end
      files.remove_tree(dir)
    end)
    -- every test counts the requests that reached the servers from zero
    before_each(function()
      emu:reset()
      wrong_host:reset()
    end)

    it("serves https on loopback", function()
      assert.matches("^https://127%.0%.0%.1:%d+$", emu.url)
    end)

    it("refuses a server whose CA is not trusted, before sending anything", function()
      local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                       max_retries = 2, retry_base = 0.01 })
      local res, err = client:get_module("Digital_Marketing")
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal("TLS_ERROR", err.code)
      assert.is_false(err.retryable)
      assert.is_nil(err.status)
      -- refused during the handshake: the request never reached the server
      assert.equal(0, https_stats(emu).requests.total)
    end)

    it("accepts it with ca_file", function()
      local client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                       ca_file = ca })
      local m = assert(client:get_module("Digital_Marketing"))
      assert.equal("Digital_Marketing", m.api_name)
      assert.truthy(client:update_module("Digital_Marketing", { plural_label = "Secure Labels" }))
    end)

    it("refuses a certificate for another host even from the trusted CA", function()
      local client = assert(zcrm.new { api_domain = wrong_host.url, access_token = "emulator-token",
                                       env = false, ca_file = ca, max_retries = 0 })
      local _, err = client:get_module("Digital_Marketing")
      assert.equal("TLS_ERROR", err.code)
    end)

    it("verifies the accounts server too: no client secret to an unverified host", function()
      local oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = emu.url }
      local client = assert(zcrm.new { api_domain = emu.url, env = false, oauth = oauth, max_retries = 0 })
      local _, err = client:get_module("Digital_Marketing")
      assert.equal("TLS_ERROR", err.code)
      assert.is_nil(tostring(err):find(SECRET, 1, true))
      local trusted = assert(zcrm.new { api_domain = emu.url, env = false, oauth = oauth, ca_file = ca })
      assert.truthy(trusted:get_module("Digital_Marketing"))
    end)
  end)

  describe("redirects", function()
    -- A minimal HTTP server (LuaSocket, in a child process) that answers every
    -- request with a redirect to `location` and logs the request heads.
    local SERVER = [[
      local socket = require "socket"
      local location, log, portfile = arg[1], arg[2], arg[3]
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local f = assert(io.open(portfile, "w")); f:write(port); f:close()
      srv:settimeout(60)
      while true do
        local c = srv:accept()
        if not c then break end
        c:settimeout(5)
        local head, len = {}, 0
        while true do
          local l = c:receive("*l")
          if not l or l == "" then break end
          head[#head + 1] = l
          len = tonumber(l:lower():match("^content%-length:%s*(%d+)")) or len
        end
        if len > 0 then c:receive(len) end
        local lf = io.open(log, "a"); lf:write(table.concat(head, "\n"), "\n\n"); lf:close()
        local json = location:match("^json:(.*)$")
        if json then -- a fixed 200 JSON answer instead of a redirect
          c:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #json
            .. "\r\nConnection: close\r\n\r\n" .. json)
        else
          local status = (head[1] or ""):match("^GET") and "302 Found" or "307 Temporary Redirect"
          c:send("HTTP/1.1 " .. status .. "\r\nLocation: " .. location .. "\r\nContent-Length: 0\r\n"
            .. "Connection: close\r\n\r\n")
        end
        c:close()
      end
    ]]
    local dir, target, redirector_url, log
    local pids = {}

    -- Starts SERVER answering with `what` ("json:BODY", or a redirect
    -- location); returns its URL.
    local function start_server(what, name)
      local script, portfile = dir .. "/server.lua", dir .. "/port." .. name
      local f = assert(io.open(script, "w")); f:write(SERVER); f:close()
      local p = assert(io.popen(string.format("lua5.4 %s %s %s %s >/dev/null 2>&1 & echo $!", quote(script),
        quote(what), quote(dir .. "/requests." .. name), quote(portfile))))
      pids[#pids + 1] = tonumber(p:read("a"))
      p:close()
      for _ = 1, 250 do
        local port = slurp(portfile)
        if port and port:match("^%d+$") then return "http://127.0.0.1:" .. port end
        sh("sleep 0.02")
      end
      error("the test server did not start (is lua-socket installed?)")
    end

    setup(function()
      dir = tmpdir()
      target = emulator.start { "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH }
      redirector_url = start_server(target.url .. "/crm/v8/settings/modules/Digital_Marketing", "redirect")
      log = dir .. "/requests.redirect"
    end)
    teardown(function()
      for _, pid in ipairs(pids) do sh("kill " .. pid .. " 2>/dev/null") end
      target:stop()
      files.remove_tree(dir)
    end)
    before_each(function() target:reset() end)   -- each test counts from zero

    it("never follows a redirect, so no credentials reach its target", function()
      local client = assert(zcrm.new { api_domain = redirector_url, access_token = "1000.redirect.secret.token",
                                       env = false, max_retries = 1, retry_base = 0.01 })
      local _, err = client:get_module("Digital_Marketing")
      assert.is_true(zcrm.is_error(err))
      assert.equal(302, err.status)
      _, err = client:update_module("Digital_Marketing", { plural_label = "Redirected Labels" })
      assert.equal(307, err.status)
      -- the origin got the requests (it is the configured server) ...
      local head = slurp(log) or ""
      assert.matches("GET /crm/v8/settings/modules/Digital_Marketing", head, 1, true)
      assert.matches("PUT /crm/v8/settings/modules/Digital_Marketing", head, 1, true)
      -- ... the redirect target none, and its state is untouched
      local stats = target:stats()
      assert.equal(0, stats.requests.total)
      assert.equal("Campaign Assets", target:state().modules[1] and (function()
        for _, m in ipairs(target:state().modules) do
          if m.api_name == "Digital_Marketing" then return m.plural_label end
        end
      end)())
      assert.is_nil(tostring(err):find("1000.redirect.secret.token", 1, true))
    end)

    it("does not follow a redirect from the token endpoint with the client secret", function()
      local client = assert(zcrm.new { api_domain = target.url, env = false, max_retries = 0,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH,
                  accounts_url = redirector_url } })
      local _, err = client:get_module("Digital_Marketing")
      assert.is_true(zcrm.is_error(err))
      assert.equal("auth", err.kind)
      local stats = target:stats()
      assert.equal(0, stats.requests.total)
      assert.equal(0, stats.token_refreshes)
      assert.is_nil(tostring(err):find(SECRET, 1, true))
    end)

    it("lets no token answer inject a header into API calls", function()
      local evil = start_server('json:{"access_token":"1000.abc\\r\\nX-Injected: 1","expires_in":3600}', "token")
      local client = assert(zcrm.new { api_domain = target.url, env = false, max_retries = 0,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = evil } })
      local res, err = client:get_module("Digital_Marketing")
      assert.is_nil(res)
      assert.is_true(zcrm.is_error(err))
      assert.equal(0, target:stats().requests.total) -- refused before sending
    end)

    -- F2 (fuzz/README.md): the refusal used to be the core's INVALID_HEADER
    -- (kind config), which blamed the caller's configuration.
    it("F2: reports such a token answer as the token endpoint's fault #fuzz_finding", function()
      local evil = start_server('json:{"access_token":"1000.abc\\nX-Injected: 1","expires_in":3600}', "token2")
      local client = assert(zcrm.new { api_domain = target.url, env = false, max_retries = 0,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = evil } })
      local _, err = client:get_module("Digital_Marketing")
      assert.equal("auth", err.kind, tostring(err))
      assert.equal("UNEXPECTED_RESPONSE", err.code)
    end)

    -- F5 (fuzz/README.md): an empty `error` became an error object with code "".
    it("F5: reports a token answer with an empty or odd error name as UNEXPECTED_RESPONSE #fuzz_finding", function()
      for i, body in ipairs { '{"error":""}', '{"error":"x\\ny"}', '{"error":42}' } do
        local evil = start_server("json:" .. body, "token-f5-" .. i)
        local client = assert(zcrm.new { api_domain = target.url, env = false, max_retries = 0,
          oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = evil } })
        local _, err = client:get_module("Digital_Marketing")
        assert.equal("auth", err.kind, tostring(err))
        assert.equal("UNEXPECTED_RESPONSE", err.code, body)
      end
    end)
  end)

  describe("plain http", function()
    local refused = {
      "http://www.zohoapis.com", "http://zohoapis.eu:80", "http://10.0.0.1", "http://192.168.1.10:8080",
      "http://127.0.0.1.evil.example", "http://localhost.evil.example", "http://evil.example#@127.0.0.1",
      "http://0x7f000001", "http://2130706433", "http://[::2]", "http://[fe80::1]",
      "ftp://127.0.0.1", "file:///etc/passwd", "gopher://127.0.0.1", "//www.zohoapis.com", "www.zohoapis.com",
      "https://user:pw@www.zohoapis.com", "https://www.zohoapis.com/path", "https://www.zohoapis.com?x=1",
    }
    for _, url in ipairs(refused) do
      it("refuses " .. url .. " as api_domain and as accounts_url", function()
        local c, err = zcrm.new { api_domain = url, access_token = "t0ken", env = false }
        assert.is_nil(c)
        assert.equal("config", err.kind)
        assert.equal("INVALID_URL", err.code)
        assert.equal("api_domain", err.field)
        c, err = zcrm.new { api_domain = "https://www.zohoapis.com", env = false,
          oauth = { client_id = "1000.X", client_secret = "secret-y", refresh_token = "1000.r.t", accounts_url = url } }
        assert.is_nil(c)
        assert.equal("INVALID_URL", err.code)
        assert.equal("oauth.accounts_url", err.field)
      end)
    end

    for _, url in ipairs { "http://127.0.0.1:8089", "http://127.1.2.3", "http://localhost:1", "http://[::1]:1" } do
      it("accepts loopback " .. url, function()
        assert.truthy(zcrm.new { api_domain = url, access_token = "t0ken", env = false })
      end)
    end

    it("keeps its api_domain when a token answer names a plain-http one", function()
      local emu = emulator.start { "--token-api-domain", "http://evil.example.com",
        "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH }
      local client = assert(zcrm.new { api_domain = emu.url, env = false,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = emu.url } })
      local ok = client:get_module("Digital_Marketing")
      local domain = client.api_domain
      emu:stop()
      assert.truthy(ok)
      assert.equal(emu.url, domain)
    end)
  end)

  describe("secrets", function()
    it("keeps tokens out of libcurl's verbose trace", function()
      local emu = emulator.start {}
      local dir = tmpdir()
      local script = dir .. "/verbose.lua"
      local f = assert(io.open(script, "w"))
      f:write(string.format([[
        package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
        package.cpath = "./csrc/?.so;" .. package.cpath
        local core = require "zcrm.core"
        local m = core.new_multi { verbose = true }
        local r = assert(m:start { method = "GET", url = %q,
          headers = { "Authorization: Zoho-oauthtoken 1000.VERBOSE.SECRET.TOKEN", "Cookie: session=VERBOSECOOKIE" } })
        while not r:done() do m:perform(0.1) end
        print(r:result())
      ]], emu.url .. "/oauth/v2/token/revoke?token=1000.VERBOSE.QUERY.SECRET"))
      f:close()
      local p = assert(io.popen("lua5.4 " .. quote(script) .. " 2>&1"))
      local out = p:read("a")
      p:close()
      emu:stop()
      files.remove_tree(dir)
      assert.matches("Authorization", out, 1, true) -- the trace is there ...
      for _, secret in ipairs { "1000.VERBOSE.SECRET.TOKEN", "VERBOSECOOKIE", "1000.VERBOSE.QUERY.SECRET" } do
        assert.is_nil(out:find(secret, 1, true), "verbose trace shows " .. secret) -- ... the secrets are not
      end
    end)

    it("keeps the client secret and tokens out of every error, log line and tostring", function()
      local emu = emulator.start { "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH,
                                   "--fault-rate", "0.5", "--faults", "500,html,garbage,status:401", "--seed", "3" }
      local lines = {}
      local client = assert(zcrm.new { api_domain = emu.url, env = false, max_retries = 1, retry_base = 0.01,
        logger = function(level, msg) lines[#lines + 1] = level .. " " .. msg end,
        oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH, accounts_url = emu.url } })
      local texts = { tostring(client) }
      for i = 1, 20 do
        local res, err = client:update_module("Digital_Marketing", { plural_label = "Secret Test " .. string.char(64 + i) })
        texts[#texts + 1] = res and res.code or tostring(err)
        if err then texts[#texts + 1] = tostring(err.message) .. tostring(err.resolution) end
      end
      emu:expire_tokens()
      emu:script("status:401", 3, "any")
      local _, err = client:get_profiles()
      texts[#texts + 1] = tostring(err)
      local token = require("zcrm.client").private(client).auth.oauth.access_token
      emu:stop()
      local all = table.concat(texts, "\n") .. table.concat(lines, "\n")
      for _, secret in ipairs { SECRET, REFRESH, token } do
        if secret then assert.is_nil(all:find(secret, 1, true), "leaked: " .. secret) end
      end
    end)
  end)

  describe("token cache", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() files.remove_tree(dir) end)

    local function cache_run(path, umask)
      local emu = emulator.start { "--client-id", CLIENT_ID, "--client-secret", SECRET, "--refresh-token", REFRESH }
      local script = dir .. "/cache.lua"
      local f = assert(io.open(script, "w"))
      f:write(string.format([[
        package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
        package.cpath = "./csrc/?.so;" .. package.cpath
        local zcrm = require "zcrm"
        local c = assert(zcrm.new { api_domain = %q, env = false, oauth = { client_id = %q, client_secret = %q,
          refresh_token = %q, accounts_url = %q, token_cache = %q } })
        assert(c:get_module("Digital_Marketing"))
      ]], emu.url, CLIENT_ID, SECRET, REFRESH, emu.url, path))
      f:close()
      local ok = sh(string.format("umask %s && lua5.4 %s >/dev/null 2>&1", umask, quote(script)))
      emu:stop()
      return ok
    end

    it("is written with mode 0600 whatever the umask", function()
      local path = dir .. "/token.json"
      assert.is_true(cache_run(path, "000"))
      assert.equal(tonumber("600", 8), core.file_mode(path))
      local text = slurp(path)
      assert.is_nil(text:find(SECRET, 1, true))
      assert.is_nil(text:find(REFRESH, 1, true))
    end)

    it("replaces a symlink planted at its path instead of writing through it", function()
      local path, victim = dir .. "/token.json", dir .. "/victim"
      local f = assert(io.open(victim, "w")); f:write("precious"); f:close()
      assert(sh(string.format("chmod 600 %s && ln -s %s %s", quote(victim), quote(victim), quote(path))))
      cache_run(path, "022")
      assert.equal("precious", slurp(victim))
    end)

    for _, mode in ipairs { "640", "604", "660", "666", "620" } do
      it("is refused with mode " .. mode, function()
        local path = dir .. "/token.json"
        local f = assert(io.open(path, "w")); f:write("{}"); f:close()
        assert(sh("chmod " .. mode .. " " .. quote(path)))
        local c, err = zcrm.new { api_domain = "https://www.zohoapis.com", env = false,
          oauth = { client_id = CLIENT_ID, client_secret = SECRET, refresh_token = REFRESH,
                    accounts_url = "https://accounts.zoho.com", token_cache = path } }
        assert.is_nil(c)
        assert.equal("UNSAFE_TOKEN_CACHE", err.code)
      end)
    end
  end)
end)

describe("directories on a file's path", function()
  -- A link another user planted in a directory both can write (/tmp, a
  -- shared project directory) must not steer a file zcrm reads or writes,
  -- wherever on the path it sits: the rule fs.protected_symlinks applies to
  -- sticky directories, applied to every directory. Planting a link owned by
  -- another user takes root (chown -h); the suite runs as root in CI.
  local dir, shared, target
  local is_root = io.popen("id -u"):read("l") == "0"

  before_each(function()
    dir = tmpdir()
    shared, target = dir .. "/shared", dir .. "/target"
    assert(sh(string.format("mkdir -m 1777 %s && mkdir %s", quote(shared), quote(target))))
  end)
  after_each(function() files.remove_tree(dir) end)

  -- A link at shared/NAME to `to`, owned by `owner`.
  local function plant(name, to, owner)
    local link = shared .. "/" .. name
    assert(sh(string.format("ln -s %s %s && chown -h %s %s", quote(to), quote(link), owner, quote(link))))
    return link
  end

  local function refused_at(link_name, ok, err)
    assert.is_nil(ok)
    assert.equal("FILE_ERROR", err.code)
    assert.equal(link_name, err.details.link)
    assert.truthy(err.message:find("symbolic link owned by another user", 1, true), err.message)
  end

  local function target_files()
    local p = io.popen("ls -A " .. quote(target))
    local list = p:read("a")
    p:close()
    return list
  end

  local function each_way(path)
    return {
      { "open_file w", function() return core.open_file(path .. "/out.json", "w") end },
      { "open_file wx", function() return core.open_file(path .. "/new.json", "wx") end },
      { "open_file a", function() return core.open_file(path .. "/journal", "a") end },
      { "write_private_file", function() return core.write_private_file(path .. "/cache.json", "{}") end },
      { "make_dir", function() return core.make_dir(path .. "/zcrm", true) end },
    }
  end

  it("refuses to write through a directory link another user planted", function()
    if not is_root then pending("planting another user's link takes root (chown -h)") return end
    local link = plant("out", target, "nobody")
    for _, way in ipairs(each_way(link)) do
      local ok, err = way[2]()
      refused_at("out", ok, err)
    end
    assert.equal("", target_files(), "nothing may be written in the link's target")
  end)

  it("refuses to read through it, and through links on the way to it", function()
    if not is_root then pending("planting another user's link takes root (chown -h)") return end
    files.write(target .. "/changes.json", "attacker's choice")
    plant("out", target, "nobody")
    -- the user's own link whose target runs through the planted one
    assert(sh(string.format("ln -s %s %s", quote(shared .. "/out"), quote(dir .. "/mine"))))
    refused_at("out", core.open_file(shared .. "/out/changes.json", "r"))
    refused_at("out", core.open_file(dir .. "/mine/changes.json", "r"))
    refused_at("out", core.open_file(dir .. "/mine/../target/changes.json", "r"))
  end)

  it("follows the user's own links and root's", function()
    local mine = dir .. "/mine"
    assert(sh(string.format("ln -s target %s", quote(mine))))
    for _, way in ipairs(each_way(mine)) do assert.is_truthy(way[2](), way[1]) end
    assert.equal("cache.json\njournal\nnew.json\nout.json\nzcrm\n", target_files())
    local f = assert(core.open_file(mine .. "/out.json", "r"))
    f:close()
    if is_root then
      local link = plant("roots", target, "root")
      assert.is_truthy(core.write_private_file(link .. "/cache.json", "{}"))
    end
  end)

  it("still never follows a link at the file itself", function()
    local link = dir .. "/file.json"
    assert(sh(string.format("ln -s %s %s", quote(target .. "/victim"), quote(link))))
    local ok, err = core.open_file(link, "w")
    assert.is_nil(ok)
    assert.equal(40, err.details.errno) -- ELOOP
    assert.equal("", target_files())
  end)
end)

describe("untrusted text on a terminal", function()
  local cjson = require "cjson"
  local util = require "zcrm.util"
  local dir, emu, env
  -- a label that would print a fake line, hide what follows (SGR 8), open a
  -- CSI as a C1 byte and reverse the rest of the line (bidi override)
  local hostile = "Leads\n  FAKE  line\27[8m\u{9b}2J\u{202e}sdaeL\u{2066}"

  local function run(args)
    local out, err = os.tmpname(), os.tmpname()
    local parts = { "env -i", "PATH=" .. quote(os.getenv("PATH") or "/usr/bin:/bin") }
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. quote(v) end
    parts[#parts + 1] = "bin/zcrm"
    for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
    local _, _, code = os.execute(table.concat(parts, " ") .. " >" .. out .. " 2>" .. err)
    local o, e = slurp(out), slurp(err)
    os.remove(out) os.remove(err)
    return code, o, e
  end

  local function no_control(text)
    for _, bad in ipairs { "\27", "\u{9b}", "\u{202e}", "\u{2066}", "FAKE  line\n" } do
      assert.is_nil(text:find(bad, 1, true), "reached the terminal: " .. ("%q"):format(bad))
    end
  end

  setup(function()
    dir = tmpdir()
    local state = dir .. "/org.json"
    emu = emulator.start { "--state", state }
    emu:stop()
    local org = cjson.decode(slurp(state))
    org.modules[#org.modules].plural_label = hostile
    org.profiles[1].name = hostile
    local f = assert(io.open(state, "w")); f:write(cjson.encode(org)); f:close()
    emu = emulator.start { "--state", state }
    env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = "emulator-token" }
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  it("shows a server's labels in zcrm modules and zcrm profiles with every control escaped", function()
    for _, command in ipairs { "modules", "profiles" } do
      local code, out = run { command }
      assert.equal(0, code)
      no_control(out)
      assert.matches("Leads\\x0A  FAKE  line\\x1B[8m\\u{009B}2J\\u{202E}sdaeL\\u{2066}", out, 1, true)
    end
  end)

  it("has one escaping function for C0, DEL, C1, bidi controls and bytes that are not UTF-8", function()
    assert.equal("a\\x0Ab\\x09c\\x7F\\u{0085}\\u{200F}\\u{202A}\\u{2069}\\x9B\\xFF \u{e9}\u{65e5}",
      util.escape_untrusted("a\nb\tc\127\u{85}\u{200f}\u{202a}\u{2069}\x9b\xff \u{e9}\u{65e5}"))
    -- the streams' last guard keeps only zcrm's own newlines and colours
    assert.equal("\27[31mred\27[0m\n\\x1B[2J\\u{202E}", util.terminal_text("\27[31mred\27[0m\n\27[2J\u{202e}"))
    -- and no colour it does not write itself: conceal (8) hid what followed
    assert.equal("\\x1B[8mhidden \\x1B[1;31mx\27[1m", util.terminal_text("\27[8mhidden \27[1;31mx\27[1m"))
  end)
end)
