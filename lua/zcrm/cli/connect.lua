--- How `zcrm` reaches an org: a config file (or an orgs file) that may hold
-- secrets, flags and environment, into a client.

local zcrm = require "zcrm"
local core = require "zcrm.core"
local orgs_mod = require "zcrm.orgs"
local store = require "zcrm.store"
local term = require "zcrm.cli.term"

local M = {}

local EXIT_USAGE = 2
local print_error, err_line = term.print_error, term.err_line

-- {==== connection

local function holds_secrets(t)
  local o = type(t.oauth) == "table" and t.oauth or {}
  return t.access_token ~= nil or o.client_secret ~= nil or o.refresh_token ~= nil
end

-- Loads a Lua file that may hold secrets (a config, an orgs file) and returns
-- the value it returns, or nil, err with `code`. Errors name the file and the
-- line only: Lua's own messages quote the file's text (`near '...'`) or values.
-- `env` is the chunk's environment (nil: the full one).
local function load_secret_file(path, env, code, label, resolution)
  local function fault(what, lua_message)
    local line = type(lua_message) == "string" and lua_message:match(":(%d+):")
    return nil, zcrm.error { kind = "config", code = code, resolution = resolution,
      message = string.format("%s %s: %s%s (the file's text is not shown: it may hold secrets)", label, path, what,
        line and (" at line " .. line) or "") }
  end
  local chunk, lerr
  if env then chunk, lerr = loadfile(path, "t", env) else chunk, lerr = loadfile(path, "t") end
  if not chunk then
    if tostring(lerr):match("^cannot ") then return fault("cannot be read") end
    return fault("Lua syntax error", lerr)
  end
  local ok, t = pcall(chunk)
  if not ok then return fault("raised an error", t) end
  if type(t) ~= "table" then return fault("does not return a table") end
  return t
end

-- Reads a config file: Lua returning a table of zcrm.new options, run with no
-- globals so that it can only describe, not act.
local function read_config(path)
  local t, err = load_secret_file(path, {}, "INVALID_CONFIG", "config",
    "The file must be Lua ending with `return { ... }` holding zcrm.new options.")
  if not t then return nil, err end
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 and holds_secrets(t) then
    return nil, zcrm.error { kind = "config", code = "UNSAFE_CONFIG",
      message = string.format("config %s holds secrets and has mode %03o", path, mode),
      resolution = string.format("Make it readable by its owner only: chmod 600 %s", path) }
  end
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

-- Reads ORGS.lua: a list of { name =, options = <zcrm.new options> }. Like a
-- config file, one that holds a secret must be readable by its owner only.
local function read_orgs(path)
  local resolution = "ORGS.lua returns a list of { name = \"...\", options = { <zcrm.new options> } }."
  local list, lerr = load_secret_file(path, nil, "INVALID_ORGS", "orgs file", resolution)
  if not list then return nil, lerr end
  local valid, verr = orgs_mod.check(list)
  if not valid then
    return nil, zcrm.error { kind = "config", code = "INVALID_ORGS", message = path .. ": " .. verr.message,
      resolution = resolution }
  end
  local mode = core.file_mode(path)
  for _, org in ipairs(list) do
    local o = org.options
    local secret = o.access_token or (type(o.oauth) == "table" and (o.oauth.client_secret or o.oauth.refresh_token))
    if secret and mode and mode & 0x3f ~= 0 and type(secret) == "string" and not secret:match("^emulator%-") then
      return nil, zcrm.error { kind = "config", code = "UNSAFE_CONFIG",
        message = string.format("orgs file %s holds secrets (org %s) and has mode %03o", path, org.name, mode),
        resolution = string.format("Make it readable by its owner only (chmod 600 %s), or take secrets from the environment", path) }
    end
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
