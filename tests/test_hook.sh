#!/usr/bin/env bash
# darknet/hook.sh: the scripted edit of upstream's src/parser.c (a declaration line, the parse hook replacing one line,
# the save and load hooks added before two) is applied once, is idempotent, and refuses to edit a parser.c whose
# anchor lines moved. darknet/fetch.sh refuses a tarball with the wrong checksum.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
src=${DARKNET_SRC_TREE:-$root/build/darknet-src}
tmp=${GSL_TEST_TMP:-/tmp}/hook
rm -rf "$tmp" && mkdir -p "$tmp/t/src"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

cp "$src/src/parser.c" "$tmp/t/src/parser.c"
"$root/darknet/hook.sh" "$tmp/t" && [ "$(grep -c gsl_parse_layer_hook "$tmp/t/src/parser.c")" = 2 ] \
  && ok hook_applies || bad hook_applies "$(grep -c gsl_parse_layer_hook "$tmp/t/src/parser.c") marker lines"
cp "$tmp/t/src/parser.c" "$tmp/once.c"
"$root/darknet/hook.sh" "$tmp/t" && cmp -s "$tmp/once.c" "$tmp/t/src/parser.c" && ok hook_idempotent \
  || bad hook_idempotent "second run changed the file"
diff <(grep -v 'gsl_parse_layer_hook\|gsl_save_weights_hook\|gsl_load_weights_hook' "$tmp/t/src/parser.c") \
  <(grep -v 'Type not recognized' "$src/src/parser.c") > /dev/null \
  && ok hook_touches_its_lines_only || bad hook_touches_its_lines_only "more than the hook's lines differ"
for m in gsl_parse_layer_hook gsl_save_weights_hook gsl_load_weights_hook; do
  [ "$(grep -c $m "$tmp/t/src/parser.c")" = 2 ] && ok "hook_$m" || bad "hook_$m" "$(grep -c $m "$tmp/t/src/parser.c") lines"
done

sed 's/} size_params;/} size_params_moved;/' "$src/src/parser.c" > "$tmp/t/src/parser.c"
out=$("$root/darknet/hook.sh" "$tmp/t" 2>&1); rc=$?
[ $rc != 0 ] && grep -q "anchor line '} size_params;' found 0 times" <<<"$out" && ok hook_anchor_missing \
  || bad hook_anchor_missing "exit $rc: $out"
{ cat "$src/src/parser.c"; echo '} size_params;'; } > "$tmp/t/src/parser.c"
out=$("$root/darknet/hook.sh" "$tmp/t" 2>&1); rc=$?
[ $rc != 0 ] && grep -q "found 2 times" <<<"$out" && ok hook_anchor_twice || bad hook_anchor_twice "exit $rc: $out"

# fetch.sh: a cached tarball that does not match the recorded SHA-256 is refused (and removed)
dl="$tmp/dn.download"; mkdir -p "$dl"
orig=$(sed -n 's/^DARKNET_ORIG=//p' "$root/darknet/darknet.version")
echo "not darknet" > "$dl/$orig"
out=$(DARKNET_SRC= "$root/darknet/fetch.sh" "$tmp/dn" 2>&1); rc=$?
[ $rc != 0 ] && grep -q "checksum mismatch" <<<"$out" && [ ! -f "$dl/$orig" ] && ok fetch_rejects_bad_checksum \
  || bad fetch_rejects_bad_checksum "exit $rc: $out"
out=$(DARKNET_SRC="$tmp/nowhere" "$root/darknet/fetch.sh" "$tmp/dn2" 2>&1); rc=$?
[ $rc != 0 ] && grep -q "is not a Darknet checkout" <<<"$out" && ok fetch_rejects_bad_darknet_src \
  || bad fetch_rejects_bad_darknet_src "exit $rc: $out"

echo "RESULT $pass passed, $fail failed"
[ "$fail" = 0 ]
