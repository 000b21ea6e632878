/* [quantloss]: CPU reference path, construction and cfg parsing. The CUDA path is quantloss_layer_kernels.cu. */
#include "quantloss_layer.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif

#define QUANTLOSS_MAX_DSUB 8192 /* as [snap]: the CUDA kernel stages sub-codebooks in shared memory */

int gsl_is_quantloss_layer(const layer *l) { return l && l->forward == forward_quantloss_layer; }

quantloss_state *quantloss_layer_state(const layer *l)
{
    return gsl_is_quantloss_layer(l) ? (quantloss_state *)l->state : NULL;
}

int quantloss_layer_set_codebook(layer *l, const gslq_pq *pq, char *err)
{
    quantloss_state *s = quantloss_layer_state(l);
    if (!s) {
        if (err) snprintf(err, GSL_ERRLEN, "not a [quantloss] layer");
        return -1;
    }
    return gsl_codebook_set(&s->cb, pq, err);
}

layer make_quantloss_layer(int batch, int inputs, int subspaces, int codewords, float lambda)
{
    layer l;
    quantloss_state *s =
        gsl_codebook_layer_make(&l, sizeof(quantloss_state), batch, inputs, subspaces, codewords, "quantloss");
    s->lambda = lambda;
    l.forward = forward_quantloss_layer;
    l.backward = backward_quantloss_layer;
#ifdef GPU
    l.forward_gpu = forward_quantloss_layer_gpu;
    l.backward_gpu = backward_quantloss_layer_gpu;
#endif
    fprintf(stderr, "quantloss    %4d x %3d codewords, lambda %g\n", subspaces, codewords, lambda);
    return l;
}

void forward_quantloss_layer(layer l, network net)
{
    /* net.input (B, D) -> l.output (B, D): the identity */
    memcpy(l.output, net.input, (size_t)l.batch * l.inputs * sizeof(float));
}

void backward_quantloss_layer(layer l, network net)
{
    /* l.output (B, D) = x; l.delta (B, D) = d from above; net.delta (B, D) += d + lambda (Q(x) - x) (or NULL) */
    quantloss_state *s = (quantloss_state *)l.state;
    gsl_codebook *cb = &s->cb;
    int B = l.batch, D = l.inputs, M = cb->M, ds = cb->dsub;
    GSL_INVARIANT(B <= cb->max_batch);
    if (!cb->installed) {
        if (net.delta) axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        return;
    }
    const float *x = l.output;
    int rotated = cb->pq.rotation != NULL;
    if (rotated) {
        gslq_pq_rotate(&cb->pq, x, cb->xr, (size_t)B);
        x = cb->xr;
    }
    /* Without a rotation the update goes straight into net.delta; with one, Q(x) - x is formed in the rotated
     * space (er) and rotated back. */
    int diff = rotated || !net.delta;
    float *out = diff ? cb->er : net.delta;
    double qerr = 0;
    for (int b = 0; b < B; b++) {
        for (int m = 0; m < M; m++) {
            size_t o = (size_t)b * D + (size_t)m * ds;
            int idx;
            float dist2;
            gslq_pq_nearest(&cb->pq, m, x + o, 1, &idx, &dist2);
            qerr += dist2;
            const float *c = cb->pq.centroids + ((size_t)m * cb->K + idx) * ds;
            quantloss_subvector(s->lambda, ds, x + o, l.delta + o, c, out + o, diff);
        }
    }
    if (rotated && net.delta) { /* net.delta += d + lambda R^T (c - y) */
        axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        if (s->lambda != 0) {
            gslq_pq_unrotate(&cb->pq, cb->er, cb->tmp, (size_t)B);
            axpy_cpu(B * D, s->lambda, cb->tmp, 1, net.delta, 1);
        }
    }
    cb->acc[1] += qerr;
    cb->acc[2] = 0;
    cb->acc[3] = qerr;
    gsl_codebook_count_pass(cb, B, 0);
}

/* ---- cfg ---- */

static int parse_quantloss(const gsl_section *sec, layer *out, char *err)
{
    static const char *const keys[] = {"subspaces", "codewords", "lambda", NULL};
    if (gsl_opt_check_unknown(sec, keys, err)) return -1;
    int D = sec->inputs;
    if (D < 1) {
        snprintf(err, GSL_ERRLEN, "the layer before gives no inputs (inputs=%d)", D);
        return -1;
    }
    int M, K;
    float lambda;
    if (gsl_opt_int(sec, "subspaces", 0, 1, 1, 65535, &M, err)) return -1; /* 65535: a CUDA grid dimension */
    if (M > D || D % M) {
        snprintf(err, GSL_ERRLEN, "key 'subspaces': %d does not divide the input size %d", M, D);
        return -1;
    }
    if (D / M > QUANTLOSS_MAX_DSUB) {
        snprintf(err, GSL_ERRLEN, "key 'subspaces': sub-vectors of %d floats are too long (at most %d)", D / M,
                 QUANTLOSS_MAX_DSUB);
        return -1;
    }
    if (gsl_opt_int(sec, "codewords", 256, 0, 2, 256, &K, err)) return -1;
    if (gsl_opt_float(sec, "lambda", 0.1f, 0, 0.0f, 1000.0f, &lambda, err)) return -1;
    if (sec->batch < 1) {
        snprintf(err, GSL_ERRLEN, "batch %d: must be >= 1", sec->batch);
        return -1;
    }
    layer l = make_quantloss_layer(sec->batch, D, M, K, lambda);
    if (sec->h * sec->w * sec->c == D) {
        l.h = l.out_h = sec->h;
        l.w = l.out_w = sec->w;
        l.c = l.out_c = sec->c;
    }
    *out = l;
    return 0;
}

void quantloss_layer_register(void) { gsl_registry_add("quantloss", parse_quantloss); }
