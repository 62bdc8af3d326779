-- What a spec needs that the build or the machine may lack: a file that a
-- make target builds, a program on PATH. A spec without it is pending with
-- a message saying how to get it, so a plain `busted` on a tree built by
-- `make` passes; under CI=true (`make test` installs and builds everything)
-- a missing need is a failure instead.
--
--   local need = require "spec.support.need"
--   it("...", function()
--     local why = need.file("fuzz/bin/tsan/host", "make tsan builds it")
--     if why then return pending(why) end
--     ...
--
-- (busted's `pending` stops a test only when the spec itself calls it, so
-- these return the message rather than calling it.)
local M = {}

local function missing(what, hint)
  local why = what .. (hint and ("; " .. hint) or "")
  if os.getenv("CI") == "true" then error(why .. " (CI=true requires it)", 3) end
  return "skipped: " .. why
end

--- nil when `path` can be opened; else why the test is skipped.
function M.file(path, hint)
  local f = io.open(path, "rb")
  if f then f:close() return nil end
  return missing(path .. " is missing", hint)
end

--- nil when `program` is on PATH; else why the test is skipped.
function M.program(program, hint)
  if os.execute("command -v " .. program .. " >/dev/null 2>&1") then return nil end
  return missing(program .. " is not installed", hint)
end

return M
