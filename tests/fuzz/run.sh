#!/usr/bin/env bash
# Runs each fuzz target for FUZZ_TIME seconds (default 300) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<target>/); a crash, leak, sanitizer report or timeout leaves its input in build/fuzz/findings/
# and fails. Prints "RESULT N passed, M failed" (one test per target), as tests/run.sh expects.
#   tests/fuzz/run.sh build/fuzz/fuzz_cfg ...
set -u
here=$(cd "$(dirname "$0")" && pwd)
time=${FUZZ_TIME:-300}
work=${FUZZ_WORK:-build/fuzz/work}
findings=build/fuzz/findings
mkdir -p "$findings"
pass=0 fail=0
for bin in "$@"; do
  t=$(basename "$bin")
  rm -rf "$work/$t" && mkdir -p "$work/$t"
  cp "$here/corpus/$t"/* "$work/$t/" 2>/dev/null
  log="$work/$t.log"
  # -rss_limit_mb: a reader that allocates what a header claims is a finding, not an out-of-memory kill
  "$bin" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/$t-" "$work/$t" > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc = 0 ]; then
    echo "ok   $t (${runs:-?} inputs in ${time}s, corpus $(ls "$work/$t" | wc -l))"; pass=$((pass + 1))
  else
    echo "FAIL $t: exit $rc after ${runs:-?} inputs; input in $findings/, log $log:"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5 | sed 's/^/     /'
    fail=$((fail + 1))
  fi
done
echo "RESULT $pass passed, $fail failed"
[ "$fail" = 0 ]
