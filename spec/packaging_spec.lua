-- Packaging: the rockspec and `make install` give a module that loads from
-- outside the repository. Both install into temporary trees. A test whose
-- tool (luarocks-5.4, groff) is missing is pending and says so.
local run = require("spec.support.cli").shell
local need = require "spec.support.need"

local function loads_from(tree, luadir, libdir)
  return run(string.format(
    "cd /tmp && LUA_PATH='%s/%s/?.lua;%s/%s/?/init.lua;;' LUA_CPATH='%s/%s/?.so;;' "
      .. "lua5.4 -e 'local z = require \"zcrm\"; assert(z.validate_update{ plural_label = \"Équipes\" }); "
      .. "assert(require(\"zcrm.proc\").interrupted() == nil); "
      .. "print(z._VERSION, package.searchpath(\"zcrm.core\", package.cpath))'",
    tree, luadir, tree, luadir, tree, libdir))
end

-- The work tree's files, ignored ones too: what a build leaves behind shows here.
-- fuzz/bin/ and coverage/ are left out: under make valgrind, make asan and make
-- coverage, every process of the suite writes its log or counts there while it
-- runs, whatever luarocks does.
local function tree_listing()
  local _, out = run("git status --porcelain --ignored --untracked-files=all -- . ':!fuzz/bin' ':!coverage'")
  return out
end

describe("packaging", function()
  it("luarocks make --deps-mode=none installs a loadable module and the zcrm command, and leaves no build products", function()
    local why = need.program("luarocks-5.4", "make deps installs it")
    if why then return pending(why) end
    local tree = os.tmpname(); os.remove(tree)
    local before = tree_listing()
    local ok, out = run("luarocks-5.4 make --deps-mode=none --tree " .. tree .. " zcrm-scm-1.rockspec")
    assert.is_true(ok, out)
    assert.equal(before, tree_listing())
    local lok, lout = loads_from(tree, "share/lua/5.4", "lib/lua/5.4")
    assert.is_true(lok, lout)
    assert.matches("zcrm 0.1.0\t" .. tree, lout, 1, true)
    -- as the README says: the tree's paths from `luarocks path`, then zcrm from PATH
    local cok, cout = run(string.format(
      "cd / && env -i PATH=/usr/bin:/bin sh -c 'eval \"$(luarocks-5.4 --tree %s path)\" && zcrm --help'", tree))
    assert.is_true(cok, cout)
    assert.matches("^usage: zcrm", cout)
    -- and the emulator: built into the rock, on the tree's bin/ beside zcrm
    local eok, eout = run(string.format(
      "cd / && env -i PATH=/usr/bin:/bin sh -c 'eval \"$(luarocks-5.4 --tree %s path)\" && zcrm emulator --help'", tree))
    assert.is_true(eok, eout)
    assert.matches("%-%-latency%-ms", eout)
    assert.is_true(run("test -x " .. tree .. "/bin/zcrm-emulator"))
    run("rm -rf " .. tree)
  end)

  it("make install puts the man page zcrm.1 and the shell completions in place", function()
    local why = need.program("groff", "make deps installs it (groff-base)")
    if why then return pending(why) end
    local tree = os.tmpname(); os.remove(tree)
    local dest = os.tmpname(); os.remove(dest)
    local ok, out = run(string.format("make -s install DESTDIR=%s PREFIX=%s", dest, tree))
    assert.is_true(ok, out)
    local root = dest .. tree
    local page = root .. "/share/man/man1/zcrm.1"
    -- groff warns about anything malformed (-ww); -z: no output but the warnings
    local gok, gout = run("groff -man -ww -z " .. page)
    assert.is_true(gok, gout)
    assert.equal("", gout)
    local mok, text = run("groff -man -Tutf8 -P-cbou -rLL=200n " .. page)
    assert.is_true(mok, text)
    assert.matches("zcrm %- change Zoho CRM custom%-module configuration", text)
    require "zcrm.cli"
    local words = require "zcrm.cli.args"
    for _, name in ipairs(words.names()) do
      assert.matches("\n   " .. name .. " \u{2014}", text, 1, true)
      for _, f in ipairs(words.flags_of(name)) do
        assert.matches("--" .. f.name, text, 1, true)
      end
    end
    local bok, bout = run("bash -n " .. root .. "/share/bash-completion/completions/zcrm")
    assert.is_true(bok, bout)
    assert.is_true(run("test -s " .. root .. "/share/zsh/site-functions/_zcrm"))
    assert.is_true(run("test -s " .. root .. "/share/fish/vendor_completions.d/zcrm.fish"))
    local uok, uout = run(string.format("make -s uninstall DESTDIR=%s PREFIX=%s", dest, tree))
    assert.is_true(uok, uout)
    assert.is_falsy(run("test -e " .. page))
    run("rm -rf " .. dest)
  end)

  it("make install honours PREFIX, LUADIR and LIBDIR", function()
    local tree = os.tmpname(); os.remove(tree)
    local ok, out = run(string.format("make -s install PREFIX=%s LUADIR=%s/lua LIBDIR=%s/lib", tree, tree, tree))
    assert.is_true(ok, out)
    local lok, lout = loads_from(tree, "lua", "lib")
    assert.is_true(lok, lout)
    assert.matches(tree .. "/lib/zcrm/core.so", lout, 1, true)
    run("rm -rf " .. tree)
  end)

  it("make install PREFIX=$(mktemp -d) gives a zcrm that runs from / with no LUA_PATH", function()
    local tree = os.tmpname(); os.remove(tree)
    local ok, out = run(string.format("make -s install PREFIX=%s", tree))
    assert.is_true(ok, out)
    local cok, cout = run(string.format("cd / && env -i PATH=/usr/bin:/bin %s/bin/zcrm --help", tree))
    assert.is_true(cok, cout)
    assert.matches("^usage: zcrm", cout)
    run("rm -rf " .. tree)
  end)
end)
