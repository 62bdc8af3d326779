#!/bin/sh
# make bench: the figures of bench/README.md, printed as they come and
# written with a description of the machine to bench/results/latest.txt.
#
#   1. bulk wall time against the ideal        bench/bulk_wall.lua
#   2. client CPU per update: zcrm, curl, SDK  bench/cpu_per_update.lua
#   3. instructions per update (callgrind)     bench/instructions.lua
#   4. peak RSS against plan size              bench/memory.lua
#   5. validate_update: C against plain Lua    bench/validate_throughput.lua
#   6. three orgs at once against one org      bench/orgs_wall.lua
#   7. batch against single updates            bench/batch_vs_single.lua
#   8. event-loop hosts: wait, poll, pending   bench/event_loop.lua
#   9. poll(0) with nothing ready              bench/poll_cost.lua
#  10. 50 orgs at once against one org         bench/orgs_scale.lua
#
# It installs what it needs and lacks: valgrind (apt-get, as root), the helper
# bench/.build/rusage (cc), and Zoho's Node.js SDK into bench/node_modules
# (npm ci, from bench/package-lock.json). Whatever cannot be installed (no
# network, not root) skips its part with a message; the rest still runs.
# Run from anywhere; it works in the repository root. Expects `make` first
# (make bench does it).
set -u
cd "$(dirname "$0")/.." || exit 1

OUT=bench/results/latest.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p bench/results bench/.build
START=$(date +%s)
STATUS=0

say() { printf '%s\n' "$*" | tee -a "$TMP/report"; }

[ -f csrc/zcrm/core.so ] && [ -x bin/zcrm-emulator ] || {
  echo "bench: build first (make), or run make bench" >&2
  exit 1
}

# {==== set-up

# apt_install PACKAGE...: installs the missing Debian packages when root.
apt_install() {
  missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "bench: not root, cannot install:$missing" >&2
    return 1
  fi
  echo "bench: installing:$missing"
  (apt-get update -qq >/dev/null 2>&1 || true)
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1
}

command -v valgrind >/dev/null 2>&1 || apt_install valgrind ||
  echo "bench: valgrind missing and not installable: figure 3 will be skipped"
command -v cc >/dev/null 2>&1 || apt_install gcc || true
cc -O2 -Wall -Wextra -o bench/.build/rusage bench/rusage.c || {
  echo "bench: cannot build bench/.build/rusage (a C compiler is needed)" >&2
  exit 1
}

# Zoho's Node.js SDK (figure 2), pinned by bench/package-lock.json.
SDK_NOTE=""
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm || true
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SDK_NOTE="node/npm not installed and not installable: the SDK column of figure 2 is skipped"
elif [ -f bench/node_modules/@zohocrm/nodejs-sdk-8.0/package.json ] &&
     grep -q '"version": "2.0.0"' bench/node_modules/@zohocrm/nodejs-sdk-8.0/package.json; then
  :
else
  echo "bench: installing @zohocrm/nodejs-sdk-8.0 into bench/node_modules (npm ci)"
  if ! (cd bench && timeout 180 npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1; then
    rm -rf bench/node_modules
    why=$(grep -m 1 -E 'npm (error|ERR!) code' "$TMP/npm.log" | sed 's/^npm [^ ]* code //')
    SDK_NOTE="npm ci failed (${why:-see npm's log}; is the npm registry reachable?): the SDK column of figure 2 is skipped"
  fi
fi
[ -n "$SDK_NOTE" ] && echo "bench: $SDK_NOTE"

# }====

# {==== the machine

lua_version=$(lua5.4 -v 2>&1 | head -n 1)
libcurl_version=$(lua5.4 -e 'package.cpath = "./csrc/?.so;" .. package.cpath; print(require("zcrm.core").curl_version)' 2>/dev/null)
{
  echo "zcrm benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- lua csrc 2>/dev/null || echo ' (lua/ or csrc/ modified)')"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, $(uname -sr), load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
  echo "versions: $lua_version; libcurl $libcurl_version; $(curl --version | head -n 1 | cut -d ' ' -f 1-2); node $(node --version 2>/dev/null || echo 'none'); @zohocrm/nodejs-sdk-8.0 $(sed -n 's/^ *"version": "\(.*\)",/\1/p' bench/node_modules/@zohocrm/nodejs-sdk-8.0/package.json 2>/dev/null || echo 'not installed'); $(valgrind --version 2>/dev/null || echo 'no valgrind')"
} | tee -a "$TMP/report"

# }====

# figure NUMBER TITLE COMMAND...: runs one figure, its output into the report.
figure() {
  n=$1 title=$2
  shift 2
  say ""
  say "== $n. $title"
  t0=$(date +%s)
  "$@" >"$TMP/fig" 2>&1
  rc=$?
  tee -a "$TMP/report" <"$TMP/fig"
  if [ $rc -ne 0 ]; then
    say "(figure $n failed: exit $rc)"
    STATUS=1
  fi
  say "($(($(date +%s) - t0)) s)"
}

figure 1 "Bulk wall time vs ideal (200 updates, latency 100 ms, concurrency 10)" \
  lua5.4 bench/bulk_wall.lua 200 100 10
if [ -n "$SDK_NOTE" ]; then
  figure 2 "Client CPU per update: zcrm, curl (Zoho's Node.js SDK skipped: $SDK_NOTE)" \
    lua5.4 bench/cpu_per_update.lua 2000 7 --no-sdk
else
  figure 2 "Client CPU per update: zcrm, curl, Zoho's Node.js SDK" lua5.4 bench/cpu_per_update.lua 2000 7
fi
figure 3 "Instructions per update (callgrind)" lua5.4 bench/instructions.lua 200
figure 4 "Memory vs plan size" lua5.4 bench/memory.lua 3
figure 5 "Validation throughput: C core vs plain Lua" lua5.4 bench/validate_throughput.lua 1
figure 6 "Many orgs: 3 orgs x 100 updates vs 1 org (latency 100 ms, concurrency 10 per org)" \
  lua5.4 bench/orgs_wall.lua 100 100 10 3
figure 7 "Batch vs single updates (200 updates, latency 100 ms, concurrency 10)" \
  lua5.4 bench/batch_vs_single.lua 200 100 10
figure 8 "Event-loop hosts: CPU while waiting (luv), poll(0) against the queue, pending()" \
  lua5.4 bench/event_loop.lua
figure 9 "poll(0) with nothing ready (issue 18)" lua5.4 bench/poll_cost.lua
figure 10 "Many orgs at scale: zcrm apply --orgs, 50 orgs x 100 updates (50 emulators) vs 1 org (latency 100 ms, concurrency 10 per org)" \
  lua5.4 bench/orgs_scale.lua 50 100 100 10 3

say ""
say "total: $(($(date +%s) - START)) s"
cp "$TMP/report" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
exit $STATUS
