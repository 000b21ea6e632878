/* [similarity]: the pairwise similarity loss over the batch (DESIGN.md, "The layers"; docs/layers.md).
 *
 * The last layer of a network. Input X (B, D): the embeddings; labels T (B, classes) from net.truth, one-hot or
 * multi-hot: samples i and j are similar (s_ij = 1) when they share a label (t > 0.5 in both). All pair terms come
 * from one Gram matrix G = X X^T (one sgemm, B x B); the gradient is dL/dX = C X (a second sgemm) with C (B, B)
 * the coefficient matrix that each loss fills. Forward copies X to l.output, and with a truth sets l.cost[0] and
 * l.delta = -dL/dX for every sample; backward adds l.delta into net.delta.
 *
 * Losses (D_ij = |x_i - x_j|^2 = G_ii + G_jj - 2 G_ij, d_ij = sqrt(D_ij + eps), cos_ij = G_ij / (n_i n_j) with
 * n_i = sqrt(G_ii + eps), eps = SIM_EPS):
 *   contrastive: l_ij = s_ij D_ij + (1 - s_ij) max(0, margin - d_ij)^2
 *   cosine:      l_ij = (cos_ij - s_ij)^2                         (DQN's pairwise cosine loss, targets 1 / 0)
 *   triplet:     l_apn = max(0, margin + d_ap - d_an) over anchors a, positives p (s = 1, p != a), negatives n
 *                mining=hard: per anchor the farthest positive and the nearest negative only
 *                mining=all:  every (a, p, n)
 *   nca:         l_i = -log( sum_{p: s_ip = 1, p != i} exp(-D_ip) / sum_{j != i} exp(-D_ij) )
 *                (neighbourhood components analysis over the batch: the probability that i's stochastic nearest
 *                neighbour shares its label; on squared distances, as the search ranks them; the scale of the
 *                embedding is the temperature; anchors without a positive: 0)
 * Normalisation (Darknet's: a cost is a sum over the samples of the batch, the weight update divides by the batch):
 *   contrastive, cosine: L = sum_i (1/(B-1)) sum_{j != i} l_ij     (B x the mean over the B(B-1)/2 pairs)
 *   triplet hard:        L = sum_a l_a                             (anchors without a positive or a negative: 0)
 *   triplet all:         L = B x the mean of l_apn over the triplets with l_apn > 0 (0 when there are none)
 *   nca:                 L = sum_i l_i
 *
 * cfg keys: classes (required: the width of the truth; Darknet sizes net->truth from the last layer's l.truths),
 * type (contrastive | cosine | triplet | nca, default contrastive), margin (contrastive and triplet, > 0; defaults 1
 * and 0.2), mining (triplet only: hard | all, default hard). */
#ifndef GSL_SIMILARITY_LAYER_H
#define GSL_SIMILARITY_LAYER_H

#include <math.h>

#include "darknet.h"
#include "gsl_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIM_EPS 1e-8f

typedef enum { SIM_CONTRASTIVE = 0, SIM_COSINE = 1, SIM_TRIPLET = 2, SIM_NCA = 3 } sim_type;
typedef enum { SIM_MINING_HARD = 0, SIM_MINING_ALL = 1 } sim_mining;

/* The layer's private state: l.state points at it (one block: this struct, then the arrays). */
typedef struct similarity_state {
    sim_type type;
    sim_mining mining;
    float margin;
    int classes;
    int max_batch;
    /* host arrays */
    float *gram;     /* (B, B) G = X X^T */
    float *same;     /* (B, B) s_ij in {0, 1} */
    float *coef;     /* (B, B) C: dL/dX = C X */
    float *w;        /* (B, B) triplet, nca: row a holds dL/dD_aj of anchor a's terms, before normalisation */
    float *rowcost;  /* (B) */
    float *rowcount; /* (B) triplet: active triplets per anchor */
    /* device block (GPU builds, gpu_index >= 0 at parse time) */
    int device;
    float *gram_gpu, *same_gpu, *coef_gpu, *w_gpu, *rowcost_gpu, *rowcount_gpu;
    float *tot_gpu;  /* (4): sum of row costs, sum of row counts, scale, cost */
} similarity_state;

layer make_similarity_layer(int batch, int inputs, int classes, sim_type type, sim_mining mining, float margin);
void forward_similarity_layer(layer l, network net);
void backward_similarity_layer(layer l, network net);
#ifdef GPU
void forward_similarity_layer_gpu(layer l, network net);
void backward_similarity_layer_gpu(layer l, network net);
#endif

int gsl_is_similarity_layer(const layer *l);
similarity_state *similarity_layer_state(const layer *l);
const char *sim_type_name(sim_type t);
void similarity_layer_register(void);

/* ---- per-pair math, shared by the CPU path and the CUDA kernels ---- */

/* 1 when two samples share a label (t > 0.5 in both rows of C classes). */
static inline GSL_HD int sim_share_label(const float *ti, const float *tj, int C)
{
    for (int c = 0; c < C; c++)
        if (ti[c] > 0.5f && tj[c] > 0.5f) return 1;
    return 0;
}

/* Squared distance from the Gram matrix (clamped at 0 against rounding). */
static inline GSL_HD float sim_sqdist(float gii, float gjj, float gij)
{
    float D = gii + gjj - 2 * gij;
    return D > 0 ? D : 0;
}

/* Contrastive term of one pair: returns l_ij and sets *dl = dl_ij / dD_ij. */
static inline GSL_HD float sim_contrastive_pair(float D, int same, float margin, float *dl)
{
    if (same) { *dl = 1; return D; }
    float d = sqrtf(D + SIM_EPS), h = margin - d;
    if (h <= 0) { *dl = 0; return 0; }
    *dl = -h / d;
    return h * h;
}

/* Triplet term of (a, p, n): returns max(0, margin + d_ap - d_an); when active sets *wp = dl/dD_ap and
 * *wn = dl/dD_an (else both 0). */
static inline GSL_HD float sim_triplet_term(float Dap, float Dan, float margin, float *wp, float *wn)
{
    float dap = sqrtf(Dap + SIM_EPS), dan = sqrtf(Dan + SIM_EPS);
    float h = margin + dap - dan;
    if (h <= 0) { *wp = 0; *wn = 0; return 0; }
    *wp = 0.5f / dap;
    *wn = -0.5f / dan;
    return h;
}

/* NCA weight of a pair from its squared distance D (relative to the row's smallest, Dmin, for range): e = exp(Dmin - D).
 * With Z = the sum of e over j != i and Zp that over the positives, l_i = log Z - log Zp and
 * dl_i/dD_ij = s_ij e_ij / Zp - e_ij / Z. */
static inline GSL_HD float sim_nca_weight(float D, float Dmin) { return expf(Dmin - D); }

#ifdef __cplusplus
}
#endif
#endif
