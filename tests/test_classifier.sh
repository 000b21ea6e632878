#!/usr/bin/env bash
# The layer plugin under Darknet's own training loop: `bin/darknet classifier train` on a list of 28x28 greyscale
# PNGs with [snap] and [similarity] rebuilds the codebook itself (the layer's statistics are logged at each rebuild),
# exits 0 after saving (upstream's classifier decodes 3 channels for this 1-channel network: darknet/train_network.c
# fits the rows instead of overrunning the input), writes the codebook into its .weights file, and `gsl eval` on that
# file reports PQ mAP from the stored codebook, close to a `gsl train` run of the same number of steps.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/classifier")
rm -rf "$tmp" && mkdir -p "$tmp"
export OPENBLAS_NUM_THREADS=1
. "$here/lib.sh"
cd "$here/e2e" && "$py" make_images.py "$tmp/img" 100 20 || { echo "RESULT 0 passed, 1 failed"; exit 1; }
cd "$tmp"

# 1000 training images, batch 50: 20 steps an epoch; 300 steps
cat > net.cfg <<'C'
[net]
batch=50
subdivisions=1
height=28
width=28
channels=1
learning_rate=0.01
momentum=0.9
decay=0.0005
max_batches=300
epochs=15
warmup=1
rebuild_samples=1000
rebuild_iters=10
eval_queries=0
seed=3
flip=1

[convolutional]
filters=16
size=5
stride=1
pad=1
activation=relu

[maxpool]
size=2
stride=2

[connected]
output=16
activation=linear

[snap]
subspaces=4
codewords=16
mode=project
alpha=0.1
rebuild_iterations=40
reservoir=1000
kmeans_iters=10

[similarity]
classes=10
type=contrastive
margin=1.0
C
# Darknet's classifier loader flips at random (as flip=1 does in gsl train) and by default zooms up to 2x
# (max_crop = 2 x width): told not to zoom, it trains the same task
sed -e '/^flip=1$/d' -e 's/^max_batches=300$/max_batches=300\nmin_crop=28\nmax_crop=28/' net.cfg > cnet.cfg
printf 'classes=10\ntrain=%s\nlabels=%s\nbackup=%s\n' "$tmp/img/train.list" "$tmp/img/labels.txt" "$tmp/CT" > ct.data
printf 'classes=10\ntrain=%s\nvalid=%s\nlabels=%s\nbackup=%s\n' "$tmp/img/train.list" "$tmp/img/test.list" \
  "$tmp/img/labels.txt" "$tmp/GT" > gt.data
mkdir -p CT

# ---- Darknet's own loop
# (SANITIZE=1 builds: upstream's classifier command never frees its network, lists and loader threads' data at
# exit, so LeakSanitizer is off for this one command; every other test checks our code for leaks)
ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data cnet.cfg > ct.log 2>&1; rc=$?
check classifier_train_exits_0 '[ $rc = 0 ] && [ -s CT/cnet.weights ]' "exit $rc: $(tail -n 2 ct.log)"
n=$(grep -c "^codebook rebuilt: layer 3, iteration" ct.log)
check codebooks_rebuilt_during_run '[ "$n" -ge 5 ]' "$n rebuilds: $(grep codebook ct.log | head -3)"
snapped=$(grep "^codebook rebuilt" ct.log | tail -1 | sed -n 's/.*snapped \([0-9.]*\).*/\1/p')
check snapped_fraction_positive 'awk -v s="${snapped:-0}" "BEGIN{exit !(s > 0)}"' "last rebuild line: $(grep '^codebook rebuilt' ct.log | tail -1)"
loss=$(grep -E "^300, " ct.log | sed -E 's/^300, [0-9.]+: ([0-9.na-]+), ([0-9.na-]+) avg.*/\2/')
first=$(grep -E "^10, " ct.log | sed -E 's/^10, [0-9.]+: ([0-9.na-]+), ([0-9.na-]+) avg.*/\2/')
check classifier_loss_sane 'awk -v a="$first" -v b="$loss" "BEGIN{exit !(b == b + 0 && b > 0 && b < a)}"' \
  "average loss at step 10: '$first', at step 300: '$loss'"
check weights_carry_codebook '[ "$(tail -c 8 CT/cnet.weights)" = GSLSTATE ]' "$(tail -c 8 CT/cnet.weights | od -c | head -1)"

# ---- Darknet's own commands, where their habits would mislead: its classifier commands other than train read the
# output as class scores (an embedding has more values than classes: the label lookup reads past the names); a
# .weights of another cfg that carries codebooks is refused by the load itself; a missing file ends with status 1
expect predict_on_similarity_refused 1 "darknet classifier predict: cnet.cfg ends in \[similarity\]: its output is an embedding" \
  "$bin" classifier predict ct.data cnet.cfg CT/cnet.weights "$(head -1 "$tmp/img/train.list")"
expect valid_on_similarity_refused 1 "darknet classifier valid: cnet.cfg ends in \[similarity\]" \
  "$bin" classifier valid ct.data cnet.cfg CT/cnet.weights
sed 's/^output=16$/output=16\nbatch_normalize=1/' cnet.cfg > bn.cfg
expect other_cfg_weights_refused_by_load 1 "CT/cnet.weights: this network's weights take [0-9]+ bytes, the file holds [0-9]+ before its plugin state" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data bn.cfg CT/cnet.weights
# ... while upstream's fine-tuning from a cut-down file (`darknet partial`: the first layers only, no codebook) loads
sed 's/^max_batches=300$/max_batches=2/' cnet.cfg > two.cfg
env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" partial cnet.cfg CT/cnet.weights part.weights 1 > part.log 2>&1
expect partial_weights_load 0 "Loading weights from part.weights" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data two.cfg part.weights
expect missing_file_status_1 1 "Couldn't open file: nothere.data" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train nothere.data cnet.cfg
sed 's/^subspaces=4$/subspaces=4\nsubspaces=8/' cnet.cfg > dup.cfg
expect plugin_key_twice_refused 1 "dup.cfg: layer 3 \[snap\]: key 'subspaces': given twice \(Darknet would use the first, 4\)" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data dup.cfg
# rebuild_iterations=0 and a start without a codebook: nothing will build one in this loop, which is said
sed -e 's/^rebuild_iterations=40$/rebuild_iterations=0/' -e 's/^max_batches=300$/max_batches=2/' cnet.cfg > idle.cfg
expect idle_codebook_said 0 "codebook layer 3: training with no codebook and no rebuilds of its own" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data idle.cfg
check idle_said_once '[ "$(grep -c "training with no codebook" <<<"$out")" = 1 ]' "$(grep -c "training with no codebook" <<<"$out") times"
# a key no layer reads in a cfg that uses the plugin: Darknet's own commands stop too, naming it; a cfg without the
# plugin's sections keeps upstream's leniency (its "Unused field" line)
sed 's/^output=16$/outptu=16/' cnet.cfg > ctypo.cfg
expect typo_key_refused_by_classifier 1 "ctypo.cfg: layer 2 \\[connected\\]: key 'outptu' \\(= 16\\): no such key in this section" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data ctypo.cfg
sed -e '/^\[snap\]/,$d' -e 's/^output=16$/output=10\ncolour=1/' cnet.cfg > plain.cfg
printf '[softmax]\n' >> plain.cfg
sed -i 's/^max_batches=300$/max_batches=2/' plain.cfg
expect typo_key_lenient_without_plugin 0 "Unused field: 'colour = 1'" \
  env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 "$bin" classifier train ct.data plain.cfg
# a key no layer reads: Darknet's commands list it as upstream does; gsl commands stop, naming the file, layer and key
sed 's/^output=16$/outptu=16/' net.cfg > typo.cfg
expect typo_key_refused_by_gsl 1 "typo.cfg: layer 2 \[connected\]: key 'outptu' \(= 16\): no such key in this section" \
  "$bin" gsl check typo.cfg
sed 's/^activation=linear$/activation=linaer/' net.cfg > act.cfg
expect bad_activation_refused_by_gsl 1 "act.cfg: layer 2 \[connected\]: key 'activation': 'linaer' is not one of Darknet's" \
  "$bin" gsl train gt.data act.cfg -epochs 1

# ---- gsl eval reads the codebook stored in the .weights file
"$bin" gsl eval gt.data cnet.cfg CT/cnet.weights > ceval.txt 2>&1; rc=$?
cmap=$(awk '/^PQ codes/{print $7}' ceval.txt)
check eval_uses_stored_codebook '[ $rc = 0 ] && grep -q "^codebook: stored in CT/cnet.weights (layer 3)" ceval.txt && [ -n "$cmap" ]' \
  "exit $rc: $(grep -v '^ ' ceval.txt | tail -3)"

# queries that are also database images find themselves first: said, with how many (disjoint lists: nothing said)
sed "s|^valid=.*|valid=$tmp/img/train.list|" gt.data > self.data
expect self_matches_said 0 "note: 1000 of the 1000 query images \\(valid=\\) are also in the database" \
  "$bin" gsl eval self.data cnet.cfg CT/cnet.weights -max-queries 50
check disjoint_nothing_said '! grep -q "also in the database" ceval.txt' "$(grep note ceval.txt)"

# ---- the same number of steps with gsl train (15 epochs of 20 steps)
"$bin" gsl train gt.data net.cfg > gt.log 2>&1; rc=$?
"$bin" gsl eval gt.data net.cfg GT/net.ckpt > geval.txt 2>&1; rc2=$?
gmap=$(awk '/^PQ codes/{print $7}' geval.txt)
check gsl_train_reference '[ $rc = 0 ] && [ $rc2 = 0 ] && [ -n "$gmap" ]' "exit $rc/$rc2: $(tail -n 2 gt.log geval.txt)"
# the two loops differ (batches drawn at random against a shuffled sampler, Darknet's loader's colour jitter and
# resampling, rebuilds every 40 steps against every epoch, another initialisation): the PQ mAP of the classifier's
# run is within 0.1 of gsl train's
check classifier_map_close_to_gsl_train 'awk -v a="$cmap" -v b="$gmap" "BEGIN{d = a - b; if (d < 0) d = -d; exit !(d <= 0.1)}"' \
  "PQ mAP classifier train $cmap, gsl train $gmap"
echo "PQ mAP: classifier train $cmap, gsl train $gmap (same 300 steps)"
# the embed/encode/search/export commands take the .weights and its codebook too
"$bin" gsl encode gt.data cnet.cfg CT/cnet.weights -out cw > cw.log 2>&1; rc=$?
check encode_with_stored_codebook '[ $rc = 0 ] && [ -s cw.codes ]' "exit $rc: $(tail -1 cw.log)"
result
