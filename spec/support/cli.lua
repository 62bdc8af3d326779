-- Running bin/zcrm as a user does, from specs: in a clean environment, with
-- its exit code, standard output and standard error.
--
--   local cli = require "spec.support.cli"
--   local code, out, err = cli.run({ "report", "--json" }, { ZOHO_API_DOMAIN = emu.url, ... })
--   local code, screen = cli.run_tty({ "login" }, env, "typed input\n")   -- on a pseudo-terminal
local files = require "spec.support.files"

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- Reads a captured output file and removes it.
local function slurp(path)
  local s = files.read(path) or ""
  os.remove(path)
  return s
end

--- The shell command that runs bin/zcrm with `args` in a clean environment plus `env`.
function M.command(args, env)
  local parts = { "env -i", "PATH=" .. quote(os.getenv("PATH") or "/usr/bin:/bin") }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. quote(v) end
  if os.getenv("ZCRM_COVERAGE_DIR") then -- make coverage counts the command too
    for _, k in ipairs { "LUA_INIT_5_4", "ZCRM_COVERAGE_DIR", "ZCRM_COVERAGE_CORE" } do
      parts[#parts + 1] = k .. "=" .. quote(os.getenv(k) or "")
    end
  end
  parts[#parts + 1] = "bin/zcrm"
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  return table.concat(parts, " ")
end

--- Runs bin/zcrm; returns exit code, stdout, stderr.
function M.run(args, env)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(M.command(args, env) .. " </dev/null >" .. out .. " 2>" .. err)
  return code, slurp(out), slurp(err)
end

--- Runs bin/zcrm on a pseudo-terminal (util-linux `script`) with `input`
-- typed on it; returns exit code and everything the terminal showed.
function M.run_tty(args, env, input)
  local inf, outf = os.tmpname(), os.tmpname()
  files.write(inf, input or "")
  local _, _, code = os.execute(string.format("script -qec %s /dev/null <%s >%s 2>&1",
    quote(M.command(args, env)), inf, outf))
  os.remove(inf)
  return code, slurp(outf)
end

return M
