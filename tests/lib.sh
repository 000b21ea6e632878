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

# check NAME CONDITION DETAIL: evaluates CONDITION (a shell string) and records NAME, with DETAIL when it fails.
check() { if eval "$2"; then ok "$1"; else bad "$1" "$3"; fi; }

# close A B SKIP TAIL ATOL RTOL: "close" when the float32 arrays of files A and B (bytes SKIP to size - TAIL) agree
# within ATOL + RTOL |a| everywhere; else "maxdiff D" (the largest |a - b|), "sizes ...", "not finite" or
# "unreadable: ...". The plugin state a .weights file may end with (layers/weights_state.c: its length, a version
# and "GSLSTATE") is left out: codebooks are compared on their own. Plain python3.
close() {
  python3 - "$@" <<'PY'
import array, math, sys
import struct
def floats(p, skip, tail):
    b = open(p, "rb").read()
    if len(b) >= 20 and b[-8:] == b"GSLSTATE":
        b = b[:len(b) - 20 - struct.unpack("<Q", b[-20:-12])[0]]
    a = array.array("f"); a.frombytes(b[skip:len(b) - tail]); return a
skip, tail, atol, rtol = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
try:
    a, b = floats(sys.argv[1], skip, tail), floats(sys.argv[2], skip, tail)
except (OSError, ValueError) as e:
    print("unreadable: %s" % e); sys.exit()
if len(a) != len(b): print("sizes %d %d" % (len(a), len(b))); sys.exit()
if not all(map(math.isfinite, a)) or not all(map(math.isfinite, b)): print("not finite"); sys.exit()
ok = all(abs(x - y) <= atol + rtol * abs(x) for x, y in zip(a, b))
print("close" if ok else "maxdiff %g" % max(abs(x - y) for x, y in zip(a, b)))
PY
}

# check_close NAME A B SKIP TAIL ATOL RTOL: a check that close says "close".
check_close() {
  local s
  s=$(close "$2" "$3" "$4" "$5" "$6" "$7")
  check "$1" '[ "$s" = close ]' "$s"
}

# Prints the RESULT line; its status is the script's (0 when nothing failed).
result() {
  echo "RESULT $pass passed, $fail failed"
  [ "$fail" = 0 ]
}
