/* darknet/loader.c: the batch loader's contract. Jobs come back in order with their own contents, whatever the ring's
 * depth; a job's error comes back when the caller reaches that job (the jobs before it intact) and the loader stops
 * there; stopping with jobs pending returns; asking past the last job is an error; the caller's waiting time counts
 * the time a slow producer keeps it blocked (a lower bound, which load on the machine can only raise). */
#include <time.h>

#include "io.h" /* GSL_ERRLEN */
#include "loader.h"
#include "test.h"

typedef struct {
    int fail_at;        /* the job that fails, or -1 */
    long sleep_ns;      /* the producer's time per job */
    int produced;
} job_ctx;

static void nap(long ns)
{
    struct timespec t = {ns / 1000000000L, ns % 1000000000L};
    while (nanosleep(&t, &t)) {}
}

/* job j: x[i] = 1000 j + i, y[0] = -j */
static int job(void *ctx, long j, float *x, float *y, char *err)
{
    job_ctx *c = ctx;
    if (c->sleep_ns) nap(c->sleep_ns);
    if (j == c->fail_at) {
        snprintf(err, GSL_ERRLEN, "job %ld cannot be made", j);
        return -1;
    }
    for (int i = 0; i < 8; i++) x[i] = 1000.0f * j + i;
    y[0] = -(float)j;
    c->produced++;
    return 0;
}

static void test_jobs_in_order(void)
{
    char err[GSL_ERRLEN];
    for (int depth = 2; depth <= 4; depth++) {
        job_ctx c = {-1, 0, 0};
        gsl_loader *L = gsl_loader_start(job, &c, 50, 8, 1, depth, err);
        if (!L) { CHECKF(0, "%s", err); continue; }
        int ok = 1;
        for (long j = 0; j < 50; j++) {
            float *x, *y;
            if (gsl_loader_next(L, &x, &y, err)) { ok = 0; break; }
            for (int i = 0; i < 8; i++) ok &= x[i] == 1000.0f * j + i;
            ok &= y[0] == -(float)j;
        }
        CHECKF(ok, "depth %d: jobs out of order or overwritten", depth);
        float *x, *y;
        CHECK(gsl_loader_next(L, &x, &y, err) == -1 && strstr(err, "no job 50"));
        gsl_loader_stop(L);
    }
}

static void test_error_at_its_job(void)
{
    char err[GSL_ERRLEN];
    job_ctx c = {7, 0, 0};
    gsl_loader *L = gsl_loader_start(job, &c, 20, 8, 1, 3, err);
    if (!L) { CHECKF(0, "%s", err); return; }
    float *x, *y;
    int ok = 1;
    for (long j = 0; j < 7; j++) ok &= gsl_loader_next(L, &x, &y, err) == 0 && x[0] == 1000.0f * j;
    CHECK(ok);
    CHECK(gsl_loader_next(L, &x, &y, err) == -1 && strstr(err, "job 7 cannot be made"));
    CHECK(gsl_loader_next(L, &x, &y, err) == -1 && strstr(err, "stopped before job 8"));
    gsl_loader_stop(L);
    CHECK(c.produced == 7); /* nothing after the failed job */
}

static void test_stop_with_jobs_pending(void)
{
    char err[GSL_ERRLEN];
    job_ctx c = {-1, 0, 0};
    gsl_loader *L = gsl_loader_start(job, &c, 1000000, 8, 1, 3, err);
    if (!L) { CHECKF(0, "%s", err); return; }
    float *x, *y;
    CHECK(gsl_loader_next(L, &x, &y, err) == 0);
    gsl_loader_stop(L); /* returns: the producer is blocked on a full ring, and told to stop */
    CHECK(c.produced < 10);
    gsl_loader_stop(NULL);
}

static void test_wait_counts_a_slow_producer(void)
{
    char err[GSL_ERRLEN];
    job_ctx c = {-1, 20 * 1000000L, 0}; /* 20 ms per job, 10 jobs: the caller waits about 0.2 s */
    gsl_loader *L = gsl_loader_start(job, &c, 10, 8, 1, 3, err);
    if (!L) { CHECKF(0, "%s", err); return; }
    float *x, *y;
    for (int j = 0; j < 10; j++) CHECK(gsl_loader_next(L, &x, &y, err) == 0);
    double w = gsl_loader_wait_s(L);
    CHECKF(w >= 0.1, "waited %.3f s for 10 jobs of 20 ms", w);
    gsl_loader_stop(L);
    /* a producer far ahead of a slow caller: the caller hardly waits */
    job_ctx f = {-1, 0, 0};
    L = gsl_loader_start(job, &f, 10, 8, 1, 3, err);
    if (!L) { CHECKF(0, "%s", err); return; }
    for (int j = 0; j < 10; j++) {
        nap(20 * 1000000L);
        CHECK(gsl_loader_next(L, &x, &y, err) == 0);
    }
    w = gsl_loader_wait_s(L);
    CHECKF(w < 0.1, "waited %.3f s for jobs made ahead of time", w);
    gsl_loader_stop(L);
}

int main(void)
{
    RUN(test_jobs_in_order);
    RUN(test_error_at_its_job);
    RUN(test_stop_with_jobs_pending);
    RUN(test_wait_counts_a_slow_producer);
    return TEST_END();
}
