"""One CSV row of the ablation (scripts/study/ablation.sh) for one trained network and one quantizer.

usage: ablation_metrics.py --eval QEVAL.txt --codebook CB.gq --base DB.fvecs --train-log LOG --row PREFIX
         [--header]

Reads `darknet gsl quant eval`'s output (float and PQ mAP, 1-recall@1/10/100 of the exact float neighbour under
ADC), computes the quantization MSE share of the database embeddings (mean |x - Q(x)|^2 over the mean
|x - mean(x)|^2, both summed over the dimensions) from the codebook file (libgslq's format, docs/quant.md), and the
last epoch's snapped fraction and training qerr from the training log. PREFIX is
"proto,arm,tag,seed,M,K,variant"; the row continues with COLUMNS."""
import argparse
import re
import struct
import sys

import numpy as np

COLUMNS = ("map_float,map_pq,gap,mapR_float,mapR_pq,r1,r10,r100,mse,var,mse_share,snapped,qerr_train")


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0]) if raw.size else 0
    if d <= 0 or raw.size % (d + 1):
        sys.exit("%s: not an fvecs file (%d bytes, first dimension %d)" % (path, raw.size * 4, d))
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32)


def read_codebook(path):
    b = open(path, "rb").read()
    if b[:8] != b"GSLQCB\0\0":
        sys.exit("%s: not a libgslq codebook" % path)
    version, d, M, K, has_rot = struct.unpack("<5I", b[8:28])
    dsub = d // M
    off = 28
    cent = np.frombuffer(b, np.float32, M * K * dsub, off).reshape(M, K, dsub)
    off += 4 * M * K * dsub
    rot = np.frombuffer(b, np.float32, d * d, off).reshape(d, d) if has_rot else None
    return cent, rot


def quant_mse(x, cent, rot):
    """mean over vectors of |x - Q(x)|^2 (rotation-invariant: computed in the rotated space)."""
    y = x @ rot.T if rot is not None else x
    M, K, dsub = cent.shape
    total = np.zeros(len(y))
    for m in range(M):
        ym = y[:, m * dsub:(m + 1) * dsub].astype(np.float64)
        c = cent[m].astype(np.float64)
        dist = (ym ** 2).sum(1)[:, None] - 2 * ym @ c.T + (c ** 2).sum(1)[None, :]
        total += np.maximum(dist.min(1), 0)
    return float(total.mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True)
    ap.add_argument("--codebook", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--train-log", required=True)
    ap.add_argument("--row", required=True)
    a = ap.parse_args()
    txt = open(a.eval).read()

    def grab(pattern):
        m = re.search(pattern, txt)
        if not m:
            sys.exit("%s: no match for %s" % (a.eval, pattern))
        return [float(v) for v in m.groups()]

    r1, r10, r100 = grab(r"1-recall@1 ([0-9.]+) 1-recall@10 ([0-9.]+) 1-recall@100 ([0-9.]+)")
    map_pq, mapr_pq = grab(r"PQ codes \(ADC\):\s+mAP ([0-9.]+)\s+mAP@\d+ ([0-9.]+)")
    map_f, mapr_f = grab(r"float features:\s+mAP ([0-9.]+)\s+mAP@\d+ ([0-9.]+)")
    x = read_fvecs(a.base)
    cent, rot = read_codebook(a.codebook)
    mse = quant_mse(x, cent, rot)
    var = float(((x - x.mean(0)) ** 2).sum(1).mean())
    snapped = qerr = float("nan")
    for line in open(a.train_log):
        m = re.match(r"epoch \d+ done: .*", line)
        if m:
            s = re.search(r" snapped ([0-9.]+)", line)
            q = re.search(r" qerr ([0-9.]+)", line)
            snapped = float(s.group(1)) if s else float("nan")
            qerr = float(q.group(1)) if q else float("nan")
    vals = [map_f, map_pq, map_f - map_pq, mapr_f, mapr_pq, r1, r10, r100, mse, var, mse / var, snapped, qerr]
    print(a.row + "," + ",".join("%.6g" % v for v in vals))


if __name__ == "__main__":
    main()
