#!/usr/bin/env bash
# The regression guard by instruction count (issue 16 item 6): runs the core's micro-benchmarks
# (`crates/core/benches`) in their counted mode, a small fixed workload each, under valgrind's
# callgrind, and compares the instructions each ran with bench/instructions.baseline. A count
# of a fixed workload does not move with the machine's noise (two runs differ by under 0.01 %),
# so CI can hold it; the margin (25 %) is for other compilers and valgrind versions, so only a
# large regression fails. No wall clock is read.
# Usage: bench/instructions.sh            # compare; exits 1 on a regression past the margin
#        bench/instructions.sh --update   # write the counts as the new baseline
set -euo pipefail
cd "$(dirname "$0")/.."
BASELINE=bench/instructions.baseline
MARGIN=1.25

if ! command -v valgrind >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi

# The benchmark executables, as cargo names them.
EXES=$(cargo bench -p vantage-core --no-run --locked --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and "bench" in m["target"]["kind"] and m.get("executable"):
        print(m["target"]["name"], m["executable"])
')

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failed=0
counts=()
while read -r name exe; do
  VANTAGE_BENCH_COUNT=1 valgrind --tool=callgrind --callgrind-out-file="$OUT/$name" "$exe" </dev/null >/dev/null 2>"$OUT/$name.log" \
    || { echo "$name: failed under valgrind"; cat "$OUT/$name.log"; exit 1; }
  count=$(awk '/^(summary|totals):/ {print $2; exit}' "$OUT/$name")
  counts+=("$name $count")
  base=$(awk -v n="$name" '$1 == n {print $2}' "$BASELINE" 2>/dev/null || true)
  if [[ -z $base ]]; then
    echo "$name: $count instructions (no baseline)"
    # A benchmark without a baseline is unguarded: only --update may leave it so.
    [[ ${1:-} == --update ]] || failed=1
    continue
  fi
  verdict=$(python3 -c "
r = $count / $base
print(f'{r:.3f}', 'regression' if r > $MARGIN else ('faster: update the baseline' if r < 1 / $MARGIN else 'ok'))")
  echo "$name: $count instructions, baseline $base, ratio $verdict"
  [[ $verdict == *regression* ]] && failed=1
done <<<"$EXES"

if [[ ${1:-} == --update ]]; then
  {
    echo "# Instructions each core benchmark runs in its counted mode, under callgrind"
    echo "# (bench/instructions.sh --update writes this; $(rustc --version), $(valgrind --version))."
    printf '%s\n' "${counts[@]}"
  } >"$BASELINE"
  echo "baseline written: $BASELINE"
  exit 0
fi
if [[ $failed == 1 ]]; then
  echo "instruction counts regressed past ${MARGIN}x the baseline, or a benchmark has none (bench/instructions.baseline)" >&2
  exit 1
fi
