-- Writes the seed corpora fuzz/corpus/<target>/seed-*, from the samples of the
-- "Update Custom Module" page ("[page]") and other Zoho CRM API v8 pages,
-- named by title ("Status Codes", "Modules", "Profiles", "Step 4: Refreshing
-- your Access Tokens"). Run from the repository root:  lua5.4 fuzz/make_seeds.lua
--
-- The marker "zq7x" in URLs, headers and tokens lets the targets check that
-- no error message quotes what it refused (no message template contains it).

local null = setmetatable({}, { __name = "null" }) -- encoded as the light userdata NULL

-- {==== zf_push_value's encoding (fuzz/fuzz_lua.h)

local function len_bytes(n)
  if n < 255 then return string.char(n) end
  assert(n <= 255 + 65535, "string too long for a seed")
  return string.char(255, (n - 255) & 0xff, (n - 255) >> 8)
end

local function is_list(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function enc(v)
  if v == nil then return "\0" end
  if v == null then return "\3" end
  if v == true then return "\1" end
  if v == false then return "\2" end
  if math.type(v) == "integer" then return "\4" .. string.pack("<i8", v) end
  if type(v) == "number" then return "\6" .. string.pack("<d", v) end
  if type(v) == "string" then return "\7" .. len_bytes(#v) .. v end
  assert(type(v) == "table")
  local out = {}
  if is_list(v) then
    assert(#v < 16)
    out[1] = "\10" .. string.char(#v)
    for _, x in ipairs(v) do out[#out + 1] = enc(x) end
  else
    local keys = sorted_keys(v)
    assert(#keys < 16)
    out[1] = "\9" .. string.char(#keys)
    for _, k in ipairs(keys) do out[#out + 1] = enc(k) .. enc(v[k]) end
  end
  return table.concat(out)
end

-- }====

local function write(target, name, bytes)
  local path = string.format("fuzz/corpus/%s/seed-%s", target, name)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local ADMIN, STANDARD, MODULE = "2423488000000015972", "2423488000000015975", "2423488000000834002"
local PAGE_UPDATE = {  -- [page] Sample Input
  plural_label = "Digital Marketings", singular_label = "Digital Marketing",
  profiles = { { id = ADMIN, _delete = null }, { id = STANDARD } },
}
local PAGE_BODY = '{"modules":[{"plural_label":"Digital Marketings","singular_label":"Digital Marketing",'
  .. '"profiles":[{"id":"2423488000000015972","_delete":null},{"id":"2423488000000015975"}]}]}'

-- {==== validate: op byte, failure byte, argument(s)

local V = {
  { 0, PAGE_UPDATE }, { 1, PAGE_UPDATE },
  { 0, { plural_label = "\195\137quipes", singular_label = "\233\161\167\229\174\162\231\174\161\231\144\134" } },
  { 0, { plural_label = "\224\164\185\224\164\191\224\164\168\224\165\141\224\164\166\224\165\128" } }, -- Devanagari
  { 0, { profiles = { { id = 2423488000000015975 }, { name = "Administrator", _delete = true } } } },
  { 0, { plural_label = string.rep("a", 26) } },
  { 0, { singular_label = "Bad!" } },
  { 0, { plural_label = "A\r\nB" } },
  { 0, { plural_label = "A\0B" } },
  { 0, { plural_label = "\192\175" } },          -- overlong '/'
  { 0, { plural_label = "\237\160\128" } },      -- surrogate
  { 0, { plural_label = "Zero\226\128\139Width" } },
  { 0, { plural_label = "Bidi\226\128\174" } },
  { 0, { plural_label = "Smile \240\159\152\128" } },
  { 0, { api_name = "New_Name", plural_label = "X" } },
  { 0, { plural_lable = "typo" } },
  { 0, { profiles = {} } },
  { 0, { profiles = { { id = "0123" }, { id = "9223372036854775808" } } } },
  { 0, { profiles = { { id = ADMIN }, { id = 2423488000000015972 } } } },
  { 0, { profiles = { { id = 1.5 } } } },
  { 2, "Digital_Marketing" }, { 2, MODULE }, { 2, 2423488000000834002 },
  { 2, "bad/../module" }, { 2, "a__b" }, { 2, "Trailing_" }, { 2, "%2e%2e" },
  { 3, "https://www.zohoapis.com" }, { 3, "https://www.zohoapis.eu/" }, { 3, "http://127.0.0.1:8089" },
  { 3, "http://[::1]:1" }, { 3, "http://[::ffff:127.0.0.1]:80" }, { 3, "HTTPS://WWW.ZOHOAPIS.COM:443" },
  { 3, "https://user:zq7x@host.zq7x/zq7x?zq7x#zq7x" }, { 3, "http://zq7x.example.com" },
  { 3, "https://zq7x.com\r\nX-Evil: 1" }, { 3, "https://zq7x.com:99999" },
  { 4, "1000.zq7xabc.def0123", "access_token" }, { 4, "zq7x bad", "oauth.client_secret" },
  { 4, "zq7x\r\nX-Evil: 1", "oauth.refresh_token" }, { 4, 42, "token" },
  { 5, "a b&c=d/\226\130\172" },
  { 6, { code = "INVALID_MODULE", status = 400, details = { resource_path_index = 2 } } },
  { 6, { code = "SOMETHING_NEW", status = 503, message = "x" } },
}
for i, s in ipairs(V) do
  local op, arg, what = s[1], s[2], s[3]
  local bytes
  if op == 3 or op == 5 then bytes = string.char(op, 0) .. len_bytes(#arg) .. arg
  else bytes = string.char(op, 0) .. enc(arg) .. (op == 4 and enc(what) or "") end
  write("validate", string.format("%02d", i), bytes)
  if op <= 2 then -- the same with an allocation failure injected early
    write("validate", string.format("%02d-oom", i), string.char(op, 0x80 | (i % 32)) .. enc(arg))
  end
end
-- Weak mode (failure byte bit 6): the argument's tables turn weak and lose
-- their strong references at collection cycle n, with a full cycle at
-- every allocation. Long profile names (separate strings) and duplicates,
-- so a name compared after its entry died is a use after free.
local LONG = string.rep("N", 45)
local WEAK = { profiles = { { name = LONG }, { name = LONG }, { name = LONG }, { name = LONG } },
               plural_label = "Weak Labels" }
for n = 1, 24 do
  write("validate", string.format("weak-%02d", n), string.char(0, 0x40) .. enc(WEAK) .. string.char(n - 1))
end
write("validate", "weak-validate", string.char(1, 0x40) .. enc(WEAK) .. string.char(4))
write("validate", "weak-error", string.char(6, 0x40) .. enc({ code = "INVALID_DATA", details = { x = { y = LONG } } })
  .. string.char(2))

-- }====

-- {==== request: flags, failure byte, method, url, headers, body, timeout, connect_timeout

local API = "https://www.zohoapis.com/crm/v8/settings/modules/" .. MODULE
local R = {
  { 0, "PUT", API, { "Accept: application/json", "Authorization: Zoho-oauthtoken 1000.zq7x.token",
                     "Content-Type: application/json" }, PAGE_BODY, 30, 10 },
  { 0, "GET", "https://www.zohoapis.com/crm/v8/settings/modules?status=visible%2Cuser_hidden",
    { "Accept: application/json", "If-Modified-Since: Tue, 11 Nov 2025 11:29:45 GMT" }, nil, 30, 10 },
  { 2, "POST", "https://accounts.zoho.com/oauth/v2/token",
    { "Content-Type: application/x-www-form-urlencoded" },
    "grant_type=refresh_token&client_id=1000.X&client_secret=zq7x&refresh_token=1000.zq7x", 5, 1 },
  { 4, "GET", "http://127.0.0.1:8089/crm/v8/settings/profiles", { "Accept:" }, nil, 0.5, 0.25 },
  { 0, "PATCH", "http://[::1]:8089/", {}, "", 1, 1 },
  { 1, "DELETE", "https://www.zohoapis.com/crm/v8/settings/modules/x", {}, nil, 30, 10 },
  { 0, "GET", "https://zq7x.example.com/a b", {}, nil, 30, 10 },
  { 0, "GET", "https://zq7x.example.com/\r\nX-Evil: 1", {}, nil, 30, 10 },
  { 0, "GET", "ftp://zq7x.example.com/", {}, nil, 30, 10 },
  { 0, "GET", API, { "X-zq7x: a\r\nInjected: b" }, nil, 30, 10 },
  { 0, "GET", API, { "no colon zq7x" }, nil, 30, 10 },
  { 0, "GET", API, { "X-Null: zq7x\0" }, nil, 30, 10 },
  { 0, "get", API, {}, nil, 30, 10 },
  { 0, "GET", API, {}, nil, -1, 10 },
}
for i, s in ipairs(R) do
  local parts = { string.char(s[1], 0) }
  for k = 2, 7 do parts[#parts + 1] = enc(s[k]) end
  if s[1] & 1 == 1 then parts[#parts + 1] = "\31" .. enc("http://127.0.0.1:3128") .. enc("zcrm/0.1") .. enc(1048576) end
  write("request", string.format("%02d", i), table.concat(parts))
end

-- }====

-- {==== response: op byte, then responses (status u16 BE, flags, [values], length u16 BE, body)

local function resp(status, body, flags, values)
  return string.pack(">I2B", status, flags or 0) .. (values or "") .. string.pack(">s2", body)
end
local PAGE_RESPONSE = '{"modules":[{"code":"SUCCESS","details":{"id":"2423488000000834002"},'
  .. '"message":"module updated successfully","status":"success"}]}'                  -- [page] Sample Response
local SHAPE_A = '{"code":"INVALID_MODULE","details":{"resource_path_index":2},'
  .. '"message":"the module name given seems to be invalid","status":"error"}'         -- "Status Codes"
local SHAPE_B = '{"modules":[{"code":"MANDATORY_NOT_FOUND","details":{"api_name":"profiles",'
  .. '"json_path":"$.modules[0].profiles"},"message":"required field not found","status":"error"}]}'
local MODULES = '{"modules":[{"id":"111111000000002648","api_name":"Leads","module_name":"Leads",'
  .. '"plural_label":"Leads","singular_label":"Lead","generated_type":"default","api_supported":true,'
  .. '"visibility":1,"status":"visible","profiles":[{"name":"Administrator","id":"111111000000000497"}],'
  .. '"modified_time":"2025-11-11T11:29:45+05:30","private_profile":null}]}'          -- "Modules"
local PROFILES = '{"profiles":[{"id":"2423488000000015972","name":"Administrator","custom":false},'
  .. '{"id":"2423488000000015975","name":"Standard","custom":false}],'
  .. '"info":{"page":1,"per_page":200,"count":2,"more_records":false}}'                 -- "Profiles"
local PROFILES_MORE = PROFILES:gsub('"more_records":false', '"more_records":true')
local TOKEN = '{"access_token":"1000.xxxx.yyyy","scope":"ZohoCRM.settings.modules.ALL ZohoCRM.settings.profiles.READ",'
  .. '"api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}' -- "Step 4: Refreshing your Access Tokens"
local TOKEN_MS = '{"access_token":"1000.xxxx.zzzz","expires_in_sec":3600,"expires_in":3600000}'
local TOKEN_ERR = '{"error":"invalid_code"}'
local TOO_MANY = '{"code":"TOO_MANY_REQUESTS","details":{},"message":"too many","status":"error"}'
local INVALID_TOKEN = '{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}'
local HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"

local S = {
  { 0, resp(200, PAGE_RESPONSE) },
  { 0, resp(400, SHAPE_A) },
  { 0, resp(400, SHAPE_B) },
  { 0, resp(500, '{"code":"INTERNAL_ERROR","details":{},"message":"x","status":"error"}') .. resp(200, PAGE_RESPONSE) },
  { 0, resp(429, TOO_MANY, 3, "\2\9") .. resp(200, PAGE_RESPONSE) },
  { 0, resp(200, "") }, { 0, resp(200, "{\"modules\":\"x\"}") }, { 0, resp(502, HTML, 4) },
  { 0, resp(200, PAGE_RESPONSE:sub(1, 40)) }, { 0, resp(207, PAGE_RESPONSE) },
  { 0, resp(0, "") .. resp(200, PAGE_RESPONSE) },     -- a transport error, then success
  { 1, resp(200, PROFILES) .. resp(200, PAGE_RESPONSE) },
  { 1, resp(200, PROFILES_MORE) .. resp(200, PROFILES) .. resp(200, PAGE_RESPONSE) },
  { 2, resp(200, MODULES) }, { 2, resp(304, "") }, { 2, resp(204, "") },
  { 3, resp(200, MODULES) }, { 3, resp(204, "") }, { 3, resp(200, '{"modules":[]}') },
  { 4, resp(200, PROFILES) }, { 5, resp(200, MODULES) },
  { 0x80, resp(200, TOKEN) .. resp(200, PAGE_RESPONSE) },
  { 0x80, resp(200, TOKEN_MS) .. resp(401, INVALID_TOKEN) .. resp(200, TOKEN) .. resp(200, PAGE_RESPONSE) },
  { 0x80, resp(200, TOKEN_ERR) }, { 0x82, resp(200, '{"error":"Access Denied"}') },
  { 0x83, resp(200, '{"access_token":"1000.a.b","api_domain":"https://www.zohoapis.eu","expires_in":3600}') .. resp(200, MODULES) },
}
for i, s in ipairs(S) do write("response", string.format("%02d", i), string.char(s[1]) .. s[2]) end

-- }====

-- {==== emulator: HTTP-like text, requests separated by "\n%%\n"

local AUTH = "Authorization: Zoho-oauthtoken emulator-token\n"
local E = {
  "GET /crm/v8/settings/modules\n" .. AUTH .. "\n",
  "GET /crm/v8/settings/modules?status=visible,user_hidden\n" .. AUTH .. "\n",
  "GET /crm/v8/settings/modules/" .. MODULE .. "\n" .. AUTH .. "If-Modified-Since: Tue, 11 Nov 2025 11:29:45 GMT\n\n",
  "PUT /crm/v8/settings/modules/" .. MODULE .. "\n" .. AUTH .. "\n" .. PAGE_BODY,
  "PUT /crm/v8/settings/modules/Digital_Marketing\n" .. AUTH .. "\n"
    .. '{"modules":[{"plural_label":"Projects","profiles":[{"id":1},{"id":"2423488000000015972","_delete":1}]}]}',
  "POST /crm/v8/settings/modules\n" .. AUTH .. "\n"
    .. '{"modules":[{"plural_label":"Fleets","singular_label":"Fleet","api_name":"Fleets",'
    .. '"profiles":[{"id":"2423488000000015972"}]}]}',
  "GET /crm/v8/settings/profiles\n" .. AUTH .. "\n",
  "POST /oauth/v2/token\n\ngrant_type=refresh_token&client_id=emulator-client-id"
    .. "&client_secret=emulator-client-secret&refresh_token=emulator-refresh-token",
  "POST /oauth/v2/token/revoke?token=emulator-refresh-token\n\n",
  'POST /__emulator/script\n\n{"mode":"gzip","count":2}\n%%\nGET /crm/v8/settings/modules/Projects\n' .. AUTH .. "\n",
  'POST /__emulator/script\n\n{"mode":"truncated","count":1,"route":"any"}\n%%\nPUT /crm/v8/settings/modules/Projects\n'
    .. AUTH .. '\n{"modules":[{"plural_label":"Client Projects"}]}',
  "!rate=0.5 faults=500,503,reset,slow,429,garbage,deep,nonutf8,wrongtype,empty,html,drip,status:401 seed=3\n"
    .. "GET /crm/v8/settings/modules\n" .. AUTH .. "\n%%\nGET /crm/v8/settings/profiles\n" .. AUTH .. "\n",
  "!credits=6 conc=1 scopes=ZohoCRM.settings.modules.READ\nPUT /crm/v8/settings/modules/Projects\n" .. AUTH
    .. '\n{"modules":[{"singular_label":"P"}]}\n%%\nGET /__emulator/stats\n\n',
  "POST /__emulator/reset\n\n%%\nPOST /__emulator/expire-tokens\n\n%%\nGET /__emulator/state\n\n",
  "DELETE /crm/v8/settings/modules/Projects\n" .. AUTH .. "\n",
  "GET /crm/v8/settings/nothing\n\n",
  "PUT /crm/v8/settings/modules/Leads\nAuthorization: Bearer x\n\n{}",
  "!maxbody=16\nPUT /crm/v8/settings/modules/Projects\n" .. AUTH .. '\n{"modules":[{"plural_label":"Long body here"}]}',
  -- batch update: mixed results, a number id, a standard module, no id
  "PUT /crm/v8/settings/modules\n" .. AUTH .. "\n"
    .. '{"modules":[{"id":"2423488000000834023","plural_label":"Batch Tickets"},{"id":2423488000000834005},'
    .. '{"id":"2423488000000002175","plural_label":"X"},{"plural_label":"No Id"},'
    .. '{"id":"2423488000000834017","profiles":[{"id":"2423488000000015978"},{"id":"2423488000000015972","_delete":null}]}]}',
  -- profiles in pages, with --extra-profiles
  "!profiles=450\nGET /crm/v8/settings/profiles?page=2&per_page=200\n" .. AUTH .. "\n%%\n"
    .. "GET /crm/v8/settings/profiles?page=0&per_page=201\n" .. AUTH .. "\n",
  -- gzip on request, and a label with combining marks and a ZWJ
  "GET /crm/v8/settings/modules/Projects\n" .. AUTH .. "Accept-Encoding: br, gzip;q=0.5\n\n%%\n"
    .. "PUT /crm/v8/settings/modules/Projects\n" .. AUTH .. "Accept-Encoding: *\n\n"
    .. '{"modules":[{"plural_label":"E\\u0301quipes \\u0915\\u094d\\u200d\\u0937"}]}',
  -- the token endpoint as Zoho Accounts: a multipart body with Basic client
  -- credentials, a grant code, its exchange, a revoke; an older API version
  "POST /oauth/v2/token\nContent-Type: multipart/form-data; boundary=XyZ\n"
    .. "Authorization: Basic ZW11bGF0b3ItY2xpZW50LWlkOmVtdWxhdG9yLWNsaWVudC1zZWNyZXQ=\n\n"
    .. '--XyZ\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nrefresh_token\r\n'
    .. '--XyZ\r\nContent-Disposition: form-data; name="refresh_token"\r\n\r\nemulator-refresh-token\r\n--XyZ--\r\n'
    .. '\n%%\nPOST /__emulator/grant-code\n\n{"redirect_uri":"http://127.0.0.1:9/cb"}\n%%\n'
    .. "POST /oauth/v2/token?grant_type=authorization_code&client_id=emulator-client-id"
    .. "&client_secret=emulator-client-secret&code=1000.x.y\n\n\n%%\n"
    .. "POST /oauth/v2/token/revoke?token=emulator-refresh-token\n\n\n%%\n"
    .. "GET /crm/v2.1/settings/modules\n" .. AUTH .. "\n",
}
for i, s in ipairs(E) do write("emulator", string.format("%02d", i), s) end

-- }====

-- {==== undo: module count, per module id kind+value, api name, labels, profiles; heading; plan choices
-- (fuzz/undo_driver.lua). The ids, names and labels of a hostile server: an id that ends the
-- undo file's comment, labels that end a long string, profile names with CR/LF.

local function str(s) return string.char(#s % 48) .. s:sub(1, 47) end
local function digits_id(n) return string.char(0, n // 256, n % 256) end
local function module(id, api, plural, singular, profiles)
  local b = id .. str(api) .. string.char(0) .. str(plural) .. string.char(0) .. str(singular)
    .. string.char(#profiles)
  for _, p in ipairs(profiles) do b = b .. p[1] .. str(p[2]) end
  return b
end
local U = {
  string.char(0) .. module(string.char(1) .. str("1\nos.execute('touch /tmp/x')\n--"), "Digital_Marketing",
    "Old", "Old One", { { digits_id(7), "Admin" } }) .. str("") .. string.char(3, 0, 0),
  string.char(1) .. module(digits_id(5), "A]]..os.exit(1)..[[", "x\r--]] os.exit(1) --[[", "\\\"", {
    { digits_id(9), "Name\nos.exit(1)" }, { digits_id(10), "\27[2J" } })
    .. module(digits_id(6), "Second", "Two\0Nul", "\u{202e}evil", { { digits_id(9), "Name\nos.exit(1)" } })
    .. str("heading\nos.exit(1)") .. string.char(3, 0, 0, 0, 0, 3, 0, 1),
  string.char(0) .. module(string.char(2, 0), "Numeric", "L", "S", {}) .. str("") .. string.char(1),
  string.char(0) .. module(string.char(2, 1), "Too_Big", "L", "S", {}) .. str("") .. string.char(1),
}
for i, s in ipairs(U) do write("undo", string.format("%02d", i), s) end

-- }====

-- {==== changes: change-set files as zcrm plan writes them (changeset.encode of the
-- tables spec/changes_spec.lua's plans give), then hostile ones: a profile by name,
-- `_delete` false, unknown keys, huge numbers, control characters and bidi marks in
-- labels, created, plan and args, one profile id under two names (fuzz/changes_driver.lua).
-- Needs the core built (`make`): the encoder is zcrm's own.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "csrc/?.so;" .. package.cpath
local changeset = require "zcrm.plan.changeset"
local cjson_null = require("zcrm.core").null

local MARKETING, CONTRACTOR = "2423488000000015987", "2423488000000015984"
local function prof(id, name) return { id = id, name = name } end
local ADMIN_P, STANDARD_P = prof(ADMIN, "Administrator"), prof(STANDARD, "Standard")

local function change(api, id, before, after, body)
  return { module = api, id = id, before = before, after = after, body = body }
end
local function vals(plural, singular, profiles)
  return { plural_label = plural, singular_label = singular, profiles = profiles }
end

local function set(changes, extra)
  local t = { format = "zcrm.changes", version = 1, created = "2026-12-07T20:32:05Z",
              zcrm_version = "zcrm 0.1.0", api_domain = "http://127.0.0.1:8643", org = "2423488000000002175",
              plan = "sandbox-modules.lua", args = { "Sellers" }, plan_hash = "fnv1a64:374c3d3382d696de",
              changes = changes }
  for k, v in pairs(extra or {}) do t[k] = v end
  for k, v in pairs(t) do if v == "(none)" then t[k] = nil end end   -- an older set lacks them
  return t
end

local SUPPLIERS = change("Suppliers", "2423488000000834005",
  vals("Suppliers", "Supplier", { ADMIN_P, STANDARD_P }), vals("Sellers", "Supplier", { ADMIN_P, STANDARD_P }),
  { plural_label = "Sellers" })
local PROJECTS = change("Projects", "2423488000000834008",
  vals("Projects", "Project", { ADMIN_P }), vals("Client Projects", "Client Project", { ADMIN_P }),
  { plural_label = "Client Projects", singular_label = "Client Project" })
local ASSETS = change("Assets", "2423488000000834017",
  vals("Assets", "Asset", { ADMIN_P }), vals("Assets", "Asset", { ADMIN_P, prof(MARKETING, "Marketing") }),
  { profiles = { { id = MARKETING } } })
local TICKETS = change("Tickets", "2423488000000834011",
  vals("Tickets", "Ticket", { ADMIN_P, prof(CONTRACTOR, "Contractor") }), vals("Help Desk", "Ticket", { ADMIN_P }),
  { plural_label = "Help Desk", profiles = { { id = CONTRACTOR, _delete = cjson_null } } })

local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  return c
end

local C = {
  -- as zcrm plan writes them
  changeset.encode(set { SUPPLIERS, PROJECTS, ASSETS, TICKETS }),
  changeset.encode(set({ TICKETS }, { plan = "(none)", args = "(none)", plan_hash = "(none)", zcrm_version = "(none)" })),
  changeset.encode(set({}, { args = {} })),
}
-- hostile: each edits a copy of the first set
local function hostile(edit)
  local t = copy(set { SUPPLIERS, PROJECTS, ASSETS, TICKETS })
  edit(t)
  C[#C + 1] = changeset.encode(t)
end
hostile(function(t) t.changes[1].body.profiles = { { name = "Administrator", _delete = cjson_null } } end)
hostile(function(t) t.changes[3].body.profiles = { { id = MARKETING, _delete = false } } end)
hostile(function(t) t.changes[2].note = "x"; t.extra = { 1, 2 } end)
hostile(function(t) t.changes[1].before.profiles[1].custom = true end)
hostile(function(t) t.version = 1e300; t.org = 2423488000000002175 end)
hostile(function(t) t.changes[1].id = "99999999999999999999"; t.changes[2].before.profiles[1].id = "18446744073709551617" end)
hostile(function(t)
  t.created = "2026-12-07T20:32:05Z\27[2J"
  t.args = { "a\nb", "\27]52;c;ZXZpbA==\7", "\u{202e}txt.lua" }
end)
hostile(function(t)
  t.plan = "\u{202e}aul.snalp"; t.args = { "\r\n\0\127", "\u{200b}", "\27[31mred" }
  t.zcrm_version = "zcrm \u{2067}0.1"
  t.changes[1].module = "Supp\u{202e}liers"
  t.changes[4].before.plural_label = "Tick\27[2Jets\r\n"; t.changes[4].before.singular_label = "\0"
  t.changes[4].after.singular_label = "\0"
  t.changes[4].before.profiles[2].name = "Con\27]0;x\7tractor"
  t.changes[4].after.profiles[1].name = "Admin\u{202e}istrator"
  t.changes[4].before.profiles[1].name = "Admin\u{202e}istrator"
end)
hostile(function(t) t.changes[4].after.profiles[1].name = "Administrators" end)   -- one id, two names
hostile(function(t) t.changes[2].id = t.changes[1].id end)
-- F6: objects where lists go (read as empty lists, their entries unchecked)
C[#C + 1] = C[2]:gsub('"changes": %[\n', '"changes": {"hidden":\n'):gsub("\n  %]\n}\n$", "\n  }\n}\n")
hostile(function(t)
  local c = t.changes[1]
  t.changes = { c }
  c.before.profiles = { a = c.before.profiles[1], b = c.before.profiles[2] }
  c.after.profiles = { a = c.after.profiles[1], b = c.after.profiles[2] }
end)
-- text the encoder cannot write: truncated, not an object, nulls where strings go
C[#C + 1] = C[1]:sub(1, 200)
C[#C + 1] = "[1,2,3]"
C[#C + 1] = C[1]:gsub('"Sellers"', "null", 1)
for i, s in ipairs(C) do write("changes", string.format("%02d", i), s) end

-- }====

print("seeds written under fuzz/corpus/")
