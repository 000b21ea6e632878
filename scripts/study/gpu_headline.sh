#!/usr/bin/env bash
# The standard-protocol headline (docs/RESULTS.md) on a GPU host: trains each cfg on Fashion-MNIST and evaluates it
# with `gsl eval` through scripts/demo.sh (queries = the 10k test images, database = the 60k training images, network on the
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

one() { # CFG: scripts/demo.sh in a folder of its own (train under the cap, evaluate the last checkpoint), then the
        # summary line
  local cfg=$1 name; name=$(basename "$cfg" .cfg)
  local run=$work/$name log=$res/$name.log
  rm -rf "$run" && mkdir -p "$run" && cp "$cfg" "$run/$name.cfg"
  printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\nbackup=%s\n' \
    "$dir/train-images-idx3-ubyte.gz" "$dir/train-labels-idx1-ubyte.gz" "$dir/t10k-images-idx3-ubyte.gz" \
    "$dir/t10k-labels-idx1-ubyte.gz" "$run/B" > "$run/fashion.data"
  local s=$SECONDS
  DARKNET=$bin CFG=$run/$name.cfg DATA=$run/fashion.data GPUS=$gpus TRAIN_S=$cap THREADS=$threads \
    bash "$root/scripts/demo.sh" ${EPOCHS:-} > "$log" 2>&1
  local ts=$((SECONDS - s)) ep f p
  ep=$(grep -c '^epoch [0-9]* done' "$log")
  f=$(awk '/^float/{print $2}' "$log"); p=$(awk '/^(PQ|OPQ) codes/{print $7}' "$log")
  echo "$name: epochs $ep in $ts s, float mAP ${f:-?}, PQ mAP ${p:-?}" >> "$res/summary.txt"
}
echo "headline runs: $* on ${gpus:+GPU $gpus}${gpus:-the CPU}, results in $res"
for c in "$@"; do
  if [ "${PARALLEL:-0}" = 1 ]; then one "$c" & else one "$c"; fi
done
wait
cat "$res/summary.txt"
