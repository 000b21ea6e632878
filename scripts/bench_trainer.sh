#!/usr/bin/env bash
# Issue 5's benchmark: the codebook rebuild's cost against the epoch's training time, and training images/s of the
# demo network with and without [snap], measured in the same run (interleaved, so machine load hits both alike).
#   scripts/bench_trainer.sh [REPEATS]     (default 2; each repeat trains both cfgs for 2 epochs on Fashion-MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-2}
bin=${DARKNET:-bin/darknet}
out=build/bench-trainer
rm -rf "$out" && mkdir -p "$out"
sed "s|^backup=.*|backup=$out|" cfg/fashion.data > "$out/fashion.data"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-default}"
for r in $(seq 1 "$reps"); do
  for cfg in fashion_gsl fashion_plain; do
    sed "s/^eval_queries=.*/eval_queries=0/" "cfg/$cfg.cfg" > "$out/${cfg}_r$r.cfg"
    "$bin" gsl train "$out/fashion.data" "$out/${cfg}_r$r.cfg" -epochs 2 > "$out/${cfg}_r$r.log" 2>&1
  done
done
/usr/bin/python3 - "$out" "$reps" <<'PY'
import csv, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
def rows(cfg):
    return [list(csv.DictReader(open(f"{out}/{cfg}_r{r}.csv")))[-1] for r in range(1, reps + 1)]
gsl, plain = rows("fashion_gsl"), rows("fashion_plain")
med = lambda xs: statistics.median(float(x) for x in xs)
rb, tr = med(r["rebuild_s"] for r in gsl), med(r["train_s"] for r in gsl)
ig, ip = med(r["images_per_s"] for r in gsl), med(r["images_per_s"] for r in plain)
print(f"epoch 2 (first with a codebook), medians of {reps}:")
print(f"  rebuild {rb:.2f} s / train {tr:.1f} s = {100 * rb / tr:.1f}% of the epoch's training time (target <= 5%)")
print(f"  training images/s: with [snap] {ig:.0f}, without {ip:.0f}: ratio {ig / ip:.3f}")
PY
