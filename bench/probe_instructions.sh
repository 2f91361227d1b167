#!/usr/bin/env bash
# What one HTTP check costs the prober in instructions (issue 16, probes): the prober's
# throughput benchmark (`crates/probe/benches/throughput.rs`: 64 checks at once, each on a new
# connection) against nginx `return 200` on loopback, under valgrind's callgrind, once for
# SMALL and once for LARGE checks; the difference over LARGE - SMALL checks is the user-space
# instructions per check, without the process's start. A count does not move with the
# machine's noise, so two builds compare exactly where a checks/s rate would not; the kernel's
# share (connect, send, close) is not counted (see bench/probes.sh for the rate against wrk).
# Usage: bench/probe_instructions.sh [EXECUTABLE]   (default: the benchmark built from here)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SMALL=${SMALL:-500}
LARGE=${LARGE:-2500}
if ! command -v valgrind >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
EXE=${1:-$(cargo bench -p vantage-probe --bench throughput --no-run --locked --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and "bench" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])
')}
start_nginx_return_200 1 127.0.0.1
count() {
  VANTAGE_BENCH_TARGET=127.0.0.1:$NGINX_PORT VANTAGE_BENCH_CHECKS=$1 \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1" "$EXE" >"$WORK/out.$1" 2>"$WORK/log.$1" \
    || { cat "$WORK/log.$1"; exit 1; }
  grep -q "failed=0" "$WORK/out.$1" || { echo "checks failed: $(cat "$WORK/out.$1")"; exit 1; }
  awk '/^(summary|totals):/ {print $2; exit}' "$WORK/cg.$1"
}
small=$(count "$SMALL")
large=$(count "$LARGE")
python3 -c "import sys; s, l, n = map(int, sys.argv[1:]); print(f'RESULT probe_instructions_per_check={(l - s) / n:.0f} ({n} checks: {l - s} instructions)')" \
  "$small" "$large" "$((LARGE - SMALL))"
