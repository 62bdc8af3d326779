--- The reads of the settings endpoints: every list answer's reader (ids
-- checked), paging, get_modules, get_module, get_profiles, and the raw
-- `request`. Operations: each runs inside the engine's coroutine.
-- @module zcrm.modules.read

local core = require "zcrm.core"
local http = require "zcrm.http"
local util = require "zcrm.util"
local cjson = require "cjson.safe"

local M = {}

-- An id from a server answer (reference §1: a string of 1-19 digits): a
-- digit string as it is, or a JSON number that is an exact integer (lua-cjson
-- decodes numbers as floats, exact below 2^53) as its digits. Anything else
-- is nil: never a rounded id, and never text that ends up in a file zcrm
-- writes (an undo plan is Lua code).
local function server_id(v)
  if type(v) == "string" then
    if #v <= 19 and v:match("^%d+$") then return v end
  elseif type(v) == "number" then
    local i = math.tointeger(v)
    if i and i > 0 and i < 2 ^ 53 then return string.format("%d", i) end
  end
  return nil
end

M.server_id = server_id

-- Checks and mends the ids of a list (modules or profiles, with a module's
-- profiles): ids are kept as strings, since they are 64-bit integers, which
-- JSON numbers and doubles cannot all hold. nil, reason for one that is not
-- an id.
-- (The name of a faulty item is made only for its error: a module list has
-- hundreds of modules, each with its profiles.)
local function fix_id(t)
  if type(t) ~= "table" or t.id == nil then return true end
  local id = server_id(t.id)
  if not id then return false end
  t.id = id
  return true
end

local function bad_id(what, i)
  return nil, string.format("%s %d has an id that is not a string of digits or an exact integer", what, i)
end

local function normalise_ids(list)
  for i, item in ipairs(list) do
    if not fix_id(item) then return bad_id("item", i) end
    if type(item) == "table" and type(item.profiles) == "table" then
      for j, p in ipairs(item.profiles) do
        if not fix_id(p) then return bad_id(string.format("item %d's profile", i), j) end
      end
    end
  end
  return list
end

--- list_of(doc, key, status) -> doc[key], a list whose ids are checked
-- digit strings, or nil, UNEXPECTED_RESPONSE. The reader of every list answer.
local function list_of(doc, key, status)
  local list = doc[key]
  if type(list) ~= "table" then
    return nil, http.unexpected(status, "no '" .. key .. "' array in the body")
  end
  local ok, why = normalise_ids(list)
  if not ok then return nil, http.unexpected(status, why) end
  return list
end

M.list_of = list_of

-- {==== every page

-- A bound on pages besides the client's max_read_items and max_read_bytes:
-- 1,000 pages of 200 is far past Zoho's limits (600 modules, 200 profiles
-- per licence).
local MAX_PAGES = 1000

-- What identifies a page's items: their ids in order (every module and
-- profile has one), or the page's JSON when an item has none.
local function page_key(list)
  local ids = {}
  for i, item in ipairs(list) do
    if type(item) ~= "table" or item.id == nil then return "json:" .. (cjson.encode(list) or "") end
    ids[i] = item.id
  end
  return table.concat(ids, ",")
end

local function too_large(status, what, limit, name)
  return core.error {
    kind = "transport", code = "RESPONSE_TOO_LARGE", status = status, retryable = false,
    message = string.format("the read gathered more than %s %s across its pages (%s)", limit, what, name),
    details = { limit = limit, option = name },
    resolution = "Raise " .. name .. " in zcrm.new if the org really is this large.",
  }
end

-- GETs `path` page by page while `info.more_records` is true, and returns every
-- item under `key`. The first request is the plain one (with `opts.query` and
-- `opts.headers`); later ones add `page` and the `per_page` the server reported.
-- One page at a time: each page needs the answer of the one before, so a read
-- holds one slot of the concurrency cap. A read is bounded in total: at most
-- client.max_read_items items and client.max_read_bytes answer bytes
-- (RESPONSE_TOO_LARGE past either), and a page holding the same items as an
-- earlier one (a server that ignores `page`) is UNEXPECTED_RESPONSE.
-- Returns the list, `{ not_modified = true }` for a 304, or nil, err.
local function fetch_pages(client, path, key, opts)
  local all, page, per_page, bytes, seen = {}, 1, nil, 0, {}
  while true do
    local query = {}
    for k, v in pairs(opts.query or {}) do query[k] = v end
    if page > 1 then
      query.page = tostring(page)
      query.per_page = per_page and tostring(per_page) or nil
    end
    local first = page == 1
    local status, doc, _, _, size = http.call(client, "GET", path, {
      query = next(query) and query or nil, headers = first and opts.headers or nil,
      conditional = first and opts.headers ~= nil, key = key, cost = client.credit_costs.read,
    })
    if not status then return nil, doc end
    if status == 304 then return { not_modified = true } end
    if status == 204 then break end
    bytes = bytes + (size or 0)
    if bytes > client.max_read_bytes then
      return nil, too_large(status, "bytes", client.max_read_bytes, "max_read_bytes")
    end
    local list, err = list_of(doc, key, status)
    if not list then return nil, err end
    if #all + #list > client.max_read_items then
      return nil, too_large(status, "items", client.max_read_items, "max_read_items")
    end
    local info = doc.info
    local more = type(info) == "table" and info.more_records == true and #list > 0
    if more or page > 1 then
      local pk = page_key(list)
      if seen[pk] then
        return nil, http.unexpected(status, string.format(
          "page %d holds the same items as page %d: the server ignores paging", page, seen[pk]))
      end
      seen[pk] = page
    end
    for _, item in ipairs(list) do all[#all + 1] = item end
    if not more then break end
    if page >= MAX_PAGES then
      return nil, http.unexpected(status, string.format("more_records still true after %d pages", MAX_PAGES))
    end
    page = page + 1
    if math.type(info.per_page) == "integer" and info.per_page > 0 then per_page = info.per_page end
  end
  return all
end

-- }====

--- get_profiles(): every profile of the org, every page of it, ids as strings.
function M.get_profiles(client)
  return fetch_pages(client, "settings/profiles", "profiles", {})
end

local function http_date(t)
  if type(t) == "number" then return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end
  return t
end

--- get_modules{ status =, if_modified_since = } -> list of modules, every page
-- of it. When nothing changed since `if_modified_since` (HTTP 304), an empty list
-- with `not_modified = true`.
function M.get_modules(client, opts)
  opts = opts or {}
  local headers
  if opts.if_modified_since then
    headers = { "If-Modified-Since: " .. http_date(opts.if_modified_since) }
  end
  return fetch_pages(client, "settings/modules", "modules",
    { query = opts.status and { status = opts.status } or nil, headers = headers })
end

--- get_module(id_or_api_name) -> the module's full metadata.
function M.get_module(client, module)
  local segment, merr = core.check_module(module)
  if not segment then return nil, merr end
  local status, doc = http.call(client, "GET", "settings/modules/" .. segment,
    { key = "modules", cost = client.credit_costs.read })
  if not status then return nil, doc end
  if status == 204 then
    return nil, core.error { kind = "api", code = "NOT_SUPPORTED", status = 204,
      message = "the module exists but this endpoint does not expose it (HTTP 204)" }
  end
  local list, err = list_of(doc, "modules", status)
  if not list then return nil, err end
  if type(list[1]) ~= "table" then return nil, http.unexpected(status, "empty 'modules' array") end
  return list[1]
end

--- request(method, path, opts) -> status, doc, headers, or nil, err: any CRM
-- call (`path` after /crm/{version}/) with zcrm's auth, retries and error
-- reading. opts: query, body (Lua table), key, cost (default 1), headers.
function M.request(client, method, path, opts)
  if type(method) ~= "string" or not method:match("^%u+$") then
    error("zcrm: request: method must be an upper-case HTTP method such as \"GET\"", 0)
  end
  if type(path) ~= "string" or path:find("[%c%s?#]") or path:find("%.%.") then
    return nil, core.error { kind = "validation", code = "INVALID_URL_PATTERN",
      message = "request: path must be a plain path such as 'settings/modules'" }
  end
  local o = util.copy(opts)
  o.cost = o.cost or client.credit_costs.read
  local status, doc, headers = http.call(client, method, (path:gsub("^/", "")), o)
  -- The body is redacted by http.call; the headers are the server's choice too.
  if status and headers then headers = client:_redact_value(headers) end
  return status, doc, headers
end

return M
