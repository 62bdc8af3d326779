/*
** transfer.h: transfer.c, `zcrm.transfer`, one transfer on a libcurl easy
** handle, and the pool of transfers a multi runs (zc_pool). Calls error.c
** and headers.c; multi.c calls it, never the other way round: a transfer
** reaches its multi only through the pool below and the multi userdata's
** user values.
*/
#ifndef ZCRM_TRANSFER_H
#define ZCRM_TRANSFER_H

#include <curl/curl.h>

#include "zcrm.h"
#include "headers.h"

#define ZC_TRANSFER_MT "zcrm.transfer"

/* User values of a multi userdata (multi.c makes them; a transfer reads the
** options when it starts and the anchors when it is cancelled). */
#define ZC_MULTI_ANCHORS 1      /* running transfers, keyed by their C struct */
#define ZC_MULTI_OPTIONS 2      /* { ca_file =, proxy =, user_agent = } */

/* User values of a transfer userdata. */
#define ZC_TRANSFER_BODY 1      /* the request body, later the received one */
#define ZC_TRANSFER_OWNER 2     /* its multi userdata, while running */

/* A growable byte buffer with a hard cap (malloc'd; owned by a userdata). */
typedef struct zc_buf {
  char *data;
  size_t len, cap;
} zc_buf;

struct zc_request;

/* Easy handles a pool keeps, reset, for its next requests. */
#define ZC_SPARE_EASY 16

/* What the transfers of one multi share: multi.c embeds it in its userdata
** and owns `multi` and `share` (made and cleaned up there); transfer.c adds
** and removes easy handles and keeps the running list and the spares. */
typedef struct zc_pool {
  CURLM *multi;                   /* NULL: closed (or not yet initialised) */
  CURLSH *share;
  struct zc_request *running;     /* requests added to `multi`, linked */
  int nrunning;
  size_t max_response_bytes;
  int verbose;
  CURL *spare[ZC_SPARE_EASY];     /* finished handles, curl_easy_reset */
  int nspare;
} zc_pool;

enum { ZC_IDLE = 0, ZC_RUNNING, ZC_DONE, ZC_CANCELLED };

typedef struct zc_request {
  CURL *easy;                     /* NULL unless running */
  struct curl_slist *headers;
  zc_hlist *hlist;                /* a shared list in use (one reference) */
  zc_pool *pool;                  /* set only while running */
  struct zc_request *prev, *next; /* in pool->running */
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

/* multi:start{...}, with the (checked, open) multi userdata at index 1 and
** its pool p: returns a transfer, or nil and an error object. */
int zc_transfer_start(lua_State *L, zc_pool *p);

/* A transfer libcurl reported done (curl_multi_info_read): copies its facts
** out and gives its easy handle back to the pool. */
void zc_transfer_finish(zc_request *r, CURLcode rc);

/* The multi is closing: cancels every running transfer (result() gives
** CANCELLED) and frees the spare handles. Call before curl_multi_cleanup. */
void zc_pool_release(zc_pool *p);

void zc_open_transfer(lua_State *L);          /* registers the metatable */

#endif
