-- The emulator fixture: one emulator for a describe block, and every test
-- in it starting from a reset emulator with no request in flight, so a
-- test passes alone, in any order, and whatever the test before it left.
--
--   local with_emulator = require("spec.support.fixture").with_emulator
--   describe("update_modules", function()
--     local fx = with_emulator { args = { "--extra-modules", "150" }, client = { retry_base = 0.01 } }
--     it("...", function()
--       local res = fx.client:update_modules { ... }
--       assert.equal(1, state.requests(fx.emu, state.BATCH_ROUTE))
--     end)
--   end)
--
-- Call it in a describe block, outside any test. It registers:
--   setup        starts the emulator (`args`: its command-line arguments)
--   before_each  waits until no request is in flight, resets the org, its
--                counters, tokens and scripted faults, then makes
--                `fx.client` (unless `client = false`)
--   after_each   closes every client the fixture made (pending requests
--                end as CLOSED), so none sends anything into the next test
--   teardown     stops the emulator; raises if it exited with an error
--
-- opts.org names a state file (spec/fixtures/*.json) the org starts from.
-- The emulator's reset re-seeds its built-in org, so with `org` every test
-- gets an emulator of its own, started from a fresh copy of the file.
--
-- fx.emu       the emulator (spec/support/emulator.lua)
-- fx.client    a client of it: the emulator's token, no environment, then
--              `opts.client` over those
-- fx:new_client(opts)  another client, `opts` over `opts.client`; closed
--              after the test like fx.client
local busted = require "busted"
local emulator = require "spec.support.emulator"
local files = require "spec.support.files"

local M = {}

local Fixture = {}
Fixture.__index = Fixture

function Fixture:new_client(opts)
  local zcrm = require "zcrm"
  local o = { api_domain = self.emu.url, access_token = "emulator-token", env = false }
  for k, v in pairs(self.client_defaults or {}) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  local c = assert(zcrm.new(o))
  self.clients[#self.clients + 1] = c
  return c
end

-- Starts an emulator from a fresh copy of `org` (a state file) and `args`.
local function start_from(org, args)
  local dir = files.tmpdir()
  local path = dir .. "/org.json"
  files.write(path, assert(files.read(org), "no state file " .. org))
  local a = { "--state", path }
  for _, v in ipairs(args) do a[#a + 1] = v end
  local ok, emu = pcall(emulator.start, a)
  if not ok then files.remove_tree(dir) error(emu, 0) end
  emu.state_dir = dir
  return emu
end

local function stop(emu)
  local ok, err = pcall(emu.stop, emu)
  files.remove_tree(emu.state_dir)
  if not ok then error(err, 0) end
end

--- Registers the hooks above in the enclosing describe block and returns
-- the fixture. opts: `args` (list), `org` (path), `client` (table of
-- zcrm.new options, or false for none).
function M.with_emulator(opts)
  opts = opts or {}
  local args = opts.args or {}
  local fx = setmetatable({ clients = {}, client_defaults = opts.client or {} }, Fixture)

  busted.setup(function()
    if not opts.org then fx.emu = emulator.start(args) end
  end)

  busted.before_each(function()
    if opts.org then
      fx.emu = start_from(opts.org, args)
    else
      fx.emu:reset()                           -- waits for requests in flight first
    end
    if opts.client ~= false then fx.client = fx:new_client() end
  end)

  busted.after_each(function()
    for i = #fx.clients, 1, -1 do
      fx.clients[i]:close()
      fx.clients[i] = nil
    end
    fx.client = nil
    if opts.org and fx.emu then
      local emu = fx.emu
      fx.emu = nil
      stop(emu)
    end
  end)

  busted.teardown(function()
    if fx.emu then
      local emu = fx.emu
      fx.emu = nil
      stop(emu)
    end
  end)

  return fx
end

return M
