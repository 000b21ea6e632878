#!/usr/bin/env bash
# The headline's seeds side by side: copies each seed's per-epoch CSV (the trainer's log: loss, quantization error,
# times, the monitor's float and PQ mAP) into docs/results/headline_seeds/, and plots the monitor's PQ mAP and the
# loss per epoch for every seed (headline_seeds.png). Seed 1 is the documented run
# (docs/results/fashion_gsl_3conv_100.csv); seeds 2, 3, ... are scripts/study/headline_seeds.sh's.
#   scripts/study/headline_seeds_report.sh [SEED...]      (default: 2 3)
# Env: WORK (default build/headline-seeds), OUT (default docs/results/headline_seeds).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${WORK:-build/headline-seeds} out=${OUT:-docs/results/headline_seeds}
[ $# = 0 ] && set -- 2 3
mkdir -p "$out"
cp docs/results/fashion_gsl_3conv_100.csv "$out/seed1.csv"
for s in "$@"; do
  csv=$work/seed$s/B/fashion_gsl_3conv.csv
  [ -f "$csv" ] || { echo "headline_seeds_report.sh: no $csv (run scripts/study/headline_seeds.sh $s)" >&2; exit 1; }
  cp "$csv" "$out/seed$s.csv"
done
[ -f "$work/summary.txt" ] && cp "$work/summary.txt" "$out/summary.txt"
command -v gnuplot > /dev/null || { echo "headline_seeds_report.sh: gnuplot not found: CSVs copied, no plot" >&2; exit 0; }
pq="" loss=""
for s in 1 "$@"; do
  pq+="${pq:+, }\"$out/seed$s.csv\" using 1:9 with lines title \"seed $s\""
  loss+="${loss:+, }\"$out/seed$s.csv\" using 1:2 with lines title \"seed $s\""
done
gnuplot <<G
set terminal pngcairo size 1200,420 font ",10" noenhanced
set output "$out/headline_seeds.png"
set datafile separator ","
set datafile missing "nan"
set multiplot layout 1,2 title "cfg/fashion_gsl_3conv.cfg on Fashion-MNIST, 32-bit PQ codes: one line per seed"
set xlabel "epoch"
set key bottom right
set title "PQ mAP (per-epoch monitor: 1,000 test queries, 10,000 training images)"
set yrange [0.85:0.95]
plot $pq
set title "similarity loss"
set key top right
set yrange [*:*]
set logscale y
plot $loss
unset multiplot
G
echo "wrote $out/seed{1,$(IFS=,; echo "$*")}.csv and $out/headline_seeds.png"
