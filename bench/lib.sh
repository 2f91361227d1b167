# Shared by the bench scripts: tools, a scratch directory cleaned on exit, starting a release
# Vantage on a free port, and calling its API. Source it from the repository root.
set -euo pipefail

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null
fi
# VANTAGE_BENCH_BIN=PATH runs another build (say, the last commit's, copied aside) for an A/B
# comparison in the same conditions.
if [[ -n ${VANTAGE_BENCH_BIN:-} ]]; then
  BIN=$VANTAGE_BENCH_BIN
else
  cargo build --release -q -p vantage
  BIN=$(pwd)/target/release/vantage
fi

WORK=$(mktemp -d); chmod 755 "$WORK"   # nginx workers run unprivileged
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.2; rm -rf "$WORK" 2>/dev/null || true; }
trap cleanup EXIT

TOKEN=bench-token-0123456789abcdefghijklmnopqrstuvwxyzABCD

# Benchmarks build one account far past the default quotas (api.sh: 10,001 pools; edges.sh:
# 20,000): they measure scale, not the quotas.
BENCH_QUOTA=${VANTAGE_QUOTA:-pools=1000000,origins=10000000,monitors=1000000,load_balancers=1000000}

# start_vantage DATA_DIR LOG [serve flags...]: starts a server, sets VPID and VADDR once it
# listens.
start_vantage() {
  VANTAGE_QUOTA=$BENCH_QUOTA VANTAGE_BOOTSTRAP_TOKEN=$TOKEN VANTAGE_LOG=${VANTAGE_LOG:-warn,vantage=info} "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" "${@:3}" 2>"$2" &
  VPID=$!; PIDS+=("$VPID")
  for _ in $(seq 200); do
    VADDR=$(grep -o 'listening on [0-9.:]*' "$2" | awk '{print $3}' || true)
    [[ -n $VADDR ]] && return 0
    sleep 0.05
  done
  echo "vantage did not start: $(cat "$2")" >&2; exit 1
}

# start_edge DATA_DIR LOG [edge flags...]: an edge token on the controller at VADDR (whose
# data directory is DATA_DIR), and `vantage edge` following it; returns once it applied the
# controller's snapshot.
start_edge() {
  local token
  token=$("$BIN" token create --data-dir "$1" --name "bench-edge-$RANDOM" --edge)
  sleep 1   # the controller picks up tokens the CLI wrote within half a second
  VANTAGE_LOG=warn,vantage=info "$BIN" edge --controller "http://$VADDR" --token "$token" \
    --snapshot-file "$WORK/edge-$RANDOM.snapshot" "${@:3}" 2>"$2" &
  PIDS+=("$!")
  for _ in $(seq 200); do
    grep -q "applied the routing snapshot from controller" "$2" && return 0
    sleep 0.05
  done
  echo "the edge did not start: $(cat "$2")" >&2; exit 1
}

# serving_addr LOG WHAT: the address of a data-plane listener ("proxy", "dns") from the log.
serving_addr() { grep -o "$2 serving on [0-9.:]*" "$1" | awk '{print $4}'; }

# wrk_rps FILE / wrk_p99_ms FILE: read from `wrk --latency` output.
wrk_rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
wrk_p99_ms() {
  awk '$1=="99%" { v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
    if (u=="us") v/=1000; else if (u=="s") v*=1000; print v }' "$1"
}

api() { curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
# cpu_ticks PID: user + system CPU of PID so far, in clock ticks (getconf CLK_TCK per second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_ticks_of PID...: "user,kernel" clock ticks summed over the processes.
cpu_ticks_of() {
  [[ $# -gt 0 ]] || { echo "cpu_ticks_of: no process given" >&2; exit 1; }
  cat $(printf '/proc/%s/stat ' "$@") | awk '{u += $14; s += $15} END {print u "," s}'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# start_nginx_return_200 [WORKERS] [ADDR]: nginx answering `200 ok` to everything on NGINX_PORT
# (default: one worker per core, all addresses).
start_nginx_return_200() {
  NGINX_PORT=$((20000 + RANDOM % 10000))
  local dir=$WORK/nginx-$NGINX_PORT listen=${2:+$2:}$NGINX_PORT
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes ${1:-auto};
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log crit;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  server { listen $listen; location / { return 200 "ok"; } }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir"
  PIDS+=("$(cat "$dir/nginx.pid")")
  # The master writes its pid file before it forks the workers; scripts that read the workers'
  # CPU time must see them all.
  local want=${1:-auto}
  [[ $want == auto ]] && want=$(nproc)
  for _ in $(seq 100); do
    [[ $(pgrep -c -P "$(cat "$dir/nginx.pid")" || true) -ge $want ]] && return 0
    sleep 0.05
  done
  echo "nginx did not start its $want workers" >&2; exit 1
}

# start_nginx_mirror PATH: nginx (a worker per core) serving at PATH the very bytes Vantage
# answers there, from a file, on NGINX_PORT; fails unless both serve the same bytes.
start_nginx_mirror() {
  mkdir -p "$WORK/www$(dirname "$1")" "$WORK/nginx"
  api "http://$VADDR$1" > "$WORK/www$1"
  NGINX_PORT=$((20000 + RANDOM % 20000))
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
  chmod -R a+rX "$WORK/www"   # nginx workers run unprivileged
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
  PIDS+=("$(cat "$WORK/nginx/nginx.pid")")
  # Both must serve the same bytes, or the comparison means nothing.
  cmp <(curl -sf "http://127.0.0.1:$NGINX_PORT$1") <(api "http://$VADDR$1") \
    || { echo "nginx and vantage do not serve the same bytes" >&2; exit 1; }
}

# create_zone NAME: sets ACCOUNT (the bootstrap account) and ZONE (a new zone NAME) on Vantage.
create_zone() {
  BASE=http://$VADDR/client/v4
  ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
  ZONE=$(api -X POST "$BASE/zones" -d "{\"name\":\"$1\",\"account\":{\"id\":\"$ACCOUNT\"}}" | json 'd["result"]["id"]')
}

# start_postgres: a throwaway PostgreSQL cluster in $WORK (scripts/pg-cluster); sets PG_URL to
# a fresh database in it. Stopped on exit with the rest.
start_postgres() {
  PG_URL=$(bash scripts/pg-cluster start "$WORK/pg")
  trap 'bash scripts/pg-cluster stop "$WORK/pg"; cleanup' EXIT
}
