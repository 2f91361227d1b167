#!/usr/bin/env bash
# Curves (issue 16): how cost grows with work, measured and drawn, each with its fitted slope so
# a reader can plan capacity. Four curves, each a table in docs/curves/NAME.tsv and a PNG in
# docs/curves-NAME.png (bench/curves.py draws them with matplotlib, installed if missing):
#   pairs      server RSS and CPU against (monitor, origin) pairs, 1k to 200k: one `vantage
#              serve` with its built-in agent checking nginx `return 200` on loopback addresses
#              at a 60 s interval; at each size it is restarted on its data (as after a deploy)
#              and measured over its second minute (CPU, lateness p99, RSS at the end)
#   locations  ingestion CPU against probe locations, 3 to 60, at 10,000 origins: a controller
#              with no agent of its own fed by bench/ingest.py (one agent token per location),
#              CPU over the steady state (after the first interval, in which every verdict is new)
#   routing    routing-snapshot build time and size against load balancers, 100 to 20,000
#              (`cargo bench -p vantage-control --bench routing`)
#   clients    API p99 against concurrent clients, 1 to 256: `GET` one pool with a token,
#              `wrk -t1 -dNs --latency` each, beside nginx serving the same bytes from a file
# Usage: bench/curves.sh [pairs] [locations] [routing] [clients]   (all four by default)
# The sizes can be changed with PAIRS, LOCATIONS, LOAD_BALANCERS and CLIENTS (space-separated).
# Takes about 25 minutes for all four on the 2-core machine; only `plot` to redraw:
#   bench/curves.sh plot
set -euo pipefail
cd "$(dirname "$0")/.."
CURVES=("$@"); [[ ${#CURVES[@]} -eq 0 ]] && CURVES=(pairs locations routing clients)
PAIRS=${PAIRS:-1000 10000 50000 100000 150000 200000}
LOCATIONS=${LOCATIONS:-3 9 15 30 45 60}
LOAD_BALANCERS=${LOAD_BALANCERS:-100 500 1000 2000 5000 10000 20000}
CLIENTS=${CLIENTS:-1 2 4 8 16 32 64 128 256}
OUT=docs/curves
mkdir -p "$OUT"
wants() { [[ " ${CURVES[*]} " == *" $1 "* ]]; }

if ! python3 -c "import matplotlib, numpy" 2>/dev/null; then
  pip install -q matplotlib numpy
fi
if [[ ${CURVES[*]} == plot ]]; then
  python3 bench/curves.py "$OUT" docs; exit 0
fi
source bench/lib.sh
TCK=$(getconf CLK_TCK)

if wants pairs; then
  echo "== pairs: RSS and CPU against (monitor, origin) pairs at 60 s ($PAIRS)"
  start_nginx_return_200
  start_vantage "$WORK/pairs" "$WORK/pairs.log"
  BASE=http://$VADDR/client/v4
  ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
  MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" \
    -d "{\"expected_codes\":\"200\",\"interval\":60,\"timeout\":5,\"retries\":0,\"port\":$NGINX_PORT}" | json 'd["result"]["id"]')
  printf 'pairs\trss_bytes\tcpu_share\tlateness_p99_ms\n' > "$OUT/pairs.tsv"
  made=0
  for n in $PAIRS; do
    python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" "$n" "$made" >/dev/null
    made=$n
    kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
    start_vantage "$WORK/pairs" "$WORK/pairs-$n.log"
    BASE=http://$VADDR/client/v4   # a new port after each start
    # The agent logs a `probes:` line per minute of checks: measure over the second.
    until [[ $(grep -c 'probes:' "$WORK/pairs-$n.log") -ge 1 ]]; do sleep 1; done
    C0=$(cpu_ticks "$VPID"); S0=$(date +%s.%N)
    until [[ $(grep -c 'probes:' "$WORK/pairs-$n.log") -ge 2 ]]; do sleep 1; done
    C1=$(cpu_ticks "$VPID"); S1=$(date +%s.%N)
    P99=$(grep 'probes:' "$WORK/pairs-$n.log" | tail -1 | grep -o 'p99 [0-9.]*' | awk '{print $2}')
    CPU=$(python3 -c "import sys; c0,c1,s0,s1,t=map(float,sys.argv[1:]); print(f'{(c1-c0)/t/(s1-s0):.4f}')" "$C0" "$C1" "$S0" "$S1" "$TCK")
    printf '%s\t%s\t%s\t%s\n' "$n" "$(($(rss_kb "$VPID") * 1024))" "$CPU" "$P99" | tee -a "$OUT/pairs.tsv"
  done
  kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
fi

if wants locations; then
  echo "== locations: ingestion CPU against probe locations at 10,000 origins ($LOCATIONS)"
  REGIONS=(WNAM ENAM WEU EEU NSAM SSAM OC ME NAF SAF SAS SEAS NEAS)
  printf 'locations\tresults_per_s\tcpu_share\tapplied_p99_ms\n' > "$OUT/locations.tsv"
  for l in $LOCATIONS; do
    DATA=$WORK/ingest-$l
    start_vantage "$DATA" "$WORK/ingest-$l.log" --no-agent
    BASE=http://$VADDR/client/v4
    ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
    MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d '{"expected_codes":"200","interval":60}' | json 'd["result"]["id"]')
    python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" 10000 >/dev/null
    # One agent token per location, spread over the regions (a token speaks for one).
    echo "{" > "$WORK/tokens-$l.json"; sep=""
    for i in $(seq 0 $((l - 1))); do
      r=${REGIONS[$((i % 13))]}; name="$(tr '[:upper:]' '[:lower:]' <<<"$r")$((i / 13))"
      t=$("$BIN" token create --data-dir "$DATA" --name "$name" --agent --region "$r" --location "$name")
      printf '%s"%s": "%s"' "$sep" "$name" "$t" >> "$WORK/tokens-$l.json"; sep=","
    done
    echo "}" >> "$WORK/tokens-$l.json"
    sleep 1   # the server picks up tokens the CLI wrote within half a second
    INGEST_SECONDS=90 python3 bench/ingest.py "http://$VADDR" "$WORK/tokens-$l.json" "$MON" "$VPID" \
      | grep 'steady state' | tee "$WORK/ingest-$l.out"
    python3 - "$l" "$WORK/ingest-$l.out" >> "$OUT/locations.tsv" <<'PY'
import re, sys
line = open(sys.argv[2]).read()
rate = re.search(r"results_per_s=(\d+)", line).group(1)
cpu = float(re.search(r"controllers_cpu=([\d.]+)%", line).group(1)) / 100
p99 = re.search(r"p99=([\d.]+)ms", line).group(1)
print(f"{sys.argv[1]}\t{rate}\t{cpu:.3f}\t{p99}")
PY
    kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
  done
  cat "$OUT/locations.tsv"
fi

if wants routing; then
  echo "== routing: snapshot build time and size against load balancers ($LOAD_BALANCERS)"
  # shellcheck disable=SC2086 # one argument per size
  cargo bench -q -p vantage-control --bench routing -- $LOAD_BALANCERS | tee "$WORK/routing.out"
  { printf 'load_balancers\tbuild_us\ttable_us\tsnapshot_bytes\n'
    sed -n 's/^RESULT routing load_balancers=\([0-9]*\) build_us=\([0-9]*\) table_us=\([0-9]*\) snapshot_bytes=\([0-9]*\)$/\1\t\2\t\3\t\4/p' "$WORK/routing.out"
  } > "$OUT/routing.tsv"
fi

if wants clients; then
  echo "== clients: GET one pool, p99 against concurrent clients ($CLIENTS)"
  start_vantage "$WORK/clients" "$WORK/clients.log" --no-agent
  BASE=http://$VADDR/client/v4
  ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
  POOL=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/pools" \
    -d '{"name":"bench","origins":[{"name":"o1","address":"192.0.2.1"},{"name":"o2","address":"192.0.2.2"}]}' | json 'd["result"]["id"]')
  POOL_PATH=/client/v4/accounts/$ACCOUNT/load_balancers/pools/$POOL
  start_nginx_mirror "$POOL_PATH"
  printf 'clients\tvantage_rps\tvantage_p99_ms\tnginx_rps\tnginx_p99_ms\n' > "$OUT/clients.tsv"
  for c in $CLIENTS; do
    for who in vantage nginx; do
      url=http://$VADDR$POOL_PATH; [[ $who == nginx ]] && url=http://127.0.0.1:$NGINX_PORT$POOL_PATH
      wrk -t1 -c"$c" -d5s --latency -H "Authorization: Bearer $TOKEN" "$url" > "$WORK/$who-$c.out"
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$(wrk_rps "$WORK/vantage-$c.out")" "$(wrk_p99_ms "$WORK/vantage-$c.out")" \
      "$(wrk_rps "$WORK/nginx-$c.out")" "$(wrk_p99_ms "$WORK/nginx-$c.out")" | tee -a "$OUT/clients.tsv"
  done
fi

python3 bench/curves.py "$OUT" docs
