-- Compressed answers: the client sends Accept-Encoding for what libcurl can
-- decode, the emulator answers gzip when asked, and the client reads it.
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"

local TOKEN = "Zoho-oauthtoken emulator-token"

describe("gzip answers", function()
  local emu, client

  setup(function()
    emu = emulator.start { "--extra-modules", "200" }
    client = assert(zcrm.new { api_domain = emu.url, access_token = "emulator-token",
                               max_retries = 0, env = false })
  end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("the emulator compresses only for a request that accepts gzip", function()
    local path = "/crm/v8/settings/modules"
    local _, plain, h1 = emu:request("GET", path, { headers = { Authorization = TOKEN } })
    assert.is_nil(h1["content-encoding"])
    local _, _, h2 = emu:request("GET", path, { headers = { Authorization = TOKEN, ["Accept-Encoding"] = "gzip" } })
    assert.equal("gzip", h2["content-encoding"])
    local _, decoded, h3 = emu:request("GET", path, { headers = { Authorization = TOKEN },
                                                      curl_args = { "--compressed" } })
    assert.equal("gzip", h3["content-encoding"])
    assert.equal(plain, decoded)
    local _, _, h4 = emu:request("GET", path, { headers = { Authorization = TOKEN,
                                                            ["Accept-Encoding"] = "br, gzip;q=0" } })
    assert.is_nil(h4["content-encoding"])
  end)

  it("the client asks for it and reads gzip answers to reads and to updates", function()
    local mods = assert(client:get_modules())
    assert.is_true(#mods > 200)
    local m = assert(client:get_module("Bulk_Module_7"))
    assert.equal("Bulk Modules 7", m.plural_label)
    local profiles = assert(client:get_profiles())
    assert.is_true(#profiles >= 6)
    local res = assert(client:update_module("Bulk_Module_7", { plural_label = "Zipped Modules" }))
    assert.equal("SUCCESS", res.code)
    local stats = emu:stats()
    -- the three reads are over the emulator's 256-byte threshold; the
    -- update's short answer is not (the 'gzip' fault below covers one)
    assert.equal(3, stats.gzip_answers)
    assert.equal("Zipped Modules", assert(client:get_module("Bulk_Module_7")).plural_label)
  end)

  it("the client reads a gzip answer the server sends unasked (the 'gzip' fault)", function()
    emu:script("gzip", 1)
    local res = assert(client:update_module("Bulk_Module_8", { singular_label = "Zipped" }))
    assert.equal("SUCCESS", res.code)
    assert.equal(1, emu:stats().updates_applied)
  end)
end)
