#!/usr/bin/env bash
# Edge benchmarks (issue: edges), on loopback, every edge a separate `vantage edge` process
# (DNS on its own port; no proxy, which does not take part in propagation):
#  1. Propagation to N = 1 and N = 20 edges: 60 configuration changes 200 ms apart, each a new
#     snapshot. Every edge logs each snapshot it applies with lag_ms: from the snapshot's
#     making at the controller to its application at the edge (long-poll answer, transfer,
#     parse, validation, routing table, swap). p50/p99/max over all applications.
#  2. Scale: 10,000 load balancers over 20,000 pools: the snapshot's size on the wire (and
#     gzip'd, for reference), the controller's time to serve it, and propagation and the
#     controller's CPU while 20 edges follow 20 changes.
# Usage: bench/edges.sh [--only-large]
set -euo pipefail
ONLY=${1:-}
cd "$(dirname "$0")/.."
source bench/lib.sh

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

start_edges() { # N TOKEN -> EDGE_LOGS
  EDGE_LOGS=()
  for i in $(seq "$1"); do
    VANTAGE_LOG=info "$BIN" edge --controller "http://$VADDR" --token "$2" \
      --dns-listen 127.0.0.1:0 --dns-rrl-rate 0 --snapshot-file "$WORK/edge-$1-$i.snapshot" \
      2>"$WORK/edge-$1-$i.log" &
    PIDS+=("$!"); EDGE_LOGS+=("$WORK/edge-$1-$i.log")
  done
  for log in "${EDGE_LOGS[@]}"; do
    until grep -q "applied the routing snapshot from controller" "$log"; do sleep 0.05; done
  done
}
stop_edges() { for log in "${EDGE_LOGS[@]}"; do :; done; pkill -f "vantage edge --controller http://$VADDR" || true; sleep 0.2; }

if [[ $ONLY != --only-large ]]; then
echo "== 1. propagation, a small installation (one zone, one load balancer)"
start_vantage "$WORK/small" "$WORK/small.log" --no-agent
create_zone example.com
EDGE_TOKEN=$("$BIN" token create --data-dir "$WORK/small" --name edges --edge)
POOL=$(python3 bench/edges.py populate "$BASE" "$TOKEN" "$ACCOUNT" "$ZONE" 1)
sleep 1.5   # the controller picks up the token the CLI wrote
for n in 1 20; do
  start_edges "$n" "$EDGE_TOKEN"
  for log in "${EDGE_LOGS[@]}"; do : >"$log"; done
  python3 bench/edges.py changes "$BASE" "$TOKEN" "$ACCOUNT" "$POOL" 60 0.2
  sleep 1
  printf 'N=%-3s ' "$n"; python3 bench/edges.py lags "${EDGE_LOGS[@]}"
  stop_edges
done
kill "$VPID"
fi

echo "== 2. 10,000 load balancers over 20,000 pools"
VANTAGE_LOG=warn,vantage=info,vantage_control::edges=debug start_vantage "$WORK/large" "$WORK/large.log" --no-agent
create_zone example.com
EDGE_TOKEN=$("$BIN" token create --data-dir "$WORK/large" --name edges --edge)
t0=$(date +%s.%N)
POOL=$(python3 bench/edges.py populate "$BASE" "$TOKEN" "$ACCOUNT" "$ZONE" 10000)
echo "populated in $(echo "$(date +%s.%N) - $t0" | bc) s"
sleep 3
curl -s -o "$WORK/snap.json" -w 'snapshot: %{size_download} bytes, served in %{time_total} s (first request: serialized then)\n' \
  -H "Authorization: Bearer $EDGE_TOKEN" "http://$VADDR/edge/v1/snapshot?after=0"
curl -s -o /dev/null -w 'again: served in %{time_total} s (cached bytes)\n' \
  -H "Authorization: Bearer $EDGE_TOKEN" "http://$VADDR/edge/v1/snapshot?after=0"
echo "gzip -1 would make it $(gzip -1 -c "$WORK/snap.json" | wc -c) bytes"
for n in 1 20; do
  start_edges "$n" "$EDGE_TOKEN"
  for log in "${EDGE_LOGS[@]}"; do : >"$log"; done
  c0=$(cpu_s "$VPID"); w0=$(date +%s.%N)
  python3 bench/edges.py changes "$BASE" "$TOKEN" "$ACCOUNT" "$POOL" 20 1
  sleep 2
  c1=$(cpu_s "$VPID"); w1=$(date +%s.%N)
  printf 'N=%-3s ' "$n"; python3 bench/edges.py lags "${EDGE_LOGS[@]}"
  echo "      controller CPU: $(echo "($c1 - $c0) / ($w1 - $w0) * 100" | bc -l | cut -c1-5) % of one core over $(echo "$w1 - $w0" | bc | cut -c1-5) s (20 changes)"
  echo "      controller RSS: $(( $(rss_kb "$VPID") / 1024 )) MB; one edge's RSS: $(( $(rss_kb "$(pgrep -f "vantage edge --controller http://$VADDR" | head -1)") / 1024 )) MB"
  stop_edges
done
python3 bench/edges.py builds "$WORK/large.log" 40   # the 2 x 20 changes
