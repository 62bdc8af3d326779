--- Loading plans: a Lua list, a function of a context returning one, or a
-- plan file (a Lua file returning either); CSV files for plans built from
-- spreadsheets.
-- @module zcrm.plan.load

local util = require "zcrm.util"
local options = require "zcrm.options"
local check = require "zcrm.plan.check"

local plan_error = check.plan_error

local M = {}

-- {==== loading plans

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve_path(dir, path)
  if path:sub(1, 1) == "/" or not dir then return path end
  return dir .. "/" .. path
end

-- A CSV parser for RFC 4180 files: quoted fields, "" inside quotes, CRLF or LF.
function M.parse_csv(text)
  local rows, row, pos, len = {}, {}, 1, #text
  while true do
    local value
    if text:sub(pos, pos) == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = text:find('"', i, true)
        if not q then return nil, string.format("record %d: unterminated quoted field", #rows + 1) end
        parts[#parts + 1] = text:sub(i, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = '"'
          i = q + 2
        else
          pos = q + 1
          break
        end
      end
      value = table.concat(parts)
    else
      local stop = text:find("[,\r\n]", pos) or len + 1
      value = text:sub(pos, stop - 1)
      pos = stop
    end
    row[#row + 1] = value
    local sep = text:sub(pos, pos)
    if sep == "," then
      pos = pos + 1
    elseif sep == "\r" or sep == "\n" or sep == "" then
      pos = pos + ((text:sub(pos, pos + 1) == "\r\n") and 2 or #sep)
      if not (#row == 1 and row[1] == "") then rows[#rows + 1] = row end -- blank line
      row = {}
      if pos > len then break end
    else
      return nil, string.format("record %d: text after a closing quote", #rows + 1)
    end
  end
  return rows
end

--- read_csv(path) -> list of records keyed by the header row's names, or nil, message.
function M.read_csv(path)
  local okp, nul = options.check_path(path, "path")
  if not okp then return nil, nul.message end
  local f, oerr = io.open(path, "rb")
  if not f then return nil, oerr end
  local text = f:read("a")
  f:close()
  text = text:gsub("^\239\187\191", "") -- a BOM from spreadsheet exports
  local rows, perr = M.parse_csv(text)
  if not rows then return nil, path .. ": " .. perr end
  local header = rows[1] or {}
  local records = {}
  for r = 2, #rows do
    local rec = {}
    for j, name in ipairs(header) do
      rec[(name:gsub("^%s+", ""):gsub("%s+$", ""))] = rows[r][j]
    end
    records[#records + 1] = rec
  end
  return records
end

-- What a plan function receives: client (absent offline), dir (the plan file's
-- directory), args, read_csv, and path(p) for a file beside the plan.
local function context(ctx)
  local c = util.copy(ctx)
  c.args = c.args or {}
  c.read_csv = M.read_csv
  c.path = function(p) return resolve_path(c.dir, p) end
  return c
end

--- build(plan, ctx) -> list, or nil, err. A plan is a list of entries, or a
-- function(ctx) returning one; see `context` for what ctx holds.
function M.build(plan, ctx)
  if type(plan) == "function" then
    local ok, list, ferr = pcall(plan, context(ctx))
    if not ok then
      return nil, plan_error("INVALID_PLAN", "the plan function raised: " .. tostring(list), nil, nil,
        "Fix the plan function where the message points (file:line); nothing was sent.")
    end
    if list == nil and ferr ~= nil then
      return nil, plan_error("INVALID_PLAN", "the plan function failed: " .. tostring(ferr))
    end
    plan = list
  end
  if type(plan) ~= "table" then
    return nil, plan_error("INVALID_PLAN", "a plan is a list of entries (or a function returning one), got " .. type(plan))
  end
  return plan
end

--- load(path, ctx) -> list, or nil, err: runs a plan file (a Lua file returning
-- a list, or a function of ctx); ctx.dir defaults to the file's directory.
function M.load(path, ctx)
  -- io.open and loadfile would read the path up to a NUL byte: another file.
  local okp, perr = options.check_path(path, "plan")
  if not okp then return nil, perr end
  local f, oerr = io.open(path, "rb")
  if not f then
    return nil, plan_error("INVALID_PLAN", "cannot read plan: " .. tostring(oerr), nil, nil,
      "Check the plan file's name and path (relative paths start from the current directory).")
  end
  f:close()
  local chunk, lerr = loadfile(path, "t")
  if not chunk then
    return nil, plan_error("INVALID_PLAN", "syntax error in " .. tostring(lerr), nil, nil,
      "Fix the Lua syntax at the file:line shown; the file must return a list of entries or a function.")
  end
  local ok, value = pcall(chunk)
  if not ok then
    return nil, plan_error("INVALID_PLAN", "plan file raised: " .. tostring(value), nil, nil,
      "Fix the error at the file:line shown; the plan file ran and raised it.")
  end
  local c = util.copy(ctx)
  c.dir = c.dir or dirname(path)
  return M.build(value, c)
end

-- }====

return M
