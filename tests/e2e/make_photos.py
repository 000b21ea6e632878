"""Writes Fashion-MNIST records (Debian's dataset-fashion-mnist) as a folder of "own images" of the kind a user
brings: PNG and JPEG files of mixed sizes, some colour and some grey, plus one corrupt and one truncated file.

usage: make_photos.py OUTDIR TRAIN_PER_CLASS DATABASE_SIZE QUERIES
OUTDIR/labels.txt      the 10 class names (cls0_ .. cls9_)
OUTDIR/train.list      labelled training images (the class name is in the file name, Darknet's convention)
OUTDIR/train_bad.list  as many lines, two of them the corrupt and the truncated file (lines printed on stdout)
OUTDIR/db.list         unlabelled database images (photos/p00000.jpg ...: no class name anywhere in the path)
OUTDIR/query.list      unlabelled queries: QUERIES/2 images also in the database (same path), the rest new
OUTDIR/truth.tsv       path<TAB>class<TAB>record of every database and query image, for the test's checks
Records are taken in file order, so the set is the same on every machine."""
import os
import sys

import numpy as np
from PIL import Image

from make_subset import SRC, read_idx

SIZES = [(28, 28), (20, 24), (40, 32), (56, 56), (33, 17)]


def save(arr, path, k):
    """Record arr (28x28 uint8) as an image of the k-th size/format/colour variant."""
    w, h = SIZES[k % len(SIZES)]
    img = Image.fromarray(arr, "L").resize((w, h), Image.BILINEAR)
    if k % 3 == 1:  # colour: the grey image tinted, so its luminance is close to the original's
        g = np.asarray(img, dtype=np.float32)
        rgb = np.stack([g * 1.0, g * 0.95, g * 0.9], axis=2).clip(0, 255).astype(np.uint8)
        img = Image.fromarray(rgb, "RGB")
    if path.endswith(".jpg"):
        img.save(path, quality=95)
    else:
        img.save(path)


def main():
    out, per_class, ndb, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    out = os.path.abspath(out)
    for sub in ("train", "photos"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    x = read_idx(f"{SRC}/train-images-idx3-ubyte.gz")
    y = read_idx(f"{SRC}/train-labels-idx1-ubyte.gz")
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("".join("cls%d_\n" % c for c in range(10)))
    train, used = [], set()
    for c in range(10):
        for k, i in enumerate([j for j in range(len(y)) if y[j] == c][:per_class]):
            p = os.path.join(out, "train", "cls%d_%d.%s" % (c, k, "jpg" if k % 2 else "png"))
            save(x[i], p, k + c)
            train.append((i, p))
            used.add(i)
    train.sort()
    lines = [p for _, p in train]
    with open(os.path.join(out, "train.list"), "w") as f:
        f.write("".join(p + "\n" for p in lines))
    # the corrupt file (JPEG magic, then noise) and the truncated one (a valid PNG cut in half), both with a class name
    corrupt = os.path.join(out, "train", "cls1_corrupt.jpg")
    with open(corrupt, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8)))
    truncated = os.path.join(out, "train", "cls2_truncated.png")
    save(x[train[0][0]], truncated, 0)
    data = open(truncated, "rb").read()
    with open(truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    bad = lines[:5] + [corrupt] + lines[5:9] + [truncated] + lines[9:-2]
    with open(os.path.join(out, "train_bad.list"), "w") as f:
        f.write("".join(p + "\n" for p in bad))
    print("corrupt %d %s" % (bad.index(corrupt) + 1, corrupt))
    print("truncated %d %s" % (bad.index(truncated) + 1, truncated))
    # database and queries: records the training did not see
    rest = [j for j in range(len(y)) if j not in used][: ndb + nq]
    truth, db, q = [], [], []
    for n, i in enumerate(rest):
        p = os.path.join(out, "photos", "p%05d.%s" % (n, "png" if n % 2 else "jpg"))
        save(x[i], p, n)
        truth.append("%s\t%d\t%d\n" % (p, y[i], i))
        (db if n < ndb else q).append(p)
    queries = db[: nq // 2] + q[: nq - nq // 2]
    with open(os.path.join(out, "db.list"), "w") as f:
        f.write("".join(p + "\n" for p in db))
    with open(os.path.join(out, "query.list"), "w") as f:
        f.write("".join(p + "\n" for p in queries))
    with open(os.path.join(out, "truth.tsv"), "w") as f:
        f.write("".join(truth))


if __name__ == "__main__":
    main()
