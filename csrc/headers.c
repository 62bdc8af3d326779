/*
** headers.c: `zcrm.headers`, a request header list checked and built once
** (a client's Accept, Authorization and Content-Type lines, until its token
** changes) for any number of transfers.
**
** The curl_slist lives in a malloc'd, reference-counted zc_hlist: one
** reference for the userdata, one for each transfer that uses it (taken in
** multi:start, dropped in zc_request_release once libcurl no longer holds
** the handle). So no order of finalizers (the userdata's, a multi's that
** detaches running transfers) can free a list libcurl still reads.
** zc_header_ok, the rule for one line, lives here too: a list checks its
** lines when it is made, and multi:start checks a plain list with it.
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "headers.h"

/* RFC 9110 token characters (header names, methods). */
static int zc_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* One line of a request's headers (headers.h). Here, not in transfer.c,
** because both a header list and multi:start's own list check lines. */
int zc_header_ok(const char *s, size_t len) {
  size_t i = 0;
  while (i < len && zc_tchar((unsigned char)s[i])) i++;
  if (i == 0 || i == len || s[i] != ':') return 0;
  for (i++; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  return 1;
}


void zc_hlist_unref(zc_hlist *h) {
  if (h && --h->refs == 0) {
    curl_slist_free_all(h->list);
    free(h);
  }
}

zc_hlist *zc_hlist_ref(zc_hlist *h) {
  h->refs++;
  return h;
}

static zc_hlist **zc_headers_check(lua_State *L, int idx) {
  return (zc_hlist **)luaL_checkudata(L, idx, ZC_HEADERS_MT);
}

zc_hlist *zc_headers_test(lua_State *L, int idx) {
  zc_hlist **p = (zc_hlist **)luaL_testudata(L, idx, ZC_HEADERS_MT);
  return p ? *p : NULL;
}

static int zc_headers_gc(lua_State *L) {
  zc_hlist **p = zc_headers_check(L, 1);
  zc_hlist_unref(*p);
  *p = NULL;
  return 0;
}

static int zc_headers_tostring(lua_State *L) {
  lua_pushfstring(L, "zcrm.headers (%p)", (void *)zc_headers_check(L, 1));
  return 1;
}

/* Appends `s` to the list of h. Returns 0, or -1 (out of memory). */
static int zc_hlist_append(zc_hlist *h, const char *s) {
  struct curl_slist *nl = curl_slist_append(h->list, s);
  if (nl == NULL) return -1;
  h->list = nl;
  return 0;
}

/***
 * A header list checked and built once, for `multi:start{ headers = }` in
 * place of a list of strings (any number of transfers share it).
 * @function new_headers
 * @tparam {string,...} list "Name: value" lines, checked as multi:start
 *   checks them
 * @treturn zcrm.headers|nil the list, or nil and an error object
 *   (INVALID_HEADER)
 */
static int zc_l_new_headers(lua_State *L) {
  zc_hlist **p;
  lua_Integer i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, n > 64 ? 64 : (int)n, 0);        /* 2: a private copy */
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      return luaL_argerror(L, 1, "must be a list of strings");
    s = lua_tolstring(L, -1, &len);
    if (!zc_header_ok(s, len)) {
      lua_pushfstring(L, "header %d is not \"Name: value\" without CR, LF "
                      "or NUL", (int)i);
      zc_error_new(L, "INVALID_HEADER", NULL, 0, NULL);
      return zc_fail(L);
    }
    lua_rawseti(L, 2, i);
  }
  /* The userdata first (3), empty, then the malloc'd list it owns. */
  p = (zc_hlist **)lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  luaL_setmetatable(L, ZC_HEADERS_MT);
  *p = (zc_hlist *)calloc(1, sizeof **p);
  if (*p == NULL) return luaL_error(L, "not enough memory");
  (*p)->refs = 1;
  for (i = 1; i <= n; i++) {                          /* no GC point here */
    lua_rawgeti(L, 2, i);
    if (zc_hlist_append(*p, lua_tostring(L, -1)))
      return luaL_error(L, "not enough memory");
    lua_pop(L, 1);
  }
  /* Expect: 100-continue would cost a round trip on every PUT. */
  if (zc_hlist_append(*p, "Expect:")) return luaL_error(L, "not enough memory");
  return 1;
}

void zc_open_headers(lua_State *L) {
  static const luaL_Reg meta[] = {
    { "__gc", zc_headers_gc },
    { "__tostring", zc_headers_tostring },
    { NULL, NULL }
  };
  luaL_newmetatable(L, ZC_HEADERS_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, zc_l_new_headers);
  lua_setfield(L, -2, "new_headers");
}
