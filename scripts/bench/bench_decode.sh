#!/usr/bin/env bash
# Decoding an image list for training: images/s of gsl_data_gather (the loader's work per batch: read the file,
# stb_image, Darknet's resize_image to the network's input) on photo-sized JPEGs, against Pillow doing the same in
# one Python process (open, RGB, bilinear resize, float planes: a PyTorch DataLoader worker's usual work), measured
# in the same rounds. Configurations, interleaved per round:
#   pil               Pillow, one process (the peer)
#   1t default-malloc one decode thread, glibc's allocation settings as they are
#   Nt                N decode threads (the .data key loader_threads), gsl_image_malloc_tune as the gsl command does
# Two sizes of synthetic photos (smooth colour fields with edges and noise, JPEG quality 90): 256x256 and 500x375
# (ImageNet's typical size), both to a 3x224x224 input.
#   scripts/bench/bench_decode.sh [-r ROUNDS] [-n IMAGES] [-t "1 2 4 8"]   (defaults 3 rounds, 512 images,
#                                                                           threads 1 up to the CPUs, at most 8)
# Writes build/bench/decode/bench_decode.tsv. Needs python3 with numpy and PIL (scripts/setup.sh test).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
rounds=3 n=512 threads=
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench_decode.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$n"; do
  [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || { echo "bench_decode.sh: -r/-n need positive integers" >&2; exit 2; }
done
if [ -z "$threads" ]; then
  cpus=$(nproc); [ "$cpus" -gt 8 ] && cpus=8
  threads=1; t=2; while [ "$t" -le "$cpus" ]; do threads="$threads $t"; t=$((t * 2)); done
  [ "${threads##* }" = "$cpus" ] || threads="$threads $cpus"
fi
py=${PYTHON:-/usr/bin/python3}
make -s build/cpu/bench/bench_decode
bin=$here/build/cpu/bench/bench_decode
out=$here/build/bench/decode
mkdir -p "$out"
for size in 256x256 500x375; do
  [ -s "$out/$size.list" ] && [ "$(wc -l < "$out/$size.list")" = "$n" ] && continue
  "$py" - "$out" "$size" "$n" <<'PY'
import os, sys
import numpy as np
from PIL import Image
out, size, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
w, h = map(int, size.split("x"))
rng = np.random.default_rng(7)
os.makedirs(f"{out}/{size}", exist_ok=True)
paths = []
for i in range(n):
    low = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), dtype=np.float32)
    img += rng.normal(0, 6, img.shape)
    p = f"{out}/{size}/{i:05d}.jpg"
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(p, quality=90)
    paths.append(p)
with open(f"{out}/{size}.list", "w") as f:
    f.write("\n".join(paths) + "\n")
PY
done
pil() { # LIST: images/s of Pillow to 3x224x224 float planes
  "$py" - "$1" <<'PY'
import sys, time
import numpy as np
from PIL import Image
paths = open(sys.argv[1]).read().split()
t = time.perf_counter()
for p in paths:
    im = Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) * (1 / 255)
print("img/s %.1f" % (len(paths) / (time.perf_counter() - t)))
PY
}
tsv=$out/bench_decode.tsv
printf 'round\tsize\tconfig\timg_s\n' > "$tsv"
for r in $(seq "$rounds"); do
  for size in 256x256 500x375; do
    list=$out/$size.list
    v=$(pil "$list" | awk '{print $2}'); printf '%s\t%s\tpil\t%s\n' "$r" "$size" "$v" >> "$tsv"
    v=$("$bin" "$list" 3 224 224 1 -default-malloc -passes 1 | awk '{print $2}')
    printf '%s\t%s\t1t default-malloc\t%s\n' "$r" "$size" "$v" >> "$tsv"
    for t in $threads; do
      v=$("$bin" "$list" 3 224 224 "$t" -passes 1 | awk '{print $2}'); printf '%s\t%s\t%st\t%s\n' "$r" "$size" "$t" "$v" >> "$tsv"
    done
  done
done
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $rounds rounds of $n images; medians:"
"$py" - "$tsv" <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for size in dict.fromkeys(r["size"] for r in rows):
    med = {}
    for r in rows:
        if r["size"] == size:
            med.setdefault(r["config"], []).append(float(r["img_s"]))
    med = {k: statistics.median(v) for k, v in med.items()}
    print(f"{size} JPEG -> 3x224x224")
    print(f"  {'config':<20} {'img/s':>8} {'vs pil':>7} {'vs 1t':>6}")
    for k, v in med.items():
        one = med.get("1t")
        print(f"  {k:<20} {v:8.0f} {v / med['pil']:6.2f}x" + (f" {v / one:5.2f}x" if one else ""))
PY
