/*
** sys.h: sys.c, the operating-system services the library needs (clock,
** sleep, files, locks, directories). Calls error.c.
*/
#ifndef ZCRM_SYS_H
#define ZCRM_SYS_H

#include "zcrm.h"

/* Writes all of data to fd, again after EINTR; 0 or errno. */
int zc_write_all(int fd, const char *data, size_t len);

int zc_open_sys(lua_State *L);        /* now, sleep, fsync, file_mode, ... */

#endif
