/* Darknet's CPU convolution and max-pooling, faster, as link-time overrides.
 *
 * Linked before libdarknet, whose forward_convolutional_layer, backward_convolutional_layer and
 * forward_maxpool_layer are made weak (Makefile: OVERRIDE_SRC, DN_WEAK_SYMS), so these win everywhere, in our
 * commands and in Darknet's own. Upstream's versions are no longer reachable by name, so the cases that the fast
 * path does not cover run upstream_forward/upstream_backward below: upstream's code, statement for statement.
 *
 * Where upstream's time went (perf, scripts/bench/bench_lenet.cfg, docs/performance.md): im2col and col2im through a function
 * call and four bounds checks per pixel, one thin gemm per image (N = out_h*out_w is 64 in LeNet's second layer,
 * too thin to split across threads), max-pooling with bounds checks and unpredictable branches in every window,
 * activations through a switch per element. Here:
 *   - a chunk of nb images is unrolled at once (row copies) and each product is one sgemm over the chunk
 *       forward       y[M][nb*N]     = W[M][K] . col[K][nb*N]    scattered to NCHW with bias and activation
 *       weight grad   dW[M][K]      += dy[M][nb*N] . col^T        dy gathered from NCHW, bias gradient alongside
 *       input grad    dcol[K][nb*N]  = W^T . dy                   col2im'd into net.delta
 *     with M = filters, K = size*size*c, N = out_h*out_w; a chunk of one image works in place;
 *   - relu/leaky/linear and their gradients as vectorisable loops, other activations through upstream's;
 *   - max-pooling without bounds checks inside the plane, 2x2 windows branch-free a row at a time.
 * Results equal upstream's up to float rounding (sums are associated differently); tests/test_fast_conv.c checks
 * them against upstream's algorithm, forward and backward, and a few training steps against stock Darknet. */
#include <cblas.h>
#include <float.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "batchnorm_layer.h"
#include "blas.h"
#include "col2im.h"
#include "convolutional_layer.h"
#include "darknet.h"
#include "gemm.h"
#include "im2col.h"
#include "maxpool_layer.h"

void binarize_cpu(float *input, int n, float *binary); /* src/convolutional_layer.c, not in its header */
void fast_conv_set_workspace_limit(size_t bytes);
size_t fast_conv_workspace_limit(void);

/* ---------------------------------------------------------------- memory and threads */
/* How a layer's batch is worked through: `threads` workers, each on a contiguous share of the images, in chunks of
 * `nb` images. A chunk of nb > 1 images needs col (K, nb*N) and y/dy (M, nb*N) floats; a chunk of one image needs
 * only col (K, N) (the product lands in l.output, or is read from l.delta, in place). Workers after the first also
 * keep their own weight and bias gradients (M*K + M floats), added into the layer's at the end.
 * All of it comes from one buffer per calling thread, grown when a layer needs more and kept, within ws_limit
 * bytes per worker; a single worker taking one image at a time uses net.workspace instead (Darknet sized it for
 * exactly that: l.workspace_size = K*N floats), so a layer too big for ws_limit costs no memory of ours. */
static size_t ws_limit = (size_t)8 << 20;
static _Thread_local float *ws_buf;
static _Thread_local size_t ws_floats;

void fast_conv_set_workspace_limit(size_t bytes) { ws_limit = bytes; }
size_t fast_conv_workspace_limit(void) { return ws_limit; }

/* The calling thread's buffer with room for `floats`, or NULL when it cannot be allocated. */
static float *workspace(size_t floats)
{
    if (floats <= ws_floats) return ws_buf;
    free(ws_buf);
    ws_buf = NULL;
    ws_floats = 0;
    if (floats > SIZE_MAX / sizeof(float) - 64) return NULL;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    ws_buf = aligned_alloc(64, bytes);
    if (ws_buf) ws_floats = floats;
    return ws_buf;
}

/* Each chunk's sgemm gets about CHUNK_COLS columns: LeNet's second layer has 64 outputs per image, a product too
 * thin for sgemm's best speed. Measured on scripts/bench/bench_lenet.cfg (docs/performance.md): one thread runs as fast with
 * 64 to 512 columns and slower from 1024 up, as the chunk outgrows L2. */
#define CHUNK_COLS 512
#define MAX_WORKERS 64

typedef struct {
    int threads, nb;
    size_t stride; /* floats per worker in the buffer */
    float *buf;
} conv_plan;

/* Threads: as many as OpenBLAS is set to use (OPENBLAS_NUM_THREADS, openblas_set_num_threads), at most one per
 * image, and only while a worker's memory fits in ws_limit; otherwise one worker, and sgemm's own threads (a layer
 * that large has products wide enough for them). */
static int plan_layer(const layer *l, network net, conv_plan *p)
{
    size_t k = (size_t)l->size * l->size * l->c, n = (size_t)l->out_h * l->out_w, m = (size_t)l->n;
    size_t want = (CHUNK_COLS + n - 1) / n;
    int threads = openblas_get_num_threads();
    if (threads > l->batch) threads = l->batch;
    if (threads > MAX_WORKERS) threads = MAX_WORKERS;
    for (int t = threads > 1 ? threads : 1;; t = 1) {
        size_t share = ((size_t)l->batch + t - 1) / t;                  /* images per worker, at most */
        size_t grads = t > 1 ? m * k + m : 0;
        size_t budget = ws_limit / sizeof(float);                       /* floats per worker */
        size_t nb = want < share ? want : share;
        while (nb > 1 && (k + m) * n * nb + grads > budget) nb--;
        size_t chunk = nb > 1 ? (k + m) * n * nb : k * n;
        if (t > 1 && chunk + grads > budget) continue;                  /* does not fit: one worker */
        p->threads = t;
        p->nb = (int)nb;
        p->stride = (chunk + grads + 15) / 16 * 16;                     /* 64-byte aligned shares */
        if (t == 1 && nb == 1 && net.workspace) p->buf = net.workspace;
        else p->buf = workspace(p->stride * t);
        if (!p->buf) {
            static int warned;
            if (!warned) {
                warned = 1;
                fprintf(stderr, "fast_conv: cannot allocate %zu bytes of workspace; using Darknet's per-image "
                        "convolution\n", p->stride * t * sizeof(float));
            }
            return 0;
        }
        return 1;
    }
}

/* While workers run, OpenBLAS runs each of their products on one thread (they are the parallelism); the count is
 * restored when the last worker region ends. A BLAS call from another thread meanwhile runs single-threaded too:
 * slower, never wrong. */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_regions, blas_saved;

static void blas_single_begin(void)
{
    pthread_mutex_lock(&blas_mu);
    if (blas_regions++ == 0) {
        blas_saved = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

static void blas_single_end(void)
{
    pthread_mutex_lock(&blas_mu);
    if (--blas_regions == 0) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

/* ---------------------------------------------------------------- im2col / col2im over a chunk */
/* Output columns [lo, hi) whose input column x*stride + kw - pad falls inside [0, w). */
static void valid_range(int w, int out_w, int stride, int pad, int kw, int *lo, int *hi)
{
    int a = pad - kw <= 0 ? 0 : (pad - kw + stride - 1) / stride;
    int e = w + pad - kw;
    int b = e <= 0 ? 0 : (e + stride - 1) / stride;
    if (a > out_w) a = out_w;
    if (b > out_w) b = out_w;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* Output rows [*lo, *hi) whose input row y*stride + kh - pad falls inside [0, h) (the same bounds as columns). */
static void valid_rows(int h, int out_h, int stride, int pad, int kh, int *lo, int *hi)
{
    valid_range(h, out_h, stride, pad, kh, lo, hi);
}

/* GCC turns the short row copies below into calls to memmove/memset (loop distribution), which for LeNet's 8-float
 * rows cost more than the copy; keep them loops. */
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* im (c, h, w) -> col: row (ci*size + kh)*size + kw, column y*out_w + x, rows ldc apart (Darknet's im2col_cpu
 * layout, with a row stride so that several images sit side by side). */
NO_LIBCALLS static void im2col_chunk(const float *restrict im, int c, int h, int w, int size, int stride, int pad,
                                     int out_h, int out_w, float *restrict col, size_t ldc)
{
    for (int ci = 0; ci < c; ci++) {
        const float *src = im + (size_t)ci * h * w;
        for (int kh = 0; kh < size; kh++) {
            int y_lo, y_hi;
            valid_rows(h, out_h, stride, pad, kh, &y_lo, &y_hi);
            for (int kw = 0; kw < size; kw++) {
                float *row = col + ((size_t)(ci * size + kh) * size + kw) * ldc;
                int lo, hi;
                valid_range(w, out_w, stride, pad, kw, &lo, &hi);
                const int n = hi - lo;
                if (n == 0) { /* the whole row falls in the padding */
                    for (size_t i = 0; i < (size_t)out_h * out_w; i++) row[i] = 0;
                    continue;
                }
                for (size_t i = 0; i < (size_t)y_lo * out_w; i++) row[i] = 0;
                for (size_t i = (size_t)y_hi * out_w; i < (size_t)out_h * out_w; i++) row[i] = 0;
                if (y_lo == y_hi) continue;
                float *d = row + (size_t)y_lo * out_w;
                const float *s = src + (size_t)(y_lo * stride + kh - pad) * w + (lo * stride + kw - pad);
                if (stride == 1 && n == out_w) { /* the common case: whole rows, no padding */
                    for (int y = y_lo; y < y_hi; y++, s += w, d += out_w)
                        for (int x = 0; x < n; x++) d[x] = s[x];
                } else {
                    for (int y = y_lo; y < y_hi; y++, s += (size_t)stride * w, d += out_w) {
                        for (int x = 0; x < lo; x++) d[x] = 0;
                        for (int x = 0; x < n; x++) d[lo + x] = s[(size_t)x * stride];
                        for (int x = hi; x < out_w; x++) d[x] = 0;
                    }
                }
            }
        }
    }
}

/* The adjoint: im += col scattered back. Rows of col are visited in col2im_cpu's order, so each pixel receives its
 * terms in the same order as upstream. */
NO_LIBCALLS static void col2im_chunk(const float *restrict col, size_t ldc, int c, int h, int w, int size, int stride,
                                     int pad, int out_h, int out_w, float *restrict im)
{
    for (int ci = 0; ci < c; ci++) {
        float *dst = im + (size_t)ci * h * w;
        for (int kh = 0; kh < size; kh++) {
            int y_lo, y_hi;
            valid_rows(h, out_h, stride, pad, kh, &y_lo, &y_hi);
            if (y_lo == y_hi) continue;
            for (int kw = 0; kw < size; kw++) {
                const float *row = col + ((size_t)(ci * size + kh) * size + kw) * ldc;
                int lo, hi;
                valid_range(w, out_w, stride, pad, kw, &lo, &hi);
                const int n = hi - lo;
                if (n == 0) continue;
                const float *s = row + (size_t)y_lo * out_w + lo;
                float *d = dst + (size_t)(y_lo * stride + kh - pad) * w + (lo * stride + kw - pad);
                if (stride == 1) {
                    for (int y = y_lo; y < y_hi; y++, s += out_w, d += w)
                        for (int x = 0; x < n; x++) d[x] += s[x];
                } else {
                    for (int y = y_lo; y < y_hi; y++, s += out_w, d += (size_t)stride * w)
                        for (int x = 0; x < n; x++) d[(size_t)x * stride] += s[x];
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- activations (upstream's formulas, vectorisable) */
/* GCC keeps `x * (x > 0)` a branch around the multiply unless it may assume that floating-point operations do not
 * trap (Darknet itself is built with -Ofast, which assumes that everywhere); the results are the same either way. */
#define NO_TRAPS __attribute__((optimize("no-trapping-math")))

NO_TRAPS static void activate_fast(float *x, int n, ACTIVATION a)
{
    switch (a) {
    case LINEAR: return;
    /* relu_activate is x*(x>0): x times 1 or 0, written as a select of the factor so that it vectorises */
    case RELU: for (int i = 0; i < n; i++) x[i] *= x[i] > 0 ? 1.0f : 0.0f; return;
    case LEAKY: for (int i = 0; i < n; i++) x[i] = leaky_activate(x[i]); return;
    default: activate_array(x, n, a);
    }
}

NO_TRAPS static void gradient_fast(const float *x, int n, ACTIVATION a, float *delta)
{
    switch (a) {
    case LINEAR: return; /* gradient 1 */
    case RELU: for (int i = 0; i < n; i++) delta[i] *= x[i] > 0 ? 1.0f : 0.0f; return;
    case LEAKY: for (int i = 0; i < n; i++) delta[i] *= x[i] > 0 ? 1.0f : 0.1f; return;
    default: gradient_array(x, n, a, delta);
    }
}

/* Sum of x[0..n): eight running sums, so that it vectorises without -ffast-math (upstream's sum_array, built with
 * -Ofast, is reassociated by the compiler in the same spirit). */
static float sum_floats(const float *x, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* ---------------------------------------------------------------- upstream's convolution, for the other cases */
static void upstream_forward(convolutional_layer l, network net)
{
    int i, j;

    fill_cpu(l.outputs * l.batch, 0, l.output, 1);

    if (l.xnor) {
        binarize_weights(l.weights, l.n, l.c / l.groups * l.size * l.size, l.binary_weights);
        swap_binary(&l);
        binarize_cpu(net.input, l.c * l.h * l.w * l.batch, l.binary_input);
        net.input = l.binary_input;
    }

    int m = l.n / l.groups;
    int k = l.size * l.size * l.c / l.groups;
    int n = l.out_w * l.out_h;
    for (i = 0; i < l.batch; ++i) {
        for (j = 0; j < l.groups; ++j) {
            float *a = l.weights + j * l.nweights / l.groups;
            float *b = net.workspace;
            float *c = l.output + (i * l.groups + j) * n * m;
            float *im = net.input + (i * l.groups + j) * l.c / l.groups * l.h * l.w;

            if (l.size == 1) {
                b = im;
            } else {
                im2col_cpu(im, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, b);
            }
            gemm(0, 0, m, n, k, 1, a, k, b, n, 1, c, n);
        }
    }

    if (l.batch_normalize) {
        forward_batchnorm_layer(l, net);
    } else {
        add_bias(l.output, l.biases, l.batch, l.n, l.out_h * l.out_w);
    }

    activate_array(l.output, l.outputs * l.batch, l.activation);
    if (l.binary || l.xnor) swap_binary(&l);
}

static void upstream_backward(convolutional_layer l, network net)
{
    int i, j;
    int m = l.n / l.groups;
    int n = l.size * l.size * l.c / l.groups;
    int k = l.out_w * l.out_h;

    gradient_array(l.output, l.outputs * l.batch, l.activation, l.delta);

    if (l.batch_normalize) {
        backward_batchnorm_layer(l, net);
    } else {
        backward_bias(l.bias_updates, l.delta, l.batch, l.n, k);
    }

    for (i = 0; i < l.batch; ++i) {
        for (j = 0; j < l.groups; ++j) {
            float *a = l.delta + (i * l.groups + j) * m * k;
            float *b = net.workspace;
            float *c = l.weight_updates + j * l.nweights / l.groups;

            float *im = net.input + (i * l.groups + j) * l.c / l.groups * l.h * l.w;
            float *imd = net.delta + (i * l.groups + j) * l.c / l.groups * l.h * l.w;

            if (l.size == 1) {
                b = im;
            } else {
                im2col_cpu(im, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, b);
            }

            gemm(0, 1, m, n, k, 1, a, k, b, k, 1, c, n);

            if (net.delta) {
                a = l.weights + j * l.nweights / l.groups;
                b = l.delta + (i * l.groups + j) * m * k;
                c = net.workspace;
                if (l.size == 1) {
                    c = imd;
                }

                gemm(1, 0, n, k, m, 1, a, n, b, k, 0, c, k);

                if (l.size != 1) {
                    col2im_cpu(net.workspace, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, imd);
                }
            }
        }
    }
}

/* The common case. Excluded: groups (upstream multiplies per group), binary/xnor weights, and 1x1 kernels, whose
 * upstream path ignores stride and padding and overwrites net.delta instead of adding to it. */
static int fast_path_applies(const layer *l)
{
    return l->groups == 1 && !l->binary && !l->xnor && l->size > 1 && l->stride >= 1 && l->out_h > 0 &&
           l->out_w > 0 && l->batch > 0;
}

/* ---------------------------------------------------------------- the overrides */
/* One worker's share: images [b0, b1) of the batch, in chunks of nb, with buffer buf; backward adds its weight and
 * bias gradients into dw and db, and first applies the activation gradient to its images when `gradient`. */
typedef struct {
    const layer *l;
    network net;
    int b0, b1, nb, backward, gradient;
    float *buf, *dw, *db;
} conv_work;

/* Images [b0, b1): net.input (.., c, h, w) -> l.output (.., n, out_h, out_w), bias and activation added unless the
 * layer has batch norm (the caller does it over the whole batch). */
static void forward_images(const conv_work *w)
{
    const layer *l = w->l;
    const int M = l->n, K = l->size * l->size * l->c, N = l->out_h * l->out_w;
    const int chunks = (w->b1 - w->b0 + w->nb - 1) / w->nb;
    for (int ch = 0; ch < chunks; ch++) {
        int b0 = w->b0 + (int)((long)(w->b1 - w->b0) * ch / chunks);
        int cnt = w->b0 + (int)((long)(w->b1 - w->b0) * (ch + 1) / chunks) - b0;
        int ld = cnt * N;
        float *out0 = l->output + (size_t)b0 * l->outputs;
        /* col (K, cnt*N); y (M, cnt*N), which for one image is the output itself */
        float *col = w->buf, *y = cnt == 1 ? out0 : w->buf + (size_t)K * ld;
        for (int i = 0; i < cnt; i++)
            im2col_chunk(w->net.input + (size_t)(b0 + i) * l->inputs, l->c, l->h, l->w, l->size, l->stride, l->pad,
                         l->out_h, l->out_w, col + (size_t)i * N, ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, ld, K, 1, l->weights, K, col, ld, 0, y, ld);
        for (int i = 0; i < cnt; i++) {
            for (int m = 0; m < M; m++) {
                float *dst = out0 + ((size_t)i * M + m) * N;
                const float *src = y + (size_t)m * ld + (size_t)i * N;
                if (l->batch_normalize) {
                    if (dst != src) memcpy(dst, src, sizeof(float) * N);
                } else {
                    float bias = l->biases[m];
                    for (int p = 0; p < N; p++) dst[p] = src[p] + bias;
                    activate_fast(dst, N, l->activation);
                }
            }
        }
    }
}

/* Images [b0, b1): l.delta -> dw (M, K) and db (M) (db untouched with batch norm, whose backward did the biases),
 * and net.delta (.., c, h, w) += the input gradient when there is a previous layer. */
static void backward_images(const conv_work *w)
{
    const layer *l = w->l;
    const int M = l->n, K = l->size * l->size * l->c, N = l->out_h * l->out_w;
    if (w->gradient)
        gradient_fast(l->output + (size_t)w->b0 * l->outputs, (w->b1 - w->b0) * l->outputs, l->activation,
                      l->delta + (size_t)w->b0 * l->outputs);
    const int chunks = (w->b1 - w->b0 + w->nb - 1) / w->nb;
    for (int ch = 0; ch < chunks; ch++) {
        int b0 = w->b0 + (int)((long)(w->b1 - w->b0) * ch / chunks);
        int cnt = w->b0 + (int)((long)(w->b1 - w->b0) * (ch + 1) / chunks) - b0;
        int ld = cnt * N;
        float *delta0 = l->delta + (size_t)b0 * l->outputs;
        /* col (K, cnt*N); dy (M, cnt*N), which for one image is l.delta itself */
        float *col = w->buf, *dy = cnt == 1 ? delta0 : w->buf + (size_t)K * ld;
        for (int i = 0; i < cnt; i++) {
            for (int m = 0; m < M; m++) {
                const float *src = delta0 + ((size_t)i * M + m) * N;
                float *dst = dy + (size_t)m * ld + (size_t)i * N;
                if (dst != src) memcpy(dst, src, sizeof(float) * N);
                if (!l->batch_normalize) w->db[m] += sum_floats(src, N); /* backward_bias, in its order */
            }
            im2col_chunk(w->net.input + (size_t)(b0 + i) * l->inputs, l->c, l->h, l->w, l->size, l->stride, l->pad,
                         l->out_h, l->out_w, col + (size_t)i * N, ld);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, ld, 1, dy, ld, col, ld, 1, w->dw, K);
        if (w->net.delta) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, ld, M, 1, l->weights, K, dy, ld, 0, col, ld);
            for (int i = 0; i < cnt; i++)
                col2im_chunk(col + (size_t)i * N, ld, l->c, l->h, l->w, l->size, l->stride, l->pad, l->out_h,
                             l->out_w, w->net.delta + (size_t)(b0 + i) * l->inputs);
        }
    }
}

static void *work_main(void *arg)
{
    conv_work *w = arg;
    if (w->backward) backward_images(w);
    else forward_images(w);
    return NULL;
}

/* The plan's workers over the batch, the first on the calling thread. A worker whose thread cannot be started runs
 * on the calling thread afterwards. */
static void run_workers(const layer *l, network net, const conv_plan *p, int backward)
{
    conv_work w[MAX_WORKERS];
    pthread_t th[MAX_WORKERS];
    int started[MAX_WORKERS] = {0};
    const int T = p->threads;
    const size_t mk = (size_t)l->n * l->size * l->size * l->c;
    for (int t = 0; t < T; t++) {
        float *share = p->buf + p->stride * t;
        w[t] = (conv_work){.l = l, .net = net, .nb = p->nb, .backward = backward, .buf = share,
                           .b0 = (int)((long)l->batch * t / T), .b1 = (int)((long)l->batch * (t + 1) / T),
                           .gradient = backward && !l->batch_normalize};
        if (backward) { /* the first worker adds into the layer's own gradients, the others into theirs */
            size_t chunk = p->nb > 1 ? (size_t)(l->size * l->size * l->c + l->n) * l->out_h * l->out_w * p->nb
                                     : (size_t)l->size * l->size * l->c * l->out_h * l->out_w;
            w[t].dw = t ? share + chunk : l->weight_updates;
            w[t].db = t ? share + chunk + mk : l->bias_updates;
            if (t) memset(w[t].dw, 0, sizeof(float) * (mk + l->n));
        }
    }
    if (T == 1) {
        work_main(&w[0]);
        return;
    }
    blas_single_begin();
    for (int t = 1; t < T; t++) started[t] = pthread_create(&th[t], NULL, work_main, &w[t]) == 0;
    work_main(&w[0]);
    for (int t = 1; t < T; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else work_main(&w[t]);
    }
    blas_single_end();
    if (backward) {
        for (int t = 1; t < T; t++) {
            for (size_t i = 0; i < mk; i++) l->weight_updates[i] += w[t].dw[i];
            if (!l->batch_normalize)
                for (int i = 0; i < l->n; i++) l->bias_updates[i] += w[t].db[i];
        }
    }
}

/* net.input (batch, c, h, w) -> l.output (batch, n, out_h, out_w), Darknet's forward_convolutional_layer. */
void forward_convolutional_layer(convolutional_layer l, network net)
{
    conv_plan p;
    if (!fast_path_applies(&l) || !plan_layer(&l, net, &p)) {
        upstream_forward(l, net);
        return;
    }
    run_workers(&l, net, &p, 0);
    if (l.batch_normalize) {
        forward_batchnorm_layer(l, net);
        activate_fast(l.output, l.outputs * l.batch, l.activation);
    }
}

/* l.delta (batch, n, out_h, out_w) -> l.weight_updates, l.bias_updates (+ scale_updates with batch norm), and, when
 * there is a previous layer, net.delta (batch, c, h, w) += dL/dinput. Darknet's backward_convolutional_layer. */
void backward_convolutional_layer(convolutional_layer l, network net)
{
    conv_plan p;
    if (!fast_path_applies(&l) || !plan_layer(&l, net, &p)) {
        upstream_backward(l, net);
        return;
    }
    if (l.batch_normalize) { /* over the whole batch, before the workers */
        gradient_fast(l.output, l.outputs * l.batch, l.activation, l.delta);
        backward_batchnorm_layer(l, net);
    }
    run_workers(&l, net, &p, 1);
}

/* One output of max-pooling, with bounds checks: upstream's inner loops. `in`: the (h, w) plane at index `plane`. */
static inline void pool_checked(const maxpool_layer *l, const float *in, int plane, int y0, int x0, float *out,
                                int *index)
{
    float max = -FLT_MAX;
    int max_i = -1;
    for (int n = 0; n < l->size; ++n) {
        for (int m = 0; m < l->size; ++m) {
            int cur_h = y0 + n, cur_w = x0 + m;
            int valid = cur_h >= 0 && cur_h < l->h && cur_w >= 0 && cur_w < l->w;
            float val = valid ? in[cur_h * l->w + cur_w] : -FLT_MAX;
            max_i = (val > max) ? plane + cur_h * l->w + cur_w : max_i;
            max = (val > max) ? val : max;
        }
    }
    *out = max;
    *index = max_i;
}

/* 2x2 windows that lie inside the plane, outputs [j0, j1) of one row: the same four comparisons, branch-free, so
 * that the row vectorises. r0/r1 are the window's two input rows at the plane index i0 (of r0[0]). */
NO_TRAPS static void pool2_row(const float *r0, const float *r1, int i0, int w, int x_first, int stride, int j0,
                               int j1, float *out, int *index)
{
    for (int j = j0; j < j1; j++) {
        int x = x_first + j * stride;
        float a = r0[x], b = r0[x + 1], c = r1[x], d = r1[x + 1];
        /* masks rather than ternaries on the index: short rows (LeNet's 4 outputs) run the scalar tail, where GCC
         * would otherwise branch on data */
        float max = -FLT_MAX;
        int max_i = -1, gt;
        gt = -(a > max); max_i = ((i0 + x) & gt) | (max_i & ~gt);         max = a > max ? a : max;
        gt = -(b > max); max_i = ((i0 + x + 1) & gt) | (max_i & ~gt);     max = b > max ? b : max;
        gt = -(c > max); max_i = ((i0 + w + x) & gt) | (max_i & ~gt);     max = c > max ? c : max;
        gt = -(d > max); max_i = ((i0 + w + x + 1) & gt) | (max_i & ~gt); max = d > max ? d : max;
        out[j] = max;
        index[j] = max_i;
    }
}

/* net.input (batch, c, h, w) -> l.output (batch, c, out_h, out_w) and l.indexes (argmax, an index into
 * net.input), Darknet's forward_maxpool_layer: the same comparisons in the same order (the first maximum wins,
 * NaN never does); windows inside the plane skip the bounds checks, and 2x2 ones are done a row at a time. */
void forward_maxpool_layer(const maxpool_layer l, network net)
{
    const int w_offset = -l.pad / 2, h_offset = -l.pad / 2;
    const int oh = l.out_h, ow = l.out_w, c = l.c, size = l.size, stride = l.stride;
    /* outputs j in [jlo, jhi) have their window's columns inside [0, w) */
    int jlo = 0, jhi = 0;
    while (jlo < ow && w_offset + jlo * stride < 0) jlo++;
    for (jhi = jlo; jhi < ow && w_offset + jhi * stride + size <= l.w; jhi++) {}
    for (int b = 0; b < l.batch; ++b) {
        for (int k = 0; k < c; ++k) {
            const int plane = l.w * l.h * (k + b * c);
            const float *in = net.input + plane;
            for (int i = 0; i < oh; ++i) {
                const int y0 = h_offset + i * stride;
                const int out_row = ow * (i + oh * (k + c * b));
                float *out = l.output + out_row;
                int *index = l.indexes + out_row;
                if (y0 < 0 || y0 + size > l.h) {
                    for (int j = 0; j < ow; ++j)
                        pool_checked(&l, in, plane, y0, w_offset + j * stride, out + j, index + j);
                    continue;
                }
                for (int j = 0; j < jlo; ++j)
                    pool_checked(&l, in, plane, y0, w_offset + j * stride, out + j, index + j);
                if (size == 2) {
                    pool2_row(in + y0 * l.w, in + (y0 + 1) * l.w, plane + y0 * l.w, l.w, w_offset, stride, jlo, jhi,
                              out, index);
                } else {
                    for (int j = jlo; j < jhi; ++j) {
                        const int x0 = w_offset + j * stride;
                        float max = -FLT_MAX;
                        int max_i = -1;
                        for (int n = 0; n < size; ++n) {
                            const float *r = in + (y0 + n) * l.w;
                            for (int m = 0; m < size; ++m) {
                                float val = r[x0 + m];
                                max_i = (val > max) ? plane + (y0 + n) * l.w + x0 + m : max_i;
                                max = (val > max) ? val : max;
                            }
                        }
                        out[j] = max;
                        index[j] = max_i;
                    }
                }
                for (int j = jhi; j < ow; ++j)
                    pool_checked(&l, in, plane, y0, w_offset + j * stride, out + j, index + j);
            }
        }
    }
}
