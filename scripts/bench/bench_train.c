/* Training throughput of a Darknet cfg (images/s), for scripts/bench/bench_train.sh.
 *
 *   bench_train[-stock] CFG [-t THREADS] [-w WARMUP_BATCHES] [-n TIMED_BATCHES] [-s SEED] [-o WEIGHTS_OUT] [-p]
 *   bench_train -i        the BLAS and its kernel, as the benchmark runs them (one line)
 *
 * The network is built by Darknet's parse_network_cfg and trained by Darknet's train_network on synthetic data
 * (uniform pixels in [0,1), random one-hot labels, both from SEED; Darknet's own weight init is seeded with
 * srand(SEED)), so the -stock twin (upstream Darknet, its own gemm) and ours start from the same weights and see
 * the same batches. -o saves the weights after all batches (for the same-weights check); -p adds a per-layer time
 * breakdown (forward, backward, update) on stderr.
 * Threads: ours sets OpenBLAS's thread count. The -stock twin is upstream Darknet built with OPENMP=0, so it has
 * one thread; built with -DGSL_BENCH_OMP against a Darknet built with OPENMP=1, -t sets OpenMP's count instead.
 * Output: one line of key=value pairs on stdout. */
#include <darknet.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#ifdef GSL_BENCH_STOCK
#  ifdef GSL_BENCH_OMP
#    define VARIANT "stock-omp"
void omp_set_num_threads(int);
#  else
#    define VARIANT "stock"
#  endif
#else
#  define VARIANT "ours"
#endif
#ifdef GSLQ_NO_BLAS
static void openblas_set_num_threads(int n) { (void)n; } /* BLAS=0: Darknet's own gemm, one thread */
#else
void openblas_set_num_threads(int);
#endif

static double now(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_train CFG [-t THREADS] [-w WARMUP] [-n BATCHES] [-s SEED] [-o WEIGHTS_OUT] [-p]\n");
    exit(2);
}

static long parse_int(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_train: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

/* ---- -p: per-layer timing, by wrapping each layer's forward/backward (net.index names the layer) */
#define MAX_LAYERS 256
static void (*orig_fwd[MAX_LAYERS])(layer, network);
static void (*orig_bwd[MAX_LAYERS])(layer, network);
static double t_fwd[MAX_LAYERS], t_bwd[MAX_LAYERS];

static void timed_fwd(layer l, network net)
{
    double t0 = now(CLOCK_MONOTONIC);
    orig_fwd[net.index](l, net);
    t_fwd[net.index] += now(CLOCK_MONOTONIC) - t0;
}

static void timed_bwd(layer l, network net)
{
    double t0 = now(CLOCK_MONOTONIC);
    orig_bwd[net.index](l, net);
    t_bwd[net.index] += now(CLOCK_MONOTONIC) - t0;
}

static const char *type_name(LAYER_TYPE t)
{
    switch (t) {
    case CONVOLUTIONAL: return "conv";
    case MAXPOOL: return "maxpool";
    case CONNECTED: return "connected";
    case SOFTMAX: return "softmax";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    (void)test_fails_; (void)tests_passed_; (void)tests_failed_; /* test.h is here for its random numbers */
    if (argc == 2 && !strcmp(argv[1], "-i")) {
        char blas[GSLQ_BLAS_DESCRIBE_LEN];
        gslq_blas_describe(blas, sizeof blas);
        printf("%s\n", blas);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') usage();
    char *cfg = argv[1];
    int threads = 1, warmup = 2, batches = 10, profile = 0;
    unsigned long long seed = 1;
    const char *out = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-p")) { profile = 1; continue; }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "-t")) threads = (int)parse_int(v, 1, 256, "-t");
        else if (!strcmp(a, "-w")) warmup = (int)parse_int(v, 0, 100000, "-w");
        else if (!strcmp(a, "-n")) batches = (int)parse_int(v, 1, 100000, "-n");
        else if (!strcmp(a, "-s")) seed = (unsigned long long)parse_int(v, 1, 1L << 30, "-s");
        else if (!strcmp(a, "-o")) out = v;
        else usage();
    }

#ifdef GSL_BENCH_STOCK
    openblas_set_num_threads(1); /* linked but unused by stock Darknet */
#  ifdef GSL_BENCH_OMP
    omp_set_num_threads(threads);
#  else
    if (threads != 1) {
        fprintf(stderr, "bench_train-stock: upstream Darknet built with OPENMP=0 runs on one thread only\n");
        return 2;
    }
#  endif
#else
    openblas_set_num_threads(threads);
#endif

    srand((unsigned)seed);
    /* parse_network_cfg prints the layer table on stderr; keep it out of the benchmark's output */
    int saved = dup(2);
    if (!freopen("/dev/null", "w", stderr)) { perror("freopen"); return 1; }
    network *net = parse_network_cfg(cfg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (!net) { fprintf(stderr, "bench_train: cannot parse %s\n", cfg); return 1; }

    int bs = net->batch * net->subdivisions, nb = warmup + batches;
    int in = net->inputs, classes = net->outputs;
    data d = {0};
    d.shallow = 0;
    d.X = make_matrix(bs * nb, in);
    d.y = make_matrix(bs * nb, classes);
    unsigned long long rs = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int r = 0; r < d.X.rows; r++) {
        for (int j = 0; j < in; j++) d.X.vals[r][j] = test_randf(&rs, 0, 1);
        int label = (int)test_randf(&rs, 0, (float)classes);
        d.y.vals[r][label < classes ? label : classes - 1] = 1;
    }
    data warm = d, timed = d;
    warm.X.rows = warm.y.rows = bs * warmup;
    timed.X.vals += bs * warmup; timed.y.vals += bs * warmup;
    timed.X.rows = timed.y.rows = bs * batches;

    if (warmup) train_network(net, warm);

    if (profile)
        for (int i = 0; i < net->n && i < MAX_LAYERS; i++) {
            orig_fwd[i] = net->layers[i].forward; net->layers[i].forward = timed_fwd;
            orig_bwd[i] = net->layers[i].backward; net->layers[i].backward = timed_bwd;
        }

    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    float loss = train_network(net, timed);
    double wall = now(CLOCK_MONOTONIC) - w0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double images = (double)bs * batches;

    printf("variant=%s threads=%d batch=%d batches=%d images=%.0f seconds=%.4f cpu_seconds=%.4f img_per_s=%.1f "
           "loss=%.6f\n", VARIANT, threads, bs, batches, images, wall, cpu, images / wall, loss);

    if (profile) {
        double tf = 0, tb = 0;
        for (int i = 0; i < net->n && i < MAX_LAYERS; i++) tf += t_fwd[i], tb += t_bwd[i];
        fprintf(stderr, "per-layer time over %d batches (ms per batch; rest = update, data copy, loss):\n", batches);
        for (int i = 0; i < net->n && i < MAX_LAYERS; i++) {
            layer l = net->layers[i];
            fprintf(stderr, "  %2d %-9s %4dx%4dx%4d -> %4dx%4dx%4d  fwd %8.3f  bwd %8.3f\n", i, type_name(l.type), l.w,
                    l.h, l.c, l.out_w, l.out_h, l.out_c, 1e3 * t_fwd[i] / batches, 1e3 * t_bwd[i] / batches);
        }
        fprintf(stderr, "  total fwd %.3f  bwd %.3f  rest %.3f  (ms per batch)\n", 1e3 * tf / batches,
                1e3 * tb / batches, 1e3 * (wall - tf - tb) / batches);
    }

    if (out) {
        save_weights(net, (char *)out);
        FILE *f = fopen(out, "rb");
        if (!f) { fprintf(stderr, "bench_train: cannot write %s\n", out); return 1; }
        fclose(f);
    }
    free_data(d);
    free_network(net);
    return 0;
}
