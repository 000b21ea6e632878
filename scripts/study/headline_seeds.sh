#!/usr/bin/env bash
# More seeds of the standard-protocol headline (cfg/fashion_gsl_3conv.cfg: the 1.5x network, 100 epochs, 32 bits),
# each trained and evaluated through scripts/demo.sh in a folder of its own. Resumable: run it again after an
# interruption and every seed goes on from its last checkpoint (a finished seed is skipped).
#   scripts/study/headline_seeds.sh [SEED...]      (default: 2 3)
# Env: WORK (default build/headline-seeds), BIN (default bin/darknet), GPUS (gsl train's -gpus; empty: the CPU),
#      NICE (niceness of the runs, default 0).
# Writes WORK/seedS/run.log (training and evaluation) and one line per finished seed to WORK/summary.txt
# ("seed S: float mAP F, PQ mAP P"), then the mean, standard deviation and range over the seeds recorded there.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
work=${WORK:-build/headline-seeds} bin=${BIN:-bin/darknet}
case $work in /*) ;; *) work=$root/$work ;; esac
case $bin in /*) ;; *) bin=$root/$bin ;; esac
[ $# = 0 ] && set -- 2 3
[ -x "$bin" ] || { echo "scripts/study/headline_seeds.sh: $bin not found (make)" >&2; exit 1; }
mkdir -p "$work"
for s in "$@"; do
  case $s in '' | *[!0-9]*) echo "scripts/study/headline_seeds.sh: a seed is a positive integer, got '$s'" >&2; exit 2 ;; esac
  run=$work/seed$s
  grep -q "^seed $s:" "$work/summary.txt" 2>/dev/null && { echo "seed $s: done before"; continue; }
  mkdir -p "$run"
  sed "s/^seed=.*/seed=$s/" cfg/fashion_gsl_3conv.cfg > "$run/fashion_gsl_3conv.cfg"
  grep -q "^seed=$s\$" "$run/fashion_gsl_3conv.cfg" || { echo "scripts/study/headline_seeds.sh: no seed= line in the cfg" >&2; exit 1; }
  sed "s|^backup=.*|backup=$run/B|" cfg/fashion.data > "$run/fashion.data"
  DARKNET=$bin CFG=$run/fashion_gsl_3conv.cfg DATA=$run/fashion.data GPUS=${GPUS:-} RESUME=1 \
    nice -n "${NICE:-0}" bash scripts/demo.sh >> "$run/run.log" 2>&1
  rc=$?
  [ "$rc" = 0 ] || { echo "seed $s: exit $rc (see $run/run.log); run again to resume" >&2; exit "$rc"; }
  f=$(awk '/^float/{v=$2} END{print v}' "$run/run.log"); p=$(awk '/^(PQ|OPQ) codes/{v=$7} END{print v}' "$run/run.log")
  echo "seed $s: float mAP $f, PQ mAP $p" >> "$work/summary.txt"
done
cat "$work/summary.txt"
# mean, standard deviation and range over every seed recorded (seed 1, the documented headline run, is added by hand:
# "seed 1: float mAP 0.9321, PQ mAP 0.9323", from docs/RESULTS.md)
awk -F'[ ,]+' 'BEGIN {n = 0} /^seed [0-9]+:/ {f[n] = $5; p[n] = $8; n++}
  END {
    if (n < 2) exit
    for (k = 0; k < 2; k++) {
      s = 0; for (i = 0; i < n; i++) s += (k ? p[i] : f[i]); m = s / n
      v = 0; lo = 1; hi = 0
      for (i = 0; i < n; i++) { x = k ? p[i] : f[i]; v += (x - m) ^ 2; if (x < lo) lo = x; if (x > hi) hi = x }
      printf "%s mAP over %d seeds: mean %.4f, sd %.4f, range %.4f-%.4f\n", k ? "PQ" : "float", n, m, sqrt(v / (n - 1)), lo, hi
    }
  }' "$work/summary.txt"
