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

#ifdef GPU
/* y (n, d) = R x for n rows x (n, d), on the device (a copy when there is no rotation). */
void gsl_codebook_rotate_gpu(const gsl_codebook *cb, const float *x, float *y, int n);
/* out (n, d) += scale * R^T e for n rows e (n, d) (rotated space back to the input space). */
void gsl_codebook_unrotate_add_gpu(const gsl_codebook *cb, float scale, const float *e, float *out, int n);
/* Zeroes the device counters of the last pass (at the start of a backward pass). */
void gsl_codebook_begin_pass_gpu(gsl_codebook *cb);
#endif

/* The common part of making a [snap] or [quantloss] layer: an identity layer of `inputs` floats (shape
 * 1 x 1 x inputs, Darknet type BLANK: see docs/layers.md) with its output and delta, one host state block of
 * state_bytes (the layer's struct, whose first member is its gsl_codebook) followed by the codebook's host arrays,
 * and in GPU builds (gpu_index >= 0) the device output, delta and codebook block. `name` is for the message when
 * memory runs out. Returns the state block (also in l->state); the caller sets its own fields and functions. */
void *gsl_codebook_layer_make(layer *l, size_t state_bytes, int batch, int inputs, int subspaces, int codewords,
                              const char *name);

/* ---- the trainer's interface ---- */

/* 1 when the layer holds a codebook ([snap] or [quantloss]). */
int gsl_layer_has_codebook(const layer *l);
/* The codebook's shape for such a layer: d, M, K. Returns 0, or -1 for other layers. */
int gsl_layer_codebook_shape(const layer *l, int *d, int *M, int *K);
/* Installs pq into a [snap] or [quantloss] layer (its host copy, and its device copy on the layer's device).
 * NULL uninstalls. Returns 0, or -1 with a message in err (GSL_ERRLEN bytes; may be NULL). */
int gsl_layer_set_codebook(layer *l, const gslq_pq *pq, char *err);
/* 1 when a codebook is installed. */
int gsl_layer_codebook_installed(const layer *l);
/* Reads (and with reset = 1 zeroes) the layer's statistics. Returns 0, or -1 for other layers. */
int gsl_layer_get_stats(const layer *l, gsl_layer_stats *out, int reset);

#ifdef __cplusplus
}
#endif
#endif
