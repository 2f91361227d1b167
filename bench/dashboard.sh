#!/usr/bin/env bash
# Dashboard benchmark (issue: operability): 1,000 pools of 10 origins (each pool monitored by a
# TCP monitor against a local nginx, so every cell has a verdict) behind 100 load balancers;
# the first render of the dashboard in headless Chromium, median of five page loads.
# Usage: bench/dashboard.sh   (needs chromium and node; tests/browser/run.sh installs both)
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
source bench/lib.sh
start_nginx_return_200 1 127.0.0.1
start_vantage "$WORK/data" "$WORK/vantage.log"
create_zone example.com
python3 - "$BASE" "$TOKEN" "$ACCOUNT" "$ZONE" "$NGINX_PORT" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, token, account, zone, port = sys.argv[1:]
def call(method, path, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["result"]
mon = call("POST", f"/accounts/{account}/load_balancers/monitors",
    {"type": "tcp", "port": int(port), "interval": 60, "timeout": 5, "retries": 0, "description": "tcp"})
def pool(i):
    origins = [{"name": f"o{j}", "address": "127.0.0.1"} for j in range(10)]
    return call("POST", f"/accounts/{account}/load_balancers/pools",
        {"name": f"pool-{i:04d}", "monitor": mon["id"], "origins": origins})["id"]
with ThreadPoolExecutor(8) as ex:
    ids = list(ex.map(pool, range(1000)))
for i in range(100):
    call("POST", f"/zones/{zone}/load_balancers",
        {"name": f"lb{i}.example.com", "default_pools": ids[i*10:i*10+9], "fallback_pool": ids[i*10+9]})
print("created 1,000 pools x 10 origins, 100 load balancers")
PY
# Every origin has a verdict before measuring.
for _ in $(seq 100); do
  n=$(curl -s -H "Authorization: Bearer $TOKEN" "http://$VADDR/dashboard/v1/state" | python3 -c 'import json,sys; d=json.load(sys.stdin)["result"]; print(sum(1 for p in d["pools"] for o in p["origins"] if o["healthy"] is not None))')
  [[ $n -ge 10000 ]] && break
  sleep 0.2
done
SIZE=$(curl -s -H "Authorization: Bearer $TOKEN" "http://$VADDR/dashboard/v1/state" | wc -c)
echo "state document: $SIZE bytes"
node bench/dashboard.mjs "http://$VADDR" "$TOKEN"
