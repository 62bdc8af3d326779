/*
** runtime.c: the running emulator's life cycle and what routes need from
** it besides the org: sleeps that end at once on shutdown, and --state
** loaded at start and saved durably before a change is answered. No
** libmicrohttpd here, so the fuzz target links this file as it is.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"


/* {==================================================================
** Sleeping and stopping
** =================================================================== */

/* Sleep, but wake at once when the emulator shuts down. */
void emu_sleep_ms (emu *e, long ms) {
  struct timespec until;
  if (ms <= 0) return;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&e->stop_lock);
  while (!e->stopping)
    if (pthread_cond_timedwait(&e->stop_cond, &e->stop_lock, &until)
        == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&e->stop_lock);
}

int emu_stopping (emu *e) {
  int s;
  pthread_mutex_lock(&e->stop_lock);
  s = e->stopping;
  pthread_mutex_unlock(&e->stop_lock);
  return s;
}

/* From now on every sleep ends at once, and new ones do not start. */
void emu_stop (emu *e) {
  pthread_mutex_lock(&e->stop_lock);
  e->stopping = 1;
  pthread_cond_broadcast(&e->stop_cond);
  pthread_mutex_unlock(&e->stop_lock);
}

/* }================================================================== */


/* {==================================================================
** --state files
** =================================================================== */

/* The whole file, not following a symlink, with a '\0' after its *len
** bytes; NULL with errno set (emu_file_error says why). Only a regular
** file is read: O_NONBLOCK keeps a FIFO from blocking the open, fstat then
** refuses it, a device (/dev/zero) or a directory (EINVAL); more than
** EMU_FILE_MAX bytes is EFBIG, checked before and while reading, so a file
** that grows meanwhile is no way around it. */
char *emu_read_file (const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  char *buf = NULL;
  size_t cap = 0, n = 0;
  if (fd < 0) return NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > EMU_FILE_MAX) {
    int why = errno;
    if (fstat(fd, &st) == 0) why = !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
    close(fd);
    errno = why;
    return NULL;
  }
  for (;;) {
    ssize_t got;
    if (n + 65536 + 1 > cap) {
      char *p;
      cap = cap ? cap * 2 : 65536;
      p = (char *)realloc(buf, cap);
      if (p == NULL) { free(buf); close(fd); errno = ENOMEM; return NULL; }
      buf = p;
    }
    got = read(fd, buf + n, cap - n - 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) { int saved = errno; free(buf); close(fd); errno = saved; return NULL; }
    if (got == 0) break;
    n += (size_t)got;
    if (n > EMU_FILE_MAX) { free(buf); close(fd); errno = EFBIG; return NULL; }
  }
  close(fd);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Why emu_read_file failed, for "cannot read FILE: ..." */
const char *emu_file_error (int err) {
  if (err == ELOOP) return "it is a symbolic link, which is not followed";
  if (err == EINVAL) return "not a regular file (a FIFO, device or directory)";
  if (err == EFBIG) return "larger than " EMU_FILE_MAX_TEXT;
  return strerror(err);
}

/* The directory holding path into dir; -1 when it does not fit. */
static int dir_of (const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return snprintf(dir, size, ".") >= (int)size ? -1 : 0;
  if (slash == path) return snprintf(dir, size, "/") >= (int)size ? -1 : 0;
  return snprintf(dir, size, "%.*s", (int)(slash - path), path) >= (int)size
         ? -1 : 0;
}

/* The PID of "NAME.tmp.PID.XXXXXX" (six random characters, from mkostemp)
** when entry is that, else -1. */
static long tmp_pid (const char *entry, const char *name) {
  size_t n = strlen(name), digits;
  const char *d;
  if (strncmp(entry, name, n) != 0 || strncmp(entry + n, ".tmp.", 5) != 0)
    return -1;
  d = entry + n + 5;
  digits = strspn(d, "0123456789");
  if (digits == 0 || digits > 9 || d[digits] != '.' || strlen(d + digits + 1) != 6)
    return -1;
  return strtol(d, NULL, 10);
}

/* Remove the temporaries that saves of path by a process now dead left
** behind (a kill -9 between creating and renaming one). Each run names its
** own "path.tmp.PID.XXXXXX", so two emulators sharing a state file never
** touch each other's while both live; a single fixed name could not tell a
** crashed run's leftover from another live run's save in progress. Only names
** whose PID is no process are removed. The random part closes the window of
** a reused PID: a new process with the dead one's PID names its temporary
** differently, so removing the old name never removes the new file. unlinkat
** removes a symlink itself, never what it points at. Best effort: what cannot
** be removed stays, harmless. */
static void remove_stale_tmps (const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
  DIR *d;
  struct dirent *ent;
  if (dir_of(path, dir, sizeof dir) != 0) return;
  d = opendir(dir);
  if (d == NULL) return;
  while ((ent = readdir(d)) != NULL) {
    long pid = tmp_pid(ent->d_name, name);
    /* EPERM: alive, someone else's */
    if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
      unlinkat(dirfd(d), ent->d_name, 0);
  }
  closedir(d);
}

/* Write text to path durably: a temporary file beside it, written and
** fsync'd, renamed over path (atomic: a reader sees the old file or the new
** one, never half), then the directory fsync'd so the rename itself survives
** a crash. When this returns 0 the text is on disk. Neither name is followed
** if it is a symlink. -1 with errno set on failure; no temporary is left. */
static int write_durable (const char *path, const char *text, size_t len) {
  char tmp[4096], dir[4096];
  size_t off = 0;
  int fd, ok, saved;
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid())
      >= (int)sizeof tmp || dir_of(path, dir, sizeof dir) != 0) {
    errno = ENAMETOOLONG;
    return -1;
  }
  /* O_CREAT | O_EXCL under an unguessable name: never a planted file or link */
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return -1;
  ok = 1;
  while (ok && off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n > 0) off += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else { if (n == 0) errno = EIO; ok = 0; }
  }
  ok = ok && fsync(fd) == 0;
  saved = errno;
  ok = (close(fd) == 0) && ok;
  if (ok && rename(tmp, path) == 0) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    ok = fsync(dfd) == 0;
    saved = errno;
    close(dfd);
    errno = saved;
    return ok ? 0 : -1;
  }
  if (ok) saved = errno;
  unlink(tmp);
  errno = saved;
  return -1;
}

/* --state: write the org when it changed since the last save, and return
** only once it is on disk (write_durable), so that an answer sent after
** this returned 0 never reports a change the file lacks. Concurrent
** changes share one write: whoever holds save_lock writes the newest
** version, and the others find it saved. The text is made under the org_data
** lock; the slow write happens outside it. 0, or -1 when the file could
** not be written (said on stderr). */
int emu_save (emu *e) {
  char *text = NULL;
  size_t len = 0;
  uint64_t v;
  int rc = 0;
  if (e->cfg.state_file == NULL) return 0;
  pthread_mutex_lock(&e->save_lock);
  pthread_mutex_lock(&e->org_lock);
  v = e->org->version;
  if (v != e->saved_version) {
    text = org_state_text(e->org, &len);
    if (text == NULL) rc = -1;
  }
  pthread_mutex_unlock(&e->org_lock);
  if (text) {
    if (write_durable(e->cfg.state_file, text, len) == 0)
      e->saved_version = v;
    else {
      fprintf(stderr, "zcrm-emulator: cannot save %s: %s\n",
              e->cfg.state_file, strerror(errno));
      rc = -1;
    }
    free(text);
  } else if (rc)
    fprintf(stderr, "zcrm-emulator: cannot save %s: out of memory\n",
            e->cfg.state_file);
  pthread_mutex_unlock(&e->save_lock);
  return rc;
}

/* }================================================================== */


/* {==================================================================
** Life cycle
** =================================================================== */

/* Everything but the HTTP side: locks, counters, the org (from --state
** when its file exists, else seeded), tokens and faults. 0 with err set
** on failure; emu_close undoes what was done either way. */
int emu_open (emu *e, char *err, size_t errlen) {
  pthread_condattr_t ca;
  pthread_mutex_init(&e->org_lock, NULL);
  pthread_mutex_init(&e->save_lock, NULL);
  pthread_mutex_init(&e->stop_lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* emu_sleep_ms */
  pthread_cond_init(&e->stop_cond, &ca);
  pthread_condattr_destroy(&ca);
  stats_init(&e->st);
  if (e->cfg.state_file) remove_stale_tmps(e->cfg.state_file);
  if (e->cfg.state_file && access(e->cfg.state_file, F_OK) == 0) {
    size_t len;
    char *text = emu_read_file(e->cfg.state_file, &len);
    if (text == NULL) {
      snprintf(err, errlen, "cannot read %s: %s", e->cfg.state_file,
               emu_file_error(errno));
      return 0;
    }
    e->org = org_from_state(text, len, e->cfg.state_file, err, errlen);
    free(text);
    if (e->org == NULL) return 0;
    e->saved_version = e->org->version;
  } else {
    e->org = org_seed(e->cfg.extra_modules, e->cfg.extra_profiles);
    e->saved_version = (uint64_t)-1;
    if (e->org == NULL) { snprintf(err, errlen, "out of memory"); return 0; }
  }
  e->auth = auth_new(&e->cfg);
  if (e->auth == NULL) { snprintf(err, errlen, "out of memory"); return 0; }
  e->faults = faults_new(&e->cfg, err, errlen);
  return e->faults != NULL;
}

void emu_close (emu *e) {
  org_free(e->org);
  auth_free(e->auth);
  faults_free(e->faults);
  free(e->tls_pem[0]);
  free(e->tls_pem[1]);
  stats_destroy(&e->st);
  pthread_cond_destroy(&e->stop_cond);
  pthread_mutex_destroy(&e->stop_lock);
  pthread_mutex_destroy(&e->save_lock);
  pthread_mutex_destroy(&e->org_lock);
}

/* }================================================================== */
