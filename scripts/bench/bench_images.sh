#!/usr/bin/env bash
# Training on an image list (streamed: decoded, on the loader thread, a few batches ahead of the step) against the
# same kind of data in memory (IDX), on cfg/fashion_gsl.cfg's network: peak memory (maximum resident set size of the
# process) and training images/s (the trainer's "epoch 1 done ... img/s", the step loop only). Three runs per round:
#   idx N      N Fashion-MNIST training records from an IDX file, decoded into memory at start
#   list N     the same N records as 28x28 PNG files, listed one per line
#   list 4N    4N records as PNG files: a list 4x larger than the in-memory run
# Memory stays flat when list 4N's peak is no higher than list N's (the images are never all in memory); the
# throughput ratio list/idx is reported per round and as the median. One epoch each, no per-epoch monitor, the
# machine's BLAS kernel and thread count as gsl train chooses them (OPENBLAS_NUM_THREADS to change).
#   scripts/bench/bench_images.sh [-r ROUNDS] [-n N_PER_CLASS]      (defaults 3 rounds, 1500 per class: N = 15000)
# Writes build/bench/images/bench_images.tsv. Needs python3 with numpy and PIL (scripts/setup.sh test).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
rounds=3 per_class=1500
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -n) per_class=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench_images.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$per_class"; do
  [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || { echo "bench_images.sh: -r/-n need positive integers" >&2; exit 2; }
done
[ $((per_class * 4)) -le 6000 ] || { echo "bench_images.sh: -n at most 1500 (4N records of 6000 per class)" >&2; exit 2; }
py=${PYTHON:-/usr/bin/python3}
bin=$here/bin/darknet
[ -x "$bin" ] || make -s bin/darknet
out=$here/build/bench/images
mkdir -p "$out" && cd "$out"
# the data, written once: an IDX subset of N, and PNGs of 4N records (the list of N is its first records per class)
if [ ! -s img/train.list ] || [ "$(wc -l < img/train.list)" != $((40 * per_class)) ]; then
  rm -rf img idx && mkdir -p idx
  "$py" "$here/tests/e2e/make_subset.py" idx "$per_class" 1
  (cd "$here/tests/e2e" && "$py" make_images.py "$out/img" $((4 * per_class)) 1)
fi
# list N: the records of the IDX subset, in the same (file) order
awk -F/ -v n="$per_class" '{ f = $NF; sub(/^cls[0-9]+_/, "", f); sub(/\.png$/, "", f); if (f + 0 < n) print }' \
  img/train.list > n.list
sed 's/^\(eval_queries\)=.*/\1=0/' "$here/cfg/fashion_gsl.cfg" > net.cfg
printf 'classes=10\ntrain=idx/train-images.gz\ntrain_labels=idx/train-labels.gz\nbackup=B1\n' > idx.data
printf 'classes=10\ntrain=n.list\nlabels=img/labels.txt\nbackup=B2\n' > n.data
printf 'classes=10\ntrain=img/train.list\nlabels=img/labels.txt\nbackup=B3\n' > n4.data
# run NAME DATA: one epoch; prints "peak_kB img_per_s"
run() {
  rm -rf "B${2}"
  "$py" - "$bin" "$1" <<'PY'
import re, resource, subprocess, sys
r = subprocess.run([sys.argv[1], "gsl", "train", sys.argv[2], "net.cfg", "-epochs", "1", "-restart"], capture_output=True,
                   text=True)
m = re.search(r"^epoch 1 done:.*\(([0-9.]+) img/s\)", r.stdout, re.M)
if r.returncode or not m:
    sys.exit("gsl train %s failed (%d): %s" % (sys.argv[2], r.returncode, (r.stdout + r.stderr)[-600:]))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, m.group(1))
PY
}
printf 'round\tidx_N_kB\tidx_N_img_s\tlist_N_kB\tlist_N_img_s\tlist_4N_kB\tlist_4N_img_s\n' > bench_images.tsv
echo "N = $((10 * per_class)) records; $("$bin" gsl info 2>/dev/null | grep -m1 -i 'blas' || true)"
for r in $(seq "$rounds"); do
  read -r mi ti < <(run idx.data 1)
  read -r ml tl < <(run n.data 2)
  read -r m4 t4 < <(run n4.data 3)
  printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mi" "$ti" "$ml" "$tl" "$m4" "$t4" | tee -a bench_images.tsv
done
"$py" - bench_images.tsv <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
med = lambda c: statistics.median(float(r[c]) for r in rows)
print("median peak memory: idx N %.0f MB, list N %.0f MB, list 4N %.0f MB (list 4N / list N %.2f, / idx N %.2f)" %
      (med(1) / 1024, med(3) / 1024, med(5) / 1024, med(5) / med(3), med(5) / med(1)))
ratios = [float(r[6]) / float(r[2]) for r in rows]
print("median images/s: idx N %.0f, list N %.0f, list 4N %.0f; list 4N / idx N per round %s, median %.3f" %
      (med(2), med(4), med(6), " ".join("%.3f" % x for x in ratios), statistics.median(ratios)))
PY
