#!/usr/bin/env bash
# Replicas on one PostgreSQL (issue 13's performance goals), two `vantage serve` on a throwaway
# cluster on this machine, on loopback:
#  1. Replication delay of a write: 300 pool creates alternating between the replicas, each
#     timed from its 2xx until the other replica serves it (goal p99 <= 1 s).
#  2. Verdict replication delay: 100 verdict changes recorded by the judge, each timed until
#     the follower serves it (goal: within 1 s).
#  3. Result ingestion at 39 locations x 10,000 origins, the locations spread over both
#     replicas (bench/ingest.py; the follower hands its results to the judge): both
#     controllers' CPU, and how long a POST takes until its verdicts are recorded (goal p99 <=
#     200 ms, as on one SQLite server: bench/regions.sh).
#  4. Failover: kill -9 of the judge, then the time until the survivor serves the next verdict
#     change (goal <= lease + 2 s).
# Usage: bench/replicas.sh [LEASE_SECONDS]   (10 by default, as `serve --judge-lease`)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
LEASE=${1:-10}
AGENT_TOKEN=bench-agent-token-0123456789abcdefghijklmnopqrstuvwxyz
start_postgres
export VANTAGE_BOOTSTRAP_AGENT_TOKEN=$AGENT_TOKEN VANTAGE_BOOTSTRAP_AGENT_LOCATION=WEU/ams1
start_vantage "$WORK/a" "$WORK/a.log" --no-agent --store "$PG_URL" --judge-lease "$LEASE"
A_PID=$VPID; A=http://$VADDR
start_vantage "$WORK/b" "$WORK/b.log" --no-agent --store "$PG_URL" --judge-lease "$LEASE"
B_PID=$VPID; B=http://$VADDR
grep -q "judges health" "$WORK/a.log" && grep -q "this one follows" "$WORK/b.log" \
  || { echo "the first replica must judge and the second follow" >&2; exit 1; }
ACCOUNT=$(api "$A/client/v4/accounts" | json 'd["result"][0]["id"]')

echo "== 1. replication delay of a write (300 creates, alternating replicas)"
python3 bench/replicas.py writes "$A" "$B" "$TOKEN" "$ACCOUNT" 300

echo "== 2. verdict replication delay (100 verdict changes on the judge)"
MON=$(api -X POST "$A/client/v4/accounts/$ACCOUNT/load_balancers/monitors" -d '{"expected_codes":"200","interval":60}' | json 'd["result"]["id"]')
python3 bench/replicas.py verdicts "$A" "$B" "$TOKEN" "$AGENT_TOKEN" "$ACCOUNT" "$MON" 100 | tee "$WORK/verdicts.out"
FIRST=$(tail -1 "$WORK/verdicts.out")

echo "== 3. ingestion: 39 locations x 10,000 origins at 60 s, through both replicas"
python3 bench/create_pairs.py "$A/client/v4" "$ACCOUNT" "$MON" "$TOKEN" 10000
REGIONS="WNAM ENAM WEU EEU NSAM SSAM OC ME NAF SAF SAS SEAS NEAS"
echo "{" >"$WORK/tokens.json"; sep=""
for r in $REGIONS; do for k in 0 1 2; do
  name="$(tr '[:upper:]' '[:lower:]' <<<"$r")$k"
  t=$("$BIN" token create --store "$PG_URL" --data-dir "$WORK/cli" --name "$name" --agent --region "$r" --location "$name")
  printf '%s"%s": "%s"' "$sep" "$name" "$t" >>"$WORK/tokens.json"; sep=","
done; done
echo "}" >>"$WORK/tokens.json"
sleep 2   # both replicas follow the new pools and see the tokens
python3 bench/ingest.py "$A,$B" "$WORK/tokens.json" "$MON" "$A_PID,$B_PID"

echo "== 4. failover (lease $LEASE s): kill -9 of the judge"
POOL=$(json 'd["pool"]' <<<"$FIRST"); ADDRESS=$(json 'd["address"]' <<<"$FIRST")
python3 bench/replicas.py failover "$B" "$TOKEN" "$AGENT_TOKEN" "$ACCOUNT" "$MON" "$A_PID" "$POOL" "$ADDRESS"
echo "RESULT goal: <= lease + 2 s = $((LEASE + 2)) s"
