/*
** transfer.c: `zcrm.transfer`, one transfer on a libcurl easy handle.
**
** - The userdata is created (zeroed, metatable set, state ZC_IDLE) before
**   curl_easy_init; everything malloc'd afterwards (easy handle, header
**   list, buffers) is owned by it and freed by its __gc, so a Lua error at
**   any point leaks nothing.
** - User value 1 (ZC_TRANSFER_BODY): the request body (a Lua string
**   libcurl reads through CURLOPT_POSTFIELDS, kept alive here), later the
**   received body string. User value 2 (ZC_TRANSFER_OWNER): the multi
**   userdata while running (cancel() needs its anchor table).
** - The multi is known only as its pool (transfer.h) and its userdata's
**   user values: multi.c calls this unit, this unit never calls multi.c.
** - The write and header callbacks only copy bytes into C buffers with a
**   cap; they never call Lua.
** - On completion (zc_request_finish) the facts are copied out and the easy
**   handle is cleaned up at once, so a done request holds no libcurl state.
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "headers.h"
#include "transfer.h"

/* libcurl caps one header line at 100 KiB; we cap all of them together. */
#define ZC_MAX_HEADER_BYTES (256u * 1024u)
#define ZC_DEFAULT_TIMEOUT 30.0
#define ZC_DEFAULT_CONNECT_TIMEOUT 10.0

static zc_request *zc_request_check(lua_State *L, int idx) {
  return (zc_request *)luaL_checkudata(L, idx, ZC_TRANSFER_MT);
}

/* {==== buffers and libcurl callbacks (C only: no Lua calls here) */

/* Appends n bytes, growing geometrically, never beyond `max`. Returns 0, or
** -1 with *too_large or *oom set. */
static int zc_buf_add(zc_buf *b, const char *p, size_t n, size_t max,
                      int *too_large, int *oom) {
  if (n > max || b->len > max - n) {
    *too_large = 1;
    return -1;
  }
  if (b->len + n > b->cap) {
    size_t ncap = b->cap ? b->cap : 1024;
    char *np;
    while (ncap < b->len + n) ncap = ncap > max / 2 ? max : ncap * 2;
    np = (char *)realloc(b->data, ncap);
    if (np == NULL) {
      *oom = 1;
      return -1;
    }
    b->data = np;
    b->cap = ncap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void zc_buf_free(zc_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static size_t zc_write_cb(char *p, size_t size, size_t nmemb, void *ud) {
  zc_request *r = (zc_request *)ud;
  size_t n = size * nmemb;
  if (zc_buf_add(&r->body, p, n, r->max_bytes, &r->too_large, &r->oom))
    return 0;                     /* != n: CURLE_WRITE_ERROR */
  return n;
}

static size_t zc_header_cb(char *p, size_t size, size_t nitems, void *ud) {
  zc_request *r = (zc_request *)ud;
  size_t n = size * nitems;
  /* A status line starts a new response (after a 1xx or a proxy's CONNECT
  ** answer): keep only the headers of the last one. */
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (zc_buf_add(&r->head, p, n, ZC_MAX_HEADER_BYTES, &r->too_large,
                 &r->oom))
    return 0;
  return n;
}

/* verbose = true: the exchange on stderr, with credentials redacted. */
static int zc_debug_cb(CURL *easy, curl_infotype type, char *data,
                       size_t size, void *ud) {
  const char *prefix;
  size_t i = 0;
  (void)easy;
  (void)ud;
  switch (type) {
    case CURLINFO_TEXT: prefix = "* "; break;
    case CURLINFO_HEADER_IN: prefix = "< "; break;
    case CURLINFO_HEADER_OUT: prefix = "> "; break;
    default: return 0;            /* bodies and TLS data: not shown */
  }
  while (i < size) {
    size_t j = i, k;
    while (j < size && data[j] != '\n') j++;
    k = j;
    while (k > i && (data[k - 1] == '\r')) k--;
    if (k > i) {
      static const char *const secret[] = {
        "authorization:", "proxy-authorization:", "cookie:", "set-cookie:",
        NULL
      };
      int s, hide = 0;
      for (s = 0; secret[s] && !hide; s++) {
        size_t sl = strlen(secret[s]), c;
        if (k - i < sl) continue;
        for (c = 0; c < sl; c++) {
          char ch = data[i + c];
          if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
          if (ch != secret[s][c]) break;
        }
        if (c == sl) {
          fprintf(stderr, "%s%.*s <redacted>\n", prefix, (int)sl, data + i);
          hide = 1;
        }
      }
      if (!hide) {                /* query strings may hold tokens (revoke) */
        size_t c = i;
        fputs(prefix, stderr);
        while (c < k) {
          if (data[c] == '?') {
            fputs("?<redacted>", stderr);
            while (c < k && data[c] != ' ') c++;
          }
          else fputc(data[c++], stderr);
        }
        fputc('\n', stderr);
      }
    }
    i = j + 1;
  }
  return 0;
}

/* }==== */

/* {==== release, finish, detach */

/* Removes the transfer from its multi and frees all libcurl state. The
** easy handle of a completed transfer goes back to its open multi, reset
** (curl_easy_reset: options to their defaults; connections live in the
** multi either way), for the next request to use instead of a new one. */
static void zc_request_release(zc_request *r, int state) {
  zc_pool *p = r->pool;
  if (p) {
    if (r->prev) r->prev->next = r->next;
    else p->running = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    p->nrunning--;
    if (p->multi && r->easy) curl_multi_remove_handle(p->multi, r->easy);
    r->pool = NULL;
  }
  if (r->easy) {
    if (state == ZC_DONE && p && p->multi && p->nspare < ZC_SPARE_EASY) {
      curl_easy_reset(r->easy);
      p->spare[p->nspare++] = r->easy;
    }
    else curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  zc_hlist_unref(r->hlist);       /* libcurl no longer holds the handle */
  r->hlist = NULL;
  r->state = state;
}

void zc_transfer_finish(zc_request *r, CURLcode rc) {
  long v = 0;
  curl_off_t t = 0;
  r->result = rc;
  if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &v) == CURLE_OK)
    r->status = v;
  if (curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v) == CURLE_OK)
    r->http_version = v;
  if (curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
    r->total_us = t;
  if (curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK)
    r->connect_us = t;
  if (curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &t) ==
      CURLE_OK)
    r->starttransfer_us = t;
  zc_request_release(r, ZC_DONE);
}

static void zc_request_detach(zc_request *r) {
  r->detached = 1;
  zc_request_release(r, ZC_CANCELLED);
  zc_buf_free(&r->body);
  zc_buf_free(&r->head);
}

void zc_pool_release(zc_pool *p) {
  while (p->running) zc_request_detach(p->running);   /* unlinks it */
  while (p->nspare > 0) curl_easy_cleanup(p->spare[--p->nspare]);
}

/* }==== */

/* {==== start */

static long zc_ms_field(lua_State *L, int t, const char *k, double def) {
  double secs = def, ms;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "bad field '%s' (number of seconds expected)", k);
    secs = lua_tonumber(L, -1);
    if (!(secs > 0) || secs > 86400.0 * 365)
      luaL_error(L, "bad field '%s' (must be > 0 seconds)", k);
  }
  lua_pop(L, 1);
  ms = ceil(secs * 1000.0);
  return ms < 1 ? 1 : (long)ms;
}

/* Pushes an error object with catalogue code `code`. */
static void zc_start_err(lua_State *L, const char *code, const char *msg) {
  lua_pushstring(L, msg);
  zc_error_new(L, code, NULL, 0, NULL);
}

/*
** multi:start in two steps.
**
** zc_start_check reads every field of the request table once, checks it,
** and leaves what it read on the stack (slots below), so the set-up uses
** exactly the checked values: strings are immutable and anchored there, and
** the header list is copied into a private table entry by entry as each
** entry is read. The set-up allocates (userdata, libcurl state: GC points
** where finalizers run), and no finalizer can change a private copy.
*/
enum { ZC_S_MULTI = 1, ZC_S_REQ, ZC_S_METHOD, ZC_S_URL, ZC_S_BODY,
       ZC_S_HEADERS, ZC_S_TRANSFER };

typedef struct zc_start_args {
  const char *method, *url, *body;            /* body NULL: none */
  size_t mlen, ulen, blen;
  lua_Integer nh;                             /* entries of ZC_S_HEADERS */
  zc_hlist *hlist;                            /* or a zcrm.headers there */
  long timeout_ms, connect_ms;
} zc_start_args;

static int zc_method_is(const zc_start_args *a, const char *name) {
  return a->mlen == strlen(name) && memcmp(a->method, name, a->mlen) == 0;
}

/* RFC 9110 9.2.2: the methods a server may receive twice to the same effect. */
static int zc_method_idempotent(const zc_start_args *a) {
  static const char *const names[] = {
    "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", NULL
  };
  int i;
  for (i = 0; names[i]; i++)
    if (zc_method_is(a, names[i])) return 1;
  return 0;
}

/* Misuse raises; runtime faults (values that may come from data) push an
** error object and return 1. Never puts the URL or a header in a message:
** they may carry secrets. */
static int zc_start_check(lua_State *L, zc_start_args *a) {
  lua_Integer h;
  size_t i;
  luaL_checktype(L, ZC_S_REQ, LUA_TTABLE);
  lua_settop(L, ZC_S_REQ);
  memset(a, 0, sizeof *a);
  lua_getfield(L, ZC_S_REQ, "method");
  a->method = lua_tolstring(L, ZC_S_METHOD, &a->mlen);
  if (lua_type(L, ZC_S_METHOD) != LUA_TSTRING || a->mlen == 0 || a->mlen > 16)
    return luaL_argerror(L, 2, "field 'method' must be an HTTP method name");
  for (i = 0; i < a->mlen; i++)
    if (a->method[i] < 'A' || a->method[i] > 'Z')
      return luaL_argerror(L, 2, "field 'method' must be upper-case letters");
  if (lua_getfield(L, ZC_S_REQ, "url") != LUA_TSTRING)
    return luaL_argerror(L, 2, "field 'url' must be a string");
  a->url = lua_tolstring(L, ZC_S_URL, &a->ulen);
  if (lua_getfield(L, ZC_S_REQ, "body") != LUA_TNIL) {
    if (lua_type(L, ZC_S_BODY) != LUA_TSTRING)
      return luaL_argerror(L, 2, "field 'body' must be a string");
    a->body = lua_tolstring(L, ZC_S_BODY, &a->blen);
  }
  if (lua_getfield(L, ZC_S_REQ, "headers") == LUA_TUSERDATA) {
    /* Checked when it was made, immutable, anchored in its slot. */
    a->hlist = zc_headers_test(L, ZC_S_HEADERS);
    if (a->hlist == NULL)
      return luaL_argerror(L, 2, "field 'headers' must be a list of strings "
                           "or a zcrm.headers");
  }
  else if (lua_type(L, ZC_S_HEADERS) != LUA_TNIL) {
    if (!lua_istable(L, ZC_S_HEADERS))
      return luaL_argerror(L, 2, "field 'headers' must be a list of strings");
    a->nh = (lua_Integer)lua_rawlen(L, ZC_S_HEADERS);
    lua_createtable(L, a->nh > 64 ? 64 : (int)a->nh, 0);   /* the copy */
    for (h = 1; h <= a->nh; h++) {
      if (lua_rawgeti(L, ZC_S_HEADERS, h) != LUA_TSTRING)
        return luaL_argerror(L, 2, "field 'headers' must be a list of strings");
      lua_rawseti(L, -2, h);
    }
    lua_replace(L, ZC_S_HEADERS);
  }
  else {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  a->timeout_ms = zc_ms_field(L, ZC_S_REQ, "timeout", ZC_DEFAULT_TIMEOUT);
  a->connect_ms = zc_ms_field(L, ZC_S_REQ, "connect_timeout",
                              ZC_DEFAULT_CONNECT_TIMEOUT);
  for (i = 0; i < a->ulen; i++) {
    unsigned char c = (unsigned char)a->url[i];
    if (c <= 0x20 || c >= 0x7f) {
      zc_start_err(L, "INVALID_URL", "the request URL contains a space, "
                   "control character or non-ASCII byte");
      return 1;
    }
  }
  for (h = 1; h <= a->nh; h++) {
    size_t hl;
    const char *hs;
    lua_rawgeti(L, ZC_S_HEADERS, h);
    hs = lua_tolstring(L, -1, &hl);
    if (!zc_header_ok(hs, hl)) {
      lua_pushfstring(L, "header %d is not \"Name: value\" without CR, LF "
                      "or NUL", (int)h);
      zc_error_new(L, "INVALID_HEADER", NULL, 0, NULL);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Hosts that never go through a proxy: loopback, as check_base_url knows
** it, plus the user's own no_proxy list. CURLOPT_NOPROXY replaces the
** environment's, so it is appended here. Pushes the list. */
static const char *zc_push_noproxy(lua_State *L) {
  static const char loopback[] = "localhost,127.0.0.0/8,::1";
  const char *env = getenv("no_proxy");
  if (env == NULL || *env == '\0') env = getenv("NO_PROXY");
  if (env == NULL || *env == '\0') return lua_pushstring(L, loopback);
  return lua_pushfstring(L, "%s,%s", loopback, env);
}

/* True when `url` starts with "https://", in any case. */
static int zc_is_https(const char *url, size_t len) {
  static const char https[] = "https://";
  size_t i;
  if (len < sizeof https - 1) return 0;
  for (i = 0; i < sizeof https - 1; i++)
    if ((url[i] | 0x20) != https[i] && url[i] != https[i]) return 0;
  return 1;
}

/* The multi's options (strings libcurl copies). A plain-http request
** never goes through any proxy (option or environment): check_base_url
** allows http only to loopback, and the no-proxy list cannot be trusted
** to match every spelling of a loopback host, so the proxy is turned off
** outright ("" disables it, the environment's too). */
static void zc_start_options(lua_State *L, CURL *e, const char *url,
                             size_t ulen) {
  int o = lua_gettop(L) + 1;
  lua_getiuservalue(L, ZC_S_MULTI, ZC_MULTI_OPTIONS);
  if (lua_getfield(L, o, "ca_file") == LUA_TSTRING)
    curl_easy_setopt(e, CURLOPT_CAINFO, lua_tostring(L, -1));
  if (!zc_is_https(url, ulen))
    curl_easy_setopt(e, CURLOPT_PROXY, "");
  else if (lua_getfield(L, o, "proxy") == LUA_TSTRING)
    curl_easy_setopt(e, CURLOPT_PROXY, lua_tostring(L, -1));
  curl_easy_setopt(e, CURLOPT_NOPROXY, zc_push_noproxy(L));
  lua_getfield(L, o, "user_agent");
  curl_easy_setopt(e, CURLOPT_USERAGENT, lua_type(L, -1) == LUA_TSTRING
                   ? lua_tostring(L, -1) : ZCRM_CORE_VERSION);
  lua_settop(L, o - 1);
}

/* The userdata (ZC_S_TRANSFER) and its easy handle, from checked values
** only. Returns 0, or 1 with an error object pushed. */
static int zc_start_setup(lua_State *L, zc_pool *p, const zc_start_args *a) {
  zc_request *r;
  lua_Integer h;
  CURL *e;
  /* The userdata first, zeroed and idle, then libcurl. */
  r = (zc_request *)lua_newuserdatauv(L, sizeof *r, 2);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, ZC_TRANSFER_MT);
  r->state = ZC_IDLE;
  r->max_bytes = p->max_response_bytes;
  lua_pushvalue(L, ZC_S_BODY);                /* the body stays alive */
  lua_setiuservalue(L, ZC_S_TRANSFER, ZC_TRANSFER_BODY);
  r->easy = e = p->nspare > 0 ? p->spare[--p->nspare] : curl_easy_init();
  if (e == NULL) return luaL_error(L, "curl_easy_init failed");
  if (a->hlist) r->hlist = zc_hlist_ref(a->hlist);  /* shared, built once */
  for (h = 1; h <= a->nh; h++) {
    struct curl_slist *nl;
    lua_rawgeti(L, ZC_S_HEADERS, h);          /* checked, private copy */
    nl = curl_slist_append(r->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (nl == NULL) return luaL_error(L, "not enough memory");
    r->headers = nl;
  }
  if (!a->hlist) {
    /* Expect: 100-continue would cost a round trip on every PUT. */
    struct curl_slist *nl = curl_slist_append(r->headers, "Expect:");
    if (nl == NULL) return luaL_error(L, "not enough memory");
    r->headers = nl;
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, p->share);
  if (curl_easy_setopt(e, CURLOPT_URL, a->url) != CURLE_OK) {
    zc_start_err(L, "INVALID_URL", "the request URL is malformed");
    return 1;
  }
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, a->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, a->connect_ms);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  /* what libcurl decodes */
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_bytes);
  /* https: wait for the first connection's ALPN answer and multiplex on it
  ** (HTTP/2) rather than open parallel connections. Not for plain http:
  ** libcurl only learns that an HTTP/1.1 connection cannot multiplex from
  ** its first response, so later requests would queue behind it. */
  if (a->ulen >= 8 && memcmp(a->url, "https://", 8) == 0)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, zc_write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, zc_header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER,
                   r->hlist ? r->hlist->list : r->headers);
  if (p->verbose) {
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, zc_debug_cb);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  }
  zc_start_options(L, e, a->url, a->ulen);
  /* The method. A body goes through CURLOPT_POSTFIELDS (not copied: user
  ** value 1 keeps the string alive); PUT and PATCH without a body send an
  ** empty one, so Content-Length: 0 is set. */
  if (zc_method_is(a, "GET") && a->body == NULL)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (zc_method_is(a, "HEAD") && a->body == NULL)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else {
    if (a->body != NULL || zc_method_is(a, "POST") ||
        zc_method_is(a, "PUT") || zc_method_is(a, "PATCH")) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->blen);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body ? a->body : "");
    }
    if (!zc_method_is(a, "POST"))
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, a->method);
  }
  /* libcurl sends a request again, on a new connection, when a reused one
  ** closes before any answer byte: for a POST the server may have applied
  ** the first. A fresh connection is never retried that way; the caller
  ** learns that the outcome is unknown instead. */
  if (!zc_method_idempotent(a))
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  return 0;
}

/* multi:start (its doc is in multi.c, which checks the multi). */
int zc_transfer_start(lua_State *L, zc_pool *p) {
  zc_request *r;
  zc_start_args a;
  if (zc_start_check(L, &a) || zc_start_setup(L, p, &a)) return zc_fail(L);
  r = (zc_request *)lua_touserdata(L, ZC_S_TRANSFER);
  /* Anchor before adding: if anchoring raises (memory), libcurl never saw
  ** the handle. */
  lua_pushvalue(L, ZC_S_MULTI);
  lua_setiuservalue(L, ZC_S_TRANSFER, ZC_TRANSFER_OWNER);
  lua_getiuservalue(L, ZC_S_MULTI, ZC_MULTI_ANCHORS);
  lua_pushvalue(L, ZC_S_TRANSFER);
  lua_rawsetp(L, -2, r);
  if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
    lua_pushnil(L);
    lua_rawsetp(L, -2, r);
    zc_start_err(L, "TRANSPORT_ERROR", "curl_multi_add_handle failed");
    return zc_fail(L);
  }
  r->pool = p;
  r->next = p->running;
  if (p->running) p->running->prev = r;
  p->running = r;
  p->nrunning++;
  r->state = ZC_RUNNING;
  lua_settop(L, ZC_S_TRANSFER);
  return 1;
}

/* }==== */

/* {==== results */

/*
** curl's error text, without anything that could be a secret: URL-like
** words lose their user info, path and query; any word with '?' loses
** what follows it. (libcurl's messages name hosts, ports and times, not
** header values; this is a second line of defence.)
*/
static void zc_push_scrubbed(lua_State *L, const char *s) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (*s) {
    const char *w = s, *we, *sch;
    while (*s && *s != ' ') s++;
    we = s;
    sch = NULL;
    {
      const char *p;
      for (p = w; p + 2 < we; p++)
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') { sch = p; break; }
    }
    if (sch) {                                /* scheme://[user@]host... */
      const char *host = sch + 3, *p, *hend;
      for (p = host; p < we && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '@') host = p + 1;
      hend = p;
      luaL_addlstring(&b, w, (size_t)(sch + 3 - w));
      luaL_addlstring(&b, host, (size_t)(hend - host));
      if (hend < we) luaL_addstring(&b, "/...");
    }
    else {
      const char *q = (const char *)memchr(w, '?', (size_t)(we - w));
      if (q) {
        luaL_addlstring(&b, w, (size_t)(q - w));
        luaL_addstring(&b, "?...");
      }
      else luaL_addlstring(&b, w, (size_t)(we - w));
    }
    while (*s == ' ') {
      luaL_addchar(&b, ' ');
      s++;
    }
  }
  luaL_pushresult(&b);
}

static const char *zc_transport_code(zc_request *r) {
  switch (r->result) {
    case CURLE_OPERATION_TIMEDOUT: return "TIMEOUT";
    case CURLE_COULDNT_CONNECT: return "CONNECTION_FAILED";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "DNS_ERROR";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return "TLS_ERROR";
    case CURLE_SEND_ERROR: return "SEND_ERROR";
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return "RECV_ERROR";
    case CURLE_FILESIZE_EXCEEDED: return "RESPONSE_TOO_LARGE";
    case CURLE_WRITE_ERROR:
      return r->too_large ? "RESPONSE_TOO_LARGE" : "TRANSPORT_ERROR";
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return "INVALID_URL";
    default: return "TRANSPORT_ERROR";
  }
}

/* Pushes the lower-cased name -> value table (last occurrence wins). */
/* When `names` (a stack index, 0: none) is a list of lower-case names,
** pushes onto the stack the one equal to d[0..n) in any case and returns 1;
** else returns 0 (pushes nothing). Allocates nothing. */
static int zc_push_wanted(lua_State *L, int names, const char *d, size_t n) {
  lua_Integer k, count = (lua_Integer)lua_rawlen(L, names);
  for (k = 1; k <= count; k++) {
    size_t wl, x;
    const char *w;
    if (lua_rawgeti(L, names, k) == LUA_TSTRING) {
      w = lua_tolstring(L, -1, &wl);
      for (x = 0; x < n && wl == n; x++) {
        char ch = d[x];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (ch != w[x]) break;
      }
      if (wl == n && x == n) return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* `names`: 0, or the stack index of a list of lower-case names: only those
** headers go into the table (the engine's own reads need two). */
static void zc_push_headers(lua_State *L, const zc_buf *hb, int names) {
  size_t i = 0, lines = 0;
  const char *d = hb->data;
  for (i = 0; i < hb->len; i++) lines += d[i] == '\n';
  if (names) lines = lua_rawlen(L, names);
  /* Sized once for every line (the status line and the blank one too): no
  ** rehash while it fills. */
  lua_createtable(L, 0, lines > 64 ? 64 : (int)lines);
  i = 0;
  while (i < hb->len) {
    size_t j = i, c, v, ve;
    while (j < hb->len && d[j] != '\n') j++;
    ve = j;
    while (ve > i && (d[ve - 1] == '\r' || d[ve - 1] == '\n')) ve--;
    for (c = i; c < ve && d[c] != ':'; c++) {}
    if (c < ve && c > i && !(ve - i >= 5 && memcmp(d + i, "HTTP/", 5) == 0)) {
      luaL_Buffer b;
      size_t k;
      char *p;
      for (v = c + 1; v < ve && (d[v] == ' ' || d[v] == '\t'); v++) {}
      while (ve > v && (d[ve - 1] == ' ' || d[ve - 1] == '\t')) ve--;
      if (names) {
        if (zc_push_wanted(L, names, d + i, c - i)) {
          lua_pushlstring(L, d + v, ve - v);
          lua_rawset(L, -3);
        }
        i = j + 1;
        continue;
      }
      p = luaL_buffinitsize(L, &b, c - i);
      for (k = 0; k < c - i; k++) {
        char ch = d[i + k];
        p[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
      }
      luaL_pushresultsize(&b, c - i);
      lua_pushlstring(L, d + v, ve - v);
      lua_rawset(L, -3);
    }
    i = j + 1;
  }
}

/***
 * The outcome once done: `status, body, headers`, or nil and an error
 * object for a transport failure (or cancellation). Before completion:
 * nil alone.
 * @function transfer:result
 * @tparam[opt] {string,...} names lower-case header names: when given, the
 *   table holds only these (a caller that reads two headers makes no others)
 * @treturn integer|nil the HTTP status, or nil and an error object
 * @treturn string the body
 * @treturn table the response headers (lower-case names)
 */
static int zc_request_result(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  if (r->state == ZC_CANCELLED) {
    lua_pushstring(L, r->detached ? "the request was cancelled: its "
                   "zcrm.multi was closed" : "the request was cancelled");
    zc_error_new(L, "CANCELLED", "transport", 0, NULL);
    return zc_fail(L);
  }
  if (r->state != ZC_DONE) {
    lua_pushnil(L);
    return 1;
  }
  if (r->oom || r->result == CURLE_OUT_OF_MEMORY)
    return luaL_error(L, "not enough memory");
  if (r->result != CURLE_OK) {
    const char *code = zc_transport_code(r);
    const zc_catentry *ce = zc_catalogue_find(code);
    int too_large = strcmp(code, "RESPONSE_TOO_LARGE") == 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, ce ? ce->message : "transfer failed");
    if (too_large) {
      lua_pushfstring(L, " (%I bytes)", (LUAI_UACINT)r->max_bytes);
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, ": ");
    if (r->errbuf[0]) {
      r->errbuf[sizeof r->errbuf - 1] = '\0';
      zc_push_scrubbed(L, r->errbuf);
      luaL_addvalue(&b);
    }
    else luaL_addstring(&b, curl_easy_strerror(r->result));
    lua_pushfstring(L, " (curl error %d)", (int)r->result);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    /* A body over the cap stops a transfer whose status line was read:
    ** keep that status (0, none, for the other transport faults). */
    zc_error_new(L, code, NULL, too_large ? (int)r->status : 0, NULL);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)r->result);
    lua_setfield(L, -2, "curl_code");
    lua_setfield(L, -2, "details");
    return zc_fail(L);
  }
  lua_pushinteger(L, (lua_Integer)r->status);
  if (!r->body_cached) {
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, ZC_TRANSFER_BODY);  /* the request body: unneeded */
    zc_buf_free(&r->body);
    r->body_cached = 1;
  }
  else lua_getiuservalue(L, 1, ZC_TRANSFER_BODY);
  zc_push_headers(L, &r->head, lua_istable(L, 2) ? 2 : 0);
  return 3;
}

/***
 * True once the request completed or was cancelled.
 * @function transfer:done
 * @treturn boolean
 */
static int zc_request_done(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  lua_pushboolean(L, r->state == ZC_DONE || r->state == ZC_CANCELLED);
  return 1;
}

static void zc_set_secs(lua_State *L, const char *k, curl_off_t us) {
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, k);
}

/***
 * Timing facts of a completed request: `total_time`, `connect_time`,
 * `starttransfer_time` (seconds), `http_version` ("1.0", "1.1", "2", "3"),
 * `status`. Empty before completion.
 * @function transfer:info
 * @treturn table the facts (empty before completion)
 */
static int zc_request_info(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  lua_createtable(L, 0, 5);
  if (r->state != ZC_DONE) return 1;
  zc_set_secs(L, "total_time", r->total_us);
  zc_set_secs(L, "connect_time", r->connect_us);
  zc_set_secs(L, "starttransfer_time", r->starttransfer_us);
  switch (r->http_version) {
    case CURL_HTTP_VERSION_1_0: lua_pushliteral(L, "1.0"); break;
    case CURL_HTTP_VERSION_1_1: lua_pushliteral(L, "1.1"); break;
    case CURL_HTTP_VERSION_2_0: lua_pushliteral(L, "2"); break;
    case CURL_HTTP_VERSION_3: lua_pushliteral(L, "3"); break;
    default: lua_pushnil(L); break;
  }
  lua_setfield(L, -2, "http_version");
  if (r->status > 0) {
    lua_pushinteger(L, (lua_Integer)r->status);
    lua_setfield(L, -2, "status");
  }
  return 1;
}

/***
 * Removes the request from its multi and frees its handle; result() then
 * gives CANCELLED. Idempotent; no effect on a completed request.
 * @function transfer:cancel
 * @treturn nil
 */
static int zc_request_cancel(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  if (r->state == ZC_RUNNING && r->pool) {
    lua_getiuservalue(L, 1, ZC_TRANSFER_OWNER);
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      lua_getiuservalue(L, -1, ZC_MULTI_ANCHORS);
      if (lua_istable(L, -1)) {
        lua_pushnil(L);
        lua_rawsetp(L, -2, r);
      }
    }
    zc_request_release(r, ZC_CANCELLED);
    zc_buf_free(&r->body);
    zc_buf_free(&r->head);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, ZC_TRANSFER_OWNER);
  }
  else if (r->state == ZC_IDLE) {
    zc_request_release(r, ZC_CANCELLED);
  }
  return 0;
}

/* __gc: C cleanup only. A running request reaches here only when its multi
** is unreachable too (it anchors running requests); its memory stays valid
** until its own __gc ran, and that __gc would have detached us. */
static int zc_request_gc(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  zc_request_release(r, r->state == ZC_DONE ? ZC_DONE : ZC_CANCELLED);
  zc_buf_free(&r->body);
  zc_buf_free(&r->head);
  return 0;
}

static int zc_request_tostring(lua_State *L) {
  zc_request *r = zc_request_check(L, 1);
  static const char *const names[] = { "idle", "running", "done", "cancelled" };
  lua_pushfstring(L, "zcrm.transfer (%p, %s)", (void *)r, names[r->state]);
  return 1;
}

/* }==== */

void zc_open_transfer(lua_State *L) {
  static const luaL_Reg meta[] = {
    { "__gc", zc_request_gc },
    { "__close", zc_request_cancel },
    { "__tostring", zc_request_tostring },
    { "__index", NULL },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "done", zc_request_done },
    { "result", zc_request_result },
    { "cancel", zc_request_cancel },
    { "info", zc_request_info },
    { NULL, NULL }
  };
  luaL_newmetatable(L, ZC_TRANSFER_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
