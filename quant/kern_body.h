/* Body of the small-dimension distance kernels (quant/kern.c includes it once per instruction set).
 * Parameters, defined by the includer: KW (lanes, 4 or 8), KV (float vector type of KW lanes), KI (int vector type),
 * KSUF (name suffix), KTARGET (function attribute), KP (points per tile in near_rows), KMIN(a, b) (lane minimum,
 * b where equal or NaN), KBLEND(mask, a, b) (a where mask, else b), KSPLAT(f) (f in every lane).
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
    return KSPLAT(f);
}

/* Full arg-min over all nblk blocks for n points x (n rows, stride ldx), tiles of KP points by 2 blocks; per point
 * and lane the running minimum and the first index attaining it, merged over the lanes at the end. */
KTARGET void KCAT(gslq__near_rows, KSUF)(const float *x, size_t n, size_t ldx, int d, const float *ctb,
                                         const float *cnb, int nblk, int *idx, float *best)
{
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

/* The values of one point x (d) against the listed blocks: out[q*8 + l] for blocks[q], q < nb. Up to 4 blocks at
 * a time, so that enough independent sums are in flight. */
KTARGET void KCAT(gslq__block_dists, KSUF)(const float *x, int d, const float *ctb, const float *cnb,
                                           const int *blocks, int nb, float *out)
{
    float xm[GSLQ_DIRECT_MAXD];
    for (int t = 0; t < d; t++) xm[t] = -2.0f * x[t];
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

/* ---- bounded assignment (lloyd.c) for the points [b, e): see gslq__yy in internal.h ----
 * All bound arithmetic is in float and rounded outwards: RU(v) = v + |v| 2^-22 is >= the exact result of the
 * operation that produced v, RD(v) = v - |v| 2^-22 is <=; for v >= 0, v (1 +- 2^-22) does the same. */
#define KRU(v) ((v) + fabsf(v) * 0x1p-22f)
#define KRD(v) ((v) - fabsf(v) * 0x1p-22f)

/* minimum of the lanes (no NaN in v) */
static inline KTARGET float KCAT(khmin, KSUF)(KV v)
{
#if KW == 8
    KV h = __builtin_shuffle(v, (KI){4, 5, 6, 7, 0, 1, 2, 3});
    v = KBLEND(h < v, h, v);
    h = __builtin_shuffle(v, (KI){2, 3, 0, 1, 6, 7, 4, 5});
    v = KBLEND(h < v, h, v);
    h = __builtin_shuffle(v, (KI){1, 0, 3, 2, 5, 4, 7, 6});
    v = KBLEND(h < v, h, v);
#else
    KV h = __builtin_shuffle(v, (KI){2, 3, 0, 1});
    v = KBLEND(h < v, h, v);
    h = __builtin_shuffle(v, (KI){1, 0, 3, 2});
    v = KBLEND(h < v, h, v);
#endif
    return v[0];
}

/* minimum of the 8 values of a block row, NaNs ignored (+inf when there is nothing else) */
static inline KTARGET float KCAT(krowmin, KSUF)(const float *row)
{
    KV m = KSPLAT(INFINITY);
    for (int v = 0; v < KNV; v++) {
        KV r = KCAT(kload, KSUF)(row + v * KW);
        KI lt = r < m;
        m = KBLEND(lt, r, m);
    }
    return KCAT(khmin, KSUF)(m);
}

/* first lane of the block row equal to v (one exists) */
static inline KTARGET int KCAT(krowfind, KSUF)(const float *row, float f)
{
    KV vf = KSPLAT(f);
    for (int v = 0;; v++) {
        unsigned mk = KMOVMASK(KCAT(kload, KSUF)(row + v * KW) == vf);
        if (mk) return v * KW + __builtin_ctz(mk);
    }
}

KTARGET size_t KCAT(gslq__yy_range, KSUF)(const gslq__yy *Y, size_t b, size_t e, float *buf, int *list)
{
    const int d = Y->d, G = Y->nblk, Gp = Y->nblkp;
    const float *DgF = Y->DgF;
    size_t work = 0;
    for (size_t i = b; i < e; i++) {
        const float *xi = Y->x + i * (size_t)d;
        float xn = Y->xn[i];
        /* ek >= |s_j - (|x - c_j|^2 - |x|^2)| for every j; em = 2 ek + slack */
        float ek = (Y->cmax2 + Y->cmax2x * xn) * Y->gk * (1 + 0x1p-20f);
        float em = (2 * ek + Y->slack) * (1 + 0x1p-20f);
        int ai = Y->first ? -1 : Y->idx[i], na = ai;
        float dd = -1, u = 0;
        int all = ai < 0;
        if (!all) {
            u = (Y->ub[i] + Y->DcF[ai]) * (1 + 0x1p-22f);
            float l = Y->lb[i] - Y->DmaxF;
            l = KRD(l);
            /* l^2 - u^2 > em with margins for the rounding of this very test */
            if (l > 0 && l * l * (1 - 4e-6f) > u * u * (1 + 4e-6f) + em) goto keep;
            dd = gslq__dist2_direct(xi, Y->c + (size_t)ai * d, d);
            u = sqrtf(dd * (1 + Y->gd)) * (1 + 0x1p-22f);
            float ubn = u - Y->DcF[ai];
            Y->ub[i] = KRU(ubn);
            if (l > 0 && l * l * (1 - 4e-6f) > u * u * (1 + 4e-6f) + em) goto keep;
            all = !(Y->lb[i] > -INFINITY);
            if (!all) {
                /* the global bound again, from the block bounds with each block's own drift (refreshes lb) */
                const float *lgi = Y->lg + i * (size_t)Gp;
                KV lm = KSPLAT(INFINITY);
                for (int g0 = 0; g0 < Gp; g0 += KW) {
                    KV v = KCAT(kload, KSUF)(lgi + g0) - KCAT(kload, KSUF)(DgF + g0);
                    v = v - (KV)((KI)v & 0x7fffffff) * 0x1p-22f; /* RD, lane-wise */
                    KI lt = v < lm;
                    lm = KBLEND(lt, v, lm);
                }
                l = KCAT(khmin, KSUF)(lm);
                float lbn = l + Y->DmaxF;
                Y->lb[i] = KRD(lbn);
                if (l > 0 && l * l * (1 - 4e-6f) > u * u * (1 + 4e-6f) + em) goto keep;
            }
        }
        {
            float *lgi = Y->lg + i * (size_t)Gp;
            /* block g is certified when (lg - DgF) > thr: then its lower bound L_g satisfies L_g^2 (1 - 4e-6) >
             * u^2 (1 + 4e-6) + em, as in the test above */
            float T = u * u * (1 + 4e-6f) + em;
            float thr = sqrtf(T * (1 + 8e-6f)) * (1 + 0x1p-20f);
            float thrl = thr + Y->margin; /* list a little more than needed: room for the next drifts */
            int nl = 0;
            if (all) {
                for (int g = 0; g < G; g++) list[g] = g;
                nl = G;
            } else {
                KV vt = KSPLAT(thrl);
                int ga = ai >> 3;
                lgi[ga] = -INFINITY; /* always computed; rewritten below */
                for (int g0 = 0; g0 < Gp; g0 += KW) {
                    KV v = KCAT(kload, KSUF)(lgi + g0) - KCAT(kload, KSUF)(DgF + g0);
                    unsigned mk = ~KMOVMASK(v > vt) & ((1u << KW) - 1); /* not certified (NaN included) */
                    while (mk) {
                        list[nl++] = g0 + __builtin_ctz(mk);
                        mk &= mk - 1;
                    }
                }
            }
            KCAT(gslq__block_dists, KSUF)(xi, d, Y->ctb, Y->cnb, list, nl, buf);
            work += (size_t)nl;
            /* first index of the smallest value: blocks ascend, then lanes */
            float bv = INFINITY;
            int bq = -1;
            for (int q = 0; q < nl; q++) {
                float m = KCAT(krowmin, KSUF)(buf + q * 8);
                if (m < bv) { bv = m; bq = q; }
                buf[nl * 8 + q] = m; /* the row minima, after the rows */
            }
            int nb = 0;
            if (bq >= 0) {
                int l = KCAT(krowfind, KSUF)(buf + bq * 8, bv);
                nb = list[bq] * 8 + l;
                float save = buf[bq * 8 + l];
                buf[bq * 8 + l] = INFINITY;
                buf[nl * 8 + bq] = KCAT(krowmin, KSUF)(buf + bq * 8);
                buf[bq * 8 + l] = save;
            }
            /* new lower bounds: |x - c_j|^2 >= s_j - ek + |x|^2 */
            float c0 = Y->x2[i] - ek;
            c0 = KRD(c0);
            for (int q = 0; q < nl; q++) {
                float v = buf[nl * 8 + q] + c0;
                v = KRD(v);
                float L = v > 0 ? sqrtf(v) * (1 - 0x1p-22f) : 0.0f;
                float s = L + DgF[list[q]];
                lgi[list[q]] = KRD(s);
            }
            KV lm = KSPLAT(INFINITY);
            for (int g0 = 0; g0 < Gp; g0 += KW) {
                KV v = KCAT(kload, KSUF)(lgi + g0) - KCAT(kload, KSUF)(DgF + g0);
                v = v - (KV)((KI)v & 0x7fffffff) * 0x1p-22f; /* RD, lane-wise */
                KI lt = v < lm;
                lm = KBLEND(lt, v, lm);
            }
            float lmin = KCAT(khmin, KSUF)(lm) + Y->DmaxF;
            Y->lb[i] = KRD(lmin);
            na = nb;
        }
        if (na != ai) {
            dd = gslq__dist2_direct(xi, Y->c + (size_t)na * d, d);
            float un = sqrtf(dd * (1 + Y->gd)) * (1 + 0x1p-22f) - Y->DcF[na];
            Y->ub[i] = KRU(un);
        }
    keep:
        Y->nidx[i] = na;
        if (Y->d2) Y->d2[i] = dd >= 0 ? dd : gslq__dist2_direct(xi, Y->c + (size_t)na * d, d);
    }
    return work;
}
#undef KRU
#undef KRD

#undef KNV
#undef KCAT
#undef KCAT2
