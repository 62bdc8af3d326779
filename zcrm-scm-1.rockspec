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
build = {
  type = "builtin",
  modules = {
    ["zcrm.core"] = {
      sources = {
        "csrc/core.c", "csrc/error.c", "csrc/validate.c", "csrc/multi.c",
        "csrc/transfer.c", "csrc/sys.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "utf8proc" },
      incdirs = { "$(CURL_INCDIR)", "$(UTF8PROC_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(UTF8PROC_LIBDIR)" },
    },
    zcrm = "lua/zcrm/init.lua",
    ["zcrm.auth"] = "lua/zcrm/auth.lua",
    ["zcrm.cli"] = "lua/zcrm/cli.lua",
    ["zcrm.dc"] = "lua/zcrm/dc.lua",
    ["zcrm.engine"] = "lua/zcrm/engine.lua",
    ["zcrm.http"] = "lua/zcrm/http.lua",
    ["zcrm.modules"] = "lua/zcrm/modules.lua",
    ["zcrm.options"] = "lua/zcrm/options.lua",
    ["zcrm.util"] = "lua/zcrm/util.lua",
    ["zcrm.plan"] = "lua/zcrm/plan/init.lua",
    ["zcrm.plan.apply"] = "lua/zcrm/plan/apply.lua",
    ["zcrm.plan.check"] = "lua/zcrm/plan/check.lua",
    ["zcrm.plan.journal"] = "lua/zcrm/plan/journal.lua",
    ["zcrm.plan.load"] = "lua/zcrm/plan/load.lua",
    ["zcrm.plan.state"] = "lua/zcrm/plan/state.lua",
  },
  install = {
    bin = { zcrm = "bin/zcrm" },
  },
}
test = {
  type = "busted",
}
