#!/usr/bin/env bash
# Proxy benchmark (issue: traffic). The same backend (nginx answering `200 ok`, one worker) is
# reached four ways (five with --pingora, below) in one run, `wrk -t1 -c64 -d10s --latency`
# each, two rounds alternating:
#   direct            wrk → backend (the baseline for added latency)
#   nginx proxy_pass  upstream keepalive 64, worker_processes auto
#   HAProxy           mode http, nbthread 2, http-reuse always
#   Vantage           --proxy-listen, a proxied load balancer over one pool of that backend
#   vantage_rules     the same, through a second load balancer with 10 rules of typical
#                     conditions (paths, headers, methods, a regular expression, networks);
#                     none matches wrk's request, so every condition is evaluated on each
# Each 64-connection round also reads the CPU time the proxy's processes used per request (user
# and kernel, µs, from /proc/PID/stat): on two shared cores a proxy's req/s depends on what the
# others left it, while its CPU per request is its own.
# Added latency = proxy p99 − direct p99 (same round), twice: under that saturating load (three
# busy processes on two cores: queueing dominates), and for one connection at a time
# (`wrk -t1 -c1 -d10s`: the cost of the hop itself).
# With --edge, Vantage's proxy is a `vantage edge` following the controller (the controller
# serves no traffic itself).
# With --pingora, a fifth contender: a minimal proxy on Cloudflare's pingora 0.9
# (bench/peers/pingora, built here from crates.io; 2 threads without work stealing, one
# runtime per thread as Vantage's proxy runs, upstream keep-alive), a Rust
# proxy engine that is not hyper, with the same headers as nginx's configuration below.
# Usage: bench/proxy.sh [--edge] [--pingora]   (installs wrk, nginx and haproxy from Debian if
# missing, and cmake for pingora's zlib)
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=0 PINGORA=0
for arg in "$@"; do
  case $arg in
    --edge) EDGE=1 ;; --pingora) PINGORA=1 ;;
    *) echo "usage: bench/proxy.sh [--edge] [--pingora]" >&2; exit 2 ;;
  esac
done
NEED=()
command -v haproxy >/dev/null || NEED+=(haproxy)
((PINGORA)) && ! command -v cmake >/dev/null && NEED+=(cmake)
if ((${#NEED[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${NEED[@]}" >/dev/null
fi
if ((PINGORA)); then
  CARGO_TARGET_DIR=bench/peers/pingora/target \
    cargo build --release --quiet --manifest-path bench/peers/pingora/Cargo.toml
fi
source bench/lib.sh

# The backend: one nginx worker answering 200.
start_nginx_return_200 1 127.0.0.1
BACKEND_PORT=$NGINX_PORT
mkdir -p "$WORK/front"

# nginx as the peer proxy.
NGINX_PROXY_PORT=$((BACKEND_PORT + 1))
cat > "$WORK/front/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/front/nginx.pid;
error_log $WORK/front/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/front; proxy_temp_path $WORK/front; fastcgi_temp_path $WORK/front;
  uwsgi_temp_path $WORK/front; scgi_temp_path $WORK/front;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGINX_PROXY_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
nginx -c "$WORK/front/nginx.conf" -p "$WORK/front"
PIDS+=("$(cat "$WORK/front/nginx.pid")")

# HAProxy as the second peer.
HAPROXY_PORT=$((BACKEND_PORT + 2))
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  server b1 127.0.0.1:$BACKEND_PORT
CONF
haproxy -f "$WORK/haproxy.cfg" -D -p "$WORK/haproxy.pid"
PIDS+=("$(cat "$WORK/haproxy.pid")")

CONTENDERS=(nginx haproxy)
if ((PINGORA)); then
  PINGORA_PORT=$((BACKEND_PORT + 3))
  cat > "$WORK/pingora.yaml" <<CONF
version: 1
threads: 2
work_stealing: false
grace_period_seconds: 0
graceful_shutdown_timeout_seconds: 1
pid_file: $WORK/pingora.pid
upgrade_sock: $WORK/pingora.sock
CONF
  LISTEN=127.0.0.1:$PINGORA_PORT BACKEND=127.0.0.1:$BACKEND_PORT \
    bench/peers/pingora/target/release/pingora-bench-proxy -c "$WORK/pingora.yaml" \
    > "$WORK/pingora.log" 2>&1 &
  PINGORA_PID=$!
  PIDS+=("$PINGORA_PID")
  CONTENDERS+=(pingora)
fi
CONTENDERS+=(vantage)

# Vantage: a zone, a pool of the backend (no monitor: it takes traffic at once), a proxied LB.
if ((EDGE)); then
  start_vantage "$WORK/data" "$WORK/vantage.log" --no-agent
  start_edge "$WORK/data" "$WORK/edge.log" --proxy-listen 127.0.0.1:0
  PROXY=$(serving_addr "$WORK/edge.log" proxy)
  PROXY_PID=${PIDS[-1]}
else
  start_vantage "$WORK/data" "$WORK/vantage.log" --proxy-listen 127.0.0.1:0 --no-agent
  PROXY=$(serving_addr "$WORK/vantage.log" proxy)
  PROXY_PID=$VPID
fi
create_zone example.com
POOL=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/pools" \
  -d "{\"name\":\"backend\",\"origins\":[{\"name\":\"b1\",\"address\":\"127.0.0.1\",\"port\":$BACKEND_PORT}]}" | json 'd["result"]["id"]')
api -X POST "$BASE/zones/$ZONE/load_balancers" \
  -d "{\"name\":\"bench.example.com\",\"proxied\":true,\"default_pools\":[\"$POOL\"],\"fallback_pool\":\"$POOL\"}" >/dev/null
python3 - "$POOL" > "$WORK/rules-lb.json" <<'PY'
import json, sys
pool = sys.argv[1]
conditions = [
    'starts_with(http.request.uri.path, "/api/")',
    'http.request.uri.path eq "/maintenance"',
    'any(http.request.headers["x-canary"][*] eq "1")',
    'http.request.method in {"POST" "PUT" "DELETE"} and http.host eq "admin.example.com"',
    'http.request.uri.path matches "^/v[0-9]+/(users|orders)/[0-9]+$"',
    'ip.src in {10.0.0.0/8 172.16.0.0/12 192.168.0.0/16}',
    'http.request.uri.args["beta"][0] eq "true"',
    'lower(http.request.headers["user-agent"][0]) contains "bot"',
    'http.cookie contains "region=eu" or cf.load_balancer.region eq "WEU"',
    'ends_with(http.request.uri.path, ".php")',
]
print(json.dumps({
    "name": "rules.example.com", "proxied": True, "default_pools": [pool], "fallback_pool": pool,
    "rules": [{"name": f"rule-{i}", "condition": c, "overrides": {"default_pools": [pool]}}
              for i, c in enumerate(conditions)],
}))
PY
api -X POST "$BASE/zones/$ZONE/load_balancers" -d @"$WORK/rules-lb.json" >/dev/null
for host in bench.example.com rules.example.com; do
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "http://$PROXY/") == 200 ]] && break
    sleep 0.05
  done
done
url_of() {
  case $1 in
    direct) echo "http://127.0.0.1:$BACKEND_PORT/" ;; nginx) echo "http://127.0.0.1:$NGINX_PROXY_PORT/" ;;
    haproxy) echo "http://127.0.0.1:$HAPROXY_PORT/" ;; pingora) echo "http://127.0.0.1:$PINGORA_PORT/" ;;
    *) echo "http://$PROXY/" ;;
  esac
}
for name in direct "${CONTENDERS[@]}"; do
  for _ in $(seq 100); do
    [[ $(curl -s -H 'Host: bench.example.com' "$(url_of "$name")") == ok ]] && continue 2
    sleep 0.05
  done
  echo "$name ($(url_of "$name")) does not answer ok" >&2; exit 1
done

# The processes doing each contender's work (nginx's workers, not its idle master).
BACKEND_WORKERS=$(pgrep -P "$(cat "$WORK/nginx-$BACKEND_PORT/nginx.pid")" | tr '\n' ' ')
FRONT_WORKERS=$(pgrep -P "$(cat "$WORK/front/nginx.pid")" | tr '\n' ' ')
pids_of() {
  case $1 in
    direct) echo "$BACKEND_WORKERS" ;; nginx) echo "$FRONT_WORKERS" ;;
    haproxy) cat "$WORK/haproxy.pid" ;; pingora) echo "$PINGORA_PID" ;; *) echo "$PROXY_PID" ;;
  esac
}
run() { # NAME URL ROUND [HOST]
  local u0 s0 u1 s1
  # shellcheck disable=SC2046
  IFS=, read -r u0 s0 < <(cpu_ticks_of $(pids_of "$1"))
  wrk -t1 -c64 -d10s --latency -H "Host: ${4:-bench.example.com}" "$2" > "$WORK/$1.$3.out"
  # shellcheck disable=SC2046
  IFS=, read -r u1 s1 < <(cpu_ticks_of $(pids_of "$1"))
  echo "$((u1 - u0)) $((s1 - s0))" > "$WORK/$1.$3.cpu"
  printf '%-8s round %s: %8.0f req/s  p99 %6.3f ms  CPU/request %s\n' "$1" "$3" "$(wrk_rps "$WORK/$1.$3.out")" "$(wrk_p99_ms "$WORK/$1.$3.out")" \
    "$(python3 - "$WORK/$1.$3" <<'PY'
import os, re, sys
f = sys.argv[1]
n = int(re.search(r"(\d+) requests in", open(f + ".out").read()).group(1))
u, s = map(int, open(f + ".cpu").read().split())
tick = 1e6 / os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts clock ticks
print(f"user {u * tick / n:.2f} us + kernel {s * tick / n:.2f} us")
PY
)"
}
echo "== wrk -t1 -c64 -d10s through each proxy to the same backend ($(nproc) cores)"
for round in 1 2; do
  for name in direct "${CONTENDERS[@]}"; do
    run "$name" "$(url_of "$name")" $round
  done
  run vantage_rules "http://$PROXY/" $round rules.example.com
done
echo "== two more rounds of Vantage without and with rules, alternating (machine noise moves single runs by ±5 %)"
for round in 3 4; do
  run vantage "http://$PROXY/" $round
  run vantage_rules "http://$PROXY/" $round rules.example.com
done
echo "== wrk -t1 -c1 -d10s (one request at a time: the hop's own latency)"
for name in direct "${CONTENDERS[@]}"; do
  wrk -t1 -c1 -d10s --latency -H 'Host: bench.example.com' "$(url_of "$name")" > "$WORK/$name.c1.out"
  printf '%-8s c1: %8.0f req/s  p99 %6.3f ms\n' "$name" "$(wrk_rps "$WORK/$name.c1.out")" "$(wrk_p99_ms "$WORK/$name.c1.out")"
done
VRSS=$(rss_kb "$VPID")
python3 - "$WORK" "$VRSS" "${CONTENDERS[@]}" <<'PY'
import os, re, sys, statistics
work, rss, contenders = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def read(name, r):
    t = open(f"{work}/{name}.{r}.out").read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))
    v, u = re.search(r"\s99%\s+([0-9.]+)(us|ms|s)", t).groups()
    p99 = float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
    return rps, p99
res = {n: [read(n, r) for r in (1, 2)] for n in ["direct"] + contenders}
med = lambda n, i: statistics.mean(x[i] for x in res[n])
added = lambda n: statistics.mean(res[n][r][1] - res["direct"][r][1] for r in (0, 1))
print(f"RESULT proxy nginx_rps={med('nginx',0):.0f} haproxy_rps={med('haproxy',0):.0f} "
      f"vantage_rps={med('vantage',0):.0f} ratio_vs_nginx={med('vantage',0)/med('nginx',0):.2f} (goal >= 1.0) "
      f"ratio_vs_haproxy={med('vantage',0)/med('haproxy',0):.2f}")
if "pingora" in contenders:
    print(f"RESULT pingora pingora_rps={med('pingora',0):.0f} "
          f"pingora_vs_nginx={med('pingora',0)/med('nginx',0):.2f} "
          f"pingora_vs_haproxy={med('pingora',0)/med('haproxy',0):.2f} "
          f"vantage_vs_pingora={med('vantage',0)/med('pingora',0):.2f}")
plain = statistics.mean(read("vantage", r)[0] for r in (1, 2, 3, 4))
ruled = statistics.mean(read("vantage_rules", r)[0] for r in (1, 2, 3, 4))
print(f"RESULT rules vantage_rps={plain:.0f} vantage_10_rules_rps={ruled:.0f} "
      f"ratio={ruled/plain:.2f} (goal >= 0.95; four alternating rounds each)")
def cpu(n):
    u = s = reqs = 0
    for r in (1, 2):
        a, b = map(int, open(f"{work}/{n}.{r}.cpu").read().split())
        u, s = u + a, s + b
        reqs += int(re.search(r"(\d+) requests in", open(f"{work}/{n}.{r}.out").read()).group(1))
    tick = 1e6 / os.sysconf("SC_CLK_TCK")
    return u * tick / reqs, s * tick / reqs
cpus = {n: cpu(n) for n in contenders}
print("RESULT cpu_us_per_request " + " ".join(
    f"{n}={u + s:.2f}(user={u:.2f},kernel={s:.2f})" for n, (u, s) in cpus.items())
    + f" vantage_vs_nginx={sum(cpus['vantage']) / sum(cpus['nginx']):.2f}")
print("RESULT added_p99_ms_c64 " + " ".join(f"{n}={added(n):.3f}" for n in contenders)
      + f" (goal <= 1 ms) vantage_rss_mb={rss/1024:.1f}")
c1 = {n: read(n, "c1") for n in ["direct"] + contenders}
add1 = lambda n: c1[n][1] - c1["direct"][1]
print("RESULT added_p99_ms_c1 " + " ".join(f"{n}={add1(n):.3f}" for n in contenders)
      + " (goal <= 1 ms)")
PY
