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

/* ---- kernels shared by k-means and encode (assign.c) ----
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
 * Centroids c (k, d) in blocks of 8: ctb (nblk, d, 8) with ctb[(b*d + t)*8 + l] = c[8b + l][t], cnb (nblk*8) the
 * squared norms (gslq__norm2), padding centroids 0 with norm +inf; nblk = ceil(k/8). The value of centroid j for a
 * point x is s_j = cnb[j] + sum_t (-2 x_t) c_jt summed in order t = 0..d-1, multiplies and adds rounded separately
 * (gslq__near_value), identical at every level: s_j = |x - c_j|^2 - |x|^2 up to rounding. The nearest centroid is
 * the first index of the smallest s_j (index 0 when none is below +inf). */
#define GSLQ_DIRECT_MAXD 64
enum { GSLQ_KERN_PORTABLE = 0, GSLQ_KERN_AVX2 = 1, GSLQ_KERN_AVX512 = 2 };
int gslq__kern_level(void);            /* the best level this CPU runs */
int gslq__kern_clamp(int level);       /* level, or the best one when level < 0 or unsupported */
const char *gslq__kern_name(int level);
void gslq__blocks_layout(const float *c, int k, int d, float *ctb, float *cnb);
/* idx (n): nearest centroid of each point x (n rows of d, stride ldx); best (n, optional): its value s. */
void gslq__near_rows(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                     int nblk, int *idx, float *best);
/* out (nb, 8): the values s of one point x (d) against blocks[0..nb-1]. */
void gslq__block_dists(int level, const float *x, int d, const float *ctb, const float *cnb, const int *blocks,
                       int nb, float *out);
/* Scalar reference: |c|^2 in the kernels' order; s_j of one centroid c (d) with norm cn; the nearest of k centroids
 * c (k, d). */
float gslq__norm2(const float *c, int d);
float gslq__near_value(const float *x, int d, const float *c, float cn);
int gslq__near_ref(const float *x, int d, const float *c, int k, float *best);
/* Bounded assignment of points [b, e) (lloyd.c explains the bounds). Floats rounded outwards. Per point: ub =
 * U - DcF[a] (U >= |x - c_a| is ub + DcF[a] now); r challengers ch (centroid ids) with cb = L_k + DcF[ch_k]
 * (L_k <= |x - c_ch_k|); rb = L + DmaxF with L below the distance to every other centroid; rb = -inf: unknown.
 * Writes nidx (and d2 when non-NULL). Scratch: buf GSLQ_BND_BUF(nblk) floats, ids GSLQ_BND_BATCH. Returns the
 * work done in blocks of 8 values (a challenger check counts 1). */
#define GSLQ_BND_R 8
#define GSLQ_BND_CH (GSLQ_BND_R + 1) /* ch per point: the challengers, then the nearest of the rest */
#define GSLQ_BND_BATCH 16
#define GSLQ_BND_CAND 64
/* gslq__lanes[m] lists the set bits of the 8-bit mask m, ascending (gslq__kern_level fills it). */
extern uint8_t gslq__lanes[256][8];
/* Sorts cand[0..n-1] (ids into v) by (v[id], id) far enough that the first min(n, R) are the smallest, in order;
 * returns min(n, R). */
int gslq__top_sort(const float *v, int *cand, int n, int R);
#define GSLQ_BND_BUF(nblk) ((size_t)GSLQ_BND_BATCH * (nblk) * 8)
typedef struct gslq__bnd {
    const float *x;
    int d, k, nblk, r, first;     /* r = min(GSLQ_BND_R, k - 1) challengers */
    const float *c, *ctb, *cnb;   /* centroids (k, d) and their block layout */
    const float *DcF;             /* (nblk*8) cumulative drift of each centroid, rounded up */
    float DmaxF, cmax2, cmax2x;   /* cumulative largest drift; >= max |c|^2, >= 2 max |c| */
    float gk, gd, slack;          /* rounding factors of the kernel value and of gslq__dist2_direct */
    const float *xn, *x2;         /* (n) |x| rounded up, |x|^2 rounded down */
    const int *idx;
    int *nidx;
    float *ub, *rb, *cb, *d2;     /* (n), (n), (n, GSLQ_BND_R), (n) */
    uint8_t *ch;                  /* (n, GSLQ_BND_CH) */
} gslq__bnd;
size_t gslq__bnd_range(int level, const gslq__bnd *Y, size_t b, size_t e, float *buf, size_t *ids);

/* ---- lloyd.c: Lloyd iterations for d <= GSLQ_DIRECT_MAXD from the given centroids c (k, d), updated in place;
 * p->niter, tol, nthreads, verbose, bounds are used. Same contract as gslq_kmeans after the initialisation.
 * Returns GSLQ_OK or GSLQ_ENOMEM. */
int gslq__lloyd_direct(const float *x, size_t n, int d, int k, float *c, const gslq_train_params *p, int level,
                       double *obj_trace, gslq_kmeans_stats *stats);
/* gslq_pq_encode_mt with a given kernel level (< 0: the best; tests compare the levels). */
int gslq__pq_encode_level(const gslq_pq *pq, const float *x, size_t n, uint8_t *codes, int nthreads, int level,
                          gslq_error *err);
/* |x - c|^2 summed directly (four partial sums, fixed order): relative error <= (d + 4) 2^-24. */
float gslq__dist2_direct(const float *x, const float *c, int d);

#endif
