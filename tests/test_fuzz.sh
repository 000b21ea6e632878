#!/usr/bin/env bash
# A bounded run of every fuzz target (tests/fuzz/, built by `make fuzz-bins` with clang, ASan and UBSan) from its
# seed corpus: FUZZ_TIME seconds each (default 8, about a minute in all). `make fuzz` runs them longer.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bins=("$root"/build/fuzz/fuzz_*)
targets=()
for b in "${bins[@]}"; do [ -x "$b" ] && [ -f "$b" ] && targets+=("$b"); done
if [ ${#targets[@]} = 0 ]; then
  echo "FAIL fuzz_targets_built: no build/fuzz/fuzz_* (make fuzz-bins needs clang and libclang-rt-14-dev)"
  echo "RESULT 0 passed, 1 failed"; exit 1
fi
cd "$root"
FUZZ_TIME=${FUZZ_TIME:-8} FUZZ_WORK=${GSL_TEST_TMP:-build/fuzz}/fuzz-work tests/fuzz/run.sh "${targets[@]}"
