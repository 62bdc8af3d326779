--- What `zcrm` does when SIGINT or SIGTERM stops a run that may send: how
-- long the updates in flight get to finish, the exit codes, and the line
-- that says what was done and which command resumes.
-- @module zcrm.cli.interrupt

local proc = require "zcrm.proc"
local term = require "zcrm.cli.term"

local M = {}

--- The exit code for each signal: 130 for SIGINT, 143 for SIGTERM.
M.EXIT = { [2] = 130, [15] = 143 }

--- How each signal is named to the user.
M.NAME = { [2] = "Ctrl-C (SIGINT)", [15] = "SIGTERM" }

--- After an interrupt, how many seconds the updates in flight get to finish.
M.GRACE = 5

--- stop() -> true once a signal arrived: the `stop` option of client:apply.
function M.stop()
  return proc.interrupted() ~= nil
end

local function shell_quote(s)
  s = tostring(s)
  if s:match("^[%w%./_=:,@%+%-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Flags left out of the "run it again" hint, with their values: --undo (the
-- undo plan this run wrote stays the way back, and a rerun would refuse to
-- overwrite it) and --access-token (a secret never reaches the output).
local RESUME_DROPS = { undo = true, ["access-token"] = true }

--- resume_command(argv) -> the command line as typed, for "run it again"
-- hints, without RESUME_DROPS; the second result is true when a secret was
-- left out.
function M.resume_command(argv)
  local parts = { shell_quote(argv[0] or "zcrm") }
  local secret_dropped = false
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, inline = a:match("^%-%-([%w-]+)(=?)")
    if name and RESUME_DROPS[name] then
      if inline == "" then i = i + 1 end
      if name == "access-token" then secret_dropped = true end
    else
      parts[#parts + 1] = shell_quote(a)
    end
    i = i + 1
  end
  return table.concat(parts, " "), secret_dropped
end

--- exit(sig, argv, done [, resume [, undo_file]]) -> the exit code, after
-- saying on stderr what was done, how to resume (`resume`; by default
-- running the same command again) and which undo plan stays the way back.
function M.exit(sig, argv, done, resume, undo_file)
  local again, secret_dropped = M.resume_command(argv)
  term.err_line(string.format("zcrm: interrupted by %s: %s. %s: %s%s%s",
    M.NAME[sig], done, resume or "Running the same command again resumes", again,
    secret_dropped and " (with your access token, best in ZOHO_ACCESS_TOKEN)" or "",
    undo_file and string.format(" (%s stays the way back)", undo_file) or ""))
  return M.EXIT[sig]
end

return M
