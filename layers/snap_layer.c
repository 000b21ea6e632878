/* [snap]: CPU reference path, construction and cfg parsing. The CUDA path is snap_layer_kernels.cu. */
#include "snap_layer.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "option_list.h"
#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif

/* Longest sub-vector: the CUDA kernel stages sub-codebooks in 32 KiB of shared memory, one codeword at least. */
#define SNAP_MAX_DSUB 8192

const char *snap_mode_name(snap_mode m)
{
    switch (m) {
    case SNAP_ROTATE: return "rotate";
    case SNAP_PROJECT: return "project";
    case SNAP_LOOKAHEAD: return "lookahead";
    }
    return "?";
}

int gsl_is_snap_layer(const layer *l) { return l && l->forward == forward_snap_layer; }

snap_state *snap_layer_state(const layer *l) { return gsl_is_snap_layer(l) ? (snap_state *)l->state : NULL; }

int snap_layer_set_codebook(layer *l, const gslq_pq *pq, char *err)
{
    snap_state *s = snap_layer_state(l);
    if (!s) {
        if (err) snprintf(err, GSL_ERRLEN, "not a [snap] layer");
        return -1;
    }
    return gsl_codebook_set(&s->cb, pq, err);
}

layer make_snap_layer(int batch, int inputs, int subspaces, int codewords, int neighbors, snap_mode mode,
                      float alpha, float eta)
{
    layer l;
    snap_state *s = gsl_codebook_layer_make(&l, sizeof(snap_state), batch, inputs, subspaces, codewords, "snap");
    s->mode = mode;
    s->neighbors = mode == SNAP_LOOKAHEAD ? 1 : neighbors;
    s->alpha = alpha;
    s->eta = eta;
    l.forward = forward_snap_layer;
    l.backward = backward_snap_layer;
#ifdef GPU
    l.forward_gpu = forward_snap_layer_gpu;
    l.backward_gpu = backward_snap_layer_gpu;
#endif
    fprintf(stderr, "snap         %4d x %3d codewords, %s, alpha %g", subspaces, codewords, snap_mode_name(mode),
            alpha);
    if (mode == SNAP_LOOKAHEAD) fprintf(stderr, ", eta %g\n", eta);
    else fprintf(stderr, ", %d neighbours\n", s->neighbors);
    return l;
}

void forward_snap_layer(layer l, network net)
{
    /* net.input (B, D) -> l.output (B, D): the identity */
    memcpy(l.output, net.input, (size_t)l.batch * l.inputs * sizeof(float));
}

void backward_snap_layer(layer l, network net)
{
    /* l.output (B, D) = x; l.delta (B, D) = d = -dL/dx from above; net.delta (B, D) += d' (or NULL) */
    snap_state *s = (snap_state *)l.state;
    gsl_codebook *cb = &s->cb;
    int B = l.batch, D = l.inputs, M = cb->M, ds = cb->dsub;
    GSL_INVARIANT(B <= cb->max_batch);
    if (!cb->installed) {
        if (net.delta) axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        return;
    }
    const float *x = l.output, *d = l.delta;
    int rotated = cb->pq.rotation != NULL;
    if (rotated) { /* snap in the space the sub-quantizers live in: y = R x, R d */
        gslq_pq_rotate(&cb->pq, x, cb->xr, (size_t)B);
        gslq_pq_rotate(&cb->pq, d, cb->dr, (size_t)B);
        x = cb->xr;
        d = cb->dr;
    }
    /* Without a rotation d' goes straight into net.delta; with one, the correction d' - d is collected in the
     * rotated space and rotated back, so sub-vectors that are not snapped keep d bit for bit. */
    int diff = rotated || !net.delta;
    float *out = diff ? cb->er : net.delta;
    int k = s->mode == SNAP_LOOKAHEAD ? 1 : s->neighbors;
    int idx[256];
    float dist2[256];
    double snapped = 0, qerr = 0;
    for (int b = 0; b < B; b++) {
        for (int m = 0; m < M; m++) {
            size_t o = (size_t)b * D + (size_t)m * ds;
            const float *cm = cb->pq.centroids + (size_t)m * cb->K * ds;
            gslq_pq_nearest(&cb->pq, m, x + o, k, idx, dist2);
            qerr += dist2[0];
            if (s->mode == SNAP_LOOKAHEAD) { /* c* = the codeword nearest to x + eta d */
                float *p = cb->tmp + o;
                for (int j = 0; j < ds; j++) p[j] = x[o + j] + s->eta * d[o + j];
                gslq_pq_nearest(&cb->pq, m, p, 1, idx, NULL);
            }
            snapped += snap_subvector(s->mode, s->alpha, ds, x + o, d + o, cm, idx, k, out + o, diff);
        }
    }
    if (rotated && net.delta) { /* net.delta += d + R^T (d' - d) */
        axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        gslq_pq_unrotate(&cb->pq, cb->er, cb->tmp, (size_t)B);
        axpy_cpu(B * D, 1, cb->tmp, 1, net.delta, 1);
    }
    cb->acc[0] += snapped;
    cb->acc[1] += qerr;
    cb->acc[2] = snapped;
    cb->acc[3] = qerr;
    gsl_codebook_count_pass(cb, B, 0);
}

/* ---- cfg ---- */

static int parse_snap(const gsl_section *sec, layer *out, char *err)
{
    static const char *const keys[] = {"subspaces", "codewords", "neighbors", "mode", "alpha", "eta", NULL};
    static const char *const modes[] = {"rotate", "project", "lookahead", NULL};
    if (gsl_opt_check_unknown(sec, keys, err)) return -1;
    int D = sec->inputs;
    if (D < 1) {
        snprintf(err, GSL_ERRLEN, "the layer before gives no inputs (inputs=%d)", D);
        return -1;
    }
    int M, K, nb, mode;
    float alpha, eta;
    if (gsl_opt_int(sec, "subspaces", 0, 1, 1, 65535, &M, err)) return -1; /* 65535: a CUDA grid dimension */
    if (M > D || D % M) {
        snprintf(err, GSL_ERRLEN, "key 'subspaces': %d does not divide the input size %d", M, D);
        return -1;
    }
    if (D / M > SNAP_MAX_DSUB) {
        snprintf(err, GSL_ERRLEN, "key 'subspaces': sub-vectors of %d floats are too long (at most %d)", D / M,
                 SNAP_MAX_DSUB);
        return -1;
    }
    if (gsl_opt_int(sec, "codewords", 256, 0, 2, 256, &K, err)) return -1;
    if (gsl_opt_enum(sec, "mode", "rotate", modes, &mode, err)) return -1;
    if (mode == SNAP_LOOKAHEAD) {
        if (option_find(sec->options, "neighbors")) {
            snprintf(err, GSL_ERRLEN, "key 'neighbors': not used by mode=lookahead (it takes the codeword nearest to "
                                      "x + eta d)");
            return -1;
        }
        nb = 1;
    } else {
        if (option_find(sec->options, "eta")) {
            snprintf(err, GSL_ERRLEN, "key 'eta': only used by mode=lookahead");
            return -1;
        }
        if (gsl_opt_int(sec, "neighbors", K < 8 ? K : 8, 0, 1, INT_MAX, &nb, err)) return -1;
        if (nb > K) {
            snprintf(err, GSL_ERRLEN, "key 'neighbors': %d exceeds codewords (%d)", nb, K);
            return -1;
        }
    }
    if (gsl_opt_float(sec, "alpha", 0.5f, 0, 0.0f, mode == SNAP_LOOKAHEAD ? 1000.0f : 1.0f, &alpha, err)) return -1;
    if (gsl_opt_float(sec, "eta", 1.0f, 0, 0.0f, 1e6f, &eta, err)) return -1;
    if (!(eta > 0)) {
        snprintf(err, GSL_ERRLEN, "key 'eta': must be > 0");
        return -1;
    }
    if (sec->batch < 1) {
        snprintf(err, GSL_ERRLEN, "batch %d: must be >= 1", sec->batch);
        return -1;
    }
    layer l = make_snap_layer(sec->batch, D, M, K, nb, (snap_mode)mode, alpha, eta);
    if (sec->h * sec->w * sec->c == D) { /* the identity keeps the image shape for the layers after it */
        l.h = l.out_h = sec->h;
        l.w = l.out_w = sec->w;
        l.c = l.out_c = sec->c;
    }
    *out = l;
    return 0;
}

void snap_layer_register(void) { gsl_registry_add("snap", parse_snap); }
