#!/usr/bin/env bash
# Idle controller CPU (issue: the controller gets a room): 100,000 (monitor, origin) pairs, no
# probing (--no-agent), so what is measured is the controller's own upkeep — the health
# engine's wake-ups above all — over 30 s after 10 s of warm-up, twice.
# Usage: bench/idle.sh [BINARY]   (default: this checkout's release build; pass another
# build's binary to compare, on a copy of the same data)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
[[ -n ${1:-} ]] && BIN=$1
start_vantage "$WORK/d" "$WORK/create.log" --no-agent
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d '{"expected_codes":"200","interval":60}' | json 'd["result"]["id"]')
python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" 100000 >/dev/null
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
for round in 1 2; do
  start_vantage "$WORK/d" "$WORK/run.$round.log" --no-agent
  sleep 10
  c0=$(cpu_ticks "$VPID"); t0=$(date +%s.%N)
  sleep 30
  c1=$(cpu_ticks "$VPID"); t1=$(date +%s.%N)
  python3 -c "import sys; c0,c1,t0,t1,tck=map(float,sys.argv[1:6]); print(f'RESULT idle round {sys.argv[6]}: controller CPU {(c1-c0)/tck/(t1-t0)*100:.1f}% of one core with 100,000 pairs, no probing')" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" "$round"
  kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
done
