/* Helpers shared by the layer tests (test_snap, test_quantloss, test_similarity, test_gpu_layers): random codebooks
 * and rotations, a double-precision reference of the similarity losses written from their definitions (direct
 * distances, no Gram matrix), and the distance of an input to the losses' non-smooth points. */
#ifndef GSL_LAYERS_TESTUTIL_H
#define GSL_LAYERS_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codebook.h"
#include "darknet.h"
#include "gslq.h"
#include "test.h"

/* Frees a network from parse_network_cfg completely: Darknet's free_network leaves seen, t, cost, the workspace
 * and the steps/scales arrays behind (LeakSanitizer would report them). CPU networks only. */
static inline void tu_free_network(network *net)
{
    free(net->seen);
    free(net->t);
    free(net->cost);
    free(net->workspace);
    free(net->steps);
    free(net->scales);
    free_network(net);
}

/* Path of a test cfg under tests/cfg/ ($GSL_CFG_DIR overrides). */
static inline const char *tu_cfg(const char *name)
{
    static char path[4][1024];
    static int slot;
    const char *dir = getenv("GSL_CFG_DIR");
    char *p = path[slot++ & 3];
    snprintf(p, 1024, "%s/%s", dir && *dir ? dir : "tests/cfg", name);
    return p;
}

static inline void tu_fill_randn(float *x, size_t n, unsigned long long *seed, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * test_randn(seed);
}

/* An input x and a delta d (n floats each, N(0, 1)), drawn in that order. */
static inline void tu_random_xd(float *x, float *d, size_t n, unsigned long long *seed)
{
    tu_fill_randn(x, n, seed, 1.0f);
    tu_fill_randn(d, n, seed, 1.0f);
}

/* A random PQ codebook (centroids N(0, scale^2)); rotation NULL. */
static inline void tu_random_pq(gslq_pq *pq, int d, int M, int K, unsigned long long seed, float scale)
{
    if (gslq_pq_init(pq, d, M, K, NULL) != 0) { fprintf(stderr, "gslq_pq_init failed\n"); exit(1); }
    tu_fill_randn(pq->centroids, (size_t)K * d, &seed, scale);
}

/* Installs pq in a [snap] or [quantloss] layer with the rotation R (NULL: none), leaving pq without one. Returns
 * gsl_layer_set_codebook's status. */
static inline int tu_set_codebook(layer *l, gslq_pq *pq, float *R)
{
    pq->rotation = R;
    int r = gsl_layer_set_codebook(l, pq, NULL);
    pq->rotation = NULL;
    return r;
}

/* The codeword of sub-space m nearest to the sub-vector x (dsub), by brute force in double (ties: the lower index);
 * its squared distance in *dist2. */
static inline int tu_nearest(const gslq_pq *pq, int m, const float *x, double *dist2)
{
    int best = 0, ds = pq->dsub;
    double bd = INFINITY;
    for (int c = 0; c < pq->K; c++) {
        const float *cw = pq->centroids + ((size_t)m * pq->K + c) * ds;
        double s = 0;
        for (int j = 0; j < ds; j++) {
            double df = x[j] - (double)cw[j];
            s += df * df;
        }
        if (s < bd) { bd = s; best = c; }
    }
    *dist2 = bd;
    return best;
}

/* Runs a layer on the host: forward on x (B, D), then backward with d (B, D) from above into below (in/out, the
 * layer adds; NULL for none). */
static inline void tu_forward_backward(layer l, const float *x, const float *d, float *below)
{
    network net = {0};
    net.input = (float *)x;
    l.forward(l, net);
    memcpy(l.delta, d, sizeof(float) * l.batch * l.inputs);
    net.delta = below;
    l.backward(l, net);
}

/* A random orthogonal (d, d) matrix, row-major (Gram-Schmidt on Gaussian rows, in double). */
static inline float *tu_random_rotation(int d, unsigned long long seed)
{
    double *q = malloc(sizeof(double) * d * d);
    float *r = malloc(sizeof(float) * d * d);
    if (!q || !r) exit(1);
    for (int i = 0; i < d * d; i++) q[i] = test_randn(&seed);
    for (int i = 0; i < d; i++) {
        for (int k = 0; k < i; k++) {
            double dot = 0;
            for (int j = 0; j < d; j++) dot += q[i * d + j] * q[k * d + j];
            for (int j = 0; j < d; j++) q[i * d + j] -= dot * q[k * d + j];
        }
        double n = 0;
        for (int j = 0; j < d; j++) n += q[i * d + j] * q[i * d + j];
        n = sqrt(n);
        for (int j = 0; j < d; j++) q[i * d + j] /= n;
    }
    for (int i = 0; i < d * d; i++) r[i] = (float)q[i];
    free(q);
    return r;
}

/* A random signed permutation (d, d): orthogonal and exact in float, whatever the summation order. */
static inline float *tu_signed_permutation(int d, unsigned long long seed)
{
    float *r = calloc((size_t)d * d, sizeof(float));
    int *perm = malloc(sizeof(int) * d);
    if (!r || !perm) exit(1);
    for (int i = 0; i < d; i++) perm[i] = i;
    for (int i = d - 1; i > 0; i--) {
        int j = (int)test_randf(&seed, 0, (float)(i + 1));
        if (j > i) j = i;
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (int i = 0; i < d; i++) r[i * d + perm[i]] = test_randf(&seed, 0, 1) < 0.5f ? -1.0f : 1.0f;
    free(perm);
    return r;
}

/* y = R x (d) in double. */
static inline void tu_rotate(const float *R, const double *x, double *y, int d)
{
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)R[i * d + j] * x[j];
        y[i] = s;
    }
}

/* x = R^T y (d) in double. */
static inline void tu_unrotate(const float *R, const double *y, double *x, int d)
{
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)R[i * d + j] * y[i];
        x[j] = s;
    }
}

/* Labels: one-hot (multi = 0) or multi-hot with 1 to 2 labels per sample (multi = 1), as floats (B, C). */
static inline void tu_random_labels(float *t, int B, int C, int multi, unsigned long long *seed)
{
    memset(t, 0, sizeof(float) * B * C);
    for (int i = 0; i < B; i++) {
        int c = (int)test_randf(seed, 0, (float)C);
        if (c >= C) c = C - 1;
        t[i * C + c] = 1;
        if (multi && test_randf(seed, 0, 1) < 0.6f) {
            int c2 = (int)test_randf(seed, 0, (float)C);
            if (c2 >= C) c2 = C - 1;
            t[i * C + c2] = 1;
        }
    }
}

/* One training step of a parsed network on a random batch: inputs N(0, 1) from seed, one-hot labels of `classes`. */
static inline void tu_train_step(network *net, int classes, unsigned long long seed)
{
    tu_fill_randn(net->input, (size_t)net->inputs * net->batch, &seed, 1.0f);
    tu_random_labels(net->truth, net->batch, classes, 0, &seed);
    net->train = 1;
    forward_network(net);
    backward_network(net);
}

/* ---- the similarity losses in double, from their definitions (docs/layers.md) ---- */

enum { TU_CONTRASTIVE = 0, TU_COSINE = 1, TU_TRIPLET = 2, TU_NCA = 3 };
enum { TU_HARD = 0, TU_ALL = 1 };
#define TU_EPS 1e-8

static inline int tu_same(const float *t, int C, int i, int j)
{
    for (int c = 0; c < C; c++)
        if (t[i * C + c] > 0.5f && t[j * C + c] > 0.5f) return 1;
    return 0;
}

static inline double tu_sqdist(const double *x, int D, int i, int j)
{
    double s = 0;
    for (int k = 0; k < D; k++) {
        double df = x[i * D + k] - x[j * D + k];
        s += df * df;
    }
    return s;
}

/* The loss L of docs/layers.md. If corner is non-NULL it receives the distance of x to the nearest point where L is
 * not smooth (hinges, and for hard mining the changes of the chosen positive or negative), in distance units. */
static inline double tu_sim_loss(int type, int mining, double margin, const double *x, const float *t, int B, int D,
                                 int C, double *corner)
{
    double L = 0, cmin = INFINITY;
    if (B < 2) { if (corner) *corner = cmin; return 0; }
    if (type == TU_CONTRASTIVE || type == TU_COSINE) {
        for (int i = 0; i < B; i++)
            for (int j = 0; j < B; j++) {
                if (i == j) continue;
                int s = tu_same(t, C, i, j);
                double l;
                if (type == TU_CONTRASTIVE) {
                    double D2 = tu_sqdist(x, D, i, j);
                    if (s) l = D2;
                    else {
                        double d = sqrt(D2 + TU_EPS), h = margin - d;
                        l = h > 0 ? h * h : 0;
                        if (fabs(h) < cmin) cmin = fabs(h);
                    }
                } else {
                    double ni = 0, nj = 0, dot = 0;
                    for (int k = 0; k < D; k++) {
                        ni += x[i * D + k] * x[i * D + k];
                        nj += x[j * D + k] * x[j * D + k];
                        dot += x[i * D + k] * x[j * D + k];
                    }
                    double cs = dot / (sqrt(ni + TU_EPS) * sqrt(nj + TU_EPS));
                    l = (cs - s) * (cs - s);
                }
                L += l / (B - 1);
            }
    } else if (type == TU_NCA) { /* smooth everywhere: no corner */
        for (int i = 0; i < B; i++) {
            double z = 0, zp = 0;
            for (int j = 0; j < B; j++) {
                if (j == i) continue;
                double e = exp(-tu_sqdist(x, D, i, j));
                z += e;
                if (tu_same(t, C, i, j)) zp += e;
            }
            if (zp > 0) L += -log(zp / z);
        }
    } else if (mining == TU_HARD) {
        for (int a = 0; a < B; a++) {
            double p1 = -1, p2 = -1, n1 = INFINITY, n2 = INFINITY; /* two farthest positives, two nearest negatives */
            int havep = 0, haven = 0;
            for (int j = 0; j < B; j++) {
                if (j == a) continue;
                double d = sqrt(tu_sqdist(x, D, a, j) + TU_EPS);
                if (tu_same(t, C, a, j)) {
                    havep++;
                    if (d > p1) { p2 = p1; p1 = d; } else if (d > p2) p2 = d;
                } else {
                    haven++;
                    if (d < n1) { n2 = n1; n1 = d; } else if (d < n2) n2 = d;
                }
            }
            if (!havep || !haven) continue;
            double h = margin + p1 - n1;
            L += h > 0 ? h : 0;
            if (fabs(h) < cmin) cmin = fabs(h);
            if (havep > 1 && p1 - p2 < cmin) cmin = p1 - p2;
            if (haven > 1 && n2 - n1 < cmin) cmin = n2 - n1;
        }
    } else {
        double sum = 0, n = 0;
        for (int a = 0; a < B; a++)
            for (int p = 0; p < B; p++) {
                if (p == a || !tu_same(t, C, a, p)) continue;
                double dap = sqrt(tu_sqdist(x, D, a, p) + TU_EPS);
                for (int q = 0; q < B; q++) {
                    if (tu_same(t, C, a, q)) continue;
                    double h = margin + dap - sqrt(tu_sqdist(x, D, a, q) + TU_EPS);
                    if (h > 0) { sum += h; n += 1; }
                    if (fabs(h) < cmin) cmin = fabs(h);
                }
            }
        L = n > 0 ? B * sum / n : 0;
    }
    if (corner) *corner = cmin;
    return L;
}

#endif
