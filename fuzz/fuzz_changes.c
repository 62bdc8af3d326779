/*
** fuzz_changes.c: change-set files (the JSON `zcrm plan --out` writes) as
** `zcrm apply --dry-run` reads, checks and shows them before any request,
** driven by fuzz/changes_driver.lua (which documents the checks). The C
** core is linked in instrumented; the Lua layer's coverage reaches
** libFuzzer as Lua line-pair counters (fuzz_lua.h).
*/
#include "fuzz_lua.h"

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc; (void)argv;
  zf_init_driver(ZCRM_ROOT "/fuzz/changes_driver.lua");
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  return zf_run_driver(data, size);
}
