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

#define QL_THREADS 128
#define QL_SHARED_BYTES 32768

/* One thread per (sample b, sub-space m = blockIdx.y); sub-codebook m staged through shared memory in chunks.
 * Writes d + lambda (c - x) (or c - x with diff) and adds the quantization error to acc (4 doubles). */
__global__ void quantloss_backward_kernel(int n, int D, int K, int dsub, float lambda, const float *__restrict__ x,
                                          const float *__restrict__ d, const float *__restrict__ centroids,
                                          float *out, int diff, double *acc)
{
    extern __shared__ float code[]; /* (kc, dsub) */
    __shared__ double red_q[QL_THREADS];
    const int m = blockIdx.y;
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    const bool on = b < n;
    const float *cm = centroids + (size_t)m * K * dsub;
    const size_t o = (size_t)b * D + (size_t)m * dsub;
    int kc = QL_SHARED_BYTES / (dsub * (int)sizeof(float));
    if (kc < 1) kc = 1;
    float best = 0.0f;
    int bi = -1;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = min(kc, K - k0);
        __syncthreads();
        for (int t = threadIdx.x; t < kn * dsub; t += blockDim.x) code[t] = cm[(size_t)k0 * dsub + t];
        __syncthreads();
        if (!on) continue;
        for (int c = 0; c < kn; c++) {
            const float *cw = code + c * dsub;
            float s = 0.0f;
            for (int j = 0; j < dsub; j++) {
                const float df = __fsub_rn(x[o + j], cw[j]);
                s = __fadd_rn(s, __fmul_rn(df, df));
            }
            if (bi < 0 || s < best) { best = s; bi = k0 + c; }
        }
    }
    double q = 0;
    if (on) {
        q = best;
        quantloss_subvector(lambda, dsub, x + o, d + o, cm + (size_t)bi * dsub, out + o, diff);
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

extern "C" void forward_quantloss_layer_gpu(layer l, network net)
{
    /* net.input_gpu (B, D) -> l.output_gpu (B, D): the identity */
    GSL_CUDA_CHECK(cudaMemcpyAsync(l.output_gpu, net.input_gpu, (size_t)l.batch * l.inputs * sizeof(float),
                                   cudaMemcpyDeviceToDevice, 0));
}

extern "C" void backward_quantloss_layer_gpu(layer l, network net)
{
    /* l.output_gpu (B, D) = x; l.delta_gpu (B, D) = d; net.delta_gpu (B, D) += d + lambda (Q(x) - x) (or NULL) */
    quantloss_state *s = (quantloss_state *)l.state;
    gsl_codebook *cb = &s->cb;
    const int B = l.batch, D = l.inputs;
    GSL_INVARIANT(B <= cb->max_batch && cb->device >= 0);
    const float one = 1.0f;
    if (!cb->installed) {
        if (net.delta_gpu) GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        return;
    }
    gsl_codebook_begin_pass_gpu(cb);
    const float *x = l.output_gpu;
    const int rotated = cb->pq.rotation != NULL;
    if (rotated) {
        gsl_codebook_rotate_gpu(cb, x, cb->xr_gpu, B);
        x = cb->xr_gpu;
    }
    const int diff = rotated || !net.delta_gpu;
    float *out = diff ? cb->er_gpu : net.delta_gpu;
    int kc = QL_SHARED_BYTES / (cb->dsub * (int)sizeof(float));
    if (kc < 1) kc = 1;
    if (kc > cb->K) kc = cb->K;
    const size_t shmem = (size_t)kc * cb->dsub * sizeof(float);
    dim3 grid((B + QL_THREADS - 1) / QL_THREADS, cb->M);
    quantloss_backward_kernel<<<grid, QL_THREADS, shmem>>>(B, D, cb->K, cb->dsub, s->lambda, x, l.delta_gpu,
                                                           cb->centroids_gpu, out, diff, cb->acc_gpu);
    GSL_LAUNCH_CHECK("quantloss_backward_kernel");
    if (rotated && net.delta_gpu) { /* net.delta += d + lambda R^T (c - y) */
        GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        if (s->lambda != 0) gsl_codebook_unrotate_add_gpu(cb, s->lambda, cb->er_gpu, net.delta_gpu, B);
    }
    gsl_codebook_count_pass(cb, B, 1);
}
