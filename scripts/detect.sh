#!/usr/bin/env bash
# Prints what the build found, and fails when a part that was asked for is missing.
# Env: GPU, BLAS, CUDNN (0|1), NVCC, CUDA_HOME.
set -u
GPU=${GPU:-0} BLAS=${BLAS:-1} CUDNN=${CUDNN:-0}
fail=0
have_header() { echo "#include <$1>" | ${CC:-gcc} -E -x c - ${2:-} >/dev/null 2>&1; }
have_lib() { ${CC:-gcc} -x c - -o /dev/null $2 -l"$1" >/dev/null 2>&1 <<<'int main(void){return 0;}'; }
line() { printf '  %-10s %s\n' "$1" "$2"; }

echo "build configuration: GPU=$GPU BLAS=$BLAS CUDNN=$CUDNN"
if have_header cblas.h -I/usr/include/x86_64-linux-gnu/openblas-pthread && have_lib openblas ""; then
  line OpenBLAS "found (the kernel it runs on is printed when bin/darknet is built: gsl info)"
  have_header lapacke.h && have_lib lapacke "" && line LAPACKE found || { line LAPACKE missing; [ "$BLAS" = 1 ] && fail=1; }
else
  line OpenBLAS "missing"; [ "$BLAS" = 1 ] && fail=1
fi
if have_header zlib.h && have_lib z ""; then line zlib found; else line zlib "missing (zlib1g-dev)"; fail=1; fi
[ "$BLAS" = 1 ] || line BLAS "off (BLAS=0: Darknet's own gemm, quant/'s built-in linear algebra)"
if [ -n "${NVCC:-}" ] && [ -x "$NVCC" ]; then
  line nvcc "$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') ($NVCC)"
else
  line nvcc missing; [ "$GPU" = 1 ] && fail=1
fi
ch=${CUDA_HOME:-/usr/local/cuda}
for lib in cublas curand cudnn nccl; do
  if ls "$ch"/lib64/lib$lib.so* >/dev/null 2>&1; then line "$lib" found; else
    line "$lib" missing
    case $lib in cublas|curand) [ "$GPU" = 1 ] && fail=1 ;; cudnn) [ "$CUDNN" = 1 ] && fail=1 ;; esac
  fi
done
if command -v mpicc >/dev/null 2>&1; then line MPI "$(mpicc --showme:version 2>/dev/null | head -1)"; else line MPI missing; fi
if [ "$fail" != 0 ]; then
  echo "error: a part this build asked for is missing (see above); scripts/setup.sh installs the Debian ones" >&2
  exit 1
fi
