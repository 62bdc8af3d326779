/*
** fuzz_response.c: response classification in the Lua layer
** (lua/zcrm/http.lua, modules.lua, auth.lua through lua-cjson), driven by
** fuzz/response_driver.lua (which documents the input format and the
** checks). The C core is linked in instrumented; the Lua layer's coverage
** reaches libFuzzer as Lua line-pair counters (fuzz_lua.h).
*/
#include "fuzz_lua.h"

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc; (void)argv;
  zf_init_driver(ZCRM_ROOT "/fuzz/response_driver.lua");
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  return zf_run_driver(data, size);
}
