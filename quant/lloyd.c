/* Lloyd iterations for small dimensions (d <= GSLQ_DIRECT_MAXD, the PQ sub-spaces), with the direct kernels of
 * kern.c and bounds that skip the points whose centroid cannot change.
 *
 * The reference is brute force: every iteration, every point takes the first index of the smallest kernel value
 * s_j = |c_j|^2 - 2 x.c_j (kern.c). The bounded mode returns exactly that assignment, and so the same centroids:
 *
 * Bounds (Yinyang k-means, Ding et al. 2015, with the centroids grouped by index into the kernel's blocks of 8):
 * per point an upper bound U on |x - c_a| (a its centroid), a lower bound L_g on the distance to every centroid of
 * block g other than a, and L = min_g L_g. When centroids move by drift_j, U grows by drift_a, L_g shrinks by the
 * largest drift in g and L by the largest drift of all; these updates are kept lazily as offsets against cumulative
 * drifts (Dc, Dg, Dmax), so a point that is skipped costs a few loads.
 *
 * Exactness: bounds are on true Euclidean distances, the decision is on rounded kernel values. With
 *   e(x) = gk (cmax^2 + 2 |x| cmax) >= |s_j - (|x - c_j|^2 - |x|^2)| for every j   (gk = 2 (2d + 4) 2^-24),
 * lower bound l on |x - c_j| and upper bound u on |x - c_a|,  l^2 - u^2 > 2 e(x)  implies  s_j > s_a strictly, so j
 * can neither beat a nor tie with it. A point is skipped only when that holds for all j != a (with L), and a block
 * is left out of the recomputation only when it holds for that block (with L_g); the blocks computed always include
 * a's, and the new centroid is the first smallest value among them, which is then the brute-force answer. The bound
 * arithmetic is in double (rounding ~1e-16, far below the slack added to 2 e(x)); stored bounds are rounded
 * outwards. New bounds come from kernel values the same way: |x - c_j|^2 >= s_j - e(x) + |x|^2.
 *
 * The centroid update is incremental (per-cluster sums in double, changed only by the points that move, in index
 * order) and the same in both modes. Results do not depend on the thread count: points are independent and the
 * update is serial. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    gslq__bnd Y;
    size_t n;
    int k, level, brute;
    float *buf;   /* (nt, GSLQ_BND_BUF(nblk)) */
    size_t *ids;  /* (nt, GSLQ_BND_BATCH) */
    size_t *work; /* (nt) blocks computed, for the verbose report */
} lloyd_ctx;

static void assign_part(void *arg, int t, int nt)
{
    lloyd_ctx *a = arg;
    const gslq__bnd *Y = &a->Y;
    size_t b, e;
    gslq__split(a->n, t, nt, &b, &e);
    if (b >= e) return;
    int d = Y->d;
    if (a->brute) {
        gslq__near_rows(a->level, Y->x + b * (size_t)d, e - b, (size_t)d, d, Y->ctb, Y->cnb, Y->nblk, Y->nidx + b,
                        NULL);
        if (Y->d2)
            for (size_t i = b; i < e; i++)
                Y->d2[i] = gslq__dist2_direct(Y->x + i * (size_t)d, Y->c + (size_t)Y->nidx[i] * d, d);
        a->work[t] += (e - b) * (size_t)Y->nblk;
        return;
    }
    a->work[t] += gslq__bnd_range(a->level, Y, b, e, a->buf + (size_t)t * GSLQ_BND_BUF(Y->nblk),
                                  a->ids + (size_t)t * GSLQ_BND_BATCH);
}

/* the float nearest to v from above / below */
static float up_f(double v)
{
    float f = (float)v;
    if ((double)f < v) f = nextafterf(f, INFINITY);
    return f;
}

static float down_f(double v)
{
    float f = (float)v;
    if ((double)f > v) f = nextafterf(f, -INFINITY);
    return f;
}

/* sum[j] += sign * x */
static void add_point(double *sum, const float *x, int d, double sign)
{
    for (int t = 0; t < d; t++) sum[t] += sign * (double)x[t];
}

int gslq__lloyd_direct(const float *x, size_t n, int d, int k, float *c, const gslq_train_params *p, int level,
                       double *obj_trace, gslq_kmeans_stats *stats)
{
    int nt = p->nthreads < 1 ? 1 : p->nthreads, nblk = (k + 7) / 8, kp = nblk * 8;
    if ((size_t)nt > n) nt = (int)n;
    int want_d2 = obj_trace || stats || p->verbose || p->tol > 0;
    int brute = !p->bounds;
    int rc = GSLQ_OK;
    float *ctb = gslq__alloc((size_t)kp, (size_t)d, sizeof(float), 0), *cnb = gslq__alloc((size_t)kp, sizeof(float), 1, 0);
    float *cold = gslq__alloc((size_t)k, (size_t)d, sizeof(float), 0), *d2 = gslq__alloc(n, sizeof(float), 1, 0);
    float *DcF = gslq__alloc((size_t)kp, sizeof(float), 1, 1);
    double *sum = gslq__alloc((size_t)k, (size_t)d, sizeof(double), 1);
    int *idx = gslq__alloc(n, sizeof(int), 1, 0), *nidx = gslq__alloc(n, sizeof(int), 1, 0);
    int *count = gslq__alloc((size_t)k, sizeof(int), 1, 1);
    char *touched = gslq__alloc((size_t)k, 1, 1, 0);
    size_t *work = gslq__alloc((size_t)nt, sizeof(size_t), 1, 1);
    float *ub = NULL, *rb = NULL, *cb = NULL, *buf = NULL, *xn = NULL, *x2 = NULL;
    uint8_t *ch = NULL;
    size_t *ids = NULL;
    if (!ctb || !cnb || !cold || !d2 || !DcF || !sum || !idx || !nidx || !count || !touched || !work) {
        rc = GSLQ_ENOMEM;
        goto done;
    }
    if (!brute) { /* the bounds need 56 bytes per point; without the memory, brute force gives the same result */
        ub = gslq__alloc(n, sizeof(float), 1, 0);
        rb = gslq__alloc(n, sizeof(float), 1, 0);
        cb = gslq__alloc(n, GSLQ_BND_R, sizeof(float), 0);
        ch = gslq__alloc(n, GSLQ_BND_CH, 1, 0);
        xn = gslq__alloc(n, sizeof(float), 1, 0);
        x2 = gslq__alloc(n, sizeof(float), 1, 0);
        buf = gslq__alloc((size_t)nt, GSLQ_BND_BUF(nblk), sizeof(float), 0);
        ids = gslq__alloc((size_t)nt, GSLQ_BND_BATCH, sizeof(size_t), 0);
        if (!ub || !rb || !cb || !ch || !xn || !x2 || !buf || !ids) brute = 1;
    }
    double xmax2 = 0;
    if (!brute) {
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int t = 0; t < d; t++) s += (double)x[i * d + t] * (double)x[i * d + t];
            xn[i] = up_f(sqrt(s) * (1 + 1e-13));
            x2[i] = down_f(s * (1 - 1e-13));
            if (s > xmax2) xmax2 = s;
        }
    }
    for (size_t i = 0; i < n; i++) idx[i] = -1;
    lloyd_ctx a = {0};
    gslq__bnd *Y = &a.Y;
    Y->x = x; Y->d = d; Y->k = k; Y->nblk = nblk; Y->r = k - 1 < GSLQ_BND_R ? k - 1 : GSLQ_BND_R;
    Y->c = c; Y->ctb = ctb; Y->cnb = cnb; Y->DcF = DcF; Y->xn = xn; Y->x2 = x2; Y->idx = idx; Y->nidx = nidx;
    Y->ub = ub; Y->rb = rb; Y->cb = cb; Y->ch = ch; Y->d2 = want_d2 ? d2 : NULL;
    /* |s_j - exact| <= gk (|c_j|^2 + 2 |x| |c_j|) for the kernel (twice the textbook (2d + 2) u); |fl(|x - c|^2) -
     * |x - c|^2| <= gd |x - c|^2 for gslq__dist2_direct (twice (d + 3) u). */
    Y->gk = (float)(2.0 * (2 * d + 4) * ldexp(1.0, -24));
    Y->gd = (float)(2.0 * (d + 4) * ldexp(1.0, -24));
    a.n = n; a.k = k; a.level = level; a.brute = brute; a.buf = buf; a.ids = ids; a.work = work;
    double prev = INFINITY, obj = 0, Dmax = 0;
    int repaired = 0, iters = 0;
    for (int it = 0; it <= p->niter; it++) {
        if (it == p->niter && it > 0 && !want_d2) break; /* nobody reads the last assignment */
        /* centroids of this iteration: layout, norm bound */
        gslq__blocks_layout(c, k, d, ctb, cnb);
        double cm = 0;
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int t = 0; t < d; t++) s += (double)c[j * d + t] * (double)c[j * d + t];
            if (s > cm) cm = s;
        }
        double cmax = sqrt(cm) * (1 + 1e-13);
        Y->cmax2 = up_f(cmax * cmax);
        Y->cmax2x = up_f(2 * cmax);
        Y->DmaxF = up_f(Dmax);
        Y->slack = (float)(1e-30 + 1e-12 * (xmax2 + cm));
        Y->first = it == 0;
        gslq__parallel(nt, assign_part, &a);
        if (want_d2) {
            obj = 0;
            for (size_t i = 0; i < n; i++) obj += d2[i];
            if (it == 0 && stats) stats->obj_init = obj;
            if (obj_trace) obj_trace[it] = obj;
            if (p->verbose) {
                size_t w = 0;
                for (int t = 0; t < nt; t++) w += work[t], work[t] = 0;
                fprintf(stderr, "kmeans: iter %d objective %.6g (%s, %.1f%% of the distances)\n", it, obj,
                        brute ? "all distances" : "bounds", 100.0 * (double)w / ((double)n * nblk));
            }
            if (it == p->niter || (it > 0 && p->tol > 0 && prev - obj <= p->tol * prev)) break;
            prev = obj;
        }
        /* move the points that changed centroid, in index order */
        memset(touched, 0, (size_t)k);
        for (size_t i = 0; i < n; i++) {
            int from = idx[i], to = nidx[i];
            if (from == to) continue;
            if (from >= 0) {
                add_point(sum + (size_t)from * d, x + i * d, d, -1.0);
                count[from]--;
                touched[from] = 1;
            }
            add_point(sum + (size_t)to * d, x + i * d, d, 1.0);
            count[to]++;
            touched[to] = 1;
            idx[i] = to;
        }
        /* empty clusters: the point farthest from its centroid among clusters of >= 2 points moves there */
        int need_repair = 0;
        for (int j = 0; j < k; j++) need_repair |= count[j] == 0;
        if (need_repair) {
            if (!want_d2)
                for (size_t i = 0; i < n; i++) d2[i] = gslq__dist2_direct(x + i * d, c + (size_t)idx[i] * d, d);
            for (int j = 0; j < k; j++) {
                if (count[j] > 0) continue;
                size_t far = n;
                float fd = -1;
                for (size_t i = 0; i < n; i++)
                    if (count[idx[i]] > 1 && d2[i] > fd) { fd = d2[i]; far = i; }
                if (far == n) break; /* fewer distinct points than centroids: nothing to move */
                int from = idx[far];
                add_point(sum + (size_t)from * d, x + far * d, d, -1.0);
                add_point(sum + (size_t)j * d, x + far * d, d, 1.0);
                count[from]--;
                count[j] = 1;
                touched[from] = touched[j] = 1;
                idx[far] = j;
                d2[far] = 0;
                if (rb) rb[far] = -INFINITY; /* its bounds refer to the old centroid: recompute all */
                repaired++;
            }
        }
        /* new centroids of the touched clusters; cumulative drifts, rounded up */
        memcpy(cold, c, (size_t)k * d * sizeof(float));
        double dmax = 0;
        for (int j = 0; j < k; j++) {
            if (!touched[j] || count[j] == 0) continue;
            double s = 0;
            for (int t = 0; t < d; t++) {
                c[(size_t)j * d + t] = (float)(sum[(size_t)j * d + t] / count[j]);
                double df = (double)c[(size_t)j * d + t] - (double)cold[(size_t)j * d + t];
                s += df * df;
            }
            double dr = sqrt(s) * (1 + 1e-13);
            DcF[j] = up_f((double)DcF[j] + dr);
            if (dr > dmax) dmax = dr;
        }
        Dmax = (double)up_f(Dmax + dmax);
        iters++;
    }
    if (stats) {
        stats->iters = iters;
        stats->obj = obj;
        stats->repaired = repaired;
    }
done:
    free(ctb); free(cnb); free(cold); free(d2); free(DcF); free(sum); free(idx); free(nidx);
    free(count); free(touched); free(work); free(ub); free(rb); free(cb); free(ch); free(buf); free(ids); free(xn); free(x2);
    return rc;
}
