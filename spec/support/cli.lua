-- Running bin/zcrm as a user does, from specs: in a clean environment, with
-- its exit code, standard output and standard error.
--
--   local cli = require "spec.support.cli"
--   local code, out, err = cli.run({ "report", "--json" }, { ZOHO_API_DOMAIN = emu.url, ... })
--   local code, screen = cli.run_dialog({ "login" }, env, { { "Prompt: ", "answer" }, ... })  -- on a terminal
--   local run = cli.start({ "apply", ... }, env); ...; local code, out, err = cli.finish(run, guard)  -- in the background
local files = require "spec.support.files"

local M = {}

local quote = require("spec.support.emulator").quote
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

--- Runs a shell command; returns true when it exited 0 (else nil), and
-- its stdout and stderr together.
function M.shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

--- Runs bin/zcrm; returns exit code, stdout, stderr.
function M.run(args, env)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(M.command(args, env) .. " </dev/null >" .. out .. " 2>" .. err)
  return code, slurp(out), slurp(err)
end

local function sleep(s) os.execute("sleep " .. s) end

--- Starts bin/zcrm in the background (stdin /dev/null); returns a run
-- `{ pid =, out =, err =, pidfile =, rcfile = }`, for `finish`.
function M.start(args, env)
  local run = { out = os.tmpname(), err = os.tmpname(), pidfile = os.tmpname(), rcfile = os.tmpname() }
  files.write(run.rcfile, "")
  os.execute(string.format("( %s </dev/null >%s 2>%s & echo $! >%s; wait $!; echo $? >%s ) >/dev/null 2>&1 &",
    M.command(args, env), run.out, run.err, run.pidfile, run.rcfile))
  repeat run.pid = tonumber(files.read(run.pidfile) or "") until run.pid
  return run
end

--- Waits for a run of `start` to end; returns its exit code, stdout and
-- stderr, or raises once `guard` seconds (default 60) pass: it hangs. A run
-- that hung is killed first (SIGKILL), so no process outlives the spec.
function M.finish(run, guard)
  local deadline = os.time() + (guard or 60)
  while not (files.read(run.rcfile) or ""):match("%d") do
    if os.time() > deadline then
      os.execute("kill -KILL " .. run.pid .. " 2>/dev/null")
      local err = slurp(run.err)
      os.remove(run.out)
      os.remove(run.pidfile)
      error(string.format("bin/zcrm did not end within %d s; its stderr: %s", guard or 60, err), 2)
    end
    sleep(0.02)
  end
  local code = tonumber(slurp(run.rcfile):match("%d+"))
  os.remove(run.pidfile)
  return code, slurp(run.out), slurp(run.err)
end

-- Waits until the file at `path` holds `text` (after byte `from`); raises
-- after 20 s: the command is stuck, not slow.
local function wait_for(path, text, from)
  for _ = 1, 400 do
    local s = files.read(path) or ""
    local at = s:find(text, from or 1, true)
    if at then return at + #text end
    sleep(0.05)
  end
  error(string.format("%q never appeared; the terminal showed: %s", text, files.read(path) or ""), 3)
end

--- Runs bin/zcrm on a pseudo-terminal and answers its prompts: each step
-- `{ prompt, answer }` types `answer` and Enter once `prompt` has appeared
-- (after the previous one), as a person would. Returns exit code and
-- everything the terminal showed. `after`, a shell command, runs on the same
-- terminal once bin/zcrm has ended (the exit code is then its). `redirect`, a
-- shell redirection such as "2>FILE", applies to bin/zcrm alone.
function M.run_dialog(args, env, steps, after, redirect)
  local dir = files.tmpdir()
  local fifo, screen, rcfile = dir .. "/in", dir .. "/screen", dir .. "/rc"
  assert(os.execute("mkfifo " .. quote(fifo)))
  -- `script` keeps reading its input after the command ends; `sleep` holds
  -- the FIFO open until the last answer is typed.
  assert(os.execute(string.format("( script -qec %s /dev/null <%s >%s 2>&1; echo $? >%s ) &",
    quote(M.command(args, env) .. (redirect and (" " .. redirect) or "") .. (after and ("; " .. after) or "")),
    quote(fifo), quote(screen), quote(rcfile))))
  local typing = assert(io.open(fifo, "w"))
  local from = 1
  for _, step in ipairs(steps) do
    from = wait_for(screen, step[1], from)
    typing:write(step[2], "\n")
    typing:flush()
  end
  wait_for(rcfile, "\n")
  typing:close()
  local code = tonumber(files.read(rcfile))
  local shown = files.read(screen) or ""
  files.remove_tree(dir)
  return code, shown
end

return M
