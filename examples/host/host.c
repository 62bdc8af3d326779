/*
** host.c: a game-server-style C host that embeds Lua 5.4 and drives zcrm
** from its own epoll loop at 60 Hz, watching one descriptor and one timer
** per client (README, "Embedding zcrm in an event loop").
**
** Usage (from the repository root, after `make`):
**   bin/zcrm-emulator --port 8642 --latency-ms 50 --extra-modules 400 &
**   examples/host/host --url http://127.0.0.1:8642 --threads 4 --updates 100
**
** Options: --url URL (the API domain; default $ZOHO_API_DOMAIN),
** --threads N (default 1), --updates N per thread (default 100),
** --other-sockets N (default 2000), --script FILE (default
** examples/host/host.lua). Thread t updates Bulk_Module_((t-1)*N+1 .. t*N),
** so the emulator needs --extra-modules threads*updates.
**
** Before the threads start, the host opens the other sockets (UDP sockets
** standing for a game server's players), so every descriptor zcrm opens is
** numbered above them: above 1024 with the default 2000. Each thread has its
** own lua_State, client and epoll set (its share of the other sockets plus
** the client's pollfd()). A frame: the script's tick() submits a few
** updates; then, until the frame's end, the thread sleeps in epoll_wait and
** calls poll() when the client's descriptor is readable or its timeout()
** is due. The tick time is the time spent in Lua during one frame, and
** its CPU the thread's CPU time in that frame (the wall time also counts
** waiting for a core on a busy machine); the worst of each is printed with
** the update results. Exit status 0 when every
** update succeeded, 1 otherwise, 2 for bad usage.
**
** zcrm.core is linked in (package.preload), so a ThreadSanitizer build
** (make tsan) instruments it along with this file.
*/
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define FRAME (1.0 / 60.0)
#define MAX_SECONDS 120.0         /* a run that takes longer has failed */
#define ZCRM_TAG ((uint64_t)-1)   /* epoll data of the client's pollfd */

int luaopen_zcrm_core(lua_State *L);

typedef struct worker {
  pthread_t thread;
  int id, first, count;
  const char *url, *script;
  const int *others;              /* this thread's share of the sockets */
  int nothers;
  /* results, read by main after pthread_join */
  int ok;
  long frames, polls;
  double worst_tick, worst_cpu, seconds;
  char report[4096];
} worker;

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* This thread's CPU time: unlike the wall clock, not stretched when the
** machine is busy and the thread waits for a core. */
static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

/* Calls game[name](args already pushed) with nres results; on an error,
** the message goes to w->report and 0 is returned. */
static int call(lua_State *L, worker *w, const char *name, int nargs,
                int nres) {
  lua_getfield(L, 1, name);
  lua_insert(L, -1 - nargs);
  if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
    snprintf(w->report, sizeof w->report, "error in %s(): %s", name,
             lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Runs frames until the script has every result. Stack: 1 = game table. */
static int run(lua_State *L, worker *w, int ep, int zfd) {
  struct epoll_event ev[64];
  double start = now();
  for (w->frames = 0;; w->frames++) {
    double frame_end = start + (double)(w->frames + 1) * FRAME;
    double t = now(), c0 = cpu_now(), work;
    int finished;
    if (!call(L, w, "tick", 0, 0)) return 0;
    work = now() - t;
    for (;;) {
      double wait, zt, t_due;
      int n, i, ready = 0, due;
      t = now();
      if (t >= frame_end) break;
      wait = frame_end - t;
      if (!call(L, w, "timeout", 0, 1)) return 0;
      zt = lua_isnil(L, -1) ? -1.0 : lua_tonumber(L, -1);
      lua_pop(L, 1);
      work += now() - t;
      due = zt >= 0 && zt <= wait;
      if (due) wait = zt;
      t_due = t + wait;
      n = epoll_wait(ep, ev, 64, (int)ceil(wait * 1000.0));
      for (i = 0; i < n; i++)
        if (ev[i].data.u64 == ZCRM_TAG) ready = 1;
        /* else: a player's socket; the game would read it here */
      if (ready || (due && now() >= t_due)) {
        t = now();
        if (!call(L, w, "poll", 0, 0)) return 0;
        work += now() - t;
        w->polls++;
      }
    }
    if (work > w->worst_tick) w->worst_tick = work;
    if (cpu_now() - c0 > w->worst_cpu) w->worst_cpu = cpu_now() - c0;
    if (!call(L, w, "finished", 0, 1)) return 0;
    finished = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (finished) break;
    if (now() - start > MAX_SECONDS) {
      snprintf(w->report, sizeof w->report, "not finished after %.0f s",
               MAX_SECONDS);
      return 0;
    }
  }
  w->frames++;
  w->seconds = now() - start;
  epoll_ctl(ep, EPOLL_CTL_DEL, zfd, NULL);  /* report() closes the client */
  if (!call(L, w, "report", 0, 2)) return 0;
  snprintf(w->report, sizeof w->report, "%s", lua_tostring(L, -2));
  return lua_toboolean(L, -1);
}

static void *worker_main(void *arg) {
  worker *w = (worker *)arg;
  lua_State *L = luaL_newstate();
  int ep = -1, zfd, i;
  struct epoll_event e;
  if (L == NULL) {
    snprintf(w->report, sizeof w->report, "cannot create a lua_State");
    return NULL;
  }
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_zcrm_core);
  lua_setfield(L, -2, "zcrm.core");
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = './lua/?.lua;./lua/?/init.lua;' .. "
                       "package.path") != LUA_OK ||
      luaL_dofile(L, w->script) != LUA_OK || !lua_istable(L, -1)) {
    snprintf(w->report, sizeof w->report, "cannot load %s: %s", w->script,
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a table");
    lua_close(L);
    return NULL;
  }
  lua_settop(L, 1);                                   /* 1: game */
  lua_pushstring(L, w->url);
  lua_pushinteger(L, w->first);
  lua_pushinteger(L, w->count);
  if (!call(L, w, "start", 3, 1)) goto done;
  if (!lua_isinteger(L, -1)) {
    snprintf(w->report, sizeof w->report, "start() gave no descriptor");
    goto done;
  }
  zfd = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    snprintf(w->report, sizeof w->report, "epoll_create1: %s",
             strerror(errno));
    goto done;
  }
  memset(&e, 0, sizeof e);
  e.events = EPOLLIN;
  for (i = 0; i < w->nothers; i++) {
    e.data.u64 = (uint64_t)w->others[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, w->others[i], &e);
  }
  e.data.u64 = ZCRM_TAG;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, zfd, &e) != 0) {
    snprintf(w->report, sizeof w->report, "epoll_ctl(pollfd %d): %s", zfd,
             strerror(errno));
    goto done;
  }
  w->ok = run(L, w, ep, zfd);
  if (w->ok || w->report[0]) {    /* say which descriptor zcrm got */
    size_t len = strlen(w->report);
    snprintf(w->report + len, sizeof w->report - len, "; pollfd %d", zfd);
  }
done:
  if (ep >= 0) close(ep);
  lua_close(L);
  return NULL;
}

static int usage(const char *msg) {
  fprintf(stderr, "host: %s\nusage: host --url URL [--threads N] "
          "[--updates N] [--other-sockets N] [--script FILE]\n", msg);
  return 2;
}

int main(int argc, char **argv) {
  const char *url = getenv("ZOHO_API_DOMAIN");
  const char *script = "examples/host/host.lua";
  int threads = 1, updates = 100, nothers = 2000, i, all_ok = 1;
  int *others;
  worker *ws;
  struct rlimit rl;
  double worst = 0, worst_cpu = 0;
  for (i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) return usage("missing value");
    if (strcmp(a, "--url") == 0) url = v;
    else if (strcmp(a, "--script") == 0) script = v;
    else if (strcmp(a, "--threads") == 0) threads = atoi(v);
    else if (strcmp(a, "--updates") == 0) updates = atoi(v);
    else if (strcmp(a, "--other-sockets") == 0) nothers = atoi(v);
    else return usage("unknown option");
  }
  if (url == NULL) return usage("no --url (nor ZOHO_API_DOMAIN)");
  if (threads < 1 || threads > 64 || updates < 1 || nothers < 0)
    return usage("--threads 1..64, --updates >= 1, --other-sockets >= 0");
  /* Room for the other sockets and every thread's transfers. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur < (rlim_t)(nothers + 64 * threads + 64)) {
    rl.rlim_cur = (rlim_t)(nothers + 64 * threads + 64);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
      rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  others = (int *)calloc((size_t)nothers + 1, sizeof *others);
  ws = (worker *)calloc((size_t)threads, sizeof *ws);
  if (others == NULL || ws == NULL) return usage("out of memory");
  for (i = 0; i < nothers; i++) {
    others[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (others[i] < 0) {
      fprintf(stderr, "host: socket %d of %d: %s\n", i + 1, nothers,
              strerror(errno));
      return 1;
    }
  }
  printf("host: %d other sockets open (descriptors %d-%d), %d thread%s, "
         "%d updates each, 60 Hz frames\n", nothers,
         nothers ? others[0] : 0, nothers ? others[nothers - 1] : 0,
         threads, threads > 1 ? "s" : "", updates);
  fflush(stdout);
  for (i = 0; i < threads; i++) {
    worker *w = &ws[i];
    w->id = i + 1;
    w->first = i * updates + 1;
    w->count = updates;
    w->url = url;
    w->script = script;
    w->others = others + (long)nothers * i / threads;
    w->nothers = (int)((long)nothers * (i + 1) / threads -
                       (long)nothers * i / threads);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      fprintf(stderr, "host: pthread_create failed\n");
      return 1;
    }
  }
  for (i = 0; i < threads; i++) {
    worker *w = &ws[i];
    pthread_join(w->thread, NULL);
    printf("thread %d: %s\n", w->id, w->report);
    if (w->ok)
      printf("thread %d: %ld frames in %.2f s, %ld polls, worst tick "
             "%.2f ms of a %.1f ms frame (CPU: %.2f ms)\n", w->id, w->frames,
             w->seconds, w->polls, w->worst_tick * 1000.0, FRAME * 1000.0,
             w->worst_cpu * 1000.0);
    if (!w->ok) all_ok = 0;
    if (w->worst_tick > worst) worst = w->worst_tick;
    if (w->worst_cpu > worst_cpu) worst_cpu = w->worst_cpu;
  }
  printf("host: %s; worst tick %.2f ms (CPU: %.2f ms)\n", all_ok ?
         "all updates succeeded" : "FAILED", worst * 1000.0,
         worst_cpu * 1000.0);
  for (i = 0; i < nothers; i++) close(others[i]);
  free(others);
  free(ws);
  return all_ok ? 0 : 1;
}
