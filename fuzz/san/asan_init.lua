-- LUA_INIT_5_4 for `make asan` (every Lua process of the suite runs it first):
-- when the ASan runtime is in this process (lua5.4 started through
-- fuzz/san/lua5.4), `require "zcrm.core"` (and "zcrm.proc", the same library)
-- gets the sanitized build named by ZCRM_ASAN_CORE, whatever package.cpath
-- says. A Lua started by absolute path (a luarocks wrapper, say) has no
-- runtime and keeps the normal build.
local core = os.getenv("ZCRM_ASAN_CORE")
local maps = io.open("/proc/self/maps")
if core and maps then
  local text = maps:read("a")
  maps:close()
  if text:find("libclang_rt.asan", 1, true) then
    package.preload["zcrm.core"] = assert(package.loadlib(core, "luaopen_zcrm_core"))
    package.preload["zcrm.proc"] = assert(package.loadlib(core, "luaopen_zcrm_proc"))
  end
end
