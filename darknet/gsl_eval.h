/* Search quality of a trained network, and the commands that use its embeddings:
 *   gsl eval | embed | encode | search | export */
#ifndef GSL_EVAL_H
#define GSL_EVAL_H

#include <stdint.h>

#include "darknet.h"
#include "gsl_data.h"
#include "gslq.h"

typedef struct gsl_eval_opts {
    int max_queries;   /* 0: all of the query split; else a seeded sample */
    int max_database;  /* 0: all of the database split; else a seeded sample */
    uint64_t seed;
    int threads;
    int quiet;         /* 1: only mAP over the whole ranking (the trainer's per-epoch monitor); 0: progress lines too */
    int normalize;     /* 1: L2-normalised embeddings (search by cosine) */
} gsl_eval_opts;

void gsl_eval_opts_default(gsl_eval_opts *o);

typedef struct gsl_eval_summary {
    double map_float, map_pq;          /* mAP over the whole ranking (NAN when not computed) */
    double map1000_float, map1000_pq;  /* mAP@1000 */
    double p100_float, p100_pq;        /* precision@100 */
    double nn_recall[3];               /* 1-recall@1, @10, @100 of the exact float nearest neighbour under ADC */
    int nq, nb;
} gsl_eval_summary;

/* Embeds queries q and database db with the network (the input of its last layer) and measures retrieval by
 * labels, for the float features and, when pq is given, for ADC search over PQ codes. */
int gsl_eval_network(network *net, const gsl_data *q, const gsl_data *db, const gslq_pq *pq, const gsl_eval_opts *o,
                     gsl_eval_summary *out, char *err);

/* Scales each of the n rows of x (n, d) to unit L2 norm (a zero row stays zero). */
void gsl_l2_normalize(float *x, int n, int d);

int gsl_eval_main(int argc, char **argv);
int gsl_embed_main(int argc, char **argv);
int gsl_encode_main(int argc, char **argv);
int gsl_search_main(int argc, char **argv);
int gsl_export_main(int argc, char **argv);

#endif
