#!/usr/bin/env bash
# The plugin layers' GPU checks in one go, on a GPU host that may have no package access (installs nothing):
#   1. make GPU=1 BLAS=0            Darknet's CUDA build and bin/darknet (nvcc, cuBLAS)
#   2. make GPU=1 BLAS=0 test-gpu   tests/test_gpu_*.c: every kernel against the CPU path, forward and backward
#   3. scripts/bench_layers.sh --gpu   the GPU training-step benchmark and the [snap] backward's bandwidth
# The tree must already hold the unpacked Darknet source (build/darknet-src/.fetched; `make` fetches it where
# Debian's archive can be reached). A few minutes on one H100 (most of it compiling Darknet's kernels).
# Env: JOBS (parallel make, default nproc), ARCH (nvcc -gencode flags, passed to make), BENCH=0 skips step 3.
# Exit status: non-zero when the build or a test failed (the benchmark still runs after failing tests).
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
[ -f build/darknet-src/.fetched ] || {
  echo "scripts/gpu-check.sh: build/darknet-src is missing: run 'make' once on a host with package access, or copy build/darknet-src here" >&2
  exit 1
}
command -v nvcc >/dev/null || { echo "scripts/gpu-check.sh: nvcc not found (put CUDA's bin on PATH)" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
jobs=${JOBS:-$(nproc)}
mk=(make -j"$jobs" --no-print-directory GPU=1 BLAS=0)
[ -n "${ARCH:-}" ] && mk+=(ARCH="$ARCH")

say "build: ${mk[*]}"
"${mk[@]}" || { echo "scripts/gpu-check.sh: the GPU build failed" >&2; exit 1; }
say "tests: ${mk[*]} test-gpu"
"${mk[@]}" test-gpu
status=$?
if [ "${BENCH:-1}" != 0 ]; then
  say "benchmark: scripts/bench_layers.sh --gpu"
  BLAS=0 scripts/bench_layers.sh --gpu || status=1
fi
say "done: $([ $status = 0 ] && echo ok || echo FAILED)"
exit $status
