#!/usr/bin/env bash
# Cloudflare's TypeScript/JavaScript SDK (npm `cloudflare`, pinned in package-lock.json) against
# target/debug/vantage, with node's own test runner. Installs Node.js and npm from Debian when
# missing and able to (root).
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)
export VANTAGE_BIN=${VANTAGE_BIN:-$REPO/target/debug/vantage}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "tests/sdk-ts: needs node and npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
node --test sdk.test.mjs
