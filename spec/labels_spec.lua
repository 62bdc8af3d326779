-- One label rule: zcrm.validate_update gives every label of
-- spec/fixtures/labels.json its verdict. The emulator is checked against the
-- same table in emulator_spec.lua.
local zcrm = require "zcrm"
local labels = require "spec.support.labels"

describe("the label rule (spec/fixtures/labels.json)", function()
  local list = labels.load()

  it("has at least 60 labels, of every kind", function()
    assert.is_true(#list >= 60)
    local seen = {}
    for _, e in ipairs(list) do seen[e.why] = true end
    assert.same({ ok = true, char = true, empty = true, length = true, utf8 = true }, seen)
  end)

  for _, e in ipairs(list) do
    it("validate_update: " .. labels.name(e), function()
      for _, key in ipairs { "plural_label", "singular_label" } do
        local ok, err = zcrm.validate_update { [key] = e.text }
        if e.ok then
          assert.is_true(ok, err and tostring(err))
        else
          assert.is_nil(ok)
          assert.equal("INVALID_DATA", err.code)
          assert.equal("validation", err.kind)
          assert.equal(key, err.field)
          assert.equal("$.modules[0]." .. key, err.details.json_path)
          -- only a length fault names the maximum, as the server's does
          assert.equal(e.why == "length" and 25 or nil, err.details.maximum_length)
        end
      end
    end)
  end
end)
