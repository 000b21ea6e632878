#!/usr/bin/env bash
# The binary: `gsl ...` is ours, every other command reaches Darknet's own main; unknown cfg sections are fatal
# under both, with a message naming the file and the section.
set -u
bin=${DARKNET_BIN:?DARKNET_BIN is not set}
tmp=${GSL_TEST_TMP:-/tmp}/darknet_cmd
mkdir -p "$tmp"
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

expect darknet_own_main 0 'usage: .* classifier \[train/test/valid\]' "$bin" classifier
expect darknet_flags_pass_through 0 'usage: .* classifier \[train/test/valid\]' "$bin" classifier -nogpu
expect darknet_no_command 0 'usage: .*<function>' "$bin"
expect gsl_lists_subcommands 0 'subcommands:' "$bin" gsl
expect gsl_help 0 'check CFG' "$bin" gsl help
expect gsl_unknown_subcommand 2 "unknown subcommand 'frobnicate'" "$bin" gsl frobnicate

cat > "$tmp/bogus.cfg" <<'CFG'
[net]
batch=2
height=4
width=4
channels=1

[connected]
output=8
activation=linear

[frobnicator]
size=3
CFG
cat > "$tmp/ok.cfg" <<'CFG'
[net]
batch=2
height=4
width=4
channels=1

[connected]
output=8
activation=linear

[softmax]
CFG
expect gsl_check_unknown_section 1 "bogus.cfg: layer 1 \[frobnicator\]: unknown section type" "$bin" gsl check "$tmp/bogus.cfg"
expect gsl_check_missing_file 1 "no-such.cfg" "$bin" gsl check "$tmp/no-such.cfg"
expect gsl_check_stock_cfg 0 '1  softmax' "$bin" gsl check "$tmp/ok.cfg"
printf 'classes=2\ntrain=%s/none.list\nlabels=%s/none.labels\nbackup=%s\n' "$tmp" "$tmp" "$tmp" > "$tmp/x.data"
expect darknet_command_unknown_section 1 "bogus.cfg: layer 1 \[frobnicator\]: unknown section type" \
  "$bin" classifier train "$tmp/x.data" "$tmp/bogus.cfg"

# every cfg the project ships parses with the plugin
root=$(cd "$(dirname "$0")/.." && pwd)
for c in "$root"/cfg/*.cfg; do
  expect "shipped_cfg_$(basename "$c" .cfg)" 0 'layers, input' "$bin" gsl check "$c"
done

echo "RESULT $pass passed, $fail failed"
[ "$fail" = 0 ]
