#!/usr/bin/env bash
# Schema-driven fuzzing of the API with schemathesis (PyPI, pinned in requirements.txt): every
# operation of the served OpenAPI document, with generated valid and invalid inputs, against a
# real `vantage serve` on a fresh data directory. Fails on any 5xx and on any response that does
# not match the document.
#
# Environment: VANTAGE_BIN (default target/debug/vantage), VANTAGE_FUZZ_VENV (default
# target/fuzz-venv), VANTAGE_FUZZ_EXAMPLES (default 20 per operation).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DIR/../.." && pwd)"
VENV="${VANTAGE_FUZZ_VENV:-$REPO/target/fuzz-venv}"
BIN="${VANTAGE_BIN:-$REPO/target/debug/vantage}"
TOKEN=fuzz-token-0123456789abcdefghijklmnopqrstuvwxyzABCD

if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.requirements-$(sha256sum < "$DIR/requirements.txt" | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$DIR/requirements.txt"
  touch "$stamp"
fi

WORK=$(mktemp -d)
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
VANTAGE_BOOTSTRAP_TOKEN=$TOKEN VANTAGE_LOG=warn,vantage=info "$BIN" serve --listen 127.0.0.1:0 \
  --data-dir "$WORK/data" --no-agent 2>"$WORK/log" &
PID=$!
for _ in $(seq 200); do
  ADDR=$(grep -o 'listening on [0-9.:]*' "$WORK/log" | awk '{print $3}' || true)
  [[ -n $ADDR ]] && break
  sleep 0.05
done
[[ -n ${ADDR:-} ]] || { echo "vantage did not start: $(cat "$WORK/log")" >&2; exit 1; }

# Real objects, so that operations on one reach the handler's logic instead of stopping at 404.
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@"; }
id() { "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["result"]["id"])'; }
B="http://$ADDR/client/v4"
ACCOUNT=$(api "$B/accounts" | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["result"][0]["id"])')
ZONE=$(api -X POST "$B/zones" -d "{\"name\":\"example.com\",\"account\":{\"id\":\"$ACCOUNT\"}}" | id)
MONITOR=$(api -X POST "$B/accounts/$ACCOUNT/load_balancers/monitors" -d '{"type":"http","expected_codes":"200"}' | id)
POOL=$(api -X POST "$B/accounts/$ACCOUNT/load_balancers/pools" \
  -d "{\"name\":\"p\",\"monitor\":\"$MONITOR\",\"origins\":[{\"name\":\"o\",\"address\":\"192.0.2.1\"}]}" | id)
GROUP=$(api -X POST "$B/accounts/$ACCOUNT/load_balancers/monitor_groups" \
  -d "{\"description\":\"g\",\"members\":[{\"monitor_id\":\"$MONITOR\"}]}" | id)
LB=$(api -X POST "$B/zones/$ZONE/load_balancers" \
  -d "{\"name\":\"www.example.com\",\"default_pools\":[\"$POOL\"],\"fallback_pool\":\"$POOL\"}" | id)
cat > "$WORK/schemathesis.toml" <<TOML
[parameters]
account_id = "$ACCOUNT"
zone_id = "$ZONE"
monitor_id = "$MONITOR"
pool_id = "$POOL"
monitor_group_id = "$GROUP"
lb_id = "$LB"
region_id = "WNAM"
TOML

cd "$WORK"
"$VENV/bin/st" run "http://$ADDR/client/v4/openapi.json" \
  --url "http://$ADDR/client/v4" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${VANTAGE_FUZZ_EXAMPLES:-20}" \
  --seed 1 \
  --generation-deterministic \
  --no-color
