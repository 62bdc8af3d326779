# zcrm: Lua 5.4 module with a C core. Variable names follow LuaRocks' conventions
# (CFLAGS, LIBFLAG, LUA_INCDIR; PREFIX, LIBDIR, LUADIR) so `luarocks make` and a
# plain `make install` agree.

LUA          ?= lua5.4
LUA_VERSION  ?= 5.4
LUA_INCDIR   ?= /usr/include/lua$(LUA_VERSION)
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUADIR       ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR       ?= $(PREFIX)/bin
MANDIR       ?= $(PREFIX)/share/man
# Where bash-completion, zsh and fish look for completions under PREFIX.
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR   ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR  ?= $(PREFIX)/share/fish/vendor_completions.d
BUSTED       ?= busted --lua=$(LUA)

CURL_CFLAGS  ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS    ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

WARN     = -std=c99 -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes -Wc++-compat
ifeq ($(CI),true)
WARN    += -Werror
endif
OPT     ?= -O2 -g
CFLAGS  ?= $(OPT)
CFLAGS  += $(WARN) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L
LIBFLAG ?= -shared
SAN_FLAGS ?=

CORE_SRCS = $(wildcard csrc/*.c)
CORE_HDRS = $(wildcard csrc/*.h)
CORE_OBJS = $(CORE_SRCS:.c=.o)
CORE_SO   = csrc/zcrm/core.so
# zcrm.proc (bin/zcrm's process helpers) is a second luaopen_ in the same
# library: a symbolic link zcrm/proc.so -> core.so beside it, in the build
# tree and wherever it is installed, lets Lua's C searcher find the name.
PROC_SO   = csrc/zcrm/proc.so

EMU_SRCS  = $(wildcard emulator/*.c)
EMU_OBJS  = $(EMU_SRCS:.c=.o)
EMU_BIN   = bin/zcrm-emulator
EMU_CFLAGS = $(OPT) $(WARN) -D_GNU_SOURCE $(SAN_FLAGS) \
             $(shell pkg-config --cflags libmicrohttpd libcjson 2>/dev/null)
EMU_LIBS  = $(shell pkg-config --libs libmicrohttpd libcjson 2>/dev/null || echo -lmicrohttpd -lcjson) -lutf8proc -lz -lpthread -lm

# Debian packages the build, the tests and the demo need (see README, "Dependencies").
DEB_PACKAGES = make gcc pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
               libutf8proc-dev lua-cjson lua-busted lua-check libmicrohttpd-dev \
               libcjson-dev curl luarocks zlib1g-dev \
               clang libclang-rt-14-dev valgrind openssl lua-socket cppcheck \
               lua-ldoc lcov lua-luv lua-cqueues groff-base zsh fish

.PHONY: all deps browser-deps install-packages sdk test demo install rock-install uninstall lint docs coverage clean bench soak asan valgrind fuzz tsan

# The C host of examples/host/: zcrm.core linked in.
HOST_BIN  = examples/host/host
HOST_LIBS = -llua$(LUA_VERSION) $(CURL_LIBS) -lutf8proc -lm -ldl -pthread
# The same under ThreadSanitizer (make tsan).
HOST_TSAN = fuzz/bin/tsan/host

all: $(CORE_SO) $(PROC_SO) $(EMU_BIN) $(HOST_BIN)

# Only make test's browser spec (spec/browser_spec.lua) needs a browser:
# headless Chromium renders zcrm report's HTML page there.
BROWSER_PACKAGES = chromium

deps:
	@$(MAKE) -s install-packages PACKAGES="$(DEB_PACKAGES)"

browser-deps:
	@$(MAKE) -s install-packages PACKAGES="$(BROWSER_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root, or install:$$missing" >&2; exit 1; fi; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

csrc/%.o: csrc/%.c $(CORE_HDRS)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -I$(LUA_INCDIR) $(CURL_CFLAGS) -c -o $@ $<

$(CORE_SO): $(CORE_OBJS)
	@mkdir -p csrc/zcrm
	$(CC) $(LIBFLAG) $(SAN_FLAGS) -o $@ $(CORE_OBJS) $(CURL_LIBS) -lutf8proc

$(PROC_SO): $(CORE_SO)
	ln -sf core.so $@

emulator/%.o: emulator/%.c $(wildcard emulator/*.h)
	$(CC) $(EMU_CFLAGS) -c -o $@ $<

$(EMU_BIN): $(EMU_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $(EMU_OBJS) $(EMU_LIBS)

$(HOST_BIN): examples/host/host.c $(CORE_OBJS)
	$(CC) $(OPT) $(WARN) -D_POSIX_C_SOURCE=200809L -pthread $(SAN_FLAGS) -I$(LUA_INCDIR) \
	  -o $@ $< $(CORE_OBJS) $(HOST_LIBS)

# Zoho's official Node.js SDK for spec/sdk_spec.lua, into spec/sdk/node_modules
# (npm ci from spec/sdk/package-lock.json). Without node and npm, or when npm
# cannot reach its registry, the spec is skipped and says why; under CI=true
# node and npm are installed (Debian packages, for this target only) and the
# SDK must install.
SDK_DEB_PACKAGES = nodejs npm
SDK_DIR = spec/sdk
sdk:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$(CI)" != true ]; then \
	    echo "make sdk: node/npm not installed: spec/sdk_spec.lua is skipped (CI=true installs them)"; exit 0; \
	  fi; \
	  $(MAKE) --no-print-directory deps DEB_PACKAGES="$(SDK_DEB_PACKAGES)" || exit 1; \
	fi; \
	if [ -f $(SDK_DIR)/node_modules/@zohocrm/nodejs-sdk-8.0/package.json ]; then exit 0; fi; \
	echo "make sdk: installing @zohocrm/nodejs-sdk-8.0 into $(SDK_DIR)/node_modules (npm ci)"; \
	(cd $(SDK_DIR) && timeout 300 npm ci --no-audit --no-fund --loglevel=error) && exit 0; \
	if [ "$(CI)" = true ]; then echo "make sdk: npm ci failed" >&2; exit 1; fi; \
	echo "make sdk: npm ci failed: spec/sdk_spec.lua is skipped"

test: deps browser-deps all $(HOST_TSAN) sdk
	$(BUSTED)

bench: deps all
	@sh bench/run.sh

# 100,000 updates through submit/poll against the emulator with 1% faults:
# RSS, accounting and repeats checked, figures printed (doc/reliability.md).
# Not part of make test (about a minute).
soak: deps all
	$(LUA) bench/soak.lua

lint: deps
	luacheck lua spec bin/zcrm examples bench .ci/docscov.lua
	cppcheck -q --enable=warning,portability,performance --error-exitcode=1 --std=c99 \
	  -I$(LUA_INCDIR) --suppress=missingIncludeSystem --suppress=toomanyconfigs csrc emulator examples/host

demo: deps all
	@sh examples/demo.sh

# bin/zcrm finds an installed module through one line that install rewrites:
# `local INSTALLED_LUADIR, INSTALLED_LIBDIR = nil, nil` becomes the two
# directories, written as Lua strings (%q), so the command runs from anywhere
# without LUA_PATH.
SET_INSTALLED_PATHS = local s = io.read("a"); \
  local line = string.format("local INSTALLED_LUADIR, INSTALLED_LIBDIR = %q, %q", \
    os.getenv("ZCRM_LUADIR"), os.getenv("ZCRM_LIBDIR")); \
  local out, n = s:gsub("\nlocal INSTALLED_LUADIR, INSTALLED_LIBDIR = nil, nil\n", \
    function() return "\n" .. line .. "\n" end, 1); \
  assert(n == 1, "bin/zcrm has no INSTALLED_LUADIR line"); io.write(out)

# The Lua modules, lua/zcrm/**/*.lua, under LUADIR.
INSTALL_LUA = cd lua && for f in $$(find zcrm -name '*.lua' | sort); do \
  install -D -m 0644 "$$f" "$(DESTDIR)$(LUADIR)/$$f" || exit 1; done

# API reference in doc/api/ (LDoc reads config.ld), then a check that every
# public function of zcrm, of the client and of a request, and every option,
# has a doc comment with types and a return convention (.ci/docscov.lua).
docs: deps all
	ldoc -q .
	@dump=$$(mktemp) && ldoc --filter pl.pretty.dump . >$$dump 2>/dev/null; \
	$(LUA) .ci/docscov.lua $$dump; rc=$$?; rm -f $$dump; exit $$rc

# Line coverage while the whole suite runs: the C core built with --coverage
# under coverage/ (gcov, lcov) and loaded instead of csrc/zcrm/core.so, and
# lua/ through a line hook (spec/support/coverage.lua, set as LUA_INIT_5_4 so
# child Lua processes count too). Prints the figures and the least-covered
# functions; coverage/html/ holds lcov's HTML report of the C core.
COV_DIR      = coverage
COV_CFLAGS   = -O0 -g --coverage -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden
COV_OBJS     = $(patsubst csrc/%.c,$(COV_DIR)/obj/csrc/%.o,$(CORE_SRCS))
COVERAGE_SPECS ?=
# The kill -9 test's window is too short for a child under the line hook.
COVERAGE_BUSTED_ARGS ?= --filter-out="killed with SIGKILL"

$(COV_DIR)/obj/csrc/%.o: csrc/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(COV_CFLAGS) -I$(LUA_INCDIR) $(CURL_CFLAGS) -c -o $@ $<

$(COV_DIR)/core.so: $(COV_OBJS)
	$(CC) -shared --coverage -o $@ $(COV_OBJS) $(CURL_LIBS) -lutf8proc

coverage: deps all $(HOST_TSAN) $(COV_DIR)/core.so
	@rm -rf $(COV_DIR)/lua $(COV_DIR)/html $(COV_DIR)/core.info && mkdir -p $(COV_DIR)/lua
	@find $(COV_DIR)/obj -name '*.gcda' -delete
	@rc=0; ZCRM_COVERAGE_CORE="$(CURDIR)/$(COV_DIR)/core.so" ZCRM_COVERAGE_DIR="$(CURDIR)/$(COV_DIR)/lua" \
	  LUA_INIT_5_4="@$(CURDIR)/spec/support/coverage.lua" \
	  $(LUA) /usr/bin/busted --ignore-lua --lua=$(LUA) $(COVERAGE_BUSTED_ARGS) $(COVERAGE_SPECS) || rc=$$?; \
	{ lcov -q --capture --directory $(COV_DIR)/obj --base-directory . --no-external \
	    --output-file $(COV_DIR)/core.info && \
	  genhtml -q --output-directory $(COV_DIR)/html $(COV_DIR)/core.info; } >$(COV_DIR)/lcov.log 2>&1 || \
	  { cat $(COV_DIR)/lcov.log; rc=1; }; \
	$(LUA) spec/support/coverage_report.lua $(COV_DIR) || rc=1; \
	[ $$rc = 0 ] || echo "coverage: the suite or the report failed (exit $$rc)"; exit $$rc

# The man page and the completion scripts are drawn from the CLI's flag table
# (lua/zcrm/cli/args.lua) by the work tree's own code, at install time.
ZCRM_HERE = $(LUA) -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path; \
  package.cpath = "csrc/?.so;" .. package.cpath'

install: $(CORE_SO) $(PROC_SO)
	install -d $(DESTDIR)$(LIBDIR)/zcrm $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(CORE_SO) $(DESTDIR)$(LIBDIR)/zcrm/core.so
	ln -sf core.so $(DESTDIR)$(LIBDIR)/zcrm/proc.so
	$(INSTALL_LUA)
	ZCRM_LUADIR='$(LUADIR)' ZCRM_LIBDIR='$(LIBDIR)' $(LUA) -e '$(SET_INSTALLED_PATHS)' \
	  <bin/zcrm >$(DESTDIR)$(BINDIR)/zcrm
	chmod 0755 $(DESTDIR)$(BINDIR)/zcrm
	if [ -f $(EMU_BIN) ]; then install -m 0755 $(EMU_BIN) $(DESTDIR)$(BINDIR)/zcrm-emulator; fi
	$(ZCRM_HERE) -e 'require "zcrm.cli"; io.write(require("zcrm.cli.manual").man_page())' \
	  >$(DESTDIR)$(MANDIR)/man1/zcrm.1
	$(LUA) bin/zcrm completion bash >$(DESTDIR)$(BASHCOMPDIR)/zcrm
	$(LUA) bin/zcrm completion zsh >$(DESTDIR)$(ZSHCOMPDIR)/_zcrm
	$(LUA) bin/zcrm completion fish >$(DESTDIR)$(FISHCOMPDIR)/zcrm.fish
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/zcrm.1 $(DESTDIR)$(BASHCOMPDIR)/zcrm \
	  $(DESTDIR)$(ZSHCOMPDIR)/_zcrm $(DESTDIR)$(FISHCOMPDIR)/zcrm.fish

# `luarocks make` (the rockspec's build.type is "make") runs this with the
# rock's directories: the core and the emulator are compiled straight into
# LIBDIR and BINDIR, so the work tree is left without object files; LuaRocks
# installs bin/zcrm itself, and puts both commands on the tree's bin/.
# zcrm/proc.so is a copy here, not a link: LuaRocks moves the rock's files
# one by one in no fixed order, and a link moved after core.so dangles.
rock-install:
	install -d $(DESTDIR)$(LIBDIR)/zcrm $(DESTDIR)$(BINDIR)
	$(CC) $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR) \
	  $(CURL_CFLAGS) $(LIBFLAG) -o $(DESTDIR)$(LIBDIR)/zcrm/core.so $(CORE_SRCS) $(CURL_LIBS) -lutf8proc
	cp $(DESTDIR)$(LIBDIR)/zcrm/core.so $(DESTDIR)$(LIBDIR)/zcrm/proc.so
	$(CC) $(EMU_CFLAGS) -o $(DESTDIR)$(BINDIR)/zcrm-emulator $(EMU_SRCS) $(EMU_LIBS)
	$(INSTALL_LUA)

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)/zcrm $(DESTDIR)$(LUADIR)/zcrm $(DESTDIR)$(BINDIR)/zcrm \
	  $(DESTDIR)$(BINDIR)/zcrm-emulator $(DESTDIR)$(MANDIR)/man1/zcrm.1 $(DESTDIR)$(BASHCOMPDIR)/zcrm \
	  $(DESTDIR)$(ZSHCOMPDIR)/_zcrm $(DESTDIR)$(FISHCOMPDIR)/zcrm.fish

clean:
	rm -f csrc/*.o emulator/*.o $(CORE_SO) $(EMU_BIN) $(HOST_BIN)
	rm -rf csrc/zcrm $(COV_DIR) doc/api

# {==== fuzzing, sanitizers (see fuzz/README.md and doc/reliability.md)
#
# Everything is built under fuzz/bin/ (ignored by git), never over the normal
# build, so `make asan` and `make fuzz` leave csrc/zcrm/core.so and
# bin/zcrm-emulator as they were.

SAN_CC       ?= clang
SAN_COMMON    = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -g -O1
FUZZ_DIR      = fuzz/bin
FUZZ_TARGETS  = validate request response undo changes emulator
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_CFLAGS   = $(SAN_COMMON) -fsanitize=fuzzer-no-link -std=c99 -Wall -Wextra \
                -D_POSIX_C_SOURCE=200809L -I$(LUA_INCDIR) $(CURL_CFLAGS)
FUZZ_CORE_OBJS = $(patsubst csrc/%.c,$(FUZZ_DIR)/obj/csrc/%.o,$(CORE_SRCS))
FUZZ_EMU_OBJS  = $(patsubst emulator/%.c,$(FUZZ_DIR)/obj/emulator/%.o,\
                   $(filter-out emulator/main.c emulator/server.c,$(EMU_SRCS)))
FUZZ_BINS      = $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))
ASAN_RT       := $(shell $(SAN_CC) -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
SAN_ENV        = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

$(FUZZ_DIR)/obj/csrc/%.o: csrc/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(SAN_CC) $(FUZZ_CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(FUZZ_DIR)/obj/emulator/%.o: emulator/%.c $(wildcard emulator/*.h)
	@mkdir -p $(@D)
	$(SAN_CC) $(FUZZ_CFLAGS) -D_GNU_SOURCE \
	  $(shell pkg-config --cflags libmicrohttpd libcjson 2>/dev/null) -c -o $@ $<

$(FUZZ_DIR)/fuzz_validate $(FUZZ_DIR)/fuzz_request $(FUZZ_DIR)/fuzz_response $(FUZZ_DIR)/fuzz_undo \
    $(FUZZ_DIR)/fuzz_changes: \
    $(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.h $(FUZZ_CORE_OBJS)
	$(SAN_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DZCRM_ROOT='"$(CURDIR)"' -o $@ $< \
	  $(FUZZ_CORE_OBJS) -llua$(LUA_VERSION) $(CURL_LIBS) -lutf8proc -lm -ldl -lpthread

$(FUZZ_DIR)/fuzz_emulator: fuzz/fuzz_emulator.c $(FUZZ_EMU_OBJS)
	$(SAN_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -D_GNU_SOURCE -o $@ $< $(FUZZ_EMU_OBJS) \
	  $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson) -lutf8proc -lz -lpthread -lm

# Each target runs FUZZ_SECONDS from its seeds (fuzz/corpus/T) plus what
# earlier runs found (fuzz/corpus-run/T, kept between runs, not in git).
# A crash, leak or broken contract fails the target; the input is saved as
# fuzz/bin/crash-T-*.
fuzz: deps $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus-run/$$t; \
	  dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  if ! $(SAN_ENV) $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -timeout=20 -rss_limit_mb=2560 -max_len=65536 $$dict $(FUZZ_FLAGS) \
	      -artifact_prefix=$(FUZZ_DIR)/crash-$$t- fuzz/corpus-run/$$t fuzz/corpus/$$t \
	      >$(FUZZ_DIR)/$$t.log 2>&1; then \
	    tail -60 $(FUZZ_DIR)/$$t.log; echo "fuzz: $$t FAILED (log: $(FUZZ_DIR)/$$t.log)"; exit 1; \
	  fi; \
	  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' $(FUZZ_DIR)/$$t.log | tr '\n' ' '; echo; \
	done


# ---- The C host under ThreadSanitizer (fuzz/bin/tsan/host): host.c and the
# core's sources instrumented; spec/host_spec.lua runs it with 4 threads, and
# `make tsan` runs it on its own against a fresh emulator.
$(HOST_TSAN): examples/host/host.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(SAN_CC) -fsanitize=thread -g -O1 -std=c99 -Wall -Wextra -D_POSIX_C_SOURCE=200809L \
	  -I$(LUA_INCDIR) $(CURL_CFLAGS) -o $@ examples/host/host.c $(CORE_SRCS) $(HOST_LIBS)

tsan: deps all $(HOST_TSAN)
	$(BUSTED) spec/host_spec.lua

# ---- make asan: the whole busted suite with core.so and the emulator built
# with ASan+UBSan under fuzz/bin/asan/. lua5.4 (uninstrumented) gets the ASan
# runtime through fuzz/san/lua5.4, first on PATH; LUA_INIT_5_4 preloads the
# sanitized core.so for every Lua process, children included (bin/zcrm);
# ZCRM_EMULATOR points the spec helper at the sanitized emulator. Reports go
# to fuzz/bin/asan/logs/, which must stay empty.
ASAN_DIR      = fuzz/bin/asan
ASAN_CORE     = $(ASAN_DIR)/csrc/zcrm/core.so
ASAN_EMU      = $(ASAN_DIR)/bin/zcrm-emulator
ASAN_CFLAGS   = $(SAN_COMMON) -std=c99 -Wall -Wextra -D_POSIX_C_SOURCE=200809L
ASAN_SPECS   ?=
# Extra busted arguments (a --filter to run a part); none by default: the whole
# suite runs, no spec depends on how fast the instrumented code is.
ASAN_BUSTED_ARGS ?=

$(ASAN_DIR)/obj/csrc/%.o: csrc/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(SAN_CC) $(ASAN_CFLAGS) -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(CURL_CFLAGS) -c -o $@ $<

$(ASAN_DIR)/obj/emulator/%.o: emulator/%.c $(wildcard emulator/*.h)
	@mkdir -p $(@D)
	$(SAN_CC) $(ASAN_CFLAGS) -D_GNU_SOURCE $(shell pkg-config --cflags libmicrohttpd libcjson 2>/dev/null) -c -o $@ $<

$(ASAN_CORE): $(patsubst csrc/%.c,$(ASAN_DIR)/obj/csrc/%.o,$(CORE_SRCS))
	@mkdir -p $(@D)
	$(SAN_CC) -shared $(SAN_COMMON) -o $@ $^ $(CURL_LIBS) -lutf8proc

$(ASAN_EMU): $(patsubst emulator/%.c,$(ASAN_DIR)/obj/emulator/%.o,$(EMU_SRCS))
	@mkdir -p $(@D)
	$(SAN_CC) $(SAN_COMMON) -o $@ $^ $(EMU_LIBS)

$(ASAN_DIR)/unpreload.so: fuzz/san/unpreload.c
	@mkdir -p $(@D)
	$(SAN_CC) -shared -fPIC -O1 -o $@ $<

$(ASAN_DIR)/dtls_probe_lib.so: fuzz/san/dtls_probe_lib.c
	@mkdir -p $(@D)
	$(SAN_CC) -shared -fPIC -O1 -o $@ $<

$(ASAN_DIR)/dtls_probe: fuzz/san/dtls_probe.c $(ASAN_DIR)/dtls_probe_lib.so
	$(SAN_CC) $(ASAN_CFLAGS) -o $@ $< -ldl

# intercept_tls_get_addr=0: the ASan runtime of LLVM <= 16 can misread a
# dynamic TLS block as carrying glibc 2.19's header, and LeakSanitizer's tracer
# then crashes at the process's exit ("Tracer caught signal 11"); turning the
# interception off is the fix. fuzz/san/dtls_probe.c reproduces the crash and
# runs first, so a runtime that ignores the option fails here, not at random
# (doc/reliability.md, "LeakSanitizer's tracer").
ASAN_OPTS = halt_on_error=1:detect_leaks=1:intercept_tls_get_addr=0:suppressions=$(CURDIR)/fuzz/san/lsan.supp

asan: deps all $(HOST_TSAN) $(ASAN_CORE) $(ASAN_EMU) $(ASAN_DIR)/unpreload.so $(ASAN_DIR)/dtls_probe
	@test -f "$(ASAN_RT)" || { echo "asan: no $(ASAN_RT) (install libclang-rt-14-dev)"; exit 1; }
	@ASAN_OPTIONS="$(ASAN_OPTS)" $(ASAN_DIR)/dtls_probe $(CURDIR)/$(ASAN_DIR)/dtls_probe_lib.so || \
	  { echo "asan: LeakSanitizer's tracer crashes on a misread TLS block even with intercept_tls_get_addr=0 (fuzz/san/dtls_probe.c)"; exit 1; }
	@rm -rf $(ASAN_DIR)/logs && mkdir -p $(ASAN_DIR)/logs
	@start=$$(date +%s); rc=0; \
	PATH="$(CURDIR)/fuzz/san:$$PATH" \
	ZCRM_ASAN_PRELOAD="$(ASAN_RT) $(CURDIR)/$(ASAN_DIR)/unpreload.so" \
	LUA_INIT_5_4="@$(CURDIR)/fuzz/san/asan_init.lua" ZCRM_ASAN_CORE="$(CURDIR)/$(ASAN_CORE)" \
	ZCRM_EMULATOR="$(CURDIR)/$(ASAN_EMU)" LUAROCKS_CONFIG="$(CURDIR)/fuzz/san/luarocks-config.lua" \
	ASAN_OPTIONS="$(ASAN_OPTS):log_path=$(CURDIR)/$(ASAN_DIR)/logs/asan" \
	LSAN_OPTIONS="suppressions=$(CURDIR)/fuzz/san/lsan.supp:print_suppressions=0" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(ASAN_DIR)/logs/ubsan" \
	  lua5.4 /usr/bin/busted --ignore-lua --lua=lua5.4 -o utfTerminal $(ASAN_BUSTED_ARGS) $(ASAN_SPECS) || rc=$$?; \
	echo "asan: busted exit $$rc in $$(( $$(date +%s) - start )) s"; \
	if ls $(ASAN_DIR)/logs/* >/dev/null 2>&1; then \
	  for f in $(ASAN_DIR)/logs/*; do echo "== $$f"; head -80 "$$f"; done; \
	  echo "asan: sanitizer reports above"; exit 1; fi; \
	[ $$rc = 0 ] && echo "asan: 0 sanitizer reports (ASan, UBSan, LeakSanitizer), suite passed"; exit $$rc

# ---- make valgrind: the suite under memcheck with Lua's GC made aggressive
# (setpause 100: a new cycle starts as soon as one ends, Lua 5.4 manual
# §2.5.1), and the emulators the specs start under memcheck too. The whole
# suite; only the Lua process at the top runs under valgrind (child zcrm
# commands, curl and luarocks do not: make asan covers the zcrm children).
VALGRIND_SPECS ?=
# As ASAN_BUSTED_ARGS: none by default.
VALGRIND_BUSTED_ARGS ?=
VALGRIND      = valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                --show-leak-kinds=definite --track-origins=no --num-callers=30 \
                --suppressions=$(CURDIR)/fuzz/san/valgrind.supp

valgrind: deps all $(HOST_TSAN)
	@rm -rf $(FUZZ_DIR)/valgrind && mkdir -p $(FUZZ_DIR)/valgrind
	@start=$$(date +%s); rc=0; \
	LUA_INIT_5_4='collectgarbage("setpause", 100)' \
	ZCRM_EMULATOR_WRAPPER="$(VALGRIND) -q --log-file=$(CURDIR)/$(FUZZ_DIR)/valgrind/emulator.%p" \
	  $(VALGRIND) --log-file=$(FUZZ_DIR)/valgrind/lua.%p \
	  lua5.4 /usr/bin/busted --ignore-lua --lua=lua5.4 -o utfTerminal $(VALGRIND_BUSTED_ARGS) $(VALGRIND_SPECS) || rc=$$?; \
	echo "valgrind: busted exit $$rc in $$(( $$(date +%s) - start )) s"; \
	grep -hE "ERROR SUMMARY|definitely lost" $(FUZZ_DIR)/valgrind/lua.* | sed 's/^==[0-9]*== */valgrind: lua5.4: /'; \
	echo "valgrind: $$(ls $(FUZZ_DIR)/valgrind/emulator.* 2>/dev/null | wc -l) emulator runs under memcheck (-q: a report is an error)"; \
	bad=$$(grep -lE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]" $(FUZZ_DIR)/valgrind/lua.* 2>/dev/null; \
	       find $(FUZZ_DIR)/valgrind -name 'emulator.*' -size +0 2>/dev/null); \
	if [ -n "$$bad" ]; then \
	  for f in $$bad; do echo "== $$f"; head -120 "$$f"; done; \
	  echo "valgrind: errors above"; exit 1; fi; \
	[ $$rc = 0 ] && echo "valgrind: 0 errors, 0 definitely lost"; exit $$rc

# }====
