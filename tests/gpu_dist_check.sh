#!/usr/bin/env bash
# Distributed training on a GPU host (needs nvcc, a GPU and Open MPI's mpirun/mpicc; installs nothing):
#   1. one rank on GPU 0 through the distributed path (GSL_DIST=1 mpirun -np 1) with NCCL, and with
#      GSL_DIST_BACKEND=mpi (GPU buffers staged through host memory): the same weights
#   2. the same against the CPU build's one-rank MPI path (looser tolerance: GPU and CPU kernels round differently)
#   3. with 2 or more GPUs: 2 ranks over NCCL (batch 50 each) against one GPU process with the combined batch
#      (batch 100, subdivisions 2), and both ranks bit-identical
# Not part of `make test` (no GPU in CI): run it by hand, or from scripts/gpu-check.sh. Synthetic data (no
# dataset package needed); plain python3 (no numpy).
#   tests/gpu_dist_check.sh        Env: BLAS (0 where OpenBLAS is missing, default 1), JOBS, PREBUILT=1 (no make)
# Ends with "RESULT N passed, M failed".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
. tests/gpu_lib.sh
gpu_setup darknet-mpi dist-check mpirun mpicc nvidia-smi
ngpu=$(nvidia-smi -L | grep -c '^GPU')
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mpi() { timeout -k 5 300 mpirun --oversubscribe -x OPENBLAS_NUM_THREADS "$@"; }

gpu_mkdata
gpu_mkcfg dist 50 1; gpu_mkcfg ref 100 2
gpu_mkdirs nccl mpi cpu ref two
one() { # FOLDER BIN BACKEND GPUFLAGS...
  local dir=$1 b=$2 be=$3; shift 3
  (cd "$dir" && GSL_DIST=1 GSL_DIST_BACKEND=$be GSL_DIST_DEBUG=1 mpi -x GSL_DIST -x GSL_DIST_BACKEND -x GSL_DIST_DEBUG \
     -np 1 "$b" gsl train x.data ../dist.cfg "$@" > log 2>&1)
}
one nccl "$gbin" nccl -gpus 0; rc1=$?
one mpi "$gbin" mpi -gpus 0; rc2=$?
one cpu "$cbin" mpi; rc3=$?
check one_rank_runs '[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ $rc3 = 0 ] && grep -q "backend nccl" nccl/log && grep -q "backend mpi device 0" mpi/log' \
  "exit $rc1/$rc2/$rc3: $(tail -n 2 nccl/log mpi/log cpu/log)"
check_close one_rank_nccl_equals_mpi_staging nccl/B/dist_e0002.weights mpi/B/dist_e0002.weights 20 0 1e-5 1e-4
check_close one_rank_gpu_close_to_cpu nccl/B/dist_e0002.weights cpu/B/dist_e0002.weights 20 0 1e-3 1e-2

if [ "$ngpu" -ge 2 ]; then
  (cd ref && GSL_DIST=0 "$gbin" gsl train x.data ../ref.cfg -gpus 0 > log 2>&1); rc1=$?
  (cd two && GSL_DIST_DEBUG=1 mpi -x GSL_DIST_DEBUG -np 2 "$gbin" gsl train x.data ../dist.cfg -gpus 0,1 > log 2>&1); rc2=$?
  s=$(close ref/B/ref_e0002.weights two/B/dist_e0002.weights 20 0 1e-4 1e-3)
  check two_ranks_nccl_equal_combined_batch '[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$s" = close ]' "exit $rc1/$rc2, $s: $(tail -n 2 two/log)"
  a=$(grep -E "gsl-dist: rank 0 epoch 2 " two/log | sed -E 's/.*epoch 2 //'); b=$(grep -E "gsl-dist: rank 1 epoch 2 " two/log | sed -E 's/.*epoch 2 //')
  check two_ranks_bit_identical '[ -n "$a" ] && [ "$a" = "$b" ]' "rank 0 '$a', rank 1 '$b'"
else
  echo "skip two-rank NCCL checks: $ngpu GPU"
fi
result
