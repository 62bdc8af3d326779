/*
** zcrm.h: what every unit of the C core shares: the Lua headers, the
** visibility macro and the version. Each unit's own interface is in its
** header (error.h, validate.h, transfer.h, ...); a unit includes the
** headers of exactly the units it calls, so the includes are the call
** graph, and it has no cycle (csrc/API.md, "Units and who calls whom").
**
** Nothing declared in these headers is exported: the Makefile compiles with
** -fvisibility=hidden, and the only symbols marked ZCRM_API are the
** luaopen_ functions of core.c (`zcrm.core` and `zcrm.proc`, two modules in
** one .so). See csrc/API.md for the Lua-facing contract.
*/
#ifndef ZCRM_H
#define ZCRM_H

#include <stddef.h>

#include "lua.h"
#include "lauxlib.h"

#if defined(__GNUC__) || defined(__clang__)
#define ZCRM_API __attribute__((visibility("default")))
#else
#define ZCRM_API
#endif

#define ZCRM_CORE_VERSION "zcrm.core 0.1.0"

#endif
