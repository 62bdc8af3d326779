/*
** multi.h: multi.c, `zcrm.multi`, a libcurl multi handle driven through
** libcurl's socket interface. Calls error.c and transfer.c.
*/
#ifndef ZCRM_MULTI_H
#define ZCRM_MULTI_H

#include "zcrm.h"

#define ZC_MULTI_MT "zcrm.multi"

void zc_open_multi(lua_State *L);     /* new_multi + metatable */

#endif
