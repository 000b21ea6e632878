/* [snap]: the gradient snapping layer (DESIGN.md, "The layers"; formulas in docs/layers.md).
 *
 * Forward: the identity (output = copy of the input). Backward, for each sample and each of the M sub-spaces, with
 * x_m the sub-vector of the input and d_m = -dL/dx_m the descent direction from above (both rotated by R first when
 * the codebook carries an OPQ rotation, the correction rotated back by R^T):
 *   candidates: the `neighbors` codewords nearest to x_m (rotate, project), or the one nearest to x_m + eta d_m
 *   (lookahead); c* = the candidate whose v = c - x_m has the largest cosine with d_m (ties: the nearer one);
 *   when |d_m| = 0, alpha = 0, or no candidate has a positive cosine, d_m passes unchanged; else
 *     rotate:    d'_m = (1 - alpha) d_m + alpha |d_m| v/|v|
 *     project:   d'_m = (1 - alpha) d_m + alpha (d_m . v/|v|) v/|v|
 *     lookahead: d'_m = d_m + alpha v
 *   and d' is added into net.delta.
 * Until a codebook is installed (gsl_layer_set_codebook / snap_layer_set_codebook) the backward is an exact
 * pass-through. Each backward pass with a codebook counts the snapped sub-vectors and the quantization error of
 * the input (gsl_layer_get_stats in codebook.h).
 *
 * cfg keys: subspaces (required, divides the input size), codewords (2..256, default 256), neighbors (1..codewords,
 * default min(8, codewords); not with lookahead), mode (rotate | project | lookahead, default rotate), alpha
 * (rotate/project: 0..1, lookahead: 0..1000; default 0.5), eta (lookahead only, > 0, default 1). */
#ifndef GSL_SNAP_LAYER_H
#define GSL_SNAP_LAYER_H

#include <math.h>

#include "codebook.h"
#include "darknet.h"
#include "gsl_cuda.h"
#include "gslq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SNAP_ROTATE = 0, SNAP_PROJECT = 1, SNAP_LOOKAHEAD = 2 } snap_mode;

/* The layer's private state: l.state points at it (one block: this struct, then the codebook's host arrays). */
typedef struct snap_state {
    gsl_codebook cb; /* first member: codebook.c reads it through l.state */
    snap_mode mode;
    int neighbors;   /* candidates for rotate/project; 1 for lookahead */
    float alpha, eta;
} snap_state;

/* Makes a [snap] layer for `batch` samples of `inputs` floats (shape 1 x 1 x inputs). Parameters as the cfg keys;
 * they are not checked here (the cfg parser checks them). Allocates the device state in GPU builds when
 * gpu_index >= 0. */
layer make_snap_layer(int batch, int inputs, int subspaces, int codewords, int neighbors, snap_mode mode,
                      float alpha, float eta);
void forward_snap_layer(layer l, network net);
void backward_snap_layer(layer l, network net);
#ifdef GPU
void backward_snap_layer_gpu(layer l, network net);
#endif

/* 1 for a [snap] layer (made by make_snap_layer or parsed from a cfg). */
int gsl_is_snap_layer(const layer *l);
/* The layer's state (NULL for other layers). */
snap_state *snap_layer_state(const layer *l);
/* Same as gsl_layer_set_codebook, for a [snap] layer. */
int snap_layer_set_codebook(layer *l, const gslq_pq *pq, char *err);
const char *snap_mode_name(snap_mode m);
/* Registers the [snap] section with the plugin registry. */
void snap_layer_register(void);

/* ---- per-sub-vector math, shared by the CPU path and the CUDA kernel ---- */

/* For one sub-vector x (dsub) with descent direction d (dsub): picks c* among the nc candidate codewords idx[]
 * (rows of cm, the sub-codebook (K, dsub)) and writes the snapped direction:
 *   diff = 0: out += d'   (out is net.delta's sub-vector)
 *   diff = 1: out  = d' - d (the correction, 0 where nothing is snapped)
 * Returns 1 when d was snapped, 0 when it passes unchanged. */
static inline GSL_HD int snap_subvector(int mode, float alpha, int dsub, const float *x, const float *d,
                                        const float *cm, const int *idx, int nc, float *out, int diff)
{
    float dn2 = 0;
    for (int j = 0; j < dsub; j++) dn2 = GSL_FADD(dn2, GSL_FMUL(d[j], d[j]));
    int best = -1;
    float best_dv = 0, best_vn = 0, best_score = 0; /* score = cos * |d| = d.v / |v|; must be > 0 */
    if (dn2 > 0 && alpha > 0) {
        for (int i = 0; i < nc; i++) {
            const float *c = cm + (size_t)idx[i] * dsub;
            float vv = 0, dv = 0;
            for (int j = 0; j < dsub; j++) {
                float v = GSL_FSUB(c[j], x[j]);
                vv = GSL_FADD(vv, GSL_FMUL(v, v));
                dv = GSL_FADD(dv, GSL_FMUL(d[j], v));
            }
            if (!(vv > 0)) continue; /* x sits on this codeword: no direction */
            float vn = sqrtf(vv);
            float score = dv / vn;
            if (score > best_score) { best = i; best_score = score; best_dv = dv; best_vn = vn; }
        }
    }
    if (best < 0) {
        for (int j = 0; j < dsub; j++) {
            if (diff) out[j] = 0;
            else out[j] = GSL_FADD(out[j], d[j]);
        }
        return 0;
    }
    const float *c = cm + (size_t)idx[best] * dsub;
    float dn = sqrtf(dn2);
    float proj = best_dv / best_vn; /* d . u, u = v / |v| */
    for (int j = 0; j < dsub; j++) {
        float v = GSL_FSUB(c[j], x[j]);
        float u = v / best_vn;
        float e; /* d'_j - d_j */
        if (mode == SNAP_ROTATE) e = GSL_FMUL(alpha, GSL_FSUB(GSL_FMUL(dn, u), d[j]));
        else if (mode == SNAP_PROJECT) e = GSL_FMUL(alpha, GSL_FSUB(GSL_FMUL(proj, u), d[j]));
        else e = GSL_FMUL(alpha, v);
        if (diff) out[j] = e;
        else out[j] = GSL_FADD(out[j], GSL_FADD(d[j], e));
    }
    return 1;
}

/* Keeps the k smallest (dist, index) pairs seen so far in bd/bi (ascending; *n of them), visiting indices in
 * increasing order: an equal distance never displaces an earlier index (the order of gslq_pq_nearest). */
static inline GSL_HD void snap_topk_insert(float s, int index, float *bd, int *bi, int *n, int k)
{
    if (*n == k && !(s < bd[k - 1])) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && s < bd[i - 1]) { bd[i] = bd[i - 1]; bi[i] = bi[i - 1]; i--; }
    bd[i] = s;
    bi[i] = index;
}

#ifdef __cplusplus
}
#endif
#endif
