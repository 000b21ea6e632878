#!/usr/bin/env python3
"""Searches an index exported by `darknet gsl export` with Faiss, the way a Faiss user serves it.

usage: query_index.py INDEX QUERIES.fvecs [-k 10] [--nprobe N] [--normalize]

INDEX         a Faiss file from `gsl export -out INDEX` (IndexPQ, or IndexIVFPQ with -ivf), with INDEX.items beside it
              (line i: the image or IDX record behind id i)
QUERIES.fvecs query embeddings from `gsl embed -out Q` (Q.fvecs; Q.items, when present, names the queries)
-k            neighbours per query (default 10)
--nprobe      lists an IVF index visits per query (default: all of them, which ranks exactly as the flat index)
--normalize   L2-normalise the queries (for an index exported with -normalize; or use gsl embed -normalize)

Prints one tab-separated line per hit, as `gsl search -query` does: query, rank, distance, item.
Needs faiss and numpy (Debian: python3-faiss python3-numpy)."""
import argparse
import os
import sys

import faiss
import numpy as np


def read_fvecs(path):
    """An .fvecs file (each vector: int32 dimension d, then d float32) as an (n, d) float32 array."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) or np.any(raw.reshape(-1, d + 1)[:, 0] != d):
        sys.exit(f"query_index.py: {path} is not an .fvecs file of one dimension")
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def read_items(path, n):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        items = f.read().splitlines()
    if len(items) != n:
        sys.exit(f"query_index.py: {path} has {len(items)} lines, the index {n} vectors")
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index")
    ap.add_argument("queries")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--nprobe", type=int, default=0)
    ap.add_argument("--normalize", action="store_true")
    a = ap.parse_args()

    index = faiss.read_index(a.index)
    items = read_items(a.index + ".items", index.ntotal)
    xq = read_fvecs(a.queries)
    if xq.shape[1] != index.d:
        sys.exit(f"query_index.py: {a.queries} holds {xq.shape[1]}-d vectors, the index {index.d}-d ones")
    qitems = os.path.splitext(a.queries)[0] + ".items"
    names = read_items(qitems, len(xq)) if os.path.exists(qitems) else [str(i) for i in range(len(xq))]
    if a.normalize:
        faiss.normalize_L2(xq)
    try:  # an IVF index (possibly behind the OPQ rotation): it loads with nprobe 1
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = a.nprobe if a.nprobe > 0 else ivf.nlist
    except RuntimeError:
        pass
    dist, ids = index.search(xq, min(a.k, index.ntotal))
    for q, name in enumerate(names):
        for r, (i, d) in enumerate(zip(ids[q], dist[q])):
            if i >= 0:
                print(f"{name}\t{r + 1}\t{d:.6g}\t{items[i]}")


if __name__ == "__main__":
    main()
