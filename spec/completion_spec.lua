-- `zcrm completion bash|zsh|fish`: scripts the shells accept, which complete
-- commands, every flag of the flag table (lua/zcrm/cli/args.lua), and plan
-- and change-set file names. zsh and fish come from make deps; without them
-- their part is pending, except under CI=true.
local cli = require "spec.support.cli"
local files = require "spec.support.files"

require "zcrm.cli"
local words = require "zcrm.cli.args"

local quote = cli.quote

local sh = cli.shell

-- True, and the part pending, when `program` is not installed (under
-- CI=true it must be: make deps installs it).
local function missing(program)
  if not sh("command -v " .. program) and os.getenv("CI") ~= "true" then
    pending(program .. " is not installed (make deps installs it)")
    return true
  end
end

-- A directory holding a plan, a change set, another file and a subdirectory.
local function workdir()
  local dir = files.tmpdir()
  for _, f in ipairs { "a.lua", "b.json", "c.txt" } do files.write(dir .. "/" .. f, "") end
  assert(os.execute("mkdir " .. quote(dir .. "/sub")))
  files.write(dir .. "/sub/d.lua", "")
  return dir
end

-- `shell -n`: the script parses.
local function parses(shell, script)
  local ok, out = sh(shell .. " -n " .. quote(script))
  assert.is_true(ok, out)
end

local function set_of(text)
  local set = {}
  for w in text:gmatch("%S+") do set[w] = true end
  return set
end

describe("zcrm completion", function()
  local dir, scripts
  setup(function()
    dir = workdir()
    scripts = {}
    for _, shell in ipairs { "bash", "zsh", "fish" } do
      local rc, out, err = cli.run { "completion", shell }
      assert.equal(0, rc, shell .. ": " .. err)
      scripts[shell] = dir .. "/zcrm." .. shell
      files.write(scripts[shell], out)
    end
  end)
  teardown(function() files.remove_tree(dir) end)

  it("refuses a missing or unknown shell (exit 2, one line)", function()
    local rc, out, err = cli.run { "completion" }
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("^zcrm: completion needs one shell: bash, zsh or fish", err)
    rc, out, err = cli.run { "completion", "tcsh" }
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("^zcrm: no completion for tcsh %(bash, zsh or fish%)", err)
  end)

  describe("for bash", function()
    -- What the script offers for the words typed (the last one being completed).
    local function complete(...)
      local typed = {}
      for i, w in ipairs { ... } do typed[i] = quote(w) end
      local ok, out = sh(string.format(
        "cd %s && bash -c 'source %s; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _zcrm; "
          .. "printf \"%%s\\n\" \"${COMPREPLY[@]}\"' bash %s", quote(dir), quote(scripts.bash), table.concat(typed, " ")))
      assert.is_true(ok, out)
      return set_of(out)
    end

    it("passes bash -n", function() parses("bash", scripts.bash) end)

    it("completes the commands", function()
      assert.same({ apply = true }, complete("zcrm", "ap"))
      local all = complete("zcrm", "")
      for _, name in ipairs(words.names()) do assert.is_true(all[name], name) end
      assert.same({ modules = true }, complete("zcrm", "help", "mod"))
      assert.same({ bash = true, zsh = true, fish = true }, complete("zcrm", "completion", ""))
    end)

    it("offers every flag of every command, and nothing it refuses", function()
      for _, name in ipairs(words.names()) do
        local expected = {}
        for _, f in ipairs(words.flags_of(name)) do
          expected["--" .. f.name] = true
          if f.short then expected["-" .. f.short] = true end
        end
        assert.same(expected, complete("zcrm", name, "-"), name)
      end
    end)

    it("completes plan and change-set file names, data centres, and files after a file flag", function()
      assert.same({ ["a.lua"] = true, ["b.json"] = true, sub = true }, complete("zcrm", "apply", ""))
      assert.same({ ["a.lua"] = true, sub = true }, complete("zcrm", "validate", ""))
      assert.same({ ["b.json"] = true, sub = true }, complete("zcrm", "show", ""))
      assert.same({ ["sub/d.lua"] = true }, complete("zcrm", "plan", "sub/"))
      assert.same({ eu = true }, complete("zcrm", "apply", "x.lua", "--dc", "e"))
      assert.same({ eu = true }, complete("zcrm", "modules", "--dc", "=", "e"))
      assert.same({ sandbox = true }, complete("zcrm", "diff", "--environment", "s"))
      assert.same({ ["c.txt"] = true }, complete("zcrm", "apply", "x.lua", "--journal", "c"))
      assert.same({}, complete("zcrm", "apply", "x.lua", "--concurrency", ""))
    end)
  end)

  describe("for zsh", function()
    if missing("zsh") then return end
    it("passes zsh -n", function() parses("zsh", scripts.zsh) end)
  end)

  describe("for fish", function()
    if missing("fish") then return end
    local function complete(line)
      local ok, out = sh(string.format("cd %s && fish --no-config -c %s", quote(dir),
        quote("source " .. quote(scripts.fish) .. "; complete -C " .. quote(line))))
      assert.is_true(ok, out)
      local set = {}
      for l in out:gmatch("[^\n]+") do set[l:match("^[^\t]*")] = true end
      return set
    end

    it("passes fish -n", function() parses("fish", scripts.fish) end)

    it("completes commands, flags and plan files", function()
      assert.same({ apply = true }, complete("zcrm ap"))
      assert.same({ ["a.lua"] = true, ["b.json"] = true, ["sub/"] = true }, complete("zcrm apply "))
      assert.same({ ["--dry-run"] = true }, complete("zcrm apply --dr"))
      assert.same({ eu = true }, complete("zcrm apply --dc e"))
    end)
  end)
end)
