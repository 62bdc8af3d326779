#!/bin/sh
# Throughput of bin/zcrm-emulator at --latency-ms 0, so that client benchmarks
# measure the client. Prints requests/s for small GETs (target: >= 5,000/s on
# 2 cores) and for PUTs against 10,000 modules; writes bench/results/emulator.txt.
#
# usage: sh bench/emulator_bench.sh [GET_REQUESTS] [PARALLEL]
# Environment: ZCRM_EMULATOR (default bin/zcrm-emulator).
set -eu

N=${1:-20000}
PAR=${2:-16}
PUTS=5000
BIN=${ZCRM_EMULATOR:-bin/zcrm-emulator}
OUT=bench/results/emulator.txt
AUTH="Authorization: Zoho-oauthtoken emulator-token"

[ -x "$BIN" ] || { echo "emulator_bench: $BIN not found: run make first" >&2; exit 1; }
command -v curl >/dev/null || { echo "emulator_bench: curl is needed" >&2; exit 1; }

TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

"$BIN" --port 0 --latency-ms 0 --concurrency 100000 --credits 1000000000 \
  --extra-modules 10000 >"$TMP/out" 2>"$TMP/err" &
PID=$!
i=0
until grep -q '^listening on ' "$TMP/out" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 500 ] || { echo "emulator_bench: emulator did not start:" >&2; cat "$TMP/err" >&2; exit 1; }
  sleep 0.02
done
URL=$(sed -n 's/^listening on //p' "$TMP/out" | head -n 1)

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

# PUTs, each to a different one of 10,000 modules
for i in $(seq "$PUTS"); do
  [ "$i" = 1 ] || echo next
  block "$URL/crm/v8/settings/modules/Bulk_Module_$i" PUT \
    "{\\\"modules\\\":[{\\\"plural_label\\\":\\\"Benched Modules $i\\\"}]}"
done >"$TMP/put"
PUT_LINE=$(run "$TMP/put" "$PUTS" "PUT /crm/v8/settings/modules/{x} (10k org)")

STATS=$(curl -s "$URL/__emulator/stats")
{
  echo "zcrm-emulator throughput, latency 0, curl --parallel ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo "$GET_LINE"
  echo "$PUT_LINE"
  echo "stats: $STATS"
} | tee "$TMP/report"
mkdir -p bench/results
cp "$TMP/report" "$OUT"
echo "written to $OUT"
