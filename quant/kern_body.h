/* Body of the small-dimension distance kernels (quant/kern.c includes it once per instruction set).
 * Parameters, defined by the includer: KW (lanes, 4 or 8), KV (float vector type of KW lanes), KI (int vector type),
 * KSUF (name suffix), KTARGET (function attribute), KP (points per tile in near_rows), KMIN(a, b) (lane minimum,
 * b where equal or NaN), KBLEND(mask, a, b) (a where mask, else b).
 *
 * Every lane computes one centroid's value in the same order as the scalar reference gslq__near_ref:
 *   s = cn[j]; for t in 0..d-1: s = s + xm[t] * c[t][j]      (separate multiply and add, never fused)
 * so the result does not depend on the lane count, the tiling or the instruction set. */

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
    KV v;
    for (int l = 0; l < KW; l++) v[l] = f;
    return v;
}

/* Full arg-min over all nblk blocks for n points (xm (n, d) = -2 x), tiles of KP points by 2 blocks; per point and
 * lane the running minimum and the first index attaining it, merged over the lanes at the end. */
KTARGET void KCAT(gslq__near_rows, KSUF)(const float *xm, size_t n, int d, const float *ctb, const float *cnb,
                                         int nblk, int *idx, float *best)
{
    KV vinf = KCAT(ksplat, KSUF)(INFINITY);
    KI lane;
    for (int l = 0; l < KW; l++) lane[l] = l;
    for (size_t i0 = 0; i0 < n; i0 += KP) {
        int np = n - i0 < KP ? (int)(n - i0) : KP;
        const float *xr[KP];
        for (int p = 0; p < KP; p++) xr[p] = xm + (i0 + (size_t)(p < np ? p : np - 1)) * (size_t)d;
        KV mv[KP][KNV];
        KI mi[KP][KNV];
        for (int p = 0; p < KP; p++)
            for (int v = 0; v < KNV; v++) {
                mv[p][v] = vinf;
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
                        KV m0 = xb * cv0[v], m1 = xb * cv1[v];
                        acc[p][0][v] = acc[p][0][v] + m0;
                        acc[p][1][v] = acc[p][1][v] + m1;
                    }
                }
            }
            for (int h = 0; h < 2; h++)
                for (int v = 0; v < KNV; v++) {
                    KI jv = lane + ((b + h) * 8 + v * KW);
                    for (int p = 0; p < KP; p++) {
                        KI lt = acc[p][h][v] < mv[p][v];
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
                    for (int p = 0; p < KP; p++) {
                        KV m0 = KCAT(ksplat, KSUF)(xr[p][t]) * cv;
                        acc[p][v] = acc[p][v] + m0;
                    }
                }
            for (int v = 0; v < KNV; v++) {
                KI jv = lane + (b * 8 + v * KW);
                for (int p = 0; p < KP; p++) {
                    KI lt = acc[p][v] < mv[p][v];
                    mv[p][v] = KBLEND(lt, acc[p][v], mv[p][v]);
                    mi[p][v] = (jv & lt) | (mi[p][v] & ~lt);
                }
            }
        }
        for (int p = 0; p < np; p++) {
            /* the minimum over the lanes, then the lowest index among the lanes that hold it: each lane holds the
             * first index of its own minimum, so this is the first index of the overall minimum */
            float bv = INFINITY;
            int bi = 0, found = 0;
            for (int v = 0; v < KNV; v++)
                for (int l = 0; l < KW; l++)
                    if (mv[p][v][l] < bv) bv = mv[p][v][l];
            for (int v = 0; v < KNV; v++)
                for (int l = 0; l < KW; l++)
                    if (mv[p][v][l] == bv && (!found || mi[p][v][l] < bi)) {
                        bi = mi[p][v][l];
                        found = 1;
                    }
            idx[i0 + p] = bi;
            if (best) best[i0 + p] = bv;
        }
    }
}

/* The values of one point (xm (d) = -2 x) against the listed blocks: out[q*8 + l] for blocks[q], q < nb. Up to
 * 32 / KW blocks at a time, so that enough independent sums are in flight. */
KTARGET void KCAT(gslq__block_dists, KSUF)(const float *xm, int d, const float *ctb, const float *cnb,
                                           const int *blocks, int nb, float *out)
{
#define KG (32 / KW / KNV) /* blocks per pass: 4 with 4 lanes, 4 with 8 lanes (8 / 4 vectors) */
    int q = 0;
    for (; q + KG <= nb; q += KG) {
        KV acc[KG][KNV];
        const float *cb[KG];
        for (int g = 0; g < KG; g++) {
            cb[g] = ctb + (size_t)blocks[q + g] * d * 8;
            for (int v = 0; v < KNV; v++) acc[g][v] = KCAT(kload, KSUF)(cnb + (size_t)blocks[q + g] * 8 + v * KW);
        }
        for (int t = 0; t < d; t++) {
            KV xb = KCAT(ksplat, KSUF)(xm[t]);
            for (int g = 0; g < KG; g++)
                for (int v = 0; v < KNV; v++) {
                    KV m0 = xb * KCAT(kload, KSUF)(cb[g] + t * 8 + v * KW);
                    acc[g][v] = acc[g][v] + m0;
                }
        }
        for (int g = 0; g < KG; g++)
            for (int v = 0; v < KNV; v++) memcpy(out + (size_t)(q + g) * 8 + v * KW, &acc[g][v], sizeof(KV));
    }
    for (; q < nb; q++) {
        const float *c0 = ctb + (size_t)blocks[q] * d * 8;
        KV acc[KNV];
        for (int v = 0; v < KNV; v++) acc[v] = KCAT(kload, KSUF)(cnb + (size_t)blocks[q] * 8 + v * KW);
        for (int t = 0; t < d; t++) {
            KV xb = KCAT(ksplat, KSUF)(xm[t]);
            for (int v = 0; v < KNV; v++) {
                KV m0 = xb * KCAT(kload, KSUF)(c0 + t * 8 + v * KW);
                acc[v] = acc[v] + m0;
            }
        }
        for (int v = 0; v < KNV; v++) memcpy(out + (size_t)q * 8 + v * KW, &acc[v], sizeof(KV));
    }
#undef KG
}

#undef KNV
#undef KCAT
#undef KCAT2
