/* The PQ codebook that [snap] and [quantloss] hold, and the trainer's interface to those layers.
 *
 * Each such layer owns a copy of the codebook (host, and device in a GPU build), fixed in shape by its cfg keys:
 * d = the layer's inputs, M = `subspaces`, K = `codewords`. Until a codebook is installed the layer is a
 * pass-through. The trainer installs a codebook with gsl_layer_set_codebook() into every such layer of every
 * replica (each replica parses its own network, so each has its own copy, on its own device), and reads the
 * statistics of the backward passes with gsl_layer_get_stats().
 *
 * Memory: Darknet frees a layer with free_layer(), which knows nothing of plugins, but frees l.state with free()
 * and (GPU) l.rand_gpu with cudaFree(). A plugin layer therefore keeps its whole private state in one host block
 * (l.state, a struct followed by its arrays) and one device block (l.rand_gpu), so free_network() releases
 * everything. */
#ifndef GSL_CODEBOOK_H
#define GSL_CODEBOOK_H

#include <stddef.h>

#include "darknet.h"
#include "gslq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Statistics of the backward passes that ran with a codebook installed. */
typedef struct gsl_layer_stats {
    long batches;             /* backward passes since the last reset */
    double snapped_frac;      /* snapped sub-vectors / sub-vectors examined, over those passes ([quantloss]: 0) */
    double qerr;              /* mean over the samples of |x - Q(x)|^2 (the layer's input against its PQ
                                 reconstruction; the same number as gslq_pq_mse), over those passes */
    double last_snapped_frac; /* the same two for the last pass alone */
    double last_qerr;
} gsl_layer_stats;

/* The layer's own rebuild schedule (cfg keys; layers/codebook_rebuild.c). */
typedef struct gsl_rebuild_cfg {
    int every_iterations; /* `rebuild_iterations`: weight updates between rebuilds (0: see every_images) */
    int every_images;     /* `rebuild_images`: images between rebuilds, e.g. the dataset's size (0: unused) */
    int reservoir;        /* `reservoir`: input rows kept for a rebuild */
    int kmeans_iters;     /* `kmeans_iters` */
} gsl_rebuild_cfg;

/* A layer's copy of a codebook. The layout does not depend on the build (GPU pointers stay NULL without GPU).
 * Host arrays live in the layer's state block, device arrays in its device block. */
typedef struct gsl_codebook {
    int d, M, K, dsub;   /* d = M * dsub; K in 2..256 */
    int max_batch;       /* batch the scratch arrays were sized for (Darknet's set_batch_network may lower it) */
    int installed;       /* 0: pass-through */
    gslq_pq pq;          /* host view: centroids (M, K, dsub); rotation (d, d) when installed with one, else NULL */
    float *rotation_mem; /* (d, d) storage behind pq.rotation */
    float *xr, *dr, *er; /* host scratch (max_batch, d): rotated input, rotated delta, correction in rotated space */
    float *tmp;          /* host scratch (max_batch, d) */
    /* statistics: acc = {snapped, qerr sum} over all passes since reset, then the same for the last pass */
    double acc[4];
    long batches;
    double samples, subvectors;           /* since reset */
    double last_samples, last_subvectors; /* the last pass */
    int last_on_gpu;                      /* the last pass ran on the device (its counters are in acc_gpu) */
    /* device copy (GPU builds, gpu_index >= 0 at parse time) */
    int device;                           /* CUDA device of the layer, -1 when it has no device state */
    float *centroids_gpu;                 /* (M, K, dsub) */
    float *rotation_gpu;                  /* (d, d) */
    float *xr_gpu, *dr_gpu, *er_gpu;      /* (max_batch, d) */
    double *acc_gpu;                      /* (4), as acc */
    /* the layer's own rebuilds (layers/codebook_rebuild.c) */
    gsl_rebuild_cfg rb;
    int own_schedule;                     /* 1: the layer rebuilds itself in training; 0: a trainer installs */
    int trainer_installs;                 /* a trainer (gsl train) turned the own schedule off: it installs them */
    int idle_said;                        /* training without any codebook source was said */
    int layer_index;
    void *shared;                         /* the record its replicas share (reservoir, schedule, codebook) */
    long installed_version;               /* the shared record's rebuild count this layer installed */
} gsl_codebook;

/* ---- used by the layer files ---- */

/* Floats of host storage gsl_codebook_bind needs (overflow-checked; 0 on overflow). */
size_t gsl_codebook_host_floats(int batch, int d, int K);
/* Sets the shape and points the host arrays into mem (gsl_codebook_host_floats floats). */
void gsl_codebook_bind(gsl_codebook *cb, int batch, int d, int M, int K, float *mem);
/* Device storage (bytes) and binding, GPU builds only; base is the start of the layer's device block. */
size_t gsl_codebook_device_bytes(int batch, int d, int K);
void gsl_codebook_bind_device(gsl_codebook *cb, int device, void *base);

/* Installs a copy of pq (NULL: uninstall, the layer becomes a pass-through again). Checks d, M, K against the
 * layer's shape and that the centroids are finite. Returns 0, or -1 with a message in err (GSL_ERRLEN bytes). */
int gsl_codebook_set(gsl_codebook *cb, const gslq_pq *pq, char *err);
/* Statistics (host and device counters together); reset = 1 zeroes them afterwards. */
void gsl_codebook_stats(gsl_codebook *cb, gsl_layer_stats *out, int reset);
/* Counts one pass of n samples (host side of the statistics). */
void gsl_codebook_count_pass(gsl_codebook *cb, int n, int on_gpu);
/* set_codebook of one layer type: cb is NULL when the layer is not of that type ("not a [type] layer"). */
int gsl_codebook_set_typed(gsl_codebook *cb, const char *type, const gslq_pq *pq, char *err);

/* ---- the passes of a codebook layer (l.state begins with its gsl_codebook) ----
 * Forward is the identity. Backward = gsl_codebook_backward_prologue, the layer's own loop over (sample, sub-space)
 * writing into p.out, gsl_codebook_backward_epilogue; the same on the device with the _gpu twins. */

/* net.input (B, D) -> l.output (B, D). The layers call it from their own forward functions (a plugin layer's type
 * is told by its forward function, so each type needs its own); on the device it is l.forward_gpu itself. */
void gsl_codebook_forward(layer l, network net);

/* What a backward pass reads and writes, each (B, D): x, the input, and d, the delta from above, in the space of the
 * sub-quantizers (rotated by R when the codebook carries a rotation and the layer asked for it); out receives the
 * update: net.delta itself (diff = 0: out += d'), or with diff = 1 (a rotation, or no net.delta) the scratch cb->er,
 * which takes the correction in the rotated space (out = the correction). Host or device pointers. */
typedef struct gsl_codebook_pass {
    const float *x, *d;
    float *out;
    int diff;
} gsl_codebook_pass;

/* Starts a backward pass: without a codebook adds l.delta into net.delta (the exact pass-through) and returns 0;
 * else fills p (rotating x, and d when rotate_delta; otherwise p->d = l.delta) and returns 1. */
int gsl_codebook_backward_prologue(gsl_codebook *cb, layer l, network net, int rotate_delta, gsl_codebook_pass *p);
/* Ends it: with a rotation and a net.delta, net.delta += d + scale R^T er (d alone when scale = 0); then records the
 * pass's statistics (snapped sub-vectors, sum of the squared quantization errors). */
void gsl_codebook_backward_epilogue(gsl_codebook *cb, layer l, network net, float scale, double snapped,
                                    double qerr);

#ifdef GPU
/* y (n, d) = R x for n rows x (n, d), on the device (a copy when there is no rotation). */
void gsl_codebook_rotate_gpu(const gsl_codebook *cb, const float *x, float *y, int n);
/* out (n, d) += scale * R^T e for n rows e (n, d) (rotated space back to the input space). */
void gsl_codebook_unrotate_add_gpu(const gsl_codebook *cb, float scale, const float *e, float *out, int n);
/* Zeroes the device counters of the last pass (at the start of a backward pass). */
void gsl_codebook_begin_pass_gpu(gsl_codebook *cb);
/* The device twins of the passes above (the kernels add the statistics into cb->acc_gpu themselves). */
void gsl_codebook_forward_gpu(layer l, network net);
int gsl_codebook_backward_prologue_gpu(gsl_codebook *cb, layer l, network net, int rotate_delta,
                                       gsl_codebook_pass *p);
void gsl_codebook_backward_epilogue_gpu(gsl_codebook *cb, layer l, network net, float scale);
#endif

/* The common part of making a [snap] or [quantloss] layer: an identity layer of `inputs` floats (shape
 * 1 x 1 x inputs, Darknet type BLANK: see docs/layers.md) with its output and delta, one host state block of
 * state_bytes (the layer's struct, whose first member is its gsl_codebook) followed by the codebook's host arrays,
 * and in GPU builds (gpu_index >= 0) the device output, delta and codebook block. Sets l->forward and l->backward
 * to the layer's functions, and in GPU builds l->forward_gpu to gsl_codebook_forward_gpu. `name` is for the message
 * when memory runs out. Returns the state block (also in l->state); the caller sets its own fields and
 * l->backward_gpu. */
void *gsl_codebook_layer_make(layer *l, size_t state_bytes, void (*forward)(layer, network),
                              void (*backward)(layer, network), int batch, int inputs, int subspaces, int codewords,
                              const char *name);

/* ---- cfg: what [snap] and [quantloss] parse alike ---- */

struct gsl_section;
/* Longest sub-vector: the CUDA kernels stage sub-codebooks in shared memory, one codeword at least. */
#define GSL_CODEBOOK_MAX_DSUB 8192
/* Rejects keys not in `keys` (NULL-terminated), checks the section's inputs, and reads `subspaces` (required,
 * 1..65535, divides the input size, sub-vectors of at most GSL_CODEBOOK_MAX_DSUB floats) into *M and `codewords`
 * (2..256, default 256) into *K. Returns 0, or -1 with a message naming the key in err (GSL_ERRLEN bytes). */
int gsl_codebook_parse_shape(const struct gsl_section *sec, const char *const *keys, int *M, int *K, char *err);
/* The keys every codebook layer takes besides its own (the shape and the schedule), NULL-terminated. */
extern const char *const gsl_codebook_keys[];
/* Rejects a batch below 1 (checked last, after the layer's own keys). Returns 0, or -1 with a message in err. */
int gsl_codebook_parse_batch(const struct gsl_section *sec, char *err);
/* Gives l the previous layer's image shape when the sizes agree (the identity keeps it for the layers after it). */
void gsl_codebook_keep_shape(const struct gsl_section *sec, layer *l);

/* ---- the layer's own rebuilds (layers/codebook_rebuild.c) ---- */

/* k-means (PQ, or OPQ with opq = 1) of pq on x (n, pq->d), warm-started from pq when warm, and the mean squared
 * error of x under the result (mse may be NULL). The one rebuild function of `gsl train` and of the layers. */
int gsl_codebook_fit(gslq_pq *pq, int warm, const float *x, size_t n, int opq, int iters, uint64_t seed, int threads,
                     const gslq_comm *comm, double *mse, gslq_error *err);
/* Reads the schedule keys (rebuild_iterations, rebuild_images, reservoir, kmeans_iters). 0, or -1 with err. */
int gsl_codebook_parse_rebuild(const struct gsl_section *sec, int K, gsl_rebuild_cfg *rb, char *err);
/* Gives a parsed layer its schedule and the record it shares with its replicas (same cfg, same layer index). */
void gsl_codebook_rebuild_attach(gsl_codebook *cb, const char *cfg, int index, const gsl_rebuild_cfg *rb);
/* A training forward pass: offers the input rows to the reservoir, rebuilds when due, installs a newer codebook. */
void gsl_codebook_rebuild_step(gsl_codebook *cb, layer l, network net);
/* A trainer takes over (gsl_layer_set_codebook does this). */
void gsl_codebook_rebuild_off(gsl_codebook *cb);
/* The schedule's state, for the .weights file: rebuilds so far and when the next is due; and its restoration. */
void gsl_codebook_rebuild_state(const gsl_codebook *cb, long *rebuilds, long *next_iteration, long *next_images);
void gsl_codebook_rebuild_restore(gsl_codebook *cb, long rebuilds, long next_iteration, long next_images);

/* ---- the trainer's interface ---- */

/* 1 when the layer holds a codebook ([snap] or [quantloss]). */
int gsl_layer_has_codebook(const layer *l);
/* The codebook's shape for such a layer: d, M, K. Returns 0, or -1 for other layers. */
int gsl_layer_codebook_shape(const layer *l, int *d, int *M, int *K);
/* Installs pq into a [snap] or [quantloss] layer (its host copy, and its device copy on the layer's device), and
 * turns the layer's own rebuilds off (the caller owns the codebook from now on). NULL uninstalls. Returns 0, or -1
 * with a message in err (GSL_ERRLEN bytes; may be NULL). */
int gsl_layer_set_codebook(layer *l, const gslq_pq *pq, char *err);
/* A copy of the installed codebook into an uninitialised pq. Returns 0, or -1 when none is installed. */
int gsl_layer_get_codebook(const layer *l, gslq_pq *pq);
/* The layer's gsl_codebook, or NULL for other layers. */
gsl_codebook *gsl_layer_codebook(const layer *l);
/* 1 when a codebook is installed. */
int gsl_layer_codebook_installed(const layer *l);
/* Reads (and with reset = 1 zeroes) the layer's statistics. Returns 0, or -1 for other layers. */
int gsl_layer_get_stats(const layer *l, gsl_layer_stats *out, int reset);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* ---- the device side of the [snap] and [quantloss] backward kernels ----
 * One thread per (sample b, sub-space m = blockIdx.y), blocks of GSL_CODEBOOK_THREADS samples of one sub-space; the
 * sub-codebook of m is staged through shared memory in chunks, every thread of a block scanning the same codewords
 * (the reads are broadcasts). */
#define GSL_CODEBOOK_THREADS 128        /* samples per block */
#define GSL_CODEBOOK_SHARED_BYTES 32768 /* shared memory staging a chunk of the sub-codebook */

/* Codewords per chunk: at least one (sub-vectors of up to GSL_CODEBOOK_MAX_DSUB floats fit). */
static __host__ __device__ inline int gsl_codebook_chunk(int dsub)
{
    int kc = GSL_CODEBOOK_SHARED_BYTES / (dsub * (int)sizeof(float));
    return kc < 1 ? 1 : kc;
}

/* Dynamic shared memory of a backward kernel (bytes). */
static inline size_t gsl_codebook_shared_bytes(const gsl_codebook *cb)
{
    int kc = gsl_codebook_chunk(cb->dsub);
    if (kc > cb->K) kc = cb->K;
    return (size_t)kc * cb->dsub * sizeof(float);
}

/* Grid of a backward kernel over n samples. */
static inline dim3 gsl_codebook_grid(const gsl_codebook *cb, int n)
{
    return dim3((n + GSL_CODEBOOK_THREADS - 1) / GSL_CODEBOOK_THREADS, cb->M);
}

/* This thread's place: sample b (on = b < n), sub-space m, its sub-codebook cm (K, dsub) and the offset o of its
 * sub-vector in the (n, D) arrays. */
struct gsl_codebook_thread {
    int m, b;
    bool on;
    const float *cm;
    size_t o;
};

static __device__ inline gsl_codebook_thread gsl_codebook_thread_at(int n, int D, int K, int dsub,
                                                                    const float *centroids)
{
    gsl_codebook_thread t;
    t.m = blockIdx.y;
    t.b = blockIdx.x * blockDim.x + threadIdx.x;
    t.on = t.b < n;
    t.cm = centroids + (size_t)t.m * K * dsub;
    t.o = (size_t)t.b * D + (size_t)t.m * dsub;
    return t;
}

/* Scans t's sub-codebook in index order, staged through `code` (the kernel's dynamic shared memory): for a thread
 * with t.on, visit(k, codeword k) for k = 0..K-1. Every thread of the block must call it (it synchronises). */
template <typename Visit>
static __device__ inline void gsl_codebook_scan(const gsl_codebook_thread &t, int K, int dsub, float *code,
                                                Visit visit)
{
    const int kc = gsl_codebook_chunk(dsub);
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kn = min(kc, K - k0);
        __syncthreads();
        for (int i = threadIdx.x; i < kn * dsub; i += blockDim.x) code[i] = t.cm[(size_t)k0 * dsub + i];
        __syncthreads();
        if (!t.on) continue;
        for (int c = 0; c < kn; c++) visit(k0 + c, (const float *)(code + c * dsub));
    }
}
#endif
#endif
