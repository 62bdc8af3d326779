/*
** emu.h: internal header of the Zoho CRM emulator (bin/zcrm-emulator).
** Shares no code with the client on purpose: each catches the other's
** misreading of the docs.
*/
#ifndef ZCRM_EMU_H
#define ZCRM_EMU_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>


/* {==================================================================
** JSON writer (jbuf.c). Output is built by hand rather than as cJSON
** trees: a 100,000-module list would otherwise take millions of nodes.
** =================================================================== */

typedef struct jbuf {
  char *p;
  size_t len, cap;
  int oom;                        /* sticky: set once an allocation fails */
} jbuf;

void jb_init (jbuf *b);
void jb_free (jbuf *b);
void jb_raw (jbuf *b, const char *s, size_t n);
void jb_lit (jbuf *b, const char *s);
void jb_str (jbuf *b, const char *s);          /* NULL writes null */
void jb_strn (jbuf *b, const char *s, size_t n);
void jb_int (jbuf *b, long long v);
void jb_key (jbuf *b, const char *k);          /* "k": */
char *jb_take (jbuf *b, size_t *len);         /* NULL on oom; caller frees */

/* }================================================================== */


/* {==================================================================
** Text (text.c): UTF-8 and module labels
** =================================================================== */

#define LABEL_MAX 25

enum { LABEL_OK, LABEL_EMPTY, LABEL_TOO_LONG, LABEL_BAD_CHAR, LABEL_BAD_UTF8 };

int utf8_next (const unsigned char *s, size_t n, size_t *i, uint32_t *cp);
int label_check (const char *s);
char *label_fold (const char *s);              /* lower-cased copy */
char *xstrdup (const char *s);

/* }================================================================== */


/* {==================================================================
** String -> index hash map (strmap.c)
** =================================================================== */

typedef struct strmap strmap;

strmap *sm_new (void);
void sm_free (strmap *m);
int sm_put (strmap *m, const char *key, size_t val);   /* 0, or -1 on oom */
int sm_get (const strmap *m, const char *key, size_t *val);
void sm_del (strmap *m, const char *key);

/* }================================================================== */


/* {==================================================================
** The org (org.c): modules, profiles, their indexes and persistence.
** Callers hold emu.org_lock around every call.
** =================================================================== */

#define ORG_MAX_PROFILES 512
#define EXTRA_PROFILES_MAX 500    /* --extra-profiles */

/* A set of profiles, by index in the org's profile table. */
typedef struct profset { uint64_t w[ORG_MAX_PROFILES / 64]; } profset;

void ps_add (profset *s, int i);
void ps_del (profset *s, int i);
int ps_has (const profset *s, int i);
int ps_empty (const profset *s);

typedef struct profile {
  char *id, *name, *description;
  int custom;
} profile;

typedef struct module {
  char *id, *api_name, *module_name;
  char *plural, *singular;
  char *generated_type, *status;
  int sequence;
  profset profiles;               /* profile i may see the module */
  char modified_time[40];         /* "" = never modified */
  int api_supported;
  int team;                       /* access_type team_based: a team module */
} module;

typedef struct org_data {
  module **mods;
  size_t n, cap;
  profile prof[ORG_MAX_PROFILES];
  size_t nprof;
  strmap *by_id, *by_api, *by_plural, *by_singular;
  uint64_t next_id;               /* for created modules */
  long next_custom;               /* CustomModuleN */
  uint64_t version;               /* bumped on every change */
  long long modified;             /* time() of the last change */
} org_data;

org_data *org_seed (long extra, long extra_profiles);
org_data *org_from_state (const char *text, size_t len, const char *name,
                          char *err, size_t errlen);
void org_free (org_data *o);
char *org_state_text (const org_data *o, size_t *len);
module *org_find (const org_data *o, const char *id_or_api_name);
int org_profile_index (const org_data *o, const char *id);
module *org_label_owner (const org_data *o, int plural, const char *label);
int org_set_label (org_data *o, module *m, int plural, const char *label);
module *org_create (org_data *o, const char *api_name, const char *plural,
                    const char *singular, const profset *profiles);
void org_touch (module *m);
int org_api_name_ok (const char *s);
int org_rename_allowed (const module *m);
void org_write_module (jbuf *b, const org_data *o, const module *m);
void org_write_module_detail (jbuf *b, const org_data *o, const module *m);
void org_write_profiles (jbuf *b, const org_data *o, size_t first,
                         size_t count, long page, long per_page);
void org_write_state (jbuf *b, const org_data *o);

/* }================================================================== */


/* {==================================================================
** Configuration (defaults: config.c; command line: main.c)
** =================================================================== */

typedef struct emu_config {
  const char *host;
  int port;
  int latency_ms;
  int retry_after;                /* > 0: Retry-After seconds on every 429 */
  int concurrency;
  long long credits;
  long long credits_window;       /* --credits-window: seconds (rolling) */
  long long create_credits;
  long long module_quota;         /* --module-quota: custom modules; -1 none */
  int no_permission;              /* --permissions none */
  const char *access_token;
  const char *scopes;
  const char *client_id, *client_secret, *refresh_token;
  long token_ttl;
  long grant_ttl;                 /* --grant-ttl: a grant code's life */
  int expires_in_ms;
  const char *token_api_domain;
  int refresh_rate_limit;
  double fault_rate;
  const char *faults;
  uint64_t seed;
  const char *tls_cert, *tls_key;
  const char *state_file;
  long extra_modules;
  long extra_profiles;
  size_t max_body;
  unsigned idle_timeout;
  unsigned max_connections;
  unsigned max_client_connections; /* per address; 0: max_connections / 4 */
  unsigned header_timeout;        /* seconds to a first request's headers; 0: off */
  int verbose;
  int no_batch;                   /* --no-batch: PUT /settings/modules is a wrong method */
} emu_config;

/* }================================================================== */


/* {==================================================================
** Counters (stats.c)
** =================================================================== */

enum {
  ROUTE_LIST, ROUTE_GET, ROUTE_PUT, ROUTE_POST, ROUTE_PROFILES,
  ROUTE_TOKEN, ROUTE_OTHER, ROUTE_BATCH, ROUTE_N
};

typedef struct charge { long long sec, cost; } charge;

typedef struct stats {
  pthread_mutex_t lock;
  long long total;
  long long by_method[8];
  long long by_route[ROUTE_N];
  long long responses[600];
  long long credits_used;
  long long in_flight, max_in_flight;
  long long updates_applied, token_refreshes, tokens_issued;
  long long gzip_answers;
  /* credits spent in the rolling window: per second (monotonic), oldest
  ** first, in a ring; they come back --credits-window seconds later */
  charge *ring;
  size_t ring_head, ring_len, ring_cap;
  long long in_window;
} stats;

void stats_init (stats *s);
void stats_destroy (stats *s);
void stats_reset (stats *s);
void stats_request (stats *s, const char *method, int route);
void stats_response (stats *s, int status);
int stats_enter (stats *s, int cap);          /* 0 when over the cap */
void stats_leave (stats *s);
void stats_add (stats *s, long long *field, long long n);
long long stats_charge (stats *s, long long budget, long long window,
                        long long cost);
void stats_write (stats *s, jbuf *b, long long budget, long long window);

/* }================================================================== */


/* {==================================================================
** The emulator and one reply
** =================================================================== */

typedef struct auth_state auth_state;
typedef struct fault_state fault_state;
typedef struct conn_guard conn_guard;

typedef struct emu {
  emu_config cfg;
  char base_url[300];             /* what api_domain points at */
  pthread_mutex_t org_lock;
  org_data *org;
  stats st;
  auth_state *auth;
  fault_state *faults;
  pthread_mutex_t save_lock;      /* serialises --state writes */
  uint64_t saved_version;
  pthread_mutex_t stop_lock;      /* sleeps end early on shutdown */
  pthread_cond_t stop_cond;
  int stopping;
  char *tls_pem[2];               /* certificate and key, for MHD */
  conn_guard *guard;              /* server.c: the header guard */
} emu;

typedef struct reply {
  int status;
  char *body;                     /* malloc'd, or NULL */
  size_t len;
  const char *ctype;
  long long credits_left;         /* >= 0: send X-API-CREDITS-REMAINING */
  int hang_up;                    /* close without answering */
  int drip;                       /* send the body one byte per 50 ms */
  int gzip;                       /* body is gzip'd */
} reply;

/* What routes need from a request, without tying them to libmicrohttpd. */
typedef struct request {
  const char *method, *url;
  const char *body;
  size_t len;
  int too_big;
  const char *authorization;
  const char *if_modified_since;
  const char *accept_encoding;
  const char *content_type;
  const char *(*query) (void *ctx, const char *key);
  void *ctx;
} request;

/* runtime.c */
#define EMU_FILE_MAX (256L * 1024 * 1024)   /* --state, --tls-cert, --tls-key */
#define EMU_FILE_MAX_TEXT "256 MiB"
int emu_open (emu *e, char *err, size_t errlen);
void emu_close (emu *e);
void emu_sleep_ms (emu *e, long ms);
void emu_stop (emu *e);
int emu_stopping (emu *e);
int emu_save (emu *e);
char *emu_read_file (const char *path, size_t *len);
const char *emu_file_error (int err);

/* reply.c */
void reply_json (reply *r, int status, jbuf *b);
void reply_error (reply *r, int status, const char *code,
                  const char *details, const char *message);
void reply_write_item_error (jbuf *b, const char *code, const char *api_name,
                             const char *json_path, const char *extra,
                             const char *message);
void reply_write_item_success (jbuf *b, const char *id, const char *message);
void reply_items (reply *r, int status, jbuf *items);
void reply_item_error (reply *r, const char *code, const char *api_name,
                       const char *json_path, const char *extra,
                       const char *message);
void reply_invalid_module (reply *r);
void reply_bad_method (reply *r);
void reply_bad_url (reply *r);
int reply_accepts_gzip (const char *accept_encoding);
int reply_gzip (reply *r);

/* routes.c */
int routes_classify (const char *method, const char *url);
int routes_is_hook (const char *url);
int routes_is_accounts (const char *url);
void routes_api (emu *e, const request *q, reply *r);
void routes_hook (emu *e, const request *q, reply *r);
/* routes_handle's answer: a test hook (its reply is not counted), and a call
** that holds a concurrency slot until its answer is queued (stats_leave). */
#define ROUTED_HOOK      1
#define ROUTED_IN_FLIGHT 2
int routes_handle (emu *e, request *q, reply *r);

/* config.c */
void emu_config_defaults (emu_config *c);

/* auth.c */
auth_state *auth_new (const emu_config *cfg);
void auth_free (auth_state *a);
void auth_reset (auth_state *a);
void auth_expire_all (auth_state *a);
int auth_check (emu *e, const char *header, const char *const *scopes,
                reply *r);
void auth_token_endpoint (emu *e, const request *q, reply *r);
void auth_grant_code (emu *e, const request *q, reply *r);

/* faults.c */
enum { FAULT_API, FAULT_TOKEN, FAULT_ANY };
enum {
  F_NONE, F_EMPTY, F_HTML, F_GARBAGE, F_TRUNCATED, F_HUGE, F_DEEP,
  F_NONUTF8, F_WRONGTYPE, F_GZIP, F_DRIP, F_RESET, F_SLOW, F_STATUS, F_LOST
};
typedef struct fault { int kind, status; } fault;

fault_state *faults_new (const emu_config *cfg, char *err, size_t errlen);
void faults_free (fault_state *f);
void faults_clear (fault_state *f);
int faults_parse (const char *s, fault *out);
int faults_script (fault_state *f, const fault *ft, long count, int route);
int faults_take (fault_state *f, int route, fault *out);
int faults_processes (const fault *ft);
void faults_build (const fault *ft, reply *r);
void faults_transform (const fault *ft, reply *r);

/* server.c */
struct MHD_Daemon;
struct MHD_Daemon *server_start (emu *e, char *err, size_t errlen);
void server_stop (emu *e, struct MHD_Daemon *d);

/* }================================================================== */

#endif
