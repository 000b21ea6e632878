#!/usr/bin/env python3
"""One Faiss measurement for scripts/bench/bench_quant.sh: IndexPQ (K=256) on TRAIN.fvecs / QUERY.fvecs.
Prints one line: `faiss version=V blas=B train_s=.. train_cpu_s=.. mse=.. encode_vps=.. encode_cpu_vps=.. adc_qps=..
adc_cpu_qps=..` (median of REPEAT runs; wall clock, and process CPU time for the _cpu values). Training runs `niter` k-means iterations per sub-quantizer (Faiss's default 25) from Faiss's default
initialisation (random training points).
Usage: bench_quant_faiss.py TRAIN QUERY M THREADS [REPEAT]"""
import os
import statistics
import sys
import time

import numpy as np
import faiss


def read_fvecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def blas_name():
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return "unknown"
    for key, name in (("openblas", "openblas"), ("libmkl", "mkl"), ("libblas", "reference-blas"),
                      ("flexiblas", "flexiblas")):
        if key in maps:
            path = [l.split()[-1] for l in maps.splitlines() if key in l][0]
            return f"{name}({os.path.realpath(path)})"
    return "unknown"


def main():
    train_path, query_path, M, nt = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    faiss.omp_set_num_threads(nt)
    xt, xq = read_fvecs(train_path), read_fvecs(query_path)
    d = xt.shape[1]
    train_s, train_c, mse = [], [], None
    for _ in range(repeat):
        index = faiss.IndexPQ(d, M, 8)
        index.pq.cp.niter = 25
        t0, c0 = time.perf_counter(), time.process_time()
        index.train(xt)
        train_s.append(time.perf_counter() - t0)
        train_c.append(time.process_time() - c0)
    enc_s, enc_c = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        codes = index.pq.compute_codes(xt)
        enc_s.append(time.perf_counter() - t0)
        enc_c.append(time.process_time() - c0)
    rec = index.pq.decode(codes)
    mse = float(((xt.astype(np.float64) - rec) ** 2).sum(axis=1).mean())
    index.add(xt)
    adc_s, adc_c = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        index.search(xq, 100)
        adc_s.append(time.perf_counter() - t0)
        adc_c.append(time.process_time() - c0)
    med = statistics.median
    print(f"faiss version={faiss.__version__} blas={blas_name()} train_s={med(train_s):.4f} "
          f"train_cpu_s={med(train_c):.4f} mse={mse:.6f} encode_vps={len(xt) / med(enc_s):.0f} "
          f"encode_cpu_vps={len(xt) / med(enc_c):.0f} adc_qps={len(xq) / med(adc_s):.0f} "
          f"adc_cpu_qps={len(xq) / med(adc_c):.0f}", flush=True)


if __name__ == "__main__":
    main()
