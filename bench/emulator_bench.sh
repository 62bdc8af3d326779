#!/bin/sh
# Throughput of bin/zcrm-emulator at --latency-ms 0, so that client benchmarks
# measure the client. Prints requests/s for small GETs (target: >= 5,000/s on
# 2 cores), for PUTs against 10,000 modules, and for PUTs with --state (every
# answered update is on disk first) against 1,000 modules; writes
# bench/results/emulator.txt.
#
# usage: sh bench/emulator_bench.sh [GET_REQUESTS] [PARALLEL]
# Environment: ZCRM_EMULATOR (default bin/zcrm-emulator); STATE_DIR (where the
# --state file goes; default a fresh directory under TMPDIR, which should be a
# real disk, not tmpfs, for the fsync cost to show).
set -eu

N=${1:-20000}
PAR=${2:-16}
PUTS=5000
STATE_PUTS=1000
STATE_MODULES=1000
BIN=${ZCRM_EMULATOR:-bin/zcrm-emulator}
OUT=bench/results/emulator.txt
AUTH="Authorization: Zoho-oauthtoken emulator-token"

[ -x "$BIN" ] || { echo "emulator_bench: $BIN not found: run make first" >&2; exit 1; }
command -v curl >/dev/null || { echo "emulator_bench: curl is needed" >&2; exit 1; }

TMP=$(mktemp -d)
STATE_DIR=${STATE_DIR:-$TMP}
PID=
stop() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  PID=
}
cleanup() {
  stop
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

start() {  # start EMULATOR_ARGS...: sets PID and URL
  : >"$TMP/out"
  "$BIN" --port 0 --latency-ms 0 --concurrency 100000 --credits 1000000000 \
    "$@" >"$TMP/out" 2>"$TMP/err" &
  PID=$!
  i=0
  until grep -q '^listening on ' "$TMP/out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 500 ] || { echo "emulator_bench: emulator did not start:" >&2; cat "$TMP/err" >&2; exit 1; }
    sleep 0.02
  done
  URL=$(sed -n 's/^listening on //p' "$TMP/out" | head -n 1)
}
start --extra-modules 10000

now() { date +%s.%N; }

# run CONFIG COUNT LABEL: curl --parallel over a config file; prints a line
run() {
  t0=$(now)
  curl -s -Z --parallel-max "$PAR" -K "$1" 2>/dev/null >"$TMP/codes" || true
  t1=$(now)
  ok=$(grep -c '^20[01]$' "$TMP/codes" || true)
  awk -v n="$2" -v ok="$ok" -v t0="$t0" -v t1="$t1" -v what="$3" -v par="$PAR" 'BEGIN {
    s = t1 - t0; printf "%-44s %7d requests, %6d ok, %6.2f s, %8.0f requests/s (%d connections)\n",
      what, n, ok, s, n / s, par }'
}

# One config block per transfer, separated by "next" so that options such
# as header do not pile up from one URL to the next.
block() {  # block URL [METHOD DATA]
  printf 'url = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nheader = "%s"\n' "$1" "$AUTH"
  [ $# -lt 3 ] || printf 'request = "%s"\ndata = "%s"\n' "$2" "$3"
}

gets() {  # gets COUNT: small GETs of one module, sharing one header
  printf 'header = "%s"\nwrite-out = "%%{http_code}\\n"\n' "$AUTH"
  for i in $(seq "$1"); do
    printf 'url = "%s/crm/v8/settings/modules/Leads"\noutput = "/dev/null"\n' "$URL"
  done
}
gets 200 >"$TMP/warm"
gets "$N" >"$TMP/get"
run "$TMP/warm" 200 "warm-up" >/dev/null
GET_LINE=$(run "$TMP/get" "$N" "GET /crm/v8/settings/modules/Leads")

puts() {  # puts COUNT: PUTs, each to a different module
  for i in $(seq "$1"); do
    [ "$i" = 1 ] || echo next
    block "$URL/crm/v8/settings/modules/Bulk_Module_$i" PUT \
      "{\\\"modules\\\":[{\\\"plural_label\\\":\\\"Benched Modules $i\\\"}]}"
  done
}
puts "$PUTS" >"$TMP/put"
PUT_LINE=$(run "$TMP/put" "$PUTS" "PUT /crm/v8/settings/modules/{x} (10k org)")
STATS=$(curl -s "$URL/__emulator/stats")
stop

# The same PUTs with --state: each answer waits for the org to be on disk.
# Without --state first, on the same 1,000-module org, for the ratio.
start --extra-modules "$STATE_MODULES"
puts "$STATE_PUTS" >"$TMP/put"
MEM_LINE=$(run "$TMP/put" "$STATE_PUTS" "PUT (1k org), no --state")
stop
rm -f "$STATE_DIR/bench-state.json"
start --extra-modules "$STATE_MODULES" --state "$STATE_DIR/bench-state.json"
puts "$STATE_PUTS" >"$TMP/put"
STATE_LINE=$(run "$TMP/put" "$STATE_PUTS" "PUT (1k org), --state, durable")
STATE_BYTES=$(wc -c <"$STATE_DIR/bench-state.json")
stop
rm -f "$STATE_DIR/bench-state.json"
{
  echo "zcrm-emulator throughput, latency 0, curl --parallel ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo "$GET_LINE"
  echo "$PUT_LINE"
  echo "stats: $STATS"
  echo "$MEM_LINE"
  echo "$STATE_LINE"
  echo "state file: $STATE_BYTES bytes, in $(df -PT "$STATE_DIR" | awk 'NR == 2 { print $2 }')"
} | tee "$TMP/report"
mkdir -p bench/results
cp "$TMP/report" "$OUT"
echo "written to $OUT"
