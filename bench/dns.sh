#!/usr/bin/env bash
# DNS benchmark (issue: traffic). dnsperf (Debian) asks for the A record of load-balanced names
# for 10 s against Vantage's --dns-listen, and, in the same run, against NSD (Debian's
# authoritative server) serving a static zone with the same names and addresses.
#   dnsperf -l 10 -c 8 -q 256 -T 1   (1 thread for dnsperf, the other core for the server)
# Vantage answers 20 load balancers x 1 pool x 3 origins, each answer steered per query.
# With --edge, the DNS listener is a `vantage edge` following the controller (the controller
# serves no DNS itself).
# Usage: bench/dns.sh [--edge]   (installs dnsperf and nsd from Debian if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dnsperf >/dev/null || ! command -v nsd >/dev/null || ! command -v dig >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq dnsperf nsd dnsutils >/dev/null
fi
source bench/lib.sh

if [[ ${1:-} == --edge ]]; then
  start_vantage "$WORK/data" "$WORK/vantage.log" --no-agent
  start_edge "$WORK/data" "$WORK/edge.log" --dns-listen 127.0.0.1:0 --dns-rrl-rate 0
  DNS=$(serving_addr "$WORK/edge.log" dns)
else
  start_vantage "$WORK/data" "$WORK/vantage.log" --dns-listen 127.0.0.1:0 --no-agent --dns-rrl-rate 0
  DNS=$(serving_addr "$WORK/vantage.log" dns)
fi
create_zone example.com
POOL=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/pools" \
  -d '{"name":"p","origins":[{"name":"a","address":"192.0.2.1"},{"name":"b","address":"192.0.2.2"},{"name":"c","address":"192.0.2.3"}]}' | json 'd["result"]["id"]')
: > "$WORK/queries.txt"
{
  echo '$ORIGIN example.com.'
  echo '$TTL 30'
  echo '@ IN SOA ns.example.com. hostmaster.example.com. 1 10000 2400 604800 30'
  echo '@ IN NS ns.example.com.'
} > "$WORK/example.com.zone"
for i in $(seq 20); do
  api -X POST "$BASE/zones/$ZONE/load_balancers" \
    -d "{\"name\":\"lb$i.example.com\",\"default_pools\":[\"$POOL\"],\"fallback_pool\":\"$POOL\"}" >/dev/null
  echo "lb$i.example.com A" >> "$WORK/queries.txt"
  printf 'lb%s IN A 192.0.2.1\nlb%s IN A 192.0.2.2\nlb%s IN A 192.0.2.3\n' $i $i $i >> "$WORK/example.com.zone"
done
DNS_HOST=${DNS%:*}; DNS_PORT=${DNS##*:}
for _ in $(seq 100); do
  [[ -n $(dig +short @"$DNS_HOST" -p "$DNS_PORT" lb20.example.com A 2>/dev/null || true) ]] && break
  sleep 0.05
done

# NSD on the same machine, the same names.
NSD_PORT=$((DNS_PORT + 1))
mkdir -p "$WORK/nsd"
cat > "$WORK/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  server-count: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  username: ""
  chroot: ""
  zonesdir: "$WORK"
  database: ""
  pidfile: "$WORK/nsd/nsd.pid"
  xfrdfile: "$WORK/nsd/xfrd.state"
  zonelistfile: "$WORK/nsd/zone.list"
  logfile: "$WORK/nsd/nsd.log"
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
CONF
nsd -c "$WORK/nsd/nsd.conf"
for _ in $(seq 100); do [[ -s $WORK/nsd/nsd.pid ]] && break; sleep 0.05; done
PIDS+=("$(cat "$WORK/nsd/nsd.pid")")
for _ in $(seq 100); do
  [[ -n $(dig +short @127.0.0.1 -p "$NSD_PORT" lb20.example.com A 2>/dev/null || true) ]] && break
  sleep 0.05
done

run() { # NAME PORT
  dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries.txt" -l 10 -c 8 -q 256 -T 1 > "$WORK/$1.out" 2>&1
  grep -E "Queries (sent|completed|lost)|Queries per second|Average Latency" "$WORK/$1.out" | sed "s/^/$1 /"
}
echo "== dnsperf -l 10 -c 8 -q 256 -T 1, 20 names, A ($(nproc) cores)"
run nsd "$NSD_PORT"
run vantage "$DNS_PORT"
qps() { awk '/Queries per second/ {print $4}' "$WORK/$1.out"; }
echo "RESULT dns nsd_qps=$(qps nsd) vantage_qps=$(qps vantage) (goal >= 50000)"
