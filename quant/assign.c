/* Nearest-centroid assignment through sgemm, under k-means and encoding for d > GSLQ_DIRECT_MAXD (kern.c has the
 * direct kernels for the PQ sub-spaces below that).
 * |x - c|^2 = |x|^2 - 2 x.c + |c|^2: the dot products of a block of points with every centroid come from one sgemm,
 * then a vectorised arg-min over |c|^2 - 2 x.c per point (ties by the lower centroid index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ASSIGN_ROWS 64 /* points per sgemm: small enough for L1/L2 and for OpenBLAS to stay single-threaded */

/* 4-lane vectors (GCC/Clang vector extensions; SSE on x86-64, NEON elsewhere). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static int padk(int k) { return (k + 3) & ~3; }

size_t gslq__assign_work_size(int k)
{
    /* dot block (ASSIGN_ROWS, kp) + cnorm padded (kp) + 4 floats of alignment slack */
    return (size_t)(ASSIGN_ROWS + 1) * (size_t)padk(k) + 4;
}

static inline v4f vmin(v4f a, v4f b)
{
#if defined(__SSE__)
    return __builtin_ia32_minps(a, b);
#else
    v4i lt = a < b;
    return (v4f)(((v4i)a & lt) | ((v4i)b & ~lt));
#endif
}

static inline int eq_mask(v4f a, v4f b)
{
#if defined(__SSE__)
    return __builtin_ia32_movmskps((v4f)(a == b));
#else
    v4i e = a == b;
    return (e[0] & 1) | (e[1] & 2) | (e[2] & 4) | (e[3] & 8);
#endif
}

/* Index of the smallest row[j] + cn[j], j < kp (cn padded with +inf), ties by the lower index: one pass for the
 * minimum, one for its first position (the sums are recomputed identically). */
static int argmin_row(const float *row, const float *cn, int kp, float *best)
{
    const v4f *r = (const v4f *)row, *c = (const v4f *)cn;
    int nv = kp / 4;
    v4f m0 = r[0] + c[0], m1 = m0;
    int j = 1;
    for (; j + 1 < nv; j += 2) {
        m0 = vmin(m0, r[j] + c[j]);
        m1 = vmin(m1, r[j + 1] + c[j + 1]);
    }
    if (j < nv) m0 = vmin(m0, r[j] + c[j]);
    m0 = vmin(m0, m1);
    float b = m0[0];
    for (int l = 1; l < 4; l++) b = m0[l] < b ? m0[l] : b;
    v4f bv = {b, b, b, b};
    for (j = 0; j < nv; j++) {
        int mask = eq_mask(r[j] + c[j], bv);
        if (mask) {
            *best = b;
            return 4 * j + __builtin_ctz((unsigned)mask);
        }
    }
    *best = b; /* NaN everywhere: fall back to 0 */
    return 0;
}

void gslq__assign(const float *x, size_t n, int d, size_t ldx, const float *c, const float *cnorm, int k, int *idx,
                  float *dist2, float *work)
{
    int kp = padk(k);
    float *w = (float *)(((uintptr_t)work + 15) & ~(uintptr_t)15);
    float *cn = w, *dots = w + kp;
    for (int j = 0; j < k; j++) cn[j] = cnorm[j];
    for (int j = k; j < kp; j++) cn[j] = INFINITY;
    for (size_t i0 = 0; i0 < n; i0 += ASSIGN_ROWS) {
        int nb = n - i0 < ASSIGN_ROWS ? (int)(n - i0) : ASSIGN_ROWS;
        const float *xb = x + i0 * ldx;
        if (kp != k) /* padded columns are never written by sgemm: keep them finite */
            for (int i = 0; i < nb; i++)
                for (int j = k; j < kp; j++) dots[(size_t)i * kp + j] = 0.0f;
        gslq__sgemm(0, 1, nb, k, d, -2.0f, xb, (int)ldx, c, d, 0.0f, dots, kp);
        for (int i = 0; i < nb; i++) {
            float best;
            int bi = argmin_row(dots + (size_t)i * kp, cn, kp, &best);
            idx[i0 + i] = bi;
            if (dist2) {
                const float *xi = xb + (size_t)i * ldx;
                float xx = 0;
                for (int t = 0; t < d; t++) xx += xi[t] * xi[t];
                float dd = xx + best;
                dist2[i0 + i] = dd > 0 ? dd : 0;
            }
        }
    }
}

typedef struct {
    const float *x, *c, *cnorm;
    size_t n, ldx;
    int d, k;
    int *idx;
    float *dist2;
    float **work;
} assign_ctx;

static void assign_part(void *arg, int t, int nt)
{
    assign_ctx *a = arg;
    size_t b, e;
    gslq__split(a->n, t, nt, &b, &e);
    /* align the split on sgemm blocks so the arithmetic is the same for every thread count */
    b = (b + ASSIGN_ROWS - 1) / ASSIGN_ROWS * ASSIGN_ROWS;
    e = t == nt - 1 ? a->n : (e + ASSIGN_ROWS - 1) / ASSIGN_ROWS * ASSIGN_ROWS;
    if (b >= e) return;
    if (e > a->n) e = a->n;
    gslq__assign(a->x + b * a->ldx, e - b, a->d, a->ldx, a->c, a->cnorm, a->k, a->idx + b,
                 a->dist2 ? a->dist2 + b : NULL, a->work[t]);
}

int gslq__assign_mt(const float *x, size_t n, int d, size_t ldx, const float *c, int k, int *idx, float *dist2,
                    int nthreads)
{
    int nt = nthreads < 1 ? 1 : nthreads;
    if ((size_t)nt > n / ASSIGN_ROWS + 1) nt = (int)(n / ASSIGN_ROWS + 1);
    float *cnorm = gslq__alloc((size_t)k, sizeof(float), 1, 0);
    float **work = gslq__alloc((size_t)nt, sizeof(float *), 1, 1);
    int rc = GSLQ_OK;
    if (!cnorm || !work) rc = GSLQ_ENOMEM;
    for (int t = 0; rc == GSLQ_OK && t < nt; t++)
        if (!(work[t] = gslq__alloc(gslq__assign_work_size(k), sizeof(float), 1, 0))) rc = GSLQ_ENOMEM;
    if (rc == GSLQ_OK) {
        for (int j = 0; j < k; j++) {
            float s = 0;
            for (int t = 0; t < d; t++) s += c[(size_t)j * d + t] * c[(size_t)j * d + t];
            cnorm[j] = s;
        }
        assign_ctx a = {x, c, cnorm, n, ldx, d, k, idx, dist2, work};
        gslq__parallel(nt, assign_part, &a);
    }
    if (work)
        for (int t = 0; t < nt; t++) free(work[t]);
    free(work);
    free(cnorm);
    return rc;
}
