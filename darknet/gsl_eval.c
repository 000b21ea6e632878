/* The gsl commands that run a trained network over a split: eval (search quality of float features and codes), and
 * embed, encode, search and export (vectors, codes, top-k lists and a Faiss index for other tools). */
#include "gsl_eval.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codebook.h"
#include "gsl.h"
#include "gsl_net.h"
#include "gsl_opts.h"
#include "registry.h"


void gsl_eval_opts_default(gsl_eval_opts *o) { *o = (gsl_eval_opts){0, 0, 1, 2, 0}; }

/* Labels in libgslq's form: a class id per sample (every source gives one label per sample). */
typedef struct {
    gslq_labels l;
    int *label;
    uint64_t *bits;
} labels_buf;

static int make_labels(const gsl_data *d, const int *idx, int n, labels_buf *b, char *err)
{
    memset(b, 0, sizeof *b);
    b->l.n = (size_t)n;
    if (!(b->label = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)))) return gsl_fail(err, "out of memory");
    for (int i = 0; i < n; i++) b->label[i] = d->label[idx ? idx[i] : i];
    b->l.label = b->label;
    return 0;
}

static void free_labels(labels_buf *b) { free(b->label); free(b->bits); }

/* Seeded sample of at most max of n indices (NULL with *m = n when no sampling is needed; NULL with *m = -1 when
 * out of memory). */
static int *subsample(int n, int max, uint64_t seed, int *m)
{
    *m = n;
    if (max <= 0 || max >= n) return NULL;
    int *p = malloc(sizeof(int) * n);
    if (!p) { *m = -1; return NULL; }
    for (int i = 0; i < n; i++) p[i] = i;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < max; i++) {
        int j = i + (int)(gslq_xorshift64(&s) % (uint64_t)(n - i)), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    *m = max;
    return p;
}

int gsl_eval_network(network *net, const gsl_data *q, const gsl_data *db, const gslq_pq *pq, const gsl_eval_opts *o,
                     gsl_eval_summary *out, char *err)
{
    *out = (gsl_eval_summary){NAN, NAN, NAN, NAN, NAN, NAN, {NAN, NAN, NAN}, 0, 0};
    int emb = gsl_net_embedding_layer(net), d = net->layers[emb].outputs;
    int nq, nb, rc = -1;
    int *qi = subsample(q->n, o->max_queries, o->seed + 17, &nq);
    int *bi = subsample(db->n, o->max_database, o->seed + 29, &nb);
    float *xq = nq >= 0 ? malloc(sizeof(float) * (size_t)nq * d + 1) : NULL;
    float *xb = nb >= 0 ? malloc(sizeof(float) * (size_t)nb * d + 1) : NULL;
    uint8_t *codes = NULL;
    int64_t *gt = NULL, *res = NULL; /* (nq, k) the exact and the ADC rankings' heads, for NN-recall */
    labels_buf lq = {0}, lb = {0};
    gslq_error e = {0};
    if (!xq || !xb) { gsl_fail(err, "out of memory"); goto done; }
    if (pq && pq->d != d) { gsl_fail(err, "the codebook is %d-dimensional, the embedding %d", pq->d, d); goto done; }
    if (gsl_net_embed(net, q, qi, nq, emb, o->quiet ? NULL : "embedding the queries", xq, err) ||
        gsl_net_embed(net, db, bi, nb, emb, o->quiet ? NULL : "embedding the database", xb, err))
        goto done;
    if (o->normalize) {
        gsl_l2_normalize(xq, nq, d);
        gsl_l2_normalize(xb, nb, d);
    }
    if (make_labels(q, qi, nq, &lq, err) || make_labels(db, bi, nb, &lb, err)) goto done;
    out->nq = nq;
    out->nb = nb;
    /* mAP@1000 and (unless quiet) P@100 and the top k for NN-recall, all from one ranking per query and quantizer */
    const size_t R[2] = {nb < 1000 ? (size_t)nb : 1000, nb < 100 ? (size_t)nb : 100};
    const int nR = o->quiet ? 1 : 2, k = nb < 100 ? nb : 100, want_nn = pq && !o->quiet;
    gslq_eval_result r[2];
    if (want_nn) {
        gt = malloc(sizeof(int64_t) * (size_t)nq * k);
        res = malloc(sizeof(int64_t) * (size_t)nq * k);
        if (!gt || !res) { gsl_fail(err, "out of memory"); goto done; }
    }
    if (gslq_eval_search_cutoffs(NULL, NULL, xb, nb, d, xq, nq, &lq.l, &lb.l, R, nR, gt, k, o->threads, r, &e))
        goto qerr;
    out->map_float = r[0].map;
    out->map1000_float = r[0].map_at_r;
    if (!o->quiet) out->p100_float = r[1].prec_at_r;
    if (pq) {
        if (!(codes = malloc((size_t)nb * pq->M))) { gsl_fail(err, "out of memory"); goto done; }
        if (gslq_pq_encode_mt(pq, xb, nb, d, codes, o->threads, &e)) goto qerr;
        if (gslq_eval_search_cutoffs(pq, codes, NULL, nb, d, xq, nq, &lq.l, &lb.l, R, nR, res, k, o->threads, r, &e))
            goto qerr;
        out->map_pq = r[0].map;
        out->map1000_pq = r[0].map_at_r;
        if (!o->quiet) {
            out->p100_pq = r[1].prec_at_r;
            const int Rs[3] = {1, 10, 100};
            for (int i = 0; i < 3; i++)
                out->nn_recall[i] = Rs[i] <= k ? gslq_nn_recall(gt, k, res, k, nq, 1, Rs[i]) : NAN;
        }
    }
    rc = 0;
    goto done;
qerr:
    gsl_fail(err, "%s", e.msg);
done:
    free(qi); free(bi); free(xq); free(xb); free(codes); free(gt); free(res);
    free_labels(&lq);
    free_labels(&lb);
    return rc;
}

void gsl_l2_normalize(float *x, int n, int d)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * d;
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)r[j] * r[j];
        if (ss <= 0) continue;
        float inv = (float)(1.0 / sqrt(ss));
        for (int j = 0; j < d; j++) r[j] *= inv;
    }
}

/* ------------------------------------------------------------------------------------------------ commands */

/* What the embedding commands share: a network (weights from a .weights file or a checkpoint), its data, and a
 * codebook (a -codebook file; else the checkpoint's or the .weights file's; else fitted post hoc on the training
 * embeddings, M x K from -M/-K or the network's codebook layer). With -normalize the embeddings are L2-normalised
 * (ranking by cosine), and a codebook the network learnt on its raw embeddings is not used: the post-hoc one is fitted
 * on normalised training embeddings. */
typedef struct session {
    gsl_args a;
    gsl_split split;  /* the split embed, encode and export work on (-split) */
    gsl_data_cfg dc;
    network **nets;
    gslq_pq pq;
    int have_pq;
    char pq_from[1200]; /* where the codebook came from, for the header line */
} session;

static void session_free(session *s)
{
    gsl_net_free(s->nets, 1);
    if (s->have_pq) gslq_pq_free(&s->pq);
    gsl_data_cfg_free(&s->dc);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

enum { CMD_EMBED, CMD_ENCODE, CMD_SEARCH, CMD_EXPORT, CMD_EVAL };
/* The flags each of these commands takes. */
static const char *const cmd_flags[] = {
    "-out -split -normalize -gpus -seed",                                               /* embed */
    "-out -split -codebook -M -K -opq -fit-max -normalize -threads -gpus -seed",        /* encode */
    "-out -query -codes -k -codebook -M -K -opq -fit-max -normalize -threads -gpus -seed", /* search */
    "-out -split -ivf -codebook -M -K -opq -fit-max -normalize -threads -gpus -seed",   /* export */
    "-codebook -M -K -opq -fit-max -normalize -max-queries -threads -gpus -seed",       /* eval */
};

/* A cosine network searched by L2 distance between raw embeddings ranks by something its loss never saw. */
static void cosine_note(const session *s, const char *cmd)
{
    if (s->nets && !s->a.normalize && gsl_net_similarity_is_cosine(s->nets[0]))
        fprintf(stderr, "darknet gsl %s: note: %s trains a cosine similarity; without -normalize the codes and the "
                "search use L2 distances between raw embeddings (-normalize ranks by cosine)\n", cmd, s->a.pos[1]);
}

/* After a split was embedded: its unreadable images (unreadable=skip) left out, with their rows (row_bytes each). */
static int drop_unreadable(gsl_data *d, void *rows, size_t row_bytes, const char *what, char *err)
{
    int bad = gsl_data_unreadable_count(d);
    if (!bad) return 0;
    fprintf(stderr, "%s: %d unreadable image%s of %s left out (unreadable=skip)\n", what, bad, bad == 1 ? "" : "s",
            d->source);
    gsl_data_drop_unreadable(d, rows, row_bytes);
    return d->n ? 0 : gsl_fail(err, "%s: no readable image", d->source);
}

/* Embeds a split (labels needed or not), drops its unreadable images (unreadable=skip), normalises on -normalize. */
static int embed_data(session *s, gsl_data *d, float **x, int *dim, const char *what, char *err)
{
    network *net = s->nets[0];
    int emb = gsl_net_embedding_layer(net);
    *dim = net->layers[emb].outputs;
    if (!(*x = malloc(sizeof(float) * (size_t)d->n * *dim))) return gsl_fail(err, "out of memory for %d embeddings", d->n);
    if (gsl_net_embed(net, d, NULL, d->n, emb, what, *x, err)) return -1;
    if (drop_unreadable(d, *x, sizeof(float) * (size_t)*dim, what, err)) return -1;
    if (s->a.normalize) gsl_l2_normalize(*x, d->n, *dim);
    return 0;
}

typedef struct {
    const session *s;
    uint8_t *codes;
    int dim;
} encode_sink_ctx;

static int encode_sink(void *ctx, int first, int m, float *rows, char *err)
{
    const encode_sink_ctx *c = ctx;
    const gslq_pq *pq = &c->s->pq;
    gslq_error e = {0};
    if (c->s->a.normalize) gsl_l2_normalize(rows, m, c->dim);
    if (gslq_pq_encode_mt(pq, rows, m, c->dim, c->codes + (size_t)first * pq->M, c->s->a.threads ? c->s->a.threads : 2,
                          &e))
        return gsl_fail(err, "%s", e.msg);
    return 0;
}

/* embed_data and the session's PQ encoding in one pass, batch by batch: only the codes (d->n x M bytes) are kept,
 * never the d->n x dim embeddings, so a database of any size encodes in the memory of its codes. */
static int encode_data(session *s, gsl_data *d, uint8_t **codes, const char *what, char *err)
{
    network *net = s->nets[0];
    int emb = gsl_net_embedding_layer(net), dim = net->layers[emb].outputs;
    if (!(*codes = malloc((size_t)d->n * s->pq.M + 1))) return gsl_fail(err, "out of memory for %d codes", d->n);
    encode_sink_ctx c = {s, *codes, dim};
    if (gsl_net_embed_each(net, d, NULL, d->n, emb, what, encode_sink, &c, err)) return -1;
    return drop_unreadable(d, *codes, (size_t)s->pq.M, what, err);
}

/* Post-hoc PQ (the "quantize after training" baseline): fitted on the training split's embeddings, of at most
 * -fit-max images (default POST_HOC_MAX_TRAIN; 0: all): a larger split is sampled (seeded) before it is embedded, so
 * the fit neither embeds a million-image split nor holds its embeddings. The default is 256 points per centroid at
 * K = 256, the cap Faiss's k-means applies itself. */
enum { POST_HOC_MAX_TRAIN = 65536 };
static int fit_post_hoc(session *s, char *err)
{
    network *net = s->nets[0];
    int cbl[GSL_MAX_CODEBOOK_LAYERS], M = s->a.subspaces, K = s->a.codewords, d0, M0 = 0, K0 = 256;
    if (gsl_net_codebook_layers(net, cbl) > 0) gsl_layer_codebook_shape(&net->layers[cbl[0]], &d0, &M0, &K0);
    if (!M) M = M0;
    if (!K) K = K0;
    int by_default = !M;
    if (by_default) { /* a network without a codebook layer, and no -M: 32-bit codes, the project's standard */
        M = 4;
        fprintf(stderr, "no codebook in the network: post-hoc PQ with M=4 K=%d (the default; -M/-K, -codebook FILE "
                "to choose)\n", K);
    }
    int dim = net->layers[gsl_net_embedding_layer(net)].outputs, cap = s->a.fit_max_set ? s->a.fit_max : POST_HOC_MAX_TRAIN;
    if (dim % M) /* before anything is embedded */
        return gsl_fail(err, "%s %d does not divide the embedding size %d (-M to choose)", by_default ? "M =" : "-M", M,
                        dim);
    if (cap > 0 && cap < K)
        return gsl_fail(err, "-fit-max %d: fewer training images than the K=%d codewords the fit needs", cap, K);
    gsl_data tr;
    if (gsl_data_load_unlabelled(&s->dc, GSL_SPLIT_TRAIN, net->c, net->h, net->w, &tr, err)) return -1;
    uint64_t seed = s->a.seed_set ? s->a.seed : 1;
    int total = tr.n, m, rc = 0, *pick = subsample(tr.n, cap, seed, &m);
    if (m < 0) rc = gsl_fail(err, "out of memory");
    else if (m < tr.n) { /* a large training split: a seeded sample of it is embedded, in file order */
        uint8_t *keep = calloc((size_t)tr.n, 1);
        if (!keep) rc = gsl_fail(err, "out of memory");
        for (int i = 0; !rc && i < m; i++) keep[pick[i]] = 1;
        if (!rc) gsl_data_keep(&tr, keep);
        free(keep);
    }
    free(pick);
    char what[160];
    if (m < total) snprintf(what, sizeof what, "embedding a sample of %d of the %d training images (-fit-max)", m, total);
    else snprintf(what, sizeof what, "embedding the training split");
    float *x = NULL;
    int d = 0;
    if (!rc && embed_data(s, &tr, &x, &d, what, err)) {
        if (m < total) { /* say that the failure is the sample's */
            char why[GSL_DATA_ERRLEN];
            snprintf(why, sizeof why, "%s", err);
            gsl_fail(err, "%s: %s", what, why);
        }
        rc = -1;
    }
    if (!rc) {
        gslq_error e = {0};
        gslq_train_params p;
        gslq_train_params_default(&p);
        p.seed = seed;
        p.nthreads = s->a.threads ? s->a.threads : 2;
        rc = gslq_pq_init(&s->pq, d, M, K, &e);
        if (!rc) {
            s->have_pq = 1;
            rc = s->a.opq ? gslq_opq_train(&s->pq, x, tr.n, &p, &e) : gslq_pq_train(&s->pq, x, tr.n, &p, &e);
        }
        if (rc) gsl_fail(err, "fitting PQ: %s", e.msg);
        const char *norm = s->a.normalize ? " normalised" : "", *kind = s->a.opq ? "OPQ" : "PQ";
        if (m < total)
            snprintf(s->pq_from, sizeof s->pq_from, "fitted on %d%s training embeddings of a seeded sample of %d of the "
                     "%d (post-hoc %s)", tr.n, norm, m, total, kind);
        else
            snprintf(s->pq_from, sizeof s->pq_from, "fitted on the %d%s training embeddings (post-hoc %s)", tr.n, norm,
                     kind);
    }
    free(x);
    gsl_data_free(&tr);
    return rc;
}

static gsl_split split_of(const gsl_args *a, gsl_split def, char *err, int *bad)
{
    *bad = 0;
    if (!a->split) return def;
    if (!strcmp(a->split, "train")) return GSL_SPLIT_TRAIN;
    if (!strcmp(a->split, "valid")) return GSL_SPLIT_VALID;
    if (!strcmp(a->split, "database")) return GSL_SPLIT_DATABASE;
    *bad = 1;
    gsl_fail(err, "-split must be train, valid or database, got '%s'", a->split);
    return def;
}

/* Returns 0, -1 (an error in err), -2 (a usage error in err) or -3 (-h: print the usage). */
static int session_open(session *s, int argc, char **argv, int cmd, int need_pq, char *err)
{
    memset(s, 0, sizeof *s);
    if (gsl_args_parse(argc, argv, 3, 3, cmd_flags[cmd], &s->a, err)) return -2;
    if (s->a.help) return -3;
    if (s->a.ngpus > 1) {
        gsl_fail(err, "-gpus: these commands run the network on one device, %d were given", s->a.ngpus);
        return -2;
    }
    if ((s->a.subspaces || s->a.codewords || s->a.opq || s->a.fit_max_set) && s->a.codebook) {
        gsl_fail(err, "-M, -K, -opq and -fit-max fit a codebook; -codebook gives one: not both");
        return -2;
    }
    int bad = 0;
    s->split = split_of(&s->a, cmd == CMD_EMBED || cmd == CMD_ENCODE ? GSL_SPLIT_VALID : GSL_SPLIT_DATABASE, err, &bad);
    if (bad) return -2;
    if (cmd == CMD_SEARCH && s->a.codes && (!s->a.query || s->a.split)) {
        gsl_fail(err, "-codes searches the codes of gsl encode for -query's images: it takes -query, and no -split");
        return -2;
    }
    if (cmd == CMD_SEARCH && s->a.codes && !ends_with(s->a.codes, ".codes")) {
        gsl_fail(err, "-codes %s: expected gsl encode's X.codes (its items are X.items)", s->a.codes);
        return -2;
    }
    if (cmd == CMD_SEARCH && s->a.query && s->a.out) {
        gsl_fail(err, "-query prints its hits; -out writes the valid split's: one or the other");
        return -2;
    }
    if (cmd != CMD_EVAL && !s->a.out && !(cmd == CMD_SEARCH && s->a.query)) {
        gsl_fail(err, cmd == CMD_SEARCH ? "-query FILE or -out X is required" : "-out is required");
        return -2;
    }
    if (gsl_data_cfg_read(s->a.pos[0], &s->dc, err)) return -1;
    gsl_registry_install();
    const char *w = strcmp(s->a.pos[2], "-") ? s->a.pos[2] : NULL; /* "-": the cfg's random initialisation */
    gsl_ckpt ck;
    int is_ckpt = w && ends_with(w, ".ckpt");
    if (is_ckpt && gsl_ckpt_read(w, &ck, err)) return -1;
    uint64_t seed = s->a.seed_set ? s->a.seed : 1;
    if (!(s->nets = gsl_net_load(s->a.pos[1], is_ckpt ? ck.weights : w, s->a.ngpus ? s->a.gpus : NULL,
                                 s->a.ngpus ? 1 : 0, 0, seed, err)))
        return -1;
    if (is_ckpt && gsl_ckpt_same_network(&ck, w, s->nets[0], s->a.pos[1], err)) return -1;
    if (!need_pq) return 0;
    gslq_error e = {0};
    /* -M/-K/-opq ask for a post-hoc fit; -normalize needs one (the network's codebook quantizes raw embeddings) */
    int post_hoc = s->a.subspaces || s->a.codewords || s->a.opq || s->a.normalize;
    if (s->a.codebook) {
        if (gslq_pq_load(s->a.codebook, &s->pq, &e)) return gsl_fail(err, "%s", e.msg);
        s->have_pq = 1;
        snprintf(s->pq_from, sizeof s->pq_from, "%s (-codebook)", s->a.codebook);
    } else if (!post_hoc && is_ckpt && ck.ncb > 0 && ck.cb_installed[0]) {
        if (gslq_pq_load(ck.codebook[0], &s->pq, &e)) return gsl_fail(err, "%s", e.msg);
        s->have_pq = 1;
        snprintf(s->pq_from, sizeof s->pq_from, "%s (the checkpoint's)", ck.codebook[0]);
    } else if (!post_hoc && w && !is_ckpt) { /* a .weights file may carry the codebook its network trained with */
        int cbl[GSL_MAX_CODEBOOK_LAYERS];
        if (gsl_net_codebook_layers(s->nets[0], cbl) > 0 && gsl_layer_get_codebook(&s->nets[0]->layers[cbl[0]], &s->pq) == 0) {
            s->have_pq = 1;
            snprintf(s->pq_from, sizeof s->pq_from, "stored in %s (layer %d)", w, cbl[0]);
        }
    }
    if (s->have_pq && s->a.fit_max_set)
        return gsl_fail(err, "-fit-max %d: nothing is fitted, the codebook is %s (-M, -K, -opq or -normalize fit one)",
                        s->a.fit_max, s->pq_from);
    if (!s->have_pq) return fit_post_hoc(s, err);
    int dim = s->nets[0]->layers[gsl_net_embedding_layer(s->nets[0])].outputs;
    if (dim != s->pq.d) /* before anything is embedded, for every command */
        return gsl_fail(err, "the embeddings have dimension %d, but the codebook is for dimension %d (%s)", dim,
                        s->pq.d, s->pq_from);
    return 0;
}

static void print_row(const char *name, double map, double m1000, double p100, const double *nn)
{
    printf("%-30s %8.4f %9.4f %8.4f", name, map, m1000, p100);
    if (nn) printf("   %6.4f %6.4f %6.4f", nn[0], nn[1], nn[2]);
    printf("\n");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t item_hash(const gsl_data *d, int i)
{
    char item[4200];
    gsl_data_item(d, i, item, sizeof item);
    uint64_t h = 1469598103934665603ull; /* FNV-1a, 64-bit */
    for (const unsigned char *p = (const unsigned char *)item; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* How many queries are also in the database (the same path, or the same record of the same file), -1 when it cannot
 * be counted (memory). Each of them finds itself at rank 1, which raises mAP over that of unseen queries. */
static int queries_in_database(const gsl_data *q, const gsl_data *db)
{
    uint64_t *h = malloc(sizeof(uint64_t) * (db->n ? (size_t)db->n : 1));
    if (!h) return -1;
    for (int i = 0; i < db->n; i++) h[i] = item_hash(db, i);
    qsort(h, (size_t)db->n, sizeof *h, cmp_u64);
    int shared = 0;
    for (int i = 0; i < q->n; i++) {
        uint64_t k = item_hash(q, i);
        shared += bsearch(&k, h, (size_t)db->n, sizeof *h, cmp_u64) != NULL;
    }
    free(h);
    return shared;
}


int gsl_eval_main(int argc, char **argv)
{
    session s;
    char err[GSL_DATA_ERRLEN] = "";
    const char *usage =
        "usage: darknet gsl eval DATA CFG WEIGHTS|CHECKPOINT.ckpt|- [-codebook F | -M M [-K K] [-opq]] [-fit-max N]\n"
        "                        [-normalize] [-max-queries N] [-threads N] [-gpus N] [-seed N]\n"
        "  queries: the valid split; database: the database split (default: train); both need labels\n"
        "  the codebook: -codebook F, else the checkpoint's or the .weights file's, else a PQ (-opq: OPQ) of M x K\n"
        "  (default: the network's codebook shape; without a codebook layer M 4, K 256) fitted on the training\n"
        "  embeddings with k-means seed -seed (default 1); -M/-K/-opq fit one even\n"
        "  when the network has its own; -fit-max N: fitted on a seeded sample of at most N training images\n"
        "  (default 65536; 0: all). '-' as weights: the cfg's random initialisation (-seed)\n"
        "  -normalize      L2-normalise the embeddings (rank by cosine; the codebook fitted on normalised ones)\n"
        "  -max-queries N  evaluate at most N queries (a seeded sample; default: all)\n"
        "  -threads N      search threads (default 2)\n"
        "  -gpus N         run the network on device N (GPU=1 builds)\n";
    int rc = session_open(&s, argc, argv, CMD_EVAL, 1, err);
    if (rc == -3) {
        fputs(usage, stdout);
        session_free(&s);
        return 0;
    }
    if (rc == -2) {
        fprintf(stderr, "darknet gsl eval: %s\n%s", err, usage);
        session_free(&s);
        return 2;
    }
    network *net = s.nets ? s.nets[0] : NULL;
    gsl_data q = {0}, db = {0};
    gsl_eval_summary r;
    if (!rc) {
        char blas[GSLQ_BLAS_DESCRIBE_LEN];
        gslq_blas_describe(blas, sizeof blas);
#ifdef GPU
        const char *where = net->gpu_index >= 0 ? "a GPU" : "the CPU";
#else
        const char *where = "the CPU";
#endif
        printf("evaluating %s on %s; %s\n", s.a.pos[2], where, blas);
        cosine_note(&s, "eval");
    }
    if (!rc && !s.dc.valid) rc = gsl_fail(err, "%s: key 'valid' (the queries) is required for eval", s.dc.file);
    if (!rc) rc = gsl_data_load(&s.dc, GSL_SPLIT_VALID, net->c, net->h, net->w, &q, err);
    if (!rc) rc = gsl_data_load(&s.dc, GSL_SPLIT_DATABASE, net->c, net->h, net->w, &db, err);
    if (!rc && (q.skip_unreadable || db.skip_unreadable))
        rc = gsl_fail(err, "%s: unreadable=skip: gsl eval measures every query and database image, and leaves none "
                      "out (unreadable=error finds them)", s.dc.file);
    char dup[GSL_DATA_ERRLEN];
    for (int k = 0; !rc && k < 2; k++)
        if (gsl_data_duplicates_note(k ? &db : &q, dup, sizeof dup))
            fprintf(stderr, "darknet gsl eval: note: %s\n", dup);
    int shared = rc ? 0 : queries_in_database(&q, &db);
    if (shared > 0)
        fprintf(stderr, "darknet gsl eval: note: %d of the %d query images (valid=) are also in the database (the same "
                "image): such a query finds itself first, which raises mAP above what new queries would get; give "
                "valid= and database= disjoint lists to measure that\n", shared, q.n);
    if (!rc) {
        gsl_eval_opts o;
        gsl_eval_opts_default(&o);
        o.max_queries = s.a.queries;
        o.threads = s.a.threads ? s.a.threads : 2;
        o.normalize = s.a.normalize;
        rc = gsl_eval_network(net, &q, &db, &s.pq, &o, &r, err);
    }
    if (!rc) {
        char pqname[64];
        int bits = 0;
        for (int K = s.pq.K; K > 1; K >>= 1) bits++;
        snprintf(pqname, sizeof pqname, "%s codes (M=%d, K=%d: %d bits)", s.pq.rotation ? "OPQ" : "PQ", s.pq.M,
                 s.pq.K, s.pq.M * bits);
        printf("codebook: %s\n", s.pq_from);
        printf("queries: %d (%s), database: %d (%s)%s\n", r.nq, s.dc.valid, r.nb,
               s.dc.database ? s.dc.database : s.dc.train, s.a.normalize ? ", embeddings L2-normalised" : "");
        printf("%-30s %8s %9s %8s   %s\n", "features", "mAP", "mAP@1000", "P@100", "1-recall@1/10/100 of exact NN");
        print_row("float", r.map_float, r.map1000_float, r.p100_float, NULL);
        print_row(pqname, r.map_pq, r.map1000_pq, r.p100_pq, r.nn_recall);
    }
    if (rc) fprintf(stderr, "darknet gsl eval: error: %s\n", err);
    gsl_data_free(&q);
    gsl_data_free(&db);
    session_free(&s);
    return rc ? 1 : 0;
}


/* embed, encode, search, export: embed a split, then write what the subcommand asks for. */

static int write_labels(const char *path, const gsl_data *d, char *err)
{
    int32_t *l = malloc(sizeof(int32_t) * (d->n ? d->n : 1));
    if (!l) return gsl_fail(err, "out of memory");
    for (int i = 0; i < d->n; i++) l[i] = d->label[i];
    gslq_error e = {0};
    int rc = gslq_ivecs_write(path, l, d->n, 1, &e);
    free(l);
    return rc ? gsl_fail(err, "%s", e.msg) : 0;
}

/* The tag gsl encode keeps in X.codes (gslq_codes_save_tagged): whether the embeddings were L2-normalised, and the
 * CRC-32 of X.items, so that gsl search -codes uses the codes as they were made and with their own items. */
#define CODES_TAG_GSL (1ull << 63)
#define CODES_TAG_NORMALIZED (1ull << 32)

/* gsl search -query FILE: each query image's top k in the database, one tab-separated line per hit on stdout. */
static int search_by_image(session *s, const gsl_data *db, const uint8_t *codes, char *err)
{
    network *net = s->nets[0];
    gsl_data q = {0};
    float *xq = NULL, *dist = NULL;
    int64_t *ids = NULL;
    int qd = 0, k = s->a.k ? s->a.k : 10, rc;
    if (k > db->n) k = db->n;
    gslq_error e = {0};
    rc = gsl_data_load_images(s->a.query, net->c, net->h, net->w, s->dc.skip_unreadable, s->dc.loader_threads, &q,
                              err);
    if (!rc) rc = embed_data(s, &q, &xq, &qd, "embedding the queries", err);
    if (!rc && (!(ids = malloc(sizeof(int64_t) * (size_t)q.n * k)) || !(dist = malloc(sizeof(float) * (size_t)q.n * k))))
        rc = gsl_fail(err, "out of memory");
    if (!rc && gslq_adc_search(&s->pq, codes, db->n, xq, q.n, qd, k, ids, dist, s->a.threads ? s->a.threads : 2, &e))
        rc = gsl_fail(err, "%s", e.msg);
    char qi[4200], di[4200];
    for (int i = 0; !rc && i < q.n; i++) {
        gsl_data_item(&q, i, qi, sizeof qi);
        for (int j = 0; j < k; j++) {
            gsl_data_item(db, (int)ids[(size_t)i * k + j], di, sizeof di);
            printf("%s\t%d\t%.6g\t%s\n", qi, j + 1, dist[(size_t)i * k + j], di);
        }
    }
    if (!rc && (fflush(stdout) || ferror(stdout))) rc = gsl_fail(err, "writing the results: %s", strerror(errno));
    if (!rc)
        fprintf(stderr, "darknet gsl search: %d quer%s against %d database codes (%s), top %d\n", q.n,
                q.n == 1 ? "y" : "ies", db->n, s->pq_from, k);
    free(xq); free(ids); free(dist);
    gsl_data_free(&q);
    return rc;
}

/* search -codes X.codes: the codes gsl encode wrote (checked against this session's codebook by their
 * fingerprint) and their items, X.items beside them, one per code. */
static int load_encoded(session *s, const char *path, gsl_data *items, uint8_t **codes, char *err)
{
    size_t n = 0, len = strlen(path);
    int M = 0;
    uint64_t tag = 0;
    gslq_error e = {0};
    if (gslq_codes_load_tagged(path, &s->pq, codes, &n, &M, &tag, &e))
        return gsl_fail(err, "-codes %s: %s (encode the database with the codebook this search uses: the same "
                        "checkpoint or -codebook, or the same -M, -K, -opq, -normalize, -fit-max and -seed for a "
                        "post-hoc fit)", path, e.msg);
    char ip[4200];
    if (len + 1 > sizeof ip) return gsl_fail(err, "-codes %s: path too long", path);
    snprintf(ip, sizeof ip, "%.*s.items", (int)(len - 6), path);
    if (tag & CODES_TAG_GSL) {
        int normalized = (tag & CODES_TAG_NORMALIZED) != 0;
        if (normalized != (s->a.normalize != 0))
            return gsl_fail(err, "-codes %s: the codes are of %s embeddings (gsl encode%s): search %s -normalize", path,
                            normalized ? "L2-normalised" : "raw", normalized ? " -normalize" : " without -normalize",
                            normalized ? "with" : "without");
        uint32_t crc = 0;
        if (gsl_file_crc(ip, &crc, err)) return -1;
        if (crc != (uint32_t)tag)
            return gsl_fail(err, "%s is not the items file %s was encoded with (its checksum differs): they come "
                            "from one gsl encode, run it again", ip, path);
    } else
        fprintf(stderr, "darknet gsl search: note: %s does not record how it was made (gsl quant encode, or an older "
                "gsl encode): whether it matches -normalize and %s is not checked\n", path, ip);
    network *net = s->nets[0];
    /* an .items file is a list of the items' names: read as a list, never decoded */
    if (gsl_data_load_list(ip, NULL, 1, 0, net->c, net->h, net->w, items, err)) return -1;
    if ((size_t)items->n != n)
        return gsl_fail(err, "%s names %d items, but %s holds %zu codes: not the same gsl encode", ip, items->n, path, n);
    return 0;
}

/* gsl export -ivf NLIST: the coarse quantizer trained on the database embeddings x, then the IndexIVFPQ. */
static int export_ivf(session *s, const char *path, const float *x, const gsl_data *d, int dim, const uint8_t *codes,
                      char *err)
{
    int nlist = s->a.ivf;
    if (nlist > d->n) return gsl_fail(err, "-ivf %d: more lists than the %d database items", nlist, d->n);
    float *coarse = malloc(sizeof(float) * (size_t)nlist * dim);
    int32_t *list_of = malloc(sizeof(int32_t) * (size_t)d->n);
    int rc = coarse && list_of ? 0 : gsl_fail(err, "out of memory");
    gslq_error e = {0};
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.seed = s->a.seed_set ? s->a.seed : 1;
    p.nthreads = s->a.threads ? s->a.threads : 2;
    if (!rc && (gslq_ivf_train(&s->pq, x, d->n, dim, nlist, &p, coarse, list_of, &e) ||
                gslq_export_faiss_ivf(path, &s->pq, coarse, nlist, list_of, codes, d->n, &e)))
        rc = gsl_fail(err, "%s", e.msg);
    free(coarse);
    free(list_of);
    return rc;
}

static int embed_family(int cmd, int argc, char **argv)
{
    static const char *names[] = {"embed", "encode", "search", "export"};
    static const char *usages[] = {
        "embed DATA CFG WEIGHTS|CKPT -out X [-split valid|train|database] [-normalize] [-gpus N]\n"
        "  writes X.fvecs (the embeddings), X.items (line i: the image or IDX record behind row i) and\n"
        "  X.labels.ivecs (-1: unlabelled); default split: valid",
        "encode DATA CFG WEIGHTS|CKPT -out X [-split valid|train|database] [-codebook F | -M M [-K K] [-opq]]\n"
        "       [-fit-max N] [-normalize] [-threads N] [-gpus N]\n"
        "  writes X.codes, X.items and X.labels.ivecs; default split: valid",
        "search DATA CFG WEIGHTS|CKPT -query FILE [-codes X.codes] [-k 10] [-codebook F | -M M [-K K] [-opq]]\n"
        "       [-fit-max N] [-normalize] [-threads N] [-gpus N]\n"
        "  FILE: an image, or a list of image paths; prints one line per hit on stdout:\n"
        "  query<TAB>rank<TAB>distance<TAB>item, against the database split's codes (default database: train);\n"
        "  -codes X.codes: against what `gsl encode -split database -out X` wrote instead (X.codes, X.items):\n"
        "  the database is not embedded (a post-hoc PQ is still fitted on the training split)\n"
        "search DATA CFG WEIGHTS|CKPT -out X [-k 100] ...\n"
        "  the valid split against the database: X.ids.ivecs, X.dist.fvecs, X.items (database) and X.queries.items",
        "export DATA CFG WEIGHTS|CKPT -out INDEX [-ivf NLIST] [-split database|train|valid]\n"
        "       [-codebook F | -M M [-K K] [-opq]] [-fit-max N] [-normalize] [-threads N] [-gpus N]\n"
        "  a Faiss index of the split's codes (default: database) and INDEX.items (line i: the item behind id i);\n"
        "  -ivf NLIST: an IndexIVFPQ of NLIST lists (coarse quantizer trained on the split's embeddings), else an\n"
        "  IndexPQ",
    };
    const char *common = "  the codebook: -codebook F, else the checkpoint's or the .weights file's, else a PQ of M x K\n"
                         "  fitted on the training embeddings (the network's codebook shape; without a codebook layer M 4,\n"
                         "  K 256; -seed N: the k-means seed, default 1; -fit-max N: on a seeded sample of at most N\n"
                         "  training images, default 65536, 0: all); -normalize: L2-normalised embeddings (rank by\n"
                         "  cosine); -threads N: search threads (default 2); lists may be unlabelled\n";
    session s;
    char err[GSL_DATA_ERRLEN] = "";
    int rc = session_open(&s, argc, argv, cmd, cmd != CMD_EMBED, err);
    if (rc == -3) {
        printf("usage: darknet gsl %s\n%s", usages[cmd], cmd != CMD_EMBED ? common : "");
        session_free(&s);
        return 0;
    }
    if (rc == -2) {
        fprintf(stderr, "darknet gsl %s: %s\nusage: darknet gsl %s\n", names[cmd], err, usages[cmd]);
        session_free(&s);
        return 2;
    }
    if (!rc) cosine_note(&s, names[cmd]);
    /* every file the command writes (-out X: X.codes, X.items, ...), checked before anything is embedded and
     * committed as a set (gslq_outset), in this order; out[i] is where file i is written. A crash between the renames
     * can still leave a mix of two runs: encode's tag detects it for its codes and items (CODES_TAG_*). */
    static const char *const outs[][4] = {{".fvecs", ".items", ".labels.ivecs"}, {".items", ".labels.ivecs", ".codes"},
                                          {".ids.ivecs", ".dist.fvecs", ".items", ".queries.items"}, {".items", ""}};
    gslq_outset os = {0};
    const char *out[4] = {0};
    for (int i = 0; !rc && cmd != CMD_EVAL && s.a.out && i < 4 && outs[cmd][i]; i++) {
        char p[4200];
        gslq_error pe = {0};
        if (snprintf(p, sizeof p, "%s%s", s.a.out, outs[cmd][i]) >= (int)sizeof p)
            rc = gsl_fail(err, "-out %s: path too long", s.a.out);
        else if (!(out[i] = gslq_outset_add(&os, p, &pe))) rc = gsl_fail(err, "-out %s: %s", s.a.out, pe.msg);
    }
    gsl_data d = {0}, q = {0};
    float *x = NULL, *xq = NULL;
    uint8_t *codes = NULL;
    int dim = 0;
    gslq_error e = {0};
    network *net = s.nets ? s.nets[0] : NULL;
    if (!rc && s.a.codes) { /* search -query -codes: the database as gsl encode left it, nothing embedded */
        rc = load_encoded(&s, s.a.codes, &d, &codes, err);
    } else {
        const char *what = cmd == CMD_SEARCH ? "embedding the database" : "embedding";
        if (!rc) rc = gsl_data_load_unlabelled(&s.dc, s.split, net->c, net->h, net->w, &d, err);
        /* embed writes the embeddings, export -ivf trains its coarse quantizer on them: the others keep codes only */
        if (!rc && (cmd == CMD_EMBED || (cmd == CMD_EXPORT && s.a.ivf))) rc = embed_data(&s, &d, &x, &dim, what, err);
        else if (!rc) rc = encode_data(&s, &d, &codes, what, err);
    }
#define COMMIT() (!rc && gslq_outset_commit(&os, &e) ? (rc = gsl_fail(err, "%s", e.msg)) : rc)
    if (!rc && cmd == CMD_EMBED) {
        if (gslq_fvecs_write(out[0], x, d.n, dim, &e)) rc = gsl_fail(err, "%s", e.msg);
        if (!rc) rc = gsl_data_write_items(out[1], &d, NULL, err);
        if (!rc) rc = write_labels(out[2], &d, err);
        if (!COMMIT())
            printf("wrote %s.fvecs (%d x %d%s), %s.items and %s.labels.ivecs\n", s.a.out, d.n, dim,
                   s.a.normalize ? ", L2-normalised" : "", s.a.out, s.a.out);
    }
    if (!rc && cmd != CMD_EMBED && !codes) {
        if (!(codes = malloc((size_t)d.n * s.pq.M))) rc = gsl_fail(err, "out of memory");
        else if (gslq_pq_encode_mt(&s.pq, x, d.n, dim, codes, s.a.threads ? s.a.threads : 2, &e)) rc = gsl_fail(err, "%s", e.msg);
    }
    if (!rc && cmd == CMD_ENCODE) {
        uint32_t items_crc = 0;
        rc = gsl_data_write_items(out[0], &d, &items_crc, err);
        if (!rc) rc = write_labels(out[1], &d, err);
        uint64_t tag = CODES_TAG_GSL | (s.a.normalize ? CODES_TAG_NORMALIZED : 0) | items_crc;
        if (!rc && gslq_codes_save_tagged(out[2], &s.pq, codes, d.n, tag, &e)) rc = gsl_fail(err, "%s", e.msg);
        if (!COMMIT())
            printf("wrote %s.codes (%d codes of %d bytes), %s.items and %s.labels.ivecs\n", s.a.out, d.n, s.pq.M,
                   s.a.out, s.a.out);
    }
    if (!rc && cmd == CMD_EXPORT) {
        rc = gsl_data_write_items(out[0], &d, NULL, err);
        if (!rc) {
            if (s.a.ivf) rc = export_ivf(&s, out[1], x, &d, dim, codes, err);
            else if (gslq_export_faiss(out[1], &s.pq, codes, d.n, &e)) rc = gsl_fail(err, "%s", e.msg);
        }
        if (!COMMIT()) {
            printf("wrote %s: a Faiss %s%s of %d codes (%s), and %s.items\n", s.a.out,
                   s.pq.rotation ? "IndexPreTransform(OPQ)+" : "", s.a.ivf ? "IndexIVFPQ" : "IndexPQ", d.n, s.pq_from,
                   s.a.out);
            if (s.a.ivf)
                printf("search it with nprobe set (faiss.extract_index_ivf(index).nprobe = N; it loads as 1): "
                       "nprobe = %d ranks as the flat index\n", s.a.ivf);
            if (s.a.normalize)
                printf("the codes are of L2-normalised embeddings: normalise the queries too "
                       "(faiss.normalize_L2, or gsl embed -normalize)\n");
        }
    }
    if (!rc && cmd == CMD_SEARCH && s.a.query) rc = search_by_image(&s, &d, codes, err);
    if (!rc && cmd == CMD_SEARCH && !s.a.query) {
        int qd, k = s.a.k ? s.a.k : 100;
        if (k > d.n) k = d.n;
        rc = gsl_data_load_unlabelled(&s.dc, GSL_SPLIT_VALID, net->c, net->h, net->w, &q, err);
        if (!rc) rc = embed_data(&s, &q, &xq, &qd, "embedding the queries", err);
        int64_t *ids = rc ? NULL : malloc(sizeof(int64_t) * (size_t)q.n * k);
        float *dist = rc ? NULL : malloc(sizeof(float) * (size_t)q.n * k);
        int32_t *ids32 = rc ? NULL : malloc(sizeof(int32_t) * (size_t)q.n * k);
        if (!rc && (!ids || !dist || !ids32)) rc = gsl_fail(err, "out of memory");
        if (!rc && gslq_adc_search(&s.pq, codes, d.n, xq, q.n, qd, k, ids, dist, s.a.threads ? s.a.threads : 2, &e))
            rc = gsl_fail(err, "%s", e.msg);
        for (size_t i = 0; !rc && i < (size_t)q.n * k; i++) ids32[i] = (int32_t)ids[i];
        if (!rc && gslq_ivecs_write(out[0], ids32, q.n, k, &e)) rc = gsl_fail(err, "%s", e.msg);
        if (!rc && gslq_fvecs_write(out[1], dist, q.n, k, &e)) rc = gsl_fail(err, "%s", e.msg);
        if (!rc) rc = gsl_data_write_items(out[2], &d, NULL, err);
        if (!rc) rc = gsl_data_write_items(out[3], &q, NULL, err);
        if (!COMMIT())
            printf("wrote %s.ids.ivecs, %s.dist.fvecs (top %d of %d for %d queries), %s.items (database) and "
                   "%s.queries.items\n", s.a.out, s.a.out, k, d.n, q.n, s.a.out, s.a.out);
        free(ids); free(dist); free(ids32);
    }
#undef COMMIT
    gslq_outset_free(&os);
    if (rc) fprintf(stderr, "darknet gsl %s: error: %s\n", names[cmd], err);
    free(x); free(xq); free(codes);
    gsl_data_free(&d);
    gsl_data_free(&q);
    session_free(&s);
    return rc ? 1 : 0;
}

int gsl_embed_main(int argc, char **argv) { return embed_family(CMD_EMBED, argc, argv); }
int gsl_encode_main(int argc, char **argv) { return embed_family(CMD_ENCODE, argc, argv); }
int gsl_search_main(int argc, char **argv) { return embed_family(CMD_SEARCH, argc, argv); }
int gsl_export_main(int argc, char **argv) { return embed_family(CMD_EXPORT, argc, argv); }
