-- client:pollfd(): one descriptor for a host loop, whatever the number of
-- transfers. On Linux it is an epoll descriptor the client owns.
local new_client = require("spec.support.client").maker()
local with_emulator = require("spec.support.fixture").with_emulator

local PID
do
  local f = assert(io.open("/proc/self/stat", "rb"))
  PID = f:read("n")
  f:close()
end

-- What one of this process's descriptors refers to (nil: none).
local function link(fd)
  local p = assert(io.popen("readlink /proc/" .. PID .. "/fd/" .. fd .. " 2>/dev/null"))
  local s = p:read("l")
  p:close()
  return s
end

-- The flags of one of this process's descriptors, from /proc (octal).
local function fd_flags(fd)
  local f = io.open("/proc/self/fdinfo/" .. fd, "rb")
  if not f then return nil end
  local flags = f:read("a"):match("flags:%s*(%d+)")
  f:close()
  return tonumber(flags, 8)
end

describe("client:pollfd()", function()
  local fx = with_emulator { args = { "--latency-ms", "200" }, client = false }
  local emu
  before_each(function() emu = fx.emu end)

  it("is one epoll descriptor, close-on-exec, the same for the client's whole life", function()
    local client = new_client(emu)
    local fd = client:pollfd()
    assert.equal("integer", math.type(fd))
    assert.equal("anon_inode:[eventpoll]", link(fd))
    assert.is_true(fd_flags(fd) & 0x80000 ~= 0, "O_CLOEXEC not set") -- 02000000
    local req = client:submit("get_modules")
    client:poll(0)
    assert.equal(fd, client:pollfd())
    assert.is_table((client:wait(req)))
    assert.equal(fd, client:pollfd())
    client:close()
  end)

  it("is closed with the client, by close() and by the garbage collector", function()
    local client = new_client(emu)
    local fd = client:pollfd()
    client:close()
    assert.is_nil(client:pollfd())
    assert.are_not.equal("anon_inode:[eventpoll]", link(fd))
    client = new_client(emu)
    fd = client:pollfd()
    client = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are_not.equal("anon_inode:[eventpoll]", link(fd))
  end)

  it("lists sockets numbered above 1024 in fds() (no FD_SETSIZE limit)", function()
    local others = {}
    for i = 1, 1100 do others[i] = assert(io.open("/dev/null", "rb")) end
    local client = new_client(emu)
    local req = client:submit("get_modules")
    local seen = 0
    while not req:done() do
      for _, s in ipairs(client:fds()) do seen = math.max(seen, s.fd) end
      client:poll(0.05)
    end
    for _, f in ipairs(others) do f:close() end
    assert.is_true(seen > 1100, "largest socket listed: " .. seen)
    assert.is_table((req:result()))
    assert.same({}, client:fds())
    client:close()
  end)

  it("core.wait_readable waits on many clients' descriptors at once", function()
    local core = require "zcrm.core"
    local a, b = new_client(emu), new_client(emu)
    local fds = { a:pollfd(), b:pollfd() }
    -- nothing in flight: nothing to read, the wait runs out
    assert.is_false(core.wait_readable(fds, 0.01))
    local req = b:submit("get_modules")
    b:poll(0) -- the request is sent; its answer comes 200 ms later
    while not req:done() do
      -- wakes for b's answer, though a has nothing to read
      assert.is_true(core.wait_readable(fds, 30))
      b:poll(0)
    end
    assert.is_table((req:result()))
    assert.is_false(core.wait_readable({}, 0))
    assert.has_error(function() core.wait_readable({ "x" }, 0) end)
    assert.has_error(function() core.wait_readable({ -1 }, 0) end)
    a:close()
    b:close()
  end)

  it("counts pending requests and gives no timeout when idle", function()
    local client = new_client(emu)
    assert.equal(0, client:pending())
    assert.is_nil(client:timeout())
    local a, b = client:submit("get_modules"), client:submit("get_profiles")
    assert.equal(2, client:pending())
    assert.is_number(client:timeout())
    b:cancel()
    assert.equal(1, client:pending())
    client:wait(a)
    assert.equal(0, client:pending())
    assert.is_true(client:drain(10))
    assert.is_nil(client:timeout())
    client:close()
  end)
end)
