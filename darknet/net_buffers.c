/* The one walker over a network's float buffers: what checkpoints save and distributed training reduces. */
#include "net_buffers.h"

#ifdef GPU
#define DEV(l, f) ((l)->f##_gpu)
int gsl_net_on_gpu(const network *net) { return net->gpu_index >= 0; }
#else
#define DEV(l, f) ((float *)NULL)
int gsl_net_on_gpu(const network *net) { (void)net; return 0; } /* a CPU build leaves gpu_index at 0 */
#endif

void gsl_net_set_device(network *net)
{
#ifdef GPU
    if (net->gpu_index >= 0) cuda_set_device(net->gpu_index);
#else
    (void)net;
#endif
}

void gsl_buf_pull(gsl_buf b, void *ctx)
{
    (void)ctx;
#ifdef GPU
    if (b.gpu) cuda_pull_array(b.gpu, b.cpu, b.n);
#else
    (void)b;
#endif
}

void gsl_buf_push(gsl_buf b, void *ctx)
{
    (void)ctx;
#ifdef GPU
    if (b.gpu) cuda_push_array(b.gpu, b.cpu, b.n);
#else
    (void)b;
#endif
}

static void visit(float *cpu, float *gpu, size_t n, int on_gpu, gsl_buf_fn fn, void *ctx)
{
    if (!cpu || !n) return;
    fn((gsl_buf){cpu, on_gpu ? gpu : NULL, n}, ctx);
}

/* Sizes of a layer's weights and per-output arrays; 0 for layer types without trained buffers. */
static int layer_sizes(const layer *l, size_t *nw, size_t *nb)
{
    switch (l->type) {
    case CONVOLUTIONAL:
    case DECONVOLUTIONAL: *nw = (size_t)l->nweights; *nb = (size_t)l->n; return 1;
    case CONNECTED: *nw = (size_t)l->inputs * l->outputs; *nb = (size_t)l->outputs; return 1; /* nweights is 0 */
    case BATCHNORM: *nw = 0; *nb = (size_t)l->c; return 1; /* rolling statistics only: it has no update */
    default: *nw = *nb = 0; return 0;
    }
}

int gsl_net_layer_handled(const layer *l)
{
    size_t nw, nb;
    return layer_sizes(l, &nw, &nb);
}

void gsl_net_each_buffer(network *net, int kinds, gsl_buf_fn fn, void *ctx)
{
    int g = gsl_net_on_gpu(net);
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        size_t nw, nb;
        if (!layer_sizes(l, &nw, &nb)) continue;
        if ((kinds & GSL_BUF_GRAD) && l->type != BATCHNORM) {
            visit(l->weight_updates, DEV(l, weight_updates), nw, g, fn, ctx);
            visit(l->bias_updates, DEV(l, bias_updates), nb, g, fn, ctx);
            visit(l->scale_updates, DEV(l, scale_updates), nb, g, fn, ctx);
        }
        if (kinds & GSL_BUF_STATS) {
            visit(l->rolling_mean, DEV(l, rolling_mean), nb, g, fn, ctx);
            visit(l->rolling_variance, DEV(l, rolling_variance), nb, g, fn, ctx);
        }
        if (kinds & GSL_BUF_PARAMS) {
            visit(l->biases, DEV(l, biases), nb, g, fn, ctx);
            visit(l->weights, DEV(l, weights), nw, g, fn, ctx);
            visit(l->scales, DEV(l, scales), nb, g, fn, ctx);
        }
    }
}
