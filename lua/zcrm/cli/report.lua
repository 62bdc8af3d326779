--- `zcrm report`: the access matrix (custom modules by profiles) of one org
-- or of several side by side, as a terminal table that fits the width, JSON
-- (--json) or one self-contained HTML page (--out F.html). A thin layer over
-- `client:report` and `zcrm.report` (compare, html).
-- @module zcrm.cli.report

local cjson = require "cjson.safe"
local core = require "zcrm.core"
local proc = require "zcrm.proc"
local util = require "zcrm.util"
local report = require "zcrm.report"
local orgs_mod = require "zcrm.orgs"
local term = require "zcrm.cli.term"
local connection = require "zcrm.cli.connect"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local out, paint, print_error, usage_error, width = term.out, term.paint, term.print_error, term.usage_error, term.width

--- Its entry in the flag table (lua/zcrm/cli/args.lua).
M.COMMANDS = {
  report = {
    summary = "which profiles reach which custom modules", connection = true,
    usage = { { "", flags = { "json" } }, { "--out F.html", literal = true }, { "--orgs ORGS.lua [--json | --out F.html]",
      literal = true }, { "--orgs NAME,NAME... [--json | --out F.html]", literal = true } },
    text = [[
The access matrix of the org: every custom module (rows: API name and labels)
by every profile (columns), X where the profile has access. Read through the
API (every page; 2 calls plus one per module whose profile list was cut short).
]],
    flags = {
      { name = "orgs", value = "ORGS.lua", complete = "file", help = "each org of ORGS.lua (or a comma-separated "
        .. "list of orgs\nstored by zcrm login), side by side, with every difference\n(a module, a label, a profile, "
        .. "a profile's access) marked\n(*) and listed" },
      { name = "out", value = "F.html", complete = "file", help = "write one self-contained HTML page instead "
        .. "(inline CSS, no\nscript, nothing loaded from the network; printable), with\nthe org(s), when each was "
        .. "read and the differences" },
      { name = "json", help = [[the same data as one JSON object: {"orgs":[...],"differences":[...]}]] },
    },
  },
}

-- The orgs of --orgs: ORGS.lua (a file), or stored org names "a,b".
local function orgs_of(flags)
  local value = flags.orgs
  if value:match("%.lua$") or core.file_mode(value) then return connection.connect_orgs(flags) end
  local list = {}
  for name in value:gmatch("[^,]+") do list[#list + 1] = { name = name, options = { org = name } } end
  local clients, err = orgs_mod.connect(require "zcrm", list)
  if not clients then
    print_error({}, nil, err)
    return nil, EXIT_USAGE
  end
  return list, clients
end

-- Reads every org's report, concurrently. Returns the reports, or nil, exit code.
local function read_reports(flags)
  local targets, clients = {}, {}
  if flags.orgs then
    local list, c = orgs_of(flags)
    if not list then return nil, c end
    targets, clients = list, c
  else
    local client, code = connection.connect(flags)
    if not client then return nil, code end
    targets[1], clients[1] = { name = flags.org or client.api_domain }, client
  end
  local results = orgs_mod.each(clients, function(client, i)
    return client:report { org = targets[i].name }
  end)
  local reports, code = {}, EXIT_OK
  for i, r in ipairs(results) do
    clients[i]:close()
    if not r[1] then
      print_error(flags, flags.orgs and ("org " .. targets[i].name) or nil, r[2])
      code = EXIT_FAILED
    end
    reports[i] = r[1]
  end
  if code ~= EXIT_OK then return nil, code end
  return reports
end

-- {==== the terminal table

local function clip(s, n)
  if width(s) <= n then return s end
  local cut = utf8.offset(s, n) or (n + 1)
  return s:sub(1, cut - 1) .. "~"
end

local function pad(s, n) return s .. string.rep(" ", n - width(s)) end

-- Prints one org's matrix within `cols` columns: profile names as headers
-- when they fit, else numbers with a key; the profiles split over several
-- tables when even numbers do not fit.
local function print_matrix(r, marks, cols)
  local names = {}
  for i, p in ipairs(r.profiles) do names[i] = util.printable(p.name) end
  local api_w, label_w = #"MODULE", #"LABELS"
  local rows = {}
  for i, m in ipairs(r.modules) do
    local labels = util.printable(m.plural_label or "") .. " / " .. util.printable(m.singular_label or "")
    if marks[m.api_name .. "\0plural_label"] or marks[m.api_name .. "\0singular_label"] then labels = labels .. " *" end
    rows[i] = { api = util.printable(m.api_name) .. (marks[m.api_name] and " *" or ""), labels = labels, m = m }
    api_w, label_w = math.max(api_w, width(rows[i].api)), math.max(label_w, width(labels))
  end
  local function cells_width(headers)
    local w = 0
    for _, h in ipairs(headers) do w = w + math.max(width(h), 2) + 2 end
    return w
  end
  -- Labels get what the cells leave, up to 40 columns and at least 12 (or
  -- their own width): with full profile names when that leaves enough,
  -- else with numbered profiles and a key.
  local want = math.min(label_w, 40)
  local function labels_room(headers) return cols - api_w - 2 - cells_width(headers) end
  local headers, numbered = names, false
  if labels_room(names) < math.min(want, 12) then
    headers, numbered = {}, true
    for i in ipairs(names) do headers[i] = tostring(i) end
  end
  label_w = math.max(math.min(want, 6), math.min(want, labels_room(headers)))
  -- Profiles per table: as many as fit beside the module columns.
  local room = math.max(cols - api_w - 2 - label_w, 4)
  local from = 1
  while from <= #headers do
    local to, used = from, 0
    while to <= #headers and (used + math.max(width(headers[to]), 2) + 2 <= room or to == from) do
      used = used + math.max(width(headers[to]), 2) + 2
      to = to + 1
    end
    local line = { pad("MODULE", api_w), "  ", pad("LABELS", label_w) }
    for j = from, to - 1 do
      local h = marks["\0" .. r.profiles[j].name] and (headers[j] .. "*") or headers[j]
      line[#line + 1] = "  " .. pad(h, math.max(width(headers[j]), 2))
    end
    out(paint(false, "bold", (table.concat(line):gsub("%s+$", ""))), "\n")
    for _, row in ipairs(rows) do
      line = { pad(row.api, api_w), "  ", pad(clip(row.labels, label_w), label_w) }
      for j = from, to - 1 do
        local name = r.profiles[j].name
        local cell = row.m.access[name] and "X" or "."
        local w = math.max(width(headers[j]), 2)
        if marks[row.m.api_name .. "\0" .. name] then
          line[#line + 1] = "  " .. paint(false, "red", pad(cell .. "*", w))
        else
          line[#line + 1] = "  " .. pad(cell, w)
        end
      end
      out((table.concat(line):gsub("%s+$", "")), "\n")
    end
    from = to
    if from <= #headers then out("\n") end
  end
  if numbered then
    local key = {}
    for i, n in ipairs(names) do key[i] = string.format("%d %s", i, n) end
    out("Profiles: ", table.concat(key, ", "), "\n")
  end
end

local function print_text(reports, diffs, cols)
  local marks = report.marks(diffs)
  for i, r in ipairs(reports) do
    if i > 1 then out("\n") end
    out(paint(false, "bold", util.printable(r.org or r.api_domain)),
      string.format("%s, read %s: %d custom modules, %d profiles\n",
        r.org and r.org ~= r.api_domain and (" (" .. util.printable(r.api_domain) .. ")") or "", r.read_at,
        #r.modules, #r.profiles))
    print_matrix(r, marks, cols)
  end
  if #reports > 1 then
    local orgs = {}
    for i, r in ipairs(reports) do orgs[i] = r.org end
    out("\n", paint(false, "bold", string.format("Differences: %d", #diffs)), "\n")
    for _, d in ipairs(diffs) do out("  ", util.printable(report.describe(d, orgs)), "\n") end
  end
end

-- }====

local function terminal_columns()
  return proc.term_width(1) or math.tointeger(tonumber(os.getenv("COLUMNS") or "")) or 80
end

local function cmd_report(flags)
  if flags.json and flags.out then return usage_error("--json and --out exclude each other", "report") end
  if flags.out and not flags.out:match("%.html?$") then
    return usage_error("--out names an HTML file (F.html)", "report")
  end
  if flags.orgs and flags.org then return usage_error("--orgs and --org exclude each other", "report") end
  local reports, code = read_reports(flags)
  if not reports then return code end
  local diffs = #reports > 1 and report.compare(reports) or {}
  if flags.json then
    -- lua-cjson writes an empty table as {}; these are lists. (A key with
    -- its quotes unescaped cannot occur inside a JSON string.)
    local text = cjson.encode { orgs = reports, differences = diffs }
    text = text:gsub('"(%a+)":{}', function(key)
      if key == "modules" or key == "profiles" or key == "differences" then return '"' .. key .. '":[]' end
    end)
    out(text, "\n")
  elseif flags.out then
    local ok, err = core.write_private_file(flags.out, report.html(reports, diffs))
    if not ok then
      print_error(flags, nil, err)
      return EXIT_FAILED
    end
    out(string.format("Wrote %s: %d org%s%s\n", flags.out, #reports, #reports == 1 and "" or "s",
      #reports > 1 and string.format(", %d differences", #diffs) or ""))
  else
    print_text(reports, diffs, terminal_columns())
  end
  return EXIT_OK
end

M.COMMANDS.report.run = cmd_report

return M
