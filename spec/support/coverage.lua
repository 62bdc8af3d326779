-- LUA_INIT_5_4 for `make coverage`: every Lua process of the suite runs this
-- first. It counts the lines of lua/zcrm/ that run (a debug.sethook line
-- hook; luacov is not packaged in Debian) and writes the counts to a file of
-- its own under ZCRM_COVERAGE_DIR when the Lua state closes. When
-- ZCRM_COVERAGE_CORE names a core.so built with --coverage, `require
-- "zcrm.core"` loads that one, so gcov sees the C core run under the specs.
-- spec/support/coverage_report.lua reads what this writes.

local dir = os.getenv("ZCRM_COVERAGE_DIR")
local core = os.getenv("ZCRM_COVERAGE_CORE")
if core then
  package.preload["zcrm.core"] = assert(package.loadlib(core, "luaopen_zcrm_core"))
  package.preload["zcrm.proc"] = assert(package.loadlib(core, "luaopen_zcrm_proc"))
end
if not dir then return end

local getinfo, sethook = debug.getinfo, debug.sethook
local counts = {} -- chunk source -> { [line] = count }, or false for code not ours

local function hook(_, line)
  local src = getinfo(2, "S").source
  local c = counts[src]
  if c == nil then
    c = src:match("lua/zcrm/.+%.lua$") and {} or false
    counts[src] = c
  end
  if c then c[line] = (c[line] or 0) + 1 end
end

-- A Lua hook belongs to one coroutine: each new one gets it too.
local create = coroutine.create
function coroutine.create(f) -- luacheck: ignore 122
  local co = create(f)
  sethook(co, hook, "l")
  return co
end
function coroutine.wrap(f) -- luacheck: ignore 122
  local co = create(f)
  sethook(co, hook, "l")
  return function(...)
    local r = table.pack(coroutine.resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end

local function dump()
  sethook()
  local name = string.format("%s/%d-%s.cov", dir, os.time(), tostring(counts):match("0x(%x+)") or math.random(1 << 30))
  local f = io.open(name, "w")
  if not f then return end
  for src, c in pairs(counts) do
    if c then
      local path = src:match("(lua/zcrm/.+%.lua)$")
      for line, n in pairs(c) do f:write(path, " ", line, " ", n, "\n") end
    end
  end
  f:close()
end

-- Finalizers run when the state closes (the end of a script, os.exit(n, true));
-- the registry keeps the sentinel alive until then.
debug.getregistry()["zcrm.coverage"] = setmetatable({}, { __gc = dump })
sethook(hook, "l")
