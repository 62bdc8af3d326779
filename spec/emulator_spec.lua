-- bin/zcrm-emulator over real HTTP (the system curl): routes, errors in Zoho's
-- two shapes, OAuth quirks, limits, faults, hooks, robustness, persistence.
local cjson = require "cjson.safe"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local labels = require "spec.support.labels"

local TOKEN = "Zoho-oauthtoken emulator-token"
local PAGE_MODULE = "2423488000000834002"
local ADMIN, STANDARD, SALES = "2423488000000015972", "2423488000000015975", "2423488000000015978"
local BIN = os.getenv("ZCRM_EMULATOR") or "bin/zcrm-emulator"
local q = emulator.quote

-- One API call; returns status, decoded body (or the raw text), headers, curl rc.
local function call(emu, method, path, body, opts)
  opts = opts or {}
  local headers = opts.headers or { Authorization = opts.auth == nil and TOKEN or opts.auth or nil }
  local status, text, hdrs, rc = emu:request(method, path, {
    headers = headers, body = type(body) == "table" and cjson.encode(body) or body,
    timeout = opts.timeout, curl_args = opts.curl_args, insecure = opts.insecure,
  })
  local decoded = cjson.decode(text)
  return status, decoded == nil and text or decoded, hdrs, rc
end

local function put(emu, module, item, opts)
  return call(emu, "PUT", "/crm/v8/settings/modules/" .. module, { modules = { item } }, opts)
end

local module_in = require("spec.support.state").module

local function profile_ids(m)
  local ids = {}
  for _, p in ipairs(m.profiles) do ids[#ids + 1] = p.id end
  table.sort(ids)
  return ids
end

local function shell(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- Run n copies of one request at once with curl --parallel; returns the statuses.
local function parallel(emu, n, path, extra)
  local cfg = os.tmpname()
  local f = assert(io.open(cfg, "w"))
  for _ = 1, n do
    f:write(string.format('url = "%s%s"\noutput = "/dev/null"\n', emu.url, path))
  end
  f:close()
  local out = shell(string.format("curl -s -Z --parallel-immediate --parallel-max %d -K %s -H %s %s "
    .. "-w '%%{http_code}\\n' 2>/dev/null", n, q(cfg), q("Authorization: " .. TOKEN), extra or ""))
  os.remove(cfg)
  local codes = {}
  for c in out:gmatch("%d+") do codes[#codes + 1] = tonumber(c) end
  return codes
end

local function count(list, v)
  local n = 0
  for _, x in ipairs(list) do if x == v then n = n + 1 end end
  return n
end

local function now()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("a"))
  p:close()
  return t
end

local function shape_a(body, code)
  assert.equal(code, body.code)
  assert.equal("error", body.status)
  assert.is_string(body.message)
  assert.is_table(body.details)
end

local function shape_b(body, code, api_name, json_path)
  assert.is_table(body.modules, "expected {\"modules\":[...]}")
  assert.equal(1, #body.modules)
  local item = body.modules[1]
  assert.equal(code, item.code)
  assert.equal("error", item.status)
  assert.is_string(item.message)
  if api_name then assert.equal(api_name, item.details.api_name) end
  if json_path then assert.equal(json_path, item.details.json_path) end
  return item
end

describe("zcrm-emulator", function()
  local emu

  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  describe("command line", function()
    it("prints the listening line first and a port it picked", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", emu.url)
      assert.is_true(emu.port > 0)
    end)

    it("documents every flag in --help", function()
      local out, code = shell(q(BIN) .. " --help")
      assert.equal(0, code)
      for _, flag in ipairs { "--port", "--host", "--latency-ms", "--concurrency", "--credits",
          "--access-token", "--scopes", "--client-id", "--client-secret", "--refresh-token",
          "--token-ttl", "--expires-in-ms", "--token-api-domain", "--refresh-rate-limit",
          "--fault-rate", "--faults", "--seed", "--tls-cert", "--tls-key", "--state",
          "--extra-modules", "--extra-profiles", "--max-body", "--retry-after", "--grant-ttl",
          "--credits-window", "--module-quota", "--permissions" } do
        assert.truthy(out:find(flag, 1, true), flag)
      end
    end)

    it("refuses unknown flags and bad values", function()
      local _, code = shell(q(BIN) .. " --bogus 1 2>/dev/null")
      assert.equal(2, code)
      _, code = shell(q(BIN) .. " --port nope 2>/dev/null")
      assert.equal(2, code)
      _, code = shell(q(BIN) .. " --faults 500,nonsense --port 0 2>/dev/null")
      assert.equal(1, code)
      _, code = shell(q(BIN) .. " --extra-profiles 501 2>/dev/null")   -- the org holds 512
      assert.equal(2, code)
    end)

    it("exits 0 on SIGINT as on SIGTERM", function()
      local e = emulator.start {}
      os.execute("kill -INT " .. e.pid)
      assert.equal(0, e:stop())
    end)
  end)

  describe("modules and profiles", function()
    it("lists the seeded org with string ids", function()
      local status, body = call(emu, "GET", "/crm/v8/settings/modules")
      assert.equal(200, status)
      local by = {}
      for _, m in ipairs(body.modules) do
        assert.is_string(m.id)
        assert.matches("^%d+$", m.id)
        by[m.api_name] = m
      end
      assert.equal(PAGE_MODULE, by.Digital_Marketing.id)
      assert.equal("custom", by.Digital_Marketing.generated_type)
      assert.equal("Campaign Assets", by.Digital_Marketing.plural_label)
      assert.same({ ADMIN, STANDARD }, profile_ids(by.Digital_Marketing))
      for _, std in ipairs { "Leads", "Contacts", "Accounts", "Deals", "Tasks", "Calls", "Products" } do
        assert.equal("default", by[std].generated_type, std)
      end
      assert.equal("Meetings", by.Events.plural_label)
      assert.equal("Meetings", by.Events.module_name)
      local custom = 0
      for _, m in pairs(by) do if m.generated_type == "custom" then custom = custom + 1 end end
      assert.is_true(custom >= 10)
    end)

    it("filters by status and refuses an unknown status", function()
      local status, body = call(emu, "GET", "/crm/v8/settings/modules?status=user_hidden")
      assert.equal(200, status)
      for _, m in ipairs(body.modules) do assert.equal("user_hidden", m.status) end
      assert.equal(1, #body.modules)
      status, body = call(emu, "GET", "/crm/v8/settings/modules?status=visible,user_hidden")
      assert.equal(200, status)
      assert.is_true(#body.modules > 20)
      status = call(emu, "GET", "/crm/v8/settings/modules?status=scheduled_for_deletion")
      assert.equal(204, status)
      status, body = call(emu, "GET", "/crm/v8/settings/modules?status=visible,gone")
      assert.equal(400, status)
      shape_a(body, "INVALID_DATA")
      assert.equal("status", body.details.param_name)
      assert.equal(1, body.details.index)
    end)

    it("answers 304 for If-Modified-Since at or after the last change", function()
      local function ims(t, fmt)
        return call(emu, "GET", "/crm/v8/settings/modules", nil,
          { headers = { Authorization = TOKEN, ["If-Modified-Since"] = os.date(fmt, t) } })
      end
      local http, iso = "!%a, %d %b %Y %H:%M:%S GMT", "!%Y-%m-%dT%H:%M:%S+00:00"
      local s1, b1 = ims(os.time() + 86400, http)
      assert.equal(304, s1)
      assert.equal("", b1)
      assert.equal(304, (ims(os.time() + 86400, iso)))
      assert.equal(200, (ims(os.time() - 86400, http)))
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/modules", nil,
        { headers = { Authorization = TOKEN, ["If-Modified-Since"] = "yesterday-ish" } })))
    end)

    it("gets one module by id or API name", function()
      local s1, b1 = call(emu, "GET", "/crm/v8/settings/modules/" .. PAGE_MODULE)
      local s2, b2 = call(emu, "GET", "/crm/v8/settings/modules/Digital_Marketing")
      assert.equal(200, s1)
      assert.equal(200, s2)
      assert.same(b1, b2)
      assert.equal(1, #b1.modules)
      assert.equal("Digital_Marketing", b1.modules[1].api_name)
    end)

    it("answers INVALID_MODULE for an unknown module, top-level", function()
      for _, m in ipairs { "Nope", "9999999999999999999", "digital_marketing" } do
        local status, body = call(emu, "GET", "/crm/v8/settings/modules/" .. m)
        assert.equal(400, status)
        shape_a(body, "INVALID_MODULE")
        assert.equal(2, body.details.resource_path_index)
      end
    end)

    it("lists profiles", function()
      local status, body = call(emu, "GET", "/crm/v8/settings/profiles")
      assert.equal(200, status)
      local names = {}
      for _, p in ipairs(body.profiles) do names[p.id] = p.name end
      assert.equal("Administrator", names[ADMIN])
      assert.equal("Standard", names[STANDARD])
      assert.is_true(#body.profiles >= 4)
      assert.equal(#body.profiles, body.info.count)
    end)
  end)

  describe("the Update Custom Module page's sample", function()
    it("sent as the page shows it, answers with the page's sample response", function()
      local input = os.tmpname()
      local f = assert(io.open(input, "w"))
      f:write([[
{
    "modules": [
        {
             "plural_label": "Digital Marketings",
             "singular_label": "Digital Marketing",

            "profiles": [
                {
                    "id": "2423488000000015972",
                      "_delete": null
                },

                {
                    "id": "2423488000000015975"
                }

        ]
    }
]
}
]])
      f:close()
      local out = shell(string.format('curl -s "%s/crm/v8/settings/modules/2423488000000834002" -X PUT -d "@%s" '
        .. '-H "Authorization: Zoho-oauthtoken emulator-token"', emu.url, input))
      os.remove(input)
      assert.same({ modules = { { code = "SUCCESS", details = { id = PAGE_MODULE },
        message = "module updated successfully", status = "success" } } }, cjson.decode(out))
      local m = module_in(emu:state(), "Digital_Marketing")
      assert.equal("Digital Marketings", m.plural_label)
      assert.equal("Digital Marketing", m.singular_label)
      assert.same({ STANDARD }, profile_ids(m))
      assert.equal(1, emu:stats().updates_applied)
    end)
  end)

  describe("PUT /crm/v8/settings/modules/{module}", function()
    it("updates by API name and grants a profile", function()
      local status, body = put(emu, "Assets", { profiles = { { id = SALES } } })
      assert.equal(200, status)
      assert.equal("SUCCESS", body.modules[1].code)
      assert.same({ ADMIN, STANDARD, SALES }, profile_ids(module_in(emu:state(), "Assets")))
    end)

    it("accepts 25 Unicode letters, digits and spaces", function()
      for _, label in ipairs { "Ünïcödé Prøjects 2024", "Проекты", "项目管理", "परियोजनाएं",
                               string.rep("a", 25) } do
        local status, body = put(emu, "Projects", { plural_label = label })
        assert.equal(200, status, label .. ": " .. cjson.encode(body))
      end
    end)

    local cases = {
      { "26 characters", { plural_label = string.rep("x", 26) }, "INVALID_DATA", "plural_label",
        "$.modules[0].plural_label", function(item) assert.equal(25, item.details.maximum_length) end },
      { "26 Unicode characters", { singular_label = string.rep("é", 26) }, "INVALID_DATA",
        "singular_label", "$.modules[0].singular_label",
        function(item) assert.equal(25, item.details.maximum_length) end },
      { "special characters", { plural_label = "Assets!" }, "INVALID_DATA", "plural_label",
        "$.modules[0].plural_label" },
      { "an underscore", { singular_label = "Asset_Item" }, "INVALID_DATA", "singular_label",
        "$.modules[0].singular_label" },
      -- cJSON ends a string at \u0000: "Assets\0x" was checked and stored as "Assets"
      { "a NUL in a label", { plural_label = "Assets\0x" }, "INVALID_DATA", "plural_label",
        "$.modules[0].plural_label" },
      { "a label that is only a NUL", { singular_label = "\0" }, "INVALID_DATA", "singular_label",
        "$.modules[0].singular_label" },
      { "an empty label", { plural_label = "" }, "INVALID_DATA", "plural_label", "$.modules[0].plural_label" },
      { "a label that is not a string", { plural_label = 12 }, "INVALID_DATA", "plural_label",
        "$.modules[0].plural_label" },
      { "a plural label another module has", { plural_label = "Projects" }, "DUPLICATE_DATA",
        "plural_label", "$.modules[0].plural_label" },
      { "a singular label in another case", { singular_label = "PROJECT" }, "DUPLICATE_DATA",
        "singular_label", "$.modules[0].singular_label" },
      { "empty profiles", '{"profiles":[]}', "MINIMUM_DATA_NOT_FOUND", "profiles", "$.modules[0].profiles" },
      { "null profiles", { profiles = cjson.null }, "MINIMUM_DATA_NOT_FOUND", "profiles",
        "$.modules[0].profiles" },
      { "revoking every profile", { profiles = { { id = ADMIN, _delete = cjson.null },
        { id = STANDARD, _delete = cjson.null } } }, "MINIMUM_DATA_NOT_FOUND", "profiles",
        "$.modules[0].profiles" },
      { "an api_name change", { api_name = "Digital_Marketing2" }, "NOT_ALLOWED", "api_name",
        "$.modules[0].api_name" },
      { "an unknown profile id", { profiles = { { id = "2423488000000099999" } } }, "INVALID_DATA", "id",
        "$.modules[0].profiles[0].id" },
      { "a profile id as a JSON number", { profiles = { { id = STANDARD }, { id = 2423488000000015972 } } },
        "INVALID_DATA", "id", "$.modules[0].profiles[1].id",
        function(item) assert.is_string(item.details.expected_data_type) end },
      { "a profile without id", { profiles = { { name = "Standard" } } }, "MANDATORY_NOT_FOUND", "id",
        "$.modules[0].profiles[0].id" },
      { "_delete that is not null", { profiles = { { id = ADMIN, _delete = true }, { id = SALES } } },
        "INVALID_DATA", "_delete", "$.modules[0].profiles[0]._delete" },
      { "the module id as a JSON number", { id = 2423488000000834002, plural_label = "Numbers" },
        "INVALID_DATA", "id", "$.modules[0].id",
        function(item) assert.is_string(item.details.expected_data_type) end },
      { "nothing to update", { foo = 1 }, "MANDATORY_NOT_FOUND" },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1] .. " with " .. c[3] .. " per item, changing nothing", function()
        local before = module_in(emu:state(), "Digital_Marketing")
        local status, body
        if type(c[2]) == "string" then   -- lua-cjson 2.1 cannot encode []
          status, body = call(emu, "PUT", "/crm/v8/settings/modules/Digital_Marketing",
                              '{"modules":[' .. c[2] .. ']}')
        else
          status, body = put(emu, "Digital_Marketing", c[2])
        end
        assert.equal(400, status)
        local item = shape_b(body, c[3], c[4], c[5])
        if c[6] then c[6](item) end
        assert.same(before, module_in(emu:state(), "Digital_Marketing"))
        assert.equal(0, emu:stats().updates_applied)
      end)
    end

    describe("labels of spec/fixtures/labels.json, with the client's verdicts", function()
      for _, e in ipairs(labels.load()) do
        it(labels.name(e), function()
          -- Projects: its own labels may be set again, so no seeded label is a duplicate
          local body = '{"modules":[{"plural_label":"' .. e.text:gsub('[%c"\\]', function(c)
            return string.format("\\u%04x", c:byte())
          end) .. '"}]}'
          local status, answer = call(emu, "PUT", "/crm/v8/settings/modules/Projects", body)
          if e.ok then
            assert.equal(200, status, cjson.encode(answer))
            assert.equal(e.text, module_in(emu:state(), "Projects").plural_label)
          else
            assert.equal(400, status)
            local item = shape_b(answer, "INVALID_DATA", "plural_label", "$.modules[0].plural_label")
            assert.equal(e.why == "length" and 25 or nil, item.details.maximum_length)
          end
        end)
      end
    end)

    it("refuses bad UTF-8 in a label", function()
      local status, body = call(emu, "PUT", "/crm/v8/settings/modules/Digital_Marketing",
        '{"modules":[{"plural_label":"Bad \xff\xfe Label"}]}')
      assert.equal(400, status)
      shape_b(body, "INVALID_DATA", "plural_label", "$.modules[0].plural_label")
    end)

    it("answers INVALID_MODULE top-level for an unknown module", function()
      local status, body = put(emu, "No_Such_Module", { plural_label = "Whatever" })
      assert.equal(400, status)
      shape_a(body, "INVALID_MODULE")
      assert.equal(2, body.details.resource_path_index)
    end)

    it("relabels a standard module and changes its profiles, as Zoho's newer OpenAPI does", function()
      local status, body = put(emu, "Deals", { plural_label = "Opportunities", singular_label = "Opportunity",
        profiles = { { id = SALES, _delete = cjson.null } } })
      assert.equal(200, status)
      assert.equal("SUCCESS", body.modules[1].code)
      local deals = module_in(emu:state(), "Deals")
      assert.equal("default", deals.generated_type)
      assert.same({ "Opportunities", "Opportunity" }, { deals.plural_label, deals.singular_label })
      for _, id in ipairs(profile_ids(deals)) do assert.not_equal(SALES, id) end
    end)

    it("answers Module rename not allowed for a module Zoho keeps to itself, yet takes its profiles", function()
      local status, body = put(emu, "Visits", { plural_label = "Site Visits" })
      assert.equal(400, status)
      local item = body.modules[1]
      assert.same({ "INVALID_DATA", "id", "$.modules[0].id", "Module rename not allowed" },
        { item.code, item.details.api_name, item.details.json_path, item.message })
      local visits = module_in(emu:state(), "Visits")
      assert.equal("system_hidden", visits.status)
      assert.equal("Visits", visits.plural_label)
      -- its own labels again, with a profile change: no rename, accepted
      status = put(emu, "Visits", { plural_label = "Visits", profiles = { { id = SALES, _delete = cjson.null } } })
      assert.equal(200, status)
    end)

    it("refuses profile changes of a team module with NOT_ALLOWED, but relabels it", function()
      local state = emu:state()
      assert.equal("team_based", module_in(state, "Team_Tasks").access_type)
      local status, body = put(emu, "Team_Tasks", { profiles = { { id = SALES } } })
      assert.equal(400, status)
      local item = body.modules[1]
      assert.same({ "NOT_ALLOWED", "profiles", "$.modules[0].profiles", "profile update for team module is not allowed" },
        { item.code, item.details.api_name, item.details.json_path, item.message })
      assert.same(profile_ids(module_in(state, "Team_Tasks")), profile_ids(module_in(emu:state(), "Team_Tasks")))
      assert.equal(200, (put(emu, "Team_Tasks", { plural_label = "Squad Tasks" })))
    end)

    it("refuses more than one module per call", function()
      local status, body = call(emu, "PUT", "/crm/v8/settings/modules/Digital_Marketing",
        { modules = { { plural_label = "One Thing" }, { plural_label = "Two Things" } } })
      assert.equal(400, status)
      shape_a(body, "LIMIT_EXCEEDED")
    end)

    it("answers MANDATORY_NOT_FOUND for empty or missing modules", function()
      for _, b in ipairs { '{"modules":[]}', '{}', '{"modules":null}', '' } do
        local status, body = call(emu, "PUT", "/crm/v8/settings/modules/Digital_Marketing", b)
        assert.equal(400, status, b)
        shape_a(body, "MANDATORY_NOT_FOUND")
        assert.equal("$.modules", body.details.json_path)
      end
    end)

    it("answers INVALID_DATA for malformed JSON or a wrong frame", function()
      for _, b in ipairs { '{"modules":[{', 'not json', '[1,2]', '{"modules":"x"}', '{"modules":[5]}' } do
        local status, body = call(emu, "PUT", "/crm/v8/settings/modules/Digital_Marketing", b)
        assert.equal(400, status, b)
        local code = body.code or body.modules[1].code
        assert.equal("INVALID_DATA", code, b)
      end
    end)

    it("keeps labels unique after a rename frees one", function()
      assert.equal(200, (put(emu, "Projects", { plural_label = "Old Projects" })))
      assert.equal(200, (put(emu, "Tickets", { plural_label = "Projects" })))
      local status, body = put(emu, "Assets", { plural_label = "Old Projects" })
      assert.equal(400, status)
      shape_b(body, "DUPLICATE_DATA", "plural_label")
    end)
  end)

  describe("PUT /crm/v8/settings/modules (batch)", function()
    local TICKETS, PROJECTS, ASSETS = "2423488000000834023", "2423488000000834005", "2423488000000834017"

    local function batch(e, items)
      return call(e, "PUT", "/crm/v8/settings/modules", { modules = items })
    end

    it("applies every item and answers 200 with one result per item, in order, for 5 credits", function()
      local status, body = batch(emu, {
        { id = TICKETS, plural_label = "Batch Tickets" },
        { id = PROJECTS, singular_label = "Batch Project", profiles = { { id = SALES } } },
      })
      assert.equal(200, status)
      assert.equal(2, #body.modules)
      assert.same({ code = "SUCCESS", details = { id = TICKETS }, message = "module updated successfully",
                    status = "success" }, body.modules[1])
      assert.equal(PROJECTS, body.modules[2].details.id)
      local state = emu:state()
      assert.equal("Batch Tickets", module_in(state, "Tickets").plural_label)
      assert.equal("Batch Project", module_in(state, "Projects").singular_label)
      local stats = emu:stats()
      assert.equal(2, stats.updates_applied)
      assert.equal(5, stats.credits_used)
      assert.equal(1, stats.requests.by_route["PUT /crm/v8/settings/modules"])
    end)

    it("answers 207 when some items fail: those change nothing, the others are applied", function()
      local status, body = batch(emu, {
        { id = TICKETS, plural_label = "Fine Tickets" },
        { id = PROJECTS, plural_label = "Bad!" },
        { plural_label = "No Id" },
        { id = "2423488000000002209", plural_label = "Standard" },
        { id = "2423488000000099999", plural_label = "Unknown" },
        { id = ASSETS, profiles = { { id = "2423488000000099999" } } },
      })
      assert.equal(207, status)
      assert.equal(6, #body.modules)
      assert.equal("SUCCESS", body.modules[1].code)
      local want = {
        { "INVALID_DATA", "plural_label", "$.modules[1].plural_label" },
        { "MANDATORY_NOT_FOUND", "id", "$.modules[2].id" },
        { "INVALID_DATA", "id", "$.modules[3].id" },
        { "INVALID_DATA", "id", "$.modules[4].id" },
        { "INVALID_DATA", "id", "$.modules[5].profiles[0].id" },
      }
      for i, w in ipairs(want) do
        local item = body.modules[i + 1]
        assert.equal("error", item.status)
        assert.same(w, { item.code, item.details.api_name, item.details.json_path })
      end
      local state = emu:state()
      assert.equal("Fine Tickets", module_in(state, "Tickets").plural_label)
      assert.equal("Projects", module_in(state, "Projects").plural_label)
      assert.equal(1, emu:stats().updates_applied)
    end)

    it("relabels Deals and removes a profile from it, as the newer OpenAPI's example does", function()
      local status, body = batch(emu, {
        { id = "2423488000000002181", plural_label = "DealsUpdated", profiles = { { id = SALES, _delete = cjson.null } } },
      })
      assert.equal(200, status)
      assert.equal("SUCCESS", body.modules[1].code)
      local deals = module_in(emu:state(), "Deals")
      assert.equal("DealsUpdated", deals.plural_label)
      for _, id in ipairs(profile_ids(deals)) do assert.not_equal(SALES, id) end
    end)

    it("answers 400 when every item fails, changing nothing", function()
      local before = emu:state()
      local status, body = batch(emu, { { id = TICKETS, plural_label = "" }, { id = 2423488000000834005 } })
      assert.equal(400, status)
      assert.equal(2, #body.modules)
      assert.equal("INVALID_DATA", body.modules[2].code)
      assert.equal("bigint", body.modules[2].details.expected_data_type)
      assert.same(before, emu:state())
    end)

    it("takes 100 items and refuses 101 with LIMIT_EXCEEDED, top-level", function()
      local e = emulator.start { "--extra-modules", "101" }
      local items = {}
      for i = 1, 101 do
        items[i] = { id = tostring(2423488000010000000 + i), plural_label = "Batch Modules " .. i }
      end
      local status, body = batch(e, items)
      assert.equal(400, status)
      shape_a(body, "LIMIT_EXCEEDED")
      assert.equal(100, body.details.limit)
      items[101] = nil
      status, body = batch(e, items)
      local stats = e:stats()
      e:stop()
      assert.equal(200, status)
      assert.equal(100, #body.modules)
      assert.equal(100, stats.updates_applied)
    end)

    it("answers a bad frame top-level, as the single PUT does", function()
      local status, body = call(emu, "PUT", "/crm/v8/settings/modules", '{"modules":{}}')
      assert.equal(400, status)
      shape_a(body, "INVALID_DATA")
      status, body = call(emu, "PUT", "/crm/v8/settings/modules", "")
      assert.equal(400, status)
      shape_a(body, "MANDATORY_NOT_FOUND")
    end)
  end)

  describe("GET /crm/v8/settings/profiles pages", function()
    it("pages by page and per_page with info.more_records; --extra-profiles seeds many", function()
      local e = emulator.start { "--extra-profiles", "450" }
      local seen, page, pages = {}, 1, 0
      repeat
        local status, body = call(e, "GET", "/crm/v8/settings/profiles?page=" .. page)
        assert.equal(200, status)
        pages = pages + 1
        assert.equal(page, body.info.page)
        assert.equal(200, body.info.per_page)
        assert.equal(#body.profiles, body.info.count)
        for _, p in ipairs(body.profiles) do
          assert.is_nil(seen[p.id]); seen[p.id] = p.name
        end
        page = page + 1
      until not body.info.more_records
      assert.equal(3, pages)
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.equal(456, n)
      assert.equal("Administrator", seen[ADMIN])
      local status, body = call(e, "GET", "/crm/v8/settings/profiles?page=2&per_page=5")
      assert.equal(200, status)
      assert.equal(5, #body.profiles)
      assert.is_true(body.info.more_records)
      assert.equal(204, (call(e, "GET", "/crm/v8/settings/profiles?page=4")))
      -- a profile from the last page can be granted like any other
      local last = body.profiles[1].id
      assert.equal(200, (put(e, "Assets", { profiles = { { id = last } } })))
      local s400, b400 = call(e, "GET", "/crm/v8/settings/profiles?per_page=201")
      e:stop()
      assert.equal(400, s400)
      shape_a(b400, "INVALID_DATA")
      assert.equal("per_page", b400.details.param_name)
    end)
  end)

  describe("POST /crm/v8/settings/modules", function()
    it("creates a custom module, one per call, for 500 credits", function()
      local status, body = call(emu, "POST", "/crm/v8/settings/modules", { modules = { {
        plural_label = "Drones", singular_label = "Drone", profiles = { { id = ADMIN } } } } })
      assert.equal(201, status)
      local item = body.modules[1]
      assert.equal("SUCCESS", item.code)
      assert.equal("module created successfully", item.message)
      assert.matches("^%d+$", item.details.id)
      local s2, b2 = call(emu, "GET", "/crm/v8/settings/modules/Drones")
      assert.equal(200, s2)
      assert.equal(item.details.id, b2.modules[1].id)
      assert.equal("custom", b2.modules[1].generated_type)
      assert.equal(501, emu:stats().credits_used)
    end)

    it("checks mandatory fields, api_name and duplicates", function()
      local status, body = call(emu, "POST", "/crm/v8/settings/modules",
        { modules = { { plural_label = "Drones", profiles = { { id = ADMIN } } } } })
      assert.equal(400, status)
      shape_b(body, "MANDATORY_NOT_FOUND", "singular_label", "$.modules[0].singular_label")
      status, body = call(emu, "POST", "/crm/v8/settings/modules", { modules = { {
        plural_label = "Drones", singular_label = "Drone", api_name = "Tickets", profiles = { { id = ADMIN } } } } })
      assert.equal(400, status)
      shape_b(body, "DUPLICATE_DATA", "api_name")
      status, body = call(emu, "POST", "/crm/v8/settings/modules", { modules = { {
        plural_label = "Drones", singular_label = "Drone", api_name = "bad__name", profiles = { { id = ADMIN } } } } })
      assert.equal(400, status)
      shape_b(body, "INVALID_DATA", "api_name")
      status, body = call(emu, "POST", "/crm/v8/settings/modules", { modules = { {
        plural_label = "Vehicles", singular_label = "Drone", profiles = { { id = ADMIN } } } } })
      assert.equal(400, status)
      shape_b(body, "DUPLICATE_DATA", "plural_label")
    end)

    it("takes a display_field and checks it as Create Custom Module states", function()
      local function create(df)
        return call(emu, "POST", "/crm/v8/settings/modules", { modules = { {
          plural_label = "Drones", singular_label = "Drone", profiles = { { id = ADMIN } }, display_field = df } } })
      end
      for _, case in ipairs {
        { { data_type = "text" }, "MANDATORY_NOT_FOUND", "field_label" },
        { { field_label = string.rep("x", 101) }, "INVALID_DATA", "field_label" },
        { { field_label = "Tag", data_type = "date" }, "INVALID_DATA", "data_type" },
        { { field_label = "Tag", data_type = "autonumber" }, "DEPENDENT_FIELD_MISSING", "auto_number" },
        { { field_label = "Tag", data_type = "autonumber", auto_number = { start_number = "1x" } }, "INVALID_DATA", "start_number" },
        { { field_label = "Tag", data_type = "autonumber", auto_number = { start_number = "1", suffix = string.rep("s", 51) } },
          "INVALID_DATA", "suffix" },
      } do
        local status, body = create(case[1])
        assert.equal(400, status)
        shape_b(body, case[2], case[3])
      end
      assert.equal(201, (create { field_label = "Tag", data_type = "autonumber",
                                  auto_number = { start_number = "1000", prefix = "D-" } }))
    end)
  end)

  describe("auth", function()
    it("answers 401 AUTHENTICATION_FAILURE without a usable header", function()
      for _, h in ipairs { false, "Bearer emulator-token", "Zoho-oauthtoken " } do
        local status, body = call(emu, "GET", "/crm/v8/settings/modules", nil, { auth = h })
        assert.equal(401, status)
        shape_a(body, "AUTHENTICATION_FAILURE")
      end
    end)

    it("answers 401 INVALID_TOKEN for an unknown token", function()
      local status, body = call(emu, "GET", "/crm/v8/settings/modules", nil,
        { auth = "Zoho-oauthtoken 1000.unknown.token" })
      assert.equal(401, status)
      shape_a(body, "INVALID_TOKEN")
    end)

    it("answers 401 OAUTH_SCOPE_MISMATCH when the token lacks the scope", function()
      local ro = emulator.start { "--scopes", "ZohoCRM.settings.modules.READ" }
      local s1 = call(ro, "GET", "/crm/v8/settings/modules/Tickets")
      local s2, b2 = put(ro, "Tickets", { plural_label = "Read Only" })
      local s3, b3 = call(ro, "GET", "/crm/v8/settings/profiles")
      ro:stop()
      assert.equal(200, s1)
      assert.equal(401, s2)
      shape_a(b2, "OAUTH_SCOPE_MISMATCH")
      assert.equal(401, s3)
      shape_a(b3, "OAUTH_SCOPE_MISMATCH")
    end)

    it("answers INVALID_REQUEST_METHOD (400) and INVALID_URL_PATTERN (404)", function()
      local status, body = call(emu, "DELETE", "/crm/v8/settings/modules/Tickets")
      assert.equal(400, status)
      shape_a(body, "INVALID_REQUEST_METHOD")
      status, body = call(emu, "PATCH", "/crm/v8/settings/profiles")
      assert.equal(400, status)
      shape_a(body, "INVALID_REQUEST_METHOD")
      for _, path in ipairs { "/crm/v8/settings/fields", "/crm/v2/settings/fields", "/", "/crm/v8/settings/modules/a/b" } do
        status, body = call(emu, "GET", path)
        assert.equal(404, status, path)
        shape_a(body, "INVALID_URL_PATTERN")
      end
    end)
  end)

  describe("OAuth token endpoint", function()
    local FORM = "grant_type=refresh_token&client_id=emulator-client-id"
      .. "&client_secret=emulator-client-secret&refresh_token=emulator-refresh-token"

    local function token(e, body, query)
      local status, text, hdrs = e:request("POST", "/oauth/v2/token" .. (query or ""), {
        body = body, headers = { "Content-Type: application/x-www-form-urlencoded" } })
      return status, cjson.decode(text), hdrs
    end

    it("issues a working access token with api_domain and expires_in in seconds", function()
      local status, body = token(emu, FORM)
      assert.equal(200, status)
      assert.matches("^1000%.%x+%.%x+$", body.access_token)
      assert.equal(emu.url, body.api_domain)
      assert.equal(3600, body.expires_in)
      assert.is_nil(body.expires_in_sec)
      assert.equal("Bearer", body.token_type)
      assert.is_string(body.scope)
      local s2 = call(emu, "GET", "/crm/v8/settings/modules/Tickets", nil,
        { auth = "Zoho-oauthtoken " .. body.access_token })
      assert.equal(200, s2)
      local stats = emu:stats()
      assert.equal(1, stats.token_refreshes)
      assert.equal(1, stats.tokens_issued)
      assert.equal(1, stats.requests.by_route["POST /oauth/v2/token"])
    end)

    it("takes the parameters from the query string too", function()
      local status, body = token(emu, nil, "?" .. FORM)
      assert.equal(200, status)
      assert.is_string(body.access_token)
    end)

    it("answers errors with HTTP 200 and an error key", function()
      local s1, b1 = token(emu, (FORM:gsub("emulator%-client%-secret", "wrong")))
      assert.equal(200, s1)
      assert.same({ error = "invalid_client" }, b1)
      local s2, b2 = token(emu, (FORM:gsub("emulator%-refresh%-token", "1000.revoked.token")))
      assert.equal(200, s2)
      assert.same({ error = "invalid_code" }, b2)
      local s3, b3 = token(emu, (FORM:gsub("refresh_token&", "password&", 1)))
      assert.equal(200, s3)
      assert.is_string(b3.error)
      assert.equal(0, emu:stats().tokens_issued)
    end)

    it("throttles past the refresh limit with Zoho's Access Denied", function()
      local e = emulator.start { "--refresh-rate-limit", "3" }
      for _ = 1, 3 do assert.is_string(select(2, token(e, FORM)).access_token) end
      local status, body = token(e, FORM)
      local stats = e:stats()
      e:stop()
      assert.equal(200, status)
      assert.same({ error_description = "You have made too many requests continuously. Please try again after some time.",
                    error = "Access Denied", status = "failure" }, body)
      assert.equal(4, stats.token_refreshes)
      assert.equal(3, stats.tokens_issued)
    end)

    it("honours --expires-in-ms, --token-api-domain and --token-ttl", function()
      local TTL = 5
      local e = emulator.start { "--expires-in-ms", "--token-ttl", tostring(TTL),
                                 "--token-api-domain", "https://www.zohoapis.com" }
      local path = "/crm/v8/settings/modules/Tickets"
      local t0 = core.now()          -- the token is issued after this
      local _, body = token(e, FORM)
      local auth = "Zoho-oauthtoken " .. body.access_token
      local s1 = call(e, "GET", path, nil, { auth = auth })
      local s1_at = core.now()
      -- the token's end, an event: calls until one is refused
      local s2, b2
      local hang_guard = t0 + 120
      repeat
        s2, b2 = call(e, "GET", path, nil, { auth = auth })
      until s2 ~= 200 or core.now() > hang_guard
      local refused_at = core.now()
      e:stop()
      assert.equal(TTL, body.expires_in_sec)
      assert.equal(TTL * 1000, body.expires_in)
      assert.equal("https://www.zohoapis.com", body.api_domain)
      -- accepted while young (a call that took the whole TTL proves nothing)
      if s1_at - t0 < TTL then assert.equal(200, s1) end
      assert.equal(401, s2)
      shape_a(b2, "INVALID_TOKEN")
      -- and not refused before its TTL was up
      assert.is_true(refused_at - t0 >= TTL, string.format("refused after %.2f s", refused_at - t0))
    end)

    it("expires issued tokens on the hook but keeps the static one", function()
      local _, body = token(emu, FORM)
      local auth = "Zoho-oauthtoken " .. body.access_token
      emu:expire_tokens()
      local s1, b1 = call(emu, "GET", "/crm/v8/settings/profiles", nil, { auth = auth })
      assert.equal(401, s1)
      shape_a(b1, "INVALID_TOKEN")
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles")))
    end)

    it("keeps at most 15 live access tokens per refresh token", function()
      local e = emulator.start { "--refresh-rate-limit", "100" }
      local first = select(2, token(e, FORM)).access_token
      for _ = 1, 15 do token(e, FORM) end
      local status = call(e, "GET", "/crm/v8/settings/profiles", nil, { auth = "Zoho-oauthtoken " .. first })
      e:stop()
      assert.equal(401, status)
    end)

    -- Zoho Accounts' token endpoint as Zoho's own SDKs call it: the Node SDK
    -- posts multipart/form-data; RFC 6749 §2.3.1 allows the client in Basic.
    local function multipart(e, fields, opts)
      local args = {}
      for _, kv in ipairs(fields) do args[#args + 1] = "-F"; args[#args + 1] = kv end
      local status, text = e:request("POST", "/oauth/v2/token" .. ((opts or {}).query or ""),
        { curl_args = args, headers = (opts or {}).headers })
      return status, cjson.decode(text)
    end
    local function basic(id, secret)
      local p = assert(io.popen("printf '%s' " .. q(id .. ":" .. secret) .. " | base64 -w0"))
      local b64 = p:read("a")
      p:close()
      return "Authorization: Basic " .. b64
    end
    local REFRESH_FIELDS = { "grant_type=refresh_token", "client_id=emulator-client-id",
      "client_secret=emulator-client-secret", "refresh_token=emulator-refresh-token" }

    it("reads a multipart/form-data body, as Zoho's Node SDK sends it", function()
      local status, body = multipart(emu, REFRESH_FIELDS)
      assert.equal(200, status)
      assert.matches("^1000%.", body.access_token)
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles", nil,
        { auth = "Zoho-oauthtoken " .. body.access_token })))
      local _, bad = multipart(emu, { "grant_type=refresh_token", "client_id=emulator-client-id",
        "client_secret=wrong", "refresh_token=emulator-refresh-token" })
      assert.same({ error = "invalid_client" }, bad)
      -- a field whose name ends like another's is not it
      local _, other = multipart(emu, { "grant_type=refresh_token", "xclient_id=emulator-client-id",
        "client_secret=emulator-client-secret", "refresh_token=emulator-refresh-token" })
      assert.same({ error = "invalid_client" }, other)
    end)

    it("takes the client's credentials from Authorization: Basic", function()
      local form = "grant_type=refresh_token&refresh_token=emulator-refresh-token"
      local status, text = emu:request("POST", "/oauth/v2/token", { body = form, headers = {
        "Content-Type: application/x-www-form-urlencoded",
        basic("emulator-client-id", "emulator-client-secret") } })
      assert.equal(200, status)
      assert.is_string(cjson.decode(text).access_token)
      local _, text2 = emu:request("POST", "/oauth/v2/token", { body = form, headers = {
        "Content-Type: application/x-www-form-urlencoded",
        basic("emulator-client-id", "wrong") } })
      assert.same({ error = "invalid_client" }, cjson.decode(text2))
      local _, text3 = emu:request("POST", "/oauth/v2/token", { body = form, headers = {
        "Content-Type: application/x-www-form-urlencoded", "Authorization: Basic !!!" } })
      assert.same({ error = "invalid_client" }, cjson.decode(text3))
    end)

    it("exchanges a grant code once for a new refresh token that then refreshes", function()
      local code = emu:grant_code().code
      assert.matches("^1000%.%x+%.%x+$", code)
      local status, body = multipart(emu, { "grant_type=authorization_code", "code=" .. code },
        { headers = { basic("emulator-client-id", "emulator-client-secret") } })
      assert.equal(200, status)
      assert.matches("^1000%.%x+%.%x+$", body.access_token)
      assert.matches("^1000%.%x+%.%x+$", body.refresh_token)
      assert.not_equal("emulator-refresh-token", body.refresh_token)
      assert.equal(emu.url, body.api_domain)
      assert.equal("Bearer", body.token_type)
      assert.equal(3600, body.expires_in)
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles", nil,
        { auth = "Zoho-oauthtoken " .. body.access_token })))
      -- once only
      local _, again = token(emu, "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=emulator-client-secret&code=" .. code)
      assert.same({ error = "invalid_code" }, again)
      -- the new refresh token works for refresh_token grants; a second
      -- exchange gives another one
      local _, refreshed = token(emu, (FORM:gsub("emulator%-refresh%-token", body.refresh_token)))
      assert.is_string(refreshed.access_token)
      assert.is_nil(refreshed.refresh_token)
      local _, second = token(emu, "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=emulator-client-secret&code=" .. emu:grant_code().code)
      assert.is_string(second.refresh_token)
      assert.not_equal(body.refresh_token, second.refresh_token)
      -- the client is checked, and an unknown code is refused
      local _, wrong = token(emu, "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=wrong&code=" .. emu:grant_code().code)
      assert.same({ error = "invalid_client" }, wrong)
      local _, unknown = token(emu, "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=emulator-client-secret&code=1000.nope.nope")
      assert.same({ error = "invalid_code" }, unknown)
    end)

    it("checks redirect_uri when the code was given one, and expires codes after --grant-ttl", function()
      local e = emulator.start { "--grant-ttl", "1" }
      local CODE = "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=emulator-client-secret&code="
      local c1 = e:grant_code("http://127.0.0.1:9/cb").code
      local _, b1 = token(e, CODE .. c1 .. "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fother")
      local c2 = e:grant_code("http://127.0.0.1:9/cb").code
      local _, b2 = token(e, CODE .. c2 .. "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb")
      local c3 = e:grant_code().code
      os.execute("sleep 1.2")        -- past its 1 s life, on the emulator's own clock
      local _, b3 = token(e, CODE .. c3)
      e:stop()
      assert.same({ error = "invalid_redirect_uri" }, b1)
      assert.is_string(b2.refresh_token)
      assert.same({ error = "invalid_code" }, b3)
    end)

    it("revokes an issued refresh token and its access tokens, not the others", function()
      local _, issued = token(emu, "grant_type=authorization_code&client_id=emulator-client-id"
        .. "&client_secret=emulator-client-secret&code=" .. emu:grant_code().code)
      local _, other = token(emu, FORM)
      local status, text = emu:request("POST", "/oauth/v2/token/revoke?token=" .. issued.refresh_token)
      assert.equal(200, status)
      assert.same({ status = "success" }, cjson.decode(text))
      assert.equal(401, (call(emu, "GET", "/crm/v8/settings/profiles", nil,
        { auth = "Zoho-oauthtoken " .. issued.access_token })))
      assert.same({ error = "invalid_code" },
        select(2, token(emu, (FORM:gsub("emulator%-refresh%-token", issued.refresh_token)))))
      assert.equal(400, (emu:request("POST", "/oauth/v2/token/revoke?token=" .. issued.refresh_token)))
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles", nil,
        { auth = "Zoho-oauthtoken " .. other.access_token })))
      assert.is_string(select(2, token(emu, FORM)).access_token)
    end)

    it("forgets revoked refresh tokens", function()
      local status = emu:request("POST", "/oauth/v2/token/revoke?token=emulator-refresh-token")
      assert.equal(200, status)
      assert.same({ error = "invalid_code" }, select(2, token(emu, FORM)))
      emu:reset()
      assert.is_string(select(2, token(emu, FORM)).access_token)
    end)
  end)

  describe("limits", function()
    it("answers exactly the excess over --concurrency with 429, max_in_flight at the cap", function()
      -- under a wrapper such as valgrind, arrivals spread out: hold calls longer
      local hold = os.getenv("ZCRM_EMULATOR_WRAPPER") and "5000" or "500"
      local e = emulator.start { "--concurrency", "10", "--latency-ms", hold }
      local codes = parallel(e, 50, "/crm/v8/settings/modules/Tickets")
      local stats = e:stats()
      local status, body = call(e, "GET", "/__emulator/stats")
      e:stop()
      assert.equal(50, #codes)
      assert.equal(10, count(codes, 200))
      assert.equal(40, count(codes, 429))
      assert.equal(10, stats.max_in_flight)
      assert.equal(40, stats.responses["429"])
      assert.equal(0, stats.in_flight)
      assert.equal(200, status)
      assert.is_table(body.requests)
    end)

    it("answers a concurrency 429 in Zoho's shape", function()
      local e = emulator.start { "--concurrency", "0" }
      local status, body = call(e, "GET", "/crm/v8/settings/profiles")
      e:stop()
      assert.equal(429, status)
      assert.same({}, body.details)
      shape_a(body, "TOO_MANY_REQUESTS")
    end)

    it("adds --latency-ms without holding up other connections", function()
      -- 15 calls of 2 s each: one after another they would take 30 s
      local e = emulator.start { "--latency-ms", "2000" }
      local t0 = now()
      local codes = parallel(e, 15, "/crm/v8/settings/profiles")
      local elapsed = now() - t0
      e:stop()
      assert.equal(15, count(codes, 200))
      assert.is_true(elapsed >= 2.0, "too fast: " .. elapsed)
      assert.is_true(elapsed < 15, "serialised: " .. elapsed)
    end)

    it("charges credits, shows X-API-CREDITS-REMAINING from half, then answers 429", function()
      local e = emulator.start { "--credits", "12" }
      local _, _, h1 = call(e, "GET", "/crm/v8/settings/modules/Tickets")        -- 1 used
      local s2, _, h2 = put(e, "Tickets", { plural_label = "Credit Tickets" })  -- 6 used
      local s3, _, h3 = put(e, "Tickets", { plural_label = "Credit Ticketz" })  -- 11 used
      local s4, b4 = put(e, "Tickets", { plural_label = "Credit Tickety" })     -- needs 16
      local s5, _, h5 = call(e, "GET", "/crm/v8/settings/profiles")             -- 12 used
      local stats = e:stats()
      e:stop()
      assert.is_nil(h1["x-api-credits-remaining"])
      assert.equal(200, s2)
      assert.equal("6", h2["x-api-credits-remaining"])
      assert.equal(200, s3)
      assert.equal("1", h3["x-api-credits-remaining"])
      assert.equal(429, s4)
      shape_a(b4, "TOO_MANY_REQUESTS")
      assert.equal(200, s5)
      assert.equal("0", h5["x-api-credits-remaining"])
      assert.equal(12, stats.credits_used)
      assert.equal(0, stats.credits_remaining)
    end)
  end)

  describe("realism: permissions, versions, quota, credit window, seed", function()
    it("--permissions none: changes answer 403 NO_PERMISSION and change nothing; reads still work", function()
      local e = emulator.start { "--permissions", "none" }
      local s1, b1 = put(e, "Tickets", { plural_label = "Denied Tickets" })
      local s2, b2 = call(e, "POST", "/crm/v8/settings/modules", { modules = { {
        plural_label = "Drones", singular_label = "Drone", profiles = { { id = ADMIN } } } } })
      local s3, b3 = call(e, "PUT", "/crm/v8/settings/modules", { modules = { { id = "2423488000000834023", plural_label = "X" } } })
      local s4 = call(e, "GET", "/crm/v8/settings/modules/Tickets")
      local state = e:state()
      e:stop()
      for _, r in ipairs { { s1, b1 }, { s2, b2 }, { s3, b3 } } do
        assert.equal(403, r[1])
        shape_a(r[2], "NO_PERMISSION")
        assert.same({ "Crm_Implied_Customize_Zoho_CRM" }, r[2].details.permissions)
      end
      assert.equal(200, s4)
      assert.equal("Tickets", module_in(state, "Tickets").plural_label)
    end)

    it("answers API_NOT_SUPPORTED with supported_version for an older API version", function()
      for _, c in ipairs { { "GET", "/crm/v2/settings/modules" }, { "GET", "/crm/v2.1/settings/modules/Tickets" },
                           { "PUT", "/crm/v7/settings/modules/Tickets" }, { "GET", "/crm/v6/settings/profiles" },
                           { "PUT", "/crm/v7/settings/modules" } } do
        local status, body = call(emu, c[1], c[2], c[1] == "PUT" and { modules = { { plural_label = "Old" } } } or nil)
        assert.equal(400, status, c[2])
        shape_a(body, "API_NOT_SUPPORTED")
        assert.equal(8, body.details.supported_version)
      end
      assert.equal(404, (call(emu, "GET", "/crm/v9/settings/modules")))
      assert.equal(404, (call(emu, "GET", "/crm/v2/settings/nothing")))
      assert.equal("Tickets", module_in(emu:state(), "Tickets").plural_label)
    end)

    it("--module-quota N: the create past N custom modules is LIMIT_EXCEEDED with details.limit", function()
      local custom = 0
      for _, m in ipairs(emu:state().modules) do if m.generated_type == "custom" then custom = custom + 1 end end
      local e = emulator.start { "--module-quota", tostring(custom + 1) }
      local function create(name)
        return call(e, "POST", "/crm/v8/settings/modules", { modules = { {
          plural_label = name .. "s", singular_label = name, profiles = { { id = ADMIN } } } } })
      end
      local s1 = create("Drone")
      local s2, b2 = create("Kite")
      local n = #e:state().modules
      e:stop()
      assert.equal(201, s1)
      assert.equal(400, s2)
      shape_a(b2, "LIMIT_EXCEEDED")
      assert.equal(custom + 1, b2.details.limit)
      assert.equal(#emu:state().modules + 1, n)
    end)

    it("refills credits over the rolling --credits-window", function()
      -- Both edges are events, never timed: calls until the 3 credits run out
      -- (on a machine so slow that 3 calls never fit in 5 s, the loop stops
      -- at its guard and the test fails by saying so), then calls until the
      -- window gives them back.
      local e = emulator.start { "--credits", "3", "--credits-window", "5" }
      local answered, s1, b1 = 0
      repeat
        s1, b1 = call(e, "GET", "/crm/v8/settings/profiles")
        if s1 == 200 then answered = answered + 1 end
      until s1 ~= 200 or answered > 30
      local s2
      local hang_guard = os.time() + 60
      repeat
        s2 = call(e, "GET", "/crm/v8/settings/profiles")
      until s2 ~= 429 or os.time() > hang_guard
      -- Each credit comes back one window after it was spent, so all but the
      -- one the last call spent come back in time (awaited: under valgrind
      -- the first calls are seconds apart, and so are their refills).
      local stats
      repeat stats = e:stats() until stats.credits_remaining >= 2 or os.time() > hang_guard
      e:stop()
      assert.equal(429, s1, "3 calls never fitted in a 5 s window")
      assert.is_true(answered >= 3)
      shape_a(b1, "TOO_MANY_REQUESTS")
      assert.equal(200, s2)
      assert.is_true(stats.credits_remaining >= 2)
    end)

    it("keeps credits spent within the default 24-hour window", function()
      local e = emulator.start { "--credits", "2" }
      call(e, "GET", "/crm/v8/settings/profiles")
      call(e, "GET", "/crm/v8/settings/profiles")
      local s = call(e, "GET", "/crm/v8/settings/profiles")
      local stats = e:stats()
      e:stop()
      assert.equal(429, s)
      assert.equal(0, stats.credits_remaining)
    end)

    it("seeds a system_hidden module and a team module", function()
      local status, body = call(emu, "GET", "/crm/v8/settings/modules?status=system_hidden")
      assert.equal(200, status)
      assert.equal(1, #body.modules)
      assert.equal("Visits", body.modules[1].api_name)
      assert.equal("team_based", module_in(emu:state(), "Team_Tasks").access_type)
      assert.equal("org_based", module_in(emu:state(), "Tickets").access_type)
    end)
  end)

  describe("scripted faults", function()
    local function get(opts)
      return call(emu, "GET", "/crm/v8/settings/modules/Tickets", nil, opts)
    end

    it("empty, html, garbage, wrongtype, nonutf8, deep, huge", function()
      emu:script("empty", 1)
      local status, body = get()
      assert.equal(200, status); assert.equal("", body)
      emu:script("html", 1)
      status, body = get()
      assert.equal(502, status); assert.matches("<html>", body)
      emu:script("garbage", 1)
      status, body = get()
      assert.equal(200, status); assert.is_string(body)
      emu:script("wrongtype", 1)
      status, body = get()
      assert.equal(200, status); assert.same({ modules = "x" }, body)
      emu:script("nonutf8", 1)
      local s, text = emu:request("GET", "/crm/v8/settings/modules/Tickets", { headers = { Authorization = TOKEN } })
      assert.equal(200, s); assert.truthy(text:find("\xff", 1, true))
      emu:script("deep", 1)
      s, text = emu:request("GET", "/crm/v8/settings/modules/Tickets", { headers = { Authorization = TOKEN } })
      assert.equal(200, s); assert.equal(string.rep("[", 10000) .. string.rep("]", 10000), text)
      emu:script("huge", 1)
      s, text = emu:request("GET", "/crm/v8/settings/modules/Tickets", { headers = { Authorization = TOKEN } })
      assert.equal(200, s); assert.is_true(#text >= 10 * 1024 * 1024)
      assert.is_table(cjson.decode(text))
      status = get()
      assert.equal(200, status)
    end)

    it("garbage: the update applies, then the answer is garbage (a 200 whose body broke)", function()
      emu:script("garbage", 1)
      local s, text = emu:request("PUT", "/crm/v8/settings/modules/Tickets",
        { headers = { Authorization = TOKEN }, body = cjson.encode { modules = { { plural_label = "Junk Tickets" } } } })
      assert.equal(200, s)
      assert.is_nil(cjson.decode(text))
      assert.truthy(text:find("not json", 1, true))
      assert.equal("Junk Tickets", module_in(emu:state(), "Tickets").plural_label)
      assert.equal(1, emu:stats().updates_applied)
    end)

    it("truncated: a JSON prefix with a matching Content-Length; the update still applies", function()
      emu:script("truncated", 1)
      local s, text, h = emu:request("PUT", "/crm/v8/settings/modules/Tickets",
        { headers = { Authorization = TOKEN }, body = cjson.encode { modules = { { plural_label = "Cut Tickets" } } } })
      assert.equal(200, s)
      assert.equal(tostring(#text), h["content-length"])
      assert.is_nil(cjson.decode(text))
      assert.equal('{"modules":[', text:sub(1, 12))
      assert.equal("Cut Tickets", module_in(emu:state(), "Tickets").plural_label)
    end)

    it("gzip: Content-Encoding gzip over a valid answer", function()
      emu:script("gzip", 1)
      local s, text, h = emu:request("GET", "/crm/v8/settings/modules/Tickets",
        { headers = { Authorization = TOKEN }, curl_args = { "--compressed" } })
      assert.equal(200, s)
      assert.equal("gzip", h["content-encoding"])
      assert.equal("Tickets", cjson.decode(text).modules[1].api_name)
      emu:script("gzip", 1)
      local _, raw = emu:request("GET", "/crm/v8/settings/modules/Tickets", { headers = { Authorization = TOKEN } })
      assert.equal("\x1f\x8b", raw:sub(1, 2))
    end)

    it("drip: one byte every 50 ms", function()
      local _, whole = emu:request("GET", "/crm/v8/settings/modules/Tickets", { headers = { Authorization = TOKEN } })
      emu:script("drip", 1)
      local s, text, _, rc = emu:request("GET", "/crm/v8/settings/modules/Tickets",
        { headers = { Authorization = TOKEN }, timeout = 3 })
      assert.equal(28, rc)   -- curl's timeout
      -- the answer had begun, and a 3 s wait got only part of it (the whole takes #whole x 50 ms, over 30 s)
      assert.is_true(#whole > 600, "the answer is too short to outlast the wait")
      assert.is_true(#text >= 1 and #text < #whole, "bytes: " .. #text .. " of " .. #whole)
      assert.equal(whole:sub(1, #text), text)
      assert.equal(200, s)
    end)

    it("reset closes the connection; slow waits 5 s holding no one else up", function()
      emu:script("reset", 1)
      local s, _, _, rc = emu:request("GET", "/crm/v8/settings/profiles", { headers = { Authorization = TOKEN } })
      assert.equal(0, s)
      assert.equal(52, rc)   -- empty reply
      emu:script("slow", 1)
      local s2, _, _, rc2 = emu:request("GET", "/crm/v8/settings/profiles",
        { headers = { Authorization = TOKEN }, timeout = 1 })
      assert.equal(28, rc2)
      assert.equal(0, s2)
      -- answered while the slow one is still held (in flight) on the server
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles")))
      assert.equal(1, emu:stats().in_flight)
    end)

    it("status:NNN answers Zoho's top-level error for that status, count times", function()
      emu:script("status:500", 2)
      emu:script("status:503", 1)
      emu:script("status:429", 1)
      local s1, b1 = get(); local s2 = get(); local s3, b3 = get(); local s4, b4 = get(); local s5 = get()
      assert.equal(500, s1); shape_a(b1, "INTERNAL_ERROR")
      assert.equal(500, s2)
      assert.equal(503, s3); shape_a(b3, "SERVICE_UNAVAILABLE")
      assert.equal(429, s4); shape_a(b4, "TOO_MANY_REQUESTS")
      assert.equal(200, s5)
    end)

    it("hostile answers replace the update: nothing applied", function()
      emu:script("status:500", 1)
      local s = put(emu, "Tickets", { plural_label = "Never Applied" })
      assert.equal(500, s)
      assert.equal("Tickets", module_in(emu:state(), "Tickets").plural_label)
      assert.equal(0, emu:stats().updates_applied)
    end)

    it("route token scripts the token endpoint only", function()
      emu:script("status:503", 1, "token")
      assert.equal(200, (get()))
      local s = emu:request("POST", "/oauth/v2/token", { body = "grant_type=refresh_token" })
      assert.equal(503, s)
      local s2, text = emu:request("POST", "/oauth/v2/token", { body = "grant_type=refresh_token" })
      assert.equal(200, s2)
      assert.is_string(cjson.decode(text).error)
    end)

    it("refuses an unknown mode", function()
      local s = emu:request("POST", "/__emulator/script", { body = '{"mode":"explode"}' })
      assert.equal(400, s)
    end)

    it("refuses a count that is not a whole number from 1 to 1000000", function()
      -- 1e300 and 4e84 were cast to long unchecked (undefined behaviour)
      for _, c in ipairs { "1e300", "4e84", "-1e300", "0", "1.5", "1000001", '"3"' } do
        local s, text = emu:request("POST", "/__emulator/script",
          { body = '{"mode":"status:500","count":' .. c .. '}' })
        assert.equal(400, s, c)
        assert.equal("INVALID_DATA", cjson.decode(text).code, c)
      end
      assert.equal(200, (get()))   -- none of them was queued
    end)
  end)

  describe("random faults", function()
    local function run(seed)
      local e = emulator.start { "--fault-rate", "0.5", "--faults", "500,503,429", "--seed", seed }
      local codes = {}
      for i = 1, 30 do codes[i] = (call(e, "GET", "/crm/v8/settings/profiles")) end
      e:stop()
      return table.concat(codes, ",")
    end

    it("are reproducible with --seed", function()
      local a, b, c = run("7"), run("7"), run("8")
      assert.equal(a, b)
      assert.not_equal(a, c)
      assert.truthy(a:find("200")); assert.truthy(a:find("50[03]") or a:find("429"))
    end)
  end)

  describe("hooks", function()
    it("are not counted and need no token; every other request is", function()
      -- its own emulator: a slow answer of an earlier test would count here
      local own = emulator.start {}
      call(own, "GET", "/crm/v8/settings/modules/Tickets", nil, { auth = false })  -- 401
      call(own, "GET", "/nowhere")                                                 -- 404
      own:request("POST", "/oauth/v2/token", { body = "grant_type=refresh_token" })
      call(own, "PUT", "/crm/v8/settings/modules/Tickets", { modules = { { plural_label = "Hooked" } } })
      own:state(); own:stats()
      local stats = own:stats()
      own:stop()
      assert.equal(4, stats.requests.total)
      assert.equal(1, stats.requests.by_method.PUT)
      assert.equal(2, stats.requests.by_method.GET)
      assert.equal(1, stats.requests.by_route["POST /oauth/v2/token"])
      assert.equal(1, stats.requests.by_route["other"])
      assert.equal(1, stats.responses["401"])
      assert.equal(1, stats.responses["404"])
      assert.equal(2, stats.responses["200"])
      assert.equal(1, stats.updates_applied)
      assert.equal(1, stats.max_in_flight)
      for _, k in ipairs { "credits_used", "credits_remaining", "token_refreshes", "tokens_issued" } do
        assert.is_number(stats[k], k)
      end
    end)

    it("reset restores the seeded org, zeroes counters and clears scripts", function()
      -- its own emulator: a slow answer of an earlier test must not count here
      local own = emulator.start {}
      put(own, "Tickets", { plural_label = "Changed Tickets" })
      own:script("status:500", 5)
      own:reset()
      assert.equal("Tickets", module_in(own:state(), "Tickets").plural_label)
      local stats = own:stats()
      local status = call(own, "GET", "/crm/v8/settings/profiles")
      own:stop()
      assert.equal(0, stats.requests.total)
      assert.equal(0, stats.credits_used)
      assert.equal(200, status)
    end)

    it("state returns full modules and profiles", function()
      local state = emu:state()
      assert.is_true(#state.modules > 25)
      assert.is_true(#state.profiles >= 4)
      assert.is_string(module_in(state, "Digital_Marketing").singular_label)
    end)
  end)

  describe("robustness", function()
    it("answers 413 over the body cap, by Content-Length or chunked", function()
      local e = emulator.start { "--max-body", "1000" }
      local big = '{"modules":[{"plural_label":"' .. string.rep("x", 2000) .. '"}]}'
      local s1, b1 = call(e, "PUT", "/crm/v8/settings/modules/Tickets", big)
      local s2 = call(e, "PUT", "/crm/v8/settings/modules/Tickets", big,
        { curl_args = { "-H", "Transfer-Encoding: chunked" } })
      local s3 = call(e, "GET", "/crm/v8/settings/profiles")
      e:stop()
      assert.equal(413, s1)
      shape_a(b1, "REQUEST_ENTITY_TOO_LARGE")
      assert.equal(413, s2)
      assert.equal(200, s3)
    end)

    it("survives absurd paths, methods, headers and slow senders", function()
      local long = "/crm/v8/settings/modules/" .. string.rep("A", 20000)
      local s1 = call(emu, "GET", long)
      assert.is_true(s1 == 414 or s1 == 431 or s1 == 400 or s1 == 404 or s1 == 0, tostring(s1))
      local s2 = call(emu, "GET", "/crm/v8/settings/modules/%ff%fe%00x")
      assert.is_true(s2 == 400 or s2 == 404, tostring(s2))
      local s3 = call(emu, "BREW", "/crm/v8/settings/modules")
      assert.equal(400, s3)
      local s4 = call(emu, "GET", "/crm/v8/settings/modules", nil,
        { headers = { Authorization = TOKEN, ["X-Big"] = string.rep("h", 100000) } })
      assert.is_true(s4 >= 400 or s4 == 0, tostring(s4))
      local s5 = call(emu, "PUT", "/crm/v8/settings/modules/Tickets",
        cjson.encode { modules = { { plural_label = "Slow Tickets" } } },
        { curl_args = { "--limit-rate", "40" } })
      assert.equal(200, s5)
      local s6 = call(emu, "PUT", "/crm/v8/settings/modules/Tickets", "\0\1\2\255{{{[[[")
      assert.equal(400, s6)
      assert.equal(200, (call(emu, "GET", "/crm/v8/settings/profiles")))
    end)
  end)

  describe("--extra-modules", function()
    it("seeds Bulk_Module_1..N visible to Administrator and Standard", function()
      local e = emulator.start { "--extra-modules", "2000" }
      local s1, b1 = call(e, "GET", "/crm/v8/settings/modules/Bulk_Module_2000")
      local s2 = put(e, "Bulk_Module_1500", { plural_label = "Bulk Renamed" })
      local s3, b3 = put(e, "Bulk_Module_7", { singular_label = "Bulk Module 8" })
      e:stop()
      assert.equal(200, s1)
      local m = b1.modules[1]
      assert.equal("Bulk Module 2000", m.singular_label)
      assert.equal("Bulk Modules 2000", m.plural_label)
      assert.equal("custom", m.generated_type)
      assert.same({ ADMIN, STANDARD }, profile_ids(m))
      assert.equal(200, s2)
      assert.equal(400, s3)
      shape_b(b3, "DUPLICATE_DATA", "singular_label")
    end)
  end)

  describe("--state", function()
    it("saves on change atomically and loads at start", function()
      local path = os.tmpname()
      os.remove(path)
      local e = emulator.start { "--state", path }
      assert.equal(200, (put(e, "Tickets", { plural_label = "Saved Tickets" })))
      local saved = cjson.decode(assert(io.open(path)):read("a"))
      assert.equal("Saved Tickets", module_in(saved, "Tickets").plural_label)
      e:stop()
      local again = emulator.start { "--state", path }
      local _, body = call(again, "GET", "/crm/v8/settings/modules/Tickets")
      again:stop()
      assert.equal("Saved Tickets", body.modules[1].plural_label)
      local leftovers = shell("ls " .. q(path) .. ".tmp.* 2>/dev/null")
      assert.equal("", leftovers)
      os.remove(path)
    end)

    it("answers an update only once the file holds it, so SIGKILL right after loses nothing", function()
      local dir = files.tmpdir()
      local path = dir .. "/state.json"
      local e = emulator.start { "--state", path }
      local wanted = {}
      for i, m in ipairs { "Tickets", "Projects", "Shipments", "Assets", "Contracts" } do
        wanted[m] = "Durable Label " .. i
        assert.equal(200, (put(e, m, { plural_label = wanted[m] })))
        -- read at once: the answer came after the write, not before
        local saved = cjson.decode(assert(io.open(path)):read("a"))
        assert.equal(wanted[m], module_in(saved, m).plural_label)
      end
      os.execute("kill -KILL " .. e.pid)
      pcall(e.stop, e)               -- reaps it and removes its files; the exit is 137
      local again = emulator.start { "--state", path }
      local state = again:state()
      again:stop()
      for m, label in pairs(wanted) do assert.equal(label, module_in(state, m).plural_label) end
      files.remove_tree(dir)
    end)

    it("removes at start the temporaries of dead runs (a kill -9 mid-save), never following a symlink", function()
      local dir = files.tmpdir()
      local path, victim = dir .. "/state.json", dir .. "/victim"
      local e = emulator.start { "--state", path }
      assert.equal(200, (put(e, "Tickets", { plural_label = "Kept Tickets" })))
      e:kill()
      -- what a kill between creating and renaming leaves, and a symlink planted
      -- at another dead run's name; pid 1 lives, so its file is another run's
      local exited = assert(shell("sh -c 'echo $$'")):match("%d+")
      files.write(victim, "precious")
      -- temporaries are "state.json.tmp.PID.XXXXXX": six random characters
      -- after the PID, so a process that reuses a dead one's PID never has
      -- its own temporary taken for the dead one's
      files.write(path .. ".tmp." .. e.pid .. ".a1B2c3", '{"modules":[{"api_name":"Tick')
      assert.truthy(os.execute(string.format("ln -s %s %s", q(victim), q(path .. ".tmp." .. exited .. ".zz9Yy8"))))
      files.write(path .. ".tmp.1.live01", "a live run's save")
      local again = emulator.start { "--state", path }
      assert.equal("Kept Tickets", module_in(again:state(), "Tickets").plural_label)
      assert.equal(200, (put(again, "Projects", { plural_label = "Saved Projects" })))
      again:stop()
      local left = shell("cd " .. q(dir) .. " && ls -A")
      local saved, kept = cjson.decode(files.read(path)), files.read(victim)
      files.remove_tree(dir)
      assert.equal("state.json\nstate.json.tmp.1.live01\nvictim\n", left)
      assert.equal("precious", kept)
      assert.equal("Saved Projects", module_in(saved, "Projects").plural_label)
    end)

    it("answers 500, not success, when the file cannot be written; the retry succeeds once it can", function()
      local dir = files.tmpdir()
      local path = dir .. "/state.json"
      local e = emulator.start { "--state", path }
      assert.truthy(os.execute("rm -rf " .. q(dir)))
      local status, body = put(e, "Tickets", { plural_label = "Unsaved Tickets" })
      assert.equal(500, status)
      shape_a(body, "INTERNAL_ERROR")
      assert.truthy(os.execute("mkdir " .. q(dir)))
      status = put(e, "Tickets", { plural_label = "Unsaved Tickets" })
      assert.equal(200, status)
      local saved = cjson.decode(assert(io.open(path)):read("a"))
      e:stop()
      files.remove_tree(dir)
      assert.equal("Unsaved Tickets", module_in(saved, "Tickets").plural_label)
    end)

    it("refuses to start when the file cannot be written", function()
      local ok, err = pcall(emulator.start, { "--state", "/nonexistent-dir-zcrm/state.json" })
      assert.is_false(ok)
      assert.matches("cannot save /nonexistent%-dir%-zcrm/state.json", err)
    end)

    it("refuses a file that is not a state file", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w")); f:write("{not json"); f:close()
      local ok, err = pcall(emulator.start, { "--state", path })
      os.remove(path)
      assert.is_false(ok)
      assert.matches("not a state file", err)
    end)
  end)

  describe("slow clients", function()
    local socket = require "socket"

    -- n connections from `from` (another loopback address) that send part
    -- of a request's headers and then nothing more
    local function slow_connections(e, n, from)
      local list = {}
      for i = 1, n do
        local s = assert(socket.tcp())
        assert(s:bind(from, 0))
        s:settimeout(5)
        if s:connect("127.0.0.1", e.port) then
          s:send("GET /crm/v8/settings/modules HTTP/1.1\r\nHost: x\r\n")
          list[#list + 1] = s
        else
          s:close()
        end
        list.tried = i
      end
      return list
    end

    local function close_all(list) for _, s in ipairs(list) do s:close() end end

    it("cannot take every connection from one address: the others are still answered", function()
      -- 1,000 (the default cap) stalled connections starved every other client
      local e = emulator.start { "--max-connections", "40" }
      local slow = slow_connections(e, 45, "127.0.0.2")
      local status = call(e, "GET", "/crm/v8/settings/profiles", nil, { timeout = 20 })
      close_all(slow)
      e:stop()
      assert.equal(200, status)
    end)

    it("is cut when its first request's headers trickle in past --header-timeout", function()
      local e = emulator.start { "--header-timeout", "1", "--idle-timeout", "60" }
      local s = assert(socket.tcp())
      s:settimeout(30)
      assert(s:connect("127.0.0.1", e.port))
      -- one header byte at a time: each one restarts the idle timeout,
      -- but not the header timeout; wait for the server to hang up
      local header, cut = "GET /crm/v8/settings/modules HTTP/1.1\r\nX-Slow: " .. string.rep("a", 200), false
      for i = 1, #header do
        if not s:send(header:sub(i, i)) then cut = true break end
        local r = socket.select({ s }, nil, 0.25)
        if r[1] then
          local _, err = s:receive(1)
          if err == "closed" then cut = true break end
        end
      end
      s:close()
      -- a client that sends its request at once is answered as ever
      local status = call(e, "GET", "/crm/v8/settings/profiles")
      e:stop()
      assert.is_true(cut, "the connection was never cut")
      assert.equal(200, status)
    end)
  end)

  describe("files given on the command line", function()
    -- a FIFO blocked the start (with SIGTERM masked, for the TLS files) and
    -- /dev/zero was read until memory ran out: only regular files are read
    local dir
    before_each(function() dir = files.tmpdir() end)
    after_each(function() files.remove_tree(dir) end)

    local function refused(args, why)
      local ok, err = pcall(emulator.start, args)
      if ok then err:stop() end
      assert.is_false(ok, "started with " .. table.concat(args, " "))
      assert.matches("exit 1", err, 1, true)
      assert.matches(why, err, 1, true)
    end

    local function kinds()
      local fifo, big, plain = dir .. "/fifo", dir .. "/big", dir .. "/plain.pem"
      assert.truthy(os.execute("mkfifo " .. q(fifo)))
      -- sparse: one byte past the cap takes no disk
      assert.truthy(os.execute("truncate -s " .. (256 * 1024 * 1024 + 1) .. " " .. q(big)))
      local f = assert(io.open(plain, "w")); f:write("not a PEM\n"); f:close()
      return { { fifo, "not a regular file" }, { "/dev/zero", "not a regular file" },
               { dir, "not a regular file" }, { big, "larger than 256 MiB" } }, plain
    end

    it("refuses a --state that is a FIFO, a device, a directory or larger than 256 MiB", function()
      for _, k in ipairs((kinds())) do refused({ "--state", k[1] }, "cannot read " .. k[1] .. ": " .. k[2]) end
    end)

    it("refuses a --tls-cert or --tls-key that is a FIFO, a device, a directory or too large", function()
      local list, plain = kinds()
      for _, k in ipairs(list) do
        refused({ "--tls-cert", k[1], "--tls-key", plain }, "cannot read --tls-cert " .. k[1] .. ": " .. k[2])
        refused({ "--tls-cert", plain, "--tls-key", k[1] }, "cannot read --tls-key " .. k[1] .. ": " .. k[2])
      end
    end)
  end)

  describe("TLS", function()
    it("serves HTTPS with --tls-cert and --tls-key", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert.truthy(os.execute("mkdir -p " .. q(dir)))
      local _, code = shell(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        .. "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", q(dir), q(dir)))
      if code ~= 0 then pending("openssl is not available") return end
      local e = emulator.start { "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/key.pem" }
      local status = call(e, "GET", "/crm/v8/settings/profiles", nil, { insecure = true })
      e:stop()
      files.remove_tree(dir)
      assert.matches("^https://", e.url)
      assert.equal(200, status)
    end)

    for _, flag in ipairs { "--tls-cert", "--tls-key" } do
      it("refuses to start when " .. flag .. " is a symlink, naming it", function()
        local dir = files.tmpdir()
        local _, code = shell(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
          .. "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", q(dir), q(dir)))
        if code ~= 0 then files.remove_tree(dir) pending("openssl is not available") return end
        local pem = { ["--tls-cert"] = dir .. "/cert.pem", ["--tls-key"] = dir .. "/key.pem" }
        local link = dir .. "/link.pem"
        assert.truthy(os.execute(string.format("ln -s %s %s", q(pem[flag]), q(link))))
        pem[flag] = link
        local ok, err = pcall(emulator.start, { "--tls-cert", pem["--tls-cert"], "--tls-key", pem["--tls-key"] })
        files.remove_tree(dir)
        if ok then err:stop() end
        assert.is_false(ok)
        assert.matches("exit 1", err, 1, true)
        assert.matches("cannot read " .. flag .. " " .. link .. ": it is a symbolic link", err, 1, true)
      end)
    end
  end)
end)
