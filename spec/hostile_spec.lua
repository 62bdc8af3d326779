-- Hostile inputs against zcrm: a server that lies, another local user who can
-- plant files, a Lua script that abuses the API (collector, finalizers,
-- embedded NULs). Each case is an attack that once worked; see the README's
-- "Security" section.
local core = require "zcrm.core"
local files = require "spec.support.files"

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

local function fails(code, ...)
  local v, err = ...
  assert.is_nil(v)
  assert.is_true(core.is_error(err), "expected an error object, got " .. tostring(err))
  assert.equal(code, err.code, tostring(err))
  return err
end

-- {==== files a local user could plant links at

describe("files opened by zcrm", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() sh("rm -rf " .. quote(dir)) end)

  it("open_file creates new files with mode 0600 and works like io.open's files", function()
    local f = assert(core.open_file(dir .. "/j", "a"))
    assert.equal("file", io.type(f))
    assert.is_true(f:write("one\n") == f)
    assert.is_true(f:close())
    f = assert(core.open_file(dir .. "/j", "a"))
    f:write("two\n")
    f:close()
    assert.equal("one\ntwo\n", files.read(dir .. "/j"))
    assert.equal(6 * 64, core.file_mode(dir .. "/j"))
    f = assert(core.open_file(dir .. "/j", "w"))
    f:write("new")
    f:close()
    assert.equal("new", files.read(dir .. "/j"))
    f = assert(core.open_file(dir .. "/j", "r"))
    assert.equal("new", f:read("a"))
    f:close()
  end)

  it("open_file never follows a symbolic link, in any mode", function()
    files.write(dir .. "/victim", "precious")
    assert(sh("ln -s " .. quote(dir .. "/victim") .. " " .. quote(dir .. "/link")))
    for _, mode in ipairs { "w", "wx", "a", "r" } do
      local err = fails("FILE_ERROR", core.open_file(dir .. "/link", mode))
      assert.equal("io", err.kind)
      assert.matches(mode == "wx" and "File exists" or "symbolic link", err.message)
      assert.equal(dir .. "/link", err.details.path)
    end
    assert.equal("precious", files.read(dir .. "/victim"))
  end)

  it("open_file 'wx' refuses an existing file and names the path and the cause", function()
    files.write(dir .. "/x", "")
    local err = fails("FILE_ERROR", core.open_file(dir .. "/x", "wx"))
    assert.matches("/x: File exists", err.message, 1, true)
  end)

  it("a path with an embedded NUL is an error, not a shorter path", function()
    fails("FILE_ERROR", core.open_file(dir .. "/t\0.json", "w"))
    fails("FILE_ERROR", core.write_private_file(dir .. "/t\0.json", "secret"))
    fails("FILE_ERROR", core.file_mode(dir .. "/t\0.json"))
    assert.is_nil(files.read(dir .. "/t"))
  end)

  it("write_private_file writes through no planted temporary file or link", function()
    local target = dir .. "/cache.json"
    files.write(dir .. "/attacker", "mine")
    -- the names the old code used: <path>.tmp.<pid> and <path>.tmp
    local p = io.popen("echo $PPID")
    local pid = p:read("l")
    p:close()
    for _, name in ipairs { target .. ".tmp." .. pid, target .. ".tmp" } do
      assert(sh("ln -s " .. quote(dir .. "/attacker") .. " " .. quote(name)))
    end
    assert.is_true(core.write_private_file(target, "token=abc"))
    assert.equal("mine", files.read(dir .. "/attacker"))
    assert.equal("token=abc", files.read(target))
    assert.equal(6 * 64, core.file_mode(target))
  end)

  it("write_private_file replaces a link at the path itself, not its target", function()
    files.write(dir .. "/victim", "precious")
    assert(sh("ln -s " .. quote(dir .. "/victim") .. " " .. quote(dir .. "/cache")))
    assert.is_true(core.write_private_file(dir .. "/cache", "new"))
    assert.equal("precious", files.read(dir .. "/victim"))
    assert.equal("new", files.read(dir .. "/cache"))
  end)

  it("write_private_file leaves no temporary file behind", function()
    assert.is_true(core.write_private_file(dir .. "/a", "1"))
    local p = io.popen("ls -A " .. quote(dir))
    local names = p:read("a")
    p:close()
    assert.equal("a\n", names)
  end)
end)

-- }====

-- {==== sleeps

describe("core.sleep", function()
  it("takes NaN, infinities and negatives without undefined behaviour", function()
    core.sleep(0 / 0)
    core.sleep(-math.huge)
    core.sleep(-1)
    core.sleep(1e-9)
  end)
end)

-- }====
