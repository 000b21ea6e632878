/* What the user gives the gsl commands: command-line flags, and the trainer's keys in a cfg's [net] section, each
 * read strictly. */
#include "gsl_opts.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gsl_cfg.h"
#include "gsl_data.h"
#include "option_list.h"
#include "registry.h"


static int parse_int(const char *flag, const char *s, long lo, long hi, long *v, char *err)
{
    char *end;
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || x < lo || x > hi)
        return gsl_fail(err, "%s needs an integer in %ld..%ld, got '%s'", flag, lo, hi, s ? s : "(nothing)");
    *v = x;
    return 0;
}

/* 1 when the space-separated list holds the word f. */
static int in_words(const char *list, const char *f)
{
    size_t n = strlen(f);
    for (const char *p = list; p && *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && !strncmp(p, f, n)) return 1;
        p += w;
        while (*p == ' ') p++;
    }
    return 0;
}

int gsl_args_parse(int argc, char **argv, int min_pos, int max_pos, const char *allowed, gsl_args *a, char *err)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            a->help = 1;
            return 0;
        }
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (f[0] != '-' || f[1] == 0) {
            if (a->npos == max_pos || a->npos == GSL_MAX_POS) return gsl_fail(err, "unexpected argument '%s'", f);
            a->pos[a->npos++] = f;
            continue;
        }
        if (!in_words(allowed, f))
            return gsl_fail(err, "'%s' is not an option of this command (it takes: %s)", f,
                            allowed && *allowed ? allowed : "no options");
        for (int j = 1; j < i; j++)
            if (!strcmp(argv[j], f)) return gsl_fail(err, "'%s' is given twice", f);
        if (strcmp(f, "-clear") == 0) { a->clear = 1; continue; }
        if (strcmp(f, "-restart") == 0) { a->restart = 1; continue; }
        if (strcmp(f, "-opq") == 0) { a->opq = 1; continue; }
        if (strcmp(f, "-normalize") == 0) { a->normalize = 1; continue; }
        if (strcmp(f, "-out") == 0 || strcmp(f, "-codebook") == 0 || strcmp(f, "-split") == 0 ||
            strcmp(f, "-query") == 0 || strcmp(f, "-codes") == 0) {
            if (!v) return gsl_fail(err, "%s needs a value", f);
            if (strcmp(f, "-out") == 0) a->out = v;
            else if (strcmp(f, "-codebook") == 0) a->codebook = v;
            else if (strcmp(f, "-query") == 0) a->query = v;
            else if (strcmp(f, "-codes") == 0) a->codes = v;
            else a->split = v;
            i++;
            continue;
        }
        if (strcmp(f, "-gpus") == 0) {
            if (!v) return gsl_fail(err, "-gpus needs a list, e.g. -gpus 0,1");
            const char *p = v;
            while (*p) {
                char *end;
                errno = 0;
                long g = strtol(p, &end, 10);
                if (end == p || errno || g < 0 || g > 1023 || a->ngpus == GSL_MAX_GPUS || (*end && *end != ','))
                    return gsl_fail(err, "-gpus needs a list of device numbers like 0,1, got '%s'", v);
                a->gpus[a->ngpus++] = (int)g;
                p = *end ? end + 1 : end;
            }
            i++;
            continue;
        }
        struct { const char *name; long lo, hi; } ints[] = {
            {"-seed", 0, LONG_MAX}, {"-epochs", 1, 100000}, {"-threads", 1, 1024}, {"-k", 1, 1 << 20},
            {"-M", 1, 4096}, {"-K", 2, 256}, {"-max-queries", 1, INT_MAX}, {"-ivf", 1, 1 << 24},
            {"-fit-max", 0, INT_MAX},
        };
        int done = 0;
        for (size_t j = 0; j < sizeof ints / sizeof ints[0] && !done; j++) {
            if (strcmp(f, ints[j].name)) continue;
            if (parse_int(f, v, ints[j].lo, ints[j].hi, &x, err)) return -1;
            switch (j) {
            case 0: a->seed = (uint64_t)x; a->seed_set = 1; break;
            case 1: a->epochs = (int)x; break;
            case 2: a->threads = (int)x; break;
            case 3: a->k = (int)x; break;
            case 4: a->subspaces = (int)x; break;
            case 5: a->codewords = (int)x; break;
            case 6: a->queries = (int)x; break;
            case 7: a->ivf = (int)x; break;
            case 8: a->fit_max = (int)x; a->fit_max_set = 1; break;
            }
            i++;
            done = 1;
        }
        if (!done) return gsl_fail(err, "unknown option '%s'", f);
    }
    if (a->npos < min_pos) return gsl_fail(err, "expected at least %d arguments, got %d", min_pos, a->npos);
    return 0;
}

static void free_kvps(list *l)
{
    for (node *n = l->front; n; n = n->next) {
        kvp *p = n->val;
        free(p->key);
        free(p->val);
        free(p);
    }
    free_list(l);
}

int gsl_train_keys_read(const char *cfgfile, gsl_train_keys *k, char *err)
{
    *k = (gsl_train_keys){.epochs = 10, .warmup = 1, .rebuild_every = 1, .rebuild_samples = 10000,
                          .rebuild_iters = 10, .eval_queries = 1000, .eval_database = 10000, .threads = 2,
                          .seed = 1};
    if (gsl_cfg_check(cfgfile, err)) return -1;
    FILE *f = gsl_fopen_read(cfgfile, err);
    if (!f) return -1;
    list *opts = make_list();
    char line[4096];
    int in_net = 0, seen_net = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, "\r\n")] = 0;
        if (*s == '[') {
            if (seen_net) break;
            in_net = strncmp(s, "[net]", 5) == 0 || strncmp(s, "[network]", 9) == 0;
            seen_net = in_net;
            continue;
        }
        if (!in_net || !*s || *s == '#' || *s == ';') continue;
        char *eq = strchr(s, '=');
        if (!eq) continue; /* Darknet's parser reports it */
        *eq = 0;
        char *key = s, *val = eq + 1, *e = key + strlen(key);
        while (e > key && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        while (*val == ' ' || *val == '\t') val++;
        option_insert(opts, strdup(key), strdup(val));
    }
    fclose(f);
    gsl_section sec = {cfgfile, "net", -1, opts, 0, 0, 0, 0, 0, NULL};
    char e2[GSL_ERRLEN] = "";
    int P = 0, seed = 1;
    static const char *const rebuild_from_names[] = {"training", "sample", NULL};
    int rc = gsl_opt_int(&sec, "epochs", k->epochs, 0, 1, 100000, &k->epochs, e2) ||
             gsl_opt_int(&sec, "warmup", k->warmup, 0, 0, 100000, &k->warmup, e2) ||
             gsl_opt_int(&sec, "rebuild_every", k->rebuild_every, 0, 1, 100000, &k->rebuild_every, e2) ||
             gsl_opt_int(&sec, "rebuild_samples", k->rebuild_samples, 0, 0, INT_MAX, &k->rebuild_samples, e2) ||
             gsl_opt_int(&sec, "rebuild_iters", k->rebuild_iters, 0, 1, 1000, &k->rebuild_iters, e2) ||
             gsl_opt_enum(&sec, "rebuild_from", "training", rebuild_from_names, &k->rebuild_from, e2) ||
             gsl_opt_int(&sec, "opq", k->opq, 0, 0, 1, &k->opq, e2) ||
             gsl_opt_int(&sec, "classes_per_batch", 0, 0, 0, 100000, &P, e2) ||
             gsl_opt_int(&sec, "eval_queries", k->eval_queries, 0, 0, INT_MAX, &k->eval_queries, e2) ||
             gsl_opt_int(&sec, "eval_database", k->eval_database, 0, 0, INT_MAX, &k->eval_database, e2) ||
             gsl_opt_int(&sec, "log_interval", 0, 0, 0, INT_MAX, &k->log_interval, e2) ||
             gsl_opt_int(&sec, "threads", k->threads, 0, 1, 1024, &k->threads, e2) ||
             gsl_opt_int(&sec, "flip", 0, 0, 0, 1, &k->flip, e2) ||
             gsl_opt_int(&sec, "shift", 0, 0, 0, 1000, &k->shift, e2) ||
             gsl_opt_int(&sec, "seed", 1, 0, 0, INT_MAX, &seed, e2);
    k->P = P;
    k->seed = (uint64_t)seed;
    k->epochs_in_cfg = option_find(opts, "epochs") != NULL;
    /* Darknet's image loaders read these; gsl train trains from memory and would silently not augment */
    static const char *const loader_keys[] = {"angle", "aspect", "saturation", "exposure", "hue", "min_crop",
                                              "max_crop", "min_ratio", "max_ratio", "center", NULL};
    for (int i = 0; !rc && loader_keys[i]; i++)
        if (option_find(opts, (char *)loader_keys[i])) {
            snprintf(e2, sizeof e2, "key '%s': Darknet's image-loader augmentation, which gsl train does not apply "
                     "(it trains from images in memory); remove it (flip=1 and shift=N augment in gsl train)",
                     loader_keys[i]);
            rc = 1;
        }
    free_kvps(opts);
    if (rc) return gsl_fail(err, "%s: [net]: %s", cfgfile, e2);
    if (!seen_net) return gsl_fail(err, "%s: no [net] section", cfgfile);
    return 0;
}

int gsl_train_keys_check(const gsl_train_keys *k, const char *cfgfile, int h, int w, int batch, char *err)
{
    if (k->shift && (k->shift >= h || k->shift >= w))
        return gsl_fail(err, "%s: [net]: key 'shift': %d moves the whole %dx%d image out of view (at most %d)", cfgfile,
                        k->shift, w, h, (h < w ? h : w) - 1);
    if (k->P && (k->P < 2 || batch % k->P))
        return gsl_fail(err, "%s: [net]: key 'classes_per_batch': %d classes must divide the batch of %d (batch / "
                        "subdivisions) and be at least 2", cfgfile, k->P, batch);
    return 0;
}
