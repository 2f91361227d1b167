#!/usr/bin/env bash
# API benchmark (issue: foundation). Two parts, both on loopback:
#  1. GET .../pools/{id} with a valid token: Vantage vs nginx serving the same JSON bytes from a
#     file, `wrk -t1 -c64 -d10s` each, in the same run.
#  2. Create 10,000 pools of 8 origins through the API (wrk with a Lua script that stops after
#     10,000 answers): creates/s, the server's peak RSS, and its RSS after a restart with all of
#     them loaded.
# Usage: bench/api.sh [--postgres | --fsync]   (installs wrk and nginx from Debian if missing;
#        builds --release). With --postgres the server keeps its catalog in a throwaway
#        PostgreSQL cluster on this machine (`--store postgres://…`) instead of the SQLite file;
#        with --fsync the SQLite file is fsynced on every commit (PostgreSQL's own default
#        durability: a commit survives a power loss).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh

STORE=sqlite; STORE_FLAGS=()
if [[ ${1:-} == --postgres ]]; then
  start_postgres
  STORE=postgres; STORE_FLAGS=(--store "$PG_URL")
elif [[ ${1:-} == --fsync ]]; then
  STORE=sqlite-fsync; STORE_FLAGS=(--fsync)
fi
start_vantage "$WORK/data" "$WORK/vantage.log" "${STORE_FLAGS[@]}"
BASE=http://$VADDR/client/v4
ACCOUNT=$(api "$BASE/accounts" | json 'd["result"][0]["id"]')
POOL_BODY='{"name":"bench","origins":[{"name":"o1","address":"192.0.2.1"},{"name":"o2","address":"192.0.2.2"},{"name":"o3","address":"192.0.2.3"},{"name":"o4","address":"192.0.2.4"},{"name":"o5","address":"192.0.2.5"},{"name":"o6","address":"192.0.2.6"},{"name":"o7","address":"192.0.2.7"},{"name":"o8","address":"192.0.2.8"}]}'
POOL=$(api -X POST "$BASE/accounts/$ACCOUNT/load_balancers/pools" -d "$POOL_BODY" | json 'd["result"]["id"]')
POOL_PATH=/client/v4/accounts/$ACCOUNT/load_balancers/pools/$POOL

start_nginx_mirror "$POOL_PATH"

echo "== GET pool: wrk -t1 -c64 -d10s --latency"
echo "-- nginx $(nginx -v 2>&1 | sed 's/.*\///') (static file, same bytes)"
wrk -t1 -c64 -d10s --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NGINX_PORT$POOL_PATH" | tee "$WORK/nginx.out"
echo "-- vantage"
wrk -t1 -c64 -d10s --latency -H "Authorization: Bearer $TOKEN" "http://$VADDR$POOL_PATH" | tee "$WORK/vantage.out"
rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
p99() { awk '$1=="99%" {print $2}' "$1"; }
python3 - "$(rps "$WORK/nginx.out")" "$(rps "$WORK/vantage.out")" "$(p99 "$WORK/vantage.out")" "$STORE" "$(p99 "$WORK/nginx.out")" <<'PY'
import sys
n, v, p99, np99 = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[5]
print(f"RESULT get_pool store={sys.argv[4]} nginx_rps={n:.0f} vantage_rps={v:.0f} ratio={v/n:.2f} (goal >= 0.9) "
      f"vantage_p99={p99} nginx_p99={np99} (goal: vantage's <= nginx's + 1 ms)")
PY

echo "== create 10,000 pools of 8 origins: wrk -t1 -c16, timed until the 10,000th is stored"
cat > "$WORK/create.lua" <<'LUA'
local n = 0
local origins = '[{"name":"o1","address":"192.0.2.1"},{"name":"o2","address":"192.0.2.2"},{"name":"o3","address":"192.0.2.3"},{"name":"o4","address":"192.0.2.4"},{"name":"o5","address":"192.0.2.5"},{"name":"o6","address":"192.0.2.6"},{"name":"o7","address":"192.0.2.7"},{"name":"o8","address":"2001:db8::8"}]'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  -- wrk calls request() once per thread before connecting, so one name is never sent: ask
  -- for 10,001 creates to store 10,000.
  if n > 10001 then
    -- Enough pools: keep the connections busy with cheap reads until wrk is stopped.
    return wrk.format("GET", "/client/v4/user/tokens/verify")
  end
  return wrk.format(nil, nil, nil, '{"name":"pool-' .. n .. '","origins":' .. origins .. '}')
end
LUA
# Polled every 0.1 s while wrk runs, so without a Python start each time (that took a
# quarter of the machine's CPU away from the run being timed).
pool_count() { api "$BASE/accounts/$ACCOUNT/load_balancers/pools?per_page=1" | grep -o '"total_count":[0-9]*' | cut -d: -f2; }
# On PostgreSQL, the catalog head moves once per transaction: creates per transaction is
# what group commit achieved.
head() { if [[ $STORE == postgres ]]; then psql "$PG_URL" -Atc "SELECT version FROM catalog_head"; else echo 0; fi; }
HEAD0=$(head)
T0=$(date +%s.%N)
wrk -t1 -c16 -d300s -s "$WORK/create.lua" -H "Authorization: Bearer $TOKEN" "$BASE/accounts/$ACCOUNT/load_balancers/pools" > "$WORK/create.out" &
WRK=$!; PIDS+=("$WRK")
until [[ $(pool_count) -ge 10001 ]]; do sleep 0.1; done
T1=$(date +%s.%N)
kill "$WRK"; wait "$WRK" 2>/dev/null || true
TRANSACTIONS=$(( $(head) - HEAD0 ))
COUNT=$(pool_count)
PEAK=$(hwm_kb "$VPID")
kill -TERM "$VPID"; wait "$VPID" || true
start_vantage "$WORK/data" "$WORK/vantage-restarted.log" "${STORE_FLAGS[@]}"
api "http://$VADDR/client/v4/accounts/$ACCOUNT/load_balancers/pools?per_page=1" >/dev/null
LOADED=$(rss_kb "$VPID")
python3 - "$T0" "$T1" "$COUNT" "$PEAK" "$LOADED" "$STORE" "$TRANSACTIONS" <<'PY'
import sys
t0, t1, count, peak, loaded = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
transactions = int(sys.argv[7])
rate = 10000 / (t1 - t0)
print(f"RESULT create_pools store={sys.argv[6]} stored={count} seconds={t1 - t0:.2f} creates_per_s={rate:.0f} (goal >= 1000) peak_rss={peak/1024:.1f}MB "
      f"rss_after_restart_with_all_loaded={loaded/1024:.1f}MB (goal <= 150MB)"
      + (f" transactions={transactions} creates_per_transaction={10000 / transactions:.1f}" if transactions else ""))
PY
