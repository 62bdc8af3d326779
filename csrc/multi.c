/*
** multi.c: `zcrm.multi`, a libcurl multi handle (CURLM).
**
** Lifetime (csrc/API.md, "Transport"):
** - the userdata is created, zeroed and given its metatable before
**   curl_multi_init, so a failure anywhere leaves a safe closed object
**   (liolib `newprefile`, luaossl `prepsimple`);
** - user value 1 is the anchor table: running requests, keyed by a light
**   userdata of their C struct, so libcurl never points at a collected
**   object; user value 2 holds the options (strings libcurl copies per
**   request);
** - close (method, __gc and __close) is idempotent. It detaches every
**   running request (their result() becomes CANCELLED), then cleans up the
**   multi and the share handle. A request collected first has already
**   unlinked itself, so any collection order is safe.
** No Lua call is made from inside a libcurl callback (this file sets none).
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sys/select.h>

#include "zcrm.h"

#define ZC_DEFAULT_MAX_RESPONSE (8u * 1024u * 1024u)

zc_multi *zc_multi_check(lua_State *L, int idx) {
  return (zc_multi *)luaL_checkudata(L, idx, ZC_MULTI_MT);
}

/* {==== close */

static void zc_multi_release(zc_multi *m) {
  while (m->running) zc_request_detach(m->running);   /* unlinks it */
  if (m->multi) {
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
  }
  if (m->share) {                 /* no easy handle uses it any more */
    curl_share_cleanup(m->share);
    m->share = NULL;
  }
}

static int zc_multi_gc(lua_State *L) {
  zc_multi_release(zc_multi_check(L, 1));
  return 0;
}

/***
 * Cancels every running request and frees the handle. Idempotent; also
 * `__gc` and `__close`.
 * @function multi:close
 * @treturn nil
 */
static int zc_multi_close(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  zc_multi_release(m);
  lua_newtable(L);                /* drop the anchors of detached requests */
  lua_setiuservalue(L, 1, 1);
  return 0;
}

/* }==== */

/* {==== perform, timeout, fds, running */

/***
 * Drives the transfers: waits at most `wait` seconds for activity (only
 * when transfers are running), then performs and collects what completed.
 * @function multi:perform
 * @tparam[opt=0] number wait seconds; 0 never blocks
 * @treturn {request,...} the requests completed during this call
 */
static int zc_multi_perform(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  int still = 0, k = 0, left = 0, anchors;
  CURLMsg *msg;
  CURLMcode mc;
  luaL_argcheck(L, wait >= 0 && wait == wait, 2, "must be >= 0");
  lua_settop(L, 2);
  /* The list is preallocated for every running request, so filling it
  ** below never allocates (cannot raise) while requests change state. */
  lua_createtable(L, m->nrunning, 0);                 /* 3: list */
  lua_getiuservalue(L, 1, 1);                         /* 4: anchors */
  anchors = 4;
  if (m->multi == NULL) {
    lua_settop(L, 3);
    return 1;
  }
  if (wait > 0 && m->nrunning > 0) {
    double ms = ceil(wait * 1000.0);
    int ims = ms > (double)INT_MAX ? INT_MAX : (int)ms;
    mc = curl_multi_poll(m->multi, NULL, 0, ims, NULL);
    if (mc == CURLM_OUT_OF_MEMORY) return luaL_error(L, "not enough memory");
  }
  mc = curl_multi_perform(m->multi, &still);
  if (mc == CURLM_OUT_OF_MEMORY) return luaL_error(L, "not enough memory");
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    char *priv = NULL;
    zc_request *r;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE) continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    r = (zc_request *)(void *)priv;
    if (r == NULL) continue;
    lua_rawgetp(L, anchors, r);                       /* the userdata */
    zc_request_finish(r, rc);     /* removes it from the multi: msg is gone */
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      lua_pushnil(L);             /* it no longer keeps its multi alive */
      lua_setiuservalue(L, -2, 2);
      lua_rawseti(L, 3, ++k);
    }
    else lua_pop(L, 1);
    lua_pushnil(L);                                   /* unanchor */
    lua_rawsetp(L, anchors, r);
  }
  lua_settop(L, 3);
  return 1;
}

/***
 * Seconds until libcurl wants `perform` called again, or nil when nothing
 * is running.
 * @function multi:timeout
 * @treturn number|nil
 */
static int zc_multi_timeout(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  long ms = -1;
  if (m->multi == NULL || m->nrunning == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (curl_multi_timeout(m->multi, &ms) != CURLM_OK || ms < 0)
    ms = 100;                     /* none set: libcurl advises a short wait */
  lua_pushnumber(L, (lua_Number)ms / 1000.0);
  return 1;
}

/***
 * The sockets libcurl waits on, for hosts with their own poller. From
 * curl_multi_fdset: libcurl 7.88's curl_multi_perform does not drive
 * CURLMOPT_SOCKETFUNCTION (only the curl_multi_socket_* calls do), and
 * curl_multi_waitfds needs 8.8. Limitation: a socket numbered FD_SETSIZE
 * (1024) or higher is not listed; timeout() still bounds the wait.
 * @function multi:fds
 * @treturn {{fd=integer,read=boolean,write=boolean},...}
 */
static int zc_multi_fds(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  fd_set rd, wr, ex;
  int maxfd = -1, fd, n = 0;
  lua_newtable(L);
  if (m->multi == NULL) return 1;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_ZERO(&ex);
  if (curl_multi_fdset(m->multi, &rd, &wr, &ex, &maxfd) != CURLM_OK)
    return 1;
  for (fd = 0; fd <= maxfd && fd < FD_SETSIZE; fd++) {
    int r = FD_ISSET(fd, &rd), w = FD_ISSET(fd, &wr);
    if (!r && !w) continue;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, fd);
    lua_setfield(L, -2, "fd");
    lua_pushboolean(L, r);
    lua_setfield(L, -2, "read");
    lua_pushboolean(L, w);
    lua_setfield(L, -2, "write");
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/***
 * The number of requests started and not yet returned by `perform` (nor
 * cancelled).
 * @function multi:running
 * @treturn integer
 */
static int zc_multi_running(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  lua_pushinteger(L, m->nrunning);
  return 1;
}

static int zc_multi_tostring(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  if (m->multi == NULL) lua_pushliteral(L, "zcrm.multi (closed)");
  else lua_pushfstring(L, "zcrm.multi (%p)", (void *)m);
  return 1;
}

/* }==== */

/* {==== new_multi */

/* Checks t[k] (raw: t is our copy): nil, or a string without NUL. */
static void zc_optstring_field(lua_State *L, int t, const char *k) {
  int ty;
  size_t len;
  lua_pushstring(L, k);
  ty = lua_rawget(L, t);
  if (ty == LUA_TSTRING) {
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)         /* libcurl would take a shorter string */
      luaL_error(L, "bad option '%s' (contains a NUL byte)", k);
  }
  else if (ty != LUA_TNIL)
    luaL_error(L, "bad option '%s' (string expected, got %s)", k,
               luaL_typename(L, -1));
  lua_pop(L, 1);
}

/***
 * Creates a multi handle.
 * @function new_multi
 * @tparam[opt] table opts `ca_file`, `proxy`, `user_agent` (strings),
 *   `max_response_bytes` (integer, default 8 MiB), `verbose` (boolean;
 *   prints the exchange to stderr with Authorization values redacted)
 * @treturn zcrm.multi
 */
static int zc_new_multi(lua_State *L) {
  zc_multi *m;
  lua_Integer maxb = (lua_Integer)ZC_DEFAULT_MAX_RESPONSE;
  int verbose = 0;
  lua_settop(L, 1);
  if (lua_isnoneornil(L, 1)) {
    lua_newtable(L);
    lua_replace(L, 1);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  /* Copy the options once (a later change to the caller's table, or an
  ** __index that answers differently on a second read, changes nothing
  ** running requests use), then check the copy. */
  lua_createtable(L, 0, 3);                           /* 2: options */
  lua_getfield(L, 1, "ca_file");
  lua_setfield(L, 2, "ca_file");
  lua_getfield(L, 1, "proxy");
  lua_setfield(L, 2, "proxy");
  lua_getfield(L, 1, "user_agent");
  lua_setfield(L, 2, "user_agent");
  zc_optstring_field(L, 2, "ca_file");
  zc_optstring_field(L, 2, "proxy");
  zc_optstring_field(L, 2, "user_agent");
  if (lua_getfield(L, 1, "max_response_bytes") != LUA_TNIL) {
    int isint;
    maxb = lua_tointegerx(L, -1, &isint);
    if (!isint || maxb <= 0)
      return luaL_error(L, "bad option 'max_response_bytes' (positive "
                           "integer expected)");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "verbose") != LUA_TNIL) verbose = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* The userdata first, zeroed and closed, then the libcurl handles. */
  m = (zc_multi *)lua_newuserdatauv(L, sizeof *m, 2); /* 3 */
  memset(m, 0, sizeof *m);
  luaL_setmetatable(L, ZC_MULTI_MT);
  lua_newtable(L);
  lua_setiuservalue(L, 3, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 2);
  m->max_response_bytes = (size_t)maxb;
  m->verbose = verbose;
  m->multi = curl_multi_init();
  if (m->multi == NULL) return luaL_error(L, "curl_multi_init failed");
  m->share = curl_share_init();
  if (m->share == NULL) return luaL_error(L, "curl_share_init failed");
  /* Share DNS and TLS sessions across this multi's easy handles. The
  ** connection cache is the multi's own: every easy handle added to one
  ** multi reuses its connections, and sharing connections through a share
  ** handle while in a multi is the less tested path in libcurl 7.88. */
  curl_share_setopt(m->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(m->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  return 1;
}

/* }==== */

void zc_open_client(lua_State *L) {
  static const luaL_Reg meta[] = {
    { "__gc", zc_multi_gc },
    { "__close", zc_multi_gc },
    { "__tostring", zc_multi_tostring },
    { "__index", NULL },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "start", zc_multi_start },
    { "perform", zc_multi_perform },
    { "timeout", zc_multi_timeout },
    { "fds", zc_multi_fds },
    { "running", zc_multi_running },
    { "close", zc_multi_close },
    { NULL, NULL }
  };
  luaL_newmetatable(L, ZC_MULTI_MT);  /* an existing one is refreshed */
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, zc_new_multi);
  lua_setfield(L, -2, "new_multi");
}
