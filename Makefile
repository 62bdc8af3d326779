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
CORE_OBJS = $(CORE_SRCS:.c=.o)
CORE_SO   = csrc/zcrm/core.so

EMU_SRCS  = $(wildcard emulator/*.c)
EMU_OBJS  = $(EMU_SRCS:.c=.o)
EMU_BIN   = bin/zcrm-emulator
EMU_CFLAGS = $(OPT) $(WARN) -D_GNU_SOURCE $(SAN_FLAGS) \
             $(shell pkg-config --cflags libmicrohttpd libcjson 2>/dev/null)
EMU_LIBS  = $(shell pkg-config --libs libmicrohttpd libcjson 2>/dev/null || echo -lmicrohttpd -lcjson) -lpthread -lm

# Debian packages the build, the tests and the demo need (see README, "Dependencies").
DEB_PACKAGES = make gcc pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
               libutf8proc-dev lua-cjson lua-busted lua-check libmicrohttpd-dev \
               libcjson-dev curl luarocks

.PHONY: all deps test demo install uninstall lint clean bench asan valgrind fuzz rock

all: $(CORE_SO) $(EMU_BIN)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root, or install:$$missing" >&2; exit 1; fi; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

csrc/%.o: csrc/%.c csrc/zcrm.h csrc/errors.h
	$(CC) $(CFLAGS) $(SAN_FLAGS) -I$(LUA_INCDIR) $(CURL_CFLAGS) -c -o $@ $<

$(CORE_SO): $(CORE_OBJS)
	@mkdir -p csrc/zcrm
	$(CC) $(LIBFLAG) $(SAN_FLAGS) -o $@ $(CORE_OBJS) $(CURL_LIBS) -lutf8proc

emulator/%.o: emulator/%.c $(wildcard emulator/*.h)
	$(CC) $(EMU_CFLAGS) -c -o $@ $<

$(EMU_BIN): $(EMU_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $(EMU_OBJS) $(EMU_LIBS)

test: deps all
	$(BUSTED)

bench: deps all
	@sh bench/run.sh

lint: deps
	luacheck lua spec bin/zcrm examples bench

demo: deps all
	@sh examples/demo.sh

install: $(CORE_SO)
	install -d $(DESTDIR)$(LIBDIR)/zcrm $(DESTDIR)$(LUADIR)/zcrm $(DESTDIR)$(BINDIR)
	install -m 0755 $(CORE_SO) $(DESTDIR)$(LIBDIR)/zcrm/core.so
	install -m 0644 lua/zcrm/*.lua $(DESTDIR)$(LUADIR)/zcrm/
	install -m 0755 bin/zcrm $(DESTDIR)$(BINDIR)/zcrm
	if [ -f $(EMU_BIN) ]; then install -m 0755 $(EMU_BIN) $(DESTDIR)$(BINDIR)/zcrm-emulator; fi

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)/zcrm $(DESTDIR)$(LUADIR)/zcrm $(DESTDIR)$(BINDIR)/zcrm \
	  $(DESTDIR)$(BINDIR)/zcrm-emulator

clean:
	rm -f csrc/*.o emulator/*.o $(CORE_SO) $(EMU_BIN)
	rm -rf csrc/zcrm
