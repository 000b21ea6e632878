/* libgslq internals shared by the files of quant/. Not installed; callers include gslq.h only. */
#ifndef GSLQ_INTERNAL_H
#define GSLQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "gslq.h"

/* Fills err (when non-NULL) with code and a printf-style message; returns code. */
int gslq__fail(gslq_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void gslq__ok(gslq_error *err);

/* Overflow-checked size arithmetic: return 0 and store the result, or -1 on overflow. */
int gslq__mul(size_t a, size_t b, size_t *out);
int gslq__mul3(size_t a, size_t b, size_t c, size_t *out);
/* malloc of a*b*c bytes (any factor may be 1) with overflow checks; NULL on overflow or failure. Zeroed when
 * zero != 0. Never NULL for a successful zero-byte request. */
void *gslq__alloc(size_t a, size_t b, size_t c, int zero);

/* Internal invariant violated: prints the location and aborts (never for user input). */
void gslq__die(const char *file, int line, const char *what);
#define GSLQ_ASSERT(c) do { if (!(c)) gslq__die(__FILE__, __LINE__, #c); } while (0)

/* Deterministic PRNG (splitmix64 seeding, xoshiro256**). */
typedef struct gslq_rng { uint64_t s[4]; } gslq_rng;
void gslq__rng_seed(gslq_rng *r, uint64_t seed);
uint64_t gslq__rng_next(gslq_rng *r);
double gslq__rng_uniform(gslq_rng *r);          /* [0, 1) */
uint64_t gslq__rng_below(gslq_rng *r, uint64_t n); /* [0, n), n > 0, unbiased */
double gslq__rng_normal(gslq_rng *r);

/* Runs fn(ctx, t, nt) for t = 0..nt-1, nt = max(1, nthreads), on nt-1 new threads and the caller. If a thread
 * cannot be created its share runs on the caller, so the work partition (and the result) depends on nt only. */
void gslq__parallel(int nthreads, void (*fn)(void *ctx, int t, int nt), void *ctx);
/* [begin, end) of part t of n items split into nt contiguous parts. */
void gslq__split(size_t n, int t, int nt, size_t *begin, size_t *end);

/* ---- comm.c: collectives over a gslq_comm (gslq.h); comm == NULL or size 1: one process, no calls ---- */
/* In place over all participants (op GSLQ_REDUCE_SUM or _MAX); GSLQ_OK or GSLQ_ECOMM. */
int gslq__comm_reduce(const gslq_comm *c, double *buf, size_t n, int op);
/* An agreement point: rc when this participant failed, GSLQ_ECOMM when another did, else GSLQ_OK. */
int gslq__comm_agree(const gslq_comm *c, int rc);
/* The sum of n over the participants. */
int gslq__comm_total(const gslq_comm *c, size_t n, size_t *total);
/* Participant 0's v (n floats) to everyone, exactly; the element-wise sum of v (rounded to float). */
int gslq__comm_share_f(const gslq_comm *c, float *v, size_t n);
int gslq__comm_sum_f(const gslq_comm *c, float *v, size_t n);
/* The same sample on every participant: min(want, total) rows drawn from the shards in proportion to their sizes
 * (seeded, distinct rows), in participant order; *out malloc'ed. */
int gslq__comm_gather_sample(const gslq_comm *c, const float *x, size_t n, int d, size_t want, uint64_t seed,
                             float **out, size_t *nout);
/* Repair of the empty cluster j over all shards: the point farthest from its centroid (d2) among the clusters of
 * >= 2 points by the global counts, ties by participant then index, moves to j. Updates the global sums gsum (k, d)
 * and counts gcount (k); work: d + 1 doubles. *from = its old cluster (-1: no point anywhere qualifies); *far = its
 * local index on the participant that holds it, n elsewhere. */
int gslq__comm_repair(const gslq_comm *c, const float *x, size_t n, int d, int j, const int *idx, const float *d2,
                      double *gsum, double *gcount, double *work, size_t *far, int *from);

/* ---- linalg.c: the only place that talks to BLAS/LAPACK ----
 * Row-major C = alpha * op(A) op(B) + beta * C, op(A) (m, k), op(B) (k, n); ta/tb: 0 plain, 1 transposed. */
void gslq__sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
/* The built-in blocked kernel (always compiled, used when GSLQ_NO_BLAS; exposed for the agreement test). */
void gslq__sgemm_builtin(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc);
/* SVD of a square (n, n) row-major A = U diag(S) Vt. Returns 0 or GSLQ_ELAPACK / GSLQ_ENOMEM. */
int gslq__svd(int n, const float *A, float *U, float *S, float *Vt);
/* The built-in one-sided Jacobi SVD (always compiled). */
int gslq__svd_builtin(int n, const float *A, float *U, float *S, float *Vt);
/* 1 when built against BLAS/LAPACKE. */
int gslq__have_blas(void);

/* ---- sgemm assignment, shared by k-means and encode for d > GSLQ_DIRECT_MAXD (assign.c) ----
 * For each of the n points x (n, d, row stride ldx), the index of the nearest of the k centroids c (k, d), ties by
 * the lower index, computed as |c|^2 - 2 x.c through sgemm; cnorm (k) = |c|^2 precomputed. Optionally the squared
 * distance (clamped >= 0, |x|^2 added). Single thread; work buffer from gslq__assign_work_size floats. */
size_t gslq__assign_work_size(int k);
void gslq__assign(const float *x, size_t n, int d, size_t ldx, const float *c, const float *cnorm, int k,
                  int *idx, float *dist2, float *work);
/* Threaded version: allocates its own work buffers; returns 0 or GSLQ_ENOMEM. */
int gslq__assign_mt(const float *x, size_t n, int d, size_t ldx, const float *c, int k, int *idx, float *dist2,
                    int nthreads);

/* Checks d, M, K of a PQ (message names the bad one). */
int gslq__check_dims(int d, int M, int K, gslq_error *err);

/* Binary heap keeping the k smallest (dist, id) pairs, largest on top. A pair is stored as one key,
 * gslq__key(dist, id) = float bits << 32 | id (dist clamped >= 0; ids < 2^32), so keys order as (dist, id). */
typedef struct gslq_heap { int k, n; uint64_t *key; } gslq_heap;
uint64_t gslq__key(float d, uint32_t id);
float gslq__key_dist(uint64_t key);
void gslq__heap_push(gslq_heap *h, uint64_t key);
void gslq__heap_sorted(gslq_heap *h, float *dist, int64_t *ids);

/* ADC kernels (search.c). T4 (M, K, 4): four queries' distance tables interleaved (gslq__interleave4 builds it
 * from up to four (M, K) tables; missing queries repeat the last). out (nb, 4): the four distances of each code. */
void gslq__interleave4(const float *tables, int nq, int MK, float *T4);
void gslq__adc_distances4(const uint8_t *codes, size_t nb, int M, int K, const float *T4, float *out);

/* ---- kern.c: nearest centroid for small dimensions (d <= GSLQ_DIRECT_MAXD) ----
 * Centroids c (k, d) padded to kp = GSLQ_KPAD(k) and laid out in blocks of bw = gslq__kern_bw(level) (8, or 16 for
 * AVX-512): ctb (kp/bw, d, bw) with ctb[(b*d + t)*bw + l] = c[b*bw + l][t]; cnb (kp) the squared norms
 * (gslq__norm2), padding centroids 0 with norm +inf. The value of centroid j for a point x is
 * s_j = cnb[j] + sum_t (-2 x_t) c_jt accumulated in order t = 0..d-1 (gslq__near_value): with fused multiply-adds at
 * the AVX2 and AVX-512 levels (identical bits), with a multiply and an add at the portable level. s_j = |x - c_j|^2 -
 * |x|^2 up to rounding. The nearest centroid is the first index of the smallest s_j (index 0 when none is below
 * +inf). */
#define GSLQ_DIRECT_MAXD 64
#define GSLQ_KPAD(k) (((k) + 15) / 16 * 16)
enum { GSLQ_KERN_PORTABLE = 0, GSLQ_KERN_AVX2 = 1, GSLQ_KERN_AVX512 = 2 };
int gslq__kern_level(void);            /* the best level this CPU runs */
int gslq__kern_clamp(int level);       /* level, or the best one when level < 0 or unsupported */
int gslq__kern_bw(int level);          /* block width of the layout for level */
const char *gslq__kern_name(int level);
void gslq__blocks_layout(const float *c, int k, int d, int bw, float *ctb, float *cnb);
/* idx (n): nearest centroid of each point x (n rows of d, stride ldx); best (n, optional): its value s. */
void gslq__near_rows(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                     int kp, int *idx, float *best);
/* The same, and second (n): the smallest value among the other centroids (NaN when no value is below +inf). */
void gslq__near_rows2(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                      int kp, int *idx, float *best, float *second);
/* k-means++: mind[i] = min(mind[i], |x_i - c|^2) for the points of blocks [b0, b1) of 16, xt (nblocks, d, 16) the
 * points transposed by blocks (padding points are computed too). Same bits at every level. */
void gslq__pp_update(int level, const float *xt, int d, const float *c, float *mind, size_t b0, size_t b1);
/* Scalar reference: |c|^2 in the kernels' order; s_j of one centroid c (d) with norm cn with the arithmetic of
 * level; the nearest of k centroids c (k, d). */
float gslq__norm2(const float *c, int d);
float gslq__near_value(int level, const float *x, int d, const float *c, float cn);
int gslq__near_ref(int level, const float *x, int d, const float *c, int k, float *best);

/* ---- lloyd.c: Lloyd iterations for d <= GSLQ_DIRECT_MAXD from the given centroids c (k, d), updated in place;
 * p->niter, tol, nthreads, verbose are used. Same contract as gslq_kmeans after the initialisation. bounds != 0
 * skips the points whose centroid provably stays (the result is the same; tests compare). Returns GSLQ_OK or
 * GSLQ_ENOMEM. */
int gslq__lloyd_direct(const float *x, size_t n, int d, int k, float *c, const gslq_train_params *p, int level,
                       int bounds, double *obj_trace, gslq_kmeans_stats *stats);
/* The end of a Lloyd run (both paths): participant 0's centroids (k, d) to every participant (identical bits even
 * where the reductions were not), and the statistics. Returns GSLQ_OK or GSLQ_ECOMM. */
int gslq__kmeans_finish(const gslq_comm *comm, float *c, int k, int d, int iters, double obj, int repaired,
                        gslq_kmeans_stats *stats);
/* gslq_pq_encode_mt with a given kernel level (< 0: the best; tests compare the levels). */
/* check_pq, and vectors of dimension d match the codebook's (the shape check of every public vector reader) */
int gslq__check_pq_dim(const gslq_pq *pq, int d, const char *fn, gslq_error *err);
int gslq__pq_encode_level(const gslq_pq *pq, const float *x, size_t n, uint8_t *codes, int nthreads, int level,
                          gslq_error *err);
/* |x - c|^2 summed directly (four partial sums, fixed order): relative error <= (d + 4) 2^-24. */
static inline float gslq__dist2_direct(const float *x, const float *c, int d)
{
    float s[4] = {0, 0, 0, 0};
    int t = 0;
    for (; t + 4 <= d; t += 4)
        for (int l = 0; l < 4; l++) {
            float df = x[t + l] - c[t + l];
            float sq = df * df;
            s[l] = s[l] + sq;
        }
    for (; t < d; t++) {
        float df = x[t] - c[t];
        float sq = df * df;
        s[0] = s[0] + sq;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#endif
