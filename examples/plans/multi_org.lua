-- Applies one plan to several orgs. Not a plan file but a script: it first
-- checks the plan against every org (a dry run with diff, so label collisions
-- and unknown profiles show up in any org before any org is changed), then
-- applies it org after org, each with its own journal (an audit record) and
-- undo plan in the current directory (ORG.journal, ORG-undo-TIME.lua: an undo
-- plan is never written over an older one). Run it again after a failure: the
-- diff against each org's state skips what completed.
--
-- Usage (from the repo root, after `make`):
--   lua5.4 examples/plans/multi_org.lua ORGS.lua [PLAN.lua]
-- ORGS.lua returns { { name =, region =, options = <zcrm.new options> }, ... }
-- (see orgs.example.lua); PLAN.lua defaults to regional_labels.lua, which gets
-- ctx.args = { org = name, region = region }. To try it on two local emulators:
--   bin/zcrm emulator --port 8642 & bin/zcrm emulator --port 8643 &
--   lua5.4 examples/plans/multi_org.lua examples/plans/orgs.example.lua
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path -- the repo's copy, if run from its root
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local orgs_file = arg[1] or error("usage: lua5.4 multi_org.lua ORGS.lua [PLAN.lua]")
local plan_file = arg[2] or (here .. "/regional_labels.lua")
local orgs = dofile(orgs_file)

local function fail(org, what, err)
  io.stderr:write(string.format("%s: %s: %s%s\n", org.name, what, tostring(err),
    zcrm.is_error(err) and err.resolution and (" (hint: " .. err.resolution .. ")") or ""))
  if zcrm.is_error(err) and err.details and err.details.errors then
    for _, e in ipairs(err.details.errors) do
      io.stderr:write(string.format("  entry %d (%s): %s\n", e.index, tostring(e.module), tostring(e.error)))
    end
  end
end

-- Phase 1: every org accepts the plan, or no org is changed.
local clients = {}
for _, org in ipairs(orgs) do
  local client, err = zcrm.new(org.options)
  if not client then fail(org, "connection settings", err) os.exit(2) end
  local report
  report, err = client:apply(plan_file, { args = { org = org.name, region = org.region }, diff = true, dry_run = true })
  if not report then fail(org, "check", err) os.exit(2) end
  print(string.format("%-10s checked: %d change(s), %d entry(ies) already as planned",
    org.name, #report.would_send, #report.skipped))
  clients[org] = client
end

-- Phase 2: apply, org after org.
local status = 0
for _, org in ipairs(orgs) do
  local report, err = clients[org]:apply(plan_file, {
    args = { org = org.name, region = org.region }, diff = true,
    journal = org.name .. ".journal", undo_file = org.name .. "-undo-" .. os.date("!%Y%m%dT%H%M%SZ") .. ".lua",
  })
  if not report then
    fail(org, "apply", err)
    status = 1
  else
    print(string.format("%-10s applied %d, skipped %d, failed %d; %d credits; undo: %s",
      org.name, #report.applied, #report.skipped, #report.failed, report.credits, report.undo_file))
    for _, f in ipairs(report.failed) do fail(org, "entry " .. f.index .. " (" .. f.module .. ")", f.error) end
    if not report.ok then status = 1 end
  end
  clients[org]:close()
end
os.exit(status)
