/* libgslq: product quantization (PQ/OPQ) for gsl-darknet. Standalone C11; no Darknet dependency, no global state.
 *
 * Errors: functions return 0 (GSLQ_OK) or a negative gslq_status, and fill an optional gslq_error with a message.
 * Library code never exits. Every `err` argument may be NULL.
 * Threads: functions taking `nthreads` use that many POSIX threads (<= 0 means 1); results are deterministic for a
 * given seed and thread count (most are identical for every thread count).
 * Arrays are row-major; shapes are given as (rows, cols). Vectors live in the input space unless said otherwise;
 * "rotated" means y = R x (the space the sub-quantizers and the layers work in). See docs/quant.md. */
#ifndef GSLQ_H
#define GSLQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    GSLQ_OK = 0,
    GSLQ_EINVAL = -1,    /* bad argument or parameter */
    GSLQ_ENOMEM = -2,    /* allocation failed or size overflow */
    GSLQ_EIO = -3,       /* open/read/write/fsync/rename failed */
    GSLQ_EFORMAT = -4,   /* malformed, truncated or hostile file */
    GSLQ_ECHECKSUM = -5, /* crc32 mismatch */
    GSLQ_ELAPACK = -6,   /* LAPACKE failure (SVD did not converge) */
    GSLQ_ECOMM = -7      /* a collective of a gslq_comm failed, or another participant failed */
} gslq_status;

typedef struct gslq_error {
    int code;       /* a gslq_status */
    char msg[1024]; /* human-readable, names the parameter/file/field (the size of gsl-darknet's GSL_ERRLEN) */
} gslq_error;

/* A product quantizer, optionally with an OPQ rotation.
 *   d          : input dimension
 *   M          : number of sub-quantizers; d % M == 0
 *   K          : codewords per sub-quantizer, 2..256 (one byte per sub-code)
 *   dsub       : d / M
 *   centroids  : (M, K, dsub) row-major: codeword k of sub-space m is centroids + (m*K + k)*dsub
 *   rotation   : NULL for plain PQ; else (d, d) row-major R, and a vector x is quantized as y = R x
 *                (y_i = sum_j R[i*d + j] x_j), R orthogonal; decode returns to the input space with R^T. */
typedef struct gslq_pq {
    int d, M, K, dsub;
    float *centroids;
    float *rotation;
} gslq_pq;

/* Allocates a zeroed PQ (rotation NULL). */
int gslq_pq_init(gslq_pq *pq, int d, int M, int K, gslq_error *err);
/* Deep copy into an uninitialised dst. */
int gslq_pq_copy(gslq_pq *dst, const gslq_pq *src, gslq_error *err);
void gslq_pq_free(gslq_pq *pq);

/* ---- rotation and codeword search (the layers' interface) ---- */

/* y = R x for n vectors x (n, d); a copy when pq->rotation is NULL. x and y must not overlap unless equal and
 * rotation is NULL. */
void gslq_pq_rotate(const gslq_pq *pq, const float *x, float *y, size_t n);
/* x = R^T y (the inverse rotation). */
void gslq_pq_unrotate(const gslq_pq *pq, const float *y, float *x, size_t n);
/* The k nearest codewords of sub-space m to the sub-vector xsub (dsub floats, rotated space), ascending squared
 * distance, ties by codeword index. idx (k) required, dist2 (k) optional. 1 <= k <= K. Exact (no |x|^2-2x.c). */
int gslq_pq_nearest(const gslq_pq *pq, int m, const float *xsub, int k, int *idx, float *dist2);

/* ---- training ---- */

enum { GSLQ_INIT_KMEANSPP = 0, GSLQ_INIT_RANDOM = 1 };

/* Distributed training: a group of participants (MPI ranks, threads, ...) trains one codebook, each on its own shard
 * of the training vectors, and every participant ends with the identical codebook. The library has no transport: the
 * caller gives an all-reduce. With gslq_train_params.comm set:
 *   - x and n of gslq_kmeans / gslq_pq_train / gslq_opq_train are this participant's shard (n may differ between
 *     participants, and may be 0); the checks on n (n >= K) apply to the total. max_points caps each shard.
 *   - every participant calls the same function with the same parameters and the same starting codebook (warm
 *     start), in the same order: the reductions are collectives.
 *   - per Lloyd iteration one reduction sums the per-centroid sums and counts and the objective; empty-cluster
 *     repair finds the farthest point over all shards (a few small reductions, only when a cluster empties); OPQ sums
 *     its d x d Procrustes matrix, participant 0 runs the SVD and shares the rotation; at the end participant 0's
 *     centroids are shared, so the codebooks are identical bit for bit even if the reductions are not.
 *   - without warm start, initialisation (k-means++ or random) runs on every participant on the same sample,
 *     gathered from all shards: at most GSLQ_COMM_INIT_PER_CENTROID * k vectors in all, drawn in proportion to the
 *     shard sizes (all of them, in participant order, when that is all the vectors: then the start is the one
 *     process's start on the union).
 *   - a participant that fails (allocation, bad argument) tells the others at the next agreement point, and all
 *     return an error; a failing allreduce gives GSLQ_ECOMM. A participant that never calls again (a crash) blocks
 *     the others inside allreduce: the transport must detect that (gsl-darknet's MPI one stops the job).
 * Results are deterministic for a given seed, thread count and sharding; they equal a single process's on the union
 * of the shards up to the rounding of the sums (the order of the additions differs). */
enum { GSLQ_REDUCE_SUM = 0, GSLQ_REDUCE_MAX = 1 };
#define GSLQ_COMM_INIT_PER_CENTROID 64
typedef struct gslq_comm {
    int rank, size; /* this participant, 0 <= rank < size */
    /* In place, element-wise over all participants: buf[i] = sum (or max) of everyone's buf[i]. Every participant
     * calls it with the same n and op. Returns 0, or nonzero on failure. */
    int (*allreduce)(void *ctx, double *buf, size_t n, int op);
    void *ctx;
} gslq_comm;

typedef struct gslq_train_params {
    int niter;          /* k-means iteration cap per sub-quantizer (default 25) */
    float tol;          /* stop when (prev - obj) <= tol * prev; 0 runs all niter (default 0) */
    int init;           /* GSLQ_INIT_KMEANSPP (default) or GSLQ_INIT_RANDOM (K distinct training points) */
    int warm_start;     /* 1: start from pq->centroids (and pq->rotation for OPQ) instead of init (default 0) */
    uint64_t seed;      /* default 1234 */
    int nthreads;       /* default 1 */
    size_t max_points;  /* train on a random subset of this many points; 0 = all (default 0) */
    int opq_iter;       /* OPQ: alternations of PQ training and Procrustes (default 20) */
    int opq_kmeans_iter;/* OPQ: k-means iterations per alternation (default 4; the final PQ uses niter) */
    int verbose;        /* print progress to stderr (default 0) */
    const gslq_comm *comm; /* distributed training over shards (see gslq_comm); NULL = one process (default) */
} gslq_train_params;

void gslq_train_params_default(gslq_train_params *p);

/* Optional statistics of a k-means run. */
typedef struct gslq_kmeans_stats {
    int iters;           /* Lloyd iterations run */
    double obj;          /* final objective: sum of squared distances of the points to their centroids */
    double obj_init;     /* objective of the initial (or warm) centroids */
    int repaired;        /* empty clusters repaired, all iterations together */
} gslq_kmeans_stats;

/* Lloyd's k-means on x (n, d) into centroids (k, d). With p->warm_start the given centroids are the start.
 * obj_trace (optional, p->niter + 1 doubles) receives the objective before iteration 0 and after each iteration
 * (the objective of the assignment made with the centroids then current); it never increases.
 * n >= k required. Empty clusters are repaired by moving the point farthest from its centroid into them. */
int gslq_kmeans(const float *x, size_t n, int d, int k, float *centroids, const gslq_train_params *p,
                double *obj_trace, gslq_kmeans_stats *stats, gslq_error *err);

/* Trains pq's centroids on x (n, d) in the input space (rotated by pq->rotation when set, which stays fixed).
 * Warm start (the between-epoch rebuild) when p->warm_start. */
int gslq_pq_train(gslq_pq *pq, const float *x, size_t n, const gslq_train_params *p, gslq_error *err);

/* OPQ: learns pq->rotation (allocated if NULL; warm-started from it when p->warm_start) and the centroids, by
 * alternating PQ training in the rotated space and orthogonal Procrustes (SVD). */
int gslq_opq_train(gslq_pq *pq, const float *x, size_t n, const gslq_train_params *p, gslq_error *err);

/* ---- encode / decode / distances ---- */

/* Shapes: every function that reads vectors takes their dimension d and refuses (GSLQ_EINVAL, naming both) a
 * codebook of another dimension, so that a wrong-sized codebook is an error, never a read past the vectors. */

/* codes (n, M): the nearest codeword of each sub-space, ties by index. x (n, d) in the input space. */
int gslq_pq_encode(const gslq_pq *pq, const float *x, size_t n, int d, uint8_t *codes, gslq_error *err);
int gslq_pq_encode_mt(const gslq_pq *pq, const float *x, size_t n, int d, uint8_t *codes, int nthreads,
                      gslq_error *err);
/* x (n, d) in the input space (R^T applied). */
int gslq_pq_decode(const gslq_pq *pq, const uint8_t *codes, size_t n, float *x, gslq_error *err);
/* Mean over the n vectors of |x - decode(encode(x))|^2 (sum over dimensions). */
int gslq_pq_mse(const gslq_pq *pq, const float *x, size_t n, int d, int nthreads, double *mse, gslq_error *err);

/* Distance table of one query q (d, input space): table (M, K), table[m*K + k] = |(R q)_m - c_mk|^2. */
int gslq_pq_distance_table(const gslq_pq *pq, const float *q, int d, float *table, gslq_error *err);
/* ADC distance of one code given a table. */
float gslq_adc_distance(const gslq_pq *pq, const float *table, const uint8_t *code);

/* ---- search ---- */

/* ADC top-k: for each query (nq, d) the k database codes (nb, M) of smallest distance, ascending, ties by database
 * index. ids (nq, k) and dist (nq, k, optional). When k > nb the tail is filled with id -1 and distance +inf. */
int gslq_adc_search(const gslq_pq *pq, const uint8_t *codes, size_t nb, const float *q, size_t nq, int d, int k,
                    int64_t *ids, float *dist, int nthreads, gslq_error *err);
/* SDC top-k: queries given as codes (nq, M); distances between codewords. Same conventions. */
int gslq_sdc_search(const gslq_pq *pq, const uint8_t *codes, size_t nb, const uint8_t *qcodes, size_t nq, int k,
                    int64_t *ids, float *dist, int nthreads, gslq_error *err);
/* Exact L2 top-k over float vectors db (nb, d) (ground truth); same conventions. */
int gslq_exact_search(const float *db, size_t nb, const float *q, size_t nq, int d, int k, int64_t *ids,
                      float *dist, int nthreads, gslq_error *err);

/* ---- evaluation (definitions in docs/quant.md) ---- */

/* Labels of n items: single-label (nwords == 0, label[i] a class id, < 0 = no label) or multi-label (nwords > 0,
 * bits (n, nwords): class c is bit c%64 of word c/64). Two items are relevant to each other when they share a
 * class. */
typedef struct gslq_labels {
    size_t n;
    int nwords;
    const int *label;
    const uint64_t *bits;
} gslq_labels;

typedef struct gslq_eval_result {
    double map;        /* mean average precision over the whole ranking (or the given list length) */
    double map_at_r;   /* mean AP over the top R */
    double prec_at_r;  /* mean precision@R */
    double recall_at_r;/* mean recall@R (relevant in top R / relevant in the database) */
    size_t nq;         /* queries evaluated */
} gslq_eval_result;

/* Evaluates given rankings: rank (nq, L) database ids in ranked order (a query's whole ranking when L == nb).
 * The number of relevant items of a query is counted over the whole database (dblab). R in 1..L. */
int gslq_eval_rankings(const int64_t *rank, size_t nq, size_t L, const gslq_labels *qlab, const gslq_labels *dblab,
                       size_t R, gslq_eval_result *out, gslq_error *err);
/* Ranks the whole database for every query (ties by database index) and evaluates it: by ADC distance when pq is
 * non-NULL (codes (nb, M)), else by exact L2 distance to db (nb, d). */
int gslq_eval_search(const gslq_pq *pq, const uint8_t *codes, const float *db, size_t nb, int d, const float *q,
                     size_t nq, const gslq_labels *qlab, const gslq_labels *dblab, size_t R, int nthreads,
                     gslq_eval_result *out, gslq_error *err);
/* The same for several cutoffs from one ranking per query: out[k] holds map (the same in every entry) and the
 * figures at R[k], 1 <= nR <= GSLQ_EVAL_MAX_CUTOFFS. Equal to nR calls of gslq_eval_search, at the cost of one.
 * With top non-NULL, also the first ktop ids of every query's ranking, top (nq, ktop), 1 <= ktop <= nb: the same
 * ids as gslq_exact_search / gslq_adc_search give up to rounding-level ties (ties by database index in both). */
#define GSLQ_EVAL_MAX_CUTOFFS 8
int gslq_eval_search_cutoffs(const gslq_pq *pq, const uint8_t *codes, const float *db, size_t nb, int d,
                             const float *q, size_t nq, const gslq_labels *qlab, const gslq_labels *dblab,
                             const size_t *R, int nR, int64_t *top, int ktop, int nthreads, gslq_eval_result *out,
                             gslq_error *err);
/* Recall of exact neighbours: mean over queries of |gt[q][0:k] intersect res[q][0:R]| / k, gt (nq, gt_k) and res
 * (nq, res_k) id lists; k <= gt_k, R <= res_k. With k = 1 this is Faiss's 1-recall@R. */
double gslq_nn_recall(const int64_t *gt, int gt_k, const int64_t *res, int res_k, size_t nq, int k, int R);
/* Ranks n distances ascending, ties by index: order (n) receives indices. */
int gslq_rank(const float *dist, size_t n, int64_t *order, gslq_error *err);

/* ---- files (little-endian; writes go to PATH.tmp.PID, fsync, rename) ---- */

/* The one atomic commit of a written file: tmp is synced to disk, renamed to path, and path's folder synced, so a
 * crash leaves either the old file or the whole new one. tmp is removed on failure. */
int gslq_commit_file(const char *tmp, const char *path, gslq_error *err);
/* Whether PATH can take an output of the writers below, before any work: 0, or an error for a folder, a device, a
 * named pipe or a socket there (never replaced), a symbolic link to a missing file, or a missing folder. A symbolic
 * link to a file is fine: the writers write through it, to the file it points to. */
int gslq_check_output(const char *path, gslq_error *err);

/* The temporary file a writer of path writes to, created exclusively beside the file path names (a symbolic link at
 * path is written through, so the link stays), checked as gslq_check_output does; its name in tmp (at least
 * GSLQ_TMP_PATH_MAX bytes). Write it, fclose it, then gslq_commit_file(tmp, path); NULL with err. */
#define GSLQ_TMP_PATH_MAX 4240
FILE *gslq_create_tmp(const char *path, char *tmp, gslq_error *err);

/* Removes the files whose names begin with prefix that processes no longer running left of their writes: NAME.tmp.PID
 * (the writers' temporaries) and NAME.partPID (staged members of output sets). Returns how many. */
int gslq_sweep_stale(const char *prefix);

/* Several output files committed as a set (a command's -out X writes X.codes, X.items, ...): each is written whole
 * under a staging name of this process beside its final one, and only when every one is written are they renamed
 * into place, in the order they were added. A failure before that leaves the files of an earlier run as they were.
 * (A crash, or a failing rename, between the renames can still leave a mix of two runs.) Zero-initialise the set. */
#define GSLQ_OUTSET_MAX 8
typedef struct {
    int n;
    char *final[GSLQ_OUTSET_MAX], *staged[GSLQ_OUTSET_MAX];
} gslq_outset;
/* Adds path (checked as gslq_check_output does, before any work) and returns its staging name, where the file is
 * to be written (with the writers below, or gslq_commit_file); NULL with err. What killed processes left of their
 * writes to path (its staged copy, temporaries) is removed. */
const char *gslq_outset_add(gslq_outset *o, const char *path, gslq_error *err);
/* Renames every staged file to its final name, in order; on a failure removes what is left staged. */
int gslq_outset_commit(gslq_outset *o, gslq_error *err);
/* Removes the staged files not committed, and frees the set (it can be used again). */
void gslq_outset_free(gslq_outset *o);

/* Codebook file: magic "GSLQCB\0\0", version, d, M, K, has_rotation, centroids, rotation, crc32. */
int gslq_pq_save(const char *path, const gslq_pq *pq, gslq_error *err);
/* Loads into an uninitialised pq. */
int gslq_pq_load(const char *path, gslq_pq *pq, gslq_error *err);
/* Codes file: magic "GSLQCD\0\0", version (2), M, K, n, crc32 of the codebook's centroids+rotation (0 = unknown),
 * tag (u64), codes (n, M), crc32. The tag is 64 bits the application keeps with the codes (gsl encode: how the
 * vectors were prepared, and a checksum of the items they stand for); 0 = none. Version 1 files (no tag) are read. */
int gslq_codes_save(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, gslq_error *err);
int gslq_codes_save_tagged(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, uint64_t tag,
                           gslq_error *err);
/* Allocates *codes (free()); with pq non-NULL, checks M/K and that the file was encoded with this codebook (its
 * fingerprint; a file without one is refused). pq may be NULL (no codebook check). */
int gslq_codes_load(const char *path, const gslq_pq *pq, uint8_t **codes, size_t *n, int *M, gslq_error *err);
/* The same, and the file's tag (0 for version 1 files). */
int gslq_codes_load_tagged(const char *path, const gslq_pq *pq, uint8_t **codes, size_t *n, int *M, uint64_t *tag,
                           gslq_error *err);
/* crc32 of the codebook contents, as stored in codes files. */
uint32_t gslq_pq_fingerprint(const gslq_pq *pq);

/* .fvecs / .ivecs: each vector is an int32 dimension then that many float32/int32. Readers require one dimension
 * for the whole file and allocate *x (free()). */
int gslq_fvecs_read(const char *path, float **x, size_t *n, int *d, gslq_error *err);
int gslq_fvecs_write(const char *path, const float *x, size_t n, int d, gslq_error *err);
int gslq_ivecs_read(const char *path, int32_t **x, size_t *n, int *d, gslq_error *err);
int gslq_ivecs_write(const char *path, const int32_t *x, size_t n, int d, gslq_error *err);
/* Label file as .ivecs with one record per item of any length (the item's classes, 0 <= class < 65536); returns
 * multi-hot bitsets *bits (n, *nwords) (free()). With expect_n > 0 a file of another record count is refused before
 * the bitsets are allocated. */
int gslq_labels_read(const char *path, size_t expect_n, uint64_t **bits, size_t *n, int *nwords, gslq_error *err);

/* Faiss export: an IndexPQ (nbits 8, K must be 256) holding the codes, or, with a rotation, an IndexPreTransform
 * (a LinearTransform A = R, then the IndexPQ) that faiss.read_index loads. */
int gslq_export_faiss(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, gslq_error *err);

/* The coarse quantizer of an IVF index over x (n, d; d = pq->d): nlist k-means centroids (coarse: nlist, d) of the
 * vectors in pq's rotated space (x itself without a rotation), trained with p (seed, iterations, threads), and
 * list_of[i], the list of vector i (its nearest centroid). 1 <= nlist <= n. */
int gslq_ivf_train(const gslq_pq *pq, const float *x, size_t n, int d, int nlist, const gslq_train_params *p,
                   float *coarse, int32_t *list_of, gslq_error *err);

/* Faiss export of an inverted-file index that serves large databases: an IndexIVFPQ with by_residual = 0 (the codes
 * are pq's codes of the vectors themselves, unchanged), an IndexFlatL2 coarse quantizer of the nlist centroids
 * `coarse` (nlist, d: in pq's rotated space when it has a rotation), item i (id i) in list list_of[i]; wrapped in an
 * IndexPreTransform as above when pq has a rotation. Searched with nprobe = nlist it ranks exactly as the flat
 * export; faiss.read_index loads it (nprobe is then 1: set it). */
int gslq_export_faiss_ivf(const char *path, const gslq_pq *pq, const float *coarse, int nlist, const int32_t *list_of,
                          const uint8_t *codes, size_t n, gslq_error *err);

/* ---- BLAS kernel (quant/blas.c) ----
 * OpenBLAS picks its kernels by the processor's model number when it loads; on a processor newer than the library it
 * falls back to its oldest (SSE3) kernels. These choose from the processor's features instead. */
enum {
    GSLQ_CPU_SSE2 = 1 << 0, GSLQ_CPU_SSE3 = 1 << 1, GSLQ_CPU_SSSE3 = 1 << 2, GSLQ_CPU_SSE41 = 1 << 3,
    GSLQ_CPU_SSE42 = 1 << 4,
    GSLQ_CPU_AVX = 1 << 5,        /* with the OS saving YMM state */
    GSLQ_CPU_FMA = 1 << 6,
    GSLQ_CPU_AVX2 = 1 << 7,
    GSLQ_CPU_AVX512 = 1 << 8,     /* F, DQ, CD, BW and VL, with the OS saving opmask and ZMM state */
    GSLQ_CPU_AVX512BF16 = 1 << 9,
    GSLQ_CPU_AVX512FP16 = 1 << 10
};
/* This processor's features (GSLQ_CPU_* bits; 0 off x86). */
unsigned gslq_cpu_features(void);
/* "sse2 sse3 ... avx512" */
void gslq_cpu_features_str(unsigned features, char *buf, size_t cap);
/* The instruction-set level a named OpenBLAS kernel needs (0 SSE3, 1 SSE4.2, 2 AVX, 3 AVX2, 4 AVX-512), -1 when the
 * name is unknown; case-insensitive. */
int gslq_blas_core_level(const char *core);
/* The kernel asked for on a processor with these features: SkylakeX, Haswell, Sandybridge, Nehalem or Prescott
 * (NULL below SSE3). */
const char *gslq_blas_best_core(unsigned features);

enum { GSLQ_BLAS_KEEP = 0, GSLQ_BLAS_SWITCH = 1, GSLQ_BLAS_REFUSE = 2 };
typedef struct gslq_blas_choice {
    int action;        /* GSLQ_BLAS_KEEP, _SWITCH (run on `core`) or _REFUSE (why says which variable is wrong) */
    const char *core;  /* the kernel to switch to */
    char why[512];     /* for the header line, or the error */
} gslq_blas_choice;
/* The decision alone: `current` is the kernel OpenBLAS runs now, `request` the value of GSL_BLAS_CORE and `coretype`
 * that of OPENBLAS_CORETYPE (NULL when unset):
 *   GSL_BLAS_CORE unset or auto: a kernel set with OPENBLAS_CORETYPE is kept (refused when the processor lacks its
 *     instructions); otherwise a kernel below the processor's level is raised to gslq_blas_best_core;
 *   keep: nothing changes; best: the best kernel even over OPENBLAS_CORETYPE; NAME: that kernel, refused when the
 *     processor lacks its instructions or the name is unknown.
 * Returns 0, or GSLQ_EINVAL with action REFUSE. */
int gslq_blas_decide(const char *current, unsigned features, const char *request, const char *coretype,
                     gslq_blas_choice *out);
/* For programs, first thing in main: applies gslq_blas_decide to this process. To switch it sets OPENBLAS_CORETYPE
 * and executes the program again (argv, or /proc/self/cmdline when NULL), so it returns only when nothing changes,
 * in the re-executed process, or with an error (REFUSE: the program should stop; GSLQ_EIO: exec failed, the program
 * may carry on with OpenBLAS's own choice). */
int gslq_blas_select(char **argv, gslq_error *err);
/* gslq_blas_select also sizes OpenBLAS's threads to the CPU budget (gslq_cpu_budget_get) when a cgroup quota
 * allows fewer CPUs than OpenBLAS chose from the affinity mask, unless OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or
 * OMP_NUM_THREADS is set (the user's choice is kept). */
/* "OpenBLAS 0.3.21 (pthreads), kernel SkylakeX [why], 1 thread": for the header line of long runs; it fits in
 * GSLQ_BLAS_DESCRIBE_LEN bytes. */
#define GSLQ_BLAS_DESCRIBE_LEN 1536
void gslq_blas_describe(char *buf, size_t cap);

/* ---- CPU budget (quant/cpus.c) ----
 * The CPUs this process may use: the affinity mask, reduced by the CPU quota of its cgroup (cgroup v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us; the smallest on the path to the hierarchy's root; a fraction rounds up). A
 * quota (docker --cpus, Kubernetes CPU limits, systemd CPUQuota=) throttles CPU time and leaves the mask as it is. */
typedef struct gslq_cpu_budget {
    int cpus;         /* what to size thread pools to: min(affinity, quota rounded up), >= 1 */
    int affinity;     /* CPUs in the affinity mask */
    double quota;     /* CPUs the quota allows (e.g. 1.5), 0 when there is none */
    char source[512]; /* the cgroup directory whose quota applies */
} gslq_cpu_budget;
/* For this process (/proc/self/mountinfo, /proc/self/cgroup, sched_getaffinity). Always returns 0. */
int gslq_cpu_budget_get(gslq_cpu_budget *out);
/* The same from other files, for tests: the mount points of `mountinfo` are looked up under `prefix` (NULL: /). */
int gslq_cpu_budget_from(const char *mountinfo, const char *cgroup, const char *prefix, int affinity,
                         gslq_cpu_budget *out);

/* zlib-compatible CRC-32 (crc32(0, NULL, 0) == 0; chainable: pass the previous value). */
uint32_t gslq_crc32(uint32_t crc, const void *buf, size_t len);

/* The project's small generators, one place for all: splitmix64 (seeding; the data's augmentation and sampler) and
 * xorshift64 (the trainer's subsets and reservoirs). Each advances *state and returns the next value; the results
 * of a seed are fixed forever (runs are reproduced from them). */
uint64_t gslq_splitmix64(uint64_t *state);
uint64_t gslq_xorshift64(uint64_t *state);

/* A monotonic clock in seconds: the one clock of the library's callers for progress lines and timings. */
double gslq_now_s(void);

/* Name of a status code. */
const char *gslq_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
