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

/* One thread per (sample, sub-space), the sub-codebook staged through shared memory (gsl_codebook_scan in
 * codebook.h). Search: the k nearest codewords of x_m (k <= KMAX; rotate/project) and, for lookahead, the codeword
 * nearest to x_m + eta d_m. Then snap_subvector writes d'_m (or d'_m - d_m with diff), and the block adds its
 * snapped count and quantization error to acc (4 doubles: totals, then the current pass). */
template <int KMAX>
__global__ void snap_backward_kernel(int n, int D, int K, int dsub, int k, int mode, float alpha, float eta,
                                     const float *__restrict__ x, const float *__restrict__ d,
                                     const float *__restrict__ centroids, float *out, int diff, double *acc)
{
    extern __shared__ float code[]; /* (kc, dsub) */
    __shared__ double red_q[GSL_CODEBOOK_THREADS];
    __shared__ double red_s[GSL_CODEBOOK_THREADS];
    const gsl_codebook_thread t = gsl_codebook_thread_at(n, D, K, dsub, centroids);
    const size_t o = t.o;

    float bd[KMAX];
    int bi[KMAX];
    int nk = 0;
    float la_d[1];
    int la_i[1] = {0};
    int la_n = 0;
    const bool lookahead = mode == SNAP_LOOKAHEAD;
    gsl_codebook_scan(t, K, dsub, code, [&](int c, const float *cw) {
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
        snap_topk_insert(s, c, bd, bi, &nk, k);
        if (lookahead) snap_topk_insert(s2, c, la_d, la_i, &la_n, 1);
    });
    double snapped = 0, q = 0;
    if (t.on) {
        q = bd[0];
        snapped = snap_subvector(mode, alpha, dsub, x + o, d + o, t.cm, lookahead ? la_i : bi, lookahead ? 1 : nk,
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

extern "C" void backward_snap_layer_gpu(layer l, network net)
{
    /* l.output_gpu (B, D) = x; l.delta_gpu (B, D) = d; net.delta_gpu (B, D) += d' (or NULL) */
    snap_state *s = (snap_state *)l.state;
    gsl_codebook *cb = &s->cb;
    gsl_codebook_pass p; /* as on the CPU: x, d rotated; d' or, with p.diff, the correction d' - d */
    if (!gsl_codebook_backward_prologue_gpu(cb, l, net, 1, &p)) return;
    const int B = l.batch, D = l.inputs;
    const int k = s->mode == SNAP_LOOKAHEAD ? 1 : s->neighbors;
    const size_t shmem = gsl_codebook_shared_bytes(cb);
    const dim3 grid = gsl_codebook_grid(cb, B);
#define SNAP_LAUNCH(KM)                                                                                        \
    snap_backward_kernel<KM><<<grid, GSL_CODEBOOK_THREADS, shmem>>>(B, D, cb->K, cb->dsub, k, (int)s->mode,    \
                                                                    s->alpha, s->eta, p.x, p.d,                \
                                                                    cb->centroids_gpu, p.out, p.diff, cb->acc_gpu)
    if (k <= 8) SNAP_LAUNCH(8);
    else if (k <= 32) SNAP_LAUNCH(32);
    else SNAP_LAUNCH(256);
#undef SNAP_LAUNCH
    GSL_LAUNCH_CHECK("snap_backward_kernel");
    gsl_codebook_backward_epilogue_gpu(cb, l, net, 1.0f); /* net.delta += d + R^T (d' - d) */
}
