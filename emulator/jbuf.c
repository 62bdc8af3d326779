/*
** jbuf.c: a growable buffer that writes JSON text.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"


/* {==================================================================
** Growth
** =================================================================== */

static int grow (jbuf *b, size_t need) {
  size_t cap;
  char *p;
  if (b->oom) return 0;
  if (b->len + need + 1 <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1) {
    if (cap > ((size_t)-1) / 2) { b->oom = 1; return 0; }
    cap *= 2;
  }
  p = (char *)realloc(b->p, cap);
  if (p == NULL) { b->oom = 1; return 0; }
  b->p = p;
  b->cap = cap;
  return 1;
}

void jb_init (jbuf *b) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

void jb_free (jbuf *b) {
  free(b->p);
  jb_init(b);
}

char *jb_take (jbuf *b, size_t *len) {
  char *p;
  if (!grow(b, 0)) { jb_free(b); return NULL; }
  b->p[b->len] = '\0';
  p = b->p;
  if (len) *len = b->len;
  jb_init(b);
  return p;
}

/* }================================================================== */


/* {==================================================================
** Writers
** =================================================================== */

void jb_raw (jbuf *b, const char *s, size_t n) {
  if (!grow(b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void jb_lit (jbuf *b, const char *s) {
  jb_raw(b, s, strlen(s));
}

/* Bytes >= 0x80 go out as they are: every string we store was checked
** as UTF-8 on the way in (or came from our own seed). */
void jb_strn (jbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, run = 0;
  if (!grow(b, n + 2)) return;
  b->p[b->len++] = '"';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    jb_raw(b, s + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': jb_raw(b, "\\\"", 2); break;
      case '\\': jb_raw(b, "\\\\", 2); break;
      case '\n': jb_raw(b, "\\n", 2); break;
      case '\r': jb_raw(b, "\\r", 2); break;
      case '\t': jb_raw(b, "\\t", 2); break;
      default: {
        char u[6] = { '\\', 'u', '0', '0', 0, 0 };
        u[4] = hex[c >> 4];
        u[5] = hex[c & 15];
        jb_raw(b, u, 6);
      }
    }
  }
  jb_raw(b, s + run, n - run);
  jb_raw(b, "\"", 1);
}

void jb_str (jbuf *b, const char *s) {
  if (s == NULL) jb_lit(b, "null");
  else jb_strn(b, s, strlen(s));
}

void jb_int (jbuf *b, long long v) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%lld", v);
  jb_raw(b, tmp, (size_t)n);
}

void jb_key (jbuf *b, const char *k) {
  jb_str(b, k);
  jb_raw(b, ":", 1);
}

/* }================================================================== */
