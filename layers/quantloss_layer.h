/* [quantloss]: the quantization-loss baseline (DQN-style), which the paper argues against; for the ablation.
 *
 * Forward: the identity. Backward: d' = d + lambda (Q(x) - x), with Q(x) the PQ reconstruction of x (nearest
 * codeword of every sub-space, in the rotated space when the codebook has an OPQ rotation): d' is the descent
 * direction of L + (lambda / 2) |x - Q(x)|^2 with the assignment held fixed. Same codebook handling as [snap]
 * (codebook.h): pass-through until a codebook is installed; the statistics report the quantization error.
 * The layer sets no cost (Darknet averages l.cost over the layers that have one, which would mix this term into
 * the similarity loss); the trainer reads lambda/2 * qerr from gsl_layer_get_stats if it wants the term.
 *
 * cfg keys: subspaces (required, divides the input size), codewords (2..256, default 256), lambda (0..1000,
 * default 0.1). */
#ifndef GSL_QUANTLOSS_LAYER_H
#define GSL_QUANTLOSS_LAYER_H

#include "codebook.h"
#include "darknet.h"
#include "gsl_cuda.h"
#include "gslq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The layer's private state: l.state points at it (one block: this struct, then the codebook's host arrays). */
typedef struct quantloss_state {
    gsl_codebook cb; /* first member: codebook.c reads it through l.state */
    float lambda;
} quantloss_state;

layer make_quantloss_layer(int batch, int inputs, int subspaces, int codewords, float lambda);
void forward_quantloss_layer(layer l, network net);
void backward_quantloss_layer(layer l, network net);
#ifdef GPU
void backward_quantloss_layer_gpu(layer l, network net);
#endif

int gsl_is_quantloss_layer(const layer *l);
quantloss_state *quantloss_layer_state(const layer *l);
int quantloss_layer_set_codebook(layer *l, const gslq_pq *pq, char *err);
void quantloss_layer_register(void);

/* ---- per-sub-vector math, shared by the CPU path and the CUDA kernel ----
 * x, d (dsub), c = the nearest codeword. diff = 0: out += d + lambda (c - x); diff = 1: out = c - x. */
static inline GSL_HD void quantloss_subvector(float lambda, int dsub, const float *x, const float *d,
                                              const float *c, float *out, int diff)
{
    for (int j = 0; j < dsub; j++) {
        float e = GSL_FSUB(c[j], x[j]);
        if (diff) out[j] = e;
        else out[j] = GSL_FADD(out[j], GSL_FADD(d[j], GSL_FMUL(lambda, e)));
    }
}

#ifdef __cplusplus
}
#endif
#endif
