#!/usr/bin/env bash
# Serving the codes at scale: the IndexIVFPQ of `gsl export -ivf NLIST` against the flat IndexPQ of the same codes,
# searched with Faiss. The database is the 60,000 Fashion-MNIST training images, the queries the 10,000 test images,
# embedded by a trained checkpoint (default: make demo's, backup/fashion/fashion_gsl.ckpt). For a few nprobe values:
# recall@10 of the flat index's top 10 (the fraction of the IVF index's 10 hits at a distance no larger than the flat
# index's 10th: codes tie often, and which of several equal codes comes 10th is arbitrary), and queries/s of each,
# Faiss on one thread (the best of 3 timed passes over all queries).
#   scripts/bench/bench_ivf.sh [CKPT] [NLIST]        (default NLIST 256)
# Env: CFG (default cfg/fashion_gsl.cfg), DATA (default cfg/fashion.data), PYTHON (a python3 with faiss, numpy).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
ckpt=${1:-backup/fashion/fashion_gsl.ckpt} nlist=${2:-256}
cfg=${CFG:-cfg/fashion_gsl.cfg} data=${DATA:-cfg/fashion.data} py=${PYTHON:-/usr/bin/python3}
[ -f "$ckpt" ] || { echo "bench_ivf.sh: $ckpt not found (make demo trains it)" >&2; exit 1; }
out=build/bench/ivf
mkdir -p "$out"
bin/darknet gsl export "$data" "$cfg" "$ckpt" -out "$out/flat.faiss" 2>/dev/null
bin/darknet gsl export "$data" "$cfg" "$ckpt" -out "$out/ivf.faiss" -ivf "$nlist" 2>/dev/null
bin/darknet gsl embed "$data" "$cfg" "$ckpt" -out "$out/q" 2>/dev/null
"$py" - "$out" "$nlist" <<'PY'
import sys, time
import faiss, numpy as np
out, nlist = sys.argv[1], int(sys.argv[2])
faiss.omp_set_num_threads(1)
raw = np.fromfile(f"{out}/q.fvecs", dtype=np.int32)
d = int(raw[0]); xq = raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()
flat, index = faiss.read_index(f"{out}/flat.faiss"), faiss.read_index(f"{out}/ivf.faiss")
ivf = faiss.extract_index_ivf(index)
def timed(ix):
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter(); D, I = ix.search(xq, 10); best = min(best, time.perf_counter() - t)
    return D, len(xq) / best
Df, qf = timed(flat)
tol = 1e-5 * (1 + np.abs(Df[:, 9:10]))
print(f"database {flat.ntotal}, queries {len(xq)}, {d}-d, Faiss {faiss.__version__} on 1 thread, IVF lists {nlist}")
print(f"| index | nprobe | recall@10 (of the flat index's top 10) | queries/s | speed-up |")
print(f"|---|---|---|---|---|")
print(f"| flat IndexPQ | - | 1 | {qf:.0f} | 1.0x |")
for nprobe in (1, 4, 16, 64, nlist):
    ivf.nprobe = nprobe
    D, q = timed(index)
    rec = float(np.mean(D <= Df[:, 9:10] + tol))
    print(f"| IndexIVFPQ | {nprobe} | {rec:.4f} | {q:.0f} | {q / qf:.1f}x |")
PY
