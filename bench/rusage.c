/* rusage: run a command and print what it cost, from wait4(2)'s rusage of that
 * one child (so the emulator and this wrapper are not counted):
 *
 *   rusage [-o FILE] COMMAND [ARG...]
 *   -> "user_s sys_s maxrss_kb wall_s exit_status" on stderr, or appended to FILE
 *
 * Used by bench/run.sh for figures 2 and 4: /usr/bin/time prints CPU times in
 * hundredths of a second, too coarse for runs of a few tenths. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char **argv) {
  const char *out = NULL;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-o") == 0) { out = argv[2]; first = 3; }
  if (first >= argc) {
    fprintf(stderr, "usage: rusage [-o FILE] COMMAND [ARG...]\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) { perror("rusage: fork"); return 1; }
  if (pid == 0) {
    execvp(argv[first], argv + first);
    perror("rusage: exec");
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) { perror("rusage: wait4"); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *f = out ? fopen(out, "a") : stderr;
  if (!f) { perror("rusage: open"); return 1; }
  fprintf(f, "%.6f %.6f %ld %.6f %d\n", tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss, wall, code);
  if (out) fclose(f);
  return code;
}
