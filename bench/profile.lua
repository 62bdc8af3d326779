-- Where an update's instructions go, in two views (bench/README.md, "Profile
-- of the hot path"):
--
-- 1. callgrind (--dump-instr=yes) of bench/zcrm_updates.lua with N updates
--    and with 0, per mode (apply, submit): the difference divided by N, by
--    shared object; the Lua interpreter's share split by what it does (VM,
--    GC, tables, strings, calls, library functions); libc's share split by
--    the object that called into it (the Lua allocator, libcurl, ...); and
--    the C functions that Lua code calls, with their inclusive cost.
-- 2. a count hook (debug.sethook, every 97 VM instructions) on the same run
--    in this process, with the collector stopped: Lua VM samples and bytes
--    allocated, each charged to the innermost zcrm function on the stack.
--
-- usage: lua5.4 bench/profile.lua [N] [apply|submit|both]
-- ZCRM_BENCH_CALLGRIND=/some/prefix keeps the callgrind files.
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local emulator = require "spec.support.emulator"
local support = require "bench.support"
local quote = emulator.quote

local N = tonumber(arg[1]) or 200
local MODES = (arg[2] == nil or arg[2] == "both") and { "apply", "submit" } or { arg[2] }
local OUT_PREFIX = os.getenv("ZCRM_BENCH_CALLGRIND")
-- ZCRM_BENCH_PROFILE_FROM=/some/prefix: report from files kept earlier, no runs.
-- ZCRM_BENCH_PROFILE_NO_HOOK=1: callgrind only.
local FROM = os.getenv("ZCRM_BENCH_PROFILE_FROM")

-- {==== a callgrind file: self cost per function, call edges with inclusive cost

-- Returns { fns = { [key] = { obj =, name =, self = } }, calls = { { from =, to =, cost = } } }.
local function read_callgrind(path)
  local names = { ob = {}, fl = {}, fn = {} }
  local npos = 1
  local function name(kind, v)
    local id, rest = v:match("^%((%d+)%)%s*(.*)$")
    if id then
      if rest ~= "" then names[kind][id] = rest end
      return names[kind][id]
    end
    return v
  end
  local fns, calls = {}, {}
  local ob, fn, cob, cfn, incall
  local function key(o, f) return (o or "?") .. "\0" .. (f or "?") end
  local function entry(o, f)
    local k = key(o, f)
    local e = fns[k]
    if not e then e = { obj = o, name = f, self = 0 }; fns[k] = e end
    return e
  end
  for line in io.lines(path) do
    local c = line:sub(1, 1)
    if c:match("[%d%+%-%*]") or line:match("^0x") then
      local fields = {}
      for w in line:gmatch("%S+") do fields[#fields + 1] = w end
      local cost = tonumber(fields[npos + 1]) or 0
      if incall then
        calls[#calls + 1] = { from = key(ob, fn), to = key(cob or ob, cfn), cost = cost }
        entry(cob or ob, cfn)
        incall, cob = false, nil
      else
        local e = entry(ob, fn)
        e.self = e.self + cost
      end
    else
      local k, v = line:match("^(%a+)=(.*)$")
      if k == "ob" then ob = name("ob", v)
      elseif k == "fn" then fn = name("fn", v):gsub("'%d+$", ""); cob = nil
      elseif k == "cob" then cob = name("ob", v)
      elseif k == "cfn" then cfn = name("fn", v):gsub("'%d+$", "")
      elseif k == "calls" then incall = true
      elseif k == "fl" or k == "fi" or k == "fe" or k == "cfi" or k == "cfl" then name("fl", v)
      elseif line:match("^positions:") then
        npos = select(2, line:gsub("%S+", "")) - 1
      end
    end
  end
  return { fns = fns, calls = calls }
end

local function objname(o) return o and (o:match("([^/]+)$") or o) or "?" end

local function is_lua_obj(o) return o == "lua5.4" or o == "lua-prof" or o:match("^liblua5%.4%.so") ~= nil end

-- }====

-- {==== grouping

local function vm_group(name)
  if name:match("^luaV_") then return "VM (luaV_execute, arithmetic, compare)" end
  if name:match("^luaC_") or name:match("^sweep") or name:match("^propagate") or name:match("^mark")
     or name:match("^reallymark") or name:match("^traverse") or name:match("^freeobj") or name:match("^atomic")
     or name:match("^singlestep") or name:match("^clear") or name:match("^GCTM") or name:match("^udata2finalize")
     or name:match("^entersweep") or name:match("^luaF_free") or name:match("^luaH_free")
     or name:match("^luaE_freethread") or name:match("^work2") or name:match("^remarkupvals")
     or name:match("^convergeephemerons") or name:match("^separatetobefnz") or name:match("^callallpending") then
    return "GC (mark, sweep, free)"
  end
  if name:match("^luaH_") or name:match("^rehash") or name:match("^numusehash") or name:match("^luaH")
     or name:match("^getgeneric") or name:match("^mainposition") or name:match("^insert_") then
    return "tables (luaH_*)"
  end
  if name:match("^luaS_") or name:match("^internshrstr") or name:match("^luaO_") then return "strings (luaS_*, luaO_*)" end
  if name:match("^luaD_") or name:match("^luaE_") or name:match("^luaF_") or name:match("^lua_resume")
     or name:match("^resume") or name:match("^lua_") or name:match("^luaT_") or name:match("^index2")
     or name:match("^moveresults") or name:match("^ccall") or name:match("^precall") then
    return "calls, coroutines, C API (luaD_*, lua_*)"
  end
  if name:match("^luaM_") or name == "l_alloc" then return "allocator glue (luaM_*, l_alloc)" end
  return "library functions (string, table, base, ...)"
end

local function pct(x, t) return t > 0 and 100 * x / t or 0 end

local function report(mode, zn, z0)
  local per_obj, vm, libc_by, libc_obj, cfuncs = {}, {}, {}, {}, {}
  local function diff(k, e)
    local b = z0.fns[k]
    return (e.self - (b and b.self or 0)) / N
  end
  local total = 0
  for k, e in pairs(zn.fns) do
    local d = diff(k, e)
    local o = objname(e.obj)
    per_obj[o] = (per_obj[o] or 0) + d
    total = total + d
    if is_lua_obj(o) then
      local g = vm_group(e.name or "?")
      vm[g] = (vm[g] or 0) + d
    end
  end
  -- Edges into libc from other objects, and from the Lua interpreter into
  -- the C functions that Lua code calls (their inclusive cost).
  local function edges(t, sign)
    for _, c in ipairs(t.calls) do
      local fo, ff = c.from:match("^(.-)%z(.*)$")
      local to, tf = c.to:match("^(.-)%z(.*)$")
      fo, to = objname(fo), objname(to)
      if to:match("^libc%.so") and not fo:match("^libc%.so") and not tf:match("jmp") and ff ~= "(below main)" then
        local who = fo .. " -> " .. tf
        if is_lua_obj(fo) then who = (ff == "l_alloc") and "Lua allocator (l_alloc)" or ("Lua: " .. ff) end
        libc_by[who] = (libc_by[who] or 0) + sign * c.cost / N
        local group = is_lua_obj(fo) and (ff == "l_alloc" and "the Lua allocator" or "Lua, other") or fo
        libc_obj[group] = (libc_obj[group] or 0) + sign * c.cost / N
      end
      if is_lua_obj(fo) and (ff == "precallC" or ff == "luaD_precall") and not is_lua_obj(to) then
        local name = to .. ": " .. tf
        cfuncs[name] = (cfuncs[name] or 0) + sign * c.cost / N
      elseif is_lua_obj(fo) and (ff == "precallC" or ff == "luaD_precall") and is_lua_obj(to) then
        local name = "lua: " .. tf
        cfuncs[name] = (cfuncs[name] or 0) + sign * c.cost / N
      end
    end
  end
  edges(zn, 1)
  edges(z0, -1)
  local function rows(t, limit, min)
    local r = {}
    for k, v in pairs(t) do if v >= (min or 0) then r[#r + 1] = { k, v } end end
    table.sort(r, function(a, b) return a[2] > b[2] end)
    local out = {}
    for i = 1, math.min(limit, #r) do out[i] = r[i] end
    return out
  end
  print(string.format("profile %s: %.1f k instructions per update (callgrind, %d updates minus 0)", mode, total / 1e3, N))
  print(string.format("profile %s: by object", mode))
  for _, r in ipairs(rows(per_obj, 12, total * 0.005)) do
    print(string.format("  %-40s %8.1f k %5.1f%%", r[1], r[2] / 1e3, pct(r[2], total)))
  end
  print(string.format("profile %s: Lua interpreter, by what it does", mode))
  for _, r in ipairs(rows(vm, 12)) do
    print(string.format("  %-40s %8.1f k %5.1f%%", r[1], r[2] / 1e3, pct(r[2], total)))
  end
  print(string.format("profile %s: libc, by calling object (inclusive)", mode))
  for _, r in ipairs(rows(libc_obj, 12, 200)) do
    print(string.format("  %-40s %8.1f k %5.1f%%", r[1], r[2] / 1e3, pct(r[2], total)))
  end
  print(string.format("profile %s: libc, by caller (inclusive)", mode))
  for _, r in ipairs(rows(libc_by, 12, 200)) do
    print(string.format("  %-40s %8.1f k %5.1f%%", r[1], r[2] / 1e3, pct(r[2], total)))
  end
  print(string.format("profile %s: C functions called from Lua (inclusive, per update)", mode))
  for _, r in ipairs(rows(cfuncs, 25, 300)) do
    print(string.format("  %-40s %8.1f k %5.1f%%", r[1], r[2] / 1e3, pct(r[2], total)))
  end
end

-- }====

-- {==== the count-hook sampler (in this process)

local function sample(mode)
  local emu = emulator.start { "--latency-ms", "0", "--concurrency", "1000", "--credits", "100000000",
                               "--extra-modules", tostring(N + 1) }
  local vm, bytes, lines = {}, {}, {}
  local nsamples, nbytes = 0, 0
  local count = collectgarbage("count")
  local getinfo = debug.getinfo
  local function hook()
    local before = collectgarbage("count")
    local where, line
    for level = 2, 40 do
      local info = getinfo(level, "Sl")
      if not info then break end
      if level == 2 then line = info.short_src .. ":" .. info.currentline end
      if info.short_src:match("lua/zcrm/") then
        where = info.short_src:match("lua/(zcrm/.*)$") .. ":" .. info.linedefined
        break
      end
    end
    where = where or "(outside lua/zcrm)"
    nsamples = nsamples + 1
    vm[where] = (vm[where] or 0) + 1
    if line then lines[line] = (lines[line] or 0) + 1 end
    local got = (before - count) * 1024
    bytes[where] = (bytes[where] or 0) + got
    nbytes = nbytes + got
    count = collectgarbage("count")
  end
  -- luacheck: push ignore arg coroutine
  local saved = arg
  for name in pairs(package.loaded) do -- loaded again, with the wrapper below
    if name == "zcrm" or name:match("^zcrm%.") then package.loaded[name] = nil end
  end
  arg = { emu.url, tostring(N), mode, "10" }
  collectgarbage("collect")
  collectgarbage("stop")
  count = collectgarbage("count")
  -- Coroutines do not inherit a hook: each gets its own.
  local create = coroutine.create
  coroutine.create = function(fn)
    local co = create(fn)
    debug.sethook(co, hook, "", 97)
    return co
  end
  debug.sethook(hook, "", 97)
  local ok, err = pcall(dofile, "bench/zcrm_updates.lua")
  debug.sethook()
  coroutine.create = create
  collectgarbage("restart")
  arg = saved
  -- luacheck: pop
  emu:stop()
  assert(ok, err)
  local function top(t, total, limit, unit)
    local r = {}
    for k, v in pairs(t) do r[#r + 1] = { k, v } end
    table.sort(r, function(a, b) return a[2] > b[2] end)
    for i = 1, math.min(limit, #r) do
      print(string.format("  %5.1f%%  %-44s %s", pct(r[i][2], total), r[i][1], unit(r[i][2])))
    end
  end
  print(string.format("profile %s: Lua VM instructions by innermost zcrm function (count hook, %d samples)",
    mode, nsamples))
  top(vm, nsamples, 15, function(v) return string.format("%6.0f VM instr/update", v * 97 / N) end)
  print(string.format("profile %s: Lua VM instructions by line (innermost frame)", mode))
  top(lines, nsamples, 12, function(v) return string.format("%6.0f VM instr/update", v * 97 / N) end)
  print(string.format("profile %s: bytes allocated by innermost zcrm function (%.0f bytes per update)",
    mode, nbytes / N))
  top(bytes, nbytes, 12, function(v) return string.format("%6.0f B/update", v / N) end)
end

-- }====

local sh = support.sh
local have_valgrind = sh("command -v valgrind >/dev/null 2>&1")
if not have_valgrind then print("profile: valgrind is not installed: callgrind part skipped") end
-- The lua5.4 binary is stripped: callgrind runs a twin with the interpreter's symbols.
local LUA = "bench/.build/lua-prof"
if have_valgrind then
  assert(sh("mkdir -p bench/.build && cc -O2 -o " .. LUA .. " bench/lua_prof.c -I/usr/include/lua5.4 -Wl,-E "
    .. "/usr/lib/x86_64-linux-gnu/liblua5.4.a -lm -ldl"), "cannot build " .. LUA .. " (needs liblua5.4-dev)")
end
local tmp = os.tmpname()
for _, mode in ipairs(MODES) do
  if FROM then
    report(mode, read_callgrind(FROM .. "." .. mode .. "-" .. N .. ".callgrind"),
      read_callgrind(FROM .. "." .. mode .. "-0.callgrind"))
  elseif have_valgrind then
    local emu = emulator.start { "--latency-ms", "0", "--concurrency", "1000", "--credits", "100000000",
                                 "--extra-modules", tostring(N + 1) }
    local files = {}
    for _, n in ipairs { N, 0 } do
      local out = (OUT_PREFIX or tmp) .. "." .. mode .. "-" .. n .. ".callgrind"
      emu:reset()
      local cmd = string.format("valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=%s "
        .. "%s bench/zcrm_updates.lua %s %d %s 10 >%s.log 2>&1", quote(out), LUA, quote(emu.url), n, mode, quote(tmp))
      assert(sh(cmd), "callgrind run failed: see " .. tmp .. ".log")
      files[n] = out
    end
    emu:stop()
    report(mode, read_callgrind(files[N]), read_callgrind(files[0]))
    if not OUT_PREFIX then for _, f in pairs(files) do os.remove(f) end end
    os.remove(tmp .. ".log")
  end
  if not FROM and not os.getenv("ZCRM_BENCH_PROFILE_NO_HOOK") then sample(mode) end
end
os.remove(tmp)
