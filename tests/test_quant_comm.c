/* Distributed training in libgslq (gslq_comm): participants are threads here, joined by an all-reduce that sums in
 * participant order. The reference is one process training on the union of the shards (in participant order):
 * the same centroids up to the rounding of the sums, the same objective trace, the same repairs; and every
 * participant ends with the identical codebook, bit for bit. */
#include <pthread.h>
#include <stdint.h>

#include "gslq.h"
#include "test.h"

#define MAXP 4

/* ---- the thread communicator ---- */
typedef struct {
    int size;
    pthread_barrier_t bar;
    double *slot[MAXP];
    size_t slot_n[MAXP];
    int calls[MAXP];
    int fail_at;   /* every participant's call number fail_at fails (0: never) */
    int mismatch;  /* a participant called with another n than participant 0 */
} group;

typedef struct {
    group *g;
    int rank;
} member;

static int thread_allreduce(void *ctx, double *buf, size_t n, int op)
{
    member *m = ctx;
    group *g = m->g;
    int call = ++g->calls[m->rank];
    g->slot[m->rank] = buf;
    g->slot_n[m->rank] = n;
    pthread_barrier_wait(&g->bar);
    if (g->slot_n[m->rank] != g->slot_n[0]) g->mismatch = 1;
    double *r = malloc(sizeof(double) * (n ? n : 1));
    if (!r) abort();
    for (size_t i = 0; i < n; i++) {
        double v = g->slot[0][i];
        for (int p = 1; p < g->size; p++) {
            double w = g->slot[p][i];
            v = op == GSLQ_REDUCE_MAX ? (w > v ? w : v) : v + w;
        }
        r[i] = v;
    }
    pthread_barrier_wait(&g->bar); /* everyone has read every buffer */
    memcpy(buf, r, sizeof(double) * n);
    free(r);
    return call == g->fail_at;
}

/* ---- one participant's job ---- */
enum { JOB_KMEANS, JOB_PQ, JOB_OPQ };
typedef struct {
    int job;
    const float *x; /* this shard */
    size_t n;
    int d, k, M;
    gslq_train_params p;
    const float *warm;     /* (k, d) or the PQ centroids; NULL: cold start */
    const float *warm_rot; /* OPQ */
    /* results */
    float *c;              /* (k, d) k-means */
    gslq_pq pq;
    double trace[32];
    gslq_kmeans_stats st;
    int rc;
    gslq_error err;
    gslq_comm comm;
    member mem;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->p.comm = j->mem.g ? &j->comm : NULL;
    if (j->job == JOB_KMEANS) {
        j->c = malloc(sizeof(float) * (size_t)j->k * j->d);
        if (j->warm) memcpy(j->c, j->warm, sizeof(float) * (size_t)j->k * j->d);
        j->p.warm_start = j->warm != NULL;
        j->rc = gslq_kmeans(j->x, j->n, j->d, j->k, j->c, &j->p, j->trace, &j->st, &j->err);
        return NULL;
    }
    if (gslq_pq_init(&j->pq, j->d, j->M, j->k, &j->err)) abort();
    if (j->warm) memcpy(j->pq.centroids, j->warm, sizeof(float) * (size_t)j->k * j->d);
    if (j->warm_rot) {
        j->pq.rotation = malloc(sizeof(float) * (size_t)j->d * j->d);
        memcpy(j->pq.rotation, j->warm_rot, sizeof(float) * (size_t)j->d * j->d);
    }
    j->p.warm_start = j->warm != NULL;
    j->rc = j->job == JOB_PQ ? gslq_pq_train(&j->pq, j->x, j->n, &j->p, &j->err)
                             : gslq_opq_train(&j->pq, j->x, j->n, &j->p, &j->err);
    return NULL;
}

/* Runs tmpl on P participants with shards of the given sizes of x (rows in order) and, as the reference, on the
 * union in one process; out[0..P-1] the participants, out[P] the reference. */
static void run_group(const job *tmpl, const float *x, const size_t *sizes, int P, int fail_at, job *out)
{
    group g = {0};
    g.size = P;
    g.fail_at = fail_at;
    pthread_barrier_init(&g.bar, NULL, (unsigned)P);
    pthread_t th[MAXP];
    size_t off = 0;
    for (int r = 0; r < P; r++) {
        out[r] = *tmpl;
        out[r].x = sizes[r] ? x + off * tmpl->d : NULL;
        out[r].n = sizes[r];
        out[r].mem = (member){&g, r};
        out[r].comm = (gslq_comm){r, P, thread_allreduce, &out[r].mem};
        off += sizes[r];
        pthread_create(&th[r], NULL, run_job, &out[r]);
    }
    for (int r = 0; r < P; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g.bar);
    CHECKF(!g.mismatch, "participants called the all-reduce with different sizes");
    out[P] = *tmpl;
    out[P].x = x;
    out[P].n = off;
    out[P].mem = (member){NULL, 0};
    run_job(&out[P]);
}

static void free_group(job *out, int P)
{
    for (int r = 0; r <= P; r++) {
        free(out[r].c);
        if (out[r].job != JOB_KMEANS) gslq_pq_free(&out[r].pq);
    }
}

/* Gaussian blobs: `nc` centres in d dimensions, n points, spread sd. */
static float *blobs_sd(size_t n, int d, int nc, float sd, unsigned long long seed)
{
    float *cen = malloc(sizeof(float) * (size_t)nc * d), *x = malloc(sizeof(float) * n * d);
    for (int i = 0; i < nc * d; i++) cen[i] = test_randf(&seed, -4, 4);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(test_randf(&seed, 0, 1) * nc) % nc;
        for (int t = 0; t < d; t++) x[i * d + t] = cen[c * d + t] + sd * test_randn(&seed);
    }
    free(cen);
    return x;
}

static float *blobs(size_t n, int d, int nc, unsigned long long seed) { return blobs_sd(n, d, nc, 0.7f, seed); }

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i]));
        m = e > m ? e : m;
    }
    return m;
}

static double mse_on(const gslq_pq *pq, const float *x, size_t n)
{
    double m = -1;
    gslq_pq_mse(pq, x, n, pq->d, 1, &m, NULL);
    return m;
}

/* k-means warm-started: both the direct kernels (d = 8) and the sgemm path (d = 80), a participant with no rows. */
static void test_comm_kmeans_matches_union(void)
{
    const int ds[2] = {8, 80};
    for (int v = 0; v < 2; v++) {
        int d = ds[v], k = 16, P = 3;
        size_t sizes[3] = {1000, 0, 2500};
        float *x = blobs(3500, d, 12, 11 + v);
        job t = {0}, out[MAXP + 1];
        t.job = JOB_KMEANS; t.d = d; t.k = k; t.warm = x + 100 * d; /* 16 data points as the start */
        gslq_train_params_default(&t.p);
        t.p.niter = 12;
        t.p.nthreads = 2;
        run_group(&t, x, sizes, P, 0, out);
        for (int r = 0; r <= P; r++) CHECKF(out[r].rc == 0, "d=%d participant %d: %s", d, r, out[r].err.msg);
        for (int r = 1; r < P; r++)
            CHECKF(memcmp(out[r].c, out[0].c, sizeof(float) * k * d) == 0, "d=%d participant %d differs", d, r);
        CHECKF(max_rel_diff(out[0].c, out[P].c, (size_t)k * d) < 1e-5, "d=%d centroids %.3g from the union's", d,
               max_rel_diff(out[0].c, out[P].c, (size_t)k * d));
        for (int it = 0; it <= t.p.niter; it++) CHECK_CLOSE(out[0].trace[it], out[P].trace[it], 0, 1e-9);
        CHECK(out[0].st.iters == out[P].st.iters);
        free_group(out, P);
        free(x);
    }
}

/* Cold start (k-means++ and random) on a sample of all shards: identical everywhere, and as good on clusters that
 * are far apart (where either start finds them). A union no larger than the sample: the sample is the union in
 * order, so the start is the one process's. */
static void test_comm_kmeans_cold_start(void)
{
    int d = 6, k = 10, P = 4;
    size_t big[4] = {700, 1300, 50, 950}, small[4] = {200, 0, 250, 50};
    float *x = blobs_sd(3000, d, 10, 0.05f, 5);
    for (int v = 0; v < 4; v++) {
        int init = v % 2, whole = v >= 2;
        job t = {0}, out[MAXP + 1];
        t.job = JOB_KMEANS; t.d = d; t.k = k;
        gslq_train_params_default(&t.p);
        t.p.niter = whole ? 5 : 20;
        t.p.init = init;
        run_group(&t, x, whole ? small : big, P, 0, out);
        for (int r = 0; r <= P; r++) CHECKF(out[r].rc == 0, "participant %d: %s", r, out[r].err.msg);
        for (int r = 1; r < P; r++)
            CHECKF(memcmp(out[r].c, out[0].c, sizeof(float) * k * d) == 0, "participant %d differs", r);
        for (int it = 1; it <= t.p.niter; it++) CHECK(out[0].trace[it] <= out[0].trace[it - 1] * (1 + 1e-12));
        if (whole)
            CHECKF(max_rel_diff(out[0].c, out[P].c, (size_t)k * d) < 1e-5, "init %d: centroids %.3g from the union's",
                   init, max_rel_diff(out[0].c, out[P].c, (size_t)k * d));
        else /* random starts miss clusters on either side: only k-means++ is expected to find all ten */
            CHECKF(init == GSLQ_INIT_RANDOM || out[0].st.obj <= 1.05 * out[P].st.obj,
                   "init %d: objective %.6g against %.6g in one process", init, out[0].st.obj, out[P].st.obj);
        free_group(out, P);
    }
    free(x);
}

/* A centroid far from every point empties at once: the globally farthest point repairs it, as in one process. */
static void test_comm_empty_cluster_repair(void)
{
    int d = 4, k = 6, P = 2;
    size_t sizes[2] = {300, 500};
    float *x = blobs(800, d, 4, 21), warm[6 * 4];
    memcpy(warm, x + 10 * d, sizeof warm);
    for (int t = 0; t < d; t++) warm[2 * d + t] = 1000.0f, warm[5 * d + t] = -1000.0f;
    job t = {0}, out[MAXP + 1];
    t.job = JOB_KMEANS; t.d = d; t.k = k; t.warm = warm;
    gslq_train_params_default(&t.p);
    t.p.niter = 8;
    run_group(&t, x, sizes, P, 0, out);
    for (int r = 0; r <= P; r++) CHECKF(out[r].rc == 0, "participant %d: %s", r, out[r].err.msg);
    CHECKF(out[P].st.repaired >= 2, "the reference repaired %d clusters", out[P].st.repaired);
    CHECK(out[0].st.repaired == out[P].st.repaired && out[1].st.repaired == out[P].st.repaired);
    CHECK(memcmp(out[1].c, out[0].c, sizeof warm) == 0);
    CHECKF(max_rel_diff(out[0].c, out[P].c, (size_t)k * d) < 1e-5, "centroids %.3g from the union's",
           max_rel_diff(out[0].c, out[P].c, (size_t)k * d));
    for (int it = 0; it <= t.p.niter; it++) CHECK_CLOSE(out[0].trace[it], out[P].trace[it], 0, 1e-9);
    free_group(out, P);
    free(x);
}

/* PQ and OPQ, warm and cold: identical codebooks (and rotations) everywhere; warm PQ equals the union's. */
static void test_comm_pq_opq(void)
{
    int d = 16, M = 4, K = 16, P = 3;
    size_t sizes[3] = {900, 600, 1500}, n = 3000;
    float *x = blobs(n, d, 20, 9);
    for (size_t i = 0; i < n; i++) /* correlate the dimensions, so that a rotation helps */
        for (int t = 1; t < d; t++) x[i * d + t] += 0.8f * x[i * d + t - 1];
    float *warm = malloc(sizeof(float) * K * d);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            for (int t = 0; t < d / M; t++) warm[(m * K + k) * (d / M) + t] = x[(size_t)(7 * k + 3) * d + m * (d / M) + t];
    for (int jobk = JOB_PQ; jobk <= JOB_OPQ; jobk++)
        for (int w = 0; w < 2; w++) {
            job t = {0}, out[MAXP + 1];
            t.job = jobk; t.d = d; t.k = K; t.M = M; t.warm = w ? warm : NULL;
            gslq_train_params_default(&t.p);
            t.p.niter = 10;
            t.p.opq_iter = 4;
            t.p.nthreads = 2;
            run_group(&t, x, sizes, P, 0, out);
            for (int r = 0; r <= P; r++) CHECKF(out[r].rc == 0, "job %d warm %d participant %d: %s", jobk, w, r, out[r].err.msg);
            for (int r = 1; r < P; r++) {
                CHECK(memcmp(out[r].pq.centroids, out[0].pq.centroids, sizeof(float) * K * d) == 0);
                if (jobk == JOB_OPQ)
                    CHECK(memcmp(out[r].pq.rotation, out[0].pq.rotation, sizeof(float) * d * d) == 0);
            }
            double md = mse_on(&out[0].pq, x, n), mr = mse_on(&out[P].pq, x, n);
            /* cold: other starting centroids (from a sample) than the one process's */
            CHECKF(md <= (w ? 1.01 : 1.05) * mr, "job %d warm %d: MSE %.6g against %.6g in one process", jobk, w, md, mr);
            if (jobk == JOB_PQ && w)
                CHECKF(max_rel_diff(out[0].pq.centroids, out[P].pq.centroids, (size_t)K * d) < 1e-5,
                       "warm PQ centroids %.3g from the union's",
                       max_rel_diff(out[0].pq.centroids, out[P].pq.centroids, (size_t)K * d));
            if (jobk == JOB_OPQ) { /* and the rotation helps as it does in one process */
                job q = t, qo[MAXP + 1];
                q.job = JOB_PQ;
                run_group(&q, x, sizes, P, 0, qo);
                CHECKF(md <= mse_on(&qo[0].pq, x, n) * (1 + 1e-6), "OPQ %.6g above PQ %.6g", md, mse_on(&qo[0].pq, x, n));
                free_group(qo, P);
            }
            free_group(out, P);
        }
    free(warm);
    free(x);
}

/* Errors reach every participant: a failing all-reduce, too few points in all. */
static void test_comm_errors(void)
{
    int d = 4, k = 8, P = 2;
    float *x = blobs(400, d, 4, 3);
    job t = {0}, out[MAXP + 1];
    t.job = JOB_KMEANS; t.d = d; t.k = k;
    gslq_train_params_default(&t.p);
    size_t sizes[2] = {200, 200};
    for (int at = 1; at <= 6; at++) {
        run_group(&t, x, sizes, P, at, out);
        for (int r = 0; r < P; r++)
            CHECKF(out[r].rc == GSLQ_ECOMM && strstr(out[r].err.msg, "distribut"), "fail at call %d, participant %d: rc %d '%s'",
                   at, r, out[r].rc, out[r].err.msg);
        free_group(out, P);
    }
    size_t few[2] = {3, 4}; /* 7 points for k = 8 */
    run_group(&t, x, few, P, 0, out);
    for (int r = 0; r < P; r++)
        CHECKF(out[r].rc == GSLQ_EINVAL && strstr(out[r].err.msg, "7 training points"), "participant %d: '%s'", r,
               out[r].err.msg);
    free_group(out, P);
    free(x);
}

int main(void)
{
    RUN(test_comm_kmeans_matches_union);
    RUN(test_comm_kmeans_cold_start);
    RUN(test_comm_empty_cluster_repair);
    RUN(test_comm_pq_opq);
    RUN(test_comm_errors);
    return TEST_END();
}
