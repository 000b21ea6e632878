/* [quantloss]: identity forward; bit-exact pass-through without a codebook and at lambda = 0; the backward is the
 * descent direction of L + (lambda/2) |x - Q(x)|^2 by central finite differences in double (assignment held:
 * inputs away from the Voronoi boundaries), with and without an OPQ rotation; the statistics equal
 * gslq_pq_mse; end to end through parse_network_cfg. */
#include "codebook.h"
#include "layers_testutil.h"
#include "quantloss_layer.h"
#include "registry.h"
#include "test.h"

/* (lambda/2) sum_b |R x_b - c(R x_b)|^2 for x (B, D) in double; gap receives the smallest difference between the
 * nearest and second-nearest squared distance over all sub-vectors. */
static double quant_term(const gslq_pq *pq, const float *R, const double *x, int B, double lambda, double *gap)
{
    int D = pq->d, M = pq->M, K = pq->K, ds = pq->dsub;
    double y[64], s = 0, g = INFINITY;
    for (int b = 0; b < B; b++) {
        if (R) tu_rotate(R, x + b * D, y, D);
        else memcpy(y, x + b * D, sizeof(double) * D);
        for (int m = 0; m < M; m++) {
            double d1 = INFINITY, d2 = INFINITY;
            for (int c = 0; c < K; c++) {
                double q = 0;
                for (int j = 0; j < ds; j++) {
                    double df = y[m * ds + j] - pq->centroids[(m * K + c) * ds + j];
                    q += df * df;
                }
                if (q < d1) { d2 = d1; d1 = q; } else if (q < d2) d2 = q;
            }
            s += d1;
            if (d2 - d1 < g) g = d2 - d1;
        }
    }
    if (gap) *gap = g;
    return 0.5 * lambda * s;
}

static void test_passthrough_bit_exact(void)
{
    enum { B = 5, D = 12, M = 4, K = 8 };
    float x[B * D], d[B * D], below[B * D];
    unsigned long long seed = 1;
    tu_random_xd(x, d, B * D, &seed);
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 2, 1.0f);
    float *R = tu_random_rotation(D, 3);
    for (int variant = 0; variant < 3; variant++) { /* no codebook; lambda 0; lambda 0 with rotation */
        layer l = make_quantloss_layer(B, D, M, K, variant ? 0.0f : 0.5f);
        CHECK(gsl_is_quantloss_layer(&l) && gsl_layer_has_codebook(&l) && l.type == BLANK);
        if (variant) CHECK(tu_set_codebook(&l, &pq, variant == 2 ? R : NULL) == 0);
        memset(below, 0, sizeof below);
        tu_forward_backward(l, x, d, below);
        CHECK(memcmp(l.output, x, sizeof x) == 0);
        CHECKF(memcmp(below, d, sizeof d) == 0, "variant %d: not bit-exact", variant);
        free_layer(l);
    }
    free(R);
    gslq_pq_free(&pq);
}

static void fd_case(int rotated, unsigned long long seed)
{
    enum { B = 6, D = 12, M = 3, K = 16 };
    const double lambda = 0.7, h = 1e-4;
    float x[B * D], d[B * D], below[B * D];
    double xd[B * D];
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, seed, 1.0f);
    float *R = rotated ? tu_random_rotation(D, seed + 1) : NULL;
    double gap = 0;
    for (int tries = 0; tries < 100; tries++) {
        tu_fill_randn(x, B * D, &seed, 1.0f);
        for (int i = 0; i < B * D; i++) xd[i] = x[i];
        quant_term(&pq, R, xd, B, lambda, &gap);
        if (gap > 1e-2) break;
    }
    CHECKF(gap > 1e-2, "no input away from the Voronoi boundaries");
    tu_fill_randn(d, B * D, &seed, 1.0f);
    layer l = make_quantloss_layer(B, D, M, K, (float)lambda);
    CHECK(tu_set_codebook(&l, &pq, R) == 0);
    memset(below, 0, sizeof below);
    tu_forward_backward(l, x, d, below);
    /* L(x) = -sum d.x + (lambda/2) |x - Q(x)|^2, so the layer's output must be -dL/dx */
    int bad = 0;
    for (int i = 0; i < B * D; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double lp = -d[i] * xd[i] + quant_term(&pq, R, xd, B, lambda, NULL);
        xd[i] = keep - h;
        double lm = -d[i] * xd[i] + quant_term(&pq, R, xd, B, lambda, NULL);
        xd[i] = keep;
        double want = -(lp - lm) / (2 * h);
        if (!(fabs(below[i] - want) <= 1e-4 + 1e-4 * fabs(want))) {
            if (bad++ < 5) fprintf(stderr, "  [%d]: %.8g, finite difference %.8g\n", i, below[i], want);
        }
    }
    CHECKF(bad == 0, "rotated=%d: %d of %d entries off", rotated, bad, B * D);
    /* the statistics: mean |x - Q(x)|^2, the same number as gslq_pq_mse */
    gsl_layer_stats st;
    CHECK(gsl_layer_get_stats(&l, &st, 0) == 0);
    double mse = 0;
    pq.rotation = R;
    CHECK(gslq_pq_mse(&pq, x, B, pq.d, 1, &mse, NULL) == 0);
    pq.rotation = NULL;
    CHECK_CLOSE(st.qerr, mse, 1e-5, 1e-4);
    CHECK_CLOSE(st.qerr, 2 * quant_term(&pq, R, xd, B, 1.0, NULL) / B, 1e-5, 1e-4);
    CHECK(st.batches == 1 && st.snapped_frac == 0);
    free_layer(l);
    free(R);
    gslq_pq_free(&pq);
}

static void test_gradient_finite_differences(void)
{
    fd_case(0, 10);
    fd_case(1, 20);
}

/* [net] + [connected] + [quantloss] + [similarity]: net.delta below [quantloss] = d + lambda (Q(x) - x). */
static void test_network_end_to_end(void)
{
    gsl_registry_install();
    network *net = parse_network_cfg((char *)tu_cfg("test_quantloss_net.cfg"));
    CHECK(net->n == 3);
    layer *ql = &net->layers[1];
    CHECK(gsl_is_quantloss_layer(ql) && strcmp(gsl_layer_name(ql), "quantloss") == 0);
    CHECK(quantloss_layer_state(ql)->lambda == 0.25f);
    int d, M, K;
    CHECK(gsl_layer_codebook_shape(ql, &d, &M, &K) == 0 && d == 8 && M == 2 && K == 4);
    gslq_pq pq;
    tu_random_pq(&pq, 8, 2, 4, 9, 1.0f);
    char err[GSL_ERRLEN] = "";
    CHECK(quantloss_layer_set_codebook(&net->layers[0], &pq, err) == -1);
    CHECKF(strstr(err, "not a [quantloss] layer") != NULL, "message: %s", err);
    CHECK(quantloss_layer_set_codebook(ql, &pq, err) == 0);
    tu_train_step(net, 2, 8);
    int B = net->batch, bad = 0;
    for (int b = 0; b < B; b++) {
        const float *x = ql->output + b * 8;
        for (int m = 0; m < 2; m++) {
            int idx;
            gslq_pq_nearest(&pq, m, x + m * 4, 1, &idx, NULL);
            for (int j = 0; j < 4; j++) {
                int i = b * 8 + m * 4 + j;
                double want = ql->delta[i] + 0.25 * (pq.centroids[(m * 4 + idx) * 4 + j] - (double)x[m * 4 + j]);
                if (fabs(net->layers[0].delta[i] - want) > 1e-5 + 1e-5 * fabs(want)) bad++;
            }
        }
    }
    CHECKF(bad == 0, "%d entries of the connected layer's delta off", bad);
    gslq_pq_free(&pq);
    tu_free_network(net);
}

int main(void)
{
    gpu_index = -1; /* the host path, also in GPU builds (tests/test_gpu_layers.c compares the two) */
    RUN(test_passthrough_bit_exact);
    RUN(test_gradient_finite_differences);
    RUN(test_network_end_to_end);
    return TEST_END();
}
