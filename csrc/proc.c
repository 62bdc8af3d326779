/*
** proc.c: what the `zcrm` command needs from the process around it and plain
** Lua lacks: an interrupt flag that SIGINT and SIGTERM set, and exec.
** Library users never meet these: only bin/zcrm calls them.
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zcrm.h"

/* {==== interrupts */

/* The one piece of mutable C state outside a userdata: a signal handler can
** reach nothing else. It holds the number of the first signal caught. */
static volatile sig_atomic_t zc_signal_caught = 0;

static void zc_on_signal(int sig) {
  if (zc_signal_caught == 0) zc_signal_caught = sig;
}

/***
 * From now on the first SIGINT or SIGTERM only sets the flag that
 * `interrupted` reads; the handler then resets itself (SA_RESETHAND), so a
 * second one of the same signal ends the process at once. No SA_RESTART: a
 * blocking read (a prompt) returns when interrupted. With `false`, both
 * signals get their default action back (the process ends at once, without
 * the Lua interpreter's "interrupted!" traceback). For bin/zcrm only.
 * @function catch_interrupts
 * @tparam[opt] boolean catch false: the default action instead
 * @treturn nil
 */
static int zc_catch_interrupts(lua_State *L) {
  static const int sigs[] = { SIGINT, SIGTERM };
  struct sigaction sa;
  size_t i;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = (lua_isnoneornil(L, 1) || lua_toboolean(L, 1)) ? zc_on_signal : SIG_DFL;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  /* cleared before the handlers go in: a signal that comes while they are
     being installed is kept, not forgotten */
  zc_signal_caught = 0;
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    if (sigaction(sigs[i], &sa, NULL) != 0)
      return luaL_error(L, "sigaction: %s", strerror(errno));
  }
  return 0;
}

/***
 * The first signal `catch_interrupts` caught.
 * @function interrupted
 * @treturn integer|nil the signal number (2 or 15), or nil when none came
 */
static int zc_interrupted(lua_State *L) {
  int sig = (int)zc_signal_caught;
  if (sig == 0) lua_pushnil(L);
  else lua_pushinteger(L, sig);
  return 1;
}

/* }==== */

/* {==== exec */

/***
 * Replaces the process by `file` (searched on PATH when it has no slash),
 * after flushing buffered output. The argv array is a userdata, so nothing
 * malloc'd is held while Lua can raise.
 * @function exec
 * @tparam string file the program
 * @tparam table argv `{ [0] = name, arg1, ... }` (name defaults to `file`)
 * @treturn nil only on failure: nil, message, errno
 */
static int zc_exec(lua_State *L) {
  const char *file = luaL_checkstring(L, 1);
  lua_Integer i, n;
  const char **argv;
  int e;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = luaL_len(L, 2);
  if (n < 0 || n > 4096) return luaL_argerror(L, 2, "too many arguments");
  luaL_checkstack(L, (int)n + 4, "too many arguments");
  argv = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 2), 0);
  for (i = 0; i <= n; i++) {
    if (lua_geti(L, 2, i) != LUA_TSTRING) {
      if (i == 0) { lua_pop(L, 1); lua_pushvalue(L, 1); }
      else return luaL_error(L, "exec: argument %d is not a string", (int)i);
    }
    argv[i] = lua_tostring(L, -1); /* stays on the stack until exec */
  }
  argv[n + 1] = NULL;
  fflush(NULL);
  execvp(file, (char *const *)argv);
  e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "cannot run %s: %s", file, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

/* }==== */

static const luaL_Reg zc_proc_funcs[] = {
  {"catch_interrupts", zc_catch_interrupts},
  {"interrupted", zc_interrupted},
  {"exec", zc_exec},
  {NULL, NULL}
};

/* Adds the functions above to the module table on top of the stack. */
void zc_open_proc(lua_State *L) {
  luaL_setfuncs(L, zc_proc_funcs, 0);
}
