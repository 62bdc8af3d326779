--- The access report: which profiles can reach which custom modules.
--
-- `client:report()` reads the matrix (every custom module by every profile)
-- through the API; `compare` lists how several orgs' matrices differ;
-- `html` writes one self-contained page (inline CSS, no script, nothing
-- fetched from the network) with the matrices side by side and every
-- difference highlighted and listed. Every string a server sent is
-- HTML-escaped there.
-- @module zcrm.report

local export = require "zcrm.plan.export"

local M = {}

--- Reads the access matrix of the client's org.
-- @function Client:report
-- @tparam[opt] table opts `org`: a name to show for the org
-- @treturn table|nil `{ org =, api_domain =, read_at = "YYYY-MM-DDThh:mm:ssZ",
-- profiles = { { id =, name = }, ... }, modules = { { api_name =, id =,
-- plural_label =, singular_label =, access = { [profile name] = boolean } }, ... } }`
-- (modules sorted by API name, profiles in the server's order), or nil and a `zcrm.error`
function M.report(client, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("report: opts must be a table", 2) end
    for k, v in pairs(opts) do
      if k ~= "org" or type(v) ~= "string" then error("report: the one option is org = NAME (a string)", 2) end
    end
  end
  local profiles, perr = client:get_profiles()
  if not profiles then return nil, perr end
  local custom, err = export.read_custom_modules(client)
  if not custom then return nil, err end
  local columns, known, by_id = {}, {}, {}
  for _, p in ipairs(profiles) do
    if type(p) == "table" and p.id ~= nil and type(p.name) == "string" then by_id[tostring(p.id)] = p.name end
  end
  -- A module's profile is its column by id (the name a module list carries may lag a rename).
  local function column(p)
    local name = type(p) == "table" and (p.id ~= nil and by_id[tostring(p.id)] or p.name or p.id)
    if type(name) ~= "string" then return nil end
    if not known[name] then
      known[name] = true
      columns[#columns + 1] = { id = p.id, name = name }
    end
    return name
  end
  for _, p in ipairs(profiles) do column(p) end
  local rows = {}
  for _, m in ipairs(custom) do
    local with = {}
    for _, p in ipairs(m.profiles) do
      local name = column(p)
      if name then with[name] = true end
    end
    rows[#rows + 1] = { api_name = m.api_name, id = m.id,
      plural_label = m.actual_plural_label or m.plural_label, singular_label = m.actual_singular_label or m.singular_label,
      access = with }
  end
  for _, row in ipairs(rows) do
    for _, c in ipairs(columns) do row.access[c.name] = row.access[c.name] == true end
  end
  table.sort(rows, function(a, b) return a.api_name < b.api_name end)
  return { org = opts and opts.org, api_domain = client.api_domain, read_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
           profiles = columns, modules = rows }
end

local function org_name(r, i) return r.org or r.api_domain or ("org " .. i) end

--- How several orgs' reports differ.
-- @tparam table reports a list of reports (from `Client:report`), each with a distinct `org`
-- @treturn table a list of differences, each `{ kind = "module"|"profile"|"label"|"access",
-- module =, profile =, field = ("plural_label"|"singular_label", for labels),
-- values = { [org] = value } }` (a module or profile an org lacks: false)
function M.compare(reports)
  local diffs = {}
  local names, mods, mod_order, profs, prof_order = {}, {}, {}, {}, {}
  for i, r in ipairs(reports) do
    names[i] = org_name(r, i)
    for _, p in ipairs(r.profiles) do
      if not profs[p.name] then profs[p.name] = {}; prof_order[#prof_order + 1] = p.name end
      profs[p.name][i] = true
    end
    for _, m in ipairs(r.modules) do
      if not mods[m.api_name] then mods[m.api_name] = {}; mod_order[#mod_order + 1] = m.api_name end
      mods[m.api_name][i] = m
    end
  end
  table.sort(mod_order)
  local function values(get)
    local v, first, differs = {}, nil, false
    for i = 1, #reports do
      local x = get(i)
      v[names[i]] = x
      if i == 1 then first = x elseif x ~= first then differs = true end
    end
    return differs and v
  end
  for _, p in ipairs(prof_order) do
    local v = values(function(i) return profs[p][i] == true end)
    if v then diffs[#diffs + 1] = { kind = "profile", profile = p, values = v } end
  end
  for _, name in ipairs(mod_order) do
    local per = mods[name]
    local v = values(function(i) return per[i] ~= nil end)
    if v then
      diffs[#diffs + 1] = { kind = "module", module = name, values = v }
    else
      for _, field in ipairs { "plural_label", "singular_label" } do
        local lv = values(function(i) return per[i][field] end)
        if lv then diffs[#diffs + 1] = { kind = "label", module = name, field = field, values = lv } end
      end
      for _, p in ipairs(prof_order) do
        local all = true
        for i = 1, #reports do all = all and profs[p][i] == true end
        local av = all and values(function(i) return per[i].access[p] end)
        if av then diffs[#diffs + 1] = { kind = "access", module = name, profile = p, values = av } end
      end
    end
  end
  return diffs
end

--- Marks of the differences, for highlighting: key -> true, where key is
-- `module \0 profile` (a cell), `module \0 field` (a label), `module` (a row)
-- or `\0 profile` (a column).
-- @tparam table diffs from `compare`
-- @treturn table
-- @local
function M.marks(diffs)
  local marks = {}
  for _, d in ipairs(diffs) do
    if d.kind == "access" then marks[d.module .. "\0" .. d.profile] = true
    elseif d.kind == "label" then marks[d.module .. "\0" .. d.field] = true
    elseif d.kind == "module" then marks[d.module] = true
    else marks["\0" .. d.profile] = true end
  end
  return marks
end

--- One line describing a difference (plain text, server strings as given).
-- @tparam table d a difference from `compare`
-- @tparam table orgs the org names in order
-- @treturn string
-- @local
function M.describe(d, orgs)
  local parts = {}
  for _, o in ipairs(orgs) do
    local v = d.values[o]
    if d.kind == "access" then v = v and "access" or "no access"
    elseif d.kind ~= "label" then v = v and "present" or "missing" end
    parts[#parts + 1] = string.format("%s: %s", o, v)
  end
  local what = d.kind == "access" and string.format("%s, profile %s", d.module, d.profile)
    or d.kind == "label" and string.format("%s, %s", d.module, d.field:gsub("_", " "))
    or d.kind == "module" and string.format("module %s", d.module)
    or string.format("profile %s", d.profile)
  return what .. ": " .. table.concat(parts, "; ")
end

-- {==== HTML

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- Text as HTML: `& < > " '` escaped; control bytes and invalid UTF-8
-- become U+FFFD, so nothing a server sends can open markup or end a string.
-- @tparam any s
-- @treturn string
-- @local
function M.escape(s)
  s = tostring(s)
  if not utf8.len(s) then
    local fixed, pos = {}, 1
    while pos <= #s do
      local len, bad = utf8.len(s, pos)
      if len then fixed[#fixed + 1] = s:sub(pos); break end
      fixed[#fixed + 1] = s:sub(pos, bad - 1) .. "\u{FFFD}"
      pos = bad + 1
    end
    s = table.concat(fixed)
  end
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", "\u{FFFD}")
  return (s:gsub("[&<>\"']", ESCAPES))
end

local CSS = [[
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:24px;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 2px}
.meta{color:#57606a;margin:0 0 10px;font-size:12px}
.orgs{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.org{break-inside:avoid}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:center}
th.module,td.module{text-align:left}
thead th{background:#f6f8fa;vertical-align:bottom}
th.profile{max-width:9em;overflow-wrap:break-word;font-weight:600}
td.yes{background:#dafbe1;color:#116329}td.no{color:#8c959f}
.label{color:#57606a;font-size:12px;font-weight:normal}
.diff{outline:2px solid #cf222e;outline-offset:-2px;background:#ffebe9!important}
tr.diff td.module{background:#ffebe9}
ul.diffs{padding-left:20px}ul.diffs li{margin:2px 0}
.key{font-size:12px;color:#57606a}
.same{color:#116329}
@media print{body{margin:8mm}.orgs{gap:12px}table{font-size:10px}
td.yes,.diff,tr.diff td.module{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
]]

local function matrix_html(r, i, marks, buf)
  local name = org_name(r, i)
  buf[#buf + 1] = '<section class="org">'
  buf[#buf + 1] = string.format("<h2>%s</h2>", M.escape(name))
  buf[#buf + 1] = string.format('<p class="meta">%s &middot; read %s &middot; %d custom modules, %d profiles</p>',
    M.escape(r.api_domain or ""), M.escape(r.read_at or ""), #r.modules, #r.profiles)
  buf[#buf + 1] = '<table><thead><tr><th class="module" scope="col">Module (API name, labels)</th>'
  for _, p in ipairs(r.profiles) do
    buf[#buf + 1] = string.format('<th class="profile%s" scope="col">%s</th>', marks["\0" .. p.name] and " diff" or "",
      M.escape(p.name))
  end
  buf[#buf + 1] = "</tr></thead><tbody>"
  for _, m in ipairs(r.modules) do
    local mark = function(field) return marks[m.api_name .. "\0" .. field] and ' class="diff"' or "" end
    buf[#buf + 1] = string.format('<tr%s><th class="module" scope="row">%s<br><span class="label">'
      .. '<span%s>%s</span> / <span%s>%s</span></span></th>', marks[m.api_name] and ' class="diff"' or "",
      M.escape(m.api_name), mark("plural_label"), M.escape(m.plural_label or ""),
      mark("singular_label"), M.escape(m.singular_label or ""))
    for _, p in ipairs(r.profiles) do
      local yes = m.access[p.name]
      buf[#buf + 1] = string.format('<td class="%s%s" title="%s">%s</td>', yes and "yes" or "no",
        marks[m.api_name .. "\0" .. p.name] and " diff" or "",
        M.escape(p.name .. (yes and ": access" or ": no access")), yes and "&#10003;" or "&middot;")
    end
    buf[#buf + 1] = "</tr>"
  end
  buf[#buf + 1] = "</tbody></table></section>"
end

--- The report as one self-contained HTML page: inline CSS, no script, no
-- resource from the network; readable without JavaScript and printable.
-- @tparam table reports a list of reports (one org, or several side by side)
-- @tparam[opt] table diffs from `compare` (several orgs)
-- @treturn string the page
function M.html(reports, diffs)
  diffs = diffs or {}
  local marks = M.marks(diffs)
  local orgs = {}
  for i, r in ipairs(reports) do orgs[i] = org_name(r, i) end
  local title = "Module access: " .. table.concat(orgs, ", ")
  local buf = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    -- Nothing but this page's own style may load or run.
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
    string.format("<title>%s</title><style>%s</style></head><body>", M.escape(title), CSS),
    string.format("<h1>%s</h1>", M.escape(title)),
    '<p class="key">Custom modules (rows) by profiles (columns): &#10003; access, &middot; none.'
      .. (#reports > 1 and " Differences between the orgs are outlined in red and listed below." or "") .. "</p>",
    '<div class="orgs">' }
  for i, r in ipairs(reports) do matrix_html(r, i, marks, buf) end
  buf[#buf + 1] = "</div>"
  if #reports > 1 then
    buf[#buf + 1] = string.format("<h2>Differences (%d)</h2>", #diffs)
    if #diffs == 0 then
      buf[#buf + 1] = '<p class="same">The orgs have the same custom modules, labels and access.</p>'
    else
      buf[#buf + 1] = '<ul class="diffs">'
      for _, d in ipairs(diffs) do buf[#buf + 1] = "<li>" .. M.escape(M.describe(d, orgs)) .. "</li>" end
      buf[#buf + 1] = "</ul>"
    end
  end
  buf[#buf + 1] = "</body></html>\n"
  return table.concat(buf, "\n")
end

-- }====

return M
