/*
** org.c: the emulated org (modules and profiles), its indexes, its JSON
** form, and the state form it is saved in (files: runtime.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "emu.h"


/* {==================================================================
** Seed data. Ids follow the Update Custom Module page's org_data
** (2423488000000...); custom labels of Digital_Marketing differ from the
** page's sample so that sending the sample is a real change.
** =================================================================== */

typedef struct seed_profile {
  const char *id, *name, *description;
  int custom;
} seed_profile;

static const seed_profile seed_profiles[] = {
  { "2423488000000015972", "Administrator", "This profile will have all the "
    "permissions. Users with Administrator profile will be able to view and "
    "manage all the data within the organization account by default.", 0 },
  { "2423488000000015975", "Standard", "This profile will have all the "
    "permissions except administrative privileges.", 0 },
  { "2423488000000015978", "Sales", "Sales representatives", 1 },
  { "2423488000000015981", "Support", "Customer support agents", 1 },
  { "2423488000000015984", "Contractor", "External contractors with "
    "limited access", 1 },
  { "2423488000000015987", "Marketing", "Marketing team", 1 },
};

typedef struct seed_module {
  const char *id, *api_name, *module_name, *plural, *singular, *status;
} seed_module;

static const seed_module seed_standard[] = {
  { "2423488000000002175", "Leads", "Leads", "Leads", "Lead", "visible" },
  { "2423488000000002177", "Contacts", "Contacts", "Contacts", "Contact",
    "visible" },
  { "2423488000000002179", "Accounts", "Accounts", "Accounts", "Account",
    "visible" },
  { "2423488000000002181", "Deals", "Potentials", "Deals", "Deal",
    "visible" },
  { "2423488000000002183", "Tasks", "Tasks", "Tasks", "Task", "visible" },
  { "2423488000000002185", "Events", "Meetings", "Meetings", "Meeting",
    "visible" },
  { "2423488000000002187", "Calls", "Calls", "Calls", "Call", "visible" },
  { "2423488000000002189", "Products", "Products", "Products", "Product",
    "visible" },
  { "2423488000000002191", "Quotes", "Quotes", "Quotes", "Quote",
    "visible" },
  { "2423488000000002193", "Sales_Orders", "SalesOrders", "Sales Orders",
    "Sales Order", "visible" },
  { "2423488000000002195", "Purchase_Orders", "PurchaseOrders",
    "Purchase Orders", "Purchase Order", "visible" },
  { "2423488000000002197", "Invoices", "Invoices", "Invoices", "Invoice",
    "visible" },
  { "2423488000000002199", "Campaigns", "Campaigns", "Campaigns",
    "Campaign", "visible" },
  { "2423488000000002201", "Vendors", "Vendors", "Vendors", "Vendor",
    "visible" },
  { "2423488000000002203", "Price_Books", "PriceBooks", "Price Books",
    "Price Book", "visible" },
  { "2423488000000002205", "Cases", "Cases", "Cases", "Case", "visible" },
  { "2423488000000002207", "Solutions", "Solutions", "Solutions",
    "Solution", "visible" },
  /* one module Zoho keeps to itself (a system_hidden status; assumed: Zoho
  ** lets no one rename such a module) */
  { "2423488000000002209", "Visits", "Visits", "Visits", "Visit",
    "system_hidden" },
};

static const seed_module seed_custom[] = {
  { "2423488000000834002", "Digital_Marketing", NULL, "Campaign Assets",
    "Campaign Asset", "visible" },
  { "2423488000000834005", "Projects", NULL, "Projects", "Project",
    "visible" },
  { "2423488000000834008", "Invoices_Custom", NULL, "Custom Invoices",
    "Custom Invoice", "visible" },
  { "2423488000000834011", "Shipments", NULL, "Shipments", "Shipment",
    "visible" },
  { "2423488000000834014", "Suppliers", NULL, "Suppliers", "Supplier",
    "visible" },
  { "2423488000000834017", "Assets", NULL, "Assets", "Asset", "visible" },
  { "2423488000000834020", "Trainings", NULL, "Trainings", "Training",
    "visible" },
  { "2423488000000834023", "Tickets", NULL, "Tickets", "Ticket", "visible" },
  { "2423488000000834026", "Contracts", NULL, "Contracts", "Contract",
    "visible" },
  { "2423488000000834029", "Events_Custom", NULL, "Company Events",
    "Company Event", "visible" },
  { "2423488000000834032", "Properties", NULL, "Properties", "Property",
    "visible" },
  { "2423488000000834035", "Vehicles", NULL, "Vehicles", "Vehicle",
    "visible" },
  /* one hidden module, so the status filter has something to filter */
  { "2423488000000834038", "Memberships", NULL, "Memberships", "Membership",
    "user_hidden" },
  /* a team module: its team, not profiles, decides who sees it */
  { "2423488000000834041", "Team_Tasks", NULL, "Team Tasks", "Team Task",
    "visible" },
};
#define TEAM_MODULE "Team_Tasks"

/* Custom modules the Contractor profile may also see, so that a plan revoking
** it has real work to do (the demo's relabel plan does). */
static const char *const seed_contractor_modules[] = {
  "Projects", "Shipments", "Tickets", "Contracts", "Memberships",
};
#define CONTRACTOR_PROFILE 4        /* index in seed_profiles */

#define NELEM(a) (sizeof (a) / sizeof (a)[0])
#define SEED_MODIFIED "2025-06-02T10:15:00+05:30"
#define BULK_ID_BASE 2423488000010000000ULL
#define CREATE_ID_BASE 2423488000000900001ULL
#define EXTRA_PROFILE_ID_BASE 2423488000000300000ULL
#define ADMIN_USER "{\"name\":\"Emulator Admin\",\"id\":\"2423488000000102001\"}"

/* }================================================================== */


/* {==================================================================
** Profile sets
** =================================================================== */

void ps_add (profset *s, int i) { s->w[i / 64] |= ((uint64_t)1) << (i % 64); }
void ps_del (profset *s, int i) { s->w[i / 64] &= ~(((uint64_t)1) << (i % 64)); }
int ps_has (const profset *s, int i) { return (s->w[i / 64] >> (i % 64)) & 1; }

int ps_empty (const profset *s) {
  size_t k;
  for (k = 0; k < sizeof s->w / sizeof s->w[0]; k++) if (s->w[k]) return 0;
  return 1;
}

/* }================================================================== */


/* {==================================================================
** Construction and indexes
** =================================================================== */

static void module_free (module *m) {
  if (m == NULL) return;
  free(m->id); free(m->api_name); free(m->module_name);
  free(m->plural); free(m->singular);
  free(m->generated_type); free(m->status);
  free(m);
}

void org_free (org_data *o) {
  size_t i;
  if (o == NULL) return;
  for (i = 0; i < o->n; i++) module_free(o->mods[i]);
  free(o->mods);
  for (i = 0; i < o->nprof; i++) {
    free(o->prof[i].id); free(o->prof[i].name); free(o->prof[i].description);
  }
  sm_free(o->by_id); sm_free(o->by_api);
  sm_free(o->by_plural); sm_free(o->by_singular);
  free(o);
}

static org_data *org_empty (void) {
  org_data *o = (org_data *)calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->by_id = sm_new(); o->by_api = sm_new();
  o->by_plural = sm_new(); o->by_singular = sm_new();
  o->next_id = CREATE_ID_BASE;
  o->next_custom = 1;
  o->modified = (long long)time(NULL);
  if (!o->by_id || !o->by_api || !o->by_plural || !o->by_singular) {
    org_free(o);
    return NULL;
  }
  return o;
}

static int index_label (strmap *m, const char *label, size_t i) {
  char *k = label_fold(label);
  int rc;
  if (k == NULL) return -1;
  rc = sm_put(m, k, i);
  free(k);
  return rc;
}

static void unindex_label (strmap *m, const char *label, size_t i) {
  char *k = label_fold(label);
  size_t at;
  if (k == NULL) return;
  if (sm_get(m, k, &at) && at == i) sm_del(m, k);
  free(k);
}

/* Takes the strings' copies; returns the module or NULL on oom. */
static module *add_module (org_data *o, const char *id, const char *api_name,
                           const char *module_name, const char *plural,
                           const char *singular, const char *gtype,
                           const char *status, const profset *profiles) {
  module *m;
  size_t i = o->n;
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 64;
    module **mods = (module **)realloc(o->mods, cap * sizeof *mods);
    if (mods == NULL) return NULL;
    o->mods = mods;
    o->cap = cap;
  }
  m = (module *)calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->id = xstrdup(id); m->api_name = xstrdup(api_name);
  m->module_name = xstrdup(module_name);
  m->plural = xstrdup(plural); m->singular = xstrdup(singular);
  m->generated_type = xstrdup(gtype); m->status = xstrdup(status);
  m->profiles = *profiles;
  m->sequence = (int)i + 1;
  m->api_supported = 1;
  if (!m->id || !m->api_name || !m->module_name || !m->plural
      || !m->singular || !m->generated_type || !m->status
      || sm_put(o->by_id, id, i) || sm_put(o->by_api, api_name, i)
      || index_label(o->by_plural, plural, i)
      || index_label(o->by_singular, singular, i)) {
    module_free(m);
    return NULL;
  }
  o->mods[o->n++] = m;
  if (strcmp(gtype, "custom") == 0) o->next_custom++;
  o->version++;
  o->modified = (long long)time(NULL);
  return m;
}

static int add_profile (org_data *o, const char *id, const char *name,
                        const char *description, int custom) {
  profile *p;
  if (o->nprof >= ORG_MAX_PROFILES) return -1;
  p = &o->prof[o->nprof];
  p->id = xstrdup(id);
  p->name = xstrdup(name);
  p->description = description ? xstrdup(description) : NULL;
  p->custom = custom;
  o->nprof++;
  if (!p->id || !p->name || (description && !p->description)) return -1;
  return 0;
}

org_data *org_seed (long extra, long extra_profiles) {
  org_data *o = org_empty();
  profset all, two;               /* two: Administrator and Standard */
  size_t i;
  long k;
  char id[32], api[64], plural[64], singular[64], mname[64];
  if (o == NULL) return NULL;
  memset(&all, 0, sizeof all);
  memset(&two, 0, sizeof two);
  ps_add(&two, 0);
  ps_add(&two, 1);
  for (i = 0; i < NELEM(seed_profiles); i++)
    if (add_profile(o, seed_profiles[i].id, seed_profiles[i].name,
                    seed_profiles[i].description, seed_profiles[i].custom))
      goto oom;
  for (k = 1; k <= extra_profiles; k++) {
    snprintf(id, sizeof id, "%llu",
             (unsigned long long)(EXTRA_PROFILE_ID_BASE + (uint64_t)k));
    snprintf(plural, sizeof plural, "Extra Profile %ld", k);
    if (add_profile(o, id, plural, "Seeded by --extra-profiles", 1)) goto oom;
  }
  for (i = 0; i < NELEM(seed_profiles); i++) ps_add(&all, (int)i);
  for (i = 0; i < NELEM(seed_standard); i++) {
    const seed_module *s = &seed_standard[i];
    if (!add_module(o, s->id, s->api_name, s->module_name, s->plural,
                    s->singular, "default", s->status, &all))
      goto oom;
  }
  for (i = 0; i < NELEM(seed_custom); i++) {
    const seed_module *s = &seed_custom[i];
    profset seen_by = two;
    module *m;
    size_t j;
    for (j = 0; j < NELEM(seed_contractor_modules); j++)
      if (strcmp(s->api_name, seed_contractor_modules[j]) == 0)
        ps_add(&seen_by, CONTRACTOR_PROFILE);
    snprintf(mname, sizeof mname, "CustomModule%ld", o->next_custom);
    m = add_module(o, s->id, s->api_name, mname, s->plural, s->singular,
                   "custom", s->status, &seen_by);
    if (m == NULL) goto oom;
    m->team = strcmp(s->api_name, TEAM_MODULE) == 0;
    strcpy(m->modified_time, SEED_MODIFIED);
  }
  for (k = 1; k <= extra; k++) {
    module *m;
    snprintf(id, sizeof id, "%llu",
             (unsigned long long)(BULK_ID_BASE + (uint64_t)k));
    snprintf(api, sizeof api, "Bulk_Module_%ld", k);
    snprintf(plural, sizeof plural, "Bulk Modules %ld", k);
    snprintf(singular, sizeof singular, "Bulk Module %ld", k);
    snprintf(mname, sizeof mname, "CustomModule%ld", o->next_custom);
    m = add_module(o, id, api, mname, plural, singular, "custom", "visible",
                   &two);
    if (m == NULL) goto oom;
    strcpy(m->modified_time, SEED_MODIFIED);
  }
  return o;
oom:
  org_free(o);
  return NULL;
}

/* }================================================================== */


/* {==================================================================
** Queries and changes
** =================================================================== */

static int all_digits (const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++) if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* Zoho answers "Module rename not allowed" for modules it does not let
** anyone rename; no source we hold names them, so the emulator takes the
** modules Zoho keeps to itself (system_hidden). Assumed. */
int org_rename_allowed (const module *m) {
  return strcmp(m->status, "system_hidden") != 0;
}

module *org_find (const org_data *o, const char *key) {
  size_t i;
  if (all_digits(key)) {
    if (sm_get(o->by_id, key, &i)) return o->mods[i];
    return NULL;
  }
  if (sm_get(o->by_api, key, &i)) return o->mods[i];
  return NULL;
}

int org_profile_index (const org_data *o, const char *id) {
  size_t i;
  for (i = 0; i < o->nprof; i++)
    if (strcmp(o->prof[i].id, id) == 0) return (int)i;
  return -1;
}

module *org_label_owner (const org_data *o, int plural, const char *label) {
  char *k = label_fold(label);
  size_t i;
  int found;
  if (k == NULL) return NULL;
  found = sm_get(plural ? o->by_plural : o->by_singular, k, &i);
  free(k);
  return found ? o->mods[i] : NULL;
}

static size_t index_of (const org_data *o, const module *m) {
  size_t i;
  if (sm_get(o->by_id, m->id, &i)) return i;
  return 0;
}

int org_set_label (org_data *o, module *m, int plural, const char *label) {
  strmap *map = plural ? o->by_plural : o->by_singular;
  char **slot = plural ? &m->plural : &m->singular;
  size_t i = index_of(o, m);
  char *copy = xstrdup(label);
  if (copy == NULL) return -1;
  unindex_label(map, *slot, i);
  free(*slot);
  *slot = copy;
  o->version++;
  return index_label(map, copy, i);
}

void org_touch (module *m) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(m->modified_time, sizeof m->modified_time,
           "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

/* Zoho's rule for API names: letters, digits and '_', starting with a
** letter, no "__", no trailing '_', at most 50 characters. */
int org_api_name_ok (const char *s) {
  size_t n = strlen(s), i;
  if (n == 0 || n > 50) return 0;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return 0;
    if (c == '_' && s[i + 1] == '_') return 0;
  }
  return s[n - 1] != '_';
}

module *org_create (org_data *o, const char *api_name, const char *plural,
                    const char *singular, const profset *profiles) {
  char id[32], mname[64];
  module *m;
  size_t dummy;
  do {
    snprintf(id, sizeof id, "%llu", (unsigned long long)o->next_id++);
  } while (sm_get(o->by_id, id, &dummy));
  snprintf(mname, sizeof mname, "CustomModule%ld", o->next_custom);
  m = add_module(o, id, api_name, mname, plural, singular, "custom",
                 "visible", profiles);
  if (m) org_touch(m);
  return m;
}

/* }================================================================== */


/* {==================================================================
** JSON output
** =================================================================== */

static void kv_bool (jbuf *b, const char *k, int v) {
  jb_raw(b, ",", 1);
  jb_key(b, k);
  jb_lit(b, v ? "true" : "false");
}


/* {==================================================================
** The detail form of a module (GET /settings/modules/{module}): every key
** the OpenAPI schema of a module requires, with its documented type. The
** values are plausible for a fresh custom module; which fields, layouts
** and related lists it has is assumed.
** =================================================================== */

/* The fields of a custom module's detail answer: Name, Owner, Email and
** Created_Time, each with every key the OpenAPI schema requires of a
** field (generated from fields.json of zoho/crm-oas; values assumed where
** a default does). Pieces, so no literal passes C99's 4095 characters. */
static const char *const detail_fields[] = {
  "[{\"blueprint_supported\":false,\"json_type\":\"string\",\"length\":120,\"decim",
  "al_place\":null,\"multi_module_lookup\":null,\"sharing_properties\":{},\"cur",
  "rency\":null,\"file_upolad_optionlist\":[],\"lookup\":null,\"subform\":null,\"",
  "formula\":null,\"multiselectlookup\":null,\"multiuserlookup\":{\"display_lab",
  "el\":null,\"linking_module\":{\"api_name\":null,\"id\":null},\"connected_modul",
  "e\":{\"api_name\":null,\"id\":null},\"lookup_apiname\":null,\"api_name\":null,\"",
  "connectedfield_apiname\":null,\"connectedlookup_apiname\":null,\"id\":null,",
  "\"record_access\":false},\"pick_list_values\":[],\"allowed_modules\":[],\"hip",
  "aa_compliance_enabled\":false,\"hipaa_compliance\":{\"restricted_in_export",
  "\":false,\"restricted\":false},\"associated_module\":{\"api_name\":null,\"id\":",
  "null},\"data_type\":\"text\",\"operation_type\":{\"web_update\":true,\"api_crea",
  "te\":true,\"web_create\":true,\"api_update\":true},\"system_mandatory\":true,",
  "\"webhook\":false,\"virtual_field\":false,\"field_read_only\":false,\"customi",
  "zable_properties\":[],\"read_only\":false,\"custom_field\":false,\"businessc",
  "ard_supported\":false,\"filterable\":true,\"visible\":true,\"available_in_us",
  "er_layout\":true,\"display_field\":true,\"pick_list_values_sorted_lexicall",
  "y\":false,\"sortable\":true,\"layout_associations\":[],\"separator\":false,\"s",
  "earchable\":true,\"enable_colour_code\":false,\"mass_update\":false,\"create",
  "d_source\":\"default\",\"type\":\"used\",\"display_label\":\"Name\",\"column_n",
  "ame\":\"NAME\",\"api_name\":\"Name\",\"display_type\":-1,\"ui_type\":1,\"colour_co",
  "de_enabled_by_system\":false,\"quick_sequence_number\":\"1\",\"email_parser\"",
  ":{\"fields_update_supported\":false,\"record_operations_supported\":false}",
  ",\"rollup_summary\":null,\"refer_from_field\":{\"id\":null,\"api_name\":null},",
  "\"created_time\":null,\"modified_time\":null,\"show_type\":7,\"category\":0,\"i",
  "d\":\"2423488000000900501\",\"profiles\":[{\"name\":\"Administrator\",\"id\":\"242",
  "3488000000015972\",\"permission_type\":\"read_write\"}],\"view_type\":{\"view\"",
  ":true,\"edit\":true,\"quick_create\":true,\"create\":true},\"unique\":null,\"su",
  "b_module\":{\"api_name\":null,\"id\":null},\"external\":{\"show\":false,\"type\":",
  "null},\"convert_mapping\":{},\"autonumber\":{\"starting_number_length\":0,\"p",
  "refix\":null,\"suffix\":null,\"start_number\":null},\"auto_number\":null,\"cry",
  "pt\":{\"mode\":null,\"status\":null},\"tooltip\":{\"name\":\"\",\"value\":\"\"},\"hist",
  "ory_tracking\":{\"module\":{},\"duration_configured_field\":{\"api_name\":nul",
  "l,\"id\":null}},\"association_details\":{\"related_field\":{\"api_name\":null,",
  "\"id\":null},\"lookup_field\":{\"api_name\":null,\"id\":null}},\"additional_col",
  "umn\":null,\"field_label\":\"Name\",\"common.picklist\":null,\"_update_exi",
  "sting_records\":false,\"number_separator\":false,\"textarea\":{},\"static_fi",
  "eld\":false},{\"blueprint_supported\":false,\"json_type\":\"jsonobject\",\"len",
  "gth\":120,\"decimal_place\":null,\"multi_module_lookup\":null,\"sharing_prop",
  "erties\":{},\"currency\":null,\"file_upolad_optionlist\":[],\"lookup\":null,\"",
  "subform\":null,\"formula\":null,\"multiselectlookup\":null,\"multiuserlookup",
  "\":{\"display_label\":null,\"linking_module\":{\"api_name\":null,\"id\":null},\"",
  "connected_module\":{\"api_name\":null,\"id\":null},\"lookup_apiname\":null,\"a",
  "pi_name\":null,\"connectedfield_apiname\":null,\"connectedlookup_apiname\":",
  "null,\"id\":null,\"record_access\":false},\"pick_list_values\":[],\"allowed_m",
  "odules\":[],\"hipaa_compliance_enabled\":false,\"hipaa_compliance\":{\"restr",
  "icted_in_export\":false,\"restricted\":false},\"associated_module\":{\"api_n",
  "ame\":null,\"id\":null},\"data_type\":\"ownerlookup\",\"operation_type\":{\"web_",
  "update\":true,\"api_create\":true,\"web_create\":true,\"api_update\":true},\"s",
  "ystem_mandatory\":false,\"webhook\":false,\"virtual_field\":false,\"field_re",
  "ad_only\":false,\"customizable_properties\":[],\"read_only\":false,\"custom_",
  "field\":false,\"businesscard_supported\":false,\"filterable\":true,\"visible",
  "\":true,\"available_in_user_layout\":true,\"display_field\":false,\"pick_lis",
  "t_values_sorted_lexically\":false,\"sortable\":true,\"layout_associations\"",
  ":[],\"separator\":false,\"searchable\":true,\"enable_colour_code\":false,\"ma",
  "ss_update\":true,\"created_source\":\"default\",\"type\":\"used\",\"display_labe",
  "l\":\"Owner\",\"column_name\":\"OWNER\",\"api_name\":\"Owner\",\"display_type\"",
  ":-1,\"ui_type\":8,\"colour_code_enabled_by_system\":false,\"quick_sequence_",
  "number\":\"1\",\"email_parser\":{\"fields_update_supported\":false,\"record_op",
  "erations_supported\":false},\"rollup_summary\":null,\"refer_from_field\":{\"",
  "id\":null,\"api_name\":null},\"created_time\":null,\"modified_time\":null,\"sh",
  "ow_type\":7,\"category\":0,\"id\":\"2423488000000900502\",\"profiles\":[{\"name\"",
  ":\"Administrator\",\"id\":\"2423488000000015972\",\"permission_type\":\"read_wr",
  "ite\"}],\"view_type\":{\"view\":true,\"edit\":true,\"quick_create\":true,\"creat",
  "e\":true},\"unique\":null,\"sub_module\":{\"api_name\":null,\"id\":null},\"exter",
  "nal\":{\"show\":false,\"type\":null},\"convert_mapping\":{},\"autonumber\":{\"st",
  "arting_number_length\":0,\"prefix\":null,\"suffix\":null,\"start_number\":nul",
  "l},\"auto_number\":null,\"crypt\":{\"mode\":null,\"status\":null},\"tooltip\":{\"",
  "name\":\"\",\"value\":\"\"},\"history_tracking\":{\"module\":{},\"duration_configu",
  "red_field\":{\"api_name\":null,\"id\":null}},\"association_details\":{\"relate",
  "d_field\":{\"api_name\":null,\"id\":null},\"lookup_field\":{\"api_name\":null,\"",
  "id\":null}},\"additional_column\":null,\"field_label\":\"Owner\",\"common.",
  "picklist\":null,\"_update_existing_records\":false,\"number_separator\":fal",
  "se,\"textarea\":{},\"static_field\":false},{\"blueprint_supported\":false,\"j",
  "son_type\":\"string\",\"length\":100,\"decimal_place\":null,\"multi_module_loo",
  "kup\":null,\"sharing_properties\":{},\"currency\":null,\"file_upolad_optionl",
  "ist\":[],\"lookup\":null,\"subform\":null,\"formula\":null,\"multiselectlookup",
  "\":null,\"multiuserlookup\":{\"display_label\":null,\"linking_module\":{\"api_",
  "name\":null,\"id\":null},\"connected_module\":{\"api_name\":null,\"id\":null},\"",
  "lookup_apiname\":null,\"api_name\":null,\"connectedfield_apiname\":null,\"co",
  "nnectedlookup_apiname\":null,\"id\":null,\"record_access\":false},\"pick_lis",
  "t_values\":[],\"allowed_modules\":[],\"hipaa_compliance_enabled\":false,\"hi",
  "paa_compliance\":{\"restricted_in_export\":false,\"restricted\":false},\"ass",
  "ociated_module\":{\"api_name\":null,\"id\":null},\"data_type\":\"email\",\"opera",
  "tion_type\":{\"web_update\":true,\"api_create\":true,\"web_create\":true,\"api",
  "_update\":true},\"system_mandatory\":false,\"webhook\":false,\"virtual_field",
  "\":false,\"field_read_only\":false,\"customizable_properties\":[],\"read_onl",
  "y\":false,\"custom_field\":false,\"businesscard_supported\":false,\"filterab",
  "le\":true,\"visible\":true,\"available_in_user_layout\":true,\"display_field",
  "\":false,\"pick_list_values_sorted_lexically\":false,\"sortable\":true,\"lay",
  "out_associations\":[],\"separator\":false,\"searchable\":true,\"enable_colou",
  "r_code\":false,\"mass_update\":true,\"created_source\":\"default\",\"type\":\"us",
  "ed\",\"display_label\":\"Email\",\"column_name\":\"EMAIL\",\"api_name\":\"Email\",\"",
  "display_type\":-1,\"ui_type\":25,\"colour_code_enabled_by_system\":false,\"q",
  "uick_sequence_number\":\"1\",\"email_parser\":{\"fields_update_supported\":fa",
  "lse,\"record_operations_supported\":false},\"rollup_summary\":null,\"refer_",
  "from_field\":{\"id\":null,\"api_name\":null},\"created_time\":null,\"modified_",
  "time\":null,\"show_type\":7,\"category\":0,\"id\":\"2423488000000900503\",\"prof",
  "iles\":[{\"name\":\"Administrator\",\"id\":\"2423488000000015972\",\"permission_",
  "type\":\"read_write\"}],\"view_type\":{\"view\":true,\"edit\":true,\"quick_creat",
  "e\":true,\"create\":true},\"unique\":null,\"sub_module\":{\"api_name\":null,\"id",
  "\":null},\"external\":{\"show\":false,\"type\":null},\"convert_mapping\":{},\"au",
  "tonumber\":{\"starting_number_length\":0,\"prefix\":null,\"suffix\":null,\"sta",
  "rt_number\":null},\"auto_number\":null,\"crypt\":{\"mode\":null,\"status\":null",
  "},\"tooltip\":{\"name\":\"\",\"value\":\"\"},\"history_tracking\":{\"module\":{},\"du",
  "ration_configured_field\":{\"api_name\":null,\"id\":null}},\"association_det",
  "ails\":{\"related_field\":{\"api_name\":null,\"id\":null},\"lookup_field\":{\"ap",
  "i_name\":null,\"id\":null}},\"additional_column\":null,\"field_label\":\"Email",
  "\",\"common.picklist\":null,\"_update_existing_records\":false,\"number_sepa",
  "rator\":false,\"textarea\":{},\"static_field\":false},{\"blueprint_supported",
  "\":false,\"json_type\":\"string\",\"length\":120,\"decimal_place\":null,\"multi_",
  "module_lookup\":null,\"sharing_properties\":{},\"currency\":null,\"file_upol",
  "ad_optionlist\":[],\"lookup\":null,\"subform\":null,\"formula\":null,\"multise",
  "lectlookup\":null,\"multiuserlookup\":{\"display_label\":null,\"linking_modu",
  "le\":{\"api_name\":null,\"id\":null},\"connected_module\":{\"api_name\":null,\"i",
  "d\":null},\"lookup_apiname\":null,\"api_name\":null,\"connectedfield_apiname",
  "\":null,\"connectedlookup_apiname\":null,\"id\":null,\"record_access\":false}",
  ",\"pick_list_values\":[],\"allowed_modules\":[],\"hipaa_compliance_enabled\"",
  ":false,\"hipaa_compliance\":{\"restricted_in_export\":false,\"restricted\":f",
  "alse},\"associated_module\":{\"api_name\":null,\"id\":null},\"data_type\":\"dat",
  "etime\",\"operation_type\":{\"web_update\":true,\"api_create\":true,\"web_crea",
  "te\":true,\"api_update\":true},\"system_mandatory\":false,\"webhook\":false,\"",
  "virtual_field\":false,\"field_read_only\":true,\"customizable_properties\":",
  "[],\"read_only\":true,\"custom_field\":false,\"businesscard_supported\":fals",
  "e,\"filterable\":true,\"visible\":true,\"available_in_user_layout\":true,\"di",
  "splay_field\":false,\"pick_list_values_sorted_lexically\":false,\"sortable",
  "\":true,\"layout_associations\":[],\"separator\":false,\"searchable\":true,\"e",
  "nable_colour_code\":false,\"mass_update\":true,\"created_source\":\"default\"",
  ",\"type\":\"used\",\"display_label\":\"Created Time\",\"column_name\":\"CREATED_T",
  "IME\",\"api_name\":\"Created_Time\",\"display_type\":-1,\"ui_type\":0,\"colour_c",
  "ode_enabled_by_system\":false,\"quick_sequence_number\":\"1\",\"email_parser",
  "\":{\"fields_update_supported\":false,\"record_operations_supported\":false",
  "},\"rollup_summary\":null,\"refer_from_field\":{\"id\":null,\"api_name\":null}",
  ",\"created_time\":null,\"modified_time\":null,\"show_type\":7,\"category\":0,\"",
  "id\":\"2423488000000900504\",\"profiles\":[{\"name\":\"Administrator\",\"id\":\"24",
  "23488000000015972\",\"permission_type\":\"read_write\"}],\"view_type\":{\"view",
  "\":true,\"edit\":true,\"quick_create\":true,\"create\":true},\"unique\":null,\"s",
  "ub_module\":{\"api_name\":null,\"id\":null},\"external\":{\"show\":false,\"type\"",
  ":null},\"convert_mapping\":{},\"autonumber\":{\"starting_number_length\":0,\"",
  "prefix\":null,\"suffix\":null,\"start_number\":null},\"auto_number\":null,\"cr",
  "ypt\":{\"mode\":null,\"status\":null},\"tooltip\":{\"name\":\"\",\"value\":\"\"},\"his",
  "tory_tracking\":{\"module\":{},\"duration_configured_field\":{\"api_name\":nu",
  "ll,\"id\":null}},\"association_details\":{\"related_field\":{\"api_name\":null",
  ",\"id\":null},\"lookup_field\":{\"api_name\":null,\"id\":null}},\"additional_co",
  "lumn\":null,\"field_label\":\"Created Time\",\"common.picklist\":null,\"_updat",
  "e_existing_records\":false,\"number_separator\":false,\"textarea\":{},\"stat",
  "ic_field\":false}]",
  NULL
};

/* {"api_name":a,"id":i} */
static void api_ref (jbuf *b, const char *api_name, const char *id) {
  jb_lit(b, "{"); jb_key(b, "api_name"); jb_str(b, api_name);
  jb_lit(b, ","); jb_key(b, "id"); jb_str(b, id);
  jb_lit(b, "}");
}

static void write_detail (jbuf *b, const module *m) {
  static const char *const flags_true[] = {
    "common.search_supported", "triggers_supported", "visible",
    "emailTemplate_support", "filter_supported", "webform_supported",
    "chart_view_supported", "kanban_view_supported", "filter_status",
    "scoring_supported", NULL
  };
  static const char *const flags_false[] = {
    "inventory_template_supported", "chart_view", "email_parser_supported",
    "track_current_data", "kanban_view", "zia_view", NULL
  };
  size_t i;
  for (i = 0; flags_true[i]; i++) kv_bool(b, flags_true[i], 1);
  for (i = 0; flags_false[i]; i++) kv_bool(b, flags_false[i], 0);
  jb_lit(b, ",\"activity_badge\":\"Disabled\",\"$field_states\":[]"
            ",\"business_card_fields\":[\"Name\",\"Owner\",\"Email\"]"
            ",\"per_page\":10"
            ",\"$properties\":[\"$approval_state\",\"$editable\","
            "\"$approved\",\"$review_process\"]"
            ",\"$on_demand_properties\":[\"$client_portal_permission\"]"
            ",\"search_layout_fields\":[\"Name\",\"Email\",\"Owner\"]"
            ",\"lookup_field_properties\":{\"fields\":[{\"sequence_number\":1,"
            "\"api_name\":\"Name\",\"id\":\"2423488000000900501\"},"
            "{\"sequence_number\":2,\"api_name\":\"Email\","
            "\"id\":\"2423488000000900503\"}]}"
            ",\"related_list_properties\":{\"sort_by\":{\"api_name\":"
            "\"Created_Time\",\"id\":\"2423488000000900504\"},\"fields\":"
            "[\"Name\",\"Owner\",\"Email\"],\"sort_order\":\"desc\"}"
            ",\"display_field\":{\"api_name\":\"Name\","
            "\"id\":\"2423488000000900501\"}"
            ",\"default_mapping_fields\":[]");
  jb_lit(b, ",\"layout_associations\":[{\"api_name\":\"Standard\","
            "\"name\":\"Standard\",\"id\":");
  jb_str(b, m->id);
  jb_lit(b, "}],\"layouts\":[{\"id\":");
  jb_str(b, m->id);
  jb_lit(b, ",\"name\":\"Standard\",\"display_label\":\"Standard\","
            "\"api_name\":\"Standard\",\"status\":\"active\"}]");
  jb_lit(b, ",\"related_lists\":[{\"id\":\"2423488000000900601\","
            "\"sequence_number\":\"1\",\"display_label\":\"Notes\","
            "\"api_name\":\"Notes\",\"module\":");
  api_ref(b, "Notes", "2423488000000002209");
  jb_lit(b, ",\"name\":\"Notes\",\"action\":null,\"href\":null,"
            "\"type\":\"default\",\"visible\":true,\"customize_sort\":false,"
            "\"customize_fields\":false,\"customize_display_label\":false,"
            "\"sort_by\":");
  api_ref(b, "Created_Time", "2423488000000900504");
  jb_lit(b, ",\"sort_order\":\"desc\",\"fields\":[],\"status\":\"visible\"}]");
  jb_lit(b, ",\"fields\":");
  for (i = 0; detail_fields[i]; i++) jb_lit(b, detail_fields[i]);
  jb_lit(b, ",\"custom_view\":{\"display_value\":");
  jb_str(b, m->plural);
  jb_lit(b, ",\"system_name\":\"ALLVIEWS\",\"category\":\"public_views\","
            "\"created_time\":null,\"modified_time\":null,"
            "\"last_accessed_time\":null,\"name\":\"All\",\"created_by\":"
            ADMIN_USER ",\"modified_by\":" ADMIN_USER ",\"module\":{");
  jb_key(b, "name"); jb_str(b, m->api_name);
  jb_lit(b, ","); jb_key(b, "id"); jb_str(b, m->id);
  jb_lit(b, "},\"criteria\":{\"comparator\":null,\"field\":{\"api_name\":null,"
            "\"id\":null},\"value\":null,\"group_operator\":null,\"group\":[]},"
            "\"default\":true,\"system_defined\":true,\"locked\":false,"
            "\"favorite\":null,\"offline\":false,\"access_type\":\"public\","
            "\"shared_to\":[],\"fields\":[{\"id\":\"2423488000000900501\","
            "\"api_name\":\"Name\",\"_pin\":false}],\"sort_by\":{\"id\":"
            "\"2423488000000900504\",\"api_name\":\"Created_Time\"},"
            "\"sort_order\":\"desc\",\"id\":");
  jb_str(b, m->id);
  jb_lit(b, "}");
}

/* }================================================================== */

/* The field set of the example answer on Zoho's "Modules Metadata" page
** (GET /settings/modules). */
static void write_module (jbuf *b, const org_data *o, const module *m,
                          int detail) {
  int custom = strcmp(m->generated_type, "custom") == 0;
  int leads = strcmp(m->api_name, "Leads") == 0;
  size_t i, count = 0;
  jb_lit(b, "{");
  jb_key(b, "id"); jb_str(b, m->id);
  jb_lit(b, ","); jb_key(b, "api_name"); jb_str(b, m->api_name);
  jb_lit(b, ","); jb_key(b, "module_name"); jb_str(b, m->module_name);
  jb_lit(b, ","); jb_key(b, "plural_label"); jb_str(b, m->plural);
  jb_lit(b, ","); jb_key(b, "singular_label"); jb_str(b, m->singular);
  jb_lit(b, ","); jb_key(b, "actual_plural_label"); jb_str(b, m->plural);
  jb_lit(b, ","); jb_key(b, "actual_singular_label");
  jb_str(b, m->singular);
  jb_lit(b, ","); jb_key(b, "generated_type"); jb_str(b, m->generated_type);
  kv_bool(b, "api_supported", m->api_supported);
  kv_bool(b, "creatable", 1);
  kv_bool(b, "editable", 1);
  kv_bool(b, "deletable", 1);
  kv_bool(b, "viewable", 1);
  kv_bool(b, "convertable", leads);
  kv_bool(b, "quick_create", 1);
  kv_bool(b, "lookupable", 1);
  kv_bool(b, "global_search_supported", 1);
  kv_bool(b, "recycle_bin_on_delete", 1);
  kv_bool(b, "isBlueprintSupported", 1);
  kv_bool(b, "presence_sub_menu", !custom);
  kv_bool(b, "sub_menu_available", 1);
  kv_bool(b, "feeds_required", 0);
  kv_bool(b, "public_fields_configured", 0);
  kv_bool(b, "show_as_tab", strcmp(m->status, "visible") == 0);
  jb_lit(b, ","); jb_key(b, "visibility"); jb_int(b, 1);
  jb_lit(b, ","); jb_key(b, "status"); jb_str(b, m->status);
  jb_lit(b, ","); jb_key(b, "sequence_number"); jb_int(b, m->sequence);
  jb_lit(b, ","); jb_key(b, "access_type");
  jb_str(b, m->team ? "team_based" : "org_based");
  jb_lit(b, ","); jb_key(b, "private_profile"); jb_lit(b, "null");
  jb_lit(b, ","); jb_key(b, "profiles"); jb_lit(b, "[");
  for (i = 0; i < o->nprof; i++) {
    if (!ps_has(&m->profiles, (int)i)) continue;
    if (count++) jb_lit(b, ",");
    jb_lit(b, "{"); jb_key(b, "name"); jb_str(b, o->prof[i].name);
    jb_lit(b, ","); jb_key(b, "id"); jb_str(b, o->prof[i].id);
    jb_lit(b, "}");
  }
  jb_lit(b, "]");
  jb_lit(b, ","); jb_key(b, "profile_count"); jb_int(b, (long long)count);
  kv_bool(b, "has_more_profiles", 0);
  jb_lit(b, ","); jb_key(b, "modified_time");
  if (m->modified_time[0]) {
    jb_str(b, m->modified_time);
    jb_lit(b, ","); jb_key(b, "modified_by"); jb_lit(b, ADMIN_USER);
  } else {
    jb_lit(b, "null,"); jb_key(b, "modified_by"); jb_lit(b, "null");
  }
  jb_lit(b, ","); jb_key(b, "parent_module"); jb_lit(b, "{}");
  jb_lit(b, ","); jb_key(b, "web_link"); jb_lit(b, "null");
  jb_lit(b, ","); jb_key(b, "arguments"); jb_lit(b, "[]");
  jb_lit(b, ","); jb_key(b, "description"); jb_lit(b, "null");
  jb_lit(b, ","); jb_key(b, "business_card_field_limit"); jb_int(b, 5);
  if (detail) write_detail(b, m);
  jb_lit(b, "}");
}

void org_write_module (jbuf *b, const org_data *o, const module *m) {
  write_module(b, o, m, 0);
}

/* The single-module GET's form: the list's fields and the detail ones. */
void org_write_module_detail (jbuf *b, const org_data *o, const module *m) {
  write_module(b, o, m, 1);
}

static void write_profile (jbuf *b, const profile *p) {
  jb_lit(b, "{");
  jb_key(b, "id"); jb_str(b, p->id);
  jb_lit(b, ","); jb_key(b, "name"); jb_str(b, p->name);
  jb_lit(b, ","); jb_key(b, "display_label"); jb_str(b, p->name);
  jb_lit(b, ","); jb_key(b, "api_name"); jb_str(b, p->name);
  jb_lit(b, ","); jb_key(b, "type"); jb_str(b, "normal_profile");
  kv_bool(b, "custom", p->custom);
  kv_bool(b, "default", !p->custom);
  kv_bool(b, "category", 0);
  jb_lit(b, ","); jb_key(b, "description"); jb_str(b, p->description);
  jb_lit(b, ","); jb_key(b, "created_time"); jb_lit(b, "null");
  jb_lit(b, ","); jb_key(b, "modified_time"); jb_str(b, SEED_MODIFIED);
  jb_lit(b, ","); jb_key(b, "created_by"); jb_lit(b, "null");
  jb_lit(b, ","); jb_key(b, "modified_by"); jb_lit(b, ADMIN_USER);
  jb_lit(b, "}");
}

static void write_profile_array (jbuf *b, const org_data *o) {
  size_t i;
  jb_lit(b, "[");
  for (i = 0; i < o->nprof; i++) {
    if (i) jb_lit(b, ",");
    write_profile(b, &o->prof[i]);
  }
  jb_lit(b, "]");
}

/* One page of profiles: count of them from first, with Zoho's info. */
void org_write_profiles (jbuf *b, const org_data *o, size_t first,
                         size_t count, long page, long per_page) {
  size_t i;
  jb_lit(b, "{\"profiles\":[");
  for (i = first; i < first + count && i < o->nprof; i++) {
    if (i > first) jb_lit(b, ",");
    write_profile(b, &o->prof[i]);
  }
  jb_lit(b, "],\"info\":{\"page\":");
  jb_int(b, page);
  jb_lit(b, ",\"per_page\":");
  jb_int(b, per_page);
  jb_lit(b, ",\"count\":");
  jb_int(b, (long long)count);
  jb_lit(b, ",\"more_records\":");
  jb_lit(b, first + count < o->nprof ? "true" : "false");
  jb_lit(b, ",\"license_limit\":");
  jb_int(b, o->nprof > 200 ? (long long)o->nprof : 200);
  jb_lit(b, "}}");
}

void org_write_state (jbuf *b, const org_data *o) {
  size_t i;
  jb_lit(b, "{\"modules\":[");
  for (i = 0; i < o->n; i++) {
    if (i) jb_lit(b, ",");
    org_write_module(b, o, o->mods[i]);
  }
  jb_lit(b, "],\"profiles\":");
  write_profile_array(b, o);
  jb_lit(b, "}");
}

/* }================================================================== */


/* {==================================================================
** The state form: what GET /__emulator/state answers and --state holds
** =================================================================== */

char *org_state_text (const org_data *o, size_t *len) {
  jbuf b;
  jb_init(&b);
  org_write_state(&b, o);
  jb_lit(&b, "\n");
  return jb_take(&b, len);
}

static const char *jstr (const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_profiles (org_data *o, const cJSON *arr, char *err, size_t elen) {
  const cJSON *p;
  cJSON_ArrayForEach(p, arr) {
    const char *id = jstr(p, "id"), *name = jstr(p, "name");
    if (!id || !name) {
      snprintf(err, elen, "a profile lacks id or name");
      return -1;
    }
    if (add_profile(o, id, name, jstr(p, "description"),
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "custom")))) {
      snprintf(err, elen, "too many profiles (at most %d)", ORG_MAX_PROFILES);
      return -1;
    }
  }
  return 0;
}

static int load_modules (org_data *o, const cJSON *arr, char *err, size_t elen) {
  const cJSON *j;
  cJSON_ArrayForEach(j, arr) {
    const char *id = jstr(j, "id"), *api = jstr(j, "api_name");
    const char *pl = jstr(j, "plural_label"), *sg = jstr(j, "singular_label");
    const char *mn = jstr(j, "module_name"), *gt = jstr(j, "generated_type");
    const char *st = jstr(j, "status"), *mt = jstr(j, "modified_time");
    const cJSON *profs = cJSON_GetObjectItemCaseSensitive(j, "profiles");
    const cJSON *p, *seq = cJSON_GetObjectItemCaseSensitive(j, "sequence_number");
    const cJSON *sup = cJSON_GetObjectItemCaseSensitive(j, "api_supported");
    profset bits;
    module *m;
    size_t dummy;
    if (!id || !api || !pl || !sg) {
      snprintf(err, elen, "a module lacks id, api_name or a label");
      return -1;
    }
    if (sm_get(o->by_id, id, &dummy) || sm_get(o->by_api, api, &dummy)) {
      snprintf(err, elen, "module %s appears twice", id);
      return -1;
    }
    memset(&bits, 0, sizeof bits);
    cJSON_ArrayForEach(p, profs) {
      const char *pid = jstr(p, "id");
      int k = pid ? org_profile_index(o, pid) : -1;
      if (k >= 0) ps_add(&bits, k);
    }
    m = add_module(o, id, api, mn ? mn : api, pl, sg,
                   gt ? gt : "custom", st ? st : "visible", &bits);
    if (m == NULL) { snprintf(err, elen, "out of memory"); return -1; }
    if (cJSON_IsNumber(seq)) m->sequence = seq->valueint;
    if (cJSON_IsBool(sup)) m->api_supported = cJSON_IsTrue(sup);
    m->team = jstr(j, "access_type") != NULL
              && strcmp(jstr(j, "access_type"), "team_based") == 0;
    if (mt) snprintf(m->modified_time, sizeof m->modified_time, "%s", mt);
  }
  return 0;
}

/* An org from the text of a state file (org_write_state's form). NULL with
** err set when the text is not one; `name` says where it came from. */
org_data *org_from_state (const char *text, size_t len, const char *name,
                          char *err, size_t elen) {
  size_t i;
  cJSON *root = cJSON_ParseWithLength(text, len);
  org_data *o;
  if (!cJSON_IsObject(root)
      || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "modules"))
      || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "profiles"))) {
    snprintf(err, elen, "%s is not a state file ({\"modules\":[...],"
             "\"profiles\":[...]})", name);
    cJSON_Delete(root);
    return NULL;
  }
  o = org_empty();
  if (o == NULL) { snprintf(err, elen, "out of memory"); cJSON_Delete(root); return NULL; }
  if (load_profiles(o, cJSON_GetObjectItemCaseSensitive(root, "profiles"),
                    err, elen)
      || load_modules(o, cJSON_GetObjectItemCaseSensitive(root, "modules"),
                      err, elen)) {
    cJSON_Delete(root);
    org_free(o);
    return NULL;
  }
  cJSON_Delete(root);
  /* created ids continue after the highest one in use */
  for (i = 0; i < o->n; i++) {
    unsigned long long v = strtoull(o->mods[i]->id, NULL, 10);
    if (v >= o->next_id && v < BULK_ID_BASE) o->next_id = v + 1;
  }
  return o;
}

/* }================================================================== */
