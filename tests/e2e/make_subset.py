"""Writes a small class-balanced subset of Fashion-MNIST (Debian's dataset-fashion-mnist) as gzip'd IDX files.

usage: make_subset.py OUTDIR TRAIN_PER_CLASS TEST_PER_CLASS
Takes the first N samples of each class, in file order, so the subset is the same on every machine."""
import gzip
import os
import struct
import sys

import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def write_idx(path, arr):
    with gzip.open(path, "wb") as f:
        if arr.ndim == 3:
            f.write(struct.pack(">IIII", 0x803, *arr.shape))
        else:
            f.write(struct.pack(">II", 0x801, arr.shape[0]))
        f.write(arr.astype(np.uint8).tobytes())


def subset(split, per_class, out, name):
    x = read_idx(f"{SRC}/{split}-images-idx3-ubyte.gz")
    y = read_idx(f"{SRC}/{split}-labels-idx1-ubyte.gz")
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
    write_idx(f"{out}/{name}-images.gz", x[keep])
    write_idx(f"{out}/{name}-labels.gz", y[keep])


if __name__ == "__main__":
    out, ntr, nte = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    subset("train", ntr, out, "train")
    subset("t10k", nte, out, "test")
