-- Whole-file reads and writes for specs and their support code.
local M = {}

--- The file's bytes, or nil when it cannot be opened.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Writes `s` to `path`, replacing it.
function M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- A new directory of its own, mode 0700 (mktemp -d); raises when none is made.
function M.tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("l")
  p:close()
  return assert(dir, "mktemp -d made no directory")
end

--- Removes `dir` and everything below it (rm -rf); nothing when `dir` is nil
-- (a set-up that failed before making it).
function M.remove_tree(dir)
  if dir then os.execute("rm -rf '" .. dir:gsub("'", "'\\''") .. "'") end
end

return M
