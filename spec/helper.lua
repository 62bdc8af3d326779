-- Loaded by busted before every spec file (.busted: helper). Specs find
-- `spec.support.*` from the repo root.
package.path = "./?.lua;" .. package.path
