/* [snap]: the CUDA path. Agrees with backward_snap_layer (snap_layer.c), which is the reference; the per-sub-vector
 * update is the same function (snap_subvector in snap_layer.h), and the codeword search reproduces
 * gslq_pq_nearest's order and rounding (squared differences summed in order, no fused multiply-add; ties go to
 * the lower index), so CPU and GPU choose the same codewords. */
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
#include "snap_layer.h"

#define SNAP_THREADS 128        /* samples per block (one thread per sample and sub-space) */
#define SNAP_SHARED_BYTES 32768 /* shared memory staging a chunk of the sub-codebook */

/* One thread per (sample b, sub-space m = blockIdx.y). The sub-codebook of m is staged through shared memory in
 * chunks, every thread of the block scanning the same codewords. Search: the k nearest codewords of x_m (k <= KMAX;
 * rotate/project) and, for lookahead, the codeword nearest to x_m + eta d_m. Then snap_subvector writes d'_m (or
 * d'_m - d_m with diff), and the block adds its snapped count and quantization error to acc (4 doubles: totals,
 * then the current pass). */
template <int KMAX>
__global__ void snap_backward_kernel(int n, int D, int K, int dsub, int k, int mode, float alpha, float eta,
                                     const float *__restrict__ x, const float *__restrict__ d,
                                     const float *__restrict__ centroids, float *out, int diff, double *acc)
{
    extern __shared__ float code[]; /* (kc, dsub) */
    __shared__ double red_q[SNAP_THREADS];
    __shared__ double red_s[SNAP_THREADS];
    const int m = blockIdx.y;
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    const bool on = b < n;
    const float *cm = centroids + (size_t)m * K * dsub;
    const size_t o = (size_t)b * D + (size_t)m * dsub;
    int kc = SNAP_SHARED_BYTES / (dsub * (int)sizeof(float));
    if (kc < 1) kc = 1;

    float bd[KMAX];
    int bi[KMAX];
    int nk = 0;
    float la_d[1];
    int la_i[1] = {0};
    int la_n = 0;
    const bool lookahead = mode == SNAP_LOOKAHEAD;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = min(kc, K - k0);
        __syncthreads();
        for (int t = threadIdx.x; t < kn * dsub; t += blockDim.x) code[t] = cm[(size_t)k0 * dsub + t];
        __syncthreads();
        if (!on) continue;
        for (int c = 0; c < kn; c++) {
            const float *cw = code + c * dsub;
            float s = 0.0f, s2 = 0.0f;
            for (int j = 0; j < dsub; j++) {
                const float xj = x[o + j];
                const float df = __fsub_rn(xj, cw[j]);
                s = __fadd_rn(s, __fmul_rn(df, df));
                if (lookahead) {
                    const float p = __fadd_rn(xj, __fmul_rn(eta, d[o + j]));
                    const float df2 = __fsub_rn(p, cw[j]);
                    s2 = __fadd_rn(s2, __fmul_rn(df2, df2));
                }
            }
            snap_topk_insert(s, k0 + c, bd, bi, &nk, k);
            if (lookahead) snap_topk_insert(s2, k0 + c, la_d, la_i, &la_n, 1);
        }
    }
    double snapped = 0, q = 0;
    if (on) {
        q = bd[0];
        snapped = snap_subvector(mode, alpha, dsub, x + o, d + o, cm, lookahead ? la_i : bi, lookahead ? 1 : nk,
                                 out + o, diff);
    }
    red_q[threadIdx.x] = q;
    red_s[threadIdx.x] = snapped;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            red_q[threadIdx.x] += red_q[threadIdx.x + s];
            red_s[threadIdx.x] += red_s[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        atomicAdd(&acc[0], red_s[0]);
        atomicAdd(&acc[1], red_q[0]);
        atomicAdd(&acc[2], red_s[0]);
        atomicAdd(&acc[3], red_q[0]);
    }
}

extern "C" void forward_snap_layer_gpu(layer l, network net)
{
    /* net.input_gpu (B, D) -> l.output_gpu (B, D): the identity */
    GSL_CUDA_CHECK(cudaMemcpyAsync(l.output_gpu, net.input_gpu, (size_t)l.batch * l.inputs * sizeof(float),
                                   cudaMemcpyDeviceToDevice, 0));
}

extern "C" void backward_snap_layer_gpu(layer l, network net)
{
    /* l.output_gpu (B, D) = x; l.delta_gpu (B, D) = d; net.delta_gpu (B, D) += d' (or NULL) */
    snap_state *s = (snap_state *)l.state;
    gsl_codebook *cb = &s->cb;
    const int B = l.batch, D = l.inputs;
    GSL_INVARIANT(B <= cb->max_batch && cb->device >= 0);
    const float one = 1.0f;
    if (!cb->installed) {
        if (net.delta_gpu) GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        return;
    }
    gsl_codebook_begin_pass_gpu(cb);
    const float *x = l.output_gpu, *d = l.delta_gpu;
    const int rotated = cb->pq.rotation != NULL;
    if (rotated) {
        gsl_codebook_rotate_gpu(cb, x, cb->xr_gpu, B);
        gsl_codebook_rotate_gpu(cb, d, cb->dr_gpu, B);
        x = cb->xr_gpu;
        d = cb->dr_gpu;
    }
    const int diff = rotated || !net.delta_gpu;
    float *out = diff ? cb->er_gpu : net.delta_gpu;
    const int k = s->mode == SNAP_LOOKAHEAD ? 1 : s->neighbors;
    int kc = SNAP_SHARED_BYTES / (cb->dsub * (int)sizeof(float));
    if (kc < 1) kc = 1;
    if (kc > cb->K) kc = cb->K;
    const size_t shmem = (size_t)kc * cb->dsub * sizeof(float);
    dim3 grid((B + SNAP_THREADS - 1) / SNAP_THREADS, cb->M);
#define SNAP_LAUNCH(KM)                                                                                        \
    snap_backward_kernel<KM><<<grid, SNAP_THREADS, shmem>>>(B, D, cb->K, cb->dsub, k, (int)s->mode, s->alpha,  \
                                                            s->eta, x, d, cb->centroids_gpu, out, diff,        \
                                                            cb->acc_gpu)
    if (k <= 8) SNAP_LAUNCH(8);
    else if (k <= 32) SNAP_LAUNCH(32);
    else SNAP_LAUNCH(256);
#undef SNAP_LAUNCH
    GSL_LAUNCH_CHECK("snap_backward_kernel");
    if (rotated && net.delta_gpu) { /* net.delta += d + R^T (d' - d) */
        GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        gsl_codebook_unrotate_add_gpu(cb, 1.0f, cb->er_gpu, net.delta_gpu, B);
    }
    gsl_codebook_count_pass(cb, B, 1);
}
