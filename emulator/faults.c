/*
** faults.c: Zoho's bad days. Scripted hostile answers (POST
** /__emulator/script) and random ones (--fault-rate, --faults, --seed).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define MAX_SCRIPT 32
#define HUGE_BYTES (10 * 1024 * 1024)
#define DEEP_LEVELS 10000

typedef struct entry {
  fault ft;
  long count;
  int route;
} entry;

struct fault_state {
  pthread_mutex_t lock;
  entry script[MAX_SCRIPT];       /* FIFO; each entry lasts count answers */
  size_t nscript;
  double rate;
  fault *pool;                    /* --faults */
  size_t npool;
  uint64_t rng;
};

static const struct { const char *name; int kind; } kinds[] = {
  { "empty", F_EMPTY }, { "html", F_HTML }, { "garbage", F_GARBAGE },
  { "truncated", F_TRUNCATED }, { "huge", F_HUGE }, { "deep", F_DEEP },
  { "nonutf8", F_NONUTF8 }, { "wrongtype", F_WRONGTYPE },
  { "gzip", F_GZIP }, { "drip", F_DRIP }, { "reset", F_RESET },
  { "slow", F_SLOW }, { "lost", F_LOST },
};


/* {==================================================================
** Parsing and choosing
** =================================================================== */

/* "mode" or "status:NNN"; a bare "NNN" (as in --faults 500,503) too. */
int faults_parse (const char *s, fault *out) {
  size_t i;
  const char *digits = NULL;
  if (strncmp(s, "status:", 7) == 0) digits = s + 7;
  else if (s[0] >= '0' && s[0] <= '9') digits = s;
  if (digits) {
    char *end;
    long v = strtol(digits, &end, 10);
    if (*end != '\0' || end == digits || v < 100 || v > 599) return 0;
    out->kind = F_STATUS;
    out->status = (int)v;
    return 1;
  }
  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (strcmp(s, kinds[i].name) == 0) {
      out->kind = kinds[i].kind;
      out->status = 0;
      return 1;
    }
  }
  return 0;
}

fault_state *faults_new (const emu_config *cfg, char *err, size_t errlen) {
  fault_state *f = (fault_state *)calloc(1, sizeof *f);
  char *list, *tok;
  if (f == NULL) { snprintf(err, errlen, "out of memory"); return NULL; }
  pthread_mutex_init(&f->lock, NULL);
  f->rate = cfg->fault_rate;
  f->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
  list = xstrdup(cfg->faults ? cfg->faults : "");
  if (list != NULL)
    f->pool = (fault *)calloc(strlen(list) / 2 + 1, sizeof *f->pool);
  if (list == NULL || f->pool == NULL) {
    free(list);
    faults_free(f);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    if (!faults_parse(tok, &f->pool[f->npool])) {
      snprintf(err, errlen, "--faults: unknown fault '%s'", tok);
      free(list);
      faults_free(f);
      return NULL;
    }
    f->npool++;
  }
  free(list);
  return f;
}

void faults_free (fault_state *f) {
  if (f == NULL) return;
  pthread_mutex_destroy(&f->lock);
  free(f->pool);
  free(f);
}

void faults_clear (fault_state *f) {
  pthread_mutex_lock(&f->lock);
  f->nscript = 0;
  pthread_mutex_unlock(&f->lock);
}

int faults_script (fault_state *f, const fault *ft, long count, int route) {
  int ok = 0;
  pthread_mutex_lock(&f->lock);
  if (f->nscript < MAX_SCRIPT) {
    f->script[f->nscript].ft = *ft;
    f->script[f->nscript].count = count;
    f->script[f->nscript].route = route;
    f->nscript++;
    ok = 1;
  }
  pthread_mutex_unlock(&f->lock);
  return ok;
}

/* splitmix64: one draw per API request, so --seed replays the same run */
static uint64_t next_rand (fault_state *f) {
  uint64_t z = (f->rng += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int faults_take (fault_state *f, int route, fault *out) {
  size_t i;
  int hit = 0;
  pthread_mutex_lock(&f->lock);
  for (i = 0; i < f->nscript; i++) {
    entry *s = &f->script[i];
    if (s->route != FAULT_ANY && s->route != route) continue;
    *out = s->ft;
    hit = 1;
    if (--s->count <= 0) {
      memmove(s, s + 1, (f->nscript - i - 1) * sizeof *s);
      f->nscript--;
    }
    break;
  }
  if (!hit && route == FAULT_API && f->npool && f->rate > 0) {
    double u = (double)(next_rand(f) >> 11) / 9007199254740992.0;
    uint64_t pick = next_rand(f);
    if (u < f->rate) {
      *out = f->pool[pick % f->npool];
      hit = 1;
    }
  }
  pthread_mutex_unlock(&f->lock);
  return hit;
}

/* These deliver the real answer, badly: the request takes effect. The
** others replace the answer and leave the org alone. */
int faults_processes (const fault *ft) {
  return ft->kind == F_TRUNCATED || ft->kind == F_GZIP
      || ft->kind == F_DRIP || ft->kind == F_SLOW || ft->kind == F_LOST
      || ft->kind == F_GARBAGE;
}

/* }================================================================== */


/* {==================================================================
** Building hostile answers
** =================================================================== */

static void set_body (reply *r, int status, const char *ctype,
                      const char *s, size_t n) {
  free(r->body);
  r->body = (char *)malloc(n + 1);
  r->len = r->body ? n : 0;
  if (r->body) { memcpy(r->body, s, n); r->body[n] = '\0'; }
  r->status = status;
  r->ctype = ctype;
}

static void status_answer (const fault *ft, reply *r) {
  int s = ft->status;
  const char *code = "INTERNAL_ERROR", *msg = "Internal Server Error";
  if (s == 204 || s == 304) { set_body(r, s, NULL, "", 0); return; }
  if (s < 400) {
    set_body(r, s, "application/json;charset=utf-8", "{}", 2);
    return;
  }
  switch (s) {
    case 401: code = "INVALID_TOKEN"; msg = "invalid oauth token"; break;
    case 403: code = "NO_PERMISSION"; msg = "permission denied"; break;
    case 404:
      code = "INVALID_URL_PATTERN";
      msg = "Please check if the URL trying to access is a correct one";
      break;
    case 429:
      code = "TOO_MANY_REQUESTS";
      msg = "You have reached the maximum number of concurrent API calls";
      break;
    case 503:
      code = "SERVICE_UNAVAILABLE";
      msg = "The service is temporarily unavailable";
      break;
    default:
      if (s < 500) { code = "INVALID_REQUEST"; msg = "the request is invalid"; }
  }
  reply_error(r, s, code, "{}", msg);
}

static void huge_answer (reply *r) {
  static const char item[] =
    "{\"id\":\"2423488000000834002\",\"api_name\":\"Digital_Marketing\","
    "\"plural_label\":\"Campaign Assets\",\"singular_label\":"
    "\"Campaign Asset\",\"generated_type\":\"custom\",\"status\":\"visible\"}";
  jbuf b;
  size_t n = 0;
  jb_init(&b);
  jb_lit(&b, "{\"modules\":[");
  while (b.len < HUGE_BYTES && !b.oom) {
    if (n++) jb_lit(&b, ",");
    jb_raw(&b, item, sizeof item - 1);
  }
  jb_lit(&b, "]}");
  reply_json(r, 200, &b);
}

static void deep_answer (reply *r) {
  char *p = (char *)malloc(2 * DEEP_LEVELS + 1);
  free(r->body);
  r->body = p;
  r->len = 0;
  r->status = 200;
  r->ctype = "application/json;charset=utf-8";
  if (p == NULL) return;
  memset(p, '[', DEEP_LEVELS);
  memset(p + DEEP_LEVELS, ']', DEEP_LEVELS);
  p[2 * DEEP_LEVELS] = '\0';
  r->len = 2 * DEEP_LEVELS;
}

void faults_build (const fault *ft, reply *r) {
  static const char html[] =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>ZGS</center>\r\n"
    "</body>\r\n</html>\r\n";
  static const char nonutf8[] =
    "{\"modules\":[{\"id\":\"2423488000000834002\",\"api_name\":"
    "\"Digital_Marketing\",\"plural_label\":\"Campaign \xff\xfe Assets\","
    "\"singular_label\":\"\xc3\x28\xed\xa0\x80\"}]}";
  static const char *const json = "application/json;charset=utf-8";
  switch (ft->kind) {
    case F_EMPTY: set_body(r, 200, json, "", 0); break;
    case F_HTML: set_body(r, 502, "text/html", html, sizeof html - 1); break;
    case F_HUGE: huge_answer(r); break;
    case F_DEEP: deep_answer(r); break;
    case F_NONUTF8: set_body(r, 200, json, nonutf8, sizeof nonutf8 - 1); break;
    case F_WRONGTYPE: set_body(r, 200, json, "{\"modules\":\"x\"}", 15); break;
    case F_RESET: r->hang_up = 1; break;
    case F_STATUS: status_answer(ft, r); break;
    default: break;
  }
}

/* }================================================================== */


/* {==================================================================
** Transforming a real answer: truncate, gzip, drip, lose
** =================================================================== */

static uint32_t crc32_of (const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  size_t i;
  int k;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return c ^ 0xFFFFFFFFu;
}

static void put32 (unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

/* A valid gzip member made of deflate "stored" blocks (RFC 1951 §3.2.4):
** every inflater reads it, and it needs no zlib. */
static void gzip_body (reply *r) {
  const unsigned char *src = (const unsigned char *)r->body;
  size_t n = r->len, blocks = n / 65535 + 1, off = 0, o = 0, b;
  unsigned char *out = (unsigned char *)malloc(10 + blocks * 5 + n + 8);
  static const unsigned char head[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
  if (out == NULL) return;
  memcpy(out, head, 10);
  o = 10;
  for (b = 0; b < blocks; b++) {
    size_t len = n - off > 65535 ? 65535 : n - off;
    out[o++] = (unsigned char)(b + 1 == blocks ? 1 : 0);   /* BFINAL */
    out[o++] = (unsigned char)len; out[o++] = (unsigned char)(len >> 8);
    out[o++] = (unsigned char)~len; out[o++] = (unsigned char)(~len >> 8);
    if (len) memcpy(out + o, src + off, len);
    o += len;
    off += len;
  }
  put32(out + o, crc32_of(src, n)); o += 4;
  put32(out + o, (uint32_t)n); o += 4;
  free(r->body);
  r->body = (char *)out;
  r->len = o;
  r->gzip = 1;
}

void faults_transform (const fault *ft, reply *r) {
  static const char garbage[] = "\x00\x01\x02\x7f<<<not json>>>\xff\xfe{{{";
  switch (ft->kind) {
    case F_GARBAGE:   /* the request took effect; its answer is garbage */
      r->gzip = 0;
      set_body(r, 200, "application/json;charset=utf-8", garbage,
               sizeof garbage - 1);
      break;
    case F_TRUNCATED:
      if (r->len > 1) r->len = r->len / 2;   /* Content-Length follows */
      break;
    case F_GZIP: gzip_body(r); break;
    case F_DRIP: r->drip = 1; break;
    case F_LOST: r->hang_up = 1; break;   /* applied, never answered */
    default: break;
  }
}

/* }================================================================== */
