-- The orgs that multi_org.lua and `zcrm ... --orgs` change: a name (used for the journal and undo
-- file names), a region (passed to the plan) and zcrm.new options. Secrets come
-- from the environment, never from this file, so it may be readable by others
-- (a file with a secret written in it must be chmod 600). As written, it points
-- at two local emulators (`bin/zcrm emulator --port 8642` and `--port 8643`)
-- and takes their token from ZOHO_ACCESS_TOKEN (the emulator's token, which the
-- walkthrough exports; a token written here would make the file a secret).
local getenv = os.getenv

return {
  {
    name = "americas", region = "us",
    options = {
      api_domain = getenv("AMERICAS_API_DOMAIN") or "http://127.0.0.1:8642",
      access_token = getenv("AMERICAS_ACCESS_TOKEN") or getenv("ZOHO_ACCESS_TOKEN"),
    },
  },
  {
    name = "emea", region = "eu",
    options = {
      api_domain = getenv("EMEA_API_DOMAIN") or "http://127.0.0.1:8643",
      access_token = getenv("EMEA_ACCESS_TOKEN") or getenv("ZOHO_ACCESS_TOKEN"),
      -- Against Zoho: dc = "eu", oauth = { client_id = getenv("EMEA_CLIENT_ID"),
      --   client_secret = getenv("EMEA_CLIENT_SECRET"), refresh_token = getenv("EMEA_REFRESH_TOKEN") },
    },
  },
}
