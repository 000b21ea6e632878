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

/* ---- AVX-512 BF16 filter in front of the FMA kernel (CPUs with avx512bf16, e.g. Zen 4): the same answer, bit for
 * bit, for about half the multiply-adds. One vdpbf16ps does 32 multiply-adds where vfmadd231ps does 16, at the
 * same throughput, so pass 1 computes approximate values a_j = |c_j|^2 + sum_t bf16(-2 x_t) bf16(c_jt) (fp32
 * accumulation) for all centroids, keeping them and their minimum. With Delta >= |a_j - s_j| for every j (s_j the
 * FMA kernel's value), the brute-force answer j* (first index of min s) has a_j* <= s_j* + Delta <= s_j0 + Delta <=
 * min a + 2 Delta, where j0 = argmin a; so every minimiser of s is a candidate {j : a_j <= min a + 2 Delta}, and pass
 * 2 computes s_j exactly (the FMA kernel's chain s = |c_j|^2, s = fma(-2 x_t, c_jt, s)) for the candidates only and
 * takes the first index of the smallest. Delta, for d <= 64 (u = 2^-24, bf16 rounding 2^-8 relative):
 *   bf16 rounding of x and c:  2 sum_t |x_t c_jt| (2^-7 + 2^-16) <= 2 |x| cmax (2^-7 + 2^-16)   (Cauchy-Schwarz)
 *   fp32 accumulation, both:   (2d + 4) u (|c_j|^2 + 2.04 |x| cmax) each
 *   flushed denormals (vdpbf16ps and the conversion assume DAZ/FTZ): 2^-110 (1 + |x| + cmax)
 * computed in double with a margin; a point where anything is not finite or is huge (|x|, cmax >= 2^60) takes the
 * FMA kernel instead. On Gaussian data 60 % of the points keep one candidate and 90 % at most two (Delta ~ 1.6 % of
 * |x| cmax); where many points keep more (well-clustered data, random initial centroids), a probe of the first
 * points hands the call to the FMA kernel. Used for d >= BF_MIND only. */
#define TBF __attribute__((target("avx2,fma,bmi,popcnt,avx512f,avx512bw,avx512bf16")))
#define BF_TILE 4
/* Below d = 24 the filter does not pay on real data (Fashion-MNIST PCA, dsub 16: as fast as the FMA kernel in
 * training, 12 % slower in encoding; dsub 8: 15 % slower); at dsub 32 (Gaussian 128-d, M = 4) training takes 14 %
 * less CPU time (interleaved A/B). */
#define BF_MIND 24
#define BF_MORE 4 /* after BF_PROBE points, more than one in BF_MORE with over two candidates: the FMA kernel */
#define BF_PROBE 128

/* bf16 (round to nearest even) of f as its 16 bits; the value itself is only ever used under the bound above */
TBF static inline __m256i bf16_of(__m512 f)
{
    return (__m256i)_mm512_cvtneps_pbh(f);
}

/* bit l of the result: v[l] <= thr, l < 64 */
TBF static inline uint64_t cand64(const float *v, __m512 tv)
{
    __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_load_ps(v), tv, _CMP_LE_OQ);
    __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_load_ps(v + 16), tv, _CMP_LE_OQ);
    __mmask16 k2 = _mm512_cmp_ps_mask(_mm512_load_ps(v + 32), tv, _CMP_LE_OQ);
    __mmask16 k3 = _mm512_cmp_ps_mask(_mm512_load_ps(v + 48), tv, _CMP_LE_OQ);
    return _cvtmask64_u64(_mm512_kunpackd(_mm512_kunpackw(k3, k2), _mm512_kunpackw(k1, k0)));
}

/* The FMA kernel's values of centroids j1[p] and j2[p] for the points -2 x = xm[p]: eight independent chains of d
 * fused multiply-adds, interleaved (one chain alone would wait on each multiply-add's latency). */
TBF static inline __attribute__((always_inline)) void exact8(const float (*xm)[GSLQ_DIRECT_MAXD], const float *crow,
                                                             const float *cnb, int d, const int *j1, const int *j2,
                                                             float *s1, float *s2)
{
#define CP(j) (crow + (size_t)(j) * d)
    const float *a0 = CP(j1[0]), *a1 = CP(j1[1]), *a2 = CP(j1[2]), *a3 = CP(j1[3]);
    const float *b0 = CP(j2[0]), *b1 = CP(j2[1]), *b2 = CP(j2[2]), *b3 = CP(j2[3]);
#undef CP
    float u0 = cnb[j1[0]], u1 = cnb[j1[1]], u2 = cnb[j1[2]], u3 = cnb[j1[3]];
    float v0 = cnb[j2[0]], v1 = cnb[j2[1]], v2 = cnb[j2[2]], v3 = cnb[j2[3]];
    for (int t = 0; t < d; t++) {
        size_t o = (size_t)t;
        float x0 = xm[0][t], x1 = xm[1][t], x2 = xm[2][t], x3 = xm[3][t];
        u0 = __builtin_fmaf(x0, a0[o], u0);
        v0 = __builtin_fmaf(x0, b0[o], v0);
        u1 = __builtin_fmaf(x1, a1[o], u1);
        v1 = __builtin_fmaf(x1, b1[o], v1);
        u2 = __builtin_fmaf(x2, a2[o], u2);
        v2 = __builtin_fmaf(x2, b2[o], v2);
        u3 = __builtin_fmaf(x3, a3[o], u3);
        v3 = __builtin_fmaf(x3, b3[o], v3);
        __asm__("" : "+v"(u0), "+v"(u1), "+v"(u2), "+v"(u3), "+v"(v0), "+v"(v1), "+v"(v2), "+v"(v3));
    }
    s1[0] = u0; s1[1] = u1; s1[2] = u2; s1[3] = u3;
    s2[0] = v0; s2[1] = v1; s2[2] = v2; s2[3] = v3;
}

TBF static void near_rows_bf(const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb, int kp,
                             int *idx, float *best)
{
    const int nb16 = kp / 16, du = (d + 1) / 2;
    /* the centroids as bf16 pairs, cbf (kp/16, du, 16): lane l of (b, u) holds c_{16b+l, 2u} (low half) and
     * c_{16b+l, 2u+1} (high half); and row-major, crow (kp, d), for the exact values of single candidates (one or
     * two cache lines each, where the layout spreads a centroid over d lines) */
    void *mem2 = gslq__alloc((size_t)kp * (size_t)(du + d) + 16, sizeof(float), 1, 0); /* kp <= 256, d <= 64 */
    if (!mem2) { /* no memory for the copies: the FMA kernel alone */
        near_rows16(x, n, ldx, d, ctb, cnb, kp, idx, best);
        return;
    }
    uint32_t *cbf = (uint32_t *)(((uintptr_t)mem2 + 63) & ~(uintptr_t)63);
    float *crow = (float *)(cbf + (size_t)kp * du);
    for (int b = 0; b < nb16; b++)
        for (int t = 0; t < d; t++)
            for (int l = 0; l < 16; l++) crow[(size_t)(16 * b + l) * d + t] = ctb[((size_t)b * d + t) * 16 + l];
    __m512d cm0 = _mm512_setzero_pd(), cm1 = cm0; /* |c|^2 per lane, in double */
    unsigned nan = 0;
    for (int b = 0; b < nb16; b++) {
        const float *cb = ctb + (size_t)b * d * 16;
        __m512d s0 = _mm512_setzero_pd(), s1 = s0;
        for (int u = 0; u < du; u++) {
            __m512 lo = _mm512_loadu_ps(cb + (size_t)(2 * u) * 16);
            __m512 hi = 2 * u + 1 < d ? _mm512_loadu_ps(cb + (size_t)(2 * u + 1) * 16) : _mm512_setzero_ps();
            __m512i w = _mm512_or_si512(_mm512_cvtepu16_epi32(bf16_of(lo)),
                                        _mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16_of(hi)), 16));
            _mm512_store_si512((__m512i *)(cbf + ((size_t)b * du + u) * 16), w);
            __m512d l0 = _mm512_cvtps_pd(_mm512_castps512_ps256(lo)), h0 = _mm512_cvtps_pd(_mm512_castps512_ps256(hi));
            __m512d l1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1)));
            __m512d h1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1)));
            s0 = _mm512_fmadd_pd(l0, l0, _mm512_fmadd_pd(h0, h0, s0));
            s1 = _mm512_fmadd_pd(l1, l1, _mm512_fmadd_pd(h1, h1, s1));
        }
        nan |= _mm512_cmp_pd_mask(s0, s0, _CMP_UNORD_Q) | _mm512_cmp_pd_mask(s1, s1, _CMP_UNORD_Q); /* max drops NaN */
        cm0 = _mm512_max_pd(cm0, s0);
        cm1 = _mm512_max_pd(cm1, s1);
    }
    double cm2 = _mm512_reduce_max_pd(_mm512_max_pd(cm0, cm1)), cnm = 0;
    for (int j = 0; j < kp; j++) { /* |cn| (padding is +inf: never a candidate) */
        float f = cnb[j];
        if (f == INFINITY) continue;
        cnm = fabs((double)f) > cnm || f != f ? fabs((double)f) : cnm;
    }
    const double cmax = sqrt(cm2) * (1 + 1e-12), gam = (2 * d + 4) * ldexp(1.0, -24);
    int usable = !nan && cmax < 0x1p60 && cnm < 0x1p120; /* false for NaN */
    if (!usable) {
        free(mem2);
        near_rows16(x, n, ldx, d, ctb, cnb, kp, idx, best);
        return;
    }
    float vals[BF_TILE][GSLQ_KPAD(256)] __attribute__((aligned(64)));
    const int nw = (nb16 + 3) / 4; /* 64-bit candidate words; blocks past nb16 hold +inf */
    for (int p = 0; p < BF_TILE; p++)
        for (int j = kp; j < 64 * nw; j++) vals[p][j] = INFINITY;
    float xm[BF_TILE][GSLQ_DIRECT_MAXD];
    uint32_t xb[BF_TILE][GSLQ_DIRECT_MAXD / 2] __attribute__((aligned(64)));
    const __mmask16 dm[4] = {d >= 16 ? 0xFFFF : (__mmask16)((1u << d) - 1),
                             d >= 32 ? 0xFFFF : d > 16 ? (__mmask16)((1u << (d - 16)) - 1) : 0,
                             d >= 48 ? 0xFFFF : d > 32 ? (__mmask16)((1u << (d - 32)) - 1) : 0,
                             d >= 64 ? 0xFFFF : d > 48 ? (__mmask16)((1u << (d - 48)) - 1) : 0};
    size_t nmore = 0; /* points with more than two candidates so far */
    for (size_t i0 = 0; i0 < n; i0 += BF_TILE) {
        if (i0 == BF_PROBE && nmore * BF_MORE > BF_PROBE) { /* too many candidates on these data: the FMA kernel */
            near_rows16(x + i0 * ldx, n - i0, ldx, d, ctb, cnb, kp, idx + i0, best ? best + i0 : NULL);
            break;
        }
        int np = n - i0 < BF_TILE ? (int)(n - i0) : BF_TILE;
        double xn[BF_TILE];
        for (int p = 0; p < BF_TILE; p++) {
            const float *xp = x + (i0 + (size_t)(p < np ? p : np - 1)) * ldx;
            double s2 = 0;
            for (int q = 0; q < 4 && dm[q]; q++) {
                __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(dm[q], xp + 16 * q), _mm512_set1_ps(-2.0f));
                _mm512_storeu_ps(xm[p] + 16 * q, v); /* -2 x exactly (zeros past d) */
                _mm256_storeu_si256((__m256i *)((uint16_t *)xb[p] + 16 * q), bf16_of(v));
                __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                __m512d c = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
                s2 += _mm512_reduce_add_pd(_mm512_fmadd_pd(a, a, _mm512_mul_pd(c, c)));
            }
            xn[p] = 0.5 * sqrt(s2) * (1 + 1e-12); /* |x| (the rows hold -2 x) */
        }
        /* pass 1: approximate values of all centroids, tiles of the points by 2 blocks */
        __m512 mn[BF_TILE];
        for (int p = 0; p < BF_TILE; p++) mn[p] = _mm512_set1_ps(INFINITY);
        int b = 0;
        for (; b + 2 <= nb16; b += 2) {
            const uint32_t *c0 = cbf + (size_t)b * du * 16, *c1 = c0 + (size_t)du * 16;
            __m512 a[BF_TILE][2];
            for (int p = 0; p < BF_TILE; p++) {
                a[p][0] = _mm512_loadu_ps(cnb + b * 16);
                a[p][1] = _mm512_loadu_ps(cnb + b * 16 + 16);
            }
            for (int u = 0; u < du; u++) {
                __m512bh v0 = (__m512bh)_mm512_load_si512(c0 + u * 16), v1 = (__m512bh)_mm512_load_si512(c1 + u * 16);
                for (int p = 0; p < BF_TILE; p++) {
                    __m512bh xv = (__m512bh)_mm512_set1_epi32((int)xb[p][u]);
                    a[p][0] = _mm512_dpbf16_ps(a[p][0], v0, xv);
                    a[p][1] = _mm512_dpbf16_ps(a[p][1], v1, xv);
                }
            }
            for (int p = 0; p < BF_TILE; p++) {
                _mm512_store_ps(vals[p] + b * 16, a[p][0]);
                _mm512_store_ps(vals[p] + b * 16 + 16, a[p][1]);
                mn[p] = _mm512_min_ps(mn[p], _mm512_min_ps(a[p][0], a[p][1]));
            }
        }
        if (b < nb16) {
            const uint32_t *c0 = cbf + (size_t)b * du * 16;
            __m512 a[BF_TILE];
            for (int p = 0; p < BF_TILE; p++) a[p] = _mm512_loadu_ps(cnb + b * 16);
            for (int u = 0; u < du; u++) {
                __m512bh v0 = (__m512bh)_mm512_load_si512(c0 + u * 16);
                for (int p = 0; p < BF_TILE; p++) a[p] = _mm512_dpbf16_ps(a[p], v0, (__m512bh)_mm512_set1_epi32((int)xb[p][u]));
            }
            for (int p = 0; p < BF_TILE; p++) {
                _mm512_store_ps(vals[p] + b * 16, a[p]);
                mn[p] = _mm512_min_ps(mn[p], a[p]);
            }
        }
        /* pass 2: per point the threshold and the candidate set (bits of w); the two lowest candidates of the four
         * points (60 % of the points have one, 90 % at most two) are evaluated exactly as eight interleaved chains,
         * with no branch on the data; further candidates one by one, in index order */
        uint64_t w[BF_TILE][4];
        int j1[BF_TILE], j2[BF_TILE], more = 0, fb = 0;
        for (int p = 0; p < BF_TILE; p++) {
            double xc = xn[p] * cmax;
            double delta = 1.001 * (2 * xc * (0x1p-7 + 0x1p-16) + 2 * gam * (cnm + 2.04 * xc) +
                                    0x1p-110 * (1 + xn[p] + cmax));
            double td = (double)_mm512_reduce_min_ps(mn[p]) + 2 * delta;
            float thr = (float)(td + fabs(td) * 0x1p-22 + 0x1p-140); /* >= td */
            __m512 tv = _mm512_set1_ps(thr);
            for (int q = 0; q < 4; q++) w[p][q] = q < nw ? cand64(vals[p] + 64 * q, tv) : 0;
            int cnt = 0, f = GSLQ_KPAD(256), g = GSLQ_KPAD(256);
            for (int q = 3; q >= 0; q--) { /* the two lowest set bits */
                uint64_t v = w[p][q], v2 = v & (v - 1);
                cnt += __builtin_popcountll(v);
                int t1 = 64 * q + (int)_tzcnt_u64(v), t2 = 64 * q + (int)_tzcnt_u64(v2);
                g = v2 ? t2 : v ? f : g;
                f = v ? t1 : f;
            }
            int bad = !(xn[p] < 0x1p60) || !(thr < INFINITY) || cnt == 0 || p >= np; /* NaN or huge, padding */
            fb |= bad << p;
            j1[p] = bad ? 0 : f;
            j2[p] = bad ? 0 : cnt >= 2 ? g : f;
            more |= (cnt > 2 && !bad) << p;
            nmore += cnt > 2;
        }
        float s1[BF_TILE], s2[BF_TILE];
        exact8(xm, crow, cnb, d, j1, j2, s1, s2);
        for (int p = 0; p < np; p++) {
            if (fb >> p & 1) { /* the FMA kernel */
                float bv;
                near_rows16(x + (i0 + p) * ldx, 1, ldx, d, ctb, cnb, kp, idx + i0 + p, &bv);
                if (best) best[i0 + p] = bv;
                continue;
            }
            float bv = INFINITY;
            int bi = 0;
            bi = s1[p] < bv ? j1[p] : bi;
            bv = s1[p] < bv ? s1[p] : bv;
            bi = s2[p] < bv ? j2[p] : bi;
            bv = s2[p] < bv ? s2[p] : bv;
            if (more >> p & 1) { /* candidates after j2, in index order */
                for (int q = 0; q < 4; q++)
                    for (uint64_t m = w[p][q]; m; m &= m - 1) {
                        int j = 64 * q + __builtin_ctzll(m);
                        if (j <= j2[p]) continue;
                        const float *cj = crow + (size_t)j * d;
                        float sv = cnb[j];
                        for (int t = 0; t < d; t++) sv = __builtin_fmaf(xm[p][t], cj[t], sv);
                        if (sv < bv) { bv = sv; bi = j; }
                    }
            }
            idx[i0 + p] = bi;
            if (best) best[i0 + p] = bv;
        }
    }
    free(mem2);
}

static int have_bf16(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
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
    if (level == GSLQ_KERN_AVX512) {
        if (d >= BF_MIND && kp <= GSLQ_KPAD(256) && have_bf16()) near_rows_bf(x, n, ldx, d, ctb, cnb, kp, idx, best);
        else near_rows16(x, n, ldx, d, ctb, cnb, kp, idx, best);
        return;
    }
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
