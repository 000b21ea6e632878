/* ./darknet gsl train DATA CFG [WEIGHTS|CHECKPOINT] [-gpus 0,1] [-clear] [-seed N] [-epochs N] [-restart]
 *
 * Alternating optimisation: after `warmup` epochs, at the start of every `rebuild_every`-th epoch, embed (a sample
 * of) the training set, rebuild each [snap]/[quantloss] layer's codebook warm-started from the previous one, install
 * it in every replica; train one epoch; save weights, optimizer state and codebooks as one checkpoint.
 *
 * Under mpirun/srun (an MPI build, see gsl_dist.h and docs/cluster.md) every rank runs this same loop on its shard
 * of each global batch; the codebook rebuild embeds a shard per rank and every rank trains the codebook on its
 * shard, the k-means statistics all-reduced every iteration (gslq_comm), so every rank ends with the same codebook;
 * only rank 0 writes files and prints progress. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codebook.h"
#include "gsl.h"
#include "gsl_data.h"
#include "loader.h"
#include "gsl_dist.h"
#include "gsl_eval.h"
#include "gsl_net.h"
#include "gsl_opts.h"
#include "option_list.h"
#include "registry.h"
#include "snap_layer.h"

#ifdef GPU
/* Darknet's replica training (network.c, GPU builds only), not in its public header. */
float train_networks(network **nets, int n, data d, int interval);
void sync_nets(network **nets, int n, int interval);
#endif


/* CPU seconds of this process, all threads: a throughput measure that other jobs on the machine barely move. */
static double cpu_s(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return NAN;
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}


static void fmt_duration(char *out, size_t cap, double s)
{
    if (s < 0 || !isfinite(s)) snprintf(out, cap, "?");
    else if (s < 60) snprintf(out, cap, "%.0fs", s);
    else if (s < 3600) snprintf(out, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* A seeded permutation's first n entries of [0, total). */
static int *sample_indices(int total, int n, uint64_t seed)
{
    int *p = malloc(sizeof(int) * (total ? total : 1));
    if (!p) return NULL;
    for (int i = 0; i < total; i++) p[i] = i;
    uint64_t s = seed ? seed : 1;
    for (int i = 0; i < n && i < total; i++) {
        int j = i + (int)(gslq_xorshift64(&s) % (uint64_t)(total - i)), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

typedef struct trainer {
    const char *datafile, *cfgfile;
    gsl_data_cfg dc;
    gsl_train_keys k;
    network **nets;
    int nrep;
    gsl_data train, valid, db;
    int have_eval;
    int ncb, cbl[GSL_MAX_CODEBOOK_LAYERS];
    gslq_pq pq[GSL_MAX_CODEBOOK_LAYERS];
    gslq_pq *pqs[GSL_MAX_CODEBOOK_LAYERS]; /* NULL until built */
    char prefix[1024];
    FILE *csv;
    gsl_dist *dist; /* rank and size; a single process is rank 0 of 1 with dist->on = 0 */
    /* rebuild_from=training (one process, one replica): a reservoir sample of each codebook layer's inputs in the
     * epoch's training steps, the data of the next rebuild, so no separate embedding pass is needed */
    int collect;
    gsl_ckpt_samples res;
    int res_cap;
    long res_seen[GSL_MAX_CODEBOOK_LAYERS];
    uint64_t res_rng;
    gsl_augment aug;  /* the cfg's flip and shift */
    uint64_t aug_key; /* the epoch's augmentation key, from (seed, epoch); sample j of the epoch (in the sampler's
                       * order) is row j of it, whatever the ranks, replicas or subdivisions, and a resume */
    uint64_t run;     /* this run's identity, recorded in every checkpoint and kept on resume */
    int stopped_epoch, stopped_step; /* where a signal stopped the run (run() returned 1) */
    /* the run's shape (prepare_run): samples per step, sampler batch, steps per epoch, steps between progress lines */
    int per_step, sampler_batch, steps, interval;
    int start_epoch;              /* epochs already done (resume) */
    gsl_ckpt_position pos;        /* and steps of the next one (a checkpoint taken within it) */
    int seed_given;               /* -seed was given (a resume refuses another seed than its run's) */
    int log_cb;                   /* the codebook layer (index into cbl) of the logged qerr and snapped */
    double t_start;
    char csvpath[1100];
    char csv_staged[1200];        /* a new run's CSV until its first checkpoint (an earlier run's stays till then) */
    int *idx;                     /* (per_step) sampler indices of a step: the batch loader's */
    float **xrows, **yrows;       /* -gpus replicas: the step's rows for train_networks */
    int unreadable_reported;      /* unreadable images skipped (unreadable=skip) and reported so far */
    int made_backup;              /* this run made the backup folder (removed again if it fails before a checkpoint) */
    double recent_loss[5];        /* the mean losses of the last epochs (from the CSV on resume), oldest first */
    int recent_epoch[5], recent_n;
} trainer;

/* Adds the B rows of the codebook layers' inputs in this training step to their reservoirs (Vitter's algorithm R,
 * seeded per epoch, so a resumed run keeps exactly the samples the uninterrupted one would). */
static void collect_inputs(trainer *t)
{
    network *net = t->nets[0];
    int B = net->batch;
    for (int i = 0; i < t->ncb; i++) {
        int d = t->res.d[i];
        const float *rows = net->input;
        if (t->cbl[i] > 0) {
            layer *prev = &net->layers[t->cbl[i] - 1];
#ifdef GPU
            if (net->gpu_index >= 0) cuda_pull_array(prev->output_gpu, prev->output, (size_t)B * d);
#endif
            rows = prev->output;
        }
        for (int b = 0; b < B; b++) {
            long seen = t->res_seen[i]++;
            long slot = seen;
            if (seen >= t->res_cap) {
                slot = (long)(gslq_xorshift64(&t->res_rng) % (uint64_t)(seen + 1));
                if (slot >= t->res_cap) continue;
            } else {
                t->res.n[i] = (int)seen + 1;
            }
            memcpy(t->res.rows[i] + (size_t)slot * d, rows + (size_t)b * d, sizeof(float) * d);
        }
    }
}


/* CRC-32 of the installed codebooks (centroids and rotations). */
static uint32_t codebooks_crc(const trainer *t)
{
    uint32_t c = 0;
    for (int i = 0; i < t->ncb; i++) {
        const gslq_pq *q = t->pqs[i];
        if (!q) continue;
        c = gslq_crc32(c, q->centroids, sizeof(float) * (size_t)q->K * q->d);
        if (q->rotation) c = gslq_crc32(c, q->rotation, sizeof(float) * (size_t)q->d * q->d);
    }
    return c;
}

/* Weights, optimizer state and codebooks of this rank, as one checksum (and the parts, for GSL_DIST_DEBUG). */
static uint32_t state_crc(trainer *t, int epoch, uint32_t part[3])
{
    gsl_dist_net_crc(t->nets[0], &part[0], &part[1]);
    part[2] = codebooks_crc(t);
    uint32_t all[4] = {part[0], part[1], part[2], (uint32_t)epoch};
    return gslq_crc32(0, all, sizeof all);
}

/* Rebuilds every codebook from the current network, warm-started, and installs it in every replica. */
static int rebuild_codebooks(trainer *t, int epoch, double *qerr_out, char *err)
{
    network *net = t->nets[0];
    gsl_dist *D = t->dist;
    int n = t->k.rebuild_samples && t->k.rebuild_samples < t->train.n ? t->k.rebuild_samples : t->train.n;
    int *idx = sample_indices(t->train.n, n, t->k.seed * 7919 + (uint64_t)epoch);
    if (!idx) return gsl_fail(err, "out of memory");
    int rc = 0, lo, hi; /* this rank embeds samples idx[lo..hi) (all of them in a single process) */
    gsl_dist_share(D, n, &lo, &hi);
    for (int i = 0; i < t->ncb && !rc; i++) {
        int d, M, K;
        gsl_layer_codebook_shape(&net->layers[t->cbl[i]], &d, &M, &K);
        float *x = malloc(sizeof(float) * (size_t)n * d);
        if (!x) { rc = gsl_fail(err, "out of memory for %d embeddings", n); break; }
        /* the codebook layer's input: the output of the layer before it (the network's input for layer 0); this
         * rank's rows are x[r0 .. r0 + rn) */
        size_t r0 = (size_t)lo, rn = (size_t)(hi - lo);
        if (t->collect && t->res.n[i] >= K && t->res.n[i] >= (t->res_cap < n ? t->res_cap : n)) {
            r0 = 0; /* the inputs the layer saw in the last epoch's training steps (one process only) */
            rn = (size_t)t->res.n[i];
            memcpy(x, t->res.rows[i], sizeof(float) * rn * d);
        } else if (t->cbl[i] == 0) {
            if (hi > lo && (rc = gsl_data_gather(&t->train, idx + lo, hi - lo, x + (size_t)lo * d, NULL, err))) {
                free(x);
                break;
            }
        } else if (hi > lo && (rc = gsl_net_embed(net, &t->train, idx + lo, hi - lo, t->cbl[i] - 1, NULL,
                                                  x + (size_t)lo * d, err))) {
            free(x);
            break;
        }
        /* distributed: every rank trains on its own rows, the k-means statistics (and OPQ's Procrustes matrix)
         * summed over the ranks at every iteration; every rank ends with the same codebook, bit for bit */
        gslq_comm comm;
        if (D->on) gsl_dist_gslq_comm(D, &comm);
        gslq_error e = {0};
        double mse = 0;
        if (!t->pqs[i] && gslq_pq_init(&t->pq[i], d, M, K, &e)) { rc = gsl_fail(err, "%s", e.msg); free(x); break; }
        rc = gsl_codebook_fit(&t->pq[i], t->pqs[i] != NULL, x + r0 * d, rn, t->k.opq, t->k.rebuild_iters,
                              t->k.seed + 1000003ULL * (uint64_t)epoch + (uint64_t)i, t->k.threads,
                              D->on ? &comm : NULL, &mse, &e);
        free(x);
        if (rc) { snprintf(err, GSL_DATA_ERRLEN, "rebuilding the codebook of layer %d: %.900s", t->cbl[i], e.msg); break; }
        if (D->debug)
            fprintf(stderr, "gsl-dist: rank %d rebuild of epoch %d, codebook %d: k-means on %zu of %d rows\n", D->rank,
                    epoch + 1, i, rn, n);
        double v[2] = {mse * (double)rn, (double)rn}; /* the mean over all ranks' rows */
        gsl_dist_sum_doubles(D, v, 2, "the rebuild's quantization error");
        mse = v[1] > 0 ? v[0] / v[1] : 0;
        if (i == 0) *qerr_out = mse;
        t->pqs[i] = &t->pq[i];
        for (int r = 0; r < t->nrep && !rc; r++) {
            char lerr[GSL_ERRLEN] = "";
            if (gsl_layer_set_codebook(&t->nets[r]->layers[t->cbl[i]], t->pqs[i], lerr))
                rc = gsl_fail(err, "installing the codebook of layer %d: %s", t->cbl[i], lerr);
        }
    }
    free(idx);
    return rc;
}

/* One training step over nrep replicas on the loader's rows x (nrep * batch of them) and truth y. Returns the mean
 * cost. */
static float train_step(trainer *t, float *x, float *y)
{
    network *net = t->nets[0];
    int B = net->batch;
    if (t->nrep == 1) {
        memcpy(net->input, x, sizeof(float) * (size_t)B * net->inputs);
        memcpy(net->truth, y, sizeof(float) * (size_t)B * t->train.classes);
        return train_network_datum(net);
    }
#ifdef GPU
    /* Darknet's replica training: each thread takes its rows of d, trains, and weights are averaged every 4 steps */
    size_t dim = (size_t)t->train.c * t->train.h * t->train.w;
    int rows = B * net->subdivisions * t->nrep, C = t->train.classes; /* train_networks asserts this */
    for (int i = 0; i < rows; i++) {
        t->xrows[i] = x + (size_t)i * dim;
        t->yrows[i] = y + (size_t)i * C;
    }
    data d = {0};
    d.X = (matrix){rows, (int)dim, t->xrows};
    d.y = (matrix){rows, C, t->yrows};
    d.shallow = 1;
    return train_networks(t->nets, t->nrep, d, 4) * B;
#else
    return NAN; /* unreachable: gsl_net_load refuses -gpus without GPU=1 */
#endif
}

/* The step's embeddings (the input of the loss layer) are all finite. A diverged network can report a finite loss
 * (a hinge clamps NaN distances), so the loss alone does not tell. One replica only: -gpus replicas are checked by
 * their loss and by the weights scan before every checkpoint. */
static int embedding_finite(network *net)
{
    layer *l = &net->layers[gsl_net_embedding_layer(net)];
    size_t n = (size_t)l->outputs * l->batch;
#ifdef GPU
    if (net->gpu_index >= 0) cuda_pull_array(l->output_gpu, l->output, n);
#endif
    for (size_t i = 0; i < n; i++)
        if (!isfinite(l->output[i])) return 0;
    return 1;
}

static int diverged(int epoch, int step, int steps, double loss, char *err)
{
    return gsl_fail(err, "training diverged at epoch %d, step %d of %d: %s; stopped, nothing of this epoch is saved "
                    "(the checkpoint still holds the last finished epoch). Lower learning_rate, or check the data",
                    epoch, step, steps, isfinite(loss) ? "the embeddings are not finite" : "the loss is not finite");
}

#define CSV_HEADER "epoch,loss,qerr,snapped,rebuild_s,train_s,images_per_s,map_float,map_pq,train_cpu_s\n"

/* The last epochs' mean losses, for loss_spike_note. */
static void recent_loss_push(trainer *t, int epoch, double loss)
{
    const int cap = (int)(sizeof t->recent_loss / sizeof t->recent_loss[0]);
    if (!isfinite(loss)) return;
    if (t->recent_n == cap) {
        memmove(t->recent_loss, t->recent_loss + 1, sizeof(double) * (cap - 1));
        memmove(t->recent_epoch, t->recent_epoch + 1, sizeof(int) * (cap - 1));
        t->recent_n--;
    }
    t->recent_loss[t->recent_n] = loss;
    t->recent_epoch[t->recent_n++] = epoch;
}

/* The CSV log holds the header and one row per epoch the checkpoint has committed: rows of epochs after `epochs`
 * (written before a crash stopped their checkpoint) are dropped, atomically; the rows kept give the loss history. */
static int csv_reconcile(trainer *t, const char *path, int epochs, char *err)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap), line[4096];
    if (!out) return gsl_fail(err, "out of memory");
    len = (size_t)snprintf(out, cap, "%s", CSV_HEADER);
    FILE *f = epochs ? fopen(path, "r") : NULL;
    int first = 1;
    while (f && fgets(line, sizeof line, f)) {
        if (first) { first = 0; if (!strcmp(line, CSV_HEADER)) continue; }
        char *end;
        long e = strtol(line, &end, 10);
        if (end == line || *end != ',' || e < 1 || e > epochs || !strchr(line, '\n')) continue; /* torn or later */
        if (!t->ncb || e > t->k.warmup) recent_loss_push(t, (int)e, strtod(end + 1, NULL)); /* as loss_spike_note */
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            char *o = realloc(out, cap = 2 * (len + n + 1));
            if (!o) { free(out); fclose(f); return gsl_fail(err, "out of memory"); }
            out = o;
        }
        memcpy(out + len, line, n + 1);
        len += n;
    }
    if (f) fclose(f);
    int rc = gsl_write_atomic(path, out, len, err);
    free(out);
    return rc;
}

/* A loss spike: the epoch's mean loss above 1.5x the lowest of the (3 to 5) epochs before it. SGD can leave its basin
 * late in a schedule and settle lower after the next learning-rate step; the log says so, also where the per-epoch
 * mAP is off (eval_queries=0). The epochs with the codebook layers on are compared among themselves only (the loss may
 * rise when they start). */
static void loss_spike_note(trainer *t, int epoch, double loss)
{
    if (t->ncb && epoch == t->k.warmup) t->recent_n = 0;
    int lo = 0;
    for (int i = 1; i < t->recent_n; i++)
        if (t->recent_loss[i] < t->recent_loss[lo]) lo = i;
    if (t->recent_n >= 3 && loss > 1.5 * t->recent_loss[lo]) {
        fflush(stdout);
        fprintf(stderr, "darknet gsl train: note: epoch %d's loss (%.4f) is %.1fx the lowest of the %d epochs before "
                "it (%.4f, epoch %d): a loss spike; runs of one cfg that spiked shortly before a learning-rate step "
                "have ended lower than the others\n", epoch + 1, loss, loss / t->recent_loss[lo], t->recent_n,
                t->recent_loss[lo], t->recent_epoch[lo]);
    }
    recent_loss_push(t, epoch + 1, loss);
}

/* One epoch's row, on disk before the checkpoint that commits the epoch. */
static int csv_row(FILE *csv, const char *path, const char *row, char *err)
{
    if (fputs(row, csv) < 0 || fflush(csv) || fsync(fileno(csv)))
        return gsl_fail(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* Loads a checkpoint into every replica: weights, optimizer state, codebooks, the rebuild reservoirs, and where in
 * an epoch it was taken. */
static int resume_from(trainer *t, const char *resume, int *start_epoch, gsl_ckpt_position *pos, char *err)
{
    gsl_ckpt ck;
    if (gsl_ckpt_read(resume, &ck, err)) return -1;
    if (gsl_ckpt_same_network(&ck, resume, t->nets[0], t->cfgfile, err)) return -1;
    if (ck.ncb != t->ncb) return gsl_fail(err, "%s: %d codebooks, the network has %d codebook layers", resume, ck.ncb, t->ncb);
    for (int i = 0; i < t->ncb; i++)
        if (ck.cb_layer[i] != t->cbl[i])
            return gsl_fail(err, "%s: codebook %d is for layer %d, but the network's codebook layer is %d", resume,
                            i, ck.cb_layer[i], t->cbl[i]);
    if (ck.run) t->run = ck.run;
    if (ck.seed != t->k.seed) { /* a run keeps its seed: its random streams continue from it */
        if (t->seed_given)
            return gsl_fail(err, "%s: the run's seed is %" PRIu64 ", -seed %" PRIu64 " would change its random streams "
                            "mid-run (leave -seed out to resume)", resume, ck.seed, t->k.seed);
        if (t->dist->rank == 0)
            fprintf(stderr, "darknet gsl train: resuming with the run's seed %" PRIu64 " (the cfg says %" PRIu64 ")\n",
                    ck.seed, t->k.seed);
        t->k.seed = ck.seed;
    }
    for (int r = 0; r < t->nrep; r++) {
        if (r == 0 && gsl_weights_check(t->nets[r], ck.weights, err)) return -1; /* the replicas share the cfg */
        load_weights(t->nets[r], ck.weights);
        if (gsl_optim_load(t->nets[r], ck.optim, err)) return -1;
    }
    for (int i = 0; i < t->ncb; i++) {
        if (!ck.cb_installed[i]) continue;
        gslq_error e = {0};
        if (gslq_pq_load(ck.codebook[i], &t->pq[i], &e)) return gsl_fail(err, "%s", e.msg);
        t->pqs[i] = &t->pq[i];
        for (int r = 0; r < t->nrep; r++) {
            char lerr[GSL_ERRLEN] = "";
            if (gsl_layer_set_codebook(&t->nets[r]->layers[t->cbl[i]], t->pqs[i], lerr))
                return gsl_fail(err, "%s: %s", ck.codebook[i], lerr);
        }
    }
    for (int i = 0; i < t->ncb && t->collect; i++) {
        if (!ck.samples[i][0]) continue;
        gslq_error e = {0};
        float *rows = NULL;
        size_t n = 0;
        int d = 0;
        if (gslq_fvecs_read(ck.samples[i], &rows, &n, &d, &e)) return gsl_fail(err, "%s", e.msg);
        if (d != t->res.d[i] || n > (size_t)t->res_cap) {
            free(rows);
            return gsl_fail(err, "%s: %zu x %d samples, the layer takes at most %d x %d", ck.samples[i], n, d,
                        t->res_cap, t->res.d[i]);
        }
        memcpy(t->res.rows[i], rows, sizeof(float) * n * d);
        t->res.n[i] = (int)n;
        free(rows);
    }
    *start_epoch = ck.epoch;
    *pos = ck.pos;
    return 0;
}

/* -epochs N for a cfg written for E epochs: Darknet's learning-rate schedule counts iterations, so it is scaled by
 * N / E (steps=, step= of step and sig, max_batches of poly; exp's gamma becomes gamma^(E/N)), rounded to the nearest
 * iteration; the
 * schedule of a run is then the cfg's stretched to its length. A cfg without epochs= cannot be scaled. */
static int scale_schedule(trainer *t, int cfg_epochs, int epochs, char *err)
{
    network *net = t->nets[0];
    int iterative = net->policy == STEPS || net->policy == STEP || net->policy == POLY || net->policy == SIG ||
                    net->policy == EXP;
    if (!iterative || epochs == cfg_epochs) return 0;
    if (!t->k.epochs_in_cfg)
        return gsl_fail(err, "%s: -epochs %d scales the learning-rate schedule (policy counts iterations), which needs "
                        "epochs= in [net] to scale from", t->cfgfile, epochs);
    double f = (double)epochs / cfg_epochs;
    char line[512];
    int len = snprintf(line, sizeof line, "learning-rate schedule scaled to %d epochs (the cfg's %d):", epochs, cfg_epochs);
    for (int r = 0; r < t->nrep; r++) {
        network *n = t->nets[r];
        for (int i = 0; n->policy == STEPS && i < n->num_steps; i++) {
            n->steps[i] = (int)(n->steps[i] * f + 0.5);
            if (r == 0 && len < (int)sizeof line)
                len += snprintf(line + len, sizeof line - len, "%s%d", i ? "," : " steps=", n->steps[i]);
        }
        if (n->policy == STEP || n->policy == SIG) n->step = (int)(n->step * f + 0.5);
        if (n->policy == EXP) n->gamma = (float)pow(n->gamma, 1.0 / f); /* gamma^iteration over the longer run */
        if (n->policy == POLY && n->max_batches) n->max_batches = (int)(n->max_batches * f + 0.5);
    }
    if ((net->policy == STEP || net->policy == SIG) && len < (int)sizeof line)
        len += snprintf(line + len, sizeof line - len, " step=%d", net->step);
    if (net->policy == EXP && len < (int)sizeof line) len += snprintf(line + len, sizeof line - len, " gamma=%g", net->gamma);
    if (net->policy == POLY && net->max_batches && len < (int)sizeof line)
        snprintf(line + len, sizeof line - len, " max_batches=%d", net->max_batches);
    if (t->dist->rank == 0) printf("%s\n", line);
    return 0;
}

/* Preemption: SIGTERM (one process) or SIGUSR1 (any run; under MPI, SIGTERM is the launcher stopping the job)
 * asks the trainer to finish the current step, checkpoint where it is and exit with GSL_EXIT_PREEMPTED. Slurm sends
 * it with `sbatch --signal=B:TERM@120` or `--signal=USR1@120`. Under MPI the ranks agree at the next progress line. */
static volatile sig_atomic_t preempt_signal;
static void on_preempt(int sig) { preempt_signal = sig; }

static void preempt_arm(int mpi)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_preempt;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    if (!mpi) sigaction(SIGTERM, &sa, NULL);
}

/* Signal injection for the tests: GSL_FAULT_SIGNAL=EPOCH:STEP[:RANK] makes the process signal itself (SIGTERM, or
 * SIGUSR1 under MPI) after that step of that epoch (1-based), as a scheduler's preemption would. */
static void fault_signal(const gsl_dist *D, int epoch, int step)
{
    const char *f = getenv("GSL_FAULT_SIGNAL");
    int e, s, r = -1;
    if (f && sscanf(f, "%d:%d:%d", &e, &s, &r) >= 2 && e == epoch + 1 && s == step && (r < 0 || r == D->rank))
        raise(D->on ? SIGUSR1 : SIGTERM);
}

/* After a checkpoint: a new run's CSV takes its final name. */
static int csv_commit(trainer *t, char *err)
{
    if (!t->csv_staged[0]) return 0;
    if (fflush(t->csv) || gsl_commit_file(t->csv_staged, t->csvpath, err)) return -1;
    t->csv_staged[0] = 0; /* the open stream writes on into the renamed file */
    return 0;
}

/* A checkpoint `step` steps into the epoch after `epoch` (rank 0 writes it); returns 1: stop. */
static int preempt(trainer *t, int epoch, int step, double loss_sum, char *err)
{
#ifdef GPU
    if (t->nrep > 1) sync_nets(t->nets, t->nrep, 0); /* the replicas resume from one set of weights */
#endif
    t->stopped_epoch = epoch;
    t->stopped_step = step;
    if (t->dist->rank != 0) return 1;
    gsl_ckpt_position pos = {step, loss_sum, t->res_rng, {0}, t->steps, t->per_step};
    for (int i = 0; i < t->ncb; i++) pos.res_seen[i] = t->res_seen[i];
    if (gsl_ckpt_save(t->nets[0], t->prefix, epoch, t->k.seed, t->run, t->ncb, t->cbl, t->pqs,
                      t->collect ? &t->res : NULL, &pos, err) || csv_commit(t, err))
        return -1;
    return 1;
}

/* What run() sets up once: the shape of an epoch, where it starts, the CSV log and the step's buffers. */
static int prepare_run(trainer *t, const char *resume, char *err)
{
    network *net = t->nets[0];
    gsl_dist *D = t->dist;
    int B = net->batch;
    /* samples per step: one pass of train_network_datum (which updates every `subdivisions` passes); one update of
     * all -gpus replicas (train_networks); one update of all ranks, each taking `subdivisions` sampler batches */
    t->per_step = D->on ? B * net->subdivisions * D->size : t->nrep > 1 ? B * net->subdivisions * t->nrep : B;
    t->sampler_batch = D->on ? B : t->per_step;
    t->steps = t->train.n / t->per_step;
    if (t->steps < 1) return gsl_fail(err, "%d training samples, fewer than one step of %d", t->train.n, t->per_step);
    t->interval = t->k.log_interval ? t->k.log_interval : (t->steps >= 10 ? t->steps / 5 : 1);
    t->ncb = gsl_net_codebook_layers(net, t->cbl);
    /* the layer whose qerr and snapped fraction the log shows: the first [snap] (a [quantloss] snaps nothing) */
    t->log_cb = 0;
    for (int i = t->ncb - 1; i >= 0; i--)
        if (gsl_is_snap_layer(&net->layers[t->cbl[i]])) t->log_cb = i;
    /* the trainer rebuilds at epoch boundaries itself: the layers' own schedules are off */
    for (int i = 0; i < t->ncb; i++)
        for (int r = 0; r < t->nrep; r++) gsl_codebook_rebuild_off(gsl_layer_codebook(&t->nets[r]->layers[t->cbl[i]]));
    t->collect = t->ncb && t->k.rebuild_from == 0 && !D->on && t->nrep == 1;
    t->res_cap = t->k.rebuild_samples && t->k.rebuild_samples < t->train.n ? t->k.rebuild_samples : t->train.n;
    for (int i = 0; i < t->ncb && t->collect; i++) {
        int M, K;
        gsl_layer_codebook_shape(&net->layers[t->cbl[i]], &t->res.d[i], &M, &K);
        if (!(t->res.rows[i] = malloc(sizeof(float) * (size_t)t->res_cap * t->res.d[i])))
            return gsl_fail(err, "out of memory for %d rebuild samples", t->res_cap);
    }
    if (resume) {
        if (resume_from(t, resume, &t->start_epoch, &t->pos, err)) return -1;
        if (t->pos.step >= t->steps ||
            (t->pos.step && t->pos.steps && (t->pos.steps != t->steps || t->pos.per_step != t->per_step)))
            return gsl_fail(err, "%s: taken at step %d of an epoch of %d steps of %d samples, but an epoch here has %d "
                            "steps of %d (another batch size, dataset or number of ranks): resume a position within "
                            "an epoch with the same, or from the epoch's own checkpoint", resume, t->pos.step,
                            t->pos.steps ? t->pos.steps : t->pos.step, t->pos.per_step ? t->pos.per_step : t->per_step,
                            t->steps, t->per_step);
        if (D->rank == 0 && t->pos.step)
            printf("resuming %s at epoch %d, step %d of %d\n", resume, t->start_epoch + 1, t->pos.step, t->steps);
        else if (D->rank == 0) printf("resuming %s at epoch %d\n", resume, t->start_epoch + 1);
        if (D->rank == 0 && t->start_epoch >= t->k.epochs)
            fprintf(stderr, "darknet gsl train: nothing to train: %s has %d epochs done, the schedule %d (-epochs N "
                    "to train on)\n", resume, t->start_epoch, t->k.epochs);
    }
    if (D->rank == 0 && t->ncb && t->k.warmup >= t->k.epochs)
        fprintf(stderr, "darknet gsl train: note: warmup=%d is not below the %d epochs: no codebook will be built, the "
                "codebook layers stay inactive\n", t->k.warmup, t->k.epochs);
    if (D->on) {
        uint32_t part[3];
        if (!gsl_dist_same_u32(D, state_crc(t, t->start_epoch, part), "the start-up consistency check"))
            return gsl_fail(err, "the ranks do not start from the same state (weights, optimizer state, codebooks or "
                             "epoch differ): every rank must read the same cfg, weights and checkpoint files (put "
                             "the backup folder on a filesystem every node shares)");
    }
    snprintf(t->csvpath, sizeof t->csvpath, "%s.csv", t->prefix);
    if (D->rank == 0) {
        /* A new run writes its CSV beside the final name, NAME.csv.runID, and renames it after its first checkpoint, so
         * that a run that fails before one (-restart with a bad list, say) leaves the CSV of the run it was to
         * replace. A resume finds its run's staged CSV still there when a crash came between that checkpoint and the
         * rename, and finishes the rename; staged CSVs of other runs (that never wrote a checkpoint) are removed. */
        char mine[1200], pattern[1200];
        snprintf(mine, sizeof mine, "%s.run%016" PRIx64, t->csvpath, t->run);
        snprintf(pattern, sizeof pattern, "%s.run*", t->csvpath);
        glob_t g;
        if (glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++)
                if (strcmp(g.gl_pathv[i], mine) || !resume) unlink(g.gl_pathv[i]);
            globfree(&g);
        }
        if (resume && access(mine, F_OK) == 0 && gsl_commit_file(mine, t->csvpath, err)) return -1;
        const char *path = t->csvpath;
        if (!resume) path = (snprintf(t->csv_staged, sizeof t->csv_staged, "%s", mine), t->csv_staged);
        if (csv_reconcile(t, path, t->start_epoch, err)) return -1;
        t->csv = fopen(path, "a");
        if (!t->csv) return gsl_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    int n = t->per_step;
    t->idx = malloc(sizeof(int) * n);
    t->xrows = malloc(sizeof(float *) * n);
    t->yrows = malloc(sizeof(float *) * n);
    if (!t->idx || !t->xrows || !t->yrows) return gsl_fail(err, "out of memory");
    return 0;
}

/* The run's first line: the data, the schedule, the device and the BLAS kernel. */
static void print_header(const trainer *t)
{
    network *net = t->nets[0];
    const gsl_dist *D = t->dist;
    printf("training %s on %d samples (%d classes), %d steps of %d per epoch, epochs %d..%d, %d codebook layer(s)",
           t->cfgfile, t->train.n, t->dc.classes, t->steps, t->per_step, t->start_epoch + 1, t->k.epochs, t->ncb);
    if (t->ncb > 1) printf(" (qerr and snapped: layer %d)", t->cbl[t->log_cb]);
    if (D->on) printf(", %d ranks x %d x %d subdivisions (%s)", D->size, net->batch, net->subdivisions, gsl_dist_backend(D));
    if (t->aug.flip || t->aug.shift)
        printf(", augmented (%s%sshift %d)", t->aug.flip ? "flip" : "", t->aug.flip ? ", " : "", t->aug.shift);
#ifdef GPU
    if (net->gpu_index < 0) printf(", on the CPU (-gpus N trains on a GPU)");
    else if (t->nrep > 1) printf(", %d replicas on GPUs", t->nrep);
    else printf(", on GPU %d", net->gpu_index);
#else
    printf(", on the CPU");
#endif
    char blas[GSLQ_BLAS_DESCRIBE_LEN];
    gslq_blas_describe(blas, sizeof blas);
    printf("; %s\n", blas);
}

/* One epoch's running figures. */
typedef struct epoch_run {
    int epoch, s0;             /* s0: steps already trained (a checkpoint taken within the epoch) */
    double t0, t1, c1;         /* start, end of the rebuild (wall clock), CPU time at the end of the rebuild */
    double qerr_rebuild;       /* the rebuild's quantization error (NaN: no rebuild) */
    double loss_sum;           /* the steps' summed losses */
    gsl_sampler smp;           /* drawn by the loader's thread alone once the epoch's steps start */
    gsl_loader *L;             /* the epoch's batches, a few steps ahead of the training */
    double loader_wait_s;      /* the steps' time waiting for the loader */
    trainer *t;
} epoch_run;

/* The loader's job j of the epoch (loader.h): the rows this process trains on in its next sampler batch, gathered
 * (images decoded) and augmented. One process: step s0 + j, all of its per_step rows. Distributed: every rank draws
 * every sampler batch of a step, in order, and gathers its own `subdivisions` of them, one per job. */
static int step_job(void *ctx, long job, float *x, float *y, char *err)
{
    epoch_run *e = ctx;
    trainer *t = e->t;
    gsl_dist *D = t->dist;
    network *net = t->nets[0];
    if (!D->on) {
        int s = e->s0 + (int)job;
        gsl_sampler_next(&e->smp, t->idx);
        return gsl_data_gather_augmented(&t->train, t->idx, t->sampler_batch, &t->aug, t->aug_key, s * t->per_step,
                                         x, y, err);
    }
    int sub = net->subdivisions, B = net->batch, s = e->s0 + (int)(job / sub), u = (int)(job % sub);
    if (u == 0)
        for (int c = 0; c < D->rank * sub; c++) gsl_sampler_next(&e->smp, t->idx);
    gsl_sampler_next(&e->smp, t->idx);
    /* the step's sampler batch c holds the epoch's samples s*per_step + c*B + r, as in one process */
    int rc = gsl_data_gather_augmented(&t->train, t->idx, B, &t->aug, t->aug_key,
                                       s * t->per_step + (D->rank * sub + u) * B, x, y, err);
    if (u == sub - 1)
        for (int c = (D->rank + 1) * sub; c < D->size * sub; c++) gsl_sampler_next(&e->smp, t->idx);
    return rc;
}

/* The epoch's start: the codebook rebuild when due, the reservoirs and statistics reset (or restored within an
 * epoch), the augmentation key, and the sampler positioned at the first step to train. */
static int start_epoch(trainer *t, epoch_run *e, char *err)
{
    gsl_dist *D = t->dist;
    network *net = t->nets[0];
    int epoch = e->epoch;
    /* a checkpoint taken within this epoch: its codebooks are installed and its reservoirs restored */
    e->s0 = epoch == t->start_epoch ? t->pos.step : 0;
    srand((unsigned)(t->k.seed * 2654435761ULL + (uint64_t)epoch));
    e->t0 = gslq_now_s();
    e->qerr_rebuild = NAN;
    if (!e->s0 && t->ncb && epoch >= t->k.warmup && (epoch - t->k.warmup) % t->k.rebuild_every == 0 &&
        rebuild_codebooks(t, epoch, &e->qerr_rebuild, err))
        return -1;
    e->t1 = gslq_now_s();
    e->c1 = cpu_s();
    for (int i = 0; i < t->ncb; i++) {
        if (!e->s0) t->res.n[i] = 0;
        t->res_seen[i] = e->s0 ? t->pos.res_seen[i] : 0;
    }
    t->res_rng = e->s0 ? t->pos.res_rng : (t->k.seed + 1) * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch;
    for (int i = 0; i < t->ncb; i++)
        for (int r = 0; r < t->nrep; r++) {
            gsl_layer_stats s;
            gsl_layer_get_stats(&t->nets[r]->layers[t->cbl[i]], &s, 1);
        }
    t->aug_key = (t->k.seed + 1) * 0xbf58476d1ce4e5b9ULL + (uint64_t)epoch;
    if (gsl_sampler_init(&e->smp, &t->train, t->sampler_batch, t->k.P, t->k.P ? t->sampler_batch / t->k.P : 0,
                         t->k.seed * 31 + (uint64_t)epoch, err))
        return -1;
    for (long b = 0; b < (long)e->s0 * (D->on ? net->subdivisions * D->size : 1); b++) gsl_sampler_next(&e->smp, t->idx);
    size_t dim = (size_t)t->train.c * t->train.h * t->train.w, rows = (size_t)t->sampler_batch;
    e->t = t;
    if (!(e->L = gsl_loader_start(step_job, e, (long)(t->steps - e->s0) * (D->on ? net->subdivisions : 1),
                                  rows * dim, rows * t->train.classes, 3, err)))
        return -1;
    D->comm_s = D->wait_s = D->comm_bytes = 0;
    D->comm_steps = 0;
    e->loss_sum = e->s0 ? t->pos.loss_sum : 0;
    return 0;
}

/* One step: a batch of every rank (distributed), of every replica, or of the one network, from the loader. Its loss in
 * *loss; 0, or -1 with err (an image that cannot be read). */
static int one_step(trainer *t, epoch_run *e, float *loss, char *err)
{
    network *net = t->nets[0];
    gsl_dist *D = t->dist;
    float *x, *y;
    *loss = 0;
    if (D->on) {
        int sub = net->subdivisions;
        for (int u = 0; u < sub; u++) {
            if (gsl_loader_next(e->L, &x, &y, err)) return -1;
            memcpy(net->input, x, sizeof(float) * (size_t)net->batch * net->inputs);
            memcpy(net->truth, y, sizeof(float) * (size_t)net->batch * t->train.classes);
            *loss += gsl_dist_train_datum(D, net) / sub;
        }
        return 0;
    }
    if (gsl_loader_next(e->L, &x, &y, err)) return -1;
    *loss = train_step(t, x, y);
    return 0;
}

/* The progress line after step s (means over the ranks, which agree there on a divergence or a stop). Returns 0, 1 to
 * stop (preempted), or -1 with err. */
static int progress(trainer *t, epoch_run *e, int s, double *loss_int, int *nint, double *ti, char *err)
{
    network *net = t->nets[0];
    gsl_dist *D = t->dist;
    int steps = t->steps;
    double el = gslq_now_s() - *ti, ips = (double)*nint * t->per_step / (el > 0 ? el : 1e-9);
    double done = (double)(e->epoch - t->start_epoch) * steps + s + 1;
    double total = (double)(t->k.epochs - t->start_epoch) * steps;
    char eta[32];
    fmt_duration(eta, sizeof eta, (gslq_now_s() - t->t_start) / done * (total - done));
    gsl_layer_stats st = {0};
    if (t->ncb) gsl_layer_get_stats(&net->layers[t->cbl[t->log_cb]], &st, 0);
    /* means over the ranks, and whether any rank was asked to stop */
    double v[4] = {*loss_int, st.last_qerr, st.last_snapped_frac, preempt_signal != 0};
    gsl_dist_sum_doubles(D, v, 4, "the progress-line all-reduce");
    for (int j = 0; j < 3; j++) v[j] /= D->size;
    if (D->on && !isfinite(v[0])) return diverged(e->epoch + 1, s + 1, steps, v[0], err); /* all ranks see it */
    if (D->on && v[3] > 0 && s + 1 < steps) {
        double all = e->loss_sum;
        gsl_dist_sum_doubles(D, &all, 1, "the preemption all-reduce");
        return preempt(t, e->epoch, s + 1, all / D->size, err);
    }
    if (D->rank == 0) {
        printf("epoch %d/%d batch %d/%d loss %.5f", e->epoch + 1, t->k.epochs, s + 1, steps, v[0] / *nint);
        if (t->ncb && gsl_layer_codebook_installed(&net->layers[t->cbl[t->log_cb]]))
            printf(" qerr %.5f snapped %.3f", v[1], v[2]);
        else if (t->ncb) printf(" qerr - snapped -");
        printf(" %.0f img/s ETA %s\n", ips, eta);
        fflush(stdout);
    }
    *loss_int = 0;
    *nint = 0;
    *ti = gslq_now_s();
    return 0;
}

/* The epoch's steps from e->s0 on. Returns 0, 1 when a signal stopped the run (checkpoint written), -1 with err. */
static int train_steps(trainer *t, epoch_run *e, char *err)
{
    gsl_dist *D = t->dist;
    double loss_int = 0, ti = gslq_now_s();
    int nint = 0, rc = 0;
    for (int s = e->s0; s < t->steps && !rc; s++) {
        float loss;
        if (one_step(t, e, &loss, err)) return -1;
        if (!D->on) {
            if (!isfinite(loss) || (t->nrep == 1 && !embedding_finite(t->nets[0])))
                return diverged(e->epoch + 1, s + 1, t->steps, loss, err);
            if (t->collect) collect_inputs(t);
        }
        e->loss_sum += loss;
        loss_int += loss;
        nint++;
        fault_signal(D, e->epoch, s + 1);
        if (!D->on && preempt_signal && s + 1 < t->steps) return preempt(t, e->epoch, s + 1, e->loss_sum, err);
        if ((s + 1) % t->interval == 0 || s + 1 == t->steps) rc = progress(t, e, s, &loss_int, &nint, &ti, err);
    }
    return rc;
}

/* The epoch's end: statistics (reduced over the ranks), the monitor's mAP, the CSV row, then the checkpoint that
 * commits the epoch, and its summary line. Returns 0, 1 to stop after it (a signal), or -1 with err. */
static int finish_epoch(trainer *t, epoch_run *e, char *err)
{
    network *net = t->nets[0];
    gsl_dist *D = t->dist;
    int epoch = e->epoch, steps = t->steps;
    double t2 = gslq_now_s(), c2 = cpu_s();
#ifdef GPU
    if (t->nrep > 1) sync_nets(t->nets, t->nrep, 0);
#endif
    double snapped = NAN, qerr = e->qerr_rebuild, loss_sum = e->loss_sum;
    if (t->ncb && gsl_layer_codebook_installed(&net->layers[t->cbl[t->log_cb]])) {
        double sf = 0, qe = 0;
        for (int r = 0; r < t->nrep; r++) {
            gsl_layer_stats st;
            gsl_layer_get_stats(&t->nets[r]->layers[t->cbl[t->log_cb]], &st, 0);
            sf += st.snapped_frac;
            qe += st.qerr;
        }
        snapped = sf / t->nrep;
        qerr = qe / t->nrep;
    }
    /* asked to stop (SIGTERM/SIGUSR1): after this epoch's checkpoint, unless it was the last */
    int stop_after = preempt_signal != 0 && epoch + 1 < t->k.epochs;
    if (D->on) {
        double v[4] = {loss_sum, snapped, qerr, stop_after};
        gsl_dist_sum_doubles(D, v, 4, "the epoch-summary all-reduce");
        loss_sum = v[0] / D->size;
        snapped = v[1] / D->size;
        qerr = v[2] / D->size;
        stop_after = v[3] > 0 && epoch + 1 < t->k.epochs;
        gsl_dist_average_stats(D, net);
        uint32_t part[3];
        if (!gsl_dist_same_u32(D, state_crc(t, epoch + 1, part), "the replica consistency check")) {
            /* should not happen (identical updates of identical states); an MPI library whose all-reduce results
             * differ between ranks in the last bit would do it */
            if (D->rank == 0) fprintf(stderr, "darknet gsl train: warning: the ranks' weights differ after epoch %d; "
                                              "copying rank 0's to every rank\n", epoch + 1);
            gsl_dist_bcast_net(D, net);
        }
        if (D->debug)
            fprintf(stderr, "gsl-dist: rank %d epoch %d weights %08x optim %08x codebooks %08x\n", D->rank, epoch + 1,
                    part[0], part[1], part[2]);
    }
    if (stop_after) t->stopped_epoch = epoch + 1, t->stopped_step = 0;
    if (D->rank != 0) return stop_after;
    gsl_eval_summary ev = {NAN, NAN};
    if (t->have_eval) {
        gsl_eval_opts eo;
        gsl_eval_opts_default(&eo);
        eo.max_queries = t->k.eval_queries;
        eo.max_database = t->k.eval_database;
        eo.seed = t->k.seed;
        eo.threads = t->k.threads;
        eo.quiet = 1;
        if (gsl_eval_network(net, &t->valid, &t->db, t->ncb ? t->pqs[0] : NULL, &eo, &ev, err)) return -1;
    }
    double train_s = t2 - e->t1, ips = (double)(steps - e->s0) * t->per_step / (train_s > 0 ? train_s : 1e-9);
    char row[512];
    snprintf(row, sizeof row, "%d,%.6f,%.6f,%.4f,%.3f,%.3f,%.1f,%.5f,%.5f,%.3f\n", epoch + 1, loss_sum / steps, qerr,
             snapped, e->t1 - e->t0, train_s, ips, ev.map_float, ev.map_pq, c2 - e->c1);
    if (csv_row(t->csv, t->csvpath, row, err) ||
        gsl_ckpt_save(net, t->prefix, epoch + 1, t->k.seed, t->run, t->ncb, t->cbl, t->pqs, t->collect ? &t->res : NULL,
                      NULL, err) || csv_commit(t, err))
        return -1;
    printf("epoch %d done: loss %.5f", epoch + 1, loss_sum / steps);
    if (!isnan(qerr)) printf(" qerr %.5f", qerr);
    if (!isnan(snapped)) printf(" snapped %.3f", snapped);
    printf(" rebuild %.1fs train %.1fs (%.0f img/s)", e->t1 - e->t0, train_s, ips);
    if (t->have_eval) printf(" mAP float %.4f pq %.4f", ev.map_float, ev.map_pq);
    printf(" -> %s.ckpt\n", t->prefix);
    loss_spike_note(t, epoch, loss_sum / steps);
    if (e->loader_wait_s > 0.1 * train_s && e->loader_wait_s > 1) { /* the data, not the network, set the pace */
        fflush(stdout);
        char why[160];
        if (t->train.x) snprintf(why, sizeof why, "the batch loader (augmentation) is the bottleneck");
        else snprintf(why, sizeof why, "decoding the images is the bottleneck (loader_threads=%d in the .data file; "
                      "more help while there are idle CPUs)", t->train.threads);
        fprintf(stderr, "note: the steps waited %.1f s of the epoch's %.1f s for their batches (%.0f%%): %s\n",
                e->loader_wait_s, train_s, 100 * e->loader_wait_s / train_s, why);
    }
    if (D->on && D->comm_steps) {
        printf("epoch %d all-reduce: %d ranks (%s), %.3f MB per update, %.2f ms per update, %.1f%% of the training "
               "time", epoch + 1, D->size, gsl_dist_backend(D), D->comm_bytes / D->comm_steps / 1e6,
               1e3 * D->comm_s / D->comm_steps, 100.0 * D->comm_s / (train_s > 0 ? train_s : 1e-9));
        if (D->profile)
            printf("; waiting for the slowest rank %.2f ms per update, %.1f%%", 1e3 * D->wait_s / D->comm_steps,
                   100.0 * D->wait_s / (train_s > 0 ? train_s : 1e-9));
        printf("\n");
    }
    fflush(stdout);
    return stop_after;
}

/* unreadable=skip: a line on stderr when an epoch found images it could not read. */
static void report_unreadable(trainer *t)
{
    int k = gsl_data_unreadable_count(&t->train);
    if (k <= t->unreadable_reported) return;
    int first = -1;
    for (int i = 0; i < t->train.n && first < 0; i++)
        if (t->train.unreadable[i]) first = i;
    fprintf(stderr, "darknet gsl train: %d unreadable image%s of %s skipped (unreadable=skip), e.g. line %d: %s\n", k,
            k == 1 ? "" : "s", t->train.source, t->train.line[first], t->train.path[first]);
    t->unreadable_reported = k;
}

/* The alternating schedule: per epoch a codebook rebuild when due, the steps, the checkpoint. Returns 0, 1 when a
 * signal stopped the run after writing a checkpoint, or -1 with err. */
static int run(trainer *t, const char *resume, char *err)
{
    int rc = prepare_run(t, resume, err);
    if (!rc) {
        t->t_start = gslq_now_s();
        if (t->dist->rank == 0) print_header(t);
    }
    for (int epoch = t->start_epoch; epoch < t->k.epochs && !rc; epoch++) {
        epoch_run e = {.epoch = epoch};
        if ((rc = start_epoch(t, &e, err))) {
            gsl_sampler_free(&e.smp);
            break;
        }
        rc = train_steps(t, &e, err);
        e.loader_wait_s = gsl_loader_wait_s(e.L);
        gsl_loader_stop(e.L); /* before the sampler it draws from */
        gsl_sampler_free(&e.smp);
        if (rc >= 0) report_unreadable(t);
        if (!rc) rc = finish_epoch(t, &e, err);
    }
    if (t->csv && fclose(t->csv) && !rc) rc = gsl_fail(err, "%s: write failed", t->csvpath);
    t->csv = NULL;
    return rc;
}

/* Everything a run needs before its first step: the .data and [net] keys, the backup folder locked, the replicas (or
 * this rank's network) loaded and checked against the data, and the splits in memory. 0, or -1 with err. */
/* The epochs a checkpoint manifest says are done (-1 when it cannot be read). */
static int manifest_epoch(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int ep = -1;
    while (ep < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "epoch %d", &ep) != 1) ep = -1;
    fclose(f);
    return ep;
}

static int setup_trainer(trainer *t, const gsl_args *a, const char *weights, const char *resume, char *err)
{
    gsl_dist *D = t->dist;
    if (gsl_data_cfg_read(t->datafile, &t->dc, err)) return -1;
    if (gsl_train_keys_read(t->cfgfile, &t->k, err)) return -1;
    if (a->seed_set) t->k.seed = a->seed;
    t->seed_given = a->seed_set;
    int cfg_epochs = t->k.epochs;
    if (a->epochs) t->k.epochs = a->epochs;
    if (a->threads) t->k.threads = a->threads;
    /* The backup folder is this run's alone from its lock on (rank 0 writes it). One that exists is locked at once, so
     * that a second trainer on it fails before loading anything. */
    struct stat st;
    int locked = D->rank == 0 && stat(t->dc.backup, &st) == 0 && S_ISDIR(st.st_mode);
    if (locked && gsl_folder_lock(t->dc.backup, err) < 0) return -1;
    char *base = basecfg((char *)t->cfgfile);
    snprintf(t->prefix, sizeof t->prefix, "%s/%s", t->dc.backup, base);
    free(base);
    int swept = locked ? gslq_sweep_stale(t->prefix) : 0; /* a killed save's temporaries: the folder is ours now */
    if (swept)
        fprintf(stderr, "darknet gsl train: removed %d temporar%s an interrupted save left in %s\n", swept,
                swept == 1 ? "y" : "ies", t->dc.backup);
    /* A new run where one of this cfg already is would replace its checkpoint and CSV: only when asked (-restart). */
    char ck[1100];
    snprintf(ck, sizeof ck, "%s.ckpt", t->prefix);
    if (D->rank == 0 && locked && !resume && !a->restart && access(ck, F_OK) == 0) {
        int ep = manifest_epoch(ck);
        char done[64] = "";
        if (ep >= 0) snprintf(done, sizeof done, " (%d epoch%s done)", ep, ep == 1 ? "" : "s");
        return gsl_fail(err, "%s holds a run of %s%s: resume it with `darknet gsl train %s %s %s`, or start a new "
                        "run over it with -restart (its checkpoint and CSV are replaced)", ck, t->cfgfile, done,
                        t->datafile, t->cfgfile, ck);
    }
    gsl_registry_install();
    t->nrep = a->ngpus ? a->ngpus : 1;
    const int *gpus = a->ngpus ? a->gpus : NULL;
    int ngpus = a->ngpus, dev = -1, saved_stderr = -1;
    if (D->on) { /* one replica per rank: -gpus lists the node's devices, rank i on a node takes the i-th */
        t->nrep = 1;
        if (a->ngpus) {
            dev = a->gpus[D->local_rank % a->ngpus];
            gpus = &dev;
            ngpus = 1;
        }
        if (D->rank > 0 && !D->debug) { /* one copy of Darknet's layer table is enough */
            fflush(stderr);
            int nul = open("/dev/null", O_WRONLY);
            if (nul >= 0 && (saved_stderr = dup(2)) >= 0) dup2(nul, 2);
            if (nul >= 0) close(nul);
        }
    }
    t->nets = gsl_net_load(t->cfgfile, weights, gpus, ngpus, a->clear, t->k.seed, err);
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
    }
    if (!t->nets) return -1;
    network *net = t->nets[0];
    if (scale_schedule(t, cfg_epochs, t->k.epochs, err)) return -1;
    if (gsl_dist_prepare(D, net, err)) return -1;
    if (gsl_net_trainable(net, t->cfgfile, err)) return -1;
    /* the trainer writes `classes` label values per sample into net->truth, which holds net->truths of them (the
     * last layer's truths, else its outputs: a Darknet [softmax] or [cost]) */
    if (net->truths != t->dc.classes) {
        snprintf(err, GSL_DATA_ERRLEN, "%s: the last layer ([%s]) takes %d values per sample as its truth, %s has "
                 "classes=%d: one label per class is what gsl train gives it", t->cfgfile,
                 gsl_layer_name(&net->layers[net->n - 1]), net->truths, t->datafile, t->dc.classes);
        return -1;
    }
    if (gsl_train_keys_check(&t->k, t->cfgfile, net->h, net->w, net->batch, err)) return -1;
    t->aug = (gsl_augment){t->k.flip, t->k.shift};
    if (gsl_data_load(&t->dc, GSL_SPLIT_TRAIN, net->c, net->h, net->w, &t->train, err)) return -1;
    char dup[GSL_DATA_ERRLEN];
    if (D->rank == 0 && gsl_data_duplicates_note(&t->train, dup, sizeof dup))
        fprintf(stderr, "darknet gsl train: note: %s\n", dup);
    if (t->dc.valid && t->k.eval_queries > 0 && D->rank == 0) {
        /* The per-epoch mAP needs labelled queries and database. A split none of whose images has a label (the own
         * images recipe: unlabelled lists, or IDX without its labels file) turns it off, said once; a split labelled
         * in part is an error naming the first image without a label (a typo, or a path that names two classes). */
        gsl_data *sets[2] = {&t->valid, &t->db};
        const gsl_split which[2] = {GSL_SPLIT_VALID, GSL_SPLIT_DATABASE};
        int off = 0;
        for (int k = 0; k < 2; k++) {
            if (gsl_data_load_unlabelled(&t->dc, which[k], net->c, net->h, net->w, sets[k], err)) return -1;
            int unl = 0;
            for (int i = 0; i < sets[k]->n; i++) unl += sets[k]->label[i] < 0;
            if (unl && unl < sets[k]->n) { /* the labelled loader names the line and says why */
                gsl_data_free(sets[k]);
                if (gsl_data_load(&t->dc, which[k], net->c, net->h, net->w, sets[k], err)) return -1;
            }
            if (unl && unl == sets[k]->n && !off++)
                fprintf(stderr, "darknet gsl train: no per-epoch mAP: the %s (%s) has no labels (eval_queries=0 "
                        "in [net] turns the monitor off without this note)\n", k ? "database" : "queries' split",
                        sets[k]->source);
        }
        if (off) {
            gsl_data_free(&t->valid);
            gsl_data_free(&t->db);
        } else {
            t->have_eval = 1;
        }
    }
    /* everything checked: a backup folder that is not there yet is made now (a refused run leaves none behind) */
    if (D->rank == 0 && !locked) {
        if (gsl_mkdirs(t->dc.backup, err)) return -1;
        t->made_backup = 1;
        if (gsl_folder_lock(t->dc.backup, err) < 0) return -1;
    }
    return 0;
}

/* A failed run (refused by prepare_run, or diverged in its first epoch) takes away what it put in the backup folder
 * and nothing else: a CSV without rows, and when it made the folder, its lock and the folder if that leaves it empty
 * (a checkpoint, a CSV row or anything of the user's keeps it). */
static void unmake_backup(const trainer *t)
{
    if (t->dist->rank != 0) return;
    if (t->csv_staged[0]) unlink(t->csv_staged);
    long long csv = t->csvpath[0] ? gsl_file_size(t->csvpath) : -1;
    if (csv >= 0 && csv <= (long long)strlen(CSV_HEADER)) unlink(t->csvpath);
    if (!t->made_backup) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/.gsl-train.lock", t->dc.backup);
    unlink(path);
    rmdir(t->dc.backup);
}

int gsl_train_main(int argc, char **argv)
{
    const char *usage =
        "usage: darknet gsl train DATA CFG [WEIGHTS|CHECKPOINT.ckpt] [-gpus 0,1] [-clear] [-seed N] [-epochs N]\n"
        "                          [-threads N] [-restart]\n"
        "  WEIGHTS      start from these weights (fine-tuning); CHECKPOINT.ckpt: resume that run\n"
        "  -restart     a new run where the backup folder holds one of this cfg (refused without it)\n"
        "  -gpus LIST   train on these devices (GPU=1 builds; one replica each); default: the CPU\n"
        "  -clear       reset Darknet's count of images seen (with WEIGHTS)\n"
        "  -seed N      the run's seed (default: the cfg's seed=, else 1)\n"
        "  -epochs N    epochs (default: the cfg's epochs=); the learning-rate schedule is scaled with it\n"
        "  -threads N   threads for k-means and search (default: the cfg's threads=, else 2)\n";
    gsl_args a;
    char err[GSL_DATA_ERRLEN] = "";
    if (gsl_args_parse(argc, argv, 2, 3, "-gpus -clear -seed -epochs -threads -restart", &a, err)) {
        fprintf(stderr, "darknet gsl train: %s\n%s", err, usage);
        return 2;
    }
    if (a.help) {
        fputs(usage, stdout);
        return 0;
    }
    gsl_dist dist;
    if (gsl_dist_init(&dist, err)) {
        fprintf(stderr, "darknet gsl train: error: %s\n", err);
        gsl_dist_abort(&dist, 1);
        return 1;
    }
    trainer t = {0};
    t.run = gsl_run_id();
    t.dist = &dist;
    t.datafile = a.pos[0];
    t.cfgfile = a.pos[1];
    const char *weights = a.npos > 2 ? a.pos[2] : NULL, *resume = NULL;
    if (weights && strlen(weights) > 5 && strcmp(weights + strlen(weights) - 5, ".ckpt") == 0) {
        resume = weights;
        weights = NULL;
    }
    int rc = 1;
    if (resume && a.restart) {
        fprintf(stderr, "darknet gsl train: -restart starts a new run, %s resumes one: not both\n%s", resume, usage);
        gsl_dist_abort(&dist, 2);
        return 2;
    }
    if (setup_trainer(&t, &a, weights, resume, err)) goto out;
    preempt_arm(dist.on);
    int r = run(&t, resume, err);
    if (r < 0) goto out;
    rc = 0;
    if (r > 0) {
        rc = GSL_EXIT_PREEMPTED;
        if (dist.rank == 0) {
            char by[64], at[64];
            if (preempt_signal) snprintf(by, sizeof by, "signal %d", (int)preempt_signal);
            else snprintf(by, sizeof by, "a signal to another rank");
            if (t.stopped_step) snprintf(at, sizeof at, "at epoch %d, step %d", t.stopped_epoch + 1, t.stopped_step);
            else snprintf(at, sizeof at, "after epoch %d", t.stopped_epoch);
            fprintf(stderr, "darknet gsl train: stopped by %s %s: checkpoint %s.ckpt written; resume from it (exit "
                    "%d)\n", by, at, t.prefix, GSL_EXIT_PREEMPTED);
        }
    }
out:
    if (rc && rc != GSL_EXIT_PREEMPTED) unmake_backup(&t);
    if (rc && rc != GSL_EXIT_PREEMPTED) {
        if (dist.on) fprintf(stderr, "darknet gsl train: rank %d/%d: error: %s\n", dist.rank, dist.size, err);
        else fprintf(stderr, "darknet gsl train: error: %s\n", err);
        gsl_dist_abort(&dist, 1); /* the other ranks would wait for this one until the timeout */
    }
    for (int i = 0; i < GSL_MAX_CODEBOOK_LAYERS; i++)
        if (t.pqs[i]) gslq_pq_free(t.pqs[i]);
    gsl_net_free(t.nets, t.nrep);
    gsl_data_free(&t.train);
    gsl_data_free(&t.valid);
    gsl_data_free(&t.db);
    for (int i = 0; i < GSL_MAX_CODEBOOK_LAYERS; i++) free(t.res.rows[i]);
    free(t.idx); free(t.xrows); free(t.yrows);
    gsl_data_cfg_free(&t.dc);
    gsl_dist_finalize(&dist);
    return rc;
}
