#!/usr/bin/env bash
# Regions benchmarks (issue: regions), on loopback:
#  1. Result ingestion at Cloudflare's scale: 39 locations (13 regions x 3) each reporting on
#     10,000 origins at a 60 s interval = 6,500 results/s, through the agent protocol
#     (POST /agent/v1/results, batches once a second). Controller CPU, and how long until a
#     result's verdict is applied (the POST returns after the engine has recorded it).
#  2. Agent footprint: one `vantage agent` assigned 100,000 pairs (nginx `return 200` on loopback
#     addresses), its RSS once it has run two full intervals.
# Usage: bench/regions.sh [--skip-agent | --only-agent]
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_AGENT=${1:-}
source bench/lib.sh
AGENT_TOKEN=bench-agent-token-0123456789abcdefghijklmnopqrstuvwxyz

start_controller() { # data dir, log -> VPID, VADDR (no built-in agent)
  VANTAGE_BOOTSTRAP_TOKEN=$TOKEN VANTAGE_BOOTSTRAP_AGENT_TOKEN=$AGENT_TOKEN \
  VANTAGE_BOOTSTRAP_AGENT_LOCATION=WEU/ams1 VANTAGE_LOG=warn,vantage=info \
    "$BIN" serve --no-agent --listen 127.0.0.1:0 --data-dir "$1" 2>"$2" &
  VPID=$!; PIDS+=("$VPID")
  until VADDR=$(grep -o 'listening on [0-9.:]*' "$2" | awk '{print $3}') && [[ -n $VADDR ]]; do sleep 0.05; done
}

if [[ $SKIP_AGENT != --only-agent ]]; then
echo "== 1. ingestion: 39 locations x 10,000 origins at 60 s"
start_controller "$WORK/ingest" "$WORK/ingest.log"
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d '{"expected_codes":"200","interval":60}' | json 'd["result"]["id"]')
python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" 10000
# One agent token per location: a token speaks for exactly one.
REGIONS="WNAM ENAM WEU EEU NSAM SSAM OC ME NAF SAF SAS SEAS NEAS"
echo "{" >"$WORK/tokens.json"; sep=""
for r in $REGIONS; do for k in 0 1 2; do
  name="$(tr '[:upper:]' '[:lower:]' <<<"$r")$k"
  t=$("$BIN" token create --data-dir "$WORK/ingest" --name "$name" --agent --region "$r" --location "$name")
  printf '%s"%s": "%s"' "$sep" "$name" "$t" >>"$WORK/tokens.json"; sep=","
done; done
echo "}" >>"$WORK/tokens.json"
sleep 1   # let the engine follow the new pools and the server see the tokens
python3 bench/ingest.py "http://$VADDR" "$WORK/tokens.json" "$MON" "$VPID"
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
fi

[[ $SKIP_AGENT == --skip-agent ]] && exit 0
echo "== 2. agent footprint: one agent, 100,000 pairs"
start_nginx_return_200
start_controller "$WORK/agent" "$WORK/controller.log"
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d "{\"expected_codes\":\"200\",\"interval\":60,\"timeout\":5,\"port\":$NGINX_PORT}" | json 'd["result"]["id"]')
python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" 100000
VANTAGE_LOG=warn,vantage=info "$BIN" agent --controller "http://$VADDR" --token "$AGENT_TOKEN" --region WEU --location ams1 2>"$WORK/agent.log" &
APID=$!; PIDS+=("$APID")
until [[ $(grep -c 'probes:' "$WORK/agent.log") -ge 3 ]]; do sleep 2; done
grep 'probes:' "$WORK/agent.log" | sed 's/.*probes:/probes:/'
python3 -c "import sys; h,r=int(sys.argv[1]),int(sys.argv[2]); print(f'RESULT agent pairs=100000 peak_rss={h/1024:.0f}MB (goal <= 300 MB) rss={r/1024:.0f}MB')" "$(hwm_kb "$APID")" "$(rss_kb "$APID")"
