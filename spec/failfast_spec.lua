-- Fail fast, survive restarts, back off on 429 (issue 25): a host this
-- process never had an answer from fails at once; one that answered before
-- is waited for through a restart; Ctrl-C before anything is sent ends the
-- run at once; a --concurrency above the server's cap costs time, not
-- failures. bin/zcrm and the library, against the real emulator.
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

-- A plan file at `path` relabelling Bulk_Module_1..n as "<tag> Items i".
local function write_plan(path, n, tag)
  local lines = { "return {" }
  for i = 1, n do
    lines[#lines + 1] = string.format('  { module = "Bulk_Module_%d", plural_label = "%s Items %d" },', i, tag, i)
  end
  lines[#lines + 1] = "}"
  files.write(path, table.concat(lines, "\n") .. "\n")
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
    assert.equal(1, code, err)                 -- a network fault, not invalid input
    assert.matches("1 org could not be checked; no org was changed", err, 1, true)
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

describe("zcrm apply and a server killed with kill -9 mid-run, restarted", function()
  it("finishes the run, exit 0, every update applied", function()
    local RUN, KILL_AT = 300, 100
    local dir = files.tmpdir()
    local args = { "--state", dir .. "/org.json", "--extra-modules", tostring(RUN), "--latency-ms", "20" }
    local first = emulator.start(args)
    write_plan(dir .. "/plan.lua", RUN, "Restart")
    -- timeout 120: under make valgrind the restarted emulator can take half
    -- a minute to listen, longer than the default timeout's 30 s of waiting
    files.write(dir .. "/config.lua", string.format("return { api_domain = %q, timeout = 120 }\n", first.url))
    local run = cli.start({ "apply", dir .. "/plan.lua", "--yes", "--concurrency", "4", "--config", dir .. "/config.lua" },
      { ZOHO_ACCESS_TOKEN = TOKEN })
    local deadline = os.time() + 60
    while clients.puts(first) < KILL_AT do
      assert(os.time() < deadline, "the run never reached " .. KILL_AT .. " updates")
      os.execute("sleep 0.02")
    end
    first:kill()
    local second = emulator.start(args, { port = first.port, delay = 1, wait = false })
    local code, out, err = cli.finish(run, 120)
    second:ready()
    local by = {}
    for _, m in ipairs(second:state().modules) do by[m.api_name] = m end
    second:stop()
    files.remove_tree(dir)
    assert.equal(0, code, err)
    assert.matches("applied " .. RUN .. ", already applied 0, skipped 0, invalid 0, failed 0", out)
    for i = 1, RUN do assert.equal("Restart Items " .. i, by["Bulk_Module_" .. i].plural_label) end
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

describe("a --concurrency above the server's cap", function()
  local N, dir, emu
  setup(function()
    N = 300
    -- 50 ms per answer: calls overlap, so the cap of 5 is met at once
    emu = emulator.start { "--concurrency", "5", "--latency-ms", "50", "--extra-modules", tostring(N) }
    dir = files.tmpdir()
    write_plan(dir .. "/plan.lua", N, "Capped")
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)
  before_each(function() emu:reset() end)

  it("zcrm apply --concurrency 40 against a cap of 5: all applied, exit 0", function()
    local code, out, err = cli.run({ "apply", dir .. "/plan.lua", "--yes", "--concurrency", "40" },
      { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN })
    local stats = emu:stats()
    assert.equal(0, code, err)
    assert.matches("applied " .. N .. ", already applied 0, skipped 0, invalid 0, failed 0", out)
    assert.equal(N, stats.updates_applied)
    assert.is_true((stats.responses["429"] or 0) > 0, "the server's cap was never met")
  end)

  it("lowers the calls in flight after a 429, never above concurrency", function()
    local client = clients.maker { retry_base = 0.01, retry_max_delay = 0.1 }(emu, { concurrency = 40, max_retries = 1 })
    local lowest, highest = math.huge, 0
    local reqs = {}
    for i = 1, N do
      reqs[i] = client:submit("update_module", "Bulk_Module_" .. i, { plural_label = "Engine Items " .. i })
    end
    while client:pending() > 0 do
      client:poll(0.05)
      lowest, highest = math.min(lowest, client:limit()), math.max(highest, client:limit())
    end
    for i, r in ipairs(reqs) do
      local res, err = r:result()
      assert.truthy(res, "update " .. i .. ": " .. tostring(err))
    end
    assert.is_true(lowest <= 5, "the limit never came down to the cap: " .. lowest)
    assert.is_true(highest <= 40)
    assert.is_true(require("zcrm.client").private(client).engine.transfers.max_in_flight_seen <= 40)
    -- the server's 429s are a fraction of the updates (about 60 of 300 here),
    -- not a multiple of them (about 600 when the limit stays at 40)
    local refused = emu:stats().responses["429"] or 0
    assert.is_true(refused > 0)
    assert.is_true(refused < N / 2, refused .. " answers were 429")
    client:close()
  end)
end)
