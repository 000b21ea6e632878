/* Networks for the gsl command (darknet/gsl_net.c): loading replicas, embedding a dataset, finding the codebook
 * layers; and checkpoints (darknet/checkpoint.c): checked weight files, the optimizer state, the manifest that
 * commits an epoch's files with their checksums, the backup folder's lock. */
#ifndef GSL_NET_H
#define GSL_NET_H

#include <stdint.h>

#include "darknet.h"
#include "gsl_data.h"
#include "gslq.h"

#define GSL_MAX_CODEBOOK_LAYERS 8

/* Parses cfg once per replica (device gpus[r], or the CPU when gpus is NULL), each after srand(seed) so every
 * replica starts from the same weights, and loads `weights` (checked first, see gsl_weights_check) when given.
 * Returns the array, or NULL with a message. */
network **gsl_net_load(const char *cfg, const char *weights, const int *gpus, int ngpus, int clear, uint64_t seed,
                       char *err);
void gsl_net_free(network **nets, int n);
/* free_network, plus the fields Darknet's own version leaves behind. */
void gsl_free_network(network *net);

#ifdef GSL_GPU_CONV
/* The batched GPU convolution (darknet/conv_gpu.cu): net's workspace enlarged for whole batches within limit_bytes
 * (floats reserved, 0 when upstream's stays), and forgotten before the network is freed. */
size_t gsl_conv_gpu_reserve(network *net, size_t limit_bytes);
void gsl_conv_gpu_release(const network *net);
/* 1: one image per call (upstream's algorithm), as GSL_GPU_CONV=per-image; 0: batched. */
void gsl_conv_gpu_per_image(int on);
#endif

/* 1 when the last layer is a [similarity] of type=cosine (its embeddings are compared by cosine). */
int gsl_net_similarity_is_cosine(const network *net);

/* Layer whose output is the embedding: the input of the last layer ([similarity]). */
int gsl_net_embedding_layer(const network *net);

/* Indices of the [snap]/[quantloss] layers (at most GSL_MAX_CODEBOOK_LAYERS); returns their count. */
int gsl_net_codebook_layers(const network *net, int *idx);

/* Receives the embeddings of samples first..first+m-1 (m rows of layer `upto`'s outputs, checked finite), batch by
 * batch in order; it may change rows in place. Returns 0, or -1 with a message in err (which stops the run). */
typedef int (*gsl_embed_sink)(void *ctx, int first, int m, float *rows, char *err);

/* Runs the network forward in inference mode on the samples idx[0..n) of d (all of d when idx is NULL), batch by
 * batch (the next batches read on a loader thread), and hands the output of layer `upto` to sink. progress: NULL,
 * or a label for a line on stderr every 10 s of a long run (GSL_PROGRESS_S). */
int gsl_net_embed_each(network *net, const gsl_data *d, const int *idx, int n, int upto, const char *progress,
                       gsl_embed_sink sink, void *ctx, char *err);

/* gsl_net_embed_each into out (n, net->layers[upto].outputs). */
int gsl_net_embed(network *net, const gsl_data *d, const int *idx, int n, int upto, const char *progress, float *out,
                  char *err);

/* Checks that a Darknet .weights file exists and has exactly the size this network reads (Darknet's loader reads
 * short files silently). Layers of types whose size is not known here skip the size check. */
int gsl_weights_check(const network *net, const char *path, char *err);

/* Writes Darknet weights atomically: to a temporary beside PATH (gsl_create_tmp), size and values checked, fsync'd,
 * renamed; digest (may be NULL) receives the file's gsl_file_digest, from the same read that checked the values. */
int gsl_weights_save(network *net, const char *path, uint32_t *digest, char *err);

/* Momentum buffers (weight_updates, bias_updates, scale_updates), which .weights files do not hold; needed for a
 * resumed run to continue exactly. Own checksummed format, written atomically. */
int gsl_optim_save(network *net, const char *path, char *err);
int gsl_optim_load(network *net, const char *path, char *err);

/* Where in an epoch a checkpoint was taken (a preempted run); step 0 is an epoch boundary. */
typedef struct gsl_ckpt_position {
    int step;                               /* steps of the next epoch already trained */
    double loss_sum;                        /* their summed losses */
    uint64_t res_rng;                       /* the rebuild reservoirs' generator */
    long res_seen[GSL_MAX_CODEBOOK_LAYERS]; /* inputs offered to each reservoir so far */
    int steps, per_step;                    /* the epoch it is a position in: steps of per_step samples (manifest
                                               version 3; 0 when not recorded) */
} gsl_ckpt_position;

/* A checkpoint: manifest `<prefix>.ckpt` naming the files of one epoch. */
typedef struct gsl_ckpt {
    int epoch;                 /* epochs completed */
    uint64_t seed;
    int ncb;                   /* codebook layers */
    int cb_layer[GSL_MAX_CODEBOOK_LAYERS];
    int cb_installed[GSL_MAX_CODEBOOK_LAYERS];
    char weights[1024], optim[1024], codebook[GSL_MAX_CODEBOOK_LAYERS][1024];
    char samples[GSL_MAX_CODEBOOK_LAYERS][1024]; /* the rebuild's training inputs ("" when none were kept) */
    int version;               /* 1: no checksums (older runs); 2: every file's CRC-32 and the run's identity;
                                  3: FNV-1a checksums, the network's signature, a position's layout */
    int net_layers;            /* version 3: the network's layer count and signature (gsl_net_signature) */
    uint32_t net_signature;
    uint64_t run;              /* the run that wrote it (version 2) */
    uint32_t crc_weights, crc_optim, crc_codebook[GSL_MAX_CODEBOOK_LAYERS], crc_samples[GSL_MAX_CODEBOOK_LAYERS];
    gsl_ckpt_position pos;     /* step 0: taken at the end of epoch `epoch` */
} gsl_ckpt;

/* The inputs of each codebook layer kept for the next rebuild (rows[i]: n[i] x d[i]; NULL when none). */
typedef struct gsl_ckpt_samples {
    float *rows[GSL_MAX_CODEBOOK_LAYERS];
    int n[GSL_MAX_CODEBOOK_LAYERS], d[GSL_MAX_CODEBOOK_LAYERS];
} gsl_ckpt_samples;

/* Saves weights, optimizer state and codebooks (pqs[i] for layer cb_layer[i]; NULL = not installed yet) as the
 * files of epoch `epoch` (pos NULL or step 0), or of `pos->step` steps into the next one, then writes the manifest
 * atomically. The previous epoch's files stay until the new
 * manifest is in place, so a crash at any point leaves a loadable checkpoint. */
int gsl_ckpt_save(network *net, const char *prefix, int epoch, uint64_t seed, uint64_t run, int ncb,
                  const int *cb_layer, gslq_pq *const *pqs, const gsl_ckpt_samples *samples,
                  const gsl_ckpt_position *pos, char *err);
/* A checksum of the network's structure: each layer's type (Darknet's, or the plugin's section name) and its input
 * and output sizes, in order. Two cfgs that build the same layers of the same sizes agree (whatever their activations,
 * losses' settings or learning rates); a layer replaced by another type, or resized, changes it. */
uint32_t gsl_net_signature(const network *net);
/* 0 when the checkpoint (version 3) was written by a network of this structure (or records none); else an error
 * naming the manifest and the cfg. */
int gsl_ckpt_same_network(const gsl_ckpt *ck, const char *manifest, const network *net, const char *cfg, char *err);

/* Reads a manifest strictly (every key once, nothing else on a line, all files of its own epoch) and verifies each
 * file against the CRC-32 it records (version 2). */
int gsl_ckpt_read(const char *manifest, gsl_ckpt *ck, char *err);
/* An exclusive lock on a run's backup folder (dir/.gsl-train.lock), held until the process ends (a killed holder
 * releases it): a descriptor, or -1 with an error naming the folder and the holder. */
/* What gsl train needs of a network besides its data: a loss layer last, and a layer with weights. 0, or -1 with err
 * naming cfg. */
int gsl_net_trainable(const network *net, const char *cfg, char *err);
int gsl_folder_lock(const char *dir, char *err);
/* A new run's identity (random, never 0). */
uint64_t gsl_run_id(void);


#endif
