-- The 2025 reorganisation: a dozen custom modules get the names the teams now
-- use, the Contractor profile loses access to every custom module, and the
-- Marketing profile gains access to the two marketing modules.
--
-- Usage (from the repo root; connection from ZOHO_* or flags, see zcrm --help):
--   bin/zcrm apply examples/plans/relabel.lua --dry-run              # what would change
--   bin/zcrm apply examples/plans/relabel.lua --undo undo.lua --journal relabel.journal
--   bin/zcrm apply undo.lua                                          # and back again
-- `make demo` runs it against the local emulator.

local REVOKE_CONTRACTOR = { name = "Contractor", _delete = true }
local GRANT_MARKETING = { name = "Marketing" }

local function relabel(module, plural, singular, ...)
  return {
    module = module, plural_label = plural, singular_label = singular,
    profiles = { REVOKE_CONTRACTOR, ... },
  }
end

return {
  relabel("Digital_Marketing", "Marketing Assets", "Marketing Asset", GRANT_MARKETING),
  relabel("Events_Custom", "Marketing Events", "Marketing Event", GRANT_MARKETING),
  relabel("Projects", "Client Projects", "Client Project"),
  relabel("Invoices_Custom", "Service Invoices", "Service Invoice"),
  relabel("Shipments", "Deliveries", "Delivery"),
  relabel("Suppliers", "Partners", "Partner"),
  relabel("Assets", "Equipment", "Equipment Item"),
  relabel("Trainings", "Courses", "Course"),
  relabel("Tickets", "Support Tickets", "Support Ticket"),
  relabel("Contracts", "Agreements", "Agreement"),
  relabel("Properties", "Sites", "Site"),
  relabel("Vehicles", "Fleet Vehicles", "Fleet Vehicle"),
  -- Hidden, and keeping its labels: only the revocation applies.
  { module = "Memberships", profiles = { REVOKE_CONTRACTOR } },
}
