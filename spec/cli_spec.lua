-- bin/zcrm as a user runs it: exit codes, --help, --json, connection settings,
-- and no token in any output.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

local quote = emulator.quote
local puts = require("spec.support.client").puts
local TOKEN = "emulator-token"

local files = require "spec.support.files"
local spit = files.write

-- Reads a captured output file and removes it.
local function slurp(path)
  local s = files.read(path) or ""
  os.remove(path)
  return s
end

-- The shell command that runs bin/zcrm with `args` (a list) in a clean
-- environment plus `env`.
local command = require("spec.support.cli").command

-- Runs bin/zcrm; returns exit code, stdout, stderr.
local function zcrm(args, env)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(command(args, env) .. " >" .. out .. " 2>" .. err)
  return code, slurp(out), slurp(err)
end

-- Runs bin/zcrm on a pseudo-terminal (util-linux `script`), with `input`
-- typed on it. Returns exit code and everything the terminal showed.
local function zcrm_tty(args, env, input)
  local inf, outf = os.tmpname(), os.tmpname()
  spit(inf, input or "")
  local _, _, code = os.execute(string.format("script -qec %s /dev/null <%s >%s 2>&1",
    quote(command(args, env)), inf, outf))
  os.remove(inf)
  return code, slurp(outf)
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
      for _, sub in ipairs { "apply", "validate", "modules", "profiles" } do
        local hcode, hout = zcrm { "help", sub }
        assert.equal(0, hcode, sub)
        assert.matches("^usage: zcrm " .. sub, hout)
      end
      code, out = zcrm { "help", "emulator" }
      assert.equal(0, code)
      assert.matches("usage: zcrm emulator", out)
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
    it("suggests the nearest command for a mistyped one, and none for a word far from every command", function()
      local code, out, err = zcrm { "aply", "plan.lua" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.equal('zcrm: unknown command "aply"; did you mean "apply"? (see zcrm --help)\n', err)
      code, out, err = zcrm { "help", "modles" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches('did you mean "modules"?', err, 1, true)
      code, out, err = zcrm { "zzzzzz" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.equal('zcrm: unknown command "zzzzzz" (see zcrm --help)\n', err)
    end)
    it("suggests the nearest flag for a mistyped one", function()
      local code, out, err = zcrm { "apply", "plan.lua", "--yess" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("unknown option '--yess' for zcrm apply; did you mean '--yes'?", err, 1, true)
      code, out, err = zcrm { "apply", "plan.lua", "--zzzzzz" }
      assert.equal("", out)
      assert.equal(2, code)
      assert.is_nil(err:find("did you mean", 1, true), err)
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

  it("gives hints that fit the fault", function()
    local code, _, err = zcrm { "validate", "/nonexistent/plan.lua" }
    assert.equal(2, code)
    assert.matches("cannot read plan: /nonexistent/plan.lua: No such file", err)
    assert.matches("hint: Check the plan file's name and path", err)
    local path = write_plan "{\n  { module = 'Projects' plural_label = 'x' },\n}"
    code, _, err = zcrm { "validate", path }
    assert.equal(2, code)
    assert.matches("syntax error in " .. path:gsub("%p", "%%%0") .. ":2:", err)
    assert.matches("hint: Fix the Lua syntax", err)
    os.remove(path)
    path = write_plan [[{
      { module = "Projects", plural_label = "Client Projects" },
      { module = "Projects", singular_label = "Client Project" },
      { plural_label = "Orphans" },
    }]]
    code, _, err = zcrm { "validate", path }
    assert.equal(2, code)
    assert.matches("entry 2 %(Projects%): DUPLICATE_DATA: module Projects is already updated by entry 1[^\n]*"
      .. "hint: Merge the two entries", err)
    assert.matches("entry 3: INVALID_MODULE: [^\n]*hint: Add module = ", err)
    assert.is_nil(err:find("details.errors", 1, true))
    os.remove(path)
  end)

  describe("against the emulator", function()
    local emu, env
    setup(function() emu = emulator.start {} end)
    teardown(function() emu:stop() end)
    before_each(function()
      emu:reset()
      env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN }
    end)

    it("apply: exit 0 when all applied, with a diff and a summary", function()
      local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--diff", "--yes" }, env)
      assert.equal(0, code, err)
      assert.matches('"Campaign Assets" %-> "Marketing Assets"', out)
      assert.matches("grant Marketing", out)
      assert.matches("revoke Contractor", out)
      assert.matches("applied 13, already applied 0, skipped 0, invalid 0, failed 0, not sent 0 of 13 entries", out)
      assert.equal(13, puts(emu))
      assert.is_nil(out:find(TOKEN, 1, true))
      assert.is_nil(err:find(TOKEN, 1, true))
    end)

    it("apply --no-diff: exit 1 when some entries fail, each failure on one line", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Visits", plural_label = "Site Visits" },
      }]]
      local code, out, err = zcrm({ "apply", path, "--no-diff", "--yes" }, env)
      assert.equal(1, code)
      assert.matches("applied 1, already applied 0, skipped 0, invalid 0, failed 1", out)
      assert.equal(1, lines(err))
      assert.matches("^zcrm: Visits failed: INVALID_DATA", err)
      os.remove(path)
    end)

    it("apply: identical failures make one line, with their count and modules", function()
      local path = write_plan [[{
        { module = "No_Such_One", plural_label = "Prospects" },
        { module = "Projects", plural_label = "Client Projects" },
        { module = "No_Such_Two", plural_label = "People" },
      }]]
      local code, out, err = zcrm({ "apply", path, "--no-diff", "--yes" }, env)
      assert.equal(1, code)
      assert.matches("applied 1, already applied 0, skipped 0, invalid 0, failed 2", out)
      assert.equal(1, lines(err), err)
      assert.matches("^zcrm: 2 entries failed %([%w_]+, [%w_]+%): INVALID_MODULE", err)
      assert.matches("No_Such_One", err)
      assert.matches("No_Such_Two", err)
      os.remove(path)
    end)

    it("apply: exit 2 for an invalid plan, and nothing is sent", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Tickets", singular_label = "x", plural_lable = "typo" },
      }]]
      local before = emu:stats().requests.total
      local code, _, err = zcrm({ "apply", path, "--yes" }, env)
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
      assert.equal(0, puts(emu))
    end)

    it("apply --json writes only JSON lines: changes, results and the report", function()
      local code, out = zcrm({ "apply", "examples/plans/relabel.lua", "--json", "--concurrency", "3", "--yes" }, env)
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
      local path = write_plan [[{ { module = "Visits", plural_label = "Site Visits" } }]]
      local code, out = zcrm({ "apply", path, "--json", "--no-diff", "--yes" }, env)
      assert.equal(1, code)
      local result = of_kind(json_lines(out), "result")[1]
      assert.equal("failed", result.status)
      assert.equal("INVALID_DATA", result.error.code)
      assert.equal("Module rename not allowed", result.error.message)
      assert.equal(400, result.error.status)
      os.remove(path)
    end)

    it("apply --journal and --undo write their files; the undo plan restores the org", function()
      local dir = files.tmpdir()
      local journal, undo = dir .. "/j", dir .. "/undo.lua"
      local code = zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal, "--undo", undo, "--yes" }, env)
      assert.equal(0, code)
      local code2, out2 = zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal, "--yes" }, env)
      assert.equal(0, code2)
      assert.matches("already applied 13, skipped 0", out2)
      local code3, out3 = zcrm({ "apply", undo, "--yes" }, env)
      assert.equal(0, code3)
      assert.matches("applied 13", out3)
      local code4, out4 = zcrm({ "apply", "examples/plans/relabel.lua", "--diff", "--dry-run" }, env)
      assert.equal(0, code4)
      assert.matches("would apply 13", out4)
      files.remove_tree(dir)
    end)

    it("apply passes extra arguments to a plan function", function()
      local code, out = zcrm({ "apply", "examples/plans/regional_labels.lua", "eu", "--yes" }, env)
      assert.equal(0, code)
      assert.matches('"Client Programmes"', out)
    end)

    it("apply relabels Deals, a standard module; modules still shows each module's type", function()
      local path = write_plan [[{ { module = "Deals", plural_label = "Opportunities", singular_label = "Opportunity" } }]]
      local code, out, err = zcrm({ "apply", path, "--yes" }, env)
      assert.equal(0, code, err)
      assert.matches("applied 1", out)
      for _, m in ipairs(emu:state().modules) do
        if m.api_name == "Deals" then assert.equal("Opportunities", m.plural_label) end
      end
      code, out = zcrm({ "modules" }, env)
      assert.equal(0, code)
      assert.matches("\nDeals%s+2423488000000002181%s+default%s+Opportunities%s+Opportunity", out)
      assert.matches("\nVisits%s+2423488000000002209%s+default", out)
      os.remove(path)
    end)

    it("modules and profiles list the org, as text or JSON", function()
      local code, out = zcrm({ "modules" }, env)
      assert.equal(0, code)
      assert.matches("^API NAME%s+ID%s+TYPE%s+PLURAL LABEL%s+SINGULAR LABEL%s+PROFILES\n", out)
      assert.matches("\nDigital_Marketing%s+2423488000000834002%s+custom", out)
      -- aligned: every row's id starts in the header's ID column
      local column = out:match("^(API NAME%s+)ID")
      for line in out:gmatch("[^\n]+") do
        assert.matches("^%S+%s+", line:sub(1, #column))
        assert.matches("^[%dI]", line:sub(#column + 1))
      end
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

    it("a wrong token: one error line with a hint, nothing sent, never the token", function()
      local secret = "1000.secretvalue.abcdef"
      for _, extra in ipairs { {}, { "--no-diff" } } do
        emu:reset()
        local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--yes", table.unpack(extra) },
          { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = secret })
        assert.equal(1, code)
        assert.equal(1, lines(err), err)
        assert.matches("INVALID_TOKEN", err)
        assert.matches("hint: ", err)
        assert.is_nil((out .. err):find(secret, 1, true))
        if #extra == 0 then
          assert.equal(0, puts(emu)) -- the state read proved the token wrong first
        else
          assert.matches("stopped, %d+ not sent", err) -- the first refusal stopped the run
          assert.is_true(puts(emu) <= 10)
        end
      end
    end)

    it("--undo refuses an existing file: exit 2, the file untouched, nothing sent", function()
      local undo = os.tmpname()
      os.remove(undo)
      local code, _, err = zcrm({ "apply", "examples/plans/relabel.lua", "--undo", undo, "--yes" }, env)
      assert.equal(0, code, err)
      local first = files.read(undo)
      assert.matches("^%-%- Undo plan written by zcrm", first)
      local before = emu:stats().requests.total
      code, _, err = zcrm({ "apply", "examples/plans/relabel.lua", "--undo", undo, "--yes" }, env)
      assert.equal(2, code)
      assert.equal(1, lines(err))
      assert.matches("undo file .* already exists", err)
      assert.matches("nothing was sent", err)
      assert.equal(first, files.read(undo))
      assert.equal(before, emu:stats().requests.total)
      -- and the way back still works
      code = zcrm({ "apply", undo, "--yes" }, env)
      assert.equal(0, code)
      assert.equal("Campaign Assets", emu:state().modules[1] and (function()
        for _, m in ipairs(emu:state().modules) do if m.api_name == "Digital_Marketing" then return m.plural_label end end
      end)())
      os.remove(undo)
    end)

    it("a stale journal never skips a change: the org ends in the plan's state", function()
      local journal, undo = os.tmpname(), os.tmpname()
      os.remove(journal)
      os.remove(undo)
      assert.equal(0, (zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal, "--undo", undo, "--yes" }, env)))
      assert.equal(0, (zcrm({ "apply", undo, "--yes" }, env)))  -- back to the seeded org
      local code, out = zcrm({ "apply", "examples/plans/relabel.lua", "--journal", journal, "--yes" }, env)
      assert.equal(0, code)
      assert.matches("applied 13, already applied 0, skipped 0", out)
      local labels = {}
      for _, m in ipairs(emu:state().modules) do labels[m.api_name] = m.plural_label end
      assert.equal("Marketing Assets", labels.Digital_Marketing)
      assert.equal("Client Projects", labels.Projects)
      assert.equal("Fleet Vehicles", labels.Vehicles)
      os.remove(journal)
      os.remove(undo)
    end)

    it("a dry run checks against the server: an unreachable host or a wrong token fails it", function()
      local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--dry-run" },
        { ZOHO_API_DOMAIN = "http://127.0.0.1:9", ZOHO_ACCESS_TOKEN = TOKEN })
      assert.equal(1, code)
      assert.matches("CONNECTION_FAILED", err)
      assert.is_nil(out:find("would apply", 1, true))
      code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--dry-run" },
        { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = "1000.wrong" })
      assert.equal(1, code)
      assert.equal(1, lines(err))
      assert.matches("INVALID_TOKEN", err)
      assert.is_nil(out:find("would apply", 1, true))
      -- with the state read, it shows the real bodies: profile ids, only what differs
      code, out = zcrm({ "apply", "examples/plans/relabel.lua", "--dry-run" }, env)
      assert.equal(0, code)
      assert.matches('would send  Projects%s+{.*"id":"2423488000000015984"', out)
      assert.equal(0, puts(emu))
    end)

    it("a dry run fails like the real run: an unknown module, an unknown profile", function()
      local path = write_plan [[{
        { module = "No_Such_Module", plural_label = "Prospects" },
        { module = "Projects", profiles = { { name = "Nobody" } } },
      }]]
      local code, _, err = zcrm({ "apply", path, "--dry-run" }, env)
      assert.equal(2, code)
      assert.matches("no module 'No_Such_Module' in this org", err)
      assert.matches("no profile named 'Nobody'", err)
      assert.matches("%-%-partial", err)
      os.remove(path)
    end)

    it("asks on a terminal: 'n' sends nothing, 'y' applies", function()
      local code, screen = zcrm_tty({ "apply", "examples/plans/relabel.lua" }, env, "n\n")
      assert.equal(1, code, screen)
      assert.matches("Apply 13 changes to " .. emu.url:gsub("%p", "%%%0") .. " %(65 credits%)%? %[y/N%]", screen)
      assert.matches("nothing was sent", screen)
      assert.equal(0, puts(emu))
      code, screen = zcrm_tty({ "apply", "examples/plans/relabel.lua" }, env, "y\n")
      assert.equal(0, code, screen)
      assert.matches("applied 13", screen)
      assert.equal(13, puts(emu))
      -- nothing left to change: no question
      code, screen = zcrm_tty({ "apply", "examples/plans/relabel.lua" }, env, "")
      assert.equal(0, code, screen)
      assert.is_nil(screen:find("[y/N]", 1, true))
    end)

    it("without a terminal and without --yes, shows the changes, sends nothing and exits 2 naming --yes", function()
      local code, out, err = zcrm({ "apply", "examples/plans/relabel.lua" }, env)
      assert.equal(2, code)
      assert.matches("Changes (13 modules)", out, 1, true) -- every input checked first: the question comes last
      assert.equal(1, lines(err))
      assert.matches("CONFIRMATION_REQUIRED", err, 1, true)
      assert.matches("%-%-yes", err)
      assert.equal(0, puts(emu))
    end)

    it("checks every input before asking: a missing plan or a bad flag is named, not hidden behind --yes", function()
      local code, out, err = zcrm({ "apply", "nosuch.lua" }, env)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("nosuch.lua", err, 1, true)
      assert.is_nil(err:find("CONFIRMATION_REQUIRED", 1, true), err)
      code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--dc", "mars" }, env)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("unknown dc 'mars'", err, 1, true)
      assert.matches("hint: Check %-%-dc", err)            -- the hint speaks of flags
      code, out, err = zcrm({ "apply", "examples/plans/relabel.lua", "--concurrency", "0" }, env)
      assert.equal(2, code)
      assert.equal("", out)
      assert.is_nil(err:find("CONFIRMATION_REQUIRED", 1, true), err)
      assert.equal(0, emu:stats().requests.total)
    end)

    it("on a terminal: colours unless NO_COLOR or --no-color; the progress line is cleared first", function()
      local path = write_plan [[{
        { module = "Projects", plural_label = "Client Projects" },
        { module = "Visits", plural_label = "Site Visits" },
      }]]
      local _, screen = zcrm_tty({ "apply", path, "--no-diff", "--yes" }, env)
      assert.matches("\27%[[%d;]+m", screen)
      -- every error line starts a line of its own (or follows the clearing of the progress line)
      local errors = 0
      for line in screen:gmatch("[^\n]+") do
        if line:find("zcrm:", 1, true) then
          errors = errors + 1
          local visible = line:gsub("\r+$", ""):match("[^\r]*$"):gsub("^\27%[K", "")
          assert.matches("^\27%[[%d;]*mzcrm:", visible)
        end
      end
      assert.equal(1, errors)
      local _, plain = zcrm_tty({ "apply", path, "--no-diff", "--yes" }, { ZOHO_API_DOMAIN = emu.url,
        ZOHO_ACCESS_TOKEN = TOKEN, NO_COLOR = "1" })
      assert.is_nil(plain:find("\27%[[%d;]+m"))
      _, plain = zcrm_tty({ "profiles", "--no-color" }, env)
      assert.is_nil(plain:find("\27%[[%d;]+m"))
      assert.matches("ID%s+NAME", plain)
      os.remove(path)
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

  -- Starts bin/zcrm in the background; returns { pid =, out =, err =, rc = } files.
  local function start(args, env)
    local run = { out = os.tmpname(), err = os.tmpname(), pidfile = os.tmpname(), rcfile = os.tmpname() }
    spit(run.rcfile, "")
    os.execute(string.format("( %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s ) >/dev/null 2>&1 &",
      command(args, env), run.out, run.err, run.pidfile, run.rcfile))
    repeat run.pid = tonumber(files.read(run.pidfile) or "") until run.pid
    return run
  end

  -- Waits until `cond()` holds (an event, not a time), failing after a minute.
  local function wait_for(cond, what)
    local deadline = os.time() + 60
    while not cond() do
      assert(os.time() < deadline, "timed out waiting for " .. what)
      os.execute("sleep 0.02")
    end
  end

  local function finish(run)
    wait_for(function() return (files.read(run.rcfile) or ""):match("%d") end, "zcrm to exit")
    local code = tonumber(slurp(run.rcfile):match("%d+"))
    local out, err = slurp(run.out), slurp(run.err)
    os.remove(run.pidfile)
    return code, out, err
  end

  describe("interrupted", function()
    local emu, env
    setup(function() emu = emulator.start { "--latency-ms", "400" } end)
    teardown(function() emu:stop() end)
    before_each(function()
      emu:reset()
      env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN }
    end)

    for _, case in ipairs { { "INT", 130, "Ctrl%-C" }, { "TERM", 143, "SIGTERM" } } do
      it("by SIG" .. case[1] .. " mid-run: the summary and the command that resumes, exit " .. case[2]
          .. "; that command completes the run", function()
        local undo = os.tmpname()
        os.remove(undo)
        local run = start({ "apply", "examples/plans/relabel.lua", "--yes", "--undo", undo, "--concurrency", "1" }, env)
        wait_for(function() return puts(emu) >= 1 end, "the first update")
        os.execute("kill -" .. case[1] .. " " .. run.pid)
        local code, out, err = finish(run)
        assert.equal(case[2], code, err)
        assert.is_nil(err:find("traceback", 1, true), err)
        assert.is_nil(err:find("interrupted!", 1, true), err)
        assert.matches("not sent %d+ of 13 entries", out)
        assert.matches("interrupted by " .. case[3], err)
        assert.is_true(puts(emu) < 13, "the run completed before the signal")
        -- the same command, without --undo: this run's undo plan stays the way back
        local resume = err:match("Running the same command again resumes: bin/zcrm (.-) %(")
        assert.equal("apply examples/plans/relabel.lua --yes --concurrency 1", resume)
        assert.matches(undo .. " stays the way back", err, 1, true)
        local args = {}
        for a in resume:gmatch("%S+") do args[#args + 1] = a end
        code, out = zcrm(args, env)
        assert.equal(0, code)
        assert.matches("applied %d+, already applied %d+, skipped 0, invalid 0, failed 0, not sent 0 of 13", out)
        assert.is_true(puts(emu) <= 13 + 1, "PUTs: " .. puts(emu))
        -- and the undo plan of the interrupted run restores the seeded org
        assert.equal(0, (zcrm({ "apply", undo, "--yes" }, env)))
        for _, m in ipairs(emu:state().modules) do
          if m.api_name == "Projects" then assert.equal("Projects", m.plural_label) end
        end
        os.remove(undo)
      end)
    end

    it("leaves a token given with --access-token out of the command that resumes", function()
      local run = start({ "apply", "examples/plans/relabel.lua", "--yes", "--concurrency", "1",
                          "--api-domain", emu.url, "--access-token", TOKEN }, {})
      wait_for(function() return puts(emu) >= 1 end, "the first update")
      os.execute("kill -INT " .. run.pid)
      local code, out, err = finish(run)
      assert.equal(130, code, err)
      assert.is_nil((out .. err):find(TOKEN, 1, true), err)
      local resume = err:match("Running the same command again resumes: bin/zcrm (.-) %(")
      assert.equal("apply examples/plans/relabel.lua --yes --concurrency 1 --api-domain " .. emu.url, resume)
      assert.matches("with your access token", err, 1, true)
    end)

    it("a second Ctrl-C stops at once", function()
      local run = start({ "apply", "examples/plans/relabel.lua", "--yes", "--concurrency", "1" }, env)
      wait_for(function() return puts(emu) >= 1 end, "the first update")
      os.execute("kill -INT " .. run.pid .. "; kill -INT " .. run.pid)
      local code, _, err = finish(run)
      assert.equal(130, code)
      assert.is_nil(err:find("traceback", 1, true), err)
    end)
  end)

  describe("emulator", function()
    it("runs the server in this process: killing it frees the port; a busy port says why", function()
      local run = start { "emulator", "--port", "0" }
      wait_for(function() return (files.read(run.out) or ""):match("^listening on ") end, "the emulator")
      local url = files.read(run.out):match("^listening on (%S+)")
      local port = url:match(":(%d+)$")
      local p = io.popen("ps -o comm= -p " .. run.pid)
      assert.equal("zcrm-emulator", p:read("l"))
      p:close()
      local code, _, err = zcrm { "emulator", "--port", port }
      assert.equal(1, code)
      assert.matches("Address already in use", err)
      assert.matches("%-%-port 0", err)
      os.execute("kill -TERM " .. run.pid)
      code = finish(run)
      assert.equal(0, code)
      -- the port is free again: a new emulator gets it
      local again = start { "emulator", "--port", port }
      wait_for(function() return (files.read(again.out) or ""):match("^listening on ")
                              or (files.read(again.rcfile) or ""):match("%d") end, "the second emulator")
      assert.matches("^listening on " .. url:gsub("%p", "%%%0"), files.read(again.out))
      os.execute("kill -TERM " .. again.pid)
      assert.equal(0, (finish(again)))
    end)
  end)

end)

describe("zcrm and a hostile server's text", function()
  local dir, emu, env
  local hostile = "Lea\27[2J\27]0;PWNED\7ds\nX"
  setup(function()
    dir = files.tmpdir()
    local state = dir .. "/org.json"
    -- seed the state file, then give a custom module a label that clears the
    -- screen and sets the window title (written as a server would send it)
    emu = emulator.start { "--state", state }
    emu:stop()
    local org = cjson.decode(slurp(state))
    local changed
    for _, m in ipairs(org.modules) do
      if m.api_name == "Digital_Marketing" then m.plural_label = hostile changed = true end
    end
    assert.is_true(changed)
    spit(state, cjson.encode(org))
    emu = emulator.start { "--state", state }
    env = { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = TOKEN }
  end)
  teardown(function()
    emu:stop()
    files.remove_tree(dir)
  end)

  local function no_escape(text)
    assert.is_nil(text:find("\27", 1, true), "an escape byte reached the terminal")
    assert.is_nil(text:find("\7", 1, true))
  end

  it("prints labels that carry terminal escapes with their control bytes shown, not acted on", function()
    local code, out = zcrm({ "modules" }, env)
    assert.equal(0, code)
    no_escape(out)
    assert.matches("Lea\\x1B[2J\\x1B]0;PWNED\\x07ds", out, 1, true)
    -- the diff shows the label as one quoted line
    local plan = write_plan '{ { module = "Digital_Marketing", plural_label = "Leads Two" } }'
    code, out = zcrm({ "apply", plan, "--dry-run" }, env)
    assert.equal(0, code, out)
    no_escape(out)
    assert.matches('"Lea\\027[2J', out, 1, true)
    os.remove(plan)
  end)

  it("shows such a label in a change set as the plan view does: escaped, on one quoted line", function()
    local plan, cs = write_plan '{ { module = "Digital_Marketing", plural_label = "Leads Two" } }', dir .. "/c.json"
    local shown = '"Lea\\027[2J\\027]0;PWNED\\007ds\\010X" -> "Leads Two"\n'
    for _, args in ipairs { { "plan", plan, "--out", cs }, { "apply", cs, "--dry-run" } } do
      local code, out, err = zcrm(args, env)
      assert.equal(0, code, err)
      no_escape(out .. err)
      assert.matches("Digital_Marketing  plural_label    " .. shown, out, 1, true)
    end
    os.remove(plan)
  end)

  it("escapes a file name given on the command line when it names it back", function()
    local code, out, err = zcrm({ "export", "--out", dir .. "/m\27[2J.lua" }, env)
    assert.equal(0, code, err)
    no_escape(out .. err)
    assert.matches("/m\\x1B[2J.lua", err, 1, true)
  end)
end)
