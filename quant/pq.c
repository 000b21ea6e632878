/* The product quantizer: lifetime, rotation, codeword search, encode/decode, distance tables, PQ and OPQ training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GSLQ_MAX_D (1 << 16)

int gslq__check_dims(int d, int M, int K, gslq_error *err)
{
    if (d < 1 || d > GSLQ_MAX_D) return gslq__fail(err, GSLQ_EINVAL, "PQ: dimension d=%d out of range 1..%d", d, GSLQ_MAX_D);
    if (M < 1 || M > d) return gslq__fail(err, GSLQ_EINVAL, "PQ: sub-quantizers M=%d out of range 1..d=%d", M, d);
    if (d % M) return gslq__fail(err, GSLQ_EINVAL, "PQ: d=%d is not divisible by M=%d", d, M);
    if (K < 2 || K > 256) return gslq__fail(err, GSLQ_EINVAL, "PQ: codewords K=%d out of range 2..256", K);
    return GSLQ_OK;
}

int gslq_pq_init(gslq_pq *pq, int d, int M, int K, gslq_error *err)
{
    if (!pq) return gslq__fail(err, GSLQ_EINVAL, "pq_init: NULL pq");
    memset(pq, 0, sizeof *pq);
    int rc = gslq__check_dims(d, M, K, err);
    if (rc) return rc;
    pq->centroids = gslq__alloc((size_t)K, (size_t)d, sizeof(float), 1); /* M*K*dsub = K*d */
    if (!pq->centroids) return gslq__fail(err, GSLQ_ENOMEM, "pq_init: cannot allocate %d x %d centroids", K, d);
    pq->d = d; pq->M = M; pq->K = K; pq->dsub = d / M;
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_pq_copy(gslq_pq *dst, const gslq_pq *src, gslq_error *err)
{
    if (!dst || !src || !src->centroids) return gslq__fail(err, GSLQ_EINVAL, "pq_copy: NULL argument");
    int rc = gslq_pq_init(dst, src->d, src->M, src->K, err);
    if (rc) return rc;
    memcpy(dst->centroids, src->centroids, (size_t)src->K * src->d * sizeof(float));
    if (src->rotation) {
        dst->rotation = gslq__alloc((size_t)src->d, (size_t)src->d, sizeof(float), 0);
        if (!dst->rotation) {
            gslq_pq_free(dst);
            return gslq__fail(err, GSLQ_ENOMEM, "pq_copy: cannot allocate the %d x %d rotation", src->d, src->d);
        }
        memcpy(dst->rotation, src->rotation, (size_t)src->d * src->d * sizeof(float));
    }
    gslq__ok(err);
    return GSLQ_OK;
}

void gslq_pq_free(gslq_pq *pq)
{
    if (!pq) return;
    free(pq->centroids);
    free(pq->rotation);
    memset(pq, 0, sizeof *pq);
}

/* ---- rotation ---- */

#define ROT_TMP 16384 /* floats of stack scratch, so that x == y works */

static void rotate_impl(const gslq_pq *pq, const float *x, float *y, size_t n, int inverse)
{
    int d = pq->d;
    if (!pq->rotation) {
        if (x != y) memmove(y, x, n * (size_t)d * sizeof(float));
        return;
    }
    if (x != y) { /* Y (n, d) = X R^T, or X R for the inverse */
        for (size_t i0 = 0; i0 < n; i0 += 1 << 20) {
            size_t nb = n - i0 < (1u << 20) ? n - i0 : (1u << 20);
            gslq__sgemm(0, inverse ? 0 : 1, (int)nb, d, d, 1.0f, x + i0 * d, d, pq->rotation, d, 0.0f, y + i0 * d, d);
        }
        return;
    }
    float tmp[ROT_TMP];
    GSLQ_ASSERT(d <= ROT_TMP);
    size_t rows = ROT_TMP / (size_t)d;
    for (size_t i0 = 0; i0 < n; i0 += rows) {
        size_t nb = n - i0 < rows ? n - i0 : rows;
        memcpy(tmp, x + i0 * d, nb * d * sizeof(float));
        gslq__sgemm(0, inverse ? 0 : 1, (int)nb, d, d, 1.0f, tmp, d, pq->rotation, d, 0.0f, y + i0 * d, d);
    }
}

void gslq_pq_rotate(const gslq_pq *pq, const float *x, float *y, size_t n) { rotate_impl(pq, x, y, n, 0); }
void gslq_pq_unrotate(const gslq_pq *pq, const float *y, float *x, size_t n) { rotate_impl(pq, y, x, n, 1); }

/* ---- codeword search for one sub-vector ---- */

int gslq_pq_nearest(const gslq_pq *pq, int m, const float *xsub, int k, int *idx, float *dist2)
{
    if (!pq || !pq->centroids || !xsub || !idx || m < 0 || m >= pq->M || k < 1 || k > pq->K) return GSLQ_EINVAL;
    int ds = pq->dsub, n = 0;
    const float *c = pq->centroids + (size_t)m * pq->K * ds;
    float bd[256];
    for (int j = 0; j < pq->K; j++, c += ds) {
        float s = 0;
        for (int t = 0; t < ds; t++) {
            float df = xsub[t] - c[t];
            s += df * df;
        }
        if (n == k && !(s < bd[n - 1])) continue; /* equal distance: the earlier index wins */
        int i = n < k ? n++ : k - 1;
        while (i > 0 && s < bd[i - 1]) { bd[i] = bd[i - 1]; idx[i] = idx[i - 1]; i--; }
        bd[i] = s; idx[i] = j;
    }
    if (dist2) memcpy(dist2, bd, (size_t)k * sizeof(float));
    return GSLQ_OK;
}

/* ---- encode ---- */

#define ENC_BLOCK 256

typedef struct {
    const gslq_pq *pq;
    const float *x;
    size_t n;
    uint8_t *codes;
    const float *cnorm; /* (M, K): sgemm path */
    const float *ctb, *cnb; /* (M, kp*dsub), (M, kp): direct path (dsub <= GSLQ_DIRECT_MAXD), kern.c layout */
    int level;
    int *rcs;
} enc_ctx;

static void encode_part(void *arg, int t, int nt)
{
    enc_ctx *a = arg;
    const gslq_pq *pq = a->pq;
    int d = pq->d, M = pq->M, K = pq->K, ds = pq->dsub, kp = GSLQ_KPAD(K);
    size_t nblks = (a->n + ENC_BLOCK - 1) / ENC_BLOCK, b0, b1;
    gslq__split(nblks, t, nt, &b0, &b1);
    if (b0 >= b1) return;
    float *work = a->ctb ? gslq__alloc(1, 1, 1, 0) : gslq__alloc(gslq__assign_work_size(K), sizeof(float), 1, 0);
    float *rot = pq->rotation ? gslq__alloc(ENC_BLOCK, (size_t)d, sizeof(float), 0) : NULL;
    int idx[ENC_BLOCK];
    if (!work || (pq->rotation && !rot)) {
        a->rcs[t] = GSLQ_ENOMEM;
        free(work); free(rot);
        return;
    }
    for (size_t b = b0; b < b1; b++) {
        size_t i0 = b * ENC_BLOCK, nb = a->n - i0 < ENC_BLOCK ? a->n - i0 : ENC_BLOCK;
        const float *y = a->x + i0 * d;
        if (rot) {
            gslq_pq_rotate(pq, y, rot, nb);
            y = rot;
        }
        for (int m = 0; m < M; m++) {
            if (a->ctb) {
                gslq__near_rows(a->level, y + m * ds, nb, (size_t)d, ds, a->ctb + (size_t)m * kp * ds,
                                a->cnb + (size_t)m * kp, kp, idx, NULL);
            } else {
                gslq__assign(y + m * ds, nb, ds, (size_t)d, pq->centroids + (size_t)m * K * ds,
                             a->cnorm + (size_t)m * K, K, idx, NULL, work);
            }
            uint8_t *c = a->codes + i0 * M + m;
            for (size_t i = 0; i < nb; i++) c[i * M] = (uint8_t)idx[i];
        }
    }
    free(work); free(rot);
}

static int check_pq(const gslq_pq *pq, const char *fn, gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "%s: NULL or uninitialised pq", fn);
    int rc = gslq__check_dims(pq->d, pq->M, pq->K, err);
    if (rc) return rc;
    if (pq->dsub != pq->d / pq->M) return gslq__fail(err, GSLQ_EINVAL, "%s: dsub=%d != d/M", fn, pq->dsub);
    return GSLQ_OK;
}

int gslq__check_pq_dim(const gslq_pq *pq, int d, const char *fn, gslq_error *err)
{
    int rc = check_pq(pq, fn, err);
    if (rc) return rc;
    if (d != pq->d)
        return gslq__fail(err, GSLQ_EINVAL, "%s: vectors of dimension %d, but the codebook is for dimension %d "
                          "(M=%d sub-vectors of %d)", fn, d, pq->d, pq->M, pq->dsub);
    return GSLQ_OK;
}

int gslq__pq_encode_level(const gslq_pq *pq, const float *x, size_t n, uint8_t *codes, int nthreads, int level,
                          gslq_error *err)
{
    int rc = check_pq(pq, "pq_encode", err);
    if (rc) return rc;
    if (n && (!x || !codes)) return gslq__fail(err, GSLQ_EINVAL, "pq_encode: NULL vectors or codes");
    int M = pq->M, K = pq->K, ds = pq->dsub, nt = nthreads < 1 ? 1 : nthreads, kp = GSLQ_KPAD(K);
    if (nt > 256) nt = 256;
    int rcs[256] = {0};
    enc_ctx a = {pq, x, n, codes, NULL, NULL, NULL, gslq__kern_clamp(level), rcs};
    float *cnorm = NULL, *ctb = NULL, *cnb = NULL;
    if (ds <= GSLQ_DIRECT_MAXD) {
        ctb = gslq__alloc((size_t)M * kp, (size_t)ds, sizeof(float), 0);
        cnb = gslq__alloc((size_t)M, (size_t)kp, sizeof(float), 0);
        if (!ctb || !cnb) {
            free(ctb); free(cnb);
            return gslq__fail(err, GSLQ_ENOMEM, "pq_encode: out of memory");
        }
        for (int m = 0; m < M; m++)
            gslq__blocks_layout(pq->centroids + (size_t)m * K * ds, K, ds, gslq__kern_bw(a.level),
                                ctb + (size_t)m * kp * ds, cnb + (size_t)m * kp);
        a.ctb = ctb;
        a.cnb = cnb;
    } else {
        if (!(cnorm = gslq__alloc((size_t)M, (size_t)K, sizeof(float), 0)))
            return gslq__fail(err, GSLQ_ENOMEM, "pq_encode: out of memory");
        for (int j = 0; j < M * K; j++) {
            const float *c = pq->centroids + (size_t)j * ds;
            float s = 0;
            for (int t = 0; t < ds; t++) s += c[t] * c[t];
            cnorm[j] = s;
        }
        a.cnorm = cnorm;
    }
    /* no more threads than blocks of points: each thread allocates its scratch */
    size_t nblks = (n + ENC_BLOCK - 1) / ENC_BLOCK;
    if ((size_t)nt > nblks) nt = nblks ? (int)nblks : 1;
    gslq__parallel(nt, encode_part, &a);
    free(cnorm); free(ctb); free(cnb);
    for (int t = 0; t < nt; t++)
        if (rcs[t]) return gslq__fail(err, rcs[t], "pq_encode: out of memory");
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_pq_encode_mt(const gslq_pq *pq, const float *x, size_t n, int d, uint8_t *codes, int nthreads,
                      gslq_error *err)
{
    int rc = gslq__check_pq_dim(pq, d, "pq_encode", err);
    return rc ? rc : gslq__pq_encode_level(pq, x, n, codes, nthreads, -1, err);
}

int gslq_pq_encode(const gslq_pq *pq, const float *x, size_t n, int d, uint8_t *codes, gslq_error *err)
{
    return gslq_pq_encode_mt(pq, x, n, d, codes, 1, err);
}

int gslq_pq_decode(const gslq_pq *pq, const uint8_t *codes, size_t n, float *x, gslq_error *err)
{
    int rc = check_pq(pq, "pq_decode", err);
    if (rc) return rc;
    if (n && (!x || !codes)) return gslq__fail(err, GSLQ_EINVAL, "pq_decode: NULL vectors or codes");
    int d = pq->d, M = pq->M, K = pq->K, ds = pq->dsub;
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < M; m++) {
            int c = codes[i * M + m];
            if (c >= K) return gslq__fail(err, GSLQ_EINVAL, "pq_decode: code %d of vector %zu >= K=%d", c, i, K);
            memcpy(x + i * d + m * ds, pq->centroids + ((size_t)m * K + c) * ds, (size_t)ds * sizeof(float));
        }
    if (pq->rotation) gslq_pq_unrotate(pq, x, x, n);
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_pq_mse(const gslq_pq *pq, const float *x, size_t n, int d, int nthreads, double *mse, gslq_error *err)
{
    int rc = gslq__check_pq_dim(pq, d, "pq_mse", err);
    if (rc) return rc;
    if (!mse || (n && !x)) return gslq__fail(err, GSLQ_EINVAL, "pq_mse: NULL argument");
    int M = pq->M;
    size_t blk = 4096;
    uint8_t *codes = gslq__alloc(blk, (size_t)M, 1, 0);
    float *rec = gslq__alloc(blk, (size_t)d, sizeof(float), 0);
    if (!codes || !rec) {
        free(codes); free(rec);
        return gslq__fail(err, GSLQ_ENOMEM, "pq_mse: out of memory");
    }
    double s = 0;
    for (size_t i0 = 0; i0 < n && rc == GSLQ_OK; i0 += blk) {
        size_t nb = n - i0 < blk ? n - i0 : blk;
        rc = gslq__pq_encode_level(pq, x + i0 * d, nb, codes, nthreads, -1, err);
        if (!rc) rc = gslq_pq_decode(pq, codes, nb, rec, err);
        for (size_t i = 0; !rc && i < nb * d; i++) {
            double df = (double)x[i0 * d + i] - rec[i];
            s += df * df;
        }
    }
    free(codes); free(rec);
    if (rc) return rc;
    *mse = n ? s / (double)n : 0.0;
    gslq__ok(err);
    return GSLQ_OK;
}

/* ---- distance tables ---- */

int gslq_pq_distance_table(const gslq_pq *pq, const float *q, int d, float *table, gslq_error *err)
{
    int rc = gslq__check_pq_dim(pq, d, "pq_distance_table", err);
    if (rc) return rc;
    if (!q || !table) return gslq__fail(err, GSLQ_EINVAL, "pq_distance_table: NULL argument");
    int M = pq->M, K = pq->K, ds = pq->dsub;
    float stackbuf[1024], *y = stackbuf, *heap = NULL;
    if (pq->rotation) {
        if (d > 1024 && !(y = heap = gslq__alloc((size_t)d, sizeof(float), 1, 0)))
            return gslq__fail(err, GSLQ_ENOMEM, "pq_distance_table: out of memory");
        gslq_pq_rotate(pq, q, y, 1);
    } else {
        y = (float *)q;
    }
    for (int m = 0; m < M; m++) {
        const float *ym = y + m * ds, *c = pq->centroids + (size_t)m * K * ds;
        for (int k = 0; k < K; k++, c += ds) {
            float s = 0;
            for (int t = 0; t < ds; t++) {
                float df = ym[t] - c[t];
                s += df * df;
            }
            table[m * K + k] = s;
        }
    }
    free(heap);
    gslq__ok(err);
    return GSLQ_OK;
}

float gslq_adc_distance(const gslq_pq *pq, const float *table, const uint8_t *code)
{
    /* the summation order of the search kernels (search.c): four interleaved partial sums */
    int M = pq->M, K = pq->K;
    if (M < 4) {
        float s = table[code[0]];
        for (int m = 1; m < M; m++) s += table[m * K + code[m]];
        return s;
    }
    float s[4];
    for (int j = 0; j < 4; j++) s[j] = table[j * K + code[j]];
    for (int m = 4; m < M; m++) s[m & 3] += table[m * K + code[m]];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* ---- training ---- */

typedef struct {
    gslq_pq *pq;
    const float *y;  /* (n, d) rotated training vectors */
    size_t n;
    gslq_train_params p; /* per-sub-space seed derived from p.seed */
    int inner_threads;
    int *rcs;        /* (M) */
    gslq_error *errs;/* (M) */
} train_ctx;

static void train_sub(train_ctx *a, int m, float *buf)
{
    gslq_pq *pq = a->pq;
    int d = pq->d, ds = pq->dsub, K = pq->K;
    for (size_t i = 0; i < a->n; i++) memcpy(buf + i * ds, a->y + i * d + m * ds, (size_t)ds * sizeof(float));
    gslq_train_params p = a->p;
    p.seed = a->p.seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(m + 1);
    p.nthreads = a->inner_threads;
    p.max_points = 0;
    gslq_kmeans_stats st;
    a->rcs[m] = gslq_kmeans(buf, a->n, ds, K, pq->centroids + (size_t)m * K * ds, &p, NULL,
                            p.verbose ? &st : NULL, &a->errs[m]);
    if (p.verbose && !a->rcs[m])
        fprintf(stderr, "pq: sub-quantizer %d: %d iterations, objective %.6g -> %.6g\n", m, st.iters, st.obj_init,
                st.obj);
}

static void train_part(void *arg, int t, int nt)
{
    train_ctx *a = arg;
    float *buf = gslq__alloc(a->n, (size_t)a->pq->dsub, sizeof(float), 0);
    for (int m = t; m < a->pq->M; m += nt) {
        if (!buf) {
            a->rcs[m] = gslq__fail(&a->errs[m], GSLQ_ENOMEM, "pq_train: out of memory");
            continue;
        }
        train_sub(a, m, buf);
    }
    free(buf);
}

/* Random subset of at most max_points rows (copied), or x itself. */
static int subsample(const float *x, size_t n, int d, size_t max_points, uint64_t seed, const float **out,
                     float **owned, size_t *nout)
{
    *owned = NULL;
    *out = x;
    *nout = n;
    if (!max_points || n <= max_points) return GSLQ_OK;
    size_t *perm = gslq__alloc(n, sizeof(size_t), 1, 0);
    float *s = gslq__alloc(max_points, (size_t)d, sizeof(float), 0);
    if (!perm || !s) {
        free(perm); free(s);
        return GSLQ_ENOMEM;
    }
    gslq_rng rng;
    gslq__rng_seed(&rng, seed ^ 0x5DEECE66DULL);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < max_points; i++) {
        size_t r = i + gslq__rng_below(&rng, n - i), t = perm[i];
        perm[i] = perm[r]; perm[r] = t;
        memcpy(s + i * d, x + perm[i] * d, (size_t)d * sizeof(float));
    }
    free(perm);
    *owned = s;
    *out = s;
    *nout = max_points;
    return GSLQ_OK;
}

/* Trains the sub-quantizers on already rotated vectors y (n, d). */
static int train_rotated(gslq_pq *pq, const float *y, size_t n, const gslq_train_params *p, gslq_error *err)
{
    int M = pq->M, nt = p->nthreads < 1 ? 1 : p->nthreads;
    /* sub-spaces in parallel; spare threads (nt > M) go inside each k-means. Results do not depend on either.
     * Distributed: one sub-space after the other (their reductions are collectives, in order), threads inside. */
    int outer = nt <= M ? nt : M, inner = nt <= M ? 1 : (nt + M - 1) / M;
    if (p->comm && p->comm->size > 1) outer = 1, inner = nt;
    int *rcs = gslq__alloc((size_t)M, sizeof(int), 1, 1);
    gslq_error *errs = gslq__alloc((size_t)M, sizeof(gslq_error), 1, 1);
    if (!rcs || !errs) {
        free(rcs); free(errs);
        return gslq__fail(err, GSLQ_ENOMEM, "pq_train: out of memory");
    }
    train_ctx a = {pq, y, n, *p, inner, rcs, errs};
    gslq__parallel(outer, train_part, &a);
    int rc = GSLQ_OK;
    for (int m = 0; m < M && !rc; m++)
        if (rcs[m]) rc = gslq__fail(err, rcs[m], "pq_train: sub-quantizer %d: %s", m, errs[m].msg);
    free(rcs); free(errs);
    return rc;
}

static int check_train(gslq_pq *pq, const float *x, size_t n, const gslq_train_params *p, const char *fn,
                       gslq_error *err)
{
    int rc = check_pq(pq, fn, err);
    if (rc) return rc;
    const gslq_comm *comm = p && p->comm && p->comm->size > 1 ? p->comm : NULL;
    if ((!x && !(comm && n == 0)) || !p) return gslq__fail(err, GSLQ_EINVAL, "%s: NULL vectors or parameters", fn);
    size_t use = p->max_points && p->max_points < n ? p->max_points : n; /* distributed: the total of the shards */
    if ((rc = gslq__comm_total(comm, use, &use))) return gslq__fail(err, rc, "%s: the communicator's allreduce failed", fn);
    if (use < (size_t)pq->K)
        return gslq__fail(err, GSLQ_EINVAL, "%s: %zu training vectors for K=%d codewords (need at least K)", fn, use,
                          pq->K);
    if (p->niter < 0 || p->opq_iter < 0 || p->opq_kmeans_iter < 0)
        return gslq__fail(err, GSLQ_EINVAL, "%s: negative iteration count", fn);
    return GSLQ_OK;
}

int gslq_pq_train(gslq_pq *pq, const float *x, size_t n, const gslq_train_params *p_in, gslq_error *err)
{
    gslq_train_params p;
    if (p_in) p = *p_in;
    else gslq_train_params_default(&p);
    int rc = check_train(pq, x, n, &p, "pq_train", err);
    if (rc) return rc;
    const float *xs;
    float *owned, *rot = NULL;
    size_t ns;
    rc = subsample(x, n, pq->d, p.max_points, p.seed, &xs, &owned, &ns);
    if (!rc && pq->rotation && !(rot = gslq__alloc(ns, (size_t)pq->d, sizeof(float), 0))) rc = GSLQ_ENOMEM;
    if ((rc = gslq__comm_agree(p.comm, rc))) {
        free(owned);
        return gslq__fail(err, rc, "pq_train: out of memory for %zu vectors (here or on another participant)", ns);
    }
    if (rot) {
        gslq_pq_rotate(pq, xs, rot, ns);
        xs = rot;
    }
    rc = train_rotated(pq, xs, ns, &p, err);
    free(owned); free(rot);
    if (!rc) gslq__ok(err);
    return rc;
}

int gslq_opq_train(gslq_pq *pq, const float *x, size_t n, const gslq_train_params *p_in, gslq_error *err)
{
    gslq_train_params p;
    if (p_in) p = *p_in;
    else gslq_train_params_default(&p);
    int rc = check_train(pq, x, n, &p, "opq_train", err);
    if (rc) return rc;
    int d = pq->d, nt = p.nthreads < 1 ? 1 : p.nthreads;
    const float *xs;
    float *owned;
    size_t ns;
    const gslq_comm *comm = p.comm && p.comm->size > 1 ? p.comm : NULL;
    rc = subsample(x, n, d, p.max_points, p.seed, &xs, &owned, &ns);
    int warm = p.warm_start && pq->rotation;
    if (!rc && !pq->rotation && !(pq->rotation = gslq__alloc((size_t)d, (size_t)d, sizeof(float), 0))) rc = GSLQ_ENOMEM;
    if ((rc = gslq__comm_agree(comm, rc))) {
        free(owned);
        return gslq__fail(err, rc, "opq_train: out of memory (here or on another participant)");
    }
    if (!warm) /* identity: the first alternation is plain PQ, and every step can only lower the error */
        for (int i = 0; i < d * d; i++) pq->rotation[i] = (i % (d + 1)) == 0;
    float *y = gslq__alloc(ns, (size_t)d, sizeof(float), 0), *yq = gslq__alloc(ns, (size_t)d, sizeof(float), 0);
    float *A = gslq__alloc((size_t)d, (size_t)d, sizeof(float), 0), *U = gslq__alloc((size_t)d, (size_t)d, sizeof(float), 0);
    float *Vt = gslq__alloc((size_t)d, (size_t)d, sizeof(float), 0), *S = gslq__alloc((size_t)d, sizeof(float), 1, 0);
    uint8_t *codes = gslq__alloc(ns, (size_t)pq->M, 1, 0);
    if ((rc = gslq__comm_agree(comm, !y || !yq || !A || !U || !Vt || !S || !codes ? GSLQ_ENOMEM : GSLQ_OK))) {
        rc = gslq__fail(err, rc, "opq_train: out of memory (%zu vectors of %d, here or on another participant)", ns, d);
        goto done;
    }
    /* a view of pq without rotation, to encode/decode in the rotated space */
    gslq_pq plain = *pq;
    plain.rotation = NULL;
    for (int it = 0; it < p.opq_iter; it++) {
        gslq_pq_rotate(pq, xs, y, ns);
        gslq_train_params pi = p;
        pi.warm_start = it > 0 || p.warm_start;
        pi.niter = it == 0 && !p.warm_start ? p.niter : p.opq_kmeans_iter;
        pi.verbose = 0;
        if ((rc = train_rotated(&plain, y, ns, &pi, err))) goto done;
        if ((rc = gslq_pq_encode_mt(&plain, y, ns, plain.d, codes, nt, err))) goto done;
        if ((rc = gslq_pq_decode(&plain, codes, ns, yq, err))) goto done;
        if (p.verbose) {
            double e[2] = {0, (double)ns};
            for (size_t i = 0; i < ns * d; i++) e[0] += (double)(y[i] - yq[i]) * (y[i] - yq[i]);
            if (gslq__comm_reduce(comm, e, 2, GSLQ_REDUCE_SUM)) { rc = GSLQ_ECOMM; break; }
            fprintf(stderr, "opq: iteration %d: mse %.6g\n", it, e[1] > 0 ? e[0] / e[1] : 0.0);
        }
        /* Procrustes: R = argmin |R X - Yq| over orthogonal R = V U^T where X^T Yq = U S V^T; distributed: the sum
         * of the shards' X^T Yq, decomposed on participant 0, whose rotation everyone takes */
        if (ns) gslq__sgemm(1, 0, d, d, (int)ns, 1.0f, xs, d, yq, d, 0.0f, A, d);
        else memset(A, 0, (size_t)d * d * sizeof(float));
        if (comm && (rc = gslq__comm_sum_f(comm, A, (size_t)d * d))) break;
        int svd = !comm || comm->rank == 0 ? gslq__svd(d, A, U, S, Vt) : GSLQ_OK;
        if ((rc = gslq__comm_agree(comm, svd))) {
            rc = gslq__fail(err, rc, "opq_train: SVD of the %d x %d Procrustes matrix failed at iteration %d", d, d, it);
            goto done;
        }
        if (!comm || comm->rank == 0) gslq__sgemm(1, 1, d, d, d, 1.0f, Vt, d, U, d, 0.0f, pq->rotation, d);
        if (comm && (rc = gslq__comm_share_f(comm, pq->rotation, (size_t)d * d))) break;
    }
    if (rc == GSLQ_ECOMM) {
        rc = gslq__fail(err, rc, "opq_train: a collective of the communicator failed");
        goto done;
    }
    /* final codebook in the final rotated space */
    gslq_pq_rotate(pq, xs, y, ns);
    {
        gslq_train_params pf = p;
        pf.warm_start = p.opq_iter > 0 || p.warm_start;
        rc = train_rotated(&plain, y, ns, &pf, err);
    }
done:
    free(owned); free(y); free(yq); free(A); free(U); free(Vt); free(S); free(codes);
    if (!rc) gslq__ok(err);
    return rc;
}
