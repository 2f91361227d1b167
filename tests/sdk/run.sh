#!/usr/bin/env bash
# Runs the Cloudflare-Python-SDK compatibility suite against a real `vantage serve`.
#
#   tests/sdk/run.sh [extra pytest args...]
#
# Environment:
#   VANTAGE_BIN       server binary (default: $REPO/target/debug/vantage). Building it is the caller's job.
#   VANTAGE_SDK_VENV  virtualenv to use/create (default: $REPO/target/sdk-venv).
# Exit code: pytest's.
set -euo pipefail

SDK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SDK_DIR/../.." && pwd)"
VENV="${VANTAGE_SDK_VENV:-$REPO/target/sdk-venv}"
VANTAGE_BIN="${VANTAGE_BIN:-$REPO/target/debug/vantage}"
REQUIREMENTS="$SDK_DIR/requirements.txt"

if [[ ! -x "$VANTAGE_BIN" ]]; then
    echo "run.sh: server binary not found or not executable: $VANTAGE_BIN" >&2
    echo "run.sh: build it first (e.g. 'cargo build -p vantage') or set VANTAGE_BIN" >&2
    exit 2
fi
# Absolute path: pytest runs from $REPO, the fixture spawns the binary from there.
VANTAGE_BIN="$(cd "$(dirname "$VANTAGE_BIN")" && pwd)/$(basename "$VANTAGE_BIN")"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "run.sh: creating virtualenv $VENV" >&2
    python3 -m venv "$VENV"
fi

req_hash="$( { cat "$REQUIREMENTS"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)"
stamp="$VENV/.vantage-sdk-requirements-$req_hash"
if [[ ! -f "$stamp" ]]; then
    echo "run.sh: installing $(grep -v '^#' "$REQUIREMENTS" | tr '\n' ' ')into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    rm -f "$VENV"/.vantage-sdk-requirements-*
    touch "$stamp"
fi

export VANTAGE_BIN
export PYTHONDONTWRITEBYTECODE=1
cd "$REPO"
set +e
"$VENV/bin/python" -m pytest -q tests/sdk "$@"
rc=$?
set -e
exit "$rc"
