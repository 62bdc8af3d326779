/*
** server.c: the HTTP side on libmicrohttpd. One thread per connection,
** so --latency-ms, slow answers and drips sleep in their own thread and
** hold up no one else; keep-alive is MHD's HTTP/1.1 default. Slow clients
** cannot starve the others: one address holds at most
** --max-client-connections, and a connection whose first request's headers
** are not in after --header-timeout seconds is cut (the header guard).
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "emu.h"

#define DRIP_MS 50

typedef struct conn_ctx {
  char *body;
  size_t len, cap;
  int too_big;
  int answered;
} conn_ctx;

typedef struct drip {
  emu *e;
  char *body;
  size_t len;
} drip;


/* {==================================================================
** The header guard: a connection must send its first request's headers
** within --header-timeout seconds of being accepted, however it trickles
** them (--idle-timeout alone restarts at every byte). Connections waiting
** for their headers are listed; a thread shuts down the socket of one that
** is late, and libmicrohttpd then closes it as a client that went away.
** MHD says CLOSED (which unlists) before it closes the descriptor, so the
** guard never touches a descriptor number reused by another connection.
** =================================================================== */

typedef struct waiting_conn {
  struct waiting_conn *prev, *next;
  int fd;
  long long since_ms;             /* CLOCK_MONOTONIC, when accepted */
  int listed, cut;
} waiting_conn;

struct conn_guard {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  waiting_conn *head;
  long long limit_ms;
  int quit, started;
  pthread_t thread;
};

static long long mono_ms (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void unlist (conn_guard *g, waiting_conn *w) {
  if (!w->listed) return;
  if (w->prev) w->prev->next = w->next; else g->head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  w->listed = 0;
}

static void *guard_main (void *cls) {
  conn_guard *g = (conn_guard *)cls;
  pthread_mutex_lock(&g->lock);
  while (!g->quit) {
    struct timespec until;
    long long now = mono_ms();
    waiting_conn *w;
    for (w = g->head; w; w = w->next)
      if (!w->cut && now - w->since_ms >= g->limit_ms) {
        shutdown(w->fd, SHUT_RDWR);
        w->cut = 1;
      }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&g->wake, &g->lock, &until);
  }
  pthread_mutex_unlock(&g->lock);
  return NULL;
}

static void on_connection (void *cls, struct MHD_Connection *c,
                           void **socket_context,
                           enum MHD_ConnectionNotificationCode toe) {
  conn_guard *g = ((emu *)cls)->guard;
  waiting_conn *w = (waiting_conn *)*socket_context;
  if (g == NULL) return;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL) return;
    w = (waiting_conn *)calloc(1, sizeof *w);
    if (w == NULL) return;        /* unguarded, still capped per address */
    w->fd = ci->connect_fd;
    w->since_ms = mono_ms();
    pthread_mutex_lock(&g->lock);
    w->next = g->head;
    if (g->head) g->head->prev = w;
    g->head = w;
    w->listed = 1;
    pthread_mutex_unlock(&g->lock);
    *socket_context = w;
  } else if (w != NULL) {         /* CLOSED: before MHD closes the fd */
    pthread_mutex_lock(&g->lock);
    unlist(g, w);
    pthread_mutex_unlock(&g->lock);
    free(w);
    *socket_context = NULL;
  }
}

/* The first request's headers are in: the guard lets the connection be. */
static void headers_in (emu *e, struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  waiting_conn *w = ci ? (waiting_conn *)ci->socket_context : NULL;
  if (e->guard == NULL || w == NULL) return;
  pthread_mutex_lock(&e->guard->lock);
  unlist(e->guard, w);
  pthread_mutex_unlock(&e->guard->lock);
}

static conn_guard *guard_start (long long limit_ms) {
  conn_guard *g = (conn_guard *)calloc(1, sizeof *g);
  pthread_condattr_t ca;
  if (g == NULL) return NULL;
  g->limit_ms = limit_ms;
  pthread_mutex_init(&g->lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g->wake, &ca);
  pthread_condattr_destroy(&ca);
  g->started = pthread_create(&g->thread, NULL, guard_main, g) == 0;
  return g;
}

/* After the daemon stopped (every connection CLOSED, so none is listed). */
static void guard_stop (conn_guard *g) {
  waiting_conn *w;
  if (g == NULL) return;
  pthread_mutex_lock(&g->lock);
  g->quit = 1;
  pthread_cond_signal(&g->wake);
  pthread_mutex_unlock(&g->lock);
  if (g->started) pthread_join(g->thread, NULL);
  while ((w = g->head) != NULL) { unlist(g, w); w->listed = 0; }
  pthread_cond_destroy(&g->wake);
  pthread_mutex_destroy(&g->lock);
  free(g);
}

/* }================================================================== */


/* {==================================================================
** Sending a reply
** =================================================================== */

static ssize_t drip_read (void *cls, uint64_t pos, char *buf, size_t max) {
  drip *d = (drip *)cls;
  (void)max;
  if (pos >= d->len) return MHD_CONTENT_READER_END_OF_STREAM;
  emu_sleep_ms(d->e, DRIP_MS);
  if (emu_stopping(d->e)) return MHD_CONTENT_READER_END_WITH_ERROR;
  buf[0] = d->body[pos];
  return 1;
}

static void drip_free (void *cls) {
  drip *d = (drip *)cls;
  free(d->body);
  free(d);
}

static struct MHD_Response *make_response (emu *e, reply *r) {
  struct MHD_Response *resp;
  if (r->drip && r->len > 0) {
    drip *d = (drip *)malloc(sizeof *d);
    if (d == NULL) return NULL;
    d->e = e;
    d->body = r->body;
    d->len = r->len;
    resp = MHD_create_response_from_callback(r->len, 1, drip_read, d,
                                             drip_free);
    if (resp == NULL) { free(d); return NULL; }
    r->body = NULL;               /* the response owns it now */
    return resp;
  }
  if (r->body == NULL)
    return MHD_create_response_from_buffer(0, (void *)"",
                                           MHD_RESPMEM_PERSISTENT);
  resp = MHD_create_response_from_buffer(r->len, r->body,
                                         MHD_RESPMEM_MUST_FREE);
  if (resp) r->body = NULL;
  return resp;
}

static enum MHD_Result send_reply (emu *e, struct MHD_Connection *c,
                                   reply *r, int counted) {
  struct MHD_Response *resp;
  enum MHD_Result ret;
  if (r->hang_up) {               /* returning MHD_NO closes the socket */
    free(r->body);
    return MHD_NO;
  }
  resp = make_response(e, r);
  free(r->body);
  r->body = NULL;
  if (resp == NULL) return MHD_NO;
  if (r->ctype && r->status != 204 && r->status != 304)
    MHD_add_response_header(resp, "Content-Type", r->ctype);
  if (r->gzip) MHD_add_response_header(resp, "Content-Encoding", "gzip");
  if (r->credits_left >= 0) {
    char v[32];
    snprintf(v, sizeof v, "%lld", r->credits_left);
    MHD_add_response_header(resp, "X-API-CREDITS-REMAINING", v);
  }
  if (r->status == 429 && e->cfg.retry_after > 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", e->cfg.retry_after);
    MHD_add_response_header(resp, "Retry-After", v);
  }
  ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  if (counted) stats_response(&e->st, r->status);
  return ret;
}

/* }================================================================== */


/* {==================================================================
** One request
** =================================================================== */

static const char *query_value (void *ctx, const char *key) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx,
                                     MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result handle (emu *e, struct MHD_Connection *c,
                               const char *url, const char *method,
                               conn_ctx *x) {
  request q;
  reply r;
  int routed;
  enum MHD_Result ret;
  memset(&q, 0, sizeof q);
  memset(&r, 0, sizeof r);
  q.method = method;
  q.url = url;
  q.body = x->body;
  q.len = x->too_big ? 0 : x->len;
  q.too_big = x->too_big;
  q.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "Authorization");
  q.if_modified_since = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    "If-Modified-Since");
  q.accept_encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "Accept-Encoding");
  q.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               "Content-Type");
  q.query = query_value;
  q.ctx = c;
  x->answered = 1;
  routed = routes_handle(e, &q, &r);
  ret = send_reply(e, c, &r, !(routed & ROUTED_HOOK));
  if (routed & ROUTED_IN_FLIGHT) stats_leave(&e->st);
  return ret;
}

static enum MHD_Result on_request (void *cls, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const char *version,
                                   const char *upload_data,
                                   size_t *upload_size, void **con_cls) {
  emu *e = (emu *)cls;
  conn_ctx *x = (conn_ctx *)*con_cls;
  (void)version;
  if (x == NULL) {                /* headers are in; the body may follow */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Content-Length");
    headers_in(e, c);
    x = (conn_ctx *)calloc(1, sizeof *x);
    if (x == NULL) return MHD_NO;
    *con_cls = x;
    if (cl && strtoull(cl, NULL, 10) > e->cfg.max_body) {
      x->too_big = 1;             /* answer now; MHD skips the body */
      return handle(e, c, url, method, x);
    }
    return MHD_YES;
  }
  if (x->answered) { *upload_size = 0; return MHD_YES; }
  if (*upload_size) {
    size_t n = *upload_size;
    if (!x->too_big && x->len + n > e->cfg.max_body) {
      x->too_big = 1;             /* keep reading, keep nothing */
      free(x->body);
      x->body = NULL;
      x->len = x->cap = 0;
    }
    if (!x->too_big) {
      if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 1024;
        char *p;
        while (cap < x->len + n + 1) cap *= 2;
        p = (char *)realloc(x->body, cap);
        if (p == NULL) return MHD_NO;
        x->body = p;
        x->cap = cap;
      }
      memcpy(x->body + x->len, upload_data, n);
      x->len += n;
      x->body[x->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
  }
  return handle(e, c, url, method, x);
}

static void on_completed (void *cls, struct MHD_Connection *c,
                          void **con_cls,
                          enum MHD_RequestTerminationCode toe) {
  conn_ctx *x = (conn_ctx *)*con_cls;
  (void)cls; (void)c; (void)toe;
  if (x == NULL) return;
  free(x->body);
  free(x);
  *con_cls = NULL;
}

/* }================================================================== */


/* {==================================================================
** Daemon
** =================================================================== */

/* A PEM file of --tls-cert or --tls-key, not following a symlink (the
** files are opened as the rest of the emulator's are). NULL with err set. */
static char *read_pem (const char *flag, const char *path,
                       char *err, size_t errlen) {
  size_t len;
  char *text = emu_read_file(path, &len);
  if (text == NULL)
    snprintf(err, errlen, "cannot read %s %s: %s", flag, path,
             emu_file_error(errno));
  return text;
}

struct MHD_Daemon *server_start (emu *e, char *err, size_t errlen) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  struct sockaddr *addr;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  const char *host = e->cfg.host;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION
                 | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
  int tls = e->cfg.tls_cert != NULL, v6 = 0;
  char *cert = NULL, *key = NULL;
  memset(&a4, 0, sizeof a4);
  memset(&a6, 0, sizeof a6);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons((uint16_t)e->cfg.port);
    addr = (struct sockaddr *)&a4;
  } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons((uint16_t)e->cfg.port);
    addr = (struct sockaddr *)&a6;
    flags |= MHD_USE_IPv6;
    v6 = 1;
  } else {
    snprintf(err, errlen, "--host %s: not an IPv4 or IPv6 address", host);
    return NULL;
  }
  if (tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      snprintf(err, errlen, "this libmicrohttpd has no TLS support");
      return NULL;
    }
    cert = read_pem("--tls-cert", e->cfg.tls_cert, err, errlen);
    key = cert ? read_pem("--tls-key", e->cfg.tls_key, err, errlen) : NULL;
    if (key == NULL) { free(cert); return NULL; }
    flags |= MHD_USE_TLS;
  }
  if (e->cfg.verbose) flags |= MHD_USE_ERROR_LOG;
  if (e->cfg.header_timeout > 0) {
    e->guard = guard_start((long long)e->cfg.header_timeout * 1000);
    if (e->guard == NULL) {
      free(cert);
      free(key);
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
  }
  d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, e,
        MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_CONNECTION_TIMEOUT, e->cfg.idle_timeout,
        MHD_OPTION_CONNECTION_LIMIT, e->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, e->cfg.max_client_connections
          ? e->cfg.max_client_connections
          : (e->cfg.max_connections / 4 ? e->cfg.max_connections / 4 : 1u),
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, e,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, e,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_END);
  /* kept until the daemon stops: MHD holds the pointers */
  e->tls_pem[0] = cert;
  e->tls_pem[1] = key;
  if (d == NULL) {
    /* MHD does not say why; binding the same address once more does. */
    guard_stop(e->guard);
    e->guard = NULL;
    int fd = socket(addr->sa_family, SOCK_STREAM, 0), why = 0;
    if (fd >= 0) {
      if (bind(fd, addr, v6 ? sizeof a6 : sizeof a4) != 0) why = errno;
      close(fd);
    }
    snprintf(err, errlen, "cannot listen on %s port %d%s%s%s", host, e->cfg.port,
             why ? ": " : "", why ? strerror(why) : "",
             why == EADDRINUSE ? " (another program has it; --port 0 picks a free port)" : "");
    return NULL;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(e->base_url, sizeof e->base_url, "%s://%s%s%s:%u",
           tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
           info ? (unsigned)info->port : (unsigned)e->cfg.port);
  return d;
}

void server_stop (emu *e, struct MHD_Daemon *d) {
  MHD_stop_daemon(d);
  guard_stop(e->guard);
  e->guard = NULL;
}

/* }================================================================== */
