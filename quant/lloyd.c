/* Lloyd iterations for small dimensions (d <= GSLQ_DIRECT_MAXD, the PQ sub-spaces) with the direct kernels of
 * kern.c: every point takes the first index of the smallest value |c_j|^2 - 2 x.c_j, computed against all k
 * centroids (no bounds: see docs/quant.md, "k-means", for the exact bounded variants that were measured slower).
 *
 * The centroid update is incremental: per-cluster sums in double, changed only by the points that move, in index
 * order. The objective (when someone reads it) sums |x - c|^2 computed directly. Results do not depend on the
 * thread count: points are independent and the update is serial. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    const float *x, *c, *ctb, *cnb;
    size_t n;
    int d, kp, level;
    int *nidx;
    float *d2; /* NULL when nobody reads the objective */
} lloyd_ctx;

static void assign_part(void *arg, int t, int nt)
{
    lloyd_ctx *a = arg;
    size_t b, e;
    gslq__split(a->n, t, nt, &b, &e);
    if (b >= e) return;
    int d = a->d;
    gslq__near_rows(a->level, a->x + b * (size_t)d, e - b, (size_t)d, d, a->ctb, a->cnb, a->kp, a->nidx + b, NULL);
    if (a->d2)
        for (size_t i = b; i < e; i++)
            a->d2[i] = gslq__dist2_direct(a->x + i * (size_t)d, a->c + (size_t)a->nidx[i] * d, d);
}

/* sum += sign * x */
static void add_point(double *sum, const float *x, int d, double sign)
{
    for (int t = 0; t < d; t++) sum[t] += sign * (double)x[t];
}

int gslq__lloyd_direct(const float *x, size_t n, int d, int k, float *c, const gslq_train_params *p, int level,
                       double *obj_trace, gslq_kmeans_stats *stats)
{
    int nt = p->nthreads < 1 ? 1 : p->nthreads, kp = GSLQ_KPAD(k);
    if ((size_t)nt > n) nt = (int)n;
    int want_d2 = obj_trace || stats || p->verbose || p->tol > 0;
    int rc = GSLQ_OK;
    float *ctb = gslq__alloc((size_t)kp, (size_t)d, sizeof(float), 0), *cnb = gslq__alloc((size_t)kp, sizeof(float), 1, 0);
    float *d2 = gslq__alloc(n, sizeof(float), 1, 0);
    double *sum = gslq__alloc((size_t)k, (size_t)d, sizeof(double), 1);
    int *idx = gslq__alloc(n, sizeof(int), 1, 0), *nidx = gslq__alloc(n, sizeof(int), 1, 0);
    int *count = gslq__alloc((size_t)k, sizeof(int), 1, 1);
    char *touched = gslq__alloc((size_t)k, 1, 1, 0);
    if (!ctb || !cnb || !d2 || !sum || !idx || !nidx || !count || !touched) {
        rc = GSLQ_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) idx[i] = -1;
    lloyd_ctx a = {x, c, ctb, cnb, n, d, kp, level, nidx, want_d2 ? d2 : NULL};
    double prev = INFINITY, obj = 0;
    int repaired = 0, iters = 0;
    /* iteration it: assign with the centroids after `it` updates (objective obj_it), then update */
    for (int it = 0; it <= p->niter; it++) {
        if (it == p->niter && it > 0 && !want_d2) break; /* nobody reads the last assignment */
        gslq__blocks_layout(c, k, d, gslq__kern_bw(level), ctb, cnb);
        gslq__parallel(nt, assign_part, &a);
        if (want_d2) {
            obj = 0;
            for (size_t i = 0; i < n; i++) obj += d2[i];
            if (it == 0 && stats) stats->obj_init = obj;
            if (obj_trace) obj_trace[it] = obj;
            if (p->verbose) fprintf(stderr, "kmeans: iter %d objective %.6g\n", it, obj);
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
                repaired++;
            }
        }
        /* new centroids of the clusters whose members changed */
        for (int j = 0; j < k; j++)
            if (touched[j] && count[j] > 0)
                for (int t = 0; t < d; t++) c[(size_t)j * d + t] = (float)(sum[(size_t)j * d + t] / count[j]);
        iters++;
    }
    if (stats) {
        stats->iters = iters;
        stats->obj = obj;
        stats->repaired = repaired;
    }
done:
    free(ctb); free(cnb); free(d2); free(sum); free(idx); free(nidx); free(count); free(touched);
    return rc;
}
