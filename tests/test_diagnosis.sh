#!/usr/bin/env bash
# scripts/study/embedding_diagnosis.py: a hand-computed case, and against a brute-force mAP where the database already sits
# on its class centroids (then the collapsed mAP is the mAP of the plain ranking); --ranking's figures against a
# loop over the ranked items on a spread database.
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
tmp=$(realpath -m "${GSL_TEST_TMP:-/tmp}/diagnosis")
rm -rf "$tmp" && mkdir -p "$tmp"
. "$here/lib.sh"
cd "$tmp"

# fvecs/ivecs writers; a brute-force mAP over the whole ranking (ties: the relevant item first, i.e. the best case,
# which is what a tie inside one class gives)
"$py" - <<'PY' || { echo "RESULT 0 passed, 1 failed"; exit 1; }
import numpy as np
def write(prefix, x, lab):
    x = np.asarray(x, np.float32).reshape(len(lab), -1)
    np.hstack([np.full((len(x), 1), x.shape[1], np.int32), x.view(np.int32)]).tofile(prefix + ".fvecs")
    np.hstack([np.ones((len(lab), 1), np.int32), np.asarray(lab, np.int32)[:, None]]).tofile(prefix + ".labels.ivecs")
# hand case, 1-D: database class 0 at 0 (2 items), class 1 at 10 (3 items); query 1 (class 0) at 1, query 2 (class 1)
# at 2: AP 1 and mean(1/3, 2/4, 3/5) = 0.4778, collapsed mAP 0.7389; centroid and 1-NN accuracy 0.5 (both say class 0);
# the 10-NN vote (all 5 items) says class 1 for both: 0.5
write("hq", [1, 2], [0, 1]); write("hdb", [0, 0, 10, 10, 10], [0, 0, 1, 1, 1])
# clustered data with the database exactly on 4 class centroids in 8-d, queries spread around them
rng = np.random.default_rng(5)
c = rng.normal(size=(4, 8)) * 2
dbl = np.repeat(np.arange(4), [30, 20, 25, 15]); ql = rng.integers(0, 4, 200)
q = c[ql] + rng.normal(size=(200, 8)) * 1.5
write("cq", q, ql); write("cdb", c[dbl], dbl)
aps = []
for x, y in zip(q, ql):
    d = ((c[dbl] - x) ** 2).sum(1)
    rel = (dbl == y)[np.lexsort((~(dbl == y), d))]
    hits = np.cumsum(rel)
    aps.append((hits[rel] / (np.flatnonzero(rel) + 1)).mean())
open("brute.txt", "w").write("%.4f\n" % np.mean(aps))
# --ranking: a spread database (some items nearer another centroid), by a loop over the items in distance order
# (ties by index); the moved and halved databases built here item by item
sdb = (c[dbl] + rng.normal(size=(len(dbl), 8)) * 1.2).astype(np.float32).astype(np.float64)
q = q.astype(np.float32).astype(np.float64)  # as the script reads them
write("sdb", sdb, dbl)
def ap(x, y, base):
    d = ((base - x) ** 2).sum(1)
    hits, tot = 0, 0.0
    for rank, j in enumerate(sorted(range(len(d)), key=lambda j: (d[j], j)), 1):
        if dbl[j] == y:
            hits += 1
            tot += hits / rank
    return tot / (dbl == y).sum()
cent = np.array([sdb[dbl == k].mean(0) for k in range(4)])
near = lambda x: int(np.argmin([((x - m) ** 2).sum() for m in cent]))
moved, half = sdb.copy(), sdb.copy()
for j in range(len(dbl)):
    if near(sdb[j]) != dbl[j]:
        moved[j] = cent[dbl[j]]
    half[j] = cent[dbl[j]] + (sdb[j] - cent[dbl[j]]) / 2
assert any(near(sdb[j]) != dbl[j] for j in range(len(dbl)))
asis = np.array([ap(x, y, sdb) for x, y in zip(q, ql)])
right = np.array([near(x) == y for x, y in zip(q, ql)])
with open("ranking.txt", "w") as f:
    f.write("mAP over the whole ranking %.4f: queries nearest their own centroid (%d) %.4f, the others (%d) %.4f\n"
            % (asis.mean(), right.sum(), asis[right].mean(), (~right).sum(), asis[~right].mean()))
    f.write("mAP with the database items nearer another centroid moved onto their own %.4f\n"
            % np.mean([ap(x, y, moved) for x, y in zip(q, ql)]))
    f.write("mAP with the database's offsets from its class centroids halved %.4f\n"
            % np.mean([ap(x, y, half) for x, y in zip(q, ql)]))
PY
"$py" "$here/../scripts/study/embedding_diagnosis.py" hq hdb > h.txt 2>&1; rc=$?
check hand_case '[ $rc = 0 ] && grep -q "collapsed mAP (database on its class centroids) 0.7389" h.txt && grep -q "nearest-centroid accuracy 0.5000, 1-NN accuracy 0.5000, 10-NN vote accuracy 0.5000" h.txt && grep -q "own centroid 0.0000, to the nearest other 10.0000; nearer another centroid 0.0000" h.txt' \
  "exit $rc: $(cat h.txt)"
"$py" "$here/../scripts/study/embedding_diagnosis.py" cq cdb > c.txt 2>&1; rc=$?
got=$(sed -n 's/^collapsed mAP (database on its class centroids) //p' c.txt)
check collapsed_equals_brute_force_when_collapsed '[ $rc = 0 ] && [ -n "$got" ] && [ "$got" = "$(cat brute.txt)" ]' \
  "exit $rc: diagnosis '$got', brute force $(cat brute.txt): $(cat c.txt)"
"$py" "$here/../scripts/study/embedding_diagnosis.py" cq sdb --ranking > r.txt 2>&1; rc=$?
check ranking_equals_brute_force '[ $rc = 0 ] && [ "$(tail -3 r.txt)" = "$(cat ranking.txt)" ]' \
  "exit $rc: diagnosis $(tail -3 r.txt); brute force $(cat ranking.txt)"
"$py" "$here/../scripts/study/embedding_diagnosis.py" cq sdb > n.txt 2>&1; rc=$?
check ranking_only_when_asked '[ $rc = 0 ] && ! grep -q "whole ranking" n.txt' "exit $rc: $(cat n.txt)"
printf 'xx' > bad.fvecs; cp hq.labels.ivecs bad.labels.ivecs
"$py" "$here/../scripts/study/embedding_diagnosis.py" bad hdb > b.txt 2>&1; rc=$?
check bad_file_named '[ $rc != 0 ] && grep -q "bad.fvecs" b.txt' "exit $rc: $(cat b.txt)"
result
