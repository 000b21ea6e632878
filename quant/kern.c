/* Nearest-centroid kernels for small dimensions (d <= GSLQ_DIRECT_MAXD): the PQ sub-spaces. Used by encode and by
 * k-means. The centroids are laid out in blocks of 8, transposed, so that one vector load gives coordinate t of 8
 * centroids; a point's coordinate is broadcast and the 8 values |c|^2 - 2 x.c grow side by side.
 *
 * One arithmetic, three instruction sets: every lane computes s = |c_j|^2, then s = s + (-2 x_t) c_jt for t = 0..d-1,
 * multiply and add rounded separately. That is what the scalar reference gslq__near_ref does, so the portable build
 * (4 lanes, the -march=x86-64-v2 baseline) and the AVX2 and AVX-512 builds chosen at run time give the same bits
 * (tested). Nothing here may be contracted into fused multiply-adds: the library is compiled with -std=c11, where
 * GCC does not contract, and the pragma below tells Clang the same. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "internal.h"

uint8_t gslq__lanes[256][8];
static pthread_once_t lanes_once = PTHREAD_ONCE_INIT;

static void lanes_init(void)
{
    for (int m = 0; m < 256; m++) {
        int n = 0;
        for (int l = 0; l < 8; l++)
            if (m >> l & 1) gslq__lanes[m][n++] = (uint8_t)l;
        while (n < 8) gslq__lanes[m][n++] = 0;
    }
}

int gslq__top_sort(const float *v, int *cand, int n, int R)
{
    /* insertion sort of the first R by (value, id); the rest only replace the last when smaller */
    int m = 0;
    for (int q = 0; q < n; q++) {
        int c = cand[q];
        float x = v[c];
        if (m == R && !(x < v[cand[R - 1]] || (x == v[cand[R - 1]] && c < cand[R - 1]))) continue;
        int p = m < R ? m++ : R - 1;
        while (p > 0 && (x < v[cand[p - 1]] || (x == v[cand[p - 1]] && c < cand[p - 1]))) {
            cand[p] = cand[p - 1];
            p--;
        }
        cand[p] = c;
    }
    return m;
}

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
#if defined(__SSE__)
#define KMOVMASK(m) ((unsigned)__builtin_ia32_movmskps((KV)(m)))
#else
#define KMOVMASK(m) ((unsigned)(((m)[0] & 1) | ((m)[1] & 2) | ((m)[2] & 4) | ((m)[3] & 8)))
#endif
#define KBLEND(m, a, b) ((KV)((((KI)(a)) & (m)) | (((KI)(b)) & ~(m))))
#if defined(__SSE__)
#define KVSQRT(v) __builtin_ia32_sqrtps(v)
#else
#define KVSQRT(v) ((KV){sqrtf((v)[0]), sqrtf((v)[1]), sqrtf((v)[2]), sqrtf((v)[3])})
#endif
#include "kern_body.h"
#undef KVSQRT
#undef KW
#undef KV
#undef KI
#undef KSUF
#undef KTARGET
#undef KP
#undef KBLEND
#undef KSPLAT
#undef KMOVMASK

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GSLQ_NO_SIMD_DISPATCH)
#define GSLQ_X86_DISPATCH 1
typedef float kv8 __attribute__((vector_size(32)));
typedef int32_t ki8 __attribute__((vector_size(32)));
#define KW 8
#define KV kv8
#define KI ki8
#define KP 4
#define KSPLAT(f) ((KV){(f), (f), (f), (f), (f), (f), (f), (f)})
#define KMOVMASK(m) ((unsigned)__builtin_ia32_movmskps256((KV)(m)))
#define KVSQRT(v) __builtin_ia32_sqrtps256(v)
#define KBLEND(m, a, b) ((KV)((((KI)(a)) & (m)) | (((KI)(b)) & ~(m))))
/* AVX2 without FMA (so that nothing can be fused), 16 registers */
#define KSUF _avx2
#define KTARGET __attribute__((target("avx2")))
#include "kern_body.h"
#undef KSUF
#undef KTARGET
/* the same 8-lane code with AVX-512VL: 32 registers and mask compares; FMA exists here, contraction stays off */
#define KSUF _avx512
#define KTARGET __attribute__((target("avx2,avx512f,avx512vl")))
#include "kern_body.h"
#undef KSUF
#undef KTARGET
#undef KW
#undef KV
#undef KI
#undef KP
#undef KBLEND
#undef KSPLAT
#undef KMOVMASK
#undef KVSQRT
#endif

int gslq__kern_level(void)
{
    pthread_once(&lanes_once, lanes_init);
#ifdef GSLQ_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return GSLQ_KERN_AVX512;
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

int gslq__kern_clamp(int level)
{
    int max = gslq__kern_level();
    return level < 0 || level > max ? max : level;
}

void gslq__near_rows(int level, const float *x, size_t n, size_t ldx, int d, const float *ctb, const float *cnb,
                     int nblk, int *idx, float *best)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) { gslq__near_rows_avx512(x, n, ldx, d, ctb, cnb, nblk, idx, best); return; }
    if (level == GSLQ_KERN_AVX2) { gslq__near_rows_avx2(x, n, ldx, d, ctb, cnb, nblk, idx, best); return; }
#else
    (void)level;
#endif
    gslq__near_rows_w4(x, n, ldx, d, ctb, cnb, nblk, idx, best);
}

void gslq__block_dists(int level, const float *x, int d, const float *ctb, const float *cnb, const int *blocks,
                       int nb, float *out)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) { gslq__block_dists_avx512(x, d, ctb, cnb, blocks, nb, out); return; }
    if (level == GSLQ_KERN_AVX2) { gslq__block_dists_avx2(x, d, ctb, cnb, blocks, nb, out); return; }
#else
    (void)level;
#endif
    gslq__block_dists_w4(x, d, ctb, cnb, blocks, nb, out);
}

size_t gslq__bnd_range(int level, const gslq__bnd *Y, size_t b, size_t e, float *buf, size_t *ids)
{
#ifdef GSLQ_X86_DISPATCH
    if (level == GSLQ_KERN_AVX512) return gslq__bnd_range_avx512(Y, b, e, buf, ids);
    if (level == GSLQ_KERN_AVX2) return gslq__bnd_range_avx2(Y, b, e, buf, ids);
#else
    (void)level;
#endif
    return gslq__bnd_range_w4(Y, b, e, buf, ids);
}

void gslq__blocks_layout(const float *c, int k, int d, float *ctb, float *cnb)
{
    int nblk = (k + 7) / 8;
    for (int b = 0; b < nblk; b++)
        for (int l = 0; l < 8; l++) {
            int j = b * 8 + l;
            float *dst = ctb + (size_t)b * d * 8 + l;
            if (j < k) {
                const float *cj = c + (size_t)j * d;
                for (int t = 0; t < d; t++) dst[(size_t)t * 8] = cj[t];
                cnb[j] = gslq__norm2(cj, d);
            } else { /* padding: never the nearest */
                for (int t = 0; t < d; t++) dst[(size_t)t * 8] = 0.0f;
                cnb[j] = INFINITY;
            }
        }
}

float gslq__near_value(const float *x, int d, const float *c, float cn)
{
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

int gslq__near_ref(const float *x, int d, const float *c, int k, float *best)
{
    float bv = INFINITY;
    int bi = 0;
    for (int j = 0; j < k; j++) {
        float s = gslq__near_value(x, d, c + (size_t)j * d, gslq__norm2(c + (size_t)j * d, d));
        if (s < bv) { bv = s; bi = j; }
    }
    if (best) *best = bv;
    return bi;
}

float gslq__dist2_direct(const float *x, const float *c, int d)
{
    /* four partial sums in a fixed order (vectorisable, and the same everywhere) */
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
