-- Doc coverage, run by `make docs`: every public function of `zcrm`, of the
-- client and of a request object, every option of `zcrm.new` and of
-- `client:apply`, and every function and method the C core registers
-- (`zcrm.core`, `zcrm.proc`, `zcrm.multi`, `zcrm.transfer`), must have a doc comment with
-- its types and its return convention. Reads LDoc's model (`ldoc --filter pl.pretty.dump .`) from the
-- file named by arg[1], and the public names from the modules themselves, so
-- a new method or option without a doc comment fails the build.
--
-- Usage: lua5.4 .ci/docscov.lua DUMP_FILE   (after `make`, from the repo root)

package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./csrc/?.so;" .. package.cpath

local zcrm = require "zcrm"
local engine = require "zcrm.engine"
local options = require "zcrm.options"
local apply = require "zcrm.plan.apply"
local sorted_keys = require("zcrm.util").sorted_keys

local f = assert(io.open(assert(arg[1], "usage: docscov.lua DUMP_FILE"), "r"))
local text = f:read("a")
f:close()
text = text:sub((assert(text:find("\n{", 1, true) or (text:sub(1, 1) == "{" and 0), "no LDoc dump")) + 1)
-- pl.pretty.dump writes a back reference as <cycle>.
local model = assert(load("return " .. text:gsub("<cycle>", "false"), "ldoc dump", "t", {}))()

-- module name -> item name -> item
local items = {}
for _, m in ipairs(model) do
  local by_name = items[m.name] or {}
  items[m.name] = by_name
  for _, item in ipairs(m.items or {}) do by_name[item.name] = item end
end

local missing, checked = {}, 0
local function fault(what, why) missing[#missing + 1] = what .. ": " .. why end

local function nonblank(s) return type(s) == "string" and s:match("%S") ~= nil end

-- A function's doc: a summary, a type for each parameter, and its returns.
local function check_function(module, names, label)
  checked = checked + 1
  local item
  for _, name in ipairs(names) do item = item or (items[module] or {})[name] end
  if not item then return fault(label, "no doc comment") end
  if not nonblank(item.summary) then fault(label, "no summary") end
  for i, p in ipairs(item.params or {}) do
    local mods = item.modifiers and item.modifiers.param and item.modifiers.param[i]
    if p ~= "..." and not (mods and mods.type) then fault(label, "parameter '" .. p .. "' has no type") end
  end
  if not (item.ret and #item.ret > 0) then fault(label, "no return convention (@treturn or @return)") end
end

local function check_table(module, name, keys, label)
  local item = (items[module] or {})[name]
  if not item then return fault(label, "no doc table '" .. name .. "' in " .. module) end
  local fields = item.params and item.params.map or {}
  for _, k in ipairs(keys) do
    checked = checked + 1
    if not nonblank(fields[k]) and fields[k] == nil then fault(label .. "." .. k, "not documented") end
  end
end

local function public_functions(t)
  local names = {}
  for k, v in pairs(t) do
    if type(v) == "function" and type(k) == "string" and not k:match("^_") then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end


for _, k in ipairs(public_functions(zcrm)) do
  check_function("zcrm", { k, "zcrm." .. k }, "zcrm." .. k)
end
for _, k in ipairs(public_functions(zcrm.Client)) do
  check_function("zcrm", { "Client:" .. k }, "client:" .. k)
end
for _, k in ipairs(public_functions(engine.Request)) do
  check_function("zcrm.engine", { "Request:" .. k }, "request:" .. k)
end
local core = require "zcrm.core"
for _, k in ipairs(public_functions(core)) do
  check_function("zcrm.core", { k }, "zcrm.core." .. k)
end
for _, k in ipairs(public_functions(require "zcrm.proc")) do
  check_function("zcrm.proc", { k }, "zcrm.proc." .. k)
end
for _, class in ipairs { "multi", "transfer" } do
  local mt = debug.getregistry()["zcrm." .. class]
  for _, k in ipairs(public_functions(mt and mt.__index or {})) do
    check_function("zcrm.core", { class .. ":" .. k }, "zcrm." .. class .. ":" .. k)
  end
end
-- The other public modules: every function they export.
for _, name in ipairs { "zcrm.luv", "zcrm.cqueues", "zcrm.plan", "zcrm.dc" } do
  for _, k in ipairs(public_functions(require(name))) do check_function(name, { k }, name .. "." .. k) end
end
local report = require "zcrm.report"
for _, k in ipairs { "compare", "html" } do
  assert(type(report[k]) == "function", "zcrm.report." .. k .. " is documented in the README")
  check_function("zcrm.report", { k }, "zcrm.report." .. k)
end
check_table("zcrm", "changes", sorted_keys(zcrm.changes), "zcrm.changes")
local changeset_apply = require "zcrm.plan.changeset_apply"
check_table("zcrm.options", "plan_options", sorted_keys(changeset_apply.PLAN_OPTIONS), "client:plan option")
check_table("zcrm.options", "diff_options", sorted_keys(changeset_apply.DIFF_OPTIONS), "client:diff option")
check_table("zcrm.options", "changes_options", sorted_keys(changeset_apply.APPLY_OPTIONS),
  "client:apply(changes) option")
check_table("zcrm.options", "apply_orgs_options", sorted_keys(require("zcrm.orgs").OPTIONS), "zcrm.apply_orgs option")
check_table("zcrm.options", "client_options", sorted_keys(options.CLIENT), "zcrm.new option")
check_table("zcrm.options", "oauth_options", sorted_keys(options.OAUTH), "zcrm.new option oauth")
check_table("zcrm.plan.apply", "options", sorted_keys(apply.OPTIONS), "client:apply option")

-- Every Lua file declares its module, and only the public ones are published
-- (config.ld's file list): an internal module in the reference is a fault.
local PUBLIC = { ["zcrm"] = true, ["zcrm.core"] = true, ["zcrm.proc"] = true, ["zcrm.engine"] = true,
  ["zcrm.options"] = true, ["zcrm.plan"] = true, ["zcrm.plan.apply"] = true, ["zcrm.dc"] = true,
  ["zcrm.luv"] = true, ["zcrm.cqueues"] = true, ["zcrm.report"] = true }
for _, m in ipairs(model) do
  if m.name:match("^zcrm") and not PUBLIC[m.name] then fault(m.name, "an internal module in the published reference") end
end
local files = io.popen("find lua -name '*.lua' | sort")
for path in files:lines() do
  checked = checked + 1
  local fh = assert(io.open(path, "r"))
  local source = fh:read("a")
  fh:close()
  if not source:find("\n%-%- @module [%w_.]+") and not source:find("^%-%- @module [%w_.]+") then
    fault(path, "no @module tag")
  end
end
files:close()

if #missing > 0 then
  io.stderr:write("docs: ", #missing, " public names lack documentation:\n  ", table.concat(missing, "\n  "), "\n")
  os.exit(1)
end
print(string.format("docs: %d public functions and options documented", checked))
