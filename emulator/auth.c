/*
** auth.c: access tokens on API calls, and the accounts server's token
** endpoint with Zoho's quirks (errors with HTTP 200, expires_in in ms,
** at most N refreshes per 10 minutes, at most 15 live access tokens).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"

#define MAX_LIVE 15               /* live access tokens per refresh token */
#define WINDOW_MS (10 * 60 * 1000)
#define MAX_SCOPES 64

typedef struct token {
  char value[80];
  long long expires_ms;           /* monotonic */
  int expired;                    /* forced by the expire-tokens hook */
} token;

struct auth_state {
  pthread_mutex_t lock;
  const emu_config *cfg;
  char *scope_buf;
  const char *scopes[MAX_SCOPES];
  size_t nscopes;
  token live[MAX_LIVE];
  size_t nlive;
  long long *window;              /* times of recent refreshes */
  size_t nwindow;
  int revoked;
  uint64_t rng;
};


/* {==================================================================
** Helpers
** =================================================================== */

static long long now_ms (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand (auth_state *a) {
  uint64_t x = a->rng;            /* xorshift64* */
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  a->rng = x;
  return x * 2685821657736338717ULL;
}

auth_state *auth_new (const emu_config *cfg) {
  auth_state *a = (auth_state *)calloc(1, sizeof *a);
  char *p;
  if (a == NULL) return NULL;
  a->cfg = cfg;
  a->scope_buf = xstrdup(cfg->scopes);
  a->window = (long long *)calloc((size_t)cfg->refresh_rate_limit + 1,
                                  sizeof *a->window);
  if (a->scope_buf == NULL || a->window == NULL) {
    free(a->scope_buf); free(a->window); free(a);
    return NULL;
  }
  /* --scopes takes commas (as in the auth request) or spaces (as in the
  ** token response) */
  for (p = strtok(a->scope_buf, ", "); p && a->nscopes < MAX_SCOPES;
       p = strtok(NULL, ", "))
    a->scopes[a->nscopes++] = p;
  a->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)
         ^ (uint64_t)(size_t)a ^ (uint64_t)now_ms();
  if (a->rng == 0) a->rng = 88172645463325252ULL;
  pthread_mutex_init(&a->lock, NULL);
  return a;
}

void auth_free (auth_state *a) {
  if (a == NULL) return;
  pthread_mutex_destroy(&a->lock);
  free(a->scope_buf);
  free(a->window);
  free(a);
}

void auth_reset (auth_state *a) {
  pthread_mutex_lock(&a->lock);
  a->nlive = 0;
  a->nwindow = 0;
  a->revoked = 0;
  pthread_mutex_unlock(&a->lock);
}

void auth_expire_all (auth_state *a) {
  size_t i;
  pthread_mutex_lock(&a->lock);
  for (i = 0; i < a->nlive; i++) a->live[i].expired = 1;
  pthread_mutex_unlock(&a->lock);
}

/* }================================================================== */


/* {==================================================================
** API calls: Authorization: Zoho-oauthtoken <token>
** =================================================================== */

static int has_scope (const auth_state *a, const char *const *need) {
  size_t i;
  for (; *need; need++)
    for (i = 0; i < a->nscopes; i++)
      if (strcasecmp(a->scopes[i], *need) == 0) return 1;
  return 0;
}

/* 1 when the request may go on; otherwise r holds the 401. */
int auth_check (emu *e, const char *header, const char *const *need,
                reply *r) {
  static const char prefix[] = "Zoho-oauthtoken ";
  auth_state *a = e->auth;
  const char *tok;
  size_t i, n;
  int known = 0, expired = 0;
  if (header == NULL
      || strncasecmp(header, prefix, sizeof prefix - 1) != 0) {
    reply_error(r, 401, "AUTHENTICATION_FAILURE", "{}",
                "Authentication failed");
    return 0;
  }
  tok = header + sizeof prefix - 1;
  while (*tok == ' ') tok++;
  n = strlen(tok);
  while (n && tok[n - 1] == ' ') n--;
  if (n == 0) {
    reply_error(r, 401, "AUTHENTICATION_FAILURE", "{}",
                "Authentication failed");
    return 0;
  }
  if (strlen(e->cfg.access_token) == n
      && memcmp(tok, e->cfg.access_token, n) == 0)
    known = 1;
  else {
    long long t = now_ms();
    pthread_mutex_lock(&a->lock);
    for (i = 0; i < a->nlive; i++) {
      token *k = &a->live[i];
      if (strlen(k->value) == n && memcmp(k->value, tok, n) == 0) {
        known = 1;
        expired = k->expired || t >= k->expires_ms;
        break;
      }
    }
    pthread_mutex_unlock(&a->lock);
  }
  if (!known || expired) {
    reply_error(r, 401, "INVALID_TOKEN", "{}", "invalid oauth token");
    return 0;
  }
  if (!has_scope(a, need)) {
    reply_error(r, 401, "OAUTH_SCOPE_MISMATCH", "{}",
                "invalid oauth scope to access this URL");
    return 0;
  }
  return 1;
}

/* }================================================================== */


/* {==================================================================
** POST /oauth/v2/token (and /oauth/v2/token/revoke)
** =================================================================== */

static int hexval (int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Find key in an application/x-www-form-urlencoded body; decoded value
** into out. Returns 1 when found. */
static int form_get (const char *body, size_t len, const char *key,
                     char *out, size_t outlen) {
  size_t klen = strlen(key), i = 0;
  while (i < len) {
    size_t end = i, eq;
    while (end < len && body[end] != '&') end++;
    eq = i;
    while (eq < end && body[eq] != '=') eq++;
    if (eq - i == klen && memcmp(body + i, key, klen) == 0) {
      size_t o = 0, k = eq < end ? eq + 1 : end;
      for (; k < end && o + 1 < outlen; k++) {
        int c = (unsigned char)body[k];
        if (c == '+') c = ' ';
        else if (c == '%' && k + 2 < end && hexval(body[k + 1]) >= 0
                 && hexval(body[k + 2]) >= 0) {
          c = hexval(body[k + 1]) * 16 + hexval(body[k + 2]);
          k += 2;
        }
        out[o++] = (char)c;
      }
      out[o] = '\0';
      return 1;
    }
    i = end + 1;
  }
  return 0;
}

/* Form body first, then the query string (Zoho accepts both). */
static const char *param (const request *q, const char *key, char *buf,
                          size_t buflen) {
  const char *v;
  if (q->body && form_get(q->body, q->len, key, buf, buflen)) return buf;
  v = q->query ? q->query(q->ctx, key) : NULL;
  if (v == NULL) return NULL;
  snprintf(buf, buflen, "%s", v);
  return buf;
}

static void oauth_json (reply *r, const char *text) {
  jbuf b;
  jb_init(&b);
  jb_lit(&b, text);
  reply_json(r, 200, &b);
  r->ctype = "application/json;charset=UTF-8";
}

static void issue (emu *e, reply *r) {
  auth_state *a = e->auth;
  char value[80];
  long long ttl = e->cfg.token_ttl;
  size_t i;
  jbuf b;
  snprintf(value, sizeof value, "1000.%016llx%016llx.%016llx%016llx",
           (unsigned long long)next_rand(a), (unsigned long long)next_rand(a),
           (unsigned long long)next_rand(a), (unsigned long long)next_rand(a));
  if (a->nlive == MAX_LIVE) {     /* the 16th evicts the oldest */
    memmove(&a->live[0], &a->live[1], (MAX_LIVE - 1) * sizeof a->live[0]);
    a->nlive--;
  }
  memcpy(a->live[a->nlive].value, value, sizeof value);
  a->live[a->nlive].expires_ms = now_ms() + ttl * 1000;
  a->live[a->nlive].expired = 0;
  a->nlive++;
  jb_init(&b);
  jb_lit(&b, "{");
  jb_key(&b, "access_token"); jb_str(&b, value);
  jb_lit(&b, ","); jb_key(&b, "scope"); jb_lit(&b, "\"");
  for (i = 0; i < a->nscopes; i++) {
    if (i) jb_lit(&b, " ");
    jb_lit(&b, a->scopes[i]);     /* scope names hold no JSON specials */
  }
  jb_lit(&b, "\",");
  jb_key(&b, "api_domain");
  jb_str(&b, e->cfg.token_api_domain ? e->cfg.token_api_domain : e->base_url);
  jb_lit(&b, ","); jb_key(&b, "token_type"); jb_str(&b, "Bearer");
  if (e->cfg.expires_in_ms) {
    jb_lit(&b, ","); jb_key(&b, "expires_in_sec"); jb_int(&b, ttl);
    jb_lit(&b, ","); jb_key(&b, "expires_in"); jb_int(&b, ttl * 1000);
  } else {
    jb_lit(&b, ","); jb_key(&b, "expires_in"); jb_int(&b, ttl);
  }
  jb_lit(&b, "}");
  reply_json(r, 200, &b);
  r->ctype = "application/json;charset=UTF-8";
}

static void revoke_token (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  char tok[512];
  if (param(q, "token", tok, sizeof tok)
      && strcmp(tok, e->cfg.refresh_token) == 0) {
    pthread_mutex_lock(&a->lock);
    a->revoked = 1;
    a->nlive = 0;                 /* its access tokens die with it */
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, "{\"status\":\"success\"}");
    return;
  }
  oauth_json(r, "{\"status\":\"failure\",\"error\":\"invalid_token\"}");
  r->status = 400;
}

void auth_token_endpoint (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  char grant[64], cid[512], secret[512], rt[512];
  long long t;
  size_t i, keep;
  if (strncmp(q->url, "/oauth/v2/token/revoke", 22) == 0) {
    revoke_token(e, q, r);
    return;
  }
  if (!param(q, "grant_type", grant, sizeof grant)) grant[0] = '\0';
  if (strcmp(grant, "refresh_token") != 0) {
    /* we never hand out grant codes, so any code is unknown */
    oauth_json(r, strcmp(grant, "authorization_code") == 0
                  ? "{\"error\":\"invalid_code\"}"
                  : "{\"error\":\"unsupported_grant_type\"}");
    return;
  }
  stats_add(&e->st, &e->st.token_refreshes, 1);
  if (!param(q, "client_id", cid, sizeof cid)
      || !param(q, "client_secret", secret, sizeof secret)
      || strcmp(cid, e->cfg.client_id) != 0
      || strcmp(secret, e->cfg.client_secret) != 0) {
    oauth_json(r, "{\"error\":\"invalid_client\"}");
    return;
  }
  pthread_mutex_lock(&a->lock);
  if (!param(q, "refresh_token", rt, sizeof rt)
      || strcmp(rt, e->cfg.refresh_token) != 0 || a->revoked) {
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, "{\"error\":\"invalid_code\"}");
    return;
  }
  t = now_ms();
  for (i = keep = 0; i < a->nwindow; i++)
    if (t - a->window[i] < WINDOW_MS) a->window[keep++] = a->window[i];
  a->nwindow = keep;
  if (a->nwindow >= (size_t)e->cfg.refresh_rate_limit) {
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, "{\"error_description\":\"You have made too many requests "
               "continuously. Please try again after some time.\","
               "\"error\":\"Access Denied\",\"status\":\"failure\"}");
    return;
  }
  a->window[a->nwindow++] = t;
  issue(e, r);
  pthread_mutex_unlock(&a->lock);
  stats_add(&e->st, &e->st.tokens_issued, 1);
}

/* }================================================================== */
