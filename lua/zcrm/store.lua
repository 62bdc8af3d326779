--- Stored orgs: the credentials `zcrm login` keeps under a name, read by
-- `zcrm.new { org = NAME }` and `--org NAME`.
--
-- One file, `$XDG_CONFIG_HOME/zcrm/orgs.json` (`~/.config/zcrm/` when
-- XDG_CONFIG_HOME is unset): `{"orgs":{"NAME":{...}}}`, each org holding
-- client_id, client_secret, refresh_token, accounts_url, api_domain, and dc
-- and environment when login was given them. The directory is 0700 and the
-- file 0600; the file is opened without following a symbolic link, replaced
-- atomically (a reader sees the old orgs or the new ones), and a change is a
-- read-modify-write under a lock, so two logins never lose each other's org.
-- @module zcrm.store

local cjson = require "cjson.safe"
local core = require "zcrm.core"

local M = {}

local FIELDS = { "client_id", "client_secret", "refresh_token", "accounts_url", "api_domain", "dc", "environment" }
local LOCK_TRIES = 50

local function store_error(code, message, resolution, details)
  return core.error { kind = "config", code = code, message = message, resolution = resolution, details = details }
end

--- The directory of the stored orgs.
-- @treturn string|nil the path, or nil and an error when neither
-- XDG_CONFIG_HOME nor HOME is set
function M.dir()
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/zcrm" end
  local home = os.getenv("HOME")
  if not home or home == "" then
    return nil, store_error("INVALID_CONFIG", "neither XDG_CONFIG_HOME nor HOME is set: no place for stored orgs",
      "Set HOME (or XDG_CONFIG_HOME).")
  end
  return home .. "/.config/zcrm"
end

--- Checks an org name: 1 to 64 letters, digits, '_', '.' or '-'.
-- @tparam any name
-- @treturn true|nil true, or nil and an error (kind "validation", field "org")
function M.check_name(name)
  if type(name) ~= "string" or #name == 0 or #name > 64 or not name:match("^[%w_.-]+$") or name:match("^%.") then
    return nil, core.error { kind = "validation", code = "INVALID_DATA", field = "org",
      message = "org: a name of 1 to 64 letters, digits, '_', '.' or '-' (not starting with '.')" }
  end
  return true
end

local function path_of(dir) return dir .. "/orgs.json" end

-- The stored orgs as a table name -> org ({} when there is no file yet).
local function load(dir)
  local path = path_of(dir)
  local f, err = core.open_file(path, "r")
  if not f then
    if err.details and err.details.errno == 2 then return {} end
    return nil, err
  end
  local text = f:read("a")
  f:close()
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 then
    return nil, store_error("UNSAFE_CONFIG", string.format("%s holds secrets and has mode %03o", path, mode),
      string.format("Make it readable by its owner only: chmod 600 %s", path))
  end
  local t = cjson.decode(text or "")
  if type(t) ~= "table" or type(t.orgs) ~= "table" then
    return nil, store_error("INVALID_CONFIG", path .. " is not a file of stored orgs (its text is not shown: "
      .. "it may hold secrets)", "Remove it and run zcrm login again.")
  end
  local orgs = {}
  for name, o in pairs(t.orgs) do
    if type(name) == "string" and type(o) == "table" then
      local org = {}
      for _, k in ipairs(FIELDS) do
        if type(o[k]) == "string" then org[k] = o[k] end
      end
      org.saved_at = type(o.saved_at) == "string" and o.saved_at or nil
      orgs[name] = org
    end
  end
  return orgs
end

--- Every stored org.
-- @treturn table|nil name -> org, or nil and an error
function M.read()
  local dir, err = M.dir()
  if not dir then return nil, err end
  return load(dir)
end

--- One stored org.
-- @tparam string name
-- @treturn table|nil the org, or nil and an error (UNKNOWN_ORG when none has that name)
function M.get(name)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr end
  local orgs, err = M.read()
  if not orgs then return nil, err end
  local org = orgs[name]
  if not org then
    return nil, store_error("UNKNOWN_ORG", string.format("no stored org named %s", name),
      "zcrm login --list shows the stored orgs; zcrm login --org " .. name .. " stores one.", { org = name })
  end
  return org
end

--- The org a command uses when none is named: ZCRM_ORG, else `default`
-- when it is stored (nil when neither).
-- @treturn string|nil
function M.default_org()
  local named = os.getenv("ZCRM_ORG")
  if named and named ~= "" then return named end
  local orgs = M.read()
  return orgs and orgs.default and "default" or nil
end

--- The options of `zcrm.new` that a stored org gives.
-- @tparam table org from `get`
-- @treturn table `{ api_domain =, oauth = {...} }`
function M.options(org)
  return { api_domain = org.api_domain, oauth = { client_id = org.client_id, client_secret = org.client_secret,
    refresh_token = org.refresh_token, accounts_url = org.accounts_url } }
end

-- Runs change(orgs) under the lock and writes what it leaves.
local function update(change)
  local dir, err = M.dir()
  if not dir then return nil, err end
  local parent = dir:match("^(.+)/[^/]+$")
  if parent then
    -- The parents as `mkdir -p` makes them; only zcrm's own directory is private.
    local at = ""
    for part in parent:gmatch("[^/]+") do
      at = at .. "/" .. part
      local ok, merr = core.make_dir(at)
      if not ok then return nil, merr end
    end
  end
  local ok, derr = core.make_dir(dir, true)
  if not ok then return nil, derr end
  local lock, lerr = core.open_file(dir .. "/orgs.lock", "a")
  if not lock then return nil, lerr end
  local locked, why, busy
  for _ = 1, LOCK_TRIES do
    locked, why, busy = core.lock_file(lock)
    if locked or busy ~= "busy" then break end
    core.sleep(0.1)
  end
  if not locked then
    lock:close()
    return nil, store_error("FILE_ERROR", dir .. "/orgs.lock: " .. tostring(why))
  end
  local orgs, rerr = load(dir)
  local wok, werr
  if orgs then
    local result = change(orgs)
    if result == false then
      lock:close()
      return false
    end
    wok, werr = core.write_private_file(path_of(dir), cjson.encode { orgs = orgs } .. "\n")
  end
  lock:close()
  if not orgs then return nil, rerr end
  if not wok then return nil, werr end
  return true
end

--- Stores an org under `name`, keeping the others.
-- @tparam string name
-- @tparam table org its fields (client_id, client_secret, refresh_token, accounts_url, api_domain[, dc, environment])
-- @treturn true|nil true, or nil and an error
function M.save(name, org)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr end
  local entry = {}
  for _, k in ipairs(FIELDS) do entry[k] = org[k] end
  entry.saved_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  return update(function(orgs) orgs[name] = entry end)
end

--- Forgets the org `name`, keeping the others.
-- @tparam string name
-- @treturn true|false|nil true, false when there was none, or nil and an error
function M.forget(name)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr end
  return update(function(orgs)
    if not orgs[name] then return false end
    orgs[name] = nil
  end)
end

return M
