-- zcrm.luv: a client driven from a luv (libuv) loop through one uv poll on
-- client:pollfd() and one uv timer set from client:timeout().
local uv = require "luv"
local zluv = require "zcrm.luv"
local with_emulator = require("spec.support.fixture").with_emulator
local new_client = require("spec.support.client").maker()

local LATENCY_MS, N, CAP = 50, 200, 10

-- uv.run() under a guard: an unreferenced timer does not keep the loop alive,
-- so uv.run() returns by itself only if the adapter stopped its handles; the
-- guard stops it (and says so) if the adapter never does.
local function run_loop(limit)
  local guard, stuck = uv.new_timer(), false
  guard:start(limit * 1000, 0, function() stuck = true; uv.stop() end)
  guard:unref()
  uv.run()
  guard:close()
  uv.run("nowait") -- lets the close complete
  return not stuck
end

describe("zcrm.luv", function()
  local fx = with_emulator { args = { "--latency-ms", tostring(LATENCY_MS), "--extra-modules", tostring(N) },
                             client = false }
  local emu
  before_each(function() emu = fx.emu end)

  it("runs 200 updates (latency 50 ms, cap 10) from uv.run() with 1,100 other descriptors open, "
    .. "the cap full and the transfers overlapping at the server, and uv.run() returns by itself", function()
    local others = {}
    for i = 1, 1100 do others[i] = assert(io.open("/dev/null", "rb")) end
    local client = new_client(emu, { concurrency = CAP })
    local handle = zluv.attach(client)
    local ok, failed, on_loop, top_fd = 0, {}, 0, 0
    emu:reset()
    for i = 1, N do
      local name = "Bulk_Module_" .. i
      client:submit("update_module", name, { plural_label = "Luv Items " .. i, singular_label = "Luv Item " .. i })
        :on_done(function(res, err)
          if res and res.code == "SUCCESS" then ok = ok + 1 else failed[#failed + 1] = name .. ": " .. tostring(err) end
          if uv.loop_mode() == "default" then on_loop = on_loop + 1 end
          for _, s in ipairs(client:fds()) do top_fd = math.max(top_fd, s.fd) end
        end)
    end
    local returned = run_loop(60)
    local seen = emu:stats().max_in_flight
    handle:detach()
    for _, f in ipairs(others) do f:close() end
    assert.is_true(returned, "uv.run() did not return by itself")
    assert.same({}, failed)
    assert.equal(N, ok)
    assert.equal(N, on_loop)                    -- every callback ran on the loop
    assert.equal(0, client:pending())
    assert.equal(CAP, require("zcrm.client").private(client).engine.transfers.max_in_flight_seen)
    -- the loop drives the transfers together, not one after another; how close
    -- the wall time comes to 200 x 50 ms / 10 is bench/event_loop.lua's figure d
    assert.is_true(seen > 1, "the server never had two of them at once")
    assert.is_true(top_fd > 1100, "zcrm's sockets were numbered up to " .. top_fd)
    client:close()
  end)

  it("runs apply as a task on the loop: on_result on the loop, the loop's own timers keep firing", function()
    local client = new_client(emu, { concurrency = CAP })
    local handle = zluv.attach(client)
    local plan = {}
    for i = 1, 20 do plan[i] = { module = "Bulk_Module_" .. i, plural_label = "Luv Task Items " .. i } end
    local results, on_loop, ticks, report, err = 0, 0, 0, nil, nil
    local ticker = uv.new_timer()
    ticker:start(10, 10, function() ticks = ticks + 1 end)
    handle:run(function()
      report, err = client:apply(plan, { on_result = function()
        results = results + 1
        if uv.loop_mode() == "default" then on_loop = on_loop + 1 end
      end })
      ticker:close()
    end)
    assert.is_nil(report)        -- run() returned at apply's first wait
    assert.is_true(run_loop(60))
    assert.is_nil(err)
    assert.equal(20, #report.applied)
    assert.equal(20, results)
    assert.equal(20, on_loop)    -- every on_result ran inside uv.run()
    -- two rounds of 50 ms at least: a loop blocked by apply would not tick
    assert.is_true(ticks >= 2, ticks .. " ticks during apply")
    handle:detach()
    client:close()
  end)

  it("starts again on a submit after the loop went idle, and stops on detach", function()
    local client = new_client(emu)
    local handle = zluv.attach(client)
    assert.is_true(run_loop(10)) -- nothing pending: returns at once
    local req = client:submit("get_modules")
    assert.is_true(run_loop(30))
    assert.is_true(req:done())
    assert.is_table((req:result()))
    handle:detach()
    handle:detach()
    req = client:submit("get_modules")
    assert.is_true(run_loop(10))  -- detached: the loop has nothing to run
    assert.is_false(req:done())
    assert.is_table((client:wait(req)))
    client:close()
  end)

  it("stops watching when the client closes, and refuses a second attach", function()
    local client = new_client(emu)
    local handle = zluv.attach(client)
    assert.has_error(function() zluv.attach(client) end)
    local req = client:submit("get_modules")
    client:close()
    assert.is_true(run_loop(10))
    assert.equal("CLOSED", select(2, req:result()).code)
    handle:detach()
  end)

  it("wakes a task waiting on the client with CLOSED when the client closes", function()
    local client = new_client(emu)
    local handle = zluv.attach(client)
    local got
    handle:run(function() got = table.pack(client:get_modules()) end)
    assert.is_nil(got)                      -- the task waits on the loop
    client:close()
    assert.is_true(run_loop(10))
    assert.is_nil(got[1])
    assert.equal("CLOSED", got[2].code)
    handle:detach()
  end)

  it("hands an error raised in a task to the error handler and still runs the tasks resumed with it", function()
    local client = new_client(emu)
    local errors = {}
    local handle = zluv.attach(client, uv, { on_error = function(e) errors[#errors + 1] = e end })
    local done = {}
    for i = 1, 4 do
      handle:run(function()
        assert(client:get_modules())
        if i % 2 == 1 then error("task " .. i .. " failed") end
        done[#done + 1] = i
      end)
    end
    assert.is_true(run_loop(30))
    table.sort(done)
    assert.same({ 2, 4 }, done)
    assert.equal(2, #errors)
    for _, e in ipairs(errors) do assert.matches("task %d failed", tostring(e)) end
    -- without a handler: kept in handle.errors, and logged
    local logged = {}
    local c2 = new_client(emu, { logger = function(level, m) logged[#logged + 1] = level .. " " .. m end })
    local h2 = zluv.attach(c2)
    local second = false
    h2:run(function() assert(c2:get_modules()); error("lone failure") end)
    h2:run(function() assert(c2:get_modules()); second = true end)
    assert.is_true(run_loop(30))
    assert.is_true(second)
    assert.equal(1, #h2.errors)
    assert.matches("lone failure", tostring(h2.errors[1]))
    assert.matches("lone failure", table.concat(logged, "\n"))
    -- an error before the task's first wait is raised to the caller of run
    assert.has_error(function() h2:run(function() error("at once") end) end)
    handle:detach()
    h2:detach()
    client:close()
    c2:close()
  end)
end)
