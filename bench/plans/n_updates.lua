-- A plan of N relabellings, Bulk_Module_1..N (the emulator's --extra-modules),
-- for figure 4 of bench/README.md: zcrm apply bench/plans/n_updates.lua N
return function(ctx)
  local n = math.tointeger(tonumber(ctx.args[1] or "100")) or error("N must be a whole number")
  local plan = {}
  for i = 1, n do
    plan[i] = { module = "Bulk_Module_" .. i, plural_label = "Bench Items " .. i, singular_label = "Bench Item " .. i }
  end
  return plan
end
