-- Help is the truth: what `zcrm help CMD`, `zcrm CMD --help` and the README
-- say about flags agrees with the one flag table the parser reads
-- (lua/zcrm/cli/args.lua), for every command.
local cli = require "spec.support.cli"
local files = require "spec.support.files"

require "zcrm.cli" -- defines every command in the table
local words = require "zcrm.cli.args"

-- The parser's verdict on `--name` for `command`: nil when it takes it.
local function refused(command, name)
  local flags, _, perr = words.parse(command, { "--" .. name }, 1)
  if flags or not perr:find("unknown option", 1, true) then return nil end
  return perr
end

-- The flags a help text lists: its lines "  --name ..." (and ", -x").
local function listed(text)
  local set, shorts = {}, {}
  for line in text:gmatch("[^\n]+") do
    local name, rest = line:match("^  %-%-([%w-]+)(.*)")
    if name then
      set[name] = true
      local short = rest:match("^ ?[^ ]*, %-(%w)%f[%W]") or rest:match("^, %-(%w)%f[%W]")
      if short then shorts[short] = name end
    end
  end
  return set, shorts
end

-- Every "--name" a text mentions, with the command it is for: the nearest
-- "zcrm OTHER" before it on its line, else `command`.
local function mentioned(text, command)
  local list = {}
  for line in text:gmatch("[^\n]+") do
    local at = 1
    while true do
      local s, e, name = line:find("%-%-([%a][%w-]*)", at)
      if not s then break end
      local owner = command
      for other in line:sub(1, s - 1):gmatch("zcrm (%l+)") do
        if words.COMMANDS[other] then owner = other end
      end
      list[#list + 1] = { owner = owner, name = name, line = line }
      at = e + 1
    end
  end
  return list
end

local function set_of(list)
  local set = {}
  for _, f in ipairs(list) do set[f.name] = true end
  return set
end

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return table.concat(list, " ")
end

describe("zcrm help", function()
  it("prints the same text for zcrm help CMD and zcrm CMD --help, for every command", function()
    for _, name in ipairs(words.names()) do
      local rc, out, err = cli.run { "help", name }
      assert.equal(0, rc, name .. ": " .. err)
      assert.matches("^usage: zcrm " .. name, out)
      local rc2, out2 = cli.run { name, "--help" }
      assert.equal(0, rc2, name)
      assert.equal(out, out2, name)
      if name ~= "emulator" then
        local rc3, out3 = cli.run { name, "-h" }
        assert.equal(0, rc3, name)
        assert.equal(out, out3, name)
      end
    end
  end)

  it("lists exactly the flags the parser takes, for every command", function()
    for _, name in ipairs(words.names()) do
      if not words.COMMANDS[name].raw then
        local _, out = cli.run { "help", name }
        local set, shorts = listed(out)
        assert.equal(sorted(set_of(words.flags_of(name))), sorted(set), "zcrm help " .. name)
        for _, f in ipairs(words.flags_of(name)) do
          if f.short then assert.equal(f.name, shorts[f.short], name .. " -" .. f.short) end
          -- and the parser takes each: with a value when the help names one
          assert.is_nil(refused(name, f.name))
        end
      end
    end
  end)

  it("offers no flag the parser refuses, anywhere in any help text", function()
    local texts = { { "main", select(2, cli.run { "--help" }) } }
    for _, name in ipairs(words.names()) do texts[#texts + 1] = { name, select(2, cli.run { "help", name }) } end
    for _, t in ipairs(texts) do
      for _, m in ipairs(mentioned(t[2], t[1])) do
        if m.owner ~= "main" and m.owner ~= "emulator" then
          assert.is_nil(refused(m.owner, m.name), string.format("zcrm help %s says: %s", t[1], m.line))
        end
      end
    end
  end)

  it("lists every command in zcrm --help", function()
    local _, main = cli.run { "--help" }
    for _, name in ipairs(words.names()) do
      assert.matches("\n  " .. name .. " ", main, 1, true)
    end
  end)

  it("describes itself: zcrm help help and zcrm help --help, exit 0", function()
    for _, args in ipairs { { "help", "help" }, { "help", "--help" }, { "help", "-h" } } do
      local rc, out, err = cli.run(args)
      assert.equal(0, rc, table.concat(args, " ") .. ": " .. err)
      assert.matches("^usage: zcrm help %[COMMAND%]", out)
    end
  end)

  it("refuses a flag a command does not take instead of ignoring it", function()
    local home = files.tmpdir()
    for _, args in ipairs { { "logout", "--dc", "eu" }, { "logout", "--environment", "sandbox" },
                            { "login", "--config", "x.lua" }, { "show", "x.json", "--org", "a" },
                            { "validate", "x.lua", "--dc", "eu" } } do
      local rc, out, err = cli.run(args, { HOME = home, XDG_CONFIG_HOME = home })
      assert.equal(2, rc, table.concat(args, " "))
      assert.equal("", out)
      local said = "zcrm: unknown option '" .. args[#args - 1] .. "' for zcrm " .. args[1]
      assert.equal(said, err:sub(1, #said))
    end
    files.remove_tree(home)
  end)

  it("refuses for a change set the flags only a plan takes, and its usage line offers none of them", function()
    local _, help = cli.run { "help", "apply" }
    local form = help:match("\n       (zcrm apply CHANGES%.json .-)\n       zcrm apply PLAN")
    assert.is_truthy(form, help)
    assert.matches("[--dry-run]", form, 1, true)
    for _, flag in ipairs { "no-diff", "batch", "diff" } do
      assert.is_nil(form:find("--" .. flag .. "]", 1, true), form)
      local rc, out, err = cli.run { "apply", "missing.json", "--" .. flag }
      assert.equal(2, rc, flag)
      assert.equal("", out)
      local said = "zcrm: --" .. flag .. " is for plans; a change set is compared with the org"
      assert.equal(said, err:sub(1, #said))
    end
  end)
end)

describe("the README's zcrm synopsis", function()
  local readme = assert(files.read("README.md"))
  local block = readme:match("\n## The `zcrm` command\n+```\n(.-)\n```")
  -- "zcrm CMD ..." lines, continuation lines joined to theirs
  local synopsis = {}
  for line in (block .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^zcrm (%l+)")
    if name then
      synopsis[#synopsis + 1] = { name = name, text = line }
    elseif #synopsis > 0 then
      synopsis[#synopsis].text = synopsis[#synopsis].text .. " " .. line
    end
  end

  it("has a line for every command, naming only flags it takes", function()
    local seen = {}
    for _, s in ipairs(synopsis) do
      assert.is_truthy(words.COMMANDS[s.name], "README: no command " .. s.name)
      seen[s.name] = true
      for _, m in ipairs(mentioned(s.text, s.name)) do
        assert.is_nil(refused(s.name, m.name), "README: " .. s.text)
      end
    end
    for _, name in ipairs(words.names()) do assert.is_true(seen[name], "README has no zcrm " .. name) end
  end)

  it("names every flag of every command (the connection options, --no-color and --help said once)", function()
    local named = {}
    for _, s in ipairs(synopsis) do
      named[s.name] = named[s.name] or {}
      for _, m in ipairs(mentioned(s.text, s.name)) do named[s.name][m.name] = true end
    end
    for _, name in ipairs(words.names()) do
      for _, f in ipairs(words.COMMANDS[name].flags) do
        if f.usage == false then -- kept for older scripts: said in the prose
          assert.matches("`--" .. f.name .. "`", readme, 1, true)
        else
          assert.is_true((named[name] or {})[f.name], "README's synopsis lacks zcrm " .. name .. " --" .. f.name)
        end
        if f.short then
          assert.matches("`--" .. f.name .. "` (or `-" .. f.short .. "`)", readme, 1, true)
        end
      end
    end
    for _, f in ipairs(words.CONNECTION_FLAGS) do
      assert.matches("`--" .. f.name, readme, 1, true)
    end
  end)
end)
