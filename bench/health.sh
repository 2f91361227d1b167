#!/usr/bin/env bash
# Health-engine benchmarks (issue: health engine), all on loopback:
#  1. Probe throughput: completed HTTP checks/s, each on a new connection, vs
#     `wrk -t1 -c64 -d10s -H "Connection: close"` on the same nginx `return 200`, same run.
#  2. Detection time: origin killed -> pool verdict flipped, for two monitor settings, against
#     interval * max(1, consecutive_down) + timeout * (retries + 1) + 1 s.
#  3. Scale: 100,000 (monitor, origin) pairs at a 60 s interval on one location: lateness of
#     checks against their schedule (p99), peak RSS, average CPU.
# Usage: bench/health.sh [--skip-scale | --only-scale]   (installs wrk and nginx from Debian if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_SCALE=${1:-}

source bench/lib.sh

start_nginx_return_200


if [[ $SKIP_SCALE != --only-scale ]]; then
echo "== 1. probe throughput vs wrk (nginx $(nginx -v 2>&1 | sed 's/.*\///'), return 200, new connection per request)"
wrk -t1 -c64 -d10s -H "Connection: close" "http://127.0.0.1:$NGINX_PORT/" | tee "$WORK/wrk.out"
WRK_RPS=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
VANTAGE_BENCH_TARGET=127.0.0.1:$NGINX_PORT cargo bench -q -p vantage-probe --bench throughput 2>/dev/null | tee "$WORK/probe.out"
PROBE_RPS=$(grep -o 'probe_checks_per_s=[0-9]*' "$WORK/probe.out" | cut -d= -f2)
python3 -c "import sys; w,p=float(sys.argv[1]),float(sys.argv[2]); print(f'RESULT probe_throughput wrk_rps={w:.0f} vantage_checks_per_s={p:.0f} ratio={p/w:.2f} (goal >= 0.6)')" "$WRK_RPS" "$PROBE_RPS"


echo "== 2. detection time"
start_vantage "$WORK/detect" "$WORK/detect.log"
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
ORIGIN_PORT=$((20000 + RANDOM % 20000))
for cfg in "5 1 0 0" "10 2 1 2"; do
  read -r INTERVAL TIMEOUT RETRIES DOWN <<<"$cfg"
  python3 -m http.server "$ORIGIN_PORT" --bind 127.0.0.1 >/dev/null 2>&1 &
  ORIGIN=$!; PIDS+=("$ORIGIN")
  until curl -s -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/"; do sleep 0.05; done
  MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d "{\"expected_codes\":\"200\",\"interval\":$INTERVAL,\"timeout\":$TIMEOUT,\"retries\":$RETRIES,\"consecutive_down\":$DOWN}" | json 'd["result"]["id"]')
  POOL=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/pools" -d "{\"name\":\"detect-$INTERVAL\",\"monitor\":\"$MON\",\"origins\":[{\"name\":\"o\",\"address\":\"127.0.0.1\",\"port\":$ORIGIN_PORT}]}" | json 'd["result"]["id"]')
  healthy() { api "$BASE/accounts/$ACCOUNT/load_balancers/pools/$POOL/health" 2>/dev/null | json 'd["result"]["pop_health"]["healthy"]' 2>/dev/null || echo none; }
  until [[ $(healthy) == True ]]; do sleep 0.1; done
  T0=$(date +%s.%N); kill "$ORIGIN"; wait "$ORIGIN" 2>/dev/null || true
  until [[ $(healthy) == False ]]; do sleep 0.05; done
  T1=$(date +%s.%N)
  python3 -c "import sys; t0,t1,i,t,r,d=map(float,sys.argv[1:]); b=i*max(1,d)+t*(r+1)+1; print(f'RESULT detection interval={i:.0f}s timeout={t:.0f}s retries={r:.0f} consecutive_down={d:.0f}: {t1-t0:.2f} s (bound {b:.0f} s)')" "$T0" "$T1" "$INTERVAL" "$TIMEOUT" "$RETRIES" "$DOWN"
done
kill "$VPID"; wait "$VPID" 2>/dev/null || true
fi

[[ $SKIP_SCALE == --skip-scale ]] && exit 0
echo "== 3. scale: 100,000 pairs at 60 s on one location (nginx return 200 on 100,000 loopback addresses)"
start_vantage "$WORK/scale" "$WORK/scale.log" --metrics-listen 127.0.0.1:0
METRICS=$(grep -o 'metrics serving on [0-9.:]*' "$WORK/scale.log" | awk '{print $4}')
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" -d "{\"expected_codes\":\"200\",\"interval\":60,\"timeout\":5,\"retries\":0,\"port\":$NGINX_PORT}" | json 'd["result"]["id"]')
curl -sf "http://$METRICS/metrics" > "$WORK/lateness-before.txt"
T0=$(date +%s.%N)
python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" 100000
T1=$(date +%s.%N)
# Until every new pair has had its first check (at most 90 s): that is part of the load.
checks() { curl -sf "http://$METRICS/metrics" | awk '/^vantage_agent_check_lateness_seconds_count/ {print $2}'; }
for _ in $(seq 90); do
  [[ $(checks) -ge 100000 ]] && break
  sleep 1
done
curl -sf "http://$METRICS/metrics" > "$WORK/lateness-after.txt"
CREATE_PEAK=$(awk '/^VmHWM/ {print $2}' /proc/$VPID/status)
# The built-in agent's lateness from the first write until every pair was checked once: its
# histogram's buckets, after less before (p99 is the upper bound of the bucket it falls in).
python3 - "$WORK/lateness-before.txt" "$WORK/lateness-after.txt" "$T0" "$T1" <<'PY'
import re, sys
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'vantage_agent_check_lateness_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            out[float(m.group(1))] = int(m.group(2))
    return out
before, after = buckets(sys.argv[1]), buckets(sys.argv[2])
counts = sorted((le, after[le] - before.get(le, 0)) for le in after)
total = counts[-1][1]
top = max(le for le, _ in counts if le != float("inf"))
def p(q):
    le = next(le for le, n in counts if n >= q * total)
    return f"<={le * 1000:g}ms" if le != float("inf") else f">{top * 1000:g}ms"
print(f"RESULT bulk_load creating_seconds={float(sys.argv[4]) - float(sys.argv[3]):.0f} first_checks={total} "
      f"lateness_p50{p(0.5)} p99{p(0.99)} (goal p99 <= 50 ms)")
PY
# Measure the server as it runs 100,000 pairs: restarted on that data, as after any deploy.
kill -TERM "$VPID"; wait "$VPID" 2>/dev/null || true
start_vantage "$WORK/scale" "$WORK/scale-run.log"
BASE=http://$VADDR/client/v4
# Measure over two full minutes after the first minute of warm-up.
until [[ $(grep -c 'probes:' "$WORK/scale-run.log") -ge 1 ]]; do sleep 1; done
C0=$(cpu_ticks "$VPID"); S0=$(date +%s.%N)
until [[ $(grep -c 'probes:' "$WORK/scale-run.log") -ge 3 ]]; do sleep 1; done
C1=$(cpu_ticks "$VPID"); S1=$(date +%s.%N)
grep 'probes:' "$WORK/scale-run.log" | sed 's/.*probes:/probes:/'
LAST=$(grep 'probes:' "$WORK/scale-run.log" | tail -1)
SAMPLE=$(api "$BASE/accounts/$ACCOUNT/load_balancers/pools?per_page=3" | json 'sum(1 for p in d["result"] for o in p["origins"] if o.get("healthy"))')
python3 - "$C0" "$C1" "$S0" "$S1" "$(awk '/^VmHWM/ {print $2}' /proc/$VPID/status)" "$LAST" "$SAMPLE" "$(getconf CLK_TCK)" "$(awk '/^VmRSS/ {print $2}' /proc/$VPID/status)" "$CREATE_PEAK" <<'PY'
import re, sys
c0, c1, s0, s1, hwm, last, sample, tck, rss, create_peak = sys.argv[1:]
cpu = (float(c1) - float(c0)) / float(tck) / (float(s1) - float(s0))
m = re.search(r"(\d+) checks.*p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", last)
checks, p50, p99, mx = m.groups()
print(f"RESULT scale checks_last_minute={checks} lateness_p50={p50}ms p99={p99}ms (goal <= 50 ms) max={mx}ms "
      f"peak_rss={int(hwm)/1024:.0f}MB (goal <= 300 MB) steady_rss={int(rss)/1024:.0f}MB avg_cpu={cpu*100:.0f}% of one core (goal <= 50%) "
      f"healthy_origins_in_3_sampled_pools={sample}/192 (peak while creating the 100,000 through the API: {int(create_peak)/1024:.0f}MB)")
PY
