#!/usr/bin/env bash
# Multi-process training over MPI on this machine (2 ranks on loopback, oversubscribed), on a Fashion-MNIST subset:
#   - 2 ranks x batch 50 give the weights of one process with the combined batch (cfg batch=100, subdivisions=2),
#     also with subdivisions on every rank; the codebook of the rebuild matches too
#   - the same with flip/shift augmentation (one epoch)
#   - both ranks end with bit-identical weights, optimizer state and codebooks (GSL_DIST_DEBUG checksums); the
#     rebuild's k-means runs on both ranks, each on its half of the rows (statistics all-reduced every iteration)
#   - only rank 0 writes files (each rank runs in its own folder) and prints progress
#   - one rank through the distributed path (GSL_DIST=1 mpirun -np 1) is bit-identical to a plain run
#   - a 2-rank resume equals the uninterrupted 2-rank run
#   - the plain binary refuses to run as one of several ranks
#   - kill -9 of one rank, and a hung rank (SIGSTOP, caught by the GSL_DIST_TIMEOUT watchdog), end the job with an
#     error and a non-zero exit within a bound
# Env: DARKNET_BIN (the plain binary), DARKNET_MPI_BIN (the MPI binary, build/<config>/darknet-mpi), PYTHON.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/dist")
rm -rf "$tmp" && mkdir -p "$tmp/data"
. "$here/lib.sh"

mbin=${DARKNET_MPI_BIN:-}
if [ -z "$mbin" ] || [ ! -x "$mbin" ] || ! command -v mpirun >/dev/null; then
  bad mpi_available "no MPI binary (DARKNET_MPI_BIN='$mbin') or no mpirun: scripts/setup.sh test installs openmpi-bin libopenmpi-dev, and make test then builds build/<config>/darknet-mpi"
  echo "RESULT $pass passed, $fail failed"; exit 1
fi
mbin=$(realpath "$mbin")
export OPENBLAS_NUM_THREADS=1               # bitwise-repeatable runs, and 2 ranks on 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # CI containers run as root
export OMPI_MCA_rmaps_base_oversubscribe=1  # more ranks than cores is fine here
# Every mpirun is bounded, so a hang fails the test instead of the CI job. SANITIZE=1 builds: LeakSanitizer is off
# for the ranks only (Open MPI keeps allocations past MPI_Finalize); the plain runs keep it.
mpi() { ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 timeout -k 5 120 mpirun --oversubscribe "$@"; }

"$py" "$here/e2e/make_subset.py" "$tmp/data" 100 10 || { echo "RESULT 0 passed, 1 failed"; exit 1; }
mkdata() { # NAME BACKUP
  printf 'classes=10\ntrain=%s\ntrain_labels=%s\nbackup=%s\n' "$tmp/data/train-images.gz" "$tmp/data/train-labels.gz" "$2" \
    > "$tmp/$1.data"
}
# small.cfg (batch 50, 5 classes x 10 per batch, a [snap] layer) for 2 epochs: the first without a codebook, the
# second after a rebuild. The reference runs one process on the combined batch. Both rebuild from a fresh embedding
# pass (rebuild_from=sample): a single process would otherwise reuse the inputs its own steps saw, which a set of
# ranks cannot reproduce.
mkcfg() { # NAME BATCH SUBDIVISIONS
  sed -e 's/^epochs=3/epochs=2/' -e "s/^batch=50/batch=$2/" -e "s/^subdivisions=1/subdivisions=$3/" \
    -e 's/^rebuild_iters=8/rebuild_iters=8\nrebuild_from=sample/' "$here/e2e/small.cfg" > "$tmp/$1.cfg"
}
mkcfg dist 50 1; mkcfg ref 100 2; mkcfg dsub 50 2; mkcfg rsub 100 4; mkcfg daug 50 1; mkcfg raug 100 2
for n in ref rsub raug one plain; do mkdata $n R; done
mkdata dist D
cd "$tmp"

# The GSL_DIST_DEBUG checksum line of a rank at an epoch, without the rank.
sums() { grep -E "gsl-dist: rank $2 epoch $3 " "$1" | sed -E 's/.*epoch [0-9]+ //'; }

# ---- 2 ranks against one process with the combined batch
mkdir -p ref && (cd ref && "$bin" gsl train ../ref.data ../ref.cfg > ../ref.log 2>&1); rc=$?
check reference_runs '[ $rc = 0 ]' "exit $rc: $(tail -3 ref.log)"
mkdir -p r0 r1
GSL_DIST_DEBUG=1 mpi --tag-output -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG \
  -np 1 --wdir "$tmp/r0" "$mbin" gsl train ../dist.data ../dist.cfg : \
  -np 1 --wdir "$tmp/r1" "$mbin" gsl train ../dist.data ../dist.cfg > dist.log 2>&1; rc=$?
check dist_runs '[ $rc = 0 ]' "exit $rc: $(tail -5 dist.log)"
check_close dist_weights_equal_combined_batch ref/R/ref_e0002.weights r0/D/dist_e0002.weights 20 0 1e-5 1e-4
check_close dist_codebook_equals_combined_batch ref/R/ref_e0002_cb0.codebook r0/D/dist_e0002_cb0.codebook 28 4 1e-3 0
s0=$(sums dist.log 0 2); s1=$(sums dist.log 1 2)
check ranks_bit_identical '[ -n "$s0" ] && [ "$s0" = "$s1" ]' "rank 0: '$s0', rank 1: '$s1'"
check ranks_identical_codebooks '[ -n "$s0" ] && ! echo "$s0" | grep -q "codebooks 00000000" && [ "${s0##*codebooks}" = "${s1##*codebooks}" ]' \
  "rank 0: '$s0', rank 1: '$s1'"
rows=$(sed -n 's/.*gsl-dist: rank \([01]\) rebuild of epoch 2, codebook 0: k-means on \([0-9]*\) of \([0-9]*\) rows.*/\1 \2 \3/p' dist.log | sort)
check rebuild_distributed_over_ranks '[ "$(echo "$rows" | wc -l)" = 2 ] && echo "$rows" | awk "{s += \$2; n = \$3; if (\$2 == 0) z = 1} END {exit !(s == n && !z)}"' \
  "rows per rank: '$rows'"
check files_written_once_by_rank0 '[ -z "$(ls -A r1)" ] && [ -f r0/D/dist.ckpt ] && [ "$(wc -l < r0/D/dist.csv)" = 3 ]' \
  "rank 1's folder: '$(ls -A r1)'; rank 0's: '$(ls r0/D 2>&1 | tr '\n' ' ')'"
check progress_only_from_rank0 'grep -qE "^\[[0-9]+,0\]<stdout>:epoch 2 done" dist.log && ! grep -qE "^\[[0-9]+,1\]<stdout>:" dist.log' \
  "$(grep -E '<stdout>:epoch [0-9] done' dist.log)"
check allreduce_report 'grep -qE "<stdout>:epoch 2 all-reduce: 2 ranks \(mpi\), 0\.4[0-9]+ MB per update" dist.log' \
  "$(grep -E 'all-reduce' dist.log | head -2)"

# ---- subdivisions on every rank (Darknet's cfg batch is per update): 2 ranks x 2 x 25 against one process of 4 x 25
# (one epoch: no codebook yet)
mkdir -p sub rsub
(cd rsub && "$bin" gsl train ../rsub.data ../rsub.cfg -epochs 1 > ../rsub.log 2>&1)
(cd sub && mpi -x OPENBLAS_NUM_THREADS -np 2 "$mbin" gsl train ../dist.data ../dsub.cfg -epochs 1 > ../sub.log 2>&1); rc=$?
same=$(close rsub/R/rsub_e0001.weights sub/D/dsub_e0001.weights 20 0 1e-5 1e-4)
check dist_subdivisions_equal_combined_batch '[ $rc = 0 ] && [ "$same" = close ]' "exit $rc, $same: $(tail -2 sub.log)"

# ---- augmentation: a sample's transform depends on its place in the epoch, not on the rank that trains it, so
# 2 ranks x 50 with flip and shift equal one process of 2 x 50 with them (one epoch)
for n in daug raug; do sed -i 's/^seed=3/seed=3\nflip=1\nshift=2/' "$tmp/$n.cfg"; done
mkdir -p aug raug
(cd raug && "$bin" gsl train ../raug.data ../raug.cfg -epochs 1 > ../raug.log 2>&1)
(cd aug && mpi -x OPENBLAS_NUM_THREADS -np 2 "$mbin" gsl train ../dist.data ../daug.cfg -epochs 1 > ../aug.log 2>&1); rc=$?
same=$(close raug/R/raug_e0001.weights aug/D/daug_e0001.weights 20 0 1e-5 1e-4)
check dist_augmented_equal_combined_batch '[ $rc = 0 ] && grep -q "augmented (flip, shift 2)" aug.log && [ "$same" = close ]' \
  "exit $rc, $same: $(tail -2 aug.log)"

# ---- one rank through the distributed path is the plain run, bit for bit
mkdir -p one plain
(cd plain && "$mbin" gsl train ../plain.data ../dist.cfg > ../plain.log 2>&1); rc0=$?
(cd one && GSL_DIST=1 mpi -x OPENBLAS_NUM_THREADS -x GSL_DIST -np 1 "$mbin" gsl train ../one.data ../dist.cfg > ../one.log 2>&1)
rc1=$?
check mpi_binary_runs_without_mpirun '[ $rc0 = 0 ] && ! grep -q "ranks x" plain.log' "exit $rc0: $(tail -2 plain.log)"
differ=$(for f in dist_e0002.weights dist_e0002.optim dist_e0002_cb0.codebook; do
  cmp -s "plain/R/$f" "one/R/$f" || echo "$f"; done)
check one_rank_dist_path_bitwise '[ $rc1 = 0 ] && grep -q "1 ranks x 50" one.log && [ -z "$differ" ]' \
  "exit $rc1, differ: '$differ': $(tail -2 one.log)"

# ---- a 2-rank run resumed from its checkpoint equals the uninterrupted one
mkdir -p resume
(cd resume && GSL_DIST_DEBUG=1 mpi -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG -np 2 "$mbin" gsl train ../dist.data ../dist.cfg -epochs 1 \
   > ../resume1.log 2>&1 &&
 GSL_DIST_DEBUG=1 mpi -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG -np 2 "$mbin" gsl train ../dist.data ../dist.cfg D/dist.ckpt \
   > ../resume2.log 2>&1); rc=$?
r0=$(sums resume2.log 0 2); r1=$(sums resume2.log 1 2)
check dist_resume_equals_uninterrupted '[ $rc = 0 ] && grep -q resuming resume2.log && [ "$r0" = "$s0" ] && [ "$r1" = "$s0" ]' \
  "exit $rc: resumed '$r0' / '$r1', uninterrupted '$s0'"

# ---- preemption of one rank (SIGUSR1, as Slurm's --signal sends it): every rank stops at the same step (the next
# progress line, every 2 steps here), rank 0 checkpoints, all exit 75; the resumed run ends where the uninterrupted
# one does
sed 's/^log_interval=10/log_interval=2/' dist.cfg > pre.cfg
mkdir -p pre
(cd pre && mpi -x OPENBLAS_NUM_THREADS -np 2 "$mbin" gsl train ../dist.data ../pre.cfg -epochs 1 > ../pre1.log 2>&1 &&
 GSL_FAULT_SIGNAL=2:3:1 mpi -x OPENBLAS_NUM_THREADS -x GSL_FAULT_SIGNAL -np 2 "$mbin" gsl train ../dist.data ../pre.cfg \
   D/pre.ckpt > ../pre2.log 2>&1); rc=$?
check dist_preempt_exit_75 '[ $rc = 75 ] && grep -q "stopped by a signal to another rank at epoch 2, step 4" pre2.log && grep -q "^position 4 " pre/D/pre.ckpt' \
  "exit $rc: $(grep -v '^ ' pre2.log | tail -3)"
(cd pre && GSL_DIST_DEBUG=1 mpi -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG -np 2 "$mbin" gsl train ../dist.data ../pre.cfg \
   D/pre.ckpt > ../pre3.log 2>&1); rc=$?
p0=$(sums pre3.log 0 2); p1=$(sums pre3.log 1 2)
check dist_preempt_resume_equals_uninterrupted '[ $rc = 0 ] && grep -q "at epoch 2, step 4" pre3.log && [ "$p0" = "$s0" ] && [ "$p1" = "$s0" ]' \
  "exit $rc: resumed '$p0' / '$p1', uninterrupted '$s0'"

# ---- the plain binary refuses to be one of several ranks
mkdir -p nompi
(cd nompi && mpi -np 2 "$bin" gsl train ../dist.data ../dist.cfg > ../nompi.log 2>&1); rc=$?
check plain_binary_refuses_mpirun '[ $rc != 0 ] && grep -q "built without MPI" nompi.log && [ ! -e nompi/D ]' \
  "exit $rc: $(grep -v '^ ' nompi.log | tail -3)"

# ---- failures: a killed rank, a hung rank. Rank 1 is found through its GSL_DIST_DEBUG line.
fault() { # NAME SIGNAL TIMEOUT BOUND PATTERN
  local name=$1 sig=$2 log=$1.log bound=$4 pat=$5 pid="" t0 el
  mkdir -p "$name"
  (cd "$name" && GSL_DIST_DEBUG=1 GSL_DIST_TIMEOUT=$3 mpi -x OPENBLAS_NUM_THREADS -x GSL_DIST_DEBUG -x GSL_DIST_TIMEOUT \
     -np 2 "$mbin" gsl train ../dist.data ../dist.cfg -epochs 200 > "../$log" 2>&1; echo "exit $?" >> "../$log") &
  local job=$!
  for _ in $(seq 600); do grep -qE "epoch 2/[0-9]+ batch" "$log" 2>/dev/null && break; sleep 0.1; done
  # the ranks' stderr lines may be interleaved with each other's: no anchor
  pid=$(sed -n 's/.*gsl-dist: rank 1\/2 .* pid \([0-9]*\) .*/\1/p' "$log")
  if [ -z "$pid" ] || ! grep -qE "epoch 2/[0-9]+ batch" "$log"; then
    bad "$name" "the run did not get going (rank 1 pid '$pid'): $(tail -3 "$log")"
    for p in $(sed -n 's/.*gsl-dist: rank [0-9]\/2 .* pid \([0-9]*\) .*/\1/p' "$log"); do kill -9 "$p" 2>/dev/null; done
    wait $job; return
  fi
  t0=$(date +%s%N)
  kill -"$sig" "$pid"
  wait $job
  el=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b - a) / 1e9}')
  kill -9 "$pid" 2>/dev/null # a stopped rank that outlived the job (it should not)
  local rc; rc=$(sed -n 's/^exit //p' "$log")
  check "$name" '[ "$rc" != 0 ] && grep -qE "$pat" "$log" && awk -v e="$el" -v b="$bound" "BEGIN{exit !(e < b)}"' \
    "exit $rc after ${el}s (bound $bound s): $(grep -vE '^(gsl-dist|epoch|Saving| +[0-9]|layer)' "$log" | tail -4)"
  echo "     ($name: the job ended ${el}s after the signal, exit $rc)"
}
fault kill9_one_rank_stops_job 9 30 30 "exited on signal 9|terminated"
fault hung_rank_stops_job_at_timeout STOP 3 20 "did not complete within 3 s \(GSL_DIST_TIMEOUT\)"

result
