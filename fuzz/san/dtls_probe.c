/*
** dtls_probe.c: shows the one cause of "Tracer caught signal 11 ...
** LeakSanitizer has encountered a fatal error" that `make asan` met at a
** process's exit, and that ASAN_OPTIONS=intercept_tls_get_addr=0 removes it.
**
** The ASan runtime of LLVM up to 16 (Debian 12 has 14) intercepts
** __tls_get_addr to learn where each dynamic TLS block (the TLS of a library
** loaded by dlopen) lies. A block whose address is 16 bytes past a 4096 boundary
** is taken for one carrying glibc 2.19's header, and the two words before it
** are read as its start and size (compiler-rt sanitizer_tls_get_addr.cpp,
** DTLS_on_tls_get_addr; google/sanitizers#1322). glibc since 2.25 has no such
** header: those words are ASan's own chunk header, so the recorded range is
** garbage, and LeakSanitizer's tracer faults scanning it at exit. Whether a
** block lands there depends on the allocations before it, hence "now and then".
** In the suite the blocks are those of libgnutls, libp11-kit and libcom_err,
** which libcurl brings into lua5.4 when zcrm/core.so is loaded.
**
** This program steers one block onto that offset: run it with the ASan
** options `make asan` uses and it must exit 0.
*/
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *kept[8192];

int main (int argc, char **argv) {
  void *lib;
  int (*bump) (void);
  int n = 0;
  if (argc != 2) { fprintf(stderr, "usage: dtls_probe LIB.so\n"); return 2; }
  lib = dlopen(argv[1], RTLD_NOW);
  if (lib == NULL) { fprintf(stderr, "dtls_probe: %s\n", dlerror()); return 2; }
  *(void **)&bump = dlsym(lib, "dtls_probe_bump");
  if (bump == NULL) { fprintf(stderr, "dtls_probe: %s\n", dlerror()); return 2; }
  /* Small blocks come from one size class in address order: stop when the
     next one (the TLS block glibc allocates on first use) starts 16 bytes
     into a page. */
  while (n < 8192) {
    void *p = malloc(4);
    kept[n++] = p;
    if (((uintptr_t)p + 32) % 4096 == 16) break;
  }
  return bump() == 1 ? 0 : 1;
}
