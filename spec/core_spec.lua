-- The C core (`zcrm.core`), tested directly: error objects, validation, and
-- transport against a loopback HTTP server (a small python3 script started
-- here; the transport tests are pending when python3 is missing).
local core = require "zcrm.core"


-- {==== helpers

-- Asserts a `nil, err` result and returns err.
local function fails(code, ...)
  local n = select("#", ...)
  local v, err = ...
  assert.is_nil(v)
  assert.equal(2, n)
  assert.is_true(core.is_error(err), "expected an error object, got " .. tostring(err))
  assert.equal(code, err.code, tostring(err))
  return err
end

local function vfails(code, field, ...)
  local err = fails(code, ...)
  assert.equal("validation", err.kind)
  assert.is_false(err.retryable)
  assert.is_nil(err.status)
  assert.equal(field, err.field)
  return err
end

local function label_fails(label, pattern)
  local err = vfails("INVALID_DATA", "plural_label", core.validate_update { plural_label = label })
  assert.equal("plural_label", err.details.api_name)
  assert.equal("$.modules[0].plural_label", err.details.json_path)
  if pattern then assert.matches(pattern, err.message) end
  return err
end

local function label_ok(label)
  local ok, err = core.validate_update { plural_label = label }
  assert.is_nil(err, err and tostring(err))
  assert.is_true(ok)
end

local function profiles(list) return { profiles = list } end

-- }====

describe("zcrm.core", function()

  it("loads, has a version and the JSON null", function()
    assert.matches("^zcrm%.core %d", core._VERSION)
    assert.matches("libcurl/", core.curl_version)
    assert.equal("userdata", type(core.null))
    local ok, cjson = pcall(require, "cjson")
    if ok then assert.equal(cjson.null, core.null) end
  end)

  it("works when loaded twice in one state (busted insulation)", function()
    local err = core.error { code = "INVALID_MODULE" }
    package.loaded["zcrm.core"] = nil
    local core2 = require "zcrm.core"
    assert.are_not.equal(core, core2)
    assert.is_true(core2.is_error(err))
    assert.is_true(core.is_error(core2.error { code = "TIMEOUT" }))
    local m = core2.new_multi {}
    assert.equal(0, m:running())
    m:close()
    package.loaded["zcrm.core"] = core
  end)

  -- {==== error objects
  describe("error objects", function()
    it("fill kind, status, message, retryable and resolution from the catalogue", function()
      local e = core.error { code = "INVALID_MODULE" }
      assert.is_true(core.is_error(e))
      assert.equal("api", e.kind)
      assert.equal(400, e.status)
      assert.equal("The URL contains invalid module data", e.message)
      assert.is_false(e.retryable)
      assert.matches("Specify the correct API name or module ID", e.resolution)
      assert.equal("INVALID_MODULE (HTTP 400): The URL contains invalid module data", tostring(e))
      assert.equal("zcrm.error", getmetatable(e).__name)
    end)

    it("keep the fields they are given", function()
      local e = core.error { code = "INVALID_DATA", status = 400, message = "Invalid profile id passed",
                             details = { api_name = "id", json_path = "$.modules[0].profiles[0].id" } }
      assert.equal("Invalid profile id passed", e.message)
      assert.equal("$.modules[0].profiles[0].id", e.details.json_path)
      assert.equal("api", e.kind)
      local e2 = core.error { code = "TOO_MANY_REQUESTS", retryable = false, kind = "x" }
      assert.is_false(e2.retryable)
      assert.equal("x", e2.kind)
    end)

    it("keep unknown codes verbatim, retryable by status", function()
      local e = core.error { code = "SOMETHING_NEW", status = 503 }
      assert.equal("SOMETHING_NEW", e.code)
      assert.equal("api", e.kind)
      assert.is_true(e.retryable)
      assert.is_nil(e.resolution)
      assert.equal("SOMETHING_NEW (HTTP 503): SOMETHING_NEW", tostring(e))
      assert.is_true(core.error { code = "X", status = 429 }.retryable)
      assert.is_false(core.error { code = "X", status = 400 }.retryable)
      assert.is_false(core.error { code = "X" }.retryable)
    end)

    it("classify auth, limit and server errors", function()
      for _, c in ipairs { "OAUTH_SCOPE_MISMATCH", "AUTHENTICATION_FAILURE", "INVALID_TOKEN",
                           "INVALID_OAUTHTOKEN", "AUTHENTICATION_FAILED" } do
        local e = core.error { code = c }
        assert.equal("auth", e.kind, c)
        assert.equal(401, e.status, c)
        assert.is_false(e.retryable, c)
      end
      assert.matches("get a new token", core.error { code = "INVALID_TOKEN" }.resolution, 1, true)
      local t = core.error { code = "TOO_MANY_REQUESTS" }
      assert.same({ "limit", 429, true }, { t.kind, t.status, t.retryable })
      local i = core.error { code = "INTERNAL_ERROR" }
      assert.same({ "api", 500, true }, { i.kind, i.status, i.retryable })
      assert.equal(403, core.error { code = "NO_PERMISSION" }.status)
    end)

    it("tostring without status, and with a field", function()
      assert.equal("TIMEOUT: the request timed out", tostring(core.error { code = "TIMEOUT" }))
      local e = core.error { code = "INVALID_DATA", kind = "validation", field = "profiles[2].id",
                             message = "bad", status = false }
      assert.equal("INVALID_DATA: profiles[2].id: bad", tostring(e))
      local _, v = core.validate_update { plural_label = "x!" }
      assert.equal("INVALID_DATA: plural_label contains U+0021 '!' (punctuation) at character 2; "
                   .. "only letters, digits and spaces are allowed", tostring(v))
    end)

    it("is_error is false for other values", function()
      for _, v in ipairs { {}, "INVALID_DATA", 1, true, setmetatable({}, { __name = "zcrm.error" }) } do
        assert.is_false(core.is_error(v))
      end
      assert.is_false(core.is_error(nil))
      assert.is_false(core.is_error())
    end)

    it("core.error needs a code", function()
      assert.has_error(function() core.error {} end)
      assert.has_error(function() core.error "INVALID_DATA" end)
    end)

    it("has a catalogue with every code of the page and ours", function()
      local page = {
        INVALID_MODULE = 400, NOT_ALLOWED = 400, MINIMUM_DATA_NOT_FOUND = 400,
        INVALID_REQUEST_METHOD = 400, MANDATORY_NOT_FOUND = 400, OAUTH_SCOPE_MISMATCH = 401,
        AUTHENTICATION_FAILURE = 401, INVALID_URL_PATTERN = 404, INTERNAL_ERROR = 500,
      }
      for code, status in pairs(page) do
        local c = core.catalogue[code]
        assert.is_table(c, code)
        assert.equal(status, c.status, code)
        assert.is_string(c.message, code)
        assert.is_string(c.resolution, code)
      end
      assert.equal("Minimum one profile is needed", core.catalogue.MINIMUM_DATA_NOT_FOUND.message)
      for _, code in ipairs { "INVALID_TOKEN", "INVALID_DATA", "DUPLICATE_DATA", "NO_PERMISSION",
                              "TOO_MANY_REQUESTS", "NOT_SUPPORTED", "API_NOT_SUPPORTED",
                              "INVALID_REQUEST", "LIMIT_EXCEEDED", "INVALID_OAUTHTOKEN",
                              "AUTHENTICATION_FAILED" } do
        assert.equal("table", type(core.catalogue[code]), code)
      end
      local transport = { TIMEOUT = true, CONNECTION_FAILED = true, DNS_ERROR = true, TLS_ERROR = false,
                          SEND_ERROR = true, RECV_ERROR = true, RESPONSE_TOO_LARGE = false,
                          CANCELLED = false, TRANSPORT_ERROR = true, UNEXPECTED_RESPONSE = false,
                          OUTCOME_UNKNOWN = false }
      for code, retry in pairs(transport) do
        local c = core.catalogue[code]
        assert.equal("transport", c.kind, code)
        assert.equal(retry, c.retryable, code)
        assert.is_nil(c.status, code)
      end
      assert.equal("config", core.catalogue.INVALID_URL.kind)
      assert.equal("config", core.catalogue.INVALID_TOKEN_FORMAT.kind)
      assert.same({ "limit", false }, { core.catalogue.CREDIT_LIMIT.kind, core.catalogue.CREDIT_LIMIT.retryable })
      assert.same({ "auth", false }, { core.catalogue.invalid_client.kind, core.catalogue.invalid_client.retryable })
      assert.same({ "auth", false }, { core.catalogue.invalid_code.kind, core.catalogue.invalid_code.retryable })
      assert.same({ "auth", true }, { core.catalogue.ACCESS_DENIED.kind, core.catalogue.ACCESS_DENIED.retryable })
    end)
  end)
  -- }====

  -- {==== update validation
  describe("validate_update", function()
    local SAMPLE = {
      plural_label = "Digital Marketings", singular_label = "Digital Marketing",
      profiles = { { id = "2423488000000015972", _delete = core.null }, { id = "2423488000000015975" } },
    }

    it("accepts the page's sample input", function()
      assert.is_true(core.validate_update(SAMPLE))
    end)

    it("accepts each field alone", function()
      assert.is_true(core.validate_update { plural_label = "Vehicles" })
      assert.is_true(core.validate_update { singular_label = "Vehicle" })
      assert.is_true(core.validate_update { profiles = { { id = "1" } } })
    end)

    it("refuses a non-table update", function()
      vfails("INVALID_DATA", nil, core.validate_update("x"))
      vfails("INVALID_DATA", nil, core.validate_update(nil))
      vfails("INVALID_DATA", nil, core.prepare_update(42))
    end)

    it("refuses unknown keys, naming them", function()
      local err = vfails("INVALID_DATA", "plural_lable", core.validate_update { plural_lable = "Vehicles" })
      assert.matches("unknown key 'plural_lable'", err.message)
      assert.equal("$.modules[0].plural_lable", err.details.json_path)
      -- also next to valid keys, and the smallest name when there are several
      vfails("INVALID_DATA", "alpha", core.validate_update { plural_label = "A", zeta = 1, alpha = 2 })
      vfails("INVALID_DATA", "id", core.validate_update { plural_label = "A", id = "1" })
      local e = vfails("INVALID_DATA", "[1]", core.validate_update { "Vehicles" })
      assert.matches("unknown key %[1%]", e.message)
      vfails("INVALID_DATA", "(a boolean key)", core.validate_update { [true] = 1, plural_label = "A" })
    end)

    it("needs at least one of plural_label, singular_label, profiles", function()
      local err = vfails("MANDATORY_NOT_FOUND", nil, core.validate_update {})
      assert.equal(3, #err.details.expected_fields)
      assert.equal("$.modules[0].profiles", err.details.expected_fields[3].json_path)
    end)

    it("refuses api_name (NOT_ALLOWED) even with valid fields", function()
      local err = vfails("NOT_ALLOWED", "api_name", core.validate_update { api_name = "X", plural_label = "A" })
      assert.equal("$.modules[0].api_name", err.details.json_path)
      vfails("NOT_ALLOWED", "api_name", core.validate_update { api_name = false })
      vfails("NOT_ALLOWED", "access_type", core.validate_update { access_type = "org_based" })
    end)

    describe("labels", function()
      it("accept letters, digits and spaces in any script", function()
        label_ok("Équipes")
        label_ok("Équipes 2025")
        label_ok("顧客管理")
        label_ok("データ")                   -- U+30FC is Lm
        label_ok("हिन्दी नाम")               -- Devanagari: virama (Mn), vowel sign (Mc)
        label_ok("ภาษาไทย")                  -- Thai: vowel marks (Mn)
        label_ok("E\u{0301}quipes")          -- decomposed É: a mark after a letter
        label_ok("Ⅻ Legion")                 -- Nl
        label_ok("١٢٣ عملاء")                -- Arabic-Indic digits (Nd) and letters
        label_ok("  padded  ")
        label_ok("Ab1")
      end)

      it("count code points: 25 is fine, 26 is not", function()
        label_ok(string.rep("a", 25))
        label_ok(string.rep("é", 25))        -- 50 bytes, 25 characters
        label_ok(string.rep("顧", 25))       -- 75 bytes
        local err = label_fails(string.rep("a", 26))
        assert.equal("plural_label has 26 characters; at most 25 allowed", err.message)
        assert.equal(25, err.details.maximum_length)
        assert.equal(25, label_fails(string.rep("é", 26)).details.maximum_length)
        local s = vfails("INVALID_DATA", "singular_label", core.validate_update { singular_label = string.rep("x", 40) })
        assert.equal("$.modules[0].singular_label", s.details.json_path)
        assert.equal("singular_label", s.details.api_name)
        assert.equal(25, s.details.maximum_length)
      end)

      it("must be non-empty strings with a non-space", function()
        assert.is_nil(label_fails("", "must not be empty").details.maximum_length)
        label_fails("   ", "only spaces")
        label_fails(5, "must be a string, got integer")
        label_fails(2.5, "got float")
        label_fails(core.null, "got null")
        label_fails(true, "got boolean")
        label_fails({}, "got table")
      end)

      it("must be valid UTF-8", function()
        label_fails("\xC0\xAF", "not valid UTF%-8")              -- overlong '/'
        label_fails("a\xE0\x80\xAF", "byte 2")                    -- overlong, 3 bytes
        label_fails("\xED\xA0\x80", "not valid UTF%-8")          -- lone surrogate U+D800
        label_fails("\xF4\x90\x80\x80", "not valid UTF%-8")      -- U+110000
        label_fails("ab\xE3\x81", "not valid UTF%-8")            -- truncated
        label_fails("\xFF", "not valid UTF%-8")
        label_fails("\x80abc", "not valid UTF%-8")
      end)

      it("refuse everything but letters, digits and spaces", function()
        local cases = {
          { "a\u{200B}b", "U%+200B %(an invisible format character%)" },   -- zero-width space
          { "a\u{200D}b", "U%+200D" },                                    -- zero-width joiner
          { "abc\u{202E}def", "U%+202E %(an invisible format character%)" }, -- RLO
          { "Team 😀", "U%+1F600 '😀' %(a symbol%)" },
          { "Team!", "U%+0021 '!' %(punctuation%)" },
          { "a-b", "punctuation" }, { "a_b", "punctuation" }, { "a.b", "punctuation" },
          { "a\rb", "U%+000D %(a control character%)" },
          { "a\nb", "U%+000A" }, { "a\0b", "U%+0000" }, { "a\tb", "U%+0009" },
          { "a\u{00A0}b", "U%+00A0 %(a space other than U%+0020%)" },          -- NBSP
          { "a\u{3000}b", "U%+3000" },                                       -- ideographic space
          { "x²", "U%+00B2 '²' %(a number form" },                            -- No
          { "\u{0301}a", "U%+0301 %(a combining mark not following a letter%)" },
          { "1\u{0301}", "U%+0301" },                                        -- mark after a digit
          { "a \u{0301}", "U%+0301" },                                       -- mark after a space
          { "a\u{20DD}", "U%+20DD %(an enclosing mark%)" },
          { "a\u{E000}", "private%-use" },
          { "a\u{0378}", "unassigned" },
          { "a\u{2028}b", "line or paragraph separator" },
          { "$5", "symbol" },
        }
        for _, c in ipairs(cases) do
          local err = label_fails(c[1], c[2])
          assert.matches("only letters, digits and spaces are allowed", err.message)
          assert.is_nil(err.details.maximum_length)
        end
        -- the position is in characters, and the first bad one is named
        assert.matches("at character 3;", label_fails("éé!?").message)
      end)
    end)

    describe("profiles", function()
      it("must be a non-empty sequence", function()
        local e = vfails("MINIMUM_DATA_NOT_FOUND", "profiles", core.validate_update(profiles {}))
        assert.equal("$.modules[0].profiles", e.details.json_path)
        assert.matches("Assign atleast one profile", e.resolution)
        vfails("MINIMUM_DATA_NOT_FOUND", "profiles", core.validate_update(profiles(core.null)))
        vfails("INVALID_DATA", "profiles", core.validate_update(profiles "2423488000000015972"))
        vfails("INVALID_DATA", "profiles", core.validate_update(profiles { id = "1" }))
        vfails("INVALID_DATA", "profiles", core.validate_update(profiles { [1] = { id = "1" }, [3] = { id = "3" } }))
        vfails("INVALID_DATA", "profiles", core.validate_update(profiles { { id = "1" }, x = 1 }))
        vfails("INVALID_DATA", "profiles", core.validate_update(profiles { [0] = { id = "1" } }))
      end)

      it("accept at most 203 entries", function()
        local list = {}
        for i = 1, 203 do list[i] = { id = tostring(1000 + i) } end
        assert.is_true(core.validate_update(profiles(list)))
        list[204] = { id = "99999" }
        local e = vfails("INVALID_DATA", "profiles", core.validate_update(profiles(list)))
        assert.equal("profiles has 204 entries; at most 203 allowed", e.message)
        assert.equal(203, e.details.maximum_length)
      end)

      it("take ids as 1-19 digit strings or positive integers", function()
        for _, id in ipairs { "1", "2423488000000015972", "9223372036854775807", 1,
                              2423488000000015972, math.maxinteger } do
          assert.is_true(core.validate_update(profiles { { id = id } }), tostring(id))
        end
      end)

      it("refuse floats, huge, negative and malformed ids", function()
        local cases = {
          { 3.0, "not the float 3%.0" },
          { 2^63, "not the float" },
          { 2423488000000015972.0, "float" },
          { 0, "must be positive" }, { -5, "must be positive" },
          { "9223372036854775808", "larger than 9223372036854775807" },
          { "99999999999999999999", "more than 19 digits" },        -- 20 digits
          { "12345678901234567890", "more than 19 digits" },
          { "", "is empty" }, { "12a", "only digits" }, { " 12", "only digits" },
          { "-12", "only digits" }, { "1e5", "only digits" }, { "0", "start with 0" },
          { "0123", "start with 0" }, { true, "got boolean" }, { core.null, "got null" },
          { {}, "got table" },
        }
        for _, c in ipairs(cases) do
          local e = vfails("INVALID_DATA", "profiles[1].id", core.validate_update(profiles { { id = c[1] } }))
          assert.matches(c[2], e.message)
          assert.equal("id", e.details.api_name)
          assert.equal("$.modules[0].profiles[0].id", e.details.json_path)
        end
      end)

      it("report the index of the bad entry (1-based field, 0-based json_path)", function()
        local e = vfails("INVALID_DATA", "profiles[3].id",
                         core.validate_update(profiles { { id = "1" }, { id = "2" }, { id = 1.5 } }))
        assert.equal("$.modules[0].profiles[2].id", e.details.json_path)
      end)

      it("refuse entries that are not tables, unknown keys, both or neither of id/name", function()
        local e = vfails("INVALID_DATA", "profiles[2]", core.validate_update(profiles { { id = "1" }, "2" }))
        assert.equal("$.modules[0].profiles[1]", e.details.json_path)
        e = vfails("INVALID_DATA", "profiles[1]", core.validate_update(profiles { { id = "1", delete = true } }))
        assert.matches("unknown key 'delete'", e.message)
        vfails("INVALID_DATA", "profiles[1]", core.validate_update(profiles { { id = "1", [1] = 2 } }))
        vfails("INVALID_DATA", "profiles[1]", core.validate_update(profiles { { id = "1", name = "Standard" } }))
        e = vfails("MANDATORY_NOT_FOUND", "profiles[1].id", core.validate_update(profiles { {} }))
        assert.equal("$.modules[0].profiles[0].id", e.details.json_path)
        vfails("MANDATORY_NOT_FOUND", "profiles[1].id", core.validate_update(profiles { { _delete = true } }))
      end)

      it("refuse duplicated ids and names", function()
        local e = vfails("INVALID_DATA", "profiles[2].id",
                         core.validate_update(profiles { { id = "2423488000000015972" }, { id = "2423488000000015972", _delete = true } }))
        assert.equal("profiles[2].id duplicates profiles[1].id", e.message)
        assert.equal("$.modules[0].profiles[1].id", e.details.json_path)
        vfails("INVALID_DATA", "profiles[3].id",
               core.validate_update(profiles { { id = "7" }, { id = "8" }, { id = 7 } }))
        vfails("INVALID_DATA", "profiles[2].name",
               core.validate_update(profiles { { name = "Standard" }, { name = "Standard" } }))
        assert.is_true(core.validate_update(profiles { { name = "Standard" }, { name = "standard" } }))
      end)

      it("take names: non-empty, at most 50 bytes, no control characters", function()
        assert.is_true(core.validate_update(profiles { { name = "Administrator" }, { name = "Vendeur Équipe" } }))
        assert.is_true(core.validate_update(profiles { { name = string.rep("n", 50) } }))
        local e = vfails("INVALID_DATA", "profiles[1].name", core.validate_update(profiles { { name = string.rep("n", 51) } }))
        assert.equal(50, e.details.maximum_length)
        vfails("INVALID_DATA", "profiles[1].name", core.validate_update(profiles { { name = "" } }))
        vfails("INVALID_DATA", "profiles[1].name", core.validate_update(profiles { { name = "a\nb" } }))
        vfails("INVALID_DATA", "profiles[1].name", core.validate_update(profiles { { name = "a\xC0\xAF" } }))
        vfails("INVALID_DATA", "profiles[1].name", core.validate_update(profiles { { name = 5 } }))
      end)

      it("take _delete as true or null (revoke), false or absent (grant)", function()
        for _, v in ipairs { true, false, core.null } do
          assert.is_true(core.validate_update(profiles { { id = "1", _delete = v } }))
        end
        for _, v in ipairs { "yes", 1, 0, {}, "null" } do
          local e = vfails("INVALID_DATA", "profiles[1]._delete",
                           core.validate_update(profiles { { id = "1", _delete = v } }))
          assert.equal("$.modules[0].profiles[0]._delete", e.details.json_path)
        end
      end)

      it("ignore metatables (no __index, no user code while validating)", function()
        local entry = setmetatable({}, { __index = function() error("must not be called") end })
        vfails("MANDATORY_NOT_FOUND", "profiles[1].id", core.validate_update(profiles { entry }))
        local upd = setmetatable({}, { __index = { plural_label = "A" } })
        vfails("MANDATORY_NOT_FOUND", nil, core.validate_update(upd))
      end)
    end)
  end)

  describe("prepare_update", function()
    it("returns a clean copy ready to encode", function()
      local input = {
        plural_label = "Digital Marketings", singular_label = "Digital Marketing",
        profiles = { { id = "2423488000000015972", _delete = true }, { id = 2423488000000015975 },
                     { name = "Standard", _delete = core.null }, { id = "5", _delete = false } },
      }
      local clean = assert(core.prepare_update(input))
      assert.are_not.equal(input, clean)
      assert.are_not.equal(input.profiles, clean.profiles)
      assert.equal("Digital Marketings", clean.plural_label)
      assert.equal("Digital Marketing", clean.singular_label)
      assert.equal(4, #clean.profiles)
      assert.equal("2423488000000015972", clean.profiles[1].id)
      assert.equal(core.null, clean.profiles[1]._delete)
      assert.equal("2423488000000015975", clean.profiles[2].id)   -- an integer becomes its exact decimal
      assert.is_nil(clean.profiles[2]._delete)
      assert.same({ name = "Standard", _delete = core.null }, clean.profiles[3])
      assert.same({ id = "5" }, clean.profiles[4])
      local ok, cjson = pcall(require, "cjson")
      if ok then
        local json = cjson.encode { modules = { { profiles = { clean.profiles[1] } } } }
        assert.matches('^{"modules":%[{"profiles":%[{', json)
        assert.matches('"_delete":null', json, 1, true)
        assert.matches('"id":"2423488000000015972"', json, 1, true)
      end
    end)

    it("copies labels as given and leaves out absent fields", function()
      assert.same({ singular_label = "顧客" }, core.prepare_update { singular_label = "顧客" })
      assert.same({ profiles = { { id = "9223372036854775807" } } },
                  core.prepare_update { profiles = { { id = math.maxinteger } } })
    end)

    it("fails like validate_update", function()
      vfails("INVALID_DATA", "plural_label", core.prepare_update { plural_label = "x!" })
      vfails("MINIMUM_DATA_NOT_FOUND", "profiles", core.prepare_update { plural_label = "A", profiles = {} })
    end)
  end)
  -- }====

  -- {==== module, URL, token
  describe("check_module", function()
    it("accepts ids and API names", function()
      assert.equal("Leads", core.check_module("Leads"))
      assert.equal("Digital_Marketing", core.check_module("Digital_Marketing"))
      assert.equal("a", core.check_module("a"))
      assert.equal("CustomModule3", core.check_module("CustomModule3"))
      assert.equal(string.rep("A", 100), core.check_module(string.rep("A", 100)))
      assert.equal("2423488000000834002", core.check_module("2423488000000834002"))
      assert.equal("2423488000000834002", core.check_module(2423488000000834002))
      assert.equal("9223372036854775807", core.check_module(math.maxinteger))
    end)

    it("accepts the API names Zoho gives: extension namespace__Name and system names ending in __s", function()
      for _, name in ipairs { "zohosign__ZohoSign_Documents", "Appointments_Rescheduled_History__s",
                              "zohosign__ZohoSign_Document_Events", "Services__s", "a__b", "Leads_",
                              "x" .. string.rep("_", 99) } do
        assert.equal(name, core.check_module(name))
      end
    end)

    it("refuses anything else with INVALID_MODULE (validation)", function()
      for _, m in ipairs { "", "_Leads", "__s", "Le-ads", "Le ads", "Leads/x", "../Leads", "zohosign__Docs/..",
                           "Leads?x=1", "Leads#x", "Leads%2e", "Leads.s", "Leads\r\n", "Leads\0", "Léads",
                           string.rep("A", 101), "zohosign__" .. string.rep("D", 91), "1abc", "0123", "0",
                           "99999999999999999999", "9223372036854775808", 1.5, 3.0, 2^63, 0, -1,
                           true, {}, core.null } do
        local e = vfails("INVALID_MODULE", "module", core.check_module(m))
        assert.matches("^module ", e.message)
        assert.equal(2, e.details.resource_path_index)
        assert.matches("Specify the correct API name or module ID", e.resolution)
      end
      vfails("INVALID_MODULE", "module", core.check_module())
    end)

    it("names the rule and quotes the value (even with % in it)", function()
      local e = fails("INVALID_MODULE", core.check_module("Le%ds_"))
      assert.equal("module 'Le%ds_' is not a module id (1 to 19 digits) or API name (a letter, then "
                   .. "letters, digits or _, at most 100)", e.message)
      e = fails("INVALID_MODULE", core.check_module("12%s"))
      assert.equal("module id '12%s' must contain only digits (an id is 1 to 19 digits)", e.message)
      e = fails("INVALID_MODULE", core.check_module(-3))
      assert.equal("module id -3 must be positive", e.message)
      e = fails("INVALID_MODULE", core.check_module(true))
      assert.matches("^module %(a boolean%) is not a module id", e.message)
    end)

    it("never puts raw control bytes into the message", function()
      local e = fails("INVALID_MODULE", core.check_module("Le\r\nads\0"))
      assert.is_nil(e.message:find("[\r\n%z]"))
      assert.matches("\\x0D\\x0A", e.message, 1, true)
    end)
  end)

  describe("label_rules", function()
    it("openapi: 50 ASCII letters, digits or spaces; reference: 25 of any script", function()
      local long = string.rep("a", 30)
      assert.is_true(core.validate_update({ plural_label = long }, "openapi"))
      assert.is_true(core.validate_update({ plural_label = string.rep("a", 50) }, "openapi"))
      local e = vfails("INVALID_DATA", "plural_label", core.validate_update({ plural_label = string.rep("a", 51) }, "openapi"))
      assert.equal(50, e.details.maximum_length)
      vfails("INVALID_DATA", "singular_label", core.prepare_update({ singular_label = "Équipe" }, "openapi"))
      assert.is_true(core.validate_update({ plural_label = "Équipes" }, "reference"))
      assert.equal(25, select(2, core.validate_update { plural_label = long }).details.maximum_length)
      assert.has_error(function() core.validate_update({ plural_label = "x" }, "oas") end)
    end)
  end)

  describe("label_key", function()
    it("drops case, edge spaces and runs of spaces, and nothing else", function()
      assert.equal("projects", core.label_key("Projects"))
      assert.equal("projects", core.label_key("  PROJECTS "))
      assert.equal("client projects", core.label_key("Client   Projects"))
      assert.equal("équipes", core.label_key("ÉQUIPES"))
      assert.equal("顧客管理", core.label_key("顧客管理"))
      assert.equal("a\255b", core.label_key("A\255B"))
      assert.equal("", core.label_key("   "))
    end)
  end)

  describe("check_api_name and check_display_field (Create Custom Module)", function()
    it("takes the page's API names and refuses the others with the field and path", function()
      for _, n in ipairs { "Vehicles", "Fleet_Cars", "a", "V2", string.rep("A", 50) } do
        assert.equal(n, core.check_api_name(n))
      end
      for _, n in ipairs { "", "1Cars", "_Cars", "Fleet Cars", "Fleet__Cars", "Fleet_", "Flé", string.rep("A", 51), 5 } do
        local e = vfails("INVALID_DATA", "api_name", core.check_api_name(n))
        assert.equal("$.modules[0].api_name", e.details.json_path)
      end
      assert.equal(50, select(2, core.check_api_name(string.rep("A", 51))).details.maximum_length)
    end)

    it("copies a valid display_field and names the faulty key of an invalid one", function()
      assert.same({ field_label = "Plate", data_type = "autonumber",
                    auto_number = { start_number = "1000", prefix = "V-" } },
        core.check_display_field { field_label = "Plate", data_type = "autonumber",
                                   auto_number = { start_number = 1000, prefix = "V-" } })
      assert.same({ field_label = "Name" }, core.check_display_field { field_label = "Name" })
      for _, case in ipairs {
        { "x", "INVALID_DATA", "display_field" },
        { {}, "MANDATORY_NOT_FOUND", "field_label" },
        { { field_label = "a\1b" }, "INVALID_DATA", "field_label" },
        { { field_label = "Plate", data_type = "autonumber" }, "DEPENDENT_FIELD_MISSING", "auto_number" },
        { { field_label = "Plate", auto_number = { start_number = string.rep("9", 17) } }, "INVALID_DATA", "start_number" },
        { { field_label = "Plate", auto_number = { start_number = -1 } }, "INVALID_DATA", "start_number" },
        { { field_label = "Plate", auto_number = { start_number = "1", infix = "-" } }, "INVALID_DATA", "infix" },
      } do
        vfails(case[2], case[3], core.check_display_field(case[1]))
      end
    end)
  end)

  describe("check_base_url", function()
    it("accepts https and normalises", function()
      assert.equal("https://www.zohoapis.com", core.check_base_url("https://www.zohoapis.com"))
      assert.equal("https://www.zohoapis.eu", core.check_base_url("https://www.zohoapis.eu/"))
      assert.equal("https://www.zohoapis.eu", core.check_base_url("HTTPS://WWW.ZohoApis.EU/"))
      assert.equal("https://crm.example.com:8443", core.check_base_url("https://crm.example.com:8443/"))
      assert.equal("https://[::1]:9", core.check_base_url("https://[::1]:9"))
      assert.equal("https://10.1.2.3", core.check_base_url("https://10.1.2.3"))
      -- an empty port is libcurl's default port
      assert.equal("https://a.com", core.check_base_url("https://a.com:"))
    end)

    it("accepts plain http only for loopback hosts", function()
      for _, u in ipairs { "http://127.0.0.1", "http://127.0.0.1:8080", "http://127.5.5.5:1/",
                           "http://[::1]", "http://[::1]:8080", "http://localhost:3000",
                           "http://LOCALHOST" } do
        assert.is_string(core.check_base_url(u), u)
      end
      -- IPv4-mapped forms: loopback, but outside what the no-proxy list
      -- provably covers (libcurl 7.88 does not match them); https only.
      for _, u in ipairs { "http://[::ffff:127.0.0.1]:80", "http://[::ffff:7f00:1]", "http://[::ffff:127.1.2.3]",
                           "http://[0:0:0:0:0:ffff:127.0.0.1]", "http://[::127.0.0.1]" } do
        assert.matches("loopback", fails("INVALID_URL", core.check_base_url(u)).message, 1, true)
      end
      assert.is_string(core.check_base_url("https://[::ffff:127.0.0.1]"))
      assert.equal("http://localhost:3000", core.check_base_url("http://LocalHost:3000/"))
      for _, u in ipairs { "http://example.com", "http://10.0.0.1", "http://128.0.0.1",
                           "http://127.0.0.1.evil.com", "http://localhost.evil.com",
                           "http://[::2]", "http://127.1", "http://0x7f.0.0.1" } do
        local e = fails("INVALID_URL", core.check_base_url(u))
        assert.equal("config", e.kind)
        assert.matches("loopback", e.message)
      end
    end)

    it("refuses CR, LF, NUL, spaces, user info, paths, queries, fragments", function()
      local cases = {
        { "https://a.com\r\nX-Evil: 1", "CR, LF or NUL" }, { "https://a.com\n", "CR, LF or NUL" },
        { "https://a.com\0", "CR, LF or NUL" }, { "https://a .com", "space" },
        { "https://user:secretpw@a.com", "user info" }, { "https://user@a.com", "user info" },
        { "https://a.com/crm/v8", "path" }, { "https://a.com//", "path" },
        { "https://a.com?x=1", "query" }, { "https://a.com/#f", "fragment" },
        { "ftp://a.com", "https://" }, { "a.com", "https://" }, { "https://", "empty" },
        { "https://:443", "empty" }, { "https://a.com:0", "port" }, { "https://a.com:70000", "port" },
        { "https://a.com:8x", "port" }, { "https://a_b.com", "host name" },
        { "https://[::1", "IPv6" }, { "https://[zz::1]", "IPv6" }, { "https://[fe80::1%25eth0]", "IPv6" },
        { "https://ex\u{e4}mple.com", "non%-ASCII" },
      }
      for _, c in ipairs(cases) do
        local e = fails("INVALID_URL", core.check_base_url(c[1]))
        assert.equal("config", e.kind)
        assert.is_false(e.retryable)
        assert.matches(c[2], e.message)
      end
      local e = fails("INVALID_URL", core.check_base_url("https://user:secretpw@a.com"))
      assert.is_nil(e.message:find("secretpw", 1, true))
    end)

    it("raises on a non-string (misuse)", function()
      assert.has_error(function() core.check_base_url(nil) end)
    end)
  end)

  describe("check_token", function()
    it("accepts printable ASCII tokens", function()
      assert.is_true(core.check_token("1000.8cb99dxxxxxxxxxxxxx9be93.9b8xxxxxxxxxxxxxxxf", "access_token"))
      assert.is_true(core.check_token("x"))
    end)

    it("refuses empty, spaces, CR, LF, NUL, non-ASCII, huge, non-strings; never echoes the value", function()
      local cases = {
        { "", "is empty" }, { "secret token", "space" }, { "secret\r\nX: y", "CR or LF" },
        { "secret\n", "CR or LF" }, { "secret\0", "NUL" }, { "secret\t", "space" },
        { "secr\u{e9}t", "printable ASCII" }, { "secret\x7f", "printable ASCII" },
        { string.rep("s", 5000), "longer" }, { 12345, "must be a string" }, { nil, "must be a string" },
      }
      for _, c in ipairs(cases) do
        local e = fails("INVALID_TOKEN_FORMAT", core.check_token(c[1], "refresh_token"))
        assert.equal("config", e.kind)
        assert.matches("^refresh_token ", e.message)
        assert.matches(c[2], e.message)
        assert.is_nil(e.message:find("secret", 1, true))
      end
      assert.matches("^token ", fails("INVALID_TOKEN_FORMAT", core.check_token("a b")).message)
    end)
  end)

  it("url_escape percent-encodes all but unreserved characters", function()
    assert.equal("a%20b%26c%3Dd%2F%C3%A9-._~Z9", core.url_escape("a b&c=d/é-._~Z9"))
    assert.equal("%0D%0A%00", core.url_escape("\r\n\0"))
  end)
  -- }====

  -- {==== an update's request and answer (body.c, answer.c)
  describe("update_request", function()
    local cjson = require "cjson"
    local function same_as_cjson(clean)
      local url, body = core.update_request("http://127.0.0.1:9/crm/v8/", "Leads_X", clean)
      assert.equal("http://127.0.0.1:9/crm/v8/settings/modules/Leads_X", url)
      assert.same(cjson.decode(cjson.encode { modules = { clean } }), cjson.decode(body))
      return body
    end

    it("writes the URL and a body that lua-cjson reads as { modules = { clean } }", function()
      same_as_cjson(assert(core.prepare_update { plural_label = "Bench Items 1", singular_label = "Bench Item 1" }))
      same_as_cjson(assert(core.prepare_update { singular_label = "Élève 学生 मा" }))
      same_as_cjson(assert(core.prepare_update {
        plural_label = "Deals", profiles = { { id = "2423488000000026011" }, { id = 42, _delete = true },
                                             { id = "7", _delete = core.null } } }))
      same_as_cjson { plural_label = 'a "quoted" \\ back\nslash\t\1\31\127 /' }
      same_as_cjson { profiles = { { id = 5, _delete = false } } }
    end)

    it("writes the fields validation allows, in the order its messages name them (one table)", function()
      local _, unknown = core.validate_update { nope = 1 }
      local allowed = {}
      for k in unknown.message:match("%(allowed: ([^)]*)%)"):gmatch("[%w_]+") do allowed[#allowed + 1] = k end
      local _, none = core.validate_update {}
      local expected = {}
      for i, f in ipairs(none.details.expected_fields) do expected[i] = f.api_name end
      assert.same(allowed, expected)
      local clean = assert(core.prepare_update { plural_label = "A", singular_label = "B", profiles = { { id = "1" } } })
      local body = select(2, core.update_request("b/", "s", clean))
      local last = 0
      for _, k in ipairs(allowed) do
        local at = assert(body:find('"' .. k .. '":', 1, true), k)
        assert.is_true(at > last, k)
        last = at
      end
    end)

    it("leaves what it does not know to lua-cjson (returns nothing)", function()
      for _, clean in ipairs {
        {}, { plural_label = "A", other = "x" }, { plural_label = 1.5 }, { plural_label = {} },
        { profiles = {} }, { profiles = { { id = 1.5 } } }, { profiles = { { id = "1", extra = 1 } } },
        { profiles = { [2] = { id = "1" } } }, { profiles = { {} } }, { profiles = "x" },
        { plural_label = "A", profiles = { { id = "1", _delete = print } } },
      } do
        assert.equal(0, select("#", core.update_request("b/", "s", clean)))
      end
    end)
  end)

  describe("read_update_answer", function()
    local cjson = require "cjson.safe"
    -- The result the Lua path makes from a decoded success answer (modules.send_update).
    local function lua_result(raw)
      local item = cjson.decode(raw).modules[1]
      local details = type(item.details) == "table" and item.details or {}
      return { id = details.id, code = item.code, message = item.message, status = item.status, details = details }
    end

    it("reads the plain success answer as the Lua path does", function()
      for _, raw in ipairs {
        '{"modules":[{"code":"SUCCESS","details":{"id":"2423488000010000001"},'
          .. '"message":"module updated successfully","status":"success"}]}',
        ' {\n "modules" : [ { "status":"success", "code":"SUCCESS", "message":"ok \\u00e9 \\/ \\"q\\" \\n",'
          .. ' "details":{ "id":"1", "note":"x", "note":"last" } } ] } \r\n',
        '{"modules":[{"code":"SUCCESS","status":"success"}]}',
        '{"modules":[{"code":"SUCCESS","status":"success","details":{}}]}',
      } do
        assert.same(lua_result(raw), core.read_update_answer(raw), raw)
      end
    end)

    it("leaves every other answer to lua-cjson (returns nothing)", function()
      local ok = '{"modules":[{"code":"SUCCESS","details":{"id":"1"},"message":"m","status":"success"}]}'
      assert.is_table(core.read_update_answer(ok))
      for _, raw in ipairs {
        "", "{}", "[]", ok .. "x", ok:gsub("success", "error"), ok:gsub('"1"', "1"), ok:gsub('"1"', '"1a"'),
        ok:gsub('"1"', '"12345678901234567890"'), ok:gsub('"m"', "null"), ok:gsub('"m"', '"\\ud83d\\ude00"'),
        ok:gsub('"m"', '"a\tb"'), ok:gsub('"m"', '"\\x"'), ok:gsub("}]}", "},{}]}"), ok:gsub("}]}", '}],"info":{}}'),
        ok:gsub('"code"', '"c\\u006fde"'), ok:gsub('{"id":"1"}', '{"id":"1","n":{"x":"y"}}'),
        ok:gsub('"status"', '"other":"x","status"'), '{"modules":[{"status":"success"}]}',
        (ok:gsub('"SUCCESS"', '""')),
      } do
        assert.equal(0, select("#", core.read_update_answer(raw)), raw)
      end
    end)

    it("returns nothing when a string of the answer holds a secret (the Lua path redacts it)", function()
      local raw = '{"modules":[{"code":"SUCCESS","details":{"id":"1","by":"xx-tok3n-xx"},"status":"success"}]}'
      assert.is_table(core.read_update_answer(raw, { "other" }))
      assert.equal(0, select("#", core.read_update_answer(raw, { "other", "tok3n" })))
    end)

    it("returns nothing when the code, the message or the status holds a secret", function()
      for _, raw in ipairs {
        '{"modules":[{"code":"SUCCESS tok3n","status":"success"}]}',
        '{"modules":[{"code":"SUCCESS","message":"you sent tok3n","status":"success"}]}',
        '{"modules":[{"code":"SUCCESS","details":{"tok3n":"v"},"status":"success"}]}',
      } do
        assert.is_table(core.read_update_answer(raw, { "other" }), raw)
        assert.equal(0, select("#", core.read_update_answer(raw, { "other", "tok3n" })), raw)
      end
    end)
  end)
  -- }====

  -- {==== transport
  describe("transport", function()
    local SERVER = [==[
import sys, time, json, threading, os
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        u = urlparse(self.path); q = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if u.path == "/slow":
            time.sleep(float(q.get("ms", ["1000"])[0]) / 1000)
        if u.path == "/big":
            n = int(q["n"][0]); data = b"x" * n
            self.send_response(200)
            if "chunked" in q:
                self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
                for i in range(0, n, 1000):
                    c = data[i:i+1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(n)); self.end_headers(); self.wfile.write(data)
            return
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode("latin-1"),
                          "peer": self.client_address[1]}).encode()
        self.send_response(int(q.get("status", ["200"])[0]))
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Dup", "first")
        self.send_header("x-dup", "second")
        self.send_header("X-Spaced", "  padded value  ")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any
class S(ThreadingHTTPServer):
    def handle_error(self, request, client_address): pass   # clients hang up on purpose
s = S(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], os.getpid(), flush=True)
threading.Timer(float(sys.argv[1]), lambda: os._exit(0)).start()
s.serve_forever()
]==]

    local server, cjson
    local have_cjson, cj = pcall(require, "cjson")
    if have_cjson then cjson = cj end

    setup(function()
      if not os.execute("command -v python3 >/dev/null 2>&1") then return end
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(SERVER)
      f:close()
      -- it exits by itself after an hour should teardown never run
      local h = io.popen("exec python3 -u " .. script .. " 3600")
      local port, pid = h:read("n", "n")
      if not port then
        h:close()
        os.remove(script)
        return
      end
      server = { port = math.tointeger(port), pid = math.tointeger(pid), h = h, script = script,
                 url = "http://127.0.0.1:" .. math.tointeger(port) }
    end)

    teardown(function()
      if server then
        os.execute("kill " .. server.pid .. " 2>/dev/null")
        server.h:close()
        os.remove(server.script)
        server = nil
      end
    end)

    local function need_server()
      if not server then
        pending("python3 is not available: loopback server tests skipped")
        return false
      end
      return true
    end

    -- Performs until every request is done; `limit` (seconds) only stops a
    -- hang, far beyond what any of these takes, even under valgrind.
    local function wait_all(m, reqs, limit)
      local t0 = core.now()
      local returned = {}
      while true do
        local all = true
        for _, r in ipairs(reqs) do if not r:done() then all = false end end
        if all then return returned end
        assert(core.now() - t0 < (limit or 120), "requests did not finish in time")
        for _, r in ipairs(m:perform(0.05)) do returned[#returned + 1] = r end
      end
    end

    describe("without a server", function()
      it("creates, prints and closes a multi (idempotent, __close)", function()
        local m = core.new_multi {}
        assert.matches("^zcrm%.multi %(", tostring(m))
        assert.equal(0, m:running())
        assert.is_nil(m:timeout())
        assert.same({}, m:fds())
        local t0 = core.now()
        assert.same({}, m:perform(0))
        assert.same({}, m:perform(60))           -- nothing running: never waits (60 s if it did)
        assert.is_true(core.now() - t0 < 30)
        m:close()
        m:close()
        assert.equal("zcrm.multi (closed)", tostring(m))
        assert.same({}, m:perform(1))
        assert.has_error(function() m:start { method = "GET", url = "http://127.0.0.1:1/" } end,
                         "attempt to use a closed zcrm.multi")
        do
          local m2 <close> = core.new_multi {}
          m2:start { method = "GET", url = "http://127.0.0.1:1/" }
        end
        collectgarbage()
      end)

      it("raises on misuse of options", function()
        assert.has_error(function() core.new_multi { max_response_bytes = 0 } end)
        assert.has_error(function() core.new_multi { max_response_bytes = 1.5 } end)
        assert.has_error(function() core.new_multi { ca_file = 5 } end)
        local m = core.new_multi()
        assert.has_error(function() m:start { method = "get", url = "http://127.0.0.1:1/" } end)
        assert.has_error(function() m:start { url = "http://127.0.0.1:1/" } end)
        assert.has_error(function() m:start { method = "GET" } end)
        assert.has_error(function() m:start { method = "GET", url = "http://127.0.0.1:1/", body = 5 } end)
        assert.has_error(function() m:start { method = "GET", url = "http://127.0.0.1:1/", headers = { 5 } } end)
        assert.has_error(function() m:start { method = "GET", url = "http://127.0.0.1:1/", timeout = 0 } end)
        assert.has_error(function() m:start { method = "GET", url = "http://127.0.0.1:1/", timeout = "1" } end)
        assert.has_error(function() m:perform(-1) end)
        assert.equal(0, m:running())
        m:close()
      end)

      it("refuses bad URLs and header lines with nil, err, never echoing them", function()
        local m = core.new_multi {}
        local e = fails("INVALID_URL", m:start { method = "GET", url = "http://127.0.0.1:1/\r\nX: secret" })
        assert.equal("config", e.kind)
        assert.is_nil(e.message:find("secret", 1, true))
        e = fails("INVALID_HEADER", m:start { method = "GET", url = "http://127.0.0.1:1/",
                                             headers = { "Accept: x", "Authorization: Zoho-oauthtoken secret\r\nX: y" } })
        assert.matches("header 2", e.message)
        assert.is_nil(e.message:find("secret", 1, true))
        fails("INVALID_HEADER", m:start { method = "GET", url = "http://127.0.0.1:1/", headers = { "NoColon" } })
        fails("INVALID_HEADER", m:start { method = "GET", url = "http://127.0.0.1:1/", headers = { "Bad Name: x" } })
        fails("INVALID_HEADER", m:start { method = "GET", url = "http://127.0.0.1:1/", headers = { "A: \0" } })
        assert.equal(0, m:running())
        -- a scheme other than http(s) fails at perform time (CURLOPT_PROTOCOLS_STR)
        local r = assert(m:start { method = "GET", url = "ftp://127.0.0.1:1/" })
        wait_all(m, { r })
        fails("INVALID_URL", r:result())
        m:close()
      end)

      it("reports a refused connection as CONNECTION_FAILED (retryable)", function()
        local m = core.new_multi {}
        local r = assert(m:start { method = "GET", url = "http://127.0.0.1:1/x?token=secret", timeout = 5 })
        assert.equal(1, m:running())
        assert.is_false(r:done())
        assert.equal(1, select("#", r:result()))
        assert.is_nil(r:result())
        local done = wait_all(m, { r })
        assert.equal(r, done[1])
        assert.equal(0, m:running())
        local e = fails("CONNECTION_FAILED", r:result())
        assert.equal("transport", e.kind)
        assert.is_true(e.retryable)
        assert.is_nil(e.status)
        assert.equal(7, e.details.curl_code)
        assert.matches("curl error 7", e.message)
        assert.is_nil(e.message:find("secret", 1, true))
        assert.same({}, r:info() and {} or nil)
        m:close()
      end)
    end)

    describe("against a loopback server", function()
      it("sends a zcrm.headers list built once, to any number of transfers, past its collection", function()
        if not need_server() then return end
        local bad, err = core.new_headers { "Accept: application/json", "X-Evil: a\r\nX-Injected: 1" }
        assert.is_nil(bad)
        assert.equal("INVALID_HEADER", err.code)
        assert.has_error(function() core.new_headers { "A: b", 7 } end)
        local m = core.new_multi {}
        local hl = assert(core.new_headers { "Authorization: Zoho-oauthtoken 1000.shared", "X-Shared: yes" })
        assert.matches("^zcrm.headers", tostring(hl))
        local reqs = {}
        for i = 1, 3 do
          reqs[i] = assert(m:start { method = "PUT", url = server.url .. "/h" .. i, headers = hl, body = "{}" })
        end
        hl = nil -- luacheck: ignore
        collectgarbage() -- the transfers keep the list alive
        collectgarbage()
        wait_all(m, reqs)
        for i, r in ipairs(reqs) do
          local status, body = r:result()
          assert.equal(200, status)
          if cjson then
            local seen = cjson.decode(body)
            assert.equal("/h" .. i, seen.path)
            assert.equal("Zoho-oauthtoken 1000.shared", seen.headers.authorization)
            assert.equal("yes", seen.headers["x-shared"])
            assert.is_nil(seen.headers.expect)
          end
        end
        assert.has_error(function() m:start { method = "GET", url = server.url, headers = io.stdout } end)
        m:close()
      end)

      it("sends a POST or PATCH on a new connection and GET, PUT on a kept-alive one", function()
        -- libcurl resends a request whose reused connection closes unanswered:
        -- a POST must not be exposed to that, a PUT keeps keep-alive's speed.
        if not need_server() or not cjson then return end
        local m = core.new_multi {}
        local function peer(method, path)
          local r = assert(m:start { method = method, url = server.url .. path, body = method ~= "GET" and "{}" or nil })
          wait_all(m, { r })
          local status, body = r:result()
          assert.equal(200, status)
          return cjson.decode(body).peer
        end
        local first = peer("GET", "/a")
        assert.equal(first, peer("PUT", "/b"))
        local post = peer("POST", "/c")
        assert.are_not.equal(first, post)
        local patch = peer("PATCH", "/d")
        assert.is_true(patch ~= first and patch ~= post)
        local put = peer("PUT", "/e")
        assert.is_true(put == first or put == post or put == patch)
        m:close()
      end)

      it("does a PUT and returns status, body and lower-cased headers", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local body = '{"modules":[{"plural_label":"Digital Marketings"}]}'
        local r = assert(m:start {
          method = "PUT", url = server.url .. "/crm/v8/settings/modules/2423488000000834002?x=1",
          headers = { "Authorization: Zoho-oauthtoken 1000.abc", "Content-Type: application/json",
                      "Accept: application/json" },
          body = body, timeout = 5, connect_timeout = 2,
        })
        wait_all(m, { r })
        local status, rbody, headers = r:result()
        assert.equal(200, status)
        assert.equal("application/json", headers["content-type"])
        assert.equal("second", headers["x-dup"])             -- last occurrence
        assert.equal("padded value", headers["x-spaced"])
        assert.is_nil(headers["X-Dup"])
        assert.equal(tostring(#rbody), headers["content-length"])
        -- idempotent
        local s2, b2 = r:result()
        assert.equal(status, s2)
        assert.equal(rbody, b2)
        local info = r:info()
        assert.equal("1.1", info.http_version)
        assert.equal(200, info.status)
        assert.is_true(info.total_time >= info.connect_time)
        assert.is_true(info.starttransfer_time > 0)
        if cjson then
          local echo = cjson.decode(rbody)
          assert.equal("PUT", echo.method)
          assert.equal("/crm/v8/settings/modules/2423488000000834002?x=1", echo.path)
          assert.equal(body, echo.body)
          assert.equal("Zoho-oauthtoken 1000.abc", echo.headers.authorization)
          assert.equal("application/json", echo.headers["content-type"])
          assert.is_nil(echo.headers.expect)                   -- Expect: removed
          -- what this libcurl can decode (gzip at least), so answers may come compressed
          assert.matches("gzip", echo.headers["accept-encoding"], 1, true)
          assert.equal(core._VERSION, echo.headers["user-agent"])
          assert.equal(tostring(#body), echo.headers["content-length"])
        end
        m:close()
      end)

      it("does GET, POST, DELETE and PUT without a body, with options", function()
        if not need_server() then return end
        local m = core.new_multi { user_agent = "zcrm/0.1.0 test" }
        local reqs = {
          assert(m:start { method = "GET", url = server.url .. "/a" }),
          assert(m:start { method = "POST", url = server.url .. "/b", body = "x=1&y=2",
                           headers = { "Content-Type: application/x-www-form-urlencoded" } }),
          assert(m:start { method = "DELETE", url = server.url .. "/c" }),
          assert(m:start { method = "PUT", url = server.url .. "/d" }),
          assert(m:start { method = "GET", url = server.url .. "/e?status=404" }),
        }
        assert.equal(5, m:running())
        local done = wait_all(m, reqs)
        assert.equal(5, #done)
        for i, r in ipairs(reqs) do
          local status, body = r:result()
          assert.equal(i == 5 and 404 or 200, status)
          if cjson then
            local echo = cjson.decode(body)
            assert.equal(({ "GET", "POST", "DELETE", "PUT", "GET" })[i], echo.method)
            assert.equal("zcrm/0.1.0 test", echo.headers["user-agent"])
            if i == 2 then assert.equal("x=1&y=2", echo.body) end
            if i == 4 then assert.equal("0", echo.headers["content-length"]) end
          end
        end
        m:close()
      end)

      it("runs many requests at once on one multi", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local reqs = {}
        for i = 1, 30 do reqs[i] = assert(m:start { method = "GET", url = server.url .. "/n" .. i }) end
        assert.equal(30, m:running())
        assert.equal(30, #wait_all(m, reqs))
        for _, r in ipairs(reqs) do assert.equal(200, (r:result())) end
        assert.equal(0, m:running())
        m:close()
      end)

      it("times out a slow response (TIMEOUT, retryable)", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local t0 = core.now()
        -- the server would answer after 60 s: a result before then is the timeout's
        local r = assert(m:start { method = "GET", url = server.url .. "/slow?ms=60000", timeout = 0.3 })
        wait_all(m, { r })
        local dt = core.now() - t0
        local e = fails("TIMEOUT", r:result())
        assert.is_true(e.retryable)
        assert.equal(28, e.details.curl_code)
        assert.is_true(dt >= 0.25, "took " .. dt)
        m:close()
      end)

      it("perform(0) never blocks; perform(wait) returns after `wait`, not at the answer", function()
        if not need_server() then return end
        local m = core.new_multi {}
        -- the answer comes after 60 s: a call that waited for it would take that long
        local r = assert(m:start { method = "GET", url = server.url .. "/slow?ms=60000", timeout = 120 })
        local worst = 0
        for _ = 1, 20 do
          local t0 = core.now()
          assert.same({}, m:perform(0))
          worst = math.max(worst, core.now() - t0)
        end
        assert.is_true(worst < 30, "perform(0) took " .. worst)
        assert.is_false(r:done())
        assert.is_nil(r:result())
        local t = m:timeout()
        assert.is_number(t)
        assert.is_true(t >= 0 and t <= 120)
        local fds = m:fds()
        assert.equal(1, #fds)
        assert.is_number(fds[1].fd)
        assert.is_boolean(fds[1].read)
        local t0 = core.now()
        m:perform(0.2)
        local dt = core.now() - t0
        assert.is_true(dt < 30, "perform(0.2) took " .. dt)
        r:cancel()
        m:close()
      end)

      it("caps the response at max_response_bytes (RESPONSE_TOO_LARGE)", function()
        if not need_server() then return end
        local m = core.new_multi { max_response_bytes = 1000 }
        local ok = assert(m:start { method = "GET", url = server.url .. "/big?n=1000" })
        local big = assert(m:start { method = "GET", url = server.url .. "/big?n=5000" })
        local chunked = assert(m:start { method = "GET", url = server.url .. "/big?n=5000&chunked=1" })
        wait_all(m, { ok, big, chunked })
        local status, body = ok:result()
        assert.equal(200, status)
        assert.equal(1000, #body)
        for _, r in ipairs { big, chunked } do
          local e = fails("RESPONSE_TOO_LARGE", r:result())
          assert.is_false(e.retryable)
          assert.matches("1000 bytes", e.message)
        end
        m:close()
      end)

      it("cancels a request mid-flight (idempotent)", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local r = assert(m:start { method = "GET", url = server.url .. "/slow?ms=2000" })
        local other = assert(m:start { method = "GET", url = server.url .. "/quick" })
        m:perform(0)
        m:perform(0.05)
        r:cancel()
        assert.is_true(r:done())
        local e = fails("CANCELLED", r:result())
        assert.is_false(e.retryable)
        r:cancel()
        local done = wait_all(m, { other })
        for _, d in ipairs(done) do assert.are_not.equal(r, d) end
        assert.equal(0, m:running())
        assert.same({}, r:info())
        assert.matches("cancelled", tostring(r))
        m:close()
        r:cancel()
      end)

      it("anchors running requests and releases them once done (weak table)", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local weak = setmetatable({}, { __mode = "v" })
        weak[1] = assert(m:start { method = "GET", url = server.url .. "/slow?ms=200" })
        weak[2] = assert(m:start { method = "GET", url = server.url .. "/slow?ms=60000" })
        collectgarbage()
        collectgarbage()
        assert.is_not_nil(weak[1])                -- running: anchored by the multi
        assert.is_not_nil(weak[2])
        local t0 = core.now()
        while m:running() == 2 and core.now() - t0 < 50 do m:perform(0.05) end   -- 50 s: a hang guard
        assert.equal(1, m:running())
        collectgarbage()
        collectgarbage()
        assert.is_nil(weak[1])                    -- done and returned: collectable
        assert.is_not_nil(weak[2])
        weak[2]:cancel()
        collectgarbage()
        collectgarbage()
        assert.is_nil(weak[2])                    -- cancelled: released
        m:close()
      end)

      it("survives collecting running requests and their multi in any order", function()
        if not need_server() then return end
        -- both unreachable while transfers run
        for _ = 1, 3 do
          local m = core.new_multi {}
          for i = 1, 5 do m:start { method = "GET", url = server.url .. "/slow?ms=500&i=" .. i } end
          m:perform(0.05)
          m = nil                                 -- luacheck: ignore
          collectgarbage()
          collectgarbage()
        end
        -- a request kept, its multi dropped: the request keeps it alive
        local r
        do
          local m = core.new_multi {}
          r = m:start { method = "GET", url = server.url .. "/slow?ms=500" }
          m:perform(0)
        end
        collectgarbage()
        collectgarbage()
        assert.is_false(r:done())
        r = nil                                   -- luacheck: ignore
        collectgarbage()
        collectgarbage()
      end)

      it("closing the multi first detaches its requests (CANCELLED)", function()
        if not need_server() then return end
        local m = core.new_multi {}
        local reqs = {}
        for i = 1, 3 do reqs[i] = assert(m:start { method = "GET", url = server.url .. "/slow?ms=10000&i=" .. i }) end
        local quick = assert(m:start { method = "GET", url = server.url .. "/quick" })
        wait_all(m, { quick })
        m:close()
        assert.equal(0, m:running())
        for _, r in ipairs(reqs) do
          assert.is_true(r:done())
          local e = fails("CANCELLED", r:result())
          assert.matches("closed", e.message)
          r:cancel()
        end
        assert.equal(200, (quick:result()))      -- completed ones keep their result
        m:close()
        m = nil                                   -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        for _, r in ipairs(reqs) do fails("CANCELLED", r:result()) end
      end)

      it("verbose mode shows the exchange on stderr with credentials redacted", function()
        if not need_server() then return end
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write([[
package.cpath = "./csrc/?.so;" .. package.cpath
local core = require "zcrm.core"
local m = core.new_multi { verbose = true }
local r = m:start { method = "PUT", url = arg[1] .. "?token=sekrit", body = "{}",
                    headers = { "Authorization: Zoho-oauthtoken sekrit-token", "Cookie: c=sekrit" } }
while not r:done() do m:perform(0.05) end
io.stdout:write("status ", (r:result()), "\n")
]])
        f:close()
        local p = io.popen("lua5.4 " .. script .. " " .. server.url .. "/verbose 2>&1")
        local out = p:read("a")
        p:close()
        os.remove(script)
        assert.matches("status 200", out, 1, true)
        assert.matches("> PUT /verbose?<redacted> HTTP/1.1", out, 1, true)
        assert.matches("> Authorization: <redacted>", out, 1, true)
        assert.matches("> Cookie: <redacted>", out, 1, true)
        assert.matches("< HTTP/1.1 200 OK", out, 1, true)
        assert.is_nil(out:find("sekrit", 1, true))
      end)
    end)
  end)
  -- }====
end)
