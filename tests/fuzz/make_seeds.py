#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (committed; rerun after a format
changes). Needs bin/darknet (for a real codebook and codes file). Usage: tests/fuzz/make_seeds.py"""
import gzip, os, random, shutil, struct, subprocess, sys, tempfile, zlib

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
out = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def cut(a, b):
    return struct.pack(">H", len(a)) + a + b


def png(w, h, channels, seed):
    r = random.Random(seed)
    color = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\0" + bytes(r.randrange(256) for _ in range(w * channels)) for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def fvecs(rows):
    return b"".join(struct.pack("<i", len(v)) + struct.pack("<%df" % len(v), *v) for v in rows)


def ivecs(rows):
    return b"".join(struct.pack("<i", len(v)) + struct.pack("<%di" % len(v), *v) for v in rows)


shutil.rmtree(out, ignore_errors=True)
# cfg: the networks of the tests and the demo
for name, path in (("small", "tests/e2e/small.cfg"), ("demo", "cfg/fashion_gsl.cfg"),
                   ("quantloss", "cfg/fashion_quantloss.cfg")):
    put("fuzz_cfg", name + ".cfg", open(os.path.join(root, path), "rb").read())
# .data files
put("fuzz_data", "fashion.data", open(os.path.join(root, "cfg/fashion.data"), "rb").read())
put("fuzz_data", "holdout.data", b"classes=10\ntrain=a.gz\ntrain_labels=b.gz\nholdout=20\nholdout_seed=3\n"
    b"train_classes=0-4\neval_classes=5,6,7-9\nbackup=x\n")
put("fuzz_data", "list.data", b"classes=2\ntrain=list.txt\nvalid=list.txt\nlabels=names.txt\nbackup=x\n")
# IDX: 3 images of 2x2 and their labels, plain and gzip'd
img = b"\0\0\x08\x03" + struct.pack(">III", 3, 2, 2) + bytes(range(12))
lab = b"\0\0\x08\x01" + struct.pack(">I", 3) + bytes([0, 3, 9])
put("fuzz_idx", "plain", cut(img, lab))
put("fuzz_idx", "gzip", cut(gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)))
# image lists: two entries and a small PNG (grey and colour)
put("fuzz_list", "grey", cut(b"x_cat_1.png\nx_dog_2.jpg\n", png(8, 8, 1, 1)))
put("fuzz_list", "colour", cut(b"x_cat_1.png\n", png(5, 7, 3, 2)))
# vectors and labels
put("fuzz_vecs", "fvecs", fvecs([[0.5, 1, 2, 3], [4, 5, 6, 7], [-1, 0, 1e-3, 2]]))
put("fuzz_vecs", "labels", ivecs([[3], [], [0, 70], [70], [1], [2], [3]]))
# a real codebook and codes file, and a manifest naming the harness's files (each holds "abcd")
with tempfile.TemporaryDirectory() as t:
    r = random.Random(7)
    open(os.path.join(t, "x.fvecs"), "wb").write(fvecs([[r.gauss(0, 1) for _ in range(8)] for _ in range(300)]))
    darknet = os.path.join(root, "bin", "darknet")
    for args in (["train", "-in", "x.fvecs", "-out", "x.codebook", "-M", "2", "-K", "16"],
                 ["encode", "-codebook", "x.codebook", "-in", "x.fvecs", "-out", "x.codes"]):
        subprocess.run([darknet, "gsl", "quant"] + args, cwd=t, check=True, capture_output=True)
    cb = open(os.path.join(t, "x.codebook"), "rb").read()
    cd = open(os.path.join(t, "x.codes"), "rb").read()
    put("fuzz_codebook", "pq", cut(cb, cd))
crc = "%08x" % zlib.crc32(b"abcd")
put("fuzz_manifest", "v2", ("gsl-checkpoint 2\nrun 0123456789abcdef\nepoch 2\nseed 3\nweights small_e0002.weights %s\n"
                            "optim small_e0002.optim %s\ncodebooks 1\ncodebook 6 small_e0002_cb0.codebook %s\n"
                            "samples 0 small_e0002_cb0.samples.fvecs %s\n" % (crc, crc, crc, crc)).encode())
put("fuzz_manifest", "position", ("gsl-checkpoint 2\nrun 0123456789abcdef\nepoch 1\nseed 3\n"
                                  "weights small_e0001_s000003.weights %s\noptim small_e0001_s000003.optim %s\n"
                                  "codebooks 1\ncodebook 6 - -\nposition 3 0x1.3a3dc88p+4 78dde6e5fd29f055 150\n"
                                  % (crc, crc)).encode())
fnv = 2166136261
for byte in b"abcd":
    fnv = ((fnv ^ byte) * 16777619) & 0xFFFFFFFF
fnv = "%08x" % fnv
put("fuzz_manifest", "v3", ("gsl-checkpoint 3\nrun 0123456789abcdef\nepoch 1\nseed 3\nnetwork 8 b4c4c3d4\n"
                            "weights small_e0001_s000003.weights %s\noptim small_e0001_s000003.optim %s\n"
                            "codebooks 1\ncodebook 6 small_e0001_s000003_cb0.codebook %s\nlayout 40 50\n"
                            "position 3 0x1.3a3dc88p+4 78dde6e5fd29f055 150\n" % (fnv, fnv, fnv)).encode())
put("fuzz_manifest", "v1", b"gsl-checkpoint 1\nepoch 1\nseed 3\nweights small_e0001.weights\noptim x\ncodebooks 0\n")
print("seeds written to", out)
