/*
** answer.h: answer.c, an update's success answer read in C
** (`read_update_answer`) through fields.h's ZC_ANSWER_FIELDS. Calls no
** other unit.
*/
#ifndef ZCRM_ANSWER_H
#define ZCRM_ANSWER_H

#include "zcrm.h"

void zc_open_answer(lua_State *L);    /* read_update_answer */

#endif
