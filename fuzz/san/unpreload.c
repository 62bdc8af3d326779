/*
** unpreload.c: preloaded after the ASan runtime into the Lua interpreter by
** `make asan` (fuzz/san/lua5.4); takes LD_PRELOAD out of the environment
** once the loader has used it, so the programs the specs start (sh, curl,
** openssl, gcc...) run without the ASan runtime and only our code is judged.
** A child that is lua5.4 goes through fuzz/san/lua5.4 again and gets it back.
*/
#include <stdlib.h>

__attribute__((constructor)) static void zcrm_unpreload (void) {
  unsetenv("LD_PRELOAD");
}
