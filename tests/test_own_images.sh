#!/usr/bin/env bash
# A user's own images, end to end: a folder of PNG and JPEG files of mixed sizes (some colour, some grey, one
# corrupt, one truncated) made from Fashion-MNIST records, a labelled training list and unlabelled database and query
# lists. Train (2 epochs, streamed and resized) -> export (flat and IVF, with .items) -> search by image ->
# scripts/query_index.py with Faiss; ids map to the right paths (a query image that is also in the database finds
# itself first), and the unreadable images give their documented errors (or are skipped with unreadable=skip).
# Env: DARKNET_BIN, DARKNET_MPI_BIN (the MPI build, for the 2-rank check), PYTHON (a python3 with faiss, numpy, PIL).
set -u
bin=$(realpath "${DARKNET_BIN:?DARKNET_BIN is not set}")
mbin=${DARKNET_MPI_BIN:-}
[ -n "$mbin" ] && mbin=$(realpath "$mbin")
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/own_images")
rm -rf "$tmp" && mkdir -p "$tmp"
export OPENBLAS_NUM_THREADS=1
. "$here/lib.sh"
cfg=$here/e2e/small.cfg
made=$(cd "$here/e2e" && "$py" make_photos.py "$tmp/ph" 30 200 20) || { echo "RESULT 0 passed, 1 failed"; exit 1; }
corrupt_line=$(awk '/^corrupt/{print $2}' <<<"$made")
cd "$tmp/ph"
printf 'classes=10\ntrain=train.list\nlabels=labels.txt\ndatabase=db.list\nvalid=query.list\nbackup=B\n' > own.data

# ---- training on the labelled list: images of five sizes, grey and colour, resized to the network's 28x28x1
"$bin" gsl train own.data "$cfg" -epochs 2 > train.log 2>&1; rc=$?
check train_on_own_images '[ $rc = 0 ] && grep -q "^epoch 2 done" train.log && [ -s B/small.ckpt ]' \
  "exit $rc: $(tail -2 train.log)"

# the README's recipe with the per-epoch monitor on (eval_queries > 0): unlabelled queries and database turn the
# monitor off with a note naming an unlabelled image, and the run goes on
sed 's/^eval_queries=.*/eval_queries=20/' "$cfg" > mon.cfg
sed 's|^backup=.*|backup=Bmon|' own.data > mon.data
"$bin" gsl train mon.data mon.cfg -epochs 1 > mon.log 2>&1; rc=$?
check unlabelled_monitor_off '[ $rc = 0 ] && grep -q "no per-epoch mAP: the queries.* split (query.list) has no labels" mon.log && grep -q "^epoch 1 done" mon.log && ! grep -q "^epoch 1 done.*mAP" mon.log' \
  "exit $rc: $(grep -E "mAP|error" mon.log | tail -2)"
# a split labelled in part is a mistake (a typo, a path naming two classes), not an unlabelled split: refused
{ cat query.list; head -1 train.list; } > partial.list
sed 's|^valid=.*|valid=partial.list|; s|^backup=.*|backup=Bpart|' own.data > part.data
expect partly_labelled_refused 1 "partial.list:1: path '.*' matches no label" "$bin" gsl train part.data mon.cfg -epochs 1
# the .data file's own mistakes, named by key and file: a folder as the list, a class name given twice, a class with no
# images where the batches draw classes_per_batch classes
mkdir -p afolder
sed 's|^train=.*|train=afolder|' own.data > folder.data
expect folder_as_list_refused 1 "folder.data: key 'train': afolder is a folder, not an image list or IDX file" \
  "$bin" gsl train folder.data mon.cfg -epochs 1
{ head -2 labels.txt; head -1 labels.txt; tail -n +4 labels.txt; } > duplabels.txt
sed 's|^labels=.*|labels=duplabels.txt|' own.data > duplabels.data
expect duplicate_label_refused 1 "duplabels.txt: class 2's name '.*' is also class 0's" \
  "$bin" gsl train duplabels.data mon.cfg -epochs 1
{ head -3 labels.txt; echo; tail -n +4 labels.txt; echo; } > gaplabels.txt
sed 's|^labels=.*|labels=gaplabels.txt|' own.data > gaplabels.data
expect blank_label_line_refused 1 "gaplabels.txt:4: a blank line among the class names" \
  "$bin" gsl train gaplabels.data mon.cfg -epochs 1
grep -v cls7_ train.list > no7.list
sed 's|^train=.*|train=no7.list|; s|^backup=.*|backup=Bno7|' own.data > no7.data
sed 's/^classes_per_batch=.*/classes_per_batch=10/' mon.cfg > p10.cfg
expect empty_class_named 1 "class-balanced batches need P=10 classes \\(classes_per_batch\\), the training data \\(no7.list\\) has images of 9 \\(none of class 7, for one\\)" \
  "$bin" gsl train no7.data p10.cfg -epochs 1
# lines that repeat an earlier line's image are samples of their own, and said so
{ cat train.list; sed -n '3p;5p' train.list; } > dup.list
sed 's|^train=.*|train=dup.list|; s|^backup=.*|backup=Bdup|' own.data > dup.data
expect duplicate_lines_said 0 "note: dup.list names 2 images again that an earlier line names \\(the first at line $(( $(wc -l < train.list) + 1 ))\\)" \
  "$bin" gsl train dup.data "$cfg" -epochs 1
# a missing image in any split stops the run before its first step, naming the list and line (not an epoch later,
# when the per-epoch mAP would first read it)
{ cat query.list; echo "$(dirname "$(head -1 query.list)")/cls3_gone.png"; } > gone.list
sed 's|^valid=.*|valid=gone.list|; s|^backup=.*|backup=Bgone|' own.data > gone.data
expect missing_image_before_training 1 "gone.list:$(wc -l < gone.list): cannot read image .*cls3_gone.png: No such file or directory" \
  "$bin" gsl train gone.data mon.cfg -epochs 1
check missing_image_no_epoch '! grep -q "^epoch 1" <<<"$out" && [ ! -e Bgone/mon.ckpt ]' "$(tail -3 <<<"$out")"

# ---- unreadable images: the error names the list, the line and the file; nothing is committed. Shuffled epochs
# (no class-balanced batches) of 300 images in batches of 50 visit every line once.
sed '/^classes_per_batch/d' "$cfg" > plain.cfg
sed 's|^train=.*|train=train_bad.list|; s|^backup=.*|backup=Bbad|' own.data > bad.data
expect unreadable_image_error 1 "train_bad.list:[0-9]+: cannot read image .*(cls1_corrupt.jpg: not an image|cls2_truncated.png: truncated PNG)" \
  "$bin" gsl train bad.data plain.cfg -epochs 1
check unreadable_nothing_committed '[ ! -e Bbad/small.ckpt ] && [ ! -e Bbad/plain.ckpt ]' "$(ls Bbad)"
# every line of the valid split is embedded: the first bad one, the corrupt file, stops it with its line
sed 's|^valid=.*|valid=train_bad.list|' bad.data > badv.data
expect corrupt_image_error 1 "train_bad.list:$corrupt_line: cannot read image .*cls1_corrupt.jpg: not an image" \
  "$bin" gsl embed badv.data "$cfg" B/small.ckpt -out bad
check corrupt_nothing_written '[ ! -e bad.fvecs ] && [ ! -e bad.items ]' "$(ls bad.* 2>&1)"
grep -v corrupt train_bad.list > train_trunc.list
sed 's|^valid=.*|valid=train_trunc.list|' own.data > trunc.data
expect truncated_image_error 1 "train_trunc.list:[0-9]+: cannot read image .*cls2_truncated.png: truncated PNG \\(its IDAT chunk runs past the end" \
  "$bin" gsl embed trunc.data "$cfg" B/small.ckpt -out trunc
# a PNG whose compressed pixels were cut but whose chunks are whole (IEND intact): stb_image's inflater never returns
# on it; the check before it says what is wrong
"$py" - cutidat.png <<'P'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
z = zlib.compress(b"".join(b"\0" + bytes(192) for _ in range(64)))  # 64 rows of 64 RGB pixels
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", z[:len(z) // 2]) + chunk(b"IEND", b""))
P
expect cut_pixel_data_error 1 "cutidat.png: truncated PNG \\(its compressed pixel data ends after [0-9]+ of 12352 bytes\\)" \
  timeout 60 "$bin" gsl search own.data "$cfg" B/small.ckpt -query cutidat.png
# unreadable=skip: training goes on and counts them; embed leaves them out of its rows and items
{ cat badv.data; echo unreadable=skip; } | sed 's|^backup=.*|backup=Bskip|' > skip.data
expect unreadable_skipped_in_training 0 "2 unreadable images of train_bad.list skipped \\(unreadable=skip\\)" \
  "$bin" gsl train skip.data plain.cfg -epochs 1
expect unreadable_left_out_of_embed 0 "2 unreadable images of train_bad.list left out" \
  "$bin" gsl embed skip.data "$cfg" B/small.ckpt -out skipped
check skipped_rows_and_items '[ "$(wc -l < skipped.items)" = 298 ] && ! grep -q "corrupt\|truncated" skipped.items &&
  [ "$(stat -c %s skipped.fvecs)" = $((298 * (4 + 16 * 4))) ]' "$(wc -l < skipped.items) items"
# a single unreadable query under unreadable=skip: its reason, on any number of decoding threads
bad_img=$(grep -m1 cls1_corrupt train_bad.list)
for t in 1 4; do
  { cat skip.data; echo loader_threads=$t; } > skip$t.data
  expect "skip_single_query_reason_threads$t" 1 "cannot read image .*cls1_corrupt.jpg: not an image" \
    "$bin" gsl search skip$t.data "$cfg" B/small.ckpt -query "$bad_img"
done
# an empty list is named as such
: > empty.list
sed 's|^database=.*|database=empty.list|' own.data > emptydb.data
expect empty_list_named 1 "emptydb.data: key 'database': empty.list holds no samples" \
  "$bin" gsl encode emptydb.data "$cfg" B/small.ckpt -split database -out never
# encode embeds and encodes batch by batch (no n x dim buffer): its codes are those of gsl quant encode on embed's
# rows with the same codebook, the unreadable images left out of both, raw and L2-normalised
cb=B/$(awk '/^codebook /{print $3}' B/small.ckpt)
"$bin" gsl embed skip.data "$cfg" B/small.ckpt -normalize -out skippedn > /dev/null 2>&1
for v in raw norm; do
  flag=; fv=skipped.fvecs; [ $v = norm ] && { flag=-normalize; fv=skippedn.fvecs; }
  "$bin" gsl encode skip.data "$cfg" B/small.ckpt -codebook "$cb" $flag -out enc_$v > enc_$v.log 2>&1; rc1=$?
  "$bin" gsl quant encode -codebook "$cb" -in $fv -out ref_$v.codes > ref_$v.log 2>&1; rc2=$?
  # the codes themselves: after the 40-byte header (encode's tag differs), before the 4-byte checksum
  sz=$(stat -c %s ref_$v.codes)
  check "encode_streamed_equals_reference_$v" '[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$(stat -c %s enc_$v.codes)" = $sz ] &&
    cmp -s -i 40 -n $((sz - 44)) enc_$v.codes ref_$v.codes &&
    cmp -s enc_$v.items skipped.items && grep -q "2 unreadable images of train_bad.list left out" enc_$v.log' \
    "exit $rc1 $rc2: $(tail -1 enc_$v.log) $(tail -1 ref_$v.log); $(cmp enc_$v.codes ref_$v.codes 2>&1)"
done

# ---- export: a flat IndexPQ and an IndexIVFPQ of the unlabelled database, each with its .items
"$bin" gsl export own.data "$cfg" B/small.ckpt -out flat.faiss > x1.log 2>&1; rc1=$?
"$bin" gsl export own.data "$cfg" B/small.ckpt -out ivf.faiss -ivf 8 > x2.log 2>&1; rc2=$?
check export_flat_and_ivf '[ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s flat.faiss.items db.list && cmp -s ivf.faiss.items db.list' \
  "exit $rc1 $rc2: $(tail -1 x1.log) $(tail -1 x2.log)"

# ---- search by image: a list of queries, and one image
"$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -k 5 > hits.tsv 2> search.log; rc=$?
check search_by_list '[ $rc = 0 ] && [ "$(wc -l < hits.tsv)" = 100 ] && [ "$(cut -f1 hits.tsv | sort -u | wc -l)" = 20 ]' \
  "exit $rc: $(tail -2 search.log)"
# the 10 queries that are also database images find themselves first (or tied with the first, same code)
self=$(awk -F'\t' 'NR == FNR { indb[$1] = 1; next }
                   $2 == 1 { best[$1] = $3 }
                   $1 == $4 && $3 == best[$1] { found[$1] = 1 }
                   END { n = 0; for (q in indb) if (q in found) n++; print n }' <(head -10 query.list) hits.tsv)
check query_in_database_finds_itself '[ "$self" = 10 ]' "$self of 10"
one=$(sed -n 15p query.list)
"$bin" gsl search own.data "$cfg" B/small.ckpt -query "$one" -k 3 > one.tsv 2>/dev/null; rc=$?
check search_by_one_image '[ $rc = 0 ] && [ "$(cut -f1 one.tsv | sort -u)" = "$one" ] && [ "$(wc -l < one.tsv)" = 3 ] &&
  diff <(cut -f2- one.tsv) <(awk -F"\t" -v q="$one" "\$1 == q && \$2 <= 3" hits.tsv | cut -f2-) >/dev/null' \
  "exit $rc: $(cat one.tsv)"

# ---- search against the database's codes from gsl encode (only the queries embedded): the same hits; codes of another
# codebook, or without their items, are refused
"$bin" gsl encode own.data "$cfg" B/small.ckpt -split database -out dbenc > enc.log 2>&1; rc1=$?
GSL_PROGRESS_S=1e-9 "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes dbenc.codes -k 5 \
  > hits_codes.tsv 2> sc.log; rc2=$?
check search_codes_same_hits '[ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s hits.tsv hits_codes.tsv && grep -q "embedding the queries: 20 of 20" sc.log && ! grep -q "embedding the database" sc.log' \
  "exit $rc1 $rc2: $(tail -1 enc.log) $(tail -1 sc.log); $(diff hits.tsv hits_codes.tsv | head -3)"
# the same shape as the checkpoint's codebook (4 x 16), other centroids (post hoc): the fingerprint tells them apart
"$bin" gsl encode own.data "$cfg" B/small.ckpt -split database -M 4 -K 16 -out other > /dev/null 2>&1
expect search_codes_other_codebook 1 "-codes other.codes: .*fingerprint.*encode the database with the codebook this search uses" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes other.codes
expect search_codes_need_query 2 "-codes searches the codes of gsl encode for -query's images" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -codes dbenc.codes -out never
head -5 dbenc.items > short.items && cp dbenc.codes short.codes
expect search_codes_items_count 1 "short.items is not the items file short.codes was encoded with" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes short.codes
# X.codes records how it was made: codes of L2-normalised embeddings are searched with -normalize only, and the same
# number of items in another order is not its items file
"$bin" gsl encode own.data "$cfg" B/small.ckpt -split database -codebook "$cb" -normalize -out dbn > /dev/null 2>&1
expect search_codes_normalize_mismatch 1 "-codes dbn.codes: the codes are of L2-normalised embeddings \(gsl encode -normalize\): search with -normalize" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes dbn.codes -codebook "$cb"
expect search_codes_normalize_match 0 "20 queries against 200 database codes" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes dbn.codes -codebook "$cb" -normalize
cp dbenc.codes rev.codes && tac dbenc.items > rev.items
expect search_codes_items_reordered 1 "rev.items is not the items file rev.codes was encoded with" \
  "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes rev.codes
# codes without that record (gsl quant encode) are searched with a note
"$bin" gsl embed own.data "$cfg" B/small.ckpt -split database -out dbemb > /dev/null 2>&1
"$bin" gsl quant encode -codebook "$cb" -in dbemb.fvecs -out qenc.codes > /dev/null 2>&1 && cp dbemb.items qenc.items
GSL_PROGRESS_S=1e-9 "$bin" gsl search own.data "$cfg" B/small.ckpt -query query.list -codes qenc.codes -codebook "$cb" -k 5 \
  > hits_q.tsv 2> sq.log; rc=$?
check search_untagged_codes_noted '[ $rc = 0 ] && grep -q "qenc.codes does not record how it was made" sq.log && cmp -s hits_q.tsv hits_codes.tsv' \
  "exit $rc: $(tail -2 sq.log)"
# a run that fails while writing its files leaves the earlier run's set as it was, and none of its staged files
# (here X.codes, written last, cannot be staged: a folder is in the way of its staging name, X.codes.partPID)
mkdir keep && cp dbenc.codes dbenc.items dbenc.labels.ivecs keep/
tac db.list > rev.list && sed 's|^database=.*|database=rev.list|' own.data > rev.data
expect encode_failure_keeps_set 1 "dbenc.codes.part[0-9]+" sh -c 'mkdir "dbenc.codes.part$$" &&
  exec "$0" gsl encode rev.data "$1" B/small.ckpt -split database -out dbenc' "$bin" "$cfg"
rmdir dbenc.codes.part*
check encode_failure_set_unchanged 'cmp -s keep/dbenc.codes dbenc.codes && cmp -s keep/dbenc.items dbenc.items &&
  cmp -s keep/dbenc.labels.ivecs dbenc.labels.ivecs && [ -z "$(ls dbenc.*.part* 2>/dev/null)" ]' "$(ls dbenc.*)"

# ---- the Python example: embeddings of the queries (gsl embed of the unlabelled valid list), Faiss, the items
GSL_PROGRESS_S=1e-9 "$bin" gsl embed own.data "$cfg" B/small.ckpt -out q > emb.log 2>&1; rc=$?
check embed_unlabelled '[ $rc = 0 ] && cmp -s q.items query.list && [ "$(stat -c %s q.fvecs)" = $((20 * (4 + 16 * 4))) ]' \
  "exit $rc: $(tail -1 emb.log)"
# the progress line (every GSL_PROGRESS_S seconds, 10 by default): the count of images and the rate
check embed_progress_line 'grep -qE ": 20 of 20 images \(100%\), [0-9]+ images/s$" emb.log' "$(cat emb.log)"
expect progress_interval_checked 1 "GSL_PROGRESS_S must be a positive number of seconds, got 'soon'" \
  env GSL_PROGRESS_S=soon "$bin" gsl embed own.data "$cfg" B/small.ckpt -out never
"$py" "$root/scripts/query_index.py" flat.faiss q.fvecs -k 5 > py_flat.tsv 2> py.err; rc1=$?
"$py" "$root/scripts/query_index.py" ivf.faiss q.fvecs -k 5 > py_ivf.tsv 2>> py.err; rc2=$?
# the same hits as gsl search: per query the same distances, and the same items wherever distances do not tie
same() {
  "$py" - "$1" "$2" <<'PY'
import sys
def rows(p):
    out = {}
    for line in open(p):
        q, r, d, item = line.rstrip("\n").split("\t")
        out.setdefault(q, []).append((float(d), item))
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
bad = 0
for q in a:
    da, db = [d for d, _ in a[q]], [d for d, _ in b.get(q, [])]
    if len(da) != len(db) or any(abs(x - y) > 1e-4 * (1 + abs(x)) for x, y in zip(da, db)):
        bad += 1
        continue
    for (d, item), (_, other) in zip(a[q], b[q]):
        tied = sum(abs(d - x) <= 1e-4 * (1 + abs(d)) for x in da) > 1
        bad += item != other and not tied
print("same" if bad == 0 and a.keys() == b.keys() else "%d differ" % bad)
PY
}
r1=$(same hits.tsv py_flat.tsv); r2=$(same hits.tsv py_ivf.tsv)
check python_example_flat '[ $rc1 = 0 ] && [ "$r1" = same ]' "exit $rc1: $r1 $(tail -2 py.err)"
check python_example_ivf_all_lists '[ $rc2 = 0 ] && [ "$r2" = same ]' "exit $rc2: $r2 $(tail -2 py.err)"

# ---- a cosine network: the commands say the search is by L2 distance; -normalize gives unit embeddings, a codebook
# fitted on them (not the network's), an index of their codes, and the export says the queries need normalising too
sed 's/^type=contrastive/type=cosine/; /^margin=/d' "$cfg" > cos.cfg
sed 's|^backup=.*|backup=Bcos|' own.data > cos.data
"$bin" gsl train cos.data cos.cfg -epochs 1 > cos.log 2>&1; rc=$?
check cosine_trains '[ $rc = 0 ]' "exit $rc: $(tail -2 cos.log)"
expect cosine_note 0 "cos.cfg trains a cosine similarity; without -normalize" \
  "$bin" gsl export cos.data cos.cfg Bcos/cos.ckpt -out cosraw.faiss
"$bin" gsl export cos.data cos.cfg Bcos/cos.ckpt -out cos.faiss -normalize > cx.log 2>&1; rc=$?
check normalize_export '[ $rc = 0 ] && grep -q "fitted on the 300 normalised training embeddings" cx.log &&
  grep -q "normalise the queries too" cx.log' "exit $rc: $(tail -2 cx.log)"
"$bin" gsl embed cos.data cos.cfg Bcos/cos.ckpt -out cq -normalize > cq.log 2>&1; rc=$?
norms=$("$py" -c "
import numpy as np
a = np.fromfile('cq.fvecs', dtype=np.int32); d = a[0]
x = a.reshape(-1, d + 1)[:, 1:].view(np.float32)
print('unit' if np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5) else 'norms %s' % np.linalg.norm(x, axis=1)[:3])")
check normalize_embed_unit_norm '[ $rc = 0 ] && [ "$norms" = unit ]' "exit $rc: $norms"
"$bin" gsl search cos.data cos.cfg Bcos/cos.ckpt -query query.list -k 5 -normalize > coshits.tsv 2>/dev/null; rc1=$?
"$py" "$root/scripts/query_index.py" cos.faiss cq.fvecs -k 5 > cospy.tsv 2>py.err; rc2=$?
r=$(same coshits.tsv cospy.tsv)
check normalize_search_matches_faiss '[ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$r" = same ]' "exit $rc1 $rc2: $r $(tail -1 py.err)"

# ---- streaming changes nothing: the same records as an in-memory IDX subset and as a list of 28x28 PNGs (same
# order) train to byte-identical weights, with augmentation too; a resumed list run equals the uninterrupted one; 2 MPI
# ranks (each decoding only its own rows) equal 2 ranks on the IDX subset
mkdir -p "$tmp/same" && cd "$tmp/same"
"$py" "$here/e2e/make_subset.py" . 30 5 && (cd "$here/e2e" && "$py" make_images.py "$tmp/same/img" 30 5) ||
  { bad same_data "make_subset/make_images failed"; result; exit; }
printf 'classes=10\ntrain=%s\ntrain_labels=%s\nbackup=%s\n' train-images.gz train-labels.gz I > idx.data
printf 'classes=10\ntrain=img/train.list\nlabels=img/labels.txt\nbackup=%s\n' L > list.data
sed 's|^backup=L|backup=R|' list.data > resume.data
sed 's|^backup=L|backup=LA|' list.data > lista.data; sed 's|^backup=I|backup=IA|' idx.data > idxa.data
sed 's/^seed=3/seed=3\nflip=1\nshift=2/' "$cfg" > aug.cfg
"$bin" gsl train idx.data "$cfg" -epochs 2 > i.log 2>&1 && "$bin" gsl train list.data "$cfg" -epochs 2 > l.log 2>&1 &&
  "$bin" gsl train idxa.data aug.cfg -epochs 2 > ia.log 2>&1 && "$bin" gsl train lista.data aug.cfg -epochs 2 > la.log 2>&1
rc=$?
check list_equals_idx '[ $rc = 0 ] && cmp -s I/small_e0002.weights L/small_e0002.weights && cmp -s I/small_e0002_cb0.codebook L/small_e0002_cb0.codebook' \
  "exit $rc: $(tail -1 l.log)"
check list_equals_idx_augmented '[ $rc = 0 ] && cmp -s IA/aug_e0002.weights LA/aug_e0002.weights' "exit $rc: $(tail -1 la.log)"
"$bin" gsl train resume.data "$cfg" -epochs 1 > r1.log 2>&1 && "$bin" gsl train resume.data "$cfg" R/small.ckpt -epochs 2 > r2.log 2>&1
rc=$?
check list_resume_equals_uninterrupted '[ $rc = 0 ] && cmp -s R/small_e0002.weights L/small_e0002.weights' "exit $rc: $(tail -2 r2.log)"
if [ -n "$mbin" ] && [ -x "$mbin" ] && command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  sed 's/^rebuild_iters=8/rebuild_iters=8\nrebuild_from=sample/' "$cfg" > dist.cfg
  sed 's|^backup=L|backup=DL|' list.data > dl.data; sed 's|^backup=I|backup=DI|' idx.data > di.data
  for d in dl di; do
    ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 timeout -k 5 120 mpirun --oversubscribe \
      -x OPENBLAS_NUM_THREADS -np 2 "$mbin" gsl train $d.data dist.cfg -epochs 2 > $d.log 2>&1 || break
  done
  rc=$?
  check mpi_list_equals_mpi_idx '[ $rc = 0 ] && cmp -s DL/dist_e0002.weights DI/dist_e0002.weights' "exit $rc: $(tail -2 dl.log)"
else
  bad mpi_available "no MPI binary (DARKNET_MPI_BIN) or mpirun: make test builds build/<config>/darknet-mpi"
fi
result
