/*
** fuzz_emulator.c: the emulator's request handling (every emulator/ unit
** but main.c and server.c, which hold libmicrohttpd), linked as it is:
** no stubs. `handle` below drives routes_handle as server.c does, minus
** the MHD calls: hooks, classification, the concurrency cap, faults, the
** token endpoint, the API routes. The emulator is opened already stopping,
** so sleeps (latency, slow faults) end at once; no --state is given, so
** nothing is saved.
**
** Input (text, so seeds read like HTTP):
**   [!key=value ... \n]          optional: rate=P faults=LIST credits=N
**                                scopes=LIST create=N conc=N maxbody=N extra=N
**                                profiles=N (--extra-profiles)
**   METHOD URL[?query]\n         one request
**   Header: value\n ...          Authorization, If-Modified-Since, Accept-Encoding,
**                                Content-Type;
**                                others ignored
**   \n
**   body
**   \n%%\n                       separates up to 8 requests (state carries over)
** Every input gets a freshly seeded org, token store, fault queue and
** counters, and frees them at the end, so LSan sees any leak.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../emulator/emu.h"

typedef struct query_ctx {
  char *q;                        /* the raw query string, or NULL */
  char val[4096];
} query_ctx;

static int hexval (int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* MHD_lookup_connection_value(GET_ARGUMENT_KIND): first `key=`, decoded. */
static const char *query_value (void *ctx, const char *key) {
  query_ctx *x = (query_ctx *)ctx;
  size_t kl = strlen(key);
  const char *p = x->q;
  while (p && *p) {
    const char *end = strchr(p, '&');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= kl && strncmp(p, key, kl) == 0 && (n == kl || p[kl] == '=')) {
      size_t i, o = 0;
      for (i = kl + 1; i < n && o + 1 < sizeof x->val; i++) {
        int h, l;
        if (p[i] == '+') x->val[o++] = ' ';
        else if (p[i] == '%' && i + 2 < n + 1 && (h = hexval(p[i + 1])) >= 0
                 && (l = hexval(p[i + 2])) >= 0) {
          x->val[o++] = (char)(h * 16 + l);
          i += 2;
        } else x->val[o++] = p[i];
      }
      x->val[o] = '\0';
      return x->val;
    }
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

/* One request through routes_handle, as server.c does minus libmicrohttpd:
** returns the reply's status (0 = hung up). */
static int handle (emu *e, request *q, int too_big) {
  reply r;
  int routed, status;
  memset(&r, 0, sizeof r);
  q->too_big = too_big;
  routed = routes_handle(e, q, &r);
  /* what MHD would be handed: a status it can send, a body of len bytes */
  if (!r.hang_up && (r.status < 100 || r.status > 999)) abort();
  if (r.body == NULL && r.len != 0) abort();
  status = r.hang_up ? 0 : r.status;
  if (!(routed & ROUTED_HOOK)) stats_response(&e->st, r.status);
  free(r.body);
  if (routed & ROUTED_IN_FLIGHT) stats_leave(&e->st);
  return status;
}

static void configure (emu_config *c, char *line) {
  char *tok, *save = NULL;
  for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(tok, '=');
    if (eq == NULL) continue;
    *eq++ = '\0';
    if (strcmp(tok, "rate") == 0) c->fault_rate = atof(eq) >= 0 && atof(eq) <= 1 ? atof(eq) : 0;
    else if (strcmp(tok, "faults") == 0) c->faults = eq;
    else if (strcmp(tok, "credits") == 0) c->credits = atoll(eq) & 0xffff;
    else if (strcmp(tok, "create") == 0) c->create_credits = atoll(eq) & 0xffff;
    else if (strcmp(tok, "scopes") == 0) c->scopes = eq;
    else if (strcmp(tok, "conc") == 0) c->concurrency = atoi(eq) & 0xff;
    else if (strcmp(tok, "maxbody") == 0) c->max_body = (size_t)(atoll(eq) & 0xfffff);
    else if (strcmp(tok, "extra") == 0) c->extra_modules = atol(eq) & 0x3f;
    else if (strcmp(tok, "profiles") == 0) c->extra_profiles = atol(eq) % (EXTRA_PROFILES_MAX + 1);
    else if (strcmp(tok, "seed") == 0) c->seed = (uint64_t)atoll(eq);
  }
}


/* One request from `s` (NUL-terminated, modified in place). */
static void one_request (emu *e, char *s) {
  request q;
  query_ctx qx;
  char *nl, *sp, *url, *line, *body;
  memset(&q, 0, sizeof q);
  memset(&qx, 0, sizeof qx);
  nl = strchr(s, '\n');
  if (nl) *nl = '\0';
  sp = strchr(s, ' ');
  if (sp == NULL) return;
  *sp = '\0';
  url = sp + 1;
  q.method = s;
  if ((qx.q = strchr(url, '?')) != NULL) *qx.q++ = '\0';
  q.url = url;
  q.query = query_value;
  q.ctx = &qx;
  body = NULL;
  line = nl ? nl + 1 : NULL;
  while (line && *line) {         /* headers until an empty line */
    char *end;
    if (*line == '\n') { body = line + 1; break; }
    end = strchr(line, '\n');
    if (end) *end = '\0';
    if (strncasecmp(line, "Authorization: ", 15) == 0) q.authorization = line + 15;
    else if (strncasecmp(line, "If-Modified-Since: ", 19) == 0) q.if_modified_since = line + 19;
    else if (strncasecmp(line, "Accept-Encoding: ", 17) == 0) q.accept_encoding = line + 17;
    else if (strncasecmp(line, "Content-Type: ", 14) == 0) q.content_type = line + 14;
    line = end ? end + 1 : NULL;
  }
  if (body) { q.body = body; q.len = strlen(body); }
  handle(e, &q, q.len > e->cfg.max_body);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  static emu e;
  char *buf, *p, err[256];
  int n;
  if (size > 1 << 20) return 0;
  buf = (char *)malloc(size + 1);
  if (buf == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  memset(&e, 0, sizeof e);
  emu_config_defaults(&e.cfg);
  p = buf;
  if (*p == '!') {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    configure(&e.cfg, p + 1);
    p = nl ? nl + 1 : p + strlen(p);
  }
  snprintf(e.base_url, sizeof e.base_url, "http://127.0.0.1:8089");
  if (emu_open(&e, err, sizeof err)) {
    emu_stop(&e);
    for (n = 0; n < 8 && p; n++) {
      char *sep = strstr(p, "\n%%\n");
      if (sep) *sep = '\0';
      one_request(&e, p);
      p = sep ? sep + 4 : NULL;
    }
  }
  emu_close(&e);
  free(buf);
  return 0;
}
