#!/usr/bin/env bash
# cuDNN 9 on a GPU host (needs a GPU and libcudnn 9; installs nothing): the CUDNN=1 build (upstream's convolutions
# through cuDNN, its algorithm queries provided by darknet/cudnn_compat.h) against the GPU build without cuDNN
# (upstream's im2col + cuBLAS per image), from the same seed:
#   1. the small network (tests/e2e/small.cfg, 2 epochs, two convolutions, [snap] + [similarity]) trains to the same
#      weights within float tolerance after each epoch (cuDNN's algorithms sum in another order), and its codebook
#      follows;
#   2. every convolution got an algorithm (GSL_CUDNN_VERBOSE=1 lists them) and the math type is FP32 (no TF32);
#   3. the embeddings of one checkpoint (gsl embed -gpus 0) agree between the builds within 1e-4.
# Not part of `make test` (no GPU in CI): scripts/gpu-check.sh runs it.
#   tests/gpu_cudnn_check.sh        Env: BLAS (0 where OpenBLAS is missing, default 1), JOBS, PREBUILT=1 (no make)
# Ends with "RESULT N passed, M failed".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
. tests/gpu_lib.sh
sfx=$([ "${BLAS:-1}" = 0 ] && echo -noblas)
if [ "${PREBUILT:-0}" != 1 ]; then
  make -j"${JOBS:-$(nproc)}" --no-print-directory GPU=1 CUDNN=1 BLAS="${BLAS:-1}" "build/gpu-cudnn$sfx/darknet" >/dev/null ||
    { bad build "make GPU=1 CUDNN=1 build/gpu-cudnn$sfx/darknet failed (is libcudnn 9 installed?)"; result; exit 1; }
fi
dbin=$root/build/gpu-cudnn$sfx/darknet
gpu_setup darknet cudnn-check nvidia-smi
export OPENBLAS_NUM_THREADS=1

gpu_mkdata
gpu_mkcfg one 50 1
gpu_mkdirs plain cudnn
run() { # FOLDER BIN ARGS...
  local dir=$1 b=$2; shift 2
  (cd "$dir" && timeout -k 5 300 "$b" gsl train x.data ../one.cfg -gpus 0 "$@" > log 2>&1)
}
run plain "$gbin"; rc1=$?
GSL_CUDNN_VERBOSE=1 run cudnn "$dbin"; rc2=$?
check cudnn_train_runs '[ $rc1 = 0 ] && [ $rc2 = 0 ]' "exit $rc1/$rc2: $(tail -n 3 plain/log cudnn/log)"
n=$(grep -c "^cuDNN [0-9]*: forward algorithm" cudnn/log)
check cudnn_algorithms_chosen '[ "$n" -ge 2 ] && [ "$(grep -c "^cuDNN [0-9]*: backward-filter algorithm" cudnn/log)" = "$n" ]' \
  "$n forward choices: $(grep -m3 '^cuDNN' cudnn/log)"
check_close cudnn_epoch1_close_to_plain plain/B/one_e0001.weights cudnn/B/one_e0001.weights 20 0 1e-4 1e-3
check_close cudnn_epoch2_close_to_plain plain/B/one_e0002.weights cudnn/B/one_e0002.weights 20 0 1e-3 1e-2
check_close cudnn_codebook_close_to_plain plain/B/one_e0002_cb0.codebook cudnn/B/one_e0002_cb0.codebook 28 4 1e-2 1e-2
(cd plain && "$gbin" gsl embed x.data ../one.cfg B/one_e0002.weights -split train -gpus 0 -out e > elog 2>&1) &&
  (cd cudnn && "$dbin" gsl embed x.data ../one.cfg ../plain/B/one_e0002.weights -split train -gpus 0 -out e > elog 2>&1)
rc=$?
check_close cudnn_embeddings_equal_plain plain/e.fvecs cudnn/e.fvecs 0 0 1e-4 1e-4
[ $rc = 0 ] || bad cudnn_embed_runs "exit $rc: $(tail -n 2 plain/elog cudnn/elog)"
result
