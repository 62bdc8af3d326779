/*
** validate.c: local checks of everything the docs state, before a request
** exists: update tables, module path segments, base URLs, tokens.
**
** Sources cited in comments are Zoho CRM API v8 pages, by title: "Update
** Custom Module" (its input table, sample request and Possible Errors),
** "Create Custom Module", "Modules", "Specific Module", "Profiles", and
** Zoho's OpenAPI files (the crm-oas repository, v8.0).
** Every validation error has kind "validation", retryable false, no status,
** and uses the code the server documents for the same fault (README, "The
** error convention").
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <utf8proc.h>

#include "error.h"
#include "fields.h"
#include "validate.h"

/* "Update Custom Module", both labels: "A maximum of 25 characters,
** including spaces". */
#define ZC_LABEL_MAX 25
/* Zoho's newer OpenAPI file for modules (label_rules = "openapi"): 1-50
** characters, pattern ^[a-zA-Z0-9]+$; its description also allows spaces,
** and zcrm takes them (ASCII letters, digits and U+0020). */
#define ZC_LABEL_MAX_OPENAPI 50
/* Zoho's OpenAPI file for modules: a module's `profiles` array holds at
** most 203 items. */
#define ZC_MAX_PROFILES 203
/* "Profiles": a profile `name` is a string of at most 50. */
#define ZC_PROFILE_NAME_MAX 50
/* A module API name in a path: at most 100 characters (see
** zc_l_check_module). */
#define ZC_MODULE_NAME_MAX 100
/* Zoho access and refresh tokens are ~70 bytes; anything near this is not
** a token, and it keeps a header line bounded. */
#define ZC_TOKEN_MAX 4096

/* {==== helpers */

static int zc_isnull(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, idx) == NULL;
}

/* t[k] without metamethods: no user code runs while we validate, so the
** strings we point at stay reachable from the tables being checked. */
static int zc_rawfield(lua_State *L, int t, const char *k) {
  t = lua_absindex(L, t);
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* A type name for messages: "float" and "integer" for numbers, "null" for
** the JSON null. */
static const char *zc_typename(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return lua_isinteger(L, idx) ? "integer" : "float";
  if (zc_isnull(L, idx)) return "null";
  return luaL_typename(L, idx);
}

/* Pushes a printable, quoted, bounded rendering of a user string for a
** message: 'abc', bytes outside printable ASCII as \xNN, at most 40 bytes. */
static const char *zc_pushquoted(lua_State *L, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  size_t i, n = len > 40 ? 40 : len;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
      luaL_addchar(&b, (char)c);
    else {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, 'x');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_addchar(&b, '\'');
  if (n < len) luaL_addstring(&b, "...");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/*
** Pushes a validation error object (kind "validation") and returns 1.
** api_name/json_path NULL: no details. maxlen < 0: no maximum_length.
*/
static int zc_verr(lua_State *L, const char *code, const char *field,
                   const char *api_name, const char *json_path,
                   lua_Integer maxlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  zc_error_new(L, code, "validation", 0, field);
  if (api_name || json_path) zc_error_details(L, api_name, json_path, maxlen);
  return 1;
}

/*
** Strict UTF-8 on top of utf8proc_iterate: the code point must be encoded
** in the shortest form (no overlongs such as C0 AF), not be a surrogate
** (ED A0 80) and be at most U+10FFFF. utf8proc 2.x checks all of this too;
** checking again keeps the rule independent of the library version.
*/
static utf8proc_ssize_t zc_utf8_next(const char *s, size_t len,
                                     utf8proc_int32_t *cp) {
  utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s,
                                        (utf8proc_ssize_t)len, cp);
  utf8proc_ssize_t want;
  if (n <= 0 || *cp < 0) return -1;
  if (*cp < 0x80) want = 1;
  else if (*cp < 0x800) want = 2;
  else if (*cp < 0x10000) want = 3;
  else if (*cp <= 0x10FFFF) want = 4;
  else return -1;
  if (*cp >= 0xD800 && *cp <= 0xDFFF) return -1;
  return n == want ? n : -1;
}

/*
** Parses a Zoho id: 1-19 ASCII digits (Zoho's OpenAPI files: ids are 64-bit
** integers sent as JSON strings of 1-19 digits, ^[0-9]{1,19}$), value at
** most INT64_MAX (9223372036854775807). We also refuse a leading zero (and
** so 0): Zoho ids never have one, and "015" would be a second spelling of
** the id 15 that the server may not accept. Returns NULL or a reason.
*/
static const char *zc_parse_id(const char *s, size_t len,
                               unsigned long long *out) {
  static const char maxid[] = "9223372036854775807";
  size_t i;
  unsigned long long v = 0;
  if (len == 0) return "is empty (an id is 1 to 19 digits)";
  for (i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return "must contain only digits (an id is 1 to 19 digits)";
  if (len > 19) return "has more than 19 digits";
  if (s[0] == '0') return "must not start with 0";
  if (len == 19 && memcmp(s, maxid, 19) > 0)
    return "is larger than 9223372036854775807, the largest 64-bit id";
  for (i = 0; i < len; i++) v = v * 10 + (unsigned long long)(s[i] - '0');
  *out = v;
  return NULL;
}

/* True when the Lua string (s, len) is exactly `name`: with its length,
** so "profiles\0junk" is not "profiles". */
static int zc_key_is(const char *s, size_t len, const char *name) {
  return len == strlen(name) && memcmp(s, name, len) == 0;
}

/*
** Finds the unknown key of table `t` (keys not in `allowed`). Several
** unknown keys: the smallest string key, so the report does not depend on
** table traversal order. Pushes a printable name for the key and returns
** 1, or returns 0 when every key is allowed. *isstr tells whether the key
** was a string (then the pushed value is the raw key).
*/
static int zc_unknown_key(lua_State *L, int t, const char *const allowed[],
                          int *isstr) {
  int found = 0;
  t = lua_absindex(L, t);
  lua_pushnil(L);                             /* [best] nil */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int ok = 0, i;
    lua_pop(L, 1);                            /* [best] key */
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t klen;
      const char *k = lua_tolstring(L, -1, &klen);
      for (i = 0; allowed[i]; i++)
        if (zc_key_is(k, klen, allowed[i])) { ok = 1; break; }
      if (!ok && (!found || !*isstr ||
                  lua_compare(L, -1, -2, LUA_OPLT))) {
        lua_pushvalue(L, -1);
        lua_replace(L, -3);
        found = 1;
        *isstr = 1;
      }
    }
    else if (!found) {                        /* non-string key */
      if (lua_isinteger(L, -1))
        lua_pushfstring(L, "[%I]", (LUAI_UACINT)lua_tointeger(L, -1));
      else
        lua_pushfstring(L, "(a %s key)", zc_typename(L, -1));
      lua_replace(L, -3);
      found = 1;
      *isstr = 0;
    }
  }
  if (!found) lua_pop(L, 1);
  return found;
}

/* }==== */

/* {==== labels */

/* Describes a refused character for a message (pushes a string). Visible
** punctuation and symbols are quoted; invisible ones (controls, format and
** bidi characters, other spaces, marks) are only named by code point. */
static const char *zc_pushcharname(lua_State *L, const char *s, size_t n,
                                   utf8proc_int32_t cp) {
  char hex[16];
  const char *what;
  int show = 0;
  snprintf(hex, sizeof hex, "U+%04lX", (unsigned long)cp);
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      what = "punctuation"; show = 1; break;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO:
      what = "a symbol"; show = 1; break;
    case UTF8PROC_CATEGORY_NO:
      what = "a number form that is not a decimal digit"; show = 1; break;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
      what = "a combining mark not following a letter"; break;
    case UTF8PROC_CATEGORY_ME: what = "an enclosing mark"; break;
    case UTF8PROC_CATEGORY_ZS: what = "a space other than U+0020"; break;
    case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
      what = "a line or paragraph separator"; break;
    case UTF8PROC_CATEGORY_CC: what = "a control character"; break;
    case UTF8PROC_CATEGORY_CF:
      what = "an invisible format character"; break;
    case UTF8PROC_CATEGORY_CO: what = "a private-use character"; break;
    default: what = "an unassigned code point"; break;
  }
  if (show)
    return lua_pushfstring(L, "%s '%s' (%s)", hex,
                           lua_pushlstring(L, s, n), what);
  return lua_pushfstring(L, "%s (%s)", hex, what);
}

/*
** A module label ("Update Custom Module", plural_label and singular_label):
** "A maximum of 25 characters, including spaces, is allowed. Note that the
** value of this field should not be empty, and only letters, numbers, and
** spaces are supported."
**
** - a string of valid UTF-8 (strict: no overlongs, surrogates, > U+10FFFF);
** - characters, counted as code points, from utf8proc's categories:
**   letters L* (Lu Ll Lt Lm Lo; Lm is needed for Japanese, e.g. U+30FC in
**   katakana words), decimal digits Nd, letter numbers Nl (Roman numerals,
**   U+3007 ideographic zero: "numbers" that are written like letters), and
**   U+0020 as the only space;
** - combining marks Mn and Mc only right after a letter (or after marks
**   that follow a letter): scripts such as Devanagari, Bengali or Thai
**   write vowel signs and viramas as marks, and "letters" in the doc's
**   sense must include them. Enclosing marks Me are refused;
** - refused: punctuation, symbols (emoji are So), No (superscripts,
**   fractions, circled digits: decorations, not digits), any other space
**   (NBSP, ideographic space), controls (CR, LF, NUL, TAB), format
**   characters (zero-width space/joiners U+200B-U+200D, bidi controls such
**   as U+202E; this also refuses ZWNJ spellings of some Persian and Indic
**   words, a deliberate choice for "letters, numbers and spaces"),
**   private use, unassigned code points;
** - not empty, not only spaces; at most 25 code points.
** Fault: INVALID_DATA, details { api_name, json_path, maximum_length = 25
** for the length fault } like the server's ("Create Custom Module").
*/
/* The JSON path of a label, made only for an error (labels are checked on
** every update). */
#define ZC_LABEL_PATH() lua_pushfstring(L, "$.modules[0].%s", key)

static int zc_check_label(lua_State *L, int idx, const char *key,
                          int openapi) {
  lua_Integer max = openapi ? ZC_LABEL_MAX_OPENAPI : ZC_LABEL_MAX;
  const char *s;
  size_t len, pos = 0;
  lua_Integer count = 0, bad_at = 0;
  utf8proc_int32_t cp, bad_cp = -1;
  size_t bad_pos = 0, bad_n = 0;
  int nonspace = 0, after_letter = 0;
  const char *path;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TSTRING && (path = ZC_LABEL_PATH()))
    return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                   "%s must be a string, got %s", key, zc_typename(L, idx));
  s = lua_tolstring(L, idx, &len);
  if (len == 0 && (path = ZC_LABEL_PATH()))
    return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                   "%s must not be empty", key);
  while (pos < len) {
    utf8proc_ssize_t n = zc_utf8_next(s + pos, len - pos, &cp);
    int ok = 0;
    if (n < 0 && (path = ZC_LABEL_PATH()))
      return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                     "%s is not valid UTF-8 (bad byte sequence at byte %d)",
                     key, (int)pos + 1);
    count++;
    if (cp == 0x20) {
      ok = 1;
      after_letter = 0;
    }
    else if (openapi && cp >= 0x80) ok = 0;  /* ASCII only */
    else switch (utf8proc_category(cp)) {
      case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
      case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
      case UTF8PROC_CATEGORY_LO:
        ok = nonspace = after_letter = 1;
        break;
      case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
        ok = nonspace = 1;
        after_letter = 0;
        break;
      case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
        ok = after_letter;                    /* stays after a letter */
        break;
      default:
        break;
    }
    if (!ok && bad_cp < 0) {
      bad_cp = cp;
      bad_at = count;
      bad_pos = pos;
      bad_n = (size_t)n;
    }
    pos += (size_t)n;
  }
  if (bad_cp >= 0) {
    const char *what;
    path = ZC_LABEL_PATH();
    what = zc_pushcharname(L, s + bad_pos, bad_n, bad_cp);
    return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                   "%s contains %s at character %I; only letters, digits "
                   "and spaces are allowed", key, what, (LUAI_UACINT)bad_at);
  }
  if (!nonspace && (path = ZC_LABEL_PATH()))
    return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                   "%s must not be only spaces", key);
  if (count > max && (path = ZC_LABEL_PATH()))
    return zc_verr(L, "INVALID_DATA", key, key, path, max,
                   "%s has %I characters; at most %I allowed", key,
                   (LUAI_UACINT)count, (LUAI_UACINT)max);
  return 0;
}

#undef ZC_LABEL_PATH

/* }==== */

/* {==== profiles */

typedef struct zc_profile_key {
  unsigned long long id;                      /* 0: a name entry */
  const char *name;
  size_t namelen;
} zc_profile_key;

/* A string of at most max code points of valid UTF-8, not empty (when
** nonempty) and without control characters. NULL or a reason. */
static const char *zc_text_why(const char *s, size_t len, lua_Integer max,
                               int nonempty) {
  size_t pos = 0;
  lua_Integer count = 0;
  utf8proc_int32_t cp;
  if (nonempty && len == 0) return "must not be empty";
  while (pos < len) {
    utf8proc_ssize_t n = zc_utf8_next(s + pos, len - pos, &cp);
    if (n < 0) return "is not valid UTF-8";
    if (utf8proc_category(cp) == UTF8PROC_CATEGORY_CC)
      return "must not contain control characters";
    pos += (size_t)n;
    count++;
  }
  if (count > max) return "is too long";
  return NULL;
}

/* A profile name ("Profiles": string <= 50): a non-empty string of at most
** 50 bytes of valid UTF-8 without control characters. Returns NULL or a
** reason. */
static const char *zc_check_name(const char *s, size_t len) {
  if (len == 0) return "must not be empty";
  if (len > ZC_PROFILE_NAME_MAX) return "is longer than 50 bytes";
  return zc_text_why(s, len, ZC_PROFILE_NAME_MAX, 1);
}

/*
** One entry of `profiles` ("Update Custom Module", its input table and
** sample request; only the profiles listed change): a table with exactly one of `id` or `name`, and
** optional `_delete`. Leaves nothing on the stack on success; on failure
** pushes the error and returns 1. *pk gets the identity for duplicates,
** *revoke the meaning of `_delete`.
*/
static const char *const zc_profile_keys[] = {
  ZC_PROFILE_FIELDS(ZC_FIELD_NAME) NULL
};

static int zc_check_profile(lua_State *L, int e, int i, int anchors,
                            zc_profile_key *pk, int *revoke) {
  int top = lua_gettop(L), isstr = 0, tid, tname, tdel;
  const char *field, *path, *idfield, *idpath;
  e = lua_absindex(L, e);
  field = lua_pushfstring(L, "profiles[%d]", i);
  path = lua_pushfstring(L, "$.modules[0].profiles[%d]", i - 1);
  idfield = lua_pushfstring(L, "%s.id", field);
  idpath = lua_pushfstring(L, "%s.id", path);
  if (!lua_istable(L, e))
    return zc_verr(L, "INVALID_DATA", field, "profiles", path, -1,
                   "%s must be a table like { id = \"...\" }, got %s",
                   field, zc_typename(L, e));
  if (zc_unknown_key(L, e, zc_profile_keys, &isstr)) {
    const char *k = isstr ? zc_pushquoted(L, lua_tostring(L, -1),
                                          lua_rawlen(L, -1))
                          : lua_tostring(L, -1);
    return zc_verr(L, "INVALID_DATA", field, "profiles", path, -1,
                   "%s has an unknown key %s (allowed: %s)", field, k,
                   ZC_FIELD_NAMES(ZC_PROFILE_FIELDS));
  }
  tid = zc_rawfield(L, e, "id");             /* -3 */
  tname = zc_rawfield(L, e, "name");         /* -2 */
  tdel = zc_rawfield(L, e, "_delete");       /* -1 */
  if (tid != LUA_TNIL && tname != LUA_TNIL)
    return zc_verr(L, "INVALID_DATA", field, "profiles", path, -1,
                   "%s has both id and name; give one of them", field);
  if (tid == LUA_TNIL && tname == LUA_TNIL)
    /* "Create Custom Module": a missing profiles[].id is MANDATORY_NOT_FOUND. */
    return zc_verr(L, "MANDATORY_NOT_FOUND", idfield, "id", idpath, -1,
                   "%s is missing (each profile needs an id or a name)",
                   idfield);
  pk->id = 0;
  pk->name = NULL;
  pk->namelen = 0;
  if (tid == LUA_TNUMBER) {
    if (!lua_isinteger(L, -3))
      return zc_verr(L, "INVALID_DATA", idfield, "id", idpath, -1,
                     "%s must be a string of digits or an integer, not the "
                     "float %f", idfield, (LUAI_UACNUMBER)lua_tonumber(L, -3));
    if (lua_tointeger(L, -3) <= 0)
      return zc_verr(L, "INVALID_DATA", idfield, "id", idpath, -1,
                     "%s must be positive, got %I", idfield,
                     (LUAI_UACINT)lua_tointeger(L, -3));
    pk->id = (unsigned long long)lua_tointeger(L, -3);
  }
  else if (tid == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -3, &len);
    const char *why = zc_parse_id(s, len, &pk->id);
    if (why)
      return zc_verr(L, "INVALID_DATA", idfield, "id", idpath, -1,
                     "%s %s", idfield, why);
  }
  else if (tid != LUA_TNIL)
    return zc_verr(L, "INVALID_DATA", idfield, "id", idpath, -1,
                   "%s must be a string of digits or an integer, got %s",
                   idfield, zc_typename(L, -3));
  else {
    const char *nfield = lua_pushfstring(L, "%s.name", field);
    const char *npath = lua_pushfstring(L, "%s.name", path);
    const char *why;
    if (tname != LUA_TSTRING)
      return zc_verr(L, "INVALID_DATA", nfield, "name", npath, -1,
                     "%s must be a string, got %s", nfield,
                     zc_typename(L, -4));
    pk->name = lua_tolstring(L, -4, &pk->namelen);
    why = zc_check_name(pk->name, pk->namelen);
    if (why)
      return zc_verr(L, "INVALID_DATA", nfield, "name", npath,
                     pk->namelen > ZC_PROFILE_NAME_MAX ? ZC_PROFILE_NAME_MAX
                                                       : -1,
                     "%s %s", nfield, why);
    /* pk->name must outlive this entry: a weak-valued `profiles` list
    ** (or a finalizer) can drop the entry, and with it the string, at the
    ** next allocation. The caller's anchor list keeps the string. */
    lua_pushvalue(L, -4);
    lua_rawseti(L, anchors, i);
    lua_pop(L, 2);
  }
  /* "Update Custom Module", sample request: "_delete": null revokes. */
  if (tdel == LUA_TNIL || (tdel == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    *revoke = 0;
  else if (tdel == LUA_TBOOLEAN || zc_isnull(L, -1))
    *revoke = 1;
  else {
    const char *dfield = lua_pushfstring(L, "%s._delete", field);
    const char *dpath = lua_pushfstring(L, "%s._delete", path);
    return zc_verr(L, "INVALID_DATA", dfield, "_delete", dpath, -1,
                   "%s must be true or zcrm.null (revoke), or false or "
                   "absent (grant), got %s", dfield, zc_typename(L, -3));
  }
  lua_settop(L, top);
  return 0;
}

/*
** `profiles` ("Update Custom Module": "Specify the profiles that should have
** access to the module. It is mandatory to specify at least one profile";
** L523 "Assign at least one profile to each module"; error
** MINIMUM_DATA_NOT_FOUND L569-575: "The profile key should not be empty or
** null"): a non-empty sequence of at most 203 entries (Zoho's OpenAPI
** files), no duplicated id or name ("Create Custom Module": "no duplicates").
** out > 0: appends the clean entries to the list at `out`.
*/
static int zc_check_profiles(lua_State *L, int idx, int out) {
  static const char path[] = "$.modules[0].profiles";
  zc_profile_key keys[ZC_MAX_PROFILES];
  lua_Integer n = 0, maxkey = 0, i;
  int bad = 0, anchors;
  idx = lua_absindex(L, idx);
  if (zc_isnull(L, idx))
    return zc_verr(L, "MINIMUM_DATA_NOT_FOUND", "profiles", "profiles", path,
                   -1, "profiles must not be null; at least one profile is "
                   "needed");
  if (!lua_istable(L, idx))
    return zc_verr(L, "INVALID_DATA", "profiles", "profiles", path, -1,
                   "profiles must be a list of { id = ... } tables, got %s",
                   zc_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      if (lua_tointeger(L, -1) > maxkey) maxkey = lua_tointeger(L, -1);
    }
    else bad = 1;
  }
  if (n == 0)
    return zc_verr(L, "MINIMUM_DATA_NOT_FOUND", "profiles", "profiles", path,
                   -1, "profiles is empty; at least one profile is needed");
  if (bad || maxkey != n)
    return zc_verr(L, "INVALID_DATA", "profiles", "profiles", path, -1,
                   "profiles must be a sequence (a list indexed 1..n)");
  if (n > ZC_MAX_PROFILES)
    return zc_verr(L, "INVALID_DATA", "profiles", "profiles", path,
                   ZC_MAX_PROFILES, "profiles has %I entries; at most %d "
                   "allowed", (LUAI_UACINT)n, ZC_MAX_PROFILES);
  /* Anchors for the names in keys[]: they are compared after their
  ** entries are popped, across allocations (GC points). */
  lua_createtable(L, (int)n, 0);
  anchors = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    zc_profile_key *pk = &keys[i - 1];
    int revoke = 0, j;
    lua_rawgeti(L, idx, i);
    if (zc_check_profile(L, -1, (int)i, anchors, pk, &revoke)) return 1;
    for (j = 0; j < i - 1; j++) {
      const zc_profile_key *q = &keys[j];
      if (pk->id != 0 && q->id == pk->id)
        return zc_verr(L, "INVALID_DATA",
                       lua_pushfstring(L, "profiles[%d].id", (int)i), "id",
                       lua_pushfstring(L, "%s[%d].id", path, (int)i - 1), -1,
                       "profiles[%d].id duplicates profiles[%d].id",
                       (int)i, j + 1);
      if (pk->name != NULL && q->name != NULL &&
          q->namelen == pk->namelen &&
          memcmp(q->name, pk->name, pk->namelen) == 0)
        return zc_verr(L, "INVALID_DATA",
                       lua_pushfstring(L, "profiles[%d].name", (int)i),
                       "name",
                       lua_pushfstring(L, "%s[%d].name", path, (int)i - 1),
                       -1, "profiles[%d].name duplicates profiles[%d].name",
                       (int)i, j + 1);
    }
    if (out) {
      lua_createtable(L, 0, 2);
      if (pk->name) {
        lua_pushlstring(L, pk->name, pk->namelen);
        lua_setfield(L, -2, "name");
      }
      else {
        lua_pushfstring(L, "%I", (LUAI_UACINT)pk->id);
        lua_setfield(L, -2, "id");
      }
      if (revoke) {
        lua_pushlightuserdata(L, NULL);       /* core.null == cjson.null */
        lua_setfield(L, -2, "_delete");
      }
      lua_rawseti(L, out, i);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);                              /* anchors */
  return 0;
}

/* }==== */

/* {==== update tables */

/* The update's keys, in the order they are checked (fields.h). */
static const zc_field zc_update_fields[] = {
  ZC_UPDATE_FIELDS(ZC_FIELD) { NULL, 0 }
};
static const char *const zc_update_keys[] = {
  ZC_UPDATE_FIELDS(ZC_FIELD_NAME) NULL
};

/*
** A key the API refuses in an update (NOT_ALLOWED): when the table at idx
** has `key`, pushes the error (above the key's value) and returns 1; else
** returns 0 with the stack as it was.
*/
static int zc_refused_key(lua_State *L, int idx, const char *key,
                          const char *json_path, const char *why) {
  if (zc_rawfield(L, idx, key) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  return zc_verr(L, "NOT_ALLOWED", key, key, json_path, -1, "%s", why);
}

/*
** The update table. Checks in a fixed order, so that the
** reported fault does not depend on table traversal: type, keys the API
** refuses (NOT_ALLOWED), unknown keys, nothing to update, then each field.
** out > 0: fills the clean table at `out`.
*/
static int zc_check_update(lua_State *L, int idx, int out, int openapi) {
  int isstr = 0, any = 0;
  if (!lua_istable(L, idx))
    return zc_verr(L, "INVALID_DATA", NULL, NULL, NULL, -1,
                   "the update must be a table, got %s", zc_typename(L, idx));
  /* "Update Custom Module": "The module API name can be updated only through
  ** the UI", and its NOT_ALLOWED error "API name cannot be updated for
  ** module". */
  if (zc_refused_key(L, idx, "api_name", "$.modules[0].api_name",
                     "api_name cannot be updated through the API; change it "
                     "in the UI"))
    return 1;
  /* Zoho's OpenAPI file for modules: access_type must not be sent ("access
  ** type update not allowed"). */
  if (zc_refused_key(L, idx, "access_type", "$.modules[0].access_type",
                     "access_type cannot be changed after the module is "
                     "created"))
    return 1;
  /* "Update Custom Module" lists the Input JSON keys: plural_label,
  ** singular_label, profiles (fields.h). Anything else (e.g. the typo
  ** plural_lable) is refused, never silently sent or dropped. */
  if (zc_unknown_key(L, idx, zc_update_keys, &isstr)) {
    if (isstr) {
      size_t klen;
      const char *k = lua_tolstring(L, -1, &klen);
      const char *q = zc_pushquoted(L, k, klen);
      const char *path;
      if (strlen(k) != klen) k = q;           /* a NUL: name it quoted */
      path = lua_pushfstring(L, "$.modules[0].%s", k);
      return zc_verr(L, "INVALID_DATA", k, k, path, -1,
                     "unknown key %s in the update (allowed: %s)", q,
                     ZC_FIELD_NAMES(ZC_UPDATE_FIELDS));
    }
    return zc_verr(L, "INVALID_DATA", lua_tostring(L, -1), NULL, NULL, -1,
                   "unknown key %s in the update (allowed: %s)",
                   lua_tostring(L, -1), ZC_FIELD_NAMES(ZC_UPDATE_FIELDS));
  }
  /* "Update Custom Module", MANDATORY_NOT_FOUND "Mandatory fields are missing":
  ** an update with none of its keys has nothing to send. */
  {
    int i;
    for (i = 0; zc_update_keys[i]; i++) {
      if (zc_rawfield(L, idx, zc_update_keys[i]) != LUA_TNIL) any = 1;
      lua_pop(L, 1);
    }
  }
  if (!any) {
    int i;
    zc_verr(L, "MANDATORY_NOT_FOUND", NULL, NULL, NULL, -1,
            "the update has none of %s", ZC_FIELD_NAMES(ZC_UPDATE_FIELDS));
    lua_createtable(L, 0, 1);                 /* details.expected_fields */
    lua_createtable(L, ZC_NFIELDS(ZC_UPDATE_FIELDS), 0);
    for (i = 0; zc_update_keys[i]; i++) {
      lua_createtable(L, 0, 2);
      lua_pushstring(L, zc_update_keys[i]);
      lua_setfield(L, -2, "api_name");
      lua_pushfstring(L, "$.modules[0].%s", zc_update_keys[i]);
      lua_setfield(L, -2, "json_path");
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "expected_fields");
    lua_setfield(L, -2, "details");
    return 1;
  }
  {
    const zc_field *f;
    for (f = zc_update_fields; f->name; f++) {  /* each field by its kind */
      if (zc_rawfield(L, idx, f->name) == LUA_TNIL) {
        lua_pop(L, 1);
        continue;
      }
      switch (f->kind) {
        case ZC_F_LABEL:
          if (zc_check_label(L, -1, f->name, openapi)) return 1;
          if (out) lua_setfield(L, out, f->name);
          else lua_pop(L, 1);
          break;
        case ZC_F_PROFILES: {
          int list = 0;
          if (out) {
            lua_newtable(L);
            list = lua_gettop(L);
          }
          if (zc_check_profiles(L, -1 - (out != 0), list)) return 1;
          if (out) lua_setfield(L, out, f->name);
          lua_pop(L, 1);
          break;
        }
        default:                              /* no rule: a bug in fields.h */
          return luaL_error(L, "zcrm.core: field '%s' has no rule", f->name);
      }
    }
  }
  return 0;
}

/* The optional label_rules argument: "reference" (the default: the Update
** Custom Module page) or "openapi" (Zoho's newer OpenAPI file). 1 for
** openapi. */
static int zc_label_rules(lua_State *L, int arg) {
  static const char *const names[] = { "reference", "openapi", NULL };
  return luaL_checkoption(L, arg, "reference", names) == 1;
}

/***
 * Checks an update table and returns a clean copy for
 * `cjson.encode({ modules = { clean } })`.
 * @function prepare_update
 * @tparam table update
 * @tparam[opt="reference"] string label_rules "reference" or "openapi"
 * @treturn table|nil clean table, or nil and an error object
 */
static int zc_l_prepare_update(lua_State *L) {
  int out, openapi = zc_label_rules(L, 2);
  lua_settop(L, 1);
  lua_newtable(L);
  out = lua_gettop(L);
  if (zc_check_update(L, 1, out, openapi)) return zc_fail(L);
  lua_settop(L, out);
  return 1;
}

/***
 * Checks an update table without copying it.
 * @function validate_update
 * @tparam table update
 * @tparam[opt="reference"] string label_rules "reference" or "openapi"
 * @treturn true|nil true, or nil and an error object
 */
static int zc_l_validate_update(lua_State *L) {
  int openapi = zc_label_rules(L, 2);
  lua_settop(L, 1);
  if (zc_check_update(L, 1, 0, openapi)) return zc_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* }==== */

/* {==== label_key: what makes two labels the same */

/***
 * The key under which a label is unique in an org: lower-cased code point
 * by code point (utf8proc's simple mapping), spaces at the edges dropped and
 * runs of spaces inside made one. The emulator compares labels the same way
 * (one verdict; Zoho's pages say labels are unique, not how they compare:
 * assumed). Bytes that are not UTF-8 are kept as they are.
 * @function label_key
 * @tparam string label
 * @treturn string the key
 */
static int zc_l_label_key(lua_State *L) {
  size_t len, pos = 0;
  const char *s = luaL_checklstring(L, 1, &len);
  int pending_space = 0, any = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (pos < len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n;
    unsigned char c = (unsigned char)s[pos];
    if (c < 0x80) {       /* ASCII (most labels): no lookup, same mapping */
      pos++;
      if (c == ' ') { pending_space = 1; continue; }
      if (pending_space && any) luaL_addchar(&b, ' ');
      pending_space = 0;
      luaL_addchar(&b, (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
      any = 1;
      continue;
    }
    n = zc_utf8_next(s + pos, len - pos, &cp);
    if (n < 0) {                              /* not UTF-8: the byte itself */
      if (pending_space && any) luaL_addchar(&b, ' ');
      pending_space = 0;
      luaL_addchar(&b, s[pos]);
      any = 1;
      pos++;
      continue;
    }
    pos += (size_t)n;
    if (cp == 0x20) { pending_space = 1; continue; }
    if (pending_space && any) luaL_addchar(&b, ' ');
    pending_space = 0;
    {
      utf8proc_uint8_t enc[4];
      utf8proc_ssize_t k = utf8proc_encode_char(utf8proc_tolower(cp), enc);
      luaL_addlstring(&b, (const char *)enc, (size_t)k);
    }
    any = 1;
  }
  luaL_pushresult(&b);
  return 1;
}

/* }==== */

/* {==== create: api_name and display_field ("Create Custom Module") */

/* "Create Custom Module": api_name is at most 50 characters; display_field's
** field_label at most 100, auto_number's prefix and suffix at most 50 and
** its start_number digits only, at most 16. */
#define ZC_API_NAME_MAX 50
#define ZC_FIELD_LABEL_MAX 100
#define ZC_AFFIX_MAX 50
#define ZC_START_NUMBER_MAX 16

/* The reason an API name breaks "Create Custom Module"'s rule, or NULL. The
** page also lists spaces, but an API name is a URL path segment (see
** zc_l_check_module) and the emulator refuses them: one verdict. */
static const char *zc_api_name_why(const char *s, size_t len) {
  size_t i;
  if (len == 0) return "must not be empty";
  if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
    return "must start with an English letter";
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return "may hold only letters, digits and _";
    if (c == '_' && i + 1 < len && s[i + 1] == '_')
      return "must not hold __";
  }
  if (s[len - 1] == '_') return "must not end in _";
  return NULL;
}

/***
 * Checks the API name of a module to create ("Create Custom Module": an
 * English letter, then letters, digits and _, at most 50, no __, no
 * trailing _).
 * @function check_api_name
 * @tparam string name
 * @treturn string|nil the name, or nil and an error object (INVALID_DATA,
 * field `api_name`)
 */
static int zc_l_check_api_name(lua_State *L) {
  static const char path[] = "$.modules[0].api_name";
  const char *s, *why;
  size_t len;
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TSTRING) {
    zc_verr(L, "INVALID_DATA", "api_name", "api_name", path, -1,
            "api_name must be a string, got %s", zc_typename(L, 1));
    return zc_fail(L);
  }
  s = lua_tolstring(L, 1, &len);
  if (len > ZC_API_NAME_MAX) {
    zc_verr(L, "INVALID_DATA", "api_name", "api_name", path,
            ZC_API_NAME_MAX, "api_name has %I characters; at most %d allowed",
            (LUAI_UACINT)len, ZC_API_NAME_MAX);
    return zc_fail(L);
  }
  why = zc_api_name_why(s, len);
  if (why) {
    const char *q = zc_pushquoted(L, s, len);
    zc_verr(L, "INVALID_DATA", "api_name", "api_name", path, -1,
            "api_name %s %s", q, why);
    return zc_fail(L);
  }
  return 1;
}

static const char *const zc_display_keys[] = {
  "field_label", "data_type", "auto_number", NULL
};
static const char *const zc_auto_number_keys[] = {
  "start_number", "prefix", "suffix", NULL
};

/* An error for a key of t not in allowed (under `base`, a JSON path);
** 0 when every key is allowed. */
static int zc_unknown_in(lua_State *L, int t, const char *const allowed[],
                         const char *base) {
  int isstr = 0;
  const char *path, *what;
  if (!zc_unknown_key(L, t, allowed, &isstr)) return 0;
  if (isstr) {
    size_t klen;
    const char *k = lua_tolstring(L, -1, &klen);
    what = zc_pushquoted(L, k, klen);
    path = lua_pushfstring(L, "%s.%s", base, strlen(k) == klen ? k : what);
    return zc_verr(L, "INVALID_DATA", strlen(k) == klen ? k : what,
                   strlen(k) == klen ? k : what, path, -1,
                   "unknown key %s in %s", what, base + 13);
  }
  what = lua_tostring(L, -1);
  return zc_verr(L, "INVALID_DATA", what, NULL, NULL, -1,
                 "unknown key %s in %s", what, base + 13);
}

/* Checks t[key] (at stack index t) as text; copies it into out. */
static int zc_display_text(lua_State *L, int t, int out, const char *key,
                           lua_Integer max, int mandatory,
                           const char *base) {
  const char *path = NULL, *why, *s;
  size_t len;
  int type = zc_rawfield(L, t, key);
  if (type == LUA_TNIL && !mandatory) { lua_pop(L, 1); return 0; }
  path = lua_pushfstring(L, "%s.%s", base, key);
  if (type == LUA_TNIL)
    return zc_verr(L, "MANDATORY_NOT_FOUND", key, key, path, -1,
                   "display_field: %s is required", key);
  if (type != LUA_TSTRING)
    return zc_verr(L, "INVALID_DATA", key, key, path, -1,
                   "display_field: %s must be a string, got %s", key,
                   zc_typename(L, -2));
  s = lua_tolstring(L, -2, &len);
  why = zc_text_why(s, len, max, 1);
  if (why)
    return zc_verr(L, "INVALID_DATA", key, key, path,
                   strcmp(why, "is too long") == 0 ? max : -1,
                   "display_field: %s %s (at most %I characters)", key, why,
                   (LUAI_UACINT)max);
  lua_pop(L, 1);
  lua_setfield(L, out, key);
  return 0;
}

/* Checks the auto_number table at idx into a new table on top. */
static int zc_check_auto_number(lua_State *L, int idx) {
  static const char base[] = "$.modules[0].display_field.auto_number";
  int out, type;
  const char *path;
  size_t len, i;
  const char *s;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return zc_verr(L, "INVALID_DATA", "auto_number", "auto_number", base, -1,
                   "display_field: auto_number must be a table, got %s",
                   zc_typename(L, idx));
  if (zc_unknown_in(L, idx, zc_auto_number_keys, base)) return 1;
  lua_newtable(L);
  out = lua_gettop(L);
  type = zc_rawfield(L, idx, "start_number");
  path = lua_pushfstring(L, "%s.start_number", base);
  if (type == LUA_TNIL)
    return zc_verr(L, "MANDATORY_NOT_FOUND", "start_number", "start_number",
                   path, -1, "display_field: auto_number.start_number is "
                   "required");
  if (type == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 0)
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -2));
  else if (type == LUA_TSTRING) lua_pushvalue(L, -2);
  else
    return zc_verr(L, "INVALID_DATA", "start_number", "start_number", path,
                   -1, "display_field: auto_number.start_number must be "
                   "digits, got %s", zc_typename(L, -2));
  s = lua_tolstring(L, -1, &len);
  for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {}
  if (len == 0 || i < len || len > ZC_START_NUMBER_MAX)
    return zc_verr(L, "INVALID_DATA", "start_number", "start_number", path,
                   len > ZC_START_NUMBER_MAX ? ZC_START_NUMBER_MAX : -1,
                   "display_field: auto_number.start_number must be 1 to %d "
                   "digits", ZC_START_NUMBER_MAX);
  lua_setfield(L, out, "start_number");
  lua_pop(L, 2);
  if (zc_display_text(L, idx, out, "prefix", ZC_AFFIX_MAX, 0, base)
      || zc_display_text(L, idx, out, "suffix", ZC_AFFIX_MAX, 0, base))
    return 1;
  return 0;
}

/***
 * Checks a module's display_field ("Create Custom Module": `field_label`
 * of at most 100, `data_type` "text" or "autonumber", `auto_number` {
 * `start_number` digits (at most 16), `prefix`, `suffix` (at most 50) },
 * required for autonumber) and returns a clean copy.
 * @function check_display_field
 * @tparam table display_field
 * @treturn table|nil the clean copy, or nil and an error object
 */
static int zc_l_check_display_field(lua_State *L) {
  static const char base[] = "$.modules[0].display_field";
  int out, type;
  const char *dt = NULL, *path;
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TTABLE) {
    zc_verr(L, "INVALID_DATA", "display_field", "display_field", base, -1,
            "display_field must be a table, got %s", zc_typename(L, 1));
    return zc_fail(L);
  }
  if (zc_unknown_in(L, 1, zc_display_keys, base)) return zc_fail(L);
  lua_newtable(L);
  out = lua_gettop(L);
  if (zc_display_text(L, 1, out, "field_label", ZC_FIELD_LABEL_MAX, 1, base))
    return zc_fail(L);
  type = zc_rawfield(L, 1, "data_type");
  if (type != LUA_TNIL) {
    dt = type == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (dt == NULL || (strcmp(dt, "text") != 0
                       && strcmp(dt, "autonumber") != 0)) {
      path = lua_pushfstring(L, "%s.data_type", base);
      zc_verr(L, "INVALID_DATA", "data_type", "data_type", path, -1,
              "display_field: data_type must be \"text\" or \"autonumber\"");
      return zc_fail(L);
    }
    lua_setfield(L, out, "data_type");
  } else lua_pop(L, 1);
  type = zc_rawfield(L, 1, "auto_number");
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    if (dt && strcmp(dt, "autonumber") == 0) {
      path = lua_pushfstring(L, "%s.auto_number", base);
      zc_verr(L, "DEPENDENT_FIELD_MISSING", "auto_number", "auto_number",
              path, -1, "display_field: auto_number is required when "
              "data_type is \"autonumber\"");
      return zc_fail(L);
    }
  } else {
    if (zc_check_auto_number(L, -1)) return zc_fail(L);
    lua_setfield(L, out, "auto_number");
    lua_pop(L, 1);
  }
  lua_settop(L, out);
  return 1;
}

/* }==== */

/* {==== modules */

/*
** The module path segment ("Update Custom Module": PUT /settings/modules/{module_ID}
** or /{module_API_name}): an id (1-19 digits, see zc_parse_id, or a
** positive Lua integer) or an API name as Zoho has them: a letter, then
** letters, digits and _, at most ZC_MODULE_NAME_MAX. "Modules" (api_name)
** states "no __; no trailing _" for the names a user picks, but names Zoho gives are
** wider: extension modules are namespace__Name
** (zohosign__ZohoSign_Documents) and some system modules end in __s
** (Appointments_Rescheduled_History__s), so neither is refused.
** Zoho documents no length limit for extension names; 100 bounds the
** segment. Every accepted byte is unreserved in a URL path (RFC 3986), so
** the segment needs no escaping and cannot leave its place in the path.
** Fault: INVALID_MODULE with details.resource_path_index = 2, the shape of
** the server's own answer ("Specific Module").
*/

static int zc_module_err(lua_State *L, const char *fmt, const char *arg,
                         const char *tail) {
  lua_pushfstring(L, fmt, arg);
  lua_pushstring(L, tail);
  lua_concat(L, 2);
  zc_error_new(L, "INVALID_MODULE", "validation", 0, "module");
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, 2);
  lua_setfield(L, -2, "resource_path_index");
  lua_setfield(L, -2, "details");
  return zc_fail(L);
}

/* An API name: [A-Za-z][A-Za-z0-9_]{0,99}. */
static int zc_module_name_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len > ZC_MODULE_NAME_MAX) return 0;
  if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
    return 0;
  for (i = 1; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  return 1;
}

/***
 * Returns the module path segment: an id as its decimal string, or the API
 * name.
 * @function check_module
 * @tparam string|integer module id (string of digits or integer) or API name
 * @treturn string|nil the segment, or nil and an error object
 */
static int zc_l_check_module(lua_State *L) {
  static const char rule[] = " is not a module id (1 to 19 digits) or API "
    "name (a letter, then letters, digits or _, at most 100)";
  int t = lua_type(L, 1);
  lua_settop(L, 1);
  if (t == LUA_TNUMBER) {
    if (!lua_isinteger(L, 1))
      return zc_module_err(L, "module id must be an integer, not the float %s",
                           luaL_tolstring(L, 1, NULL), "");
    if (lua_tointeger(L, 1) <= 0)
      return zc_module_err(L, "module id %s must be positive",
                           luaL_tolstring(L, 1, NULL), "");
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, 1));
    return 1;
  }
  if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    unsigned long long v;
    if (len > 0 && s[0] >= '0' && s[0] <= '9') {
      const char *why = zc_parse_id(s, len, &v);
      if (why) {
        const char *q = zc_pushquoted(L, s, len);
        return zc_module_err(L, "module id %s ", q, why);
      }
      lua_pushvalue(L, 1);
      return 1;
    }
    if (!zc_module_name_ok(s, len)) {
      const char *q = zc_pushquoted(L, s, len);
      return zc_module_err(L, "module %s", q, rule);
    }
    lua_pushvalue(L, 1);
    return 1;
  }
  {
    const char *what = lua_pushfstring(L, "(a %s)", zc_typename(L, 1));
    return zc_module_err(L, "module %s", what, rule);
  }
}

/* }==== */

/* {==== base URLs and tokens */

static int zc_url_err(lua_State *L, const char *why) {
  lua_pushfstring(L, "invalid base URL: %s", why);
  zc_error_new(L, "INVALID_URL", "config", 0, NULL);
  return zc_fail(L);
}

static int zc_lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int zc_ieq(const char *a, size_t alen, const char *b) {
  size_t i;
  if (alen != strlen(b)) return 0;
  for (i = 0; i < alen; i++)
    if (zc_lower((unsigned char)a[i]) != b[i]) return 0;
  return 1;
}

/* True when `needle` occurs in (s, len), ignoring ASCII case. */
static int zc_icontains(const char *s, size_t len, const char *needle) {
  size_t n = strlen(needle), i, j;
  for (i = 0; n <= len && i <= len - n; i++) {
    for (j = 0; j < n; j++)
      if (zc_lower((unsigned char)s[i + j]) != zc_lower((unsigned char)needle[j]))
        break;
    if (j == n) return 1;
  }
  return 0;
}

/* Loopback for plain http: 127.0.0.0/8, ::1, localhost: the forms the
** no-proxy list of every transfer provably covers. IPv4-mapped forms
** ([::ffff:127.0.0.1], [::ffff:7f00:1]) are loopback too, but libcurl 7.88
** does not match them against ::ffff:127.0.0.0/104 in CURLOPT_NOPROXY, so
** a request to one went to http_proxy with its token: they need https.
** `host` is libcurl's parse of it (an IPv6 address without brackets). */
static int zc_is_loopback(const char *host, int bracketed) {
  if (bracketed) {
    unsigned char a[16];
    static const unsigned char one[16] = { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 };
    if (inet_pton(AF_INET6, host, a) != 1) return 0;
    return memcmp(a, one, 16) == 0;
  }
  else {
    unsigned char a[4];
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    return zc_ieq(host, strlen(host), "localhost");
  }
}

/* The parts of a base URL, as libcurl's URL parser (the one that will
** build every request) reads it. Strings are libcurl's, freed by
** zc_url_parts_free; NULL when the part is absent. */
typedef struct zc_url_parts {
  char *scheme, *host, *port, *path, *query, *fragment, *user, *password,
       *zoneid;
} zc_url_parts;

static void zc_url_parts_free(zc_url_parts *p) {
  curl_free(p->scheme); curl_free(p->host); curl_free(p->port);
  curl_free(p->path); curl_free(p->query); curl_free(p->fragment);
  curl_free(p->user); curl_free(p->password); curl_free(p->zoneid);
}

/* Parses s with curl_url(); returns NULL, or why it is no URL. Makes no Lua
** call: the caller frees *p before raising anything. */
static const char *zc_url_parse(const char *s, zc_url_parts *p) {
  CURLU *u = curl_url();
  CURLUcode rc;
  const char *why = NULL;
  memset(p, 0, sizeof *p);
  if (u == NULL) return "out of memory";
  rc = curl_url_set(u, CURLUPART_URL, s, CURLU_PATH_AS_IS);
  switch (rc) {
    case CURLUE_OK: break;
    case CURLUE_BAD_SCHEME: case CURLUE_UNSUPPORTED_SCHEME:
    case CURLUE_BAD_SLASHES:
      why = "it must start with https:// (or http:// for a loopback host)";
      break;
    case CURLUE_NO_HOST: why = "the host is empty"; break;
    case CURLUE_BAD_PORT_NUMBER: why = "the port must be 1 to 65535"; break;
    case CURLUE_BAD_IPV6: why = "invalid [IPv6] host"; break;
    case CURLUE_BAD_HOSTNAME:
      why = "the host name may contain only letters, digits, '-' and '.'";
      break;
    case CURLUE_BAD_LOGIN: case CURLUE_BAD_USER: case CURLUE_BAD_PASSWORD:
      why = "it must not contain user info (user@ or user:password@)";
      break;
    case CURLUE_OUT_OF_MEMORY: why = "out of memory"; break;
    default: why = "it is not a URL of the form https://host[:port]"; break;
  }
  if (why == NULL) {
    curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &p->host, 0);
    curl_url_get(u, CURLUPART_PORT, &p->port, 0);
    curl_url_get(u, CURLUPART_PATH, &p->path, 0);
    curl_url_get(u, CURLUPART_QUERY, &p->query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &p->fragment, 0);
    curl_url_get(u, CURLUPART_USER, &p->user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &p->password, 0);
    curl_url_get(u, CURLUPART_ZONEID, &p->zoneid, 0);
    if (p->scheme == NULL || p->host == NULL || p->path == NULL)
      why = "out of memory";
  }
  curl_url_cleanup(u);
  return why;
}

/* What zcrm refuses in a URL libcurl accepts; NULL when it is a base URL.
** *https and *bracketed describe it. */
static const char *zc_base_url_why(const zc_url_parts *p, int *https,
                                   int *bracketed) {
  size_t hlen = strlen(p->host), i;
  if (strcmp(p->scheme, "https") == 0) *https = 1;
  else if (strcmp(p->scheme, "http") == 0) *https = 0;
  else return "it must start with https:// (or http:// for a loopback host)";
  if (p->user || p->password)
    return "it must not contain user info (user@ or user:password@)";
  if (p->query) return "it must not have a query or fragment";
  if (p->fragment) return "it must not have a query or fragment";
  if (strcmp(p->path, "/") != 0)
    return "it must not have a path (give only scheme://host[:port])";
  if (p->port && strcmp(p->port, "0") == 0)
    return "the port must be 1 to 65535";
  *bracketed = hlen >= 2 && p->host[0] == '[';
  if (*bracketed) {
    if (p->zoneid) return "invalid [IPv6] host (no zone id)";
    return NULL;
  }
  if (hlen == 0) return "the host is empty";
  if (hlen > 253) return "the host name is too long";
  for (i = 0; i < hlen; i++) {
    char c = p->host[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z') || c == '-' || c == '.'))
      return "the host name may contain only letters, digits, '-' and '.'";
  }
  return NULL;
}

/***
 * Checks and normalises an API base URL (`https://host[:port]`, or
 * `http://` with a loopback host), as libcurl's URL parser reads it.
 * @function check_base_url
 * @tparam string url
 * @treturn string|nil the URL `scheme://host[:port]` (scheme and host
 *   lower-cased, a numeric IPv4 host in dotted form), or nil and an error
 */
static int zc_l_check_base_url(lua_State *L) {
  size_t len, i;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *why;
  zc_url_parts p;
  int https = 0, bracketed = 0, loopback = 0;
  luaL_Buffer b;
  /* Never echo the URL: it may carry a password in its user info. */
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r' || c == '\n' || c == '\0')
      return zc_url_err(L, "it contains CR, LF or NUL");
    if (c <= 0x20 || c >= 0x7f)
      return zc_url_err(L, "it contains a space, control character or "
                           "non-ASCII byte (use the punycode host name)");
  }
  why = zc_url_parse(s, &p);
  if (why == NULL) why = zc_base_url_why(&p, &https, &bracketed);
  if (why == NULL) {
    if (bracketed) {                          /* "[::1]" -> "::1" */
      size_t hl = strlen(p.host) - 2;
      memmove(p.host, p.host + 1, hl);
      p.host[hl] = '\0';
    }
    loopback = zc_is_loopback(p.host, bracketed);
    if (!bracketed && !zc_icontains(s, len, p.host)) {
      /* libcurl rewrote a numeric host ("127.1", "0x7f000001",
      ** "2130706433" are 127.0.0.1 to it): only the plain form is taken,
      ** so what the user reads is where zcrm connects. */
      loopback = 0;
      if (https) why = "a numeric host must be written as a dotted IPv4 "
                       "address (a.b.c.d)";
    }
    if (!why && !https && !loopback)
      why = "plain http:// is allowed only for a loopback host "
            "(127.0.0.0/8, [::1], localhost); use https://";
  }
  if (why) {
    zc_url_parts_free(&p);
    return zc_url_err(L, why);
  }
  /* No Lua call can raise while p is held: copy the result into a
  ** buffer on the C stack first. */
  {
    char out[300];
    int n = snprintf(out, sizeof out, "%s://%s%s%s%s%s", p.scheme,
                     bracketed ? "[" : "", p.host, bracketed ? "]" : "",
                     p.port ? ":" : "", p.port ? p.port : "");
    zc_url_parts_free(&p);
    if (n < 0 || (size_t)n >= sizeof out)
      return zc_url_err(L, "the host name is too long");
    luaL_buffinit(L, &b);
    for (i = 0; i < (size_t)n; i++)
      luaL_addchar(&b, (char)zc_lower((unsigned char)out[i]));
    luaL_pushresult(&b);
  }
  return 1;
}

/***
 * Checks a token's format (a token containing CR, LF, NUL or spaces is
 * refused before any request): a non-empty string of
 * printable ASCII without spaces. The message names `what`, never the value.
 * @function check_token
 * @tparam string s the token
 * @tparam[opt="token"] string what its name for messages
 * @treturn true|nil true, or nil and an error object
 */
static int zc_l_check_token(lua_State *L) {
  const char *what = luaL_optstring(L, 2, "token");
  const char *why = NULL;
  size_t len = 0, i;
  if (lua_type(L, 1) != LUA_TSTRING)
    lua_pushfstring(L, "%s must be a string, got %s", what,
                    zc_typename(L, 1));
  else {
    const char *s = lua_tolstring(L, 1, &len);
    if (len == 0) why = "is empty";
    else if (len > ZC_TOKEN_MAX) why = "is longer than 4096 bytes";
    for (i = 0; !why && i < len; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '\r' || c == '\n') why = "contains CR or LF";
      else if (c == '\0') why = "contains NUL";
      else if (c == ' ' || c == '\t') why = "contains a space";
      else if (c < 0x20 || c >= 0x7f)
        why = "contains a byte that is not printable ASCII";
    }
    if (!why) {
      lua_pushboolean(L, 1);
      return 1;
    }
    lua_pushfstring(L, "%s %s", what, why);
  }
  zc_error_new(L, "INVALID_TOKEN_FORMAT", "config", 0, NULL);
  return zc_fail(L);
}

/***
 * Percent-encodes a string for a URL query or form body (RFC 3986: all but
 * unreserved characters A-Z a-z 0-9 - . _ ~).
 * @function url_escape
 * @tparam string s
 * @treturn string
 */
static int zc_l_url_escape(lua_State *L) {
  static const char hex[] = "0123456789ABCDEF";
  size_t len, i;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~')
      luaL_addchar(&b, (char)c);
    else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* }==== */

void zc_open_validate(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "prepare_update", zc_l_prepare_update },
    { "validate_update", zc_l_validate_update },
    { "check_module", zc_l_check_module },
    { "check_api_name", zc_l_check_api_name },
    { "label_key", zc_l_label_key },
    { "check_display_field", zc_l_check_display_field },
    { "check_base_url", zc_l_check_base_url },
    { "check_token", zc_l_check_token },
    { "url_escape", zc_l_url_escape },
    { NULL, NULL }
  };
  luaL_setfuncs(L, funcs, 0);
  /* The JSON null: the same light userdata (NULL) as cjson.null. */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}
