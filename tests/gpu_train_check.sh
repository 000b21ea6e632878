#!/usr/bin/env bash
# `gsl train` on a GPU host, one process, no MPI (needs a GPU and the GPU=1 and GPU=0 builds; installs nothing):
#   1. the small network (tests/e2e/small.cfg, 2 epochs, [snap] rotate + [similarity]) on GPU 0 against the CPU
#      build from the same seed: the same run within GPU/CPU rounding (the rebuilt codebook follows the weights)
#   2. two replicas on one device (-gpus 0,0: Darknet's train_networks, weights averaged every 4 steps): runs to the
#      end with finite weights, and its last loss is within 2x of one replica's with the combined batch
# Not part of `make test` (no GPU in CI): scripts/gpu-check.sh runs it. Synthetic data (tests/gpu_lib.sh).
#   tests/gpu_train_check.sh        Env: BLAS (0 where OpenBLAS is missing, default 1), JOBS, PREBUILT=1 (no make)
# Ends with "RESULT N passed, M failed".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
. tests/gpu_lib.sh
gpu_setup darknet train-check nvidia-smi
export OPENBLAS_NUM_THREADS=1

gpu_mkdata
gpu_mkcfg one 50 1; gpu_mkcfg ref 100 2
gpu_mkdirs gpu cpu ref rep
run() { # FOLDER BIN CFG ARGS...: times the run into FOLDER/time
  local dir=$1 b=$2 cfg=$3; shift 3
  (cd "$dir" && s=$(date +%s.%N) && timeout -k 5 300 "$b" gsl train x.data "../$cfg" "$@" > log 2>&1; rc=$?
   echo "$s $(date +%s.%N)" | awk '{printf "%.2f\n", $2 - $1}' > time; exit $rc)
}
run gpu "$gbin" one.cfg -gpus 0; rc1=$?
run cpu "$cbin" one.cfg; rc2=$?
echo "gsl train, 2 epochs of 1000 images: GPU $(cat gpu/time) s, CPU $(cat cpu/time) s"
check gpu_train_runs '[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q "^training .*, on GPU 0$" gpu/log' \
  "exit $rc1/$rc2: $(grep -m1 '^training' gpu/log; tail -n 3 gpu/log cpu/log)"
check_close gpu_epoch1_close_to_cpu cpu/B/one_e0001.weights gpu/B/one_e0001.weights 20 0 1e-4 1e-3
check_close gpu_epoch2_close_to_cpu cpu/B/one_e0002.weights gpu/B/one_e0002.weights 20 0 1e-3 1e-2

run ref "$gbin" ref.cfg -gpus 0; rc1=$?
run rep "$gbin" one.cfg -gpus 0,0; rc2=$?
last_loss() { grep -oE 'loss [0-9.eE+-]+' "$1" | tail -1 | awk '{print $2}'; }
a=$(last_loss ref/log) b=$(last_loss rep/log)
echo "last loss: one replica (batch 100) ${a:-?}, two replicas (batch 50 each) ${b:-?}"
s=$(close ref/B/ref_e0002.weights rep/B/one_e0002.weights 20 0 1e6 0)
check two_replicas_run '[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$s" = close ] && grep -q "^training .*, 2 replicas on GPUs$" rep/log' \
  "exit $rc1/$rc2, $s: $(grep -m1 '^training' rep/log; tail -n 3 ref/log rep/log)"
check two_replicas_loss_like_one '[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" "BEGIN{exit !(b <= 2*a + 1e-3)}"' \
  "one replica $a, two $b"
result
