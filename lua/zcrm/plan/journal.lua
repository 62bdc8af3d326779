--- The journal of a plan run: an audit record in JSON lines, one per
-- completed item, each on disk (fsync) before the run moves on. Items are
-- keyed by index, module and a hash of the entry's content. It never makes a
-- run skip anything (the org's state decides that); the state line of the
-- first run is read back for the undo plan of a resumed one.
-- @module zcrm.plan.journal

local cjson = require "cjson.safe"
local core = require "zcrm.core"
local util = require "zcrm.util"
local check = require "zcrm.plan.check"

local io_error = check.io_error

local M = {}

local JOURNAL_FORMAT = 1

-- {==== canonical form and content hash (journal keys)

-- One stable string per value: the same entry hashes the same in every run.
local function canonical(v, out)
  if type(v) == "table" then
    out[#out + 1] = "{"
    for _, k in ipairs(util.sorted_keys(v)) do
      canonical(k, out)
      out[#out + 1] = "="
      canonical(v[k], out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  elseif type(v) == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif math.type(v) == "integer" then
    out[#out + 1] = string.format("%d", v)
  elseif type(v) == "number" then
    out[#out + 1] = string.format("%.17g", v)
  elseif v == cjson.null then
    out[#out + 1] = "null"
  else
    out[#out + 1] = tostring(v)
  end
  return out
end

--- hash(entry) -> 16 hex digits identifying the entry's content.
function M.hash(entry)
  return util.fnv1a64(table.concat(canonical(entry, {})))
end

-- }====

-- The journal key: the entry's index, module and a hash of its content. Only
-- runs with a journal need it, and hashing in Lua is most of the CPU that apply
-- spends per entry (bench/README.md, figure 2), so it is computed only then.
function M.set_key(item)
  item.hash = M.hash(item.entry)
  item.key = string.format("%d:%s:%s", item.index, item.segment or "create", item.hash)
end


-- {==== the journal: JSON lines, one per completed item, on disk before we move on

local sync = core.fsync

local Journal = {}
Journal.__index = Journal

local ENOENT = 2 -- errno on Linux, the BSDs and macOS

-- Reads the journal (never through a symbolic link); a missing file is an
-- empty journal, any other failure an error.
local function read_journal(path)
  local f, ferr = core.open_file(path, "r")
  if not f then
    if ferr.details and ferr.details.errno == ENOENT then return { lines = 0, text = "" } end
    return nil, io_error("JOURNAL_ERROR", "cannot read journal: " .. ferr.message)
  end
  local text = f:read("a")
  f:close()
  local j = { lines = 0, text = text }
  for line in text:gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    -- A line torn by a kill is not JSON: it recorded nothing, so it is skipped.
    if type(rec) == "table" then
      j.lines = j.lines + 1
      -- Only the state before the first run is read back (for the undo plan):
      -- the item lines are an audit record, and never make a run skip anything.
      if rec.kind == "state" and type(rec.modules) == "table" and not j.state then
        j.state = rec.modules
      end
    end
  end
  return j
end

-- One run per journal: a second one refuses at once. The lock is on the
-- journal's name, not its file: an flock on the file itself moves with it,
-- and after `mv journal` a second run on the path proceeded. So it is taken
-- on "<journal>.lock" (O_NOFOLLOW, mode 0600), then checked to be the file
-- that name holds now (a run that closed may have removed it between this
-- one's open and its lock; that lock would count for nothing), and removed
-- by the run holding it as it closes. The kernel drops the lock when its
-- process ends, however it ends: a journal left by a killed run is free
-- again (its lock file is taken over).
local function busy_error(path)
  return io_error("JOURNAL_BUSY", string.format(
    "journal %s is in use by another run (it holds the lock); wait for it to finish", path))
end

local function lock_name(path)
  local lpath = path .. ".lock"
  for _ = 1, 100 do
    local fh, err = core.open_file(lpath, "a")
    if not fh then return nil, io_error("JOURNAL_ERROR", "cannot open the journal's lock: " .. err.message) end
    local locked, lerr, busy = core.lock_file(fh)
    if not locked then
      fh:close()
      if busy then return nil, busy_error(path) end
      return nil, io_error("JOURNAL_ERROR", string.format("cannot lock journal %s: %s", path, tostring(lerr)))
    end
    if core.same_file(fh, lpath) then return fh, lpath end
    fh:close()
  end
  return nil, io_error("JOURNAL_ERROR", string.format("cannot lock journal %s: its lock file keeps changing", path))
end

--- Opens (or creates) the journal at `path`. read_only: read what it holds, write nothing.
function M.open(path, read_only)
  if read_only then
    local j, rerr = read_journal(path)
    if not j then return nil, rerr end
    return setmetatable(j, Journal)
  end
  -- Locked before the journal is opened and read, so what is read is what
  -- the last run wrote.
  local lock, lpath = lock_name(path)
  if not lock then return nil, lpath end
  local function fail(e)
    os.remove(lpath)
    lock:close()
    return nil, e
  end
  -- O_NOFOLLOW, mode 0600 when new: the journal records the org's state.
  -- Checked after opening to be the file the path names (not one moved
  -- away in between).
  local fh, err = core.open_file(path, "a")
  if not fh then return fail(io_error("JOURNAL_ERROR", "cannot open journal: " .. err.message)) end
  if not core.same_file(fh, path) then
    fh:close()
    return fail(io_error("JOURNAL_ERROR", string.format("journal %s was moved or replaced as it was opened", path)))
  end
  local j, rerr = read_journal(path)
  if not j then fh:close(); return fail(rerr) end
  j.fh, j.path, j.lock, j.lock_path = fh, path, lock, lpath
  if #j.text > 0 and j.text:sub(-1) ~= "\n" then
    fh:write("\n") -- end the torn line, so the next record starts on its own
  end
  j.text = nil
  return setmetatable(j, Journal)
end

function Journal:write(rec)
  if not self.fh then return true end
  rec.v = JOURNAL_FORMAT
  local line = assert(cjson.encode(rec))
  -- Written, flushed, then fsync'd: a full disk or an I/O error at any step
  -- ends the run (nothing more is sent), naming the file and the cause.
  local ok, err, errno = self.fh:write(line, "\n")
  if ok then ok, err, errno = self.fh:flush() end
  if ok then
    ok, err = sync(self.fh, "journal " .. self.path)
    if not ok then
      return nil, io_error("JOURNAL_ERROR", err.message, { path = self.path, errno = err.details and err.details.errno })
    end
    return true
  end
  return nil, io_error("JOURNAL_ERROR", string.format("cannot write journal %s: %s", self.path, tostring(err)),
    { path = self.path, errno = errno })
end

function Journal:close()
  if self.fh then self.fh:close(); self.fh = nil end
  if self.lock then
    -- Removed while still held: a run waiting on this file finds, once it
    -- holds it, that the name no longer does, and takes the new one.
    os.remove(self.lock_path)
    self.lock:close()
    self.lock = nil
  end
end

--- state_record(items) -> the journal line that keeps the state read before
-- the first run, for the undo plan of a resumed one.
function M.state_record(items)
  local modules = {}
  for _, item in ipairs(items) do
    if item.current then modules[item.current.id] = item.current end
  end
  return { kind = "state", time = os.time(), modules = modules }
end

-- }====

return M
