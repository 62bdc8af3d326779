--- Plans: bulk apply (issue 6). Placeholder until the plan work lands.
local M = {}
function M.apply()
  error("zcrm: client:apply is not implemented yet", 2)
end
return M
