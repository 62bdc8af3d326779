-- Start and drive bin/zcrm-emulator from specs, over real HTTP with the system curl.
--
--   local emulator = require "spec.support.emulator"
--   local emu = emulator.start({ "--latency-ms", "50" })  -- always adds --port 0
--   emu.url, emu.port
--   emu:stats(), emu:state(), emu:reset(), emu:expire_tokens(), emu:script(mode, count [, route])
--   (reset first waits for the requests in flight; spec/support/fixture.lua's
--   with_emulator resets before every test of a describe block)
--   emu:put_module(module, body)  -- a PUT behind zcrm's back
--   emu:drain()  -- waits until no API request is in flight (late answers have landed)
--   emu:request(method, path, { headers = {...}, body = "...", timeout = s }) --> status, body, headers
--   emu:stop()   -- SIGTERM, waits for the exit; safe to call twice
--   emu:kill()   -- SIGKILL (no clean exit), waits for it; returns what it wrote to stderr
--   emulator.start(args, { port = P, delay = S, wait = false }) then emu:ready():
--     on port P (default 0, a free one), starting after S seconds, in the background
--
-- Environment: ZCRM_EMULATOR (binary, default bin/zcrm-emulator) and
-- ZCRM_EMULATOR_WRAPPER (a command prefix, e.g. "valgrind -q --error-exitcode=99").
-- Uses only io.popen/os.execute, curl and lua-cjson.
local cjson = require "cjson"

local M = {}
local Emu = {}
Emu.__index = Emu

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local files = require "spec.support.files"
local slurp, spit = files.read, files.write

local function sleep(s) sh("sleep " .. s) end

local function tail(s, n)
  s = s or ""
  return #s > n and s:sub(-n) or s
end

--- Start an emulator. `args` are extra command-line arguments; `opts.port`
--- (default 0: a free one), `opts.delay` (seconds to wait before starting it),
--- `opts.wait` (false: return at once, and call emu:ready() later).
function M.start(args, opts)
  args, opts = args or {}, opts or {}
  local bin = os.getenv("ZCRM_EMULATOR") or "bin/zcrm-emulator"
  local wrapper = os.getenv("ZCRM_EMULATOR_WRAPPER") or ""
  local f = io.open(bin, "rb")
  if not f then error("zcrm-emulator not found at " .. bin .. ": run make first", 2) end
  f:close()
  local self = setmetatable({
    out = os.tmpname(), err = os.tmpname(), pidfile = os.tmpname(), rcfile = os.tmpname(),
    slow = wrapper ~= "",
  }, Emu)
  local parts = { wrapper, quote(bin), "--port", tostring(math.tointeger(opts.port or 0)) }
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  -- The subshell records the emulator's own pid ($! of a simple command is
  -- the exec'd program) and, once it exits, its exit status.
  local cmd = string.format("( %s%s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s ) >/dev/null 2>&1 &",
    opts.delay and string.format("sleep %.3f; ", opts.delay) or "",
    table.concat(parts, " "), quote(self.out), quote(self.err), quote(self.pidfile), quote(self.rcfile))
  spit(self.rcfile, "")
  if not sh(cmd) then error("cannot start " .. bin, 2) end
  self.delay = opts.delay or 0
  if opts.wait == false then return self end
  return self:ready(3)
end

--- Waits until the emulator listens (its first stdout line); raises if it exits
--- first, or does not listen within 10 s of its start (60 s with a wrapper).
function Emu:ready(level)
  local deadline = os.time() + self.delay + (self.slow and 60 or 10)
  while true do
    local pid = tonumber(slurp(self.pidfile) or "")
    local line = (slurp(self.out) or ""):match("^listening on (%S+)\n")
    if pid and line then
      self.pid, self.url = pid, line
      self.port = tonumber(line:match(":(%d+)$"))
      return self
    end
    local rc = slurp(self.rcfile) or ""
    if rc:match("%d") or os.time() > deadline then
      if pid then sh("kill -KILL " .. pid .. " 2>/dev/null") end
      error(string.format("zcrm-emulator did not start (%s): %s", rc:match("%d+") and ("exit " .. rc:match("%d+"))
        or "timeout", tail(slurp(self.err), 2000)), level or 2)
    end
    sleep(0.02)
  end
end

--- One HTTP request with curl. Returns status (0 when no answer came), body,
--- headers (lower-case names), curl's exit code.
function Emu:request(method, path, opts)
  opts = opts or {}
  local bodyf, hdrf = os.tmpname(), os.tmpname()
  local parts = { "curl -s -o", quote(bodyf), "-D", quote(hdrf), "-w '%{http_code}'",
                  "--max-time", tostring(opts.timeout or 30), "-X", quote(method) }
  if opts.insecure then parts[#parts + 1] = "-k" end
  for k, v in pairs(opts.headers or {}) do
    local h = type(k) == "number" and v or (k .. ": " .. v)
    parts[#parts + 1] = "-H " .. quote(h)
  end
  local reqf
  if opts.body then
    reqf = os.tmpname()
    spit(reqf, opts.body)
    parts[#parts + 1] = "--data-binary @" .. quote(reqf)
  end
  for _, a in ipairs(opts.curl_args or {}) do parts[#parts + 1] = quote(a) end
  parts[#parts + 1] = quote((opts.base or self.url) .. path)
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>/dev/null"))
  local code = p:read("a")
  local _, _, rc = p:close()
  local body = slurp(bodyf) or ""
  local headers = {}
  for line in (slurp(hdrf) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  os.remove(bodyf)
  os.remove(hdrf)
  if reqf then os.remove(reqf) end
  return tonumber(code) or 0, body, headers, rc
end

-- The hooks are the specs' back door, not what a spec tests: over TLS
-- (--tls-cert) they do not verify the emulator's certificate.
local function hook(self, method, name, body)
  local status, text = self:request(method, "/__emulator/" .. name,
    { body = body, insecure = self.url:find("^https:") ~= nil })
  if status ~= 200 then
    error(string.format("emulator hook %s answered %d: %s", name, status, text), 3)
  end
  return cjson.decode(text)
end

function Emu:stats() return hook(self, "GET", "stats") end
function Emu:state() return hook(self, "GET", "state") end
--- Reset the org, counters, tokens and scripted faults, once no API request
-- is in flight: an answer still running (one the client cancelled or timed
-- out on) would otherwise land after the reset, in the next test's org.
function Emu:reset()
  self:drain()
  hook(self, "POST", "reset")
end
function Emu:expire_tokens() hook(self, "POST", "expire-tokens") end
--- A grant code, once, for --grant-ttl seconds: `{ code = "1000.…" }`;
--- with redirect_uri, the exchange must name the same one.
function Emu:grant_code(redirect_uri)
  return hook(self, "POST", "grant-code", redirect_uri and cjson.encode { redirect_uri = redirect_uri } or nil)
end

--- Wait until no API request is in flight on the server: an answer the
--- client gave up on (a "slow" fault, 5 s against a shorter timeout) still
--- lands when its thread wakes, and a check of the org's state must come
--- after it.
function Emu:drain()
  local hang_guard = os.time() + 120   -- a hung request, not a slow machine
  local in_flight = self:stats().in_flight
  while in_flight > 0 do
    if os.time() > hang_guard then error(in_flight .. " requests still in flight after 120 s", 2) end
    sleep(0.05)
    in_flight = self:stats().in_flight
  end
end

--- A direct PUT of one module's `body` (a table), behind zcrm's back, with
--- the emulator's token; raises unless it answers 200.
function Emu:put_module(module, body)
  local status, text = self:request("PUT", "/crm/v8/settings/modules/" .. module, {
    headers = { Authorization = "Zoho-oauthtoken emulator-token", ["Content-Type"] = "application/json" },
    body = cjson.encode { modules = { body } } })
  if status ~= 200 then error(string.format("PUT %s answered %d: %s", module, status, text), 2) end
end

--- Make the next `count` (default 1) answers hostile; route "api" (default), "token" or "any".
function Emu:script(mode, count, route)
  hook(self, "POST", "script", cjson.encode { mode = mode, count = count or 1, route = route or "api" })
end

--- SIGTERM, wait for the exit. Raises if the emulator exits with a non-zero
--- status (a crash, or the wrapper's error exit code).
function Emu:kill()
  if self.stopped then return "" end
  self.stopped = true
  sh("kill -KILL " .. self.pid .. " 2>/dev/null")
  while not (slurp(self.rcfile) or ""):match("%d") do sleep(0.02) end
  local errtext = slurp(self.err) or ""
  for _, path in ipairs { self.out, self.err, self.pidfile, self.rcfile } do os.remove(path) end
  self.exit_code = 137
  return errtext
end

function Emu:stop()
  if self.stopped then return self.exit_code end
  self.stopped = true
  sh("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = os.time() + (self.slow and 60 or 15)
  local rc
  repeat
    rc = (slurp(self.rcfile) or ""):match("%d+")
    if not rc then sleep(0.02) end
  until rc or os.time() > deadline
  if not rc then sh("kill -KILL " .. self.pid .. " 2>/dev/null") end
  local errtext = slurp(self.err)
  for _, path in ipairs { self.out, self.err, self.pidfile, self.rcfile } do os.remove(path) end
  self.exit_code = tonumber(rc)
  if self.exit_code ~= 0 then
    error(string.format("zcrm-emulator exited with %s: %s", rc or "no status (killed)", tail(errtext, 4000)), 2)
  end
  return 0
end

M.quote = quote
return M
