#!/usr/bin/env bash
# The BLAS kernel: bin/darknet runs on the best OpenBLAS kernel the processor supports (judged here from
# /proc/cpuinfo's flags, independently of quant/blas.c's CPUID reading), also when OpenBLAS itself picks an older one
# (simulated with OPENBLAS_CORETYPE=Prescott and GSL_BLAS_CORE=best, the path a processor unknown to OpenBLAS takes);
# the user's choices are kept or refused with a message naming the variable; and training gives the same weights,
# within float tolerance, under every kernel this processor supports.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/blas")
rm -rf "$tmp" && mkdir -p "$tmp/data"
. "$here/lib.sh"
clean() { env -u OPENBLAS_CORETYPE -u GSL_BLAS_CORE -u GSL_BLAS_REEXEC "$@"; }

flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
# The instruction-set level the processor supports, and the kernels (OpenBLAS's names) at or above each level.
level=0 supported="Prescott"
has sse4_2 && { level=1; supported="$supported Nehalem"; }
has avx && { level=2; supported="$supported Sandybridge"; }
has avx2 fma && { level=3; supported="$supported Haswell"; }
has avx512f avx512dq avx512cd avx512bw avx512vl && { level=4; supported="$supported SkylakeX"; }
kernels_at=("Prescott Core2 Penryn Dunnington Atom Nano Barcelona Bobcat Opteron" "Nehalem"
            "Sandybridge Bulldozer Piledriver Steamroller Excavator" "Haswell Zen" "SkylakeX Cooperlake SapphireRapids")
level_of() { for l in 0 1 2 3 4; do [[ " ${kernels_at[$l]} " == *" $1 "* ]] && { echo "$l"; return; }; done; echo -1; }
kernel() { sed -n 's/^blas: .*, kernel \([A-Za-z0-9()]*\) .*/\1/p' <<<"$1"; }

# ---- automatic choice: never the generic kernel where AVX2 or AVX-512 is there
out=$(clean "$bin" gsl info 2>&1); rc=$?
k=$(kernel "$out")
check info_names_kernel '[ $rc = 0 ] && [ -n "$k" ]' "exit $rc: $out"
check auto_kernel_fits_processor '[ "$(level_of "$k")" = $level ]' \
  "kernel $k is level $(level_of "$k"), the processor (flags) supports level $level"
check not_generic_on_avx2 '[ $level -lt 3 ] || [ "$(level_of "$k")" -ge 3 ]' "kernel $k on a processor with AVX2"

# ---- OpenBLAS on the oldest kernels (as on a processor it does not know): raised to the processor's level
out=$(clean OPENBLAS_CORETYPE=Prescott GSL_BLAS_CORE=best "$bin" gsl info 2>&1); rc=$?
k=$(kernel "$out")
check fallback_raised '[ $rc = 0 ] && [ "$(level_of "$k")" = $level ]' "exit $rc, kernel $k: $out"
check fallback_says_why '[ $level = 0 ] || grep -q "OpenBLAS chose Prescott" <<<"$out"' "$out"

# ---- the user's choices: OPENBLAS_CORETYPE kept (with a word when it is slower), GSL_BLAS_CORE=NAME and keep
out=$(clean OPENBLAS_CORETYPE=Prescott "$bin" gsl info 2>&1)
check coretype_kept '[ "$(kernel "$out")" = Prescott ]' "$out"
check coretype_slower_said '[ $level = 0 ] || grep -q "this processor supports" <<<"$out"' "$out"
out=$(clean GSL_BLAS_CORE=Prescott "$bin" gsl info 2>&1)
check request_by_name '[ "$(kernel "$out")" = Prescott ]' "$out"
out=$(clean OPENBLAS_CORETYPE=Prescott GSL_BLAS_CORE=keep "$bin" gsl info 2>&1)
check request_keep '[ "$(kernel "$out")" = Prescott ]' "$out"
expect unknown_request_refused 2 "GSL_BLAS_CORE=Bogus: not an OpenBLAS kernel" clean GSL_BLAS_CORE=Bogus "$bin" gsl info
# a kernel whose instructions the processor lacks is refused, never run
if [ $level -lt 4 ]; then missing=SkylakeX; elif ! has avx512_fp16; then missing=SapphireRapids; else missing=; fi
if [ -n "$missing" ]; then
  expect unsupported_request_refused 2 "GSL_BLAS_CORE=$missing: its kernels need" clean GSL_BLAS_CORE=$missing "$bin" gsl info
  expect unsupported_coretype_refused 2 "OPENBLAS_CORETYPE=$missing: its kernels need" \
    clean OPENBLAS_CORETYPE=$missing "$bin" gsl info
fi

# ---- a cgroup CPU quota (docker --cpus, a Kubernetes CPU limit) leaves the affinity mask as it is: OpenBLAS's
# threads are sized to the quota, the user's OPENBLAS_NUM_THREADS is kept. Needs a cgroup this test may make (root,
# a writable cpu controller: v1, or v2 with cpu enabled) and more than one CPU; said and skipped otherwise.
nothreads() { env -u OPENBLAS_CORETYPE -u GSL_BLAS_CORE -u GSL_BLAS_REEXEC -u OPENBLAS_NUM_THREADS -u GOTO_NUM_THREADS \
  -u OMP_NUM_THREADS "$@"; }
in_cg='echo $$ > "$1/cgroup.procs" && shift && exec "$@"' # sh -c "$in_cg" _ CGROUP CMD...: CMD in that cgroup
cg=
for d in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do
  [ -w "$d/cpu.cfs_quota_us" ] && mkdir "$d/gsl-test-$$" 2>/dev/null || continue
  if echo 100000 > "$d/gsl-test-$$/cpu.cfs_period_us" && echo 100000 > "$d/gsl-test-$$/cpu.cfs_quota_us"; then
    cg=$d/gsl-test-$$; break; fi
  rmdir "$d/gsl-test-$$"
done
if [ -z "$cg" ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null && mkdir /sys/fs/cgroup/gsl-test-$$ 2>/dev/null; then
  if echo "100000 100000" > /sys/fs/cgroup/gsl-test-$$/cpu.max; then cg=/sys/fs/cgroup/gsl-test-$$
  else rmdir /sys/fs/cgroup/gsl-test-$$; fi
fi
if [ -n "$cg" ] && [ "$(nothreads "$bin" gsl info 2>&1 | sed -n 's/^blas: .*, \([0-9]*\) threads*$/\1/p')" -gt 1 ] 2>/dev/null; then
  out=$(nothreads sh -c "$in_cg" _ "$cg" "$bin" gsl info 2>&1)
  check quota_sizes_blas_threads 'grep -qE "^blas: .*, 1 thread \[not [0-9]+: the CPU quota of .*gsl-test-$$ allows 1 CPU\]$" <<<"$out"' \
    "$(grep '^blas' <<<"$out")"
  out=$(nothreads OPENBLAS_NUM_THREADS=2 sh -c "$in_cg" _ "$cg" "$bin" gsl info 2>&1)
  check quota_keeps_user_threads 'grep -qE "^blas: .*, 2 threads$" <<<"$out"' "$(grep '^blas' <<<"$out")"
  rmdir "$cg" 2>/dev/null
else
  [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
  echo "skip cgroup quota: no cgroup with a CPU quota can be made here, or OpenBLAS runs one thread (test_blas checks the decision on fake hierarchies)"
fi

# ---- the header lines of train and eval name the kernel; the same weights under every supported kernel
"$py" "$here/e2e/make_subset.py" "$tmp/data" 200 50 || { echo "RESULT $pass passed, $((fail + 1)) failed"; exit 1; }
cd "$tmp"
export OPENBLAS_NUM_THREADS=1
for k in auto $supported; do
  cat > $k.data <<D
classes=10
train=$tmp/data/train-images.gz
train_labels=$tmp/data/train-labels.gz
valid=$tmp/data/test-images.gz
valid_labels=$tmp/data/test-labels.gz
backup=$tmp/$k
D
  if [ $k = auto ]; then clean "$bin" gsl train $k.data "$here/e2e/small.cfg" -epochs 1 > $k.log 2>&1
  else clean GSL_BLAS_CORE=$k "$bin" gsl train $k.data "$here/e2e/small.cfg" -epochs 1 > $k.log 2>&1; fi
  rc=$?
  [ $rc = 0 ] || bad "train_under_$k" "exit $rc: $(tail -2 $k.log)"
done
check train_header_names_kernel 'grep -qE "^training .*; OpenBLAS [0-9.]+ \([a-zA-Z]+\), kernel [A-Za-z]+ \[" auto.log' \
  "$(grep -m1 '^training' auto.log)"
"$bin" gsl eval auto.data "$here/e2e/small.cfg" auto/small.ckpt -M 4 -K 16 > eval.log 2>&1
check eval_header_names_kernel 'grep -qE "^evaluating .* on the CPU; OpenBLAS .*, kernel [A-Za-z]+ \[" eval.log' \
  "$(head -2 eval.log)"
for k in $supported; do
  check "trains_under_$k" 'grep -q "kernel $k \[" $k.log' "$(grep -m1 '^training' $k.log)"
  # 40 SGD steps: rounding differences of the kernels grow a little; 1e-4 relative is far below any real change
  check_close "same_weights_under_$k" auto/small_e0001.weights $k/small_e0001.weights 20 0 5e-5 1e-4
done
result
