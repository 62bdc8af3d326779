/*
** main.c: command line, start-up and clean shutdown of zcrm-emulator.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

static const char usage[] =
"usage: zcrm-emulator [options]\n"
"A local stand-in for Zoho CRM's settings API (modules, profiles, OAuth).\n"
"\n"
"  --host ADDR             address to listen on (default 127.0.0.1)\n"
"  --port N                port; 0 picks a free one (default 8089)\n"
"  --latency-ms N          delay added to each API and token answer (0)\n"
"  --concurrency N         API calls in flight before 429 (default 20)\n"
"  --retry-after S         send Retry-After: S with every 429 (default: none,\n"
"                          as Zoho documents none)\n"
"  --credits N             credit budget per rolling window (default 1000000)\n"
"  --credits-window S      credits spent come back S seconds later (86400)\n"
"  --module-quota N        custom modules the edition allows; the next create\n"
"                          gets LIMIT_EXCEEDED (default: no limit)\n"
"  --permissions all|none  none: changes answer 403 NO_PERMISSION (all)\n"
"  --create-credits N      credits charged per module create (default 500)\n"
"  --access-token T        a static valid token (default emulator-token)\n"
"  --scopes LIST           scopes of every token (default ZohoCRM.settings.ALL)\n"
"  --client-id ID          OAuth client id (default emulator-client-id)\n"
"  --client-secret S       OAuth client secret (default emulator-client-secret)\n"
"  --refresh-token T       OAuth refresh token (default emulator-refresh-token)\n"
"  --token-ttl S           access token lifetime in seconds (default 3600)\n"
"  --grant-ttl S           life of a grant code from the grant-code hook (600)\n"
"  --expires-in-ms         token answers carry expires_in_sec and expires_in in ms\n"
"  --token-api-domain URL  api_domain in token answers (default: this server)\n"
"  --refresh-rate-limit N  refreshes per 10 minutes per refresh token (10)\n"
"  --fault-rate P          probability 0..1 of a random fault per API call (0)\n"
"  --faults LIST           faults to draw from (default 500,503,reset,slow,429,garbage)\n"
"  --seed N                seed of the fault sequence (default 1)\n"
"  --tls-cert F --tls-key F  serve HTTPS with this PEM certificate and key\n"
"  --state FILE            load the org from FILE and save it there on change\n"
"  --extra-modules N       seed N more custom modules Bulk_Module_1..N (<= 100000)\n"
"  --extra-profiles N      seed N more profiles \"Extra Profile 1..N\" (<= 500)\n"
"  --max-body BYTES        larger request bodies get 413 (default 1048576)\n"
"  --idle-timeout S        close idle connections after S seconds (default 30)\n"
"  --max-connections N     simultaneous connections (default 1000)\n"
"  --max-client-connections N  simultaneous connections from one address\n"
"                          (default: a quarter of --max-connections)\n"
"  --header-timeout S      cut a connection whose first request's headers\n"
"                          are not in after S seconds; 0: off (default 10)\n"
"  --no-batch              answer the batch PUT /settings/modules as a wrong\n"
"                          method, as a server without it would\n"
"  --verbose               log each request to stderr\n"
"  --help                  this text\n"
"\n"
"Prints \"listening on URL\" as its first line. Test hooks (no token):\n"
"GET /__emulator/stats, GET /__emulator/state, POST /__emulator/reset,\n"
"POST /__emulator/expire-tokens, POST /__emulator/script,\n"
"POST /__emulator/grant-code. See emulator/README.md.\n";


/* {==================================================================
** Options
** =================================================================== */


static int bad (const char *opt, const char *why) {
  fprintf(stderr, "zcrm-emulator: %s: %s (see --help)\n", opt, why);
  return 0;
}

static int number (const char *opt, const char *s, long long lo,
                   long long hi, long long *out) {
  char *end;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi)
    return bad(opt, "expects a whole number in range");
  *out = v;
  return 1;
}

static const struct numopt {
  const char *name;
  long long lo, hi;
} numopts[] = {
  { "--port", 0, 65535 }, { "--latency-ms", 0, 3600000 },
  { "--concurrency", 0, 1000000 }, { "--credits", 0, 1000000000000000LL },
  { "--create-credits", 0, 1000000000LL }, { "--token-ttl", 1, 100000000 },
  { "--refresh-rate-limit", 0, 1000000 },
  { "--seed", 0, 0x7FFFFFFFFFFFFFFFLL }, { "--extra-modules", 0, 100000 },
  { "--max-body", 1, 1073741824LL }, { "--idle-timeout", 0, 86400 },
  { "--max-connections", 1, 100000 }, { "--retry-after", 0, 86400 },
  { "--extra-profiles", 0, EXTRA_PROFILES_MAX },
  { "--grant-ttl", 1, 86400 },
  { "--max-client-connections", 1, 100000 }, { "--header-timeout", 0, 86400 },
  { "--credits-window", 1, 31536000 },
  { "--module-quota", 0, 100000000 },
};

/* 1 = a numeric option, set; 0 = not one; -1 = bad value */
static int numeric (emu_config *c, const char *opt, const char *val) {
  size_t k;
  long long n;
  for (k = 0; k < sizeof numopts / sizeof numopts[0]; k++)
    if (strcmp(opt, numopts[k].name) == 0) break;
  if (k == sizeof numopts / sizeof numopts[0]) return 0;
  if (!number(opt, val, numopts[k].lo, numopts[k].hi, &n)) return -1;
  switch (k) {
    case 0: c->port = (int)n; break;
    case 1: c->latency_ms = (int)n; break;
    case 2: c->concurrency = (int)n; break;
    case 3: c->credits = n; break;
    case 4: c->create_credits = n; break;
    case 5: c->token_ttl = (long)n; break;
    case 6: c->refresh_rate_limit = (int)n; break;
    case 7: c->seed = (uint64_t)n; break;
    case 8: c->extra_modules = (long)n; break;
    case 9: c->max_body = (size_t)n; break;
    case 10: c->idle_timeout = (unsigned)n; break;
    case 11: c->max_connections = (unsigned)n; break;
    case 12: c->retry_after = (int)n; break;
    case 13: c->extra_profiles = (long)n; break;
    case 14: c->grant_ttl = (long)n; break;
    case 15: c->max_client_connections = (unsigned)n; break;
    case 16: c->header_timeout = (unsigned)n; break;
    case 17: c->credits_window = n; break;
    default: c->module_quota = n; break;
  }
  return 1;
}

/* Returns 1 to run, 0 on error, -1 after --help. */
static int parse (int argc, char **argv, emu_config *c) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *opt = argv[i], *val;
    int rc;
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      fputs(usage, stdout);
      return -1;
    }
    if (strcmp(opt, "--expires-in-ms") == 0) { c->expires_in_ms = 1; continue; }
    if (strcmp(opt, "--verbose") == 0) { c->verbose = 1; continue; }
    if (strcmp(opt, "--no-batch") == 0) { c->no_batch = 1; continue; }
    if (strncmp(opt, "--", 2) != 0) return bad(opt, "unexpected argument");
    if (i + 1 >= argc) return bad(opt, "needs a value");
    val = argv[++i];
    if (strcmp(opt, "--host") == 0) c->host = val;
    else if (strcmp(opt, "--access-token") == 0) c->access_token = val;
    else if (strcmp(opt, "--scopes") == 0) c->scopes = val;
    else if (strcmp(opt, "--client-id") == 0) c->client_id = val;
    else if (strcmp(opt, "--client-secret") == 0) c->client_secret = val;
    else if (strcmp(opt, "--refresh-token") == 0) c->refresh_token = val;
    else if (strcmp(opt, "--token-api-domain") == 0) c->token_api_domain = val;
    else if (strcmp(opt, "--faults") == 0) c->faults = val;
    else if (strcmp(opt, "--tls-cert") == 0) c->tls_cert = val;
    else if (strcmp(opt, "--tls-key") == 0) c->tls_key = val;
    else if (strcmp(opt, "--state") == 0) c->state_file = val;
    else if (strcmp(opt, "--permissions") == 0) {
      if (strcmp(val, "all") != 0 && strcmp(val, "none") != 0)
        return bad(opt, "expects all or none");
      c->no_permission = strcmp(val, "none") == 0;
    }
    else if (strcmp(opt, "--fault-rate") == 0) {
      char *end;
      c->fault_rate = strtod(val, &end);
      if (end == val || *end || !(c->fault_rate >= 0 && c->fault_rate <= 1))
        return bad(opt, "expects a probability between 0 and 1");
    }
    else if ((rc = numeric(c, opt, val)) == 0) return bad(opt, "unknown option");
    else if (rc < 0) return 0;
  }
  if ((c->tls_cert == NULL) != (c->tls_key == NULL))
    return bad("--tls-cert/--tls-key", "give both or neither");
  return 1;
}

/* }================================================================== */


/* {==================================================================
** Life cycle
** =================================================================== */

int main (int argc, char **argv) {
  static emu e;                   /* zeroed; lives as long as the program */
  struct MHD_Daemon *d;
  sigset_t sigs;
  char err[512] = "";
  int sig = 0, rc;
  emu_config_defaults(&e.cfg);
  rc = parse(argc, argv, &e.cfg);
  if (rc <= 0) return rc < 0 ? 0 : 2;
  if (!emu_open(&e, err, sizeof err)) {
    fprintf(stderr, "zcrm-emulator: %s\n", err);
    emu_close(&e);
    return 1;
  }
  /* Every thread inherits this mask; main alone takes the signals, with
  ** sigwait, so shutdown runs as ordinary code. */
  signal(SIGINT, SIG_DFL);        /* a shell's "cmd &" starts us ignoring it */
  signal(SIGTERM, SIG_DFL);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  d = server_start(&e, err, sizeof err);
  if (d == NULL) {
    fprintf(stderr, "zcrm-emulator: %s\n", err);
    emu_close(&e);
    return 1;
  }
  if (emu_save(&e) != 0) {        /* a fresh --state file exists at once */
    server_stop(&e, d);
    emu_close(&e);
    return 1;
  }
  printf("listening on %s\n", e.base_url);
  fflush(stdout);
  while (sigwait(&sigs, &sig) != 0) {}
  emu_stop(&e);
  server_stop(&e, d);
  emu_save(&e);
  emu_close(&e);
  return 0;
}

/* }================================================================== */
