/* Networks for the gsl command: replicas loaded from a checked cfg and weights, a dataset embedded in inference mode,
 * the codebook layers found. */
#include "gsl_net.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gslq.h"
#include "loader.h"
#include "similarity_layer.h"

#include "codebook.h"
#include "gsl_cfg.h"
#include "registry.h"
#include "upstream_strict.h"
#include "weights_state.h"

network **gsl_net_load(const char *cfg, const char *weights, const int *gpus, int ngpus, int clear, uint64_t seed,
                       char *err)
{
    if (gsl_cfg_check(cfg, err)) return NULL; /* upstream's reader aborts or crashes on what this refuses */
    int n = gpus ? ngpus : 1;
    network **nets = calloc(n, sizeof *nets);
    if (!nets) { gsl_fail(err, "out of memory"); return NULL; }
    for (int r = 0; r < n; r++) {
#ifdef GPU
        if (gpus) { gpu_index = gpus[r]; cuda_set_device(gpus[r]); }
        else gpu_index = -1;
#else
        if (gpus && gpus[r] >= 0) {
            gsl_fail(err, "-gpus given, but this binary was built without GPU=1");
            gsl_net_free(nets, r);
            return NULL;
        }
#endif
        srand((unsigned)seed);
        if (gsl_cfg_strict_begin) gsl_cfg_strict_begin(cfg);
        nets[r] = parse_network_cfg((char *)cfg);
        if (gsl_cfg_strict_end) gsl_cfg_strict_end();
        if (weights) {
            /* checked once: the replicas share the cfg, so the file fits them all */
            if (r == 0 && gsl_weights_check(nets[r], weights, err)) { gsl_net_free(nets, r + 1); return NULL; }
            load_weights(nets[r], (char *)weights);
        }
        if (clear) *nets[r]->seen = 0;
#ifdef GSL_GPU_CONV
        if (nets[r]->gpu_index >= 0) {
            const char *mb = getenv("GSL_GPU_CONV_WORKSPACE_MB");
            long lim = 256;
            if (mb && *mb) {
                char *end;
                errno = 0;
                lim = strtol(mb, &end, 10);
                if (end == mb || *end || errno || lim < 1 || lim > (1L << 20)) {
                    gsl_fail(err, "GSL_GPU_CONV_WORKSPACE_MB must be a number of MB in 1..1048576, got '%s'", mb);
                    gsl_net_free(nets, r + 1);
                    return NULL;
                }
            }
            size_t f = gsl_conv_gpu_reserve(nets[r], (size_t)lim << 20);
            if (r == 0 && f)
                fprintf(stderr, "GPU convolutions: batched, workspace %.1f MB per network (GSL_GPU_CONV_WORKSPACE_MB=%ld)\n",
                        f * sizeof(float) / 1048576.0, lim);
            else if (r == 0)
                fprintf(stderr, "GPU convolutions: one image per call\n");
        }
#endif
    }
    return nets;
}

void gsl_free_network(network *net)
{
    if (!net) return;
    /* Darknet's free_network leaves these behind (LeakSanitizer reports them in SANITIZE=1 builds). */
    free(net->seen);
    free(net->t);
    free(net->cost);
    free(net->steps);
    free(net->scales);
#ifdef GSL_GPU_CONV
    gsl_conv_gpu_release(net);
#endif
#ifdef GPU
    if (net->gpu_index >= 0) cuda_free(net->workspace);
    else
#endif
        free(net->workspace);
    free_network(net);
}

void gsl_net_free(network **nets, int n)
{
    if (!nets) return;
    for (int r = 0; r < n; r++) gsl_free_network(nets[r]);
    free(nets);
}

int gsl_net_embedding_layer(const network *net) { return net->n >= 2 ? net->n - 2 : 0; }

int gsl_net_codebook_layers(const network *net, int *idx)
{
    int k = 0;
    for (int i = 0; i < net->n && k < GSL_MAX_CODEBOOK_LAYERS; i++)
        if (gsl_layer_has_codebook(&net->layers[i])) idx[k++] = i;
    return k;
}

/* The loader's job for gsl_net_embed: batch `job` of the samples (the last one padded with its last sample). */
typedef struct {
    const gsl_data *d;
    const int *idx;
    int n, B;
} embed_job_ctx;

static int embed_job(void *ctx, long job, float *x, float *y, char *err)
{
    const embed_job_ctx *c = ctx;
    int s = (int)job * c->B, m = c->n - s < c->B ? c->n - s : c->B;
    int *bi = malloc(sizeof(int) * (size_t)c->B);
    if (!bi) return gsl_fail(err, "out of memory");
    for (int i = 0; i < c->B; i++) {
        int r = s + (i < m ? i : m - 1);
        bi[i] = c->idx ? c->idx[r] : r;
    }
    (void)y; /* inference needs no labels */
    int rc = gsl_data_gather(c->d, bi, c->B, x, NULL, err);
    free(bi);
    return rc;
}

int gsl_net_embed_each(network *net, const gsl_data *d, const int *idx, int n, int upto, const char *progress,
                       gsl_embed_sink sink, void *ctx, char *err)
{
    if (upto < 0 || upto >= net->n) return gsl_fail(err, "embed: layer %d out of range", upto);
    int B = net->batch, dim = net->inputs, od = net->layers[upto].outputs;
    if (d->c * d->h * d->w != dim)
        return gsl_fail(err, "data samples have %d values, the network's input takes %d", d->c * d->h * d->w, dim);
    if (n <= 0) return 0;
    double every = 10; /* seconds between progress lines: GSL_PROGRESS_S */
    const char *ev = progress ? getenv("GSL_PROGRESS_S") : NULL;
    if (ev && *ev) {
        char *end;
        errno = 0;
        every = strtod(ev, &end);
        if (end == ev || *end || errno || !(every > 0) || !isfinite(every))
            return gsl_fail(err, "GSL_PROGRESS_S must be a positive number of seconds, got '%s'", ev);
    }
    /* the next batches are read (and decoded, for image lists) on a thread while this one runs */
    embed_job_ctx job = {d, idx, n, B};
    long jobs = (n + B - 1) / B;
    gsl_loader *L = gsl_loader_start(embed_job, &job, jobs, (size_t)B * dim, 0, 3, err);
    if (!L) return -1;
    double t0 = gslq_now_s(), last = t0;
    int rc = 0;
    for (int s = 0; s < n && !rc; s += B) {
        int m = n - s < B ? n - s : B;
        float *bx, *by;
        if ((rc = gsl_loader_next(L, &bx, &by, err))) break;
        memcpy(net->input, bx, sizeof(float) * (size_t)B * dim);
        network t = *net;
        t.train = 0;
        t.truth = NULL;
        t.delta = NULL;
        t.input = net->input;
#ifdef GPU
        if (net->gpu_index >= 0) {
            cuda_set_device(net->gpu_index);
            cuda_push_array(net->input_gpu, net->input, (size_t)dim * B);
            t.input_gpu = net->input_gpu;
            t.truth_gpu = NULL;
            t.delta_gpu = NULL;
            for (int i = 0; i <= upto; i++) {
                t.index = i;
                layer l = net->layers[i];
                l.forward_gpu(l, t);
                t.input_gpu = l.output_gpu;
                t.input = l.output;
            }
            cuda_pull_array(net->layers[upto].output_gpu, net->layers[upto].output, (size_t)od * B);
        } else
#endif
        {
            for (int i = 0; i <= upto; i++) {
                t.index = i;
                layer l = net->layers[i];
                l.forward(l, t);
                t.input = l.output;
            }
        }
        float *rows = net->layers[upto].output;
        for (size_t i = 0; i < (size_t)od * m; i++)
            if (!isfinite(rows[i])) {
                rc = gsl_fail(err, "the embedding of sample %d is not finite: the network's weights are broken (a "
                              "diverged run?)", s + (int)(i / od));
                break;
            }
        if (!rc) rc = sink(ctx, s, m, rows, err);
        double now = gslq_now_s();
        if (progress && (now - last >= every || (s + m == n && now - t0 >= every))) {
            fprintf(stderr, "%s: %d of %d images (%.0f%%), %.0f images/s\n", progress, s + m, n, 100.0 * (s + m) / n,
                    (s + m) / (now - t0 > 1e-9 ? now - t0 : 1e-9));
            last = now;
        }
    }
    gsl_loader_stop(L);
    return rc;
}

typedef struct {
    float *out;
    int od;
} copy_sink_ctx;

static int copy_sink(void *ctx, int first, int m, float *rows, char *err)
{
    const copy_sink_ctx *c = ctx;
    (void)err;
    memcpy(c->out + (size_t)first * c->od, rows, sizeof(float) * (size_t)c->od * m);
    return 0;
}

int gsl_net_embed(network *net, const gsl_data *d, const int *idx, int n, int upto, const char *progress, float *out,
                  char *err)
{
    copy_sink_ctx c = {out, upto >= 0 && upto < net->n ? net->layers[upto].outputs : 0};
    return gsl_net_embed_each(net, d, idx, n, upto, progress, copy_sink, &c, err);
}


int gsl_net_similarity_is_cosine(const network *net)
{
    if (net->n < 1) return 0;
    const similarity_state *st = similarity_layer_state(&net->layers[net->n - 1]);
    return st && st->type == SIM_COSINE;
}

int gsl_net_trainable(const network *net, const char *cfg, char *err)
{
    const layer *last = &net->layers[net->n - 1];
    if (!last->cost)
        return gsl_fail(err, "%s: the last layer ([%s]) computes no loss: gsl train needs a loss layer last "
                        "([similarity], or Darknet's [softmax], [cost] or [logistic])", cfg, gsl_layer_name(last));
    int learns = 0; /* a layer with weights: Darknet gives exactly those an update function */
    for (int i = 0; i < net->n; i++) learns |= net->layers[i].update != NULL;
    if (!learns)
        return gsl_fail(err, "%s: no layer has weights to learn (a [convolutional] or [connected] layer below the "
                        "loss): training would change nothing", cfg);
    return 0;
}

uint32_t gsl_net_signature(const network *net)
{
    uint32_t h = GSL_FNV1A_INIT; /* over "type inputs outputs;" per layer */
    char buf[160];
    for (int i = 0; i < net->n; i++) {
        int n = snprintf(buf, sizeof buf, "%s %d %d;", gsl_layer_name(&net->layers[i]), net->layers[i].inputs,
                         net->layers[i].outputs);
        h = gsl_fnv1a(h, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf);
    }
    return h;
}
