/* `./darknet gsl quant ...`: the PQ library on .fvecs files, usable without any network.
 *   train  -in X.fvecs -out CODEBOOK [-M 8] [-K 256] [-opq] [-iter 25] [-opq-iter 20] [-init kmeans++|random]
 *          [-seed 1234] [-max-points 0] [-tol 0] [-warm CODEBOOK] [-threads 1] [-v]
 *   encode -codebook CODEBOOK -in X.fvecs -out CODES [-threads 1]
 *   search -codebook CODEBOOK -codes CODES -queries Q.fvecs -out IDS.ivecs [-k 100] [-dist D.fvecs] [-sdc]
 *          [-threads 1]
 *   eval   -codebook CODEBOOK -codes CODES -queries Q.fvecs [-base X.fvecs] [-gt GT.ivecs]
 *          [-qlabels L.ivecs -dblabels L.ivecs] [-R 100] [-threads 1]
 *   export -codebook CODEBOOK -codes CODES -out INDEX.faiss
 * Exit status: 0 ok, 1 runtime error (a message names the file), 2 usage error.
 * Only libgslq and libc: no Darknet headers (the lead's main dispatches `gsl quant` here). With
 * -DGSL_QUANT_STANDALONE this file also defines main() (used by scripts/bench/bench_quant.sh). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gslq.h"

int gsl_quant_main(int argc, char **argv);


static void usage(FILE *f)
{
    fprintf(f,
            "usage: darknet gsl quant COMMAND [options]\n"
            "  train  -in X.fvecs -out CODEBOOK [-M 8] [-K 256] [-opq] [-iter 25] [-opq-iter 20]\n"
            "         [-init kmeans++|random] [-seed 1234] [-max-points 0] [-tol 0] [-warm CODEBOOK] [-threads 1] [-v]\n"
            "  encode -codebook CODEBOOK -in X.fvecs -out CODES [-threads 1]\n"
            "  search -codebook CODEBOOK -codes CODES -queries Q.fvecs -out IDS.ivecs [-k 100] [-dist D.fvecs]\n"
            "         [-sdc] [-threads 1]\n"
            "  eval   -codebook CODEBOOK -codes CODES -queries Q.fvecs [-base X.fvecs] [-gt GT.ivecs]\n"
            "         [-qlabels L.ivecs -dblabels L.ivecs] [-R 100] [-threads 1]\n"
            "  export -codebook CODEBOOK -codes CODES -out INDEX.faiss [-ivf NLIST -in X.fvecs [-seed 1234] [-threads 1]]\n"
            "         (-ivf: an IndexIVFPQ of NLIST lists, its coarse quantizer trained on X, the vectors of CODES)\n");
}

/* ---- strict option parsing ---- */

typedef struct {
    const char *name;
    int kind; /* 0 flag, 1 string, 2 int, 3 float */
    const char *s;
    long long i;
    double f;
    int set;
} opt;

enum { O_FLAG, O_STR, O_INT, O_FLOAT };

static opt *find_opt(opt *o, const char *name)
{
    for (; o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

/* The outputs (-out, -dist) can be written, and none is an input or the other output (it would be overwritten before
 * or while it is read): checked before any work. 0, 1 after an error, 2 after a usage error. */
static int check_paths(opt *opts, const char *cmd)
{
    static const char *outs[] = {"out", "dist"};
    for (int i = 0; i < 2; i++) {
        opt *a = find_opt(opts, outs[i]);
        if (!a || !a->set) continue;
        gslq_error e = {0};
        if (gslq_check_output(a->s, &e)) {
            fprintf(stderr, "gsl quant %s: -%s: %s\n", cmd, outs[i], e.msg);
            return 1;
        }
        struct stat sa;
        int a_exists = stat(a->s, &sa) == 0;
        for (opt *b = opts; b->name; b++) {
            if (b == a || !b->set || b->kind != O_STR || !strcmp(b->name, "init")) continue;
            struct stat sb;
            int same = !strcmp(a->s, b->s) ||
                       (a_exists && stat(b->s, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
            if (same) {
                fprintf(stderr, "gsl quant %s: -%s %s is also -%s: it would be overwritten\n", cmd, outs[i], a->s,
                        b->name);
                return 2;
            }
        }
    }
    return 0;
}

/* Returns 0, or 2 after printing a usage error (1 after an unusable output path). */
static int parse_opts(int argc, char **argv, opt *opts, const char *cmd)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        opt *o = a[0] == '-' ? find_opt(opts, a + 1) : NULL;
        if (!o) {
            fprintf(stderr, "gsl quant %s: unknown option '%s'\n", cmd, a);
            return 2;
        }
        if (o->set) {
            fprintf(stderr, "gsl quant %s: option %s given twice\n", cmd, a);
            return 2;
        }
        o->set = 1;
        if (o->kind == O_FLAG) continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "gsl quant %s: option %s needs a value\n", cmd, a);
            return 2;
        }
        const char *v = argv[++i];
        char *end;
        errno = 0;
        if (o->kind == O_STR) {
            o->s = v;
        } else if (o->kind == O_INT) {
            o->i = strtoll(v, &end, 10);
            if (errno || end == v || *end) {
                fprintf(stderr, "gsl quant %s: option %s: '%s' is not an integer\n", cmd, a, v);
                return 2;
            }
        } else {
            o->f = strtod(v, &end);
            if (errno || end == v || *end) {
                fprintf(stderr, "gsl quant %s: option %s: '%s' is not a number\n", cmd, a, v);
                return 2;
            }
        }
    }
    return check_paths(opts, cmd);
}

static int need(opt *opts, const char *name, const char *cmd)
{
    opt *o = find_opt(opts, name);
    if (!o->set) {
        fprintf(stderr, "gsl quant %s: missing required option -%s\n", cmd, name);
        return 2;
    }
    return 0;
}

static int range(opt *opts, const char *name, long long lo, long long hi, const char *cmd)
{
    opt *o = find_opt(opts, name);
    if (o->i < lo || o->i > hi) {
        fprintf(stderr, "gsl quant %s: -%s %lld out of range %lld..%lld\n", cmd, name, o->i, lo, hi);
        return 2;
    }
    return 0;
}

static int fail(const char *cmd, const gslq_error *e)
{
    fprintf(stderr, "gsl quant %s: %s\n", cmd, e->msg[0] ? e->msg : gslq_strerror(e->code));
    return 1;
}

static int load_pq_codes(const char *cmd, const char *cbpath, const char *codespath, gslq_pq *pq, uint8_t **codes,
                         size_t *n, gslq_error *e)
{
    if (gslq_pq_load(cbpath, pq, e)) return fail(cmd, e);
    if (codespath && gslq_codes_load(codespath, pq, codes, n, NULL, e)) {
        gslq_pq_free(pq);
        return fail(cmd, e);
    }
    return 0;
}

/* ---- commands ---- */

/* A few lines over a screen: the table of its options reads best whole. */
static int cmd_train(int argc, char **argv)
{
    const char *C = "train";
    opt o[] = {
        {.name = "in", .kind = O_STR},
        {.name = "out", .kind = O_STR},
        {.name = "M", .kind = O_INT, .i = 8},
        {.name = "K", .kind = O_INT, .i = 256},
        {.name = "opq", .kind = O_FLAG},
        {.name = "iter", .kind = O_INT, .i = 25},
        {.name = "opq-iter", .kind = O_INT, .i = 20},
        {.name = "init", .kind = O_STR, .s = "kmeans++"},
        {.name = "seed", .kind = O_INT, .i = 1234},
        {.name = "max-points", .kind = O_INT, .i = 0},
        {.name = "tol", .kind = O_FLOAT},
        {.name = "warm", .kind = O_STR},
        {.name = "threads", .kind = O_INT, .i = 1},
        {.name = "v", .kind = O_FLAG},
        {.name = NULL}};
    int rc;
    if ((rc = parse_opts(argc, argv, o, C)) || (rc = need(o, "in", C)) || (rc = need(o, "out", C)) ||
        (rc = range(o, "M", 1, 65536, C)) || (rc = range(o, "K", 2, 256, C)) || (rc = range(o, "iter", 0, 100000, C)) ||
        (rc = range(o, "opq-iter", 0, 100000, C)) || (rc = range(o, "max-points", 0, 1LL << 40, C)) ||
        (rc = range(o, "threads", 1, 256, C)))
        return rc;
    gslq_train_params p;
    gslq_train_params_default(&p);
    const char *init = find_opt(o, "init")->s;
    if (!strcmp(init, "kmeans++")) p.init = GSLQ_INIT_KMEANSPP;
    else if (!strcmp(init, "random")) p.init = GSLQ_INIT_RANDOM;
    else {
        fprintf(stderr, "gsl quant train: -init '%s': expected kmeans++ or random\n", init);
        return 2;
    }
    long long mp = find_opt(o, "max-points")->i, kw = find_opt(o, "K")->i;
    if (mp > 0 && mp < kw) {
        fprintf(stderr, "gsl quant train: -max-points %lld is fewer than the K=%lld codewords to fit\n", mp, kw);
        return 2;
    }
    double tol = find_opt(o, "tol")->f;
    if (!(tol >= 0 && tol < 1)) {
        fprintf(stderr, "gsl quant train: -tol %g out of range [0, 1)\n", tol);
        return 2;
    }
    p.niter = (int)find_opt(o, "iter")->i;
    p.opq_iter = (int)find_opt(o, "opq-iter")->i;
    p.seed = (uint64_t)find_opt(o, "seed")->i;
    p.max_points = (size_t)find_opt(o, "max-points")->i;
    p.tol = (float)tol;
    p.nthreads = (int)find_opt(o, "threads")->i;
    p.verbose = find_opt(o, "v")->set;
    const char *in = find_opt(o, "in")->s, *out = find_opt(o, "out")->s, *warm = find_opt(o, "warm")->s;
    int M = (int)find_opt(o, "M")->i, K = (int)find_opt(o, "K")->i, opq = find_opt(o, "opq")->set;

    gslq_error e;
    float *x = NULL;
    size_t n;
    int d;
    if (gslq_fvecs_read(in, &x, &n, &d, &e)) return fail(C, &e);
    gslq_pq pq;
    if (warm) {
        if (gslq_pq_load(warm, &pq, &e)) {
            free(x);
            return fail(C, &e);
        }
        if (pq.d != d || pq.M != M || pq.K != K || (!opq && pq.rotation)) {
            fprintf(stderr, "gsl quant train: warm codebook %s has d=%d M=%d K=%d%s, asked for d=%d M=%d K=%d%s\n",
                    warm, pq.d, pq.M, pq.K, pq.rotation ? " with rotation" : "", d, M, K, opq ? " (OPQ)" : "");
            gslq_pq_free(&pq);
            free(x);
            return 1;
        }
        p.warm_start = 1;
    } else if (gslq_pq_init(&pq, d, M, K, &e)) {
        free(x);
        fprintf(stderr, "gsl quant train: %s (input %s has d=%d)\n", e.msg, in, d);
        return 1;
    }
    double t0 = gslq_now_s();
    rc = opq ? gslq_opq_train(&pq, x, n, &p, &e) : gslq_pq_train(&pq, x, n, &p, &e);
    double t1 = gslq_now_s();
    double mse = 0;
    if (!rc) rc = gslq_pq_mse(&pq, x, n, d, p.nthreads, &mse, &e);
    if (!rc) rc = gslq_pq_save(out, &pq, &e);
    if (!rc)
        printf("train: %s d=%d M=%d K=%d on %zu vectors of %s: %.3f s, mse %.6g, codebook %s\n", opq ? "OPQ" : "PQ",
               d, M, K, n, in, t1 - t0, mse, out);
    gslq_pq_free(&pq);
    free(x);
    return rc ? fail(C, &e) : 0;
}

static int cmd_encode(int argc, char **argv)
{
    const char *C = "encode";
    opt o[] = {
        {.name = "codebook", .kind = O_STR},
        {.name = "in", .kind = O_STR},
        {.name = "out", .kind = O_STR},
        {.name = "threads", .kind = O_INT, .i = 1},
        {.name = NULL}};
    int rc;
    if ((rc = parse_opts(argc, argv, o, C)) || (rc = need(o, "codebook", C)) || (rc = need(o, "in", C)) ||
        (rc = need(o, "out", C)) || (rc = range(o, "threads", 1, 256, C)))
        return rc;
    gslq_error e;
    gslq_pq pq;
    if ((rc = load_pq_codes(C, find_opt(o, "codebook")->s, NULL, &pq, NULL, NULL, &e))) return rc;
    float *x = NULL;
    size_t n;
    int d;
    const char *in = find_opt(o, "in")->s;
    if (gslq_fvecs_read(in, &x, &n, &d, &e)) {
        gslq_pq_free(&pq);
        return fail(C, &e);
    }
    uint8_t *codes = NULL;
    if (d != pq.d) {
        fprintf(stderr, "gsl quant encode: %s has dimension %d, the codebook %s has %d\n", in, d,
                find_opt(o, "codebook")->s, pq.d);
        rc = 1;
    } else if (!(codes = malloc(n * (size_t)pq.M + 1))) {
        fprintf(stderr, "gsl quant encode: out of memory for %zu codes\n", n);
        rc = 1;
    } else {
        double t0 = gslq_now_s();
        rc = gslq_pq_encode_mt(&pq, x, n, d, codes, (int)find_opt(o, "threads")->i, &e);
        double t1 = gslq_now_s();
        if (!rc) rc = gslq_codes_save(find_opt(o, "out")->s, &pq, codes, n, &e);
        if (!rc)
            printf("encode: %zu vectors of %s in %.4f s (%.0f vectors/s), codes %s\n", n, in, t1 - t0,
                   n / (t1 - t0 > 0 ? t1 - t0 : 1e-9), find_opt(o, "out")->s);
        rc = rc ? fail(C, &e) : 0;
    }
    free(codes);
    free(x);
    gslq_pq_free(&pq);
    return rc;
}

static int cmd_search(int argc, char **argv)
{
    const char *C = "search";
    opt o[] = {
        {.name = "codebook", .kind = O_STR},
        {.name = "codes", .kind = O_STR},
        {.name = "queries", .kind = O_STR},
        {.name = "out", .kind = O_STR},
        {.name = "k", .kind = O_INT, .i = 100},
        {.name = "dist", .kind = O_STR},
        {.name = "sdc", .kind = O_FLAG},
        {.name = "threads", .kind = O_INT, .i = 1},
        {.name = NULL}};
    int rc;
    if ((rc = parse_opts(argc, argv, o, C)) || (rc = need(o, "codebook", C)) || (rc = need(o, "codes", C)) ||
        (rc = need(o, "queries", C)) || (rc = need(o, "out", C)) || (rc = range(o, "k", 1, 1 << 20, C)) ||
        (rc = range(o, "threads", 1, 256, C)))
        return rc;
    gslq_error e;
    gslq_pq pq;
    uint8_t *codes = NULL, *qcodes = NULL;
    size_t nb, nq;
    int d, k = (int)find_opt(o, "k")->i, nt = (int)find_opt(o, "threads")->i;
    if ((rc = load_pq_codes(C, find_opt(o, "codebook")->s, find_opt(o, "codes")->s, &pq, &codes, &nb, &e)))
        return rc;
    float *q = NULL, *dist = NULL;
    int64_t *ids = NULL;
    int32_t *ids32 = NULL;
    const char *qp = find_opt(o, "queries")->s;
    if (gslq_fvecs_read(qp, &q, &nq, &d, &e)) {
        rc = fail(C, &e);
        goto done;
    }
    if (d != pq.d) {
        fprintf(stderr, "gsl quant search: %s has dimension %d, the codebook has %d\n", qp, d, pq.d);
        rc = 1;
        goto done;
    }
    if ((size_t)k > nb && nb > 0) { /* no more neighbours than codes: the rest would be padding */
        fprintf(stderr, "gsl quant search: -k %d is more than the %zu codes; returning %zu per query\n", k, nb, nb);
        k = (int)nb;
    }
    ids = calloc(nq * (size_t)k + 1, sizeof *ids);
    dist = calloc(nq * (size_t)k + 1, sizeof *dist);
    ids32 = calloc(nq * (size_t)k + 1, sizeof *ids32);
    if (!ids || !dist || !ids32 || (find_opt(o, "sdc")->set && !(qcodes = malloc(nq * (size_t)pq.M + 1)))) {
        fprintf(stderr, "gsl quant search: out of memory for %zu x %d results\n", nq, k);
        rc = 1;
        goto done;
    }
    double t0 = gslq_now_s();
    if (qcodes) {
        rc = gslq_pq_encode_mt(&pq, q, nq, d, qcodes, nt, &e);
        if (!rc) rc = gslq_sdc_search(&pq, codes, nb, qcodes, nq, k, ids, dist, nt, &e);
    } else {
        rc = gslq_adc_search(&pq, codes, nb, q, nq, d, k, ids, dist, nt, &e);
    }
    double t1 = gslq_now_s();
    if (rc) {
        rc = fail(C, &e);
        goto done;
    }
    for (size_t i = 0; i < nq * (size_t)k; i++) ids32[i] = (int32_t)ids[i];
    /* -out and -dist as a pair: both written under staging names first, so a failure leaves the old pair as it was */
    gslq_outset os = {0};
    const char *so = gslq_outset_add(&os, find_opt(o, "out")->s, &e), *sd = NULL;
    if (!so || (find_opt(o, "dist")->set && !(sd = gslq_outset_add(&os, find_opt(o, "dist")->s, &e))) ||
        gslq_ivecs_write(so, ids32, nq, k, &e) || (sd && gslq_fvecs_write(sd, dist, nq, k, &e)) ||
        gslq_outset_commit(&os, &e)) {
        gslq_outset_free(&os);
        rc = fail(C, &e);
        goto done;
    }
    printf("search: %s %zu queries x %zu codes, k=%d, %d threads: %.4f s (%.0f queries/s), ids %s\n",
           qcodes ? "SDC" : "ADC", nq, nb, k, nt, t1 - t0, nq / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
           find_opt(o, "out")->s);
done:
    free(codes); free(qcodes); free(q); free(dist); free(ids); free(ids32);
    gslq_pq_free(&pq);
    return rc;
}

/* The vectors gsl quant eval measures: the codes with their codebook, the queries, and optionally the database's
 * float vectors. */
typedef struct eval_set {
    const gslq_pq *pq;
    const uint8_t *codes;
    size_t nb, nq;
    int d, nt;
    const float *q, *base;
} eval_set;

/* 1-recall@1/10/100 (and 10-recall@10) of the exact neighbours: from a -gt file, or searched in -base. */
static int eval_recall(const char *C, opt *o, const eval_set *v)
{
    gslq_error e;
    int32_t *gt32 = NULL;
    int64_t *gt = NULL, *res = NULL;
    size_t ngt = 0;
    int gtk = 0, rc = 0, K100 = 100 < (int)v->nb ? 100 : (int)v->nb;
    if (find_opt(o, "gt")->set) {
        const char *gp = find_opt(o, "gt")->s;
        if (gslq_ivecs_read(gp, &gt32, &ngt, &gtk, &e)) { rc = fail(C, &e); goto done; }
        if (ngt != v->nq) {
            fprintf(stderr, "gsl quant eval: %s has %zu ground-truth lists for %zu queries\n", gp, ngt, v->nq);
            rc = 1;
            goto done;
        }
        if (!(gt = malloc(ngt * (size_t)gtk * sizeof *gt + 1))) { rc = 1; fprintf(stderr, "out of memory\n"); goto done; }
        for (size_t i = 0; i < ngt * (size_t)gtk; i++) {
            if (gt32[i] < 0 || (size_t)gt32[i] >= v->nb) {
                fprintf(stderr, "gsl quant eval: %s: id %d (list %zu, rank %zu) is not one of the %zu database "
                        "codes\n", gp, gt32[i], i / gtk, i % gtk + 1, v->nb);
                rc = 1;
                goto done;
            }
            gt[i] = gt32[i];
        }
    } else {
        gtk = K100;
        if (!(gt = malloc(v->nq * (size_t)gtk * sizeof *gt))) { rc = 1; fprintf(stderr, "out of memory\n"); goto done; }
        if (gslq_exact_search(v->base, v->nb, v->q, v->nq, v->d, gtk, gt, NULL, v->nt, &e)) { rc = fail(C, &e); goto done; }
    }
    int rk = K100;
    if (!(res = malloc(v->nq * (size_t)rk * sizeof *res))) { rc = 1; fprintf(stderr, "out of memory\n"); goto done; }
    if (gslq_adc_search(v->pq, v->codes, v->nb, v->q, v->nq, v->d, rk, res, NULL, v->nt, &e)) { rc = fail(C, &e); goto done; }
    int Rs[3] = {1, 10, 100};
    printf("eval: neighbour recall (ADC, %zu queries):", v->nq);
    for (int j = 0; j < 3; j++)
        if (Rs[j] <= rk) printf(" 1-recall@%d %.4f", Rs[j], gslq_nn_recall(gt, gtk, res, rk, v->nq, 1, Rs[j]));
    if (gtk >= 10 && rk >= 10) printf(" 10-recall@10 %.4f", gslq_nn_recall(gt, gtk, res, rk, v->nq, 10, 10));
    printf("\n");
done:
    free(gt32); free(gt); free(res);
    return rc;
}

/* mAP, mAP@R, P@R and recall@R from -qlabels/-dblabels, for the codes and (with -base) the float vectors. */
static int eval_labels(const char *C, opt *o, const eval_set *v, int R)
{
    gslq_error e;
    uint64_t *qb = NULL, *db = NULL;
    size_t nql = 0, ndl = 0;
    int qw = 0, dw = 0, rc = 0;
    const char *qlp = find_opt(o, "qlabels")->s, *dlp = find_opt(o, "dblabels")->s;
    if (gslq_labels_read(qlp, v->nq, &qb, &nql, &qw, &e) || gslq_labels_read(dlp, v->nb, &db, &ndl, &dw, &e)) {
        rc = fail(C, &e);
        goto done;
    }
    /* the two files may need different word counts: widen the narrower */
    int w = qw > dw ? qw : dw;
    uint64_t **narrow = qw < w ? &qb : dw < w ? &db : NULL;
    if (narrow) {
        size_t n = narrow == &qb ? nql : ndl;
        int ow = narrow == &qb ? qw : dw;
        uint64_t *wide = calloc(n * (size_t)w + 1, sizeof *wide);
        if (!wide) { rc = 1; fprintf(stderr, "out of memory\n"); goto done; }
        for (size_t i = 0; i < n; i++) memcpy(wide + i * w, *narrow + i * ow, (size_t)ow * sizeof *wide);
        free(*narrow);
        *narrow = wide;
    }
    gslq_labels ql = {v->nq, w, NULL, qb}, dl = {v->nb, w, NULL, db};
    gslq_eval_result r;
    if (gslq_eval_search(v->pq, v->codes, NULL, v->nb, v->d, v->q, v->nq, &ql, &dl, (size_t)R, v->nt, &r, &e)) {
        rc = fail(C, &e);
        goto done;
    }
    printf("eval: PQ codes (ADC):    mAP %.4f  mAP@%d %.4f  P@%d %.4f  recall@%d %.4f  (%zu queries)\n", r.map, R,
           r.map_at_r, R, r.prec_at_r, R, r.recall_at_r, r.nq);
    if (v->base) {
        if (gslq_eval_search(NULL, NULL, v->base, v->nb, v->d, v->q, v->nq, &ql, &dl, (size_t)R, v->nt, &r, &e)) {
            rc = fail(C, &e);
            goto done;
        }
        printf("eval: float features:    mAP %.4f  mAP@%d %.4f  P@%d %.4f  recall@%d %.4f  (%zu queries)\n", r.map,
               R, r.map_at_r, R, r.prec_at_r, R, r.recall_at_r, r.nq);
    }
done:
    free(qb); free(db);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    const char *C = "eval";
    opt o[] = {
        {.name = "codebook", .kind = O_STR},
        {.name = "codes", .kind = O_STR},
        {.name = "queries", .kind = O_STR},
        {.name = "base", .kind = O_STR},
        {.name = "gt", .kind = O_STR},
        {.name = "qlabels", .kind = O_STR},
        {.name = "dblabels", .kind = O_STR},
        {.name = "R", .kind = O_INT, .i = 100},
        {.name = "threads", .kind = O_INT, .i = 1},
        {.name = NULL}};
    int rc;
    if ((rc = parse_opts(argc, argv, o, C)) || (rc = need(o, "codebook", C)) || (rc = need(o, "codes", C)) ||
        (rc = need(o, "queries", C)) || (rc = range(o, "R", 1, 1 << 20, C)) || (rc = range(o, "threads", 1, 256, C)))
        return rc;
    if (find_opt(o, "qlabels")->set != find_opt(o, "dblabels")->set) {
        fprintf(stderr, "gsl quant eval: -qlabels and -dblabels go together\n");
        return 2;
    }
    if (!find_opt(o, "qlabels")->set && !find_opt(o, "base")->set && !find_opt(o, "gt")->set) {
        fprintf(stderr, "gsl quant eval: nothing to evaluate: give -base or -gt (neighbour recall) and/or "
                        "-qlabels/-dblabels (mAP)\n");
        return 2;
    }
    gslq_error e;
    gslq_pq pq;
    uint8_t *codes = NULL;
    size_t nb, nq, nbase = 0;
    int d, dbase = 0, R = (int)find_opt(o, "R")->i;
    if ((rc = load_pq_codes(C, find_opt(o, "codebook")->s, find_opt(o, "codes")->s, &pq, &codes, &nb, &e)))
        return rc;
    float *q = NULL, *base = NULL;
    const char *qp = find_opt(o, "queries")->s;
    if (gslq_fvecs_read(qp, &q, &nq, &d, &e)) { rc = fail(C, &e); goto done; }
    if (d != pq.d) {
        fprintf(stderr, "gsl quant eval: %s has dimension %d, the codebook has %d\n", qp, d, pq.d);
        rc = 1;
        goto done;
    }
    if ((size_t)R > nb) { /* as search's -k: no more than the database holds (an -R given is said) */
        if (find_opt(o, "R")->set && find_opt(o, "qlabels")->set)
            fprintf(stderr, "gsl quant eval: -R %d is more than the %zu database codes; mAP@%zu\n", R, nb, nb);
        R = (int)(nb > 0 ? nb : 1);
    }
    if (find_opt(o, "base")->set) {
        const char *bp = find_opt(o, "base")->s;
        if (gslq_fvecs_read(bp, &base, &nbase, &dbase, &e)) { rc = fail(C, &e); goto done; }
        if (dbase != d || nbase != nb) {
            fprintf(stderr, "gsl quant eval: %s holds %zu vectors of dimension %d; codes hold %zu of dimension %d\n",
                    bp, nbase, dbase, nb, d);
            rc = 1;
            goto done;
        }
    }
    eval_set v = {&pq, codes, nb, nq, d, (int)find_opt(o, "threads")->i, q, base};
    if (find_opt(o, "gt")->set || base) rc = eval_recall(C, o, &v);
    if (!rc && find_opt(o, "qlabels")->set) rc = eval_labels(C, o, &v, R);
done:
    free(codes); free(q); free(base);
    gslq_pq_free(&pq);
    return rc;
}

/* export -ivf: the coarse quantizer trained on -in (the encoded vectors), then the IndexIVFPQ. Returns 0 or 1. */
static int export_ivf(const char *C, opt *o, const gslq_pq *pq, const uint8_t *codes, size_t n, int nlist,
                      const char *out)
{
    gslq_error e = {0};
    float *x = NULL, *coarse = NULL;
    int32_t *list_of = NULL;
    size_t nx = 0;
    int d = 0, rc = 0;
    const char *in = find_opt(o, "in")->s;
    if (gslq_fvecs_read(in, &x, &nx, &d, &e)) return fail(C, &e);
    if (nx != n) {
        fprintf(stderr, "gsl quant %s: %s holds %zu vectors, the codes file %zu codes: the coarse quantizer is "
                "trained on the vectors that were encoded\n", C, in, nx, n);
        free(x);
        return 1;
    }
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.seed = (uint64_t)find_opt(o, "seed")->i;
    p.nthreads = (int)find_opt(o, "threads")->i;
    coarse = malloc(sizeof(float) * (size_t)nlist * pq->d);
    list_of = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!coarse || !list_of) {
        fprintf(stderr, "gsl quant %s: out of memory\n", C);
        rc = 1;
    } else if (gslq_ivf_train(pq, x, n, d, nlist, &p, coarse, list_of, &e) ||
               gslq_export_faiss_ivf(out, pq, coarse, nlist, list_of, codes, n, &e)) {
        rc = fail(C, &e);
    } else {
        printf("export: Faiss %sIndexIVFPQ (%d lists, by_residual 0) with %zu codes written to %s\n",
               pq->rotation ? "IndexPreTransform(OPQ)+" : "", nlist, n, out);
    }
    free(x);
    free(coarse);
    free(list_of);
    return rc;
}

static int cmd_export(int argc, char **argv)
{
    const char *C = "export";
    opt o[] = {
        {.name = "codebook", .kind = O_STR},
        {.name = "codes", .kind = O_STR},
        {.name = "out", .kind = O_STR},
        {.name = "ivf", .kind = O_INT, .i = 0},
        {.name = "in", .kind = O_STR},
        {.name = "seed", .kind = O_INT, .i = 1234},
        {.name = "threads", .kind = O_INT, .i = 1},
        {.name = NULL}};
    int rc;
    if ((rc = parse_opts(argc, argv, o, C)) || (rc = need(o, "codebook", C)) || (rc = need(o, "codes", C)) ||
        (rc = need(o, "out", C)) || (rc = range(o, "ivf", 0, 1 << 24, C)) || (rc = range(o, "threads", 1, 256, C)))
        return rc;
    int nlist = (int)find_opt(o, "ivf")->i;
    if (nlist && (rc = need(o, "in", C))) return rc;
    if (!nlist && (find_opt(o, "in")->set || find_opt(o, "seed")->set || find_opt(o, "threads")->set)) {
        fprintf(stderr, "gsl quant export: -in, -seed and -threads (the coarse quantizer's training) go with -ivf NLIST "
                "(NLIST >= 1)\n");
        return 2;
    }
    gslq_error e;
    gslq_pq pq;
    uint8_t *codes = NULL;
    size_t n;
    if ((rc = load_pq_codes(C, find_opt(o, "codebook")->s, find_opt(o, "codes")->s, &pq, &codes, &n, &e))) return rc;
    const char *out = find_opt(o, "out")->s;
    if (!nlist) {
        rc = gslq_export_faiss(out, &pq, codes, n, &e);
        if (!rc)
            printf("export: Faiss %s with %zu codes written to %s\n",
                   pq.rotation ? "IndexPreTransform(OPQ)+IndexPQ" : "IndexPQ", n, out);
    } else {
        rc = export_ivf(C, o, &pq, codes, n, nlist, out);
        free(codes);
        gslq_pq_free(&pq);
        return rc;
    }
    free(codes);
    gslq_pq_free(&pq);
    return rc ? fail(C, &e) : 0;
}

int gsl_quant_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    static const char *cmds[] = {"train", "encode", "search", "eval", "export"};
    int known = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) known |= !strcmp(c, cmds[i]);
    for (int i = 2; known && i < argc; i++) /* `gsl quant search -h`, also after other options */
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    if (!strcmp(c, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(c, "encode")) return cmd_encode(argc - 2, argv + 2);
    if (!strcmp(c, "search")) return cmd_search(argc - 2, argv + 2);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(c, "export")) return cmd_export(argc - 2, argv + 2);
    if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gsl quant: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}

#ifdef GSL_QUANT_STANDALONE
int main(int argc, char **argv)
{
    /* argv[0] plays "quant" */
    return gsl_quant_main(argc, argv);
}
#endif
