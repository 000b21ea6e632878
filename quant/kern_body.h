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

static inline KTARGET void KCAT(kstore, KSUF)(float *p, KV v)
{
    memcpy(p, &v, sizeof v);
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
            for (int v = 0; v < KNV; v++) KCAT(kstore, KSUF)(out + (size_t)(q + g) * 8 + v * KW, acc[g][v]);
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
        for (int v = 0; v < KNV; v++) KCAT(kstore, KSUF)(out + (size_t)q * 8 + v * KW, acc[v]);
    }
#undef KG
}

/* All values of the points ids[0..n-1] (rows of x, stride ldx): out (n, nblk*8), tiles of KP points by 2 blocks. */
KTARGET void KCAT(gslq__dist_rows, KSUF)(const float *x, size_t ldx, int d, const size_t *ids, int n, const float *ctb,
                                         const float *cnb, int nblk, float *out)
{
    float xmb[KP][GSLQ_DIRECT_MAXD];
    size_t ld = (size_t)nblk * 8;
    for (int i0 = 0; i0 < n; i0 += KP) {
        int np = n - i0 < KP ? n - i0 : KP;
        for (int p = 0; p < KP; p++) {
            const float *xp = x + ids[i0 + (p < np ? p : np - 1)] * ldx;
            for (int t = 0; t < d; t++) xmb[p][t] = -2.0f * xp[t];
        }
        float *o[KP];
        for (int p = 0; p < KP; p++) o[p] = out + (size_t)(i0 + (p < np ? p : np - 1)) * ld;
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
                    KV xb = KCAT(ksplat, KSUF)(xmb[p][t]);
                    for (int v = 0; v < KNV; v++) {
                        KV m0 = xb * cv0[v], m1 = xb * cv1[v];
                        acc[p][0][v] = acc[p][0][v] + m0;
                        acc[p][1][v] = acc[p][1][v] + m1;
                    }
                }
            }
            /* the tile's last points may repeat one: stored in reverse so the real row is written last */
            for (int p = KP - 1; p >= 0; p--)
                for (int h = 0; h < 2; h++)
                    for (int v = 0; v < KNV; v++) KCAT(kstore, KSUF)(o[p] + (size_t)(b + h) * 8 + v * KW, acc[p][h][v]);
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
                        KV m0 = KCAT(ksplat, KSUF)(xmb[p][t]) * cv;
                        acc[p][v] = acc[p][v] + m0;
                    }
                }
            for (int p = KP - 1; p >= 0; p--)
                for (int v = 0; v < KNV; v++) KCAT(kstore, KSUF)(o[p] + (size_t)b * 8 + v * KW, acc[p][v]);
        }
    }
}

/* ---- bounded assignment (lloyd.c) for the points [b, e): see gslq__yy in internal.h ----
 * All bound arithmetic is in float and rounded outwards: RU(v) = v + |v| 2^-22 is >= the exact result of the
 * operation that produced v, RD(v) = v - |v| 2^-22 is <=; for v >= 0, v (1 +- 2^-22) does the same. */
#define KRU(v) ((v) + fabsf(v) * 0x1p-22f)
#define KRD(v) ((v) - fabsf(v) * 0x1p-22f)
#define KVRD(v) ((v) - (KV)((KI)(v) & 0x7fffffff) * 0x1p-22f) /* RD, lane-wise */

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

/* 1 when lower bound l on the distances to other centroids and upper bound u on the distance to the current one
 * prove that none of those has a smaller or equal kernel value: l^2 - u^2 > em, with margins for the rounding of
 * this test itself (l = +inf passes, NaN fails) */
static inline KTARGET int KCAT(kcert, KSUF)(float l, float u, float em)
{
    return l > 0 && l * l * (1 - 4e-6f) > u * u * (1 + 4e-6f) + em;
}

/* a distance lower bound from a kernel value s: |x - c|^2 >= s - ek + |x|^2, c0 = RD(|x|^2 - ek) */
static inline KTARGET float KCAT(klower, KSUF)(float s, float c0)
{
    float v = s + c0;
    v = KRD(v);
    return v > 0 ? sqrtf(v) * (1 - 0x1p-22f) : 0.0f; /* NaN, negative: nothing known */
}

/* The points of a batch whose bounds did not settle them: all values, the first index of the smallest, the next
 * r nearest as challengers and the one after as the bound of the rest. */
static KTARGET size_t KCAT(kbatch, KSUF)(const gslq__bnd *Y, const size_t *ids, int nb, float *rows)
{
    const int d = Y->d, G = Y->nblk, r = Y->r, R = r + 2;
    const size_t ld = (size_t)G * 8;
    KCAT(gslq__dist_rows, KSUF)(Y->x, (size_t)d, d, ids, nb, Y->ctb, Y->cnb, G, rows);
    for (int q = 0; q < nb; q++) {
        size_t i = ids[q];
        const float *row = rows + (size_t)q * ld;
        /* the R smallest (value, index), ascending; equal values keep index order, so top[0] is the first index of
         * the minimum (brute force's answer); NaN and +inf never enter. A first bound: the largest value of R
         * distinct centroids (the last centroid and challengers, likely among the nearest) is >= the R-th smallest */
        float tv[GSLQ_BND_R + 2], thr0 = INFINITY;
        int ti[GSLQ_BND_R + 2], nt = 0;
        if (!Y->first && Y->idx[i] >= 0 && R <= Y->k) {
            uint64_t seen[4] = {0, 0, 0, 0};
            const uint8_t *chi = Y->ch + i * GSLQ_BND_CH;
            int m = 0, j = Y->idx[i];
            float mx = row[j];
            seen[j >> 6] |= 1ull << (j & 63);
            m++;
            for (int k = 0; k < r; k++) {
                j = chi[k];
                if (seen[j >> 6] >> (j & 63) & 1) continue;
                seen[j >> 6] |= 1ull << (j & 63);
                m++;
                mx = row[j] > mx ? row[j] : mx;
            }
            j = chi[GSLQ_BND_R]; /* the rest's nearest, last time */
            if (!(seen[j >> 6] >> (j & 63) & 1)) {
                m++;
                mx = row[j] > mx ? row[j] : mx;
            }
            if (m == R && mx < INFINITY) thr0 = mx; /* NaN or repeated ids: no first bound */
        }
        if (thr0 == INFINITY && R <= 16) {
            /* no history: the minima of 16 interleaved slices are values of 16 distinct centroids, so the R-th
             * smallest of them is >= the R-th smallest of all */
            KV sm[16 / KW];
            for (int v = 0; v < 16 / KW; v++) sm[v] = KSPLAT(INFINITY);
            for (size_t j0 = 0; j0 < ld; j0 += 16)
                for (int v = 0; v < 16 / KW; v++) {
                    KV x = KCAT(kload, KSUF)(row + j0 + v * KW);
                    sm[v] = KBLEND(x < sm[v], x, sm[v]);
                }
            /* the R-th smallest of the 16 (insertion sort; NaN-free, +inf possible) */
            float f[16];
            int m = 0;
            for (int v = 0; v < 16 / KW; v++)
                for (int l = 0; l < KW; l++) {
                    float x = sm[v][l];
                    int p = m++;
                    while (p > 0 && x < f[p - 1]) { f[p] = f[p - 1]; p--; }
                    f[p] = x;
                }
            if (ld >= 16) thr0 = f[R - 1];
        }
        /* candidates, branch-free: every value <= thr0 (then < the R-th smallest, once the buffer had to be cut
         * down to R), appended in index order through a table of lane positions */
        int cand[GSLQ_BND_CAND + 8], nc = 0, strict = 0;
        float lim = thr0;
        for (size_t j0 = 0; j0 < ld; j0 += KW) {
            KV v = KCAT(kload, KSUF)(row + j0);
            unsigned mk = strict ? KMOVMASK(v < KSPLAT(lim)) : KMOVMASK((v <= KSPLAT(lim)) & (v < KSPLAT(INFINITY)));
            const uint8_t *lp = gslq__lanes[mk];
            for (int l = 0; l < KW; l++) cand[nc + l] = (int)j0 + lp[l];
            nc += __builtin_popcount(mk);
            if (nc > GSLQ_BND_CAND - KW) { /* too many: keep the R smallest */
                nc = gslq__top_sort(row, cand, nc, R);
                lim = row[cand[R - 1]];
                strict = 1;
            }
        }
        nt = gslq__top_sort(row, cand, nc, R);
        for (int q = 0; q < nt; q++) {
            ti[q] = cand[q];
            tv[q] = row[cand[q]];
        }
        int na = nt ? ti[0] : 0; /* nothing below +inf (NaN data): index 0, as brute force */
        float ek = (Y->cmax2 + Y->cmax2x * Y->xn[i]) * Y->gk * (1 + 0x1p-20f);
        float c0 = Y->x2[i] - ek;
        c0 = KRD(c0);
        float *cbi = Y->cb + i * GSLQ_BND_R;
        uint8_t *chi = Y->ch + i * GSLQ_BND_CH;
        chi[GSLQ_BND_R] = nt == R ? (uint8_t)ti[R - 1] : 0;
        for (int k = 0; k < GSLQ_BND_R; k++) {
            if (k < r && k + 1 < nt) {
                int j = ti[k + 1];
                float s = KCAT(klower, KSUF)(tv[k + 1], c0) + Y->DcF[j];
                cbi[k] = KRD(s);
                chi[k] = (uint8_t)j;
            } else if (k < r && nt) { /* fewer finite values than challengers (NaN): nothing known */
                cbi[k] = 0.0f;
                chi[k] = (uint8_t)na;
            } else {
                cbi[k] = INFINITY;
                chi[k] = 0;
            }
        }
        float lr = nt == R ? KCAT(klower, KSUF)(tv[R - 1], c0) : (nt && Y->r + 1 < Y->k ? 0.0f : INFINITY);
        float lrs = lr + Y->DmaxF;
        Y->rb[i] = KRD(lrs);
        float dd = gslq__dist2_direct(Y->x + i * (size_t)d, Y->c + (size_t)na * d, d);
        float un = sqrtf(dd * (1 + Y->gd)) * (1 + 0x1p-22f) - Y->DcF[na];
        Y->ub[i] = KRU(un);
        Y->nidx[i] = na;
        if (Y->d2) Y->d2[i] = dd;
    }
    return (size_t)nb * G;
}

#define KBATCH GSLQ_BND_BATCH /* points recomputed together */

KTARGET size_t KCAT(gslq__bnd_range, KSUF)(const gslq__bnd *Y, size_t b, size_t e, float *buf, size_t *ids)
{
    const int d = Y->d;
    size_t work = 0;
    int nb = 0;
    for (size_t i = b; i < e; i++) {
        const float *xi = Y->x + i * (size_t)d;
        int ai = Y->first ? -1 : Y->idx[i];
        float dd = -1;
        if (ai < 0 || !(Y->rb[i] > -INFINITY)) goto recompute;
        {
            /* ek >= |s_j - (|x - c_j|^2 - |x|^2)| for every j; em = 2 ek + slack */
            float ek = (Y->cmax2 + Y->cmax2x * Y->xn[i]) * Y->gk * (1 + 0x1p-20f);
            float em = (2 * ek + Y->slack) * (1 + 0x1p-20f);
            float u = (Y->ub[i] + Y->DcF[ai]) * (1 + 0x1p-22f), lr = Y->rb[i] - Y->DmaxF;
            lr = KRD(lr);
            /* challengers: each bound against its own drift */
            float *cbi = Y->cb + i * GSLQ_BND_R;
            uint8_t *chi = Y->ch + i * GSLQ_BND_CH;
            float lc[GSLQ_BND_R];
            KV lm = KSPLAT(INFINITY);
            for (int k0 = 0; k0 < GSLQ_BND_R; k0 += KW) {
                KV dc;
                for (int l = 0; l < KW; l++) dc[l] = Y->DcF[chi[k0 + l]];
                KV v = KCAT(kload, KSUF)(cbi + k0) - dc;
                v = KVRD(v);
                KCAT(kstore, KSUF)(lc + k0, v);
                lm = KBLEND(v < lm, v, lm);
            }
            float l = KCAT(khmin, KSUF)(lm);
            l = lr < l ? lr : l;
            if (KCAT(kcert, KSUF)(l, u, em)) goto keep;
            /* tighten U with the exact distance */
            dd = gslq__dist2_direct(xi, Y->c + (size_t)ai * d, d);
            u = sqrtf(dd * (1 + Y->gd)) * (1 + 0x1p-22f);
            float ubn = u - Y->DcF[ai];
            Y->ub[i] = KRU(ubn);
            if (KCAT(kcert, KSUF)(l, u, em)) goto keep;
            if (!KCAT(kcert, KSUF)(lr, u, em)) goto recompute;
            /* only some challengers can compete: their exact values and a's decide */
            const float *cnb = Y->cnb;
            float sa = gslq__near_value(xi, d, Y->c + (size_t)ai * d, cnb[ai]), bv = sa;
            int bk = -1, bi = ai;
            float c0 = Y->x2[i] - ek;
            c0 = KRD(c0);
            for (int k = 0; k < Y->r; k++) {
                if (KCAT(kcert, KSUF)(lc[k], u, em)) continue;
                int j = chi[k];
                float s = gslq__near_value(xi, d, Y->c + (size_t)j * d, cnb[j]);
                if (s < bv || (s == bv && j < bi)) { bv = s; bi = j; bk = k; }
                float cs = KCAT(klower, KSUF)(s, c0) + Y->DcF[j];
                cbi[k] = KRD(cs);
            }
            work += 1;
            if (bk < 0) goto keep;
            /* the new centroid leaves the challengers; the old one takes its place */
            float cs = KCAT(klower, KSUF)(sa, c0) + Y->DcF[ai];
            cbi[bk] = KRD(cs);
            chi[bk] = (uint8_t)ai;
            ai = bi;
            dd = gslq__dist2_direct(xi, Y->c + (size_t)ai * d, d);
            float un = sqrtf(dd * (1 + Y->gd)) * (1 + 0x1p-22f) - Y->DcF[ai];
            Y->ub[i] = KRU(un);
            goto keep;
        }
    recompute:
        ids[nb++] = i;
        if (nb == KBATCH) {
            work += KCAT(kbatch, KSUF)(Y, ids, nb, buf);
            nb = 0;
        }
        continue;
    keep:
        Y->nidx[i] = ai;
        if (Y->d2) Y->d2[i] = dd >= 0 ? dd : gslq__dist2_direct(xi, Y->c + (size_t)ai * d, d);
    }
    if (nb) work += KCAT(kbatch, KSUF)(Y, ids, nb, buf);
    return work;
}
#undef KBATCH
#undef KRU
#undef KRD
#undef KVRD

#undef KNV
#undef KCAT
#undef KCAT2
