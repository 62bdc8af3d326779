/*
** strmap.c: a chained hash map from strings to indexes, so lookups by
** id, API name and label stay O(1) with 100,000 modules.
*/
#include <stdlib.h>
#include <string.h>

#include "emu.h"

typedef struct node {
  struct node *next;
  size_t val;
  char key[1];                    /* allocated to fit */
} node;

struct strmap {
  node **slot;
  size_t nslot, count;
};

static size_t hash (const char *s) {
  size_t h = 2166136261u;         /* FNV-1a */
  while (*s) { h ^= (unsigned char)*s++; h *= 16777619u; }
  return h;
}

strmap *sm_new (void) {
  strmap *m = (strmap *)malloc(sizeof *m);
  if (m == NULL) return NULL;
  m->nslot = 64;
  m->count = 0;
  m->slot = (node **)calloc(m->nslot, sizeof *m->slot);
  if (m->slot == NULL) { free(m); return NULL; }
  return m;
}

void sm_free (strmap *m) {
  size_t i;
  if (m == NULL) return;
  for (i = 0; i < m->nslot; i++) {
    node *n = m->slot[i];
    while (n) { node *next = n->next; free(n); n = next; }
  }
  free(m->slot);
  free(m);
}

static void rehash (strmap *m) {
  size_t i, ns = m->nslot * 2;
  node **slot = (node **)calloc(ns, sizeof *slot);
  if (slot == NULL) return;       /* keep working, only slower */
  for (i = 0; i < m->nslot; i++) {
    node *n = m->slot[i];
    while (n) {
      node *next = n->next;
      size_t h = hash(n->key) & (ns - 1);
      n->next = slot[h];
      slot[h] = n;
      n = next;
    }
  }
  free(m->slot);
  m->slot = slot;
  m->nslot = ns;
}

int sm_put (strmap *m, const char *key, size_t val) {
  size_t h = hash(key) & (m->nslot - 1), len;
  node *n;
  for (n = m->slot[h]; n; n = n->next)
    if (strcmp(n->key, key) == 0) { n->val = val; return 0; }
  len = strlen(key);
  n = (node *)malloc(sizeof *n + len);
  if (n == NULL) return -1;
  memcpy(n->key, key, len + 1);
  n->val = val;
  n->next = m->slot[h];
  m->slot[h] = n;
  if (++m->count > m->nslot) rehash(m);
  return 0;
}

int sm_get (const strmap *m, const char *key, size_t *val) {
  const node *n = m->slot[hash(key) & (m->nslot - 1)];
  for (; n; n = n->next)
    if (strcmp(n->key, key) == 0) { *val = n->val; return 1; }
  return 0;
}

void sm_del (strmap *m, const char *key) {
  node **p = &m->slot[hash(key) & (m->nslot - 1)];
  for (; *p; p = &(*p)->next) {
    if (strcmp((*p)->key, key) == 0) {
      node *n = *p;
      *p = n->next;
      free(n);
      m->count--;
      return;
    }
  }
}
