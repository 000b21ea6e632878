/* Data for the gsl command: a split's samples and labels, class subsets, and a seeded batch sampler (shuffled
 * epochs, or class-balanced P classes x K samples).
 *
 * Sources: IDX files (Fashion-MNIST from Debian's dataset-fashion-mnist, gzip'd or not), decoded once into memory; or
 * Darknet's list format (one image path per line; a sample's label is the one name from the `labels` file that occurs
 * in its path), streamed: only the paths are kept, and an image is decoded and resized to the network's input when a
 * batch is gathered, so memory does not grow with the dataset.
 * Errors never exit: every function returns 0 or -1 with a message (GSL_DATA_ERRLEN bytes) naming the file and,
 * where there is one, the line and key. */
#ifndef GSL_DATA_H
#define GSL_DATA_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "io.h" /* gsl_fail, GSL_DATA_ERRLEN, checked opening */

#define GSL_DATA_MAX_CLASSES 4096
#define GSL_IMAGE_MAX_PIXELS (1 << 26) /* 64 megapixels: a larger image is an error (its size is read first) */
#define GSL_LOADER_MAX_THREADS 64      /* the .data key loader_threads */
#define GSL_LOADER_AUTO_THREADS 8      /* loader_threads by default: the CPUs this process may use, at most this */

/* n samples of shape (c, h, w), Darknet's layout: planes of h*w floats in [0, 1], channel after channel.
 *   label  : (n) the sample's class, -1 for an unlabelled sample (lists loaded without labels)
 *   x      : (n, c*h*w) for IDX sources; NULL for list sources (streamed: decoded when gathered)
 *   path   : list sources: each sample's image path as written in the list, and line[i] its line (1-based)
 *   record : IDX sources: each sample's record number in the file (0-based)
 *   source : the list or IDX images file
 * The items behind the samples (gsl_data_item) are what `.items` files name, in order. */
typedef struct gsl_data {
    int n, c, h, w, classes;
    int *label;
    float *x;
    char **path;
    int *line;
    int *record;
    char *source;
    int skip_unreadable;  /* 1: an unreadable image is skipped and counted (the .data key unreadable=skip) */
    uint8_t *unreadable;  /* list sources in skip mode: 1 for each sample found unreadable so far (atomic bytes) */
    int threads;          /* list sources: threads that decode the images of one gather (>= 1) */
    uint8_t *decoded;     /* list sources: 1 for each image decoded whole once in this process (atomic bytes) */
    int duplicates;       /* list sources: lines that name a path an earlier line names (each is a sample) */
    int duplicate_line;   /* the first of them (0: none) */
} gsl_data;

/* A .data file (key=value lines, '#' comments). Paths are as written (relative ones to the working directory,
 * as in Darknet). Keys:
 *   classes        number of classes (required)
 *   train, valid   image sources: an IDX images file, or a list file of image paths (train required)
 *   database       optional; gsl eval searches it (default: train)
 *   train_labels, valid_labels, database_labels   the IDX labels file of an IDX source
 *   labels         names file for list sources: line i names class i
 *   backup         folder for weights, codebooks and logs (default "backup")
 *   train_classes  class subset for training, e.g. 0,1,2,3,4 or 0-4 (default: all)
 *   eval_classes   class subset for valid and database (default: all); train 0-4 with eval 5-9 is the
 *                  unseen-class protocol
 *   holdout        N > 0: a validation split carved from `train` for tuning without the test set: N samples of
 *                  every class of the train source (a seeded choice), taken out of train (and of the default
 *                  database); they become the `valid` split (the queries), which must then not be given
 *   holdout_seed   seed of that choice (default 1)
 *   unreadable     error (default): an image that cannot be read stops the command with its file and line;
 *                  skip: it is skipped and counted (in training, its place in a batch goes to the next readable
 *                  image of the list; eval, embed, encode, search and export leave it out of their outputs)
 *   loader_threads threads that decode a batch of list images (default: the CPUs this process may use, at most
 *                  GSL_LOADER_AUTO_THREADS); IDX sources are in memory and need none
 *   names          accepted and ignored (Darknet's detector key) */
typedef struct gsl_data_cfg {
    char *file;
    int classes;
    char *train, *valid, *database;
    char *train_labels, *valid_labels, *database_labels;
    char *labels, *backup;
    int *train_classes, n_train_classes; /* NULL/0: all */
    int *eval_classes, n_eval_classes;
    int holdout;               /* per class; 0: none. When > 0, valid/valid_labels are copies of train/train_labels */
    uint64_t holdout_seed;
    int skip_unreadable;       /* unreadable=skip (default unreadable=error) */
    int loader_threads;        /* 0: automatic */
} gsl_data_cfg;

int gsl_data_cfg_read(const char *path, gsl_data_cfg *cfg, char *err);
void gsl_data_cfg_free(gsl_data_cfg *cfg);

typedef enum { GSL_SPLIT_TRAIN, GSL_SPLIT_VALID, GSL_SPLIT_DATABASE } gsl_split;

/* Loads a split for a network input of c x h x w (channels 1 or 3): IDX images must be h x w; list images of any
 * size are resized when gathered. Keeps the samples of the split's class subset (train_classes for train,
 * eval_classes otherwise). With a holdout, the train source's holdout samples are the valid split and are removed
 * from train and from the default database. Every sample must have a label (gsl_data_load_unlabelled: not). */
int gsl_data_load(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, gsl_data *out, char *err);
/* The same for commands that need no labels (embed, encode, search, export): a list path that matches no class name
 * (or no `labels` file at all) gives an unlabelled sample (label -1); class subsets keep unlabelled samples. */
int gsl_data_load_unlabelled(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, gsl_data *out, char *err);

/* IDX images (magic 0x803: n, rows, cols, unsigned bytes) and labels (0x801: n bytes < classes); labels NULL: the
 * samples are unlabelled (label -1). */
int gsl_data_load_idx(const char *images, const char *labels, int classes, gsl_data *out, char *err);

/* A list file of image paths (blank lines ignored) for a c x h x w input; names[classes] from the labels file (NULL:
 * no labels). need_labels: every path must match exactly one name; else a path matching none (or two) is unlabelled.
 * Nothing is decoded here. */
int gsl_data_load_list(const char *list, char *const *names, int classes, int need_labels, int c, int h, int w,
                       gsl_data *out, char *err);

/* Images for a query: FILE is one image (recognised by its first bytes: PNG, JPEG, BMP, GIF, PNM, PSD, HDR; a TGA by
 * its extension) or a list of image paths; unlabelled; decoded on `threads` threads (0: automatic). */
int gsl_data_load_images(const char *file, int c, int h, int w, int skip_unreadable, int threads, gsl_data *out,
                         char *err);

/* Decodes the image at path into row (c planes of h x w floats in [0, 1]), resized the way Darknet's load_image
 * does (its resize_image) when its size differs. A file that is not an image, a truncated PNG (chunks or compressed
 * pixel data cut short) or JPEG (no end marker), or a pipe is an error naming the file and the reason. */
int gsl_image_decode(const char *path, int c, int h, int w, float *row, char *err);
/* The same; again != 0: the file was decoded whole before in this process, and the check of a PNG's compressed data
 * before stb_image (about half of stb's own time) is skipped. */
int gsl_image_decode_again(const char *path, int c, int h, int w, float *row, int again, char *err);
/* For a process that decodes many images: an image passes through buffers of a few hundred KB, allocated and freed
 * per image (stb_image, Darknet's resize_image). With glibc's defaults each is mapped and handed back to the kernel
 * again, and the page faults cost as much as the decode (a 256x256 JPEG to 224x224: about 1 ms of each); after this
 * call freed memory stays in the process (glibc's mallopt; the gsl command calls it at start). */
void gsl_image_malloc_tune(void);

/* The item behind sample i: the image path (list sources), or "FILE#RECORD" (IDX sources). */
void gsl_data_item(const gsl_data *d, int i, char *buf, size_t cap);
/* Writes the items of samples 0..n-1, one per line (line i: the item behind id i), atomically; with crc non-NULL,
 * the CRC-32 of what it wrote (the whole file). */
int gsl_data_write_items(const char *path, const gsl_data *d, uint32_t *crc, char *err);

/* A note on the lines of a list that repeat an earlier line (d->duplicates) into buf; 0 when there are none. */
int gsl_data_duplicates_note(const gsl_data *d, char *buf, size_t cap);

/* Unreadable samples found (skip mode), and their removal: keeps the readable samples and the matching rows of
 * rows (n rows of row_bytes bytes each: embeddings or codes; may be NULL), in order. */
int gsl_data_unreadable_count(const gsl_data *d);
void gsl_data_drop_unreadable(gsl_data *d, void *rows, size_t row_bytes);

/* Keeps the samples i with keep[i] != 0 (keep: d->n flags), in order. */
void gsl_data_keep(gsl_data *d, const uint8_t *keep);

/* Keeps the samples whose class is in `keep` (n_keep entries), and unlabelled ones when keep_unlabelled. Order is
 * preserved. */
int gsl_data_keep_classes(gsl_data *d, const int *keep, int n_keep, int keep_unlabelled, char *err);

/* The holdout: mark[i] = 1 for `per_class` samples of every class (by label[i]) present in label[0..n), chosen
 * by a seeded partial shuffle; the same for every split, since it is computed on the whole source before any class
 * subset. A class with samples but no more than per_class of them is an error (nothing would be left to train on). */
int gsl_data_holdout_mask(const int *label, int n, int classes, int per_class, uint64_t seed, uint8_t *mark,
                          char *err);

void gsl_data_free(gsl_data *d);

/* Batch sampler, deterministic for a seed.
 *   P == 0: each epoch is a fresh permutation of all samples, cut into batches (the last, short one wraps around).
 *   P > 0 : class-balanced batches of P distinct classes x K samples each (batch = P*K); classes with fewer than K
 *           samples are drawn with replacement. An epoch is then n / batch batches. */
typedef struct gsl_sampler {
    const gsl_data *d;
    int batch, P, K;
    uint64_t state;
    int *perm, pos;            /* P == 0 */
    int nclass, *class_start;  /* P > 0: samples of class k are by_class[class_start[k] .. class_start[k+1]) */
    int *by_class, *class_pos, *class_order;
} gsl_sampler;

int gsl_sampler_init(gsl_sampler *s, const gsl_data *d, int batch, int P, int K, uint64_t seed, char *err);
/* Writes `batch` sample indices. */
void gsl_sampler_next(gsl_sampler *s, int *idx);
int gsl_sampler_batches_per_epoch(const gsl_sampler *s);
void gsl_sampler_free(gsl_sampler *s);

/* Copies the samples idx[0..n) into Darknet's input (n, c*h*w) and truth (n, classes; one-hot, all zeros for an
 * unlabelled sample; may be NULL) buffers, decoding list images. An unreadable image is an error naming the list,
 * line and file; in skip mode it is marked in d->unreadable and its row filled with the next readable image of the
 * list. Safe to call from one loader thread while another thread trains. */
int gsl_data_gather(const gsl_data *d, const int *idx, int n, float *input, float *truth, char *err);

/* Training-time augmentation (the trainer keys `flip` and `shift`): each sample independently mirrored left-right
 * with probability 1/2 (flip = 1) and translated by (dx, dy), each uniform in [-shift, shift], the pixels moved in
 * from outside set to 0 (Fashion-MNIST's background). The draw of row i is a function of (key, i) alone, so it does
 * not depend on the thread, replica or rank that gathers the row. flip = 0 and shift = 0 is gsl_data_gather. */
typedef struct gsl_augment {
    int flip;  /* 0 or 1 */
    int shift; /* 0 .. min(h, w) - 1 */
} gsl_augment;

/* The transform of row i under key: mirror (0 or 1), dx, dy (the source pixel of output (y, x) is
 * (y - dy, mirror ? w - 1 - (x - dx) : x - dx)). */
void gsl_augment_draw(const gsl_augment *a, uint64_t key, int i, int *mirror, int *dx, int *dy);

/* gsl_data_gather, then row i of input transformed by gsl_augment_draw(a, key, first + i). */
int gsl_data_gather_augmented(const gsl_data *d, const int *idx, int n, const gsl_augment *a, uint64_t key,
                              int first, float *input, float *truth, char *err);

#endif
