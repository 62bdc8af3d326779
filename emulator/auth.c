/*
** auth.c: access tokens on API calls, and the accounts server's token
** endpoint with Zoho's quirks (errors with HTTP 200, expires_in in ms,
** at most N refreshes per 10 minutes, at most 15 live access tokens per
** refresh token, at most 20 refresh tokens per client), taking its
** parameters as Zoho Accounts does: urlencoded or multipart/form-data
** bodies, the query string, client credentials in Authorization: Basic.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "emu.h"

#define MAX_LIVE 15               /* live access tokens per refresh token */
#define MAX_ISSUED 20             /* refresh tokens per user and client */
#define MAX_CODES 64              /* grant codes waiting for their exchange */
#define WINDOW_MS (10 * 60 * 1000)
#define MAX_SCOPES 64
#define TOKEN_LEN 80
#define PARAM_LEN 512

typedef struct token {
  char value[TOKEN_LEN];
  long long expires_ms;           /* monotonic */
  int expired;                    /* forced by the expire-tokens hook */
} token;

/* A refresh token: [0] is --refresh-token, the others were issued by
** authorization_code exchanges, oldest first. */
typedef struct rtoken {
  char value[TOKEN_LEN];          /* "" for [0]: its value is cfg's */
  int revoked;
  token live[MAX_LIVE];
  size_t nlive;
  long long *window;              /* times of recent refreshes */
  size_t nwindow;
} rtoken;

typedef struct grant {
  char value[TOKEN_LEN];
  char redirect_uri[PARAM_LEN];   /* "" when the hook named none */
  long long expires_ms;
} grant_code;

struct auth_state {
  pthread_mutex_t lock;
  const emu_config *cfg;
  char *scope_buf;
  const char *scopes[MAX_SCOPES];
  size_t nscopes;
  rtoken rt[1 + MAX_ISSUED];
  size_t nrt;                     /* 1 + issued */
  long long *windows;             /* one block for every rt[i].window */
  grant_code codes[MAX_CODES];
  size_t ncodes;
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

/* A fresh token in Zoho's shape, 1000.<hex>.<hex> */
static void new_value (auth_state *a, char *out) {
  snprintf(out, TOKEN_LEN, "1000.%016llx%016llx.%016llx%016llx",
           (unsigned long long)next_rand(a), (unsigned long long)next_rand(a),
           (unsigned long long)next_rand(a), (unsigned long long)next_rand(a));
}

static const char *rt_value (const auth_state *a, size_t i) {
  return i == 0 ? a->cfg->refresh_token : a->rt[i].value;
}

auth_state *auth_new (const emu_config *cfg) {
  auth_state *a = (auth_state *)calloc(1, sizeof *a);
  size_t per, i;
  char *p;
  if (a == NULL) return NULL;
  a->cfg = cfg;
  per = (size_t)cfg->refresh_rate_limit + 1;
  a->scope_buf = xstrdup(cfg->scopes);
  a->windows = (long long *)calloc(per * (1 + MAX_ISSUED), sizeof *a->windows);
  if (a->scope_buf == NULL || a->windows == NULL) {
    free(a->scope_buf); free(a->windows); free(a);
    return NULL;
  }
  for (i = 0; i < 1 + MAX_ISSUED; i++) a->rt[i].window = a->windows + i * per;
  a->nrt = 1;
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
  free(a->windows);
  free(a);
}

void auth_reset (auth_state *a) {
  pthread_mutex_lock(&a->lock);
  a->nrt = 1;
  a->rt[0].nlive = 0;
  a->rt[0].nwindow = 0;
  a->rt[0].revoked = 0;
  a->ncodes = 0;
  pthread_mutex_unlock(&a->lock);
}

void auth_expire_all (auth_state *a) {
  size_t i, k;
  pthread_mutex_lock(&a->lock);
  for (k = 0; k < a->nrt; k++)
    for (i = 0; i < a->rt[k].nlive; i++) a->rt[k].live[i].expired = 1;
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

/* The live access token tok[0..n), or NULL; called with the lock held. */
static const token *find_live (const auth_state *a, const char *tok,
                               size_t n) {
  size_t i, k;
  for (k = 0; k < a->nrt; k++)
    for (i = 0; i < a->rt[k].nlive; i++) {
      const token *t = &a->rt[k].live[i];
      if (strlen(t->value) == n && memcmp(t->value, tok, n) == 0) return t;
    }
  return NULL;
}

/* 1 when the request may go on; otherwise r holds the 401. */
int auth_check (emu *e, const char *header, const char *const *need,
                reply *r) {
  static const char prefix[] = "Zoho-oauthtoken ";
  auth_state *a = e->auth;
  const char *tok;
  size_t n;
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
    const token *t;
    pthread_mutex_lock(&a->lock);
    t = find_live(a, tok, n);
    if (t) {
      known = 1;
      expired = t->expired || now_ms() >= t->expires_ms;
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
** The token endpoint's parameters: body (urlencoded or multipart), query
** string, and client credentials in Authorization: Basic
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

static const char *find_bytes (const char *s, size_t n, const char *what,
                               size_t wn) {
  size_t i;
  if (wn == 0 || wn > n) return NULL;
  for (i = 0; i + wn <= n; i++)
    if (s[i] == what[0] && memcmp(s + i, what, wn) == 0) return s + i;
  return NULL;
}

/* The boundary parameter of a multipart/form-data Content-Type into out
** (RFC 7578, RFC 2046 §5.1.1: up to 70 characters, maybe quoted); 0 when
** the type is another or has no boundary. */
static int multipart_boundary (const char *ctype, char *out, size_t outlen) {
  static const char mp[] = "multipart/form-data";
  const char *p;
  size_t n = 0;
  if (ctype == NULL) return 0;
  while (*ctype == ' ') ctype++;
  if (strncasecmp(ctype, mp, sizeof mp - 1) != 0) return 0;
  for (p = ctype + sizeof mp - 1; *p; p++)
    if (strncasecmp(p, "boundary=", 9) == 0
        && (p[-1] == ';' || p[-1] == ' ')) break;
  if (*p == '\0') return 0;
  p += 9;
  if (*p == '"') {
    for (p++; *p && *p != '"' && n + 1 < outlen; p++) out[n++] = *p;
  } else {
    for (; *p && *p != ';' && *p != ' ' && n + 1 < outlen; p++)
      out[n++] = *p;
  }
  out[n] = '\0';
  return n > 0 && n <= 70;
}

/* Find the part named key in a multipart/form-data body; its content
** (verbatim, no decoding) into out. Returns 1 when found. */
static int multipart_get (const char *body, size_t len, const char *bound,
                          const char *key, char *out, size_t outlen) {
  char delim[80], name[PARAM_LEN + 16];
  size_t dn, nn;
  const char *p = body, *end = body + len;
  dn = (size_t)snprintf(delim, sizeof delim, "--%s", bound);
  nn = (size_t)snprintf(name, sizeof name, "name=\"%s\"", key);
  p = find_bytes(p, (size_t)(end - p), delim, dn);
  while (p) {
    const char *hdr = p + dn, *hend, *next, *quote;
    size_t vn;
    if (end - hdr >= 2 && hdr[0] == '-' && hdr[1] == '-') return 0;
    hend = find_bytes(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
    if (hend == NULL) return 0;
    next = find_bytes(hend + 4, (size_t)(end - hend - 4), delim, dn);
    if (next == NULL) return 0;
    quote = find_bytes(hdr, (size_t)(hend - hdr), name, nn);
    /* name="key" and not name="other_key" */
    if (quote && (quote[-1] == ' ' || quote[-1] == ';')) {
      vn = (size_t)(next - (hend + 4));
      if (vn >= 2 && next[-2] == '\r' && next[-1] == '\n') vn -= 2;
      if (vn + 1 > outlen) vn = outlen - 1;
      memcpy(out, hend + 4, vn);
      out[vn] = '\0';
      return 1;
    }
    p = next;
  }
  return 0;
}

/* Form body first (urlencoded or multipart), then the query string: Zoho
** Accounts accepts each. */
static const char *param (const request *q, const char *key, char *buf,
                          size_t buflen) {
  char bound[80];
  const char *v;
  if (q->body && multipart_boundary(q->content_type, bound, sizeof bound)) {
    if (multipart_get(q->body, q->len, bound, key, buf, buflen)) return buf;
  } else if (q->body && form_get(q->body, q->len, key, buf, buflen))
    return buf;
  v = q->query ? q->query(q->ctx, key) : NULL;
  if (v == NULL) return NULL;
  snprintf(buf, buflen, "%s", v);
  return buf;
}

static int b64val (int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Authorization: Basic base64(client_id:client_secret), RFC 6749 §2.3.1.
** 1 with both into id and secret. */
static int basic_credentials (const char *header, char *id, char *secret,
                              size_t len) {
  char dec[2 * PARAM_LEN];
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  char *colon;
  if (header == NULL || strncasecmp(header, "Basic ", 6) != 0) return 0;
  for (header += 6; *header == ' '; header++) {}
  for (; *header && *header != '='; header++) {
    int v = b64val((unsigned char)*header);
    if (v < 0) return 0;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n + 1 >= sizeof dec) return 0;
      dec[n++] = (char)((acc >> bits) & 0xFF);
    }
  }
  dec[n] = '\0';
  if (strlen(dec) != n || (colon = strchr(dec, ':')) == NULL) return 0;
  *colon = '\0';
  snprintf(id, len, "%s", dec);
  snprintf(secret, len, "%s", colon + 1);
  return 1;
}

/* 1 when the request names our client, in its parameters or in Basic */
static int client_ok (const emu *e, const request *q) {
  char cid[PARAM_LEN], secret[PARAM_LEN];
  if (!(param(q, "client_id", cid, sizeof cid)
        && param(q, "client_secret", secret, sizeof secret))
      && !basic_credentials(q->authorization, cid, secret, sizeof cid))
    return 0;
  return strcmp(cid, e->cfg.client_id) == 0
      && strcmp(secret, e->cfg.client_secret) == 0;
}

/* }================================================================== */


/* {==================================================================
** POST /oauth/v2/token (and /oauth/v2/token/revoke)
** =================================================================== */

static void oauth_json (reply *r, const char *text) {
  jbuf b;
  jb_init(&b);
  jb_lit(&b, text);
  reply_json(r, 200, &b);
  r->ctype = "application/json;charset=UTF-8";
}

/* A new access token for refresh token k, answered with it (and with
** refresh_token when given: an authorization_code exchange). Called with
** the lock held. */
static void issue (emu *e, size_t k, const char *refresh, reply *r) {
  auth_state *a = e->auth;
  rtoken *rt = &a->rt[k];
  char value[TOKEN_LEN];
  long long ttl = e->cfg.token_ttl;
  size_t i;
  jbuf b;
  new_value(a, value);
  if (rt->nlive == MAX_LIVE) {    /* the 16th evicts the oldest */
    memmove(&rt->live[0], &rt->live[1], (MAX_LIVE - 1) * sizeof rt->live[0]);
    rt->nlive--;
  }
  memcpy(rt->live[rt->nlive].value, value, sizeof value);
  rt->live[rt->nlive].expires_ms = now_ms() + ttl * 1000;
  rt->live[rt->nlive].expired = 0;
  rt->nlive++;
  jb_init(&b);
  jb_lit(&b, "{");
  jb_key(&b, "access_token"); jb_str(&b, value);
  if (refresh) {
    jb_lit(&b, ","); jb_key(&b, "refresh_token"); jb_str(&b, refresh);
  }
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

/* The live refresh token with this value, or -1; lock held. */
static long find_refresh (const auth_state *a, const char *value) {
  size_t k;
  for (k = 0; k < a->nrt; k++)
    if (!a->rt[k].revoked && strcmp(rt_value(a, k), value) == 0)
      return (long)k;
  return -1;
}

static void revoke_token (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  char tok[PARAM_LEN];
  long k = -1;
  pthread_mutex_lock(&a->lock);
  if (param(q, "token", tok, sizeof tok)) k = find_refresh(a, tok);
  if (k >= 0) {
    a->rt[k].revoked = 1;
    a->rt[k].nlive = 0;           /* its access tokens die with it */
  }
  pthread_mutex_unlock(&a->lock);
  if (k >= 0) {
    oauth_json(r, "{\"status\":\"success\"}");
    return;
  }
  oauth_json(r, "{\"status\":\"failure\",\"error\":\"invalid_token\"}");
  r->status = 400;
}

static void refresh_grant (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  char rtv[PARAM_LEN];
  long long t;
  size_t i, keep;
  long k;
  rtoken *rt;
  stats_add(&e->st, &e->st.token_refreshes, 1);
  if (!client_ok(e, q)) {
    oauth_json(r, "{\"error\":\"invalid_client\"}");
    return;
  }
  pthread_mutex_lock(&a->lock);
  if (!param(q, "refresh_token", rtv, sizeof rtv)
      || (k = find_refresh(a, rtv)) < 0) {
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, "{\"error\":\"invalid_code\"}");
    return;
  }
  rt = &a->rt[k];
  t = now_ms();
  for (i = keep = 0; i < rt->nwindow; i++)
    if (t - rt->window[i] < WINDOW_MS) rt->window[keep++] = rt->window[i];
  rt->nwindow = keep;
  if (rt->nwindow >= (size_t)e->cfg.refresh_rate_limit) {
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, "{\"error_description\":\"You have made too many requests "
               "continuously. Please try again after some time.\","
               "\"error\":\"Access Denied\",\"status\":\"failure\"}");
    return;
  }
  rt->window[rt->nwindow++] = t;
  issue(e, (size_t)k, NULL, r);
  pthread_mutex_unlock(&a->lock);
  stats_add(&e->st, &e->st.tokens_issued, 1);
}

/* grant_type=authorization_code: a code from the grant-code hook, once,
** before it expires, for a new refresh token and its first access token */
static void code_grant (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  char code[PARAM_LEN], uri[PARAM_LEN];
  const char *err = NULL;
  long long t = now_ms();
  size_t i;
  rtoken *rt;
  if (!client_ok(e, q)) {
    oauth_json(r, "{\"error\":\"invalid_client\"}");
    return;
  }
  if (!param(q, "code", code, sizeof code)) code[0] = '\0';
  pthread_mutex_lock(&a->lock);
  for (i = 0; i < a->ncodes; i++)
    if (strcmp(a->codes[i].value, code) == 0) break;
  if (i == a->ncodes || t >= a->codes[i].expires_ms) err = "invalid_code";
  else if (a->codes[i].redirect_uri[0]
           && (!param(q, "redirect_uri", uri, sizeof uri)
               || strcmp(uri, a->codes[i].redirect_uri) != 0))
    err = "invalid_redirect_uri";
  if (i < a->ncodes) {            /* used once, even by a failed exchange */
    memmove(&a->codes[i], &a->codes[i + 1],
            (a->ncodes - i - 1) * sizeof a->codes[0]);
    a->ncodes--;
  }
  if (err) {
    pthread_mutex_unlock(&a->lock);
    oauth_json(r, strcmp(err, "invalid_code") == 0
                  ? "{\"error\":\"invalid_code\"}"
                  : "{\"error\":\"invalid_redirect_uri\"}");
    return;
  }
  if (a->nrt == 1 + MAX_ISSUED) { /* the 21st evicts the oldest issued one */
    long long *w = a->rt[1].window;
    memmove(&a->rt[1], &a->rt[2], (MAX_ISSUED - 1) * sizeof a->rt[0]);
    a->rt[MAX_ISSUED].window = w;
    a->nrt--;
  }
  rt = &a->rt[a->nrt];
  new_value(a, rt->value);
  rt->revoked = 0;
  rt->nlive = 0;
  rt->nwindow = 0;
  a->nrt++;
  issue(e, a->nrt - 1, rt->value, r);
  pthread_mutex_unlock(&a->lock);
  stats_add(&e->st, &e->st.tokens_issued, 1);
}

void auth_token_endpoint (emu *e, const request *q, reply *r) {
  char grant[64];
  if (strncmp(q->url, "/oauth/v2/token/revoke", 22) == 0) {
    revoke_token(e, q, r);
    return;
  }
  if (!param(q, "grant_type", grant, sizeof grant)) grant[0] = '\0';
  if (strcmp(grant, "refresh_token") == 0) refresh_grant(e, q, r);
  else if (strcmp(grant, "authorization_code") == 0) code_grant(e, q, r);
  else oauth_json(r, "{\"error\":\"unsupported_grant_type\"}");
}

/* POST /__emulator/grant-code [{"redirect_uri": U}]: a grant code, as the
** user's consent (or the API console's Self Client) would give; one use,
** --grant-ttl seconds. */
void auth_grant_code (emu *e, const request *q, reply *r) {
  auth_state *a = e->auth;
  cJSON *root = q->len ? cJSON_ParseWithLength(q->body, q->len) : NULL;
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(root, "redirect_uri");
  grant_code *g;
  jbuf b;
  if ((q->len && !cJSON_IsObject(root))
      || (uri && !(cJSON_IsString(uri)
                   && strlen(uri->valuestring) < sizeof g->redirect_uri))) {
    cJSON_Delete(root);
    reply_error(r, 400, "INVALID_DATA", "{\"api_name\":\"redirect_uri\"}",
                "body: nothing, or {\"redirect_uri\": a string}");
    return;
  }
  pthread_mutex_lock(&a->lock);
  if (a->ncodes == MAX_CODES) {   /* the oldest waiting code goes */
    memmove(&a->codes[0], &a->codes[1], (MAX_CODES - 1) * sizeof a->codes[0]);
    a->ncodes--;
  }
  g = &a->codes[a->ncodes++];
  new_value(a, g->value);
  snprintf(g->redirect_uri, sizeof g->redirect_uri, "%s",
           uri ? uri->valuestring : "");
  g->expires_ms = now_ms() + (long long)e->cfg.grant_ttl * 1000;
  jb_init(&b);
  jb_lit(&b, "{");
  jb_key(&b, "code"); jb_str(&b, g->value);
  jb_lit(&b, "}");
  pthread_mutex_unlock(&a->lock);
  cJSON_Delete(root);
  reply_json(r, 200, &b);
}

/* }================================================================== */
