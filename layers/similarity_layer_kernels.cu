/* [similarity]: the CUDA path. Agrees with forward_similarity_layer (similarity_layer.c), the reference, using the
 * same per-pair functions (similarity_layer.h). A training step stays on the device: the Gram matrix and the
 * gradient through cuBLAS, labels, coefficients and the cost through the kernels below. The one transfer is the
 * 4-byte cost, which Darknet's calc_network_cost reads from l.cost[0] on the host. */
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
#include "similarity_layer.h"

#define SIM_THREADS 256 /* a power of two (block reductions) */

/* Sum over the block (every thread gets it). sh holds blockDim.x doubles. */
__device__ double sim_block_sum(double v, double *sh)
{
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

/* Minimum over the block (every thread gets it). sh holds blockDim.x floats. */
__device__ float sim_block_min(float v, float *sh)
{
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s && sh[t + s] < sh[t]) sh[t] = sh[t + s];
        __syncthreads();
    }
    const float r = sh[0];
    __syncthreads();
    return r;
}

/* same (B, B): s_ij; thread per (i = blockIdx.y, j). */
__global__ void sim_same_kernel(int B, int C, const float *truth, float *same)
{
    const int i = blockIdx.y;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < B) same[(size_t)i * B + j] = (float)sim_share_label(truth + (size_t)i * C, truth + (size_t)j * C, C);
}

/* Contrastive: row i = blockIdx.x of coef, and rowcost[i]. */
__global__ void sim_contrastive_kernel(int B, float margin, const float *G, const float *same, float *coef,
                                       float *rowcost)
{
    __shared__ double sh[SIM_THREADS];
    const int i = blockIdx.x;
    const float sc = 2.0f / (B - 1);
    const float gii = G[(size_t)i * B + i];
    double rc = 0, rs = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (j == i) continue;
        float dl;
        const float D = sim_sqdist(gii, G[(size_t)j * B + j], G[(size_t)i * B + j]);
        rc += sim_contrastive_pair(D, same[(size_t)i * B + j] > 0.5f, margin, &dl);
        const float sij = sc * dl;
        coef[(size_t)i * B + j] = -2 * sij;
        rs += sij;
    }
    rc = sim_block_sum(rc, sh);
    rs = sim_block_sum(rs, sh);
    if (threadIdx.x == 0) {
        coef[(size_t)i * B + i] = (float)(2 * rs);
        rowcost[i] = (float)(rc / (B - 1));
    }
}

/* Cosine: row i = blockIdx.x of coef, and rowcost[i]. */
__global__ void sim_cosine_kernel(int B, const float *G, const float *same, float *coef, float *rowcost)
{
    __shared__ double sh[SIM_THREADS];
    const int i = blockIdx.x;
    const float sc = 2.0f / (B - 1);
    const float ni = sqrtf(G[(size_t)i * B + i] + SIM_EPS);
    double rc = 0, diag = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (j == i) continue;
        const float nj = sqrtf(G[(size_t)j * B + j] + SIM_EPS);
        const float cs = G[(size_t)i * B + j] / (ni * nj);
        const float r = cs - same[(size_t)i * B + j];
        rc += r * r;
        const float g = sc * 2 * r;
        coef[(size_t)i * B + j] = g / (ni * nj);
        diag -= g * cs / (ni * ni);
    }
    rc = sim_block_sum(rc, sh);
    diag = sim_block_sum(diag, sh);
    if (threadIdx.x == 0) {
        coef[(size_t)i * B + i] = (float)diag;
        rowcost[i] = (float)(rc / (B - 1));
    }
}

/* Triplet, hard mining: anchor a = blockIdx.x; row a of w, rowcost[a], rowcount[a]. The farthest positive and the
 * nearest negative, ties to the lower index (as the CPU scan in index order). */
__global__ void sim_triplet_hard_kernel(int B, float margin, const float *G, const float *same, float *w,
                                        float *rowcost, float *rowcount)
{
    __shared__ float sDp[SIM_THREADS], sDn[SIM_THREADS];
    __shared__ int sp[SIM_THREADS], sn[SIM_THREADS];
    const int a = blockIdx.x, t = threadIdx.x;
    const float gaa = G[(size_t)a * B + a];
    int p = -1, n = -1;
    float Dp = 0, Dn = 0;
    for (int j = t; j < B; j += blockDim.x) { /* in increasing j: strict comparisons keep the lower index */
        w[(size_t)a * B + j] = 0;
        if (j == a) continue;
        const float D = sim_sqdist(gaa, G[(size_t)j * B + j], G[(size_t)a * B + j]);
        if (same[(size_t)a * B + j] > 0.5f) {
            if (p < 0 || D > Dp) { p = j; Dp = D; }
        } else if (n < 0 || D < Dn) {
            n = j;
            Dn = D;
        }
    }
    sDp[t] = Dp; sp[t] = p; sDn[t] = Dn; sn[t] = n;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) {
            const int q = sp[t + s];
            if (q >= 0 && (sp[t] < 0 || sDp[t + s] > sDp[t] || (sDp[t + s] == sDp[t] && q < sp[t]))) {
                sp[t] = q;
                sDp[t] = sDp[t + s];
            }
            const int r = sn[t + s];
            if (r >= 0 && (sn[t] < 0 || sDn[t + s] < sDn[t] || (sDn[t + s] == sDn[t] && r < sn[t]))) {
                sn[t] = r;
                sDn[t] = sDn[t + s];
            }
        }
        __syncthreads();
    }
    if (t == 0) {
        float loss = 0, cnt = 0;
        if (sp[0] >= 0 && sn[0] >= 0) {
            float wp, wn;
            loss = sim_triplet_term(sDp[0], sDn[0], margin, &wp, &wn);
            w[(size_t)a * B + sp[0]] = wp;
            w[(size_t)a * B + sn[0]] = wn;
            cnt = loss > 0;
        }
        rowcost[a] = loss;
        rowcount[a] = cnt;
    }
}

/* Triplet, all triplets: anchor a = blockIdx.x. The thread owning column j sums the terms in which j is the
 * positive (over every negative) or the negative (over every positive), so row a of w is written without atomics. */
__global__ void sim_triplet_all_kernel(int B, float margin, const float *G, const float *same, float *w,
                                       float *rowcost, float *rowcount)
{
    __shared__ double sh[SIM_THREADS];
    const int a = blockIdx.x;
    const float gaa = G[(size_t)a * B + a];
    const float *srow = same + (size_t)a * B;
    double loss = 0, cnt = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        float acc = 0;
        if (j != a) {
            const float Dj = sim_sqdist(gaa, G[(size_t)j * B + j], G[(size_t)a * B + j]);
            if (srow[j] > 0.5f) { /* j is the positive */
                for (int n = 0; n < B; n++) {
                    if (srow[n] > 0.5f) continue;
                    const float Dn = sim_sqdist(gaa, G[(size_t)n * B + n], G[(size_t)a * B + n]);
                    float wp, wn;
                    const float h = sim_triplet_term(Dj, Dn, margin, &wp, &wn);
                    if (h > 0) {
                        acc += wp;
                        loss += h;
                        cnt += 1;
                    }
                }
            } else { /* j is the negative */
                for (int p = 0; p < B; p++) {
                    if (p == a || !(srow[p] > 0.5f)) continue;
                    const float Dp = sim_sqdist(gaa, G[(size_t)p * B + p], G[(size_t)a * B + p]);
                    float wp, wn;
                    if (sim_triplet_term(Dp, Dj, margin, &wp, &wn) > 0) acc += wn;
                }
            }
        }
        w[(size_t)a * B + j] = acc;
    }
    loss = sim_block_sum(loss, sh);
    cnt = sim_block_sum(cnt, sh);
    if (threadIdx.x == 0) {
        rowcost[a] = (float)loss;
        rowcount[a] = (float)cnt;
    }
}

/* NCA: row i = blockIdx.x of w (dl_i/dD_ij) and rowcost[i] = l_i, as nca_rows in similarity_layer.c. */
__global__ void sim_nca_kernel(int B, const float *G, const float *same, float *w, float *rowcost)
{
    __shared__ double sh[SIM_THREADS];
    __shared__ float shf[SIM_THREADS];
    const int i = blockIdx.x;
    const float gii = G[(size_t)i * B + i];
    float *wi = w + (size_t)i * B;
    const float *si = same + (size_t)i * B;
    float dmin = INFINITY;
    double havep = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (j == i) continue;
        const float D = sim_sqdist(gii, G[(size_t)j * B + j], G[(size_t)i * B + j]);
        wi[j] = D;
        dmin = fminf(dmin, D);
        havep += si[j] > 0.5f;
    }
    dmin = sim_block_min(dmin, shf);
    havep = sim_block_sum(havep, sh);
    if (havep == 0) { /* no positive: no term */
        for (int j = threadIdx.x; j < B; j += blockDim.x) wi[j] = 0;
        if (threadIdx.x == 0) rowcost[i] = 0;
        return;
    }
    double z = 0, zp = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (j == i) continue;
        const float e = sim_nca_weight(wi[j], dmin);
        z += e;
        if (si[j] > 0.5f) zp += e;
        wi[j] = e;
    }
    z = sim_block_sum(z, sh);
    zp = sim_block_sum(zp, sh);
    for (int j = threadIdx.x; j < B; j += blockDim.x)
        wi[j] = j == i ? 0.0f : (float)((si[j] > 0.5f ? wi[j] / zp : 0) - wi[j] / z);
    if (threadIdx.x == 0) rowcost[i] = (float)(log(z) - log(zp));
}

/* One block: tot = {sum of row costs, sum of row counts, scale, cost}. scale: 1, or for triplet mining=all
 * B / (active triplets) (0 when none). */
__global__ void sim_total_kernel(int B, int batch_all, const float *rowcost, const float *rowcount, float *tot)
{
    __shared__ double sh[SIM_THREADS];
    double c = 0, n = 0;
    for (int i = threadIdx.x; i < B; i += blockDim.x) {
        c += rowcost[i];
        n += rowcount[i];
    }
    c = sim_block_sum(c, sh);
    n = sim_block_sum(n, sh);
    if (threadIdx.x == 0) {
        const float scale = batch_all ? (n > 0 ? (float)(B / n) : 0.0f) : 1.0f;
        tot[0] = (float)c;
        tot[1] = (float)n;
        tot[2] = scale;
        tot[3] = (float)(scale * c);
    }
}

/* Triplet, nca: row i = blockIdx.x of coef = 2 (diag(S 1) - S), S = scale (w + w^T). */
__global__ void sim_pair_coef_kernel(int B, const float *w, const float *tot, float *coef)
{
    __shared__ double sh[SIM_THREADS];
    const int i = blockIdx.x;
    const float scale = tot[2];
    double rs = 0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        if (j == i) continue;
        const float sij = scale * (w[(size_t)i * B + j] + w[(size_t)j * B + i]);
        coef[(size_t)i * B + j] = -2 * sij;
        rs += sij;
    }
    rs = sim_block_sum(rs, sh);
    if (threadIdx.x == 0) coef[(size_t)i * B + i] = (float)(2 * rs);
}

extern "C" void forward_similarity_layer_gpu(layer l, network net)
{
    /* net.input_gpu X (B, D) -> l.output_gpu copy; net.truth_gpu T (B, classes) -> l.cost[0], l.delta_gpu = -C X */
    similarity_state *s = (similarity_state *)l.state;
    const int B = l.batch, D = l.inputs, C = s->classes;
    GSL_INVARIANT(B <= s->max_batch && s->device >= 0);
    GSL_CUDA_CHECK(cudaMemcpyAsync(l.output_gpu, net.input_gpu, (size_t)B * D * sizeof(float),
                                   cudaMemcpyDeviceToDevice, 0));
    if (!net.truth) return; /* prediction (network_predict clears net.truth): no labels, no loss */
    l.cost[0] = 0;
    if (B < 2) {
        GSL_CUDA_CHECK(cudaMemsetAsync(l.delta_gpu, 0, (size_t)B * D * sizeof(float), 0));
        return;
    }
    cublasHandle_t h = blas_handle();
    const float one = 1.0f, zero = 0.0f, minus_one = -1.0f;
    /* G (B, B) = X X^T: column-major that is X^T' X' with X' = the (D, B) column-major view of X. */
    GSL_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, B, B, D, &one, net.input_gpu, D, net.input_gpu, D,
                                 &zero, s->gram_gpu, B));
    sim_same_kernel<<<dim3((B + SIM_THREADS - 1) / SIM_THREADS, B), SIM_THREADS>>>(B, C, net.truth_gpu,
                                                                                   s->same_gpu);
    GSL_LAUNCH_CHECK("sim_same_kernel");
    if (s->type == SIM_CONTRASTIVE) {
        sim_contrastive_kernel<<<B, SIM_THREADS>>>(B, s->margin, s->gram_gpu, s->same_gpu, s->coef_gpu,
                                                   s->rowcost_gpu);
        GSL_LAUNCH_CHECK("sim_contrastive_kernel");
    } else if (s->type == SIM_COSINE) {
        sim_cosine_kernel<<<B, SIM_THREADS>>>(B, s->gram_gpu, s->same_gpu, s->coef_gpu, s->rowcost_gpu);
        GSL_LAUNCH_CHECK("sim_cosine_kernel");
    } else if (s->type == SIM_NCA) {
        sim_nca_kernel<<<B, SIM_THREADS>>>(B, s->gram_gpu, s->same_gpu, s->w_gpu, s->rowcost_gpu);
        GSL_LAUNCH_CHECK("sim_nca_kernel");
    } else if (s->mining == SIM_MINING_HARD) {
        sim_triplet_hard_kernel<<<B, SIM_THREADS>>>(B, s->margin, s->gram_gpu, s->same_gpu, s->w_gpu,
                                                    s->rowcost_gpu, s->rowcount_gpu);
        GSL_LAUNCH_CHECK("sim_triplet_hard_kernel");
    } else {
        sim_triplet_all_kernel<<<B, SIM_THREADS>>>(B, s->margin, s->gram_gpu, s->same_gpu, s->w_gpu,
                                                   s->rowcost_gpu, s->rowcount_gpu);
        GSL_LAUNCH_CHECK("sim_triplet_all_kernel");
    }
    if (s->type != SIM_TRIPLET) GSL_CUDA_CHECK(cudaMemsetAsync(s->rowcount_gpu, 0, B * sizeof(float), 0));
    sim_total_kernel<<<1, SIM_THREADS>>>(B, s->type == SIM_TRIPLET && s->mining == SIM_MINING_ALL, s->rowcost_gpu,
                                         s->rowcount_gpu, s->tot_gpu);
    GSL_LAUNCH_CHECK("sim_total_kernel");
    if (s->type == SIM_TRIPLET || s->type == SIM_NCA) {
        sim_pair_coef_kernel<<<B, SIM_THREADS>>>(B, s->w_gpu, s->tot_gpu, s->coef_gpu);
        GSL_LAUNCH_CHECK("sim_pair_coef_kernel");
    }
    /* delta (B, D) = -C X: column-major delta' = -X' C', C' = the column-major view of the row-major C. */
    GSL_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, D, B, B, &minus_one, net.input_gpu, D, s->coef_gpu, B,
                                 &zero, l.delta_gpu, D));
    GSL_CUDA_CHECK(cudaMemcpy(l.cost, s->tot_gpu + 3, sizeof(float), cudaMemcpyDeviceToHost));
}

extern "C" void backward_similarity_layer_gpu(layer l, network net)
{
    /* l.delta_gpu (B, D) -> net.delta_gpu (B, D) += l.delta_gpu */
    if (!net.delta_gpu) return;
    const float one = 1.0f;
    GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), l.batch * l.inputs, &one, l.delta_gpu, 1, net.delta_gpu, 1));
}
