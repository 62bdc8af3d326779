/*
** proc.h: proc.c, the module `zcrm.proc`: what only bin/zcrm needs from
** its process (the interrupt flag, exec, terminals). Calls sys.c
** (zc_write_all).
*/
#ifndef ZCRM_PROC_H
#define ZCRM_PROC_H

#include "zcrm.h"

/* catch_interrupts, interrupted, exec, isatty, term_width, read_secret */
void zc_open_proc(lua_State *L);

#endif
