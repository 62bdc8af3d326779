/* dtls_probe_lib.c: a library with TLS, loaded by dtls_probe.c with dlopen. */
int dtls_probe_bump (void);
static __thread int counter;
int dtls_probe_bump (void) { return ++counter; }
