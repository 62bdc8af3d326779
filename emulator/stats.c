/*
** stats.c: the counters behind GET /__emulator/stats. Hooks are never
** counted; every other request is, whatever its answer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu.h"

static const char *const method_names[] = {
  "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER"
};

static const char *const route_names[ROUTE_N] = {
  "GET /crm/v8/settings/modules",
  "GET /crm/v8/settings/modules/{module}",
  "PUT /crm/v8/settings/modules/{module}",
  "POST /crm/v8/settings/modules",
  "GET /crm/v8/settings/profiles",
  "POST /oauth/v2/token",
  "other",
  "PUT /crm/v8/settings/modules",
};

void stats_init (stats *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
}

void stats_destroy (stats *s) {
  pthread_mutex_destroy(&s->lock);
  free(s->ring);
  s->ring = NULL;
}

/* in_flight survives a reset: requests still running will leave. */
void stats_reset (stats *s) {
  pthread_mutex_lock(&s->lock);
  s->total = 0;
  memset(s->by_method, 0, sizeof s->by_method);
  memset(s->by_route, 0, sizeof s->by_route);
  memset(s->responses, 0, sizeof s->responses);
  s->credits_used = 0;
  s->ring_head = s->ring_len = 0;
  s->in_window = 0;
  s->max_in_flight = s->in_flight;
  s->updates_applied = s->token_refreshes = s->tokens_issued = 0;
  s->gzip_answers = 0;
  pthread_mutex_unlock(&s->lock);
}

void stats_request (stats *s, const char *method, int route) {
  size_t m;
  for (m = 0; m < 7; m++) if (strcmp(method, method_names[m]) == 0) break;
  pthread_mutex_lock(&s->lock);
  s->total++;
  s->by_method[m]++;
  s->by_route[route]++;
  pthread_mutex_unlock(&s->lock);
}

void stats_response (stats *s, int status) {
  if (status < 100 || status > 599) return;
  pthread_mutex_lock(&s->lock);
  s->responses[status]++;
  pthread_mutex_unlock(&s->lock);
}

int stats_enter (stats *s, int cap) {
  int ok;
  pthread_mutex_lock(&s->lock);
  ok = s->in_flight < cap;
  if (ok) {
    s->in_flight++;
    if (s->in_flight > s->max_in_flight) s->max_in_flight = s->in_flight;
  }
  pthread_mutex_unlock(&s->lock);
  return ok;
}

void stats_leave (stats *s) {
  pthread_mutex_lock(&s->lock);
  s->in_flight--;
  pthread_mutex_unlock(&s->lock);
}

void stats_add (stats *s, long long *field, long long n) {
  pthread_mutex_lock(&s->lock);
  *field += n;
  pthread_mutex_unlock(&s->lock);
}

static long long now_sec (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec;
}

#define RING_AT(s, k) (&(s)->ring[((s)->ring_head + (k)) % (s)->ring_cap])

/* Credits spent `window` seconds ago or earlier come back ("API Limits":
** a rolling 24 hours, no daily reset). Lock held. */
static void refill (stats *s, long long window, long long now) {
  while (s->ring_len > 0 && RING_AT(s, 0)->sec + window <= now) {
    s->in_window -= RING_AT(s, 0)->cost;
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    s->ring_len--;
  }
}

/* Records cost at second now: one entry per second, so the ring holds at
** most `window` entries. Out of memory: the newest entry takes it (those
** credits come back a little late), or with no entry they are spent for
** good. Lock held. */
static void record (stats *s, long long now, long long cost) {
  if (s->ring_len > 0 && RING_AT(s, s->ring_len - 1)->sec == now) {
    RING_AT(s, s->ring_len - 1)->cost += cost;
    return;
  }
  if (s->ring_len == s->ring_cap) {
    size_t cap = s->ring_cap ? s->ring_cap * 2 : 64, k;
    charge *p = (charge *)malloc(cap * sizeof *p);
    if (p == NULL) {
      if (s->ring_len > 0) RING_AT(s, s->ring_len - 1)->cost += cost;
      return;
    }
    for (k = 0; k < s->ring_len; k++) p[k] = *RING_AT(s, k);
    free(s->ring);
    s->ring = p;
    s->ring_cap = cap;
    s->ring_head = 0;
  }
  RING_AT(s, s->ring_len)->sec = now;
  RING_AT(s, s->ring_len)->cost = cost;
  s->ring_len++;
}

/* Charge cost against budget, over the rolling window (seconds). Returns
** the credits left afterwards, or -1 when the budget cannot cover the call
** (nothing is charged then). */
long long stats_charge (stats *s, long long budget, long long window,
                        long long cost) {
  long long left, now = now_sec();
  pthread_mutex_lock(&s->lock);
  refill(s, window, now);
  if (s->in_window + cost > budget) left = -1;
  else {
    record(s, now, cost);
    s->in_window += cost;
    s->credits_used += cost;
    left = budget - s->in_window;
  }
  pthread_mutex_unlock(&s->lock);
  return left;
}

static void kv (jbuf *b, const char *k, long long v, int comma) {
  if (comma) jb_lit(b, ",");
  jb_key(b, k);
  jb_int(b, v);
}

/* Zero counts are left out of by_method, by_route and responses: specs
** test a count that never happened with is_nil. */
void stats_write (stats *s, jbuf *b, long long budget, long long window) {
  size_t i;
  int code, n = 0;
  pthread_mutex_lock(&s->lock);
  refill(s, window, now_sec());
  jb_lit(b, "{\"requests\":{");
  kv(b, "total", s->total, 0);
  jb_lit(b, ",\"by_method\":{");
  for (i = 0; i < 8; i++)
    if (s->by_method[i]) kv(b, method_names[i], s->by_method[i], n++ > 0);
  jb_lit(b, "},\"by_route\":{");
  n = 0;
  for (i = 0; i < ROUTE_N; i++)
    if (s->by_route[i]) kv(b, route_names[i], s->by_route[i], n++ > 0);
  jb_lit(b, "}},\"responses\":{");
  n = 0;
  for (code = 100; code < 600; code++) {
    char name[8];
    if (s->responses[code] == 0) continue;
    snprintf(name, sizeof name, "%d", code);
    kv(b, name, s->responses[code], n++ > 0);
  }
  jb_lit(b, "}");
  kv(b, "credits_used", s->credits_used, 1);
  kv(b, "credits_remaining", budget - s->in_window, 1);
  kv(b, "max_in_flight", s->max_in_flight, 1);
  kv(b, "in_flight", s->in_flight, 1);
  kv(b, "updates_applied", s->updates_applied, 1);
  kv(b, "token_refreshes", s->token_refreshes, 1);
  kv(b, "tokens_issued", s->tokens_issued, 1);
  kv(b, "gzip_answers", s->gzip_answers, 1);
  jb_lit(b, "}");
  pthread_mutex_unlock(&s->lock);
}
