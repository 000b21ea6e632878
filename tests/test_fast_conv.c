/* darknet/fast_conv.c (the batched convolution and the faster max-pooling that replace Darknet's) against
 * upstream's algorithm:
 *   - ref_conv_forward/ref_conv_backward below are upstream's forward/backward_convolutional_layer statement for
 *     statement, with Darknet's own gemm kernels (gemm_nn/nt/tn, still in libdarknet under their names), so they
 *     are stock Darknet's arithmetic;
 *   - direct_* is the convolution written out in double precision, an independent check of both;
 * forward (output, and batch-norm state) and backward (delta after the activation gradient, weight_updates,
 * bias_updates, scale_updates, the delta added into the previous layer) over odd sizes, strides 1-3, padding up to
 * the kernel size, batch norm on and off, several activations and batch sizes, one worker or three, and chunks of
 * the batch (workspace limits that split it unevenly, or one image at a time). The cases the fast path hands to
 * upstream's code (1x1 kernels, groups, xnor) are checked too. Max-pooling must match upstream bit for bit, indexes
 * included, with ties, NaN and -inf in the input.
 * Whole network: scripts/bench/bench_lenet.cfg trained a few SGD steps with our overrides and with stock arithmetic (every
 * conv, maxpool and connected layer switched to upstream's code and gemm) ends at the same weights. */
#include <darknet.h>

#include "activations.h"
#include "batchnorm_layer.h"
#include "blas.h"
#include "col2im.h"
#include "connected_layer.h"
#include "convolutional_layer.h"
#include "im2col.h"
#include "maxpool_layer.h"
#include "test.h"

#include <float.h>
#include <unistd.h>

#ifdef GSLQ_NO_BLAS /* BLAS=0 links no overrides: the layers are upstream's own, and this checks the reference */
static void fast_conv_set_workspace_limit(size_t bytes) { (void)bytes; }
static size_t fast_conv_workspace_limit(void) { return 0; }
static void openblas_set_num_threads(int n) { (void)n; }
static int openblas_get_num_threads(void) { return 1; }
#else
void fast_conv_set_workspace_limit(size_t bytes);
size_t fast_conv_workspace_limit(void);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
#endif
void gemm_nn(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_nt(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_tn(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_tt(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void binarize_cpu(float *input, int n, float *binary);

static unsigned long long seed = 20240611;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) { fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__); exit(1); }
    return p;
}

/* ---------------------------------------------------------------- stock Darknet's arithmetic */
/* Darknet's gemm_cpu: scale C by BETA, then its own kernels. */
static void ref_gemm(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb,
                     float BETA, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[i * ldc + j] *= BETA;
    if (!TA && !TB) gemm_nn(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else if (TA && !TB) gemm_tn(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else if (!TA && TB) gemm_nt(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else gemm_tt(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
}

/* upstream src/convolutional_layer.c, forward_convolutional_layer */
static void ref_conv_forward(layer l, network net)
{
    fill_cpu(l.outputs * l.batch, 0, l.output, 1);
    if (l.xnor) {
        binarize_weights(l.weights, l.n, l.c / l.groups * l.size * l.size, l.binary_weights);
        swap_binary(&l);
        binarize_cpu(net.input, l.c * l.h * l.w * l.batch, l.binary_input);
        net.input = l.binary_input;
    }
    int m = l.n / l.groups, k = l.size * l.size * l.c / l.groups, n = l.out_w * l.out_h;
    for (int i = 0; i < l.batch; ++i) {
        for (int j = 0; j < l.groups; ++j) {
            float *a = l.weights + j * l.nweights / l.groups;
            float *b = net.workspace;
            float *c = l.output + (i * l.groups + j) * n * m;
            float *im = net.input + (i * l.groups + j) * l.c / l.groups * l.h * l.w;
            if (l.size == 1) b = im;
            else im2col_cpu(im, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, b);
            ref_gemm(0, 0, m, n, k, 1, a, k, b, n, 1, c, n);
        }
    }
    if (l.batch_normalize) forward_batchnorm_layer(l, net);
    else add_bias(l.output, l.biases, l.batch, l.n, l.out_h * l.out_w);
    activate_array(l.output, l.outputs * l.batch, l.activation);
    if (l.binary || l.xnor) swap_binary(&l);
}

/* upstream src/convolutional_layer.c, backward_convolutional_layer */
static void ref_conv_backward(layer l, network net)
{
    int m = l.n / l.groups, n = l.size * l.size * l.c / l.groups, k = l.out_w * l.out_h;
    gradient_array(l.output, l.outputs * l.batch, l.activation, l.delta);
    if (l.batch_normalize) backward_batchnorm_layer(l, net);
    else backward_bias(l.bias_updates, l.delta, l.batch, l.n, k);
    for (int i = 0; i < l.batch; ++i) {
        for (int j = 0; j < l.groups; ++j) {
            float *a = l.delta + (i * l.groups + j) * m * k;
            float *b = net.workspace;
            float *c = l.weight_updates + j * l.nweights / l.groups;
            float *im = net.input + (i * l.groups + j) * l.c / l.groups * l.h * l.w;
            float *imd = net.delta + (i * l.groups + j) * l.c / l.groups * l.h * l.w;
            if (l.size == 1) b = im;
            else im2col_cpu(im, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, b);
            ref_gemm(0, 1, m, n, k, 1, a, k, b, k, 1, c, n);
            if (net.delta) {
                a = l.weights + j * l.nweights / l.groups;
                b = l.delta + (i * l.groups + j) * m * k;
                c = net.workspace;
                if (l.size == 1) c = imd;
                ref_gemm(1, 0, n, k, m, 1, a, n, b, k, 0, c, k);
                if (l.size != 1) col2im_cpu(net.workspace, l.c / l.groups, l.h, l.w, l.size, l.stride, l.pad, imd);
            }
        }
    }
}

/* upstream src/maxpool_layer.c, forward_maxpool_layer */
static void ref_maxpool_forward(layer l, network net)
{
    int w_offset = -l.pad / 2, h_offset = -l.pad / 2;
    int h = l.out_h, w = l.out_w, c = l.c;
    for (int b = 0; b < l.batch; ++b)
        for (int k = 0; k < c; ++k)
            for (int i = 0; i < h; ++i)
                for (int j = 0; j < w; ++j) {
                    int out_index = j + w * (i + h * (k + c * b));
                    float max = -FLT_MAX;
                    int max_i = -1;
                    for (int n = 0; n < l.size; ++n)
                        for (int m = 0; m < l.size; ++m) {
                            int cur_h = h_offset + i * l.stride + n, cur_w = w_offset + j * l.stride + m;
                            int index = cur_w + l.w * (cur_h + l.h * (k + b * l.c));
                            int valid = (cur_h >= 0 && cur_h < l.h && cur_w >= 0 && cur_w < l.w);
                            float val = (valid != 0) ? net.input[index] : -FLT_MAX;
                            max_i = (val > max) ? index : max_i;
                            max = (val > max) ? val : max;
                        }
                    l.output[out_index] = max;
                    l.indexes[out_index] = max_i;
                }
}

/* upstream src/connected_layer.c, forward/backward_connected_layer */
static void ref_connected_forward(layer l, network net)
{
    fill_cpu(l.outputs * l.batch, 0, l.output, 1);
    ref_gemm(0, 1, l.batch, l.outputs, l.inputs, 1, net.input, l.inputs, l.weights, l.inputs, 1, l.output,
             l.outputs);
    if (l.batch_normalize) forward_batchnorm_layer(l, net);
    else add_bias(l.output, l.biases, l.batch, l.outputs, 1);
    activate_array(l.output, l.outputs * l.batch, l.activation);
}

static void ref_connected_backward(layer l, network net)
{
    gradient_array(l.output, l.outputs * l.batch, l.activation, l.delta);
    if (l.batch_normalize) backward_batchnorm_layer(l, net);
    else backward_bias(l.bias_updates, l.delta, l.batch, l.outputs, 1);
    ref_gemm(1, 0, l.outputs, l.inputs, l.batch, 1, l.delta, l.outputs, net.input, l.inputs, 1, l.weight_updates,
             l.inputs);
    if (net.delta)
        ref_gemm(0, 0, l.batch, l.inputs, l.outputs, 1, l.delta, l.outputs, l.weights, l.inputs, 1, net.delta,
                 l.inputs);
}

/* ---------------------------------------------------------------- the convolution in double precision */
static double act_d(double x, ACTIVATION a)
{
    switch (a) {
    case LINEAR: return x;
    case RELU: return x > 0 ? x : 0;
    case LEAKY: return x > 0 ? x : 0.1 * x;
    case LOGISTIC: return 1 / (1 + exp(-x));
    default: fprintf(stderr, "act_d: activation %d not covered\n", (int)a); exit(1);
    }
}

static double in_at(const layer *l, const float *in, int b, int ci, int y, int x)
{
    if (y < 0 || y >= l->h || x < 0 || x >= l->w) return 0;
    return in[((size_t)(b * l->c + ci) * l->h + y) * l->w + x];
}

/* output (batch, n, out_h, out_w) of a non-batch-norm layer, groups = 1 */
static void direct_forward(const layer *l, const float *in, double *out)
{
    for (int b = 0; b < l->batch; b++)
        for (int m = 0; m < l->n; m++)
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    double s = l->biases[m];
                    for (int ci = 0; ci < l->c; ci++)
                        for (int kh = 0; kh < l->size; kh++)
                            for (int kw = 0; kw < l->size; kw++)
                                s += (double)l->weights[((m * l->c + ci) * l->size + kh) * l->size + kw] *
                                     in_at(l, in, b, ci, y * l->stride + kh - l->pad, x * l->stride + kw - l->pad);
                    out[((size_t)(b * l->n + m) * l->out_h + y) * l->out_w + x] = act_d(s, l->activation);
                }
}

/* Given d = dL/dy after the activation gradient: dw += sum d*in, db += sum d, din += sum w*d (groups = 1). */
static void direct_backward(const layer *l, const float *in, const float *d, double *dw, double *db, double *din)
{
    for (int b = 0; b < l->batch; b++)
        for (int m = 0; m < l->n; m++)
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    double g = d[((size_t)(b * l->n + m) * l->out_h + y) * l->out_w + x];
                    db[m] += g;
                    for (int ci = 0; ci < l->c; ci++)
                        for (int kh = 0; kh < l->size; kh++)
                            for (int kw = 0; kw < l->size; kw++) {
                                int iy = y * l->stride + kh - l->pad, ix = x * l->stride + kw - l->pad;
                                int wi = ((m * l->c + ci) * l->size + kh) * l->size + kw;
                                dw[wi] += g * in_at(l, in, b, ci, iy, ix);
                                if (din && iy >= 0 && iy < l->h && ix >= 0 && ix < l->w)
                                    din[((size_t)(b * l->c + ci) * l->h + iy) * l->w + ix] += g * l->weights[wi];
                            }
                }
}

/* ---------------------------------------------------------------- comparisons */
/* got vs want elementwise, |got - want| <= atol + rtol*|want|; reports the first few mismatches. */
static int close_f(const char *what, const char *tag, const float *got, const float *want, size_t n, double atol,
                   double rtol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            if (bad < 3) CHECKF(0, "%s: %s[%zu] got %.8g want %.8g", tag, what, i, g, w);
            bad++;
        }
    }
    if (bad > 3) CHECKF(0, "%s: %s: %d of %zu differ", tag, what, bad, n);
    return bad;
}

static int close_d(const char *what, const char *tag, const float *got, const double *want, size_t n, double atol,
                   double rtol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            if (bad < 3) CHECKF(0, "%s: %s[%zu] got %.8g want(double) %.8g", tag, what, i, g, w);
            bad++;
        }
    }
    if (bad > 3) CHECKF(0, "%s: %s: %d of %zu differ", tag, what, bad, n);
    return bad;
}

/* ---------------------------------------------------------------- one convolution case */
typedef struct {
    int batch, c, h, w, n, size, stride, pad, groups, bn, xnor;
    ACTIVATION act;
    int first; /* first layer of a network: net.delta is NULL */
} conv_case;

#define GUARD 16
#define SENTINEL 12345.678f

static float *guarded(size_t n) /* n floats with GUARD sentinels either side */
{
    float *p = xcalloc(n + 2 * GUARD, sizeof(float));
    for (int i = 0; i < GUARD; i++) p[i] = p[GUARD + n + i] = SENTINEL;
    return p + GUARD;
}

static int guards_intact(const float *p, size_t n)
{
    for (int i = 0; i < GUARD; i++)
        if (p[-GUARD + i] != SENTINEL || p[n + i] != SENTINEL) return 0;
    return 1;
}

static void copy_state(layer *dst, const layer *src)
{
    memcpy(dst->weights, src->weights, sizeof(float) * src->nweights);
    memcpy(dst->biases, src->biases, sizeof(float) * src->n);
    if (src->batch_normalize) {
        memcpy(dst->scales, src->scales, sizeof(float) * src->n);
        memcpy(dst->rolling_mean, src->rolling_mean, sizeof(float) * src->n);
        memcpy(dst->rolling_variance, src->rolling_variance, sizeof(float) * src->n);
    }
}

static void free_conv(layer *l)
{
    free(l->weights); free(l->weight_updates); free(l->biases); free(l->bias_updates);
    free(l->output); free(l->delta);
    free(l->scales); free(l->scale_updates); free(l->mean); free(l->variance); free(l->mean_delta);
    free(l->variance_delta); free(l->rolling_mean); free(l->rolling_variance); free(l->x); free(l->x_norm);
    free(l->binary_weights); free(l->binary_input); free(l->cweights);
}

/* Darknet's make_* print a line per layer on stderr; the test's own messages go there too, so mute only these. */
static int mute(void)
{
    fflush(stderr);
    int saved = dup(2);
    if (!freopen("/dev/null", "w", stderr)) { perror("freopen"); exit(1); }
    return saved;
}

static void unmute(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/* Runs ours and the reference on the same layer and data with the workspace limit `limit`; returns mismatches. */
static int run_conv_case(const conv_case *cc, size_t limit, const char *limit_name)
{
    char tag[200];
    snprintf(tag, sizeof tag, "b%d c%d %dx%d n%d k%d s%d p%d g%d bn%d xnor%d act%d%s ws=%s", cc->batch, cc->c, cc->h,
             cc->w, cc->n, cc->size, cc->stride, cc->pad, cc->groups, cc->bn, cc->xnor, (int)cc->act,
             cc->first ? " first" : "", limit_name);
    int fails0 = test_fails_;
    int saved = mute();
    layer a = make_convolutional_layer(cc->batch, cc->h, cc->w, cc->c, cc->n, cc->groups, cc->size, cc->stride,
                                       cc->pad, cc->act, cc->bn, 0, cc->xnor, 0);
    layer r = make_convolutional_layer(cc->batch, cc->h, cc->w, cc->c, cc->n, cc->groups, cc->size, cc->stride,
                                       cc->pad, cc->act, cc->bn, 0, cc->xnor, 0);
    unmute(saved);
    for (int i = 0; i < a.nweights; i++) a.weights[i] = test_randf(&seed, -0.5f, 0.5f);
    for (int i = 0; i < a.n; i++) a.biases[i] = test_randf(&seed, -0.5f, 0.5f);
    if (cc->bn)
        for (int i = 0; i < a.n; i++) a.scales[i] = test_randf(&seed, 0.5f, 1.5f);
    copy_state(&r, &a);

    size_t nin = (size_t)a.batch * a.inputs, nout = (size_t)a.batch * a.outputs;
    float *in = xcalloc(nin, sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = test_randf(&seed, -1, 1);
    float *pd_a = guarded(nin), *pd_r = guarded(nin); /* previous layer's delta: must be added to */
    for (size_t i = 0; i < nin; i++) pd_a[i] = pd_r[i] = test_randf(&seed, -1, 1);
    float *pd0 = xcalloc(nin, sizeof(float));
    memcpy(pd0, pd_a, sizeof(float) * nin);
    float *ws = xcalloc(a.workspace_size / sizeof(float) + 1, sizeof(float));

    network na = {0}, nr = {0};
    na.train = nr.train = 1;
    na.input = nr.input = in;
    na.workspace = nr.workspace = ws;
    na.delta = cc->first ? NULL : pd_a;
    nr.delta = cc->first ? NULL : pd_r;

    fast_conv_set_workspace_limit(limit);
    forward_convolutional_layer(a, na); /* ours */
    ref_conv_forward(r, nr);
    int K = cc->size * cc->size * cc->c / cc->groups;
    double atol = 2e-6 * (K + 1), rtol = 1e-5;
    close_f("output", tag, a.output, r.output, nout, atol, rtol);
    if (cc->bn) {
        close_f("rolling_mean", tag, a.rolling_mean, r.rolling_mean, a.n, atol, rtol);
        close_f("rolling_variance", tag, a.rolling_variance, r.rolling_variance, a.n, atol, rtol);
    }
    double *want = NULL;
    if (!cc->bn && cc->groups == 1 && !cc->xnor) {
        want = xcalloc(nout, sizeof(double));
        direct_forward(&a, in, want);
        close_d("output", tag, a.output, want, nout, atol, rtol);
    }

    /* backward: the same incoming delta, accumulators pre-filled (they must be added to) */
    for (size_t i = 0; i < nout; i++) a.delta[i] = r.delta[i] = test_randf(&seed, -1, 1);
    for (int i = 0; i < a.nweights; i++) a.weight_updates[i] = r.weight_updates[i] = test_randf(&seed, -1, 1);
    for (int i = 0; i < a.n; i++) a.bias_updates[i] = r.bias_updates[i] = test_randf(&seed, -1, 1);
    if (cc->bn)
        for (int i = 0; i < a.n; i++) a.scale_updates[i] = r.scale_updates[i] = test_randf(&seed, -1, 1);
    double *dw = NULL, *db = NULL, *din = NULL;
    if (want) {
        dw = xcalloc(a.nweights, sizeof(double));
        db = xcalloc(a.n, sizeof(double));
        din = xcalloc(nin, sizeof(double));
        for (int i = 0; i < a.nweights; i++) dw[i] = a.weight_updates[i];
        for (int i = 0; i < a.n; i++) db[i] = a.bias_updates[i];
        /* upstream's 1x1 path writes the previous layer's delta with beta = 0: it replaces instead of adding */
        for (size_t i = 0; i < nin; i++) din[i] = cc->size == 1 ? 0 : pd0[i];
    }
    backward_convolutional_layer(a, na);
    ref_conv_backward(r, nr);
    double batoms = (double)a.batch * a.out_h * a.out_w; /* terms in a weight gradient */
    double gtol = 2e-6 * (batoms + K + a.n + 1);
    close_f("delta", tag, a.delta, r.delta, nout, atol, rtol);
    close_f("weight_updates", tag, a.weight_updates, r.weight_updates, a.nweights, gtol, 1e-5);
    close_f("bias_updates", tag, a.bias_updates, r.bias_updates, a.n, gtol, 1e-5);
    if (cc->bn) close_f("scale_updates", tag, a.scale_updates, r.scale_updates, a.n, gtol, 1e-5);
    if (!cc->first) {
        close_f("prev delta", tag, pd_a, pd_r, nin, gtol, 1e-5);
        CHECKF(guards_intact(pd_a, nin), "%s: writes outside the previous layer's delta", tag);
    } else {
        CHECKF(!memcmp(pd_a, pd0, sizeof(float) * nin), "%s: first layer touched a delta it was not given", tag);
    }
    if (want) {
        direct_backward(&a, in, a.delta, dw, db, cc->first ? NULL : din);
        close_d("weight_updates", tag, a.weight_updates, dw, a.nweights, gtol, 1e-5);
        close_d("bias_updates", tag, a.bias_updates, db, a.n, gtol, 1e-5);
        if (!cc->first) close_d("prev delta", tag, pd_a, din, nin, gtol, 1e-5);
    }

    free(want); free(dw); free(db); free(din);
    free(in); free(pd_a - GUARD); free(pd_r - GUARD); free(pd0); free(ws);
    free_conv(&a); free_conv(&r);
    return test_fails_ - fails0;
}

static const conv_case conv_cases[] = {
    /* batch c  h  w  n size stride pad groups bn xnor act first */
    {1, 1, 5, 5, 2, 3, 1, 1, 1, 0, 0, RELU, 0},
    {3, 3, 7, 9, 5, 3, 2, 1, 1, 0, 0, LEAKY, 0},
    {4, 2, 10, 7, 4, 5, 1, 0, 1, 0, 0, LINEAR, 0},
    {5, 3, 9, 9, 6, 4, 2, 2, 1, 0, 0, RELU, 0},
    {2, 4, 6, 5, 3, 3, 3, 0, 1, 0, 0, LOGISTIC, 0},
    {3, 2, 5, 6, 3, 3, 1, 3, 1, 0, 0, LEAKY, 0},   /* pad = size: whole windows in the padding */
    {2, 2, 2, 3, 3, 3, 1, 1, 1, 0, 0, RELU, 0},    /* input smaller than the kernel */
    {3, 2, 3, 1, 4, 5, 1, 2, 1, 0, 0, LEAKY, 0},   /* width 1: some kernel columns see only padding */
    {7, 1, 28, 28, 8, 5, 1, 0, 1, 0, 0, RELU, 1},  /* LeNet's first layer: no previous delta */
    {9, 32, 12, 12, 64, 5, 1, 0, 1, 0, 0, RELU, 0}, /* LeNet's second layer */
    {4, 3, 8, 8, 5, 3, 1, 1, 1, 1, 0, LEAKY, 0},   /* batch norm */
    {3, 2, 7, 7, 4, 5, 2, 2, 1, 1, 0, RELU, 0},
    {5, 4, 9, 6, 6, 3, 2, 0, 1, 1, 0, LINEAR, 1},
    /* upstream's code (not the fast path): 1x1 kernels, groups, xnor */
    {2, 4, 5, 5, 3, 1, 1, 0, 1, 0, 0, LEAKY, 0},
    {3, 4, 6, 6, 4, 3, 1, 1, 2, 0, 0, RELU, 0},
    {2, 3, 6, 6, 4, 3, 1, 1, 1, 0, 1, LINEAR, 0},
};

/* Every case with 1 and 3 workers (OpenBLAS's thread count picks them), and three workspace limits: the default
 * (workers in chunks of several images), one byte (one worker, one image at a time in net.workspace), and room for
 * two images per worker (uneven chunks). */
static void test_conv_matches_upstream(void)
{
    size_t dflt = fast_conv_workspace_limit();
    int threads0 = openblas_get_num_threads();
    for (int threads = 1; threads <= 3; threads += 2) {
        openblas_set_num_threads(threads);
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            const conv_case *cc = &conv_cases[i];
            size_t k = (size_t)cc->size * cc->size * cc->c;
            size_t oh = (cc->h + 2 * cc->pad - cc->size) / cc->stride + 1;
            size_t ow = (cc->w + 2 * cc->pad - cc->size) / cc->stride + 1;
            size_t two = ((k + cc->n) * oh * ow * 2 + k * cc->n + cc->n + 16) * sizeof(float); /* per worker */
            char name[64];
            snprintf(name, sizeof name, "default, %d threads", threads);
            run_conv_case(cc, dflt, name);
            snprintf(name, sizeof name, "one image, %d threads", threads);
            run_conv_case(cc, 1, name);
            snprintf(name, sizeof name, "2 images per worker, %d threads", threads);
            if (cc->batch >= 3) run_conv_case(cc, two, name);
        }
#ifndef GSLQ_NO_BLAS
        CHECKF(openblas_get_num_threads() == threads, "OpenBLAS left at %d threads, not %d",
               openblas_get_num_threads(), threads);
#endif
    }
    openblas_set_num_threads(threads0);
    fast_conv_set_workspace_limit(dflt);
}

/* ---------------------------------------------------------------- max-pooling */
static void test_maxpool_matches_upstream(void)
{
    static const int cases[][7] = {
        /* batch c h w size stride pad */
        {3, 4, 24, 24, 2, 2, 1}, {2, 3, 7, 9, 2, 2, 1}, {2, 2, 8, 8, 2, 2, 0}, {2, 2, 9, 7, 3, 2, 2},
        {1, 3, 6, 5, 2, 1, 1}, {2, 2, 5, 5, 3, 3, 0}, {1, 2, 4, 6, 4, 2, 3}, {2, 1, 5, 5, 2, 2, 4},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *c = cases[t];
        int saved = mute();
        layer a = make_maxpool_layer(c[0], c[2], c[3], c[1], c[4], c[5], c[6]);
        layer r = make_maxpool_layer(c[0], c[2], c[3], c[1], c[4], c[5], c[6]);
        unmute(saved);
        size_t nin = (size_t)a.batch * a.inputs, nout = (size_t)a.batch * a.outputs;
        float *in = xcalloc(nin, sizeof(float));
        /* pass 1 (NaN, -inf) holds upstream's C semantics, which our override keeps; upstream's own binary is built
         * with -Ofast (no NaNs assumed) and differs there, so without the overrides (BLAS=0) only pass 0 applies */
#ifdef GSLQ_NO_BLAS
        const int passes = 1;
#else
        const int passes = 2;
#endif
        for (int pass = 0; pass < passes; pass++) {
            for (size_t i = 0; i < nin; i++) {
                /* pass 0: few distinct values (ties); pass 1: continuous, with NaN and -inf sprinkled in */
                in[i] = pass == 0 ? (float)(int)test_randf(&seed, 0, 3) : test_randf(&seed, -1, 1);
                if (pass == 1 && i % 7 == 3) in[i] = NAN;
                if (pass == 1 && i % 11 == 5) in[i] = -INFINITY;
            }
            network net = {0};
            net.input = in;
            forward_maxpool_layer(a, net);
            ref_maxpool_forward(r, net);
            int bad = 0;
            for (size_t i = 0; i < nout; i++) {
                int same = a.indexes[i] == r.indexes[i] &&
                           (a.output[i] == r.output[i] || (isnan(a.output[i]) && isnan(r.output[i])));
                if (!same && bad++ < 3)
                    CHECKF(0, "maxpool b%d c%d %dx%d size %d stride %d pad %d pass %d: [%zu] got %g@%d want %g@%d",
                           c[0], c[1], c[2], c[3], c[4], c[5], c[6], pass, i, a.output[i], a.indexes[i],
                           r.output[i], r.indexes[i]);
            }
        }
        free(in);
        free(a.output); free(a.delta); free(a.indexes);
        free(r.output); free(r.delta); free(r.indexes);
    }
}

/* ---------------------------------------------------------------- whole network */
static network *parse_quiet(const char *cfg)
{
    int saved = mute();
    network *net = parse_network_cfg((char *)cfg);
    unmute(saved);
    return net;
}

/* free_network, plus what upstream's forgets (the workspace, softmax's loss, the counters), so that a sanitized
 * build's leak check stays quiet */
static void free_net(network *net)
{
    for (int i = 0; i < net->n; i++)
        if (net->layers[i].type == SOFTMAX) free(net->layers[i].loss);
    free(net->workspace); free(net->seen); free(net->t); free(net->cost);
    free_network(net);
}

static void test_lenet_training_matches_stock(void)
{
    const char *cfg = getenv("GSL_BENCH_CFG") ? getenv("GSL_BENCH_CFG") : "scripts/bench/bench_lenet.cfg";
    if (access(cfg, R_OK)) { CHECKF(0, "cannot read %s (run from the repository root)", cfg); return; }
    srand(7);
    network *ours = parse_quiet(cfg);
    srand(7);
    network *stock = parse_quiet(cfg);
    int convs = 0;
    for (int i = 0; i < stock->n; i++) {
        layer *l = &stock->layers[i];
        if (l->type == CONVOLUTIONAL && l->batch_normalize) CHECKF(0, "%s: batch norm not expected", cfg);
        if (l->type == CONVOLUTIONAL) { l->forward = ref_conv_forward; l->backward = ref_conv_backward; convs++; }
        if (l->type == MAXPOOL) l->forward = ref_maxpool_forward;
        if (l->type == CONNECTED) { l->forward = ref_connected_forward; l->backward = ref_connected_backward; }
    }
    CHECKF(convs == 2, "%s: expected 2 convolutional layers, found %d", cfg, convs);
    /* make_*_layer (inside libdarknet) must have picked up our overrides, not upstream's weakened copies */
    void *conv_f = (void *)forward_convolutional_layer, *conv_b = (void *)backward_convolutional_layer;
    void *pool_f = (void *)forward_maxpool_layer;
    CHECKF(ours->layers[0].type == CONVOLUTIONAL && (void *)ours->layers[0].forward == conv_f &&
               (void *)ours->layers[0].backward == conv_b, "the conv layer does not call our override");
    CHECKF(ours->layers[1].type == MAXPOOL && (void *)ours->layers[1].forward == pool_f,
           "the maxpool layer does not call our override");
    CHECKF((void *)stock->layers[0].forward != conv_f, "the stock network still calls our override");

    CHECKF(ours->layers[2].type == CONVOLUTIONAL, "%s: layer 2 is not convolutional", cfg);
    float *w0 = xcalloc(ours->layers[2].nweights, sizeof(float));
    memcpy(w0, ours->layers[2].weights, sizeof(float) * ours->layers[2].nweights);
    int steps = 4, bs = ours->batch;
    data d = {0};
    d.X = make_matrix(bs * steps, ours->inputs);
    d.y = make_matrix(bs * steps, ours->outputs);
    for (int r = 0; r < d.X.rows; r++) {
        /* learnable: the label is which quarter of the image is brightest */
        int label = (int)test_randf(&seed, 0, 4);
        for (int j = 0; j < ours->inputs; j++) {
            int quarter = ((j / 28) / 14) * 2 + (j % 28) / 14;
            d.X.vals[r][j] = test_randf(&seed, 0, 1) * (quarter == label ? 1.0f : 0.5f);
        }
        d.y.vals[r][label] = 1;
    }
    float loss_ours = 0, loss_stock = 0;
    for (int s = 0; s < steps; s++) {
        data one = d;
        one.X.vals += s * bs; one.y.vals += s * bs;
        one.X.rows = one.y.rows = bs;
        loss_ours = train_network(ours, one);
        loss_stock = train_network(stock, one);
        CHECK_CLOSE(loss_ours, loss_stock, 1e-5, 1e-4);
    }
    double maxdiff = 0, maxw = 0, moved = 0; /* moved: how far training took conv2's weights from the start */
    for (int i = 0; i < ours->n; i++) {
        layer a = ours->layers[i], b = stock->layers[i];
        if (a.type != CONVOLUTIONAL && a.type != CONNECTED) continue;
        int conv = a.type == CONVOLUTIONAL;
        int nw = conv ? a.nweights : a.inputs * a.outputs, nb = conv ? a.n : a.outputs;
        for (int j = 0; j < nw; j++) {
            maxdiff = fmax(maxdiff, fabs(a.weights[j] - b.weights[j]));
            maxw = fmax(maxw, fabs(b.weights[j]));
            if (i == 2) moved = fmax(moved, fabs(a.weights[j] - w0[j]));
        }
        for (int j = 0; j < nb; j++) maxdiff = fmax(maxdiff, fabs(a.biases[j] - b.biases[j]));
    }
    printf("   lenet %d steps: loss ours %.6f stock %.6f, max |w_ours - w_stock| = %.3g (max |w| %.3g)\n", steps,
           loss_ours, loss_stock, maxdiff, maxw);
    CHECKF(maxdiff <= 1e-5 * (1 + maxw), "weights differ by %g", maxdiff);
    CHECKF(moved > 1000 * maxdiff && moved > 1e-4, "training hardly moved the weights (%g)", moved);
    free(w0);
    free_data(d);
    free_net(ours);
    free_net(stock);
}

/* A window with no maximum (all NaN: a diverging run; all -inf) has index -1: the backward pass (ours,
 * darknet/maxpool_backward.c, called through the layer make_maxpool_layer built) passes it no gradient, and writes
 * nothing outside net.delta (upstream's adds at net.delta[-1]); every other window's gradient goes to its argmax. */
static void test_maxpool_backward_without_max(void)
{
    int saved = mute();
    layer l = make_maxpool_layer(2, 4, 6, 3, 2, 2, 0); /* batch 2, 4x6, 3 channels, 2x2 stride 2: 2x3 outputs */
    unmute(saved);
    size_t nin = (size_t)l.batch * l.inputs, nout = (size_t)l.batch * l.outputs;
    float *in = xcalloc(nin, sizeof(float)), *buf = xcalloc(nin + 2, sizeof(float)), *want = xcalloc(nin, sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = test_randf(&seed, -1, 1);
    /* output 0 (plane 0, window rows 0-1, columns 0-1): all NaN; output 4 (row 1, column 1): all -inf */
    const int nanw[4] = {0, 1, 6, 7}, infw[4] = {14, 15, 20, 21};
    for (int k = 0; k < 4; k++) { in[nanw[k]] = NAN; in[infw[k]] = -INFINITY; }
    network net = {0};
    net.input = in;
    net.delta = buf + 1;
    buf[0] = buf[nin + 1] = 12345.0f; /* canaries either side of net.delta */
    l.forward(l, net);
#ifndef GSLQ_NO_BLAS /* upstream's forward (BLAS=0), built with -Ofast, may pick any index of such a window */
    CHECK(l.indexes[0] == -1 && l.indexes[4] == -1);
#endif
    l.indexes[0] = l.indexes[4] = -1; /* what the backward pass must survive, whichever forward ran */
    for (size_t i = 0; i < nout; i++) {
        l.delta[i] = test_randf(&seed, -1, 1);
        if (l.indexes[i] >= 0) want[l.indexes[i]] += l.delta[i];
    }
    l.backward(l, net);
    CHECK(buf[0] == 12345.0f && buf[nin + 1] == 12345.0f);
    CHECK(memcmp(net.delta, want, sizeof(float) * nin) == 0);
    free(in); free(buf); free(want);
    free(l.output); free(l.delta); free(l.indexes);
}

int main(void)
{
    RUN(test_conv_matches_upstream);
    RUN(test_maxpool_matches_upstream);
    RUN(test_maxpool_backward_without_max);
    RUN(test_lenet_training_matches_stock);
    return TEST_END();
}
