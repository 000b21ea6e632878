/* Darknet's GPU convolution without cuDNN, batched (GPU=1 builds without CUDNN=1). Upstream's
 * forward/backward_convolutional_layer_gpu loop over the batch: one im2col and one cuBLAS sgemm per image per layer
 * (and per group), so a small network's step is bound by kernel launches. These replacements (upstream's copies are
 * made weak) process a chunk of images per call:
 *   forward       col_b = im2col(x_b) for the chunk (one kernel), then y_b += W col_b for every b in one
 *                 cublasSgemmStridedBatched (W shared);
 *   weight grad   the chunk's columns laid side by side, col = [col_1 ... col_nb] (K x nb*N), and the output
 *                 gradient gathered the same way, dY = [dy_1 ... dy_nb] (m x nb*N): dW += dY col^T in one sgemm;
 *   input grad    dcol_b = W^T dy_b in one strided-batched sgemm, then col2im of the chunk added into dx (one kernel).
 * Then batch normalisation or bias, activation, as upstream. K = c/groups*size*size, N = out_h*out_w, m = n/groups.
 *
 * Workspace: a chunk of nb images needs nb*(K+m)*N floats (K*N for one image, upstream's own size). gsl_net_load
 * enlarges each network's workspace for whole batches up to GSL_GPU_CONV_WORKSPACE_MB (default 256) and says so;
 * otherwise (Darknet's own commands) the chunk is what upstream's workspace holds, one image. GSL_GPU_CONV=per-image
 * forces chunks of one image: upstream's algorithm, the reference and the benchmark's baseline.
 * Binary and XNOR layers and `smooth` are supported as upstream does them. */
#include <cuda_runtime.h>
#include <curand.h>
#include <cublas_v2.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "darknet.h"
#include "activations.h"
#include "batchnorm_layer.h"
#include "blas.h"
#include "convolutional_layer.h"
#include "cuda.h"
}

/* The workspaces gsl_conv_gpu_reserve allocated, and their sizes: a network's convolutions look theirs up by
 * net.workspace (any other workspace is upstream's, which holds one image's columns). */
#define MAX_RESERVED 64
static struct {
    const float *ws;
    size_t floats;
} reserved[MAX_RESERVED];
static int nreserved;
static pthread_mutex_t reserved_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t reserved_floats(const float *ws)
{
    size_t f = 0;
    pthread_mutex_lock(&reserved_mu);
    for (int i = 0; i < nreserved && !f; i++)
        if (reserved[i].ws == ws) f = reserved[i].floats;
    pthread_mutex_unlock(&reserved_mu);
    return f;
}

static void cublas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "darknet: cuBLAS %s failed (status %d)\n", what, (int)s);
    exit(1);
}

static void launch_ok(const char *what)
{
    cudaError_t e = cudaPeekAtLastError();
    if (e == cudaSuccess) return;
    fprintf(stderr, "darknet: CUDA kernel %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
}

static int grid(size_t n)
{
    size_t g = (n + BLOCK - 1) / BLOCK;
    return (int)(g > 65535 * 8 ? 65535 * 8 : (g ? g : 1));
}

/* Columns of nb images (image b at im + b*istride: c planes of h x w) into col: entry (b, row r, pixel p) at
 * b*bs + r*rs + p, row r = (ch*k + ky)*k + kx, pixel p = oy*ow + ox; outside the image (padding) 0. */
static __global__ void im2col_batch_kernel(const float *im, int nb, int c, int h, int w, int k, int stride, int pad, int oh,
                                    int ow, size_t istride, size_t bs, size_t rs, float *col)
{
    size_t total = (size_t)nb * c * oh * ow;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)blockDim.x * gridDim.x) {
        int ox = (int)(i % ow);
        size_t t = i / ow;
        int oy = (int)(t % oh);
        t /= oh;
        int ch = (int)(t % c);
        int b = (int)(t / c);
        const float *src = im + b * istride + (size_t)ch * h * w;
        float *dst = col + b * bs + (size_t)ch * k * k * rs + (size_t)oy * ow + ox;
        int y0 = oy * stride - pad, x0 = ox * stride - pad;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int y = y0 + ky, x = x0 + kx;
                *dst = y >= 0 && y < h && x >= 0 && x < w ? src[y * w + x] : 0.0f;
                dst += rs;
            }
    }
}

/* The adjoint: every input pixel of the nb images gathers the column entries it went to, and adds their sum. */
static __global__ void col2im_batch_add_kernel(const float *col, int nb, int c, int h, int w, int k, int stride, int pad,
                                        int oh, int ow, size_t istride, size_t bs, size_t rs, float *im)
{
    size_t total = (size_t)nb * c * h * w;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)blockDim.x * gridDim.x) {
        int x = (int)(i % w);
        size_t t = i / w;
        int y = (int)(t % h);
        t /= h;
        int ch = (int)(t % c);
        int b = (int)(t / c);
        float s = 0;
        for (int ky = 0; ky < k; ky++) {
            int ty = y + pad - ky;
            if (ty < 0 || ty % stride) continue;
            int oy = ty / stride;
            if (oy >= oh) continue;
            for (int kx = 0; kx < k; kx++) {
                int tx = x + pad - kx;
                if (tx < 0 || tx % stride) continue;
                int ox = tx / stride;
                if (ox >= ow) continue;
                s += col[b * bs + ((size_t)(ch * k + ky) * k + kx) * rs + (size_t)oy * ow + ox];
            }
        }
        im[b * istride + ((size_t)ch * h + y) * w + x] += s;
    }
}

/* dY: rows j of the nb images' (m, N) blocks (image b at d + b*dstride) side by side: dt[j][b*N + p]. */
static __global__ void gather_rows_kernel(const float *d, int nb, int m, int N, size_t dstride, float *dt)
{
    size_t total = (size_t)nb * m * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)blockDim.x * gridDim.x) {
        int p = (int)(i % N);
        size_t t = i / N;
        int j = (int)(t % m);
        int b = (int)(t / m);
        dt[(size_t)j * nb * N + (size_t)b * N + p] = d[b * dstride + (size_t)j * N + p];
    }
}

/* Binary weights: each filter's weights become +-(the mean of their absolute values). */
static __global__ void binarize_filters_kernel(const float *w, int n, int size, float *binary)
{
    int f = blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= n) return;
    float mean = 0;
    for (int i = 0; i < size; i++) mean += fabsf(w[(size_t)f * size + i]);
    mean /= size;
    for (int i = 0; i < size; i++) binary[(size_t)f * size + i] = w[(size_t)f * size + i] > 0 ? mean : -mean;
}

static __global__ void sign_kernel(const float *x, size_t n, float *y)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        y[i] = x[i] >= 0 ? 1.0f : -1.0f;
}

/* The `smooth` term upstream adds to the output gradient: rate * (neighbour - self) over a size x size window. */
static __global__ void smooth_kernel(const float *x, size_t n, int w, int h, int size, float rate, float *delta)
{
    for (size_t id = blockIdx.x * (size_t)blockDim.x + threadIdx.x; id < n; id += (size_t)blockDim.x * gridDim.x) {
        int j = (int)(id % w), i = (int)((id / w) % h);
        size_t plane = id / ((size_t)w * h);
        int off = -(int)(size / 2.f);
        float s = 0;
        for (int a = 0; a < size; a++)
            for (int b = 0; b < size; b++) {
                int y = off + i + a, xx = off + j + b;
                if (y >= 0 && y < h && xx >= 0 && xx < w) s += rate * (x[plane * w * h + (size_t)y * w + xx] - x[id]);
            }
        delta[id] += s;
    }
}

/* GSL_GPU_CONV=per-image, read once (the layers ask on every call); gsl_conv_gpu_per_image sets it. */
static int forced = -1;

extern "C" void gsl_conv_gpu_per_image(int on) { forced = on != 0; }

static int per_image_forced(void)
{
    if (forced < 0) {
        const char *v = getenv("GSL_GPU_CONV");
        forced = v && !strcmp(v, "per-image");
    }
    return forced;
}

/* Images per chunk: the most (up to the batch) whose columns fit in the workspace (one at least: upstream's size). */
static int chunk_of(const layer *l, const float *workspace, size_t K, size_t m, size_t N)
{
    size_t cap = reserved_floats(workspace);
    if (!cap || per_image_forced() || l->batch < 2) return 1;
    size_t nb = cap / ((K + m) * N);
    if (nb < 2) return 1;
    return nb > (size_t)l->batch ? l->batch : (int)nb;
}

static int is_identity_1x1(const layer *l) { return l->size == 1 && l->stride == 1 && l->pad == 0; }

extern "C" void forward_convolutional_layer_gpu(convolutional_layer l, network net)
{
    fill_gpu(l.outputs * l.batch, 0, l.output_gpu, 1);
    if (l.binary || l.xnor) {
        binarize_filters_kernel<<<grid(l.n), BLOCK>>>(l.weights_gpu, l.n, l.c / l.groups * l.size * l.size,
                                                      l.binary_weights_gpu);
        launch_ok("binarize_filters");
        swap_binary(&l);
    }
    if (l.xnor) {
        sign_kernel<<<grid((size_t)l.c * l.h * l.w * l.batch), BLOCK>>>(net.input_gpu, (size_t)l.c * l.h * l.w * l.batch,
                                                                    l.binary_input_gpu);
        launch_ok("sign");
        net.input_gpu = l.binary_input_gpu;
    }
    size_t cg = l.c / l.groups, m = l.n / l.groups, K = cg * l.size * l.size, N = (size_t)l.out_h * l.out_w;
    size_t istride = (size_t)l.c * l.h * l.w, ostride = (size_t)l.n * N;
    int nb = chunk_of(&l, net.workspace, K, m, N);
    const float one = 1;
    cublasHandle_t h = blas_handle();
    for (int b0 = 0; b0 < l.batch; b0 += nb) {
        int cnt = l.batch - b0 < nb ? l.batch - b0 : nb;
        for (int g = 0; g < l.groups; g++) {
            const float *im = net.input_gpu + (size_t)b0 * istride + (size_t)g * cg * l.h * l.w;
            const float *col = im;
            size_t cstride = istride;
            if (!is_identity_1x1(&l)) {
                im2col_batch_kernel<<<grid((size_t)cnt * cg * N), BLOCK>>>(im, cnt, (int)cg, l.h, l.w, l.size, l.stride,
                                                                           l.pad, l.out_h, l.out_w, istride, K * N, N,
                                                                           net.workspace);
                launch_ok("im2col_batch");
                col = net.workspace;
                cstride = K * N;
            }
            /* row-major y_b (m x N) += W (m x K) col_b (K x N), as column-major y_b^T = col_b^T W^T */
            cublas_ok(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)m, (int)K, &one, col, (int)N,
                                                (long long)cstride, l.weights_gpu + (size_t)g * l.nweights / l.groups,
                                                (int)K, 0, &one,
                                                l.output_gpu + (size_t)b0 * ostride + (size_t)g * m * N, (int)N,
                                                (long long)ostride, cnt),
                      "forward sgemm");
        }
    }
    if (l.batch_normalize) forward_batchnorm_layer_gpu(l, net);
    else add_bias_gpu(l.output_gpu, l.biases_gpu, l.batch, l.n, l.out_w * l.out_h);
    activate_array_gpu(l.output_gpu, l.outputs * l.batch, l.activation);
    if (l.binary || l.xnor) swap_binary(&l);
}

extern "C" void backward_convolutional_layer_gpu(convolutional_layer l, network net)
{
    if (l.smooth) {
        size_t n = (size_t)l.out_h * l.out_w * l.out_c * l.batch;
        /* over the output planes (upstream passes the input's w and h, which overruns them when stride > 1) */
        smooth_kernel<<<grid(n), BLOCK>>>(l.output_gpu, n, l.out_w, l.out_h, 5, l.smooth, l.delta_gpu);
        launch_ok("smooth");
    }
    gradient_array_gpu(l.output_gpu, l.outputs * l.batch, l.activation, l.delta_gpu);
    if (l.batch_normalize) backward_batchnorm_layer_gpu(l, net);
    else backward_bias_gpu(l.bias_updates_gpu, l.delta_gpu, l.batch, l.n, l.out_w * l.out_h);
    float *original_input = net.input_gpu;
    if (l.xnor) net.input_gpu = l.binary_input_gpu;
    size_t cg = l.c / l.groups, m = l.n / l.groups, K = cg * l.size * l.size, N = (size_t)l.out_h * l.out_w;
    size_t istride = (size_t)l.c * l.h * l.w, ostride = (size_t)l.n * N;
    int nb = chunk_of(&l, net.workspace, K, m, N);
    const float one = 1, zero = 0;
    cublasHandle_t h = blas_handle();
    for (int b0 = 0; b0 < l.batch; b0 += nb) {
        int cnt = l.batch - b0 < nb ? l.batch - b0 : nb;
        for (int g = 0; g < l.groups; g++) {
            const float *im = net.input_gpu + (size_t)b0 * istride + (size_t)g * cg * l.h * l.w;
            const float *dy = l.delta_gpu + (size_t)b0 * ostride + (size_t)g * m * N;
            float *dw = l.weight_updates_gpu + (size_t)g * l.nweights / l.groups;
            /* dW (m x K) += dY (m x cnt*N) col^T (cnt*N x K); one image: its own dy and columns */
            const float *dt = dy;
            float *col = net.workspace;
            if (cnt > 1) {
                float *g_dt = net.workspace + (size_t)cnt * K * N;
                gather_rows_kernel<<<grid((size_t)cnt * m * N), BLOCK>>>(dy, cnt, (int)m, (int)N, ostride, g_dt);
                launch_ok("gather_rows");
                dt = g_dt;
            }
            im2col_batch_kernel<<<grid((size_t)cnt * cg * N), BLOCK>>>(im, cnt, (int)cg, l.h, l.w, l.size, l.stride,
                                                                       l.pad, l.out_h, l.out_w, istride, N,
                                                                       (size_t)cnt * N, col);
            launch_ok("im2col_batch");
            /* column-major dW^T (K x m) += col (K x cnt*N) dY^T */
            cublas_ok(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)K, (int)m, (int)(cnt * N), &one, col,
                                  (int)(cnt * N), dt, (int)(cnt * N), &one, dw, (int)K),
                      "weight-gradient sgemm");
            if (!net.delta_gpu) continue;
            if (l.binary || l.xnor) swap_binary(&l);
            float *dx = net.delta_gpu + (size_t)b0 * istride + (size_t)g * cg * l.h * l.w;
            const float *wg = l.weights_gpu + (size_t)g * l.nweights / l.groups;
            if (is_identity_1x1(&l)) {
                /* dx_b (K x N) += W^T dy_b: column-major dx_b^T = dy_b^T W */
                cublas_ok(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)N, (int)K, (int)m, &one, dy,
                                                    (int)N, (long long)ostride, wg, (int)K, 0, &one, dx, (int)N,
                                                    (long long)istride, cnt),
                          "input-gradient sgemm");
            } else {
                cublas_ok(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)N, (int)K, (int)m, &one, dy,
                                                    (int)N, (long long)ostride, wg, (int)K, 0, &zero, net.workspace,
                                                    (int)N, (long long)(K * N), cnt),
                          "input-gradient sgemm");
                col2im_batch_add_kernel<<<grid((size_t)cnt * cg * l.h * l.w), BLOCK>>>(
                    net.workspace, cnt, (int)cg, l.h, l.w, l.size, l.stride, l.pad, l.out_h, l.out_w, istride, K * N,
                    N, dx);
                launch_ok("col2im_batch_add");
            }
            if (l.binary || l.xnor) swap_binary(&l);
        }
    }
    if (l.xnor && net.delta_gpu) gradient_array_gpu(original_input, l.batch * l.c * l.h * l.w, HARDTAN, net.delta_gpu);
}

extern "C" void gsl_conv_gpu_release(const network *net);

/* Enlarges net's workspace so the convolutions take whole batches (or chunks within limit_bytes); returns the floats
 * reserved, 0 when upstream's workspace is kept (nothing to gain, or GSL_GPU_CONV=per-image). */
extern "C" size_t gsl_conv_gpu_reserve(network *net, size_t limit_bytes)
{
    if (per_image_forced() || net->gpu_index < 0) return 0;
    size_t need = 0;
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        if (l->type != CONVOLUTIONAL) continue;
        size_t K = (size_t)l->c / l->groups * l->size * l->size, m = (size_t)l->n / l->groups;
        size_t per = (K + m) * l->out_h * l->out_w, nb = (size_t)l->batch;
        if (per * nb * sizeof(float) > limit_bytes) nb = limit_bytes / sizeof(float) / per;
        if (nb >= 2 && per * nb > need) need = per * nb;
    }
    size_t have = 0;
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        if (l->workspace_size / sizeof(float) > have) have = l->workspace_size / sizeof(float);
    }
    pthread_mutex_lock(&reserved_mu);
    int full = nreserved == MAX_RESERVED;
    pthread_mutex_unlock(&reserved_mu);
    if (need <= have || full) return 0;
    cuda_set_device(net->gpu_index);
    float *ws = NULL;
    if (cudaMalloc((void **)&ws, need * sizeof(float)) != cudaSuccess) {
        cudaGetLastError();
        return 0; /* not enough device memory: upstream's workspace stays, one image per call */
    }
    gsl_conv_gpu_release(net); /* a workspace reserved before: its entry goes with it */
    if (net->workspace) cuda_free(net->workspace);
    net->workspace = ws;
    pthread_mutex_lock(&reserved_mu);
    reserved[nreserved].ws = ws;
    reserved[nreserved].floats = need;
    nreserved++;
    pthread_mutex_unlock(&reserved_mu);
    return need;
}

/* Forgets net's reserved workspace (before the network, and so its workspace, is freed). */
extern "C" void gsl_conv_gpu_release(const network *net)
{
    pthread_mutex_lock(&reserved_mu);
    for (int i = 0; i < nreserved; i++)
        if (reserved[i].ws == net->workspace) {
            reserved[i] = reserved[--nreserved];
            break;
        }
    pthread_mutex_unlock(&reserved_mu);
}
