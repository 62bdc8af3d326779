--- Zoho data centres and environments: where the API and the accounts server
-- live. Source: Zoho's "Multi DC Support" page and the official Python SDK's
-- dc classes. CA's accounts server is on zohocloud.ca.
-- @module zcrm.dc

local util = require "zcrm.util"

local M = {}

-- dc -> { accounts server, API domain suffix }
local DCS = {
  us = { accounts = "https://accounts.zoho.com",     suffix = "zohoapis.com" },
  eu = { accounts = "https://accounts.zoho.eu",      suffix = "zohoapis.eu" },
  ["in"] = { accounts = "https://accounts.zoho.in",  suffix = "zohoapis.in" },
  au = { accounts = "https://accounts.zoho.com.au",  suffix = "zohoapis.com.au" },
  jp = { accounts = "https://accounts.zoho.jp",      suffix = "zohoapis.jp" },
  ca = { accounts = "https://accounts.zohocloud.ca", suffix = "zohoapis.ca" },
  sa = { accounts = "https://accounts.zoho.sa",      suffix = "zohoapis.sa" },
  cn = { accounts = "https://accounts.zoho.com.cn",  suffix = "zohoapis.com.cn" },
}

-- environment -> host prefix of the API domain
local ENVIRONMENTS = { production = "www", sandbox = "sandbox", developer = "developer" }

M.names = util.sorted_keys(DCS)
M.environments = util.sorted_keys(ENVIRONMENTS)

--- Resolves a dc and environment to `{ api_domain =, accounts_url = }`, or
-- `nil, message` naming the valid choices.
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
