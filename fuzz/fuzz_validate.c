/*
** fuzz_validate.c: the C validator (csrc/validate.c, csrc/error.c) driven
** through a Lua state.
**
** Input: byte 0 picks the function, byte 1 (when its high bit is set) the
** allocation to fail and (bit 6) the weak mode below, the rest is
** zf_push_value's encoding of the argument (and of `what` for check_token,
** of the fields for core.error), then in weak mode one byte: the
** collection cycle at which the argument's tables lose their last strong
** references.
**
** Besides ASan/UBSan findings, the target fails (abort) when:
** - a function raises for an argument that API.md says it answers with
**   `nil, err` (anything but "not enough memory" under failure injection);
** - a result breaks the contract: prepare_update and validate_update
**   disagree; a cleaned update carries a label that is not 1-25 code points
**   of UTF-8 without controls, or a profile id that is not 1-19 digits; a
**   module segment or base URL that could smuggle a byte into a request;
**   an error object that is not a zcrm.error with a kind, a code and a
**   one-line tostring.
*/
#include "fuzz_lua.h"

/* The contract, checked in Lua: returns nothing, raises on a violation. */
static const char checker[] =
"local core, cjson = require 'zcrm.core', require 'cjson'\n"
"local KINDS = { validation = true, config = true }\n"
"local function check_err(err, kinds)\n"
"  assert(core.is_error(err), 'not a zcrm.error: ' .. tostring(err))\n"
"  assert(getmetatable(err).__name == 'zcrm.error')\n"
"  assert(type(err.code) == 'string' and (#err.code > 0 or kinds), 'no code')\n"
"  assert((kinds or KINDS)[err.kind], 'kind ' .. tostring(err.kind))\n"
"  if not kinds then assert(err.retryable == false, 'retryable local fault') end\n"
"  local s = tostring(err)\n"
"  -- one line whatever the code, field or message hold (F3)\n"
"  assert(not s:find('[\\r\\n%z]'), 'tostring has CR/LF/NUL: ' .. s)\n"
"end\n"
"local function label_ok(s)\n"
"  if type(s) ~= 'string' then return false end\n"
"  local n = utf8.len(s)\n"
"  return n and n >= 1 and n <= 25 and not s:find('%c') and s:find('[^ ]') ~= nil\n"
"end\n"
"local function id_ok(s)\n"
"  return type(s) == 'string' and #s <= 19 and s:match('^[1-9]%d*$') ~= nil\n"
"end\n"
"return function(op, arg, what, ok, a, b, weak)\n"
"  if op == 0 or op == 1 then\n"
"    -- weak mode: the argument lost entries during the call, so the two\n"
"    -- functions saw different tables; the cleaned copy must still be valid\n"
"    local v = not weak and core.validate_update(arg)\n"
"    if op == 0 then\n"
"      if a == nil then check_err(b); assert(weak or v == nil, 'validate_update accepts what prepare_update refuses')\n"
"        return end\n"
"      assert(weak or v == true, 'validate_update refuses what prepare_update accepts')\n"
"      assert(type(a) == 'table' and a ~= arg, 'prepare_update returned no new table')\n"
"      local n = 0\n"
"      for k, val in pairs(a) do n = n + 1\n"
"        if k == 'plural_label' or k == 'singular_label' then assert(label_ok(val), k .. ': bad label kept')\n"
"        else assert(k == 'profiles', 'unknown key kept: ' .. tostring(k)) end\n"
"      end\n"
"      assert(n > 0, 'empty update accepted')\n"
"      if a.profiles ~= nil then\n"
"        assert(#a.profiles >= 1 and #a.profiles <= 203, 'profiles count')\n"
"        local seen = {}\n"
"        for _, p in ipairs(a.profiles) do\n"
"          assert(type(p) == 'table')\n"
"          local key = p.id or p.name\n"
"          if p.id ~= nil then assert(id_ok(p.id), 'bad id kept: ' .. tostring(p.id)); assert(p.name == nil)\n"
"          else assert(type(p.name) == 'string' and #p.name >= 1 and #p.name <= 50 and utf8.len(p.name)\n"
"                      and not p.name:find('%c'), 'bad name kept') end\n"
"          assert(p._delete == nil or p._delete == core.null, '_delete not null')\n"
"          assert(not seen[key], 'duplicate kept'); seen[key] = true\n"
"        end\n"
"      end\n"
"      assert(cjson.encode({ modules = { a } }))\n"
"    else\n"
"      if a == nil then check_err(b) else assert(a == true) end\n"
"    end\n"
"  elseif op == 2 then\n"
"    if a == nil then check_err(b); assert(b.code == 'INVALID_MODULE') return end\n"
"    assert(type(a) == 'string' and (id_ok(a) or (#a <= 100 and a:match('^[A-Za-z][A-Za-z0-9_]*$'))),\n"
"      'bad module segment: ' .. a)\n"
"  elseif op == 3 then\n"
"    if a == nil then check_err(b); assert(b.code == 'INVALID_URL')\n"
"      -- the seeds carry the marker zq7x in user info, host, path and query\n"
"      assert(not (arg:find('zq7x', 1, true) and tostring(b):find('zq7x', 1, true)), 'message quotes the URL')\n"
"      return end\n"
"    assert(type(a) == 'string' and a:match('^https?://[^/?#@%s%c]+$'), 'bad base URL: ' .. a)\n"
"    assert(not a:find('[\\128-\\255]'), 'non-ASCII base URL')\n"
"    if a:match('^http://') then\n"
"      local h = a:match('^http://([^/]+)')\n"
"      assert(h:match('^127%.') or h:match('^%[') or h:match('^localhost'), 'http off loopback: ' .. a)\n"
"    end\n"
"  elseif op == 4 then\n"
"    if a == nil then check_err(b, nil, what); assert(b.code == 'INVALID_TOKEN_FORMAT')\n"
"      if type(arg) == 'string' and arg:find('zq7x', 1, true) and not (type(what) == 'string' and what:find('zq7x', 1, true)) then\n"
"        assert(not tostring(b):find('zq7x', 1, true), 'message quotes the token') end\n"
"      return end\n"
"    assert(a == true and type(arg) == 'string' and #arg <= 4096 and arg:match('^[\\33-\\126]+$'), 'bad token accepted')\n"
"  elseif op == 5 then\n"
"    assert(type(a) == 'string' and a:match('^[%w%-%._~%%]*$'), 'url_escape left a byte')\n"
"  elseif op == 6 then\n"
"    -- core.error keeps the caller's kind, else the catalogue's, else api\n"
"    if ok then\n"
"      local kinds = { api = true }\n"
"      for _, e in pairs(core.catalogue) do kinds[e.kind] = true end\n"
"      local given = type(arg) == 'table' and rawget(arg, 'kind')\n"
"      if given ~= nil and given == given then kinds[given] = true end\n"
"      check_err(a, kinds)\n"
"    end\n"
"  end\n"
"end\n";

/* Weak mode: every table of the argument gets weak values (or keys and
** values), and a finalizer drops the only strong references to them at
** the n-th collection cycle; the collector runs a full cycle at every
** allocation point (pause 0: Lua's own HARDMEMTESTS idea). So entries
** vanish at any allocation inside the function under test: C that keeps a
** pointer into a value across an allocation reads freed memory (ASan). */
static const char weakener[] =
"return function(v, n)\n"
"  local hold, seen = {}, {}\n"
"  local function walk(t, d)\n"
"    if type(t) ~= 'table' or seen[t] or d > 8 then return end\n"
"    seen[t] = true\n"
"    hold[#hold + 1] = t\n"
"    for k, x in next, t do walk(k, d + 1); walk(x, d + 1) end\n"
"    setmetatable(t, { __mode = n % 2 == 0 and 'v' or 'kv' })\n"
"  end\n"
"  walk(v, 0)\n"
"  local ticks, mt = 0, {}\n"
"  mt.__gc = function()\n"
"    ticks = ticks + 1\n"
"    if ticks >= n then for i = #hold, 1, -1 do hold[i] = nil end\n"
"    else setmetatable({}, mt) end\n"
"  end\n"
"  setmetatable({}, mt)\n"
"  -- the caller keeps `hold` on its stack: reachable only from a finalizer,\n"
"  -- its tables would count as unreachable for weak tables at once\n"
"  return hold\n"
"end\n";

static int check_ref = LUA_NOREF, weaken_ref = LUA_NOREF;

static void gc_every_allocation(lua_State *L, int on) {
  if (on) lua_gc(L, LUA_GCINC, 1, 1000, 20);
  else lua_gc(L, LUA_GCINC, 200, 100, 13);    /* Lua's defaults */
  lua_gc(L, LUA_GCCOLLECT);                   /* the new pause applies */
}

/* Called through lua_pcall: decode, call, check. */
static int run (lua_State *L) {
  zf_in *in = (zf_in *)lua_touserdata(L, 1);
  int op = zf_u8(in) % 7, fail = zf_u8(in), status;
  /* weak mode only where the argument is a table the C keeps pointers
  ** into: it costs a full collection per allocation */
  int weak = (fail & 0x40) && (op == 0 || op == 1 || op == 6);
  static const char *const fn[] = {
    "prepare_update", "validate_update", "check_module", "check_base_url",
    "check_token", "url_escape", "error"
  };
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);          /* 1: checker */
  lua_pushinteger(L, op);                                /* 2: op */
  if (op == 3 || op == 5) {                              /* 3: the argument */
    size_t got;
    const char *s = zf_bytes(in, zf_len(in), &got);
    lua_pushlstring(L, s, got);
  } else zf_push_value(L, in, 0);
  if (op == 4) zf_push_value(L, in, 0); else lua_pushnil(L);  /* 4: what */
  luaL_requiref(L, "zcrm.core", luaopen_zcrm_core, 0);   /* cached */
  lua_getfield(L, -1, fn[op]);
  lua_remove(L, -2);
  lua_pushvalue(L, 3);
  if (op == 4) lua_pushvalue(L, 4);
  if (weak) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, weaken_ref);
    lua_pushvalue(L, 3);
    lua_pushinteger(L, zf_u8(in) % 64 + 1);
    lua_call(L, 2, 1);            /* the strong references, below the call */
    lua_insert(L, op == 4 ? -4 : -3);
    gc_every_allocation(L, 1);    /* from here: the weakener's garbage is gone */
  }
  if (fail & 0x80) zf_fail_countdown = fail & 0x3f;
  status = lua_pcall(L, op == 4 ? 2 : 1, 2, 0);
  zf_fail_countdown = -1;
  if (weak) {
    gc_every_allocation(L, 0);
    if (status == LUA_OK) lua_remove(L, -3);               /* hold */
  }
  if (status == LUA_ERRMEM) return 0;                    /* allowed */
  if (status != LUA_OK) {
    /* only core.error may raise (a fields table without a string code);
    ** check_token raises for a `what` that is not a string */
    if (op == 6 || op == 4) return 0;
    return luaL_error(L, "%s raised: %s", fn[op], lua_tostring(L, -1));
  }
  lua_pushboolean(L, 1);          /* ok */
  lua_insert(L, -3);
  lua_pushboolean(L, weak);
  lua_call(L, 7, 0);              /* checker(op, arg, what, ok, a, b, weak) */
  return 0;
}

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  lua_State *L = zf_init(0);
  (void)argc; (void)argv;
  check_ref = zf_ref_chunk(L, checker, NULL);
  weaken_ref = zf_ref_chunk(L, weakener, NULL);
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  lua_State *L = zf_L;
  zf_in in;
  zf_in_init(&in, data, size);
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, &in);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    gc_every_allocation(L, 0);    /* run() raised between the two calls */
    /* the checker's memory error under injection is not a finding */
    if (strcmp(lua_tostring(L, -1), "not enough memory") != 0)
      zf_die(L, "contract broken");
  }
  zf_finish_input(L);
  return 0;
}
