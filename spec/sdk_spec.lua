-- Zoho's official Node.js SDK (@zohocrm/nodejs-sdk-8.0) logs in to the
-- emulator with OAuth, as it does to Zoho Accounts (a multipart/form-data
-- refresh), and reads, updates and batch-updates modules: the emulator
-- answers Zoho's own client. `make sdk` installs the SDK into
-- spec/sdk/node_modules; without node or the SDK this spec is skipped and
-- says why, except under CI=true, where it must run.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

local SDK = "spec/sdk/node_modules/@zohocrm/nodejs-sdk-8.0/package.json"

local function missing()
  if not os.execute("command -v node >/dev/null 2>&1") then return "node is not installed" end
  local f = io.open(SDK)
  if not f then return "the SDK is not in spec/sdk/node_modules (run make sdk)" end
  f:close()
end

local function module_in(state, api_name)
  for _, m in ipairs(state.modules) do if m.api_name == api_name then return m end end
end

describe("Zoho's Node.js SDK against the emulator", function()
  local why = missing()
  if why and os.getenv("CI") ~= "true" then
    pending("skipped: " .. why .. "; make sdk installs it, CI=true requires it")
    return
  end

  it("refreshes its own token with OAuth, then reads, updates and batch-updates modules", function()
    assert.is_nil(why, why and (why .. "; CI=true requires this spec: run make sdk"))
    local emu = emulator.start {}
    local p = assert(io.popen("node spec/sdk/sdk_oauth.mjs " .. emulator.quote(emu.url) .. " 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    local stats, state = emu:stats(), emu:state()
    emu:stop()
    local res = cjson.decode(out:match("{.*}") or "null")
    assert.is_true(ok, out)
    assert.is_true(res.access_token)
    assert.equal(200, res.list_status)
    assert.equal(#state.modules, res.modules)
    assert.equal("SUCCESS", res.update)
    assert.same({ "SUCCESS", "SUCCESS" }, res.batch)
    -- the SDK refreshed once, at the emulator, and used what it got
    assert.equal(1, stats.token_refreshes)
    assert.equal(1, stats.tokens_issued)
    assert.equal(1, stats.requests.by_route["POST /oauth/v2/token"])
    assert.equal(1, stats.requests.by_route["PUT /crm/v8/settings/modules"])
    assert.is_nil(stats.responses["401"])
    assert.equal("Opportunities", module_in(state, "Deals").plural_label)
    assert.equal("Client Projects", module_in(state, "Projects").plural_label)
    assert.equal("Support Tickets", module_in(state, "Tickets").plural_label)
  end)
end)
