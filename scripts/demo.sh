#!/usr/bin/env bash
# make demo: train cfg/fashion_gsl.cfg on Fashion-MNIST (Debian's dataset-fashion-mnist), evaluate search quality
# for float features and PQ codes, and plot loss, quantization error and mAP per epoch.
#   scripts/demo.sh [EPOCHS]     (default: the cfg's short schedule)
# Env: DARKNET (binary, default bin/darknet), CFG, DATA; RESUME=1 continues from the checkpoint in the backup folder
# (an interrupted long run: `make demo CFG=... RESUME=1`), or trains from the start when there is none; GPUS (devices
# for gsl train's -gpus; gsl eval takes the first), THREADS (gsl eval's -threads), TRAIN_S (a wall-clock cap on the
# training: the last finished epoch's checkpoint is still evaluated). The one train-then-evaluate path: make demo,
# the study's headline run and the GPU headline runs all come through here. Prints "== train exit N after S s" and
# "== eval exit N after S s" (or "== eval exit none"), and exits with the first failure's status.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${DARKNET:-bin/darknet}
cfg=${CFG:-cfg/fashion_gsl.cfg}
data=${DATA:-cfg/fashion.data}
epochs=${1:-}
name=$(basename "$cfg" .cfg)
backup=$(sed -n 's/^backup *= *//p' "$data")
start=$(date +%s)
ckpt= resume=${RESUME:-0}
case $resume in 0 | 1) ;; *) echo "scripts/demo.sh: RESUME must be 0 or 1, got '$resume'" >&2; exit 2 ;; esac
if [ "$resume" = 1 ]; then
  if [ -f "$backup/$name.ckpt" ]; then ckpt=$backup/$name.ckpt; else echo "== RESUME=1: no $backup/$name.ckpt yet"; fi
fi
echo "== training $cfg on $data${epochs:+ for $epochs epochs}${ckpt:+, resuming from $ckpt} (log: $backup/$name.log)"
mkdir -p "$backup"
[ -n "$ckpt" ] || : > "$backup/$name.log"
gflag=() eflag=() tflag=() cap=()
[ -n "${GPUS:-}" ] && gflag=(-gpus "$GPUS") eflag=(-gpus "${GPUS%%,*}")
[ -n "${THREADS:-}" ] && tflag=(-threads "$THREADS")
[ -n "${TRAIN_S:-}" ] && cap=(timeout -k 10 "$TRAIN_S")
s=$SECONDS
set +e
# no checkpoint to resume: a new run, over the one the backup folder may hold (-restart)
"${cap[@]}" "$bin" gsl train "$data" "$cfg" "${ckpt:--restart}" ${epochs:+-epochs "$epochs"} "${gflag[@]}" \
  2>> "$backup/$name.log" | grep --line-buffered -E '^(training|learning-rate|epoch [0-9]+ done|epoch .* batch)'
rc=${PIPESTATUS[0]}
set -e
echo "== train exit $rc after $((SECONDS - s)) s${TRAIN_S:+ (cap $TRAIN_S s)}"
if [ "$rc" != 0 ]; then
  tail -n 5 "$backup/$name.log"
  # a run stopped by the cap is evaluated on its last finished epoch; any other failure ends here
  if [ "$rc" != 124 ] || [ ! -f "$backup/$name.ckpt" ]; then echo "== eval exit none"; exit "$rc"; fi
fi
echo "== evaluating: queries = test set, database = training set"
s=$SECONDS
set +e
"$bin" gsl eval "$data" "$cfg" "$backup/$name.ckpt" "${eflag[@]}" "${tflag[@]}" 2>> "$backup/$name.log"
rc=$?
set -e
echo "== eval exit $rc after $((SECONDS - s)) s"
[ "$rc" = 0 ] || exit "$rc"
png="$backup/$name.png"
csv="$backup/$name.csv"
finite() { awk -F, -v c="$1" 'NR > 1 && $c != "nan" && $c != "" { f = 1 } END { exit !f }' "$csv"; }
if command -v gnuplot >/dev/null; then
  # a panel per logged quantity that has a value: none for the quantization error before the first codebook, none
  # for the mAP when the cfg turns the monitor off (eval_queries=0); gnuplot refuses a plot without a point
  p="plot \"$csv\" using 1"
  panels=("set title \"similarity loss\"; $p:2 with linespoints notitle")
  finite 3 && panels+=("set title \"quantization error (MSE of the [snap] input)\"; $p:3 with linespoints notitle")
  finite 8 && panels+=("set title \"mAP (the per-epoch monitor)\"; set key bottom right
$p:8 with linespoints title \"float\", \"\" using 1:9 with linespoints title \"PQ codes\"")
  rows=$(( $(wc -l < "$csv") - 1 ))
  if { printf '%s\n' 'set terminal pngcairo size 1200,400 font ",10" noenhanced' "set output \"$png\"" \
         'set datafile separator ","' 'set key autotitle columnhead' \
         "set multiplot layout 1,${#panels[@]} title \"$name on Fashion-MNIST\"" 'set xlabel "epoch"' \
         "$([ "$rows" -le 20 ] && echo 'set xtics 1')" "${panels[@]}" 'unset multiplot'; } | gnuplot; then
    echo "== plot: $png"
  else
    echo "== gnuplot failed (above): no plot; the figures above stand"
  fi
else
  echo "== gnuplot not found: no plot (scripts/setup.sh demo installs it)"
fi
echo "== done in $(( $(date +%s) - start )) s; weights, codebooks and the CSV log are in $backup/"
