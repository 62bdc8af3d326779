/*
** sys.c: the few operating-system services the Lua layer needs and plain Lua
** lacks: a monotonic clock, a sleep, fsync and flock of a Lua file, files
** opened without following symbolic links (journal, undo plan, exports) and
** private files (mode 0600, written atomically) for the token cache.
*/
/* Linux: O_PATH (a directory searched, never read), readlinkat of an O_PATH
** descriptor and getrandom; elsewhere (ZC_NO_O_PATH builds that path on
** Linux) directories are opened O_RDONLY, a link is read by name and
** randomness comes from /dev/urandom. */
#define _GNU_SOURCE
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
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "sys.h"

#if defined(__linux__) && defined(O_PATH) && !defined(ZC_NO_O_PATH)
#include <sys/random.h>
#define ZC_O_PATH 1
#define ZC_DIR_OPEN O_PATH
#else
#define ZC_O_PATH 0
#define ZC_DIR_OPEN (O_RDONLY | O_DIRECTORY)
#endif

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
** zcrm write a token or org data to a file of their choosing. Nor in the
** directories above it: see zc_walk.
*/

/* A walk's count of links followed and, when it stopped at a link it does
** not trust, that link's name. */
typedef struct {
  int links;
  char untrusted[NAME_MAX + 1];
} zc_walk_state;

enum { ZC_MAX_LINKS = 40 };                   /* the kernel's own limit */

static int zc_walk(int at, const char *path, size_t len, zc_walk_state *w);

/* Opens the directory `name` in directory `at`, following it when it is a
** symbolic link owned by this user or root, and refusing (EPERM, its name in
** w->untrusted) any other link: what fs.protected_symlinks does in sticky
** directories, for every directory. The link is opened itself (O_PATH |
** O_NOFOLLOW), its owner read and its target read from that one descriptor,
** so nothing can swap it between the check and the use. -1 and errno on
** failure. */
static int zc_step(int at, const char *name, zc_walk_state *w) {
  struct stat st;
  char *target;
  ssize_t n;
  int fd = -1, e;
#if ZC_O_PATH
  do fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  if (fstat(fd, &st) != 0) goto fail;
#else
  /* Without O_PATH the link's owner and target are read by name: a link
  ** swapped between those two calls is not seen. */
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
  if (S_ISDIR(st.st_mode)) {
    do fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
  }
#endif
  if (S_ISDIR(st.st_mode)) return fd;
  errno = ENOTDIR;
  if (!S_ISLNK(st.st_mode)) goto fail;
  errno = EPERM;
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    strcpy(w->untrusted, name);               /* name is at most NAME_MAX */
    goto fail;
  }
  errno = ELOOP;
  if (++w->links > ZC_MAX_LINKS) goto fail;
  target = (char *)malloc(PATH_MAX);
  if (target == NULL) goto fail;
#if ZC_O_PATH
  n = readlinkat(fd, "", target, PATH_MAX);
#else
  n = readlinkat(at, name, target, PATH_MAX);
#endif
  e = n < 0 ? errno : n >= PATH_MAX ? ENAMETOOLONG : 0;
  if (fd >= 0) close(fd);
  fd = e ? -1 : zc_walk(at, target, (size_t)n, w);
  if (e == 0) e = errno;
  free(target);
  errno = e;
  return fd;
fail:
  e = errno;
  if (fd >= 0) close(fd);
  errno = e;
  return -1;
}

/* Opens (O_PATH where there is one) the directory that the first `len` bytes
** of `path` name, relative to `at` (AT_FDCWD: the working directory) unless
** absolute: one component at a time with zc_step. -1 and errno on failure. */
static int zc_walk(int at, const char *path, size_t len, zc_walk_state *w) {
  char name[NAME_MAX + 1];
  size_t i = 0, j;
  int cur, next, e;
  if (len > 0 && path[0] == '/') cur = open("/", ZC_DIR_OPEN | O_DIRECTORY | O_CLOEXEC);
  else cur = openat(at, ".", ZC_DIR_OPEN | O_DIRECTORY | O_CLOEXEC);
  while (cur >= 0 && i < len) {
    while (i < len && path[i] == '/') i++;
    for (j = i; j < len && path[j] != '/'; j++) {}
    if (j == i) break;
    if (j - i > NAME_MAX) {
      close(cur);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(name, path + i, j - i);
    name[j - i] = '\0';
    next = zc_step(cur, name, w);
    e = errno;
    close(cur);
    errno = e;
    cur = next;
    i = j;
  }
  return cur;
}

/* Opens the directory holding `path`'s last component by zc_walk and points
** *leaf at that component ("." when the path ends in a slash, so that the
** open that follows fails as it would on a directory). */
static int zc_open_parent(const char *path, const char **leaf,
                          zc_walk_state *w) {
  const char *slash = strrchr(path, '/');
  w->links = 0;
  w->untrusted[0] = '\0';
  if (slash == NULL) {
    *leaf = path;
    return zc_walk(AT_FDCWD, "", 0, w);
  }
  *leaf = slash[1] != '\0' ? slash + 1 : ".";
  return zc_walk(AT_FDCWD, path, slash == path ? 1 : (size_t)(slash - path), w);
}

/* Pushes an io error naming the path and strerror(e), or the link a walk
** stopped at (link: NULL or empty when none); returns 2 (nil, err) for
** `return`. */
static int zc_fail_link(lua_State *L, const char *what, const char *path,
                        const char *link, int e) {
  int at_link = e == EPERM && link != NULL && link[0] != '\0';
  if (at_link)
    lua_pushfstring(L, "%s %s: a directory on its path, %s, is a symbolic link "
                    "owned by another user (zcrm follows a link in a path only "
                    "when it belongs to you or to root)", what, path, link);
  else if (e == ELOOP)
    lua_pushfstring(L, "%s %s: it is a symbolic link (zcrm does not follow "
                    "symbolic links for files it writes)", what, path);
  else
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(e));
  zc_error_new(L, "FILE_ERROR", NULL, 0, NULL);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  if (at_link) {
    lua_pushstring(L, link);
    lua_setfield(L, -2, "link");
  }
  lua_pushinteger(L, e);
  lua_setfield(L, -2, "errno");
  lua_setfield(L, -2, "details");
  return zc_fail(L);
}

static int zc_fail_errno(lua_State *L, const char *what, const char *path,
                         int e) {
  return zc_fail_link(L, what, path, NULL, e);
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
 * Opens a file without following a symbolic link at `path`, nor one owned by
 * another user (not root) on the way to it: mode "r" read,
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
  const char *path = zc_path_arg(L, 1), *leaf;
  int m, fd, dir, e;
  zc_walk_state w;
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
  dir = zc_open_parent(path, &leaf, &w);
  if (dir < 0) return zc_fail_link(L, "cannot open", path, w.untrusted, errno);
  do fd = openat(dir, leaf, flags[m] | O_NOFOLLOW | O_CLOEXEC, 0600);
  while (fd < 0 && errno == EINTR);
  e = errno;
  close(dir);
  if (fd < 0) return zc_fail_errno(L, "cannot open", path, e);
  f = fdopen(fd, fmodes[m]);
  if (f == NULL) {
    e = errno;
    close(fd);
    return zc_fail_errno(L, "cannot open", path, e);
  }
  p->f = f;
  p->closef = zc_file_close;
  return 1;
}

/* Writes all of data to fd; 0 or errno. (sys.h: proc.c writes a prompt
** with it.) */
int zc_write_all(int fd, const char *data, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    off += (size_t)n;
  }
  return 0;
}

/* Fills buf with n random bytes; 0 and errno on failure. */
static int zc_random(unsigned char *buf, size_t n) {
#if ZC_O_PATH
  return getrandom(buf, n, 0) == (ssize_t)n;
#else
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), ok;
  if (fd < 0) return 0;
  ok = read(fd, buf, n) == (ssize_t)n;
  close(fd);
  return ok;
#endif
}

/* Creates a new file for writing in `dir` named `leaf` ".tmp." and 12
** unguessable letters, the name left in tmp (room for NAME_MAX + 1 bytes):
** O_CREAT | O_EXCL, mode 0600, so nothing planted is ever written through.
** -1 and errno on failure. */
static int zc_create_temporary(int dir, const char *leaf, char *tmp) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char r[12];
  size_t len = strlen(leaf), i;
  int tries, fd = -1;
  if (len + sizeof ".tmp." + sizeof r > NAME_MAX + 1) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(tmp, leaf, len);
  memcpy(tmp + len, ".tmp.", 5);
  for (tries = 0; fd < 0 && tries < 100; tries++) {
    if (!zc_random(r, sizeof r)) {
      if (errno == EINTR) continue;
      return -1;
    }
    for (i = 0; i < sizeof r; i++) tmp[len + 5 + i] = letters[r[i] % 36];
    tmp[len + 5 + sizeof r] = '\0';
    fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST && errno != EINTR) return -1;
  }
  return fd;
}

/***
 * Writes `data` to a new temporary file with an unguessable name beside
 * `path` (O_CREAT|O_EXCL, mode 0600, so no planted file or symbolic link
 * is ever written through), fsyncs it (unless `sync` is false) and renames
 * it over `path`. Readers see the old file or the new one, never half; two
 * writers never share a temporary file. The directory is reached as
 * `open_file` reaches it: through no link another user owns.
 * @function write_private_file
 * @tparam string path
 * @tparam string data
 * @tparam[opt=true] boolean sync
 * @treturn true|nil true, or nil and an error object
 */
static int zc_write_private_file(lua_State *L) {
  size_t len;
  const char *path = zc_path_arg(L, 1), *leaf;
  const char *data = luaL_checklstring(L, 2, &len);
  int sync = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  char tmp[NAME_MAX + 1];
  zc_walk_state w;
  int dir, fd, e;
  if (path == NULL) return 2;
  dir = zc_open_parent(path, &leaf, &w);
  if (dir < 0) return zc_fail_link(L, "cannot write", path, w.untrusted, errno);
  fd = zc_create_temporary(dir, leaf, tmp);
  if (fd < 0) {
    e = errno;
    close(dir);
    return zc_fail_errno(L, "cannot create a temporary file for", path, e);
  }
  e = zc_write_all(fd, data, len);
  if (e == 0 && sync && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && renameat(dir, tmp, dir, leaf) != 0) e = errno;
  if (e != 0) unlinkat(dir, tmp, 0);
  close(dir);
  if (e != 0) return zc_fail_errno(L, "cannot write", path, e);
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
  const char *path = zc_path_arg(L, 1), *leaf;
  int priv = lua_toboolean(L, 2);
  zc_walk_state w;
  const char *what = "cannot use the directory";
  struct stat st;
  int dir, fd, e = 0;
  if (path == NULL) return 2;
  dir = zc_open_parent(path, &leaf, &w);
  if (dir < 0) return zc_fail_link(L, "cannot make the directory", path, w.untrusted, errno);
  if (mkdirat(dir, leaf, 0700) != 0 && errno != EEXIST) {
    e = errno;
    close(dir);
    return zc_fail_errno(L, "cannot make the directory", path, e);
  }
  if (priv) {
    /* Opened without following, then checked and changed through that one
    ** descriptor: what is checked is what is changed. */
    do fd = openat(dir, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      e = errno;
      if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        e = ELOOP;
    } else {
      if (fstat(fd, &st) != 0) e = errno;
      else if (st.st_uid != geteuid()) e = EPERM;
      else if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
        e = errno;
        what = "cannot chmod";
      }
      close(fd);
    }
  }
  close(dir);
  if (e != 0) return zc_fail_errno(L, what, path, e);
  lua_pushboolean(L, 1);
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
  {"make_dir", zc_make_dir},
  {NULL, NULL}
};

/* Adds the functions above to the module table on top of the stack. */
int zc_open_sys(lua_State *L) {
  luaL_setfuncs(L, zc_sys_funcs, 0);
  return 0;
}
