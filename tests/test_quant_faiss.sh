#!/bin/sh
# Cross-checks of quant/ against Faiss (Debian python3-faiss): exported IndexPQ / IndexPreTransform files load with
# faiss.read_index and return our neighbours and distances; our PQ's MSE is within 1% of Faiss's.
# Env: GSLQ_BIN (the standalone `gsl quant` command, built by the Makefile with libgslq alone) or DARKNET_BIN (the
# built bin/darknet; its `gsl quant` is used), PYTHON (a python3 with faiss + numpy), GSL_TEST_TMP (scratch).
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

if [ -n "${GSLQ_BIN:-}" ] && [ -x "$GSLQ_BIN" ]; then
    set -- "$GSLQ_BIN" # the standalone command (make quant-test: libgslq alone)
elif [ -n "${DARKNET_BIN:-}" ] && [ -x "$DARKNET_BIN" ] && "$DARKNET_BIN" gsl quant help >/dev/null 2>&1; then
    set -- "$DARKNET_BIN" gsl quant
else
    echo "test_quant_faiss: neither GSLQ_BIN (make build/cpu/gslq) nor a usable DARKNET_BIN" >&2
    echo "RESULT 0 passed, 1 failed"
    exit 1
fi

OPENBLAS_NUM_THREADS=1 "$py" "$here/quant_faiss_check.py" "$tmp" "$@"
rc=$?
[ $rc -eq 0 ] || echo "test_quant_faiss: failures above" >&2
exit $rc
