#!/bin/sh
# Cross-checks of quant/ against Faiss (Debian python3-faiss): exported IndexPQ / IndexPreTransform files load with
# faiss.read_index and return our neighbours and distances; our PQ's MSE is within 1% of Faiss's.
# Env: DARKNET_BIN (the built ./darknet; its `gsl quant` is used), PYTHON (a python3 with faiss + numpy),
# GSL_TEST_TMP (scratch). Without a usable DARKNET_BIN the command line is built standalone from the sources.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
py=${PYTHON:-/usr/bin/python3}
tmp=${GSL_TEST_TMP:-$root/build/test-tmp}/quant_faiss
mkdir -p "$tmp"

if ! "$py" -c 'import faiss, numpy' >/dev/null 2>&1; then
    echo "test_quant_faiss: $py cannot import faiss and numpy (install python3-faiss, or set PYTHON)" >&2
    echo "RESULT 0 passed, 1 failed"
    exit 1
fi

if [ -n "${DARKNET_BIN:-}" ] && [ -x "$DARKNET_BIN" ] && "$DARKNET_BIN" gsl quant help >/dev/null 2>&1; then
    set -- "$DARKNET_BIN" gsl quant
else
    echo "test_quant_faiss: no usable DARKNET_BIN; building the gsl quant command standalone" >&2
    blas="-lopenblas -llapacke"
    ${CC:-cc} -std=c11 -O2 -march=x86-64-v2 -I"$root/quant" -DGSL_QUANT_STANDALONE "$root/darknet/gsl_quant.c" \
        "$root"/quant/*.c -o "$tmp/gslq" $blas -lm -pthread || { echo "RESULT 0 passed, 1 failed"; exit 1; }
    set -- "$tmp/gslq"
fi

OPENBLAS_NUM_THREADS=1 "$py" "$here/quant_faiss_check.py" "$tmp" "$@"
rc=$?
[ $rc -eq 0 ] || echo "test_quant_faiss: failures above" >&2
exit $rc
