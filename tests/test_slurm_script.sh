#!/usr/bin/env bash
# scripts/slurm_train.sbatch's choice of what to run, with srun and scontrol replaced by stubs that record the
# command: resume from the backup folder's checkpoint unless weights or -restart were given, resume once requeued,
# and a -restart job requeued before its first checkpoint starts over (it must not resume the run it replaces).
set -u
here=$(cd "$(dirname "$0")" && pwd)
script=$here/../scripts/slurm_train.sbatch
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/slurm_script")
rm -rf "$tmp" && mkdir -p "$tmp/bin" && cd "$tmp"
. "$here/lib.sh"

cat > bin/srun <<'EOF'
#!/bin/bash
shift 3 # --mpi, --kill-on-bad-exit, --cpu-bind
echo "$*" > srun.args
exit "${FAKE_RC:-0}"
EOF
printf '#!/bin/sh\necho requeued > scontrol.called\n' > bin/scontrol
printf '#!/bin/sh\nexit 0\n' > bin/darknet
chmod +x bin/*
printf 'classes=10\nbackup = B # the run folder\n' > x.data
# sub NAME WANT ARGS...: runs the script (env as set by the caller) and checks the gsl train arguments it ran
sub() {
  local name=$1 want=$2; shift 2
  rm -f srun.args
  PATH=$tmp/bin:$PATH BIN=bin/darknet SLURM_GPUS_ON_NODE=0 bash "$script" x.data cfg/net.cfg "$@" > "$name.log" 2>&1
  local got
  got=$(cat srun.args 2>/dev/null)
  check "$name" '[ "$got" = "bin/darknet gsl train x.data cfg/net.cfg$want" ]' "ran '$got': $(tail -2 "$name.log")"
}
sub no_checkpoint_new_run ""
mkdir -p B && touch B/net.ckpt
sub checkpoint_resumed " B/net.ckpt -epochs 3" -epochs 3
sub weights_given_kept " w.weights" w.weights
SLURM_JOB_ID=7 FAKE_RC=75 sub restart_first_run " -restart" -restart
check restart_preempted_requeues '[ -f scontrol.called ] && [ -f B/.slurm-restart-7 ]' "$(ls -a B)"
touch -d '1 minute ago' B/net.ckpt # the old run's checkpoint: older than the job's stamp
SLURM_JOB_ID=7 SLURM_RESTART_COUNT=1 sub restart_requeued_before_checkpoint " -restart" -restart
touch B/net.ckpt # the job's own checkpoint
SLURM_JOB_ID=7 SLURM_RESTART_COUNT=1 sub restart_requeued_after_checkpoint " B/net.ckpt" -restart
check restart_stamp_removed_at_the_end '[ ! -e B/.slurm-restart-7 ]' "$(ls -a B)"
SLURM_RESTART_COUNT=1 sub requeued_weights_dropped " B/net.ckpt -epochs 2" w.weights -epochs 2
result
