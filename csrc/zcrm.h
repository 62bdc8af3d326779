/*
** zcrm.h: internal header of the C core (`zcrm.core`).
**
** Nothing declared here is exported: the Makefile compiles with
** -fvisibility=hidden, and the only symbol marked ZCRM_API is
** luaopen_zcrm_core (core.c). See csrc/API.md for the Lua-facing contract.
*/
#ifndef ZCRM_H
#define ZCRM_H

#include <stddef.h>

#include <curl/curl.h>

#include "lua.h"
#include "lauxlib.h"

#if defined(__GNUC__) || defined(__clang__)
#define ZCRM_API __attribute__((visibility("default")))
#else
#define ZCRM_API
#endif

#define ZCRM_CORE_VERSION "zcrm.core 0.1.0"

#define ZC_ERROR_MT   "zcrm.error"
#define ZC_MULTI_MT   "zcrm.multi"
#define ZC_TRANSFER_MT "zcrm.transfer"

/* {==== error.c */

/* One entry of the catalogue (errors.h). status 0: no HTTP status. */
typedef struct zc_catentry {
  const char *code;
  int status;
  const char *kind;
  int retryable;
  const char *message;
  const char *resolution;
} zc_catentry;

const zc_catentry *zc_catalogue_find(const char *code);

/*
** Pops the message on top of the stack (a string, or nil for the catalogue's
** message) and pushes a new error object. kind NULL: from the catalogue
** (unknown codes: "api"); retryable: from the catalogue (unknown codes:
** status 429 or >= 500), always false for kind "validation". status 0 means
** none. field may be NULL.
*/
void zc_error_new(lua_State *L, const char *code, const char *kind,
                  int status, const char *field);

/* Sets err.details = { api_name =, json_path = [, maximum_length =] } on
** the error object on top of the stack; maxlen < 0: no maximum_length. */
void zc_error_details(lua_State *L, const char *api_name,
                      const char *json_path, lua_Integer maxlen);

/* Error object on top -> pushes nil below it; returns 2 (for `return`). */
int zc_fail(lua_State *L);

void zc_open_error(lua_State *L);     /* adds error, is_error, catalogue */
/* }==== */

/* {==== sys.c */
int zc_open_sys(lua_State *L);        /* now, sleep, fsync, file_mode, ... */
/* }==== */

/* {==== proc.c */
void zc_open_proc(lua_State *L);       /* catch_interrupts, interrupted, exec */
/* }==== */

/* {==== validate.c */
void zc_open_validate(lua_State *L);  /* null, prepare_update, ... */
/* }==== */

/* {==== transport: multi.c (CURLM) and transfer.c (CURL easy) */

/* A growable byte buffer with a hard cap (malloc'd; owned by a userdata). */
typedef struct zc_buf {
  char *data;
  size_t len, cap;
} zc_buf;

struct zc_request;
struct pollfd;

typedef struct zc_multi {
  CURLM *multi;                   /* NULL: closed (or not yet initialised) */
  CURLSH *share;
  struct zc_request *running;     /* requests added to `multi`, linked */
  int nrunning;
  size_t max_response_bytes;
  int verbose;
  /* The socket interface (multi.c): written only by the libcurl socket and
  ** timer callbacks, which make no Lua call. */
  int epfd;                       /* epoll descriptor (Linux); -1: none */
  struct pollfd *socks;           /* the sockets libcurl watches (malloc'd) */
  int nsocks, capsocks;
  int timer_set;                  /* libcurl wants a timeout call ... */
  double timer_at;                /* ... at this monotonic time (ms) */
  int oom;                        /* a callback could not allocate */
} zc_multi;

enum { ZC_IDLE = 0, ZC_RUNNING, ZC_DONE, ZC_CANCELLED };

typedef struct zc_request {
  CURL *easy;                     /* NULL unless running */
  struct curl_slist *headers;
  zc_multi *multi;                /* set only while running */
  struct zc_request *prev, *next; /* in multi->running */
  int state;
  int detached;                   /* cancelled because its multi closed */
  int too_large;                  /* the body or headers hit their cap */
  int oom;                        /* malloc failed in a libcurl callback */
  int body_cached;                /* body moved to user value 1 */
  CURLcode result;
  long status;
  long http_version;
  size_t max_bytes;
  curl_off_t total_us, connect_us, starttransfer_us;
  zc_buf body, head;
  char errbuf[CURL_ERROR_SIZE];
} zc_request;

/* transfer.c */
int zc_multi_start(lua_State *L);             /* multi:start{...} */
void zc_request_finish(zc_request *r, CURLcode rc);
void zc_request_detach(zc_request *r);        /* its multi is closing */
void zc_open_request(lua_State *L);           /* registers the metatable */

/* multi.c */
zc_multi *zc_multi_check(lua_State *L, int idx);
void zc_open_client(lua_State *L);            /* new_multi + metatable */
/* }==== */

#endif
