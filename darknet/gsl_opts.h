/* Command-line arguments of the gsl subcommands, and the trainer's keys in a cfg's [net] section. */
#ifndef GSL_OPTS_H
#define GSL_OPTS_H

#include <stdint.h>

#define GSL_MAX_POS 8
#define GSL_MAX_GPUS 16

/* Positional arguments and the flags the subcommands share. Numbers are checked (no silent atoi). */
typedef struct gsl_args {
    const char *pos[GSL_MAX_POS];
    int npos;
    int gpus[GSL_MAX_GPUS], ngpus; /* -gpus 0,1 */
    int clear;                     /* -clear */
    int restart;                   /* -restart (train: a new run over the one in the backup folder) */
    uint64_t seed;                 /* -seed N */
    int seed_set;
    int epochs;                    /* -epochs N (0: the cfg's) */
    int threads;                   /* -threads N (0: the cfg's / default) */
    int k;                         /* -k N (search) */
    int subspaces, codewords;      /* -M M -K K (eval/encode of a network without a codebook) */
    int opq;                       /* -opq */
    int queries;                   /* -max-queries N (eval: at most N queries) */
    int fit_max, fit_max_set;      /* -fit-max N (a post-hoc PQ fitted on at most N training images; 0: all) */
    const char *out;               /* -out PATH */
    const char *codebook;          /* -codebook PATH */
    const char *split;             /* -split train|valid|database */
    const char *query;             /* -query FILE (search: an image or a list of images) */
    const char *codes;             /* -codes X.codes (search -query: the database's codes from gsl encode) */
    int ivf;                       /* -ivf NLIST (export: an inverted-file index) */
    int normalize;                 /* -normalize: L2-normalised embeddings (a cosine network) */
    int help;                      /* -h or --help: print the usage, nothing else */
} gsl_args;

/* Parses argv[1..]: between min_pos and max_pos positionals, and only the flags named in `allowed` (space-separated,
 * e.g. "-gpus -seed"), each at most once. -h/--help sets a->help and returns 0 at once. Returns 0, or -1 with a
 * message (a flag this command does not take names the ones it does). */
int gsl_args_parse(int argc, char **argv, int min_pos, int max_pos, const char *allowed, gsl_args *a, char *err);

/* Trainer keys, read strictly from the cfg's [net] section (Darknet ignores keys it does not know there). */
typedef struct gsl_train_keys {
    int epochs;          /* epochs (default 10) */
    int epochs_in_cfg;   /* 1 when [net] gives epochs= (the schedule -epochs scales from) */
    int warmup;          /* epochs before the first codebook (default 1) */
    int rebuild_every;   /* epochs between rebuilds (default 1) */
    int rebuild_samples; /* training samples embedded for a rebuild, 0 = all (default 10000) */
    int rebuild_iters;   /* k-means iterations per rebuild (default 10) */
    int rebuild_from;    /* 0 "training": the codebook layer's inputs seen in the previous epoch's training steps
                          * (a seeded reservoir sample); 1 "sample": a fresh embedding pass over rebuild_samples */
    int opq;             /* 1: OPQ rotation (default 0) */
    int P;               /* classes_per_batch: class-balanced batches of P classes x batch/P samples; 0 = shuffled */
    int eval_queries;    /* per-epoch mAP monitor: queries from valid (default 1000; 0 = off) */
    int eval_database;   /* and database items (default 10000) */
    int log_interval;    /* batches between progress lines (0 = five per epoch) */
    int threads;         /* threads for k-means and search (default 2) */
    int flip, shift;     /* training-time augmentation (gsl_data.h: gsl_augment); default 0, 0 = none */
    uint64_t seed;       /* default 1 */
} gsl_train_keys;

int gsl_train_keys_read(const char *cfgfile, gsl_train_keys *k, char *err);
/* The trainer keys against the network's input and batch (h, w, batch: [net]'s height, width, and batch per
 * subdivision): shift within the image, classes_per_batch dividing the batch. 0, or -1 with err naming cfgfile. */
int gsl_train_keys_check(const gsl_train_keys *k, const char *cfgfile, int h, int w, int batch, char *err);

#endif
