/*
** error.c: the `zcrm.error` type and the catalogue of errors.h.
**
** An error object is a plain table holding its fields (kind, code, status,
** message, details, field, retryable, resolution) with the metatable
** registered as "zcrm.error" (__name, __tostring). Shape after Lua-cURL
** lcerror.c and lua-http h2_error.lua; the fields are those of the README's
** "The error convention".
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <string.h>

#include "error.h"
#include "errors.h"

/* {==== catalogue */

#define ZC_CAT_ENTRY(code, status, kind, retryable, message, resolution) \
  { code, status, kind, retryable, message, resolution },

static const zc_catentry zc_catalogue[] = {
  ZC_ERRORS(ZC_CAT_ENTRY)
  { NULL, 0, NULL, 0, NULL, NULL }
};

#undef ZC_CAT_ENTRY

/* The entry of the code (s, len), compared with its length: a code with
** an embedded NUL is no catalogue code. */
static const zc_catentry *zc_catalogue_findl(const char *s, size_t len) {
  const zc_catentry *e;
  for (e = zc_catalogue; e->code != NULL; e++)
    if (strlen(e->code) == len && memcmp(e->code, s, len) == 0) return e;
  return NULL;
}

const zc_catentry *zc_catalogue_find(const char *code) {
  return code == NULL ? NULL : zc_catalogue_findl(code, strlen(code));
}

static int zc_default_retryable(lua_Integer status) {
  return status == 429 || status >= 500;
}

/* }==== */

/* {==== building error objects from C */

static void zc_setstr(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

void zc_error_new(lua_State *L, const char *code, const char *kind,
                  int status, const char *field) {
  const zc_catentry *e = zc_catalogue_find(code);
  int retryable;
  lua_createtable(L, 0, 8);                   /* message err */
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  if (kind == NULL) kind = e ? e->kind : "api";
  zc_setstr(L, "kind", kind);
  if (status > 0) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
  }
  if (strcmp(kind, "validation") == 0) retryable = 0;
  else retryable = e ? e->retryable : zc_default_retryable(status);
  lua_pushboolean(L, retryable);
  lua_setfield(L, -2, "retryable");
  if (lua_type(L, -2) == LUA_TSTRING) lua_pushvalue(L, -2);
  else lua_pushstring(L, e ? e->message : code);
  lua_setfield(L, -2, "message");
  zc_setstr(L, "field", field);
  if (e) zc_setstr(L, "resolution", e->resolution);
  luaL_setmetatable(L, ZC_ERROR_MT);
  lua_remove(L, -2);                          /* err */
}

void zc_error_details(lua_State *L, const char *api_name,
                      const char *json_path, lua_Integer maxlen) {
  lua_createtable(L, 0, 3);
  zc_setstr(L, "api_name", api_name);
  zc_setstr(L, "json_path", json_path);
  if (maxlen >= 0) {
    lua_pushinteger(L, maxlen);
    lua_setfield(L, -2, "maximum_length");
  }
  lua_setfield(L, -2, "details");
}

int zc_fail(lua_State *L) {
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* }==== */

/* {==== Lua functions */

/***
 * Builds an error object from a table of fields, filling `kind`,
 * `retryable`, `resolution`, `status` and `message` from the catalogue
 * where absent.
 * @function error
 * @tparam table fields at least `code` (a string)
 * @treturn table the error object
 */
static int zc_l_error(lua_State *L) {
  const zc_catentry *e;
  const char *code;
  size_t clen;
  lua_Integer status = 0;
  int validation, own_kind;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "code");                 /* 2 */
  /* Check the type first: lua_tostring would turn a number into a string. */
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_argerror(L, 1, "field 'code' must be a string");
  code = lua_tolstring(L, 2, &clen);
  e = zc_catalogue_findl(code, clen);
  lua_createtable(L, 0, 8);                   /* 3: err */
  lua_pushnil(L);
  while (lua_next(L, 1)) {                    /* copy every field */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 3);
  }
  lua_pushvalue(L, 2);                        /* the code that was checked */
  lua_setfield(L, 3, "code");
  if (lua_getfield(L, 3, "kind") == LUA_TNIL) {
    lua_pushstring(L, e ? e->kind : "api");
    lua_setfield(L, 3, "kind");
  }
  lua_pop(L, 1);
  lua_getfield(L, 3, "kind");                 /* 4 */
  validation = lua_type(L, 4) == LUA_TSTRING &&
               lua_rawlen(L, 4) == 10 && strcmp(lua_tostring(L, 4),
                                                "validation") == 0;
  /* The catalogue's status belongs to the server's answer with that code:
  ** only an error of the catalogue's own kind gets it by default. */
  own_kind = e && lua_type(L, 4) == LUA_TSTRING &&
             lua_rawlen(L, 4) == strlen(e->kind) &&
             strcmp(lua_tostring(L, 4), e->kind) == 0;
  lua_pop(L, 1);
  if (validation) {
    /* Found locally: nothing was sent, so no HTTP status, and sending
    ** the same input again cannot help. */
    lua_pushnil(L);
    lua_setfield(L, 3, "status");
    lua_pushboolean(L, 0);
    lua_setfield(L, 3, "retryable");
  }
  if (lua_getfield(L, 3, "status") == LUA_TNIL && !validation && own_kind &&
      e->status > 0) {
    lua_pushinteger(L, e->status);
    lua_setfield(L, 3, "status");
    status = e->status;
  }
  else
    status = lua_tointegerx(L, -1, NULL);     /* 0 unless an integer */
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "retryable") == LUA_TNIL) {
    lua_pushboolean(L, e ? e->retryable : zc_default_retryable(status));
    lua_setfield(L, 3, "retryable");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "message") == LUA_TNIL) {
    if (e) lua_pushstring(L, e->message);
    else lua_pushvalue(L, 2);
    lua_setfield(L, 3, "message");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "resolution") == LUA_TNIL && e && e->resolution) {
    lua_pushstring(L, e->resolution);
    lua_setfield(L, 3, "resolution");
  }
  lua_pop(L, 1);
  luaL_setmetatable(L, ZC_ERROR_MT);
  return 1;
}

/***
 * True when `v` is an error object (from any copy of this module loaded in
 * the same state).
 * @function is_error
 * @tparam any v
 * @treturn boolean
 */
static int zc_l_is_error(lua_State *L) {
  int r = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, ZC_ERROR_MT);
    r = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, r);
  return 1;
}

/* Adds `s` with control bytes written as \xHH, so the line stays one line
** whatever a server or a user's key put in the message or field. */
static void zc_add_printable(luaL_Buffer *b, const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\x%02X", (unsigned)c);
      luaL_addstring(b, esc);
    }
    else luaL_addchar(b, (char)c);
  }
}

/* `CODE (HTTP 400): message`, `CODE: message`, `CODE: field: message`. */
static int zc_error_tostring(lua_State *L) {
  luaL_Buffer b;
  const char *field, *msg;
  size_t flen = 0, mlen = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "code");                 /* 2 */
  lua_getfield(L, 1, "status");               /* 3 */
  lua_getfield(L, 1, "field");                /* 4 */
  lua_getfield(L, 1, "message");              /* 5 */
  field = lua_type(L, 4) == LUA_TSTRING ? lua_tolstring(L, 4, &flen) : NULL;
  msg = lua_type(L, 5) == LUA_TSTRING ? lua_tolstring(L, 5, &mlen) : NULL;
  luaL_buffinit(L, &b);
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t clen;
    const char *code = lua_tolstring(L, 2, &clen);
    zc_add_printable(&b, code, clen);
  }
  else luaL_addstring(&b, "ERROR");
  if (lua_type(L, 3) == LUA_TNUMBER) {
    int isint;
    lua_Integer st = lua_tointegerx(L, 3, &isint);
    if (isint) lua_pushfstring(L, " (HTTP %I)", (LUAI_UACINT)st);
    else lua_pushfstring(L, " (HTTP %f)", (LUAI_UACNUMBER)lua_tonumber(L, 3));
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, ":");
  /* Our validation messages already start with the field name. */
  if (field && !(msg && mlen >= flen && memcmp(msg, field, flen) == 0 &&
                 (mlen == flen || msg[flen] == ' '))) {
    luaL_addstring(&b, " ");
    zc_add_printable(&b, field, flen);
    luaL_addstring(&b, ":");
  }
  if (msg) {
    luaL_addstring(&b, " ");
    zc_add_printable(&b, msg, mlen);
  }
  luaL_pushresult(&b);
  return 1;
}

static void zc_push_catalogue(lua_State *L) {
  const zc_catentry *e;
  lua_newtable(L);
  for (e = zc_catalogue; e->code != NULL; e++) {
    lua_createtable(L, 0, 5);
    if (e->status > 0) {
      lua_pushinteger(L, e->status);
      lua_setfield(L, -2, "status");
    }
    lua_pushstring(L, e->kind);
    lua_setfield(L, -2, "kind");
    lua_pushboolean(L, e->retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushstring(L, e->message);
    lua_setfield(L, -2, "message");
    if (e->resolution) {
      lua_pushstring(L, e->resolution);
      lua_setfield(L, -2, "resolution");
    }
    lua_setfield(L, -2, e->code);
  }
}

void zc_open_error(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "error", zc_l_error },
    { "is_error", zc_l_is_error },
    { NULL, NULL }
  };
  /* luaL_newmetatable returns 0 when a previous load registered it: reuse
  ** it, so errors from both loads pass is_error. */
  luaL_newmetatable(L, ZC_ERROR_MT);
  lua_pushcfunction(L, zc_error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  zc_push_catalogue(L);
  lua_setfield(L, -2, "catalogue");
}

/* }==== */
