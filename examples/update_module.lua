-- The Update Custom Module page's sample: relabel module 2423488000000834002,
-- revoke one profile, grant another, and print the result.
--
-- Usage (from the repo root, after `make`):
--   ZOHO_API_DOMAIN=http://127.0.0.1:PORT ZOHO_ACCESS_TOKEN=emulator-token lua5.4 examples/update_module.lua
-- or with OAuth:
--   ZOHO_CLIENT_ID=... ZOHO_CLIENT_SECRET=... ZOHO_REFRESH_TOKEN=... \
--   ZOHO_API_DOMAIN=http://127.0.0.1:PORT ZOHO_ACCOUNTS_URL=http://127.0.0.1:PORT lua5.4 examples/update_module.lua
-- Against Zoho itself, set ZOHO_DC (us, eu, in, au, jp, ca, sa, cn, uk) instead of the URLs.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path -- the repo's copy, if run from its root
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"

local client = assert(zcrm.new {
  logger = function(level, message) io.stderr:write("[", level, "] ", message, "\n") end,
})

local res, err = client:update_module("2423488000000834002", {
  plural_label = "Digital Marketings",
  singular_label = "Digital Marketing",
  profiles = {
    { id = "2423488000000015972", _delete = zcrm.null }, -- revoke Administrator
    { id = "2423488000000015975" },                      -- grant Standard
  },
})
if not res then
  io.stderr:write("update failed: ", tostring(err), "\n")
  if err.resolution then io.stderr:write("hint: ", err.resolution, "\n") end
  os.exit(1)
end

-- Printed in the page's own key order, so it reads like its Sample Response.
local q = require("cjson").encode
print(string.format('{"modules":[{"code":%s,"details":{"id":%s},"message":%s,"status":%s}]}',
  q(res.code), q(res.id), q(res.message), q(res.status)))
