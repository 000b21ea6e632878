#!/usr/bin/env bash
# The GPU checks in one go, on a GPU host that may have no package access (installs nothing):
#   1. make GPU=1 BLAS=0 SETUP=0     Darknet's CUDA build, bin/darknet and the test programs (nvcc, cuBLAS)
#   2. tests/test_gpu_*.c and the layer tests of the GPU build: every kernel against the CPU path, forward and backward
#      (test_gpu_conv: the batched convolution of darknet/conv_gpu.cu, whole batch, chunks and one image per call)
#   3. tests/gpu_train_check.sh      `gsl train` on GPU 0 against the CPU build; two replicas on one device
#   4. tests/gpu_dist_check.sh       NCCL and MPI one-rank training (only where mpirun and mpicc exist)
#   4b. tests/gpu_cudnn_check.sh     the CUDNN=1 build (cuDNN 9) against the GPU build without it (only where libcudnn
#                                    is installed), and scripts/bench/bench_gpu_conv.sh: images/s of per-image,
#                                    batched and cuDNN convolutions on the 3-convolution network and the LeNet
#   5. scripts/bench/bench_layers.sh --gpu   the GPU training-step benchmark and the [snap] backward's bandwidth;
#      and, where build/bench/decode holds bench_decode.sh's JPEGs (carried), images/s of 1..16 decoding threads
#   6. with HEADLINE=1: scripts/study/gpu_headline.sh (the Fashion-MNIST headline on the GPU; DATA_DIR, RES, TRAIN_S,
#      PARALLEL and the cfgs in HEADLINE_CFGS pass through; several minutes)
# The tree must hold the unpacked Darknet source (build/darknet-src/.fetched; `make` fetches it where Debian's
# archive can be reached), or, with PREBUILT=1, the builds themselves: build/gpu-noblas and build/cpu-noblas/darknet
# made by `make GPU=1 BLAS=0 test-bins build/gpu-noblas/bench/bench_layers` and `make BLAS=0` on a host with the
# same nvcc (and, for step 4b, `make GPU=1 CUDNN=1 BLAS=0 build/gpu-cudnn-noblas/darknet`); then nothing is compiled
# here.
# Env: JOBS (parallel make, default nproc), ARCH (nvcc -gencode flags, passed to make), BENCH=0 skips step 5,
#      PREBUILT=1 (above), HEADLINE=1 (step 6).
# Exit status: non-zero when the build or a test failed (the later steps still run after failing tests).
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
export SETUP=0 BLAS=0 PREBUILT=${PREBUILT:-0}
b=build/gpu-noblas
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [ "$PREBUILT" = 1 ]; then
  for f in $b/darknet $b/tests/test_gpu_layers build/cpu-noblas/darknet; do
    [ -x "$f" ] || { echo "scripts/gpu-check.sh: PREBUILT=1 but $f is missing" >&2; exit 1; }
  done
  missing=$(ldd $b/darknet 2>&1 | grep -E 'not found|GLIBC' || true)
  [ -z "$missing" ] || { echo "scripts/gpu-check.sh: the prebuilt binaries cannot run here: $missing" >&2; exit 1; }
else
  [ -f build/darknet-src/.fetched ] || {
    echo "scripts/gpu-check.sh: build/darknet-src is missing: run 'make' once on a host with package access, copy build/darknet-src here, or use PREBUILT=1" >&2
    exit 1
  }
  command -v nvcc >/dev/null || { echo "scripts/gpu-check.sh: nvcc not found (put CUDA's bin on PATH)" >&2; exit 1; }
  mk=(make -j"${JOBS:-$(nproc)}" --no-print-directory GPU=1 BLAS=0 SETUP=0)
  [ -n "${ARCH:-}" ] && mk+=(ARCH="$ARCH")
  say "build: ${mk[*]}"
  "${mk[@]}" bin/darknet test-bins $b/bench/bench_layers &&
    make -j"${JOBS:-$(nproc)}" --no-print-directory GPU=0 BLAS=0 SETUP=0 build/cpu-noblas/darknet ||
    { echo "scripts/gpu-check.sh: the build failed" >&2; exit 1; }
fi
status=0
say "tests: the GPU build's kernel and layer tests"
GSL_TEST_TMP=$b/test-tmp tests/run.sh $b/tests/test_gpu_* $b/tests/test_snap $b/tests/test_quantloss \
  $b/tests/test_similarity || status=1
say "tests: tests/gpu_train_check.sh"
tests/gpu_train_check.sh || status=1
if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
  say "tests: tests/gpu_dist_check.sh"
  tests/gpu_dist_check.sh || status=1
else
  say "skipped tests/gpu_dist_check.sh: no mpirun/mpicc here (NCCL and MPI training unverified)"
fi
if [ -e "$(dirname "$(command -v nvcc)")/../include/cudnn.h" ] || [ -e /usr/include/cudnn.h ]; then
  say "tests: tests/gpu_cudnn_check.sh"
  BLAS=0 tests/gpu_cudnn_check.sh || status=1
  if [ "${BENCH:-1}" != 0 ]; then
    say "benchmark: scripts/bench/bench_gpu_conv.sh"
    BLAS=0 scripts/bench/bench_gpu_conv.sh || status=1
  fi
else
  say "skipped tests/gpu_cudnn_check.sh: no cudnn.h here (CUDNN=1 unverified)"
fi
if [ "${BENCH:-1}" != 0 ]; then
  say "benchmark: scripts/bench/bench_layers.sh --gpu"
  scripts/bench/bench_layers.sh --gpu || status=1
fi
if [ "${BENCH:-1}" != 0 ] && [ -s build/bench/decode/256x256.list ]; then
  # the host's many cores for the image loader: the JPEGs made by scripts/bench/bench_decode.sh on a machine with
  # Python (carry build/bench/decode), their list's folder rewritten to this tree's
  say "benchmark: decoding threads (bench_decode, 3x224x224)"
  if [ "$PREBUILT" = 1 ] || make -j"${JOBS:-$(nproc)}" --no-print-directory GPU=1 BLAS=0 SETUP=0 $b/bench/bench_decode; then
    for size in 256x256 500x375; do
      [ -s build/bench/decode/$size.list ] || continue
      sed "s|^.*/build/bench/decode/|$PWD/build/bench/decode/|" build/bench/decode/$size.list > $b/decode-$size.list
      for t in 1 2 4 8 16; do
        [ "$t" -le "$(nproc)" ] || continue
        echo "$size JPEG, $t threads: $($b/bench/bench_decode $b/decode-$size.list 3 224 224 $t -passes 2)"
      done
    done
  else
    status=1
  fi
fi
if [ "${HEADLINE:-0}" = 1 ]; then
  say "headline: scripts/study/gpu_headline.sh ${HEADLINE_CFGS:-}"
  # shellcheck disable=SC2086 # a list of cfg paths
  BIN=$b/darknet scripts/study/gpu_headline.sh ${HEADLINE_CFGS:-} || status=1
fi
say "done: $([ $status = 0 ] && echo ok || echo FAILED)"
exit $status
