#!/usr/bin/env bash
# The dashboard in headless Chromium: Debian's chromium driven by playwright-core (from npm,
# pinned in package-lock.json). Installs chromium and Node.js from Debian when missing and
# able to (root), then runs dashboard.test.mjs against target/debug/vantage.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "tests/browser: needs chromium, node and npm (apt-get install chromium nodejs npm)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null
  command -v node >/dev/null && command -v npm >/dev/null || apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
node dashboard.test.mjs
