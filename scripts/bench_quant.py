#!/usr/bin/env python3
"""Runs the libgslq / Faiss benchmark (see scripts/bench_quant.sh) and prints the table.
Every run uses OPENBLAS_NUM_THREADS = the thread count, so "1 thread" means one core for everyone. Timings are the
median of --repeat runs (the machine is shared and noisy); the load average is printed before and after.
Both sides start k-means from random training points (Faiss's default initialisation; ours is `-init random`, the
same choice), so the training times compare the 25 Lloyd iterations, not different seedings."""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def ours(gslq, data, name, M, threads, repeat, tmp):
    cb, codes = os.path.join(tmp, f"{name}_M{M}.gq"), os.path.join(tmp, f"{name}_M{M}.gc")
    train, query = os.path.join(data, f"{name}_train.fvecs"), os.path.join(data, f"{name}_query.fvecs")
    t_train, mse, enc, adc = [], None, [], []
    for _ in range(repeat):
        o = run([gslq, "train", "-in", train, "-out", cb, "-M", str(M), "-K", "256", "-iter", "25",
                 "-init", "random", "-threads", str(threads)], threads)
        t_train.append(float(re.search(r": ([0-9.]+) s, mse", o).group(1)))
        mse = float(re.search(r"mse ([0-9.eE+-]+)", o).group(1))
    for _ in range(repeat):
        o = run([gslq, "encode", "-codebook", cb, "-in", train, "-out", codes, "-threads", str(threads)], threads)
        enc.append(float(re.search(r"\(([0-9.]+) vectors/s\)", o).group(1)))
    for _ in range(repeat):
        o = run([gslq, "search", "-codebook", cb, "-codes", codes, "-queries", query, "-k", "100",
                 "-out", os.path.join(tmp, "ids.ivecs"), "-threads", str(threads)], threads)
        adc.append(float(re.search(r"\(([0-9.]+) queries/s\)", o).group(1)))
    med = statistics.median
    return {"train_s": med(t_train), "mse": mse, "encode_vps": med(enc), "adc_qps": med(adc)}


def faiss_run(python, data, name, M, threads, repeat):
    if not python or not os.path.exists(python):
        return None
    train, query = os.path.join(data, f"{name}_train.fvecs"), os.path.join(data, f"{name}_query.fvecs")
    try:
        o = run([python, os.path.join(HERE, "bench_quant_faiss.py"), train, query, str(M), str(threads),
                 str(repeat)], threads)
    except RuntimeError as e:
        print(f"warning: {e}", file=sys.stderr)
        return None
    line = [l for l in o.splitlines() if l.startswith("faiss ")][-1]
    kv = dict(tok.split("=", 1) for tok in line.split()[1:])
    return {"version": kv["version"], "blas": kv["blas"], "train_s": float(kv["train_s"]), "mse": float(kv["mse"]),
            "encode_vps": float(kv["encode_vps"]), "adc_qps": float(kv["adc_qps"])}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def kernel_level():
    """The instruction set libgslq's small-dimension kernels pick at run time (quant/kern.c)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":")[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return "unknown"
    if "avx512f" in flags and "avx512vl" in flags:
        return "AVX-512 + FMA"
    if "avx2" in flags and "fma" in flags:
        return "AVX2 + FMA"
    return "portable (SSE)"


def cpu_ghz():
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
        return mhz[0] / 1000 if mhz else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gslq", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--venv-python", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    load_before = loadavg()
    tmp = os.path.join(os.path.dirname(a.gslq), "run")
    os.makedirs(tmp, exist_ok=True)
    sets = [("fmnist", "Fashion-MNIST PCA-64")] + ([] if a.quick else [("gauss", "Gaussian 128-d")])
    threads_list = [1] if a.quick else [1, 2]
    peers_seen = {}
    rows = []
    for name, label in sets:
        for M in (4, 8):
            for t in threads_list:
                o = ours(a.gslq, a.data, name, M, t, a.repeat, tmp)
                deb = faiss_run("/usr/bin/python3", a.data, name, M, t, a.repeat)
                pypi = faiss_run(a.venv_python, a.data, name, M, t, a.repeat)
                for tag, p in (("debian", deb), ("pypi", pypi)):
                    if p:
                        peers_seen[tag] = (p["version"], p["blas"])
                rows.append((label, M, t, o, deb, pypi))
                print(f"  done {label} M={M} threads={t}", file=sys.stderr, flush=True)

    print()
    for tag, (v, b) in peers_seen.items():
        print(f"peer faiss-{tag}: version {v}, BLAS {b}, random init (Faiss's default), 25 iterations")
    print(f"ours: libgslq, -O3 -march=x86-64-v2, small-dimension kernels {kernel_level()} (run-time dispatch; "
          "OpenBLAS only for d > 64 and OPQ), random init (-init random), 25 iterations")
    print(f"timings: median of {a.repeat} runs; load average (1/5/15 min) before {load_before}, after {loadavg()} "
          f"on {os.cpu_count()} CPUs")
    print("ratios are ours / the faster Faiss (train time: lower is better; encode, ADC: higher is better; "
          "MSE: lower is better)\n")
    hdr = f"{'data':22} {'M':>2} {'thr':>3} | {'metric':10} | {'ours':>10} {'faiss-deb':>10} {'faiss-pypi':>10} | {'ratio':>6} {'target':>8}"
    print(hdr)
    print("-" * len(hdr))
    targets = {"train_s": ("<= 0.50", lambda r: r <= 0.5), "mse": ("<= 1.01", lambda r: r <= 1.01),
               "encode_vps": (">= 3.00", lambda r: r >= 3), "adc_qps": (">= 2.00", lambda r: r >= 2)}
    misses = 0
    for label, M, t, o, deb, pypi in rows:
        for key, fmt in (("train_s", "{:.3f}"), ("encode_vps", "{:.0f}"), ("adc_qps", "{:.0f}"), ("mse", "{:.4f}")):
            vals = [p[key] for p in (deb, pypi) if p]
            if key in ("train_s", "mse"):
                best = min(vals) if vals else None
            else:
                best = max(vals) if vals else None
            ratio = o[key] / best if best else float("nan")
            tgt, ok = targets[key]
            flag = "ok" if best and ok(ratio) else "MISS"
            misses += flag == "MISS"
            cell = lambda p: fmt.format(p[key]) if p else "-"
            print(f"{label:22} {M:>2} {t:>3} | {key:10} | {fmt.format(o[key]):>10} {cell(deb):>10} {cell(pypi):>10} | "
                  f"{ratio:6.2f} {tgt:>8} {flag}")
    ghz = cpu_ghz()
    print()
    for label, M, t, o, deb, pypi in rows:
        if t != 1:
            continue
        ns_code = 1e9 / o["adc_qps"] / 60000
        line = f"ADC scan {label} M={M}: {ns_code:.2f} ns per code per query = {ns_code / M:.3f} ns per code byte"
        if ghz:
            line += f" = {ns_code / M * ghz:.2f} cycles per code byte at {ghz:.2f} GHz (nominal)"
        print(line)
    print("(the bound of one table lookup per code byte at two L1 loads per cycle is 0.5 cycle per code byte; "
          "the scan serves four queries per lookup, see docs/quant.md)")
    print(f"\n{misses} target(s) missed")


if __name__ == "__main__":
    main()
