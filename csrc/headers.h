/*
** headers.h: headers.c, `zcrm.headers`, a request header list checked and
** built once (reference-counted, so a list outlives its userdata while a
** transfer uses it), and the rule for one header line. Calls error.c.
*/
#ifndef ZCRM_HEADERS_H
#define ZCRM_HEADERS_H

#include <curl/curl.h>

#include "zcrm.h"

#define ZC_HEADERS_MT "zcrm.headers"

typedef struct zc_hlist {
  int refs;                       /* the userdata's, and one per transfer */
  struct curl_slist *list;        /* checked lines, then "Expect:" */
} zc_hlist;

/* "Name: value", or "Name:" (which removes a header libcurl would add);
** the value may hold TAB but no CR, LF, NUL or other control byte. */
int zc_header_ok(const char *s, size_t len);

zc_hlist *zc_headers_test(lua_State *L, int idx);   /* NULL: not one */
zc_hlist *zc_hlist_ref(zc_hlist *h);
void zc_hlist_unref(zc_hlist *h);                   /* NULL: nothing */
void zc_open_headers(lua_State *L);                 /* new_headers */

#endif
