/* CPU/GPU equivalence of the plugin layers' CUDA kernels: [snap] (every mode, with no rotation, an exact signed
 * permutation and a general OPQ rotation), [quantloss] and [similarity] (every type and mining, one- and multi-hot
 * labels), forward and backward, over several batch sizes and dimensions including odd ones, with a tolerance
 * atol + rtol * |ref|; the statistics; and a whole network ([connected] + [snap] + [similarity]) trained one step
 * on the device and on the host. Built with GPU=1 only; run by `make GPU=1 test-gpu` (scripts/gpu-check.sh). */
#include <cuda_runtime.h>

#include "codebook.h"
#include "gsl_cuda.h"
#include "layers_testutil.h"
#include "quantloss_layer.h"
#include "registry.h"
#include "similarity_layer.h"
#include "snap_layer.h"
#include "test.h"

static float *to_gpu(const float *x, size_t n)
{
    float *g = NULL;
    GSL_CUDA_CHECK(cudaMalloc((void **)&g, (n ? n : 1) * sizeof(float)));
    if (n) GSL_CUDA_CHECK(cudaMemcpy(g, x, n * sizeof(float), cudaMemcpyHostToDevice));
    return g;
}

static void from_gpu(float *x, const float *g, size_t n)
{
    GSL_CUDA_CHECK(cudaDeviceSynchronize());
    GSL_CUDA_CHECK(cudaMemcpy(x, g, n * sizeof(float), cudaMemcpyDeviceToHost));
}

/* Entries with |got - ref| > atol + rtol |ref|, the first few printed. */
static int mismatches(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        if (!(fabs(g - r) <= atol + rtol * fabs(r))) {
            if (bad++ < 4) fprintf(stderr, "  %s[%zu]: gpu %.9g cpu %.9g\n", what, i, g, r);
        }
    }
    return bad;
}

/* Rows (of width w) that hold at least one mismatch. */
static int bad_rows(const float *got, const float *ref, int rows, int w, double atol, double rtol)
{
    int n = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < w; j++) {
            double g = got[r * w + j], f = ref[r * w + j];
            if (!(fabs(g - f) <= atol + rtol * fabs(f))) { n++; break; }
        }
    return n;
}

typedef struct {
    int B, D, M, K, k;
    snap_mode mode;
    float alpha, eta;
    int rotation; /* 0 none, 1 signed permutation (exact), 2 general orthogonal */
    int quantloss; /* test [quantloss] instead (alpha is lambda) */
} cb_case;

/* Runs one [snap] or [quantloss] case on both paths; returns the number of failed checks it printed. */
static void codebook_case(const cb_case *c, unsigned long long seed)
{
    const int B = c->B, D = c->D;
    const size_t n = (size_t)B * D;
    char name[160];
    snprintf(name, sizeof name, "%s B=%d D=%d M=%d K=%d k=%d %s alpha=%g rot=%d", c->quantloss ? "quantloss" : "snap",
             B, D, c->M, c->K, c->k, c->quantloss ? "-" : snap_mode_name(c->mode), c->alpha, c->rotation);
    layer l = c->quantloss ? make_quantloss_layer(B, D, c->M, c->K, c->alpha)
                           : make_snap_layer(B, D, c->M, c->K, c->k, c->mode, c->alpha, c->eta);
    float *x = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float)), *below0 = malloc(n * sizeof(float));
    float *cpu = malloc(n * sizeof(float)), *gpu = malloc(n * sizeof(float));
    tu_fill_randn(x, n, &seed, 1.0f);
    tu_fill_randn(d, n, &seed, 1.0f);
    tu_fill_randn(below0, n, &seed, 1.0f);
    float *xg = to_gpu(x, n), *dg = to_gpu(d, n), *bg = to_gpu(below0, n);

    for (int installed = 0; installed < 2; installed++) {
        if (installed) {
            gslq_pq pq;
            tu_random_pq(&pq, D, c->M, c->K, seed + 7, 1.0f);
            float *R = c->rotation == 1 ? tu_signed_permutation(D, seed + 8)
                     : c->rotation == 2 ? tu_random_rotation(D, seed + 9) : NULL;
            pq.rotation = R;
            char err[GSL_ERRLEN];
            CHECKF(gsl_layer_set_codebook(&l, &pq, err) == 0, "%s", err);
            pq.rotation = NULL;
            free(R);
            gslq_pq_free(&pq);
        }
        /* CPU */
        network net = {0};
        net.input = x;
        l.forward(l, net);
        memcpy(l.delta, d, n * sizeof(float));
        memcpy(cpu, below0, n * sizeof(float));
        net.delta = cpu;
        l.backward(l, net);
        gsl_layer_stats sc, sg;
        gsl_layer_get_stats(&l, &sc, 1);
        /* GPU */
        network ng = {0};
        ng.input_gpu = xg;
        l.forward_gpu(l, ng);
        from_gpu(gpu, l.output_gpu, n);
        CHECKF(memcmp(gpu, x, n * sizeof(float)) == 0, "%s: forward is not the identity", name);
        GSL_CUDA_CHECK(cudaMemcpy(l.delta_gpu, dg, n * sizeof(float), cudaMemcpyDeviceToDevice));
        GSL_CUDA_CHECK(cudaMemcpy(bg, below0, n * sizeof(float), cudaMemcpyHostToDevice));
        ng.delta_gpu = bg;
        l.backward_gpu(l, ng);
        from_gpu(gpu, bg, n);
        gsl_layer_get_stats(&l, &sg, 1);
        if (!installed || c->rotation < 2) {
            /* same codewords, same arithmetic (no FMA in the shared code): expected bit for bit; checked with a
             * hair of tolerance so that a failure prints the values */
            int bad = mismatches(name, gpu, cpu, n, 1e-6, 1e-6);
            CHECKF(bad == 0, "%s installed=%d: %d of %zu values differ", name, installed, bad, n);
        } else {
            /* general rotation: cuBLAS and the CPU's sgemm round the rotated vectors differently, which may flip
             * a near tie between codewords in a few sub-vectors */
            int rows = bad_rows(gpu, cpu, B, D, 1e-4, 1e-3);
            CHECKF(rows <= B / 100 + 1, "%s: %d of %d samples differ", name, rows, B);
        }
        if (installed) {
            CHECKF(sc.batches == 1 && sg.batches == 1, "%s: batches cpu %ld gpu %ld", name, sc.batches, sg.batches);
            double tol = c->rotation == 2 ? 0.02 : 1e-9;
            CHECKF(fabs(sc.snapped_frac - sg.snapped_frac) <= tol, "%s: snapped cpu %g gpu %g", name, sc.snapped_frac,
                   sg.snapped_frac);
            CHECKF(fabs(sc.qerr - sg.qerr) <= 1e-4 * fabs(sc.qerr) + 1e-6, "%s: qerr cpu %.9g gpu %.9g", name, sc.qerr,
                   sg.qerr);
            if (!c->quantloss && c->alpha > 0 && c->rotation < 2)
                CHECKF(sc.snapped_frac > 0, "%s: nothing snapped (the case tests little)", name);
            /* first layer of a network: no net.delta below; only the statistics */
            ng.delta_gpu = NULL;
            l.backward_gpu(l, ng);
            gsl_layer_get_stats(&l, &sg, 1);
            CHECKF(sg.batches == 1 && fabs(sg.qerr - sc.qerr) <= 1e-4 * fabs(sc.qerr) + 1e-6,
                   "%s: without net.delta: batches %ld qerr %g", name, sg.batches, sg.qerr);
        }
    }
    GSL_CUDA_CHECK(cudaFree(xg));
    GSL_CUDA_CHECK(cudaFree(dg));
    GSL_CUDA_CHECK(cudaFree(bg));
    free(x); free(d); free(below0); free(cpu); free(gpu);
    free_layer(l);
}

static void test_snap_equivalence(void)
{
    const cb_case cases[] = {
        {1, 12, 4, 16, 4, SNAP_ROTATE, 0.5f, 1, 0, 0},
        {3, 15, 5, 7, 3, SNAP_PROJECT, 1.0f, 1, 0, 0},      /* odd dims, dsub 3, K 7 */
        {64, 64, 8, 256, 8, SNAP_ROTATE, 0.7f, 1, 0, 0},    /* the benchmark's shape */
        {129, 64, 4, 256, 8, SNAP_PROJECT, 0.3f, 1, 0, 0},  /* a partial block */
        {130, 100, 4, 32, 20, SNAP_ROTATE, 1.0f, 1, 0, 0},  /* KMAX 32, dsub 25 */
        {50, 30, 3, 256, 100, SNAP_PROJECT, 0.5f, 1, 0, 0}, /* KMAX 256 */
        {77, 21, 7, 64, 1, SNAP_ROTATE, 1.0f, 1, 0, 0},     /* neighbors 1 */
        {65, 48, 6, 32, 1, SNAP_LOOKAHEAD, 0.5f, 0.8f, 0, 0},
        {5, 2048, 1, 8, 3, SNAP_LOOKAHEAD, 2.0f, 3.0f, 0, 0}, /* dsub 2048: the codebook in 2 chunks */
        {9, 4096, 2, 16, 5, SNAP_PROJECT, 1.0f, 1, 0, 0},      /* dsub 2048, 16 codewords in 4 chunks */
        {40, 24, 4, 16, 4, SNAP_ROTATE, 0.5f, 1, 1, 0},     /* signed permutation: exact */
        {40, 24, 4, 16, 1, SNAP_LOOKAHEAD, 0.5f, 1.5f, 1, 0},
        {100, 32, 4, 64, 8, SNAP_PROJECT, 0.5f, 1, 2, 0},   /* general rotation */
        {100, 32, 8, 64, 1, SNAP_LOOKAHEAD, 0.5f, 1, 2, 0},
        {128, 64, 8, 256, 8, SNAP_ROTATE, 0.0f, 1, 2, 0},   /* alpha 0 with a rotation: exact pass-through */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) codebook_case(&cases[i], 100 + 13 * i);
}

static void test_quantloss_equivalence(void)
{
    const cb_case cases[] = {
        {1, 12, 4, 16, 1, SNAP_ROTATE, 0.5f, 1, 0, 1},
        {3, 15, 5, 7, 1, SNAP_ROTATE, 0.1f, 1, 0, 1},
        {129, 64, 8, 256, 1, SNAP_ROTATE, 0.3f, 1, 0, 1},
        {5, 2048, 1, 8, 1, SNAP_ROTATE, 1.0f, 1, 0, 1},
        {40, 24, 4, 16, 1, SNAP_ROTATE, 0.5f, 1, 1, 1},
        {100, 32, 4, 64, 1, SNAP_ROTATE, 0.5f, 1, 2, 1},
        {64, 32, 4, 64, 1, SNAP_ROTATE, 0.0f, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) codebook_case(&cases[i], 500 + 17 * i);
}

static void sim_case(int type, int mining, float margin, int multi, int B, int D, int C, unsigned long long seed)
{
    char name[160];
    snprintf(name, sizeof name, "similarity %s%s %s B=%d D=%d C=%d",
             type == TU_CONTRASTIVE ? "contrastive"
             : type == TU_COSINE    ? "cosine"
             : type == TU_NCA       ? "nca"
                                    : "triplet",
             type != TU_TRIPLET ? "" : mining == TU_ALL ? "/all" : "/hard", multi ? "multi-hot" : "one-hot", B, D, C);
    const size_t n = (size_t)B * D;
    float *x = malloc(n * sizeof(float)), *t = malloc((size_t)B * C * sizeof(float));
    float *cpu = malloc(n * sizeof(float)), *gpu = malloc(n * sizeof(float)), *below = malloc(n * sizeof(float));
    double *xd = malloc(n * sizeof(double));
    /* hard mining switches its choice of positive or negative discontinuously: keep the inputs away from that */
    for (int tries = 0; tries < 100; tries++) {
        tu_fill_randn(x, n, &seed, 1.0f);
        tu_random_labels(t, B, C, multi, &seed);
        if (type != TU_TRIPLET || mining != TU_HARD) break;
        for (size_t i = 0; i < n; i++) xd[i] = x[i];
        double corner;
        tu_sim_loss(type, mining, margin, xd, t, B, D, C, &corner);
        if (corner > 1e-4) break;
    }
    layer l = make_similarity_layer(B, D, C, (sim_type)type, (sim_mining)mining, margin);
    network net = {0};
    net.input = x;
    net.truth = t;
    l.forward(l, net);
    float cost_cpu = l.cost[0];
    memcpy(cpu, l.delta, n * sizeof(float));
    network ng = {0};
    ng.input_gpu = to_gpu(x, n);
    ng.truth_gpu = to_gpu(t, (size_t)B * C);
    ng.truth = t; /* Darknet's forward_network_gpu keeps the host pointer too: "there is a truth" */
    l.cost[0] = -1;
    l.forward_gpu(l, ng);
    float cost_gpu = l.cost[0];
    from_gpu(gpu, l.output_gpu, n);
    CHECKF(memcmp(gpu, x, n * sizeof(float)) == 0, "%s: output is not the input", name);
    from_gpu(gpu, l.delta_gpu, n);
    CHECKF(fabs(cost_gpu - cost_cpu) <= 1e-4 * fabs(cost_cpu) + 1e-5, "%s: cost gpu %.9g cpu %.9g", name, cost_gpu,
           cost_cpu);
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(cpu[i]));
    int bad = mismatches(name, gpu, cpu, n, 1e-5 * scale + 1e-7, 2e-3);
    CHECKF(bad == 0, "%s: %d of %zu gradient values differ", name, bad, n);
    if (B > 1) CHECKF(scale > 0 || cost_cpu == 0, "%s: zero gradient with cost %g", name, cost_cpu);
    /* backward adds l.delta into net.delta */
    for (size_t i = 0; i < n; i++) below[i] = (float)(i % 7) - 3;
    ng.delta_gpu = to_gpu(below, n);
    l.backward_gpu(l, ng);
    from_gpu(cpu, ng.delta_gpu, n); /* cpu now holds the result, gpu the layer's delta */
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += cpu[i] != below[i] + gpu[i];
    CHECKF(bad == 0, "%s: backward does not add l.delta into net.delta (%d values)", name, bad);
    GSL_CUDA_CHECK(cudaFree(ng.input_gpu));
    GSL_CUDA_CHECK(cudaFree(ng.truth_gpu));
    GSL_CUDA_CHECK(cudaFree(ng.delta_gpu));
    free(x); free(t); free(cpu); free(gpu); free(below); free(xd);
    free_layer(l);
}

static void test_similarity_equivalence(void)
{
    const int shapes[][3] = {{2, 3, 2}, {3, 1, 2}, {33, 7, 5}, {64, 16, 10}, {300, 5, 7}};
    unsigned long long seed = 900;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int multi = 0; multi < 2; multi++) {
            int B = shapes[s][0], D = shapes[s][1], C = shapes[s][2];
            sim_case(TU_CONTRASTIVE, 0, 2.0f, multi, B, D, C, seed++);
            sim_case(TU_COSINE, 0, 0, multi, B, D, C, seed++);
            sim_case(TU_TRIPLET, TU_HARD, 0.5f, multi, B, D, C, seed++);
            sim_case(TU_TRIPLET, TU_ALL, 0.5f, multi, B, D, C, seed++);
            sim_case(TU_NCA, 0, 0, multi, B, D, C, seed++);
        }
    sim_case(TU_CONTRASTIVE, 0, 1.0f, 0, 1, 4, 2, seed++); /* batch 1: no pairs */
}

/* A whole network on the device and on the host: one training step from the same weights, compared. Darknet's
 * backward_connected_layer_gpu clamps the layer's delta to [-1, 1] (constrain_gpu) before the activation's
 * gradient; its CPU path does not. So the device's step is checked against the host's delta clamped the same way
 * (the activation is linear: the clamp is the only difference), with a batch where some deltas exceed 1. */
static float clamp1(float v) { return v < -1 ? -1 : v > 1 ? 1 : v; }

/* weight_updates of a [connected] layer as Darknet lays them out (outputs x inputs): sum over the batch of
 * f(delta) * input, f the identity or clamp1 */
static void fc_updates(double *wu, const float *delta, const float *in, int B, int no, int ni, int clamp)
{
    for (int j = 0; j < no; j++)
        for (int i = 0; i < ni; i++) {
            double s = 0;
            for (int b = 0; b < B; b++) {
                float d = delta[(size_t)b * no + j];
                s += (double)(clamp ? clamp1(d) : d) * in[(size_t)b * ni + i];
            }
            wu[(size_t)j * ni + i] = s;
        }
}

static int updates_mismatch(const char *name, const float *got, const double *want, int n)
{
    double scale = 0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-4 * scale + 1e-3 * fabs(want[i]) && bad++ < 4)
            fprintf(stderr, "  %s[%d]: got %.9g want %.9g\n", name, i, got[i], want[i]);
    return scale > 0 ? bad : -1;
}

static void test_network_step(void)
{
    gsl_registry_install();
    network *net = parse_network_cfg((char *)tu_cfg("test_snap_net.cfg"));
    layer *fc = &net->layers[0], *snap = &net->layers[1], *sim = &net->layers[2];
    CHECK(fc->type == CONNECTED && fc->activation == LINEAR);
    gslq_pq pq;
    tu_random_pq(&pq, 8, 4, 16, 3, 1.0f);
    CHECK(gsl_layer_set_codebook(snap, &pq, NULL) == 0);
    gslq_pq_free(&pq);
    unsigned long long seed = 4;
    tu_fill_randn(net->input, (size_t)net->inputs * net->batch, &seed, 1.0f);
    tu_random_labels(net->truth, net->batch, 3, 0, &seed);
    net->train = 1;
    const int B = net->batch, no = fc->outputs, ni = fc->inputs, nw = no * ni, nd = B * no;
    float *wu = malloc(nw * sizeof(float)), *dcpu = malloc(nd * sizeof(float)), *dgpu = malloc(nd * sizeof(float));
    double *want = malloc(nw * sizeof(double));
    net->gpu_index = -1; /* the host path */
    forward_network(net);
    backward_network(net);
    float cost_cpu = *net->cost;
    memcpy(dcpu, fc->delta, nd * sizeof(float));
    /* the reference formula against the host's own updates (unclamped) */
    fc_updates(want, dcpu, net->input, B, no, ni, 0);
    CHECKF(updates_mismatch("host weight_updates", fc->weight_updates, want, nw) == 0,
           "the host's weight updates are not sum(delta * input)");
    net->gpu_index = 0; /* the device path */
    forward_network(net);
    backward_network(net);
    float cost_gpu = *net->cost;
    CHECKF(fabs(cost_gpu - cost_cpu) <= 1e-4 * fabs(cost_cpu) + 1e-6, "cost gpu %.9g cpu %.9g", cost_gpu, cost_cpu);
    int clamped = 0, bad = 0;
    double dscale = 0;
    for (int i = 0; i < nd; i++) {
        clamped += fabsf(dcpu[i]) > 1;
        dscale = fmax(dscale, fabs(clamp1(dcpu[i])));
    }
    CHECKF(clamped > 0 && clamped < nd, "%d of %d deltas beyond [-1, 1]: the case tests %s", clamped, nd,
           clamped ? "nothing unclamped" : "no clamp");
    from_gpu(dgpu, fc->delta_gpu, nd);
    for (int i = 0; i < nd; i++)
        if (fabs(dgpu[i] - clamp1(dcpu[i])) > 1e-5 * dscale + 1e-4 * fabs(dcpu[i]) && bad++ < 4)
            fprintf(stderr, "  delta[%d]: gpu %.9g, host %.9g clamped %.9g\n", i, dgpu[i], dcpu[i], clamp1(dcpu[i]));
    CHECKF(bad == 0, "connected delta: %d of %d differ from the host's clamped to [-1, 1]", bad, nd);
    from_gpu(wu, fc->weight_updates_gpu, nw);
    fc_updates(want, dcpu, net->input, B, no, ni, 1);
    bad = updates_mismatch("device weight_updates", wu, want, nw);
    CHECKF(bad == 0, "connected weight updates: %d of %d differ from the host's delta clamped", bad, nw);
    gsl_layer_stats st;
    gsl_layer_get_stats(snap, &st, 0);
    CHECK(st.batches == 2);
    CHECK(sim->cost[0] == cost_gpu);
    free(wu); free(dcpu); free(dgpu); free(want);
    free_network(net);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        fprintf(stderr, "test_gpu_layers: no CUDA device\n");
        printf("RESULT 0 passed, 1 failed\n");
        return 1;
    }
    gpu_index = 0;
    cuda_set_device(0);
    RUN(test_snap_equivalence);
    RUN(test_quantloss_equivalence);
    RUN(test_similarity_equivalence);
    RUN(test_network_step);
    return TEST_END();
}
