#!/usr/bin/env bash
# Data-parallel training throughput on this machine (CPU, MPI over shared memory/loopback), and the share of a step
# spent in the gradient all-reduce. The network is cfg/fashion_gsl.cfg (the Fashion-MNIST net: 2 conv + 2 connected
# + [snap] + [similarity], batch 128 per rank) on a Fashion-MNIST subset; two epochs, the second after a codebook
# rebuild; figures are of the training phase only (the rebuild is excluded), medians over interleaved rounds
# because the machine may be shared. The MPI runs set GSL_DIST_PROFILE=1: a barrier before each all-reduce splits
# its time into waiting for the slowest rank (load imbalance, other processes on the cores) and the transfer; and
# --bind-to none, as the plain runs (on a shared machine a rank pinned to a busy core is slowed down).
#   plain 1t       one process, OpenBLAS 1 thread (train_network_datum)
#   plain 2t       one process, OpenBLAS 2 threads (the same cores as two ranks)
#   dist 1x128     GSL_DIST=1 mpirun -np 1: the distributed path on one rank (pack + all-reduce + unpack overhead)
#   dist 2x128     mpirun -np 2, 1 thread each: global batch 256 (weak scaling)
#   dist 2x64      mpirun -np 2, batch 64 each: global batch 128, the plain run's (strong scaling)
#   scripts/bench/bench_dist.sh [-r ROUNDS] [-n TRAIN_PER_CLASS]
# Raw results: build/bench/dist/bench_dist.tsv. Model of larger clusters: docs/cluster.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
rounds=3 per_class=600
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -n) per_class=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench_dist.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$per_class"; do
  [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || { echo "bench_dist.sh: -r/-n need positive integers" >&2; exit 2; }
done
command -v mpirun >/dev/null || { echo "bench_dist.sh: mpirun missing: scripts/setup.sh test installs Open MPI" >&2; exit 1; }
make --no-print-directory -j"$(nproc)" build/cpu/darknet build/cpu/darknet-mpi >/dev/null
bin=$here/build/cpu/darknet mbin=$here/build/cpu/darknet-mpi
out=$here/build/bench/dist
rm -rf "$out" && mkdir -p "$out/data"
/usr/bin/python3 tests/e2e/make_subset.py "$out/data" "$per_class" 10
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkcfg() { # NAME BATCH
  sed -e 's/^eval_queries=.*/eval_queries=0/' -e 's/^epochs=.*/epochs=2/' -e "s/^batch=.*/batch=$2/" \
      -e 's/^rebuild_samples=.*/rebuild_samples=2000/' -e 's/^policy=.*/policy=constant/' cfg/fashion_gsl.cfg \
    > "$out/$1.cfg"
  printf 'classes=10\ntrain=%s\ntrain_labels=%s\nbackup=%s\n' "$out/data/train-images.gz" "$out/data/train-labels.gz" \
    "$out/backup-$1" > "$out/$1.data"
}
mkcfg b128 128; mkcfg b64 64

# One rank per process, unpinned, with the profile split and the debug line (floats per update).
mpi() { # NP CFGNAME [GSL_DIST=1]
  env OPENBLAS_NUM_THREADS=1 GSL_DIST_DEBUG=1 GSL_DIST_PROFILE=1 ${3:-} mpirun -np "$1" --bind-to none \
    -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG -x GSL_DIST_PROFILE ${3:+-x GSL_DIST} \
    "$mbin" gsl train "$out/$2.data" "$out/$2.cfg" -restart
}
run() { # NAME -> "img/s allreduce_ms comm_pct wait_ms wait_pct floats" of epoch 2's training phase
  local name=$1 log=$out/$1.log
  case $name in
    "plain 1t") OPENBLAS_NUM_THREADS=1 "$bin" gsl train "$out/b128.data" "$out/b128.cfg" -restart > "$log" 2>&1 ;;
    "plain 2t") OPENBLAS_NUM_THREADS=2 "$bin" gsl train "$out/b128.data" "$out/b128.cfg" -restart > "$log" 2>&1 ;;
    "dist 1x128") mpi 1 b128 GSL_DIST=1 > "$log" 2>&1 ;;
    "dist 2x128") mpi 2 b128 > "$log" 2>&1 ;;
    "dist 2x64") mpi 2 b64 > "$log" 2>&1 ;;
  esac || { echo "bench_dist.sh: '$name' failed:" >&2; tail -5 "$log" >&2; exit 1; }
  local ips ms pct wms wpct fl
  ips=$(sed -nE 's/^epoch 2 done: .*\(([0-9.]+) img\/s\).*/\1/p' "$log")
  ms=$(sed -nE 's/^epoch 2 all-reduce: .*, ([0-9.]+) ms per update.*/\1/p' "$log")
  pct=$(sed -nE 's/^epoch 2 all-reduce: .*, ([0-9.]+)% of the training time.*/\1/p' "$log")
  wms=$(sed -nE 's/^epoch 2 all-reduce: .*waiting for the slowest rank ([0-9.]+) ms per update.*/\1/p' "$log")
  wpct=$(sed -nE 's/^epoch 2 all-reduce: .*waiting for the slowest rank .* ([0-9.]+)%$/\1/p' "$log")
  fl=$(sed -nE 's/.*gsl-dist: rank 0\/[0-9]+ backend .* all-reduce ([0-9]+) floats per update/\1/p' "$log")
  echo "${ips:-nan} ${ms:--} ${pct:--} ${wms:--} ${wpct:--} ${fl:--}"
}

configs=("plain 1t" "plain 2t" "dist 1x128" "dist 2x128" "dist 2x64")
tsv=$out/bench_dist.tsv
printf 'round\tconfig\timages_per_s\tallreduce_ms\tcomm_pct\twait_ms\twait_pct\tfloats\n' > "$tsv"
echo "bench_dist: $(nproc) cores, $((per_class * 10)) training images, $rounds rounds, $(mpirun --version | head -1)"
for r in $(seq "$rounds"); do
  n=${#configs[@]}
  for i in $(seq 0 $((n - 1))); do
    c=${configs[$(( (i + r) % n ))]}
    res=$(run "$c") || exit 1
    read -r ips ms pct wms wpct fl <<< "$res"
    printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$ips" "$ms" "$pct" "$wms" "$wpct" "$fl" >> "$tsv"
    echo "  round $r: $c: $ips img/s, all-reduce $ms ms ($pct%), waiting $wms ms ($wpct%)"
  done
done
/usr/bin/python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
order = ["plain 1t", "plain 2t", "dist 1x128", "dist 2x128", "dist 2x64"]
med = lambda c, k: statistics.median(float(r[k]) for r in rows if r["config"] == c and r[k] not in ("-", "nan"))
base = med("plain 1t", "images_per_s")
fl = next((r["floats"] for r in rows if r["floats"] not in ("-", "")), "?")
print("%-12s %8s %7s %13s %11s %11s %11s" % ("config", "img/s", "vs 1t", "all-reduce ms", "comm share", "wait ms",
                                              "wait share"))
for c in order:
    ips = med(c, "images_per_s")
    has = any(r["config"] == c and r["allreduce_ms"] != "-" for r in rows)
    f = lambda k, fmt: fmt % med(c, k) if has else "-"
    print("%-12s %8.0f %6.2fx %13s %11s %11s %11s" % (c, ips, ips / base, f("allreduce_ms", "%.2f"),
          f("comm_pct", "%.1f%%"), f("wait_ms", "%.2f"), f("wait_pct", "%.1f%%")))
print("all-reduced per update: %s floats = %.2f MB" % (fl, int(fl) * 4 / 1e6 if fl.isdigit() else float("nan")))
PY
echo "raw: $tsv"
