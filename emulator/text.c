/*
** text.c: UTF-8 decoding and the label rule of the Update Custom Module
** page: at most 25 characters, only letters, digits and spaces, Unicode
** letters allowed.
*/
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "emu.h"


/* {==================================================================
** Locale
** =================================================================== */

static int have_unicode_ctype;

/* iswalnum() knows Unicode letters only under a UTF-8 LC_CTYPE. */
void text_init (void) {
  have_unicode_ctype = setlocale(LC_CTYPE, "C.UTF-8") != NULL
                    || setlocale(LC_CTYPE, "C.utf8") != NULL;
}

char *xstrdup (const char *s) {
  size_t n = strlen(s) + 1;
  char *p = (char *)malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* }================================================================== */


/* {==================================================================
** UTF-8
** =================================================================== */

/* Decode one code point at s[*i]; strict: no overlongs, no surrogates,
** nothing past U+10FFFF. Returns 0 on a malformed sequence. */
int utf8_next (const unsigned char *s, size_t n, size_t *i, uint32_t *cp) {
  size_t k = *i, len, j;
  uint32_t c = s[k], min;
  if (c < 0x80) { *cp = c; *i = k + 1; return 1; }
  if (c >= 0xC2 && c <= 0xDF) { len = 2; c &= 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; c &= 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; c &= 0x07; min = 0x10000; }
  else return 0;
  if (n - k < len) return 0;
  for (j = 1; j < len; j++) {
    if ((s[k + j] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[k + j] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  *i = k + len;
  return 1;
}

static size_t utf8_put (char *out, uint32_t c) {
  if (c < 0x80) { out[0] = (char)c; return 1; }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* }================================================================== */


/* {==================================================================
** Labels
** =================================================================== */

static int label_char_ok (uint32_t c) {
  if (c == ' ') return 1;
  if (c < 0x80)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z');
  /* Without a Unicode locale we cannot classify: accept, and say so in
  ** the README rather than refuse every non-ASCII label. */
  if (!have_unicode_ctype) return 1;
  return iswalnum((wint_t)c) != 0;
}

int label_check (const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s), i = 0, count = 0, solid = 0;
  int bad = 0;
  while (i < n) {
    uint32_t c;
    if (!utf8_next(u, n, &i, &c)) return LABEL_BAD_UTF8;
    count++;
    if (!label_char_ok(c)) bad = 1;
    else if (c != ' ') solid++;
  }
  if (solid == 0 && !bad) return LABEL_EMPTY;
  if (count > LABEL_MAX) return LABEL_TOO_LONG;
  return bad ? LABEL_BAD_CHAR : LABEL_OK;
}

/* Uniqueness is checked without regard to case, as Zoho's UI does. */
char *label_fold (const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s), i = 0, o = 0;
  char *out = (char *)malloc(n * 4 + 1);
  if (out == NULL) return NULL;
  while (i < n) {
    uint32_t c;
    if (!utf8_next(u, n, &i, &c)) { c = u[i]; i++; out[o++] = (char)c; continue; }
    if (c < 0x80) c = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    else if (have_unicode_ctype) c = (uint32_t)towlower((wint_t)c);
    o += utf8_put(out + o, c);
  }
  out[o] = '\0';
  return out;
}

/* }================================================================== */
