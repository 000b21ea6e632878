"""Tables (CSV), paired tests and plots (PNG) of the ablation (scripts/study/ablation.sh); see docs/RESULTS.md.

usage: ablation_analyze.py --out build/ablation [--tune] [--results docs/results]
  --tune: summarise the tuning runs (validation split) and write OUT/tuned.txt (one "arm parameter" per line).
  otherwise: gather OUT/runs/*/*/s*/metrics.csv into RESULTS/all_runs.csv and write the summary tables and plots."""
import argparse
import glob
import math
import os
import sys

import numpy as np

COLS = ("proto,arm,tag,seed,M,K,variant,map_float,map_pq,gap,mapR_float,mapR_pq,r1,r10,r100,mse,var,mse_share,"
        "snapped,qerr_train,train_s,eval_s").split(",")
NUM = COLS[7:]


def load(out):
    rows = []
    for f in sorted(glob.glob(os.path.join(out, "runs", "*", "*", "s*", "metrics.csv"))):
        for line in open(f):
            v = line.strip().split(",")
            if len(v) != len(COLS):
                continue
            r = dict(zip(COLS, v))
            for k in NUM:
                r[k] = float(r[k])
            r["seed"], r["M"], r["K"] = int(r["seed"]), int(r["M"]), int(r["K"])
            r["bits"] = r["M"] * int(round(math.log2(r["K"])))
            r["param"] = r["tag"].split("-p")[-1] if "-p" in r["tag"] else ""
            rows.append(r)
    return rows


def tune(out, rows):
    rows = [r for r in rows if r["proto"] == "val"]
    plain = {(r["seed"], r["M"], r["K"]): r for r in rows if r["arm"] == "plain"}
    lines = ["arm,param,M,K,variant,n,map_pq,gap,r10,mse_share,d_map_pq_vs_plain,d_r10_vs_plain"]
    best = {}
    for key in sorted({(r["arm"], r["param"], r["M"], r["K"], r["variant"]) for r in rows}):
        arm, param, M, K, var = key
        sel = [r for r in rows if (r["arm"], r["param"], r["M"], r["K"], r["variant"]) == key]
        mp = np.mean([r["map_pq"] for r in sel])
        dm = np.mean([r["map_pq"] - plain[(r["seed"], M, K)]["map_pq"] for r in sel if (r["seed"], M, K) in plain])
        dr = np.mean([r["r10"] - plain[(r["seed"], M, K)]["r10"] for r in sel if (r["seed"], M, K) in plain])
        lines.append("%s,%s,%d,%d,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f" % (
            arm, param, M, K, var, len(sel), mp, np.mean([r["gap"] for r in sel]), np.mean([r["r10"] for r in sel]),
            np.mean([r["mse_share"] for r in sel]), dm, dr))
        # the choice: PQ mAP with the refit PQ (what the main protocols measure), at 4 bits (the tuning setting)
        if arm != "plain" and var == "refit" and (M, K) == (1, 16):
            if arm not in best or mp > best[arm][1]:
                best[arm] = (param, mp)
    os.makedirs(args.results, exist_ok=True)
    open(os.path.join(args.results, "tuning.csv"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    with open(os.path.join(out, "tuned.txt"), "w") as f:
        for arm, (p, mp) in sorted(best.items()):
            f.write("%s %s\n" % (arm, p))
        if "rotate" in best and "quantloss" in best:
            f.write("hybrid %s/%s\n" % (best["rotate"][0], best["quantloss"][0]))
    print(open(os.path.join(out, "tuned.txt")).read())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/ablation")
    ap.add_argument("--results", default="docs/results")
    ap.add_argument("--tune", action="store_true")
    args = ap.parse_args()
    rows = load(args.out)
    if args.tune:
        tune(args.out, rows)
    else:
        import ablation_report
        ablation_report.report(args, rows)
