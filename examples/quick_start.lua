-- The README's quick start: relabel one module and change who sees it.
--
-- Usage (from the repo root, after `make`, with `bin/zcrm emulator --port 8642 &`):
--   ZOHO_API_DOMAIN=http://127.0.0.1:8642 ZOHO_ACCESS_TOKEN=emulator-token lua5.4 examples/quick_start.lua
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path -- the repo's copy, run from its root
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"

-- Connection settings come from the ZOHO_* variables here. Against Zoho itself:
--   zcrm.new { dc = "eu", oauth = { client_id = "1000.…", client_secret = "…", refresh_token = "1000.…" } }
local client = assert(zcrm.new {})

local res, err = client:update_module("Digital_Marketing", {
  plural_label = "Digital Marketings",
  singular_label = "Digital Marketing",
  profiles = {
    { id = "2423488000000015972", _delete = true },   -- revoke (sent as "_delete": null)
    { name = "Standard" },                              -- grant, by profile name
  },
})
if not res then
  print(err)            --> INVALID_DATA: plural_label: ... (or Zoho's answer)
  print(err.resolution) --> what to do about it
  os.exit(1)
end
print(res.code, res.id) --> SUCCESS  2423488000000834002
