/* The batched GPU convolution (darknet/conv_gpu.cu, GPU=1 builds without cuDNN) against the CPU path: forward output,
 * weight and bias gradients and the input gradient, for 3x3, 5x5 stride 2 with groups, 1x1 with batch normalisation
 * and an unpadded stride-2 layer, each with the whole batch in one call, in chunks that do not divide the batch, and
 * one image per call (gsl_conv_gpu_per_image, as GSL_GPU_CONV=per-image: upstream's algorithm). Built with GPU=1 only; run on a GPU host by
 * scripts/gpu-check.sh. */
#include <cuda_runtime.h>
#include <stdlib.h>

#include "darknet.h"
#include "convolutional_layer.h"
#include "cuda.h"
#include "gsl_net.h"
#include "layers_testutil.h"
#include "test.h"

typedef struct {
    int batch, c, h, w, n, size, stride, pad, groups, bn;
} conv_case;

static int mismatches(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - ref[i]) <= atol + rtol * fabs((double)ref[i])) && bad++ < 4)
            fprintf(stderr, "  %s[%zu]: gpu %.9g cpu %.9g\n", what, i, got[i], ref[i]);
    return bad;
}

static void pull(float *x, const float *g, size_t n)
{
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cudaMemcpy(x, g, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
}

/* mode 0: whole batch per call; 1: chunks of 3 images; 2: one image per call. */
static void run_case(const conv_case *k, int mode)
{
    gpu_index = 0;
    srand(7);
    layer l = make_convolutional_layer(k->batch, k->h, k->w, k->c, k->n, k->groups, k->size, k->stride, k->pad, LINEAR,
                                       k->bn, 0, 0, 0);
    size_t in = (size_t)k->batch * l.inputs, out = (size_t)k->batch * l.outputs;
    unsigned long long seed = 11;
    float *x = malloc(in * sizeof(float)), *dx = calloc(in, sizeof(float)), *dy = malloc(out * sizeof(float));
    float *ycpu = malloc(out * sizeof(float)), *ygpu = malloc(out * sizeof(float)), *dxg = malloc(in * sizeof(float));
    float *wu = malloc(l.nweights * sizeof(float)), *bu = malloc(l.n * sizeof(float));
    float *hws = calloc(l.workspace_size / sizeof(float) + 1, sizeof(float));
    tu_fill_randn(x, in, &seed, 1.0f);
    tu_fill_randn(dy, out, &seed, 1.0f);
    /* the host path */
    network nc = {0};
    nc.input = x;
    nc.delta = dx;
    nc.workspace = hws;
    nc.train = 1;
    nc.gpu_index = -1;
    forward_convolutional_layer(l, nc);
    memcpy(ycpu, l.output, out * sizeof(float));
    memcpy(l.delta, dy, out * sizeof(float));
    backward_convolutional_layer(l, nc);
    /* the device path, from the same weights and zeroed updates */
    cuda_push_array(l.weights_gpu, l.weights, l.nweights);
    cuda_push_array(l.biases_gpu, l.biases, l.n);
    if (k->bn) cuda_push_array(l.scales_gpu, l.scales, l.n);
    fill_gpu(l.nweights, 0, l.weight_updates_gpu, 1);
    fill_gpu(l.n, 0, l.bias_updates_gpu, 1);
    if (k->bn) fill_gpu(l.n, 0, l.scale_updates_gpu, 1);
    network ng = {0};
    ng.n = 1;
    ng.layers = &l;
    ng.gpu_index = 0;
    ng.train = 1;
    ng.input_gpu = cuda_make_array(x, in);
    ng.delta_gpu = cuda_make_array(0, in);
    ng.workspace = cuda_make_array(0, l.workspace_size / sizeof(float) + 1);
    size_t per = ((size_t)l.c / l.groups * l.size * l.size + l.n / l.groups) * l.out_h * l.out_w;
    gsl_conv_gpu_per_image(mode == 2);
    size_t got = gsl_conv_gpu_reserve(&ng, (mode == 1 ? 3 : k->batch) * per * sizeof(float));
    CHECKF(mode == 2 ? got == 0 : got >= per * 3, "workspace reserved: %zu floats (mode %d)", got, mode);
    l.forward_gpu(l, ng);
    pull(ygpu, l.output_gpu, out);
    cuda_push_array(l.delta_gpu, dy, out);
    l.backward_gpu(l, ng);
    char name[96];
    snprintf(name, sizeof name, "%dx%dx%d k%d s%d p%d g%d bn%d mode %d", k->w, k->h, k->c, k->size, k->stride, k->pad,
             k->groups, k->bn, mode);
    CHECKF(mismatches("output", ygpu, ycpu, out, 1e-4, 1e-4) == 0, "%s: forward output", name);
    pull(wu, l.weight_updates_gpu, l.nweights);
    CHECKF(mismatches("weight_updates", wu, l.weight_updates, l.nweights, 1e-3, 1e-4) == 0, "%s: weight gradient", name);
    pull(bu, l.bias_updates_gpu, l.n);
    CHECKF(mismatches("bias_updates", bu, l.bias_updates, l.n, 1e-3, 1e-4) == 0, "%s: bias gradient", name);
    pull(dxg, ng.delta_gpu, in);
    CHECKF(mismatches("input delta", dxg, dx, in, 1e-4, 1e-4) == 0, "%s: input gradient", name);
    gsl_conv_gpu_release(&ng);
    cuda_free(ng.input_gpu);
    cuda_free(ng.delta_gpu);
    cuda_free(ng.workspace);
    free(x); free(dx); free(dy); free(ycpu); free(ygpu); free(dxg); free(wu); free(bu); free(hws);
    free_layer(l);
}

static void test_conv_equivalence(void)
{
    const conv_case cases[] = {
        {7, 3, 9, 11, 5, 3, 1, 1, 1, 0},  /* 3x3, padded */
        {6, 4, 10, 10, 6, 5, 2, 2, 2, 0}, /* 5x5 stride 2, two groups */
        {5, 8, 7, 7, 4, 1, 1, 0, 1, 1},   /* 1x1 (no columns), batch normalisation */
        {4, 2, 12, 9, 3, 3, 2, 0, 1, 0},  /* stride 2, no padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int mode = 0; mode < 3; mode++) run_case(&cases[i], mode);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        fprintf(stderr, "test_gpu_conv: no CUDA device\n");
        printf("RESULT 0 passed, 1 failed\n");
        return 1;
    }
    cuda_set_device(0);
    RUN(test_conv_equivalence);
    return TEST_END();
}
