-- Prints the figures of `make coverage`: line coverage of lua/zcrm/ (from the
-- counts spec/support/coverage.lua wrote) and of the C core (from lcov's
-- tracefile), each with its least-covered functions.
--
-- Usage: lua5.4 spec/support/coverage_report.lua COVERAGE_DIR
-- (COVERAGE_DIR/lua/*.cov and COVERAGE_DIR/core.info; run from the repo root)

local dir = assert(arg[1], "usage: coverage_report.lua COVERAGE_DIR")
local WORST = tonumber(os.getenv("COVERAGE_WORST") or "") or 10

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end

local function pct(hit, total)
  return total == 0 and 100 or 100 * hit / total
end

-- Functions sorted by coverage, least first; ties: the larger first.
local function print_worst(funcs, n)
  table.sort(funcs, function(a, b)
    local pa, pb = pct(a.hit, a.total), pct(b.hit, b.total)
    if pa ~= pb then return pa < pb end
    return a.total > b.total
  end)
  for i = 1, math.min(n, #funcs) do
    local f = funcs[i]
    print(string.format("    %5.1f%%  %3d/%-3d  %s", pct(f.hit, f.total), f.hit, f.total, f.name))
  end
end

-- {==== Lua

-- Executable lines per function, from the compiler's listing: every
-- instruction's line, but for the return the compiler adds at each function's
-- end (it runs only when control falls off the end).
local function lua_functions(path)
  local source = read_lines(path)
  local funcs, cur = {}, nil
  local function close()
    if cur and cur.last then
      local line = cur.last
      cur.count[line] = cur.count[line] - 1
      if cur.count[line] == 0 then cur.lines[line] = nil end
    end
  end
  for _, l in ipairs(lines_of("luac5.4 -l -l -p " .. path)) do
    local kind, first = l:match("^(%a+) <[^:]+:(%d+),%d+>")
    if kind then
      close()
      first = tonumber(first)
      local text = source[first] or ""
      local name = kind == "main" and "(main chunk)"
        or text:match("function%s+([%w_.:]+)") or text:match("([%w_.]+)%s*=%s*function")
        or ("function at line " .. first)
      cur = { name = string.format("%s:%d %s", path, first, name), lines = {}, count = {} }
      funcs[#funcs + 1] = cur
    else
      local line = l:match("^%s+%d+%s+%[(%d+)%]")
      if line and cur then
        line = tonumber(line)
        cur.lines[line] = true
        cur.count[line] = (cur.count[line] or 0) + 1
        cur.last = line
      end
    end
  end
  close()
  return funcs
end

local function lua_report()
  local hits = {} -- path -> { [line] = true }
  for _, file in ipairs(lines_of("ls " .. dir .. "/lua/*.cov 2>/dev/null")) do
    for l in io.lines(file) do
      local path, line = l:match("^(%S+) (%d+) %d+$")
      if path then
        hits[path] = hits[path] or {}
        hits[path][tonumber(line)] = true
      end
    end
  end
  local all, per_file = {}, {}
  local total, hit = 0, 0
  for _, path in ipairs(lines_of("find lua -name '*.lua' | sort")) do
    local seen, h = {}, hits[path] or {}
    local ftotal, fhit = 0, 0
    for _, f in ipairs(lua_functions(path)) do
      f.total, f.hit = 0, 0
      for line in pairs(f.lines) do
        f.total = f.total + 1
        if h[line] then f.hit = f.hit + 1 end
        if not seen[line] then
          seen[line] = true
          ftotal = ftotal + 1
          if h[line] then fhit = fhit + 1 end
        end
      end
      if f.total > 0 then all[#all + 1] = f end
    end
    per_file[#per_file + 1] = string.format("    %5.1f%%  %4d/%-4d  %s", pct(fhit, ftotal), fhit, ftotal, path)
    total, hit = total + ftotal, hit + fhit
  end
  print(string.format("coverage: Lua (lua/): %.1f%% of lines (%d of %d)", pct(hit, total), hit, total))
  for _, line in ipairs(per_file) do print(line) end
  print(string.format("  least-covered Lua functions:"))
  print_worst(all, WORST)
end

-- }====

-- {==== C (lcov tracefile)

local function c_report()
  local info = dir .. "/core.info"
  local f = io.open(info)
  if not f then print("coverage: C: no " .. info); return end
  f:close()
  local funcs, file_funcs = {}, nil
  local total, hit = 0, 0
  local lines
  for l in io.lines(info) do
    local sf = l:match("^SF:(.*)$")
    if sf then
      file_funcs, lines = {}, {}
      file_funcs.path = sf:match("(csrc/.*)$") or sf
    end
    local start, name = l:match("^FN:(%d+),(.+)$")
    if start then file_funcs[#file_funcs + 1] = { start = tonumber(start), name = name } end
    local line, count = l:match("^DA:(%d+),(%d+)")
    if line then lines[#lines + 1] = { tonumber(line), tonumber(count) } end
    if l == "end_of_record" then
      table.sort(file_funcs, function(a, b) return a.start < b.start end)
      for _, fn in ipairs(file_funcs) do fn.total, fn.hit = 0, 0 end
      for _, d in ipairs(lines) do
        total, hit = total + 1, hit + (d[2] > 0 and 1 or 0)
        local owner
        for _, fn in ipairs(file_funcs) do
          if fn.start <= d[1] then owner = fn else break end
        end
        if owner then
          owner.total = owner.total + 1
          if d[2] > 0 then owner.hit = owner.hit + 1 end
        end
      end
      for _, fn in ipairs(file_funcs) do
        if fn.total > 0 then
          funcs[#funcs + 1] = { name = string.format("%s:%d %s", file_funcs.path, fn.start, fn.name),
                                total = fn.total, hit = fn.hit }
        end
      end
    end
  end
  print(string.format("coverage: C core (csrc/): %.1f%% of lines (%d of %d)", pct(hit, total), hit, total))
  for _, l in ipairs(lines_of("lcov --summary " .. info .. " 2>&1")) do
    if l:match("functions%.%.") then print("    " .. l:gsub("^%s+", "")) end
  end
  print("  least-covered C functions:")
  print_worst(funcs, WORST)
end

-- }====

lua_report()
c_report()
