/*
** multi.c: `zcrm.multi`, a libcurl multi handle (CURLM), driven through
** libcurl's socket interface (CURLMOPT_SOCKETFUNCTION,
** CURLMOPT_TIMERFUNCTION, curl_multi_socket_action).
**
** Lifetime (csrc/API.md, "Transport"):
** - the userdata is created, zeroed and given its metatable before
**   curl_multi_init, so a failure anywhere leaves a safe closed object
**   (liolib `newprefile`, luaossl `prepsimple`);
** - user value 1 is the anchor table: running requests, keyed by a light
**   userdata of their C struct, so libcurl never points at a collected
**   object; user value 2 holds the options (strings libcurl copies per
**   request) (both named in transfer.h);
** - the transfers themselves are transfer.c's: this unit calls it
**   (start, finish, release of the pool) and transfer.c never calls back;
** - close (method, __gc and __close) is idempotent. It detaches every
**   running request (their result() becomes CANCELLED), then cleans up the
**   multi, the share handle and the epoll descriptor. A request collected
**   first has already unlinked itself, so any collection order is safe.
**
** Readiness (csrc/API.md, "Transport"): libcurl tells the socket callback
** which sockets to watch and the timer callback when it wants a timeout
** call. Both only record that in C (the socket list, the epoll set, a
** deadline): no Lua call, and nothing that can raise. On Linux the sockets
** sit in one epoll descriptor (EPOLL_CLOEXEC), which pollfd() hands to a
** host loop: it is readable whenever any transfer needs attention.
** perform() then asks epoll for the ready sockets only, so its cost follows
** the active sockets, not the number of requests (nor any FD_SETSIZE).
** Elsewhere the same list feeds poll(2), and there is no pollfd().
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>
#if defined(__linux__) && !defined(ZC_NO_EPOLL)
#define ZC_EPOLL 1
#include <sys/epoll.h>
#endif

#include "error.h"
#include "multi.h"
#include "transfer.h"

#define ZC_DEFAULT_MAX_RESPONSE (8u * 1024u * 1024u)
#define ZC_MAX_EVENTS 64          /* ready sockets handled per perform */
/* User value 3: the empty list perform returns when nothing completed (1
** and 2, the anchors and the options, are in transfer.h: transfers read
** them). */
#define ZC_MULTI_IDLE 3

typedef struct zc_multi {
  zc_pool pool;                   /* the CURLM, its transfers (transfer.h) */
  /* The socket interface: written only by the libcurl socket and timer
  ** callbacks, which make no Lua call. */
  int epfd;                       /* epoll descriptor (Linux); -1: none */
  struct pollfd *socks;           /* the sockets libcurl watches (malloc'd) */
  int nsocks, capsocks;
  int timer_set;                  /* libcurl wants a timeout call ... */
  double timer_at;                /* ... at this monotonic time (ms) */
  int oom;                        /* a callback could not allocate */
  int acted;                      /* socket_action ran; completions unread */
} zc_multi;

static zc_multi *zc_multi_check(lua_State *L, int idx) {
  return (zc_multi *)luaL_checkudata(L, idx, ZC_MULTI_MT);
}

/* {==== the socket interface: libcurl callbacks (C only: no Lua calls) */

static double zc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int zc_sock_find(const zc_multi *m, curl_socket_t s) {
  int i;
  for (i = 0; i < m->nsocks; i++)
    if (m->socks[i].fd == s) return i;
  return -1;
}

/* CURLMOPT_SOCKETFUNCTION: watch `s` for `what`, or stop watching it. The
** list holds the sockets of the active transfers (a handful: at most the
** concurrency), so a linear search is the cheap choice. */
static int zc_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                        void *socketp) {
  zc_multi *m = (zc_multi *)userp;
  int i = zc_sock_find(m, s);
  int added = i < 0;              /* new to the list: not in epoll either */
  short ev = 0;
  (void)easy;
  (void)socketp;
  (void)added;                    /* read only where there is epoll */
  if (what == CURL_POLL_REMOVE) {
    if (i >= 0) m->socks[i] = m->socks[--m->nsocks];
#ifdef ZC_EPOLL
    /* libcurl may have closed it already: then epoll dropped it itself. */
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, s, NULL);
#endif
    return 0;
  }
  if (what & CURL_POLL_IN) ev |= POLLIN;
  if (what & CURL_POLL_OUT) ev |= POLLOUT;
  if (i < 0) {
    if (m->nsocks == m->capsocks) {
      int ncap = m->capsocks ? m->capsocks * 2 : 16;
      struct pollfd *np = (struct pollfd *)realloc(m->socks,
                                                   (size_t)ncap * sizeof *np);
      if (np == NULL) {           /* reported by the next perform */
        m->oom = 1;
        return 0;
      }
      m->socks = np;
      m->capsocks = ncap;
    }
    i = m->nsocks++;
    m->socks[i].fd = s;
  }
  m->socks[i].events = ev;
  m->socks[i].revents = 0;
#ifdef ZC_EPOLL
  {
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);
    ee.events = (uint32_t)((ev & POLLIN ? EPOLLIN : 0) |
                           (ev & POLLOUT ? EPOLLOUT : 0));
    ee.data.fd = s;
    /* The list and the epoll set hold the same sockets, so the likely call
    ** comes first (one system call per change); the other one covers a
    ** descriptor that libcurl closed and reopened without a REMOVE. */
    if (added ? epoll_ctl(m->epfd, EPOLL_CTL_ADD, s, &ee) != 0 &&
                  (errno != EEXIST ||
                   epoll_ctl(m->epfd, EPOLL_CTL_MOD, s, &ee) != 0)
              : epoll_ctl(m->epfd, EPOLL_CTL_MOD, s, &ee) != 0 &&
                  (errno != ENOENT ||
                   epoll_ctl(m->epfd, EPOLL_CTL_ADD, s, &ee) != 0))
      m->oom = errno == ENOMEM;   /* else: the transfer's timeout ends it */
  }
#endif
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: call socket_action(CURL_SOCKET_TIMEOUT) in
** timeout_ms milliseconds; -1 deletes the timer. The deadline stays set
** once due until libcurl moves it, so a due timeout is never lost. */
static int zc_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  zc_multi *m = (zc_multi *)userp;
  (void)multi;
  if (timeout_ms < 0) m->timer_set = 0;
  else {
    m->timer_set = 1;
    m->timer_at = zc_now_ms() + (double)timeout_ms;
  }
  return 0;
}

/* Waits at most wait_ms (0: not at all) for a ready socket or the timer,
** then lets libcurl act on what is ready, and on the timer if it is due. */
static void zc_multi_drive(zc_multi *m, int wait_ms) {
  int n, i, still = 0;
  if (m->timer_set) {
    double left = m->timer_at - zc_now_ms();
    if (left <= 0) wait_ms = 0;
    else if (left < (double)wait_ms) wait_ms = (int)ceil(left);
  }
#ifdef ZC_EPOLL
  {
    struct epoll_event ev[ZC_MAX_EVENTS];
    n = epoll_wait(m->epfd, ev, ZC_MAX_EVENTS, wait_ms);
    for (i = 0; i < n; i++) {
      int mask = 0;
      if (ev[i].events & (EPOLLIN | EPOLLHUP)) mask |= CURL_CSELECT_IN;
      if (ev[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (ev[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
      m->acted = 1;
      curl_multi_socket_action(m->pool.multi, ev[i].data.fd, mask, &still);
    }
  }
#else
  {
    /* The callbacks change the list while libcurl acts: act on a copy of
    ** the ready entries. */
    struct pollfd ready[ZC_MAX_EVENTS];
    int k = 0;
    n = m->nsocks ? poll(m->socks, (nfds_t)m->nsocks, wait_ms)
                  : (wait_ms > 0 ? poll(NULL, 0, wait_ms) : 0);
    for (i = 0; n > 0 && i < m->nsocks && k < ZC_MAX_EVENTS; i++)
      if (m->socks[i].revents) ready[k++] = m->socks[i];
    for (i = 0; i < k; i++) {
      int mask = 0;
      if (ready[i].revents & (POLLIN | POLLHUP)) mask |= CURL_CSELECT_IN;
      if (ready[i].revents & POLLOUT) mask |= CURL_CSELECT_OUT;
      if (ready[i].revents & (POLLERR | POLLNVAL)) mask |= CURL_CSELECT_ERR;
      m->acted = 1;
      curl_multi_socket_action(m->pool.multi, ready[i].fd, mask, &still);
    }
  }
#endif
  if (m->timer_set && zc_now_ms() >= m->timer_at) {
    m->acted = 1;
    curl_multi_socket_action(m->pool.multi, CURL_SOCKET_TIMEOUT, 0, &still);
  }
}

/* }==== */

/* {==== close */

static void zc_multi_release(zc_multi *m) {
  zc_pool_release(&m->pool);      /* running transfers detached, spares freed */
  if (m->pool.multi) {            /* its callbacks still see a valid list */
    curl_multi_cleanup(m->pool.multi);
    m->pool.multi = NULL;
  }
  if (m->pool.share) {            /* no easy handle uses it any more */
    curl_share_cleanup(m->pool.share);
    m->pool.share = NULL;
  }
  if (m->epfd >= 0) {
    close(m->epfd);
    m->epfd = -1;
  }
  free(m->socks);
  m->socks = NULL;
  m->nsocks = m->capsocks = 0;
  m->timer_set = 0;
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
  lua_setiuservalue(L, 1, ZC_MULTI_ANCHORS);
  return 0;
}

/* }==== */

/* {==== perform, timeout, pollfd, fds, running */

/***
 * Drives the transfers: waits at most `wait` seconds for activity (only
 * when transfers are running), lets libcurl act on the ready sockets and a
 * due timer (curl_multi_socket_action), and collects what completed.
 * @function multi:perform
 * @tparam[opt=0] number wait seconds; 0 never blocks
 * @treturn {request,...} the requests completed during this call
 */
static int zc_multi_perform(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  int k = 0, left = 0, anchors, ims = 0;
  CURLMsg *msg;
  luaL_argcheck(L, wait >= 0 && wait == wait, 2, "must be >= 0");
  lua_settop(L, 2);
  if (m->pool.multi != NULL) {
    if (wait > 0 && m->pool.nrunning > 0) {
      double ms = ceil(wait * 1000.0);
      ims = ms > (double)INT_MAX ? INT_MAX : (int)ms;
    }
    zc_multi_drive(m, ims);       /* changes no request's state */
    if (m->oom) {
      m->oom = 0;
      return luaL_error(L, "not enough memory");
    }
  }
  if (m->pool.multi == NULL || !m->acted) {
    /* libcurl did nothing, so nothing completed: the multi's one empty
    ** list, no allocation (a host's poll(0) with nothing ready). */
    lua_getiuservalue(L, 1, ZC_MULTI_IDLE);
    return 1;
  }
  /* The list is preallocated for every running request, so filling it
  ** below never allocates (cannot raise) while requests change state. */
  lua_createtable(L, m->pool.nrunning, 0);            /* 3: list */
  lua_getiuservalue(L, 1, ZC_MULTI_ANCHORS);          /* 4: anchors */
  anchors = 4;
  while ((msg = curl_multi_info_read(m->pool.multi, &left)) != NULL) {
    char *priv = NULL;
    zc_request *r;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE) continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    r = (zc_request *)(void *)priv;
    if (r == NULL) continue;
    lua_rawgetp(L, anchors, r);                       /* the userdata */
    zc_transfer_finish(r, rc);    /* removes it from the multi: msg is gone */
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      lua_pushnil(L);             /* it no longer keeps its multi alive */
      lua_setiuservalue(L, -2, ZC_TRANSFER_OWNER);
      lua_rawseti(L, 3, ++k);
    }
    else lua_pop(L, 1);
    lua_pushnil(L);                                   /* unanchor */
    lua_rawsetp(L, anchors, r);
  }
  m->acted = 0;                   /* every completion read */
  lua_settop(L, 3);
  return 1;
}

/***
 * Seconds until libcurl wants `perform` called even without a ready
 * socket (its timer), or nil when nothing is running.
 * @function multi:timeout
 * @treturn number|nil
 */
static int zc_multi_timeout(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  double left;
  if (m->pool.multi == NULL || m->pool.nrunning == 0) {
    lua_pushnil(L);
    return 1;
  }
  /* Transfers always have a timeout, so libcurl keeps a timer while any
  ** runs; without one, a second is a safe bound. */
  left = m->timer_set ? m->timer_at - zc_now_ms() : 1000.0;
  lua_pushnumber(L, (lua_Number)(left > 0 ? left / 1000.0 : 0.0));
  return 1;
}

/***
 * The one descriptor a host loop watches for reading: an epoll descriptor
 * holding every socket of every transfer, readable whenever one of them
 * needs attention. Owned by the multi (closed with it; close-on-exec).
 * Where there is no epoll: nil and an error (NOT_SUPPORTED); `fds()` and
 * `timeout()` still work. A closed multi: nil.
 * @function multi:pollfd
 * @treturn integer|nil
 */
static int zc_multi_pollfd(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  if (m->pool.multi == NULL) {
    lua_pushnil(L);
    return 1;
  }
#ifdef ZC_EPOLL
  lua_pushinteger(L, m->epfd);
  return 1;
#else
  lua_pushliteral(L, "no pollable descriptor on this system (no epoll): "
                  "watch fds() and timeout() instead");
  zc_error_new(L, "NOT_SUPPORTED", "transport", 0, NULL);
  return zc_fail(L);
#endif
}

/***
 * The sockets libcurl watches, as its socket callback last told: for hosts
 * that register each socket with their own poller. Any descriptor number
 * (no FD_SETSIZE limit). The list changes as transfers come and go;
 * `pollfd()` is the one descriptor that does not.
 * @function multi:fds
 * @treturn {{fd=integer,read=boolean,write=boolean},...}
 */
static int zc_multi_fds(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  int i;
  lua_createtable(L, m->nsocks, 0);
  for (i = 0; i < m->nsocks; i++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, m->socks[i].fd);
    lua_setfield(L, -2, "fd");
    lua_pushboolean(L, (m->socks[i].events & POLLIN) != 0);
    lua_setfield(L, -2, "read");
    lua_pushboolean(L, (m->socks[i].events & POLLOUT) != 0);
    lua_setfield(L, -2, "write");
    lua_rawseti(L, -2, i + 1);
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
  lua_pushinteger(L, m->pool.nrunning);
  return 1;
}

static int zc_multi_tostring(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  if (m->pool.multi == NULL) lua_pushliteral(L, "zcrm.multi (closed)");
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
  m = (zc_multi *)lua_newuserdatauv(L, sizeof *m, 3); /* 3 */
  memset(m, 0, sizeof *m);
  m->epfd = -1;                   /* before anything can fail */
  luaL_setmetatable(L, ZC_MULTI_MT);
  lua_newtable(L);
  lua_setiuservalue(L, 3, ZC_MULTI_ANCHORS);
  lua_newtable(L);                /* what perform returns when idle */
  lua_setiuservalue(L, 3, ZC_MULTI_IDLE);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, ZC_MULTI_OPTIONS);
  m->pool.max_response_bytes = (size_t)maxb;
  m->pool.verbose = verbose;
  m->pool.multi = curl_multi_init();
  if (m->pool.multi == NULL) return luaL_error(L, "curl_multi_init failed");
  m->pool.share = curl_share_init();
  if (m->pool.share == NULL) return luaL_error(L, "curl_share_init failed");
  /* Share DNS and TLS sessions across this multi's easy handles. The
  ** connection cache is the multi's own: every easy handle added to one
  ** multi reuses its connections, and sharing connections through a share
  ** handle while in a multi is the less tested path in libcurl 7.88. */
  curl_share_setopt(m->pool.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(m->pool.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_multi_setopt(m->pool.multi, CURLMOPT_PIPELINING,
                    (long)CURLPIPE_MULTIPLEX);
#ifdef ZC_EPOLL
  m->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (m->epfd < 0)
    return luaL_error(L, "epoll_create1 failed: %s", strerror(errno));
#endif
  curl_multi_setopt(m->pool.multi, CURLMOPT_SOCKETFUNCTION, zc_socket_cb);
  curl_multi_setopt(m->pool.multi, CURLMOPT_SOCKETDATA, (void *)m);
  curl_multi_setopt(m->pool.multi, CURLMOPT_TIMERFUNCTION, zc_timer_cb);
  curl_multi_setopt(m->pool.multi, CURLMOPT_TIMERDATA, (void *)m);
  return 1;
}

/***
 * Starts a transfer: adds it to the multi at once; nothing is performed
 * until `perform`. Never follows redirects.
 * @function multi:start
 * @tparam table req `method`, `url`, `headers` (list of "Name: value"),
 *   `body` (string), `timeout`, `connect_timeout` (seconds; default 30, 10)
 * @treturn zcrm.transfer|nil the transfer, or nil and an error object
 */
static int zc_multi_start(lua_State *L) {
  zc_multi *m = zc_multi_check(L, 1);
  if (m->pool.multi == NULL)
    return luaL_error(L, "attempt to use a closed zcrm.multi");
  return zc_transfer_start(L, &m->pool);
}

/* }==== */

void zc_open_multi(lua_State *L) {
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
    { "pollfd", zc_multi_pollfd },
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
