#!/usr/bin/env bash
# The GSL ablation (docs/RESULTS.md): [snap] modes against [quantloss] and post-hoc PQ on Fashion-MNIST, paired by seed.
#
#   scripts/study/ablation.sh [tune|main|gentle|validate|headline|all|analyze|status|dbfit] [-j WORKERS]
#                                                                               (default: all, 2 workers)
#   scripts/study/ablation.sh [schedule|whole] [-j WORKERS]        the whole-training study (below), in build/whole
#
# Every run (one network trained, embedded and evaluated) is recorded in its folder under build/ablation/runs/
# when it finishes (metrics.csv, written last) and skipped when the script is run again, so the study can be
# stopped (kill the workers) and resumed. Runs are niced (nice -n 19); OPENBLAS_NUM_THREADS=1 per worker.
#
# Design (docs/RESULTS.md says why):
#  * Paired by seed and by starting point: for each (protocol, seed) a plain network is pre-trained PRE epochs
#    (no codebook layer), and every arm fine-tunes from those weights for FT epochs with its layer active from the
#    first step (warmup=0: the codebook is built from the pre-trained embeddings, then rebuilt every epoch). Arm 1
#    (plain) fine-tunes the same FT epochs without a layer; its PQ is fitted after training on the training split.
#  * Every arm is evaluated with a PQ fitted on its final training embeddings ("refit", the same procedure as arm 1;
#    on the main protocols on a seeded sample of 10000 training images of the seen classes). On the tuning protocol
#    arms 2-5 are also evaluated with the codebook they trained against ("ckpt"), which turned out stale.
#  * tune: a validation protocol carved from the training set (.data holdout=): train on classes 0-2, queries = a
#    seeded holdout of 1000 training images per class of 3-4, database = the other training images of 3-4. The test
#    set is never used. Each arm's parameter is chosen by the mean PQ mAP over the tuning seeds at 4 bits.
#  * main: unseen-class protocol (train 0-4; queries = test images of 5-9, database = training images of 5-9) at
#    4 bits (M=1,K=16), 8 bits (M=1,K=256 and M=2,K=16), 16 bits (M=2,K=256); standard protocol at 32 bits (M=4,K=256).
#  * headline: the standard protocol's headline figure (32 bits), one full training of ABL_HEADLINE_CFG (default
#    cfg/fashion_gsl_3conv.cfg, about 170 minutes on 2 cores) by `make demo`'s script with bin/darknet (or
#    ABL_HEADLINE_BIN), not the frozen study binary; a rerun goes on from its checkpoint (RESUME=1), and once it is
#    evaluated its table is kept in OUT/headline/NAME.txt and the run is skipped.
#  * whole-training (OUT defaults to build/whole for these two commands): every arm trains from scratch with its
#    layer on from epoch 1 (no pre-training, PRE=0) for the whole schedule:
#    - schedule: the plain network on the validation protocol (val above) for ABL_SCHEDULE_MAX epochs (default 40) at
#      a constant learning rate (0.01, so a run of any length follows the same path), the per-epoch monitor's mAP on
#      the holdout queries; the schedule is the first epoch whose mAP is within 0.002 of the run's best
#      (OUT/schedule.txt). The test split is not used.
#    - whole: the unseen-class protocol at 4 bits (M=1, K=16) and 8 bits (M=1, K=256), every seed: post-hoc PQ
#      (plain), quantloss, rotate and lookahead at the short study's tuned parameters (ABL_TUNED, default lambda 0.1,
#      rotate 0.5, lookahead 0.1), and project at alpha 0.1 (the layer's default), for that many epochs. Tables,
#      paired tests and plots in ABL_RESULTS (default docs/results/whole).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${ABL_OUT:-build/ablation}
BIN=${ABL_BIN:-$OUT/darknet}
PY=/usr/bin/python3
case ${1:-all} in schedule|whole) OUT=${ABL_OUT:-build/whole}; BIN=${ABL_BIN:-$OUT/darknet} ;; esac
PRE=${ABL_PRE:-2}          # pre-training epochs (plain, shared by the arms of a seed; 0: every arm from scratch)
FT=${ABL_FT:-1}            # fine-tuning epochs per arm (the quantization layer active throughout)
case ${1:-all} in
  schedule) PRE=0 ;;
  whole) PRE=0; [ -s "$OUT/schedule.txt" ] && FT=$(awk '/^epochs /{print $2}' "$OUT/schedule.txt") ;;
esac
SEEDS=${ABL_SEEDS:-"1 2 3 4 5"}
TUNE_SEEDS=${ABL_TUNE_SEEDS:-"1"}
EXTRA_SEEDS=${ABL_EXTRA_SEEDS:-"1 2 3"}   # seeds for the non-deciding settings (16 bits, standard 32 bits)
FASHION=${ABL_FASHION:-/usr/share/datasets/fashion-mnist} # the Debian file names (train-images-idx3-ubyte.gz, ...)
export OPENBLAS_NUM_THREADS=1
WID=0

cmd=${1:-all}; shift || true
WORKERS=2
EXTRA=() # analyze: passed to ablation_analyze.py (e.g. --results DIR)
while [ $# -gt 0 ]; do case $1 in -j) WORKERS=$2; shift 2 ;; *) EXTRA+=("$1"); shift ;; esac; done
[ ${#EXTRA[@]} -gt 0 ] && [ "$cmd" != analyze ] && { echo "unknown option ${EXTRA[0]}" >&2; exit 2; }

mkdir -p "$OUT/runs" "$OUT/data" "$OUT/cfg"
if [ ! -x "$BIN" ]; then
  [ -x bin/darknet ] || make bin/darknet || exit 1
  cp bin/darknet "$BIN" # a frozen copy: the study keeps one binary even while bin/darknet is rebuilt
fi

# ------------------------------------------------------------------------------------------------ data files
mkdata() { # PROTO BACKUP -> writes the .data for a run with its own backup folder
  local proto=$1 backup=$2 f=$2/run.data
  case $proto in
    unseen) printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\ntrain_classes=0-4\neval_classes=5-9\n' \
              $FASHION/train-images-idx3-ubyte.gz $FASHION/train-labels-idx1-ubyte.gz \
              $FASHION/t10k-images-idx3-ubyte.gz $FASHION/t10k-labels-idx1-ubyte.gz > "$f" ;;
    standard) printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\n' \
              $FASHION/train-images-idx3-ubyte.gz $FASHION/train-labels-idx1-ubyte.gz \
              $FASHION/t10k-images-idx3-ubyte.gz $FASHION/t10k-labels-idx1-ubyte.gz > "$f" ;;
    val) printf 'classes=10\ntrain=%s\ntrain_labels=%s\nholdout=1000\nholdout_seed=7\ntrain_classes=0-2\neval_classes=3-4\n' \
              $FASHION/train-images-idx3-ubyte.gz $FASHION/train-labels-idx1-ubyte.gz > "$f" ;;
  esac
  echo "backup=$backup" >> "$f"
}
cpb() { case $1 in unseen) echo 4 ;; standard) echo 8 ;; val) echo 2 ;; esac; }

# cfg: the plain network with the trainer keys of the study, plus the arm's layer(s) before [similarity].
# ARM: plain | quantloss | rotate | project | lookahead | hybrid | gentle; P: the arm's parameter (lambda or alpha).
mkcfg() { # OUT PROTO ARM M K P EPOCHS
  local out=$1 proto=$2 arm=$3 M=$4 K=$5 P=$6 ep=$7 layer=""
  case $arm in
    plain) ;;
    quantloss) layer="[quantloss]\nsubspaces=$M\ncodewords=$K\nlambda=$P\n" ;;
    rotate|project) layer="[snap]\nsubspaces=$M\ncodewords=$K\nneighbors=$(( K < 8 ? K : 8 ))\nmode=$arm\nalpha=$P\n" ;;
    lookahead) layer="[snap]\nsubspaces=$M\ncodewords=$K\nmode=lookahead\nalpha=$P\neta=1\n" ;;
    gentle) # arm 6b: project with a small alpha (the least intrusive rewrite of the similarity gradient)
      layer="[snap]\nsubspaces=$M\ncodewords=$K\nneighbors=$(( K < 8 ? K : 8 ))\nmode=project\nalpha=$P\n" ;;
    hybrid) # rotate (alpha from tuning) below a weak quantization pull: P = "alpha/lambda"
      layer="[quantloss]\nsubspaces=$M\ncodewords=$K\nlambda=${P#*/}\n\n[snap]\nsubspaces=$M\ncodewords=$K\nneighbors=$(( K < 8 ? K : 8 ))\nmode=rotate\nalpha=${P%/*}\n" ;;
  esac
  # whole-training (PRE=0): a constant learning rate, the same in epochs on every protocol (fashion_plain.cfg's
  # steps, in iterations, fall at other epochs on protocols of other sizes; in its 4 epochs they are never reached)
  awk -v ep="$ep" -v cpb="$(cpb "$proto")" -v layer="$layer" -v const="$([ "$PRE" = 0 ] && echo 1)" '
    /^policy=/ && const {print "policy=constant"; next}
    /^(steps|scales)=/ && const {next}
    /^epochs=/ {print "epochs=" ep; next}
    /^warmup=/ {print "warmup=0"; next}
    /^classes_per_batch=/ {print "classes_per_batch=" cpb; next}
    /^eval_queries=/ {print "eval_queries=0"; next}
    /^\[similarity\]/ && layer != "" {printf "%s\n", layer}
    {print}' cfg/fashion_plain.cfg > "$out"
}

log() { echo "[$(date +%H:%M:%S) w$WID] $*" >> "$OUT/progress.log"; }

# ------------------------------------------------------------------------------------------------ one run
# Pre-training: RUNS/PROTO/pre/sSEED/net_eEEEE.weights
pretrain() { # PROTO SEED
  local dir=$OUT/runs/$1/pre/s$2
  [ -f "$dir/done" ] && return 0
  if [ "$PRE" = 0 ]; then mkdir -p "$dir" && echo 0 > "$dir/done"; return 0; fi # arms train from scratch
  mkdir -p "$dir"; mkdata "$1" "$dir"; mkcfg "$dir/net.cfg" "$1" plain 1 16 0 "$PRE"
  local t0=$SECONDS
  nice -n 19 "$BIN" gsl train "$dir/run.data" "$dir/net.cfg" -seed "$2" -epochs "$PRE" -threads 1 -restart > "$dir/train.log" 2>&1 \
    || { log "FAILED pretrain $1 s$2 (see $dir/train.log)"; touch "$dir/failed"; return 1; }
  rm -f "$dir/failed"
  cp "$dir/net_e$(printf %04d "$PRE").weights" "$dir/pre.weights" && echo $((SECONDS - t0)) > "$dir/done"
  log "pretrain $1 s$2 done in $((SECONDS - t0)) s"
}

# settings evaluated for a run: arm plain -> all of the protocol's; others -> their own (M,K)
settings_of() { # PROTO
  case $1 in unseen) echo "1,16 2,16 1,256 2,256" ;; standard) echo "4,256" ;; val) echo "1,16 1,256" ;; esac
}

# One quantizer, one CSV row: ckpt = the codebook the arm trained against; refit = a PQ fitted on the final
# embeddings of training images (seen classes); dbfit = a PQ fitted on the database embeddings.
eval_variant() { # DIR PROTO ARM SEED TAG M K VARIANT
  local dir=$1 proto=$2 arm=$3 seed=$4 tag=$5 m=$6 k=$7 v=$8 e=$1/eval
  local cb=$e/cb_${v}_M${m}K${k}.gq
  case $v in
    ckpt) cp "$(awk '/^codebook /{print $3; exit}' "$dir/net.ckpt")" "$cb" || return 1 ;;
    refit|dbfit) local src=$e/train.fvecs; [ "$v" = dbfit ] && src=$e/database.fvecs
      nice -n 19 "$BIN" gsl quant train -in "$src" -out "$cb" -M "$m" -K "$k" -seed "$seed" -threads 1 \
        > "$e/qtrain_${v}_M${m}K${k}.log" 2>&1 || return 1 ;;
  esac
  nice -n 19 "$BIN" gsl quant encode -codebook "$cb" -in "$e/database.fvecs" -out "$e/db_${v}_M${m}K${k}.gc" -threads 1 \
    > /dev/null 2>&1 || return 1
  nice -n 19 "$BIN" gsl quant eval -codebook "$cb" -codes "$e/db_${v}_M${m}K${k}.gc" -queries "$e/valid.fvecs" \
    -base "$e/database.fvecs" -qlabels "$e/valid.labels.ivecs" -dblabels "$e/database.labels.ivecs" -threads 1 \
    > "$e/qeval_${v}_M${m}K${k}.txt" 2>&1 || return 1
  nice -n 19 $PY scripts/study/ablation_metrics.py --eval "$e/qeval_${v}_M${m}K${k}.txt" --codebook "$cb" \
    --base "$e/database.fvecs" --train-log "$dir/train.log" --row "$proto,$arm,$tag,$seed,$m,$k,$v"
}

# Adds the dbfit rows to finished runs measured before that variant existed (safe next to running workers:
# a run is touched only once its metrics.csv exists, and metrics.csv is replaced atomically).
backfill_dbfit() {
  local f dir
  for f in "$OUT"/runs/{unseen,standard}/*/s*/metrics.csv; do
    [ -f "$f" ] || continue
    grep -q ',dbfit,' "$f" && continue
    dir=$(dirname "$f")
    local t0=$SECONDS tmp=$dir/metrics.backfill
    cp "$f" "$tmp"
    while IFS=, read -r proto arm tag seed m k v rest; do
      [ "$v" = refit ] || continue
      local tt=$(echo "$rest" | awk -F, '{print $(NF-1)}') te=$(echo "$rest" | awk -F, '{print $NF}')
      local row
      row=$(eval_variant "$dir" "$proto" "$arm" "$seed" "$tag" "$m" "$k" dbfit) \
        || { log "FAILED dbfit backfill $dir"; rm -f "$tmp"; continue 2; }
      echo "$row,$tt,$te" >> "$tmp"
    done < "$f"
    mv "$tmp" "$f"
    log "dbfit backfill $dir ($((SECONDS - t0)) s)"
  done
}

evaluate() { # DIR PROTO ARM SEED TAG M K   (M K of the trained layer; empty for plain)
  local dir=$1 proto=$2 arm=$3 seed=$4 tag=$5 M=$6 K=$7 e=$1/eval
  mkdir -p "$e"
  local ck=$dir/net.ckpt
  for split in database valid train; do
    # the refit PQ is fitted on training embeddings: the whole training split on the tuning protocol; on the
    # main protocols a seeded sample of 10000 training images (the .data holdout drawn from the seen classes,
    # embedded as its valid split), the same images for every arm of a seed, and a third of the cost
    local data=$dir/run.data sp=$split
    if [ "$split" = train ] && [ "$proto" != val ]; then
      data=$e/fit.data; sp=valid
      local per=2000; [ "$proto" = standard ] && per=1000
      { grep -v '^valid\|^eval_classes\|^backup' "$dir/run.data"; echo "holdout=$per"; echo "holdout_seed=$seed"
        case $proto in unseen) echo "eval_classes=0-4" ;; esac; echo "backup=$dir"; } > "$data"
    fi
    [ -f "$e/$split.fvecs" ] || nice -n 19 "$BIN" gsl embed "$data" "$dir/net.cfg" "$ck" -out "$e/$split.tmp" \
        -split "$sp" > "$e/embed_$split.log" 2>&1 || return 1
    [ -f "$e/$split.fvecs" ] || { mv "$e/$split.tmp.fvecs" "$e/$split.fvecs" && mv "$e/$split.tmp.labels.ivecs" "$e/$split.labels.ivecs"; }
  done
  local rows=$e/rows.csv; : > "$rows"
  local list
  if [ "$arm" = plain ]; then list=$(settings_of "$proto"); else list="$M,$K"; fi
  for mk in $list; do
    local m=${mk%,*} k=${mk#*,}
    # main protocols: every arm with the refit PQ (chosen on the tuning protocol, where the checkpoint's codebook,
    # built at the start of the last epoch, was stale: a higher MSE share for every arm, a lower PQ mAP for 7 of 9)
    # dbfit: a PQ fitted on the database embeddings themselves (no labels; how a Faiss index is trained)
    local variants="refit dbfit"
    [ "$proto" = val ] && variants="refit" && [ "$arm" != plain ] && variants="ckpt refit"
    for v in $variants; do
      eval_variant "$dir" "$proto" "$arm" "$seed" "$tag" "$m" "$k" "$v" >> "$rows" || return 1
    done
  done
}

arm_run() { # PROTO ARM M K P SEED
  local proto=$1 arm=$2 M=$3 K=$4 P=$5 seed=$6
  local tag=$arm; [ "$arm" != plain ] && tag="$arm-M${M}K${K}-p${P/\//_}"
  local dir=$OUT/runs/$proto/$tag/s$seed
  [ -f "$dir/metrics.csv" ] && return 0
  local pre=$OUT/runs/$proto/pre/s$seed
  while [ ! -f "$pre/done" ]; do [ -f "$pre/failed" ] && return 1; sleep 5; done
  mkdir -p "$dir"; mkdata "$proto" "$dir"; mkcfg "$dir/net.cfg" "$proto" "$arm" "$M" "$K" "$P" "$FT"
  local t0=$SECONDS
  if [ ! -f "$dir/trained" ]; then
    rm -f "$dir"/net_e* "$dir"/net.ckpt "$dir"/net.csv
    local start=("$pre/pre.weights"); [ "$PRE" = 0 ] && start=()
    nice -n 19 "$BIN" gsl train "$dir/run.data" "$dir/net.cfg" "${start[@]}" -seed "$seed" -epochs "$FT" -threads 1 \
      > "$dir/train.log" 2>&1 || { log "FAILED train $proto $tag s$seed (see $dir/train.log)"; return 1; }
    echo $((SECONDS - t0)) > "$dir/trained"
  fi
  local t1=$SECONDS
  evaluate "$dir" "$proto" "$arm" "$seed" "$tag" "$M" "$K" || { log "FAILED eval $proto $tag s$seed (see $dir/eval)"; return 1; }
  awk -v tt="$(cat "$dir/trained")" -v te=$((SECONDS - t1)) '{print $0 "," tt "," te}' "$dir/eval/rows.csv" > "$dir/metrics.tmp" \
    && mv "$dir/metrics.tmp" "$dir/metrics.csv"
  log "run $proto $tag s$seed done (train $(cat "$dir/trained") s, eval $((SECONDS - t1)) s)"
}

# ------------------------------------------------------------------------------------------------ job lists
TUNE_GRID=(
  "quantloss 0.1" "quantloss 1" "quantloss 10"
  "rotate 0.5" "rotate 1"
  "project 0.5" "project 1"
  "lookahead 0.1" "lookahead 1"
)
tune_jobs() {
  for s in $TUNE_SEEDS; do echo "pre val $s"; done
  for s in $TUNE_SEEDS; do
    echo "run val plain 0 0 0 $s"
    for g in "${TUNE_GRID[@]}"; do set -- $g; echo "run val $1 1 16 $2 $s"; done
  done
}
chosen() { # ARM -> the parameter chosen on the validation split (written by the analysis of the tuning runs)
  local f=$OUT/tuned.txt
  [ -f "$f" ] || { echo "no $f: run '$0 tune' first" >&2; exit 1; }
  awk -v a="$1" '$1 == a {print $2}' "$f"
}
main_jobs() {
  local q r p l h
  q=$(chosen quantloss); r=$(chosen rotate); p=$(chosen project); l=$(chosen lookahead); h=$(chosen hybrid)
  for s in $SEEDS; do echo "pre unseen $s"; done
  # the deciding settings first (4 bits, 8 bits with K=256), seed by seed, so a stopped study is balanced
  for s in $SEEDS; do
    echo "run unseen plain 0 0 0 $s"
    for mk in "1 16" "1 256"; do
      for a in "quantloss $q" "rotate $r" "project $p" "lookahead $l"; do set -- $a; echo "run unseen $1 $mk $2 $s"; done
    done
  done
  for s in $SEEDS; do for a in "quantloss $q" "rotate $r" "project $p" "lookahead $l"; do set -- $a; echo "run unseen $1 2 16 $2 $s"; done; done
  for s in $SEEDS; do [ -n "$h" ] && for mk in "1 16" "1 256"; do echo "run unseen hybrid $mk $h $s"; done; done
  for s in $EXTRA_SEEDS; do for a in "quantloss $q" "rotate $r" "project $p" "lookahead $l"; do set -- $a; echo "run unseen $1 2 256 $2 $s"; done; done
  for s in $EXTRA_SEEDS; do
    echo "pre standard $s"; echo "run standard plain 0 0 0 $s"
    for a in "quantloss $q" "rotate $r" "project $p" "lookahead $l"; do set -- $a; echo "run standard $1 4 256 $2 $s"; done
  done
}

# Arm 6b, after the main study: project with alpha = GENTLE_ALPHA (0.1), the deciding settings, every seed. Why: in
# the main study every rule that moved the embedding lost float mAP about as fast as it closed the gap, and the least
# intrusive rule (lookahead, alpha 0.1) lost least; a small alpha asks whether the trade can turn positive.
gentle_jobs() {
  local a=${ABL_GENTLE_ALPHA:-0.1}
  for s in $SEEDS; do echo "pre unseen $s"; done
  for s in $SEEDS; do for mk in "1 16" "1 256"; do echo "run unseen gentle $mk $a $s"; done; done
}

# Validation of a smaller alpha for the default [snap] (project) on the tuning protocol, 3 seeds: plain, the tuned
# alpha and ABL_GENTLE_ALPHA, paired by seed (session 2, after arm 6b did well on the test protocol).
validate_jobs() {
  local a=${ABL_GENTLE_ALPHA:-0.1} p
  p=$(chosen project)
  for s in ${ABL_VALIDATE_SEEDS:-1 2 3}; do echo "pre val $s"; done
  for s in ${ABL_VALIDATE_SEEDS:-1 2 3}; do
    echo "run val plain 0 0 0 $s"; echo "run val project 1 16 $p $s"; echo "run val project 1 16 $a $s"
  done
}

# The whole-training study's arms (parameters from the short study's tuning, ABL_TUNED="quantloss rotate lookahead").
whole_jobs() {
  local t=(${ABL_TUNED:-0.1 0.5 0.1})
  for s in $SEEDS; do echo "pre unseen $s"; done
  for s in $SEEDS; do
    echo "run unseen plain 0 0 0 $s"
    for mk in "1 16" "1 256"; do
      for a in "quantloss ${t[0]}" "rotate ${t[1]}" "gentle 0.1" "lookahead ${t[2]}"; do
        set -- $a; echo "run unseen $1 $mk $2 $s"
      done
    done
  done
}

# The schedule of the whole-training study, chosen on the validation protocol: a plain network's monitor mAP per epoch.
schedule() {
  local dir=$OUT/schedule max=${ABL_SCHEDULE_MAX:-40}
  if [ -s "$OUT/schedule.txt" ]; then cat "$OUT/schedule.txt"; return 0; fi
  mkdir -p "$dir" && mkdata val "$dir" && mkcfg "$dir/net.cfg" val plain 1 16 0 "$max" || return 1
  sed -i 's/^eval_queries=.*/eval_queries=1000/' "$dir/net.cfg"
  local ck=() ; [ -f "$dir/net.ckpt" ] && ck=("$dir/net.ckpt")
  WID=0 log "start schedule: plain network, validation protocol, $max epochs"
  nice -n 19 "$BIN" gsl train "$dir/run.data" "$dir/net.cfg" "${ck[@]}" -seed 1 -epochs "$max" -threads 1 \
    >> "$dir/train.log" 2>&1 || { WID=0 log "FAILED schedule (see $dir/train.log)"; return 1; }
  # columns of net.csv: epoch, ..., mAP float (8th)
  awk -F, 'NR > 1 && $8 != "nan" { e[++n] = $1; m[n] = $8; if ($8 > best) best = $8 }
           END { for (i = 1; i <= n; i++) if (m[i] >= best - 0.002) { printf "epochs %d\nbest_map %.4f\nmap_at_epochs %.4f\n", e[i], best, m[i]; exit } }' \
    "$dir/net.csv" > "$OUT/schedule.tmp" && [ -s "$OUT/schedule.tmp" ] && mv "$OUT/schedule.tmp" "$OUT/schedule.txt" ||
    { echo "schedule: no mAP in $dir/net.csv" >&2; return 1; }
  WID=0 log "end schedule: $(tr '\n' ' ' < "$OUT/schedule.txt")"
  cat "$OUT/schedule.txt"
}

worker() { # WID JOBFILE: claims jobs in order (mkdir is atomic) and runs them
  WID=$1
  local jf=$2 i=0 job
  while IFS= read -r job; do
    i=$((i + 1))
    mkdir "$CLAIMS/$i" 2>/dev/null || continue
    local f=($job)
    case ${f[0]} in
      pre) pretrain "${f[1]}" "${f[2]}" ;;
      run) arm_run "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[6]}" ;;
    esac
  done < "$jf"
}

run_jobs() { # NAME (jobs on stdin); each job list has its own claims, so two lists can run side by side
  local jf=$OUT/jobs_$1.txt
  CLAIMS=$OUT/claims_$1
  cat > "$jf"
  rm -rf "$CLAIMS"; mkdir -p "$CLAIMS"
  log "start $1: $(wc -l < "$jf") jobs, $WORKERS workers, binary $BIN, PRE=$PRE FT=$FT"
  local pids=()
  for w in $(seq 1 "$WORKERS"); do worker "$w" "$jf" & pids+=($!); done
  wait "${pids[@]}"
  WID=0 log "end $1"
}

headline() {
  local cfg=${ABL_HEADLINE_CFG:-cfg/fashion_gsl_3conv.cfg} bin=${ABL_HEADLINE_BIN:-bin/darknet} dir=$OUT/headline
  local name; name=$(basename "$cfg" .cfg)
  if [ -s "$dir/$name.txt" ]; then
    echo "headline: $cfg already evaluated ($dir/$name.txt; delete it to train again):"; cat "$dir/$name.txt"; return 0
  fi
  [ -f "$cfg" ] || { echo "headline: $cfg not found (ABL_HEADLINE_CFG)" >&2; return 1; }
  if [ ! -x "$bin" ]; then
    { [ "$bin" = bin/darknet ] && make bin/darknet; } || { echo "headline: $bin not found (ABL_HEADLINE_BIN)" >&2; return 1; }
  fi
  mkdir -p "$dir" && mkdata standard "$dir" || return 1
  WID=0 log "start headline: $cfg, binary $bin"
  RESUME=1 DARKNET=$bin CFG=$cfg DATA=$dir/run.data scripts/demo.sh | tee "$dir/$name.out"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { WID=0 log "headline: scripts/demo.sh exit $rc"; echo "headline: scripts/demo.sh exit $rc" >&2; return 1; }
  grep -E '^(features|float|PQ codes) ' "$dir/$name.out" > "$dir/$name.txt.tmp" && mv "$dir/$name.txt.tmp" "$dir/$name.txt" ||
    { echo "headline: no evaluation table in $dir/$name.out" >&2; return 1; }
  WID=0 log "end headline: $(grep '^PQ codes' "$dir/$name.txt")"
}

case $cmd in
  tune) tune_jobs | run_jobs tune; nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" --tune ;;
  main) [ -s "$OUT/tuned.txt" ] || { echo "no $OUT/tuned.txt: run '$0 tune' first" >&2; exit 1; }
        main_jobs | run_jobs main; nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" ;;
  gentle) gentle_jobs | run_jobs gentle; nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" ;;
  validate) validate_jobs | run_jobs validate ;;
  headline) headline ;;
  schedule) schedule ;;
  whole) [ -s "$OUT/schedule.txt" ] || { echo "no $OUT/schedule.txt: run '$0 schedule' first" >&2; exit 1; }
         whole_jobs | run_jobs whole
         nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" --results "${ABL_RESULTS:-docs/results/whole}" ;;
  all) "$0" tune -j "$WORKERS" && "$0" main -j "$WORKERS" && "$0" gentle -j "$WORKERS" && "$0" headline ;;
  analyze) nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" --tune "${EXTRA[@]}" > /dev/null &&
           nice -n 19 $PY scripts/study/ablation_analyze.py --out "$OUT" "${EXTRA[@]}" ;;
  dbfit) backfill_dbfit ;;
  status) tail -n 20 "$OUT/progress.log"; ls "$OUT"/runs/*/*/s*/metrics.csv 2>/dev/null | wc -l ;;
  *) echo "usage: scripts/study/ablation.sh [tune|main|gentle|validate|headline|all|analyze|status|dbfit|schedule|whole] [-j WORKERS]" >&2; exit 2 ;;
esac
