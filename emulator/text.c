/*
** text.c: UTF-8 decoding and the label rule of the Update Custom Module
** page ("A maximum of 25 characters, including spaces, is allowed. ...
** only letters, numbers, and spaces are supported"), with characters
** classified by their Unicode category (utf8proc), never by the locale,
** and exactly as the client classifies them (spec/fixtures/labels.json
** holds the verdicts both are checked against).
*/
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "emu.h"


/* {==================================================================
** Strings
** =================================================================== */

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

/*
** The rule, code point by code point:
** - letters (Lu Ll Lt Lm Lo), decimal digits (Nd), letter numbers (Nl) and
**   U+0020, the only space;
** - combining marks (Mn Mc) right after a letter or after marks that
**   follow one: Devanagari, Bengali, Thai... write vowel signs and viramas
**   as marks, and decomposed Latin (E + U+0301) too;
** - anything else is refused: punctuation, symbols and emoji, other number
**   forms (No), other spaces, controls, format characters (ZWJ, ZWNJ, bidi
**   controls), enclosing marks, private use, unassigned code points.
** Then: not only spaces, and at most 25 code points. A refused character
** is reported before emptiness and length.
*/
int label_check (const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s), i = 0, count = 0;
  int bad = 0, solid = 0, after_letter = 0;
  while (i < n) {
    uint32_t c;
    if (!utf8_next(u, n, &i, &c)) return LABEL_BAD_UTF8;
    count++;
    if (c == ' ') { after_letter = 0; continue; }
    switch (utf8proc_category((utf8proc_int32_t)c)) {
      case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
      case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
      case UTF8PROC_CATEGORY_LO:
        solid = after_letter = 1;
        break;
      case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
        solid = 1;
        after_letter = 0;
        break;
      case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
        if (!after_letter) bad = 1;
        break;
      default:
        bad = 1;
    }
  }
  if (bad) return LABEL_BAD_CHAR;
  if (!solid) return LABEL_EMPTY;
  if (count > LABEL_MAX) return LABEL_TOO_LONG;
  return LABEL_OK;
}

/* The key labels are unique under: without regard to case, as Zoho's UI
** does, with spaces at the edges dropped and runs of spaces made one
** (assumed; the client's core.label_key is the same rule). */
char *label_fold (const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s), i = 0, o = 0;
  int space = 0;                  /* a space is pending: written before the
                                  ** next other character, never at an edge */
  char *out = (char *)malloc(n * 4 + 1);
  if (out == NULL) return NULL;
  while (i < n) {
    uint32_t c;
    int bad = !utf8_next(u, n, &i, &c);
    if (bad) c = u[i++];
    if (c == ' ' && !bad) { space = 1; continue; }
    if (space && o > 0) out[o++] = ' ';
    space = 0;
    if (bad) { out[o++] = (char)c; continue; }
    c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    o += utf8_put(out + o, c);
  }
  out[o] = '\0';
  return out;
}

/* }================================================================== */
