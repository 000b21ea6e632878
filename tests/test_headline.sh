#!/usr/bin/env bash
# scripts/study/gpu_headline.sh on the CPU (GPUS empty) with a Fashion-MNIST subset: a run that finishes is trained and
# evaluated and gets its summary line; a run stopped by the time cap is still evaluated on its last checkpoint, and
# one stopped before any checkpoint says so instead of inventing figures.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/headline")
rm -rf "$tmp" && mkdir -p "$tmp/data"
export OPENBLAS_NUM_THREADS=1
"$py" "$here/e2e/make_subset.py" "$tmp/data" 100 20 || { bad subset "make_subset.py failed"; result; exit 1; }
for s in train:train t10k:test; do # the Debian file names the script expects
  for k in images:idx3 labels:idx1; do
    ln -s "$tmp/data/${s#*:}-${k%:*}.gz" "$tmp/data/${s%:*}-${k%:*}-${k#*:}-ubyte.gz"
  done
done
hl() { BIN=${B:-$bin} GPUS= DATA_DIR=$tmp/data THREADS=1 WORK=$tmp/runs "$here/../scripts/study/gpu_headline.sh" "$@"; }

# small.cfg (3 epochs) with learning-rate steps at iterations 40 and 80: EPOCHS=2 moves them to 27 and 53
mkdir -p "$tmp/cfg" && sed 's/^policy=constant/policy=steps\nsteps=40,80\nscales=.1,.1/' "$here/e2e/small.cfg" > "$tmp/cfg/small.cfg"
RES=$tmp/done EPOCHS=2 TRAIN_S=120 hl "$tmp/cfg/small.cfg" > "$tmp/done.out" 2>&1; rc=$?
line=$(cat "$tmp/done/summary.txt" 2>/dev/null)
check epochs_scale_steps 'grep -q "^learning-rate schedule scaled to 2 epochs (the cfg.s 3): steps=27,53$" "$tmp/done/small.log"' \
  "$(head -n 3 "$tmp/done/small.log" 2>&1)"
check finished_run_summarised '[ $rc = 0 ] && grep -qE "^small: epochs 2 in [0-9]+ s, float mAP 0\.[0-9]{4}, PQ mAP 0\.[0-9]{4}$" <<<"$line"' \
  "exit $rc, summary '$line': $(tail -n 3 "$tmp/done.out")"
check finished_run_log 'grep -q "== train exit 0 after" "$tmp/done/small.log" && grep -q "== eval exit 0" "$tmp/done/small.log" && grep -q "^PQ codes" "$tmp/done/small.log"' \
  "$(tail -n 5 "$tmp/done/small.log")"

# EPOCHS with a cfg whose schedule counts iterations but has no epochs= line: the trainer refuses, nothing trained
grep -v '^epochs=' "$tmp/cfg/small.cfg" > "$tmp/cfg/noepochs.cfg"
RES=$tmp/noep EPOCHS=2 hl "$tmp/cfg/noepochs.cfg" > "$tmp/noep.out" 2>&1
check epochs_needs_epochs_line 'grep -qF "needs epochs= in [net] to scale from" "$tmp/noep/noepochs.log" && grep -q "== train exit 1 " "$tmp/noep/noepochs.log" && [ ! -e "$tmp/runs/noepochs/B/noepochs.ckpt" ]' \
  "$(cat "$tmp/noep/summary.txt" "$tmp/noep/noepochs.log" 2>&1 | tail -n 4)"

# a cap in the middle of the run: the last finished epoch's checkpoint is evaluated
RES=$tmp/cap EPOCHS=200 TRAIN_S=6 hl "$here/e2e/small.cfg" > "$tmp/cap.out" 2>&1
line=$(cat "$tmp/cap/summary.txt" 2>/dev/null)
check capped_run_evaluated 'grep -q "== train exit 124" "$tmp/cap/small.log" && grep -q "== eval exit 0" "$tmp/cap/small.log" && grep -qE "^small: epochs [1-9][0-9]* in [0-9]+ s, float mAP 0\.[0-9]{4}" <<<"$line"' \
  "summary '$line': $(grep '^==' "$tmp/cap/small.log")"

# a training that leaves no checkpoint (here: a binary that fails at once, status 3): its status, and no figures
printf '#!/bin/sh\nexit 3\n' > "$tmp/fail3" && chmod +x "$tmp/fail3"
B=$tmp/fail3 RES=$tmp/none hl "$here/e2e/small.cfg" > "$tmp/none.out" 2>&1
line=$(cat "$tmp/none/summary.txt" 2>/dev/null)
check no_checkpoint_no_figures 'grep -q "== train exit 3 " "$tmp/none/small.log" && grep -q "== eval exit none" "$tmp/none/small.log" && grep -qE "^small: epochs 0 in [0-9]+ s, float mAP \?, PQ mAP \?$" <<<"$line"' \
  "summary '$line': $(grep '^==' "$tmp/none/small.log")"

# scripts/study/ablation.sh headline: make demo's run of the cfg; an interrupted run goes on from its checkpoint when the
# command is rerun, and an evaluated one is skipped with its table
ab() { ABL_OUT=$tmp/abl ABL_BIN=$bin ABL_FASHION=$tmp/data ABL_HEADLINE_BIN=${B:-$bin} ABL_HEADLINE_CFG=$here/e2e/small.cfg \
       "$here/../scripts/study/ablation.sh" headline; }
printf '#!/bin/sh\n[ "$2" = train ] || exec "%s" "$@"\n"%s" "$@" -epochs 1; exit 1\n' "$bin" "$bin" > "$tmp/stop1" &&
  chmod +x "$tmp/stop1" # trains one epoch, then fails as an interrupted run would
B=$tmp/stop1 ab > "$tmp/ab1.out" 2>&1; rc=$?
check ablation_headline_failure_said '[ $rc = 1 ] && grep -q "^headline: scripts/demo.sh exit 1" "$tmp/ab1.out" && [ ! -e "$tmp/abl/headline/small.txt" ] && [ -f "$tmp/abl/headline/small.ckpt" ]' \
  "exit $rc: $(tail -n 3 "$tmp/ab1.out")"
ab > "$tmp/ab2.out" 2>&1; rc=$?
check ablation_headline_resumes '[ $rc = 0 ] && grep -q "resuming from .*/abl/headline/small.ckpt" "$tmp/ab2.out" && grep -q "^epoch 3 done" "$tmp/ab2.out" && ! grep -q "^epoch 1 done" "$tmp/ab2.out"' \
  "exit $rc: $(grep -E "^(==|epoch [0-9]+ done)" "$tmp/ab2.out")"
check ablation_headline_table '[ "$(cut -d" " -f1 "$tmp/abl/headline/small.txt" 2>&1 | tr "\n" " ")" = "features float PQ " ] && grep -q "end headline: PQ codes (M=" "$tmp/abl/progress.log"' \
  "$(cat "$tmp/abl/headline/small.txt" 2>&1; tail -n 2 "$tmp/abl/progress.log" 2>&1)"
ab > "$tmp/ab3.out" 2>&1; rc=$?
check ablation_headline_skipped_when_done '[ $rc = 0 ] && grep -q "already evaluated" "$tmp/ab3.out" && grep -q "^PQ codes" "$tmp/ab3.out" && ! grep -q "^== training" "$tmp/ab3.out"' \
  "exit $rc: $(cat "$tmp/ab3.out")"

# bad input: a missing data file is named, nothing runs
RES=$tmp/bad DATA_DIR=$tmp/nowhere BIN=$bin GPUS= WORK=$tmp/runs "$here/../scripts/study/gpu_headline.sh" "$here/e2e/small.cfg" > "$tmp/bad.out" 2>&1; rc=$?
check missing_data_named '[ $rc = 1 ] && grep -q "nowhere/train-images-idx3-ubyte.gz not found (set DATA_DIR)" "$tmp/bad.out"' \
  "exit $rc: $(cat "$tmp/bad.out")"
result
