-- One layout of labels for every org, spelled the way each region writes it:
-- a plan that is a function of its context. `multi_org.lua` passes
-- ctx.args = { org = NAME, region = REGION }; with `zcrm apply` the region is
-- the first extra argument:
--   bin/zcrm apply examples/plans/regional_labels.lua eu --dry-run

local SPELLING = {
  us = { programs = "Client Programs", program = "Client Program",
         organization = "Organization Events", organization1 = "Organization Event",
         catalog = "Catalog Courses", catalog1 = "Catalog Course" },
  eu = { programs = "Client Programmes", program = "Client Programme",
         organization = "Organisation Events", organization1 = "Organisation Event",
         catalog = "Catalogue Courses", catalog1 = "Catalogue Course" },
}
SPELLING.uk, SPELLING["in"], SPELLING.au = SPELLING.eu, SPELLING.eu, SPELLING.eu

return function(ctx)
  local region = ctx.args.region or ctx.args[1] or "us"
  local words = SPELLING[region]
  if not words then error("unknown region '" .. tostring(region) .. "' (us, eu, uk, in, au)") end
  local revoke_contractor = { name = "Contractor", _delete = true }
  return {
    { module = "Projects", plural_label = words.programs, singular_label = words.program,
      profiles = { revoke_contractor } },
    { module = "Events_Custom", plural_label = words.organization, singular_label = words.organization1,
      profiles = { revoke_contractor, { name = "Marketing" } } },
    { module = "Trainings", plural_label = words.catalog, singular_label = words.catalog1,
      profiles = { revoke_contractor } },
  }
end
