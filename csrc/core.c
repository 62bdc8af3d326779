/*
** core.c: the entry points of the .so, its only exported symbols:
** `require "zcrm.core"` (transport and validation, for the library) and
** `require "zcrm.proc"` (the command's process helpers, for bin/zcrm), two
** modules in one library as lua-cjson ships cjson and cjson.safe. The build
** installs the library as zcrm/core.so and links zcrm/proc.so to it, so
** Lua's C searcher finds each name's luaopen_ function.
**
** The root of the units' call graph (csrc/API.md, "Units and who calls
** whom"): it calls each unit's opener, and no unit calls it.
**
** luaopen_zcrm_core may run more than once in one state (busted insulates
** each spec file by clearing package.loaded): metatables are looked up
** by name and reused, so objects made by an earlier load keep working and
** pass is_error.
*/
#include <pthread.h>

#include <curl/curl.h>

#include "zcrm.h"
#include "answer.h"
#include "body.h"
#include "error.h"
#include "headers.h"
#include "multi.h"
#include "proc.h"
#include "sys.h"
#include "transfer.h"
#include "validate.h"

/* curl_global_init is not thread-safe before libcurl 7.84 and must run
** once per process: pthread_once, with the result stored and raised only
** after leaving the once-routine (luaossl `initall`). These two are the
** only C globals, and they are written once. */
static pthread_once_t zc_once = PTHREAD_ONCE_INIT;
static CURLcode zc_global_rc = CURLE_OK;

static void zc_global_init(void) {
  zc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ZCRM_API int luaopen_zcrm_core(lua_State *L);
ZCRM_API int luaopen_zcrm_proc(lua_State *L);

ZCRM_API int luaopen_zcrm_core(lua_State *L) {
  if (pthread_once(&zc_once, zc_global_init) != 0)
    return luaL_error(L, "zcrm.core: pthread_once failed");
  if (zc_global_rc != CURLE_OK)
    return luaL_error(L, "zcrm.core: curl_global_init failed: %s",
                      curl_easy_strerror(zc_global_rc));
  lua_newtable(L);
  zc_open_error(L);
  zc_open_validate(L);
  zc_open_body(L);
  zc_open_headers(L);
  zc_open_answer(L);
  zc_open_transfer(L);
  zc_open_multi(L);
  zc_open_sys(L);
  lua_pushliteral(L, ZCRM_CORE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  {
    /* Not curl_version(): it asks libldap for its version, whose first use
    ** initialises SASL and leaks (valgrind: "definitely lost" in
    ** sasl_client_init). curl_version_info has the facts we show. */
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    lua_pushfstring(L, "libcurl/%s %s%s%s", vi->version,
                    vi->ssl_version ? vi->ssl_version : "",
                    vi->nghttp2_version ? " nghttp2/" : "",
                    vi->nghttp2_version ? vi->nghttp2_version : "");
  }
  lua_setfield(L, -2, "curl_version");
  return 1;
}

/* No libcurl here: the command's helpers need no global set-up. */
ZCRM_API int luaopen_zcrm_proc(lua_State *L) {
  lua_newtable(L);
  zc_open_proc(L);
  lua_pushliteral(L, ZCRM_CORE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
