-- LUAROCKS_CONFIG for `make asan`: Debian's own settings, plus where Lua's
-- headers and interpreter are (luarocks would otherwise guess them from the
-- lua5.4 it finds first on PATH, which is fuzz/san/lua5.4 during the run).
rocks_trees = { home .. [[/.luarocks]], [[/usr/local]] }
lua_interpreter = "lua5.4"
variables = {
  LUA_DIR = "/usr", LUA_BINDIR = "/usr/bin", LUA_INCDIR = "/usr/include/lua5.4",
  LUA_LIBDIR = "/usr/lib/x86_64-linux-gnu",
}
