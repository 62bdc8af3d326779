-- The zcrm module (lua/zcrm/init.lua): zcrm.new and client:update_module
-- end to end, over loopback against the emulator. The client's other
-- operations are in modules_spec.lua, its OAuth in auth_spec.lua (see
-- spec/README.md).
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"
local with_emulator = require("spec.support.fixture").with_emulator

local PAGE_MODULE = "2423488000000834002"
local ADMIN, STANDARD = "2423488000000015972", "2423488000000015975"

-- The Update Custom Module page's sample input.
local function page_sample()
  return {
    plural_label = "Digital Marketings",
    singular_label = "Digital Marketing",
    profiles = { { id = ADMIN, _delete = zcrm.null }, { id = STANDARD } },
  }
end

local function api_requests(emu)
  return emu:stats().requests.total
end

describe("zcrm client against the emulator", function()
  local fx = with_emulator { client = { retry_base = 0.01 } }
  local emu, client
  before_each(function() emu, client = fx.emu, fx.client end)

  describe("update_module", function()
    it("applies the page's sample and returns its sample response", function()
      local res, err = client:update_module(PAGE_MODULE, page_sample())
      assert.is_nil(err)
      assert.same({ id = PAGE_MODULE, code = "SUCCESS", message = "module updated successfully",
                    status = "success", details = { id = PAGE_MODULE } }, res)
      local mod = assert(client:get_module(PAGE_MODULE))
      assert.equal("Digital Marketings", mod.plural_label)
      assert.equal("Digital Marketing", mod.singular_label)
      local ids = {}
      for _, p in ipairs(mod.profiles) do ids[p.id] = true end
      assert.is_nil(ids[ADMIN])
      assert.is_true(ids[STANDARD])
    end)

    it("accepts the API name and integer ids, sending ids as exact strings", function()
      local res = assert(client:update_module("Digital_Marketing", {
        profiles = { { id = 2423488000000015975 } },
      }))
      assert.equal(PAGE_MODULE, res.id)
    end)

    it("sends nothing for an invalid update and names the fault", function()
      local before = api_requests(emu)
      local cases = {
        { { plural_lable = "X" }, "INVALID_DATA", "plural_lable" },
        { {}, "MANDATORY_NOT_FOUND" },
        { { plural_label = string.rep("a", 26) }, "INVALID_DATA", "plural_label" },
        { { singular_label = "Bad!" }, "INVALID_DATA", "singular_label" },
        { { profiles = {} }, "MINIMUM_DATA_NOT_FOUND", "profiles" },
        { { api_name = "New_Name" }, "NOT_ALLOWED", "api_name" },
        { { profiles = { { id = 1.5 } } }, "INVALID_DATA" },
      }
      for _, case in ipairs(cases) do
        local res, err = client:update_module(PAGE_MODULE, case[1])
        assert.is_nil(res)
        assert.is_true(zcrm.is_error(err))
        assert.equal("validation", err.kind)
        assert.equal(case[2], err.code)
        if case[3] then assert.equal(case[3], err.field) end
      end
      local res, err = client:update_module("bad/../module", page_sample())
      assert.is_nil(res)
      assert.equal("INVALID_MODULE", err.code)
      assert.equal("validation", err.kind)
      assert.equal(before, api_requests(emu))
    end)

    it("reports an unknown module as Zoho's INVALID_MODULE, top-level shape", function()
      local _, err = client:update_module("No_Such_Module", page_sample())
      assert.equal("api", err.kind)
      assert.equal("INVALID_MODULE", err.code)
      assert.equal(400, err.status)
      assert.equal(2, err.details.resource_path_index)
      assert.is_string(err.resolution)
      assert.is_false(err.retryable)
      assert.matches("^INVALID_MODULE %(HTTP 400%): ", tostring(err))
    end)

    it("reports item errors with Zoho's details", function()
      local _, err = client:update_module(PAGE_MODULE, { profiles = { { id = "1234567890123456789" } } })
      assert.equal("INVALID_DATA", err.code)
      assert.equal(400, err.status)
      assert.equal("api", err.kind)
      assert.is_string(err.details.json_path)
    end)

    it("reports a label taken by another module as DUPLICATE_DATA", function()
      local mods = assert(client:get_modules())
      local other
      for _, m in ipairs(mods) do
        if m.id ~= PAGE_MODULE and m.generated_type == "custom" then other = m break end
      end
      assert.is_table(other)
      local _, err = client:update_module(PAGE_MODULE, { plural_label = other.plural_label })
      assert.equal("DUPLICATE_DATA", err.code)
      assert.equal(400, err.status)
    end)

    it("relabels a standard module (Deals to Opportunities): the server decides, not a local rule", function()
      local res = assert(client:update_module("Deals", { plural_label = "Opportunities", singular_label = "Opportunity" }))
      assert.equal("SUCCESS", res.code)
      local deals = assert(client:get_module("Deals"))
      assert.equal("default", deals.generated_type)
      assert.equal("Opportunities", deals.plural_label)
      -- a module Zoho lets no one rename: the server's refusal, as it gives it
      local _, err = client:update_module("Visits", { plural_label = "Site Visits" })
      assert.equal("INVALID_DATA", err.code)
      assert.equal("id", err.details.api_name)
      assert.equal("Module rename not allowed", err.message)
    end)

    it("reports revoking every profile as MINIMUM_DATA_NOT_FOUND from the server", function()
      local mod = assert(client:get_module(PAGE_MODULE))
      local revoke = {}
      for _, p in ipairs(mod.profiles) do revoke[#revoke + 1] = { id = p.id, _delete = true } end
      local _, err = client:update_module(PAGE_MODULE, { profiles = revoke })
      assert.equal("MINIMUM_DATA_NOT_FOUND", err.code)
      assert.equal("api", err.kind)
    end)

    it("reports a refused token as INVALID_TOKEN (auth), without retrying", function()
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "1000.wrong.token", env = false })
      local before = api_requests(emu)
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("auth", err.kind)
      assert.equal("INVALID_TOKEN", err.code)
      assert.equal(401, err.status)
      assert.equal(before + 1, api_requests(emu))
      assert.not_matches("1000.wrong.token", tostring(err), 1, true)
    end)

    it("retries INTERNAL_ERROR and reports it when retries run out", function()
      emu:script("status:500", 10)
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                  max_retries = 2, retry_base = 0.01, env = false })
      local before = api_requests(emu)
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("INTERNAL_ERROR", err.code)
      assert.equal(500, err.status)
      assert.is_true(err.retryable)
      assert.equal(before + 3, api_requests(emu))
    end)

    it("recovers when a 500 is followed by success", function()
      emu:script("status:500", 1)
      local res = assert(client:update_module(PAGE_MODULE, page_sample()))
      assert.equal("SUCCESS", res.code)
    end)

    it("reports 429 as a limit error once retries run out", function()
      emu:script("status:429", 10)
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                  max_retries = 0, env = false })
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("TOO_MANY_REQUESTS", err.code)
      assert.equal("limit", err.kind)
      assert.equal(429, err.status)
      assert.is_true(err.retryable)
    end)

    for _, mode in ipairs { "empty", "garbage", "truncated", "wrongtype", "html", "deep" } do
      it("turns a '" .. mode .. "' response into a transport error naming the status", function()
        emu:script(mode, 10)
        local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                    max_retries = 0, env = false })
        local res, err = c:update_module(PAGE_MODULE, page_sample())
        assert.is_nil(res)
        assert.is_true(zcrm.is_error(err))
        assert.equal("transport", err.kind)
        assert.equal("UNEXPECTED_RESPONSE", err.code)
        assert.is_number(err.status)
        assert.matches("HTTP " .. err.status, tostring(err), 1, true)
      end)
    end

    it("asks again when an update's success answer is unreadable (the PUT is idempotent)", function()
      emu:script("garbage", 1)
      local before = emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"] or 0
      local res = assert(client:update_module(PAGE_MODULE, page_sample()))
      assert.equal("SUCCESS", res.code)
      assert.equal(before + 2, emu:stats().requests.by_route["PUT /crm/v8/settings/modules/{module}"])
    end)

    it("reports a response over max_response_bytes without reading it all", function()
      emu:script("huge", 1)
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                  max_retries = 0, max_response_bytes = 1024 * 1024, env = false })
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("transport", err.kind)
      assert.equal("RESPONSE_TOO_LARGE", err.code)
    end)

    it("reports a refused connection as CONNECTION_FAILED", function()
      local c = assert(zcrm.new { api_domain = "http://127.0.0.1:9", access_token = "t",
                                  max_retries = 0, env = false })
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("transport", err.kind)
      assert.equal("CONNECTION_FAILED", err.code)
      assert.is_nil(err.status)
      assert.is_true(err.retryable)
    end)

    it("times out a slow answer", function()
      emu:script("slow", 1)
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                                  timeout = 1, max_retries = 0, env = false })
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      assert.equal("TIMEOUT", err.code)
      assert.is_true(err.retryable)
    end)
  end)

  describe("documented request-level errors", function()
    it("INVALID_REQUEST_METHOD for a wrong method", function()
      local _, err = client:request("DELETE", "settings/modules/" .. PAGE_MODULE)
      assert.equal("INVALID_REQUEST_METHOD", err.code)
      assert.equal(400, err.status)
      assert.is_string(err.resolution)
    end)

    it("INVALID_URL_PATTERN for an unknown path", function()
      local _, err = client:request("GET", "settings/no_such_thing")
      assert.equal("INVALID_URL_PATTERN", err.code)
      assert.equal(404, err.status)
    end)

    it("AUTHENTICATION_FAILURE without an Authorization header", function()
      local _, err = client:request("GET", "settings/modules", { auth = false })
      assert.equal("AUTHENTICATION_FAILURE", err.code)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
    end)

    it("MANDATORY_NOT_FOUND for a body without modules", function()
      local _, err = client:request("PUT", "settings/modules/" .. PAGE_MODULE, { body = { note = "no modules key" } })
      assert.equal("MANDATORY_NOT_FOUND", err.code)
    end)

    it("OAUTH_SCOPE_MISMATCH when the token lacks the update scope", function()
      local ro = emulator.start { "--scopes", "ZohoCRM.settings.modules.READ" }
      local c = assert(zcrm.new { api_domain = ro.url, access_token = "emulator-token", env = false })
      local _, err = c:update_module(PAGE_MODULE, page_sample())
      ro:stop()
      assert.equal("OAUTH_SCOPE_MISMATCH", err.code)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.is_false(err.retryable)
    end)
  end)

  describe("label_rules", function()
    local LONG = "Customer Success Programs 2026"        -- 30 ASCII characters
    it("reference (default): at most 25 characters, letters of any script", function()
      local before = api_requests(emu)
      local _, err = client:update_module(PAGE_MODULE, { plural_label = LONG })
      assert.equal("validation", err.kind)
      assert.equal(25, err.details.maximum_length)
      assert.equal(before, api_requests(emu))
      assert(client:update_module(PAGE_MODULE, { plural_label = "Équipes" }))
    end)

    it("openapi: at most 50 characters, ASCII letters, digits and spaces; the server still decides", function()
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token", env = false,
                                  label_rules = "openapi", retry_base = 0.01 })
      local before = api_requests(emu)
      local _, err = c:update_module(PAGE_MODULE, { plural_label = "Équipes" })
      assert.equal("validation", err.kind)
      assert.equal("plural_label", err.field)
      local _, lerr = c:update_module(PAGE_MODULE, { plural_label = string.rep("A", 51) })
      assert.equal(50, lerr.details.maximum_length)
      local _, cerr = c:create_module { plural_label = "Équipes", singular_label = "Équipe", profiles = { { id = ADMIN } } }
      assert.equal("validation", cerr.kind)
      local report, perr = c:apply({ { module = "Projects", plural_label = "Équipes" } }, { diff = false })
      assert.is_nil(report)
      assert.equal("INVALID_PLAN", perr.code)
      assert.equal(before, api_requests(emu))
      -- 30 characters pass here; the emulator, as the reference page says, refuses them
      local _, serr = c:update_module(PAGE_MODULE, { plural_label = LONG })
      assert.equal("api", serr.kind)
      assert.equal(25, serr.details.maximum_length)
      assert.is_true(zcrm.validate_update({ plural_label = LONG }, "openapi"))
      assert.is_nil((zcrm.validate_update({ plural_label = LONG })))
    end)

    it("refuses any other value, naming the option", function()
      local c, err = zcrm.new { api_domain = emu.url, access_token = "t", env = false, label_rules = "oas" }
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.equal("label_rules", err.field)
    end)
  end)

  describe("zcrm.new", function()
    it("refuses plain http off loopback, and accepts it on loopback", function()
      local c, err = zcrm.new { api_domain = "http://www.zohoapis.com", access_token = "t", env = false }
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.truthy(zcrm.new { api_domain = "http://localhost:1", access_token = "t", env = false })
      assert.truthy(zcrm.new { api_domain = "http://[::1]:1", access_token = "t", env = false })
    end)

    it("refuses tokens and domains with CR, LF, NUL or spaces, naming no secret", function()
      for _, bad in ipairs { "abc\r\nX-Evil: 1", "a b", "a\0b", "" } do
        local c, err = zcrm.new { api_domain = emu.url, access_token = bad, env = false }
        assert.is_nil(c)
        assert.equal("config", err.kind)
        if #bad > 2 then assert.is_nil(tostring(err):find(bad, 1, true)) end
      end
      local c, err = zcrm.new { api_domain = "https://x.com\r\n", access_token = "t", env = false }
      assert.is_nil(c)
      assert.equal("config", err.kind)
    end)

    it("refuses unknown options, naming them", function()
      local c, err = zcrm.new { api_domian = "https://x", access_token = "t" }
      assert.is_nil(c)
      assert.equal("config", err.kind)
      assert.matches("api_domian", err.message, 1, true)
    end)

    it("keeps every secret out of the client's fields (pairs shows none)", function()
      local secrets = { "1000.static.secret.token", "s3cret-CLIENT-value", "1000.refresh.secret.value", "proxy-pass-99" }
      local function no_secret(v, where, seen)
        seen = seen or {}
        if type(v) == "string" then
          for _, s in ipairs(secrets) do assert.is_nil(v:find(s, 1, true), where .. " holds a secret") end
        elseif type(v) == "table" and not seen[v] then
          seen[v] = true
          for k, x in pairs(v) do no_secret(k, where, seen); no_secret(x, where .. "." .. tostring(k), seen) end
        end
      end
      local static = assert(zcrm.new { api_domain = emu.url, access_token = secrets[1], env = false,
                                       proxy = "http://user:" .. secrets[4] .. "@127.0.0.1:9" })
      local oauth = assert(zcrm.new { api_domain = emu.url, env = false, oauth = {
        client_id = "1000.ID", client_secret = secrets[2], refresh_token = secrets[3], accounts_url = emu.url } })
      for _, c in ipairs { static, oauth } do
        no_secret(c, "client")
        no_secret(tostring(c), "tostring(client)")
        c:close()
      end
    end)

    it("never shows the token in tostring(client)", function()
      local c = assert(zcrm.new { api_domain = emu.url, access_token = "1000.secret.value", env = false })
      assert.is_nil(tostring(c):find("secret", 1, true))
      assert.matches("^zcrm.client", tostring(c))
    end)
  end)
end)
