/*
** fuzz_lua.h: what the Lua-state-driven fuzz targets share.
**
** - One lua_State per process, with zcrm.core linked in (instrumented) and
**   preloaded, so `require "zcrm.core"` finds it without a .so.
** - An allocator that can be told to fail the Nth allocation (that one
**   only, so what the caller does next is checked too): the core
**   promises that out of memory raises "not enough memory" and leaks
**   nothing (csrc/API.md), and LSan checks the second half.
** - A decoder that turns fuzz bytes into a Lua value (zf_push_value), so the
**   validator sees tables of any shape, with the keys it cares about often.
** - Lua line coverage as libFuzzer extra counters, for targets whose logic
**   is Lua code (the idea of atheris' Python coverage).
**
** - The libFuzzer entry points' declarations, and zf_run_input, the body
**   of LLVMFuzzerTestOneInput for a target that decodes its bytes in C.
** - zf_init_driver and zf_run_driver, the bodies of both entry points for a
**   target whose logic is a Lua driver file (fuzz/undo_driver.lua, say).
**
** A target includes this file once, defines LLVMFuzzerInitialize (calling
** zf_init(), then zf_ref_chunk() for its checker, or zf_init_driver()) and
** LLVMFuzzerTestOneInput (zf_run_input() or zf_run_driver(), or its own
** call and zf_finish_input() at the end of each input).
*/
#ifndef ZCRM_FUZZ_LUA_H
#define ZCRM_FUZZ_LUA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef ZCRM_ROOT
#define ZCRM_ROOT "."
#endif

int luaopen_zcrm_core (lua_State *L);
int luaopen_zcrm_proc (lua_State *L);

/* libFuzzer calls these; declared here so that each target only defines them */
int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* {==================================================================
** Byte reader: never fails; past the end it reads zeros.
** =================================================================== */

typedef struct zf_in {
  const uint8_t *p;
  size_t n, i;
  size_t budget;                  /* bytes the long runs (tag 11) may still make */
} zf_in;

#define ZF_BUDGET ((size_t)1 << 20)

static void zf_in_init (zf_in *in, const uint8_t *data, size_t size) {
  in->p = data;
  in->n = size;
  in->i = 0;
  in->budget = ZF_BUDGET;
}

static uint8_t zf_u8 (zf_in *in) {
  return in->i < in->n ? in->p[in->i++] : 0;
}

static uint64_t zf_u64 (zf_in *in) {
  uint64_t v = 0;
  int k;
  for (k = 0; k < 8; k++) v |= (uint64_t)zf_u8(in) << (8 * k);
  return v;
}

/* Up to `len` bytes from the input (fewer at its end). */
static const char *zf_bytes (zf_in *in, size_t len, size_t *got) {
  const char *s = (const char *)in->p + in->i;
  if (len > in->n - in->i) len = in->n - in->i;
  in->i += len;
  *got = len;
  return s;
}

/* A length: one byte, or 255 then two more bytes (up to 65,535 + 255). */
static size_t zf_len (zf_in *in) {
  size_t n = zf_u8(in);
  if (n == 255) n += (size_t)zf_u8(in) | ((size_t)zf_u8(in) << 8);
  return n;
}

/* }================================================================== */


/* {==================================================================
** Allocator with failure injection
** =================================================================== */

static long zf_fail_countdown = -1;   /* -1: never fail */
static size_t zf_heap, zf_heap_cap = (size_t)256 << 20;

static void *zf_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    zf_heap -= osize;
    return NULL;
  }
  if (nsize > osize) {
    /* one failure, then memory again: the caller's recovery gets checked */
    if (zf_fail_countdown == 0) { zf_fail_countdown = -1; return NULL; }
    if (zf_fail_countdown > 0) zf_fail_countdown--;
    if (zf_heap - osize + nsize > zf_heap_cap) return NULL;
  }
  ptr = realloc(ptr, nsize);
  if (ptr) zf_heap = zf_heap - osize + nsize;
  return ptr;
}

/* }================================================================== */


/* {==================================================================
** Lua line coverage as libFuzzer extra counters
** =================================================================== */

#define ZF_LUA_COV 65536
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t zf_lua_cov[ZF_LUA_COV];
static uint32_t zf_prev_loc;

static void zf_line_hook (lua_State *L, lua_Debug *ar) {
  uint32_t h;
  const char *s;
  if (!lua_getinfo(L, "S", ar)) return;
  s = ar->source;
  if (s[0] != '@' || strstr(s, "zcrm") == NULL) return;   /* zcrm's own files */
  h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  h ^= (uint32_t)ar->currentline * 2654435761u;
  /* edge-like: the pair (previous line, this line) */
  zf_lua_cov[(h ^ (zf_prev_loc >> 1)) % ZF_LUA_COV]++;
  zf_prev_loc = h;
}

/* }================================================================== */


/* {==================================================================
** The state
** =================================================================== */

static lua_State *zf_L;

/* Fails the test: a broken invariant is a finding, like a crash. */
static void zf_die (lua_State *L, const char *what) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "zcrm fuzz: %s: %s\n", what, msg ? msg : "(no message)");
  abort();
}

static lua_State *zf_init (int lua_coverage) {
  lua_State *L = lua_newstate(zf_alloc, NULL);
  if (L == NULL) abort();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_zcrm_core);
  lua_setfield(L, -2, "zcrm.core");
  lua_pushcfunction(L, luaopen_zcrm_proc);   /* the CLI's (changes_driver) */
  lua_setfield(L, -2, "zcrm.proc");
  lua_pop(L, 1);
  /* the checkout's Lua layer, then the system's (cjson) */
  if (luaL_dostring(L,
        "package.path = '" ZCRM_ROOT "/lua/?.lua;" ZCRM_ROOT "/lua/?/init.lua;'"
        " .. package.path"))
    zf_die(L, "package.path");
  if (lua_coverage) lua_sethook(L, zf_line_hook, LUA_MASKLINE, 0);
  zf_L = L;
  return L;
}

/* After each input: an empty stack, a full collection (so __gc runs for
** everything the input made and libFuzzer's malloc/free balance means
** something), no injected failure pending. */
static void zf_finish_input (lua_State *L) {
  zf_fail_countdown = -1;
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
}

/* Run a Lua chunk once (the text `src`, or the file `path` when src is
** NULL) and keep its one result in the registry: returns the ref. */
static inline int zf_ref_chunk (lua_State *L, const char *src, const char *path) {
  int rc = src ? luaL_loadstring(L, src) : luaL_loadfile(L, path);
  if (rc != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    zf_die(L, src ? "loading the target's chunk" : path);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* One input: run(L) in a pcall, with a zf_in over the bytes as its one
** argument (a light userdata), then zf_finish_input. An error is a finding
** unless it is the memory error of an injected allocation failure. */
static inline int zf_run_input (lua_CFunction run, const uint8_t *data, size_t size) {
  lua_State *L = zf_L;
  zf_in in;
  zf_in_init(&in, data, size);
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, &in);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || strstr(msg, "not enough memory") == NULL)
      zf_die(L, "contract broken");
  }
  zf_finish_input(L);
  return 0;
}

/* }================================================================== */


/* {==================================================================
** Targets whose logic is a Lua driver file: the file returns a function
** that gets each input as a string and raises when a check fails.
** =================================================================== */

static int zf_driver_ref = LUA_NOREF;

/* The body of LLVMFuzzerInitialize: loads the driver at `path`, then turns
** Lua line coverage on (loading the modules is the same each time). */
static inline void zf_init_driver (const char *path) {
  lua_State *L = zf_init(0);
  zf_driver_ref = zf_ref_chunk(L, NULL, path);
  lua_sethook(L, zf_line_hook, LUA_MASKLINE, 0);
}

/* The body of LLVMFuzzerTestOneInput: the driver on the bytes; any error
** is a finding. */
static inline int zf_run_driver (const uint8_t *data, size_t size) {
  lua_State *L = zf_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, zf_driver_ref);
  lua_pushlstring(L, (const char *)data, size);
  zf_prev_loc = 0;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) zf_die(L, "contract broken");
  zf_finish_input(L);
  return 0;
}

/* }================================================================== */


/* {==================================================================
** Fuzz bytes -> a Lua value
**
** tag byte % 12:
**   0 nil   1 true   2 false   3 null (the light userdata NULL = cjson.null)
**   4 integer (8 bytes)   5 small integer (1 signed byte)   6 float (8 bytes)
**   7 string (zf_len bytes)   8 a word from zf_words   9 table of n pairs
**   10 list of n values   11 a run: zf_len x 4 copies of one byte (long strings)
** =================================================================== */

static const char *const zf_words[] = {
  "plural_label", "singular_label", "profiles", "id", "name", "_delete",
  "api_name", "access_type", "2423488000000015972", "2423488000000015975",
  "2423488000000834002", "Digital_Marketing", "Digital Marketings",
  "Digital Marketing", "Administrator", "Standard", "9223372036854775807",
  "9223372036854775808", "0", "01", "", " ", "Leads", "Bulk_Module_1",
  "\xc3\x89quipes", "\xe9\xa1\xa7\xe5\xae\xa2\xe7\xae\xa1\xe7\x90\x86",
  "\xe0\xa4\xb9\xe0\xa4\xbf", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
  "\xe2\x80\x8b", "\xe2\x80\xae", "\xf0\x9f\x98\x80", "\r\n", "\0",
  "https://www.zohoapis.com", "http://127.0.0.1:8089", "http://[::1]:1",
  "http://localhost", "code", "status", "message", "details",
};
#define ZF_NWORDS (sizeof zf_words / sizeof zf_words[0])

static inline void zf_push_value (lua_State *L, zf_in *in, int depth) {
  uint8_t tag = zf_u8(in) % 12;
  if (depth > 6 && (tag == 9 || tag == 10)) tag = 7;
  switch (tag) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, 1); break;
    case 2: lua_pushboolean(L, 0); break;
    case 3: lua_pushlightuserdata(L, NULL); break;
    case 4: lua_pushinteger(L, (lua_Integer)zf_u64(in)); break;
    case 5: lua_pushinteger(L, (int8_t)zf_u8(in)); break;
    case 6: {
      uint64_t bits = zf_u64(in);
      double d;
      memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case 7: {
      size_t got;
      const char *s = zf_bytes(in, zf_len(in), &got);
      lua_pushlstring(L, s, got);
      break;
    }
    case 8: lua_pushstring(L, zf_words[zf_u8(in) % ZF_NWORDS]); break;
    case 9: case 10: {
      int n = zf_u8(in) % 16, k;
      lua_createtable(L, 0, 0);
      for (k = 1; k <= n && in->i < in->n; k++) {
        if (tag == 9) {
          zf_push_value(L, in, depth + 1);
          if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER
                                   && lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
            lua_pop(L, 1);                    /* nil and NaN keys: skip */
            zf_push_value(L, in, depth + 1);
            lua_pop(L, 1);
            continue;
          }
        } else lua_pushinteger(L, k);
        zf_push_value(L, in, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    default: {                    /* up to 256 KiB, 1 MiB per input in all */
      size_t n = zf_len(in) * 4;
      uint8_t c = zf_u8(in);
      if (n > in->budget) n = in->budget;
      in->budget -= n;
      luaL_Buffer b;
      memset(luaL_buffinitsize(L, &b, n), c, n);
      luaL_pushresultsize(&b, n);
    }
  }
}

/* }================================================================== */

#endif
