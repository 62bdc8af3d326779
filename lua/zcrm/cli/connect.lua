--- How `zcrm` reaches an org: a config file (or an orgs file) that may hold
-- secrets, flags and environment, into a client.
-- @module zcrm.cli.connect

local zcrm = require "zcrm"
local core = require "zcrm.core"
local util = require "zcrm.util"
local orgs_mod = require "zcrm.orgs"
local store = require "zcrm.store"
local term = require "zcrm.cli.term"

local M = {}

local EXIT_USAGE = 2
local print_error, err_line = term.print_error, term.err_line

-- {==== connection
--
-- Config files (--config) and orgs files (--orgs) follow one rule. Both run
-- in the same restricted environment (secret_file_env): os.getenv, and pure
-- functions (string, table, math, utf8 copies; no io, os.execute, require,
-- load). A file is judged by what it contains, never by its values: a secret
-- (access_token, oauth.client_secret, oauth.refresh_token) that came from
-- os.getenv and whose text is not in the file was read from the
-- environment, and such a file may be 644; any other secret is a literal,
-- and its file must be readable by its owner only (no group or other bit)
-- and owned by the user running zcrm (UNSAFE_CONFIG).

-- The environment a config or orgs file runs in; every value its os.getenv
-- returns is recorded in `from_env`.
local function secret_file_env(from_env)
  local env = {
    os = { getenv = function(name)
      local v = os.getenv(name)
      if v ~= nil then from_env[v] = true end
      return v
    end },
  }
  for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                       "tostring", "type", "rawequal", "rawlen", "rawget" } do
    env[k] = _G[k]
  end
  for _, lib in ipairs { "string", "table", "math", "utf8" } do env[lib] = util.copy(_G[lib]) end
  return env
end

-- Loads a Lua file that may hold secrets (a config, an orgs file) in the
-- restricted environment and returns the value it returns, its text and the
-- values os.getenv gave it; or nil, err with `code`. Errors name the file and
-- the line only: Lua's own messages quote the file's text (`near '...'`) or
-- values.
local function load_secret_file(path, code, label, resolution)
  local function fault(what, lua_message)
    local line = type(lua_message) == "string" and lua_message:match(":(%d+):")
    return nil, zcrm.error { kind = "config", code = code, resolution = resolution,
      message = string.format("%s %s: %s%s (the file's text is not shown: it may hold secrets)", label, path, what,
        line and (" at line " .. line) or "") }
  end
  if type(path) ~= "string" or path:find("\0", 1, true) then return fault("is not a valid path") end
  local f = io.open(path, "rb")
  local text = f and f:read("a")
  if f then f:close() end
  if type(text) ~= "string" then return fault("cannot be read") end
  local from_env = {}
  local chunk, lerr = load(text, "=" .. label, "t", secret_file_env(from_env))
  if not chunk then return fault("Lua syntax error", lerr) end
  local ok, t = pcall(chunk)
  if not ok then return fault("raised an error", t) end
  if type(t) ~= "table" then return fault("does not return a table") end
  return t, text, from_env
end

-- The secret fields of zcrm.new options `o` that hold a literal: a value
-- not from os.getenv, or one whose text is in the file.
local function literal_secrets(o, text, from_env)
  local oauth = type(o.oauth) == "table" and o.oauth or {}
  local found = {}
  for _, f in ipairs { { "access_token", o.access_token }, { "oauth.client_secret", oauth.client_secret },
                       { "oauth.refresh_token", oauth.refresh_token } } do
    local v = f[2]
    if v ~= nil and v ~= "" and (type(v) ~= "string" or not from_env[v] or text:find(v, 1, true)) then
      found[#found + 1] = f[1]
    end
  end
  return found
end

-- nil when the file at `path` may hold the literal secrets `fields` (none,
-- or it is private to the user); else the UNSAFE_CONFIG error. `what` names
-- the file ("config x.lua", "orgs file o.lua (org emea)").
local function unsafe(path, what, fields)
  if #fields == 0 then return nil end
  local mode, owned = core.file_mode(path)
  if mode and mode & 0x3f == 0 and owned then return nil end
  local why = not mode and "cannot be checked"
    or mode & 0x3f ~= 0 and string.format("has mode %03o", mode) or "is owned by another user"
  return zcrm.error { kind = "config", code = "UNSAFE_CONFIG",
    message = string.format("%s holds secrets written in it (%s) and %s", what, table.concat(fields, ", "), why),
    resolution = string.format("Make it yours and readable by you only (chmod 600 %s), "
      .. "or take the secrets from the environment with os.getenv", path) }
end

-- Reads a config file: Lua returning a table of zcrm.new options.
local function read_config(path)
  local t, text, from_env = load_secret_file(path, "INVALID_CONFIG", "config",
    "The file must be Lua ending with `return { ... }` holding zcrm.new options.")
  if not t then return nil, text end
  local err = unsafe(path, "config " .. path, literal_secrets(t, text, from_env))
  if err then return nil, err end
  return t
end

local function client_options(flags)
  local opts = {}
  if flags.config then
    local t, err = read_config(flags.config)
    if not t then return nil, err end
    for k, v in pairs(t) do opts[k] = v end
  end
  if flags.dc or flags.environment then opts.api_domain = nil end
  opts.api_domain = flags["api-domain"] or opts.api_domain
  opts.dc = flags.dc or opts.dc
  opts.environment = flags.environment or opts.environment
  if flags["access-token"] then
    err_line("zcrm: warning: --access-token is visible to other users in the process list; "
      .. "prefer ZOHO_ACCESS_TOKEN or --config")
    opts.access_token = flags["access-token"]
    opts.oauth = nil
  end
  if flags.concurrency then opts.concurrency = math.tointeger(tonumber(flags.concurrency)) end
  opts.org = flags.org or opts.org or store.default_org()
  return opts
end

-- Returns a client, or nil, exit code (the error already printed).
local function connect(flags)
  local opts, err = client_options(flags)
  local client
  if opts then client, err = zcrm.new(opts) end
  if not client then
    print_error(flags, nil, err)
    return nil, EXIT_USAGE
  end
  return client
end

-- Reads ORGS.lua: a list of { name =, options = <zcrm.new options> }, under
-- the rule of config files.
local function read_orgs(path)
  local resolution = "ORGS.lua returns a list of { name = \"...\", options = { <zcrm.new options> } }."
  local list, text, from_env = load_secret_file(path, "INVALID_ORGS", "orgs file", resolution)
  if not list then return nil, text end
  local valid, verr = orgs_mod.check(list)
  if not valid then
    return nil, zcrm.error { kind = "config", code = "INVALID_ORGS", message = path .. ": " .. verr.message,
      resolution = resolution }
  end
  for _, org in ipairs(list) do
    local err = unsafe(path, string.format("orgs file %s (org %s)", path, org.name),
      literal_secrets(org.options, text, from_env))
    if err then return nil, err end
  end
  return list
end

-- Returns orgs and their clients, or nil, exit code (the error printed).
local function connect_orgs(flags)
  local list, err = read_orgs(flags.orgs)
  local clients
  if list then clients, err = orgs_mod.connect(zcrm, list) end
  if not clients then
    print_error({}, flags.orgs, err)
    return nil, EXIT_USAGE
  end
  return list, clients
end

local function per_org(path, name)
  return (path:gsub("{org}", function() return name end))
end

-- }====

M.load_secret_file = load_secret_file
M.connect = connect
M.read_orgs, M.connect_orgs, M.per_org = read_orgs, connect_orgs, per_org

return M
