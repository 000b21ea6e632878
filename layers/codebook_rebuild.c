/* A codebook layer rebuilding its own codebook, under any training loop (Darknet's `classifier train` included).
 *
 * In training mode every forward pass offers the layer's input rows to a reservoir sample (Vitter's algorithm R) of
 * `reservoir` rows; the first rebuild runs as soon as the reservoir holds enough rows (40 per codeword, or all of it),
 * the next ones every `rebuild_iterations` weight updates (or `rebuild_images` images) of the network's `seen`
 * counter. A rebuild is k-means warm-started from the current codebook (gsl_codebook_fit, the function `gsl train`
 * rebuilds with too), on the rows seen since the last one; the reservoir then starts again.
 *
 * Darknet's -gpus replicas are separate networks parsed from the same cfg, each with its own layer: the reservoir,
 * schedule and codebook live in one record per (cfg, layer index) that every replica's layer shares, under a mutex,
 * so every replica gets the same codebook (a replica installs a newer one at its next forward pass). The records live
 * as long as the process, as the cfg's layers may be parsed again (Darknet's own load_network).
 *
 * A codebook installed from outside (gsl_layer_set_codebook: `gsl train`, which rebuilds at epoch boundaries itself,
 * or a test) turns the layer's own schedule off. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codebook.h"
#include "gsl_cuda.h"
#include "option_list.h"
#include "registry.h"

int gsl_codebook_fit(gslq_pq *pq, int warm, const float *x, size_t n, int opq, int iters, uint64_t seed, int threads,
                     const gslq_comm *comm, double *mse, gslq_error *err)
{
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = iters;
    p.seed = seed;
    p.nthreads = threads;
    p.warm_start = warm;
    p.comm = comm;
    int rc = opq ? gslq_opq_train(pq, x, n, &p, err) : gslq_pq_train(pq, x, n, &p, err);
    if (!rc && mse) rc = gslq_pq_mse(pq, x, n, pq->d, threads, mse, err);
    return rc;
}

/* ---- cfg ---- */

int gsl_codebook_parse_rebuild(const gsl_section *sec, int K, gsl_rebuild_cfg *rb, char *err)
{
    int iters = 0, images = 0;
    if (gsl_opt_int(sec, "rebuild_iterations", 1000, 0, 0, 1 << 30, &iters, err) ||
        gsl_opt_int(sec, "rebuild_images", 0, 0, 0, 1 << 30, &images, err) ||
        gsl_opt_int(sec, "reservoir", 10000, 0, 1, 1 << 24, &rb->reservoir, err) ||
        gsl_opt_int(sec, "kmeans_iters", 10, 0, 1, 1000, &rb->kmeans_iters, err))
        return -1;
    if (images && option_find(sec->options, "rebuild_iterations"))
        return gsl_fail(err, "key 'rebuild_images': give it or 'rebuild_iterations', not both");
    rb->every_iterations = images ? 0 : iters;
    rb->every_images = images;
    if (rb->reservoir < K)
        return gsl_fail(err, "key 'reservoir': %d rows cannot train %d codewords", rb->reservoir, K);
    return 0;
}

/* ---- the records shared by the replicas ---- */

typedef struct rebuild_shared {
    char cfg[512];
    int index, d, M, K;
    pthread_mutex_t mu;
    float *rows;       /* (reservoir, d) */
    int n;             /* rows held */
    long offered;      /* rows offered since the last rebuild */
    uint64_t rng;
    long version;      /* rebuilds so far (0: none) */
    gslq_pq pq;        /* the latest codebook, valid when version > 0 */
    long next_iteration, next_images; /* when the next rebuild is due (after the first) */
} rebuild_shared;

#define MAX_SHARED 256
static rebuild_shared *shared_tab[MAX_SHARED];
static int shared_n;
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

static rebuild_shared *shared_for(const char *cfg, int index, const gsl_codebook *cb)
{
    pthread_mutex_lock(&shared_mu);
    rebuild_shared *s = NULL;
    for (int i = 0; i < shared_n && !s; i++) {
        rebuild_shared *t = shared_tab[i];
        if (t->index == index && t->d == cb->d && t->M == cb->M && t->K == cb->K && !strcmp(t->cfg, cfg)) s = t;
    }
    if (!s && shared_n < MAX_SHARED && (s = calloc(1, sizeof *s))) {
        snprintf(s->cfg, sizeof s->cfg, "%s", cfg);
        s->index = index, s->d = cb->d, s->M = cb->M, s->K = cb->K;
        s->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1) + 12345;
        pthread_mutex_init(&s->mu, NULL);
        shared_tab[shared_n++] = s;
    }
    pthread_mutex_unlock(&shared_mu);
    return s;
}

void gsl_codebook_rebuild_attach(gsl_codebook *cb, const char *cfg, int index, const gsl_rebuild_cfg *rb)
{
    cb->rb = *rb;
    cb->layer_index = index;
    cb->own_schedule = rb->every_iterations > 0 || rb->every_images > 0;
    cb->shared = cb->own_schedule ? shared_for(cfg ? cfg : "", index, cb) : NULL;
    if (!cb->shared) cb->own_schedule = 0;
}

void gsl_codebook_rebuild_off(gsl_codebook *cb)
{
    cb->own_schedule = 0;
    cb->trainer_installs = 1;
}

/* Rows needed before the first rebuild: 40 per codeword (Faiss's lower bound), or the whole reservoir. */
static int enough_rows(const gsl_codebook *cb)
{
    int want = 40 * cb->K;
    return want < cb->rb.reservoir ? want : cb->rb.reservoir;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

/* Under s->mu: k-means on the reservoir, into s->pq. */
static int rebuild_locked(rebuild_shared *s, gsl_codebook *cb, long iteration, long images)
{
    gslq_error e = {0};
    int warm = s->version > 0;
    if (!warm && gslq_pq_init(&s->pq, s->d, s->M, s->K, &e)) goto fail;
    double mse = 0;
    if (gsl_codebook_fit(&s->pq, warm, s->rows, (size_t)s->n, 0, cb->rb.kmeans_iters,
                         1234 + 7919ULL * (uint64_t)s->version, default_threads(), NULL, &mse, &e))
        goto fail;
    s->version++;
    if (cb->rb.every_images) s->next_images = images + cb->rb.every_images;
    else s->next_iteration = iteration + cb->rb.every_iterations;
    gsl_layer_stats st;
    gsl_codebook_stats(cb, &st, 1);
    fprintf(stderr, "codebook rebuilt: layer %d, iteration %ld (%ld images), %d rows (reservoir of %ld): qerr %.5f",
            s->index, iteration, images, s->n, s->offered, mse);
    if (st.batches) fprintf(stderr, ", snapped %.3f of sub-vectors since the last", st.snapped_frac);
    fprintf(stderr, "\n");
    s->n = 0;
    s->offered = 0;
    return 0;
fail:
    fprintf(stderr, "codebook rebuild of layer %d failed: %s; the layer keeps its codebook\n", s->index, e.msg);
    if (cb->rb.every_images) s->next_images = images + cb->rb.every_images;
    else s->next_iteration = iteration + cb->rb.every_iterations;
    s->n = 0;
    s->offered = 0;
    return -1;
}

void gsl_codebook_rebuild_step(gsl_codebook *cb, layer l, network net)
{
    if (!cb->own_schedule && net.train && !cb->installed && !cb->trainer_installs && !cb->idle_said) {
        /* Darknet's own loop with rebuild_iterations=0 and a .weights without a codebook: nothing will ever build one */
        cb->idle_said = 1;
        fprintf(stderr, "codebook layer %d: training with no codebook and no rebuilds of its own (rebuild_iterations=0 "
                "and rebuild_images=0, and none in the weights): it passes the gradient through unchanged\n",
                cb->layer_index);
    }
    if (!cb->own_schedule || !net.train || !cb->shared) return;
    rebuild_shared *s = cb->shared;
    const int B = l.batch, d = cb->d;
    const float *rows = l.output; /* the forward pass copied the input here */
#ifdef GPU
    if (cb->device >= 0 && l.output_gpu) cuda_pull_array(l.output_gpu, l.output, (size_t)B * d);
#endif
    long images = net.seen ? (long)*net.seen : 0;
    long iteration = images / ((long)net.batch * (net.subdivisions > 0 ? net.subdivisions : 1));
    pthread_mutex_lock(&s->mu);
    if (!s->rows && !(s->rows = malloc(sizeof(float) * (size_t)cb->rb.reservoir * d))) {
        pthread_mutex_unlock(&s->mu);
        fprintf(stderr, "codebook of layer %d: out of memory for a reservoir of %d rows; no rebuilds\n", s->index,
                cb->rb.reservoir);
        cb->own_schedule = 0;
        return;
    }
    for (int b = 0; b < B; b++) {
        long slot = s->offered++;
        if (slot >= cb->rb.reservoir) {
            slot = (long)(gslq_xorshift64(&s->rng) % (uint64_t)s->offered);
            if (slot >= cb->rb.reservoir) continue;
        } else {
            s->n = (int)slot + 1;
        }
        memcpy(s->rows + (size_t)slot * d, rows + (size_t)b * d, sizeof(float) * d);
    }
    int due = s->version == 0 ? s->n >= enough_rows(cb)
                              : (cb->rb.every_images ? images >= s->next_images : iteration >= s->next_iteration);
    if (due && s->n >= cb->K) rebuild_locked(s, cb, iteration, images);
    if (s->version > cb->installed_version) { /* a newer codebook: this replica's, or another's */
        char err[GSL_ERRLEN] = "";
        if (gsl_codebook_set(cb, &s->pq, err) == 0) cb->installed_version = s->version;
        else fprintf(stderr, "codebook of layer %d: %s\n", s->index, err);
    }
    pthread_mutex_unlock(&s->mu);
}

void gsl_codebook_rebuild_restore(gsl_codebook *cb, long rebuilds, long next_iteration, long next_images)
{
    rebuild_shared *s = cb->shared;
    if (!s || rebuilds <= 0) return;
    pthread_mutex_lock(&s->mu);
    if (s->version == 0 || s->version < rebuilds) { /* a codebook loaded from a .weights file: go on from it */
        gslq_pq_free(&s->pq);
        gslq_error e;
        if (gslq_pq_copy(&s->pq, &cb->pq, &e) == 0) {
            s->version = rebuilds;
            s->next_iteration = next_iteration;
            s->next_images = next_images;
        }
    }
    cb->installed_version = s->version;
    pthread_mutex_unlock(&s->mu);
}

void gsl_codebook_rebuild_state(const gsl_codebook *cb, long *rebuilds, long *next_iteration, long *next_images)
{
    rebuild_shared *s = cb->shared;
    *rebuilds = *next_iteration = *next_images = 0;
    if (!s || !cb->own_schedule) return;
    pthread_mutex_lock(&s->mu);
    *rebuilds = s->version;
    *next_iteration = s->next_iteration;
    *next_images = s->next_images;
    pthread_mutex_unlock(&s->mu);
}
