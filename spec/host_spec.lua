-- examples/host: the game-server-style C host. It embeds Lua 5.4,
-- holds 2,000 other sockets open, and drives zcrm from its own 60 Hz epoll
-- loop through client:pollfd() and client:timeout(). `make` builds it, and
-- `make test` also builds its ThreadSanitizer twin (fuzz/bin/tsan/host);
-- a test whose binary is missing is pending and says which target builds it
-- (under CI=true it fails).
local emulator = require "spec.support.emulator"
local need = require "spec.support.need"

local function run(cmd)
  local scratch = os.tmpname()
  local ok, _, code = os.execute(cmd .. " >" .. scratch .. " 2>&1")
  local f = assert(io.open(scratch, "rb"))
  local out = f:read("a")
  f:close()
  os.remove(scratch)
  return ok and 0 or code, out
end

-- Every thread reports its updates, all successful, and sockets numbered
-- above the 2,000 others, i.e. above 1024 (FD_SETSIZE).
local function check(out, threads, updates)
  for t = 1, threads do
    local n, ok_n, lo, hi = out:match("thread " .. t .. ": (%d+) updates: (%d+) SUCCESS; zcrm sockets (%d+)%-(%d+)")
    assert(n, "no report of thread " .. t .. " in:\n" .. out)
    assert.equal(updates, tonumber(n))
    assert.equal(updates, tonumber(ok_n), out)
    assert.is_true(tonumber(lo) > 2000 and tonumber(hi) > 2000, out)
    assert.matches("thread " .. t .. ": %d+ frames in [%d.]+ s, %d+ polls, worst tick [%d.]+ ms of a 16.7 ms frame "
      .. "%(CPU: [%d.]+ ms%)", out)
  end
  assert.matches("host: all updates succeeded; worst tick [%d.]+ ms %(CPU: [%d.]+ ms%)", out)
end

describe("examples/host (C host, one descriptor and one timer per client)", function()
  local emu
  setup(function()
    -- concurrency 100: four clients of 10 never meet the emulator's 429s
    emu = emulator.start { "--latency-ms", "20", "--extra-modules", "400", "--concurrency", "100" }
  end)
  teardown(function() if emu then emu:stop() end end)

  it("runs single-threaded: every update succeeds from the 60 Hz loop, sockets above 1024", function()
    local why = need.file("examples/host/host", "make builds it")
    if why then return pending(why) end
    local code, out = run("examples/host/host --url " .. emu.url .. " --updates 60")
    assert.equal(0, code, out)
    check(out, 1, 60)
  end)

  it("runs 4 threads, each with its own lua_State and client, against one emulator", function()
    local why = need.file("examples/host/host", "make builds it")
    if why then return pending(why) end
    local code, out = run("examples/host/host --url " .. emu.url .. " --threads 4 --updates 40")
    assert.equal(0, code, out)
    check(out, 4, 40)
  end)

  it("is clean under ThreadSanitizer with 4 threads", function()
    local why = need.file("fuzz/bin/tsan/host", "make tsan (or make test) builds it")
    if why then return pending(why) end
    -- LD_PRELOAD is cleared: under make asan it carries the ASan runtime.
    local code, out = run("env -u LD_PRELOAD TSAN_OPTIONS='halt_on_error=1 exitcode=66' fuzz/bin/tsan/host --url "
      .. emu.url .. " --threads 4 --updates 25")
    assert.is_nil(out:find("ThreadSanitizer", 1, true), out)
    assert.equal(0, code, out)
    check(out, 4, 25)
  end)
end)
