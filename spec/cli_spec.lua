-- bin/zcrm as a user runs it: exit codes, --help, --json, connection settings,
-- and no token in any output.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

local quote = emulator.quote
local PUT_ROUTE = "PUT /crm/v8/settings/modules/{module}"
local TOKEN = "emulator-token"

local files = require "spec.support.files"
local spit = files.write

-- Reads a captured output file and removes it.
local function slurp(path)
  local s = files.read(path) or ""
  os.remove(path)
  return s
end

-- Runs bin/zcrm with `args` (a list) in a clean environment plus `env`.
-- Returns exit code, stdout, stderr.
local function zcrm(args, env)
  local parts = { "env -i", "PATH=" .. quote(os.getenv("PATH") or "/usr/bin:/bin") }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. quote(v) end
  if os.getenv("ZCRM_COVERAGE_DIR") then -- make coverage counts the command too
    for _, k in ipairs { "LUA_INIT_5_4", "ZCRM_COVERAGE_DIR", "ZCRM_COVERAGE_CORE" } do
      parts[#parts + 1] = k .. "=" .. quote(os.getenv(k) or "")
    end
  end
  parts[#parts + 1] = "bin/zcrm"
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(table.concat(parts, " ") .. " >" .. out .. " 2>" .. err)
  return code, slurp(out), slurp(err)
end

local function json_lines(text)
  local events = {}
  for line in text:gmatch("[^\n]+") do events[#events + 1] = assert(cjson.decode(line), "not JSON: " .. line) end
  return events
end

local function of_kind(events, name)
  local list = {}
  for _, e in ipairs(events) do
    if e.event == name then list[#list + 1] = e end
  end
  return list
end

local function lines(text)
  local n = 0
  for _ in text:gmatch("[^\n]+") do n = n + 1 end
  return n
end

local function write_plan(entries)
  local path = os.tmpname()
  spit(path, "return " .. entries .. "\n")
  return path
end

describe("bin/zcrm", function()
  describe("usage", function()
    it("prints help for the command and for every subcommand, exit 0", function()
      for _, sub in ipairs { "apply", "validate", "modules", "profiles" } do
        local code, out = zcrm { sub, "--help" }
        assert.equal(0, code, sub)
        assert.matches("^usage: zcrm " .. sub, out)
      end
      local code, out = zcrm { "--help" }
      assert.equal(0, code)
      assert.matches("Commands:", out)
      code, out = zcrm { "emulator", "--help" }
      assert.equal(0, code)
      assert.matches("usage: zcrm emulator", out)
      assert.matches("%-%-latency%-ms", out)
    end)

    it("exits 2 with one line naming the fault for bad usage", function()
      local cases = {
        {}, { "frobnicate" }, { "apply" }, { "apply", "x.lua", "--bogus" }, { "validate" },
        { "apply", "x.lua", "--journal" }, { "modules", "extra" }, { "apply", "x.lua", "--diff=yes" },
      }
      for _, args in ipairs(cases) do
        local code, _, err = zcrm(args)
        assert.equal(2, code, table.concat(args, " "))
        if #args > 0 then
          assert.equal(1, lines(err), table.concat(args, " ") .. ": " .. err)
          assert.matches("^zcrm: ", err)
        end
      end
    end)
  end)

  describe("validate", function()
    it("exits 0 for a valid plan, without any connection settings", function()
      local code, out = zcrm { "validate", "examples/plans/relabel.lua" }
      assert.equal(0, code)
      assert.matches("13 entries, all valid", out)
    end)

    it("exits 2 and prints one line per invalid entry, with index and hint", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Fine" },
        { module = "Tickets", plural_label = "Not fine!" },
        { module = "Assets", profiles = {} },
      }]]
      local code, out, err = zcrm { "validate", path }
      assert.equal(2, code)
      assert.equal("", out)
      local errs = {}
      for line in err:gmatch("[^\n]+") do errs[#errs + 1] = line end
      assert.equal(3, #errs)
      assert.matches("^zcrm: entry 2 %(Tickets%): INVALID_DATA", errs[1])
      assert.matches("%(hint: ", errs[1])
      assert.matches("^zcrm: entry 3 %(Assets%): MINIMUM_DATA_NOT_FOUND", errs[2])
      assert.matches("2 of 3 entries are invalid", errs[3])
      code, out = zcrm { "validate", path, "--json" }
      assert.equal(2, code)
      local invalid = of_kind(json_lines(out), "invalid")
      assert.equal(2, #invalid)
      assert.equal(2, invalid[1].index)
      assert.equal("plural_label", invalid[1].error.field)
      os.remove(path)
    end)

    it("exits 2 for a plan file that does not load", function()
      local path = write_plan "{ this is not Lua"
      local code, _, err = zcrm { "validate", path }
      assert.equal(2, code)
      assert.matches("INVALID_PLAN", err)
      os.remove(path)
    end)
  end)

  describe("against the emulator", function()
    local emu, env
    setup(function() emu = emulator.start {} end)
    teardown(function() emu:stop() end)
    before_each(function()
      emu:reset()
      env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN }
    end)

    local function puts() return emu:stats().requests.by_route[PUT_ROUTE] or 0 end

    it("apply: exit 0 when all applied, with a diff and a summary", function()
      local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--diff" }, env)
      assert.equal(0, code, err)
      assert.matches('"Campaign Assets" %-> "Marketing Assets"', out)
      assert.matches("grant Marketing", out)
      assert.matches("revoke Contractor", out)
      assert.matches("applied 13, skipped 0, failed 0 of 13 entries", out)
      assert.equal(13, puts())
      assert.is_nil(out:find(TOKEN, 1, true))
      assert.is_nil(err:find(TOKEN, 1, true))
    end)

    it("apply: exit 1 when some entries fail, each failure on one line", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Leads", plural_label = "Prospects" },
      }]]
      local code, out, err = zcrm({ "apply", path }, env)
      assert.equal(1, code)
      assert.matches("applied 1, skipped 0, failed 1", out)
      assert.equal(1, lines(err))
      assert.matches("^zcrm: Leads failed: NOT_SUPPORTED", err)
      os.remove(path)
    end)

    it("apply: exit 2 for an invalid plan, and nothing is sent", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Tickets", singular_label = "x", plural_lable = "typo" },
      }]]
      local before = emu:stats().requests.total
      local code, _, err = zcrm({ "apply", path }, env)
      assert.equal(2, code)
      assert.matches("entry 2 %(Tickets%): INVALID_DATA: plural_lable", err)
      assert.matches("nothing was sent", err)
      assert.equal(before, emu:stats().requests.total)
      os.remove(path)
    end)

    it("apply --dry-run sends nothing", function()
      local code, out = zcrm({ "apply", "examples/plans/relabel.lua", "--dry-run", "--diff" }, env)
      assert.equal(0, code)
      assert.matches("would send  Projects", out)
      assert.matches("would apply 13", out)
      assert.equal(0, puts())
    end)

    it("apply --json writes only JSON lines: changes, results and the report", function()
      local code, out = zcrm({ "apply", "examples/plans/relabel.lua", "--diff", "--json", "--concurrency", "3" }, env)
      assert.equal(0, code)
      local events = json_lines(out)
      assert.equal(13, #of_kind(events, "change"))
      assert.equal(0, #of_kind(events, "skipped"))
      local results = of_kind(events, "result")
      assert.equal(13, #results)
      for _, r in ipairs(results) do
        assert.equal("applied", r.status)
        assert.is_number(r.index)
        assert.equal(13, r.total)
      end
      local report = of_kind(events, "report")[1]
      assert.same({ true, 13, 0, 0, 65 }, { report.ok, report.applied, report.skipped, report.failed, report.credits - 2 })
      assert.equal("report", events[#events].event)
      assert.is_true(emu:stats().max_in_flight <= 3)
    end)

    it("apply --json reports failures with their error object", function()
      local path = write_plan [[{ { module = "Leads", plural_label = "Prospects" } }]]
      local code, out = zcrm({ "apply", path, "--json" }, env)
      assert.equal(1, code)
      local result = of_kind(json_lines(out), "result")[1]
      assert.equal("failed", result.status)
      assert.equal("NOT_SUPPORTED", result.error.code)
      assert.equal(400, result.error.status)
      os.remove(path)
    end)

    it("apply --journal and --undo write their files; the undo plan restores the org", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir " .. quote(dir))
      local journal, undo = dir .. "/j", dir .. "/undo.lua"
      local code = zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal, "--undo", undo }, env)
      assert.equal(0, code)
      local code2, out2 = zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal }, env)
      assert.equal(0, code2)
      assert.matches("skipped 13 %(journal%)", out2)
      local code3, out3 = zcrm({ "apply", undo, "--diff" }, env)
      assert.equal(0, code3)
      assert.matches("applied 13", out3)
      local code4, out4 = zcrm({ "apply", "examples/plans/relabel.lua", "--diff", "--dry-run" }, env)
      assert.equal(0, code4)
      assert.matches("would apply 13", out4)
      os.execute("rm -rf " .. quote(dir))
    end)

    it("apply passes extra arguments to a plan function", function()
      local code, out = zcrm({ "apply", "examples/plans/regional_labels.lua", "eu", "--diff" }, env)
      assert.equal(0, code)
      assert.matches('"Client Programmes"', out)
    end)

    it("modules and profiles list the org, as text or JSON", function()
      local code, out = zcrm({ "modules" }, env)
      assert.equal(0, code)
      assert.matches("Digital_Marketing%s+2423488000000834002%s+custom", out)
      code, out = zcrm({ "profiles", "--json" }, env)
      assert.equal(0, code)
      local names = {}
      for _, p in ipairs(json_lines(out)) do names[p.name] = p.id end
      assert.equal("2423488000000015984", names.Contractor)
    end)

    it("takes connection settings from flags, which win over the environment", function()
      local code = zcrm({ "profiles", "--api-domain", emu.url },
        { ZOHO_API_DOMAIN = "http://127.0.0.1:9", ZOHO_ACCESS_TOKEN = TOKEN })
      assert.equal(0, code)
      local _, err
      code, _, err = zcrm({ "profiles", "--api-domain", emu.url, "--access-token", TOKEN })
      assert.equal(0, code)
      assert.matches("warning: %-%-access%-token", err)
      assert.is_nil(err:find(TOKEN, 1, true))
    end)

    it("reads a config file, and refuses one with secrets that others can read", function()
      local path = os.tmpname()
      spit(path, string.format("return { api_domain = %q, access_token = %q }", emu.url, TOKEN))
      os.execute("chmod 600 " .. quote(path))
      local code = zcrm { "profiles", "--config", path }
      assert.equal(0, code)
      os.execute("chmod 644 " .. quote(path))
      local _, err
      code, _, err = zcrm { "profiles", "--config", path }
      assert.equal(2, code)
      assert.matches("UNSAFE_CONFIG", err)
      assert.matches("chmod 600", err)
      assert.is_nil(err:find(TOKEN, 1, true))
      os.remove(path)
    end)

    it("prints a refused token's error on one line with a hint, never the token", function()
      local secret = "1000.secretvalue.abcdef"
      local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--diff" },
        { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = secret })
      assert.equal(1, code)
      assert.equal(1, lines(err))
      assert.matches("hint: ", err)
      assert.is_nil((out .. err):find(secret, 1, true))
    end)

    it("exits 2 for bad connection settings, naming the option", function()
      local code, _, err = zcrm({ "modules", "--dc", "mars" }, { ZOHO_ACCESS_TOKEN = TOKEN })
      assert.equal(2, code)
      assert.matches("unknown dc 'mars'", err)
      code, _, err = zcrm({ "modules", "--api-domain", emu.url })
      assert.equal(2, code)
      assert.matches("no credentials", err)
    end)
  end)
end)
