-- zcrm.cqueues: once attached, a client's blocking-style calls made inside a
-- cqueues coroutine wait through cqueues.poll, so the controller's other
-- coroutines keep running.
local cqueues = require "cqueues"
local zcq = require "zcrm.cqueues"
local with_emulator = require("spec.support.fixture").with_emulator
local new_client = require("spec.support.client").maker()

local N = 50

-- Runs `work` in one coroutine and a 10 ms ticker in another, on one
-- controller, until `work` returns. Counts the ticks taken while a call of
-- `work` was in flight (work sets busy[1]). Returns the ticks, work's results.
local function with_ticker(work)
  local cq = cqueues.new()
  local busy, finished, ticks, results = { false }, false, 0, nil
  cq:wrap(function()
    while not finished do
      cqueues.sleep(0.01)
      if busy[1] then ticks = ticks + 1 end
    end
  end)
  cq:wrap(function()
    results = table.pack(work(busy))
    finished = true
  end)
  assert(cq:loop())
  return ticks, table.unpack(results, 1, results.n)
end

describe("zcrm.cqueues", function()
  local fx = with_emulator { args = { "--latency-ms", "50", "--extra-modules", tostring(N) }, client = false }
  local emu
  before_each(function() emu = fx.emu end)

  it("keeps a ticker coroutine ticking every 10 ms while another runs 50 updates through update_module", function()
    local client = new_client(emu)
    zcq.attach(client)
    local ticks, ok = with_ticker(function(busy)
      local n = 0
      for i = 1, N do
        busy[1] = true
        local res, err = client:update_module("Bulk_Module_" .. i,
          { plural_label = "Cq Items " .. i, singular_label = "Cq Item " .. i })
        busy[1] = false
        assert(res and res.code == "SUCCESS", tostring(err))
        n = n + 1
      end
      return n
    end)
    assert.equal(N, ok)
    -- Each update takes at least the emulator's 50 ms: a ticker that keeps
    -- running ticks about 5 times per update; a blocked one never does.
    assert.is_true(ticks >= N, ticks .. " ticks during " .. N .. " updates")
    client:close()
  end)

  it("lets get_modules and apply yield too, and blocks as before outside a controller", function()
    local client = new_client(emu)
    local handle = zcq.attach(client)
    assert.is_table((client:get_modules()))       -- no controller: blocks
    local plan = {}
    for i = 1, 10 do plan[i] = { module = "Bulk_Module_" .. i, plural_label = "Cq Plan " .. i } end
    local ticks, mods, report = with_ticker(function(busy)
      busy[1] = true
      local m = client:get_modules()
      local r = assert(client:apply(plan))
      busy[1] = false
      return m, r
    end)
    assert.is_table(mods)
    assert.equal(10, #report.applied)
    assert.is_true(ticks >= 2, ticks .. " ticks")
    handle:detach()
    client:close()
  end)

  it("makes the client a cqueues pollable", function()
    local client = new_client(emu)
    assert.equal("r", client:events())
    assert.is_true(math.type(client:pollfd()) == "integer")
    assert.is_nil(client:timeout())
    client:close()
  end)

  it("wakes a coroutine waiting on the client with CLOSED when another one closes it", function()
    local client = new_client(emu)
    zcq.attach(client)
    local cq = cqueues.new()
    local got
    cq:wrap(function() got = table.pack(client:get_modules()) end)
    cq:wrap(function()
      while client:pending() == 0 do cqueues.sleep(0) end  -- the other one is waiting now
      client:close()
    end)
    local ok, err = cq:loop()
    assert.is_true(ok, tostring(err))
    assert.is_nil(got[1])
    assert.equal("CLOSED", got[2].code)
  end)

  it("reports an error raised in a task to the caller of loop and still finishes the other tasks", function()
    local client = new_client(emu)
    zcq.attach(client)
    local cq = cqueues.new()
    local done = {}
    for i = 1, 4 do
      cq:wrap(function()
        assert(client:get_modules())
        if i % 2 == 1 then error("task " .. i .. " failed") end
        done[#done + 1] = i
      end)
    end
    local errors = {}
    repeat
      local ok, err = cq:loop()
      if not ok then errors[#errors + 1] = tostring(err) end
    until ok
    table.sort(done)
    assert.same({ 2, 4 }, done)
    assert.equal(2, #errors)
    assert.equal(0, client:pending())
    client:close()
  end)
end)
