/*
** sys.c: the few operating-system services the Lua layer needs and plain Lua
** lacks: a monotonic clock, a sleep, fsync and flock of a Lua file, and private files
** (mode 0600, written atomically) for the token cache and the journal.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zcrm.h"

/* {==== clock */

/* Monotonic seconds: deadlines and backoff must not jump with the wall clock. */
static int zc_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int zc_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s <= 0) return 0;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

/* }==== */

/* {==== files */

static int zc_fail_errno(lua_State *L, const char *what, const char *path) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", what, path, strerror(e));
  return 2;
}

/* fsync(file): a journal line counts as written only once it is on disk. */
static int zc_fsync(lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  if (s->closef == NULL) return luaL_argerror(L, 1, "attempt to use a closed file");
  if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0)
    return zc_fail_errno(L, "cannot fsync", "file");
  lua_pushboolean(L, 1);
  return 1;
}

/* file_mode(path) -> permission bits, or nil, message. */
static int zc_file_mode(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return zc_fail_errno(L, "cannot stat", path);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  return 1;
}

/* write_private_file(path, data[, sync]): temp file with mode 0600 beside
** `path`, fsync (unless sync is false), rename over `path`. Readers see the old
** file or the new one, never half. */
static int zc_write_private_file(lua_State *L) {
  size_t len, off = 0;
  const char *path = luaL_checkstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  int sync = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  const char *tmp = lua_pushfstring(L, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return zc_fail_errno(L, "cannot create", tmp);
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { int e = errno; close(fd); unlink(tmp); errno = e;
                 return zc_fail_errno(L, "cannot write", tmp); }
    off += (size_t)n;
  }
  if (fchmod(fd, 0600) != 0 || (sync && fsync(fd) != 0)) {
    int e = errno; close(fd); unlink(tmp); errno = e;
    return zc_fail_errno(L, "cannot sync", tmp);
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    int e = errno; unlink(tmp); errno = e;
    return zc_fail_errno(L, "cannot rename onto", path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* lock_file(file) -> true, or nil, message, "busy": an exclusive flock on the
** open file, taken without waiting. The kernel drops it when the file is
** closed or the process ends, however it ends: a journal left by a killed run
** is never mistaken for one in use. flock, not fcntl: its locks belong to the
** open file, so two runs in one process exclude each other too. */
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

/* }==== */

static const luaL_Reg zc_sys_funcs[] = {
  {"now", zc_now},
  {"sleep", zc_sleep},
  {"fsync", zc_fsync},
  {"file_mode", zc_file_mode},
  {"lock_file", zc_lock_file},
  {"write_private_file", zc_write_private_file},
  {NULL, NULL}
};

/* Adds the functions above to the module table on top of the stack. */
int zc_open_sys(lua_State *L) {
  luaL_setfuncs(L, zc_sys_funcs, 0);
  return 0;
}
