-- Fail fast, survive restarts (issue 25): a host this process never had an
-- answer from fails at once; one that answered before is waited for through
-- a restart; Ctrl-C before anything is sent ends the run at once. bin/zcrm
-- and the library, against the real emulator.
-- (reliability_spec.lua has the kill -9 and restart of a whole apply.)
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local cli = require "spec.support.cli"
local clients = require "spec.support.client"

local TOKEN = "emulator-token"
-- How long a run may take before the spec calls it hung. The default
-- timeout (30 s) is what a run waited for a host that never answered; the
-- runs here end in well under a second.
local HANG_GUARD = 20

-- The URL of a port nothing listens on: an emulator's, once it is stopped.
local function dead_url()
  local emu = emulator.start {}
  local url = emu.url
  emu:stop()
  return url
end

local function logger_into(lines)
  return function(_, message) lines[#lines + 1] = message end
end

local function count_matching(lines, text)
  local n = 0
  for _, l in ipairs(lines) do
    if l:find(text, 1, true) then n = n + 1 end
  end
  return n
end

describe("a host this process never had an answer from", function()
  local url
  setup(function() url = dead_url() end)

  it("fails the call at once: a refused connection is not retried", function()
    local logged = {}
    local client = assert(zcrm.new { api_domain = url, access_token = TOKEN, env = false, timeout = 2,
                                     max_retries = 3, retry_base = 0.01, logger = logger_into(logged) })
    local res, err = client:get_modules()
    assert.is_nil(res)
    assert.equal("CONNECTION_FAILED", err.code)
    assert.equal("transport", err.kind)
    assert.matches("never answered", err.message)
    assert.equal(0, count_matching(logged, "trying again"), table.concat(logged, "\n"))
    assert.equal(0, count_matching(logged, "retry"), table.concat(logged, "\n"))
    client:close()
  end)

  for _, args in ipairs { { "modules" }, { "apply", "examples/plans/relabel.lua", "--yes" } } do
    it("zcrm " .. args[1] .. " ends with one line naming the host, exit 1", function()
      local run = cli.start(args, { ZOHO_API_DOMAIN = url, ZOHO_ACCESS_TOKEN = TOKEN })
      local code, out, err = cli.finish(run, HANG_GUARD)
      assert.equal(1, code, err)
      assert.equal("", out)
      local lines = {}
      for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(1, #lines, err)
      assert.matches("CONNECTION_FAILED", lines[1])
      assert.matches(url:gsub("%p", "%%%0") .. " never answered", lines[1])
    end)
  end

  it("zcrm apply --orgs with one such org ends at once, naming it; no org is changed", function()
    local live = emulator.start {}
    local dir = files.tmpdir()
    files.write(dir .. "/orgs.lua", string.format('return { { name = "live", options = { api_domain = %q, '
      .. 'access_token = %q } }, { name = "gone", options = { api_domain = %q, access_token = %q } } }\n',
      live.url, TOKEN, url, TOKEN))
    os.execute("chmod 600 " .. dir .. "/orgs.lua")
    files.write(dir .. "/plan.lua", 'return { { module = "Projects", plural_label = "Client Projects" } }\n')
    local run = cli.start({ "apply", dir .. "/plan.lua", "--orgs", dir .. "/orgs.lua", "--yes" }, {})
    local code, _, err = cli.finish(run, HANG_GUARD)
    local puts = clients.puts(live)
    live:stop()
    files.remove_tree(dir)
    assert.is_true(code ~= 0, "exit 0")
    assert.matches("gone", err)
    assert.matches("CONNECTION_FAILED", err)
    assert.equal(0, puts)
  end)
end)

describe("a host that answered before", function()
  it("is waited for through a restart, by any client of this process", function()
    local emu = emulator.start {}
    local first = assert(zcrm.new { api_domain = emu.url, access_token = TOKEN, env = false })
    assert(first:get_modules())
    first:close()
    local port = emu.port
    emu:kill()
    -- back on the same port a second later; a new client of the same host
    -- keeps trying meanwhile (for up to its timeout), and gets through
    local again = emulator.start({}, { port = port, delay = 1, wait = false })
    local logged = {}
    local second = assert(zcrm.new { api_domain = emu.url, access_token = TOKEN, env = false, timeout = 120,
                                     retry_base = 0.05, retry_max_delay = 0.2, logger = logger_into(logged) })
    local mods, err = second:get_modules()
    second:close()
    again:ready()
    again:stop()
    assert.truthy(mods, tostring(err))
    assert.is_true(count_matching(logged, "CONNECTION_FAILED; trying again") > 0, "no refused connection was retried")
  end)
end)

describe("Ctrl-C while nothing has been sent", function()
  local emu
  -- every API answer takes a minute: the state read is still waiting for its
  -- answer when the signal comes
  setup(function() emu = emulator.start { "--latency-ms", "60000" } end)
  teardown(function() emu:stop() end)

  it("ends zcrm apply at once, exit 130, nothing sent", function()
    local run = cli.start({ "apply", "examples/plans/relabel.lua", "--yes" },
      { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN })
    local deadline = os.time() + HANG_GUARD
    while emu:stats().in_flight < 1 do
      assert(os.time() < deadline, "zcrm never asked the emulator")
      os.execute("sleep 0.02")
    end
    os.execute("kill -INT " .. run.pid)
    local code, _, err = cli.finish(run, HANG_GUARD)
    assert.equal(130, code, err)
    assert.equal(0, clients.puts(emu))
  end)
end)
