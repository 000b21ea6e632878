"""Where a retrieval mAP is lost: class structure of the queries against spread of the database.

usage: embedding_diagnosis.py QUERIES DATABASE [--ranking]
  QUERIES, DATABASE: the -out prefixes of `darknet gsl embed` (PREFIX.fvecs and PREFIX.labels.ivecs), e.g.
    bin/darknet gsl embed cfg/fashion.data CFG CKPT -split valid -out q
    bin/darknet gsl embed cfg/fashion.data CFG CKPT -split database -out db
    python3 scripts/study/embedding_diagnosis.py q db

Prints, with single-label data and one class per label id:
  - nearest-centroid accuracy of the queries (centroids: the database's class means), 1-NN and 10-NN vote accuracy;
  - "collapsed mAP": the mAP over the whole ranking if every database item sat on its class centroid. A query whose
    own class centroid is the r-th nearest then sees the other (r-1) classes' items first; its AP is the mean over
    k = 1..n_c of k / (items before + k). This is what the class structure of the queries allows; the gap to the
    measured mAP is what the spread of the database costs;
  - the database's spread: mean distance to the own centroid, to the nearest other centroid, and the share of items
    nearer another class's centroid than their own.
With --ranking (three full rankings of the database per query: 5 minutes for 10,000 x 60,000 on 2 busy cores),
also the mAP over the whole ranking (ties broken by database index, as `gsl eval`) of:
  - the embeddings as they are, over all queries and separately over the queries whose nearest centroid is their own
    class's and over the others: which queries lose the mAP;
  - the database with its items that are nearer another centroid moved onto their own centroid, the rest unchanged;
  - the database with every item's offset from its class centroid halved: what a tighter database would give."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ablation_metrics import read_fvecs  # noqa: E402


def load(prefix):
    x = read_fvecs(prefix + ".fvecs").astype(np.float64)
    lab = np.fromfile(prefix + ".labels.ivecs", dtype=np.int32).reshape(-1, 2)
    if lab.shape[0] != x.shape[0] or not (lab[:, 0] == 1).all():
        sys.exit("%s.labels.ivecs: expected one label per vector" % prefix)
    return x, lab[:, 1]


def sqdist(a, b):
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T


def structure(q, ql, db, dbl):
    """The class structure both reports read: centroids, class sizes, class indices, distances to the centroids."""
    classes = np.unique(dbl)
    pos = {c: i for i, c in enumerate(classes)}
    qi = np.array([pos.get(c, -1) for c in ql])
    if (qi < 0).any():
        sys.exit("a query label has no database item")
    dbi = np.array([pos[c] for c in dbl])
    cent = np.stack([db[dbl == c].mean(0) for c in classes])
    own = np.sqrt(((db - cent[dbi]) ** 2).sum(1))
    dd = sqdist(db, cent)
    dd[np.arange(len(db)), dbi] = np.inf
    return {"cent": cent, "n": np.bincount(dbi, minlength=len(classes)), "qi": qi, "dbi": dbi,
            "dc": sqdist(q, cent), "own": own, "other": np.sqrt(np.maximum(dd.min(1), 0))}


def ranking_ap(q, ql, db, dbl, npos, chunk=100):
    """AP over the whole ranking of db for each query, ties broken by database index; npos: each query's class size."""
    aps = np.empty(len(q))
    ranks = np.arange(1, len(db) + 1)
    for s in range(0, len(q), chunk):
        order = np.argsort(sqdist(q[s:s + chunk], db), axis=1, kind="stable")
        rel = dbl[order] == ql[s:s + chunk, None]
        aps[s:s + chunk] = (np.cumsum(rel, axis=1) / ranks * rel).sum(1) / npos[s:s + chunk]
    return aps


def ranking(q, ql, db, dbl, st):
    cent, dbi = st["cent"], st["dbi"]
    right = st["dc"].argmin(1) == st["qi"]
    npos = st["n"][st["qi"]]
    aps = ranking_ap(q, ql, db, dbl, npos)
    moved = db.copy()
    mis = st["other"] < st["own"]
    moved[mis] = cent[dbi[mis]]
    return {
        "map": float(aps.mean()),
        "right": int(right.sum()),
        "map_right": float(aps[right].mean()) if right.any() else float("nan"),
        "map_wrong": float(aps[~right].mean()) if (~right).any() else float("nan"),
        "map_moved": float(ranking_ap(q, ql, moved, dbl, npos).mean()),
        "map_half": float(ranking_ap(q, ql, cent[dbi] + 0.5 * (db - cent[dbi]), dbl, npos).mean()),
    }


def diagnose(q, ql, db, dbl, st, chunk=1000):
    n, qi, dbi, dc = st["n"], st["qi"], st["dbi"], st["dc"]
    order = np.argsort(dc, axis=1, kind="stable")
    aps = np.empty(len(q))
    for i in range(len(q)):
        r = int(np.where(order[i] == qi[i])[0][0])
        before, k = n[order[i][:r]].sum(), np.arange(1, n[qi[i]] + 1)
        aps[i] = (k / (before + k)).mean()
    nn1, nn10 = np.empty(len(q), dtype=np.int64), np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), chunk):
        d = sqdist(q[s:s + chunk], db)
        top = np.argsort(d, axis=1, kind="stable")[:, :10]
        nn1[s:s + chunk] = dbi[top[:, 0]]
        nn10[s:s + chunk] = [np.bincount(row, minlength=len(n)).argmax() for row in dbi[top]]
    own, other = st["own"], st["other"]
    return {
        "centroid_acc": float((dc.argmin(1) == qi).mean()),
        "nn1_acc": float((nn1 == qi).mean()),
        "nn10_acc": float((nn10 == qi).mean()),
        "collapsed_map": float(aps.mean()),
        "db_own": float(own.mean()),
        "db_other": float(other.mean()),
        "db_nearer_other": float((other < own).mean()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries")
    ap.add_argument("database")
    ap.add_argument("--ranking", action="store_true")
    args = ap.parse_args()
    q, ql = load(args.queries)
    db, dbl = load(args.database)
    if q.shape[1] != db.shape[1]:
        sys.exit("dimensions differ: queries %d, database %d" % (q.shape[1], db.shape[1]))
    st = structure(q, ql, db, dbl)
    r = diagnose(q, ql, db, dbl, st)
    print("queries %d, database %d, %d-d" % (len(q), len(db), q.shape[1]))
    print("nearest-centroid accuracy %.4f, 1-NN accuracy %.4f, 10-NN vote accuracy %.4f"
          % (r["centroid_acc"], r["nn1_acc"], r["nn10_acc"]))
    print("collapsed mAP (database on its class centroids) %.4f" % r["collapsed_map"])
    print("database: mean distance to the own centroid %.4f, to the nearest other %.4f; nearer another centroid %.4f"
          % (r["db_own"], r["db_other"], r["db_nearer_other"]))
    if args.ranking:
        k = ranking(q, ql, db, dbl, st)
        print("mAP over the whole ranking %.4f: queries nearest their own centroid (%d) %.4f, the others (%d) %.4f"
              % (k["map"], k["right"], k["map_right"], len(q) - k["right"], k["map_wrong"]))
        print("mAP with the database items nearer another centroid moved onto their own %.4f" % k["map_moved"])
        print("mAP with the database's offsets from its class centroids halved %.4f" % k["map_half"])


if __name__ == "__main__":
    main()
