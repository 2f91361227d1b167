#!/usr/bin/env bash
# Probes end to end (issue 16): the running server's built-in agent checking PAIRS origins
# (default 75,000: nginx `return 200` on loopback addresses) every 5 s, 15,000 checks/s offered,
# against wrk's new-connection rate on the same nginx in the same run
# (`wrk -t1 -c64 -d10s -H "Connection: close"`: a connection per request, as a check makes).
# Reports the checks/s the agent started over its second minute (from its per-minute `probes:`
# log line), the ratio to wrk, the lateness, and whether the server said it cannot keep up: the
# "probes are falling behind" warning with its backlog, and the `vantage_agent_backlog` and
# `vantage_agent_checks_late` series on the operator's metrics listener (and the adaptive
# `vantage_agent_in_flight_limit`); and the CPU time per connection of wrk, the server and nginx.
# Usage: bench/probes.sh   (PAIRS=N to change the count; installs wrk, nginx and GNU time if
# missing)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
PAIRS=${PAIRS:-75000}
if [[ ! -x /usr/bin/time ]]; then   # GNU time, for wrk's CPU time
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

start_nginx_return_200
echo "== wrk -t1 -c64 -d10s -H 'Connection: close' on nginx return 200"
NGINX_WORKERS=$(pgrep -P "$(cat "$WORK/nginx-$NGINX_PORT/nginx.pid")" | tr '\n' ' ')
# shellcheck disable=SC2086
N0=$(cpu_ticks_of $NGINX_WORKERS)
/usr/bin/time -f "%U %S" -o "$WORK/wrk.time" \
  wrk -t1 -c64 -d10s -H "Connection: close" "http://127.0.0.1:$NGINX_PORT/" > "$WORK/wrk.out"
# shellcheck disable=SC2086
N1=$(cpu_ticks_of $NGINX_WORKERS)
WRK_RPS=$(wrk_rps "$WORK/wrk.out")
WRK_N=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
echo "wrk: $WRK_RPS new connections/s"

echo "== the built-in agent: $PAIRS origins every 5 s"
start_vantage "$WORK/data" "$WORK/vantage.log" --metrics-listen 127.0.0.1:0
METRICS=$(grep -o 'metrics serving on [0-9.:]*' "$WORK/vantage.log" | awk '{print $4}')
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
MON=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/monitors" \
  -d "{\"expected_codes\":\"200\",\"interval\":5,\"timeout\":2,\"retries\":0,\"port\":$NGINX_PORT}" | json 'd["result"]["id"]')
python3 bench/create_pairs.py "$BASE" "$ACCOUNT" "$MON" "$TOKEN" "$PAIRS"
# The agent logs a `probes:` line per minute of checks; the first minute includes the ramp.
# The server's and nginx's CPU time are read as the first line appears and as the second does.
until [[ $(grep -c 'probes:' "$WORK/vantage.log") -ge 1 ]]; do sleep 0.2; done
# shellcheck disable=SC2086
V0=$(cpu_ticks_of "$VPID"); M0=$(cpu_ticks_of $NGINX_WORKERS)
until [[ $(grep -c 'probes:' "$WORK/vantage.log") -ge 2 ]]; do sleep 0.2; done
# shellcheck disable=SC2086
V1=$(cpu_ticks_of "$VPID"); M1=$(cpu_ticks_of $NGINX_WORKERS)
LINE=$(grep 'probes:' "$WORK/vantage.log" | tail -1 | sed 's/.*probes:/probes:/')
echo "$LINE"
WARNING=$(grep -c 'probes are falling behind' "$WORK/vantage.log" || true)
grep -m1 'probes are falling behind' "$WORK/vantage.log" | sed 's/.*WARN[^:]*: //' || true
curl -sf "http://$METRICS/metrics" | grep -E '^vantage_agent_(backlog|checks_late|in_flight_limit)' > "$WORK/metrics.out" || true
cat "$WORK/metrics.out"
python3 - "$WRK_RPS" "$LINE" "$PAIRS" "$WARNING" "$WORK/metrics.out" "$WRK_N" "$(cat "$WORK/wrk.time")" "$N0 $N1" "$V0 $V1" "$M0 $M1" <<'PY'
import os, re, sys
wrk, line, pairs, warnings, metrics = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), open(sys.argv[5]).read()
wrk_n = int(sys.argv[6])
tick = 1e6 / os.sysconf("SC_CLK_TCK")
wrk_user, wrk_sys = (float(x) * 1e6 for x in sys.argv[7].split())
span = lambda arg: (lambda a, b: (int(b[0]) - int(a[0]), int(b[1]) - int(a[1])))(*(x.split(",") for x in arg.split()))
nginx_wrk, vantage, nginx_vantage = span(sys.argv[8]), span(sys.argv[9]), span(sys.argv[10])
checks, seconds = re.search(r"(\d+) checks started in the last (\d+) s", line).groups()
p99 = re.search(r"p99 ([\d.]+) ms", line).group(1)
rate = int(checks) / float(seconds)
backlog = re.search(r"vantage_agent_backlog (\d+)", metrics)
late = re.search(r"vantage_agent_checks_late_total (\d+)", metrics)
print(f"RESULT probes offered_per_s={pairs / 5:.0f} wrk_new_connections_per_s={wrk:.0f} vantage_checks_per_s={rate:.0f} "
      f"ratio={rate / wrk:.2f} (goal >= 0.9) lateness_p99_ms={p99} falling_behind_warnings={warnings} "
      f"backlog={backlog.group(1) if backlog else 'absent'} checks_late={late.group(1) if late else 'absent'}")
n = int(checks)
print(f"RESULT cpu_us_per_connection wrk={(wrk_user + wrk_sys) / wrk_n:.1f}(user={wrk_user / wrk_n:.1f},kernel={wrk_sys / wrk_n:.1f}) "
      f"vantage_server={sum(vantage) * tick / n:.1f}(user={vantage[0] * tick / n:.1f},kernel={vantage[1] * tick / n:.1f}) "
      f"nginx_serving_wrk={sum(nginx_wrk) * tick / wrk_n:.1f} nginx_serving_vantage={sum(nginx_vantage) * tick / n:.1f}")
PY
