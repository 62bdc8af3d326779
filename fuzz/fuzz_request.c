/*
** fuzz_request.c: request, URL and header building (csrc/transfer.c,
** csrc/multi.c): multi:start with a fuzzed method, URL, header list, body
** and timeouts, then cancel. Nothing is ever performed, so no input can
** reach the network.
**
** Input: byte 0: bit 0 = start on a fresh multi made with fuzzed options
** (ca_file, proxy, user_agent, max_response_bytes), bit 1 = a second
** request on the same multi, bit 2 = close the multi with the requests
** running instead of cancelling them; byte 1: allocation to fail (high bit
** set); then zf_push_value encodings of method, url, headers, body,
** timeout, connect_timeout (each any Lua value, usually a string or list).
**
** Fails (abort) when start raises for anything API.md does not list as
** misuse, when a refused URL or header is quoted in the error message (the
** seeds carry the marker "zq7x" in both; no message template has it), when
** a URL with CR/LF/space/control/non-ASCII or a header with CR/LF/NUL is
** accepted, or when a cancelled request does not read as CANCELLED.
*/
#include "fuzz_lua.h"

static const char driver[] =
"local core = require 'zcrm.core'\n"
"local shared = core.new_multi {}\n"
"local function is_misuse(msg)\n"
"  msg = tostring(msg)\n"
"  return msg == 'not enough memory' or msg:find('bad argument', 1, true) ~= nil\n"
"    or msg:find('bad option', 1, true) ~= nil or msg:find('bad field', 1, true) ~= nil\n"
"end\n"
"local function method_ok(m) return type(m) == 'string' and #m >= 1 and #m <= 16 and m:match('^%u+$') end\n"
"local function headers_ok(h)\n"
"  if type(h) ~= 'table' then return h == nil end\n"
"  for k, v in pairs(h) do if type(k) ~= 'number' or type(v) ~= 'string' then return nil end end\n"
"  return true\n"
"end\n"
"local function timeout_ok(t) return t == nil or (type(t) == 'number' and t > 0) end\n"
"local function start(multi, spec)\n"
"  local ok, req, err = pcall(multi.start, multi, spec)\n"
"  if not ok then\n"
"    if is_misuse(req) then return nil end\n"
"    -- start raises only for misuse of its documented fields\n"
"    assert(not (method_ok(spec.method) and type(spec.url) == 'string' and headers_ok(spec.headers)\n"
"      and (spec.body == nil or type(spec.body) == 'string') and timeout_ok(spec.timeout)\n"
"      and timeout_ok(spec.connect_timeout)), 'start raised for valid types: ' .. tostring(req))\n"
"    return nil\n"
"  end\n"
"  if req == nil then\n"
"    assert(core.is_error(err), 'start: nil without an error object')\n"
"    assert(err.code == 'INVALID_URL' or err.code == 'INVALID_HEADER', 'start: code ' .. tostring(err.code))\n"
"    local text = tostring(err)\n"
"    -- the seeds carry the marker zq7x in URLs and header values\n"
"    assert(not text:find('zq7x', 1, true), 'message quotes the URL or a header')\n"
"    return nil\n"
"  end\n"
"  assert(not spec.url:find('[%s%c\\128-\\255]'), 'URL with a space, control or non-ASCII byte accepted')\n"
"  for _, h in ipairs(spec.headers or {}) do\n"
"    assert(not h:find('[\\r\\n%z]'), 'header with CR/LF/NUL accepted')\n"
"    assert(h:match('^[^:]+:'), 'header without a name accepted')\n"
"  end\n"
"  assert(req:done() == false and req:result() == nil)\n"
"  assert(next(req:info()) == nil)\n"
"  return req\n"
"end\n"
"local shared_closed = false\n"
"return function(flags, method, url, headers, body, timeout, ctimeout, opts)\n"
"  -- an input may close the shared multi; the next one gets a new one (retried\n"
"  -- until made: an injected allocation failure may stop new_multi)\n"
"  if shared_closed then shared = core.new_multi {}; shared_closed = false end\n"
"  -- requests an injected failure stopped the driver from cancelling stay\n"
"  -- anchored (API.md): start over rather than count them against this input\n"
"  if shared:running() > 0 then shared:close(); shared = core.new_multi {} end\n"
"  local multi = shared\n"
"  if flags & 1 == 1 then\n"
"    local ok, m = pcall(core.new_multi, opts)\n"
"    if not ok then assert(is_misuse(m) or type(opts) ~= 'table', 'new_multi: ' .. tostring(m)) return end\n"
"    multi = m\n"
"  end\n"
"  local spec = { method = method, url = url, headers = headers, body = body,\n"
"                 timeout = timeout, connect_timeout = ctimeout }\n"
"  local reqs = { start(multi, spec) }\n"
"  if flags & 2 == 2 then reqs[#reqs + 1] = start(multi, spec) end\n"
"  assert(multi:running() == #reqs, 'running ' .. multi:running() .. ' ~= ' .. #reqs)\n"
"  multi:timeout()\n"
"  if flags & 4 == 4 then shared_closed = multi == shared; multi:close() else for _, r in ipairs(reqs) do r:cancel(); r:cancel() end end\n"
"  for _, r in ipairs(reqs) do\n"
"    assert(r:done(), 'not done after cancel')\n"
"    local res, err = r:result()\n"
"    assert(res == nil and core.is_error(err) and err.code == 'CANCELLED', 'cancelled request reads ' .. tostring(res or err))\n"
"  end\n"
"  assert(multi:running() == 0, 'requests left running')\n"
"  if multi ~= shared then multi:close() end\n"
"end\n";

static int driver_ref = LUA_NOREF;

/* Options for a fresh multi: the documented ones, fuzzed; verbose never
** (it would print), ca_file a path that exists or not. */
static void push_opts (lua_State *L, zf_in *in) {
  static const char *const cas[] = {
    NULL, "/etc/ssl/certs/ca-certificates.crt", "/nonexistent/ca.pem", "/dev/null",
  };
  uint8_t sel = zf_u8(in);
  lua_createtable(L, 0, 4);
  if (cas[sel & 3]) { lua_pushstring(L, cas[sel & 3]); lua_setfield(L, -2, "ca_file"); }
  if (sel & 4) { zf_push_value(L, in, 5); lua_setfield(L, -2, "proxy"); }
  if (sel & 8) { zf_push_value(L, in, 5); lua_setfield(L, -2, "user_agent"); }
  if (sel & 16) { zf_push_value(L, in, 5); lua_setfield(L, -2, "max_response_bytes"); }
}

static int run (lua_State *L) {
  zf_in *in = (zf_in *)lua_touserdata(L, 1);
  int flags = zf_u8(in), fail = zf_u8(in), k, status;
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_pushinteger(L, flags & 7);
  for (k = 0; k < 6; k++) zf_push_value(L, in, 0);
  if (lua_type(L, 4) != LUA_TSTRING) {      /* url: mostly a string */
    size_t got;
    const char *s = zf_bytes(in, zf_len(in), &got);
    lua_pushlstring(L, s, got);
    lua_replace(L, 4);
  }
  if (flags & 1) push_opts(L, in); else lua_pushnil(L);
  if (fail & 0x80) zf_fail_countdown = fail & 0x7f;
  status = lua_pcall(L, 8, 0, 0);
  zf_fail_countdown = -1;
  if (status == LUA_ERRMEM) return 0;
  if (status != LUA_OK) return lua_error(L);
  return 0;
}

int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc; (void)argv;
  driver_ref = zf_ref_chunk(zf_init(0), driver, NULL);
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  return zf_run_input(run, data, size);
}
