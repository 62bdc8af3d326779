/*
** routes.c: the Zoho CRM settings routes (modules, profiles) and the
** test hooks under /__emulator/. Answers are built by reply.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "emu.h"

#define API_PREFIX "/crm/v8/settings/"
#define HOOK_PREFIX "/__emulator/"

static const char *const scope_modules_read[] = {
  "ZohoCRM.settings.ALL", "ZohoCRM.settings.modules.ALL",
  "ZohoCRM.settings.modules.READ", NULL
};
static const char *const scope_modules_update[] = {
  "ZohoCRM.settings.ALL", "ZohoCRM.settings.modules.ALL",
  "ZohoCRM.settings.modules.UPDATE", NULL
};
static const char *const scope_modules_create[] = {
  "ZohoCRM.settings.ALL", "ZohoCRM.settings.modules.ALL",
  "ZohoCRM.settings.modules.CREATE", NULL
};
static const char *const scope_profiles_read[] = {
  "ZohoCRM.settings.ALL", "ZohoCRM.settings.profiles.ALL",
  "ZohoCRM.settings.profiles.READ", NULL
};

static const char *const statuses[] = {
  "visible", "user_hidden", "system_hidden", "scheduled_for_deletion"
};


/* {==================================================================
** Classification
** =================================================================== */

int routes_is_hook (const char *url) {
  return strncmp(url, HOOK_PREFIX, sizeof HOOK_PREFIX - 1) == 0;
}

int routes_is_accounts (const char *url) {
  return strcmp(url, "/oauth/v2/token") == 0
      || strcmp(url, "/oauth/v2/token/revoke") == 0;
}

/* The module segment of /crm/v8/settings/modules/{x}, or NULL. */
static const char *module_segment (const char *url) {
  static const char p[] = API_PREFIX "modules/";
  const char *seg;
  if (strncmp(url, p, sizeof p - 1) != 0) return NULL;
  seg = url + sizeof p - 1;
  if (*seg == '\0' || strchr(seg, '/')) return NULL;
  return seg;
}

int routes_classify (const char *method, const char *url) {
  int get = strcmp(method, "GET") == 0;
  if (strcmp(url, API_PREFIX "modules") == 0) {
    if (get) return ROUTE_LIST;
    if (strcmp(method, "POST") == 0) return ROUTE_POST;
    if (strcmp(method, "PUT") == 0) return ROUTE_BATCH;
  } else if (module_segment(url)) {
    if (get) return ROUTE_GET;
    if (strcmp(method, "PUT") == 0) return ROUTE_PUT;
  } else if (strcmp(url, API_PREFIX "profiles") == 0) {
    if (get) return ROUTE_PROFILES;
  } else if (strcmp(url, "/oauth/v2/token") == 0) {
    if (strcmp(method, "POST") == 0) return ROUTE_TOKEN;
  }
  return ROUTE_OTHER;
}

static int known_path (const char *url) {
  return strcmp(url, API_PREFIX "modules") == 0 || module_segment(url)
      || strcmp(url, API_PREFIX "profiles") == 0;
}

/* /crm/vN/settings/... (N below 8, "2.1" style too) on one of our paths:
** the endpoint exists in v8 only as emulated ("Modules Metadata":
** API_NOT_SUPPORTED with details.supported_version) */
static int older_version (const char *url) {
  static const char p[] = "/crm/v";
  char v8[512];
  const char *s = url + sizeof p - 1, *rest;
  long major;
  if (strncmp(url, p, sizeof p - 1) != 0 || *s < '0' || *s > '9') return 0;
  major = strtol(s, (char **)&rest, 10);
  if (*rest == '.') {
    rest++;
    if (*rest < '0' || *rest > '9') return 0;
    while (*rest >= '0' && *rest <= '9') rest++;
  }
  if (major >= 8 || strncmp(rest, "/settings/", 10) != 0) return 0;
  if ((size_t)snprintf(v8, sizeof v8, "/crm/v8%s", rest) >= sizeof v8) return 0;
  return known_path(v8);
}

/* }================================================================== */


/* {==================================================================
** Body checks shared by create and update
** =================================================================== */

/* Where one item's result goes: a jbuf of result objects, and the item's
** index in the body (for json_path). */
typedef struct item_out {
  jbuf *b;
  int index;
  int count;                      /* results written so far */
} item_out;

/* One error result for the item; `sub` is the json_path below the item
** ("" for the item itself, ".plural_label", ".profiles[2].id"). */
static void item_fail (item_out *out, const char *code, const char *api_name,
                       const char *sub, const char *extra,
                       const char *message) {
  char path[128];
  snprintf(path, sizeof path, "$.modules[%d]%s", out->index, sub);
  if (out->count++) jb_lit(out->b, ",");
  reply_write_item_error(out->b, code, api_name, path, extra, message);
}

/* cJSON ends a string at a \u0000 escape, so a label "Leads\u0000x"
** would be checked, and stored, as "Leads". Before parsing, each such
** escape is turned into \u0001 in a copy of the body: a control character
** that every field refuses (a label: INVALID_DATA, "Special characters",
** naming the field), where the NUL would have been dropped silently. A
** backslash pair is skipped whole, so "\\u0000" (a backslash, then
** "u0000") is left as it is. NULL when there is none (use the body), or a
** malloc'd copy; *oom on allocation failure. */
static char *nul_escapes_marked (const char *body, size_t len, int *oom) {
  char *copy = NULL;
  size_t i;
  *oom = 0;
  for (i = 0; i + 1 < len; i++) {
    if (body[i] != '\\') continue;
    if (body[i + 1] == 'u' && i + 5 < len && memcmp(body + i + 2, "0000", 4) == 0) {
      if (copy == NULL) {
        copy = (char *)malloc(len + 1);
        if (copy == NULL) { *oom = 1; return NULL; }
        memcpy(copy, body, len);
        copy[len] = '\0';
      }
      copy[i + 5] = '1';
    }
    i++;                          /* the escaped character */
  }
  return copy;
}

/* Parse the body and check its {"modules":[ 1..limit items ]} frame.
** Returns the array, or NULL with r set. *root must be freed by the
** caller. */
static const cJSON *modules_array (const request *q, cJSON **root, int limit,
                                   const char *verb, reply *r) {
  const cJSON *arr;
  size_t i;
  char msg[80], details[96];
  *root = NULL;
  for (i = 0; i < q->len && (q->body[i] == ' ' || q->body[i] == '\n'
                             || q->body[i] == '\r' || q->body[i] == '\t');
       i++) {}
  if (i == q->len) {
    reply_error(r, 400, "MANDATORY_NOT_FOUND",
                "{\"api_name\":\"modules\",\"json_path\":\"$.modules\"}",
                "required field not found");
    return NULL;
  }
  {
    int oom;
    char *marked = nul_escapes_marked(q->body, q->len, &oom);
    if (oom) {
      reply_error(r, 500, "INTERNAL_ERROR", "{}", "out of memory");
      return NULL;
    }
    *root = cJSON_ParseWithLength(marked ? marked : q->body, q->len);
    free(marked);
  }
  if (*root == NULL) {
    reply_error(r, 400, "INVALID_DATA", "{}",
                "the request body is not valid JSON");
    return NULL;
  }
  if (!cJSON_IsObject(*root)) {
    reply_error(r, 400, "INVALID_DATA", "{\"expected_data_type\":"
                "\"jsonobject\"}", "invalid data");
    return NULL;
  }
  arr = cJSON_GetObjectItemCaseSensitive(*root, "modules");
  if (arr == NULL || cJSON_IsNull(arr)
      || (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 0)) {
    reply_error(r, 400, "MANDATORY_NOT_FOUND",
                "{\"api_name\":\"modules\",\"json_path\":\"$.modules\"}",
                "required field not found");
    return NULL;
  }
  if (!cJSON_IsArray(arr)) {
    reply_error(r, 400, "INVALID_DATA", "{\"api_name\":\"modules\","
                "\"json_path\":\"$.modules\",\"expected_data_type\":"
                "\"jsonarray\"}", "invalid data");
    return NULL;
  }
  if (cJSON_GetArraySize(arr) > limit) {
    if (limit == 1)
      snprintf(msg, sizeof msg, "only one module can be %s per request", verb);
    else
      snprintf(msg, sizeof msg, "at most %d modules can be %s per request",
               limit, verb);
    snprintf(details, sizeof details, "{\"api_name\":\"modules\","
             "\"json_path\":\"$.modules\",\"limit\":%d}", limit);
    reply_error(r, 400, "LIMIT_EXCEEDED", details, msg);
    return NULL;
  }
  return arr;
}

/* The one item of a single-module call, or NULL with r set (400). */
static const cJSON *single_item (const cJSON *arr, reply *r) {
  const cJSON *item = cJSON_GetArrayItem(arr, 0);
  if (!cJSON_IsObject(item)) {
    reply_item_error(r, "INVALID_DATA", "modules", "$.modules[0]",
                     ",\"expected_data_type\":\"jsonobject\"", "invalid data");
    return NULL;
  }
  return item;
}

/* Check item[key] as a label when present. 1 = fine or absent. */
static int check_label (const cJSON *item, const char *key, item_out *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
  char path[64], msg[80];
  const char *what = strcmp(key, "plural_label") == 0 ? "plural" : "singular";
  if (v == NULL) return 1;
  snprintf(path, sizeof path, ".%s", key);
  if (!cJSON_IsString(v)) {
    item_fail(out, "INVALID_DATA", key, path,
               ",\"expected_data_type\":\"text\"", "invalid data");
    return 0;
  }
  switch (label_check(v->valuestring)) {
    case LABEL_OK: return 1;
    case LABEL_TOO_LONG:
      item_fail(out, "INVALID_DATA", key, path, ",\"maximum_length\":25",
                 "invalid data");
      return 0;
    case LABEL_EMPTY:
      snprintf(msg, sizeof msg, "Module %s name cannot be empty", what);
      item_fail(out, "INVALID_DATA", key, path, NULL, msg);
      return 0;
    case LABEL_BAD_UTF8:
      item_fail(out, "INVALID_DATA", key, path, NULL, "invalid data");
      return 0;
    default:
      snprintf(msg, sizeof msg, "Special characters in module %s name", what);
      item_fail(out, "INVALID_DATA", key, path, NULL, msg);
      return 0;
  }
}

static int check_duplicates (const org_data *o, const cJSON *item,
                             const module *self, item_out *out) {
  static const char *const keys[2] = { "plural_label", "singular_label" };
  int k;
  for (k = 0; k < 2; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, keys[k]);
    module *owner;
    char path[64];
    if (!cJSON_IsString(v)) continue;
    owner = org_label_owner(o, k == 0, v->valuestring);
    if (owner == NULL || owner == self) continue;
    snprintf(path, sizeof path, ".%s", keys[k]);
    item_fail(out, "DUPLICATE_DATA", keys[k], path, NULL,
               k == 0 ? "Module plural name duplicate"
                      : "Module singular name duplicate");
    return 0;
  }
  return 1;
}

/* Apply the profiles delta of item to *bits: an entry adds its profile,
** one with "_delete": null removes it. 1 = fine or absent. */
static int check_profiles (const org_data *o, const cJSON *item, profset *bits,
                           item_out *out) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(item, "profiles");
  const cJSON *p;
  int i = 0;
  char path[96];
  profset seen;
  memset(&seen, 0, sizeof seen);
  if (arr == NULL) return 1;
  if (cJSON_IsNull(arr)
      || (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 0)) {
    item_fail(out, "MINIMUM_DATA_NOT_FOUND", "profiles",
               ".profiles", NULL, "At least one profile needed");
    return 0;
  }
  if (!cJSON_IsArray(arr)) {
    item_fail(out, "INVALID_DATA", "profiles", ".profiles",
               ",\"expected_data_type\":\"jsonarray\"", "invalid data");
    return 0;
  }
  cJSON_ArrayForEach(p, arr) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    const cJSON *del = cJSON_GetObjectItemCaseSensitive(p, "_delete");
    int k;
    if (!cJSON_IsObject(p)) {
      snprintf(path, sizeof path, ".profiles[%d]", i);
      item_fail(out, "INVALID_DATA", "profiles", path,
                 ",\"expected_data_type\":\"jsonobject\"", "invalid data");
      return 0;
    }
    snprintf(path, sizeof path, ".profiles[%d].id", i);
    if (id == NULL || cJSON_IsNull(id)) {
      item_fail(out, "MANDATORY_NOT_FOUND", "id", path, NULL,
                 "required field not found");
      return 0;
    }
    if (!cJSON_IsString(id)) {    /* a number would lose 64-bit precision */
      item_fail(out, "INVALID_DATA", "id", path,
                 ",\"expected_data_type\":\"bigint\"", "invalid data");
      return 0;
    }
    k = org_profile_index(o, id->valuestring);
    if (k < 0) {
      item_fail(out, "INVALID_DATA", "id", path, NULL,
                 "Invalid profile id passed");
      return 0;
    }
    if (ps_has(&seen, k)) {      /* "Create Custom Module": no duplicates */
      item_fail(out, "INVALID_DATA", "id", path, NULL,
                "duplicate profile id");
      return 0;
    }
    ps_add(&seen, k);
    if (del != NULL && !cJSON_IsNull(del)) {
      snprintf(path, sizeof path, ".profiles[%d]._delete", i);
      item_fail(out, "INVALID_DATA", "_delete", path,
                 ",\"expected_data_type\":\"jsonobject\"", "invalid data");
      return 0;
    }
    if (del) ps_del(bits, k);
    else ps_add(bits, k);
    i++;
  }
  if (ps_empty(bits)) {
    item_fail(out, "MINIMUM_DATA_NOT_FOUND", "profiles",
               ".profiles", NULL, "At least one profile needed");
    return 0;
  }
  return 1;
}

/* }================================================================== */


/* {==================================================================
** Module handlers (called with the org lock held)
** =================================================================== */

static int status_wanted (const char *filter, const char *status) {
  const char *p = filter;
  size_t n = strlen(status);
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && memcmp(p, status, n) == 0) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

/* If-Modified-Since as an HTTP date or ISO 8601 with an offset; -1 when
** unreadable (then the header is ignored, as HTTP says). */
static long long parse_time (const char *s) {
  struct tm tm;
  const char *end;
  long long t;
  memset(&tm, 0, sizeof tm);
  end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end && *end == '\0') return (long long)timegm(&tm);
  memset(&tm, 0, sizeof tm);
  end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == NULL) return -1;
  t = (long long)timegm(&tm);
  if (*end == 'Z' && end[1] == '\0') return t;
  if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
    long long off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600
                  + ((end[4] - '0') * 10 + (end[5] - '0')) * 60;
    return *end == '+' ? t - off : t + off;
  }
  return -1;
}

/* 304 when nothing changed since If-Modified-Since */
static int not_modified (const org_data *o, const request *q, reply *r) {
  long long since;
  if (q->if_modified_since == NULL) return 0;
  since = parse_time(q->if_modified_since);
  if (since < 0 || o->modified > since) return 0;
  r->status = 304;
  return 1;
}

static void list_modules (emu *e, const request *q, reply *r) {
  const char *filter = q->query ? q->query(q->ctx, "status") : NULL;
  const org_data *o = e->org;
  size_t i, count = 0;
  jbuf b;
  if (filter) {                   /* every item must be a known status */
    const char *p = filter;
    int index = 0;
    for (;;) {
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p), k;
      int ok = 0;
      for (k = 0; k < 4; k++)
        if (strlen(statuses[k]) == len && memcmp(statuses[k], p, len) == 0)
          ok = 1;
      if (!ok) {
        char details[256];
        snprintf(details, sizeof details, "{\"index\":%d,\"supported_values\""
                 ":[\"visible\",\"user_hidden\",\"system_hidden\","
                 "\"scheduled_for_deletion\"],\"param_name\":\"status\"}",
                 index);
        reply_error(r, 400, "INVALID_DATA", details,
                    "The status given is invalid.");
        return;
      }
      if (!end) break;
      p = end + 1;
      index++;
    }
  }
  if (not_modified(o, q, r)) return;
  jb_init(&b);
  jb_lit(&b, "{\"modules\":[");
  for (i = 0; i < o->n; i++) {
    const module *m = o->mods[i];
    if (filter && !status_wanted(filter, m->status)) continue;
    if (count++) jb_lit(&b, ",");
    org_write_module(&b, o, m);
  }
  jb_lit(&b, "]}");
  if (count == 0) {               /* Zoho: nothing matched, no body */
    jb_free(&b);
    r->status = 204;
    return;
  }
  reply_json(r, 200, &b);
}

static void get_module (emu *e, const request *q, const char *seg,
                        reply *r) {
  const module *m = org_find(e->org, seg);
  jbuf b;
  if (m == NULL) { reply_invalid_module(r); return; }
  if (not_modified(e->org, q, r)) return;
  if (!m->api_supported) { r->status = 204; return; }
  jb_init(&b);
  jb_lit(&b, "{\"modules\":[");
  org_write_module_detail(&b, e->org, m);
  jb_lit(&b, "]}");
  reply_json(r, 200, &b);
}

/* 1 when item[key] is a label other than current */
static int relabels (const cJSON *item, const char *key, const char *current) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
  return cJSON_IsString(v) && strcmp(v->valuestring, current) != 0;
}

/* Checks one update item against module m and applies it. Writes one
** result (success or error) to out; 1 when applied. The id, when the item
** carries one, must be m's. */
static int update_item (org_data *o, module *m, const cJSON *item,
                        item_out *out) {
  const cJSON *v;
  profset bits;
  /* "Update Custom Module": the API name changes only in the UI; any
  ** api_name in the body is refused, the module's own too */
  if (cJSON_GetObjectItemCaseSensitive(item, "api_name")) {
    item_fail(out, "NOT_ALLOWED", "api_name", ".api_name", NULL,
              "Api name update not allowed");
    return 0;
  }
  if (cJSON_GetObjectItemCaseSensitive(item, "access_type")) {
    item_fail(out, "NOT_ALLOWED", "access_type", ".access_type", NULL,
              "access type update not allowed");
    return 0;
  }
  v = cJSON_GetObjectItemCaseSensitive(item, "id");
  if (v && !cJSON_IsString(v)) {
    item_fail(out, "INVALID_DATA", "id", ".id",
              ",\"expected_data_type\":\"bigint\"", "invalid data");
    return 0;
  }
  if (v && strcmp(v->valuestring, m->id) != 0) {
    item_fail(out, "INVALID_DATA", "id", ".id", NULL,
              "the id given seems to be invalid");
    return 0;
  }
  if (!check_label(item, "plural_label", out)
      || !check_label(item, "singular_label", out))
    return 0;
  if (!org_rename_allowed(m) && (relabels(item, "plural_label", m->plural)
                                 || relabels(item, "singular_label",
                                             m->singular))) {
    item_fail(out, "INVALID_DATA", "id", ".id", NULL,
              "Module rename not allowed");
    return 0;
  }
  if (m->team && cJSON_GetObjectItemCaseSensitive(item, "profiles")) {
    item_fail(out, "NOT_ALLOWED", "profiles", ".profiles", NULL,
              "profile update for team module is not allowed");
    return 0;
  }
  bits = m->profiles;
  if (!check_profiles(o, item, &bits, out)) return 0;
  if (!cJSON_GetObjectItemCaseSensitive(item, "plural_label")
      && !cJSON_GetObjectItemCaseSensitive(item, "singular_label")
      && !cJSON_GetObjectItemCaseSensitive(item, "profiles")) {
    item_fail(out, "MANDATORY_NOT_FOUND", "plural_label", ".plural_label",
              NULL, "required field not found");
    return 0;
  }
  if (!check_duplicates(o, item, m, out)) return 0;
  v = cJSON_GetObjectItemCaseSensitive(item, "plural_label");
  if (v && org_set_label(o, m, 1, v->valuestring)) goto oom;
  v = cJSON_GetObjectItemCaseSensitive(item, "singular_label");
  if (v && org_set_label(o, m, 0, v->valuestring)) goto oom;
  m->profiles = bits;
  org_touch(m);
  o->version++;
  o->modified = (long long)time(NULL);
  if (out->count++) jb_lit(out->b, ",");
  reply_write_item_success(out->b, m->id, "module updated successfully");
  return 1;
oom:
  item_fail(out, "INTERNAL_ERROR", "modules", "", NULL,
            "Internal Server Error");
  return 0;
}

/* PUT /settings/modules/{module}: one item; 200 or 400. */
static int update_module (emu *e, const request *q, const char *seg,
                          reply *r) {
  module *m = org_find(e->org, seg);
  cJSON *root;
  const cJSON *arr, *item;
  jbuf b;
  item_out out;
  int applied;
  if (m == NULL) { reply_invalid_module(r); return 0; }
  arr = modules_array(q, &root, 1, "updated", r);
  item = arr ? single_item(arr, r) : NULL;
  if (item == NULL) { cJSON_Delete(root); return 0; }
  jb_init(&b);
  out.b = &b; out.index = 0; out.count = 0;
  applied = update_item(e->org, m, item, &out);
  reply_items(r, applied ? 200 : 400, &b);
  cJSON_Delete(root);
  return applied;
}

#define BATCH_MAX 100

/* PUT /settings/modules: up to 100 items, each with its module's id, each
** checked and applied on its own, in order (a later item sees what an
** earlier one changed). 200 when all were applied, 207 when some were,
** 400 when none was; one result per item, in order. Returns the number
** applied. */
static int update_modules (emu *e, const request *q, reply *r) {
  cJSON *root;
  const cJSON *arr, *item;
  jbuf b;
  item_out out;
  int applied = 0, n;
  arr = modules_array(q, &root, BATCH_MAX, "updated", r);
  if (arr == NULL) { cJSON_Delete(root); return 0; }
  n = cJSON_GetArraySize(arr);
  jb_init(&b);
  out.b = &b; out.index = 0; out.count = 0;
  cJSON_ArrayForEach(item, arr) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
    module *m;
    if (!cJSON_IsObject(item))
      item_fail(&out, "INVALID_DATA", "modules", "",
                ",\"expected_data_type\":\"jsonobject\"", "invalid data");
    else if (id == NULL || cJSON_IsNull(id))
      item_fail(&out, "MANDATORY_NOT_FOUND", "id", ".id", NULL,
                "required field not found");
    else if (!cJSON_IsString(id))
      item_fail(&out, "INVALID_DATA", "id", ".id",
                ",\"expected_data_type\":\"bigint\"", "invalid data");
    else if ((m = org_find(e->org, id->valuestring)) == NULL
             || strspn(id->valuestring, "0123456789") != strlen(id->valuestring))
      item_fail(&out, "INVALID_DATA", "id", ".id", NULL,
                "the id given seems to be invalid");
    else applied += update_item(e->org, m, item, &out);
    out.index++;
  }
  reply_items(r, applied == n ? 200 : applied ? 207 : 400, &b);
  cJSON_Delete(root);
  return applied;
}

/* An API name from the plural label: ASCII letters and digits, spaces
** as '_', then a suffix if it is taken. */
static void make_api_name (const org_data *o, const char *label, char *out,
                           size_t outlen) {
  size_t n = 0, base;
  int k;
  const char *p;
  for (p = label; *p && n + 1 < outlen && n < 40; p++) {
    char c = *p;
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
             || (c >= '0' && c <= '9');
    if (alnum && (n > 0 || !(c >= '0' && c <= '9'))) out[n++] = c;
    else if (c == ' ' && n > 0 && out[n - 1] != '_') out[n++] = '_';
  }
  while (n > 0 && out[n - 1] == '_') n--;
  out[n] = '\0';
  if (n == 0) snprintf(out, outlen, "CustomModule%ld", o->next_custom);
  base = strlen(out);
  for (k = 1; org_find(o, out) && k < 1000000; k++)
    snprintf(out + base, outlen - base, "_%d", k);
}

/* A string of 1..max code points; 0 otherwise. */
static int text_ok (const cJSON *v, size_t max) {
  const unsigned char *s;
  size_t n, i = 0, count = 0;
  uint32_t cp;
  if (!cJSON_IsString(v)) return 0;
  s = (const unsigned char *)v->valuestring;
  n = strlen(v->valuestring);
  while (i < n) {
    if (!utf8_next(s, n, &i, &cp) || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      return 0;
    count++;
  }
  return count >= 1 && count <= max;
}

/* item_fail, for a check that then returns 0 */
static int item_refuse (item_out *out, const char *code, const char *api_name,
                        const char *sub, const char *extra,
                        const char *message) {
  item_fail(out, code, api_name, sub, extra, message);
  return 0;
}

/* "Create Custom Module"'s display_field: field_label (<= 100), data_type
** text or autonumber, auto_number { start_number: 1-16 digits, prefix and
** suffix <= 50 }, required for autonumber. 1 = fine or absent. */
static int check_display_field (const cJSON *item, item_out *out) {
  static const char *const affixes[2] = { "prefix", "suffix" };
  static const char object[] = ",\"expected_data_type\":\"jsonobject\"";
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(item, "display_field");
  const cJSON *dt, *an, *sn, *v;
  char sub[64];
  int k;
  if (d == NULL) return 1;
  if (!cJSON_IsObject(d))
    return item_refuse(out, "INVALID_DATA", "display_field", ".display_field",
                       object, "invalid data");
  v = cJSON_GetObjectItemCaseSensitive(d, "field_label");
  if (v == NULL)
    return item_refuse(out, "MANDATORY_NOT_FOUND", "field_label",
                       ".display_field.field_label", NULL,
                       "required field not found");
  if (!text_ok(v, 100))
    return item_refuse(out, "INVALID_DATA", "field_label",
                       ".display_field.field_label", ",\"maximum_length\":100",
                       "invalid data");
  dt = cJSON_GetObjectItemCaseSensitive(d, "data_type");
  if (dt && !(cJSON_IsString(dt) && (strcmp(dt->valuestring, "text") == 0
                                     || strcmp(dt->valuestring, "autonumber") == 0)))
    return item_refuse(out, "INVALID_DATA", "data_type",
                       ".display_field.data_type", NULL, "invalid data");
  an = cJSON_GetObjectItemCaseSensitive(d, "auto_number");
  if (an == NULL)
    return !(dt && strcmp(dt->valuestring, "autonumber") == 0)
        || item_refuse(out, "DEPENDENT_FIELD_MISSING", "auto_number",
                       ".display_field.auto_number", NULL,
                       "autonumber data is not found");
  if (!cJSON_IsObject(an))
    return item_refuse(out, "INVALID_DATA", "auto_number",
                       ".display_field.auto_number", object, "invalid data");
  sn = cJSON_GetObjectItemCaseSensitive(an, "start_number");
  if (sn == NULL)
    return item_refuse(out, "MANDATORY_NOT_FOUND", "start_number",
                       ".display_field.auto_number.start_number", NULL,
                       "required field not found");
  if (!cJSON_IsString(sn) || sn->valuestring[0] == '\0'
      || strlen(sn->valuestring) > 16
      || strspn(sn->valuestring, "0123456789") != strlen(sn->valuestring))
    return item_refuse(out, "INVALID_DATA", "start_number",
                       ".display_field.auto_number.start_number",
                       ",\"maximum_length\":16", "invalid data");
  for (k = 0; k < 2; k++) {
    v = cJSON_GetObjectItemCaseSensitive(an, affixes[k]);
    snprintf(sub, sizeof sub, ".display_field.auto_number.%s", affixes[k]);
    if (v && !text_ok(v, 50))
      return item_refuse(out, "INVALID_DATA", affixes[k], sub,
                         ",\"maximum_length\":50", "invalid data");
  }
  return 1;
}

static int create_module (emu *e, const request *q, reply *r) {
  static const char *const need[3] = {
    "plural_label", "singular_label", "profiles"
  };
  org_data *o = e->org;
  cJSON *root;
  const cJSON *arr, *item, *api;
  char name[64], sub[32];
  profset bits;
  module *m;
  jbuf b;
  item_out out;
  int k, made = 0;
  arr = modules_array(q, &root, 1, "created", r);
  item = arr ? single_item(arr, r) : NULL;
  if (item == NULL) { cJSON_Delete(root); return 0; }
  if (e->cfg.module_quota >= 0) {  /* --module-quota: the edition's limit */
    size_t i, custom = 0;
    for (i = 0; i < o->n; i++)
      custom += strcmp(o->mods[i]->generated_type, "custom") == 0;
    if ((long long)custom >= e->cfg.module_quota) {
      char details[64];
      snprintf(details, sizeof details, "{\"limit\":%lld}",
               e->cfg.module_quota);
      cJSON_Delete(root);
      reply_error(r, 400, "LIMIT_EXCEEDED", details,
                  "the custom module limit of this edition is reached");
      return 0;
    }
  }
  jb_init(&b);
  out.b = &b; out.index = 0; out.count = 0;
  memset(&bits, 0, sizeof bits);
  for (k = 0; k < 3; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, need[k]);
    if (v == NULL || (cJSON_IsNull(v) && k < 2)) {
      snprintf(sub, sizeof sub, ".%s", need[k]);
      item_fail(&out, "MANDATORY_NOT_FOUND", need[k], sub, NULL,
                "required field not found");
      goto done;
    }
  }
  if (!check_label(item, "plural_label", &out)
      || !check_label(item, "singular_label", &out)
      || !check_profiles(o, item, &bits, &out))
    goto done;
  api = cJSON_GetObjectItemCaseSensitive(item, "api_name");
  if (api && !(cJSON_IsString(api) && org_api_name_ok(api->valuestring))) {
    item_fail(&out, "INVALID_DATA", "api_name", ".api_name", NULL,
              "invalid data");
    goto done;
  }
  if (api && org_find(o, api->valuestring)) {
    item_fail(&out, "DUPLICATE_DATA", "api_name", ".api_name", NULL,
              "duplicate data");
    goto done;
  }
  if (!check_display_field(item, &out)
      || !check_duplicates(o, item, NULL, &out)) goto done;
  if (api) snprintf(name, sizeof name, "%s", api->valuestring);
  else make_api_name(o, cJSON_GetObjectItemCaseSensitive(item,
                     "plural_label")->valuestring, name, sizeof name);
  m = org_create(o, name,
                 cJSON_GetObjectItemCaseSensitive(item, "plural_label")->valuestring,
                 cJSON_GetObjectItemCaseSensitive(item, "singular_label")->valuestring,
                 &bits);
  if (m == NULL) {
    jb_free(&b);
    cJSON_Delete(root);
    reply_error(r, 500, "INTERNAL_ERROR", "{}", "Internal Server Error");
    return 0;
  }
  made = 1;
  reply_write_item_success(&b, m->id, "module created successfully");
done:
  reply_items(r, made ? 201 : 400, &b);
  cJSON_Delete(root);
  return made;
}

/* }================================================================== */


/* A page parameter: absent gives dflt; otherwise a whole number in
** lo..hi, or -1. */
static long page_param (const request *q, const char *key, long dflt,
                        long lo, long hi) {
  const char *v = q->query ? q->query(q->ctx, key) : NULL;
  char *end;
  long n;
  if (v == NULL) return dflt;
  n = strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < lo || n > hi) return -1;
  return n;
}

/* GET /settings/profiles[?page=P&per_page=N]: pages of at most 200 (the
** default), info.more_records while more follow; a page past the end is
** 204, as the modules list answers an empty result. */
static void list_profiles (emu *e, const request *q, reply *r) {
  long page = page_param(q, "page", 1, 1, 1000000);
  long per_page = page_param(q, "per_page", 200, 1, 200);
  size_t first;
  jbuf b;
  if (page < 0 || per_page < 0) {
    char details[160];
    snprintf(details, sizeof details, "{\"param_name\":\"%s\"%s}",
             page < 0 ? "page" : "per_page",
             page < 0 ? "" : ",\"maximum_length\":200");
    reply_error(r, 400, "INVALID_DATA", details,
                "the given parameter value is invalid");
    return;
  }
  first = (size_t)(page - 1) * (size_t)per_page;
  if (first >= e->org->nprof) { r->status = 204; return; }
  jb_init(&b);
  org_write_profiles(&b, e->org, first,
                     e->org->nprof - first < (size_t)per_page
                       ? e->org->nprof - first : (size_t)per_page,
                     page, per_page);
  reply_json(r, 200, &b);
}

/* {==================================================================
** API dispatch: path, method, auth, credits, handler
** =================================================================== */

void routes_api (emu *e, const request *q, reply *r) {
  const char *seg = module_segment(q->url);
  const char *const *scopes;
  int route = routes_classify(q->method, q->url), changed = 0, applied = 0;
  long long cost = 1, left;
  if (older_version(q->url)) {
    reply_error(r, 400, "API_NOT_SUPPORTED", "{\"supported_version\":8}",
                "the API version is not supported for this operation");
    return;
  }
  if (!known_path(q->url)) { reply_bad_url(r); return; }
  if (route == ROUTE_BATCH && e->cfg.no_batch) { reply_bad_method(r); return; }
  switch (route) {
    case ROUTE_LIST: case ROUTE_GET: scopes = scope_modules_read; break;
    case ROUTE_PUT: case ROUTE_BATCH:
      scopes = scope_modules_update;
      cost = 5;                   /* a batch: per call, assumed */
      break;
    case ROUTE_POST:
      scopes = scope_modules_create;
      cost = e->cfg.create_credits;
      break;
    case ROUTE_PROFILES: scopes = scope_profiles_read; break;
    default: reply_bad_method(r); return;
  }
  if (!auth_check(e, q->authorization, scopes, r)) return;
  /* "Create Custom Module": changing modules needs the Customize Zoho CRM
  ** permission; checked before credits are charged (assumed) */
  if (e->cfg.no_permission
      && (route == ROUTE_PUT || route == ROUTE_BATCH || route == ROUTE_POST)) {
    reply_error(r, 403, "NO_PERMISSION",
                "{\"permissions\":[\"Crm_Implied_Customize_Zoho_CRM\"]}",
                "permission denied");
    return;
  }
  left = stats_charge(&e->st, e->cfg.credits, e->cfg.credits_window, cost);
  if (left < 0) {
    reply_error(r, 429, "TOO_MANY_REQUESTS", "{}",
                "You have exhausted the API credits of your org");
    return;
  }
  pthread_mutex_lock(&e->org_lock);
  switch (route) {
    case ROUTE_LIST: list_modules(e, q, r); break;
    case ROUTE_GET: get_module(e, q, seg, r); break;
    case ROUTE_PUT: changed = applied = update_module(e, q, seg, r); break;
    case ROUTE_BATCH: changed = applied = update_modules(e, q, r); break;
    case ROUTE_POST: changed = create_module(e, q, r); break;
    default: list_profiles(e, q, r);
  }
  pthread_mutex_unlock(&e->org_lock);
  if (applied) stats_add(&e->st, &e->st.updates_applied, applied);
  /* --state: a change is answered as done only once it is on disk */
  if (changed && emu_save(e) != 0)
    reply_error(r, 500, "INTERNAL_ERROR", "{}", "Internal Server Error");
  /* Zoho adds the header once half of the day's credits are used */
  if ((e->cfg.credits - left) * 2 >= e->cfg.credits) r->credits_left = left;
}

/* }================================================================== */


/* {==================================================================
** Test hooks: no token, never counted
** =================================================================== */

static void ok_json (reply *r) {
  jbuf b;
  jb_init(&b);
  jb_lit(&b, "{\"status\":\"success\"}");
  reply_json(r, 200, &b);
}

/* answers one scripted entry may last; far above any spec's need */
#define MAX_SCRIPT_COUNT 1000000

static void hook_script (emu *e, const request *q, reply *r) {
  cJSON *root = cJSON_ParseWithLength(q->body ? q->body : "", q->len);
  const cJSON *mode = cJSON_GetObjectItemCaseSensitive(root, "mode");
  const cJSON *count = cJSON_GetObjectItemCaseSensitive(root, "count");
  const cJSON *route = cJSON_GetObjectItemCaseSensitive(root, "route");
  int where = FAULT_API, bad_count = count && !cJSON_IsNumber(count);
  long n = 1;
  fault ft;
  if (!cJSON_IsString(mode) || !faults_parse(mode->valuestring, &ft)) {
    reply_error(r, 400, "INVALID_DATA", "{\"api_name\":\"mode\"}",
                "mode: empty, html, garbage, truncated, huge, deep, nonutf8, "
                "wrongtype, gzip, drip, reset, lost, slow or status:NNN");
    cJSON_Delete(root);
    return;
  }
  /* range-check before converting: a double outside long's range (1e300,
     NaN from a hostile body) is undefined behaviour when cast */
  if (cJSON_IsNumber(count)) {
    double v = count->valuedouble;
    if (v >= 1 && v <= MAX_SCRIPT_COUNT && v == (double)(long)v) n = (long)v;
    else bad_count = 1;
  }
  if (cJSON_IsString(route)) {
    if (strcmp(route->valuestring, "token") == 0) where = FAULT_TOKEN;
    else if (strcmp(route->valuestring, "any") == 0) where = FAULT_ANY;
    else if (strcmp(route->valuestring, "api") != 0) n = 0;
  }
  cJSON_Delete(root);
  if (n < 1 || bad_count) {
    reply_error(r, 400, "INVALID_DATA", "{\"api_name\":\"count\"}",
                "count must be a whole number from 1 to 1000000; route api, "
                "token or any");
    return;
  }
  if (!faults_script(e->faults, &ft, n, where)) {
    reply_error(r, 400, "LIMIT_EXCEEDED", "{\"limit\":32}",
                "too many scripted entries queued");
    return;
  }
  ok_json(r);
}

static void hook_reset (emu *e, reply *r) {
  org_data *fresh = org_seed(e->cfg.extra_modules, e->cfg.extra_profiles), *old;
  if (fresh == NULL) {
    reply_error(r, 500, "INTERNAL_ERROR", "{}", "out of memory");
    return;
  }
  pthread_mutex_lock(&e->org_lock);
  old = e->org;
  /* keep versions rising so --state saves the reset org_data */
  fresh->version = old->version + 1;
  e->org = fresh;
  pthread_mutex_unlock(&e->org_lock);
  org_free(old);
  stats_reset(&e->st);
  auth_reset(e->auth);
  faults_clear(e->faults);
  if (emu_save(e) != 0)
    reply_error(r, 500, "INTERNAL_ERROR", "{}", "the --state file cannot be "
                "written");
  else ok_json(r);
}

void routes_hook (emu *e, const request *q, reply *r) {
  const char *name = q->url + sizeof HOOK_PREFIX - 1;
  int get = strcmp(q->method, "GET") == 0;
  int post = strcmp(q->method, "POST") == 0;
  jbuf b;
  if (strcmp(name, "stats") == 0) {
    if (!get) { reply_bad_method(r); return; }
    jb_init(&b);
    stats_write(&e->st, &b, e->cfg.credits, e->cfg.credits_window);
    reply_json(r, 200, &b);
  } else if (strcmp(name, "state") == 0) {
    if (!get) { reply_bad_method(r); return; }
    jb_init(&b);
    pthread_mutex_lock(&e->org_lock);
    org_write_state(&b, e->org);
    pthread_mutex_unlock(&e->org_lock);
    reply_json(r, 200, &b);
  } else if (strcmp(name, "reset") == 0) {
    if (!post) { reply_bad_method(r); return; }
    hook_reset(e, r);
  } else if (strcmp(name, "expire-tokens") == 0) {
    if (!post) { reply_bad_method(r); return; }
    auth_expire_all(e->auth);
    ok_json(r);
  } else if (strcmp(name, "grant-code") == 0) {
    if (!post) { reply_bad_method(r); return; }
    auth_grant_code(e, q, r);
  } else if (strcmp(name, "script") == 0) {
    if (!post) { reply_bad_method(r); return; }
    hook_script(e, q, r);
  } else reply_bad_url(r);
}

/* }================================================================== */


/* {==================================================================
** One request, whatever its route (server.c and the fuzzer call this)
** =================================================================== */

#define SLOW_MS 5000                /* a "slow" fault's extra delay */

/* Answers `q` into `r`: hooks, the concurrency cap, faults, latency, the
** token endpoint and the API routes. Returns ROUTED_* flags. */
int routes_handle (emu *e, request *q, reply *r) {
  fault ft;
  int accounts, have;
  r->status = 500;
  r->credits_left = -1;
  if (routes_is_hook(q->url)) {
    routes_hook(e, q, r);
    return ROUTED_HOOK;
  }
  stats_request(&e->st, q->method, routes_classify(q->method, q->url));
  accounts = routes_is_accounts(q->url);
  /* in flight from arrival until the answer is queued; the accounts
  ** server is another host and has no such cap */
  if (!accounts && !stats_enter(&e->st, e->cfg.concurrency)) {
    reply_error(r, 429, "TOO_MANY_REQUESTS", "{}",
                "You have reached the maximum number of concurrent API "
                "calls");
    return 0;
  }
  have = faults_take(e->faults, accounts ? FAULT_TOKEN : FAULT_API, &ft);
  emu_sleep_ms(e, e->cfg.latency_ms
                  + (have && ft.kind == F_SLOW ? SLOW_MS : 0));
  if (have && !faults_processes(&ft))
    faults_build(&ft, r);
  else {
    if (q->too_big) {
      char details[64];
      snprintf(details, sizeof details, "{\"maximum_length\":%lu}",
               (unsigned long)e->cfg.max_body);
      reply_error(r, 413, "REQUEST_ENTITY_TOO_LARGE", details,
                  "the request body is too large");
    } else if (accounts) {
      if (strcmp(q->method, "POST") == 0) auth_token_endpoint(e, q, r);
      else reply_error(r, 400, "INVALID_REQUEST_METHOD", "{}",
                       "The http request method type is not a valid one");
    } else routes_api(e, q, r);
    if (have) faults_transform(&ft, r);
  }
  /* Zoho's servers compress for a client that asks (assumed: the
  ** reference says nothing); 304s and 204s have no body to compress */
  if (!r->hang_up && reply_accepts_gzip(q->accept_encoding) && reply_gzip(r))
    stats_add(&e->st, &e->st.gzip_answers, 1);
  if (e->cfg.verbose)
    fprintf(stderr, "zcrm-emulator: %s %s -> %d%s\n", q->method, q->url,
            r->hang_up ? 0 : r->status, have ? " (fault)" : "");
  return accounts ? 0 : ROUTED_IN_FLIGHT;
}

/* }================================================================== */
