/* Lloyd's k-means: k-means++ or random initialisation, warm start, empty-cluster repair, iteration cap and
 * tolerance. Assignment by the direct kernels of kern.c for d <= GSLQ_DIRECT_MAXD (lloyd.c: every PQ sub-space),
 * through sgemm (assign.c) above. Every step partitions its work so that the result does not depend on the thread
 * count: assignment is per point, the centroid update is split over coordinates (serial and incremental in
 * lloyd.c), k-means++ sums fixed blocks of points. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void gslq_train_params_default(gslq_train_params *p)
{
    memset(p, 0, sizeof *p);
    p->niter = 25;
    p->tol = 0.0f;
    p->init = GSLQ_INIT_KMEANSPP;
    p->warm_start = 0;
    p->seed = 1234;
    p->nthreads = 1;
    p->max_points = 0;
    p->opq_iter = 20;
    p->opq_kmeans_iter = 4;
    p->verbose = 0;
}

#define PP_BLOCK 1024 /* k-means++ sampling blocks (fixed, so sums do not depend on threads) */

typedef struct {
    const float *xt;  /* points transposed by blocks of 16 (gslq__pp_update) */
    size_t n;
    int d, level;
    const float *c;   /* the newest centre */
    float *mind;      /* (n rounded up to 16) squared distance to the nearest chosen centre */
    double *bsum;     /* (nblocks) sums of mind per block */
} pp_ctx;

static void pp_update(void *arg, int t, int nt)
{
    pp_ctx *a = arg;
    size_t nblk = (a->n + PP_BLOCK - 1) / PP_BLOCK, b0, b1;
    gslq__split(nblk, t, nt, &b0, &b1);
    for (size_t b = b0; b < b1; b++) {
        size_t i0 = b * PP_BLOCK, i1 = i0 + PP_BLOCK < a->n ? i0 + PP_BLOCK : a->n;
        gslq__pp_update(a->level, a->xt, a->d, a->c, a->mind, i0 / 16, (i1 + 15) / 16);
        double s = 0;
        for (size_t i = i0; i < i1; i++) s += a->mind[i];
        a->bsum[b] = s;
    }
}

static int init_kmeanspp(const float *x, size_t n, int d, int k, float *c, gslq_rng *rng, int nthreads)
{
    size_t nblk = (n + PP_BLOCK - 1) / PP_BLOCK, n16 = (n + 15) / 16 * 16;
    float *mind = gslq__alloc(n16, sizeof(float), 1, 0), *xt = gslq__alloc(n16, (size_t)d, sizeof(float), 0);
    double *bsum = gslq__alloc(nblk, sizeof(double), 1, 0);
    if (!mind || !bsum || !xt) {
        free(mind); free(bsum); free(xt);
        return GSLQ_ENOMEM;
    }
    for (size_t i = 0; i < n16; i++) {
        mind[i] = INFINITY;
        for (int t = 0; t < d; t++) xt[(i / 16 * d + t) * 16 + i % 16] = i < n ? x[i * d + t] : 0.0f;
    }
    int level = gslq__kern_level();
    size_t pick = gslq__rng_below(rng, n);
    for (int j = 0; j < k; j++) {
        memcpy(c + (size_t)j * d, x + pick * d, (size_t)d * sizeof(float));
        if (j == k - 1) break;
        pp_ctx a = {xt, n, d, level, c + (size_t)j * d, mind, bsum};
        gslq__parallel(nthreads, pp_update, &a);
        double total = 0;
        for (size_t b = 0; b < nblk; b++) total += bsum[b];
        if (!(total > 0)) { /* every point coincides with a centre: any point will do */
            pick = gslq__rng_below(rng, n);
            continue;
        }
        double r = gslq__rng_uniform(rng) * total;
        size_t b = 0;
        while (b + 1 < nblk && r >= bsum[b]) r -= bsum[b++];
        size_t i0 = b * PP_BLOCK, i1 = i0 + PP_BLOCK < n ? i0 + PP_BLOCK : n;
        pick = i1 - 1;
        for (size_t i = i0; i < i1; i++) {
            if (r < mind[i]) { pick = i; break; }
            r -= mind[i];
        }
        /* rounding can land on a zero-weight point at the block end: step back to one with weight */
        while (mind[pick] <= 0 && pick > i0) pick--;
    }
    free(mind); free(bsum); free(xt);
    return GSLQ_OK;
}

static int init_random(const float *x, size_t n, int d, int k, float *c, gslq_rng *rng)
{
    /* k distinct points: partial Fisher-Yates over an index array */
    size_t *perm = gslq__alloc(n, sizeof(size_t), 1, 0);
    if (!perm) return GSLQ_ENOMEM;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (int j = 0; j < k; j++) {
        size_t r = (size_t)j + gslq__rng_below(rng, n - (size_t)j), t = perm[j];
        perm[j] = perm[r]; perm[r] = t;
        memcpy(c + (size_t)j * d, x + perm[j] * d, (size_t)d * sizeof(float));
    }
    free(perm);
    return GSLQ_OK;
}

typedef struct {
    const float *x;
    size_t n;
    int d, k;
    const int *idx;
    const int *count;
    float *c;
    double *acc; /* (k, d) */
} upd_ctx;

static void update_part(void *arg, int t, int nt)
{
    upd_ctx *a = arg;
    size_t j0, j1;
    gslq__split((size_t)a->d, t, nt, &j0, &j1);
    if (j0 >= j1) return;
    int d = a->d;
    for (int c = 0; c < a->k; c++)
        for (size_t j = j0; j < j1; j++) a->acc[(size_t)c * d + j] = 0;
    for (size_t i = 0; i < a->n; i++) {
        const float *xi = a->x + i * (size_t)d;
        double *ac = a->acc + (size_t)a->idx[i] * d;
        for (size_t j = j0; j < j1; j++) ac[j] += xi[j];
    }
    for (int c = 0; c < a->k; c++)
        if (a->count[c] > 0)
            for (size_t j = j0; j < j1; j++)
                a->c[(size_t)c * d + j] = (float)(a->acc[(size_t)c * d + j] / a->count[c]);
}

int gslq__kmeans_finish(const gslq_comm *comm, float *c, int k, int d, int iters, double obj, int repaired,
                        gslq_kmeans_stats *stats)
{
    if (comm && gslq__comm_share_f(comm, c, (size_t)k * d)) return GSLQ_ECOMM;
    if (stats) {
        stats->iters = iters;
        stats->obj = obj;
        stats->repaired = repaired;
    }
    return GSLQ_OK;
}

/* The sgemm path's Lloyd iterations (d > GSLQ_DIRECT_MAXD): every point reassigned each iteration. */
static int lloyd_sgemm(const float *x, size_t n, int d, int k, float *centroids, const gslq_train_params *p,
                       int nt, double *obj_trace, gslq_kmeans_stats *stats)
{
    const gslq_comm *comm = p->comm && p->comm->size > 1 ? p->comm : NULL;
    size_t kd = (size_t)k * d;
    float *dist2 = gslq__alloc(n, sizeof(float), 1, 0);
    int *idx = gslq__alloc(n, sizeof(int), 1, 0), *count = gslq__alloc((size_t)k, sizeof(int), 1, 0);
    /* one process: per-coordinate sums for the threaded update; distributed: the global sums (k, d), counts (k) and
     * objective, and work for repairs */
    double *acc = comm ? NULL : gslq__alloc((size_t)k, (size_t)d, sizeof(double), 0);
    double *red = comm ? gslq__alloc(kd + (size_t)k + 1, sizeof(double), 1, 0) : NULL;
    double *work = comm ? gslq__alloc((size_t)d + 1, sizeof(double), 1, 0) : NULL;
    int rc = !dist2 || !idx || !count || (comm ? !red || !work : !acc) ? GSLQ_ENOMEM : GSLQ_OK;
    if ((rc = gslq__comm_agree(comm, rc))) goto done;
    double prev = INFINITY, obj = 0;
    int it, repaired = 0, iters = 0;
    /* iteration it: assign with the centroids after `it` updates (objective obj_it), then update */
    for (it = 0; it <= p->niter; it++) {
        if (it == p->niter && it > 0 && !obj_trace && !stats && !p->verbose) break; /* nobody reads it */
        if ((rc = gslq__assign_mt(x, n, d, (size_t)d, centroids, k, idx, dist2, nt))) goto done;
        obj = 0;
        for (size_t i = 0; i < n; i++) obj += dist2[i];
        memset(count, 0, (size_t)k * sizeof(int));
        for (size_t i = 0; i < n; i++) count[idx[i]]++;
        double *gcnt = NULL;
        if (comm) { /* the objective, sums and counts of all shards */
            memset(red, 0, (kd + (size_t)k + 1) * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                double *r = red + (size_t)idx[i] * d;
                for (int t = 0; t < d; t++) r[t] += x[i * (size_t)d + t];
            }
            gcnt = red + kd;
            for (int j = 0; j < k; j++) gcnt[j] = count[j];
            red[kd + k] = obj;
            if ((rc = gslq__comm_reduce(comm, red, kd + (size_t)k + 1, GSLQ_REDUCE_SUM))) goto done;
            obj = red[kd + k];
        }
        if (it == 0 && stats) stats->obj_init = obj;
        if (obj_trace) obj_trace[it] = obj;
        if (p->verbose) fprintf(stderr, "kmeans: iter %d objective %.6g\n", it, obj);
        if (it == p->niter || (it > 0 && p->tol > 0 && prev - obj <= p->tol * prev)) break;
        prev = obj;
        for (int c = 0; c < k; c++) {
            if ((comm ? gcnt[c] : count[c]) > 0) continue;
            /* repair: the point farthest from its centroid (in a cluster of >= 2) becomes this centroid */
            size_t far = n;
            if (comm) {
                int from;
                if ((rc = gslq__comm_repair(comm, x, n, d, c, idx, dist2, red, gcnt, work, &far, &from))) goto done;
                if (from < 0) break;
                if (far < n) idx[far] = c, dist2[far] = 0;
                repaired++;
                continue;
            }
            float fd = -1;
            for (size_t i = 0; i < n; i++)
                if (count[idx[i]] > 1 && dist2[i] > fd) { fd = dist2[i]; far = i; }
            if (far == n) break; /* fewer distinct points than centroids: nothing to move */
            count[idx[far]]--;
            idx[far] = c;
            count[c] = 1;
            dist2[far] = 0;
            repaired++;
        }
        if (comm) {
            for (int c = 0; c < k; c++)
                if (gcnt[c] > 0)
                    for (int t = 0; t < d; t++) centroids[(size_t)c * d + t] = (float)(red[(size_t)c * d + t] / gcnt[c]);
        } else {
            upd_ctx u = {x, n, d, k, idx, count, centroids, acc};
            gslq__parallel(nt < d ? nt : d, update_part, &u);
        }
        iters++;
    }
    rc = gslq__kmeans_finish(comm, centroids, k, d, iters, obj, repaired, stats);
done:
    free(dist2); free(idx); free(count); free(acc); free(red); free(work);
    return rc;
}

int gslq_kmeans(const float *x_in, size_t n_in, int d, int k, float *centroids, const gslq_train_params *p_in,
                double *obj_trace, gslq_kmeans_stats *stats, gslq_error *err)
{
    gslq_train_params p;
    if (p_in) p = *p_in;
    else gslq_train_params_default(&p);
    const gslq_comm *comm = p.comm && p.comm->size > 1 ? p.comm : NULL;
    if (p.comm && (p.comm->size < 1 || p.comm->rank < 0 || p.comm->rank >= p.comm->size || (p.comm->size > 1 && !p.comm->allreduce)))
        return gslq__fail(err, GSLQ_EINVAL, "kmeans: bad communicator (rank %d of %d)", p.comm->rank, p.comm->size);
    if ((!x_in && !(comm && n_in == 0)) || !centroids)
        return gslq__fail(err, GSLQ_EINVAL, "kmeans: NULL data or centroids");
    if (d < 1) return gslq__fail(err, GSLQ_EINVAL, "kmeans: dimension d=%d must be >= 1", d);
    if (k < 1) return gslq__fail(err, GSLQ_EINVAL, "kmeans: k=%d must be >= 1", k);
    if (p.niter < 0) return gslq__fail(err, GSLQ_EINVAL, "kmeans: niter=%d must be >= 0", p.niter);
    if (!(p.tol >= 0)) return gslq__fail(err, GSLQ_EINVAL, "kmeans: tol must be >= 0");
    if (p.init != GSLQ_INIT_KMEANSPP && p.init != GSLQ_INIT_RANDOM)
        return gslq__fail(err, GSLQ_EINVAL, "kmeans: unknown init %d", p.init);
    size_t n = n_in, total;
    if (p.max_points && n > p.max_points) n = p.max_points; /* distributed: a cap per shard */
    int rc = gslq__comm_total(comm, n, &total);
    if (rc) return gslq__fail(err, rc, "kmeans: distributed training failed (the communicator's allreduce)");
    if (total < (size_t)k)
        return gslq__fail(err, GSLQ_EINVAL, "kmeans: %zu training points for k=%d centroids (need n >= k)", total, k);
    if ((rc = gslq__comm_agree(comm, n > (size_t)INT32_MAX ? GSLQ_EINVAL : GSLQ_OK)))
        return rc == GSLQ_EINVAL ? gslq__fail(err, rc, "kmeans: n=%zu too large", n)
                                 : gslq__fail(err, rc, "kmeans: distributed training failed (the allreduce, or another participant)");
    int nt = p.nthreads < 1 ? 1 : p.nthreads;

    gslq_rng rng;
    gslq__rng_seed(&rng, p.seed);
    float *sample = NULL, *init = NULL;
    const float *x = x_in;
    if (n < n_in) { /* random subset, in original order of selection */
        sample = gslq__alloc(n, (size_t)d, sizeof(float), 0);
        size_t *perm = gslq__alloc(n_in, sizeof(size_t), 1, 0);
        if (sample && perm) {
            for (size_t i = 0; i < n_in; i++) perm[i] = i;
            for (size_t i = 0; i < n; i++) {
                size_t r = i + gslq__rng_below(&rng, n_in - i), t = perm[i];
                perm[i] = perm[r]; perm[r] = t;
                memcpy(sample + i * d, x_in + perm[i] * d, (size_t)d * sizeof(float));
            }
        } else {
            rc = GSLQ_ENOMEM;
        }
        free(perm);
        x = sample;
    }
    if ((rc = gslq__comm_agree(comm, rc))) goto done;
    if (!p.warm_start) {
        /* distributed: every participant initialises from the same sample of all shards */
        const float *xi = x;
        size_t ni = n;
        if (comm) {
            if ((rc = gslq__comm_gather_sample(comm, x, n, d, (size_t)GSLQ_COMM_INIT_PER_CENTROID * k, p.seed, &init,
                                               &ni)))
                goto done;
            xi = init;
        }
        rc = p.init == GSLQ_INIT_RANDOM ? init_random(xi, ni, d, k, centroids, &rng)
                                         : init_kmeanspp(xi, ni, d, k, centroids, &rng, nt);
        if ((rc = gslq__comm_agree(comm, rc))) goto done;
    }
    if (d <= GSLQ_DIRECT_MAXD) {
        /* bounds pay only where a distance is dear: with the portable kernels (measured, docs/quant.md) */
        int level = gslq__kern_level();
        rc = gslq__lloyd_direct(x, n, d, k, centroids, &p, level, level == GSLQ_KERN_PORTABLE, obj_trace, stats);
    } else {
        rc = lloyd_sgemm(x, n, d, k, centroids, &p, nt, obj_trace, stats);
    }
done:
    free(sample); free(init);
    if (rc == GSLQ_ENOMEM) return gslq__fail(err, rc, "kmeans: out of memory (n=%zu, d=%d, k=%d)", n, d, k);
    if (rc == GSLQ_ECOMM)
        return gslq__fail(err, rc, "kmeans: distributed training failed (the allreduce, or another participant)");
    if (rc) return gslq__fail(err, rc, "kmeans: failed (%s)", gslq_strerror(rc));
    gslq__ok(err);
    return GSLQ_OK;
}
