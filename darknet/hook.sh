#!/usr/bin/env bash
# Adds the plugin hooks to upstream Darknet's src/parser.c (scripted, idempotent; no upstream file is committed).
#   darknet/hook.sh DARKNET_TREE
# 1. after the size_params typedef: three function pointers, NULL by default;
# 2. in parse_network_cfg, the "Type not recognized" branch calls the parse hook when set;
# 3. at the end of save_weights_upto, before fclose: the save hook (plugin layers append their state);
# 4. at the end of load_weights_upto, before "Done!": the load hook (plugin layers read it back).
# Unset, Darknet behaves exactly as stock. Fails loudly when an anchor is not found exactly once.
set -euo pipefail
tree=${1:?usage: darknet/hook.sh DARKNET_TREE}
f="$tree/src/parser.c"
die() { echo "darknet/hook.sh: error: $*" >&2; exit 1; }
[ -f "$f" ] || die "$f not found"

markers=(gsl_parse_layer_hook gsl_save_weights_hook gsl_load_weights_hook)
hooked=0
for m in "${markers[@]}"; do
  n=$(grep -c "$m" "$f" || true)
  [ "$n" = 0 ] || [ "$n" = 2 ] || die "$f is partly hooked ($n lines mention $m, expected 2): start from a fresh source tree"
  [ "$n" = 2 ] && hooked=$((hooked + 1))
done
[ $hooked = 3 ] && exit 0
[ $hooked = 0 ] || die "$f is partly hooked: start from a fresh source tree"

anchor1='} size_params;'
anchor2='            fprintf(stderr, "Type not recognized: %s\n", s->type);'
anchor3='    fclose(fp);'                       # the first one: the end of save_weights_upto
anchor4='    fprintf(stderr, "Done!\n");'       # the end of load_weights_upto
count() { grep -cxF -- "$1" "$f" || true; }
for a in "$anchor1" "$anchor2" "$anchor4"; do
  [ "$(count "$a")" = 1 ] || die "anchor line '$a' found $(count "$a") times in $f (expected once): upstream moved"
done
# the first fclose(fp) must be the one of save_weights_upto
first_fclose=$(grep -nxF -- "$anchor3" "$f" | head -1 | cut -d: -f1)
save_fn=$(grep -n '^void save_weights_upto(network \*net, char \*filename, int cutoff)$' "$f" | cut -d: -f1)
load_fn=$(grep -n '^void load_weights_upto(network \*net, char \*filename, int start, int cutoff)$' "$f" | cut -d: -f1)
[ -n "$save_fn" ] && [ -n "$load_fn" ] && [ -n "$first_fclose" ] && [ "$first_fclose" -gt "$save_fn" ] &&
  [ "$first_fclose" -lt "$load_fn" ] || die "save_weights_upto/load_weights_upto not where expected in $f: upstream moved"

decl='layer (*gsl_parse_layer_hook)(char *cfg, char *type, list *options, int index, int batch, int inputs, int h, int w, int c, network *net) = 0; void (*gsl_save_weights_hook)(network *net, FILE *fp, int cutoff) = 0; void (*gsl_load_weights_hook)(network *net, FILE *fp, char *filename, int start, int cutoff) = 0;'
call='            if(gsl_parse_layer_hook) l = gsl_parse_layer_hook(filename, s->type, options, count, params.batch, params.inputs, params.h, params.w, params.c, net); else fprintf(stderr, "Type not recognized: %s\n", s->type);'
save='    if(gsl_save_weights_hook) gsl_save_weights_hook(net, fp, cutoff);'
load='    if(gsl_load_weights_hook) gsl_load_weights_hook(net, fp, filename, start, cutoff);'

tmp="$f.hook.tmp"
# ENVIRON, not -v: awk -v would turn the "\n" of the anchors into newlines.
A1=$anchor1 A2=$anchor2 A3=$anchor3 A4=$anchor4 D=$decl C=$call S=$save L=$load FC=$first_fclose awk '
  $0 == ENVIRON["A1"] { print; print ENVIRON["D"]; next }
  $0 == ENVIRON["A2"] { print ENVIRON["C"]; next }
  NR == ENVIRON["FC"] + 0 && $0 == ENVIRON["A3"] { print ENVIRON["S"]; print; next }
  $0 == ENVIRON["A4"] { print ENVIRON["L"]; print; next }
  { print }' "$f" > "$tmp"
for m in "${markers[@]}"; do
  [ "$(grep -c "$m" "$tmp")" = 2 ] || { rm -f "$tmp"; die "edit did not apply cleanly ($m)"; }
done
mv "$tmp" "$f"
