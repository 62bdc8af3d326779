-- A plan built from a spreadsheet: one row per module, with the columns
--   module, plural_label, singular_label, grant, revoke
-- where grant and revoke hold profile names separated by ';' and an empty cell
-- leaves that field as it is. The plan is a function of the context that zcrm
-- passes it (ctx.args: the extra arguments of `zcrm apply`; ctx.path: a file
-- beside this plan; ctx.read_csv: an RFC 4180 reader).
--
-- Usage:
--   bin/zcrm validate examples/plans/from_csv.lua                # uses labels.csv beside it
--   bin/zcrm apply examples/plans/from_csv.lua my-labels.csv

local function names(cell, revoke)
  local list = {}
  for name in (cell or ""):gmatch("[^;]+") do
    name = name:match("^%s*(.-)%s*$")
    if name ~= "" then list[#list + 1] = { name = name, _delete = revoke or nil } end
  end
  return list
end

local function blank_to_nil(s)
  if s == nil or s:match("^%s*$") then return nil end
  return s
end

return function(ctx)
  local path = ctx.args[1] or ctx.path("labels.csv")
  local rows, err = ctx.read_csv(path)
  if not rows then error("cannot read " .. path .. ": " .. tostring(err)) end
  local plan = {}
  for _, row in ipairs(rows) do
    local entry = {
      module = row.module,
      plural_label = blank_to_nil(row.plural_label),
      singular_label = blank_to_nil(row.singular_label),
    }
    local profiles = names(row.grant)
    for _, p in ipairs(names(row.revoke, true)) do profiles[#profiles + 1] = p end
    if #profiles > 0 then entry.profiles = profiles end
    plan[#plan + 1] = entry
  end
  return plan
end
