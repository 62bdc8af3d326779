rockspec_format = "3.0"
package = "zcrm"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from a local checkout with `luarocks make`
}
description = {
  summary = "Change Zoho CRM custom-module configuration from Lua, safely and within Zoho's limits",
  detailed = [[
zcrm validates module updates against Zoho's documented rules in C before any
request exists, sends them over libcurl (non-blocking multi interface), refreshes
OAuth tokens, retries within Zoho's limits, and applies bulk plans with a journal
and an undo plan.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
  "lua-cjson",
}
external_dependencies = {
  CURL = { library = "curl" },
  UTF8PROC = { header = "utf8proc.h", library = "utf8proc" },
}
-- build.type "make" rather than "builtin": builtin compiles object files
-- beside the sources and leaves them (and a zcrm/ directory) in the work tree;
-- the Makefile's rock-install target compiles straight into the rock.
build = {
  type = "make",
  build_pass = false,
  install_target = "rock-install",
  install_variables = {
    CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)", LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_CFLAGS = "-I$(CURL_INCDIR) -I$(UTF8PROC_INCDIR)",
    CURL_LIBS = "-L$(CURL_LIBDIR) -L$(UTF8PROC_LIBDIR) -lcurl",
    LUADIR = "$(LUADIR)", LIBDIR = "$(LIBDIR)",
    -- zcrm-emulator is compiled into the rock's bin/, which LuaRocks puts on
    -- the tree's bin/ beside zcrm, so `zcrm emulator` works from a rock too.
    BINDIR = "$(BINDIR)",
  },
  install = {
    bin = { zcrm = "bin/zcrm" },
  },
}
test = {
  type = "busted",
}
