-- A small checker for the JSON-schema subset of Zoho's OpenAPI files: type
-- (with nullable), required, properties, items, enum, oneOf, and $ref within
-- a file or to a sibling file (`https://.../v8.0/profiles.json#/...`).
--
--   local oas = require "spec.support.oas"
--   local api = oas.open(dir)               -- nil when dir has no modules.json
--   local problems = api:check(value, "modules.json", "#/components/schemas/Response_Wrapper")
--
-- The files are Zoho's (github.com/zoho/crm-oas, v8.0/*.json) and are not in
-- this repository: ZCRM_OAS_DIR, or ../shared/reference/oas, holds them.
local cjson = require "cjson"
local files = require "spec.support.files"

local M = {}
local Api = {}
Api.__index = Api

function M.dir()
  return os.getenv("ZCRM_OAS_DIR") or "../shared/reference/oas"
end

function M.open(dir)
  dir = dir or M.dir()
  if not files.read(dir .. "/modules.json") then return nil end
  return setmetatable({ dir = dir, docs = {} }, Api)
end

function Api:doc(name)
  if not self.docs[name] then
    self.docs[name] = cjson.decode((assert(files.read(self.dir .. "/" .. name), name)))
  end
  return self.docs[name]
end

-- schema node and its file for a $ref seen in file `cur`
function Api:resolve(ref, cur)
  local file, pointer = ref:match("/v8%.0/([%w_]+%.json)(#.*)$")
  if not file then file, pointer = cur, ref end
  local node = self:doc(file)
  for part in pointer:gsub("^#/", ""):gmatch("[^/]+") do
    node = node[part]
    if node == nil then error("unresolved $ref " .. ref .. " in " .. cur) end
  end
  return node, file
end

local function is_type(v, t)
  if t == "object" then return type(v) == "table" and (next(v) == nil or v[1] == nil) end
  if t == "array" then return type(v) == "table" and (next(v) == nil or v[1] ~= nil) end
  if t == "string" then return type(v) == "string" end
  if t == "boolean" then return type(v) == "boolean" end
  if t == "integer" then return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) end
  if t == "number" then return type(v) == "number" end
  return true
end

function Api:walk(v, schema, file, path, out)
  if schema["$ref"] then
    schema, file = self:resolve(schema["$ref"], file)
  end
  if schema.oneOf and #schema.oneOf == 1 then
    return self:walk(v, schema.oneOf[1], file, path, out)
  end
  if schema.oneOf then
    for _, alt in ipairs(schema.oneOf) do
      local sub = {}
      self:walk(v, alt, file, path, sub)
      if #sub == 0 then return end
    end
    out[#out + 1] = path .. ": matches no oneOf branch"
    return
  end
  if v == cjson.null then
    if schema.type and not schema.nullable then out[#out + 1] = path .. ": null, not " .. schema.type end
    return
  end
  if schema.type and not is_type(v, schema.type) then
    out[#out + 1] = string.format("%s: %s, not %s", path, type(v), schema.type)
    return
  end
  if schema.enum then
    local ok = false
    for _, e in ipairs(schema.enum) do if e == v then ok = true end end
    if not ok then out[#out + 1] = path .. ": " .. tostring(v) .. " is not in the enum" end
  end
  if type(v) ~= "table" then return end
  for _, k in ipairs(schema.required or {}) do
    if v[k] == nil then out[#out + 1] = path .. "." .. k .. ": required, missing" end
  end
  for k, sub in pairs(schema.properties or {}) do
    if v[k] ~= nil then self:walk(v[k], sub, file, path .. "." .. k, out) end
  end
  if schema.items then
    for i, item in ipairs(v) do self:walk(item, schema.items, file, path .. "[" .. (i - 1) .. "]", out) end
  end
end

--- The problems of `value` against the schema at `pointer` in `file`
--- (a list of strings; empty when it conforms). `opts.required == false`
--- skips required lists (for list answers, which Zoho trims).
function Api:check(value, file, pointer)
  local out = {}
  self:walk(value, { ["$ref"] = pointer }, file, "$", out)
  return out
end

return M
