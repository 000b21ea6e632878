#!/usr/bin/env python3
"""Benchmark data for scripts/bench/bench_quant.sh, written as .fvecs/.ivecs into OUTDIR:
  fmnist_{train,query}.fvecs  Fashion-MNIST (Debian dataset-fashion-mnist) reduced to 64 dimensions by PCA fitted
                              on the 60k training images (pixels scaled to [0, 1]); 60k train, 10k queries
  fmnist_{train,query}_labels.ivecs  class ids (one per record)
  gauss_{train,query}.fvecs   Gaussian 128-d, 60k train, 10k queries (seed 123)
Needs numpy only. Usage: bench_quant_data.py OUTDIR [FASHION_DIR]"""
import gzip
import os
import struct
import sys

import numpy as np


def write_vecs(path, x):
    x = np.ascontiguousarray(x)
    n, d = x.shape
    rec = np.empty((n, d + 1), dtype=np.int32)
    rec[:, 0] = d
    rec[:, 1:] = x.view(np.int32) if x.dtype == np.float32 else x.astype(np.int32)
    tmp = path + ".tmp"
    rec.tofile(tmp)
    os.replace(tmp, path)


def idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        raise SystemExit(f"{path}: bad IDX magic {magic}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h * w)


def idx_labels(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic != 2049:
        raise SystemExit(f"{path}: bad IDX magic {magic}")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def main():
    out = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(out, "fmnist_query.fvecs")):
        tr = idx_images(os.path.join(src, "train-images-idx3-ubyte.gz")).astype(np.float64) / 255.0
        te = idx_images(os.path.join(src, "t10k-images-idx3-ubyte.gz")).astype(np.float64) / 255.0
        mean = tr.mean(axis=0)
        cov = np.cov(tr - mean, rowvar=False)
        w, v = np.linalg.eigh(cov)
        P = v[:, np.argsort(w)[::-1][:64]]
        write_vecs(os.path.join(out, "fmnist_train.fvecs"), ((tr - mean) @ P).astype(np.float32))
        write_vecs(os.path.join(out, "fmnist_query.fvecs"), ((te - mean) @ P).astype(np.float32))
        write_vecs(os.path.join(out, "fmnist_train_labels.ivecs"),
                   idx_labels(os.path.join(src, "train-labels-idx1-ubyte.gz")).reshape(-1, 1))
        write_vecs(os.path.join(out, "fmnist_query_labels.ivecs"),
                   idx_labels(os.path.join(src, "t10k-labels-idx1-ubyte.gz")).reshape(-1, 1))
    if not os.path.exists(os.path.join(out, "gauss_query.fvecs")):
        rng = np.random.default_rng(123)
        write_vecs(os.path.join(out, "gauss_train.fvecs"), rng.standard_normal((60000, 128), dtype=np.float32))
        write_vecs(os.path.join(out, "gauss_query.fvecs"), rng.standard_normal((10000, 128), dtype=np.float32))


if __name__ == "__main__":
    main()
