-- The non-blocking engine: submit/poll, the concurrency cap, retries, credits,
-- callbacks and cancellation, against the emulator over loopback.
local zcrm = require "zcrm"
local core = require "zcrm.core"
local private = require("zcrm.client").private
local emulator = require "spec.support.emulator"
local new_client = require("spec.support.client").maker { retry_base = 0.02 }

local function bulk_update(i, tag)
  return string.format("Bulk_Module_%d", i), {
    plural_label = string.format("%s Items %d", tag, i),
    singular_label = string.format("%s Item %d", tag, i),
  }
end

local function submit_bulk(client, n, tag)
  local reqs = {}
  for i = 1, n do reqs[i] = client:submit("update_module", bulk_update(i, tag)) end
  return reqs
end

local function all_succeeded(reqs)
  for i, r in ipairs(reqs) do
    local res, err = r:result()
    assert(res, "request " .. i .. " failed: " .. tostring(err))
    assert.equal("SUCCESS", res.code)
  end
end

describe("engine", function()
  describe("with an emulator capped at 10 in flight and 50 ms latency", function()
    local emu
    setup(function()
      emu = emulator.start { "--concurrency", "10", "--latency-ms", "50", "--extra-modules", "120" }
    end)
    teardown(function() emu:stop() end)
    before_each(function() emu:reset() end)

    it("keeps at most `concurrency` calls in flight and gets no 429", function()
      local client = new_client(emu, { concurrency = 10 })
      local reqs = submit_bulk(client, 100, "Capped")
      assert.is_true(client:drain(60))
      all_succeeded(reqs)
      local stats = emu:stats()
      assert.equal(100, stats.updates_applied)
      assert.is_true(stats.max_in_flight <= 10, "max_in_flight " .. stats.max_in_flight)
      assert.is_nil(stats.responses["429"])
      assert.is_true(private(client).engine.transfers.max_in_flight_seen <= 10)
    end)

    it("gives each request its own result when coroutines are reused, and a cancelled one none", function()
      local client = new_client(emu, { concurrency = 3 })
      local first = submit_bulk(client, 6, "Reuse")
      assert.is_true(client:drain(30))
      -- The next requests run on the coroutines the first ones finished on.
      local cancelled = client:submit("update_module", bulk_update(7, "Reuse"))
      assert.is_true(cancelled:cancel())
      local second = {}
      for i = 8, 13 do second[#second + 1] = client:submit("update_module", bulk_update(i, "Reuse")) end
      local bad = client:submit("update_module", "Bulk_Module_14", { plural_label = "no!" })
      assert.is_true(client:drain(30))
      all_succeeded(first)
      all_succeeded(second)
      -- Each result is the answer about the module its request named.
      local function check(r, i)
        local module = assert(client:get_module("Bulk_Module_" .. i))
        assert.equal(module.id, r:result().id)
        assert.equal(select(2, bulk_update(i, "Reuse")).plural_label, module.plural_label)
      end
      for i, r in ipairs(first) do check(r, i) end
      for k, r in ipairs(second) do check(r, k + 7) end
      local _, cerr = cancelled:result()
      assert.equal("CANCELLED", cerr.code)
      local bres, berr = bad:result()
      assert.is_nil(bres)
      assert.equal("INVALID_DATA", berr.code)
      assert.equal(12, emu:stats().updates_applied)
      client:close()
    end)

    it("retries the server's 429s to success when its cap is below the client's", function()
      local tight = emulator.start { "--concurrency", "4", "--latency-ms", "50", "--extra-modules", "60" }
      local client = new_client(tight, { concurrency = 10, max_retries = 10 })
      local reqs = submit_bulk(client, 60, "Tight")
      assert.is_true(client:drain(60))
      local stats = tight:stats()
      tight:stop()
      all_succeeded(reqs)
      assert.equal(60, stats.updates_applied)
      assert.is_true((stats.responses["429"] or 0) > 0, "expected the server to refuse some calls")
    end)

    it("never blocks in poll(0) while slow calls are in flight", function()
      -- every answer takes 60 s: a poll(0) that waited for one would take that long
      local slow = emulator.start { "--latency-ms", "60000", "--extra-modules", "20" }
      local client = new_client(slow, { concurrency = 10, timeout = 120 })
      local reqs = submit_bulk(client, 20, "Poll")
      local worst, polls = 0, 0
      local function poll()
        local t0 = core.now()
        client:poll(0)
        worst = math.max(worst, core.now() - t0)
        polls = polls + 1
      end
      -- poll until the server holds all 10 calls, then 20 more times
      repeat poll() until slow:stats().in_flight == 10
      for _ = 1, 20 do poll() end
      local pending = client:pending()
      for _, r in ipairs(reqs) do r:cancel() end
      slow:stop()
      assert.equal(20, pending)
      assert.is_true(polls > 20)
      assert.is_true(worst < 30, string.format("poll(0) took %.3f s", worst))
    end)

    it("runs callbacks from poll, once each, and survives a failing one", function()
      local client = new_client(emu)
      local calls = {}
      local reqs = submit_bulk(client, 5, "Cb")
      for i, r in ipairs(reqs) do
        r:on_done(function(res)
          calls[i] = (calls[i] or 0) + 1
          if i == 3 then error("boom in callback") end
          assert(res)
        end)
      end
      assert.is_true(client:drain(20))
      for i = 1, 5 do assert.equal(1, calls[i]) end
      assert.equal(1, #client.callback_errors)
      assert.matches("boom in callback", client.callback_errors[1].message, 1, true)
      assert.is_true(zcrm.is_error(client.callback_errors[1]))
    end)

    it("cancels queued and in-flight requests", function()
      local client = new_client(emu, { concurrency = 2 })
      local reqs = submit_bulk(client, 6, "Cancel")
      client:poll(0)
      for _, r in ipairs(reqs) do r:cancel() end
      assert.is_true(client:drain(5))
      for _, r in ipairs(reqs) do
        local res, err = r:result()
        assert.is_nil(res)
        assert.equal("CANCELLED", err.code)
      end
      assert.equal(0, private(client).engine.multi:running())
    end)

    it("tells a host how long it may sleep (timeout) and which sockets to watch (fds)", function()
      local client = new_client(emu)
      assert.is_nil(client:timeout())
      local req = client:submit("get_module", "Digital_Marketing")
      client:poll(0)
      local t = client:timeout()
      assert.is_number(t)
      assert.is_true(t >= 0 and t <= 1)
      assert.is_table(client:fds())
      assert.truthy(client:wait(req))
      assert.is_nil(client:timeout())
    end)

    it("refuses to wait on another client's request (INVALID_ARGUMENT) instead of spinning", function()
      local a, b = new_client(emu), new_client(emu)
      local req = a:submit("get_module", "Digital_Marketing")
      local res, err = b:wait(req)
      assert.is_nil(res)
      assert.equal("INVALID_ARGUMENT", err.code)
      assert.equal("validation", err.kind)
      assert.truthy(a:wait(req))             -- its own client still waits for it
      res, err = b:await(req)                 -- also once it is done
      assert.is_nil(res)
      assert.equal("INVALID_ARGUMENT", err.code)
      a:close()
      b:close()
    end)

    it("ends the requests pending when the client closes as CLOSED", function()
      local client = new_client(emu)
      local req = client:submit("get_module", "Digital_Marketing")
      client:close()
      local res, err = req:result()
      assert.is_nil(res)
      assert.equal("CLOSED", err.code)
    end)

    it("starts a queued call when a running one is cancelled, and refunds its credits", function()
      local client = new_client(emu, { concurrency = 1, max_credits = 5 })
      local a = client:submit("update_module", bulk_update(1, "Refund"))
      local b = client:submit("update_module", bulk_update(2, "Refund"))
      client:poll(0)
      assert.is_true(a:cancel())
      assert.is_true(client:drain(10))
      assert.equal("CANCELLED", select(2, a:result()).code)
      assert.equal("SUCCESS", (b:result()).code)
      assert.equal(5, client:credits())
    end)

    it("raises for misuse at the caller's line, in submit and in blocking calls", function()
      local client = new_client(emu)
      local ok, err = pcall(client.submit, client, "request", "get", "settings/modules")
      assert.is_false(ok)
      assert.matches("upper%-case HTTP method", err)
      ok, err = pcall(function() return client:request("get", "settings/modules") end)
      assert.is_false(ok)
      assert.matches("engine_spec.lua", err, 1, true)
      ok, err = pcall(client.submit, client, "no_such_method")
      assert.is_false(ok)
      assert.matches("unknown method 'no_such_method'", err, 1, true)
      assert.equal(0, client:pending())
    end)

    it("keeps no token on a finished request object", function()
      local client = new_client(emu, { access_token = "1000.keepme.secret" })
      local req = client:submit("get_module", "Digital_Marketing")
      client:wait(req)
      local seen = {}
      local function scan(v)
        if type(v) == "string" then
          assert.is_nil(v:find("keepme", 1, true))
        elseif type(v) == "table" and not seen[v] and v ~= client then
          seen[v] = true
          for k, x in pairs(v) do scan(k); scan(x) end
        end
      end
      scan(req)
    end)

    it("lets finished requests be collected", function()
      local client = new_client(emu)
      local weak = setmetatable({}, { __mode = "v" })
      for i, r in ipairs(submit_bulk(client, 5, "Gc")) do weak[i] = r end
      assert.is_true(client:drain(10))
      collectgarbage(); collectgarbage()
      assert.is_nil(next(weak))
    end)

    it("survives a client dropped with calls in flight", function()
      local client = new_client(emu)
      submit_bulk(client, 5, "Drop")
      client:poll(0)
      client = nil -- luacheck: ignore
      collectgarbage(); collectgarbage()
      -- the emulator is still healthy and a new client works
      local c2 = new_client(emu)
      assert.truthy(c2:get_module("Bulk_Module_1"))
    end)

    it("yields inside a coroutine while waiting (await)", function()
      local client = new_client(emu)
      local yields = 0
      local co = coroutine.create(function()
        local req = client:submit("get_module", "Digital_Marketing")
        return client:await(req)
      end)
      local ok, res
      repeat
        ok, res = coroutine.resume(co)
        assert.is_true(ok, tostring(res))
        if coroutine.status(co) ~= "dead" then
          yields = yields + 1
          client:poll(0.01)
        end
      until coroutine.status(co) == "dead"
      assert.is_true(yields > 0)
      assert.equal("Digital_Marketing", res.api_name)
    end)
  end)

  describe("faults", function()
    it("recovers from a storm of 500, 503, resets and 429 on idempotent updates", function()
      local emu = emulator.start { "--fault-rate", "0.3", "--faults", "500,503,reset,429",
                                   "--seed", "7", "--extra-modules", "40" }
      local client = new_client(emu, { max_retries = 10, retry_base = 0.01 })
      local reqs = submit_bulk(client, 40, "Storm")
      assert.is_true(client:drain(60))
      local stats = emu:stats()
      emu:stop()
      all_succeeded(reqs)
      assert.is_true(stats.requests.total > 40, "the storm injected no fault")
    end)
  end)

  describe("queue", function()
    it("loses no queued call when retries re-enter the queue", function()
      -- A regression spec: the queue once lost calls when retried ones were
      -- appended after its front had been emptied. Ten seeded runs caught it.
      for seed = 1, 10 do
        local emu = emulator.start { "--fault-rate", "0.3", "--faults", "503", "--seed", tostring(seed),
                                     "--extra-modules", "100" }
        local client = new_client(emu, { concurrency = 3, max_retries = 20, retry_base = 0.001 })
        local reqs = submit_bulk(client, 100, "Queue")
        -- a lost call never ends: the bound only stops a hung run, and is
        -- far above a run under valgrind on a busy machine
        local drained = client:drain(300)
        emu:stop()
        assert.is_true(drained, "calls were lost from the queue (seed " .. seed .. "): "
          .. client:pending() .. " still pending after 300 s")
        all_succeeded(reqs)
        assert.equal(0, client:queued())
      end
    end)
  end)

  describe("Retry-After", function()
    local emu
    setup(function()
      emu = emulator.start { "--concurrency", "1", "--latency-ms", "300", "--retry-after", "1", "--extra-modules", "2" }
    end)
    teardown(function() emu:stop() end)
    before_each(function() emu:reset() end)

    it("waits at least as long as a 429's Retry-After before asking again", function()
      local client = new_client(emu, { concurrency = 2, retry_base = 0.001 })
      local t0 = core.now()
      local reqs = submit_bulk(client, 2, "After")
      assert.is_true(client:drain(10))
      all_succeeded(reqs)
      assert.equal(1, emu:stats().responses["429"])
      assert.is_true(core.now() - t0 >= 1.0, "retried before Retry-After")
    end)

    it("gives up at once when Retry-After is longer than retry_max_delay", function()
      local client = new_client(emu, { concurrency = 2, retry_max_delay = 0.5 })
      local reqs = submit_bulk(client, 2, "Later")
      assert.is_true(client:drain(10))
      local failed
      for _, r in ipairs(reqs) do
        local _, err = r:result()
        if err then failed = err end
      end
      assert.equal("TOO_MANY_REQUESTS", failed.code)
      assert.equal(1, failed.details.retry_after)
      assert.equal(1, emu:stats().responses["429"])
    end)
  end)

  describe("credits", function()
    local emu
    setup(function() emu = emulator.start { "--credits", "40" } end)
    teardown(function() emu:stop() end)
    before_each(function() emu:reset() end)

    it("refuses a call that would pass max_credits, sending nothing", function()
      local client = new_client(emu, { max_credits = 12 })
      assert.truthy(client:update_module("Digital_Marketing", { plural_label = "Credit Ones" }))
      assert.truthy(client:update_module("Digital_Marketing", { plural_label = "Credit Twos" }))
      local _, err = client:update_module("Digital_Marketing", { plural_label = "Credit Threes" })
      assert.equal("limit", err.kind)
      assert.equal("CREDIT_LIMIT", err.code)
      assert.equal(10, client:credits())
      assert.equal(2, emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"])
    end)

    it("reads X-API-CREDITS-REMAINING once Zoho sends it", function()
      local client = new_client(emu)
      for i = 1, 5 do
        assert.truthy(client:update_module("Digital_Marketing", { plural_label = "Remaining " .. ("ABCDE"):sub(i, i) }))
      end
      local spent, remaining = client:credits()
      assert.equal(25, spent)
      assert.equal(15, remaining)
    end)
  end)
end)
