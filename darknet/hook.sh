#!/usr/bin/env bash
# Adds the layer-plugin hook to upstream Darknet's src/parser.c (two lines; idempotent).
#   darknet/hook.sh DARKNET_TREE
# 1. after the size_params typedef: a function pointer, NULL by default;
# 2. in parse_network_cfg, the "Type not recognized" branch calls it when set.
# Unset, Darknet behaves exactly as stock. Fails loudly when an anchor is not found exactly once.
set -euo pipefail
tree=${1:?usage: darknet/hook.sh DARKNET_TREE}
f="$tree/src/parser.c"
die() { echo "darknet/hook.sh: error: $*" >&2; exit 1; }
[ -f "$f" ] || die "$f not found"

marker='gsl_parse_layer_hook'
if grep -q "$marker" "$f"; then
  n=$(grep -c "$marker" "$f")
  [ "$n" = 2 ] || die "$f is partly hooked ($n lines mention $marker, expected 2): start from a fresh source tree"
  exit 0
fi

anchor1='} size_params;'
anchor2='            fprintf(stderr, "Type not recognized: %s\n", s->type);'
count() { grep -cxF -- "$1" "$f" || true; }
[ "$(count "$anchor1")" = 1 ] || die "anchor line '$anchor1' found $(count "$anchor1") times in $f (expected once): upstream moved"
[ "$(count "$anchor2")" = 1 ] || die "anchor line '$anchor2' found $(count "$anchor2") times in $f (expected once): upstream moved"

decl='layer (*gsl_parse_layer_hook)(char *cfg, char *type, list *options, int index, int batch, int inputs, int h, int w, int c, network *net) = 0;'
call='            if(gsl_parse_layer_hook) l = gsl_parse_layer_hook(filename, s->type, options, count, params.batch, params.inputs, params.h, params.w, params.c, net); else fprintf(stderr, "Type not recognized: %s\n", s->type);'

tmp="$f.hook.tmp"
# ENVIRON, not -v: awk -v would turn the "\n" of the anchors into newlines.
A1=$anchor1 A2=$anchor2 D=$decl C=$call awk '
  $0 == ENVIRON["A1"] { print; print ENVIRON["D"]; next }
  $0 == ENVIRON["A2"] { print ENVIRON["C"]; next }
  { print }' "$f" > "$tmp"
[ "$(grep -c "$marker" "$tmp")" = 2 ] || { rm -f "$tmp"; die "edit did not apply cleanly"; }
mv "$tmp" "$f"
