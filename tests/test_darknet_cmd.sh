#!/usr/bin/env bash
# The binary: `gsl ...` is ours, every other command reaches Darknet's own main; unknown cfg sections are fatal
# under both, with a message naming the file and the section.
set -u
bin=${DARKNET_BIN:?DARKNET_BIN is not set}
tmp=${GSL_TEST_TMP:-/tmp}/darknet_cmd
mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

expect darknet_own_main 0 'usage: .* classifier \[train/test/valid\]' "$bin" classifier
expect darknet_flags_pass_through 0 'usage: .* classifier \[train/test/valid\]' "$bin" classifier -nogpu
expect darknet_no_command 0 'usage: .*<function>' "$bin"
expect gsl_lists_subcommands 0 'subcommands:' "$bin" gsl
expect gsl_help 0 'check CFG' "$bin" gsl help
expect gsl_unknown_subcommand 2 "unknown subcommand 'frobnicate'" "$bin" gsl frobnicate
# every subcommand answers -h with its own usage; a flag it does not take, or one given twice, is an error naming it
expect gsl_train_help 0 "usage: darknet gsl train DATA CFG .*-epochs N" "$bin" gsl train -h
expect gsl_eval_help 0 "-max-queries N  evaluate at most N queries" "$bin" gsl eval --help
expect gsl_search_help 0 "search DATA CFG WEIGHTS\\|CKPT -query FILE \\[-codes X.codes\\] \\[-k 10\\]" "$bin" gsl search -h
expect gsl_train_foreign_flag 2 "darknet gsl train: '-k' is not an option of this command \\(it takes: -gpus -clear" \
  "$bin" gsl train a.data b.cfg -k 5 -opq
expect gsl_embed_foreign_flag 2 "darknet gsl embed: '-opq' is not an option of this command" "$bin" gsl embed a b c -opq
expect gsl_repeated_flag 2 "darknet gsl train: '-seed' is given twice" "$bin" gsl train a.data b.cfg -seed 1 -seed 2

# small_cfg FILE LINES...: [net] (batch 2, 4x4x1) and [connected] (8 outputs), then LINES, one a line.
small_cfg() {
  local f=$1; shift
  { printf '[net]\nbatch=2\nheight=4\nwidth=4\nchannels=1\n\n[connected]\noutput=8\nactivation=linear\n\n'
    printf '%s\n' "$@"; } > "$f"
}
small_cfg "$tmp/bogus.cfg" '[frobnicator]' 'size=3'
small_cfg "$tmp/ok.cfg" '[softmax]'
small_cfg "$tmp/badtrainer.cfg" '[softmax]'
sed -i 's/^channels=1$/channels=1\nepochs=0/' "$tmp/badtrainer.cfg"
small_cfg "$tmp/badpk.cfg" '[softmax]'
sed -i 's/^channels=1$/channels=1\nclasses_per_batch=3/' "$tmp/badpk.cfg"
expect gsl_check_unknown_section 1 "bogus.cfg: line [0-9]+: unknown section \[frobnicator\]" "$bin" gsl check "$tmp/bogus.cfg"
expect gsl_check_missing_file 1 "no-such.cfg" "$bin" gsl check "$tmp/no-such.cfg"
expect gsl_check_stock_cfg 0 '1  softmax' "$bin" gsl check "$tmp/ok.cfg"
printf 'classes=2\ntrain=%s/none.list\nlabels=%s/none.labels\nbackup=%s\n' "$tmp" "$tmp" "$tmp" > "$tmp/x.data"
expect darknet_command_unknown_section 1 "bogus.cfg: layer 1 \[frobnicator\]: unknown section type" \
  "$bin" classifier train "$tmp/x.data" "$tmp/bogus.cfg"
expect gsl_check_help 0 "usage: darknet gsl check CFG" "$bin" gsl check -h
expect gsl_quant_search_help 0 "search -codebook CODEBOOK -codes CODES" "$bin" gsl quant search -h
expect gsl_export_ivf_help 0 "-ivf NLIST: an IndexIVFPQ" "$bin" gsl export -h
# one spelling per option: -M and -K as in gsl quant
expect gsl_eval_old_spelling 2 "'-subspaces' is not an option of this command" "$bin" gsl eval a b c -subspaces 4
expect gsl_search_query_and_out 2 "-query prints its hits; -out writes" "$bin" gsl search "$tmp/x.data" "$tmp/ok.cfg" - -query q.png -out x
expect gsl_check_trainer_keys 1 "key 'epochs': 0 is out of range" "$bin" gsl check "$tmp/badtrainer.cfg"
expect gsl_check_classes_per_batch 1 "key 'classes_per_batch': 3 classes must divide the batch of 2" "$bin" gsl check "$tmp/badpk.cfg"

# every cfg the project ships parses with the plugin
root=$(cd "$(dirname "$0")/.." && pwd)
for c in "$root"/cfg/*.cfg "$root"/cfg/study/*.cfg "$root"/tests/cfg/*.cfg "$root"/scripts/bench/*.cfg; do
  expect "shipped_cfg_$(basename "$c" .cfg)" 0 'layers, input' "$bin" gsl check "$c"
done

result
