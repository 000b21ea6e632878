/* Distributed training with MPI (and NCCL in a GPU build): one process per GPU, or per node on CPU, the weight
 * updates summed over the ranks before each update (see gsl_dist.h). Built into the MPI binary only. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#ifdef GSL_NCCL
#include <nccl.h>
#endif

#include "dist_internal.h"
#include "gsl_data.h"
#include "gslq.h"
#include "net_buffers.h"
#include "network.h" /* get_layer_string */

#define CHUNK (1 << 28) /* elements per MPI call (counts are int) */


static void count_fn(gsl_buf b, void *ctx) { *(size_t *)ctx += b.n; }


typedef struct dist_impl {
    /* watchdog: the collective in progress (armed_ms = 0: none), checked every 100 ms by its own thread */
    pthread_t watchdog;
    int watchdog_on, thread_multiple;
    _Atomic long long armed_ms;
    _Atomic int stop;
    char what[256];
    /* all-reduce */
    int gpu;                  /* the network lives on a GPU */
    int nccl;                 /* its buffers are reduced by NCCL (else staged through host memory) */
    size_t grad_n, stats_n;   /* floats of GSL_BUF_GRAD and GSL_BUF_STATS */
    float *pack;              /* (max(grad_n, stats_n)) host staging for one MPI_Allreduce */
    long updates;
#ifdef GSL_NCCL
    ncclComm_t comm;
    cudaStream_t stream;
    int comm_on;
#endif
} dist_impl;

/* Set when this rank itself ends the job, so that the launcher's SIGTERM that follows is not reported as news. */
static volatile sig_atomic_t aborting;

static long long now_ms(void) { return (long long)(gslq_now_s() * 1000.0) + 1; }

static void stop_job(gsl_dist *d, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    aborting = 1;
    fprintf(stderr, "darknet gsl train: rank %d/%d: %s; stopping the job\n", d->rank, d->size, msg);
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    _exit(3);
}

static void arm(gsl_dist *d, const char *what)
{
    dist_impl *m = d->impl;
    snprintf(m->what, sizeof m->what, "%s", what);
    atomic_store(&m->armed_ms, now_ms());
}

static void disarm(gsl_dist *d) { atomic_store(&((dist_impl *)d->impl)->armed_ms, 0); }

static void mpi_check(gsl_dist *d, int rc, const char *what)
{
    disarm(d);
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    stop_job(d, "%s failed: %s (did another rank die?)", what, s);
}

#define COLL(d, what, call) do { arm((d), (what)); mpi_check((d), (call), (what)); } while (0)

static void *watchdog_main(void *arg)
{
    gsl_dist *d = arg;
    dist_impl *m = d->impl;
    while (!atomic_load(&m->stop)) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        nanosleep(&tick, NULL);
        long long t0 = atomic_load(&m->armed_ms);
        if (!t0 || now_ms() - t0 <= d->timeout_s * 1000) continue;
        aborting = 1;
        fprintf(stderr, "darknet gsl train: rank %d/%d: %s did not complete within %g s (GSL_DIST_TIMEOUT): "
                        "another rank died or hangs; stopping the job\n", d->rank, d->size, m->what, d->timeout_s);
        fflush(stderr);
        alarm(30); /* should MPI_Abort itself hang, SIGALRM ends this process */
        if (m->thread_multiple) MPI_Abort(MPI_COMM_WORLD, 3);
        _exit(3);
    }
    return NULL;
}

/* The launcher stops the surviving ranks with SIGTERM when one fails (mpirun, srun --kill-on-bad-exit), and Slurm
 * does at a time limit: say so before dying of it. */
static char term_msg[256];
static size_t term_len;
static void on_sigterm(int sig)
{
    if (!aborting) {
        ssize_t w = write(2, term_msg, term_len);
        (void)w;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int gsl_dist_init(gsl_dist *d, char *err)
{
    int force, want;
    const char *who;
    if (gsl_dist__begin(d, &force, &want, &who, err)) return -1;
    if (force == 0 || (force != 1 && want <= 1)) return 0; /* a plain run: no MPI call at all */

    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) return gsl_fail(err, "MPI_Init_thread failed (error %d)", rc);
    dist_impl *m = calloc(1, sizeof *m);
    if (!m) { MPI_Abort(MPI_COMM_WORLD, 1); return gsl_fail(err, "out of memory"); }
    d->impl = m;
    d->on = 1;
    m->thread_multiple = provided >= MPI_THREAD_MULTIPLE;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    if (want > 1 && d->size != want)
        return gsl_fail(err, "%s says %d ranks, but MPI sees %d: the processes did not join one job (with srun, give "
                         "--mpi=pmix, or the --mpi type your MPI library was built for)", who, want, d->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &d->local_rank);
        MPI_Comm_size(local, &d->local_size);
        MPI_Comm_free(&local);
    }
    if (pthread_create(&m->watchdog, NULL, watchdog_main, d) == 0) m->watchdog_on = 1;
    else return gsl_fail(err, "cannot start the watchdog thread");
    term_len = (size_t)snprintf(term_msg, sizeof term_msg,
                                "darknet gsl train: rank %d/%d: terminated (SIGTERM): the launcher is stopping the "
                                "job (another rank failed, or it was cancelled); resume from the last checkpoint\n",
                                d->rank, d->size);
    if (term_len >= sizeof term_msg) term_len = sizeof term_msg - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    if (d->debug) {
        char host[256] = "?";
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "gsl-dist: rank %d/%d local %d/%d pid %d host %s thread_multiple %d timeout %g\n", d->rank,
                d->size, d->local_rank, d->local_size, (int)getpid(), host, m->thread_multiple, d->timeout_s);
    }
    return 0;
}

void gsl_dist_abort(gsl_dist *d, int code)
{
    if (!d->on) return;
    aborting = 1;
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);
}

void gsl_dist_finalize(gsl_dist *d)
{
    if (!d->on) return;
    dist_impl *m = d->impl;
    gsl_dist_barrier(d, "the end of training (waiting for every rank)");
    atomic_store(&m->stop, 1);
    if (m->watchdog_on) pthread_join(m->watchdog, NULL);
#ifdef GSL_NCCL
    if (m->comm_on) {
        ncclCommDestroy(m->comm);
        cudaStreamDestroy(m->stream);
    }
#endif
    free(m->pack);
    free(m);
    d->impl = NULL;
    d->on = 0;
    signal(SIGTERM, SIG_DFL);
    MPI_Finalize();
}

const char *gsl_dist_backend(const gsl_dist *d)
{
    if (!d->on) return "none";
    return ((dist_impl *)d->impl)->nccl ? "nccl" : "mpi";
}

#ifdef GSL_NCCL
static void nccl_check(gsl_dist *d, ncclResult_t r, const char *what)
{
    disarm(d);
    if (r != ncclSuccess) stop_job(d, "%s: NCCL error: %s", what, ncclGetErrorString(r));
}

/* Waits for the NCCL stream, bounded by the watchdog, noticing NCCL's asynchronous errors (a peer gone). */
static void nccl_wait(gsl_dist *d, const char *what)
{
    dist_impl *m = d->impl;
    arm(d, what);
    for (;;) {
        cudaError_t q = cudaStreamQuery(m->stream);
        if (q == cudaSuccess) break;
        if (q != cudaErrorNotReady) stop_job(d, "%s: CUDA error: %s", what, cudaGetErrorString(q));
        ncclResult_t ae = ncclSuccess;
        ncclCommGetAsyncError(m->comm, &ae);
        if (ae != ncclSuccess) {
            ncclCommAbort(m->comm);
            m->comm_on = 0;
            stop_job(d, "%s: NCCL error: %s", what, ncclGetErrorString(ae));
        }
        struct timespec t = {0, 20 * 1000};
        nanosleep(&t, NULL);
    }
    disarm(d);
}
#endif

int gsl_dist_prepare(gsl_dist *d, network *net, char *err)
{
    if (!d->on) return 0;
    dist_impl *m = d->impl;
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        if ((l->update || l->update_gpu) && !gsl_net_layer_handled(l))
            return gsl_fail(err, "layer %d (%s) has weights of a kind that distributed training does not handle "
                             "(convolutional, deconvolutional, connected and batchnorm layers are handled)",
                        i, get_layer_string(l->type));
    }
    m->grad_n = m->stats_n = 0;
    gsl_net_each_buffer(net, GSL_BUF_GRAD, count_fn, &m->grad_n);
    gsl_net_each_buffer(net, GSL_BUF_STATS, count_fn, &m->stats_n);
    m->gpu = gsl_net_on_gpu(net);
    const char *be = getenv("GSL_DIST_BACKEND");
    if (be && *be && strcmp(be, "nccl") && strcmp(be, "mpi"))
        return gsl_fail(err, "GSL_DIST_BACKEND must be nccl or mpi, got '%s'", be);
#ifdef GSL_NCCL
    m->nccl = m->gpu && !(be && strcmp(be, "mpi") == 0);
#else
    if (m->gpu && be && strcmp(be, "nccl") == 0)
        return gsl_fail(err, "GSL_DIST_BACKEND=nccl, but this binary was built without NCCL (make GPU=1 MPI=1 NCCL=1)");
    m->nccl = 0;
#endif
    if (!m->nccl) {
        size_t n = m->grad_n > m->stats_n ? m->grad_n : m->stats_n;
        m->pack = malloc(sizeof(float) * (n ? n : 1));
        if (!m->pack) return gsl_fail(err, "out of memory for the all-reduce buffer (%zu floats)", n);
    }
#ifdef GSL_NCCL
    if (m->nccl) {
        ncclUniqueId id;
        memset(&id, 0, sizeof id);
        if (d->rank == 0) {
            ncclResult_t r = ncclGetUniqueId(&id);
            if (r != ncclSuccess) return gsl_fail(err, "ncclGetUniqueId: %s", ncclGetErrorString(r));
        }
        gsl_dist_bcast(d, &id, sizeof id, "the NCCL id broadcast");
        cuda_set_device(net->gpu_index);
        arm(d, "ncclCommInitRank");
        nccl_check(d, ncclCommInitRank(&m->comm, d->size, id, d->rank), "ncclCommInitRank");
        m->comm_on = 1;
        if (cudaStreamCreate(&m->stream) != cudaSuccess) return gsl_fail(err, "cudaStreamCreate failed");
    }
#endif
    if (d->debug)
        fprintf(stderr, "gsl-dist: rank %d/%d backend %s device %d all-reduce %zu floats per update\n", d->rank,
                d->size, gsl_dist_backend(d), m->gpu ? net->gpu_index : -1, m->grad_n);
    return 0;
}

/* ---- host all-reduce of one kind of buffer: pack, MPI_Allreduce, unpack ---- */

typedef struct { float *p; size_t off; float scale; } pack_ctx;

static void pack_fn(gsl_buf b, void *ctx)
{
    pack_ctx *c = ctx;
    gsl_buf_pull(b, NULL);
    if (c->scale == 1.0f) memcpy(c->p + c->off, b.cpu, b.n * sizeof(float));
    else for (size_t i = 0; i < b.n; i++) c->p[c->off + i] = c->scale * b.cpu[i];
    c->off += b.n;
}

static void unpack_fn(gsl_buf b, void *ctx)
{
    pack_ctx *c = ctx;
    memcpy(b.cpu, c->p + c->off, b.n * sizeof(float));
    c->off += b.n;
    gsl_buf_push(b, NULL);
}

#ifdef GSL_NCCL
typedef struct { gsl_dist *d; float scale; } nccl_ctx;
static void nccl_fn(gsl_buf b, void *ctx)
{
    nccl_ctx *c = ctx;
    dist_impl *m = c->d->impl;
    if (c->scale != 1.0f) scal_gpu((int)b.n, c->scale, b.gpu, 1);
    ncclResult_t r = ncclAllReduce(b.gpu, b.gpu, b.n, ncclFloat, ncclSum, m->comm, m->stream);
    if (r != ncclSuccess) stop_job(c->d, "ncclAllReduce: %s", ncclGetErrorString(r));
}
#endif

/* Sums the buffers of `kind` over the ranks, each first scaled by `scale`. */
static void allreduce_kind(gsl_dist *d, network *net, int kind, float scale, const char *what)
{
    dist_impl *m = d->impl;
    gsl_net_set_device(net);
#ifdef GSL_NCCL
    if (m->nccl) {
        nccl_ctx c = {d, scale};
        ncclGroupStart();
        gsl_net_each_buffer(net, kind, nccl_fn, &c);
        ncclGroupEnd();
        nccl_wait(d, what);
        return;
    }
#endif
    size_t n = kind == GSL_BUF_GRAD ? m->grad_n : m->stats_n;
    pack_ctx c = {m->pack, 0, scale};
    gsl_net_each_buffer(net, kind, pack_fn, &c);
    for (size_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        COLL(d, what, MPI_Allreduce(MPI_IN_PLACE, m->pack + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
    c.off = 0;
    gsl_net_each_buffer(net, kind, unpack_fn, &c);
}

static void scale_fn(gsl_buf b, void *ctx)
{
    float s = *(float *)ctx;
#ifdef GPU
    if (b.gpu) { scal_gpu((int)b.n, s, b.gpu, 1); return; }
#endif
    scal_cpu((int)b.n, s, b.cpu, 1);
}

/* Darknet's update_network, with the global batch. */
static void apply_update(gsl_dist *d, network *net)
{
    update_args a = {0};
    a.batch = net->batch * net->subdivisions * d->size;
    a.learning_rate = get_current_rate(net);
    a.momentum = net->momentum;
    a.decay = net->decay;
    a.adam = net->adam;
    a.B1 = net->B1;
    a.B2 = net->B2;
    a.eps = net->eps;
    ++*net->t;
    a.t = *net->t;
    gsl_net_set_device(net);
    for (int i = 0; i < net->n; i++) {
        layer l = net->layers[i];
#ifdef GPU
        if (net->gpu_index >= 0) {
            if (l.update_gpu) l.update_gpu(l, a);
            continue;
        }
#endif
        if (l.update) l.update(l, a);
    }
}

float gsl_dist_train_datum(gsl_dist *d, network *net)
{
    if (!d->on) return train_network_datum(net);
    dist_impl *m = d->impl;
    *net->seen += net->batch;
    net->train = 1;
    int sub = net->subdivisions;
    long k = (long)((*net->seen / net->batch) % (size_t)sub);
    if (k == 1 % sub) { /* the first sub-batch of an update: momentum / size, so the sum holds it once */
        float s = 1.0f / d->size;
        if (s != 1.0f) gsl_net_each_buffer(net, GSL_BUF_GRAD, scale_fn, &s);
    }
    forward_network(net);
    backward_network(net);
    float cost = *net->cost;
    if (k == 0) {
        char what[128];
        snprintf(what, sizeof what, "the gradient all-reduce of update %ld", m->updates + 1);
        double t0 = gslq_now_s();
        if (d->profile) {
#ifdef GPU
            if (m->gpu) cudaDeviceSynchronize(); /* the backward pass's kernels are compute, not waiting */
#endif
            gsl_dist_barrier(d, what);
            double t1 = gslq_now_s();
            d->wait_s += t1 - t0;
            t0 = t1;
        }
        allreduce_kind(d, net, GSL_BUF_GRAD, 1.0f, what);
        d->comm_s += gslq_now_s() - t0;
        d->comm_bytes += (double)m->grad_n * sizeof(float);
        d->comm_steps++;
        m->updates++;
        apply_update(d, net);
    }
    return cost;
}

void gsl_dist_average_stats(gsl_dist *d, network *net)
{
    if (!d->on || !((dist_impl *)d->impl)->stats_n) return;
    allreduce_kind(d, net, GSL_BUF_STATS, 1.0f / d->size, "the batch-norm statistics all-reduce");
}

typedef struct { gsl_dist *d; } bcast_ctx;
static void bcast_fn(gsl_buf b, void *ctx)
{
    gsl_dist *d = ((bcast_ctx *)ctx)->d;
    if (d->rank == 0) gsl_buf_pull(b, NULL);
    gsl_dist_bcast(d, b.cpu, b.n * sizeof(float), "the weights broadcast");
    if (d->rank != 0) gsl_buf_push(b, NULL);
}

void gsl_dist_bcast_net(gsl_dist *d, network *net)
{
    if (!d->on) return;
    gsl_net_set_device(net);
    bcast_ctx c = {d};
    gsl_net_each_buffer(net, GSL_BUF_PARAMS | GSL_BUF_STATS | GSL_BUF_GRAD, bcast_fn, &c);
}

/* ---- small collectives ---- */

void gsl_dist_sum_doubles(gsl_dist *d, double *v, int n, const char *what)
{
    if (!d->on) return;
    COLL(d, what, MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
}

static int gslq_allreduce(void *ctx, double *buf, size_t n, int op)
{
    gsl_dist *d = ctx;
    const size_t chunk = CHUNK / sizeof(double);
    for (size_t off = 0; off < n; off += chunk) {
        int cnt = (int)(n - off < chunk ? n - off : chunk);
        COLL(d, "the codebook rebuild's all-reduce of k-means statistics",
             MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_DOUBLE, op == GSLQ_REDUCE_MAX ? MPI_MAX : MPI_SUM,
                           MPI_COMM_WORLD));
    }
    return 0;
}

void gsl_dist_gslq_comm(gsl_dist *d, gslq_comm *c)
{
    *c = (gslq_comm){d->rank, d->size, d->on ? gslq_allreduce : NULL, d};
}

void gsl_dist_bcast(gsl_dist *d, void *buf, size_t bytes, const char *what)
{
    if (!d->on) return;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        int cnt = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
        COLL(d, what, MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, 0, MPI_COMM_WORLD));
    }
}

int gsl_dist_same_u32(gsl_dist *d, uint32_t v, const char *what)
{
    if (!d->on) return 1;
    unsigned int x[2] = {v, ~v}; /* max of v and of ~v: equal everywhere iff max(v) == min(v) */
    COLL(d, what, MPI_Allreduce(MPI_IN_PLACE, x, 2, MPI_UNSIGNED, MPI_MAX, MPI_COMM_WORLD));
    return x[0] == (unsigned int)~x[1];
}

void gsl_dist_barrier(gsl_dist *d, const char *what)
{
    if (!d->on) return;
    COLL(d, what, MPI_Barrier(MPI_COMM_WORLD));
}

