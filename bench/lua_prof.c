/*
** lua_prof.c: a minimal `lua5.4 script args...` for bench/profile.lua,
** linked with Debian's liblua5.4.a, whose symbols the lua5.4 binary lacks
** (it is stripped), so callgrind can name the interpreter's functions.
** Built by bench/profile.lua: cc -O2 -o bench/.build/lua-prof
** bench/lua_prof.c -I/usr/include/lua5.4 -Wl,-E
** /usr/lib/x86_64-linux-gnu/liblua5.4.a -lm -ldl
*/
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static int run(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i;
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_openlibs(L);
  lua_createtable(L, argc, 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, argv[1]) != LUA_OK) return lua_error(L);
  for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  lua_call(L, argc - 2, 0);
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int rc;
  if (L == NULL || argc < 2) return 1;
  lua_pushcfunction(L, run);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  rc = lua_pcall(L, 2, 0, 0);
  if (rc != LUA_OK) fprintf(stderr, "lua-prof: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return rc == LUA_OK ? 0 : 1;
}
