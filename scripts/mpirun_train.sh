#!/usr/bin/env bash
# Data-parallel `gsl train` under Open MPI's mpirun: one rank per GPU (GPU build), or one per node (CPU build).
#   scripts/mpirun_train.sh NP DATA CFG [WEIGHTS|CHECKPOINT.ckpt] [gsl train options ...]
# Examples:
#   scripts/mpirun_train.sh 2 cfg/fashion.data cfg/fashion_gsl.cfg                  # 2 ranks on this machine (CPU)
#   HOSTFILE=hosts GPUS=0,1,2,3,4,5,6,7 scripts/mpirun_train.sh 64 cfg/fashion.data cfg/fashion_gsl.cfg
#     (hosts: one line per node, "node01 slots=8"; rank i of a node takes the i-th device of GPUS)
#   scripts/mpirun_train.sh 2 cfg/fashion.data cfg/fashion_gsl.cfg backup/fashion/fashion_gsl.ckpt   # resume
# The global batch is the cfg's batch times NP (docs/cluster.md). The binary, DATA, CFG and the .data file's backup
# folder must be at the same paths on every node (a shared filesystem); only rank 0 writes.
# Env: BIN (default: this repository's bin/darknet; build it with `make MPI=1`, or `make GPU=1 MPI=1` for NCCL), HOSTFILE, GPUS,
#      THREADS (OpenBLAS threads per rank; default: this machine's cores / NP without HOSTFILE, else all cores),
#      GSL_DIST_TIMEOUT (seconds before a stuck collective stops the job; default 300), GSL_DIST_DEBUG=1,
#      GSL_DIST_BACKEND=nccl|mpi, MPIRUN_ARGS (more mpirun options, e.g. "--mca btl_tcp_if_include eth0").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd) # paths in the arguments stay relative to the caller's folder
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
np=$1; shift
[[ $np =~ ^[0-9]+$ ]] && [ "$np" -ge 1 ] || { echo "mpirun_train.sh: NP must be a positive integer, got '$np'" >&2; exit 2; }
bin=${BIN:-$here/bin/darknet}
command -v mpirun >/dev/null || { echo "mpirun_train.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
[ -x "$bin" ] || { echo "mpirun_train.sh: $bin not found: make MPI=1" >&2; exit 1; }
ldd "$bin" 2>/dev/null | grep libmpi >/dev/null || { echo "mpirun_train.sh: $bin is not an MPI build: make MPI=1 (GPU=1 for NCCL)" >&2; exit 1; }

args=(-np "$np")
if [ -n "${HOSTFILE:-}" ]; then
  args+=(--hostfile "$HOSTFILE")
  threads=${THREADS:-$(nproc)}
else
  args+=(--oversubscribe) # more ranks than cores is allowed on one machine (slow, but useful for trying it out)
  threads=${THREADS:-$(( $(nproc) / np > 0 ? $(nproc) / np : 1 ))}
fi
if [ "$(id -u)" = 0 ]; then args+=(--allow-run-as-root); fi
# Ranks on other nodes get only the variables named here.
export OPENBLAS_NUM_THREADS=$threads GSL_DIST_TIMEOUT=${GSL_DIST_TIMEOUT:-300}
args+=(-x OPENBLAS_NUM_THREADS -x GSL_DIST_TIMEOUT)
for v in GSL_DIST_DEBUG GSL_DIST_PROFILE GSL_DIST_BACKEND NCCL_DEBUG NCCL_SOCKET_IFNAME NCCL_IB_HCA; do
  if [ -n "${!v:-}" ]; then args+=(-x "$v"); fi
done
gpus=()
if [ -n "${GPUS:-}" ]; then gpus=(-gpus "$GPUS"); fi
# shellcheck disable=SC2086 # MPIRUN_ARGS is a list of options
exec mpirun "${args[@]}" ${MPIRUN_ARGS:-} "$bin" gsl train "$@" "${gpus[@]}"
