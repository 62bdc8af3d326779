-- zcrm.apply_orgs (lua/zcrm/orgs.lua): one plan, many orgs in one
-- process, against three emulators.
local zcrm = require "zcrm"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local state = require "spec.support.state"

local puts, custom_modules = state.puts, state.custom_modules

describe("zcrm.apply_orgs across three orgs", function()
  local emus
  before_each(function()
    emus = { emulator.start(), emulator.start(), emulator.start() }
  end)
  after_each(function()
    for _, e in ipairs(emus) do e:stop() end
  end)

  local function orgs()
    local list = {}
    for i, e in ipairs(emus) do
      list[i] = { name = "org" .. i, options = { api_domain = e.url, access_token = "emulator-token", env = false } }
    end
    return list
  end

  -- A plan function: each org gets its own label, by ctx.args.org.
  local function plan(ctx)
    return { { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper(),
               profile_set = { "Administrator", "Standard" } } }
  end

  it("applies one plan to every org, with one confirmation and a report per org", function()
    local asked = 0
    local result = assert(zcrm.apply_orgs(orgs(), plan, {
      confirm = function(r)
        asked = asked + 1
        assert.equal(3, #r.orgs)
        for _, o in ipairs(r.orgs) do assert.equal(1, #o.checked.would_send) end
        return true
      end,
    }))
    assert.equal(1, asked)
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.equal("org" .. i, result.orgs[i].name)
      assert.equal(1, #result.orgs[i].report.applied)
      local projects = custom_modules(e).Projects
      assert.same({ "Projects ORG" .. i, "Project", "Administrator,Standard" }, projects)
    end
  end)

  it("reads each org's state once: the check's read serves the apply", function()
    local result = assert(zcrm.apply_orgs(orgs(), plan, { confirm = function() return true end }))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      local by_route = e:stats().requests.by_route
      assert.equal(1, by_route["GET /crm/v8/settings/modules"], "module lists read from org" .. i)
      assert.equal(1, by_route["GET /crm/v8/settings/profiles"], "profile lists read from org" .. i)
      assert.equal(1, puts(e))
    end
  end)

  it("reads what the check's state lacks when a plan function gives the apply more", function()
    local calls = {}
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      calls[ctx.args.org] = (calls[ctx.args.org] or 0) + 1
      local entry = { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper() }
      -- the first call (the check) names no profile; the second (the apply) does
      if calls[ctx.args.org] == 2 then entry.profile_set = { "Administrator", "Standard" } end
      return { entry }
    end))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.same({ "Projects ORG" .. i, "Project", "Administrator,Standard" }, custom_modules(e).Projects)
      assert.equal(1, e:stats().requests.by_route["GET /crm/v8/settings/profiles"])
    end
  end)

  it("sends what the apply's plan gives when it differs from the check's deep inside an entry", function()
    local calls = {}
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      calls[ctx.args.org] = (calls[ctx.args.org] or 0) + 1
      -- the same entry but for one profile less in the second call (the apply)
      local set = calls[ctx.args.org] == 1 and { "Administrator", "Standard" } or { "Administrator" }
      return { { module = "Projects", plural_label = "Projects " .. ctx.args.org:upper(), profile_set = set } }
    end))
    assert.is_true(result.ok)
    for i, e in ipairs(emus) do
      assert.same({ "Projects ORG" .. i, "Project", "Administrator" }, custom_modules(e).Projects)
    end
  end)

  it("applies a plan table as it is after the confirmation, when confirm changed it", function()
    local list = { { module = "Projects", plural_label = "Projects Shown", profile_set = { "Administrator" } } }
    local result = assert(zcrm.apply_orgs(orgs(), list, {
      confirm = function()
        list[1].plural_label = "Projects Changed"
        list[1].profile_set[2] = "Standard"
        return true
      end,
    }))
    assert.is_true(result.ok)
    for _, e in ipairs(emus) do
      assert.same({ "Projects Changed", "Project", "Administrator,Standard" }, custom_modules(e).Projects)
    end
  end)

  it("checks every org before changing any: one org that refuses the plan stops them all", function()
    emus[3]:put_module("Tickets", { plural_label = "Projects ORG3" }) -- the label org3 would get is taken there
    local result, err = zcrm.apply_orgs(orgs(), plan, { confirm = function() return true end })
    assert.is_nil(result)
    assert.equal("INVALID_PLAN", err.code)
    assert.equal(1, #err.details.orgs)
    assert.equal("org3", err.details.orgs[1].org)
    for _, e in ipairs(emus) do assert.equal(e == emus[3] and 1 or 0, puts(e)) end
  end)

  it("runs the orgs at the same time: the others are under way before the first one finishes", function()
    for _, e in ipairs(emus) do e:stop() end
    emus = {}
    for i = 1, 3 do emus[i] = emulator.start { "--latency-ms", "100", "--extra-modules", "30" } end
    local done, seen = {}, nil
    local result = assert(zcrm.apply_orgs(orgs(), function(ctx)
      local list = {}
      for i = 1, 30 do list[i] = { module = "Bulk_Module_" .. i, plural_label = "Bulk " .. ctx.args.org .. " " .. i } end
      return list
    end, {
      concurrency = 5,
      on_progress = function(org, n, total)
        done[org] = n
        if n == total and not seen then -- the first org to finish: what had the others done?
          seen = {}
          for _, name in ipairs { "org1", "org2", "org3" } do seen[name] = done[name] or 0 end
        end
      end,
    }))
    assert.is_true(result.ok)
    for name, n in pairs(seen) do assert.is_true(n > 0, name .. " had not started when the first org finished") end
  end)

  it("refuses before any org runs when one org's undo file already exists", function()
    local dir = files.tmpdir()
    local f = assert(io.open(dir .. "/undo-org2.lua", "w"))
    f:write("-- an older undo plan\n")
    f:close()
    local result, err = zcrm.apply_orgs(orgs(), plan, { undo_file = dir .. "/undo-{org}.lua" })
    files.remove_tree(dir)
    assert.is_nil(result)
    assert.equal("UNDO_FILE_EXISTS", err.code)
    assert.matches("org org2", err.message, 1, true)
    for _, e in ipairs(emus) do assert.equal(0, puts(e)) end
  end)

  it("changes nothing when the confirmation says no", function()
    local result = assert(zcrm.apply_orgs(orgs(), plan, { confirm = function() return false end }))
    assert.is_false(result.confirmed)
    for _, e in ipairs(emus) do assert.equal(0, puts(e)) end
  end)
end)
