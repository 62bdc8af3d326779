/*
** proc.c: the module `zcrm.proc`, what the `zcrm` command needs from the
** process around it and plain Lua lacks: an interrupt flag that SIGINT and
** SIGTERM set, exec, and its terminal (isatty, its width, a line read
** without echo). Library users never meet these: only bin/zcrm and
** lua/zcrm/cli* call them, and `zcrm.core` (transport and validation) does
** not hold them. The same .so as zcrm.core; luaopen_zcrm_proc is in core.c.
*/
/***
 * What bin/zcrm needs from its process, `require "zcrm.proc"`; its
 * contract is csrc/API.md.
 * @module zcrm.proc
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "proc.h"
#include "sys.h"

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

/* {==== terminals */

/***
 * Reads one line from the terminal on standard input without echoing it
 * (a client secret, a grant code), after writing `prompt` to standard
 * error. The line is read into a buffer the userdata holds, so a memory
 * error leaks nothing; the terminal's settings are restored before any Lua
 * call that can raise.
 * @function read_secret
 * @tparam string prompt
 * @treturn string|nil the line without its newline, or nil and a message
 * (standard input is not a terminal, end of input, "Interrupted system
 * call" when a caught signal came: see `catch_interrupts`)
 */
static int zc_read_secret(lua_State *L) {
  enum { MAX = 4096 };
  size_t plen;
  const char *prompt = luaL_checklstring(L, 1, &plen);
  char *buf = (char *)lua_newuserdatauv(L, MAX + 1, 0);
  struct termios old, quiet;
  size_t n = 0;
  int e = 0, eof = 0, over = 0;
  if (tcgetattr(0, &old) != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "standard input is not a terminal");
    return 2;
  }
  (void)zc_write_all(2, prompt, plen);
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  quiet.c_lflag |= ECHONL;
  (void)tcsetattr(0, TCSAFLUSH, &quiet);
  for (;;) {
    char c;
    ssize_t r = read(0, &c, 1);
    if (r < 0) { e = errno; break; }   /* EINTR too: bin/zcrm caught Ctrl-C */
    if (r == 0) { eof = 1; break; }
    if (c == '\n' || c == '\r') break;
    if (n < MAX) buf[n++] = c; else over = 1;
  }
  (void)tcsetattr(0, TCSAFLUSH, &old);
  if (e != 0 || (eof && n == 0) || over) {
    memset(buf, 0, n);
    lua_pushnil(L);
    if (e != 0) lua_pushstring(L, strerror(e));
    else if (over) lua_pushliteral(L, "the line is too long");
    else lua_pushliteral(L, "end of input");
    return 2;
  }
  lua_pushlstring(L, buf, n);
  memset(buf, 0, n);
  return 1;
}

/***
 * The width in columns of the terminal on a descriptor (`zcrm report`
 * fits its table to it).
 * @function term_width
 * @tparam integer fd a file descriptor
 * @treturn integer|nil the columns, or nil when fd is not a terminal
 */
static int zc_term_width(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)ws.ws_col);
  return 1;
}

/***
 * Whether a descriptor or a Lua file is a terminal (bin/zcrm: colours, the
 * progress bar, the confirmation prompt).
 * @function isatty
 * @tparam integer|file fd a file descriptor, or an open Lua file
 * @treturn boolean
 */
static int zc_isatty(lua_State *L) {
  int fd;
  if (lua_isinteger(L, 1)) {
    fd = (int)lua_tointeger(L, 1);
  } else {
    luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (s->closef == NULL) return luaL_argerror(L, 1, "attempt to use a closed file");
    fd = fileno(s->f);
  }
  lua_pushboolean(L, isatty(fd) == 1);
  return 1;
}

/* }==== */

static const luaL_Reg zc_proc_funcs[] = {
  {"catch_interrupts", zc_catch_interrupts},
  {"interrupted", zc_interrupted},
  {"exec", zc_exec},
  {"isatty", zc_isatty},
  {"term_width", zc_term_width},
  {"read_secret", zc_read_secret},
  {NULL, NULL}
};

/* Adds the functions above to the module table on top of the stack. */
void zc_open_proc(lua_State *L) {
  luaL_setfuncs(L, zc_proc_funcs, 0);
}
