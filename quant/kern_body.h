/* Body of the small-dimension distance kernels (quant/kern.c includes it once per instruction set).
 * Parameters, defined by the includer: KW (lanes, 4 or 8), KV (float vector type of KW lanes), KI (int vector type),
 * KSUF (name suffix), KTARGET (function attribute), KP (points per tile), KBLEND(mask, a, b) (a where mask, else b),
 * KSPLAT(f) (f in every lane), KFMA(a, b, c) (a b + c, lane-wise).
 *
 * Every lane computes one centroid's value in the same order as the scalar reference gslq__near_value:
 *   s = cn[j]; for t in 0..d-1: s = KFMA(xm[t], c[t][j], s)
 * so the result does not depend on the lane count or the tiling; KFMA is a fused multiply-add where the instruction
 * set has one (AVX2), a multiply then an add otherwise (portable). The AVX-512 kernels are in kern.c. */

#define KNV (8 / KW) /* vectors per block of 8 centroids */
#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)

static inline KTARGET KV KCAT(kload, KSUF)(const float *p)
{
    KV v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline KTARGET KV KCAT(ksplat, KSUF)(float f)
{
    return KSPLAT(f);
}

/* Full arg-min over all nblk blocks for n points x (n rows, stride ldx), tiles of KP points by 2 blocks; per point
 * and lane the running minimum and the first index attaining it, merged over the lanes at the end. With two != 0
 * also each lane's second smallest value, and second[i] = the smallest value of the other centroids (NaN when no
 * value is below +inf). */
static inline __attribute__((always_inline)) KTARGET void KCAT(knear, KSUF)(const float *x, size_t n, size_t ldx,
                                                                            int d, const float *ctb, const float *cnb,
                                                                            int kp, int *idx, float *best,
                                                                            float *second, const int two)
{
    const int nblk = kp / 8;
    float xmb[KP][GSLQ_DIRECT_MAXD]; /* -2 x of the tile's points (exact) */
    KV vinf = KCAT(ksplat, KSUF)(INFINITY);
    KI lane;
    for (int l = 0; l < KW; l++) lane[l] = l;
    for (size_t i0 = 0; i0 < n; i0 += KP) {
        int np = n - i0 < KP ? (int)(n - i0) : KP;
        const float *xr[KP];
        for (int p = 0; p < KP; p++) {
            const float *xp = x + (i0 + (size_t)(p < np ? p : np - 1)) * ldx;
            for (int t = 0; t < d; t++) xmb[p][t] = -2.0f * xp[t];
            xr[p] = xmb[p];
        }
        KV mv[KP][KNV], sv[KP][KNV];
        KI mi[KP][KNV];
        for (int p = 0; p < KP; p++)
            for (int v = 0; v < KNV; v++) {
                mv[p][v] = sv[p][v] = vinf;
                mi[p][v] = lane - lane; /* index 0 until something is strictly smaller than +inf */
            }
        int b = 0;
        for (; b + 2 <= nblk; b += 2) {
            const float *c0 = ctb + (size_t)b * d * 8, *c1 = c0 + (size_t)d * 8;
            KV acc[KP][2][KNV];
            for (int p = 0; p < KP; p++)
                for (int v = 0; v < KNV; v++) {
                    acc[p][0][v] = KCAT(kload, KSUF)(cnb + (size_t)b * 8 + v * KW);
                    acc[p][1][v] = KCAT(kload, KSUF)(cnb + (size_t)b * 8 + 8 + v * KW);
                }
            for (int t = 0; t < d; t++) {
                KV cv0[KNV], cv1[KNV];
                for (int v = 0; v < KNV; v++) {
                    cv0[v] = KCAT(kload, KSUF)(c0 + t * 8 + v * KW);
                    cv1[v] = KCAT(kload, KSUF)(c1 + t * 8 + v * KW);
                }
                for (int p = 0; p < KP; p++) {
                    KV xb = KCAT(ksplat, KSUF)(xr[p][t]);
                    for (int v = 0; v < KNV; v++) {
                        acc[p][0][v] = KFMA(xb, cv0[v], acc[p][0][v]);
                        acc[p][1][v] = KFMA(xb, cv1[v], acc[p][1][v]);
                    }
                }
            }
            for (int h = 0; h < 2; h++)
                for (int v = 0; v < KNV; v++) {
                    KI jv = lane + ((b + h) * 8 + v * KW);
                    for (int p = 0; p < KP; p++) {
                        KI lt = acc[p][h][v] < mv[p][v];
                        if (two) sv[p][v] = KBLEND(lt, mv[p][v], KBLEND(acc[p][h][v] < sv[p][v], acc[p][h][v], sv[p][v]));
                        mv[p][v] = KBLEND(lt, acc[p][h][v], mv[p][v]);
                        mi[p][v] = (jv & lt) | (mi[p][v] & ~lt);
                    }
                }
        }
        if (b < nblk) {
            const float *c0 = ctb + (size_t)b * d * 8;
            KV acc[KP][KNV];
            for (int p = 0; p < KP; p++)
                for (int v = 0; v < KNV; v++) acc[p][v] = KCAT(kload, KSUF)(cnb + (size_t)b * 8 + v * KW);
            for (int t = 0; t < d; t++)
                for (int v = 0; v < KNV; v++) {
                    KV cv = KCAT(kload, KSUF)(c0 + t * 8 + v * KW);
                    for (int p = 0; p < KP; p++) acc[p][v] = KFMA(KCAT(ksplat, KSUF)(xr[p][t]), cv, acc[p][v]);
                }
            for (int v = 0; v < KNV; v++) {
                KI jv = lane + (b * 8 + v * KW);
                for (int p = 0; p < KP; p++) {
                    KI lt = acc[p][v] < mv[p][v];
                    if (two) sv[p][v] = KBLEND(lt, mv[p][v], KBLEND(acc[p][v] < sv[p][v], acc[p][v], sv[p][v]));
                    mv[p][v] = KBLEND(lt, acc[p][v], mv[p][v]);
                    mi[p][v] = (jv & lt) | (mi[p][v] & ~lt);
                }
            }
        }
        for (int p = 0; p < np; p++) {
            /* the minimum over the lanes, then the lowest index among the lanes that hold it: each lane holds the
             * first index of its own minimum, so this is the first index of the overall minimum */
            float bv = INFINITY;
            int bi = 0, found = 0, wv = 0, wl = 0;
            for (int v = 0; v < KNV; v++)
                for (int l = 0; l < KW; l++)
                    if (mv[p][v][l] < bv) bv = mv[p][v][l];
            for (int v = 0; v < KNV; v++)
                for (int l = 0; l < KW; l++)
                    if (mv[p][v][l] == bv && (!found || mi[p][v][l] < bi)) {
                        bi = mi[p][v][l];
                        found = 1;
                        wv = v;
                        wl = l;
                    }
            idx[i0 + p] = bi;
            if (best) best[i0 + p] = bv;
            if (two) { /* the other lanes' minima and the winning lane's second */
                float s2 = INFINITY;
                for (int v = 0; v < KNV; v++)
                    for (int l = 0; l < KW; l++) {
                        float f = v == wv && l == wl ? sv[p][v][l] : mv[p][v][l];
                        s2 = f < s2 ? f : s2;
                    }
                second[i0 + p] = found ? s2 : NAN;
            }
        }
    }
}

KTARGET void KCAT(gslq__near_rows, KSUF)(const float *x, size_t n, size_t ldx, int d, const float *ctb,
                                         const float *cnb, int kp, int *idx, float *best)
{
    KCAT(knear, KSUF)(x, n, ldx, d, ctb, cnb, kp, idx, best, NULL, 0);
}

KTARGET void KCAT(gslq__near_rows2, KSUF)(const float *x, size_t n, size_t ldx, int d, const float *ctb,
                                          const float *cnb, int kp, int *idx, float *best, float *second)
{
    KCAT(knear, KSUF)(x, n, ldx, d, ctb, cnb, kp, idx, best, second, 1);
}


#undef KNV
#undef KCAT
#undef KCAT2
