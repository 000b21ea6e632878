"""Writes Fashion-MNIST records (Debian's dataset-fashion-mnist) as PNG images, for the tests of image lists.

usage: make_images.py OUTDIR TRAIN_PER_CLASS TEST_PER_CLASS
OUTDIR/labels.txt names the 10 classes (cls0_ .. cls9_); OUTDIR/train/<class><i>.png and OUTDIR/test/<class><i>.png
hold the first N images of each class in file order (the same on every machine); OUTDIR/train.list and
OUTDIR/test.list list them, one absolute path per line (Darknet's list format: the class name is in the path)."""
import os
import struct
import sys
import zlib

from make_subset import SRC, read_idx


def png(img):
    """An 8-bit greyscale PNG of a (h, w) uint8 array (no dependency beyond zlib)."""
    h, w = img.shape
    rows = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_split(split, per_class, out, name):
    x = read_idx(f"{SRC}/{split}-images-idx3-ubyte.gz")
    y = read_idx(f"{SRC}/{split}-labels-idx1-ubyte.gz")
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for c in range(10):
        for k, i in enumerate([j for j in range(len(y)) if y[j] == c][:per_class]):
            p = os.path.join(folder, "cls%d_%d.png" % (c, k))
            with open(p, "wb") as f:
                f.write(png(x[i]))
            paths.append((i, p))
    paths.sort()  # file order, classes interleaved as in the source
    with open(os.path.join(out, name + ".list"), "w") as f:
        f.write("".join(p + "\n" for _, p in paths))


if __name__ == "__main__":
    out, ntrain, ntest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("".join("cls%d_\n" % c for c in range(10)))
    write_split("train", ntrain, out, "train")
    write_split("t10k", ntest, out, "test")
