--- Zoho data centres and environments: where the API and the accounts server
-- live. Each entry names its source: Zoho's "Multi DC Support" page (CRM API
-- v8), the official Python SDK's dc classes (all three environments), the
-- v4 "Refresh Access Tokens" page, Zoho Accounts' multi-DC page. CA's accounts
-- server is on zohocloud.ca.
-- @module zcrm.dc

local util = require "zcrm.util"

local M = {}

-- dc -> { accounts server, API domain suffix } (the API domain is
-- https://<www|sandbox|developer>.<suffix>)
local DCS = {
  -- "Multi DC Support" (v8) and the Python SDK's USDataCenter, EUDataCenter, ...
  us = { accounts = "https://accounts.zoho.com",     suffix = "zohoapis.com" },
  eu = { accounts = "https://accounts.zoho.eu",      suffix = "zohoapis.eu" },
  ["in"] = { accounts = "https://accounts.zoho.in",  suffix = "zohoapis.in" },
  au = { accounts = "https://accounts.zoho.com.au",  suffix = "zohoapis.com.au" },
  jp = { accounts = "https://accounts.zoho.jp",      suffix = "zohoapis.jp" },
  cn = { accounts = "https://accounts.zoho.com.cn",  suffix = "zohoapis.com.cn" },
  -- "Multi DC Support" (v8), the v4 "Refresh Access Tokens" page and the SDK
  ca = { accounts = "https://accounts.zohocloud.ca", suffix = "zohoapis.ca" },
  -- the v4 "Refresh Access Tokens" page and the SDK's SADataCenter
  sa = { accounts = "https://accounts.zoho.sa",      suffix = "zohoapis.sa" },
  -- Zoho Accounts' multi-DC page lists accounts.zoho.uk; the API domain
  -- zohoapis.uk and its sandbox/developer hosts follow the pattern of every
  -- other DC (assumed: no CRM page or SDK names them yet)
  uk = { accounts = "https://accounts.zoho.uk",      suffix = "zohoapis.uk" },
}

-- environment -> host prefix of the API domain
local ENVIRONMENTS = { production = "www", sandbox = "sandbox", developer = "developer" }

M.names = util.sorted_keys(DCS)
M.environments = util.sorted_keys(ENVIRONMENTS)

--- Resolves a dc and environment to `{ api_domain =, accounts_url = }`, or
-- `nil, message` naming the valid choices.
-- @tparam[opt="us"] string dc us, eu, in, au, jp, ca, sa, cn, uk
-- @tparam[opt="production"] string environment production, sandbox or developer
-- @treturn table|nil `{ api_domain =, accounts_url = }`, or nil and a message
function M.resolve(dc, environment)
  dc = dc or "us"
  environment = environment or "production"
  local d = DCS[dc]
  if not d then
    return nil, string.format("unknown dc '%s'; valid: %s", tostring(dc), table.concat(M.names, ", "))
  end
  local prefix = ENVIRONMENTS[environment]
  if not prefix then
    return nil, string.format("unknown environment '%s'; valid: %s",
      tostring(environment), table.concat(M.environments, ", "))
  end
  return { api_domain = "https://" .. prefix .. "." .. d.suffix, accounts_url = d.accounts }
end

return M
