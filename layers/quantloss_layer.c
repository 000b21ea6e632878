/* [quantloss]: CPU reference path, construction and cfg parsing. The CUDA path is quantloss_layer_kernels.cu. */
#include "quantloss_layer.h"

#include <stdio.h>

#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif

int gsl_is_quantloss_layer(const layer *l) { return l && l->forward == forward_quantloss_layer; }

quantloss_state *quantloss_layer_state(const layer *l)
{
    return gsl_is_quantloss_layer(l) ? (quantloss_state *)l->state : NULL;
}

int quantloss_layer_set_codebook(layer *l, const gslq_pq *pq, char *err)
{
    quantloss_state *s = quantloss_layer_state(l);
    return gsl_codebook_set_typed(s ? &s->cb : NULL, "quantloss", pq, err);
}

layer make_quantloss_layer(int batch, int inputs, int subspaces, int codewords, float lambda)
{
    layer l;
    quantloss_state *s = gsl_codebook_layer_make(&l, sizeof(quantloss_state), forward_quantloss_layer,
                                                 backward_quantloss_layer, batch, inputs, subspaces, codewords,
                                                 "quantloss");
    s->lambda = lambda;
#ifdef GPU
    l.backward_gpu = backward_quantloss_layer_gpu;
#endif
    fprintf(stderr, "quantloss    %4d x %3d codewords, lambda %g\n", subspaces, codewords, lambda);
    return l;
}

/* The identity (codebook.c); a function of its own because the layer's type is told by its forward function. */
void forward_quantloss_layer(layer l, network net) { gsl_codebook_forward(l, net); }

void backward_quantloss_layer(layer l, network net)
{
    /* l.output (B, D) = x; l.delta (B, D) = d from above; net.delta (B, D) += d + lambda (Q(x) - x) (or NULL) */
    quantloss_state *s = (quantloss_state *)l.state;
    gsl_codebook *cb = &s->cb;
    gsl_codebook_pass p; /* x rotated by R when the codebook has a rotation; d = l.delta as it came */
    if (!gsl_codebook_backward_prologue(cb, l, net, 0, &p)) return;
    /* Without a rotation the update goes straight into net.delta; with one, Q(x) - x is formed in the rotated
     * space (p.diff) and rotated back. */
    int B = l.batch, D = l.inputs, M = cb->M, ds = cb->dsub;
    double qerr = 0;
    for (int b = 0; b < B; b++) {
        for (int m = 0; m < M; m++) {
            size_t o = (size_t)b * D + (size_t)m * ds;
            int idx;
            float dist2;
            gslq_pq_nearest(&cb->pq, m, p.x + o, 1, &idx, &dist2);
            qerr += dist2;
            const float *c = cb->pq.centroids + ((size_t)m * cb->K + idx) * ds;
            quantloss_subvector(s->lambda, ds, p.x + o, p.d + o, c, p.out + o, p.diff);
        }
    }
    gsl_codebook_backward_epilogue(cb, l, net, s->lambda, 0, qerr); /* net.delta += d + lambda R^T (c - y) */
}

/* ---- cfg ---- */

static int parse_quantloss(const gsl_section *sec, layer *out, char *err)
{
    static const char *const keys[] = {"lambda", NULL};
    int M, K;
    float lambda;
    if (gsl_codebook_parse_shape(sec, keys, &M, &K, err)) return -1;
    if (gsl_opt_float(sec, "lambda", 0.1f, 0, 0.0f, 1000.0f, &lambda, err)) return -1;
    gsl_rebuild_cfg rb;
    if (gsl_codebook_parse_rebuild(sec, K, &rb, err)) return -1;
    if (gsl_codebook_parse_batch(sec, err)) return -1;
    *out = make_quantloss_layer(sec->batch, sec->inputs, M, K, lambda);
    gsl_codebook_keep_shape(sec, out);
    gsl_codebook_rebuild_attach((gsl_codebook *)out->state, sec->cfg, sec->index, &rb);
    return 0;
}

void quantloss_layer_register(void) { gsl_registry_add("quantloss", parse_quantloss); }
