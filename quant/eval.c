/* Evaluation: mAP over the whole ranking, mAP@R, precision@R, recall@R from labels (single- or multi-label), and
 * recall of exact neighbours. Definitions in docs/quant.md. Rankings order by (distance, database index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- ranking: stable LSD radix sort of the distance bits, ids ascending within equal distances ---- */

static uint32_t fkey(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return (b & 0x80000000u) ? ~b : b | 0x80000000u; /* order-preserving for all floats; NaN last */
}

/* Sorts ids [0, n) by key ascending, stable (so ties keep id order); the result is left in idb. */
static void radix_rank(const uint32_t *key, size_t n, uint32_t *ida, uint32_t *idb, uint32_t *ka, uint32_t *kb)
{
    size_t cnt[2048];
    for (size_t i = 0; i < n; i++) { ida[i] = (uint32_t)i; ka[i] = key[i]; }
    for (int shift = 0; shift < 32; shift += 11) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(ka[i] >> shift) & 2047]++;
        size_t s = 0;
        for (int b = 0; b < 2048; b++) { size_t c = cnt[b]; cnt[b] = s; s += c; }
        for (size_t i = 0; i < n; i++) {
            size_t p = cnt[(ka[i] >> shift) & 2047]++;
            idb[p] = ida[i];
            kb[p] = ka[i];
        }
        uint32_t *t = ida; ida = idb; idb = t;
        t = ka; ka = kb; kb = t;
    }
    /* three passes (an odd number): the sorted ids are in the caller's idb */
}

int gslq_rank(const float *dist, size_t n, int64_t *order, gslq_error *err)
{
    if (n && (!dist || !order)) return gslq__fail(err, GSLQ_EINVAL, "rank: NULL argument");
    if (n > UINT32_MAX) return gslq__fail(err, GSLQ_EINVAL, "rank: %zu items (at most 2^32-1)", n);
    uint32_t *buf = gslq__alloc(n, 4 * sizeof(uint32_t), 1, 0), *key = gslq__alloc(n, sizeof(uint32_t), 1, 0);
    if (!buf || !key) {
        free(buf); free(key);
        return gslq__fail(err, GSLQ_ENOMEM, "rank: out of memory for %zu items", n);
    }
    for (size_t i = 0; i < n; i++) key[i] = fkey(dist[i]);
    radix_rank(key, n, buf, buf + n, buf + 2 * n, buf + 3 * n);
    for (size_t i = 0; i < n; i++) order[i] = buf[n + i];
    free(buf); free(key);
    gslq__ok(err);
    return GSLQ_OK;
}

/* ---- relevance ---- */

static int check_labels(const gslq_labels *l, const char *what, gslq_error *err)
{
    if (!l) return gslq__fail(err, GSLQ_EINVAL, "eval: NULL %s labels", what);
    if (l->nwords < 0) return gslq__fail(err, GSLQ_EINVAL, "eval: %s labels: nwords=%d < 0", what, l->nwords);
    if (l->n && ((l->nwords == 0 && !l->label) || (l->nwords > 0 && !l->bits)))
        return gslq__fail(err, GSLQ_EINVAL, "eval: %s labels: NULL arrays", what);
    return GSLQ_OK;
}

static int relevant(const gslq_labels *ql, size_t q, const gslq_labels *dl, size_t i)
{
    if (ql->nwords == 0) return ql->label[q] >= 0 && ql->label[q] == dl->label[i];
    const uint64_t *a = ql->bits + q * ql->nwords, *b = dl->bits + i * dl->nwords;
    for (int w = 0; w < ql->nwords; w++)
        if (a[w] & b[w]) return 1;
    return 0;
}

/* Number of database items relevant to each query. */
static int count_relevant(const gslq_labels *ql, const gslq_labels *dl, size_t *nrel, gslq_error *err)
{
    if (ql->nwords == 0) {
        int maxl = -1;
        for (size_t i = 0; i < dl->n; i++)
            if (dl->label[i] > maxl) maxl = dl->label[i];
        if (maxl >= (1 << 24)) return gslq__fail(err, GSLQ_EINVAL, "eval: class id %d too large (< 2^24)", maxl);
        size_t *hist = gslq__alloc((size_t)maxl + 2, sizeof(size_t), 1, 1);
        if (!hist) return gslq__fail(err, GSLQ_ENOMEM, "eval: out of memory");
        for (size_t i = 0; i < dl->n; i++)
            if (dl->label[i] >= 0) hist[dl->label[i]]++;
        for (size_t q = 0; q < ql->n; q++)
            nrel[q] = ql->label[q] >= 0 && ql->label[q] <= maxl ? hist[ql->label[q]] : 0;
        free(hist);
        return GSLQ_OK;
    }
    for (size_t q = 0; q < ql->n; q++) {
        size_t c = 0;
        for (size_t i = 0; i < dl->n; i++) c += (size_t)relevant(ql, q, dl, i);
        nrel[q] = c;
    }
    return GSLQ_OK;
}

/* Accumulates one query's metrics for the cutoffs R[0..nR-1] into acc: acc[0] AP, then per cutoff k
 * acc[1 + 3k] AP@R, acc[2 + 3k] precision@R, acc[3 + 3k] recall@R. Returns 0 when the query has no relevant item
 * (skipped). */
#define EV_ACC (1 + 3 * GSLQ_EVAL_MAX_CUTOFFS)
static int eval_one(const int64_t *rank, size_t L, const size_t *R, int nR, size_t nrel, const gslq_labels *ql,
                    size_t q, const gslq_labels *dl, double *acc)
{
    if (nrel == 0) return 0;
    double ap = 0, ap_r[GSLQ_EVAL_MAX_CUTOFFS] = {0};
    size_t hits = 0, hits_r[GSLQ_EVAL_MAX_CUTOFFS] = {0};
    for (size_t i = 0; i < L; i++) {
        int64_t id = rank[i];
        if (id < 0 || (size_t)id >= dl->n || !relevant(ql, q, dl, (size_t)id)) continue;
        hits++;
        double p = (double)hits / (double)(i + 1);
        ap += p;
        for (int k = 0; k < nR; k++)
            if (i < R[k]) { ap_r[k] += p; hits_r[k] = hits; }
        if (hits == nrel) break; /* no further precision terms */
    }
    acc[0] += ap / (double)nrel;
    for (int k = 0; k < nR; k++) {
        acc[1 + 3 * k] += hits_r[k] ? ap_r[k] / (double)hits_r[k] : 0.0;
        acc[2 + 3 * k] += (double)hits_r[k] / (double)R[k];
        acc[3 + 3 * k] += (double)hits_r[k] / (double)nrel;
    }
    return 1;
}

static int check_eval(size_t nq, const gslq_labels *qlab, const gslq_labels *dblab, const size_t *R, int nR,
                      size_t L, gslq_eval_result *out, gslq_error *err)
{
    int rc;
    if (!out) return gslq__fail(err, GSLQ_EINVAL, "eval: NULL result");
    if ((rc = check_labels(qlab, "query", err)) || (rc = check_labels(dblab, "database", err))) return rc;
    if (qlab->nwords != dblab->nwords)
        return gslq__fail(err, GSLQ_EINVAL, "eval: query and database labels differ in kind (nwords %d vs %d)",
                          qlab->nwords, dblab->nwords);
    if (qlab->n != nq) return gslq__fail(err, GSLQ_EINVAL, "eval: %zu query labels for %zu queries", qlab->n, nq);
    if (nR < 1 || nR > GSLQ_EVAL_MAX_CUTOFFS || !R)
        return gslq__fail(err, GSLQ_EINVAL, "eval: %d cutoffs (1..%d)", nR, GSLQ_EVAL_MAX_CUTOFFS);
    for (int k = 0; k < nR; k++)
        if (R[k] < 1 || R[k] > L) return gslq__fail(err, GSLQ_EINVAL, "eval: R=%zu out of range 1..%zu", R[k], L);
    return GSLQ_OK;
}

static void finish(const double *acc, int nR, size_t used, gslq_eval_result *out)
{
    double n = used ? (double)used : 1.0;
    for (int k = 0; k < nR; k++) {
        out[k].map = acc[0] / n;
        out[k].map_at_r = acc[1 + 3 * k] / n;
        out[k].prec_at_r = acc[2 + 3 * k] / n;
        out[k].recall_at_r = acc[3 + 3 * k] / n;
        out[k].nq = used;
    }
}

int gslq_eval_rankings(const int64_t *rank, size_t nq, size_t L, const gslq_labels *qlab, const gslq_labels *dblab,
                       size_t R, gslq_eval_result *out, gslq_error *err)
{
    int rc = check_eval(nq, qlab, dblab, &R, 1, L, out, err);
    if (rc) return rc;
    if (nq && !rank) return gslq__fail(err, GSLQ_EINVAL, "eval: NULL ranking");
    size_t *nrel = gslq__alloc(nq, sizeof(size_t), 1, 0);
    if (!nrel) return gslq__fail(err, GSLQ_ENOMEM, "eval: out of memory");
    if ((rc = count_relevant(qlab, dblab, nrel, err))) {
        free(nrel);
        return rc;
    }
    double acc[EV_ACC] = {0};
    size_t used = 0;
    for (size_t q = 0; q < nq; q++) used += (size_t)eval_one(rank + q * L, L, &R, 1, nrel[q], qlab, q, dblab, acc);
    finish(acc, 1, used, out);
    free(nrel);
    gslq__ok(err);
    return GSLQ_OK;
}

/* ---- whole-ranking evaluation of a search ---- */

typedef struct {
    const gslq_pq *pq;
    const uint8_t *codes;
    const float *db, *dbn, *q;
    size_t nb, nq;
    const size_t *R;
    int nR, d;
    const gslq_labels *ql, *dl;
    const size_t *nrel;
    int64_t *top;       /* (nq, ktop) the head of each ranking, or NULL */
    int ktop;
    double (*acc)[EV_ACC];
    size_t *used;
    int *rcs;
} evs_ctx;

static void evs_part(void *arg, int t, int nt)
{
    evs_ctx *a = arg;
    size_t nb = a->nb, ngroups = (a->nq + 3) / 4, g0, g1;
    gslq__split(ngroups, t, nt, &g0, &g1);
    if (g0 >= g1) return;
    int M = a->pq ? a->pq->M : 0, K = a->pq ? a->pq->K : 0, d = a->d;
    float *dist4 = gslq__alloc(nb, 4 * sizeof(float), 1, 0), *tables = NULL, *T4 = NULL;
    uint32_t *key = gslq__alloc(nb, sizeof(uint32_t), 1, 0), *buf = gslq__alloc(nb, 4 * sizeof(uint32_t), 1, 0);
    int64_t *rank = gslq__alloc(nb, sizeof(int64_t), 1, 0);
    if (a->pq) {
        tables = gslq__alloc(4, (size_t)M * K, sizeof(float), 0);
        T4 = aligned_alloc(64, ((size_t)M * K * 4 * sizeof(float) + 63) / 64 * 64);
    }
    if (!dist4 || !key || !buf || !rank || (a->pq && (!tables || !T4))) {
        a->rcs[t] = GSLQ_ENOMEM;
        goto done;
    }
    for (size_t g = g0; g < g1; g++) {
        size_t q0 = g * 4;
        int n = a->nq - q0 < 4 ? (int)(a->nq - q0) : 4;
        if (a->pq) {
            for (int j = 0; j < n; j++)
                gslq_pq_distance_table(a->pq, a->q + (q0 + j) * d, d, tables + (size_t)j * M * K, NULL);
            gslq__interleave4(tables, n, M * K, T4);
            gslq__adc_distances4(a->codes, nb, M, K, T4, dist4);
        } else { /* exact: |q|^2 + |x|^2 - 2 q.x, in (nb, 4) layout */
            float qn[4] = {0, 0, 0, 0};
            for (int j = 0; j < n; j++)
                for (int i = 0; i < d; i++) qn[j] += a->q[(q0 + j) * d + i] * a->q[(q0 + j) * d + i];
            gslq__sgemm(0, 1, (int)nb, n, d, -2.0f, a->db, d, a->q + q0 * d, d, 0.0f, dist4, 4);
            for (size_t i = 0; i < nb; i++)
                for (int j = 0; j < n; j++) {
                    float v = dist4[i * 4 + j] + qn[j] + a->dbn[i];
                    dist4[i * 4 + j] = v > 0 ? v : 0;
                }
        }
        for (int j = 0; j < n; j++) {
            for (size_t i = 0; i < nb; i++) key[i] = fkey(dist4[i * 4 + j]);
            radix_rank(key, nb, buf, buf + nb, buf + 2 * nb, buf + 3 * nb);
            for (size_t i = 0; i < nb; i++) rank[i] = buf[nb + i];
            if (a->top) memcpy(a->top + (q0 + j) * a->ktop, rank, (size_t)a->ktop * sizeof(int64_t));
            a->used[t] += (size_t)eval_one(rank, nb, a->R, a->nR, a->nrel[q0 + j], a->ql, q0 + j, a->dl, a->acc[t]);
        }
    }
done:
    free(dist4); free(key); free(buf); free(rank); free(tables); free(T4);
}

int gslq_eval_search(const gslq_pq *pq, const uint8_t *codes, const float *db, size_t nb, int d, const float *q,
                     size_t nq, const gslq_labels *qlab, const gslq_labels *dblab, size_t R, int nthreads,
                     gslq_eval_result *out, gslq_error *err)
{
    return gslq_eval_search_cutoffs(pq, codes, db, nb, d, q, nq, qlab, dblab, &R, 1, NULL, 0, nthreads, out, err);
}

int gslq_eval_search_cutoffs(const gslq_pq *pq, const uint8_t *codes, const float *db, size_t nb, int d,
                             const float *q, size_t nq, const gslq_labels *qlab, const gslq_labels *dblab,
                             const size_t *R, int nR, int64_t *top, int ktop, int nthreads, gslq_eval_result *out,
                             gslq_error *err)
{
    int rc = check_eval(nq, qlab, dblab, R, nR, nb, out, err);
    if (rc) return rc;
    if (top && (ktop < 1 || (size_t)ktop > nb))
        return gslq__fail(err, GSLQ_EINVAL, "eval: top-%d of a ranking of %zu items", ktop, nb);
    if (dblab->n != nb) return gslq__fail(err, GSLQ_EINVAL, "eval: %zu database labels for %zu items", dblab->n, nb);
    if (nb > UINT32_MAX) return gslq__fail(err, GSLQ_EINVAL, "eval: %zu database items (at most 2^32-1)", nb);
    if (pq) {
        if (!pq->centroids || (rc = gslq__check_dims(pq->d, pq->M, pq->K, err)))
            return rc ? rc : gslq__fail(err, GSLQ_EINVAL, "eval: uninitialised pq");
        if (!codes) return gslq__fail(err, GSLQ_EINVAL, "eval: NULL codes");
        if (d != pq->d) return gslq__fail(err, GSLQ_EINVAL, "eval: query dimension %d != codebook's %d", d, pq->d);
        for (size_t i = 0; i < nb * (size_t)pq->M; i++)
            if (codes[i] >= pq->K) return gslq__fail(err, GSLQ_EINVAL, "eval: code %d >= K=%d", codes[i], pq->K);
    } else if (!db || d < 1) {
        return gslq__fail(err, GSLQ_EINVAL, "eval: NULL database vectors or d < 1");
    }
    if (nq && !q) return gslq__fail(err, GSLQ_EINVAL, "eval: NULL queries");
    int nt = nthreads < 1 ? 1 : nthreads, rcs[256] = {0};
    if (nt > 256) nt = 256;
    size_t *nrel = gslq__alloc(nq, sizeof(size_t), 1, 0), used[256] = {0};
    double(*acc)[EV_ACC] = gslq__alloc((size_t)nt, sizeof *acc, 1, 1);
    float *dbn = pq ? NULL : gslq__alloc(nb, sizeof(float), 1, 0);
    if (!nrel || !acc || (!pq && !dbn)) {
        rc = gslq__fail(err, GSLQ_ENOMEM, "eval: out of memory");
        goto done;
    }
    if ((rc = count_relevant(qlab, dblab, nrel, err))) goto done;
    for (size_t i = 0; dbn && i < nb; i++) {
        float s = 0;
        for (int j = 0; j < d; j++) s += db[i * d + j] * db[i * d + j];
        dbn[i] = s;
    }
    evs_ctx a = {pq, codes, db, dbn, q, nb, nq, R, nR, d, qlab, dblab, nrel, top, top ? ktop : 0, acc, used, rcs};
    gslq__parallel(nt, evs_part, &a);
    double tot[EV_ACC] = {0};
    size_t u = 0;
    for (int t = 0; t < nt; t++) {
        if (rcs[t]) {
            rc = gslq__fail(err, rcs[t], "eval: out of memory");
            goto done;
        }
        for (int j = 0; j < EV_ACC; j++) tot[j] += acc[t][j];
        u += used[t];
    }
    finish(tot, nR, u, out);
    gslq__ok(err);
done:
    free(nrel); free(acc); free(dbn);
    return rc;
}

double gslq_nn_recall(const int64_t *gt, int gt_k, const int64_t *res, int res_k, size_t nq, int k, int R)
{
    if (!gt || !res || nq == 0 || k < 1 || k > gt_k || R < 1 || R > res_k) return 0.0;
    double s = 0;
    for (size_t q = 0; q < nq; q++) {
        const int64_t *g = gt + q * gt_k, *r = res + q * res_k;
        int hit = 0;
        for (int i = 0; i < k; i++) {
            if (g[i] < 0) continue;
            for (int j = 0; j < R; j++)
                if (r[j] == g[i]) { hit++; break; }
        }
        s += (double)hit / k;
    }
    return s / (double)nq;
}
