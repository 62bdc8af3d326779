/*
** sys.c: the few operating-system services the Lua layer needs and plain Lua
** lacks: a monotonic clock, a sleep, fsync and flock of a Lua file, files
** opened without following symbolic links (journal, undo plan, exports) and
** private files (mode 0600, written atomically) for the token cache.
*/
/***
 * The C core, `require "zcrm.core"`; its contract is csrc/API.md.
 * @module zcrm.core
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "zcrm.h"

/* {==== clock */

/***
 * Monotonic seconds: deadlines and backoff must not jump with the wall clock.
 * @function now
 * @treturn number seconds since an arbitrary start
 */
static int zc_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/***
 * Sleeps up to `seconds`; non-finite, negative and huge values are
 * clamped (NaN and negatives: no sleep; above a day: a day), so the
 * conversion to time_t is always defined.
 * @function sleep
 * @tparam number seconds
 * @treturn nil
 */
#define ZC_SLEEP_MAX 86400.0

static int zc_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0;                     /* also NaN */
  if (s > ZC_SLEEP_MAX) s = ZC_SLEEP_MAX;      /* also inf */
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

/***
 * Waits until one of `fds` is readable, at most `seconds` (clamped as in
 * `sleep`): many clients' `pollfd()`s waited on at once, so that a host
 * running several (zcrm.apply_orgs) sleeps until any of them has work. A
 * signal ends the wait early.
 * @function wait_readable
 * @tparam {integer,...} fds descriptors (an empty list: just the wait)
 * @tparam number seconds
 * @treturn boolean true when one of them is readable
 */
static int zc_wait_readable(lua_State *L) {
  lua_Integer i, n;
  lua_Number s;
  struct pollfd *p;
  int ms, rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  s = luaL_checknumber(L, 2);
  n = (lua_Integer)luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 65536, 1, "too many descriptors");
  /* Scratch space the collector owns: nothing leaks if a check raises. */
  p = (struct pollfd *)lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) *
                                         sizeof *p, 0);
  for (i = 0; i < n; i++) {
    lua_Integer fd;
    lua_geti(L, 1, i + 1);
    fd = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1,
                  "descriptors are integers >= 0");
    p[i].fd = (int)fd;
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  if (!(s > 0)) ms = 0;                       /* also NaN */
  else if (s > ZC_SLEEP_MAX) ms = (int)(ZC_SLEEP_MAX * 1000.0);
  else ms = (int)(s * 1000.0 + 0.999);        /* never 0 for a wait > 0 */
  rc = poll(p, (nfds_t)n, ms);
  lua_pushboolean(L, rc > 0);
  return 1;
}

/* }==== */

/* {==== files
**
** Every path is checked for an embedded NUL (the C calls would silently
** use a shorter path), and nothing here follows a symbolic link at the
** path itself: a local user who can plant one must not be able to make
** zcrm write a token or org data to a file of their choosing.
*/

/* Pushes an io error naming the path and strerror(e); returns 2 (nil, err)
** for `return`. */
static int zc_fail_errno(lua_State *L, const char *what, const char *path,
                         int e) {
  if (e == ELOOP)
    lua_pushfstring(L, "%s %s: it is a symbolic link (zcrm does not follow "
                    "symbolic links for files it writes)", what, path);
  else
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(e));
  zc_error_new(L, "FILE_ERROR", NULL, 0, NULL);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, e);
  lua_setfield(L, -2, "errno");
  lua_setfield(L, -2, "details");
  return zc_fail(L);
}

/* The path argument: a string without NUL. NULL (with nil, err pushed)
** when it has one. */
static const char *zc_path_arg(lua_State *L, int arg) {
  size_t len;
  const char *path = luaL_checklstring(L, arg, &len);
  if (strlen(path) != len) {
    lua_pushliteral(L, "the file path contains a NUL byte");
    zc_error_new(L, "INVALID_ARGUMENT", NULL, 0, NULL);
    zc_fail(L);
    return NULL;
  }
  return path;
}

/***
 * Flushes and fsyncs a Lua file: a journal line counts as written only once
 * it is on disk.
 * @function fsync
 * @tparam file file an open Lua file
 * @tparam[opt="file"] string name what the error calls the file, e.g. its path
 * @treturn true|nil true, or nil and an error object
 */
static int zc_fsync(lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  const char *name = luaL_optstring(L, 2, "file");
  if (s->closef == NULL) return luaL_argerror(L, 1, "attempt to use a closed file");
  if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0)
    return zc_fail_errno(L, "cannot fsync", name, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * The permission bits of a file, and whether the effective user owns it
 * (stat, so a link is followed here: it only reads the mode).
 * @function file_mode
 * @tparam string path
 * @treturn integer|nil the bits (e.g. 0x180 for 0600), or nil and an error object
 * @treturn boolean true when the file's owner is the effective user
 */
static int zc_file_mode(lua_State *L) {
  const char *path = zc_path_arg(L, 1);
  struct stat st;
  if (path == NULL) return 2;
  if (stat(path, &st) != 0) return zc_fail_errno(L, "cannot stat", path, errno);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_pushboolean(L, st.st_uid == geteuid());
  return 2;
}

/* The closef of files made by open_file (liolib's io_fclose). */
static int zc_file_close(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int ok = fclose(p->f) == 0;
  return luaL_fileresult(L, ok, NULL);
}

/***
 * Opens a file without following a symbolic link at `path`: mode "r" read,
 * "w" create/truncate, "wx" create, failing when the path exists, "a"
 * append/create. Always O_NOFOLLOW | O_CLOEXEC; new files get mode 0600.
 * The userdata is made first, in liolib's closed state (closef NULL), so a
 * memory error leaks no descriptor.
 * @function open_file
 * @tparam string path
 * @tparam string mode "r", "w", "wx" or "a"
 * @treturn file|nil a Lua file (as io.open's), or nil and an error object
 */
static int zc_open_file(lua_State *L) {
  static const char *const modes[] = { "r", "w", "wx", "a", NULL };
  static const int flags[] = {
    O_RDONLY, O_WRONLY | O_CREAT | O_TRUNC, O_WRONLY | O_CREAT | O_EXCL,
    O_WRONLY | O_CREAT | O_APPEND
  };
  static const char *const fmodes[] = { "r", "w", "w", "a" };
  const char *path = zc_path_arg(L, 1);
  int m, fd;
  luaL_Stream *p;
  FILE *f;
  if (path == NULL) return 2;
  m = luaL_checkoption(L, 2, NULL, modes);
  lua_settop(L, 2);
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TNIL)
    return luaL_error(L, "open_file needs the io library");
  lua_pop(L, 1);
  p = (luaL_Stream *)lua_newuserdatauv(L, sizeof *p, 0);
  p->f = NULL;
  p->closef = NULL;                           /* closed until opened */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  do fd = open(path, flags[m] | O_NOFOLLOW | O_CLOEXEC, 0600);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return zc_fail_errno(L, "cannot open", path, errno);
  f = fdopen(fd, fmodes[m]);
  if (f == NULL) {
    int e = errno;
    close(fd);
    return zc_fail_errno(L, "cannot open", path, e);
  }
  p->f = f;
  p->closef = zc_file_close;
  return 1;
}

/* Writes all of data to fd; 0 or errno. */
static int zc_write_all(int fd, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    off += (size_t)n;
  }
  return 0;
}

/***
 * Writes `data` to a new temporary file with a unique name beside `path`
 * (mkstemp: O_CREAT|O_EXCL, mode 0600, so no planted file or symbolic link
 * is ever written through), fsyncs it (unless `sync` is false) and renames
 * it over `path`. Readers see the old file or the new one, never half; two
 * writers never share a temporary file.
 * @function write_private_file
 * @tparam string path
 * @tparam string data
 * @tparam[opt=true] boolean sync
 * @treturn true|nil true, or nil and an error object
 */
static int zc_write_private_file(lua_State *L) {
  size_t len, plen;
  const char *path = zc_path_arg(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  int sync = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  char *tmp;
  int fd, e;
  if (path == NULL) return 2;
  lua_settop(L, 3);
  plen = strlen(path);
  tmp = (char *)lua_newuserdatauv(L, plen + sizeof ".tmp.XXXXXX", 0);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  fd = mkstemp(tmp);
  if (fd < 0) return zc_fail_errno(L, "cannot create a temporary file for",
                                   path, errno);
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  e = zc_write_all(fd, data, len);
  if (e == 0 && sync && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && rename(tmp, path) != 0) e = errno;
  if (e != 0) {
    unlink(tmp);
    return zc_fail_errno(L, "cannot write", path, e);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * Takes an exclusive flock on an open Lua file, without waiting. The kernel
 * drops it when the file is closed or the process ends, however it ends: a
 * journal left by a killed run is never mistaken for one in use. flock, not
 * fcntl: its locks belong to the open file, so two runs in one process
 * exclude each other too.
 * @function lock_file
 * @tparam file file an open Lua file
 * @treturn true|nil true; or nil, a message and "busy" when another open
 * file holds the lock; or nil and a message
 */
static int zc_lock_file(lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (s->closef == NULL) return luaL_argerror(L, 1, "attempt to use a closed file");
  while (flock(fileno(s->f), LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EINTR) continue;
    lua_pushnil(L);
    if (e == EWOULDBLOCK) {
      lua_pushliteral(L, "the file is locked by another run");
      lua_pushliteral(L, "busy");
      return 3;
    }
    lua_pushfstring(L, "cannot lock: %s", strerror(e));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * Whether `path` names the very file `file` has open (same device and inode;
 * a symbolic link at `path` is not followed, so it never does): the check
 * that a lock taken on an open file is the lock of the name (plan/journal.lua).
 * @function same_file
 * @tparam file file an open Lua file
 * @tparam string path
 * @treturn boolean|nil false when `path` names another file or nothing; nil
 * and an error for a path with a NUL byte, or when `file` cannot be read
 */
static int zc_same_file(lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  const char *path;
  struct stat a, b;
  if (s->closef == NULL) return luaL_argerror(L, 1, "attempt to use a closed file");
  path = zc_path_arg(L, 2);
  if (path == NULL) return 2;
  if (fstat(fileno(s->f), &a) != 0)
    return zc_fail_errno(L, "cannot read", path, errno);
  lua_pushboolean(L, lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
                     a.st_ino == b.st_ino);
  return 1;
}

/***
 * Makes a directory (mode 0700) unless it exists. With `private`, the
 * directory must then be a real directory (not a symbolic link) owned by
 * this user, and its mode becomes 0700: `zcrm login` keeps secrets there.
 * @function make_dir
 * @tparam string path
 * @tparam[opt=false] boolean private
 * @treturn true|nil true, or nil and an error object
 */
static int zc_make_dir(lua_State *L) {
  const char *path = zc_path_arg(L, 1);
  int priv = lua_toboolean(L, 2);
  struct stat st;
  if (path == NULL) return 2;
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return zc_fail_errno(L, "cannot make the directory", path, errno);
  if (priv) {
    if (lstat(path, &st) != 0)
      return zc_fail_errno(L, "cannot stat", path, errno);
    if (S_ISLNK(st.st_mode))
      return zc_fail_errno(L, "cannot use the directory", path, ELOOP);
    if (!S_ISDIR(st.st_mode))
      return zc_fail_errno(L, "cannot use the directory", path, ENOTDIR);
    if (st.st_uid != geteuid())
      return zc_fail_errno(L, "cannot use the directory", path, EPERM);
    if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) != 0)
      return zc_fail_errno(L, "cannot chmod", path, errno);
  }
  lua_pushboolean(L, 1);
  return 1;
}

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

static const luaL_Reg zc_sys_funcs[] = {
  {"now", zc_now},
  {"sleep", zc_sleep},
  {"wait_readable", zc_wait_readable},
  {"fsync", zc_fsync},
  {"file_mode", zc_file_mode},
  {"lock_file", zc_lock_file},
  {"same_file", zc_same_file},
  {"open_file", zc_open_file},
  {"write_private_file", zc_write_private_file},
  {"isatty", zc_isatty},
  {"make_dir", zc_make_dir},
  {"read_secret", zc_read_secret},
  {"term_width", zc_term_width},
  {NULL, NULL}
};

/* Adds the functions above to the module table on top of the stack. */
int zc_open_sys(lua_State *L) {
  luaL_setfuncs(L, zc_sys_funcs, 0);
  return 0;
}
