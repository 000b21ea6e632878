#include "codebook.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "gsl_cuda.h"
#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif


/* a*b + c with overflow check (0 on overflow). */
static size_t mul_add(size_t a, size_t b, size_t c)
{
    if (a && b > (SIZE_MAX - c) / a) return 0;
    return a * b + c;
}

size_t gsl_codebook_host_floats(int batch, int d, int K)
{
    if (batch < 1 || d < 1 || K < 1) return 0;
    size_t n = mul_add((size_t)K, (size_t)d, 0);        /* centroids */
    if (n) n = mul_add((size_t)d, (size_t)d, n);         /* rotation */
    size_t bd = mul_add((size_t)batch, (size_t)d, 0);
    if (n && bd) n = mul_add(4, bd, n);                  /* xr, dr, er, tmp */
    return bd ? n : 0;
}

void gsl_codebook_bind(gsl_codebook *cb, int batch, int d, int M, int K, float *mem)
{
    memset(cb, 0, sizeof *cb);
    cb->d = d; cb->M = M; cb->K = K; cb->dsub = d / M;
    cb->max_batch = batch;
    cb->pq.d = d; cb->pq.M = M; cb->pq.K = K; cb->pq.dsub = d / M;
    size_t bd = (size_t)batch * d;
    cb->pq.centroids = mem;               mem += (size_t)K * d;
    cb->rotation_mem = mem;               mem += (size_t)d * d;
    cb->xr = mem;                         mem += bd;
    cb->dr = mem;                         mem += bd;
    cb->er = mem;                         mem += bd;
    cb->tmp = mem;
    cb->pq.rotation = NULL;
    cb->device = -1;
}

size_t gsl_codebook_device_bytes(int batch, int d, int K)
{
    size_t f = gsl_codebook_host_floats(batch, d, K); /* centroids, rotation, xr, dr, er (+ one spare) */
    if (!f || f > (SIZE_MAX - 64) / sizeof(float)) return 0;
    return 4 * sizeof(double) + f * sizeof(float);
}

void gsl_codebook_bind_device(gsl_codebook *cb, int device, void *base)
{
    char *p = (char *)base;
    size_t bd = (size_t)cb->max_batch * cb->d;
    cb->device = device;
    cb->acc_gpu = (double *)p;            p += 4 * sizeof(double);
    cb->centroids_gpu = (float *)p;       p += (size_t)cb->K * cb->d * sizeof(float);
    cb->rotation_gpu = (float *)p;        p += (size_t)cb->d * cb->d * sizeof(float);
    cb->xr_gpu = (float *)p;              p += bd * sizeof(float);
    cb->dr_gpu = (float *)p;              p += bd * sizeof(float);
    cb->er_gpu = (float *)p;
}

int gsl_codebook_set(gsl_codebook *cb, const gslq_pq *pq, char *err)
{
    if (!pq) {
        cb->installed = 0;
        cb->pq.rotation = NULL;
        return 0;
    }
    if (pq->d != cb->d || pq->M != cb->M || pq->K != cb->K || pq->dsub != cb->dsub) {
        gsl_fail(err, "codebook shape d=%d M=%d K=%d dsub=%d does not match the layer (d=%d subspaces=%d codewords=%d)",
             pq->d, pq->M, pq->K, pq->dsub, cb->d, cb->M, cb->K);
        return -1;
    }
    if (!pq->centroids) {
        gsl_fail(err, "codebook has no centroids");
        return -1;
    }
    size_t nc = (size_t)cb->K * cb->d, nr = (size_t)cb->d * cb->d;
    for (size_t i = 0; i < nc; i++)
        if (!isfinite(pq->centroids[i])) {
            gsl_fail(err, "codebook centroid value %zu is not finite", i);
            return -1;
        }
    if (pq->rotation)
        for (size_t i = 0; i < nr; i++)
            if (!isfinite(pq->rotation[i])) {
                gsl_fail(err, "codebook rotation value %zu is not finite", i);
                return -1;
            }
    memcpy(cb->pq.centroids, pq->centroids, nc * sizeof(float));
    if (pq->rotation) {
        memcpy(cb->rotation_mem, pq->rotation, nr * sizeof(float));
        cb->pq.rotation = cb->rotation_mem;
    } else {
        cb->pq.rotation = NULL;
    }
#ifdef GPU
    if (cb->device >= 0) {
        int prev;
        GSL_CUDA_CHECK(cudaGetDevice(&prev));
        GSL_CUDA_CHECK(cudaSetDevice(cb->device));
        GSL_CUDA_CHECK(cudaMemcpy(cb->centroids_gpu, cb->pq.centroids, nc * sizeof(float), cudaMemcpyHostToDevice));
        if (pq->rotation)
            GSL_CUDA_CHECK(cudaMemcpy(cb->rotation_gpu, cb->rotation_mem, nr * sizeof(float), cudaMemcpyHostToDevice));
        GSL_CUDA_CHECK(cudaSetDevice(prev));
    }
#endif
    cb->installed = 1;
    return 0;
}

void gsl_codebook_count_pass(gsl_codebook *cb, int n, int on_gpu)
{
    cb->batches++;
    cb->samples += n;
    cb->subvectors += (double)n * cb->M;
    cb->last_samples = n;
    cb->last_subvectors = (double)n * cb->M;
    cb->last_on_gpu = on_gpu;
}

int gsl_codebook_set_typed(gsl_codebook *cb, const char *type, const gslq_pq *pq, char *err)
{
    if (!cb) {
        gsl_fail(err, "not a [%s] layer", type);
        return -1;
    }
    return gsl_codebook_set(cb, pq, err);
}

void gsl_codebook_stats(gsl_codebook *cb, gsl_layer_stats *out, int reset)
{
    double acc[4] = {cb->acc[0], cb->acc[1], cb->acc[2], cb->acc[3]};
#ifdef GPU
    double dev[4] = {0, 0, 0, 0};
    if (cb->device >= 0) {
        int prev;
        GSL_CUDA_CHECK(cudaGetDevice(&prev));
        GSL_CUDA_CHECK(cudaSetDevice(cb->device));
        GSL_CUDA_CHECK(cudaMemcpy(dev, cb->acc_gpu, sizeof dev, cudaMemcpyDeviceToHost));
        if (reset) GSL_CUDA_CHECK(cudaMemset(cb->acc_gpu, 0, sizeof dev));
        GSL_CUDA_CHECK(cudaSetDevice(prev));
    }
    acc[0] += dev[0];
    acc[1] += dev[1];
    if (cb->last_on_gpu) { acc[2] = dev[2]; acc[3] = dev[3]; }
#endif
    out->batches = cb->batches;
    out->snapped_frac = cb->subvectors > 0 ? acc[0] / cb->subvectors : 0;
    out->qerr = cb->samples > 0 ? acc[1] / cb->samples : 0;
    out->last_snapped_frac = cb->last_subvectors > 0 ? acc[2] / cb->last_subvectors : 0;
    out->last_qerr = cb->last_samples > 0 ? acc[3] / cb->last_samples : 0;
    if (reset) {
        memset(cb->acc, 0, sizeof cb->acc);
        cb->batches = 0;
        cb->samples = cb->subvectors = cb->last_samples = cb->last_subvectors = 0;
    }
}

/* ---- the passes (CPU) ---- */

void gsl_codebook_forward(layer l, network net)
{
    /* net.input (B, D) -> l.output (B, D): the identity */
    memcpy(l.output, net.input, (size_t)l.batch * l.inputs * sizeof(float));
    gsl_codebook_rebuild_step((gsl_codebook *)l.state, l, net);
}

int gsl_codebook_backward_prologue(gsl_codebook *cb, layer l, network net, int rotate_delta, gsl_codebook_pass *p)
{
    /* l.output (B, D) = x; l.delta (B, D) = d = -dL/dx from above; net.delta (B, D) or NULL */
    int B = l.batch, D = l.inputs;
    GSL_INVARIANT(B <= cb->max_batch);
    if (!cb->installed) {
        if (net.delta) axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        return 0;
    }
    p->x = l.output;
    p->d = l.delta;
    int rotated = cb->pq.rotation != NULL;
    if (rotated) { /* work in the space the sub-quantizers live in: y = R x (and R d) */
        gslq_pq_rotate(&cb->pq, l.output, cb->xr, (size_t)B);
        p->x = cb->xr;
        if (rotate_delta) {
            gslq_pq_rotate(&cb->pq, l.delta, cb->dr, (size_t)B);
            p->d = cb->dr;
        }
    }
    p->diff = rotated || !net.delta;
    p->out = p->diff ? cb->er : net.delta;
    return 1;
}

void gsl_codebook_backward_epilogue(gsl_codebook *cb, layer l, network net, float scale, double snapped,
                                    double qerr)
{
    /* cb->er (B, D) = the correction in the rotated space, when the prologue chose it and there is a rotation */
    int B = l.batch, D = l.inputs;
    if (cb->pq.rotation && net.delta) { /* net.delta += d + scale R^T er */
        axpy_cpu(B * D, 1, l.delta, 1, net.delta, 1);
        if (scale != 0) {
            gslq_pq_unrotate(&cb->pq, cb->er, cb->tmp, (size_t)B);
            axpy_cpu(B * D, scale, cb->tmp, 1, net.delta, 1);
        }
    }
    cb->acc[0] += snapped;
    cb->acc[1] += qerr;
    cb->acc[2] = snapped;
    cb->acc[3] = qerr;
    gsl_codebook_count_pass(cb, B, 0);
}

#ifdef GPU
void gsl_codebook_rotate_gpu(const gsl_codebook *cb, const float *x, float *y, int n)
{
    int d = cb->d;
    if (!cb->pq.rotation) {
        if (x != y) GSL_CUDA_CHECK(cudaMemcpyAsync(y, x, (size_t)n * d * sizeof(float), cudaMemcpyDeviceToDevice, 0));
        return;
    }
    /* Row-major Y = X R^T is column-major Y^T = R X^T; R stored row-major reads as R^T column-major: op = T. */
    const float one = 1.0f, zero = 0.0f;
    GSL_CUBLAS_CHECK(cublasSgemm(blas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, d, n, d, &one, cb->rotation_gpu, d, x, d,
                                 &zero, y, d));
}

void gsl_codebook_unrotate_add_gpu(const gsl_codebook *cb, float scale, const float *e, float *out, int n)
{
    int d = cb->d;
    const float one = 1.0f;
    if (!cb->pq.rotation) {
        GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), n * d, &scale, e, 1, out, 1));
        return;
    }
    /* Row-major OUT += s E R is column-major OUT^T += s R^T E^T; R^T column-major is the stored R: op = N. */
    GSL_CUBLAS_CHECK(cublasSgemm(blas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, d, n, d, &scale, cb->rotation_gpu, d, e, d,
                                 &one, out, d));
}

void gsl_codebook_begin_pass_gpu(gsl_codebook *cb)
{
    GSL_CUDA_CHECK(cudaMemsetAsync(cb->acc_gpu + 2, 0, 2 * sizeof(double), 0));
}

void gsl_codebook_forward_gpu(layer l, network net)
{
    /* net.input_gpu (B, D) -> l.output_gpu (B, D): the identity */
    GSL_CUDA_CHECK(cudaMemcpyAsync(l.output_gpu, net.input_gpu, (size_t)l.batch * l.inputs * sizeof(float),
                                   cudaMemcpyDeviceToDevice, 0));
    gsl_codebook_rebuild_step((gsl_codebook *)l.state, l, net);
}

int gsl_codebook_backward_prologue_gpu(gsl_codebook *cb, layer l, network net, int rotate_delta,
                                       gsl_codebook_pass *p)
{
    /* l.output_gpu (B, D) = x; l.delta_gpu (B, D) = d; net.delta_gpu (B, D) or NULL */
    const int B = l.batch, D = l.inputs;
    GSL_INVARIANT(B <= cb->max_batch && cb->device >= 0);
    if (!cb->installed) {
        const float one = 1.0f;
        if (net.delta_gpu) GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        return 0;
    }
    gsl_codebook_begin_pass_gpu(cb);
    p->x = l.output_gpu;
    p->d = l.delta_gpu;
    const int rotated = cb->pq.rotation != NULL;
    if (rotated) {
        gsl_codebook_rotate_gpu(cb, l.output_gpu, cb->xr_gpu, B);
        p->x = cb->xr_gpu;
        if (rotate_delta) {
            gsl_codebook_rotate_gpu(cb, l.delta_gpu, cb->dr_gpu, B);
            p->d = cb->dr_gpu;
        }
    }
    p->diff = rotated || !net.delta_gpu;
    p->out = p->diff ? cb->er_gpu : net.delta_gpu;
    return 1;
}

void gsl_codebook_backward_epilogue_gpu(gsl_codebook *cb, layer l, network net, float scale)
{
    const int B = l.batch, D = l.inputs;
    if (cb->pq.rotation && net.delta_gpu) { /* net.delta += d + scale R^T er */
        const float one = 1.0f;
        GSL_CUBLAS_CHECK(cublasSaxpy(blas_handle(), B * D, &one, l.delta_gpu, 1, net.delta_gpu, 1));
        if (scale != 0) gsl_codebook_unrotate_add_gpu(cb, scale, cb->er_gpu, net.delta_gpu, B);
    }
    gsl_codebook_count_pass(cb, B, 1);
}
#endif

/* ---- the trainer's interface ---- */

static gsl_codebook *layer_codebook(const layer *l)
{
    if (!gsl_layer_has_codebook(l) || !l->state) return NULL;
    return (gsl_codebook *)l->state; /* both layers' state structs begin with their gsl_codebook */
}

gsl_codebook *gsl_layer_codebook(const layer *l) { return layer_codebook(l); }

int gsl_layer_get_codebook(const layer *l, gslq_pq *pq)
{
    gsl_codebook *cb = layer_codebook(l);
    if (!cb || !cb->installed) return -1;
    return gslq_pq_copy(pq, &cb->pq, NULL) ? -1 : 0;
}

/* The forward functions of the layer types built on this base (recorded by gsl_codebook_layer_make): a layer holds a
 * codebook when its forward function is one of them. */
#define MAX_CODEBOOK_TYPES 16
static void (*codebook_forwards[MAX_CODEBOOK_TYPES])(layer, network);
static int n_codebook_forwards;

static void record_codebook_type(void (*forward)(layer, network))
{
    for (int i = 0; i < n_codebook_forwards; i++)
        if (codebook_forwards[i] == forward) return;
    GSL_INVARIANT(n_codebook_forwards < MAX_CODEBOOK_TYPES);
    codebook_forwards[n_codebook_forwards++] = forward;
}

int gsl_layer_has_codebook(const layer *l)
{
    for (int i = 0; l && i < n_codebook_forwards; i++)
        if (l->forward == codebook_forwards[i]) return 1;
    return 0;
}

int gsl_layer_codebook_shape(const layer *l, int *d, int *M, int *K)
{
    gsl_codebook *cb = layer_codebook(l);
    if (!cb) return -1;
    if (d) *d = cb->d;
    if (M) *M = cb->M;
    if (K) *K = cb->K;
    return 0;
}

int gsl_layer_set_codebook(layer *l, const gslq_pq *pq, char *err)
{
    gsl_codebook *cb = layer_codebook(l);
    if (!cb) {
        gsl_fail(err, "layer holds no codebook (not [snap] or [quantloss])");
        return -1;
    }
    gsl_codebook_rebuild_off(cb);
    return gsl_codebook_set(cb, pq, err);
}

int gsl_layer_codebook_installed(const layer *l)
{
    gsl_codebook *cb = layer_codebook(l);
    return cb ? cb->installed : 0;
}

int gsl_layer_get_stats(const layer *l, gsl_layer_stats *out, int reset)
{
    gsl_codebook *cb = layer_codebook(l);
    if (!cb) return -1;
    gsl_codebook_stats(cb, out, reset);
    return 0;
}

void *gsl_codebook_layer_make(layer *l, size_t state_bytes, void (*forward)(layer, network),
                              void (*backward)(layer, network), int batch, int inputs, int subspaces, int codewords,
                              const char *name)
{
    *l = (layer){0};
    record_codebook_type(forward);
    l->type = BLANK;
    l->forward = forward;
    l->backward = backward;
#ifdef GPU
    l->forward_gpu = gsl_codebook_forward_gpu;
#endif
    l->batch = batch;
    l->inputs = l->outputs = inputs;
    l->h = l->w = l->out_h = l->out_w = 1;
    l->c = l->out_c = inputs;
    l->n = subspaces;
    l->size = codewords;

    size_t nf = gsl_codebook_host_floats(batch, inputs, codewords);
    GSL_INVARIANT(nf > 0 && subspaces > 0 && inputs % subspaces == 0 && state_bytes >= sizeof(gsl_codebook));
    /* the codebook's floats start at the first float boundary after the layer's struct */
    size_t head = (state_bytes + sizeof(float) - 1) / sizeof(float) * sizeof(float);
    char *s = calloc(1, head + nf * sizeof(float));
    l->output = calloc((size_t)batch * inputs, sizeof(float));
    l->delta = calloc((size_t)batch * inputs, sizeof(float));
    if (!s || !l->output || !l->delta) {
        fprintf(stderr, "[%s]: out of memory (batch %d, inputs %d, codewords %d)\n", name, batch, inputs, codewords);
        exit(1);
    }
    gsl_codebook *cb = (gsl_codebook *)s;
    gsl_codebook_bind(cb, batch, inputs, subspaces, codewords, (float *)(s + head));
    l->state = (float *)s; /* freed by Darknet's free_layer */
#ifdef GPU
    if (gpu_index >= 0) {
        int dev;
        GSL_CUDA_CHECK(cudaGetDevice(&dev));
        l->output_gpu = GSL_CUDA_ZALLOC((size_t)batch * inputs * sizeof(float));
        l->delta_gpu = GSL_CUDA_ZALLOC((size_t)batch * inputs * sizeof(float));
        size_t bytes = gsl_codebook_device_bytes(batch, inputs, codewords);
        GSL_INVARIANT(bytes > 0);
        void *blk = GSL_CUDA_ZALLOC(bytes);
        gsl_codebook_bind_device(cb, dev, blk);
        l->rand_gpu = (float *)blk; /* freed by Darknet's free_layer */
    }
#endif
    return s;
}

/* ---- cfg ---- */

const char *const gsl_codebook_keys[] = {"subspaces", "codewords", "rebuild_iterations", "rebuild_images",
                                         "reservoir", "kmeans_iters", NULL};

int gsl_codebook_parse_shape(const gsl_section *sec, const char *const *keys, int *M, int *K, char *err)
{
    /* the layer's own keys and the common ones */
    const char *all[64];
    int n = 0;
    for (int i = 0; gsl_codebook_keys[i] && n < 63; i++) all[n++] = gsl_codebook_keys[i];
    for (int i = 0; keys && keys[i] && n < 63; i++) all[n++] = keys[i];
    all[n] = NULL;
    if (gsl_opt_check_unknown(sec, all, err)) return -1;
    int D = sec->inputs;
    if (D < 1) {
        gsl_fail(err, "the layer before gives no inputs (inputs=%d)", D);
        return -1;
    }
    if (gsl_opt_int(sec, "subspaces", 0, 1, 1, 65535, M, err)) return -1; /* 65535: a CUDA grid dimension */
    if (*M > D || D % *M) {
        gsl_fail(err, "key 'subspaces': %d does not divide the input size %d", *M, D);
        return -1;
    }
    if (D / *M > GSL_CODEBOOK_MAX_DSUB) {
        gsl_fail(err, "key 'subspaces': sub-vectors of %d floats are too long (at most %d)", D / *M,
             GSL_CODEBOOK_MAX_DSUB);
        return -1;
    }
    return gsl_opt_int(sec, "codewords", 256, 0, 2, 256, K, err);
}

int gsl_codebook_parse_batch(const gsl_section *sec, char *err)
{
    if (sec->batch >= 1) return 0;
    gsl_fail(err, "batch %d: must be >= 1", sec->batch);
    return -1;
}

void gsl_codebook_keep_shape(const gsl_section *sec, layer *l)
{
    if (sec->h * sec->w * sec->c != l->inputs) return;
    l->h = l->out_h = sec->h;
    l->w = l->out_w = sec->w;
    l->c = l->out_c = sec->c;
}
