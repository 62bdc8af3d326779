-- What `zcrm` prints and where, as a careful user relies on it: every input
-- is checked before the question, which is asked on the terminal whatever
-- stdout and stderr are; with --json stdout holds JSON only; counts add up;
-- a second Ctrl-C loses no line already printed; colours on a terminal.
local cjson = require "cjson"
local core = require "zcrm.core"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"
local cli = require "spec.support.cli"
local clients = require "spec.support.client"

local puts = clients.puts

local function env_of(emu)
  return { ZOHO_API_DOMAIN = emu.url, ZOHO_ACCESS_TOKEN = "emulator-token" }
end

-- Every line of `text` is a JSON object with "format" and "version".
local function json_lines(text)
  local events = {}
  for line in text:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    assert.is_table(ev, line)
    assert.is_string(ev.format, line)
    assert.equal(1, ev.version, line)
    events[#events + 1] = ev
  end
  return events
end

describe("zcrm's streams", function()
  local emu, dir
  before_each(function() emu, dir = emulator.start(), files.tmpdir() end)
  after_each(function() emu:stop(); files.remove_tree(dir) end)

  it("--json: a plan's print goes to stderr; stdout holds JSON lines only", function()
    local plan = dir .. "/printing.lua"
    files.write(plan, 'print("planning the rename")\nio.write("and more\\n")\n'
      .. 'return { { module = "Projects", plural_label = "Client Projects" } }\n')
    local code, out, err = cli.run({ "apply", plan, "--yes", "--json" }, env_of(emu))
    assert.equal(0, code, err)
    local events = json_lines(out)
    assert.equal("zcrm.apply", events[1].format)
    assert.equal("report", events[#events].event)
    assert.matches("planning the rename", err, 1, true)
    assert.matches("and more", err, 1, true)
    -- plan, export and diff speak JSON too
    code, out, err = cli.run({ "plan", plan, "--json" }, env_of(emu))
    assert.equal(0, code, err)
    assert.equal("zcrm.changes", cjson.decode(out).format)   -- the change set itself
    code, out, err = cli.run({ "export", "--json" }, env_of(emu))
    assert.equal(0, code, err)
    local doc = json_lines(out)[1]
    assert.equal("zcrm.export", doc.format)
    assert.is_true(#doc.modules > 0)
    code, out = cli.run({ "diff", plan, "--json" }, env_of(emu))
    assert.equal(0, code)
    assert.equal("zcrm.diff", json_lines(out)[1].format)
  end)

  it("--partial: the counts name every entry once and add up to the plan's", function()
    local plan = dir .. "/mixed.lua"
    local entries = { '{ module = "Projects", plural_label = "Client Projects" }',
                      '{ module = "Tickets", plural_label = "Tickets" }' }   -- already so
    for i = 1, 6 do entries[#entries + 1] = string.format('{ module = "Assets", plural_label = "Bad%d!" }', i) end
    files.write(plan, "return { " .. table.concat(entries, ",\n") .. " }\n")
    local code, out, err = cli.run({ "apply", plan, "--yes", "--partial" }, env_of(emu))
    assert.equal(1, code, err)                                -- some entries were invalid
    assert.matches("applied 1, already applied 1, skipped 0, invalid 6, failed 0, not sent 0 of 8 entries", out, 1, true)
  end)

  it("--orgs --json: JSON lines for every org's changes, results and report", function()
    local other = emulator.start()
    local orgs = dir .. "/ORGS.lua"
    files.write(orgs, string.format('return { { name = "a", options = { api_domain = %q, '
      .. 'access_token = os.getenv("ZOHO_ACCESS_TOKEN") } },\n  { name = "b", options = { api_domain = %q, '
      .. 'access_token = os.getenv("ZOHO_ACCESS_TOKEN") } } }\n', emu.url, other.url))
    local plan = dir .. "/plan.lua"
    files.write(plan, 'return { { module = "Projects", plural_label = "Client Projects" } }\n')
    local code, out, err = cli.run({ "apply", plan, "--orgs", orgs, "--yes", "--json" },
      { ZOHO_ACCESS_TOKEN = "emulator-token" })
    other:stop()
    assert.equal(0, code, err)
    local seen = {}
    for _, ev in ipairs(json_lines(out)) do
      assert.equal("zcrm.apply", ev.format)
      seen[ev.event .. ":" .. tostring(ev.org)] = true
    end
    for _, key in ipairs { "change:a", "change:b", "result:a", "result:b", "report:a", "report:b", "orgs:nil" } do
      assert.is_true(seen[key], key)
    end
  end)
end)

describe("zcrm on a terminal", function()
  local emu, dir
  before_each(function() emu, dir = emulator.start(), files.tmpdir() end)
  after_each(function() emu:stop(); files.remove_tree(dir) end)

  it("asks on the terminal even when stderr goes to a file", function()
    local err_file = dir .. "/err.log"
    local code, screen = cli.run_dialog({ "apply", "examples/plans/relabel.lua" }, env_of(emu),
      { { "[y/N]", "y" } }, nil, "2>" .. cli.quote(err_file))
    assert.equal(0, code, screen .. (files.read(err_file) or ""))
    assert.matches("Apply 13 changes to " .. emu.url, screen, 1, true)
    assert.equal(13, puts(emu))
  end)

  it("shows removals red, additions green and changed labels yellow; revoking Administrator is flagged", function()
    local plan = dir .. "/plan.lua"
    files.write(plan, 'return { { module = "Projects", plural_label = "Client Projects",\n'
      .. '  profiles = { { name = "Marketing" }, { name = "Administrator", _delete = true } } } }\n')
    local code, screen = cli.run_dialog({ "apply", plan }, env_of(emu), { { "[y/N]", "n" } })
    assert.equal(1, code, screen)
    assert.matches('\27[33m"Projects" -> "Client Projects"', screen, 1, true)
    assert.matches("\27[32mgrant Marketing", screen, 1, true)
    assert.matches("\27[31mrevoke Administrator", screen, 1, true)
    assert.matches("Warning: Projects: revokes Administrator", screen, 1, true)
    assert.equal(0, puts(emu))
  end)
end)

describe("a second Ctrl-C with stdout in a file", function()
  local emu
  setup(function() emu = emulator.start { "--latency-ms", "300" } end)
  teardown(function() emu:stop() end)

  it("leaves a line in the file for every update the run had reported applied", function()
    local running = cli.start({ "apply", "examples/plans/relabel.lua", "--yes", "--concurrency", "1" }, env_of(emu))
    -- one update in flight at a time: when the server sees the third, the
    -- client has printed the first two (it prints each before sending on)
    while puts(emu) < 3 do core.sleep(0.01) end
    os.execute("kill -INT " .. running.pid .. "; kill -INT " .. running.pid)
    local _, text = cli.finish(running)
    local _, applied = text:gsub("\n  applied ", "")
    assert.is_true(applied >= 2, "lines in the file: " .. text)
  end)
end)
