#!/usr/bin/env bash
# What a diverging run, a second trainer, a preemption, a damaged or hand-made checkpoint, a hostile cfg and hostile
# files can do (docs/training.md, "What can happen to a run"): training stops at the first non-finite step and
# commits nothing of it; one trainer per backup folder; a signal checkpoints the position and the resumed run is the
# uninterrupted one; the manifest records a CRC-32 of every file and loading verifies them and reads it strictly;
# non-finite weights are never loaded or embedded; a cfg upstream's parser would abort on is refused first.
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/reliability")
rm -rf "$tmp" && mkdir -p "$tmp/data"
export OPENBLAS_NUM_THREADS=1
. "$here/lib.sh"
"$py" "$here/e2e/make_subset.py" "$tmp/data" 200 50 || { echo "RESULT 0 passed, 1 failed"; exit 1; }
cd "$tmp"
mkdata() { # NAME BACKUP
  printf 'classes=10\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\nbackup=%s\n' "$tmp/data/train-images.gz" \
    "$tmp/data/train-labels.gz" "$tmp/data/test-images.gz" "$tmp/data/test-labels.gz" "$tmp/$2" > "$1.data"
}
cfg=$here/e2e/small.cfg
sed 's/^learning_rate=.*/learning_rate=1000000/' "$cfg" > boom.cfg
# the same network without a codebook layer
awk '/^\[snap\]/{skip=1; next} /^\[/{skip=0} !skip' "$cfg" > plain.cfg
sed 's/^learning_rate=.*/learning_rate=1000000/' plain.cfg > plainboom.cfg
mkdata a A; mkdata p P; mkdata q Q

# ---- a good run of 2 epochs, then a diverging resume: stopped at once, the manifest keeps naming epoch 2
"$bin" gsl train a.data "$cfg" -epochs 2 > A.log 2>&1
check good_run '[ -f A/small.ckpt ] && grep -q "^epoch 2$" A/small.ckpt' "$(tail -2 A.log)"
cp A/small.ckpt good.ckpt
"$bin" gsl train a.data boom.cfg A/small.ckpt -epochs 3 > boom.log 2>&1; rc=$?
check divergence_stops '[ $rc = 1 ] && grep -qE "training diverged at epoch 3, step [0-9]+ of 40" boom.log' \
  "exit $rc: $(tail -2 boom.log)"
check divergence_commits_nothing 'cmp -s A/small.ckpt good.ckpt && [ ! -e A/small_e0003.weights ] && ! ls A/*.tmp* >/dev/null 2>&1' \
  "$(cat A/small.ckpt; ls A)"
expect divergence_leaves_loadable_checkpoint 0 "^PQ codes" "$bin" gsl eval a.data "$cfg" A/small.ckpt
# from scratch, with and without a codebook layer: no checkpoint at all, exit 1
"$bin" gsl train p.data boom.cfg > P.log 2>&1; rc=$?
check divergence_first_epoch '[ $rc = 1 ] && grep -q "training diverged at epoch 1" P.log && [ ! -e P/small.ckpt ]' \
  "exit $rc: $(tail -2 P.log); $(ls P 2>/dev/null)"
"$bin" gsl train q.data plainboom.cfg > Q.log 2>&1; rc=$?
check divergence_without_codebook '[ $rc = 1 ] && grep -q "training diverged at epoch 1" Q.log && [ ! -e Q/plainboom.ckpt ]' \
  "exit $rc: $(tail -2 Q.log); $(ls Q 2>/dev/null)"

# ---- one trainer per backup folder: a second one fails at once naming the folder and the holder; a lock left by a
# killed trainer does not block the next
mkdata l L
"$bin" gsl train l.data "$cfg" -epochs 1000 > L1.log 2>&1 &
holder=$!
for i in $(seq 50); do grep -q "^epoch 1/" L1.log 2>/dev/null && break; sleep 0.2; done
start=$(date +%s)
"$bin" gsl train l.data "$cfg" -epochs 2 > L2.log 2>&1; rc=$?
check second_trainer_refused "[ \$rc = 1 ] && grep -q \"$tmp/L: another training run is using this backup folder (pid $holder on \" L2.log" \
  "exit $rc: $(tail -1 L2.log)"
check second_trainer_fails_at_once '[ $(( $(date +%s) - start )) -le 5 ]' "took $(( $(date +%s) - start )) s"
kill -9 $holder; wait $holder 2>/dev/null
"$bin" gsl train l.data "$cfg" -epochs 1 -restart > L3.log 2>&1; rc=$? # -restart: L1 may have committed epoch 1
check stale_lock_does_not_block '[ $rc = 0 ]' "exit $rc: $(tail -1 L3.log)"

# ---- preemption: SIGTERM mid-epoch checkpoints where it is and exits 75; the resumed run ends at the weights, codebooks
# and CSV rows of the uninterrupted one (U: 3 epochs without a break)
mkdata u U
"$bin" gsl train u.data "$cfg" -epochs 3 > U.log 2>&1
mkdata s S
"$bin" gsl train s.data "$cfg" -epochs 1 > S1.log 2>&1
GSL_FAULT_SIGNAL=2:3 "$bin" gsl train s.data "$cfg" S/small.ckpt -epochs 3 > S2.log 2>&1; rc=$?
check preempt_exit_75 '[ $rc = 75 ] && grep -q "stopped by signal 15 at epoch 2, step 3: checkpoint .*S/small.ckpt written" S2.log' \
  "exit $rc: $(tail -2 S2.log)"
check preempt_checkpoint_position 'grep -qE "^position 3 [-+0-9a-fx.p]+ [0-9a-f]{16} [0-9]+$" S/small.ckpt && grep -q "^epoch 1$" S/small.ckpt' \
  "$(cat S/small.ckpt)"
check preempt_files_named_by_step '[ -f S/small_e0001_s000003.weights ] && [ -f S/small_e0001.weights ]' "$(ls S)"
expect preempt_checkpoint_evaluates 0 "^PQ codes" "$bin" gsl eval s.data "$cfg" S/small.ckpt
# the position is one within an epoch of 40 steps of 50: another batch size would read it as another place
check preempt_checkpoint_layout 'grep -q "^layout 40 50$" S/small.ckpt' "$(cat S/small.ckpt)"
mkdir -p b25 && sed 's/^batch=50/batch=25/' "$cfg" > b25/small.cfg
cp S/small.ckpt S.ckpt.before
expect preempt_resume_other_batch_refused 1 "taken at step 3 of an epoch of 40 steps of 50 samples, but an epoch here has 80 steps of 25" \
  "$bin" gsl train s.data b25/small.cfg S/small.ckpt -epochs 3
check preempt_resume_other_batch_kept 'cmp -s S/small.ckpt S.ckpt.before' "$(cat S/small.ckpt)"
"$bin" gsl train s.data "$cfg" S/small.ckpt -epochs 3 > S3.log 2>&1; rc=$?
check preempt_resume_runs '[ $rc = 0 ] && grep -q "resuming .*S/small.ckpt at epoch 2, step 3 of 40" S3.log' "exit $rc: $(tail -2 S3.log)"
check preempt_resume_equals_uninterrupted "cmp -s U/small_e0003.weights S/small_e0003.weights && cmp -s U/small_e0003.optim S/small_e0003.optim" "weights or optimizer state differ"
check preempt_resume_codebook_equal 'cmp -s U/small_e0003_cb0.codebook S/small_e0003_cb0.codebook' "codebooks differ"
check preempt_resume_samples_equal 'cmp -s U/small_e0003_cb0.samples.fvecs S/small_e0003_cb0.samples.fvecs' "samples differ"
check preempt_csv_rows '[ "$(tail -n +2 S/small.csv | cut -d, -f1 | tr "\n" " ")" = "1 2 3 " ]' "$(cat S/small.csv)"
check preempt_files_cleaned '[ ! -e S/small_e0001_s000003.weights ]' "$(ls S)"
# the temporaries of a save that was killed (its process gone) are removed when a trainer takes the folder; a live
# process's, and other names, are left
dead=$(sh -c 'echo $$'); : > "S/small_e0009.weights.tmp.$dead"; : > "S/small_e0009.optim.tmp.$$"
: > "S/notours.tmp.$dead"
"$bin" gsl train s.data "$cfg" S/small.ckpt -epochs 3 > S5.log 2>&1
check stale_tmp_swept '[ ! -e "S/small_e0009.weights.tmp.$dead" ] && grep -q "removed 1 temporary an interrupted save left" S5.log' \
  "$(ls S; cat S5.log)"
check live_tmp_kept '[ -e "S/small_e0009.optim.tmp.$$" ] && [ -e "S/notours.tmp.$dead" ]' "$(ls S)"
rm -f "S/small_e0009.optim.tmp.$$" "S/notours.tmp.$dead"
# a loss spike against the epochs before it (read back from the CSV on a resume) is noted; the same run unedited is not
mkdata u2 U2; mkdata u3 U3
cp -r U/. U2/ && cp -r U/. U3/
awk -F, -v OFS=, 'NR > 1 { $2 = "0.001000" } 1' U/small.csv > U2/small.csv
"$bin" gsl train u2.data "$cfg" U2/small.ckpt -epochs 5 > U2.log 2>&1
# (epochs 2 and 3 are read back, epoch 1 is before the codebook layers start: epoch 4 has 2 to compare with, epoch 5 3)
check loss_spike_noted 'grep -qE "note: epoch 5.s loss \([0-9.]+\) is [0-9.]+x the lowest of the 3 epochs before it \(0.0010, epoch [23]\): a loss spike" U2.log && ! grep -q "note: epoch 4" U2.log' \
  "$(cat U2.log)"
"$bin" gsl train u3.data "$cfg" U3/small.ckpt -epochs 5 > U3.log 2>&1; rc=$?
check no_spike_no_note '[ $rc = 0 ] && ! grep -q "loss spike" U3.log' "exit $rc: $(tail -3 U3.log)"
# at the last step of an epoch the epoch is finished and committed first
rm -rf S; "$bin" gsl train s.data "$cfg" -epochs 1 > /dev/null 2>&1
GSL_FAULT_SIGNAL=2:40 "$bin" gsl train s.data "$cfg" S/small.ckpt -epochs 3 > S4.log 2>&1; rc=$?
check preempt_at_epoch_end '[ $rc = 75 ] && grep -q "stopped by signal 15 after epoch 2" S4.log && grep -q "^epoch 2$" S/small.ckpt && ! grep -q "^position" S/small.ckpt' \
  "exit $rc: $(tail -1 S4.log); $(cat S/small.ckpt)"
# a real signal at an arbitrary moment: exit 75 and a checkpoint the run goes on from
mkdata r R
"$bin" gsl train r.data "$cfg" -epochs 1000 > R1.log 2>&1 &
pid=$!
for i in $(seq 50); do grep -q "^epoch 2 done" R1.log 2>/dev/null && break; sleep 0.2; done
kill -TERM $pid; wait $pid; rc=$?
check sigterm_exit_75 '[ $rc = 75 ] && grep -q "stopped by signal 15" R1.log' "exit $rc: $(tail -1 R1.log)"
"$bin" gsl train r.data "$cfg" R/small.ckpt -epochs $(( $(awk '/^epoch /{print $2}' R/small.ckpt) + 2 )) > R2.log 2>&1; rc=$?
check sigterm_resume '[ $rc = 0 ] && grep -q "^resuming" R2.log' "exit $rc: $(tail -1 R2.log)"

# ---- cfg files upstream's parser aborts or crashes on, and [net] keys it reads laxly: an error naming the file,
# line, section and key, exit 1 (never 134 or 139)
: > empty.cfg
printf '# only a comment\n' > comment.cfg
printf '[convolutional]\nfilters=4\n' > nonet.cfg
head -c 3000 "$bin" > binary.cfg
printf 'batch=5\n[net]\n' > keyfirst.cfg
printf '[net]\nbatch=5\n' > netonly.cfg
for c in empty comment nonet binary keyfirst netonly; do
  for cmd in check eval; do
    if [ $cmd = check ]; then "$bin" gsl check $c.cfg > cf.log 2>&1; else "$bin" gsl eval a.data $c.cfg - -M 4 > cf.log 2>&1; fi
    rc=$?
    check "bad_cfg_${c}_$cmd" '[ $rc = 1 ] && grep -q "$c.cfg" cf.log' "exit $rc: $(tail -1 cf.log)"
  done
done
net() { # NAME SED-EXPRESSION PATTERN: a copy of the cfg with [net] edited is refused by check, train and eval
  sed "$2" "$cfg" > "$1.cfg"
  expect "net_${1}_check" 1 "$3" "$bin" gsl check "$1.cfg"
  expect "net_${1}_train" 1 "$3" "$bin" gsl train a.data "$1.cfg" -epochs 1
}
net lr_abc 's/^learning_rate=.*/learning_rate=abc/' "lr_abc.cfg: line [0-9]+: \[net\]: key 'learning_rate': 'abc' is not a number"
net mom_abc 's/^momentum=.*/momentum=abc/' "key 'momentum': 'abc' is not a number"
net typo 's/^learning_rate=/learnin_rate=/' "unknown key 'learnin_rate' \(did you mean 'learning_rate'\?\)"
net empty 's/^decay=.*/decay=/' "\[net\]: key 'decay' has no value"
net repeat 's/^batch=50/batch=50\nbatch=20/' "\[net\] \(line 2\): key 'batch' is given twice"
net comment 's/^momentum=.*/momentum=0.9 # heavy ball/' "key 'momentum': '0.9#heavyball' is not a number"
net policy 's/^policy=.*/policy=cosine/' "key 'policy': 'cosine' is not one of constant"
# a network without a codebook layer and no -M: post-hoc PQ at the default 32-bit codes, said on stderr
"$bin" gsl eval a.data plain.cfg - > pe.log 2> pe.err; rc=$?
check plain_eval_default_pq '[ $rc = 0 ] && grep -q "no codebook in the network: post-hoc PQ with M=4 K=256 (the default" pe.err && grep -q "^PQ codes" pe.log' \
  "exit $rc: $(tail -2 pe.err)"
# a refused run leaves no backup folder behind (refused by the cfg, and by the data after the network is loaded)
mkdata n N
sed 's/^classes=10/classes=7/' n.data > n7.data
"$bin" gsl train n.data lr_abc.cfg -epochs 1 > N1.log 2>&1; rc1=$?
"$bin" gsl train n7.data "$cfg" -epochs 1 > N2.log 2>&1; rc2=$?
sed 's/^batch=50/batch=5000/' "$cfg" > bigbatch.cfg # refused once the run is set up: fewer samples than a step
"$bin" gsl train n.data bigbatch.cfg -epochs 1 > N3.log 2>&1; rc3=$?
check refused_run_leaves_no_folder '[ $rc1 = 1 ] && [ $rc2 = 1 ] && [ $rc3 = 1 ] && grep -q "n7.data" N2.log && grep -q "fewer than one step" N3.log && [ ! -e N ]' \
  "exit $rc1 $rc2 $rc3: $(tail -1 N1.log) / $(tail -1 N2.log) / $(tail -1 N3.log); $(ls -a N 2>&1)"
# a diverged first epoch leaves no folder either; a folder that was there before keeps what it holds
"$bin" gsl train n.data boom.cfg -epochs 1 > N4.log 2>&1; rc4=$?
mkdir -p N && echo mine > N/notes.txt
"$bin" gsl train n.data boom.cfg -epochs 1 > N5.log 2>&1; rc5=$?
check diverged_run_leaves_no_folder '[ $rc4 = 1 ] && [ $rc5 = 1 ] && grep -q "training diverged at epoch 1" N4.log && [ "$(ls N)" = "notes.txt" ]' \
  "exit $rc4 $rc5: $(tail -1 N4.log); $(ls -a N 2>&1)"
rm -rf N
{ printf '\xef\xbb\xbf'; cat "$cfg"; } > bom.cfg
expect cfg_byte_order_mark_refused 1 "bom.cfg: starts with a UTF-8 byte order mark .*save the file without it" "$bin" gsl check bom.cfg
sed 's/$/\r/' "$cfg" > crlf.cfg # upstream's parser aborts on it (an assertion): refused first, with the fix
expect cfg_windows_line_ends_refused 1 "crlf.cfg: line 1 ends with a carriage return .*convert the file" "$bin" gsl check crlf.cfg
sed 's/^mode=.*/mode=/' "$cfg" > snapmode.cfg
expect snap_empty_mode_refused 1 "\[snap\]: key 'mode' has no value" "$bin" gsl check snapmode.cfg

# ---- gsl quant: -k past the number of codes returns them all (no padding); a named pipe as -in is refused
"$bin" gsl embed a.data "$cfg" A/small.ckpt -out emb > /dev/null 2>&1
"$bin" gsl quant train -in emb.fvecs -out q.codebook -M 4 -K 16 > /dev/null 2>&1
"$bin" gsl quant encode -codebook q.codebook -in emb.fvecs -out q.codes > /dev/null 2>&1
"$bin" gsl quant search -codebook q.codebook -codes q.codes -queries emb.fvecs -k 1048576 -out big.ivecs > big.log 2>&1
rc=$?
check quant_search_k_clamped '[ $rc = 0 ] && [ "$(stat -c %s big.ivecs)" = $((500 * (4 + 500 * 4))) ] && grep -q "more than the 500 codes" big.log' \
  "exit $rc, $(stat -c %s big.ivecs 2>/dev/null) bytes: $(tail -1 big.log)"
mkfifo in.fvecs
expect fifo_input_refused 1 "in.fvecs: not a regular file" timeout 20 "$bin" gsl quant train -in in.fvecs -out never.codebook

# ---- outputs: a device, pipe or folder is never replaced (checked before any work), a symbolic link is written
# through, an input is never an output, a failed pair (-out, -dist) leaves the old pair, names up to 255 bytes
if [ -c /dev/null ]; then
  expect output_device_refused 1 "-out: /dev/null is a device" "$bin" gsl quant train -in emb.fvecs -out /dev/null -M 4 -K 16
  check output_device_kept '[ -c /dev/null ]' "$(ls -l /dev/null)"
fi
expect output_pipe_refused 1 "-out: in.fvecs is a named pipe" timeout 20 "$bin" gsl quant train -in emb.fvecs -out in.fvecs -M 4 -K 16
GSL_PROGRESS_S=1e-9 "$bin" gsl encode a.data "$cfg" A/small.ckpt -out nodir/x > nodir.log 2>&1; rc=$?
check output_folder_missing_before_work '[ $rc = 1 ] && grep -q "the folder nodir does not exist" nodir.log && ! grep -q "images/s" nodir.log' \
  "exit $rc: $(tail -2 nodir.log)"
echo old > target.codebook && ln -sf target.codebook link.codebook
"$bin" gsl quant train -in emb.fvecs -out link.codebook -M 4 -K 16 > /dev/null 2>&1; rc=$?
check output_link_written_through '[ $rc = 0 ] && [ -L link.codebook ] && cmp -s q.codebook target.codebook' \
  "exit $rc: $(ls -l link.codebook target.codebook)"
expect output_is_input_refused 2 "-out q.codebook is also -codebook: it would be overwritten" \
  "$bin" gsl quant encode -codebook q.codebook -in emb.fvecs -out q.codebook
expect outputs_same_file_refused 2 "-out same.ivecs is also -dist" \
  "$bin" gsl quant search -codebook q.codebook -codes q.codes -queries emb.fvecs -out same.ivecs -dist same.ivecs
echo old > pair.ivecs && echo old > pair.fvecs
sh -c 'mkdir "pair.fvecs.part$$" && exec "$0" gsl quant search -codebook q.codebook -codes q.codes -queries emb.fvecs \
  -k 5 -out pair.ivecs -dist pair.fvecs' "$bin" > pair.log 2>&1; rc=$?
rmdir pair.fvecs.part* 2>/dev/null
check output_pair_failure_keeps_both '[ $rc = 1 ] && [ "$(cat pair.ivecs)" = old ] && [ "$(cat pair.fvecs)" = old ] &&
  [ -z "$(ls pair.*.part* 2>/dev/null)" ]' "exit $rc: $(tail -1 pair.log); $(ls pair.*)"
long=$(printf 'n%.0s' $(seq 249)).gq # 252 bytes: the name PATH.tmp.PID would pass the filesystem's 255
"$bin" gsl quant train -in emb.fvecs -out "$long" -M 4 -K 16 > long.log 2>&1; rc=$?
check output_long_name '[ $rc = 0 ] && cmp -s q.codebook "$long" && [ -z "$(ls -A | grep -i "gslq.*tmp\|\.tmp\.")" ]' \
  "exit $rc: $(tail -1 long.log)"
expect quant_help_anywhere 0 "^usage: darknet gsl quant" "$bin" gsl quant train -in emb.fvecs -h
expect quant_unknown_command_help 2 "unknown command 'nope'" "$bin" gsl quant nope -h
# eval: a database smaller than the default -R, and ground-truth ids outside the database
head -c $((20 * (4 + 16 * 4))) emb.fvecs > emb20.fvecs
"$bin" gsl quant encode -codebook q.codebook -in emb20.fvecs -out q20.codes > /dev/null 2>&1
expect quant_eval_small_database 0 "1-recall@1" \
  "$bin" gsl quant eval -codebook q.codebook -codes q20.codes -queries emb20.fvecs -base emb20.fvecs
"$py" -c 'import struct,sys; open("badgt.ivecs","wb").write(b"".join(struct.pack("<ii", 1, 99999 if i == 3 else i) for i in range(20)))'
expect quant_eval_gt_ids_checked 1 "badgt.ivecs: id 99999 \(list 3, rank 1\) is not one of the 20 database codes" \
  "$bin" gsl quant eval -codebook q.codebook -codes q20.codes -queries emb20.fvecs -gt badgt.ivecs

# ---- weights files: NaN payload, damaged header, one flipped bit
w=A/small_e0002.weights
"$py" - "$w" nan.weights hdr.weights <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
# the weights proper: the file less the plugin state (a trailer "GSLSTATE" after its length) when it has one
end = len(b) - (struct.unpack("<Q", b[-20:-12])[0] + 20 if b[-8:] == b"GSLSTATE" else 0)
nan = bytearray(b[:end]); nan[20:] = struct.pack("<f", float("nan")) * ((end - 20) // 4)
open(sys.argv[2], "wb").write(nan)
hdr = bytearray(b); hdr[0:4] = struct.pack("<i", 0x41414141)
open(sys.argv[3], "wb").write(hdr)
PY
expect nan_weights_refused_by_eval 1 "nan.weights: [0-9]+ of [0-9]+ weights are not finite" \
  "$bin" gsl eval a.data "$cfg" nan.weights -M 4 -K 16
expect nan_weights_refused_by_embed 1 "not finite" "$bin" gsl embed a.data "$cfg" nan.weights -out nanemb
check nan_embed_writes_nothing '[ ! -e nanemb.fvecs ]' "nanemb.fvecs written"
expect damaged_header_refused 1 "hdr.weights: damaged header" "$bin" gsl eval a.data "$cfg" hdr.weights -M 4 -K 16
cp -a A F
"$py" - F/small_e0002.weights <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)
PY
expect flipped_bit_refused_by_eval 1 "its weights file .*small_e0002.weights does not match the checksum" \
  "$bin" gsl eval a.data "$cfg" F/small.ckpt
expect flipped_bit_refused_by_resume 1 "does not match the checksum" "$bin" gsl train a.data "$cfg" F/small.ckpt -epochs 3

# ---- hand-made manifests: mixed epochs, repeats, junk, out-of-range values; a named pipe
man() { # NAME SED-EXPRESSION: a copy of A's manifest, edited
  sed "$2" A/small.ckpt > "A/$1.ckpt"
}
man mixed 's/small_e0002.weights/small_e0001.weights/'
expect mixed_epochs_refused 1 "names files of another epoch" "$bin" gsl eval a.data "$cfg" A/mixed.ckpt
man repeated '/^seed /p'
expect repeated_key_refused 1 "'seed' is given twice" "$bin" gsl eval a.data "$cfg" A/repeated.ckpt
man junk 's/^epoch 2$/epoch 2 junk/'
expect trailing_junk_refused 1 "unexpected line 'epoch 2 junk'" "$bin" gsl eval a.data "$cfg" A/junk.ckpt
man huge 's/^epoch 2$/epoch 2147483647/'
expect huge_epoch_refused 1 "epoch '2147483647' is not a count of epochs" "$bin" gsl train a.data "$cfg" A/huge.ckpt
man layer 's/^codebook 6 /codebook 9999 /'
expect foreign_layer_refused 1 "codebook 0 is for layer 9999, but the network's codebook layer is 6" \
  "$bin" gsl train a.data "$cfg" A/layer.ckpt -epochs 3
man badcrc 's/^\(optim [^ ]*\) [0-9a-f]*$/\1 00000000/'
expect wrong_crc_refused 1 "its optimizer file .* does not match the checksum" "$bin" gsl eval a.data "$cfg" A/badcrc.ckpt
mkfifo pipe.ckpt pipe.codebook
expect fifo_manifest_refused 1 "pipe.ckpt: not a regular file" timeout 20 "$bin" gsl eval a.data "$cfg" pipe.ckpt
expect fifo_codebook_refused 1 "pipe.codebook: not a regular file" \
  timeout 20 "$bin" gsl encode a.data "$cfg" A/small.ckpt -codebook pipe.codebook -out fifo
# a manifest of version 1 (before checksums) still loads
"$py" - A/small.ckpt A/v1.ckpt <<'PY'
import sys
out = []
for l in open(sys.argv[1]):
    w = l.split()
    if w[0] == "gsl-checkpoint": out.append("gsl-checkpoint 1")
    elif w[0] in ("run", "network", "layout"): continue
    elif w[0] in ("weights", "optim"): out.append(" ".join(w[:2]))
    elif w[0] in ("codebook", "samples"): out.append(" ".join(w[:3]))
    else: out.append(l.strip())
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
expect version1_manifest_loads 0 "^PQ codes" "$bin" gsl eval a.data "$cfg" A/v1.ckpt
# a manifest of version 2 (CRC-32s, no network line) loads and is verified as such: with its files' CRC-32s it
# evaluates, with one of them wrong it is refused
"$py" - A/small.ckpt A/v2.ckpt A/v2bad.ckpt <<'PY'
import os, sys, zlib
d = os.path.dirname(sys.argv[1])
good, bad = [], []
for l in open(sys.argv[1]):
    w = l.split()
    if w[0] == "gsl-checkpoint": w = ["gsl-checkpoint", "2"]
    elif w[0] in ("network", "layout"): continue
    elif w[0] in ("weights", "optim") or (w[0] in ("codebook", "samples") and w[2] != "-"):
        w[-1] = "%08x" % zlib.crc32(open(os.path.join(d, w[-2]), "rb").read())
    good.append(" ".join(w))
    bad.append(" ".join(w[:-1] + ["00000000"]) if w[0] == "weights" else " ".join(w))
open(sys.argv[2], "w").write("\n".join(good) + "\n")
open(sys.argv[3], "w").write("\n".join(bad) + "\n")
PY
expect version2_manifest_loads 0 "^PQ codes" "$bin" gsl eval a.data "$cfg" A/v2.ckpt
expect version2_manifest_verified 1 "v2bad.ckpt: its weights file .* does not match the checksum" \
  "$bin" gsl eval a.data "$cfg" A/v2bad.ckpt
result
