-- Options: one checker, one failure rule. Every option of zcrm.new,
-- client:apply (plans and change sets), client:plan, client:diff and
-- zcrm.apply_orgs takes a good value, and each bad kind of value (a wrong
-- type, a fraction where an integer belongs, a number out of range, NaN)
-- is `nil, err` with code INVALID_CONFIG naming the option, before any
-- request. The tables below name every option by hand: an option added to a
-- schema without a line here fails the "covers" tests.
local zcrm = require "zcrm"
local options = require "zcrm.options"
local plan_apply = require "zcrm.plan.apply"
local changeset_apply = require "zcrm.plan.changeset_apply"
local orgs = require "zcrm.orgs"
local emulator = require "spec.support.emulator"
local clients = require "spec.support.client"

local NAN = 0 / 0
local fn = function() end

-- name -> { good value, bad values... }
local CLIENT = {
  api_domain = { "http://127.0.0.1:9", 5 },
  dc = { "eu", true },
  environment = { "sandbox", {} },
  access_token = { "1000.good.token", 7 },
  oauth = { { client_id = "1000.ID", client_secret = "s3cret-x", refresh_token = "1000.r.t",
              accounts_url = "http://127.0.0.1:9" }, "oauth", { client_id = 5 }, { clientid = "x" } },
  version = { "v8", 8, "8", "version8" },
  timeout = { 2.5, "30", 0, -1, NAN, math.huge },
  connect_timeout = { 1, "10", 0, -0.5, NAN },
  max_retries = { 0, "3", 1.5, -1, NAN },
  concurrency = { 25, "10", 2.5, 0, 1001 },
  ca_file = { "/etc/ssl/certs/ca-certificates.crt", 1 },
  proxy = { "http://127.0.0.1:3128", false },
  user_agent = { "my-app/1.0", 2 },
  logger = { false, "print", true },
  max_credits = { 0, "100", 10.5, -1 },
  credit_costs = { { read = 2, update_module = 5, create_module = 500, token = 0 },
                   "5", { read = "x" }, { read = 1.5 }, { update_module = -1 }, { reads = 1 } },
  retry_base = { 0, "0.5", -1, NAN },
  retry_max_delay = { 0.25, {}, -0.1, math.huge },
  max_response_bytes = { 1024, "1", 1.5, 0 },
  max_read_items = { 1, "10", 2.5, 0, -1 },
  max_read_bytes = { 4096, "10", 0.5, 0 },
  env = { false, "no", 0 },
  org = { "emea", 1 },
  label_rules = { "openapi", 1, "strict" },
}
local OAUTH = {
  client_id = { "1000.ID", 1 },
  client_secret = { "s3cret-x", 1 },
  refresh_token = { "1000.r.t", 1 },
  accounts_url = { "http://127.0.0.1:9", 1 },
  refresh_margin = { 0, "60", -1, NAN },
  token_cache = { "/tmp/zcrm-options-spec-cache.json", 1 },
  refresh_limit = { 5, "10", 1.5, 0 },
}
local COSTS = {
  read = { 1, "1", 0.5, -1 }, update_module = { 0, true, 1.5, -5 },
  create_module = { 500, "500", 499.5, -1 }, token = { 0, {}, 0.1, -1 },
}
local PLAN_APPLY = {
  dry_run = { true, "yes" }, diff = { false, 1 }, undo_file = { "undo.lua", true },
  journal = { "run.journal", 1 }, partial = { true, "no" }, concurrency = { 4, "4", 1.5, 0, -2 },
  on_result = { fn, "f" }, on_progress = { fn, 1 }, on_plan = { fn, {} }, confirm = { fn, true },
  stop = { fn, false }, stop_grace = { 0, "5", -1, NAN }, read_state = { true, "true" },
  args = { { "a" }, "a" }, dir = { ".", 1 }, batch = { true, 1 }, only = { { "Projects" }, "Projects" },
  exclude = { { "Projects" }, "Projects" }, max_credits = { 100, "100", 2.5, -1 },
}
local CHANGES_APPLY = {
  on_result = { fn, 1 }, on_progress = { fn, 1 }, concurrency = { 2, "2", 0.5, 0 }, stop = { fn, 1 },
  stop_grace = { 1.5, "1", -1 }, partial = { false, 0 }, dry_run = { true, "true" }, journal = { "j", 1 },
  undo_file = { "u.lua", 1 }, only = { { "X" }, "X" }, exclude = { { "X" }, "X" },
  max_credits = { 0, "0", 0.5, -1 }, on_plan = { fn, 1 }, confirm = { fn, 1 },
}
local PLAN = {
  args = { { "x" }, "x" }, dir = { ".", 1 }, source = { "p.lua", 1 }, only = { {}, "x" }, exclude = { {}, "x" },
}
local DIFF = { args = { {}, 1 }, dir = { ".", false } }
local APPLY_ORGS = {
  dry_run = { true, 1 }, journal = { "run-{org}.journal", 1 }, undo_file = { "undo-{org}.lua", 1 },
  args = { {}, "x" }, dir = { ".", 1 }, confirm = { fn, 1 }, on_result = { fn, 1 }, on_plan = { fn, 1 },
  on_progress = { fn, 1 }, concurrency = { 3, "3", 3.5, 0 }, stop = { fn, 1 }, stop_grace = { 2, "2", -2 },
}

local function keys(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Each bad value of each option is refused by `call(opts)` with
-- INVALID_CONFIG naming it (`field`, `details.option`) in the message.
local function refuses_each_bad(cases, call, field_of)
  for name, values in pairs(cases) do
    for i = 2, #values do
      local res, err = call({ [name] = values[i] })
      local shown = tostring(values[i])
      assert.is_nil(res, name .. " = " .. shown .. " was accepted")
      assert.equal("INVALID_CONFIG", err.code, name .. " = " .. shown)
      assert.equal("config", err.kind)
      local field = field_of and field_of(name, values[i]) or name
      assert.equal(field, err.field, name .. " = " .. shown)
      assert.equal(field, err.details.option)
      assert.matches("'" .. field .. "'", err.message, 1, true)
    end
  end
end

describe("options", function()
  it("cover every option of every call", function()
    assert.same(keys(options.CLIENT), keys(CLIENT))
    assert.same(keys(options.OAUTH), keys(OAUTH))
    assert.same(keys(options.CREDIT_COSTS), keys(COSTS))
    assert.same(keys(plan_apply.OPTIONS), keys(PLAN_APPLY))
    assert.same(keys(changeset_apply.APPLY_OPTIONS), keys(CHANGES_APPLY))
    assert.same(keys(changeset_apply.PLAN_OPTIONS), keys(PLAN))
    assert.same(keys(changeset_apply.DIFF_OPTIONS), keys(DIFF))
    assert.same(keys(orgs.OPTIONS), keys(APPLY_ORGS))
  end)

  describe("of zcrm.new", function()
    local BASE = { api_domain = "http://127.0.0.1:9", access_token = "1000.base.token", env = false }
    local function new(extra)
      local o = {}
      for k, v in pairs(BASE) do o[k] = v end
      for k, v in pairs(extra) do o[k] = v end
      return zcrm.new(o)
    end

    it("take a good value of each", function()
      for name, values in pairs(CLIENT) do
        if name ~= "org" and name ~= "oauth" then -- a stored org and OAuth: below
          local c, err = new { [name] = values[1] }
          assert.truthy(c, name .. ": " .. tostring(err))
          c:close()
        end
      end
      local c = assert(zcrm.new { api_domain = "http://127.0.0.1:9", env = false, oauth = CLIENT.oauth[1] })
      c:close()
      -- the org option is checked as a string; the store then says whether it exists
      local _, err = new { org = "no-such-org-" .. os.time() }
      assert.is_not_equal("INVALID_CONFIG", err and err.code)
    end)

    it("refuse each bad kind of value, naming the option", function()
      refuses_each_bad(CLIENT, new, function(name, v)
        if name == "oauth" and type(v) == "table" then return "oauth." .. next(v) end
        if name == "credit_costs" and type(v) == "table" then return "credit_costs." .. next(v) end
        return name
      end)
    end)

    it("check oauth's fields and credit_costs' kinds the same way", function()
      for name, values in pairs(OAUTH) do
        local o = {}
        for k, v in pairs(CLIENT.oauth[1]) do o[k] = v end
        o[name] = values[1]
        local c, err = zcrm.new { api_domain = "http://127.0.0.1:9", env = false, oauth = o }
        assert.truthy(c, name .. ": " .. tostring(err))
        c:close()
      end
      refuses_each_bad(OAUTH, function(o) return new { oauth = o } end, function(name) return "oauth." .. name end)
      for name, values in pairs(COSTS) do
        local c = assert(new { credit_costs = { [name] = values[1] } })
        assert.equal(values[1], c.credit_costs[name])
        c:close()
      end
      refuses_each_bad(COSTS, function(o) return new { credit_costs = o } end,
        function(name) return "credit_costs." .. name end)
    end)

    it("raise only when the options are not a table (misuse)", function()
      assert.has_error(function() zcrm.new(5) end)
    end)
  end)

  describe("of client calls", function()
    local client
    before_each(function()
      client = assert(zcrm.new { api_domain = "http://127.0.0.1:9", access_token = "1000.x.token", env = false })
    end)
    after_each(function() client:close() end)
    local PLAN_1 = { { module = "Projects", plural_label = "Engagements" } }
    local CHANGES = { format = "zcrm.changes", version = 1, api_domain = "http://127.0.0.1:9", org = "1", changes = {} }

    it("refuse each bad value for apply (a plan), plan and diff, sending nothing", function()
      refuses_each_bad(PLAN_APPLY, function(o) return client:apply(PLAN_1, o) end)
      refuses_each_bad(PLAN, function(o) return client:plan(PLAN_1, o) end)
      refuses_each_bad(DIFF, function(o) return client:diff(PLAN_1, o) end)
      for _, call in ipairs { "apply", "plan", "diff" } do
        local res, err = client[call](client, PLAN_1, { no_such_option = true })
        assert.is_nil(res)
        assert.equal("INVALID_CONFIG", err.code)
        assert.equal("no_such_option", err.field)
      end
      assert.equal(0, (client:credits()))
    end)

    it("refuse each bad value for apply (a change set)", function()
      refuses_each_bad(CHANGES_APPLY, function(o) return client:apply(CHANGES, o) end)
      local res, err = client:apply(CHANGES, { diff = true }) -- a plan's option, not a change set's
      assert.is_nil(res)
      assert.equal("diff", err.field)
    end)

    it("refuse each bad value for apply_orgs", function()
      local list = { { name = "a", options = { api_domain = "http://127.0.0.1:9", access_token = "1000.x.token", env = false } } }
      refuses_each_bad(APPLY_ORGS, function(o) return zcrm.apply_orgs(list, PLAN_1, o) end)
      local two = { list[1], { name = "b", options = list[1].options } }
      local res, err = zcrm.apply_orgs(two, PLAN_1, { journal = "one.journal" })
      assert.is_nil(res)
      assert.equal("journal", err.field)
    end)

    it("take a good value of each (schemas checked by the one checker)", function()
      for _, case in ipairs {
        { PLAN_APPLY, plan_apply.OPTIONS }, { CHANGES_APPLY, changeset_apply.APPLY_OPTIONS },
        { PLAN, changeset_apply.PLAN_OPTIONS }, { DIFF, changeset_apply.DIFF_OPTIONS }, { APPLY_ORGS, orgs.OPTIONS },
      } do
        local all = {}
        for name, values in pairs(case[1]) do all[name] = values[1] end
        local ok, err = options.check(all, case[2], "call")
        assert.truthy(ok, tostring(err))
      end
    end)
  end)

  describe("against the emulator", function()
    local emu
    setup(function() emu = emulator.start() end)
    teardown(function() emu:stop() end)
    before_each(function() emu:reset() end)

    it("let a dry run with good options of apply, plan and diff through to the org", function()
      local client = clients.maker()(emu)
      local p = { { module = "Digital_Marketing", plural_label = "Options Spec" } }
      local report = assert(client:apply(p, { dry_run = true, concurrency = 2, stop_grace = 0, max_credits = 10,
        only = { "Digital_Marketing" }, on_plan = fn, args = {}, dir = "." }))
      assert.equal(1, #report.would_send)
      local cs = assert(client:plan(p, { args = {}, only = { "Digital_Marketing" } }))
      assert.equal(1, #cs.changes)
      assert.is_true(assert(client:diff(p, { dir = "." })).differs)
      local again = assert(client:apply(cs, { dry_run = true, concurrency = 1, max_credits = 0, partial = true }))
      assert.equal(1, #again.pending)
      client:close()
    end)
  end)
end)
