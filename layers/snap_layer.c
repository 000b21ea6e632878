/* [snap]: CPU reference path, construction and cfg parsing. The CUDA path is snap_layer_kernels.cu. */
#include "snap_layer.h"

#include <limits.h>
#include <stdio.h>

#include "option_list.h"
#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif

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
    return gsl_codebook_set_typed(s ? &s->cb : NULL, "snap", pq, err);
}

layer make_snap_layer(int batch, int inputs, int subspaces, int codewords, int neighbors, snap_mode mode,
                      float alpha, float eta)
{
    layer l;
    snap_state *s = gsl_codebook_layer_make(&l, sizeof(snap_state), forward_snap_layer, backward_snap_layer, batch,
                                            inputs, subspaces, codewords, "snap");
    s->mode = mode;
    s->neighbors = mode == SNAP_LOOKAHEAD ? 1 : neighbors;
    s->alpha = alpha;
    s->eta = eta;
#ifdef GPU
    l.backward_gpu = backward_snap_layer_gpu;
#endif
    fprintf(stderr, "snap         %4d x %3d codewords, %s, alpha %g", subspaces, codewords, snap_mode_name(mode),
            alpha);
    if (mode == SNAP_LOOKAHEAD) fprintf(stderr, ", eta %g\n", eta);
    else fprintf(stderr, ", %d neighbours\n", s->neighbors);
    return l;
}

/* The identity (codebook.c); a function of its own because the layer's type is told by its forward function. */
void forward_snap_layer(layer l, network net) { gsl_codebook_forward(l, net); }

void backward_snap_layer(layer l, network net)
{
    /* l.output (B, D) = x; l.delta (B, D) = d = -dL/dx from above; net.delta (B, D) += d' (or NULL) */
    snap_state *s = (snap_state *)l.state;
    gsl_codebook *cb = &s->cb;
    gsl_codebook_pass p; /* x, d rotated by R when the codebook has a rotation: snap where the sub-quantizers live */
    if (!gsl_codebook_backward_prologue(cb, l, net, 1, &p)) return;
    /* Without a rotation d' goes straight into net.delta; with one, the correction d' - d is collected in the
     * rotated space (p.diff) and rotated back, so sub-vectors that are not snapped keep d bit for bit. */
    int B = l.batch, D = l.inputs, M = cb->M, ds = cb->dsub;
    int k = s->mode == SNAP_LOOKAHEAD ? 1 : s->neighbors;
    int idx[256];
    float dist2[256];
    double snapped = 0, qerr = 0;
    for (int b = 0; b < B; b++) {
        for (int m = 0; m < M; m++) {
            size_t o = (size_t)b * D + (size_t)m * ds;
            const float *cm = cb->pq.centroids + (size_t)m * cb->K * ds;
            gslq_pq_nearest(&cb->pq, m, p.x + o, k, idx, dist2);
            qerr += dist2[0];
            if (s->mode == SNAP_LOOKAHEAD) { /* c* = the codeword nearest to x + eta d */
                float *q = cb->tmp + o;
                for (int j = 0; j < ds; j++) q[j] = p.x[o + j] + s->eta * p.d[o + j];
                gslq_pq_nearest(&cb->pq, m, q, 1, idx, NULL);
            }
            snapped += snap_subvector(s->mode, s->alpha, ds, p.x + o, p.d + o, cm, idx, k, p.out + o, p.diff);
        }
    }
    gsl_codebook_backward_epilogue(cb, l, net, 1.0f, snapped, qerr); /* net.delta += d + R^T (d' - d) */
}

/* ---- cfg ---- */

static int parse_snap(const gsl_section *sec, layer *out, char *err)
{
    static const char *const keys[] = {"neighbors", "mode", "alpha", "eta", NULL};
    static const char *const modes[] = {"rotate", "project", "lookahead", NULL};
    int M, K, nb, mode;
    float alpha, eta;
    if (sec->index == 0) /* it rewrites the gradient it passes down: the input image would take it */
        return gsl_fail(err, "the first layer: no layer below takes the gradient it rewrites (put [snap] after the "
                        "layer whose output it quantizes, e.g. the embedding's [connected])");
    if (gsl_codebook_parse_shape(sec, keys, &M, &K, err)) return -1;
    /* the defaults are the study's recommendation (docs/RESULTS.md): project with alpha 0.1 */
    if (gsl_opt_enum(sec, "mode", "project", modes, &mode, err)) return -1;
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
    if (gsl_opt_float(sec, "alpha", mode == SNAP_PROJECT ? 0.1f : 0.5f, 0, 0.0f, mode == SNAP_LOOKAHEAD ? 1000.0f : 1.0f,
                      &alpha, err))
        return -1;
    if (gsl_opt_float(sec, "eta", 1.0f, 0, 0.0f, 1e6f, &eta, err)) return -1;
    if (!(eta > 0)) {
        snprintf(err, GSL_ERRLEN, "key 'eta': must be > 0");
        return -1;
    }
    gsl_rebuild_cfg rb;
    if (gsl_codebook_parse_rebuild(sec, K, &rb, err)) return -1;
    if (gsl_codebook_parse_batch(sec, err)) return -1;
    *out = make_snap_layer(sec->batch, sec->inputs, M, K, nb, (snap_mode)mode, alpha, eta);
    gsl_codebook_keep_shape(sec, out);
    gsl_codebook_rebuild_attach((gsl_codebook *)out->state, sec->cfg, sec->index, &rb);
    return 0;
}

void snap_layer_register(void) { gsl_registry_add("snap", parse_snap); }
