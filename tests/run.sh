#!/usr/bin/env bash
# Runs every test program and script given, adds up their "RESULT N passed, M failed" lines, and ends with one
# line "N passed, N failed". A program that dies without its RESULT line counts as one failure.
#   tests/run.sh PROGRAM_OR_SCRIPT...
# Env: GSL_TEST_TMP (scratch folder, emptied first); TEST_FILTER (substring of the names to run).
set -u
tmp=${GSL_TEST_TMP:-build/test-tmp}
rm -rf "$tmp" && mkdir -p "$tmp"
export GSL_TEST_TMP=$tmp
# Sanitized builds: upstream Darknet's own leaks are suppressed (tests/lsan.supp), ours are not.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
passed=0 failed=0 broken=()
for t in "$@"; do
  name=$(basename "$t")
  case $name in *"${TEST_FILTER:-}"*) ;; *) continue ;; esac
  echo "== $name"
  log="$tmp/$name.log"
  start=$(date +%s)
  if [ "${t##*.}" = sh ]; then bash "$t" > "$log" 2>&1; else "$t" > "$log" 2>&1; fi
  rc=$?
  cat "$log"
  line=$(grep -E '^RESULT [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "!! $name exited with status $rc and no RESULT line (crash?)"
    failed=$((failed + 1)); broken+=("$name")
    continue
  fi
  p=$(echo "$line" | awk '{print $2}'); f=$(echo "$line" | awk '{print $4}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "!! $name exited with status $rc although its tests passed"
    failed=$((failed + 1))
  fi
  [ "$f" != 0 ] || [ "$rc" != 0 ] && broken+=("$name")
  echo "   ($(( $(date +%s) - start )) s)"
done
[ ${#broken[@]} = 0 ] || echo "failing: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
