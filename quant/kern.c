/* Nearest-centroid kernels for small dimensions (d <= GSLQ_DIRECT_MAXD): the PQ sub-spaces. Used by encode and by
 * k-means. The centroids are laid out in blocks of 8 (16 for AVX-512), transposed, so that one vector load gives
 * coordinate t of a block of centroids; a point's coordinate is broadcast and the values |c|^2 - 2 x.c of the block
 * grow side by side.
 *
 * Two arithmetics: the AVX2 and AVX-512 kernels (chosen at run time) compute every value as s = |c_j|^2, then
 * s = fma(-2 x_t, c_jt, s) for t = 0..d-1, and give the same bits; the portable kernels (4 lanes, the
 * -march=x86-64-v2 baseline) round the multiply and the add separately, as the scalar reference does. The two agree
 * except where two centroids tie to within rounding (tested). Nothing else may be contracted into fused
 * multiply-adds: the library is compiled with -std=c11, where GCC does not contract, and the pragma below tells
 * Clang the same. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- portable: 4 lanes (SSE on x86-64, generic vectors elsewhere) ---- */
typedef float kv4 __attribute__((vector_size(16)));
typedef int32_t ki4 __attribute__((vector_size(16)));
#define KW 4
#define KV kv4
#define KI ki4
#define KSUF _w4
#define KTARGET
#define KP 2
#define KSPLAT(f) ((KV){(f), (f), (f), (f)})
#define KBLEND(m, a, b) ((KV)((((KI)(a)) & (m)) | (((KI)(b)) & ~(m))))
#define KFMA(a, b, c) ((c) + (a) * (b)) /* contraction is off: a multiply, then an add */
#include "kern_body.h"
#undef KFMA
#undef KW
#undef KV
#undef KI
#undef KSUF
#undef KTARGET
#undef KP
#undef KBLEND
#undef KSPLAT

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GSLQ_NO_SIMD_DISPATCH)
#define GSLQ_X86_DISPATCH 1
#include <immintrin.h>

/* ---- AVX-512: blocks of 16 centroids (ctb (kp/16, d, 16)), mask registers for the running arg-min. The same
 * fused multiply-adds per lane as the AVX2 kernels. ---- */
#define T512 __attribute__((target("avx2,fma,avx512f")))

static inline __attribute__((always_inline)) T512 void knear16(const float *x, size_t n, size_t ldx, int d,
                                                                const float *ctb, const float *cnb, int kp, int *idx,
                                                                float *best, float *second, const int two)
{
    const int nb16 = kp / 16;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    float xm[4][GSLQ_DIRECT_MAXD];
    for (size_t i0 = 0; i0 < n; i0 += 4) {
        int np = n - i0 < 4 ? (int)(n - i0) : 4;
        for (int p = 0; p < 4; p++) {
            const float *xp = x + (i0 + (size_t)(p < np ? p : np - 1)) * ldx;
            for (int t = 0; t < d; t++) xm[p][t] = -2.0f * xp[t];
        }
        __m512 mv[4], sv[4];
        __m512i mi[4];
        for (int p = 0; p < 4; p++) {
            mv[p] = sv[p] = _mm512_set1_ps(INFINITY);
            mi[p] = _mm512_setzero_si512();
        }
#define UPD16(A, B)                                                                                         \
    do {                                                                                                    \
        __m512i jv = _mm512_add_epi32(lane, _mm512_set1_epi32((B) * 16));                                   \
        for (int p = 0; p < 4; p++) {                                                                       \
            __mmask16 lt = _mm512_cmp_ps_mask(A, mv[p], _CMP_LT_OQ);                                        \
            if (two) {                                                                                      \
                __mmask16 lt2 = _mm512_cmp_ps_mask(A, sv[p], _CMP_LT_OQ);                                   \
                sv[p] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(sv[p], lt2, A), lt, mv[p]);                   \
            }                                                                                               \
            mv[p] = _mm512_mask_mov_ps(mv[p], lt, A);                                                       \
            mi[p] = _mm512_mask_mov_epi32(mi[p], lt, jv);                                                   \
        }                                                                                                   \
    } while (0)
        int b = 0;
        for (; b + 2 <= nb16; b += 2) {
            const float *c0 = ctb + (size_t)b * d * 16, *c1 = c0 + (size_t)d * 16;
            __m512 a[4][2];
            for (int p = 0; p < 4; p++) {
                a[p][0] = _mm512_loadu_ps(cnb + b * 16);
                a[p][1] = _mm512_loadu_ps(cnb + b * 16 + 16);
            }
            for (int t = 0; t < d; t++) {
                __m512 v0 = _mm512_loadu_ps(c0 + t * 16), v1 = _mm512_loadu_ps(c1 + t * 16);
                for (int p = 0; p < 4; p++) {
                    __m512 xb = _mm512_set1_ps(xm[p][t]);
                    a[p][0] = _mm512_fmadd_ps(xb, v0, a[p][0]);
                    a[p][1] = _mm512_fmadd_ps(xb, v1, a[p][1]);
                }
            }
            UPD16(a[p][0], b);
            UPD16(a[p][1], b + 1);
        }
        if (b < nb16) {
            const float *c0 = ctb + (size_t)b * d * 16;
            __m512 a[4];
            for (int p = 0; p < 4; p++) a[p] = _mm512_loadu_ps(cnb + b * 16);
            for (int t = 0; t < d; t++) {
                __m512 v0 = _mm512_loadu_ps(c0 + t * 16);
                for (int p = 0; p < 4; p++) a[p] = _mm512_fmadd_ps(_mm512_set1_ps(xm[p][t]), v0, a[p]);
            }
            UPD16(a[p], b);
        }
#undef UPD16
        for (int p = 0; p < np; p++) {
            /* the smallest lane, then the lowest index among the lanes holding it */
            float bv = _mm512_reduce_min_ps(mv[p]);
            __mmask16 eq = _mm512_cmp_ps_mask(mv[p], _mm512_set1_ps(bv), _CMP_EQ_OQ);
            int bi = eq ? _mm512_mask_reduce_min_epi32(eq, mi[p]) : 0;
            idx[i0 + p] = bi;
            if (best) best[i0 + p] = bv;
            if (two) { /* the other lanes' minima and the winning lane's second */
                __mmask16 w = eq & _mm512_cmpeq_epi32_mask(mi[p], _mm512_set1_epi32(bi));
                second[i0 + p] = eq ? _mm512_reduce_min_ps(_mm512_mask_mov_ps(mv[p], w, sv[p])) : NAN;
            }
        }
    }
}

T512 static void near_rows16(const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb, int kp,
                             int *idx, float *best)
{
    knear16(x, n, ldx, d, ctb, cnb, kp, idx, best, NULL, 0);
}

T512 static void near_rows2_16(const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb, int kp,
                               int *idx, float *best, float *second)
{
    knear16(x, n, ldx, d, ctb, cnb, kp, idx, best, second, 1);
}

/* one centroid's value with the FMA kernels' arithmetic */
__attribute__((target("fma"))) static inline float value_fma(const float *x, int d, const float *c, float cn)
{
    float s = cn;
    for (int t = 0; t < d; t++) s = __builtin_fmaf(-2.0f * x[t], c[t], s);
    return s;
}

typedef float kv8 __attribute__((vector_size(32)));
typedef int32_t ki8 __attribute__((vector_size(32)));
#define KW 8
#define KV kv8
#define KI ki8
#define KP 4
#define KSPLAT(f) ((KV){(f), (f), (f), (f), (f), (f), (f), (f)})
#define KBLEND(m, a, b) ((KV)((((KI)(a)) & (m)) | (((KI)(b)) & ~(m))))
#define KFMA(a, b, c) __builtin_ia32_vfmaddps256((a), (b), (c))
/* AVX2 and FMA, 16 registers */
#define KSUF _avx2
#define KTARGET __attribute__((target("avx2,fma")))
#include "kern_body.h"
#undef KSUF
#undef KTARGET
#undef KW
#undef KV
#undef KI
#undef KP
#undef KBLEND
#undef KSPLAT
#undef KFMA
#endif

/* ---- k-means++: distances of all points to the newest centre, vectorised over points (blocks of 16, transposed).
 * s = sum_t (x_t - c_t)^2 in order, a multiply and an add per step (never fused), so every level gives the same
 * bits and the seeding does not depend on the CPU. ---- */
typedef float v16f __attribute__((vector_size(64)));

#define PP_BODY                                                                                                 \
    {                                                                                                           \
        for (size_t b = b0; b < b1; b++) {                                                                      \
            v16f s = {0};                                                                                       \
            const float *xb = xt + b * (size_t)d * 16;                                                          \
            for (int t = 0; t < d; t++) {                                                                       \
                v16f xv, df, sq;                                                                                \
                memcpy(&xv, xb + (size_t)t * 16, sizeof xv);                                                    \
                df = xv - c[t];                                                                                 \
                sq = df * df;                                                                                   \
                s = s + sq;                                                                                     \
            }                                                                                                   \
            v16f m;                                                                                             \
            memcpy(&m, mind + b * 16, sizeof m);                                                                \
            m = (v16f)(((v16i)s & (v16i)(s < m)) | ((v16i)m & ~(v16i)(s < m)));                                 \
            memcpy(mind + b * 16, &m, sizeof m);                                                                \
        }                                                                                                       \
    }
typedef int32_t v16i __attribute__((vector_size(64)));

static void pp_w(const float *xt, int d, const float *c, float *mind, size_t b0, size_t b1) PP_BODY
#ifdef GSLQ_X86_DISPATCH
__attribute__((target("avx2"))) static void pp_avx2(const float *xt, int d, const float *c, float *mind, size_t b0,
                                                    size_t b1) PP_BODY
__attribute__((target("avx512f"))) static void pp_avx512(const float *xt, int d, const float *c, float *mind,
                                                         size_t b0, size_t b1) PP_BODY
#endif

void gslq__pp_update(int level, const float *xt, int d, const float *c, float *mind, size_t b0, size_t b1)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) { pp_avx512(xt, d, c, mind, b0, b1); return; }
    if (level == GSLQ_KERN_AVX2) { pp_avx2(xt, d, c, mind, b0, b1); return; }
#else
    (void)level;
#endif
    pp_w(xt, d, c, mind, b0, b1);
}

int gslq__kern_level(void)
{
#ifdef GSLQ_X86_DISPATCH
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("fma")) return GSLQ_KERN_PORTABLE;
    if (__builtin_cpu_supports("avx512f")) return GSLQ_KERN_AVX512;
    if (__builtin_cpu_supports("avx2")) return GSLQ_KERN_AVX2;
#endif
    return GSLQ_KERN_PORTABLE;
}

const char *gslq__kern_name(int level)
{
    switch (level) {
    case GSLQ_KERN_AVX2: return "avx2";
    case GSLQ_KERN_AVX512: return "avx512";
    default: return "portable";
    }
}

int gslq__kern_bw(int level)
{
    return level == GSLQ_KERN_AVX512 ? 16 : 8;
}

int gslq__kern_clamp(int level)
{
    int max = gslq__kern_level();
    return level < 0 || level > max ? max : level;
}

void gslq__near_rows(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                     int kp, int *idx, float *best)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) { near_rows16(x, n, ldx, d, ctb, cnb, kp, idx, best); return; }
    if (level == GSLQ_KERN_AVX2) { gslq__near_rows_avx2(x, n, ldx, d, ctb, cnb, kp, idx, best); return; }
#else
    (void)level;
#endif
    gslq__near_rows_w4(x, n, ldx, d, ctb, cnb, kp, idx, best);
}




void gslq__near_rows2(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                      int kp, int *idx, float *best, float *second)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) { near_rows2_16(x, n, ldx, d, ctb, cnb, kp, idx, best, second); return; }
    if (level == GSLQ_KERN_AVX2) { gslq__near_rows2_avx2(x, n, ldx, d, ctb, cnb, kp, idx, best, second); return; }
#else
    (void)level;
#endif
    gslq__near_rows2_w4(x, n, ldx, d, ctb, cnb, kp, idx, best, second);
}

void gslq__blocks_layout(const float *c, int k, int d, int bw, float *ctb, float *cnb)
{
    int kp = GSLQ_KPAD(k), nblk = kp / bw;
    for (int b = 0; b < nblk; b++)
        for (int l = 0; l < bw; l++) {
            int j = b * bw + l;
            float *dst = ctb + (size_t)b * d * bw + l;
            if (j < k) {
                const float *cj = c + (size_t)j * d;
                for (int t = 0; t < d; t++) dst[(size_t)t * bw] = cj[t];
                cnb[j] = gslq__norm2(cj, d);
            } else { /* padding: never the nearest */
                for (int t = 0; t < d; t++) dst[(size_t)t * bw] = 0.0f;
                cnb[j] = INFINITY;
            }
        }
}

float gslq__near_value(int level, const float *x, int d, const float *c, float cn)
{
#ifdef GSLQ_X86_DISPATCH
    if (level != GSLQ_KERN_PORTABLE) return value_fma(x, d, c, cn);
#else
    (void)level;
#endif
    float s = cn;
    for (int t = 0; t < d; t++) {
        float m = (-2.0f * x[t]) * c[t];
        s = s + m;
    }
    return s;
}

float gslq__norm2(const float *c, int d)
{
    float s = 0;
    for (int t = 0; t < d; t++) {
        float sq = c[t] * c[t];
        s = s + sq;
    }
    return s;
}

int gslq__near_ref(int level, const float *x, int d, const float *c, int k, float *best)
{
    float bv = INFINITY;
    int bi = 0;
    for (int j = 0; j < k; j++) {
        float s = gslq__near_value(level, x, d, c + (size_t)j * d, gslq__norm2(c + (size_t)j * d, d));
        if (s < bv) { bv = s; bi = j; }
    }
    if (best) *best = bv;
    return bi;
}
