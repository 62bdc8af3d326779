--- `zcrm login` and `zcrm logout`: a grant code exchanged for a refresh token
-- and stored under an org name (lua/zcrm/store.lua), listed, revoked and
-- forgotten. No secret is ever printed: not the client secret, not the code,
-- not a token.
-- @module zcrm.cli.login

local zcrm = require "zcrm"
local core = require "zcrm.core"
local proc = require "zcrm.proc"
local dc = require "zcrm.dc"
local util = require "zcrm.util"
local store = require "zcrm.store"
local term = require "zcrm.cli.term"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
local EXIT_SIGNAL = require("zcrm.cli.interrupt").EXIT
local out, err_line, json_line, print_error, usage_error = term.out, term.err_line, term.json_line,
  term.print_error, term.usage_error

--- Their entries in the flag table (lua/zcrm/cli/args.lua).
M.COMMANDS = {
  login = {
    summary = "exchange a grant code and store the org",
    usage = { { "", flags = { "org", "dc", "environment", "accounts-url", "client-id", "client-secret", "code" } },
              { "--list [--json]", literal = true } },
    text = [[
Exchanges a grant code for a refresh token at the data centre's accounts
server and stores the client id, client secret, refresh token, accounts server
and API domain under the org NAME (default "default") in
$XDG_CONFIG_HOME/zcrm/orgs.json (~/.config/zcrm/ when XDG_CONFIG_HOME is unset;
directory 0700, file 0600, replaced atomically; other orgs are kept). Then
every command takes --org NAME (or ZCRM_ORG). On a terminal, what is not given
is asked for without echo; without one, a missing value is an error (exit 2).

Make the client and the code in Zoho's API console (https://api-console.zoho.com):
Add Client, Self Client; then Generate Code with the scopes
ZohoCRM.settings.modules.ALL,ZohoCRM.settings.profiles.READ, and run zcrm login
within the code's lifetime.
]],
    flags = {
      { name = "org", value = "NAME", help = "the name to store the org under (letters, digits, _ . -)" },
      { name = "dc", value = "DC", help = table.concat(dc.names, ", ") .. " (default us)", complete = dc.names },
      { name = "environment", value = "ENV", help = table.concat(dc.environments, ", ") .. " (default production)",
        complete = dc.environments },
      { name = "accounts-url", value = "URL", help = "the accounts server itself, instead of --dc" },
      { name = "client-id", value = "ID", help = "the Self Client's id" },
      { name = "client-secret", value = "S",
        help = "its secret (better typed at the prompt: the process list shows flags)" },
      { name = "code", value = "CODE", help = "the grant code (works once, for minutes)" },
      { name = "list", help = "list the stored orgs (never a secret)" },
      { name = "json", help = "with --list: JSON lines, one org per line" },
    },
    after = "Exit codes: 0 stored, 1 the accounts server refused (nothing stored), 2 usage.\n",
  },
  logout = {
    summary = "revoke an org's refresh token and forget the org",
    text = [[
Revokes the org's refresh token at its accounts server, then forgets the org
(the other stored orgs are kept). The org is ZCRM_ORG's, else "default".
When the accounts server cannot be reached, the org is kept; --force forgets
it anyway (revoke the token in Zoho's API console then).
]],
    flags = {
      { name = "org", value = "NAME", help = "the stored org to forget" },
      { name = "force", help = "forget it even when its token could not be revoked" },
    },
  },
}

-- The value of a flag, or typed at the terminal without echo; nil, exit code
-- (the error printed) when there is neither.
local function value_of(flags, name, prompt)
  local v = flags[name]
  if v == nil then
    if not proc.isatty(0) then
      return nil, usage_error(string.format("--%s is needed (there is no terminal to ask on)", name), "login")
    end
    -- Ctrl-C must end the read, not the process: the terminal's echo is
    -- restored before zcrm exits.
    proc.catch_interrupts(true)
    local line, why = proc.read_secret(prompt)
    local sig = proc.interrupted()
    proc.catch_interrupts(false)
    if sig then return nil, EXIT_SIGNAL[sig] or EXIT_FAILED end
    if not line then
      err_line("zcrm: " .. name .. ": " .. tostring(why))
      return nil, EXIT_USAGE
    end
    v = line:match("^%s*(.-)%s*$")
  end
  local ok, err = core.check_token(v, name:gsub("%-", "_"))
  if not ok then
    print_error({}, "--" .. name, err)
    return nil, EXIT_USAGE
  end
  return v
end

-- A client that only talks to the accounts server (its API domain is never called).
local function accounts_client(accounts_url)
  return zcrm.new { api_domain = accounts_url, access_token = "unused", env = false, max_retries = 0 }
end

local function list_orgs(flags)
  local orgs, err = store.read()
  if not orgs then
    print_error(flags, nil, err)
    return EXIT_FAILED
  end
  local names = util.sorted_keys(orgs)
  local current = store.default_org()
  if flags.json then
    for _, name in ipairs(names) do
      local o = orgs[name]
      json_line { org = name, api_domain = o.api_domain, accounts_url = o.accounts_url, dc = o.dc,
                  environment = o.environment, saved_at = o.saved_at, current = name == current or nil }
    end
  elseif #names == 0 then
    out("No stored orgs: zcrm login stores one.\n")
  else
    local rows = {}
    for i, name in ipairs(names) do
      local o = orgs[name]
      rows[i] = { (name == current and "* " or "  ") .. name, util.printable(o.api_domain or "?"),
                  util.printable(o.accounts_url or "?"), o.saved_at or "" }
    end
    term.print_table({ "  ORG", "API DOMAIN", "ACCOUNTS SERVER", "STORED" }, rows)
  end
  return EXIT_OK
end

-- Where the code is exchanged, and the API domain when the dc decides it.
local function accounts_of(flags)
  if flags["accounts-url"] then
    if flags.dc or flags.environment then
      return nil, usage_error("--accounts-url and --dc/--environment exclude each other", "login")
    end
    local url, err = core.check_base_url(flags["accounts-url"])
    if not url then
      print_error({}, "--accounts-url", err)
      return nil, EXIT_USAGE
    end
    return { accounts_url = url }
  end
  local where, message = dc.resolve(flags.dc, flags.environment)
  if not where then return nil, usage_error(message, "login") end
  return { accounts_url = where.accounts_url, api_domain = where.api_domain, dc = flags.dc or "us",
           environment = flags.environment or "production" }
end

local function cmd_login(flags)
  if flags.list then return list_orgs(flags) end
  local name = flags.org or "default"
  local ok, nerr = store.check_name(name)
  if not ok then
    print_error({}, "--org", nerr)
    return EXIT_USAGE
  end
  local where, code = accounts_of(flags)
  if not where then return code end
  local p = {}
  for _, f in ipairs { { "client-id", "client_id", "Client ID: " }, { "client-secret", "client_secret", "Client secret: " },
                       { "code", "code", "Grant code: " } } do
    local v, vcode = value_of(flags, f[1], f[3])
    if not v then return vcode end
    p[f[2]] = v
  end
  local client, cerr = accounts_client(where.accounts_url)
  if not client then
    print_error({}, nil, cerr)
    return EXIT_USAGE
  end
  local answer, err = client:_call("_exchange_code", where.accounts_url, p)
  client:close()
  if not answer then
    local why = err.code == "invalid_code" and "the code is unknown, used or expired: generate a new one"
      or err.code == "invalid_client" and "the client id or secret is wrong"
      or nil
    print_error({}, "login refused by " .. where.accounts_url .. (why and (" (" .. why .. ")") or ""), err)
    return EXIT_FAILED
  end
  -- For production, the accounts server says where the org's API is; a
  -- sandbox or developer org lives at the environment's own domain.
  local api_domain = where.api_domain
  if not where.environment or where.environment == "production" then api_domain = answer.api_domain or api_domain end
  local domain, derr
  if api_domain then domain, derr = core.check_base_url(api_domain) end
  if not domain then
    print_error({}, "login: the accounts server named no usable API domain; nothing stored", derr or
      zcrm.error { kind = "auth", code = "UNEXPECTED_RESPONSE", message = "no api_domain in the answer" })
    return EXIT_FAILED
  end
  local saved, serr = store.save(name, { client_id = p.client_id, client_secret = p.client_secret,
    refresh_token = answer.refresh_token, accounts_url = where.accounts_url, api_domain = domain,
    dc = where.dc, environment = where.environment })
  if not saved then
    print_error({}, "login succeeded but the org was not stored", serr)
    return EXIT_FAILED
  end
  out(string.format("Logged in: org %s, API domain %s (stored in %s/orgs.json)\n", name, domain, store.dir()))
  return EXIT_OK
end

local function cmd_logout(flags)
  local name = flags.org or store.default_org() or "default"
  local org, err = store.get(name)
  if not org then
    print_error({}, nil, err)
    return EXIT_USAGE
  end
  local revoked, rerr
  local client, cerr = accounts_client(org.accounts_url or "")
  if client then
    revoked, rerr = client:_call("_revoke_token", org.accounts_url, org.refresh_token)
    client:close()
  else
    rerr = cerr
  end
  if revoked == nil and not flags.force then
    print_error({}, string.format("the refresh token of org %s was not revoked (%s); the org is kept "
      .. "(zcrm logout --force forgets it anyway)", name, tostring(org.accounts_url)), rerr)
    return EXIT_FAILED
  end
  local forgot, ferr = store.forget(name)
  if not forgot then
    print_error({}, "the org was not forgotten", ferr or zcrm.error { kind = "config", code = "UNKNOWN_ORG",
      message = "no stored org named " .. name })
    return EXIT_FAILED
  end
  if revoked == nil then
    err_line(string.format("zcrm: warning: org %s forgotten without revoking its refresh token: "
      .. "revoke it in Zoho's API console", name))
  end
  out(string.format("Logged out: org %s forgotten%s\n", name, revoked and ", its refresh token revoked"
    or revoked == false and " (the accounts server no longer knew its refresh token)" or ""))
  return EXIT_OK
end

M.COMMANDS.login.run = cmd_login
M.COMMANDS.logout.run = cmd_logout

return M
