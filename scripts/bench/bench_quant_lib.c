/* One libgslq measurement for scripts/bench/bench_quant.sh, the twin of bench_quant_faiss.py: PQ (K = 256) trained on
 * TRAIN.fvecs (25 k-means iterations per sub-quantizer from random training points, Faiss's default), the MSE of
 * the training set, encoding the training set, ADC top-100 of QUERY.fvecs over those codes. Each call is timed by the
 * wall clock and by the process CPU clock (the same library calls the `gsl quant` command makes, without its file
 * I/O). Prints one line:
 *   gslq train_s=.. train_cpu_s=.. mse=.. encode_vps=.. encode_cpu_vps=.. adc_qps=.. adc_cpu_qps=..
 * Usage: bench_quant_lib TRAIN QUERY M THREADS
 *        bench_quant_lib -i      the BLAS and its kernel (chosen as bin/darknet chooses it), one line */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gslq.h"

static double clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int die(const char *what, const gslq_error *e)
{
    fprintf(stderr, "bench_quant_lib: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    gslq_error e;
    if (gslq_blas_select(argv, &e) && e.code == GSLQ_EINVAL) return die("BLAS kernel", &e);
    if (argc == 2 && argv[1][0] == '-' && argv[1][1] == 'i') {
        char blas[GSLQ_BLAS_DESCRIBE_LEN];
        gslq_blas_describe(blas, sizeof blas);
        printf("%s\n", blas);
        return 0;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: bench_quant_lib TRAIN.fvecs QUERY.fvecs M THREADS\n");
        return 2;
    }
    int M = atoi(argv[3]), nt = atoi(argv[4]), d, dq;
    size_t n, nq;
    float *x, *q;
    if (gslq_fvecs_read(argv[1], &x, &n, &d, &e)) return die(argv[1], &e);
    if (gslq_fvecs_read(argv[2], &q, &nq, &dq, &e)) return die(argv[2], &e);
    if (dq != d) return fprintf(stderr, "bench_quant_lib: dimensions %d and %d differ\n", d, dq), 1;
    gslq_pq pq;
    if (gslq_pq_init(&pq, d, M, 256, &e)) return die("pq_init", &e);
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 25;
    p.init = GSLQ_INIT_RANDOM;
    p.nthreads = nt;
    double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
    if (gslq_pq_train(&pq, x, n, &p, &e)) return die("train", &e);
    double w1 = clk(CLOCK_MONOTONIC), c1 = clk(CLOCK_PROCESS_CPUTIME_ID);
    double mse;
    if (gslq_pq_mse(&pq, x, n, d, nt, &mse, &e)) return die("mse", &e);
    uint8_t *codes = malloc(n * (size_t)M);
    int k = 100;
    int64_t *ids = malloc(nq * (size_t)k * sizeof(int64_t));
    if (!codes || !ids) return fprintf(stderr, "bench_quant_lib: out of memory\n"), 1;
    double w2 = clk(CLOCK_MONOTONIC), c2 = clk(CLOCK_PROCESS_CPUTIME_ID);
    if (gslq_pq_encode_mt(&pq, x, n, d, codes, nt, &e)) return die("encode", &e);
    double w3 = clk(CLOCK_MONOTONIC), c3 = clk(CLOCK_PROCESS_CPUTIME_ID);
    if (gslq_adc_search(&pq, codes, n, q, nq, d, k, ids, NULL, nt, &e)) return die("search", &e);
    double w4 = clk(CLOCK_MONOTONIC), c4 = clk(CLOCK_PROCESS_CPUTIME_ID);
    printf("gslq train_s=%.4f train_cpu_s=%.4f mse=%.6f encode_vps=%.0f encode_cpu_vps=%.0f adc_qps=%.0f "
           "adc_cpu_qps=%.0f\n",
           w1 - w0, c1 - c0, mse, (double)n / (w3 - w2), (double)n / (c3 - c2), (double)nq / (w4 - w3),
           (double)nq / (c4 - c3));
    free(codes); free(ids); free(x); free(q);
    gslq_pq_free(&pq);
    return 0;
}
