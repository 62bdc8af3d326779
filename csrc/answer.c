/*
** answer.c: the success answer of an update, read straight into the result
** table that client:update_module returns.
**
** Only the plain success shape is read here:
**   {"modules":[{"code":"...","details":{"k":"v",...},"message":"...",
**                "status":"success"}]}
** (any key order and JSON whitespace; each of code, message, details
** optional here, string values only; details.id, when there, a string of
** 1-19 digits). Anything else (another key, a number, a nested value, an
** escaped surrogate, a raw control byte, a second item, a status other than
** "success", any string holding a secret: a code, a message, a details key
** or value) returns nothing, and the caller
** reads the answer with lua-cjson as before. So the result is the one the
** Lua path would have made, and lua-cjson stays the JSON reader of every
** answer that is not this one (spec/core_spec.lua checks both agree).
** The answer string is anchored at argument 1 and immutable, so the reader
** keeps pointers into it across allocations. The item's keys and the rule
** of each are fields.h's ZC_ANSWER_FIELDS.
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <string.h>

#include "answer.h"
#include "fields.h"

typedef struct zc_scan {
  const char *p, *end;
} zc_scan;

static void zc_ws(zc_scan *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

/* Skips whitespace, then `c`. Returns 1 when it was there. */
static int zc_next_is(zc_scan *s, char c) {
  zc_ws(s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return 1;
  }
  return 0;
}

static int zc_hex4(const char *p, unsigned *v) {
  int i;
  *v = 0;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return -1;
    *v = *v * 16 + d;
  }
  return 0;
}

/* Reads a JSON string (after whitespace) and pushes it decoded. Returns 0,
** or -1 (nothing pushed) for what this reader leaves to lua-cjson. */
static int zc_push_string(lua_State *L, zc_scan *s) {
  const char *p, *q;
  luaL_Buffer b;
  if (!zc_next_is(s, '"')) return -1;
  for (q = s->p; q < s->end && *q != '"' && *q != '\\'; q++)
    if ((unsigned char)*q < 0x20) return -1;
  if (q < s->end && *q == '"') {               /* no escapes: one copy */
    lua_pushlstring(L, s->p, (size_t)(q - s->p));
    s->p = q + 1;
    return 0;
  }
  for (q = s->p; q < s->end && *q != '"'; q++) {   /* check first */
    if ((unsigned char)*q < 0x20) return -1;
    if (*q == '\\') {
      unsigned v;
      if (++q >= s->end) return -1;
      if (*q == 'u') {
        if (s->end - q < 5 || zc_hex4(q + 1, &v) || (v >= 0xD800 && v <= 0xDFFF))
          return -1;
        q += 4;
      }
      else if (!strchr("\"\\/bfnrt", *q) || *q == '\0') return -1;
    }
  }
  if (q >= s->end) return -1;
  luaL_buffinit(L, &b);
  for (p = s->p; p < q; p++) {
    unsigned v;
    if (*p != '\\') {
      luaL_addchar(&b, *p);
      continue;
    }
    switch (*++p) {
      case 'b': luaL_addchar(&b, '\b'); break;
      case 'f': luaL_addchar(&b, '\f'); break;
      case 'n': luaL_addchar(&b, '\n'); break;
      case 'r': luaL_addchar(&b, '\r'); break;
      case 't': luaL_addchar(&b, '\t'); break;
      case 'u':
        zc_hex4(p + 1, &v);
        p += 4;
        if (v < 0x80) luaL_addchar(&b, (char)v);
        else if (v < 0x800) {
          luaL_addchar(&b, (char)(0xC0 | (v >> 6)));
          luaL_addchar(&b, (char)(0x80 | (v & 0x3F)));
        }
        else {
          luaL_addchar(&b, (char)(0xE0 | (v >> 12)));
          luaL_addchar(&b, (char)(0x80 | ((v >> 6) & 0x3F)));
          luaL_addchar(&b, (char)(0x80 | (v & 0x3F)));
        }
        break;
      default: luaL_addchar(&b, *p); break;    /* " \ / */
    }
  }
  luaL_pushresult(&b);
  s->p = q + 1;
  return 0;
}

/* True when the string at idx holds one of the strings of the list at
** `forms` (the client's secrets in every form it redacts). */
static int zc_holds_secret(lua_State *L, int idx, int forms) {
  size_t n, fn;
  const char *s = lua_tolstring(L, idx, &n);
  lua_Integer i, count;
  if (lua_type(L, forms) != LUA_TTABLE) return 0;
  count = (lua_Integer)lua_rawlen(L, forms);
  for (i = 1; i <= count; i++) {
    const char *f;
    int found = 0;
    if (lua_rawgeti(L, forms, i) == LUA_TSTRING) {
      f = lua_tolstring(L, -1, &fn);
      if (fn > 0 && fn <= n) {
        size_t k;
        for (k = 0; k + fn <= n && !found; k++)
          found = s[k] == f[0] && memcmp(s + k, f, fn) == 0;
      }
    }
    lua_pop(L, 1);
    if (found) return 1;
  }
  return 0;
}

/* True when the string at idx is `key` (with its length: no NUL tricks). */
static int zc_key_is(lua_State *L, int idx, const char *key) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  return n == strlen(key) && memcmp(s, key, n) == 0;
}

/* Reads the key `key` ("key" after whitespace, no escapes) and its ':'
** without making a Lua string. Returns 1 when it was there (else nothing
** is read). */
static int zc_read_key(zc_scan *s, const char *key) {
  size_t n = strlen(key);
  const char *p = s->p;
  zc_ws(s);
  if ((size_t)(s->end - s->p) > n + 1 && s->p[0] == '"' &&
      memcmp(s->p + 1, key, n) == 0 && s->p[n + 1] == '"') {
    s->p += n + 2;
    if (zc_next_is(s, ':')) return 1;
  }
  s->p = p;
  return 0;
}

static int zc_is_id(lua_State *L, int idx) {
  size_t n, i;
  const char *s = lua_tolstring(L, idx, &n);
  if (n == 0 || n > 19) return 0;
  for (i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* The item's fields (fields.h), each read into a stack slot of its own:
** ZC_A_code, ZC_A_message, ... after the two arguments. */
static const zc_field zc_answer_fields[] = {
  ZC_ANSWER_FIELDS(ZC_FIELD) { NULL, 0 }
};
#define ZC_A_SLOT(name, kind) ZC_A_##name,
enum { ZC_A_RAW = 1, ZC_A_FORMS, ZC_ANSWER_FIELDS(ZC_A_SLOT) ZC_A_END };
#undef ZC_A_SLOT
#define ZC_A_FIRST (ZC_A_FORMS + 1)

/* An object of strings, into a new table at `slot`. */
static int zc_read_strings(lua_State *L, zc_scan *s, int slot) {
  lua_newtable(L);
  lua_replace(L, slot);
  if (!zc_next_is(s, '{')) return -1;
  if (zc_next_is(s, '}')) return 0;
  do {
    if (zc_push_string(L, s)) return -1;
    if (!zc_next_is(s, ':') || zc_push_string(L, s)) return -1;
    if (zc_holds_secret(L, -1, ZC_A_FORMS) || zc_holds_secret(L, -2, ZC_A_FORMS))
      return -1;
    lua_rawset(L, slot);
  } while (zc_next_is(s, ','));
  return zc_next_is(s, '}') ? 0 : -1;
}

/* The one item: each key one of zc_answer_fields, read by its kind. */
static int zc_read_item(lua_State *L, zc_scan *s) {
  if (!zc_next_is(s, '{')) return -1;
  if (zc_next_is(s, '}')) return 0;
  do {
    const zc_field *f;
    int slot;
    for (f = zc_answer_fields; f->name && !zc_read_key(s, f->name); f++) {}
    if (f->name == NULL) return -1;            /* another key, or escaped */
    slot = ZC_A_FIRST + (int)(f - zc_answer_fields);
    if (f->kind == ZC_F_STRINGS) {
      if (zc_read_strings(L, s, slot)) return -1;
    }
    else {
      if (zc_push_string(L, s)) return -1;
      lua_replace(L, slot);                    /* a repeated key: the last */
    }
  } while (zc_next_is(s, ','));
  return zc_next_is(s, '}') ? 0 : -1;
}

/* Each field's rule (its kind), once the item is read: 0 when it holds,
** else -1 (not the plain success shape). Every string the server chose is
** checked for secrets, not only the details' ("success" holds nothing
** else). */
static int zc_check_answer(lua_State *L) {
  const zc_field *f;
  int slot = ZC_A_FIRST;
  for (f = zc_answer_fields; f->name; f++, slot++) {
    int t = lua_type(L, slot);
    switch (f->kind) {
      case ZC_F_CODE:
        if (t != LUA_TSTRING || lua_rawlen(L, slot) == 0 ||
            zc_holds_secret(L, slot, ZC_A_FORMS))
          return -1;
        break;
      case ZC_F_TEXT:
        if (t == LUA_TSTRING && zc_holds_secret(L, slot, ZC_A_FORMS))
          return -1;
        break;
      case ZC_F_SUCCESS:
        if (t != LUA_TSTRING || !zc_key_is(L, slot, "success")) return -1;
        break;
      case ZC_F_STRINGS:
        if (t != LUA_TTABLE) {                 /* the Lua path makes {} */
          lua_newtable(L);
          lua_replace(L, slot);
        }
        break;
      default:
        return -1;                             /* a kind it does not read */
    }
  }
  return 0;
}

/***
 * The result of an update from its success answer, read in C: `{ id =,
 * code =, message =, status = "success", details = }`, as
 * `client:update_module` returns it.
 * @function read_update_answer
 * @tparam string body the answer's body (HTTP 2xx)
 * @tparam[opt] {string,...} secrets strings that must not appear in the
 *   result (the client's secrets in each form it redacts)
 * @treturn table|nil the result, or nil when the body is not the plain
 *   success shape (then read it with lua-cjson)
 */
static int zc_l_read_update_answer(lua_State *L) {
  const zc_field *f;
  int slot;
  size_t n;
  zc_scan s;
  s.p = luaL_checklstring(L, ZC_A_RAW, &n);
  s.end = s.p + n;
  lua_settop(L, ZC_A_FORMS);
  lua_settop(L, ZC_A_END - 1);                 /* every field: nil */
  if (!zc_next_is(&s, '{') || !zc_read_key(&s, "modules") ||
      !zc_next_is(&s, '[')) return 0;
  for (f = zc_answer_fields, slot = ZC_A_FIRST; f->name; f++, slot++)
    if (f->kind == ZC_F_STRINGS) {             /* unseen */
      lua_pushboolean(L, 0);
      lua_replace(L, slot);
    }
  if (zc_read_item(L, &s)) return 0;
  if (!zc_next_is(&s, ']') || !zc_next_is(&s, '}')) return 0;
  zc_ws(&s);
  if (s.p != s.end) return 0;
  if (zc_check_answer(L)) return 0;
  lua_createtable(L, 0, ZC_A_END - ZC_A_FIRST + 1);
  lua_pushliteral(L, "id");                    /* the module's id */
  if (lua_rawget(L, ZC_A_details) != LUA_TNIL && !zc_is_id(L, -1)) return 0;
  lua_setfield(L, -2, "id");
  for (f = zc_answer_fields, slot = ZC_A_FIRST; f->name; f++, slot++) {
    lua_pushvalue(L, slot);
    lua_setfield(L, -2, f->name);
  }
  return 1;
}

void zc_open_answer(lua_State *L) {
  lua_pushcfunction(L, zc_l_read_update_answer);
  lua_setfield(L, -2, "read_update_answer");
}
