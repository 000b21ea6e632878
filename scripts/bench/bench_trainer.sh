#!/usr/bin/env bash
# The trainer's benchmark, measured in one run: the codebook rebuild's cost against the epoch's training time (for both
# rebuild sources), training throughput of the demo network with and without [snap], and what the rebuild source does
# to mAP. Each arm trains 2 epochs on Fashion-MNIST (the second is the first with a codebook); arms are interleaved
# so that machine load hits them alike, and throughput is also given per CPU-second, which other jobs barely move.
#   scripts/bench/bench_trainer.sh [REPEATS]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-2}
bin=${DARKNET:-bin/darknet}
out=build/bench-trainer
rm -rf "$out" && mkdir -p "$out"
sed "s|^backup=.*|backup=$out|" cfg/fashion.data > "$out/fashion.data"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start"
arms="gsl_training gsl_sample plain"
for r in $(seq 1 "$reps"); do
  for arm in $arms; do
    case $arm in
      gsl_training) sed 's/^rebuild_iters=10/rebuild_iters=10\nrebuild_from=training/' cfg/fashion_gsl.cfg ;;
      gsl_sample) sed 's/^rebuild_iters=10/rebuild_iters=10\nrebuild_from=sample/' cfg/fashion_gsl.cfg ;;
      plain) cat cfg/fashion_plain.cfg ;;
    esac > "$out/${arm}_r$r.cfg"
    "$bin" gsl train "$out/fashion.data" "$out/${arm}_r$r.cfg" -epochs 2 > "$out/${arm}_r$r.log" 2>&1
  done
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
/usr/bin/python3 - "$out" "$reps" <<'PY'
import csv, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
def last(arm):
    return [list(csv.DictReader(open(f"{out}/{arm}_r{r}.csv")))[-1] for r in range(1, reps + 1)]
med = lambda rows, k: statistics.median(float(r[k]) for r in rows)
tr, sa, pl = last("gsl_training"), last("gsl_sample"), last("plain")
per_cpu = lambda rows: statistics.median(60000 // 128 * 128 / float(r["train_cpu_s"]) for r in rows)
print(f"epoch 2 (the first with a codebook), medians of {reps}:")
for name, rows in (("rebuild_from=training", tr), ("rebuild_from=sample", sa)):
    rb, t = med(rows, "rebuild_s"), med(rows, "train_s")
    print(f"  {name:22s} rebuild {rb:6.2f} s / train {t:6.1f} s = {100 * rb / t:5.2f}% (target <= 5%); "
          f"mAP float {med(rows, 'map_float'):.4f} PQ {med(rows, 'map_pq'):.4f}")
print(f"  images/s with [snap] {med(tr, 'images_per_s'):.0f}, without {med(pl, 'images_per_s'):.0f} (wall clock)")
print(f"  images per CPU-second with [snap] {per_cpu(tr):.0f}, without {per_cpu(pl):.0f}: "
      f"ratio {per_cpu(tr) / per_cpu(pl):.3f}")
PY
