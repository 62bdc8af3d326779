/*
** body.c: an update's request in one call: the URL and the JSON body
** `{"modules":[clean]}` of PUT /settings/modules/{module}, written from an
** update that core.prepare_update checked (profile names resolved to ids).
**
** The fields, and the order they are written in, are fields.h's, the
** lists validate.c checks, so a new field is one line there. The writer
** knows that shape only: labels and ids as JSON strings, integer ids as
** numbers, `_delete` as null or a boolean. Anything else in the
** table (another key, a float, a nested table) makes it return nothing, and
** the caller encodes with lua-cjson as before, so the bytes on the wire are
** JSON with the same meaning either way (spec/core_spec.lua compares both
** through cjson.decode).
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <string.h>

#include "body.h"
#include "fields.h"

/*
** Two phases. The first reads the table (raw reads, no metamethods) and
** pushes the JSON text of every value on the stack, each checked as it is
** read; the second joins those strings. The joined strings are immutable
** and anchored on the stack, so a finalizer run at a GC point (a buffer
** growing) cannot change what is written.
*/

/* Pushes `s` as a JSON string: `"`, `\` and control bytes escaped, the rest
** (UTF-8 included) as it is, as lua-cjson decodes it back. */
static void zc_push_json_string(lua_State *L, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  luaL_Buffer b;
  size_t i, run = 0;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    luaL_addlstring(&b, s + run, i - run);
    run = i + 1;
    luaL_addchar(&b, '\\');
    switch (c) {
      case '"': luaL_addchar(&b, '"'); break;
      case '\\': luaL_addchar(&b, '\\'); break;
      case '\n': luaL_addchar(&b, 'n'); break;
      case '\r': luaL_addchar(&b, 'r'); break;
      case '\t': luaL_addchar(&b, 't'); break;
      default:
        luaL_addstring(&b, "u00");
        luaL_addchar(&b, hex[c >> 4]);
        luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_addlstring(&b, s + run, n - run);
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* Replaces the value on top by its JSON text: a string, an integer, a
** boolean, core.null; nil stays nil. Returns 0, or -1 for anything else. */
static int zc_json_scalar(lua_State *L) {
  switch (lua_type(L, -1)) {
    case LUA_TNIL:
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      zc_push_json_string(L, s, n);
      break;
    }
    case LUA_TNUMBER:
      if (!lua_isinteger(L, -1)) return -1;
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
      break;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, -1) != NULL) return -1;
      lua_pushliteral(L, "null");
      break;
    default:
      return -1;
  }
  lua_remove(L, -2);
  return 0;
}

/* The number of keys of table t, each one of `names` (NULL-terminated);
** -1 when a key is something else. lua_next allocates nothing. */
static int zc_count_keys(lua_State *L, int t, const char *const names[]) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int k, known = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *key = lua_tostring(L, -1);
      for (k = 0; names[k] && !known; k++) known = strcmp(key, names[k]) == 0;
    }
    if (!known) {
      lua_pop(L, 1);
      return -1;
    }
    n++;
  }
  return n;
}

/* Pushes the JSON text (or nil) of each of `names` in table t. */
static int zc_json_fields(lua_State *L, int t, const char *const names[]) {
  int k;
  for (k = 0; names[k]; k++) {
    lua_pushstring(L, names[k]);
    lua_rawget(L, t);
    if (zc_json_scalar(L)) return -1;
  }
  return 0;
}

/* Adds `"name":` to b, after a comma unless it is the object's first. */
static void zc_add_key(luaL_Buffer *b, const char *name, int *comma) {
  if (*comma) luaL_addchar(b, ',');
  *comma = 1;
  luaL_addchar(b, '"');
  luaL_addstring(b, name);
  luaL_addstring(b, "\":");
}

/* Adds `"name":text` for each non-nil slot from `first` (one per name). */
static void zc_add_fields(lua_State *L, luaL_Buffer *b, int first,
                          const char *const names[]) {
  int k, comma = 0;
  for (k = 0; names[k]; k++) {
    size_t n;
    const char *s = lua_tolstring(L, first + k, &n);
    if (s == NULL) continue;
    zc_add_key(b, names[k], &comma);
    luaL_addlstring(b, s, n);
  }
}

/* The fields the writer knows, from fields.h: an update's, in the order
** they are written, and a profile entry's. */
static const zc_field zc_update_fields[] = {
  ZC_UPDATE_FIELDS(ZC_FIELD) { NULL, 0 }
};
static const char *const zc_update_keys[] = {
  ZC_UPDATE_FIELDS(ZC_FIELD_NAME) NULL
};
static const char *const zc_profile_keys[] = {
  ZC_PROFILE_FIELDS(ZC_FIELD_NAME) NULL
};
#define ZC_NUPDATE ZC_NFIELDS(ZC_UPDATE_FIELDS)
#define ZC_NPROFILE ZC_NFIELDS(ZC_PROFILE_FIELDS)

#define ZC_MAX_PROFILES 256   /* prepare_update allows 203 */

/* Pushes the JSON text of the list of profile entries in the table on top
** (left there: its slots follow it), ZC_NPROFILE slots per entry. Returns
** the number of entries, or -1 for what the writer does not know. */
static lua_Integer zc_json_profiles(lua_State *L) {
  int t = lua_gettop(L), count = 0;
  lua_Integer i, np = (lua_Integer)lua_rawlen(L, t);
  if (np == 0 || np > ZC_MAX_PROFILES) return -1;  /* cjson: {} is an object */
  lua_pushnil(L);
  while (lua_next(L, t)) {                     /* a sequence, nothing else */
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || ++count > np) return -1;
  }
  luaL_checkstack(L, (int)np * ZC_NPROFILE + 8, "too many profiles");
  for (i = 1; i <= np; i++) {
    int p = lua_gettop(L) + 1;
    if (lua_rawgeti(L, t, i) != LUA_TTABLE ||
        zc_count_keys(L, p, zc_profile_keys) <= 0)
      return -1;
    if (zc_json_fields(L, p, zc_profile_keys)) return -1;
    lua_remove(L, p);
  }
  return np;
}

/***
 * An update's URL and JSON body in one call, from a checked update (what
 * `prepare_update` returns, profile names resolved to ids).
 * @function update_request
 * @tparam string base the API's base URL, ending in "/crm/{version}/"
 * @tparam string segment the module's path segment (`check_module`)
 * @tparam table clean the update
 * @treturn string|nil the URL `base .. "settings/modules/" .. segment`, or
 *   nil when `clean` holds something the writer does not know (then encode
 *   with lua-cjson)
 * @treturn string the body `{"modules":[clean]}`
 */
static int zc_l_update_request(lua_State *L) {
  int at[ZC_NUPDATE];                          /* each field's first slot */
  lua_Integer count[ZC_NUPDATE];               /* -1: a scalar; else entries */
  luaL_Buffer b;
  int k, comma = 0;
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (zc_count_keys(L, 3, zc_update_keys) <= 0) return 0;
  lua_pushvalue(L, 1);                         /* 4: the URL */
  lua_pushliteral(L, "settings/modules/");
  lua_pushvalue(L, 2);
  lua_concat(L, 3);
  for (k = 0; k < ZC_NUPDATE; k++) {           /* phase 1: the slots */
    const zc_field *f = &zc_update_fields[k];
    at[k] = lua_gettop(L) + 1;
    count[k] = -1;
    lua_pushstring(L, f->name);
    if (f->kind == ZC_F_LABEL) {               /* its JSON text, or nil */
      lua_rawget(L, 3);
      if (zc_json_scalar(L)) return 0;
    }
    else if (f->kind == ZC_F_PROFILES) {       /* the list, then its slots */
      switch (lua_rawget(L, 3)) {
        case LUA_TNIL: count[k] = 0; break;
        case LUA_TTABLE:
          if ((count[k] = zc_json_profiles(L)) < 0) return 0;
          break;
        default: return 0;
      }
    }
    else return 0;                             /* a kind it does not write */
  }
  luaL_buffinit(L, &b);                        /* phase 2: the body */
  luaL_addstring(&b, "{\"modules\":[{");
  for (k = 0; k < ZC_NUPDATE; k++) {
    if (count[k] < 0) {
      size_t n;
      const char *s = lua_tolstring(L, at[k], &n);
      if (s == NULL) continue;
      zc_add_key(&b, zc_update_fields[k].name, &comma);
      luaL_addlstring(&b, s, n);
    }
    else if (count[k] > 0) {
      lua_Integer i;
      zc_add_key(&b, zc_update_fields[k].name, &comma);
      luaL_addchar(&b, '[');
      for (i = 0; i < count[k]; i++) {
        if (i > 0) luaL_addchar(&b, ',');
        luaL_addchar(&b, '{');
        zc_add_fields(L, &b, at[k] + 1 + (int)i * ZC_NPROFILE,
                      zc_profile_keys);
        luaL_addchar(&b, '}');
      }
      luaL_addchar(&b, ']');
    }
  }
  luaL_addstring(&b, "}]}");
  luaL_pushresult(&b);
  lua_replace(L, 5);                           /* URL at 4, body at 5 */
  lua_settop(L, 5);
  return 2;
}

void zc_open_body(lua_State *L) {
  lua_pushcfunction(L, zc_l_update_request);
  lua_setfield(L, -2, "update_request");
}
