#!/usr/bin/env bash
# GPU training throughput by convolution path, on a GPU host (installs nothing): one epoch of `gsl train -gpus 0` on
# Fashion-MNIST (60,000 images) for the 3-convolution network (cfg/fashion_gsl_3conv.cfg) and the demo's LeNet
# (cfg/fashion_gsl.cfg), with
#   per-image   the GPU build with GSL_GPU_CONV=per-image: upstream's algorithm, one im2col and one cuBLAS sgemm per
#               image per layer
#   batched     the GPU build: darknet/conv_gpu.cu, the batch's columns in one kernel and one (strided-batched) sgemm
#   cudnn       the CUDNN=1 build (cuDNN 9 through darknet/cudnn_compat.h, FP32 math)
# Prints the trainer's images/s (the training loop alone, the data loaded on its thread alongside) and each path's
# ratio to per-image.
#   scripts/bench/bench_gpu_conv.sh      Env: DATA_DIR (default /usr/share/datasets/fashion-mnist), BLAS (default 1),
#                                        PREBUILT=1 (no make), GPU (device, default 0)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dir=${DATA_DIR:-/usr/share/datasets/fashion-mnist} sfx=$([ "${BLAS:-1}" = 0 ] && echo -noblas) dev=${GPU:-0}
if [ "${PREBUILT:-0}" != 1 ]; then
  make -j"$(nproc)" --no-print-directory GPU=1 BLAS="${BLAS:-1}" SETUP=0 "build/gpu$sfx/darknet" >/dev/null &&
    make -j"$(nproc)" --no-print-directory GPU=1 CUDNN=1 BLAS="${BLAS:-1}" SETUP=0 "build/gpu-cudnn$sfx/darknet" >/dev/null ||
    { echo "bench_gpu_conv.sh: the build failed" >&2; exit 1; }
fi
out=$root/build/bench/gpu_conv
rm -rf "$out" && mkdir -p "$out"
printf 'classes=10\ntrain=%s\ntrain_labels=%s\nbackup=B\n' "$dir/train-images-idx3-ubyte.gz" \
  "$dir/train-labels-idx1-ubyte.gz" > "$out/f.data"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -1
printf '| network | path | images/s | vs per-image |\n|---|---|---|---|\n'
for cfg in cfg/fashion_gsl_3conv.cfg cfg/fashion_gsl.cfg; do
  base=
  for path in per-image batched cudnn; do
    bin=$root/build/gpu$sfx/darknet mode=batched
    [ $path = cudnn ] && bin=$root/build/gpu-cudnn$sfx/darknet
    [ $path = per-image ] && mode=per-image
    sed 's/^eval_queries=.*/eval_queries=0/' "$cfg" > "$out/net.cfg"
    (cd "$out" && rm -rf B && GSL_GPU_CONV=$mode timeout -k 5 600 "$bin" gsl train f.data net.cfg -epochs 1 -gpus "$dev" \
      > "$path.log" 2>&1)
    ips=$(sed -n 's/^epoch 1 done:.*(\([0-9.]*\) img\/s).*/\1/p' "$out/$path.log")
    [ -n "$ips" ] || { echo "| $(basename "$cfg") | $path | failed: $(tail -n 1 "$out/$path.log") | |"; continue; }
    [ -z "$base" ] && base=$ips
    printf '| %s | %s | %s | %sx |\n' "$(basename "$cfg")" "$path" "$ips" "$(awk -v a="$ips" -v b="$base" 'BEGIN{printf "%.2f", a / b}')"
  done
done
