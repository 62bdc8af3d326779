-- Zoho's official Node.js SDK (@zohocrm/nodejs-sdk-8.0) logs in to the
-- emulator with OAuth, as it does to Zoho Accounts (a multipart/form-data
-- refresh), and reads, updates and batch-updates modules: the emulator
-- answers Zoho's own client. `make sdk` installs the SDK into
-- spec/sdk/node_modules; without node or the SDK this spec is skipped and
-- says why, except under CI=true, where it must run.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local need = require "spec.support.need"
local module_in = require("spec.support.state").module

local SDK = "spec/sdk/node_modules/@zohocrm/nodejs-sdk-8.0/package.json"

describe("Zoho's Node.js SDK against the emulator", function()
  it("refreshes its own token with OAuth, then reads, updates and batch-updates modules", function()
    local why = need.program("node", "make sdk installs it under CI=true")
      or need.file(SDK, "make sdk installs the SDK")
    if why then return pending(why) end
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
