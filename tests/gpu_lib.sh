# Shared by the GPU-host checks (tests/gpu_train_check.sh, tests/gpu_dist_check.sh): the build, synthetic data and
# the small network's cfg variants. Plain python3 (no numpy); sources tests/lib.sh (check, close, result).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# gpu_setup PROGRAM FOLDER TOOL...: checks that the TOOLs are on PATH, builds PROGRAM (darknet or darknet-mpi) with
# GPU=1 and GPU=0 (BLAS from the environment, default 1; nothing with PREBUILT=1), sets gbin and cbin to the two
# binaries, and enters the emptied scratch folder build/gpu<sfx>/FOLDER. Exits with the RESULT line on failure.
gpu_setup() {
  local prog=$1 folder=$2 t; shift 2
  for t in "$@"; do
    command -v "$t" >/dev/null || { bad prerequisites "$t not found"; result; exit 1; }
  done
  local blas=${BLAS:-1} jobs=${JOBS:-$(nproc)} sfx
  sfx=$([ "$blas" = 0 ] && echo -noblas)
  if [ "${PREBUILT:-0}" != 1 ]; then
    make -j"$jobs" --no-print-directory GPU=1 BLAS="$blas" "build/gpu$sfx/$prog" >/dev/null &&
      make -j"$jobs" --no-print-directory GPU=0 BLAS="$blas" "build/cpu$sfx/$prog" >/dev/null ||
      { bad build "make GPU=1/GPU=0 build/*/$prog failed"; result; exit 1; }
  fi
  gbin=$root/build/gpu$sfx/$prog cbin=$root/build/cpu$sfx/$prog
  rm -rf "$root/build/gpu$sfx/$folder" && mkdir -p "$root/build/gpu$sfx/$folder" && cd "$root/build/gpu$sfx/$folder" ||
    { bad setup "cannot make build/gpu$sfx/$folder"; result; exit 1; }
}

# gpu_mkdata: 1000 synthetic 28x28 images of 10 classes (a class is a bright square at its own place, plus noise),
# IDX format, written to ./train-images.gz and ./train-labels.gz.
gpu_mkdata() {
  python3 - <<'PY'
import gzip, random, struct
random.seed(1)
n = 1000
img, lab = bytearray(), bytearray()
for i in range(n):
    c = i % 10
    px = [random.randrange(60) for _ in range(784)]
    r0, c0 = 2 + (c // 5) * 12, 2 + (c % 5) * 5
    for r in range(r0, r0 + 10):
        for q in range(c0, c0 + 4):
            px[r * 28 + q] = 200 + random.randrange(56)
    img += bytes(px); lab.append(c)
with gzip.open("train-images.gz", "wb") as f: f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(img))
with gzip.open("train-labels.gz", "wb") as f: f.write(struct.pack(">II", 0x801, n) + bytes(lab))
PY
}

# gpu_mkcfg NAME BATCH SUBDIVISIONS: tests/e2e/small.cfg for 2 epochs with that batch, as ./NAME.cfg.
gpu_mkcfg() {
  sed -e 's/^epochs=3/epochs=2/' -e "s/^batch=50/batch=$2/" -e "s/^subdivisions=1/subdivisions=$3/" \
    "$root/tests/e2e/small.cfg" > "$1.cfg"
}

# gpu_mkdirs DIR...: a run folder each, with x.data pointing at the data in the current folder.
gpu_mkdirs() {
  local d
  for d in "$@"; do
    mkdir -p "$d" && printf 'classes=10\ntrain=%s\ntrain_labels=%s\nbackup=B\n' "$PWD/train-images.gz" \
      "$PWD/train-labels.gz" > "$d/x.data"
  done
}
