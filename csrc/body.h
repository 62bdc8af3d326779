/*
** body.h: body.c, an update's URL and JSON body (`update_request`),
** written from fields.h's lists. Calls no other unit.
*/
#ifndef ZCRM_BODY_H
#define ZCRM_BODY_H

#include "zcrm.h"

void zc_open_body(lua_State *L);      /* update_request */

#endif
