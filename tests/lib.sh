# Shared by the test scripts: pass/fail counters, `expect`, and the RESULT line that tests/run.sh adds up.
# Source it after `set -u`:  . "$(dirname "$0")/lib.sh"   and end the script with `result`.
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# expect NAME STATUS PATTERN CMD...: runs CMD, checks its exit status and that stdout+stderr matches PATTERN.
expect() {
  local name=$1 want=$2 pat=$3; shift 3
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ]; then bad "$name" "exit $rc, expected $want; output: $(echo "$out" | tail -3)"
  elif ! grep -qE -- "$pat" <<<"$out"; then bad "$name" "output lacks /$pat/: $(echo "$out" | tail -3)"
  else ok "$name"; fi
}

# Prints the RESULT line; its status is the script's (0 when nothing failed).
result() {
  echo "RESULT $pass passed, $fail failed"
  [ "$fail" = 0 ]
}
