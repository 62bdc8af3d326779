#!/bin/sh
# make demo: start the emulator on a free loopback port, send the docs' sample
# update, apply the relabel plan (a dozen custom modules relabelled, Contractor
# revoked everywhere, Marketing granted on the marketing modules): zcrm shows
# the diff, applies it without asking (--yes: a demo has no one to ask), and
# prints the report. Then the emulator stops. Nothing leaves this machine.
set -eu
cd "$(dirname "$0")/.."
log=$(mktemp)
bin/zcrm-emulator --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT INT TERM
i=0
until grep -q '^listening on ' "$log"; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$log" >&2; echo "emulator did not start" >&2; exit 1; }
  sleep 0.05
done
url=$(sed -n 's/^listening on //p' "$log" | head -n 1)
echo "emulator: $url (a local stand-in for Zoho CRM, seeded org)"
export ZOHO_API_DOMAIN="$url" ZOHO_ACCESS_TOKEN=emulator-token
echo
echo "1. One update: the Update Custom Module page's sample request, and Zoho's answer"
echo "\$ lua5.4 examples/update_module.lua"
lua5.4 examples/update_module.lua
echo
echo "2. A bulk plan: a dozen modules relabelled, Contractor revoked everywhere"
echo "\$ zcrm apply examples/plans/relabel.lua --yes"
echo
bin/zcrm apply examples/plans/relabel.lua --yes
