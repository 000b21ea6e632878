"""The tables, paired tests and plots of the ablation (called by ablation_analyze.py).

Writes to RESULTS (docs/results by default):
  all_runs.csv   every finished (run, quantizer) row
  summary.csv    per protocol, setting and arm: seeds, mean and standard deviation of every measure
  paired.csv     per protocol, setting, arm and reference (plain = arm 1, quantloss = arm 2) and measure: the paired
                 difference arm - reference over the seeds both have, its standard deviation, a 95% t interval, the
                 paired t-test p-value and the exact sign-flip permutation p-value
  tables.md      the same as Markdown, for docs/RESULTS.md
  gap_vs_bits_V.png, recall_vs_bits_V.png, paired_vs_bits_V.png for V = refit, dbfit
Every arm is read with two quantizers fitted after training, the same for every arm: refit (on training embeddings of
the seen classes) and dbfit (on the database embeddings)."""
import csv
import itertools
import os

import numpy as np

try:
    from scipy import stats
except ImportError:  # the t-test needs scipy (Debian's python3-scipy); the sign-flip test does not
    stats = None

ARMS = ["plain", "quantloss", "rotate", "project", "lookahead", "hybrid", "gentle"]
LABEL = {"plain": "1 plain + PQ", "quantloss": "2 quantloss", "rotate": "3 snap rotate", "project": "4 snap project",
         "lookahead": "5 snap lookahead", "hybrid": "6 rotate + quantloss", "gentle": "6b snap project, small alpha"}
SETTINGS = [(1, 16), (2, 16), (1, 256), (2, 256), (4, 256)]
MEASURES = ["map_float", "map_pq", "gap", "mse_share", "r1", "r10", "r100"]
PAIRED = ["gap", "r10", "map_pq", "mse_share", "r1", "r100", "map_float"]  # the first four are in tables.md


def setting_name(M, K):
    return "%d bits (M=%d,K=%d)" % (M * int(np.log2(K)), M, K)


def sign_flip_p(d):
    """Exact two-sided sign-flip permutation p-value of the mean of paired differences d."""
    d = np.asarray(d, float)
    n = len(d)
    if n == 0 or n > 16:
        return float("nan")
    obs = abs(d.mean())
    cnt = 0
    for signs in itertools.product([1, -1], repeat=n):
        cnt += abs((d * signs).mean()) >= obs - 1e-12
    return cnt / 2 ** n


def t_stats(d):
    d = np.asarray(d, float)
    n = len(d)
    if n < 2:
        return float("nan"), float("nan"), float("nan")
    sd = d.std(ddof=1)
    if stats is None:
        return sd, float("nan"), float("nan")
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    p = stats.ttest_1samp(d, 0.0).pvalue if sd > 0 else (0.0 if d.mean() != 0 else 1.0)
    return sd, half, float(p)


VARIANTS = {"refit": "PQ fitted on training embeddings of the seen classes (10,000 images)",
            "dbfit": "PQ fitted on the database embeddings (unsupervised, as a Faiss index is trained)"}


def pick(rows, proto, arm, M, K, variant):
    return {r["seed"]: r for r in rows
            if r["proto"] == proto and r["arm"] == arm and r["M"] == M and r["K"] == K and r["variant"] == variant}


def report(args, rows):
    res = args.results
    os.makedirs(res, exist_ok=True)
    cols = ["proto", "arm", "tag", "seed", "M", "K", "bits", "variant", "map_float", "map_pq", "gap", "mapR_float",
            "mapR_pq", "r1", "r10", "r100", "mse", "var", "mse_share", "snapped", "qerr_train", "train_s", "eval_s"]
    with open(os.path.join(res, "all_runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in sorted(rows, key=lambda r: (r["proto"], r["arm"], r["M"], r["K"], r["variant"], r["seed"])):
            w.writerow([r[c] if not isinstance(r[c], float) else "%.6g" % r[c] for c in cols])

    summary, paired, md = [], [], []
    for proto, variant, (M, K) in itertools.product(["unseen", "standard"], VARIANTS, SETTINGS):
        # the tuning runs (several parameters per arm) are in tuning.csv
        if True:
            present = [a for a in ARMS if pick(rows, proto, a, M, K, variant)]
            if not present or present == ["plain"] and proto != "standard":
                continue
            md.append("\n#### %s protocol, %s, %s\n" % (proto, setting_name(M, K), VARIANTS[variant]))
            md.append("| arm | seeds | mAP float | mAP PQ | gap float-PQ | MSE share | 1-recall@1 | 1-recall@10 | "
                      "1-recall@100 | snapped |")
            md.append("|---|---|---|---|---|---|---|---|---|---|")
            for arm in present:
                sel = pick(rows, proto, arm, M, K, variant)
                vals = {m: np.array([sel[s][m] for s in sorted(sel)]) for m in MEASURES + ["snapped"]}
                row = {"proto": proto, "variant": variant, "M": M, "K": K, "bits": M * int(np.log2(K)), "arm": arm, "n": len(sel),
                       "seeds": " ".join(str(s) for s in sorted(sel))}
                for m in MEASURES:
                    row[m + "_mean"] = vals[m].mean()
                    row[m + "_sd"] = vals[m].std(ddof=1) if len(sel) > 1 else float("nan")
                summary.append(row)
                cell = lambda m, f="%.4f": (f % vals[m].mean()) + (
                    (" ± " + f % vals[m].std(ddof=1)) if len(sel) > 1 else "")
                sn = vals["snapped"]
                md.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    LABEL[arm], len(sel), cell("map_float"), cell("map_pq"), cell("gap"), cell("mse_share", "%.3f"),
                    cell("r1", "%.3f"), cell("r10", "%.3f"), cell("r100", "%.3f"),
                    "-" if np.all(np.isnan(sn)) else "%.3f" % np.nanmean(sn)))
            for ref in ["plain", "quantloss", "rotate"]:  # vs rotate: in paired.csv only (which mode to default to)
                rsel = pick(rows, proto, ref, M, K, variant)
                if not rsel:
                    continue
                lines = []
                for arm in present:
                    if arm == ref or (ref != "plain" and arm in ("plain", "quantloss")):
                        continue
                    asel = pick(rows, proto, arm, M, K, variant)
                    seeds = sorted(set(asel) & set(rsel))
                    if not seeds:
                        continue
                    cells = []
                    for m in PAIRED:
                        d = np.array([asel[s][m] - rsel[s][m] for s in seeds])
                        sd, half, p = t_stats(d)
                        pf = sign_flip_p(d)
                        paired.append({"proto": proto, "variant": variant, "M": M, "K": K, "bits": M * int(np.log2(K)), "arm": arm,
                                       "ref": ref, "measure": m, "n": len(seeds), "mean_diff": d.mean(), "sd": sd,
                                       "ci95_half": half, "p_t": p, "p_signflip": pf})
                        if m in ("gap", "r10", "map_pq", "mse_share"):
                            cells.append("%+.4f ± %.4f (p=%.2g)" % (d.mean(), sd if sd == sd else 0, p if p == p else pf))
                    lines.append("| %s | %d | %s |" % (LABEL[arm], len(seeds), " | ".join(cells)))
                if lines and ref != "rotate":
                    md.append("\nPaired difference arm - %s (mean ± sd over seeds, paired t-test p):\n" % LABEL[ref])
                    md.append("| arm | seeds | Δ gap (lower = better) | Δ 1-recall@10 | Δ mAP PQ | Δ MSE share |")
                    md.append("|---|---|---|---|---|---|")
                    md.extend(lines)

    def write(name, dicts):
        if not dicts:
            return
        with open(os.path.join(res, name), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(dicts[0].keys()))
            w.writeheader()
            for d in dicts:
                w.writerow({k: ("%.6g" % v if isinstance(v, float) else v) for k, v in d.items()})

    write("summary.csv", summary)
    write("paired.csv", paired)
    open(os.path.join(res, "tables.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))
    for variant in VARIANTS:
        plots(res, rows, variant)


def plots(res, rows, variant):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib (Debian: python3-matplotlib): no plots")
        return
    sets = [(1, 16), (2, 16), (1, 256), (2, 256)]
    xl = ["4 bits\nM=1,K=16", "8 bits\nM=2,K=16", "8 bits\nM=1,K=256", "16 bits\nM=2,K=256"]
    present = [a for a in ARMS if any(pick(rows, "unseen", a, M, K, variant) for M, K in sets)]
    if not present:
        return
    x = np.arange(len(sets))
    w = 0.8 / len(present)

    def panel(ax, measure, title, paired_ref=None):
        for i, arm in enumerate(present):
            mu, sd = [], []
            for M, K in sets:
                a = pick(rows, "unseen", arm, M, K, variant)
                if paired_ref:
                    r = pick(rows, "unseen", paired_ref, M, K, variant)
                    v = [a[s][measure] - r[s][measure] for s in sorted(set(a) & set(r))]
                else:
                    v = [a[s][measure] for s in sorted(a)]
                mu.append(np.mean(v) if v else np.nan)
                sd.append(np.std(v, ddof=1) if len(v) > 1 else 0)
            ax.bar(x + (i - (len(present) - 1) / 2) * w, mu, w, yerr=sd, capsize=2, label=LABEL[arm])
        ax.set_xticks(x)
        ax.set_xticklabels(xl, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)

    fig, axs = plt.subplots(1, 2, figsize=(12, 4.2))
    panel(axs[0], "gap", "mAP gap float - PQ (lower is better)")
    panel(axs[1], "mse_share", "quantization MSE / embedding variance")
    axs[0].legend(fontsize=7)
    fig.suptitle("Unseen-class protocol, %s: mean ± sd over seeds" % VARIANTS[variant], fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "gap_vs_bits_%s.png" % variant), dpi=110)
    plt.close(fig)

    fig, axs = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, m in zip(axs, ["r1", "r10", "r100"]):
        panel(ax, m, "1-recall@%s of the exact float NN under ADC" % m[1:])
    axs[0].legend(fontsize=7)
    fig.suptitle("Unseen-class protocol, %s: mean ± sd over seeds" % VARIANTS[variant], fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "recall_vs_bits_%s.png" % variant), dpi=110)
    plt.close(fig)

    present_np = [a for a in present if a != "plain"]
    if present_np:
        fig, axs = plt.subplots(1, 3, figsize=(15, 4.2))
        keep = present
        present[:] = present_np
        panel(axs[0], "gap", "paired Δ gap vs arm 1 (negative = smaller gap)", "plain")
        panel(axs[1], "r10", "paired Δ 1-recall@10 vs arm 1", "plain")
        panel(axs[2], "map_pq", "paired Δ PQ mAP vs arm 1", "plain")
        for ax in axs:
            ax.axhline(0, color="k", lw=0.8)
        axs[0].legend(fontsize=7)
        fig.suptitle("Unseen-class protocol, %s: paired differences against arm 1, mean ± sd over seeds"
                     % VARIANTS[variant], fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(res, "paired_vs_bits_%s.png" % variant), dpi=110)
        plt.close(fig)
