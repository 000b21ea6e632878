#!/usr/bin/env bash
# End to end on a Fashion-MNIST subset: gsl train (alternating codebook rebuilds), checkpoints, resume, crash
# safety, gsl eval/embed/encode/search/export, and bad data reported with its file and a non-zero exit.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/train")
rm -rf "$tmp" && mkdir -p "$tmp/data"
export OPENBLAS_NUM_THREADS=1 # one thread: bitwise-repeatable runs for the resume comparison
. "$here/lib.sh"

"$py" "$here/e2e/make_subset.py" "$tmp/data" 200 50 || { echo "RESULT 0 passed, 1 failed"; exit 1; }
mkdata() { # NAME BACKUP
  cat > "$tmp/$1.data" <<D
classes=10
train=$tmp/data/train-images.gz
train_labels=$tmp/data/train-labels.gz
valid=$tmp/data/test-images.gz
valid_labels=$tmp/data/test-labels.gz
backup=$tmp/$2
D
}
cfg="$here/e2e/small.cfg"
mkdata a A; mkdata b B
cd "$tmp"

# ---- training: 3 epochs, the first without a codebook
"$bin" gsl train a.data "$cfg" > A.log 2>&1; rc=$?
check train_runs '[ $rc = 0 ]' "exit $rc: $(tail -3 A.log)"
check header_names_device 'grep -qE "^training .* on [0-9]+ samples .*, on the CPU" A.log' "$(grep -m1 '^training' A.log)"
check progress_lines 'grep -qE "^epoch 2/3 batch [0-9]+/40 loss [0-9.]+ qerr [0-9.]+ snapped [0-9.]+ [0-9]+ img/s ETA" A.log' \
  "no progress line with qerr/snapped: $(grep '^epoch' A.log | head -3)"
snap=$(grep -E '^epoch 3 done' A.log | sed -E 's/.* snapped ([0-9.]+).*/\1/')
check snapped_fraction_nonzero_after_warmup 'awk -v s="$snap" "BEGIN{exit !(s > 0.05)}"' "snapped=$snap"
check no_codebook_in_warmup 'grep -qE "^epoch 1 done: loss [0-9.]+ rebuild" A.log' "$(grep '^epoch 1 done' A.log)"
check codebook_written_each_epoch '[ -f A/small_e0002_cb0.codebook ] && [ -f A/small_e0003_cb0.codebook ]' "$(ls A)"
check codebook_changes '! cmp -s A/small_e0002_cb0.codebook A/small_e0003_cb0.codebook' "identical codebooks"
check old_checkpoint_files_pruned '[ ! -f A/small_e0001.weights ]' "epoch 1 files still there"
check rebuild_samples_in_checkpoint 'grep -qE "^samples 0 small_e0003_cb0.samples.fvecs [0-9a-f]{8}$" A/small.ckpt' "$(cat A/small.ckpt)"
check csv_log '[ "$(wc -l < A/small.csv)" = 4 ]' "$(cat A/small.csv)"

# ---- a checkpoint names its files relative to itself: the backup folder can move
mv A A.moved && "$bin" gsl eval a.data "$cfg" A.moved/small.ckpt > evalM.txt 2>&1; rc=$?; mv A.moved A
check checkpoint_folder_can_move '[ $rc = 0 ]' "exit $rc: $(tail -n 2 evalM.txt)"

# ---- the trained network beats the untrained one
"$bin" gsl eval a.data "$cfg" A/small.ckpt > evalA.txt 2>evalA.err; rc1=$?
"$bin" gsl eval a.data "$cfg" - -M 4 -K 16 > eval0.txt 2>eval0.err; rc0=$?
mt=$(awk '/^float/{print $2}' evalA.txt); m0=$(awk '/^float/{print $2}' eval0.txt)
check eval_runs '[ $rc1 = 0 ] && [ $rc0 = 0 ] && [ -n "$mt" ] && [ -n "$m0" ]' "exit $rc1/$rc0: $(tail -n 2 evalA.err eval0.err)"
check trained_beats_untrained 'awk -v a="$mt" -v b="$m0" "BEGIN{exit !(a > b + 0.1)}"' "trained mAP $mt, untrained $m0"
pq=$(awk '/^PQ codes/{print $7}' evalA.txt)
check eval_pq_row 'awk -v a="$pq" "BEGIN{exit !(a > 0.1)}"' "$(cat evalA.txt)"
"$bin" gsl eval a.data "$cfg" A/small.ckpt -gpus 0,1 > evalG.txt 2>&1; rc=$?
check eval_one_device_only '[ $rc = 2 ] && grep -q -- "-gpus: these commands run the network on one device, 2 were given" evalG.txt' \
  "exit $rc: $(tail -n 2 evalG.txt)"

# ---- resume equals the uninterrupted run
"$bin" gsl train b.data "$cfg" -epochs 2 > B1.log 2>&1 && "$bin" gsl train b.data "$cfg" B/small.ckpt > B2.log 2>&1
rc=$?
check resume_runs '[ $rc = 0 ] && grep -q "resuming" B2.log' "exit $rc: $(tail -3 B2.log)"
check_close resume_equals_uninterrupted A/small_e0003.weights B/small_e0003.weights 20 0 1e-5 1e-4
check resume_codebook_equal 'cmp -s A/small_e0003_cb0.codebook B/small_e0003_cb0.codebook' "codebooks differ"

# ---- a crash while saving leaves the previous checkpoint loadable, and the CSV log one row per committed epoch
# (the row is on disk before the manifest that commits it; a resume drops the row of an epoch never committed)
csv_epochs() { tail -n +2 C/small.csv | cut -d, -f1 | tr '\n' ' '; }
for point in weights manifest committed; do
  rm -rf C; mkdata c C
  "$bin" gsl train c.data "$cfg" -epochs 2 > C1.log 2>&1
  GSL_FAULT_KILL=$point "$bin" gsl train c.data "$cfg" C/small.ckpt -epochs 3 > C2.log 2>&1; rc=$?
  ep=$(awk '/^epoch /{print $2}' C/small.ckpt)
  want=2; [ $point = committed ] && want=3
  check "sigkill_in_save_$point" '[ $rc = 137 ] && [ "$ep" = $want ]' "exit $rc, manifest epoch $ep"
  check "csv_row_before_commit_$point" '[ "$(csv_epochs)" = "1 2 3 " ]' "$(csv_epochs)"
  "$bin" gsl train c.data "$cfg" C/small.ckpt -epochs 3 > C3.log 2>&1; rc=$?
  check "resume_after_kill_$point" '[ $rc = 0 ] && [ "$(awk "/^epoch /{print \$2}" C/small.ckpt)" = 3 ]' \
    "exit $rc: $(tail -2 C3.log)"
  check "csv_reconciled_$point" '[ "$(csv_epochs)" = "1 2 3 " ]' "$(csv_epochs)"
done
# a new run killed right after its first checkpoint committed, before its CSV (staged until then) took its name: the
# resume finishes the rename, and the CSV is the new run's
rm -rf C; mkdata c C
GSL_FAULT_KILL=committed "$bin" gsl train c.data "$cfg" -epochs 2 > C4.log 2>&1; rc=$?
check new_run_killed_before_csv_rename '[ $rc = 137 ] && [ ! -e C/small.csv ] && ls C/small.csv.run* > /dev/null 2>&1' "exit $rc: $(ls C)"
"$bin" gsl train c.data "$cfg" C/small.ckpt -epochs 2 > C5.log 2>&1; rc=$?
check resume_renames_staged_csv '[ $rc = 0 ] && [ "$(csv_epochs)" = "1 2 " ] && ! ls C/small.csv.run* > /dev/null 2>&1' \
  "exit $rc: $(ls C; tail -2 C5.log)"

# ---- a new run where the backup folder holds one of this cfg is refused, the run kept; -restart starts it over
cp A/small.ckpt A.ckpt.before; cp A/small.csv A.csv.before
expect new_run_over_run_refused 1 "A/small.ckpt holds a run of .*small.cfg \(3 epochs done\): resume it with .darknet gsl train a.data .*small.cfg .*A/small.ckpt., or start a new run over it with -restart" \
  "$bin" gsl train a.data "$cfg" -epochs 1
check new_run_over_run_kept 'cmp -s A/small.ckpt A.ckpt.before && cmp -s A/small.csv A.csv.before' "$(cat A/small.ckpt)"
mkdata r R
"$bin" gsl train r.data "$cfg" -epochs 1 > R1.log 2>&1 && "$bin" gsl train r.data "$cfg" -epochs 2 -restart > R2.log 2>&1
rc=$?
check restart_replaces_run '[ $rc = 0 ] && [ "$(awk "/^epoch /{print \$2}" R/small.ckpt)" = 2 ] && [ "$(tail -n +2 R/small.csv | cut -d, -f1 | tr "\n" " ")" = "1 2 " ]' \
  "exit $rc: $(tail -2 R2.log); $(cat R/small.csv)"
expect restart_with_checkpoint_refused 2 "-restart starts a new run, R/small.ckpt resumes one: not both" \
  "$bin" gsl train r.data "$cfg" R/small.ckpt -restart
# a -restart that fails before its first checkpoint (here it diverges in its first epoch: the same cfg name, another
# learning rate) leaves the run it was to replace whole, its CSV included, and no staged CSV behind
cp R/small.ckpt R.ckpt.before; cp R/small.csv R.csv.before
mkdir -p boom && sed 's/^learning_rate=.*/learning_rate=1000000/' "$cfg" > boom/small.cfg
expect failed_restart_refused 1 "training diverged at epoch 1" "$bin" gsl train r.data boom/small.cfg -epochs 1 -restart
check failed_restart_keeps_run 'cmp -s R/small.ckpt R.ckpt.before && cmp -s R/small.csv R.csv.before && ! ls R/*.csv.run* >/dev/null 2>&1' \
  "$(ls R; cat R/small.csv)"

# ---- the manifest's checksums tell apart two codebooks (or optimizer states) of the same shape: each file ends with
# its own CRC-32, so their plain CRC-32s are all alike; the manifest's covers the size, then the bytes
rm -rf Aswap && cp -r A Aswap && cp R/small_e0002_cb0.codebook Aswap/small_e0003_cb0.codebook
expect swapped_codebook_detected 1 "its codebook file .*small_e0003_cb0.codebook does not match the checksum" \
  "$bin" gsl eval a.data "$cfg" Aswap/small.ckpt
rm -rf Aswap && cp -r A Aswap && cp R/small_e0002.optim Aswap/small_e0003.optim
expect swapped_optimizer_detected 1 "its optimizer file .*small_e0003.optim does not match the checksum" \
  "$bin" gsl train a.data "$cfg" Aswap/small.ckpt -epochs 4
rm -rf Aswap

# ---- a checkpoint is resumed and evaluated only with a cfg that builds its network: [snap] replaced by a
# [quantloss] of the same shape (the same weights, so the weights' size check passes) is refused by train and eval
mkdir -p ql && sed -e 's/^\[snap\]/[quantloss]\nlambda=0.1/' -e '/^neighbors=\|^mode=\|^alpha=/d' "$cfg" > ql/small.cfg
expect resume_other_network_refused 1 "A/small.ckpt: written by another network than ql/small.cfg builds" \
  "$bin" gsl train a.data ql/small.cfg A/small.ckpt -epochs 4
expect eval_other_network_refused 1 "A/small.ckpt: written by another network than ql/small.cfg builds" \
  "$bin" gsl eval a.data ql/small.cfg A/small.ckpt
sed 's/^activation=relu/activation=leaky/' "$cfg" > ql/act.cfg
expect eval_same_network_other_activation 0 "^PQ codes" "$bin" gsl eval a.data ql/act.cfg A/small.ckpt

# ---- a resumed run keeps its seed: the cfg's other seed= is said and overridden, another -seed is refused
mkdata s7 S7
"$bin" gsl train s7.data "$cfg" -seed 7 -epochs 1 > S71.log 2>&1
expect resume_keeps_run_seed 0 "resuming with the run's seed 7 \(the cfg says 3\)" \
  "$bin" gsl train s7.data "$cfg" S7/small.ckpt -epochs 2
check resume_seed_in_manifest 'grep -q "^seed 7$" S7/small.ckpt' "$(cat S7/small.ckpt)"
expect resume_other_seed_refused 1 "the run's seed is 7, -seed 8 would change its random streams" \
  "$bin" gsl train s7.data "$cfg" S7/small.ckpt -epochs 3 -seed 8
expect resume_nothing_to_train 0 "nothing to train: .*S7/small.ckpt has 2 epochs done, the schedule 2" \
  "$bin" gsl train s7.data "$cfg" S7/small.ckpt -epochs 2

# ---- the last layer: a loss whose truth is one value per class; a standalone [batchnorm] (upstream never allocates
# its training buffers) and SGD settings that cannot train are refused before anything runs
mkdata nl NL
sed '/^\[snap\]/,$d' "$cfg" > noloss.cfg
expect no_loss_layer_refused 1 "noloss.cfg: the last layer \(\[connected\]\) computes no loss" \
  "$bin" gsl train nl.data noloss.cfg -epochs 1
{ sed '/^\[snap\]/,$d' "$cfg" | sed '$s/.*//'; printf '[connected]\noutput=4\nactivation=linear\n\n[softmax]\n'; } > narrow.cfg
sed -i 's/^classes_per_batch=5//' narrow.cfg
expect narrow_truth_refused 1 "narrow.cfg: the last layer \(\[softmax\]\) takes 4 values per sample as its truth, nl.data has classes=10" \
  "$bin" gsl train nl.data narrow.cfg -epochs 1
{ awk '/^\[/ { n++ } n == 1' "$cfg"; printf '[similarity]\nclasses=10\n'; } > lossonly.cfg
expect loss_only_refused 1 "lossonly.cfg: only loss layers \(\[similarity\], \[cost\]\) after \[net\]" \
  "$bin" gsl train nl.data lossonly.cfg -epochs 1
{ awk '/^\[/ { n++ } n == 1' "$cfg"; printf '[maxpool]\nsize=2\nstride=2\n\n[similarity]\nclasses=10\n'; } > noweights.cfg
expect no_weights_refused 1 "noweights.cfg: no layer has weights to learn" "$bin" gsl train nl.data noweights.cfg -epochs 1
check refused_runs_leave_nothing '[ ! -e NL ]' "$(ls NL 2>&1)"
sed 's/^\[snap\]/[batchnorm]\n\n[snap]/' "$cfg" > bn.cfg
expect standalone_batchnorm_refused 1 "bn.cfg: line [0-9]+: \[batchnorm\] as a layer of its own" "$bin" gsl check bn.cfg
sed 's/^momentum=0.9/momentum=2/' "$cfg" > mom.cfg
expect momentum_range_refused 1 "mom.cfg: line [0-9]+: \[net\]: key 'momentum': 2 is outside \[0, 1\)" "$bin" gsl check mom.cfg
sed 's/^learning_rate=0.01/learning_rate=-0.01/' "$cfg" > neg.cfg
expect negative_rate_refused 1 "neg.cfg: line [0-9]+: \[net\]: key 'learning_rate': -0.01 is negative" "$bin" gsl check neg.cfg

# ---- embeddings, codes, search, export
"$bin" gsl embed a.data "$cfg" A/small.ckpt -out emb > emb.log 2>&1; rc=$?
check embed_fvecs '[ $rc = 0 ] && [ "$(stat -c %s emb.fvecs)" = $((500 * (4 + 16 * 4))) ]' "exit $rc $(tail -1 emb.log)"
"$bin" gsl encode a.data "$cfg" A/small.ckpt -out codes > enc.log 2>&1; rc=$?
check encode_codes '[ $rc = 0 ] && [ -s codes.codes ] && [ -s codes.labels.ivecs ]' "exit $rc $(tail -1 enc.log)"
"$bin" gsl search a.data "$cfg" A/small.ckpt -k 10 -out res > s.log 2>&1; rc=$?
check search_ids '[ $rc = 0 ] && [ "$(stat -c %s res.ids.ivecs)" = $((500 * (4 + 10 * 4))) ]' "exit $rc $(tail -1 s.log)"
"$bin" gsl export a.data "$cfg" A/small.ckpt -out idx.faiss > x.log 2>&1; rc=$?
check export_runs '[ $rc = 0 ] && [ -s idx.faiss ]' "exit $rc $(tail -1 x.log)"
# the items behind the ids of an IDX source: FILE#RECORD, the records of the split in file order
check export_items_idx '[ "$(wc -l < idx.faiss.items)" = "$(sed -n "s/.* of \([0-9]*\) codes.*/\1/p" x.log)" ] &&
  head -1 idx.faiss.items | grep -qE "#[0-9]+$" && sed "s/.*#//" idx.faiss.items | sort -n -c' "$(head -2 idx.faiss.items)"

# ---- a post-hoc fit on a seeded sample of the training split (-fit-max): said, repeatable, another fit than on all
# of it; 0 and a cap above the split's size fit on all of it, as the default does here (2,000 images)
fit() { "$bin" gsl export a.data "$cfg" A/small.ckpt -M 4 -K 16 -out "$@" > "${1%.faiss}.log" 2>&1; }
fit fa.faiss; fit f0.faiss -fit-max 0; fit fbig.faiss -fit-max 2000; fit fs1.faiss -fit-max 100
fit fs2.faiss -fit-max 100; fit fs3.faiss -fit-max 100 -seed 2
check fit_max_sample_said 'grep -q "fitted on 100 training embeddings of a seeded sample of 100 of the 2000" fs1.log &&
  grep -q "fitted on the 2000 training embeddings" fa.log' "$(tail -1 fs1.log) / $(tail -1 fa.log)"
check fit_max_all 'cmp -s fa.faiss f0.faiss && cmp -s fa.faiss fbig.faiss' "$(tail -1 f0.log) / $(tail -1 fbig.log)"
check fit_max_sample_repeatable 'cmp -s fs1.faiss fs2.faiss && ! cmp -s fs1.faiss fa.faiss && ! cmp -s fs1.faiss fs3.faiss' \
  "$(ls -l fs1.faiss fs2.faiss fs3.faiss fa.faiss)"
expect fit_max_with_codebook 2 "-M, -K, -opq and -fit-max fit a codebook; -codebook gives one: not both" \
  "$bin" gsl encode a.data "$cfg" A/small.ckpt -codebook A/small_e0003_cb0.codebook -fit-max 10 -out never
expect fit_max_nothing_fitted 1 "-fit-max 10: nothing is fitted, the codebook is .*the checkpoint's" \
  "$bin" gsl encode a.data "$cfg" A/small.ckpt -fit-max 10 -out never
expect fit_max_below_k 1 "-fit-max 10: fewer training images than the K=16 codewords the fit needs" \
  "$bin" gsl encode a.data "$cfg" A/small.ckpt -M 4 -K 16 -fit-max 10 -out never

# ---- a codebook of another dimension than the embedding is refused by every consumer, nothing is written
"$py" - emb.fvecs > emb8.fvecs <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read(); d = struct.unpack("<i", b[:4])[0]; rec = 4 + 4 * d
for i in range(0, len(b), rec): sys.stdout.buffer.write(struct.pack("<i", 8) + b[i + 4:i + 4 + 32])
PY
"$bin" gsl quant train -in emb8.fvecs -out cb8.codebook -M 4 -K 16 > cb8.log 2>&1
check wrong_dim_codebook_made '[ -s cb8.codebook ]' "$(tail -2 cb8.log)"
for c in encode search export export-ivf eval; do
  rm -rf wd && mkdir wd
  case $c in
    export-ivf) set -- export -ivf 4 -out wd/x.faiss ;; export) set -- export -out wd/x.faiss ;;
    eval) set -- eval ;; *) set -- $c -out wd/x ;;
  esac
  GSL_PROGRESS_S=1e-9 "$bin" gsl "$1" a.data "$cfg" A/small.ckpt -codebook cb8.codebook "${@:2}" > wd.log 2>&1
  rc=$?
  # refused before anything is embedded (no progress line), the codebook named, nothing written
  check "wrong_dim_codebook_refused_by_$c" '[ $rc = 1 ] && grep -q "dimension 16, but the codebook is for dimension 8 (cb8.codebook (-codebook))" wd.log &&
    ! grep -q "images/s" wd.log && [ -z "$(ls wd)" ]' \
    "exit $rc: $(tail -1 wd.log); $(ls wd)"
done

# ---- holdout=N: a validation split carved from train (queries = N per class, removed from train and database)
cat > h.data <<D
classes=10
train=$tmp/data/train-images.gz
train_labels=$tmp/data/train-labels.gz
holdout=20
holdout_seed=3
eval_classes=5-9
backup=$tmp/H
D
"$bin" gsl eval h.data "$cfg" A/small.ckpt > evalH.txt 2>evalH.err; rc=$?
check holdout_eval_counts '[ $rc = 0 ] && grep -qE "^queries: 100 .*database: 900 " evalH.txt' "exit $rc: $(cat evalH.txt evalH.err | tail -4)"
"$bin" gsl train h.data "$cfg" -epochs 1 > H.log 2>&1; rc=$?
check holdout_train_sizes '[ $rc = 0 ] && grep -q "on 1800 samples" H.log' "exit $rc: $(grep -m1 training H.log; tail -2 H.log)"

# ---- augmentation (flip, shift): a resumed run draws the same transforms as the uninterrupted one, and they change
# the training; a shift that moves the whole image out, and Darknet's image-loader keys that gsl train would not
# apply, are refused, naming the cfg, [net] and the key
sed -e 's/^seed=3/seed=3\nflip=1\nshift=2/' "$cfg" > aug.cfg
mkdata g G; mkdata g2 G2
"$bin" gsl train g.data aug.cfg -epochs 2 > G.log 2>&1; rc=$?
check aug_train_runs '[ $rc = 0 ] && grep -qE "^training .*, augmented \(flip, shift 2\), on the CPU" G.log' \
  "exit $rc: $(grep -m1 '^training' G.log; tail -2 G.log)"
"$bin" gsl train g2.data aug.cfg -epochs 1 > G1.log 2>&1 && "$bin" gsl train g2.data aug.cfg G2/aug.ckpt -epochs 2 > G2.log 2>&1
rc=$?
same=$(close G/aug_e0002.weights G2/aug_e0002.weights 20 0 1e-5 1e-4)
check aug_resume_equals_uninterrupted '[ $rc = 0 ] && [ "$same" = close ]' "exit $rc, $same: $(tail -2 G2.log)"
differ=$(close G/aug_e0002.weights B/small_e0002.weights 20 0 1e-5 1e-4) # B: the same cfg without flip and shift
check aug_changes_training '[ "${differ%% *}" = maxdiff ]' \
  "augmented against plain at epoch 2: '$differ'"
expect_cfg_err() { # NAME SED PATTERN
  sed -e "$2" "$cfg" > badaug.cfg
  expect "$1" 1 "$3" "$bin" gsl train a.data badaug.cfg
}
expect_cfg_err bad_shift_too_large 's/^seed=3/shift=28/' \
  "badaug.cfg: \[net\]: key 'shift': 28 moves the whole 28x28 image out of view \(at most 27\)"
expect_cfg_err bad_flip_value 's/^seed=3/flip=2/' "badaug.cfg: \[net\]: .*'flip'"
expect_cfg_err bad_darknet_loader_key 's/^seed=3/angle=7/' "badaug.cfg: \[net\]: key 'angle': Darknet's image-loader augmentation"

# ---- scripts/demo.sh (make demo): trains, evaluates; RESUME=1 goes on from the checkpoint, keeping the log
mkdata d D; mkdata e E
demo() { # DATA RESUME [EPOCHS]
  RESUME=$2 DARKNET=$bin CFG=$cfg DATA=$tmp/$1.data bash "$here/../scripts/demo.sh" "${@:3}"
}
demo d 0 2 > D1.out 2>&1; rc=$?
check demo_runs '[ $rc = 0 ] && grep -q "^epoch 2 done" D1.out && grep -q "^float " D1.out' "exit $rc: $(tail -3 D1.out)"
demo d 1 3 > D2.out 2>&1; rc=$?
check demo_resume_goes_on '[ $rc = 0 ] && grep -q "resuming from $tmp/D/small.ckpt" D2.out && grep -q "^epoch 3 done" D2.out && ! grep -q "^epoch [12] done" D2.out && grep -q "^float " D2.out' \
  "exit $rc: $(grep -E "^(==|epoch [0-9]+ done)" D2.out)"
# the log holds both runs: epoch 2's weights loaded by the first run's evaluation and by the resume
check demo_resume_keeps_log '[ "$(grep -c "^Loading weights from .*small_e0002.weights" D/small.log)" = 2 ] && [ "$(wc -l < D/small.csv)" = 4 ]' \
  "$(grep Loading D/small.log; cat D/small.csv)"
# the cfg has no mAP monitor (eval_queries=0) and epoch 1 no codebook: the plot leaves those out instead of failing
if command -v gnuplot > /dev/null; then
  check demo_plot_without_monitor 'grep -q "^== plot: $tmp/D/small.png" D2.out && [ -s D/small.png ]' "$(grep "^==" D2.out)"
else
  check demo_no_gnuplot_said 'grep -q "^== gnuplot not found" D2.out' "$(grep "^==" D2.out)"
fi
expect demo_resume_value 2 "RESUME must be 0 or 1, got 'yes'" demo d yes 1
demo e 1 1 > E.out 2>&1; rc=$?
check demo_resume_without_checkpoint_starts '[ $rc = 0 ] && grep -q "no $tmp/E/small.ckpt yet" E.out && grep -q "^epoch 1 done" E.out' \
  "exit $rc: $(tail -3 E.out)"

# ---- bad data: a clear message naming the file, and exit status 1
expect_err() { # NAME DATAFILE_TEXT PATTERN
  printf '%b' "$2" > bad.data
  expect "$1" 1 "$3" "$bin" gsl train bad.data "$cfg"
}
expect_err bad_missing_images "classes=10\ntrain=$tmp/none.gz\ntrain_labels=$tmp/data/train-labels.gz\n" "bad.data: key 'train': .*none.gz: No such file"
head -c 5000 <(gzip -dc data/train-images.gz) | gzip > short.gz
expect_err bad_truncated_idx "classes=10\ntrain=$tmp/short.gz\ntrain_labels=$tmp/data/train-labels.gz\n" "short.gz: .*(ends inside|declares)"
expect_err bad_unknown_key "classes=10\ntrian=x\n" "bad.data:2: unknown key 'trian'"
expect_err bad_classes "classes=3\ntrain=$tmp/data/train-images.gz\ntrain_labels=$tmp/data/train-labels.gz\n" "(label [0-9]+ of sample [0-9]+ is not below classes=3|takes 10 values per sample as its truth, bad.data has classes=3)"
printf 'x.png\n' > list.txt
expect_err bad_list_without_labels "classes=10\ntrain=$tmp/list.txt\n" "needs the key 'labels'"

# ---- -epochs N stretches the cfg's learning-rate schedule: the same run as the cfg written for N epochs
sed 's/^policy=constant/policy=steps\nsteps=40,80\nscales=.1,.1/' "$cfg" > sched.cfg
sed -e 's/^epochs=3/epochs=2/' -e 's/^steps=40,80/steps=27,53/' sched.cfg > sched2.cfg
mkdata s1 S1; mkdata s2 S2
"$bin" gsl train s1.data sched.cfg -epochs 2 > S1.log 2>&1; rc1=$?
"$bin" gsl train s2.data sched2.cfg > S2.log 2>&1; rc2=$?
check epochs_flag_scales_schedule '[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q "^learning-rate schedule scaled to 2 epochs (the cfg.s 3): steps=27,53$" S1.log && cmp -s S1/sched_e0002.weights S2/sched2_e0002.weights' \
  "exit $rc1/$rc2: $(grep -m1 learning-rate S1.log)"
# poly ends at max_batches, step= moves one step: both scaled the same way
sed -e "s/^policy=constant/policy=poly\\npower=2/" -e "s/^max_batches=.*/max_batches=120/" "$cfg" > poly.cfg
sed -e 's/^epochs=3/epochs=2/' -e 's/^max_batches=120/max_batches=80/' poly.cfg > poly2.cfg
mkdata p1 P1; mkdata p2 P2
"$bin" gsl train p1.data poly.cfg -epochs 2 > P1.log 2>&1; rc1=$?
"$bin" gsl train p2.data poly2.cfg > P2.log 2>&1; rc2=$?
check epochs_flag_scales_poly '[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q "(the cfg.s 3): max_batches=80$" P1.log && cmp -s P1/poly_e0002.weights P2/poly2_e0002.weights' \
  "exit $rc1/$rc2: $(grep -m1 learning-rate P1.log)"
sed 's/^policy=constant/policy=step\nstep=40\nscale=.1/' "$cfg" > step.cfg
mkdata q1 Q1
"$bin" gsl train q1.data step.cfg -epochs 2 > Q1.log 2>&1; rc=$?
check epochs_flag_scales_step '[ $rc = 0 ] && grep -q "(the cfg.s 3): step=27$" Q1.log' "exit $rc: $(grep -m1 learning-rate Q1.log)"

result
