/* [quantloss]: the CUDA path. Agrees with backward_quantloss_layer (quantloss_layer.c), the reference: the same
 * per-sub-vector update (quantloss_subvector) and a nearest-codeword search with gslq_pq_nearest's order and
 * rounding (no fused multiply-add, ties to the lower index). */
#include <cuda_runtime.h>
#include <curand.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "darknet.h"
#include "cuda.h"
}
#include "quantloss_layer.h"

/* One thread per (sample, sub-space), the sub-codebook staged through shared memory (gsl_codebook_scan in
 * codebook.h). Writes d + lambda (c - x) (or c - x with diff) and adds the quantization error to acc (4 doubles). */
__global__ void quantloss_backward_kernel(int n, int D, int K, int dsub, float lambda, const float *__restrict__ x,
                                          const float *__restrict__ d, const float *__restrict__ centroids,
                                          float *out, int diff, double *acc)
{
    extern __shared__ float code[]; /* (kc, dsub) */
    __shared__ double red_q[GSL_CODEBOOK_THREADS];
    const gsl_codebook_thread t = gsl_codebook_thread_at(n, D, K, dsub, centroids);
    const size_t o = t.o;
    float best = 0.0f;
    int bi = -1;
    gsl_codebook_scan(t, K, dsub, code, [&](int c, const float *cw) {
        float s = 0.0f;
        for (int j = 0; j < dsub; j++) {
            const float df = __fsub_rn(x[o + j], cw[j]);
            s = __fadd_rn(s, __fmul_rn(df, df));
        }
        if (bi < 0 || s < best) { best = s; bi = c; }
    });
    double q = 0;
    if (t.on) {
        q = best;
        quantloss_subvector(lambda, dsub, x + o, d + o, t.cm + (size_t)bi * dsub, out + o, diff);
    }
    red_q[threadIdx.x] = q;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red_q[threadIdx.x] += red_q[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        atomicAdd(&acc[1], red_q[0]);
        atomicAdd(&acc[3], red_q[0]);
    }
}

extern "C" void backward_quantloss_layer_gpu(layer l, network net)
{
    /* l.output_gpu (B, D) = x; l.delta_gpu (B, D) = d; net.delta_gpu (B, D) += d + lambda (Q(x) - x) (or NULL) */
    quantloss_state *s = (quantloss_state *)l.state;
    gsl_codebook *cb = &s->cb;
    gsl_codebook_pass p; /* as on the CPU: x rotated, d as it came; with p.diff, c - y in the rotated space */
    if (!gsl_codebook_backward_prologue_gpu(cb, l, net, 0, &p)) return;
    const int B = l.batch, D = l.inputs;
    quantloss_backward_kernel<<<gsl_codebook_grid(cb, B), GSL_CODEBOOK_THREADS, gsl_codebook_shared_bytes(cb)>>>(
        B, D, cb->K, cb->dsub, s->lambda, p.x, p.d, cb->centroids_gpu, p.out, p.diff, cb->acc_gpu);
    GSL_LAUNCH_CHECK("quantloss_backward_kernel");
    gsl_codebook_backward_epilogue_gpu(cb, l, net, s->lambda); /* net.delta += d + lambda R^T (c - y) */
}
