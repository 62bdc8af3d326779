/*
** fuzz_response.c: response classification in the Lua layer
** (lua/zcrm/http.lua, modules.lua, auth.lua through lua-cjson), driven by
** fuzz/response_driver.lua (which documents the input format and the
** checks). The C core is linked in instrumented; the Lua layer's coverage
** reaches libFuzzer as Lua line-pair counters (fuzz_lua.h).
*/
#include "fuzz_lua.h"

static int driver_ref = LUA_NOREF;

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  lua_State *L = zf_init(0);
  (void)argc; (void)argv;
  driver_ref = zf_ref_chunk(L, NULL, ZCRM_ROOT "/fuzz/response_driver.lua");
  /* coverage only from here on: loading the modules is the same each time */
  lua_sethook(L, zf_line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  lua_State *L = zf_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_pushlstring(L, (const char *)data, size);
  zf_prev_loc = 0;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) zf_die(L, "contract broken");
  zf_finish_input(L);
  return 0;
}
