/* Decoding an image list the way gsl train's loader does (gsl_data_gather: read, stb_image, Darknet's resize_image
 * to the network's input), in batches, with the .data key loader_threads' thread count. Driver:
 * scripts/bench/bench_decode.sh.
 *   bench_decode LIST C H W THREADS [-default-malloc] [-passes P] [-batch B]
 * Prints one line: "img/s X". -default-malloc leaves glibc's allocation settings as they are (the gsl command
 * calls gsl_image_malloc_tune at start). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gsl_data.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int positive(const char *s, int *v)
{
    char *end;
    long x = strtol(s, &end, 10);
    if (*end || end == s || x < 1 || x > 1 << 20) return -1;
    *v = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    int c, h, w, threads, passes = 2, batch = 128, tune = 1;
    if (argc < 6 || positive(argv[2], &c) || positive(argv[3], &h) || positive(argv[4], &w) ||
        positive(argv[5], &threads)) {
        fprintf(stderr, "usage: bench_decode LIST C H W THREADS [-default-malloc] [-passes P] [-batch B]\n");
        return 2;
    }
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "-default-malloc")) tune = 0;
        else if (!strcmp(argv[i], "-passes") && i + 1 < argc && !positive(argv[i + 1], &passes)) i++;
        else if (!strcmp(argv[i], "-batch") && i + 1 < argc && !positive(argv[i + 1], &batch)) i++;
        else { fprintf(stderr, "bench_decode: bad argument '%s'\n", argv[i]); return 2; }
    }
    if (tune) gsl_image_malloc_tune();
    char err[GSL_DATA_ERRLEN];
    gsl_data d;
    if (gsl_data_load_list(argv[1], NULL, 1, 0, c, h, w, &d, err)) { fprintf(stderr, "bench_decode: %s\n", err); return 1; }
    d.threads = threads;
    int *idx = malloc(sizeof(int) * batch);
    float *x = malloc(sizeof(float) * (size_t)batch * c * h * w);
    if (!idx || !x) { fprintf(stderr, "bench_decode: out of memory\n"); return 1; }
    long done = 0;
    double t0 = now_s();
    for (int p = 0; p < passes; p++)
        for (int s = 0; s < d.n; s += batch) {
            int n = d.n - s < batch ? d.n - s : batch;
            for (int i = 0; i < n; i++) idx[i] = s + i;
            if (gsl_data_gather(&d, idx, n, x, NULL, err)) { fprintf(stderr, "bench_decode: %s\n", err); return 1; }
            done += n;
        }
    printf("img/s %.1f\n", done / (now_s() - t0));
    free(idx);
    free(x);
    gsl_data_free(&d);
    return 0;
}
