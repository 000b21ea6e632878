#!/bin/sh
# Benchmark of quant/ (libgslq) against Faiss: Debian's python3-faiss 1.7.3 and the newest faiss-cpu wheel from
# PyPI (installed into build/bench-venv on first use). Data: Fashion-MNIST reduced to 64-d by PCA (60k train, 10k
# queries) and Gaussian 128-d; M = 4 and 8, K = 256; 1 and 2 threads. Prints a table of training time (25
# iterations), encode vectors/s, ADC queries/s (k = 100 over 60k codes) and MSE, with ratios to the faster Faiss.
# Usage: scripts/bench/bench_quant.sh [--quick] [--repeat N]      (--quick: Fashion-MNIST, 1 thread only)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/bench
mkdir -p "$out"
py=/usr/bin/python3

echo "building the libgslq benchmark driver (make build/cpu/bench/bench_quant_lib: libgslq alone, OpenBLAS)"
make -C "$root" --no-print-directory build/cpu/bench/bench_quant_lib >/dev/null ||
  { echo "bench_quant.sh: build failed" >&2; exit 1; }
lib=$root/build/cpu/bench/bench_quant_lib

echo "preparing data in $out/data"
"$py" "$root/scripts/bench/bench_quant_data.py" "$out/data"

venv=$root/build/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import faiss' >/dev/null 2>&1; then
    echo "installing faiss-cpu from PyPI into $venv"
    if ! { "$py" -m venv "$venv" && "$venv/bin/pip" install -q faiss-cpu numpy; }; then
        echo "warning: could not install faiss-cpu; the PyPI column will be empty" >&2
    fi
fi

exec "$py" "$root/scripts/bench/bench_quant.py" --lib "$lib" --data "$out/data" \
    --venv-python "$venv/bin/python" "$@"
