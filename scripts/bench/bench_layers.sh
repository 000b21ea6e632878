#!/usr/bin/env bash
# What [snap] adds to a training step of the Fashion-MNIST LeNet (batch 128, 64-d embedding, [snap] M = 4 and 8,
# K = 256, neighbors = 8) and the share of the step spent in [similarity], in one run (scripts/bench/bench_layers.c).
#   scripts/bench/bench_layers.sh [--gpu] [BENCH_LAYERS_ARGS...]
# CPU (default): the BLAS=1 build; defaults -t 1 -cpu -n 10 -r 7: one OpenBLAS thread and the process's CPU time,
# so that other jobs on the machine do not move the figures (pass -t 2 without -cpu for wall-clock time on 2
# threads). --gpu: the GPU=1 build (BLAS=0 unless BLAS is set), defaults -gpu -n 20 -r 5, plus the [snap] backward's
# effective bandwidth against the device's copy bandwidth. Installs nothing; the build must be possible (make), or
# PREBUILT=1 runs the program as it is.
# Output: the table and key=value lines on stdout; Darknet's layer listing goes to build/<v>/test-tmp/bench_layers.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
gpu=0
if [ "${1:-}" = --gpu ]; then gpu=1; shift; fi
if [ "$gpu" = 1 ]; then blas=${BLAS:-0}; v=gpu; defaults=(-gpu -n 20 -r 5); else blas=${BLAS:-1}; v=cpu; defaults=(-t 1 -cpu -n 10 -r 7); fi
b=build/$v$([ "$blas" = 0 ] && echo -noblas || true)
[ "${PREBUILT:-0}" = 1 ] || make -s --no-print-directory GPU="$gpu" BLAS="$blas" "$b/bench/bench_layers" >&2
mkdir -p "$b/test-tmp"
if [ $# = 0 ]; then set -- "${defaults[@]}"; elif [ "$gpu" = 1 ]; then set -- -gpu "$@"; fi
echo "+ $b/bench/bench_layers $*" >&2
GSL_TEST_TMP=$b/test-tmp "$b/bench/bench_layers" "$@" 2> "$b/test-tmp/bench_layers.log" || {
  tail -n 20 "$b/test-tmp/bench_layers.log" >&2
  exit 1
}
