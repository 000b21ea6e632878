/* Lloyd iterations for small dimensions (d <= GSLQ_DIRECT_MAXD, the PQ sub-spaces) with the direct kernels of
 * kern.c. The reference is brute force: every point takes the first index of the smallest kernel value
 * s_j = |c_j|^2 - 2 x.c_j over all k centroids. With bounds (Hamerly 2010, with his centroid-separation test) the
 * points whose centroid provably stays are skipped, and the result is exactly the brute-force one:
 *
 * Per point: U >= |x - c_a| (a its centroid) and L <= |x - c_j| for every j != a, kept as offsets against the
 * cumulative drifts (U grows by a's drift, L shrinks by the largest drift). Also L' = s_a - U, where s_a <= the
 * distance from c_a to the nearest other centroid (triangle inequality). The kernel value has a rounding error of
 * at most e(x) = gk (cmax^2 + 2 |x| cmax), gk = 2 (2d + 4) 2^-24; so when max(L, L')^2 - U^2 > 2 e(x) (plus a
 * slack for the double arithmetic of the bounds), every other centroid has a strictly larger kernel value than a,
 * and a is brute force's answer (ties included). Otherwise U is tightened with the exact distance and the test
 * repeated; failing again, the point is recomputed with the full kernel (in batches, with the second smallest value,
 * which gives the new L: |x - c_j|^2 >= s_j - e(x) + |x|^2).
 *
 * The centroid update is incremental: per-cluster sums in double, changed only by the points that move, in index
 * order. The objective (when someone reads it) sums |x - c|^2 computed directly. Results do not depend on the
 * thread count or on the bounds: points are independent and the update is serial. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BATCH 64 /* points recomputed together */

typedef struct {
    const float *x, *c, *ctb, *cnb;
    size_t n;
    int d, kp, level, bounds, first;
    const int *idx;
    int *nidx;
    float *d2;          /* NULL when nobody reads the objective */
    /* bounds (NULL without) */
    double *ub, *lb;    /* (n) U - Dc[a], L + Dmax */
    const double *xn, *x2; /* (n) |x| (rounded up), |x|^2 (rounded down) */
    const double *Dc, *sc; /* (k) cumulative drift of each centroid; s_a */
    double Dmax, cmax, gk, gd, slack;
    float *buf;         /* (nt, BATCH * (d + 2)) */
    int *bidx;          /* (nt, BATCH) */
    size_t *bpt;        /* (nt, BATCH) */
    size_t *skipped;    /* (nt) */
} lloyd_ctx;

/* l^2 - u^2 > em, with a relative slack for the double arithmetic of the bounds (NaN: no) */
static inline int certified(double l, double u, double em)
{
    return l > u && (l - u) * (l + u) > em + 1e-9 * (l * l + u * u);
}

/* |x - c|^2 >= s - ek + |x|^2 for a kernel value s, as a distance (0 when nothing is known) */
static inline double lower(double s, double ek, double x2)
{
    double v = s - ek + x2;
    return v > 0 ? sqrt(v) * (1 - 1e-12) : 0.0;
}

/* Full kernel on the n points ids, with new bounds. */
static void recompute(lloyd_ctx *a, const size_t *ids, int n, float *buf, int *bidx)
{
    int d = a->d;
    float *rows = buf, *best = buf + (size_t)BATCH * d, *sec = best + BATCH;
    for (int q = 0; q < n; q++) memcpy(rows + (size_t)q * d, a->x + ids[q] * d, (size_t)d * sizeof(float));
    gslq__near_rows2(a->level, rows, (size_t)n, (size_t)d, d, a->ctb, a->cnb, a->kp, bidx, best, sec);
    for (int q = 0; q < n; q++) {
        size_t i = ids[q];
        int na = bidx[q];
        double ek = a->gk * (a->cmax * a->cmax + 2 * a->xn[i] * a->cmax);
        a->lb[i] = lower(sec[q], ek, a->x2[i]) + a->Dmax;
        float dd = gslq__dist2_direct(a->x + i * d, a->c + (size_t)na * d, d);
        a->ub[i] = sqrt((double)dd * (1 + a->gd)) - a->Dc[na];
        a->nidx[i] = na;
        if (a->d2) a->d2[i] = dd;
    }
}

static void assign_part(void *arg, int t, int nt)
{
    lloyd_ctx *a = arg;
    size_t b, e;
    gslq__split(a->n, t, nt, &b, &e);
    if (b >= e) return;
    int d = a->d;
    if (!a->bounds) {
        gslq__near_rows(a->level, a->x + b * (size_t)d, e - b, (size_t)d, d, a->ctb, a->cnb, a->kp, a->nidx + b, NULL);
        if (a->d2)
            for (size_t i = b; i < e; i++)
                a->d2[i] = gslq__dist2_direct(a->x + i * (size_t)d, a->c + (size_t)a->nidx[i] * d, d);
        return;
    }
    float *buf = a->buf + (size_t)t * BATCH * (d + 2);
    int *bidx = a->bidx + (size_t)t * BATCH;
    size_t *ids = a->bpt + (size_t)t * BATCH, skipped = 0;
    int nb = 0;
    for (size_t i = b; i < e; i++) {
        int ai = a->first ? -1 : a->idx[i];
        if (ai >= 0) {
            double em = 2 * a->gk * (a->cmax * a->cmax + 2 * a->xn[i] * a->cmax) + a->slack;
            double u = a->ub[i] + a->Dc[ai], l = a->lb[i] - a->Dmax, ls = a->sc[ai] - u;
            float dd = -1;
            int keep = certified(l > ls ? l : ls, u, em);
            if (!keep) { /* tighten U with the exact distance */
                dd = gslq__dist2_direct(a->x + i * d, a->c + (size_t)ai * d, d);
                u = sqrt((double)dd * (1 + a->gd));
                a->ub[i] = u - a->Dc[ai];
                ls = a->sc[ai] - u;
                keep = certified(l > ls ? l : ls, u, em);
            }
            if (keep) {
                a->nidx[i] = ai;
                if (a->d2) a->d2[i] = dd >= 0 ? dd : gslq__dist2_direct(a->x + i * d, a->c + (size_t)ai * d, d);
                skipped++;
                continue;
            }
        }
        ids[nb++] = i;
        if (nb == BATCH) {
            recompute(a, ids, nb, buf, bidx);
            nb = 0;
        }
    }
    if (nb) recompute(a, ids, nb, buf, bidx);
    a->skipped[t] += skipped;
}

/* sum += sign * x */
static void add_point(double *sum, const float *x, int d, double sign)
{
    for (int t = 0; t < d; t++) sum[t] += sign * (double)x[t];
}

/* Point i moves from cluster `from` to the emptied cluster j (repair): sums, counts, and its bounds, which referred
 * to the old centroid (U unknown, L only from s_a). */
static void move_point(const float *x, size_t i, int d, int from, int j, double *sum, int *count, int *idx,
                       float *d2, double *ub, double *lb)
{
    add_point(sum + (size_t)from * d, x + i * d, d, -1.0);
    add_point(sum + (size_t)j * d, x + i * d, d, 1.0);
    count[from]--;
    count[j]++;
    idx[i] = j;
    d2[i] = 0;
    if (ub) {
        ub[i] = INFINITY;
        lb[i] = -INFINITY;
    }
}

/* The objective of iteration it, recorded and printed; 1 when the iterations end with it. */
static int objective(const gslq_train_params *p, int it, double obj, double *prev, double *obj_trace,
                     gslq_kmeans_stats *stats, size_t *skipped, int nt, size_t n)
{
    if (it == 0 && stats) stats->obj_init = obj;
    if (obj_trace) obj_trace[it] = obj;
    if (p->verbose) {
        size_t sk = 0;
        for (int t = 0; skipped && t < nt; t++) sk += skipped[t], skipped[t] = 0;
        fprintf(stderr, "kmeans: iter %d objective %.6g (%.1f%% of the points skipped%s)\n", it, obj,
                n ? 100.0 * (double)sk / (double)n : 0.0, p->comm ? " on this shard" : "");
    }
    if (it == p->niter || (it > 0 && p->tol > 0 && *prev - obj <= p->tol * *prev)) return 1;
    *prev = obj;
    return 0;
}

int gslq__lloyd_direct(const float *x, size_t n, int d, int k, float *c, const gslq_train_params *p, int level,
                       int bounds, double *obj_trace, gslq_kmeans_stats *stats)
{
    int nt = p->nthreads < 1 ? 1 : p->nthreads, kp = GSLQ_KPAD(k);
    if ((size_t)nt > n) nt = (int)n;
    int want_d2 = obj_trace || stats || p->verbose || p->tol > 0;
    int rc = GSLQ_OK;
    double *ub = NULL, *lb = NULL, *xn = NULL, *x2 = NULL, *Dc = NULL, *sc = NULL;
    float *buf = NULL, *cold = NULL, *csec = NULL;
    int *bidx = NULL, *cidx = NULL;
    size_t *bpt = NULL, *skipped = NULL;
    float *ctb = gslq__alloc((size_t)kp, (size_t)d, sizeof(float), 0), *cnb = gslq__alloc((size_t)kp, sizeof(float), 1, 0);
    float *d2 = gslq__alloc(n, sizeof(float), 1, 0);
    double *sum = gslq__alloc((size_t)k, (size_t)d, sizeof(double), 1);
    int *idx = gslq__alloc(n, sizeof(int), 1, 0), *nidx = gslq__alloc(n, sizeof(int), 1, 0);
    int *count = gslq__alloc((size_t)k, sizeof(int), 1, 1);
    char *touched = gslq__alloc((size_t)k, 1, 1, 0);
    /* distributed: red = the global sums (k, d), counts (k), touched flags (k) and objective; work for repairs */
    const gslq_comm *comm = p->comm && p->comm->size > 1 ? p->comm : NULL;
    size_t kd = (size_t)k * d, nred = kd + 2 * (size_t)k + 1;
    double *red = comm ? gslq__alloc(nred, sizeof(double), 1, 0) : NULL;
    double *work = comm ? gslq__alloc((size_t)d + 1, sizeof(double), 1, 0) : NULL;
    if (!ctb || !cnb || !d2 || !sum || !idx || !nidx || !count || !touched || (comm && (!red || !work)))
        rc = GSLQ_ENOMEM;
    if ((rc = gslq__comm_agree(comm, rc))) goto done;
    if (bounds) { /* 40 bytes per point; without the memory, brute force gives the same result */
        ub = gslq__alloc(n, sizeof(double), 1, 0);
        lb = gslq__alloc(n, sizeof(double), 1, 0);
        xn = gslq__alloc(n, sizeof(double), 1, 0);
        x2 = gslq__alloc(n, sizeof(double), 1, 0);
        Dc = gslq__alloc((size_t)k, sizeof(double), 1, 1);
        sc = gslq__alloc((size_t)k, sizeof(double), 1, 0);
        cold = gslq__alloc((size_t)k, (size_t)d, sizeof(float), 0);
        csec = gslq__alloc((size_t)k, 2, sizeof(float), 0);
        cidx = gslq__alloc((size_t)k, sizeof(int), 1, 0);
        buf = gslq__alloc((size_t)nt * BATCH, (size_t)d + 2, sizeof(float), 0);
        bidx = gslq__alloc((size_t)nt * BATCH, sizeof(int), 1, 0);
        bpt = gslq__alloc((size_t)nt * BATCH, sizeof(size_t), 1, 0);
        skipped = gslq__alloc((size_t)nt, sizeof(size_t), 1, 1);
        if (!ub || !lb || !xn || !x2 || !Dc || !sc || !cold || !csec || !cidx || !buf || !bidx || !bpt || !skipped)
            bounds = 0;
    }
    double xmax2 = 0;
    if (bounds)
        for (size_t i = 0; i < n; i++) {
            double s2 = 0;
            for (int t = 0; t < d; t++) s2 += (double)x[i * d + t] * (double)x[i * d + t];
            xn[i] = sqrt(s2) * (1 + 1e-13);
            x2[i] = s2 * (1 - 1e-13);
            if (s2 > xmax2) xmax2 = s2;
        }
    for (size_t i = 0; i < n; i++) idx[i] = -1;
    lloyd_ctx a = {0};
    a.x = x; a.c = c; a.ctb = ctb; a.cnb = cnb; a.n = n; a.d = d; a.kp = kp; a.level = level; a.bounds = bounds;
    a.idx = idx; a.nidx = nidx; a.d2 = want_d2 ? d2 : NULL;
    a.ub = ub; a.lb = lb; a.xn = xn; a.x2 = x2; a.Dc = Dc; a.sc = sc; a.buf = buf; a.bidx = bidx; a.bpt = bpt;
    a.skipped = skipped;
    a.gk = 2.0 * (2 * d + 4) * ldexp(1.0, -24);
    a.gd = 2.0 * (d + 4) * ldexp(1.0, -24);
    double prev = INFINITY, obj = 0, Dmax = 0;
    int repaired = 0, iters = 0;
    /* iteration it: assign with the centroids after `it` updates (objective obj_it), then update */
    for (int it = 0; it <= p->niter; it++) {
        if (it == p->niter && it > 0 && !want_d2) break; /* nobody reads the last assignment */
        gslq__blocks_layout(c, k, d, gslq__kern_bw(level), ctb, cnb);
        if (bounds) {
            /* |c|max; s_a <= the distance from c_a to its nearest other centroid (the kernel on the centroids) */
            double cm = 0;
            for (int j = 0; j < k; j++) {
                double s2 = 0;
                for (int t = 0; t < d; t++) s2 += (double)c[(size_t)j * d + t] * (double)c[(size_t)j * d + t];
                cm = s2 > cm ? s2 : cm;
            }
            a.cmax = sqrt(cm) * (1 + 1e-13);
            gslq__near_rows2(level, c, (size_t)k, (size_t)d, d, ctb, cnb, kp, cidx, csec, csec + k);
            for (int j = 0; j < k; j++) {
                double s2 = 0;
                for (int t = 0; t < d; t++) s2 += (double)c[(size_t)j * d + t] * (double)c[(size_t)j * d + t];
                double cj = sqrt(s2) * (1 + 1e-13);
                /* with a duplicate of c_j the nearest other may be c_j's own slot: s_a = 0 then, which is safe */
                sc[j] = cidx[j] == j ? lower(csec[k + j], a.gk * (a.cmax * a.cmax + 2 * cj * a.cmax), s2 * (1 - 1e-13))
                                     : 0.0;
            }
            a.Dmax = Dmax;
            a.first = it == 0;
            a.slack = 1e-9 * (xmax2 + cm + Dmax * Dmax) + 1e-30;
            memcpy(cold, c, (size_t)k * d * sizeof(float));
        }
        gslq__parallel(nt, assign_part, &a);
        double lobj = 0;
        if (want_d2)
            for (size_t i = 0; i < n; i++) lobj += d2[i];
        obj = lobj;
        if (!comm && want_d2 && objective(p, it, obj, &prev, obj_trace, stats, bounds ? skipped : NULL, nt, n)) break;
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
        /* the sums, counts and touched flags of all shards; gcnt: the counts that decide */
        double *gsum = sum, *gcnt = red ? red + kd : NULL;
        if (comm) {
            memcpy(red, sum, kd * sizeof(double));
            for (int j = 0; j < k; j++) gcnt[j] = count[j], gcnt[k + j] = touched[j];
            red[nred - 1] = lobj;
            if ((rc = gslq__comm_reduce(comm, red, nred, GSLQ_REDUCE_SUM))) goto done;
            obj = red[nred - 1];
            if (want_d2 && objective(p, it, obj, &prev, obj_trace, stats, bounds ? skipped : NULL, nt, n)) break;
            gsum = red;
            for (int j = 0; j < k; j++) touched[j] = gcnt[k + j] > 0;
        }
        /* empty clusters: the point farthest from its centroid among clusters of >= 2 points moves there */
        int need_repair = 0;
        for (int j = 0; j < k; j++) need_repair |= (comm ? gcnt[j] : count[j]) == 0;
        if (need_repair) {
            if (!want_d2)
                for (size_t i = 0; i < n; i++) d2[i] = gslq__dist2_direct(x + i * d, c + (size_t)idx[i] * d, d);
            for (int j = 0; j < k; j++) {
                size_t far = n;
                int from;
                if (comm) {
                    if (gcnt[j] > 0) continue;
                    if ((rc = gslq__comm_repair(comm, x, n, d, j, idx, d2, gsum, gcnt, work, &far, &from))) goto done;
                    if (from < 0) break; /* fewer distinct points than centroids: nothing to move */
                } else {
                    if (count[j] > 0) continue;
                    float fd = -1;
                    for (size_t i = 0; i < n; i++)
                        if (count[idx[i]] > 1 && d2[i] > fd) { fd = d2[i]; far = i; }
                    if (far == n) break; /* fewer distinct points than centroids: nothing to move */
                    from = idx[far];
                }
                touched[from] = touched[j] = 1;
                repaired++;
                if (far < n) move_point(x, far, d, from, j, sum, count, idx, d2, bounds ? ub : NULL, lb);
            }
        }
        /* new centroids of the clusters whose members changed; their drifts (rounded up) */
        double dmax = 0;
        for (int j = 0; j < k; j++) {
            double cnt = comm ? gcnt[j] : count[j];
            if (touched[j] && cnt > 0) {
                double s2 = 0;
                for (int t = 0; t < d; t++) {
                    c[(size_t)j * d + t] = (float)(gsum[(size_t)j * d + t] / cnt);
                    if (bounds) {
                        double df = (double)c[(size_t)j * d + t] - (double)cold[(size_t)j * d + t];
                        s2 += df * df;
                    }
                }
                if (bounds) {
                    double dr = sqrt(s2) * (1 + 1e-13);
                    Dc[j] += dr;
                    dmax = dr > dmax ? dr : dmax;
                }
            }
        }
        Dmax += dmax;
        iters++;
    }
    rc = gslq__kmeans_finish(comm, c, k, d, iters, obj, repaired, stats);
done:
    free(red); free(work);
    free(ctb); free(cnb); free(d2); free(sum); free(idx); free(nidx); free(count); free(touched);
    free(ub); free(lb); free(xn); free(x2); free(Dc); free(sc); free(cold); free(csec); free(cidx); free(buf);
    free(bidx); free(bpt); free(skipped);
    return rc;
}
