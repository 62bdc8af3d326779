-- Applies one plan to several orgs at once with zcrm.apply_orgs: the plan is
-- first checked against every org (state read, dry run with diff, so label
-- collisions and unknown profiles show up in any org before any org is
-- changed), then applied to all of them concurrently, each with its own
-- journal (an audit record) and undo plan in the current directory
-- (ORG.journal, ORG-undo-TIME.lua: an undo plan is never written over an older
-- one). Run it again after a failure: the diff against each org's state skips
-- what completed.
-- `zcrm apply PLAN.lua --orgs ORGS.lua` does the same from the command line.
--
-- Usage (from the repo root, after `make`):
--   lua5.4 examples/plans/multi_org.lua ORGS.lua [PLAN.lua]
-- ORGS.lua returns { { name =, region =, options = <zcrm.new options> }, ... }
-- (see orgs.example.lua); PLAN.lua defaults to regional_labels.lua, which gets
-- ctx.args = { org = name, region = region }. To try it on two local emulators:
--   bin/zcrm-emulator --port 8642 & bin/zcrm-emulator --port 8643 &
--   ZOHO_ACCESS_TOKEN=emulator-token lua5.4 examples/plans/multi_org.lua examples/plans/orgs.example.lua
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path -- the repo's copy, if run from its root
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local orgs_file = arg[1] or error("usage: lua5.4 multi_org.lua ORGS.lua [PLAN.lua]")
local plan_file = arg[2] or (here .. "/regional_labels.lua")
local orgs = dofile(orgs_file)

local function fail(name, err)
  io.stderr:write(string.format("%s: %s%s\n", name, tostring(err),
    zcrm.is_error(err) and err.resolution and (" (hint: " .. err.resolution .. ")") or ""))
  if zcrm.is_error(err) and err.details and err.details.errors then
    for _, e in ipairs(err.details.errors) do
      io.stderr:write(string.format("  entry %d (%s): %s\n", e.index, tostring(e.module), tostring(e.error)))
    end
  end
end

local result, err = zcrm.apply_orgs(orgs, plan_file, {
  journal = "{org}.journal", undo_file = "{org}-undo-" .. os.date("!%Y%m%dT%H%M%SZ") .. ".lua",
  on_plan = function(r)
    for _, o in ipairs(r.orgs) do
      print(string.format("%-10s checked: %d change(s), %d entry(ies) already as planned",
        o.name, #o.checked.would_send, #o.checked.skipped))
    end
  end,
})
if not result then
  for _, o in ipairs(err.details and err.details.orgs or {}) do fail(o.org, o.error) end
  fail("plan", err)
  os.exit(2)
end
for _, o in ipairs(result.orgs) do
  local report = o.report
  if not report then
    fail(o.name, o.error)
  else
    print(string.format("%-10s applied %d, skipped %d, failed %d; %d credits; undo: %s",
      o.name, #report.applied, #report.skipped, #report.failed, report.credits, report.undo_file))
    for _, f in ipairs(report.failed) do fail(o.name .. ": entry " .. f.index .. " (" .. f.module .. ")", f.error) end
  end
end
os.exit(result.ok and 0 or 1)
