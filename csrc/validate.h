/*
** validate.h: validate.c, every documented rule on input (update tables,
** module path segments, create-module names, base URLs, tokens).
** Calls error.c; its update keys are fields.h's.
*/
#ifndef ZCRM_VALIDATE_H
#define ZCRM_VALIDATE_H

#include "zcrm.h"

void zc_open_validate(lua_State *L);  /* null, prepare_update, ... */

#endif
