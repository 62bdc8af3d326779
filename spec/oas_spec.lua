-- The emulator's GET answers against Zoho's OpenAPI schemas (zoho/crm-oas,
-- v8.0/*.json), checked by spec/support/oas.lua. The files are not in this
-- repository; set ZCRM_OAS_DIR to where they are (default
-- ../shared/reference/oas). Without them these specs are pending, but under
-- CI=true they fail.
local cjson = require "cjson"
local with_emulator = require("spec.support.fixture").with_emulator
local oas = require "spec.support.oas"

local TOKEN = "Zoho-oauthtoken emulator-token"

-- CI lays the reference files beside the clone, so there a missing file is a
-- failure; elsewhere (a clone alone) the specs are pending.
local function no_schemas()
  local why = "no OpenAPI files at " .. oas.dir() .. " (set ZCRM_OAS_DIR)"
  if os.getenv("CI") == "true" then error(why) end
  pending(why)
end

describe("emulator answers against the OpenAPI schemas", function()
  local fx = with_emulator { client = false }
  local emu, api
  setup(function() api = oas.open() end)
  before_each(function() emu = fx.emu end)

  local function get(path)
    local status, text = emu:request("GET", path, { headers = { Authorization = TOKEN } })
    assert.equal(200, status, text)
    return cjson.decode(text)
  end

  local function conforms(value, file, pointer)
    local problems = api:check(value, file, pointer)
    assert.same({}, problems, table.concat(problems, "\n"))
  end

  it("GET /settings/modules/{id}: a custom module in full (Response_Wrapper, every required key)", function()
    if not api then return no_schemas() end
    for _, m in ipairs { "2423488000000834002", "Projects", "Memberships" } do
      local body = get("/crm/v8/settings/modules/" .. m)
      conforms(body, "modules.json", "#/components/schemas/Response_Wrapper")
      local mod = body.modules[1]
      -- the detail keys the issue names, with their types
      for _, k in ipairs { "fields", "layouts", "related_lists", "$properties" } do assert.is_table(mod[k]) end
      assert.is_true(#mod.fields >= 3)
      assert.equal("Name", mod.display_field.api_name)
      assert.is_table(mod.custom_view)
      assert.equal("number", type(mod.per_page))
      assert.is_boolean(mod.triggers_supported)
      assert.is_boolean(mod.webform_supported)
      assert.is_table(mod.lookup_field_properties.fields)
    end
  end)

  it("the same schema finds a missing key and a wrong type (the checker is not blind)", function()
    if not api then return no_schemas() end
    local body = get("/crm/v8/settings/modules/Projects")
    body.modules[1].fields = nil
    body.modules[1].per_page = "10"
    local problems = api:check(body, "modules.json", "#/components/schemas/Response_Wrapper")
    assert.equal(2, #problems, table.concat(problems, "\n"))
  end)

  it("GET /settings/modules: each module's keys have the schema's types", function()
    if not api then return no_schemas() end
    local body = get("/crm/v8/settings/modules")
    -- the list form is the short one (Zoho's list example), so the
    -- detail-only required keys are left out of this check
    local schema = api:resolve("#/components/schemas/modules", "modules.json")
    local short = setmetatable({ required = {} }, { __index = schema })
    for i, m in ipairs(body.modules) do
      local problems = {}
      api:walk(m, short, "modules.json", "$.modules[" .. (i - 1) .. "]", problems)
      -- a module never modified has modified_by null in Zoho's own example
      -- answers ("null if never modified"), though the schema says object
      if m.modified_time == cjson.null then
        for k = #problems, 1, -1 do
          if problems[k]:find("%.modified_by: null") then table.remove(problems, k) end
        end
      end
      assert.same({}, problems, table.concat(problems, "\n"))
    end
  end)

  it("GET /settings/profiles: the profiles response schema", function()
    if not api then return no_schemas() end
    local body = get("/crm/v8/settings/profiles")
    local schema = api:doc("profiles.json").paths["/crm/v8/settings/profiles"].get
      .responses["200"].content["application/json"].schema
    local problems, kept = {}, {}
    api:walk(body, schema, "profiles.json", "$", problems)
    -- permissions_details and sections come with GET /settings/profiles/{id}
    -- only, and Zoho's own list example has created_by and created_time
    -- null for the built-in profiles: the schema's Profile is the detail form
    for _, p in ipairs(problems) do
      if not (p:find("%.permissions_details: required") or p:find("%.sections: required")
              or p:find("%.created_by: null") or p:find("%.created_time: null")) then
        kept[#kept + 1] = p
      end
    end
    assert.same({}, kept, table.concat(kept, "\n"))
    assert.is_table(body.info)
  end)
end)
