/* Search: ADC (asymmetric: float query, coded database), SDC (both coded) and exact L2, top-k by bounded heaps.
 *
 * ADC scan. Queries are processed four at a time: their distance tables are interleaved, entry (m, k) holding the
 * four queries' values side by side, so one 16-byte load per code byte serves four queries and the scan costs one
 * vector table lookup and one vector add per code byte for four queries. The sum runs over m in order, so every
 * distance equals gslq_adc_distance() bit for bit. A vector compare against the four heaps' current worst
 * distances skips the heaps for almost every code once they are full. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

#define QG 4 /* queries per group */

typedef struct {
    int k;
    gslq_heap h[QG];
    float thr[QG];
} heap_group;

static void group_push(heap_group *g, int q, float d, int64_t id)
{
    gslq__heap_push(&g->h[q], gslq__key(d, (uint32_t)id));
    if (g->h[q].n == g->h[q].k) g->thr[q] = gslq__key_dist(g->h[q].key[0]);
}

/* Lane mask of a < b as 4 bits (movmskps on x86). */
static inline int lt_mask(v4f a, v4f b)
{
#if defined(__SSE__)
    return __builtin_ia32_movmskps((v4f)(a < b));
#else
    v4i lt = a < b;
    return (lt[0] & 1) | (lt[1] & 2) | (lt[2] & 4) | (lt[3] & 8);
#endif
}

/* ADC distances of one code for a group; M is a compile-time constant in the specialised copies, so it unrolls.
 * Summation order (shared with gslq_adc_distance, so the results agree bit for bit): four partial sums over
 * m = j, j+4, j+8, ... in order, then (s0 + s1) + (s2 + s3). It shortens the dependency chain of the adds. */
static inline __attribute__((always_inline)) v4f code_dist(const v4f *T, const uint8_t *c, int M, int K)
{
    if (M < 4) {
        v4f acc = T[c[0]];
        for (int m = 1; m < M; m++) acc += T[(size_t)m * K + c[m]];
        return acc;
    }
    v4f s0 = T[c[0]], s1 = T[(size_t)K + c[1]], s2 = T[(size_t)2 * K + c[2]], s3 = T[(size_t)3 * K + c[3]];
    for (int m = 4; m + 3 < M; m += 4) {
        s0 += T[(size_t)m * K + c[m]];
        s1 += T[(size_t)(m + 1) * K + c[m + 1]];
        s2 += T[(size_t)(m + 2) * K + c[m + 2]];
        s3 += T[(size_t)(m + 3) * K + c[m + 3]];
    }
    int r = M & ~3;
    if (r < M) s0 += T[(size_t)r * K + c[r]];
    if (r + 1 < M) s1 += T[(size_t)(r + 1) * K + c[r + 1]];
    if (r + 2 < M) s2 += T[(size_t)(r + 2) * K + c[r + 2]];
    return (s0 + s1) + (s2 + s3);
}

/* Scans codes [0, nb) for one group; T4 is (M, K, 4). */
static inline __attribute__((always_inline)) void scan_heap(const uint8_t *codes, size_t nb, int M, int K,
                                                            const float *T4, heap_group *g)
{
    const v4f *T = (const v4f *)T4;
    v4f thr;
    memcpy(&thr, g->thr, sizeof thr);
    for (size_t i = 0; i < nb; i++) {
        v4f acc = code_dist(T, codes + i * (size_t)M, M, K);
        int mask = lt_mask(acc, thr);
        if (__builtin_expect(mask != 0, 0)) {
            for (int q = 0; q < QG; q++)
                if (mask >> q & 1) group_push(g, q, acc[q], (int64_t)i);
            memcpy(&thr, g->thr, sizeof thr);
        }
    }
}

static inline __attribute__((always_inline)) void scan_out(const uint8_t *codes, size_t nb, int M, int K,
                                                           const float *T4, float *out)
{
    const v4f *T = (const v4f *)T4;
    for (size_t i = 0; i < nb; i++) {
        v4f acc = code_dist(T, codes + i * (size_t)M, M, K);
        memcpy(out + i * QG, &acc, sizeof acc);
    }
}

#define SCAN_SPECIAL(MM)                                                                                      \
    static void scan_heap_m##MM(const uint8_t *c, size_t nb, int K, const float *T, heap_group *g)            \
    { scan_heap(c, nb, MM, K, T, g); }                                                                        \
    static void scan_out_m##MM(const uint8_t *c, size_t nb, int K, const float *T, float *o)                  \
    { scan_out(c, nb, MM, K, T, o); }
SCAN_SPECIAL(4)
SCAN_SPECIAL(8)
SCAN_SPECIAL(16)

/* Dispatches on M (heaps, or distances into out (nb, 4) when out is non-NULL). */
static void adc_scan(const uint8_t *codes, size_t nb, int M, int K, const float *T4, heap_group *g, float *out)
{
    if (out) {
        switch (M) {
        case 4: scan_out_m4(codes, nb, K, T4, out); break;
        case 8: scan_out_m8(codes, nb, K, T4, out); break;
        case 16: scan_out_m16(codes, nb, K, T4, out); break;
        default: scan_out(codes, nb, M, K, T4, out); break;
        }
        return;
    }
    switch (M) {
    case 4: scan_heap_m4(codes, nb, K, T4, g); break;
    case 8: scan_heap_m8(codes, nb, K, T4, g); break;
    case 16: scan_heap_m16(codes, nb, K, T4, g); break;
    default: scan_heap(codes, nb, M, K, T4, g); break;
    }
}

void gslq__adc_distances4(const uint8_t *codes, size_t nb, int M, int K, const float *T4, float *out)
{
    adc_scan(codes, nb, M, K, T4, NULL, out);
}

void gslq__interleave4(const float *tables, int nq, int MK, float *T4)
{
    for (int j = 0; j < MK; j++)
        for (int q = 0; q < QG; q++) T4[(size_t)j * QG + q] = tables[(size_t)(q < nq ? q : nq - 1) * MK + j];
}

typedef struct {
    const gslq_pq *pq;
    const uint8_t *codes;
    size_t nb;
    const float *q;         /* ADC: (nq, d) queries */
    const uint8_t *qcodes;  /* SDC: (nq, M) */
    const float *sdc;       /* SDC: (M, K, K) codeword distances */
    size_t nq;
    int k;
    int64_t *ids;
    float *dist;
    int *rcs;
} search_ctx;

/* The (M, K) tables of queries [q0, q0+n) into tables. */
static void query_tables(const search_ctx *a, size_t q0, int n, float *tables)
{
    const gslq_pq *pq = a->pq;
    int M = pq->M, K = pq->K;
    for (int j = 0; j < n; j++) {
        float *t = tables + (size_t)j * M * K;
        if (a->q) {
            gslq_pq_distance_table(pq, a->q + (q0 + j) * (size_t)pq->d, pq->d, t, NULL);
        } else {
            const uint8_t *qc = a->qcodes + (q0 + j) * (size_t)M;
            for (int m = 0; m < M; m++)
                memcpy(t + (size_t)m * K, a->sdc + ((size_t)m * K + qc[m]) * K, (size_t)K * sizeof(float));
        }
    }
}

static void search_part(void *arg, int t, int nt)
{
    search_ctx *a = arg;
    const gslq_pq *pq = a->pq;
    int M = pq->M, K = pq->K, k = a->k;
    size_t ngroups = (a->nq + QG - 1) / QG, g0, g1;
    gslq__split(ngroups, t, nt, &g0, &g1);
    if (g0 >= g1) return;
    float *tables = gslq__alloc(QG, (size_t)M * K, sizeof(float), 0);
    float *T4 = aligned_alloc(64, ((size_t)M * K * QG * sizeof(float) + 63) / 64 * 64);
    uint64_t *hk = gslq__alloc(QG, (size_t)k, sizeof(uint64_t), 0);
    if (!tables || !T4 || !hk) {
        a->rcs[t] = GSLQ_ENOMEM;
        goto done;
    }
    for (size_t g = g0; g < g1; g++) {
        size_t q0 = g * QG;
        int n = a->nq - q0 < QG ? (int)(a->nq - q0) : QG;
        query_tables(a, q0, n, tables);
        gslq__interleave4(tables, n, M * K, T4);
        heap_group hg;
        hg.k = k;
        for (int q = 0; q < QG; q++) {
            hg.h[q] = (gslq_heap){k, 0, hk + (size_t)q * k};
            hg.thr[q] = INFINITY;
        }
        adc_scan(a->codes, a->nb, M, K, T4, &hg, NULL);
        for (int q = 0; q < n; q++)
            gslq__heap_sorted(&hg.h[q], a->dist ? a->dist + (q0 + q) * (size_t)k : NULL, a->ids + (q0 + q) * (size_t)k);
    }
done:
    free(tables); free(T4); free(hk);
}

static int run_search(search_ctx *a, int nthreads, const char *fn, gslq_error *err)
{
    int nt = nthreads < 1 ? 1 : nthreads, rcs[256] = {0};
    if (nt > 256) nt = 256;
    a->rcs = rcs;
    gslq__parallel(nt, search_part, a);
    for (int t = 0; t < nt; t++)
        if (rcs[t]) return gslq__fail(err, rcs[t], "%s: out of memory", fn);
    gslq__ok(err);
    return GSLQ_OK;
}

static int check_search(const gslq_pq *pq, const uint8_t *codes, size_t nb, const void *q, size_t nq, int k,
                        int64_t *ids, const char *fn, gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "%s: NULL or uninitialised pq", fn);
    int rc = gslq__check_dims(pq->d, pq->M, pq->K, err);
    if (rc) return rc;
    if (k < 1) return gslq__fail(err, GSLQ_EINVAL, "%s: k=%d must be >= 1", fn, k);
    if ((nb && !codes) || (nq && (!q || !ids))) return gslq__fail(err, GSLQ_EINVAL, "%s: NULL argument", fn);
    size_t s;
    if (gslq__mul(nq, (size_t)k, &s)) return gslq__fail(err, GSLQ_ENOMEM, "%s: nq*k overflows", fn);
    if (nb > UINT32_MAX) return gslq__fail(err, GSLQ_EINVAL, "%s: %zu database vectors (at most 2^32-1)", fn, nb);
    for (size_t i = 0; i < nb * (size_t)pq->M; i++)
        if (codes[i] >= pq->K)
            return gslq__fail(err, GSLQ_EINVAL, "%s: code %d of database vector %zu >= K=%d", fn, codes[i],
                              i / pq->M, pq->K);
    return GSLQ_OK;
}

int gslq_adc_search(const gslq_pq *pq, const uint8_t *codes, size_t nb, const float *q, size_t nq, int d, int k,
                    int64_t *ids, float *dist, int nthreads, gslq_error *err)
{
    int rc = check_search(pq, codes, nb, q, nq, k, ids, "adc_search", err);
    if (rc) return rc;
    if ((rc = gslq__check_pq_dim(pq, d, "adc_search", err))) return rc;
    search_ctx a = {pq, codes, nb, q, NULL, NULL, nq, k, ids, dist, NULL};
    return run_search(&a, nthreads, "adc_search", err);
}

int gslq_sdc_search(const gslq_pq *pq, const uint8_t *codes, size_t nb, const uint8_t *qcodes, size_t nq, int k,
                    int64_t *ids, float *dist, int nthreads, gslq_error *err)
{
    int rc = check_search(pq, codes, nb, qcodes, nq, k, ids, "sdc_search", err);
    if (rc) return rc;
    for (size_t i = 0; i < nq * (size_t)pq->M; i++)
        if (qcodes[i] >= pq->K)
            return gslq__fail(err, GSLQ_EINVAL, "sdc_search: code %d of query %zu >= K=%d", qcodes[i], i / pq->M,
                              pq->K);
    int M = pq->M, K = pq->K, ds = pq->dsub;
    float *sdc = gslq__alloc((size_t)M * K, (size_t)K, sizeof(float), 0);
    if (!sdc) return gslq__fail(err, GSLQ_ENOMEM, "sdc_search: out of memory");
    for (int m = 0; m < M; m++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                const float *a = pq->centroids + ((size_t)m * K + i) * ds, *b = pq->centroids + ((size_t)m * K + j) * ds;
                float s = 0;
                for (int t = 0; t < ds; t++) s += (a[t] - b[t]) * (a[t] - b[t]);
                sdc[((size_t)m * K + i) * K + j] = s;
            }
    search_ctx a = {pq, codes, nb, NULL, qcodes, sdc, nq, k, ids, dist, NULL};
    rc = run_search(&a, nthreads, "sdc_search", err);
    free(sdc);
    return rc;
}

/* ---- exact search ---- */

#define EX_QB 64
#define EX_DB 1024

typedef struct {
    const float *db, *q, *dbn;
    size_t nb, nq;
    int d, k;
    int64_t *ids;
    float *dist;
    int *rcs;
} exact_ctx;

static void exact_part(void *arg, int t, int nt)
{
    exact_ctx *a = arg;
    int d = a->d, k = a->k;
    size_t nqb = (a->nq + EX_QB - 1) / EX_QB, b0, b1;
    gslq__split(nqb, t, nt, &b0, &b1);
    if (b0 >= b1) return;
    float *ip = gslq__alloc(EX_QB, EX_DB, sizeof(float), 0);
    uint64_t *hk = gslq__alloc(EX_QB, (size_t)k, sizeof(uint64_t), 0);
    gslq_heap h[EX_QB];
    float qn[EX_QB];
    if (!ip || !hk) {
        a->rcs[t] = GSLQ_ENOMEM;
        goto done;
    }
    for (size_t b = b0; b < b1; b++) {
        size_t q0 = b * EX_QB;
        int nq = a->nq - q0 < EX_QB ? (int)(a->nq - q0) : EX_QB;
        for (int i = 0; i < nq; i++) {
            const float *qi = a->q + (q0 + i) * d;
            float s = 0;
            for (int j = 0; j < d; j++) s += qi[j] * qi[j];
            qn[i] = s;
            h[i] = (gslq_heap){k, 0, hk + (size_t)i * k};
        }
        for (size_t j0 = 0; j0 < a->nb; j0 += EX_DB) {
            int nbb = a->nb - j0 < EX_DB ? (int)(a->nb - j0) : EX_DB;
            gslq__sgemm(0, 1, nq, nbb, d, -2.0f, a->q + q0 * d, d, a->db + j0 * d, d, 0.0f, ip, EX_DB);
            for (int i = 0; i < nq; i++) {
                const float *row = ip + (size_t)i * EX_DB;
                for (int j = 0; j < nbb; j++) {
                    float dd = qn[i] + a->dbn[j0 + j] + row[j];
                    if (dd < 0) dd = 0;
                    uint64_t key = gslq__key(dd, (uint32_t)(j0 + j));
                    if (h[i].n < k || key < h[i].key[0]) gslq__heap_push(&h[i], key);
                }
            }
        }
        for (int i = 0; i < nq; i++)
            gslq__heap_sorted(&h[i], a->dist ? a->dist + (q0 + i) * k : NULL, a->ids + (q0 + i) * k);
    }
done:
    free(ip); free(hk);
}

int gslq_exact_search(const float *db, size_t nb, const float *q, size_t nq, int d, int k, int64_t *ids, float *dist,
                      int nthreads, gslq_error *err)
{
    if (d < 1 || k < 1) return gslq__fail(err, GSLQ_EINVAL, "exact_search: d=%d and k=%d must be >= 1", d, k);
    if ((nb && !db) || (nq && (!q || !ids))) return gslq__fail(err, GSLQ_EINVAL, "exact_search: NULL argument");
    if (nb > UINT32_MAX) return gslq__fail(err, GSLQ_EINVAL, "exact_search: %zu database vectors (at most 2^32-1)", nb);
    float *dbn = gslq__alloc(nb, sizeof(float), 1, 0);
    if (!dbn) return gslq__fail(err, GSLQ_ENOMEM, "exact_search: out of memory");
    for (size_t i = 0; i < nb; i++) {
        float s = 0;
        for (int j = 0; j < d; j++) s += db[i * d + j] * db[i * d + j];
        dbn[i] = s;
    }
    int nt = nthreads < 1 ? 1 : nthreads, rcs[256] = {0};
    if (nt > 256) nt = 256;
    exact_ctx a = {db, q, dbn, nb, nq, d, k, ids, dist, rcs};
    gslq__parallel(nt, exact_part, &a);
    free(dbn);
    for (int t = 0; t < nt; t++)
        if (rcs[t]) return gslq__fail(err, rcs[t], "exact_search: out of memory");
    gslq__ok(err);
    return GSLQ_OK;
}
