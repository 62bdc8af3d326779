-- zcrm.proc, the C core's second module: what only bin/zcrm needs from its
-- process (signals, exec, the terminal), apart from zcrm.core.
local quote = require("spec.support.emulator").quote

describe("zcrm.proc", function()
  local proc = require "zcrm.proc"

  it("holds the command's helpers, which zcrm.core does not", function()
    local core = require "zcrm.core"
    for _, name in ipairs { "catch_interrupts", "interrupted", "exec", "isatty", "term_width", "read_secret" } do
      assert.is_function(proc[name], name)
      assert.is_nil(core[name], name)
    end
    assert.is_nil(proc.prepare_update)
    assert.equal(core._VERSION, proc._VERSION)
  end)

  it("isatty takes a descriptor or a file; a closed file is misuse", function()
    assert.is_boolean(proc.isatty(0))
    assert.is_boolean(proc.isatty(io.stderr))
    local f = io.tmpfile()
    assert.is_false(proc.isatty(f))
    f:close()
    assert.has_error(function() proc.isatty(f) end)
    assert.has_error(function() proc.isatty("stdout") end)
  end)

  it("exec returns nil, message, errno when the program cannot run", function()
    local ok, message, errno = proc.exec("/nonexistent/zcrm-emulator", { "x" })
    assert.is_nil(ok)
    assert.matches("cannot run /nonexistent/zcrm%-emulator: No such file", message)
    assert.equal(2, errno)
    assert.has_error(function() proc.exec("true", { 1, {} }) end)
  end)

  it("catch_interrupts: the first signal only sets the flag; the second of the same kind ends the process", function()
    local script = [[
      package.cpath = "./csrc/?.so;" .. package.cpath
      local proc = require "zcrm.proc"
      io.write(tostring(proc.interrupted()), " ")
      proc.catch_interrupts()
      os.execute("kill -TERM $PPID")
      io.write(tostring(proc.interrupted()), " ")
      io.flush()
      os.execute("kill -TERM $PPID")
      io.write("survived")
    ]]
    -- (the inner sh would say "Terminated" on its stderr)
    local p = io.popen("sh -c " .. quote("lua5.4 -e " .. quote(script) .. "; echo \" exit $?\"") .. " 2>/dev/null")
    local text = p:read("a")
    p:close()
    assert.equal("nil 15  exit 143\n", text)
  end)
end)
