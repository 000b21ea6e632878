/* [similarity]: cost and gradient against a double-precision reference written from the definitions
 * (tests/layers_testutil.h), for every type and mining, one-hot and multi-hot labels, by central finite
 * differences away from the hinges; a hand-computed normalisation; no truth; batch 1; end to end through
 * parse_network_cfg. */
#include "layers_testutil.h"
#include "registry.h"
#include "similarity_layer.h"
#include "test.h"

typedef struct {
    int type, mining;
    float margin;
    int multi;
} sim_case;

static const char *case_name(const sim_case *c)
{
    static char s[128];
    const char *type = c->type == TU_CONTRASTIVE ? "contrastive"
                       : c->type == TU_COSINE    ? "cosine"
                       : c->type == TU_NCA       ? "nca"
                                                 : "triplet";
    const char *mining = c->type != TU_TRIPLET ? "" : c->mining == TU_ALL ? " (mining all)" : " (mining hard)";
    snprintf(s, sizeof s, "%s%s, %s labels", type, mining, c->multi ? "multi-hot" : "one-hot");
    return s;
}

/* Runs the layer's forward on x, t; returns the cost and fills delta (B, D). */
static float run_layer(layer l, const float *x, float *t, float *delta)
{
    network net = {0};
    net.input = (float *)x;
    net.truth = t;
    forward_similarity_layer(l, net);
    memcpy(delta, l.delta, sizeof(float) * l.batch * l.inputs);
    return l.cost[0];
}

/* Finite-difference check of one case: B samples of D floats, C classes. Inputs are redrawn until they are at
 * least `gap` away from every non-smooth point. */
static void check_case(const sim_case *c, int B, int D, int C, unsigned long long seed)
{
    float *x = malloc(sizeof(float) * B * D), *t = malloc(sizeof(float) * B * C), *delta = malloc(sizeof(float) * B * D);
    double *xd = malloc(sizeof(double) * B * D);
    const double gap = 0.02, h = 1e-4;
    double corner = 0;
    int tries = 0;
    for (; tries < 200; tries++) {
        tu_fill_randn(x, (size_t)B * D, &seed, 1.0f);
        tu_random_labels(t, B, C, c->multi, &seed);
        for (int i = 0; i < B * D; i++) xd[i] = x[i];
        tu_sim_loss(c->type, c->mining, c->margin, xd, t, B, D, C, &corner);
        if (corner > gap) break;
    }
    CHECKF(corner > gap, "%s: no input away from the hinges in %d tries", case_name(c), tries);
    layer l = make_similarity_layer(B, D, C, (sim_type)c->type, (sim_mining)c->mining, c->margin);
    float cost = run_layer(l, x, t, delta);
    double ref = tu_sim_loss(c->type, c->mining, c->margin, xd, t, B, D, C, NULL);
    CHECKF(fabs(cost - ref) <= 1e-4 + 1e-4 * fabs(ref), "%s: cost %.8g, reference %.8g", case_name(c), cost, ref);
    CHECKF(ref > 0, "%s: the reference loss is 0 (the case tests nothing)", case_name(c));
    int bad = 0;
    double maxg = 0;
    for (int i = 0; i < B * D; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double lp = tu_sim_loss(c->type, c->mining, c->margin, xd, t, B, D, C, NULL);
        xd[i] = keep - h;
        double lm = tu_sim_loss(c->type, c->mining, c->margin, xd, t, B, D, C, NULL);
        xd[i] = keep;
        double g = (lp - lm) / (2 * h); /* dL/dx */
        if (fabs(g) > maxg) maxg = fabs(g);
        double got = -delta[i]; /* delta = -dL/dx */
        if (!(fabs(got - g) <= 2e-4 + 2e-3 * fabs(g))) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: dL/dx[%d][%d] = %.8g, finite difference %.8g\n", case_name(c), i / D, i % D,
                        got, g);
        }
    }
    CHECKF(bad == 0, "%s: %d of %d gradient entries off", case_name(c), bad, B * D);
    CHECKF(maxg > 1e-3, "%s: the gradient is 0 (the case tests nothing)", case_name(c));
    free_layer(l);
    free(x); free(t); free(delta); free(xd);
}

static const sim_case cases[] = {
    {TU_CONTRASTIVE, 0, 3.0f, 0}, {TU_CONTRASTIVE, 0, 3.0f, 1}, {TU_COSINE, 0, 0, 0},     {TU_COSINE, 0, 0, 1},
    {TU_TRIPLET, TU_HARD, 0.5f, 0}, {TU_TRIPLET, TU_HARD, 0.5f, 1}, {TU_TRIPLET, TU_ALL, 0.5f, 0},
    {TU_TRIPLET, TU_ALL, 0.5f, 1}, {TU_NCA, 0, 0, 0}, {TU_NCA, 0, 0, 1},
};

static void test_gradients_finite_differences(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case(&cases[i], 10, 5, 3, 1000 + i);
        check_case(&cases[i], 7, 3, 4, 2000 + i); /* odd sizes */
    }
}

/* B = 2, one similar pair x1 = (0, 0), x2 = (3, 4): l_12 = 25, L = 2 x 25 / (B-1) = 50, delta_1 = -dL/dx1 =
 * -4 (x1 - x2) = (12, 16). Dissimilar with margin 6: d = 5, l = (6-5)^2 = 1, L = 2; dL/dx1 = 2 * 2 (m-d)(-1)(x1-x2)/d
 * = -4/5 (x1 - x2) = (2.4, 3.2) so delta_1 = (-2.4, -3.2). Triplet hard, B = 3: anchor 0 at (0,0), positive 1 at
 * (3,4) (d 5), negative 2 at (0,6) (d 6), margin 2: l_0 = 1; anchors 1 and 2: anchor 1 positive 0 (d 5), negative 2
 * (d sqrt(13) = 3.606): l_1 = 2 + 5 - 3.606 = 3.394; anchor 2 has no positive. L = 4.394. */
static void test_normalisation_by_hand(void)
{
    float x[6] = {0, 0, 3, 4, 0, 6}, delta[6];
    float same[4] = {1, 0, 1, 0}, diff[4] = {1, 0, 0, 1};
    layer l = make_similarity_layer(2, 2, 2, SIM_CONTRASTIVE, SIM_MINING_HARD, 6.0f);
    float cost = run_layer(l, x, same, delta);
    CHECK_CLOSE(cost, 50, 1e-4, 1e-5);
    CHECK_CLOSE(delta[0], 12, 1e-4, 1e-5);
    CHECK_CLOSE(delta[1], 16, 1e-4, 1e-5);
    CHECK_CLOSE(delta[2], -12, 1e-4, 1e-5);
    cost = run_layer(l, x, diff, delta);
    CHECK_CLOSE(cost, 2, 1e-4, 1e-5);
    CHECK_CLOSE(delta[0], -2.4, 1e-4, 1e-5);
    CHECK_CLOSE(delta[1], -3.2, 1e-4, 1e-5);
    free_layer(l);

    float t3[6] = {1, 0, 1, 0, 0, 1};
    layer lt = make_similarity_layer(3, 2, 2, SIM_TRIPLET, SIM_MINING_HARD, 2.0f);
    cost = run_layer(lt, x, t3, delta);
    CHECK_CLOSE(cost, 1 + 2 + 5 - sqrt(13.0), 1e-4, 1e-5);
    free_layer(lt);

    /* cosine: x1 = (1, 0), x2 = (1, 1) similar: cos = 0.7071, l = (cos - 1)^2 = 0.08579, L = 2 l */
    float xc[4] = {1, 0, 1, 1};
    layer lc = make_similarity_layer(2, 2, 2, SIM_COSINE, SIM_MINING_HARD, 0);
    cost = run_layer(lc, xc, same, delta);
    CHECK_CLOSE(cost, 2 * (1 - sqrt(0.5)) * (1 - sqrt(0.5)), 1e-5, 1e-4);
    free_layer(lc);

    /* nca, B = 3: x0 = (0,0) and x1 = (1,0) share a class, x2 = (0,2) does not. D01 = 1, D02 = 4, D12 = 5:
     * l_0 = log(1 + e^-3), l_1 = log(1 + e^-4), l_2 = 0 (no positive). x2 enters through D02 and D12:
     * dL/dx2 = -e^-3/(1+e^-3) 2 (x2 - x0) - e^-4/(1+e^-4) 2 (x2 - x1), and delta = -dL/dx. */
    float xn[6] = {0, 0, 1, 0, 0, 2};
    layer ln = make_similarity_layer(3, 2, 2, SIM_NCA, SIM_MINING_HARD, 0);
    cost = run_layer(ln, xn, t3, delta);
    CHECK_CLOSE(cost, log(1 + exp(-3.0)) + log(1 + exp(-4.0)), 1e-5, 1e-4);
    double a3 = exp(-3.0) / (1 + exp(-3.0)), a4 = exp(-4.0) / (1 + exp(-4.0));
    CHECK_CLOSE(delta[4], a3 * 0 + a4 * -2, 1e-5, 1e-4);
    CHECK_CLOSE(delta[5], a3 * 4 + a4 * 4, 1e-5, 1e-4);
    free_layer(ln);
}

static void test_no_truth_and_batch_one(void)
{
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, t[2] = {1, 0}, delta[4];
    layer l = make_similarity_layer(2, 4, 1, SIM_CONTRASTIVE, SIM_MINING_HARD, 1.0f);
    network net = {0};
    net.input = x;
    forward_similarity_layer(l, net); /* network_predict: net.truth is NULL */
    CHECK(memcmp(l.output, x, sizeof(float) * 8) == 0);
    free_layer(l);
    layer l1 = make_similarity_layer(1, 4, 2, SIM_TRIPLET, SIM_MINING_ALL, 1.0f);
    float cost = run_layer(l1, x, t, delta);
    CHECK(cost == 0);
    CHECK(delta[0] == 0 && delta[3] == 0);
    free_layer(l1);
}

/* Backward adds l.delta into net.delta. */
static void test_backward_adds(void)
{
    float x[6] = {0, 1, 2, -1, 0.5f, 3}, t[3] = {1, 1, 0}, below[6] = {1, 1, 1, 1, 1, 1};
    layer l = make_similarity_layer(3, 2, 1, SIM_CONTRASTIVE, SIM_MINING_HARD, 2.0f);
    network net = {0};
    net.input = x;
    net.truth = t;
    forward_similarity_layer(l, net);
    net.delta = below;
    backward_similarity_layer(l, net);
    for (int i = 0; i < 6; i++) CHECK(below[i] == 1 + l.delta[i]);
    free_layer(l);
}

/* [net] + [connected] + [similarity] through Darknet: shapes, truths, cost and the gradient reaching the
 * connected layer. */
static void test_network_end_to_end(void)
{
    gsl_registry_install();
    network *net = parse_network_cfg((char *)tu_cfg("test_similarity_net.cfg"));
    CHECK(net->n == 2);
    layer *sim = &net->layers[1];
    CHECK(gsl_is_similarity_layer(sim));
    CHECK(sim->type == COST);
    CHECK(net->truths == 4);             /* from classes */
    CHECK(net->outputs == net->layers[0].outputs); /* the output layer is the embedding */
    CHECK(strcmp(gsl_layer_name(sim), "similarity") == 0);
    tu_train_step(net, 4, 77);
    CHECK(*net->cost == sim->cost[0]);
    CHECK(sim->cost[0] > 0);
    /* The embedding's delta is the loss's delta (connected is linear). */
    int same = 1;
    for (int i = 0; i < sim->batch * sim->inputs; i++) same &= net->layers[0].delta[i] == sim->delta[i];
    CHECK(same);
    /* The loss computed from the embedding by the reference. */
    int B = net->batch, D = sim->inputs;
    double *xd = malloc(sizeof(double) * B * D);
    for (int i = 0; i < B * D; i++) xd[i] = net->layers[0].output[i];
    double ref = tu_sim_loss(TU_TRIPLET, TU_ALL, 0.3, xd, net->truth, B, D, 4, NULL);
    CHECK_CLOSE(sim->cost[0], ref, 1e-4, 1e-4);
    free(xd);
    tu_free_network(net);
}

int main(void)
{
    gpu_index = -1; /* the host path, also in GPU builds (tests/test_gpu_layers.c compares the two) */
    RUN(test_gradients_finite_differences);
    RUN(test_normalisation_by_hand);
    RUN(test_no_truth_and_batch_one);
    RUN(test_backward_adds);
    RUN(test_network_end_to_end);
    return TEST_END();
}
