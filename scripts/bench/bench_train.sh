#!/usr/bin/env bash
# Training throughput (images/s) of scripts/bench/bench_lenet.cfg, side by side in one run:
#   ours       our CPU build: Darknet + OpenBLAS gemm + darknet/fast_conv.c   (build/cpu/bench/bench_train)
#   stock      upstream Darknet, its own gemm, OPENMP=0: one thread only      (build/cpu/bench/bench_train-stock)
#   stock-omp  upstream Darknet built with OPENMP=1 (its gemm's OpenMP loop), built by the Makefile into
#              build/bench-stock-omp from the same verified source; for the 2-thread row
#   pytorch    the same network in Debian's python3-torch (scripts/bench/bench_train_torch.py, /usr/bin/python3)
# Runs are interleaved (one of each per round, order rotated) and each figure is the median over the rounds, because
# the machine is shared. First a same-weights check, under every OpenBLAS kernel the processor supports: a few steps
# of ours and of stock from the same seed must end at the same weights. The header names the processor and the
# kernel ours chose (quant/blas.c; GSL_BLAS_CORE overrides it); PyTorch runs with that kernel too.
#   scripts/bench/bench_train.sh [-r ROUNDS] [-n BATCHES] [-w WARMUP] [-t "1 2"] [--nice N] [--no-omp] [--no-torch]
#                          [--kernel NAME]
# --kernel NAME also measures ours on that OpenBLAS kernel (variant ours-NAME), e.g. Prescott: what OpenBLAS alone
# runs on a processor it does not know.
# --nice N runs the benchmark at nice N (N < 0 needs root): on a machine that other jobs share, a negative N lets it
# have the cores it asks for, every variant alike. With the kernel's autogroups (sched_autogroup_enabled), nice only
# ranks processes within their session, so the script moves into a session of its own and gives that its nice.
# Raw results: build/bench/bench_train.tsv. Needs `scripts/setup.sh bench` (python3-torch).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"

rounds=7 batches=20 warmup=2 threads="1 2" omp=1 torch=1 nice=0 xkernel=
cfg=scripts/bench/bench_lenet.cfg
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -n) batches=$2; shift 2 ;;
    -w) warmup=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --nice) nice=$2; shift 2 ;;
    --no-omp) omp=0; shift ;;
    --no-torch) torch=0; shift ;;
    --kernel) xkernel=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench_train.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $nice =~ ^-?[0-9]+$ ]] || { echo "bench_train.sh: --nice needs an integer" >&2; exit 2; }
if [ "$nice" != 0 ] && [ -z "${GSL_BENCH_SESSION:-}" ] && [ -w /proc/self/autogroup ]; then
  GSL_BENCH_SESSION=1 exec setsid --wait "$0" "$@" -r "$rounds" -n "$batches" -w "$warmup" -t "$threads" --nice "$nice" \
    $([ $omp = 0 ] && echo --no-omp) $([ $torch = 0 ] && echo --no-torch) ${xkernel:+--kernel "$xkernel"}
fi
if [ "$nice" != 0 ] && [ -n "${GSL_BENCH_SESSION:-}" ]; then
  echo "$nice" > /proc/self/autogroup 2>/dev/null || echo "bench_train.sh: could not set the session's nice" >&2
fi
for v in "$rounds" "$batches" "$warmup"; do
  [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || { echo "bench_train.sh: -r/-n/-w need positive integers" >&2; exit 2; }
done
PY=/usr/bin/python3
if [ "$torch" = 1 ] && ! $PY -c 'import torch' 2>/dev/null; then
  echo "bench_train.sh: python3-torch is missing: run scripts/setup.sh bench (or pass --no-torch)" >&2; exit 1
fi

# ---- build (every program by the Makefile)
B=build/cpu
ours=$B/bench/bench_train stock=$B/bench/bench_train-stock stock_omp=$B/bench/bench_train-stock-omp
make --no-print-directory "$ours" "$stock" $([ "$omp" = 1 ] && echo "$stock_omp") >/dev/null ||
  { echo "bench_train.sh: build failed" >&2; exit 1; }

out=build/bench
mkdir -p $out
tsv=$out/bench_train.tsv

# ---- the BLAS kernel ours runs on (chosen from the processor's features, as bin/darknet chooses it), and every
# kernel this processor supports (the library refuses the others)
blas=$("$ours" -i)
kernel=$(sed -n 's/.*, kernel \([A-Za-z0-9]*\) .*/\1/p' <<<"$blas")
supported=
for k in Prescott Nehalem Sandybridge Haswell SkylakeX; do
  GSL_BLAS_CORE=$k "$ours" -i >/dev/null 2>&1 && supported="$supported $k"
done

# ---- same weights: ours under every supported kernel against stock, 3 steps from the same seed
"$stock" $cfg -w 0 -n 3 -s 5 -o $out/w_stock.weights > /dev/null 2>&1
for k in $supported; do
  GSL_BLAS_CORE=$k "$ours" $cfg -w 0 -n 3 -s 5 -o $out/w_ours_$k.weights > /dev/null 2>&1
  $PY - $out/w_ours_$k.weights $out/w_stock.weights $k <<'EOF2'
import array, sys
def load(p):
    b = open(p, "rb").read()
    a = array.array("f"); a.frombytes(b[20:])  # header: 3 int32 (version 0.2.0) + size_t seen
    return b[:20], a
ha, a = load(sys.argv[1]); hb, b = load(sys.argv[2])
assert ha == hb and len(a) == len(b), "weight files differ in layout"
d = max(abs(x - y) for x, y in zip(a, b)); m = max(abs(y) for y in b)
print(f"same-weights check (3 SGD steps, {len(a)} parameters), kernel {sys.argv[3]}: max |ours - stock| = {d:.3g}"
      f" (max |w| = {m:.3g}) -> {'ok' if d <= 1e-5 * (1 + m) else 'MISMATCH'}")
sys.exit(0 if d <= 1e-5 * (1 + m) else 1)
EOF2
done

# ---- measurements
tv=$([ "$torch" = 1 ] && $PY -c 'import torch; print(torch.__version__)' || echo -)
if [ -n "$xkernel" ] && ! GSL_BLAS_CORE=$xkernel "$ours" -i >/dev/null; then
  echo "bench_train.sh: --kernel $xkernel: not a kernel this processor supports" >&2; exit 2
fi
echo "command: scripts/bench/bench_train.sh -r $rounds -n $batches -w $warmup -t \"$threads\"$([ $nice != 0 ] && echo " --nice $nice")$([ $omp = 0 ] && echo ' --no-omp')$([ $torch = 0 ] && echo ' --no-torch')${xkernel:+ --kernel $xkernel}"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), torch $tv"
echo "ours: $blas"
echo "pytorch: run with OPENBLAS_CORETYPE=$kernel (the kernel ours chose, so that both get the same BLAS)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cfg $cfg, batch 128, $batches timed batches after $warmup warm-up, $rounds interleaved rounds"

run() { # variant threads -> one img/s figure
  local v=$1 t=$2
  export OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t
  case $v in
    ours) nice -n "$nice" "$ours" $cfg -t "$t" -w "$warmup" -n "$batches" ;;
    ours-*) GSL_BLAS_CORE=${v#ours-} nice -n "$nice" "$ours" $cfg -t "$t" -w "$warmup" -n "$batches" ;;
    stock) nice -n "$nice" "$stock" $cfg -t "$t" -w "$warmup" -n "$batches" ;;
    stock-omp) nice -n "$nice" "$stock_omp" $cfg -t "$t" -w "$warmup" -n "$batches" ;;
    pytorch) OPENBLAS_CORETYPE=$kernel nice -n "$nice" $PY scripts/bench/bench_train_torch.py -t "$t" -w "$warmup" -n "$batches" ;;
  esac | sed -n 's/.*images=\([0-9]*\) .*cpu_seconds=\([0-9.]*\) img_per_s=\([0-9.]*\).*/\3 \1 \2/p' \
       | awk '{printf "%s\t%.1f\n", $1, $2 / $3}'
}

variants_for() { # threads -> variants measured at that count
  local t=$1 v="ours${xkernel:+ ours-$xkernel}"
  if [ "$t" = 1 ]; then v="$v stock"; elif [ "$omp" = 1 ]; then v="$v stock-omp"; fi
  [ "$torch" = 1 ] && v="$v pytorch"
  echo $v
}

: > $tsv
for r in $(seq 1 "$rounds"); do
  for t in $threads; do
    vs=($(variants_for "$t"))
    k=${#vs[@]}
    for i in $(seq 0 $((k - 1))); do # rotate the order each round
      v=${vs[$(( (i + r) % k ))]}
      x=$(run "$v" "$t")
      [ -n "$x" ] || { echo "bench_train.sh: $v with $t threads printed no figure" >&2; exit 1; }
      printf '%s\t%s\t%s\t%s\n' "$r" "$t" "$v" "$x" >> $tsv # round threads variant img/s img/cpu-s
    done
  done
  printf '.' >&2
done
echo >&2
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table: medians, min-max, ratios of medians
# img/s is wall-clock throughput, the figure that counts. img/CPU-s (images per second of CPU time the process
# used) is shown for one thread only: there it is the speed the run would have on an idle core, nearly unaffected
# by other processes taking turns on it (only shared caches still are).
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
get() { awk -F'\t' -v t="$1" -v v="$2" -v c="${3:-4}" '$2 == t && $3 == v {print $c}' $tsv; }
echo
printf '%-8s %-10s %12s %21s %14s\n' threads variant "img/s median" "min - max" "img/CPU-s med"
for t in $threads; do
  for v in $(variants_for "$t"); do
    m=$(get "$t" "$v" | median)
    lo=$(get "$t" "$v" | sort -g | head -1); hi=$(get "$t" "$v" | sort -g | tail -1)
    c=$([ "$t" = 1 ] && get "$t" "$v" 5 | median || echo -)
    printf '%-8s %-10s %12.1f %10.1f - %-10.1f %14s\n' "$t" "$v" "$m" "$lo" "$hi" "$c"
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == "" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b}'; }
echo
printf '%-8s %-26s %-14s %-26s\n' threads "ours / stock Darknet" "ours / PyTorch" "(per CPU-second: stock, PyTorch)"
for t in $threads; do
  o=$(get "$t" ours | median)
  if [ "$t" = 1 ]; then s=$(get 1 stock | median); sl="stock"; else s=$(get "$t" stock-omp | median); sl="stock-omp"; fi
  p=$(get "$t" pytorch | median)
  extra=
  if [ "$t" = 1 ]; then
    extra="$(ratio "$(get 1 ours 5 | median)" "$(get 1 stock 5 | median)"), $(ratio "$(get 1 ours 5 | median)" "$(get 1 pytorch 5 | median)")"
  fi
  printf '%-8s %-26s %-14s %-26s\n' "$t" "$(ratio "$o" "$s") ($sl)" "$(ratio "$o" "$p")" "$extra"
done
if [ -n "$xkernel" ]; then
  echo
  for t in $threads; do
    echo "threads $t: ours ($kernel, chosen) / ours-$xkernel: $(ratio "$(get "$t" ours | median)" "$(get "$t" "ours-$xkernel" | median)")"
  done
fi
