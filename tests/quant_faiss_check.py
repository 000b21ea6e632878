#!/usr/bin/env python3
"""Cross-checks of libgslq against Faiss (run by tests/test_quant_faiss.sh with Debian's python3-faiss).
Drives the `gsl quant` command line, then loads what it wrote with Faiss.
Usage: quant_faiss_check.py WORKDIR CLI... (CLI = the command that runs `gsl quant`, e.g. ./darknet gsl quant)"""
import os
import subprocess
import sys

import numpy as np
import faiss

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)


def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    rec = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.int32)
    rec[:, 0] = x.shape[1]
    rec[:, 1:] = x.view(np.int32)
    rec.tofile(path)


def read_vecs(path, dtype):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    a = a.reshape(-1, d + 1)[:, 1:]
    return a.view(np.float32).copy() if dtype == "f" else a.copy()


def run(cli, args):
    r = subprocess.run(cli + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(f"command failed ({r.returncode}): {' '.join(cli + args)}\n{r.stdout}", flush=True)
    return r


def compare_search(name, index, xq, ids, dist, k):
    D, I = index.search(xq, k)
    dd = np.abs(D - dist).max()
    check(f"{name}: Faiss distances match ours", np.allclose(D, dist, rtol=1e-4, atol=1e-4), f"max diff {dd}")
    # ids equal, except where two database codes are at the same distance (any order is then valid for Faiss)
    mism = 0
    for q in range(len(xq)):
        for j in range(k):
            if I[q, j] != ids[q, j]:
                near = np.abs(dist[q] - dist[q, j]) <= 1e-5 * (1 + abs(dist[q, j]))
                if near.sum() < 2:
                    mism += 1
    check(f"{name}: Faiss neighbours match ours", mism == 0, f"{mism} ids differ")


def main():
    work, cli = sys.argv[1], sys.argv[2:]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    d, n, nq = 32, 6000, 40
    # correlated data (random mixing of 8 factors plus noise): a case where OPQ matters
    mix = rng.standard_normal((8, d)).astype(np.float32)
    xt = (rng.standard_normal((n, 8)).astype(np.float32) @ mix + 0.3 * rng.standard_normal((n, d))).astype(np.float32)
    xq = (rng.standard_normal((nq, 8)).astype(np.float32) @ mix + 0.3 * rng.standard_normal((nq, d))).astype(np.float32)
    P = lambda f: os.path.join(work, f)
    write_fvecs(P("xt.fvecs"), xt)
    write_fvecs(P("xq.fvecs"), xq)
    k = 20

    for tag, M, K, extra in (("pq8", 8, 256, []), ("pq4x16", 4, 16, []), ("opq8", 8, 256, ["-opq", "-opq-iter", "8"])):
        cb, codes, idx = P(f"{tag}.gq"), P(f"{tag}.gc"), P(f"{tag}.faiss")
        r = run(cli, ["train", "-in", P("xt.fvecs"), "-out", cb, "-M", str(M), "-K", str(K), "-threads", "2"] + extra)
        check(f"{tag}: train", r.returncode == 0)
        r = run(cli, ["encode", "-codebook", cb, "-in", P("xt.fvecs"), "-out", codes, "-threads", "2"])
        check(f"{tag}: encode", r.returncode == 0)
        r = run(cli, ["search", "-codebook", cb, "-codes", codes, "-queries", P("xq.fvecs"), "-k", str(k),
                      "-out", P(f"{tag}_ids.ivecs"), "-dist", P(f"{tag}_dist.fvecs"), "-threads", "2"])
        check(f"{tag}: search", r.returncode == 0)
        r = run(cli, ["export", "-codebook", cb, "-codes", codes, "-out", idx])
        check(f"{tag}: export", r.returncode == 0)
        try:
            index = faiss.read_index(idx)
        except Exception as e:  # noqa: BLE001
            check(f"{tag}: faiss.read_index loads the export", False, str(e))
            continue
        check(f"{tag}: faiss.read_index loads the export", index.ntotal == n and index.d == d,
              f"ntotal {index.ntotal} d {index.d}")
        if extra:
            check(f"{tag}: export is an IndexPreTransform", isinstance(index, faiss.IndexPreTransform))
        compare_search(tag, index, xq, read_vecs(P(f"{tag}_ids.ivecs"), "i"), read_vecs(P(f"{tag}_dist.fvecs"), "f"), k)

    # IVF export: byte-identical to the IndexIVFPQ (by_residual = 0) that Faiss writes for the same coarse centroids,
    # PQ and vectors; at nprobe = nlist the same neighbours as the flat export
    for tag, M, K, nlist, xs in (("pq4x16", 4, 16, 50, xt), ("opq8", 8, 256, 16, xt),
                                 # a few distinct points: most lists empty, Faiss's sparse list layout
                                 ("pq4x16", 4, 16, 40, np.repeat(xt[:7], n // 7 + 1, axis=0)[:n])):
        ivf = P(f"{tag}_ivf{nlist}.faiss")
        xin = P("xt.fvecs")
        codes = P(f"{tag}.gc")
        if xs is not xt:
            xin, codes = P("dup.fvecs"), P("dup.gc")
            write_fvecs(xin, xs)
            run(cli, ["encode", "-codebook", P(f"{tag}.gq"), "-in", xin, "-out", codes])
        r = run(cli, ["export", "-codebook", P(f"{tag}.gq"), "-codes", codes, "-out", ivf, "-ivf", str(nlist),
                      "-in", xin, "-threads", "2"])
        check(f"{tag} ivf{nlist}: export -ivf", r.returncode == 0)
        if r.returncode:
            continue
        index = faiss.read_index(ivf)
        inner = faiss.downcast_index(faiss.extract_index_ivf(index))
        check(f"{tag} ivf{nlist}: an IndexIVFPQ without residuals", isinstance(inner, faiss.IndexIVFPQ)
              and not inner.by_residual and inner.nlist == nlist and index.ntotal == n)
        q = faiss.IndexFlatL2(d)
        q.add(faiss.downcast_index(inner.quantizer).reconstruct_n(0, nlist))
        ref = faiss.IndexIVFPQ(q, d, nlist, M, int(np.log2(K)))
        ref.by_residual = False
        faiss.copy_array_to_vector(faiss.vector_to_array(inner.pq.centroids), ref.pq.centroids)
        ref.is_trained = True
        whole = ref
        if isinstance(index, faiss.IndexPreTransform):
            whole = faiss.IndexPreTransform(faiss.downcast_VectorTransform(index.chain.at(0)), ref)
        whole.add(xs)
        faiss.write_index(whole, P("ref_ivf.faiss"))
        a, b = open(ivf, "rb").read(), open(P("ref_ivf.faiss"), "rb").read()
        check(f"{tag} ivf{nlist}: byte-identical to Faiss's own IndexIVFPQ file", a == b,
              f"{len(a)} vs {len(b)} bytes")
        if xs is xt:
            inner.nprobe = nlist
            flat = faiss.read_index(P(f"{tag}.faiss"))
            D2, I2 = flat.search(xq, k)
            compare_search(f"{tag} ivf{nlist} at nprobe = nlist against the flat index", index, xq, I2, D2, k)
        else:
            check(f"{tag} ivf{nlist}: the sparse list layout was exercised", b"sprs" in a)

    # quality: our PQ's MSE within 1% of Faiss's on the same data (25 iterations each)
    ref = faiss.IndexPQ(d, 8, 8)
    ref.pq.cp.niter = 25
    ref.train(xt)
    rec = ref.pq.decode(ref.pq.compute_codes(xt))
    mse_faiss = float(((xt.astype(np.float64) - rec) ** 2).sum(axis=1).mean())
    r = run(cli, ["train", "-in", P("xt.fvecs"), "-out", P("q.gq"), "-M", "8", "-K", "256", "-threads", "2"])
    mse_ours = float(r.stdout.split("mse ")[1].split(",")[0]) if r.returncode == 0 else float("inf")
    check("PQ MSE within 1% of Faiss's", mse_ours <= 1.01 * mse_faiss, f"ours {mse_ours} faiss {mse_faiss}")
    print(f"  mse ours {mse_ours:.5f} faiss {mse_faiss:.5f} ratio {mse_ours / mse_faiss:.4f}", flush=True)
    # OPQ below PQ on this correlated data
    r = run(cli, ["train", "-in", P("xt.fvecs"), "-out", P("o.gq"), "-M", "8", "-K", "256", "-opq", "-opq-iter", "8",
                  "-threads", "2"])
    mse_opq = float(r.stdout.split("mse ")[1].split(",")[0]) if r.returncode == 0 else float("inf")
    check("OPQ MSE below PQ's", mse_opq < mse_ours, f"opq {mse_opq} pq {mse_ours}")

    # usage and runtime errors: exit status 2 and 1, messages naming the file
    r = subprocess.run(cli + ["train", "-in", P("xt.fvecs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check("missing option is a usage error (2)", r.returncode == 2 and "-out" in r.stdout, r.stdout)
    r = subprocess.run(cli + ["encode", "-codebook", P("missing.gq"), "-in", P("xt.fvecs"), "-out", P("z")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check("missing file is a runtime error (1) naming it", r.returncode == 1 and "missing.gq" in r.stdout, r.stdout)
    r = subprocess.run(cli + ["search", "-codebook", P("pq8.gq"), "-codes", P("pq4x16.gc"), "-queries",
                              P("xq.fvecs"), "-out", P("z")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check("codes of another codebook are rejected", r.returncode == 1 and "pq4x16.gc" in r.stdout, r.stdout)

    print(f"RESULT {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
