#!/usr/bin/env bash
# make demo: train cfg/fashion_gsl.cfg on Fashion-MNIST (Debian's dataset-fashion-mnist), evaluate search quality
# for float features and PQ codes, and plot loss, quantization error and mAP per epoch.
#   scripts/demo.sh [EPOCHS]     (default: the cfg's short schedule)
# Env: DARKNET (binary, default bin/darknet), CFG, DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${DARKNET:-bin/darknet}
cfg=${CFG:-cfg/fashion_gsl.cfg}
data=${DATA:-cfg/fashion.data}
epochs=${1:-}
name=$(basename "$cfg" .cfg)
backup=$(sed -n 's/^backup *= *//p' "$data")
start=$(date +%s)
echo "== training $cfg on $data${epochs:+ for $epochs epochs} (log: $backup/$name.log)"
mkdir -p "$backup"
"$bin" gsl train "$data" "$cfg" ${epochs:+-epochs "$epochs"} 2> "$backup/$name.log" | grep --line-buffered -E '^(training|epoch [0-9]+ done|epoch .* batch)'
echo "== evaluating: queries = test set, database = training set"
"$bin" gsl eval "$data" "$cfg" "$backup/$name.ckpt" 2>> "$backup/$name.log"
png="$backup/$name.png"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 1200,400 font ",10" noenhanced
set output "$png"
set datafile separator ","
set key autotitle columnhead
set multiplot layout 1,3 title "$name on Fashion-MNIST"
set xlabel "epoch"
set xtics 1
set title "similarity loss"; plot "$backup/$name.csv" using 1:2 with linespoints notitle
set title "quantization error (MSE of the [snap] input)"; plot "$backup/$name.csv" using 1:3 with linespoints notitle
set title "mAP (monitor: 1000 queries, 10000 database items)"; set key bottom right
plot "$backup/$name.csv" using 1:8 with linespoints title "float", "" using 1:9 with linespoints title "PQ codes"
unset multiplot
GP
  echo "== plot: $png"
else
  echo "== gnuplot not found: no plot (scripts/setup.sh demo installs it)"
fi
echo "== done in $(( $(date +%s) - start )) s; weights, codebooks and the CSV log are in $backup/"
