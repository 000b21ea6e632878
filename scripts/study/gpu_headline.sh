#!/usr/bin/env bash
# The standard-protocol headline (docs/RESULTS.md, issue #6) on a GPU host: trains each cfg on Fashion-MNIST and
# evaluates it with `gsl eval` (queries = the 10k test images, database = the 60k training images, network on the
# GPU too). Installs nothing: a GPU host without the Debian dataset package takes the four IDX .gz files in DATA_DIR.
#   scripts/study/gpu_headline.sh [CFG...]          (default: cfg/study/fashion_gsl_wide.cfg)
# Env: BIN (default build/gpu-noblas/darknet, the binary of `make GPU=1 BLAS=0`), GPUS (default 0; empty: the CPU),
#      DATA_DIR (default /usr/share/datasets/fashion-mnist), RES (results, default build/headline-gpu; a device run
#      passes $OUT), TRAIN_S (wall-clock cap per training, default 400 s: the last finished epoch is evaluated),
#      EPOCHS (gsl train -epochs: the cfgs' epochs, their learning-rate steps scaled with them),
#      PARALLEL=1 (train the cfgs at once: Darknet's small convolutions leave a GPU mostly idle), THREADS (gsl
#      eval's search threads, default nproc), WORK (the runs' folders, default build/headline-gpu-runs).
# Writes, as each run ends, RES/NAME.log (training and evaluation output) and one line per run to RES/summary.txt.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
bin=${BIN:-build/gpu-noblas/darknet} gpus=${GPUS-0} dir=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
res=${RES:-build/headline-gpu} cap=${TRAIN_S:-400} threads=${THREADS:-$(nproc)}
[ $# = 0 ] && set -- cfg/study/fashion_gsl_wide.cfg
[ -x "$bin" ] || { echo "scripts/study/gpu_headline.sh: $bin not found (make GPU=1 BLAS=0, or set BIN)" >&2; exit 1; }
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -f "$dir/$f" ] || { echo "scripts/study/gpu_headline.sh: $dir/$f not found (set DATA_DIR)" >&2; exit 1; }
done
case $res in /*) ;; *) res=$root/$res ;; esac
case $bin in /*) ;; *) bin=$root/$bin ;; esac
work=${WORK:-build/headline-gpu-runs}
case $work in /*) ;; *) work=$root/$work ;; esac
mkdir -p "$res" "$work"
data=$work/fashion.data
printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\nbackup=B\n' "$dir/train-images-idx3-ubyte.gz" \
  "$dir/train-labels-idx1-ubyte.gz" "$dir/t10k-images-idx3-ubyte.gz" "$dir/t10k-labels-idx1-ubyte.gz" > "$data"
gflag=() eflag=() # training: every listed device (replicas); gsl eval: the first one
[ -n "$gpus" ] && gflag=(-gpus "$gpus") eflag=(-gpus "${gpus%%,*}")

one() { # CFG: train under the cap, evaluate the last checkpoint, append the summary line
  local cfg=$1 name; name=$(basename "$cfg" .cfg)
  local run=$work/$name log=$res/$name.log
  rm -rf "$run" && mkdir -p "$run" && cp "$cfg" "$run/$name.cfg"
  # EPOCHS: gsl train -epochs stretches the cfg's learning-rate schedule with the run (and refuses a cfg without
  # epochs= whose schedule counts iterations)
  local eflag_train=()
  [ -n "${EPOCHS:-}" ] && eflag_train=(-epochs "$EPOCHS")
  local s=$SECONDS
  (cd "$run" || exit 1
   timeout -k 10 "$cap" "$bin" gsl train "$data" "$name.cfg" "${gflag[@]}" "${eflag_train[@]}" 2>train.err |
     tr '\r' '\n' | grep --line-buffered -E '^(training|learning-rate|epoch [0-9]+ done)'
   exit "${PIPESTATUS[0]}") > "$log" # the training's status, not grep's
  local rc=$? ts=$((SECONDS - s)) ep
  ep=$(grep -c '^epoch [0-9]* done' "$log")
  echo "== train exit $rc after $ts s, $ep epochs (cap $cap s)" >> "$log"
  s=$SECONDS
  if [ -f "$run/B/$name.ckpt" ]; then
    (cd "$run" && timeout -k 10 900 "$bin" gsl eval "$data" "$name.cfg" "B/$name.ckpt" -threads "$threads" "${eflag[@]}" \
       2>>train.err) >> "$log"
    rc=$?
  else
    rc=none
  fi
  echo "== eval exit $rc after $((SECONDS - s)) s" >> "$log"
  [ "$rc" = 0 ] || tail -n 5 "$run/train.err" >> "$log"
  local f p
  f=$(awk '/^float/{print $2}' "$log"); p=$(awk '/^(PQ|OPQ) codes/{print $7}' "$log")
  echo "$name: epochs $ep in $ts s, float mAP ${f:-?}, PQ mAP ${p:-?}" >> "$res/summary.txt"
}
echo "headline runs: $* on ${gpus:+GPU $gpus}${gpus:-the CPU}, results in $res"
for c in "$@"; do
  if [ "${PARALLEL:-0}" = 1 ]; then one "$c" & else one "$c"; fi
done
wait
cat "$res/summary.txt"
