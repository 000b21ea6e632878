/* Training-step time of the Fashion-MNIST LeNet with and without [snap], and the share of the step spent in the
 * plugin layers, in one run (scripts/bench/bench_layers.sh).
 *
 *   bench_layers [-n STEPS] [-r ROUNDS] [-t THREADS] [-type contrastive|cosine|triplet] [-s SEED] [-cpu]
 *                [-gpu] [-bw BATCH]
 *
 * Network (28x28x1, batch 128): conv 5x5x32 (same) relu, maxpool 2, conv 5x5x64 (same) relu, maxpool 2,
 * connected 256 relu, connected 64 linear (the embedding), then [snap] (none, M = 4 or M = 8; K = 256,
 * neighbors = 8, rotate, alpha 0.5) and [similarity] (10 classes, class-balanced labels). The three variants are
 * parsed with the same seed (same initial weights), see the same synthetic batch, and get a codebook trained by
 * gslq_pq_train on the network's own embeddings, so the snapping does real work.
 *
 * Step time: Darknet's train_network_datum (forward, backward, update), ROUNDS rounds of STEPS steps per variant,
 * the variants interleaved within each round; the median over rounds of the mean step time, and the overhead of
 * [snap] as the median over rounds of the ratio to the plain network's time in the same round. The learning rate
 * is 0 (the update still runs): every step computes on the same weights, so the variants differ by [snap] alone. Shares: a second pass
 * with every layer's forward/backward wrapped in a timer (on the GPU, synchronised around each layer).
 * -gpu (GPU builds): the same on device 0, plus the [snap] backward's effective bandwidth (bytes it must move:
 * x, d read, net.delta read and written, the codebook once) against the device's copy bandwidth (cudaMemcpy
 * device to device), at the benchmark's batch and at batch -bw (default 16384).
 * -cpu: measure the process's CPU time instead of wall-clock time (host runs on a shared machine; with -t 1 this
 * is the work of the step whatever else runs).
 * Output: human-readable lines, then `key=value` lines. */
#include <darknet.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "codebook.h"
#include "gslq.h"
#include "registry.h"
#include "similarity_layer.h"
#include "snap_layer.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable" /* the harness's counters: this program only borrows its RNG */
#include "test.h"
#pragma GCC diagnostic pop
#ifdef GPU
#include <cuda_runtime.h>
#include "gsl_cuda.h"
#endif

#ifndef GSLQ_NO_BLAS
void openblas_set_num_threads(int);
#endif

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Wall-clock time, or with -cpu the process's CPU time (all threads): robust when other jobs share the machine. */
static clockid_t timing_clock = CLOCK_MONOTONIC;
static double now(void) { return clock_s(timing_clock); }

static void sync_device(int gpu)
{
#ifdef GPU
    if (gpu) GSL_CUDA_CHECK(cudaDeviceSynchronize());
#else
    (void)gpu;
#endif
}

static long parse_int(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_layers: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_layers [-n STEPS] [-r ROUNDS] [-t THREADS] [-type contrastive|cosine|triplet] "
                    "[-s SEED] [-cpu] [-gpu] [-bw BATCH]\n");
    exit(2);
}

#define NV 3
static const int variant_M[NV] = {0, 4, 8};
enum { BATCH = 128, EMB = 64, CLASSES = 10, K = 256, NEIGHBORS = 8 };

static const char *write_cfg(int v, const char *type)
{
    static char path[NV][512];
    const char *dir = getenv("GSL_TEST_TMP");
    snprintf(path[v], sizeof path[v], "%s/bench_layers_%d.cfg", dir && *dir ? dir : "/tmp", v);
    FILE *f = fopen(path[v], "w");
    if (!f) { perror(path[v]); exit(1); }
    fprintf(f, "[net]\nbatch=%d\nsubdivisions=1\nheight=28\nwidth=28\nchannels=1\nlearning_rate=0\n"
               "momentum=0.9\ndecay=0.0005\npolicy=constant\nmax_batches=1000000\n\n"
               "[convolutional]\nfilters=32\nsize=5\nstride=1\npad=1\nactivation=relu\n\n"
               "[maxpool]\nsize=2\nstride=2\n\n"
               "[convolutional]\nfilters=64\nsize=5\nstride=1\npad=1\nactivation=relu\n\n"
               "[maxpool]\nsize=2\nstride=2\n\n"
               "[connected]\noutput=256\nactivation=relu\n\n"
               "[connected]\noutput=%d\nactivation=linear\n\n", BATCH, EMB);
    if (variant_M[v])
        fprintf(f, "[snap]\nsubspaces=%d\ncodewords=%d\nneighbors=%d\nmode=rotate\nalpha=0.5\n\n", variant_M[v], K,
                NEIGHBORS);
    fprintf(f, "[similarity]\nclasses=%d\ntype=%s\n", CLASSES, type);
    if (fclose(f)) { perror(path[v]); exit(1); }
    return path[v];
}

/* ---- per-layer timing: every layer's functions wrapped (net.index names the layer) ---- */
#define MAX_LAYERS 64
static void (*orig_fwd[MAX_LAYERS])(layer, network);
static void (*orig_bwd[MAX_LAYERS])(layer, network);
static double t_fwd[MAX_LAYERS], t_bwd[MAX_LAYERS];
static int timing_gpu;

static void timed_fwd(layer l, network net)
{
    sync_device(timing_gpu);
    double t0 = now();
    orig_fwd[net.index](l, net);
    sync_device(timing_gpu);
    t_fwd[net.index] += now() - t0;
}

static void timed_bwd(layer l, network net)
{
    sync_device(timing_gpu);
    double t0 = now();
    orig_bwd[net.index](l, net);
    sync_device(timing_gpu);
    t_bwd[net.index] += now() - t0;
}

static void wrap_layers(network *net, int on, int gpu)
{
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        void (**f)(layer, network) = gpu ? &l->forward_gpu : &l->forward;
        void (**b)(layer, network) = gpu ? &l->backward_gpu : &l->backward;
        if (on) {
            orig_fwd[i] = *f; orig_bwd[i] = *b;
            *f = timed_fwd; *b = timed_bwd;
            t_fwd[i] = t_bwd[i] = 0;
        } else {
            *f = orig_fwd[i]; *b = orig_bwd[i];
        }
    }
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) { double t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double step_time(network *net, int steps, int gpu)
{
    sync_device(gpu);
    double t0 = now();
    for (int s = 0; s < steps; s++) train_network_datum(net);
    sync_device(gpu);
    return (now() - t0) / steps;
}

/* Trains the codebook of the [snap] layer on the embeddings of `batches` forward passes over random inputs. */
static gslq_pq trained[NV];

static void install_codebook(network *net, int v, int snap_i, int M, unsigned long long *seed)
{
    int nb = 4, n = nb * BATCH;
    float *emb = malloc(sizeof(float) * n * EMB);
    float *keep = malloc(sizeof(float) * net->inputs * BATCH);
    memcpy(keep, net->input, sizeof(float) * net->inputs * BATCH);
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < net->inputs * BATCH; i++) net->input[i] = test_randf(seed, 0, 1);
        net->train = 0;
        forward_network(net);
        layer *l = &net->layers[snap_i];
#ifdef GPU
        if (net->gpu_index >= 0) GSL_CUDA_CHECK(cudaMemcpy(l->output, l->output_gpu, sizeof(float) * BATCH * EMB,
                                                           cudaMemcpyDeviceToHost));
#endif
        memcpy(emb + (size_t)b * BATCH * EMB, l->output, sizeof(float) * BATCH * EMB);
    }
    memcpy(net->input, keep, sizeof(float) * net->inputs * BATCH);
    gslq_pq pq;
    gslq_error e;
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 8;
    if (gslq_pq_init(&pq, EMB, M, K, &e) || gslq_pq_train(&pq, emb, n, &p, &e)) {
        fprintf(stderr, "bench_layers: codebook: %s\n", e.msg);
        exit(1);
    }
    char err[GSL_ERRLEN];
    if (gsl_layer_set_codebook(&net->layers[snap_i], &pq, err)) {
        fprintf(stderr, "bench_layers: %s\n", err);
        exit(1);
    }
    trained[v] = pq; /* kept: the pass-through comparison uninstalls and reinstalls it */
    free(emb);
    free(keep);
}

#ifdef GPU
/* The [snap] backward alone at batch B (D = EMB, M = 8): seconds per call, and the bytes it must move. */
static double snap_backward_alone(int B, int M, double *bytes)
{
    layer l = make_snap_layer(B, EMB, M, K, NEIGHBORS, SNAP_ROTATE, 0.5f, 1.0f);
    gslq_pq pq;
    unsigned long long seed = 3;
    gslq_pq_init(&pq, EMB, M, K, NULL);
    for (int i = 0; i < K * EMB; i++) pq.centroids[i] = test_randn(&seed);
    gsl_layer_set_codebook(&l, &pq, NULL);
    gslq_pq_free(&pq);
    size_t n = (size_t)B * EMB;
    float *h = malloc(n * sizeof(float)), *below;
    for (size_t i = 0; i < n; i++) h[i] = test_randn(&seed);
    GSL_CUDA_CHECK(cudaMemcpy(l.output_gpu, h, n * sizeof(float), cudaMemcpyHostToDevice));
    for (size_t i = 0; i < n; i++) h[i] = test_randn(&seed);
    GSL_CUDA_CHECK(cudaMemcpy(l.delta_gpu, h, n * sizeof(float), cudaMemcpyHostToDevice));
    GSL_CUDA_CHECK(cudaMalloc((void **)&below, n * sizeof(float)));
    GSL_CUDA_CHECK(cudaMemset(below, 0, n * sizeof(float)));
    network net = {0};
    net.delta_gpu = below;
    for (int w = 0; w < 3; w++) l.backward_gpu(l, net);
    int reps = B >= 4096 ? 20 : 200;
    sync_device(1);
    double t0 = now();
    for (int r = 0; r < reps; r++) l.backward_gpu(l, net);
    sync_device(1);
    double t = (now() - t0) / reps;
    *bytes = 4.0 * n * sizeof(float) + (double)K * EMB * sizeof(float);
    GSL_CUDA_CHECK(cudaFree(below));
    free(h);
    free_layer(l);
    return t;
}

static double copy_bandwidth(void)
{
    size_t bytes = (size_t)256 << 20;
    void *a, *b;
    GSL_CUDA_CHECK(cudaMalloc(&a, bytes));
    GSL_CUDA_CHECK(cudaMalloc(&b, bytes));
    GSL_CUDA_CHECK(cudaMemset(a, 1, bytes));
    GSL_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    sync_device(1);
    int reps = 20;
    double t0 = now();
    for (int r = 0; r < reps; r++) GSL_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    sync_device(1);
    double t = (now() - t0) / reps;
    GSL_CUDA_CHECK(cudaFree(a));
    GSL_CUDA_CHECK(cudaFree(b));
    return 2.0 * bytes / t; /* read + write */
}
#endif

int main(int argc, char **argv)
{
    int steps = 10, rounds = 5, threads = 0, gpu = 0, bw_batch = 16384;
    (void)bw_batch;
    unsigned long long seed = 1;
    const char *type = "contrastive";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-gpu")) { gpu = 1; continue; }
        if (!strcmp(a, "-cpu")) { timing_clock = CLOCK_PROCESS_CPUTIME_ID; continue; }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "-n")) steps = (int)parse_int(v, 1, 100000, "-n");
        else if (!strcmp(a, "-r")) rounds = (int)parse_int(v, 1, 1000, "-r");
        else if (!strcmp(a, "-t")) threads = (int)parse_int(v, 0, 256, "-t");
        else if (!strcmp(a, "-s")) seed = (unsigned long long)parse_int(v, 1, 1L << 30, "-s");
        else if (!strcmp(a, "-bw")) bw_batch = (int)parse_int(v, 1, 1 << 20, "-bw");
        else if (!strcmp(a, "-type")) {
            if (strcmp(v, "contrastive") && strcmp(v, "cosine") && strcmp(v, "triplet")) usage();
            type = v;
        } else usage();
    }
    if (gpu && timing_clock != CLOCK_MONOTONIC) {
        fprintf(stderr, "bench_layers: -cpu ignored with -gpu\n");
        timing_clock = CLOCK_MONOTONIC;
    }
#ifndef GPU
    if (gpu) { fprintf(stderr, "bench_layers: -gpu needs a GPU=1 build\n"); return 2; }
    gpu_index = -1;
#else
    if (gpu) {
        int nd = 0;
        if (cudaGetDeviceCount(&nd) != cudaSuccess || nd < 1) { fprintf(stderr, "bench_layers: no CUDA device\n"); return 1; }
        gpu_index = 0;
        cuda_set_device(0);
    } else {
        gpu_index = -1;
    }
#endif
#ifndef GSLQ_NO_BLAS
    if (threads > 0) openblas_set_num_threads(threads);
#else
    (void)threads;
#endif
    gsl_registry_install();

    network *net[NV];
    int snap_i[NV], sim_i[NV];
    unsigned long long dseed = seed;
    float *input = malloc(sizeof(float) * 28 * 28 * BATCH), *truth = calloc(CLASSES * BATCH, sizeof(float));
    for (int i = 0; i < 28 * 28 * BATCH; i++) input[i] = test_randf(&dseed, 0, 1);
    for (int i = 0; i < BATCH; i++) truth[i * CLASSES + i % CLASSES] = 1; /* class-balanced */
    for (int v = 0; v < NV; v++) {
        srand((unsigned)seed);
        net[v] = parse_network_cfg((char *)write_cfg(v, type));
        net[v]->gpu_index = gpu ? 0 : -1;
        snap_i[v] = sim_i[v] = -1;
        for (int i = 0; i < net[v]->n; i++) {
            if (gsl_is_snap_layer(&net[v]->layers[i])) snap_i[v] = i;
            if (gsl_is_similarity_layer(&net[v]->layers[i])) sim_i[v] = i;
        }
        memcpy(net[v]->input, input, sizeof(float) * 28 * 28 * BATCH);
        memcpy(net[v]->truth, truth, sizeof(float) * CLASSES * BATCH);
        if (snap_i[v] >= 0) {
            unsigned long long cs = seed + 17;
            install_codebook(net[v], v, snap_i[v], variant_M[v], &cs);
        }
        for (int w = 0; w < 2; w++) train_network_datum(net[v]);
    }

    /* step times, variants interleaved */
    double *t[NV], *tp[NV]; /* tp: the same network with [snap] passing through (codebook uninstalled) */
    for (int v = 0; v < NV; v++) {
        t[v] = malloc(sizeof(double) * rounds);
        tp[v] = malloc(sizeof(double) * rounds);
    }
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < NV; v++) {
            t[v][r] = step_time(net[v], steps, gpu);
            if (snap_i[v] < 0) continue;
            gsl_layer_set_codebook(&net[v]->layers[snap_i[v]], NULL, NULL);
            tp[v][r] = step_time(net[v], steps, gpu);
            gsl_layer_set_codebook(&net[v]->layers[snap_i[v]], &trained[v], NULL);
        }
    double step[NV], over[NV], over_pass[NV] = {0}, *ratio = malloc(sizeof(double) * rounds);
    for (int v = 0; v < NV; v++) {
        for (int r = 0; r < rounds; r++) ratio[r] = t[v][r] / t[0][r] - 1;
        over[v] = median(ratio, rounds);
        if (snap_i[v] < 0) continue;
        for (int r = 0; r < rounds; r++) ratio[r] = t[v][r] / tp[v][r] - 1;
        over_pass[v] = median(ratio, rounds);
    }
    free(ratio);
    for (int v = 0; v < NV; v++) step[v] = median(t[v], rounds);

    /* per-layer shares */
    double share_snap[NV] = {0}, share_sim[NV] = {0}, snap_ms[NV] = {0}, sim_ms[NV] = {0}, frac[NV] = {0};
    timing_gpu = gpu;
    for (int v = 0; v < NV; v++) {
        wrap_layers(net[v], 1, gpu);
        double total = 0;
        int ps = steps * rounds < 20 ? steps * rounds : 20;
        sync_device(gpu);
        double t0 = now();
        for (int s = 0; s < ps; s++) train_network_datum(net[v]);
        sync_device(gpu);
        total = now() - t0;
        wrap_layers(net[v], 0, gpu);
        if (snap_i[v] >= 0) {
            snap_ms[v] = 1e3 * (t_fwd[snap_i[v]] + t_bwd[snap_i[v]]) / ps;
            share_snap[v] = (t_fwd[snap_i[v]] + t_bwd[snap_i[v]]) / total;
            gsl_layer_stats st;
            gsl_layer_get_stats(&net[v]->layers[snap_i[v]], &st, 0);
            frac[v] = st.last_snapped_frac;
        }
        sim_ms[v] = 1e3 * (t_fwd[sim_i[v]] + t_bwd[sim_i[v]]) / ps;
        share_sim[v] = (t_fwd[sim_i[v]] + t_bwd[sim_i[v]]) / total;
    }

    const char *dev = gpu ? "gpu" : "cpu";
    char blas[GSLQ_BLAS_DESCRIBE_LEN];
    gslq_blas_describe(blas, sizeof blas);
    printf("bench_layers: host %s\n", blas);
    printf("bench_layers: LeNet 28x28x1 -> %d-d embedding, batch %d, [similarity] %s, %s, %d rounds x %d steps, "
           "%s time\n", EMB, BATCH, type, dev, rounds, steps,
           timing_clock == CLOCK_MONOTONIC ? "wall-clock" : "process CPU");
    printf("  %-26s %10s %10s %10s %12s %12s %10s\n", "variant", "step ms", "vs plain", "vs pass", "[snap] ms",
           "[sim] ms", "snapped");
    printf("  (step ms: median over rounds; vs plain: median of the per-round ratios to the network without [snap];\n"
           "   vs pass: the same, to the same network with [snap] passing through (no codebook), which removes the\n"
           "   differences between network instances; [snap]/[sim] ms: the layers' own forward + backward per step,\n"
           "   timed layer by layer)\n");
    for (int v = 0; v < NV; v++) {
        char name[64];
        if (variant_M[v]) snprintf(name, sizeof name, "[snap] M=%d K=%d k=%d", variant_M[v], K, NEIGHBORS);
        else snprintf(name, sizeof name, "no [snap]");
        printf("  %-26s %10.3f %+9.2f%% %+9.2f%% %12.4f %12.4f %9.1f%%\n", name, 1e3 * step[v], 100 * over[v],
               100 * over_pass[v], snap_ms[v], sim_ms[v], 100 * frac[v]);
    }
    printf("  shares of the step (timed layer by layer): [similarity] %.2f%%; [snap] M=4 %.2f%%, M=8 %.2f%%\n",
           100 * share_sim[0], 100 * share_snap[1], 100 * share_snap[2]);
    for (int v = 0; v < NV; v++)
        if (!isfinite(*net[v]->cost)) printf("  warning: variant %d's cost is %g (diverged)\n", v, *net[v]->cost);
    printf("device=%s type=%s batch=%d emb=%d steps=%d rounds=%d clock=%s\n", dev, type, BATCH, EMB, steps, rounds,
           timing_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
    printf("step_ms_plain=%.4f step_ms_snap4=%.4f step_ms_snap8=%.4f\n", 1e3 * step[0], 1e3 * step[1], 1e3 * step[2]);
    printf("snap4_overhead_pct=%.3f snap8_overhead_pct=%.3f\n", 100 * over[1], 100 * over[2]);
    printf("snap4_vs_passthrough_pct=%.3f snap8_vs_passthrough_pct=%.3f\n", 100 * over_pass[1], 100 * over_pass[2]);
    printf("snap4_share_pct=%.3f snap8_share_pct=%.3f similarity_share_pct=%.3f\n", 100 * share_snap[1],
           100 * share_snap[2], 100 * share_sim[0]);
#ifdef GPU
    if (gpu) {
        double copy = copy_bandwidth();
        printf("  device copy bandwidth (cudaMemcpy D2D, read + write): %.1f GB/s\n", copy / 1e9);
        int bs[2] = {BATCH, bw_batch};
        for (int i = 0; i < 2; i++) {
            for (int M = 4; M <= 8; M += 4) {
                double bytes, ts = snap_backward_alone(bs[i], M, &bytes);
                printf("  [snap] backward alone, batch %d, M=%d: %.4f ms, %.2f GB/s effective (%.2f%% of copy)\n",
                       bs[i], M, 1e3 * ts, bytes / ts / 1e9, 100 * bytes / ts / copy);
                printf("snap_bw_batch%d_M%d_ms=%.5f snap_bw_batch%d_M%d_gbs=%.3f\n", bs[i], M, 1e3 * ts, bs[i], M,
                       bytes / ts / 1e9);
            }
        }
        printf("copy_gbs=%.1f\n", copy / 1e9);
    }
#endif
    for (int v = 0; v < NV; v++) {
        free(t[v]);
        free(tp[v]);
        if (snap_i[v] >= 0) gslq_pq_free(&trained[v]);
        if (!gpu) {
            free(net[v]->seen); free(net[v]->t); free(net[v]->cost); free(net[v]->workspace);
            free(net[v]->steps); free(net[v]->scales);
        }
        free_network(net[v]);
    }
    free(input);
    free(truth);
    return 0;
}
