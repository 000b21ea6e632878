#!/usr/bin/env bash
# Strict parsing of [snap], [quantloss] and [similarity]: a table of malformed sections, each of which must stop
# `darknet gsl check` with status 1 and its own message naming the cfg, the section's position and type, and the
# key; then the good test cfgs, whose layer tables must list the plugin layers.
set -u
bin=${DARKNET_BIN:?DARKNET_BIN is not set}
tmp=${GSL_TEST_TMP:-/tmp}/layers_cfg
cfgdir=${GSL_CFG_DIR:-tests/cfg}
mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

# malformed NAME SECTION 'KEY=VALUE;...' PATTERN: [net] (6 inputs), [connected] (12 outputs), then SECTION with the
# given keys as layer 1, then (unless SECTION is similarity) a [similarity] to end the network.
malformed() {
  local name=$1 section=$2 keys=$3 pat=$4 f="$tmp/$1.cfg"
  {
    printf '[net]\nbatch=4\nheight=1\nwidth=1\nchannels=6\n\n[connected]\noutput=12\nactivation=linear\n\n'
    printf '[%s]\n' "$section"
    [ -n "$keys" ] && tr ';' '\n' <<<"$keys"
    echo
    [ "$section" = similarity ] || printf '\n[similarity]\nclasses=2\n'
  } > "$f"
  expect "$name" 1 "$name\\.cfg: layer 1 \\[$section\\]: $pat" "$bin" gsl check "$f"
}

#          name                          section     keys                                    message
malformed snap_no_subspaces             snap        "codewords=16"                          "key 'subspaces' is required"
malformed snap_subspaces_not_integer    snap        "subspaces=four"                        "key 'subspaces': 'four' is not an integer"
malformed snap_subspaces_trailing       snap        "subspaces=4x"                          "key 'subspaces': '4x' is not an integer"
malformed snap_subspaces_zero           snap        "subspaces=0"                           "key 'subspaces': 0 is out of range"
malformed snap_subspaces_not_dividing   snap        "subspaces=5"                           "key 'subspaces': 5 does not divide the input size 12"
malformed snap_subspaces_too_many       snap        "subspaces=24"                          "key 'subspaces': 24 does not divide the input size 12"
malformed snap_codewords_one            snap        "subspaces=4;codewords=1"               "key 'codewords': 1 is out of range \\[2, 256\\]"
malformed snap_codewords_257            snap        "subspaces=4;codewords=257"             "key 'codewords': 257 is out of range \\[2, 256\\]"
malformed snap_neighbors_zero           snap        "subspaces=4;neighbors=0"               "key 'neighbors': 0 is out of range"
malformed snap_neighbors_over_codewords snap        "subspaces=4;codewords=16;neighbors=17" "key 'neighbors': 17 exceeds codewords \\(16\\)"
malformed snap_mode_unknown             snap        "subspaces=4;mode=twist"                "key 'mode': unknown value 'twist' \\(expected one of: rotate, project, lookahead\\)"
malformed snap_alpha_over_one           snap        "subspaces=4;alpha=1.5"                 "key 'alpha': 1.5 is out of range \\[0, 1\\]"
malformed snap_alpha_negative           snap        "subspaces=4;mode=lookahead;alpha=-1"   "key 'alpha': -1 is out of range"
malformed snap_alpha_nan                snap        "subspaces=4;alpha=nan"                 "key 'alpha': 'nan' is not a finite number"
malformed snap_alpha_not_number         snap        "subspaces=4;alpha=half"                "key 'alpha': 'half' is not a finite number"
malformed snap_eta_not_lookahead        snap        "subspaces=4;mode=project;eta=2"        "key 'eta': only used by mode=lookahead"
malformed snap_eta_zero                 snap        "subspaces=4;mode=lookahead;eta=0"      "key 'eta': must be > 0"
malformed snap_neighbors_lookahead      snap        "subspaces=4;mode=lookahead;neighbors=4" "key 'neighbors': not used by mode=lookahead"
malformed snap_unknown_key              snap        "subspaces=4;colour=blue"               "key 'colour': unknown key \\(this section takes: subspaces, codewords, rebuild_iterations, rebuild_images, reservoir, kmeans_iters, neighbors, mode, alpha, eta\\)"
malformed snap_rebuild_both              snap        "subspaces=4;rebuild_images=100;rebuild_iterations=5" "key 'rebuild_images': give it or 'rebuild_iterations', not both"
malformed snap_reservoir_small           snap        "subspaces=4;codewords=16;reservoir=8"  "key 'reservoir': 8 rows cannot train 16 codewords"
malformed quantloss_kmeans_iters_zero    quantloss   "subspaces=4;kmeans_iters=0"            "key 'kmeans_iters': 0 is out of range"
malformed quantloss_no_subspaces        quantloss   "lambda=0.1"                            "key 'subspaces' is required"
malformed quantloss_not_dividing        quantloss   "subspaces=7"                           "key 'subspaces': 7 does not divide the input size 12"
malformed quantloss_lambda_negative     quantloss   "subspaces=4;lambda=-0.5"               "key 'lambda': -0.5 is out of range"
malformed quantloss_codewords_big       quantloss   "subspaces=4;codewords=512"             "key 'codewords': 512 is out of range \\[2, 256\\]"
malformed quantloss_unknown_key         quantloss   "subspaces=4;neighbors=3"               "key 'neighbors': unknown key"
malformed similarity_no_classes         similarity  "type=cosine"                           "key 'classes' is required"
malformed similarity_classes_zero       similarity  "classes=0"                             "key 'classes': 0 is out of range"
malformed similarity_type_unknown       similarity  "classes=2;type=arcface"                "key 'type': unknown value 'arcface' \\(expected one of: contrastive, cosine, triplet, nca\\)"
malformed similarity_mining_contrastive similarity  "classes=2;mining=all"                  "key 'mining': only used by type=triplet"
malformed similarity_mining_unknown     similarity  "classes=2;type=triplet;mining=semi"    "key 'mining': unknown value 'semi' \\(expected one of: hard, all\\)"
malformed similarity_margin_cosine      similarity  "classes=2;type=cosine;margin=1"        "key 'margin': not used by type=cosine"
malformed similarity_margin_nca         similarity  "classes=2;type=nca;margin=1"           "key 'margin': not used by type=nca"
malformed similarity_margin_zero        similarity  "classes=2;type=triplet;margin=0"       "key 'margin': must be > 0"
malformed similarity_margin_text        similarity  "classes=2;margin=wide"                 "key 'margin': 'wide' is not a finite number"
malformed similarity_unknown_key        similarity  "classes=2;lr=3"                        "key 'lr': unknown key"
# [similarity] not last: followed by another layer.
malformed similarity_not_last           similarity  "classes=2;
[connected]
output=3"                                                                                    "must be the last section \\(it is layer 1 of 3\\)"

# Good cfgs: the table lists the plugin layers by their section names.
expect check_snap_net 0 '1  snap +8 +8' "$bin" gsl check "$cfgdir/test_snap_net.cfg"
expect check_snap_net_similarity 0 '2  similarity +8 +8' "$bin" gsl check "$cfgdir/test_snap_net.cfg"
expect check_quantloss_net 0 '1  quantloss +8 +8' "$bin" gsl check "$cfgdir/test_quantloss_net.cfg"
expect check_similarity_net 0 '1  similarity +5 +5' "$bin" gsl check "$cfgdir/test_similarity_net.cfg"
expect check_snap_lookahead_defaults 0 'snap +3 x 256 codewords, lookahead, alpha 0.5, eta 1' \
  "$bin" gsl check "$cfgdir/test_snap_lookahead.cfg"
# [snap] as the first layer: nothing below it takes the gradient it rewrites
printf '[net]\nbatch=4\nheight=1\nwidth=1\nchannels=8\n\n[snap]\nsubspaces=4\n\n[similarity]\nclasses=2\n' > "$tmp/snap_first.cfg"
expect check_snap_first_layer 1 "snap_first.cfg: layer 0 \[snap\]: the first layer: no layer below takes the gradient" \
  "$bin" gsl check "$tmp/snap_first.cfg"
# without mode and alpha, [snap] is what docs/RESULTS.md recommends: project with alpha 0.1
printf '[net]\nbatch=4\nheight=1\nwidth=1\nchannels=6\n\n[connected]\noutput=12\nactivation=linear\n\n[snap]\nsubspaces=4\n\n[similarity]\nclasses=2\n' \
  > "$tmp/snap_defaults.cfg"
expect check_snap_defaults_recommended 0 'snap +4 x 256 codewords, project, alpha 0.1, 8 neighbours' \
  "$bin" gsl check "$tmp/snap_defaults.cfg"

result
