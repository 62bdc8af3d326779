/*
** error.h: error.c, the `zcrm.error` type and the catalogue (errors.h).
** Calls no other unit; every unit that fails calls it.
*/
#ifndef ZCRM_ERROR_H
#define ZCRM_ERROR_H

#include "zcrm.h"

#define ZC_ERROR_MT "zcrm.error"

/* One entry of the catalogue (errors.h). status 0: no HTTP status. */
typedef struct zc_catentry {
  const char *code;
  int status;
  const char *kind;
  int retryable;
  const char *message;
  const char *resolution;
} zc_catentry;

const zc_catentry *zc_catalogue_find(const char *code);

/*
** Pops the message on top of the stack (a string, or nil for the catalogue's
** message) and pushes a new error object. kind NULL: from the catalogue
** (unknown codes: "api"); retryable: from the catalogue (unknown codes:
** status 429 or >= 500), always false for kind "validation". status 0 means
** none. field may be NULL.
*/
void zc_error_new(lua_State *L, const char *code, const char *kind,
                  int status, const char *field);

/* Sets err.details = { api_name =, json_path = [, maximum_length =] } on
** the error object on top of the stack; maxlen < 0: no maximum_length. */
void zc_error_details(lua_State *L, const char *api_name,
                      const char *json_path, lua_Integer maxlen);

/* Error object on top -> pushes nil below it; returns 2 (for `return`). */
int zc_fail(lua_State *L);

void zc_open_error(lua_State *L);     /* error, is_error, catalogue */

#endif
