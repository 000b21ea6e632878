/* The .data file of a dataset: its keys read strictly (see gsl_data.h), class lists parsed, the holdout's rules
 * checked. */
#include "gsl_data.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ .data file */


/* "0,2,5-7" -> sorted unique list within [0, classes). */
static int parse_class_list(const char *file, int line, const char *key, const char *val, int classes, int **out,
                            int *n_out, char *err)
{
    uint8_t *mark = calloc(classes, 1);
    if (!mark) return gsl_fail(err, "%s: out of memory", file);
    const char *p = val;
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b;
        if (end == p || errno) goto bad;
        b = a;
        p = end;
        while (*p == ' ') p++;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || errno) goto bad;
            p = end;
        }
        if (a < 0 || b >= classes || a > b) {
            free(mark);
            return gsl_fail(err, "%s:%d: key '%s': class range %ld-%ld outside 0..%d", file, line, key, a, b,
                        classes - 1);
        }
        for (long k = a; k <= b; k++) mark[k] = 1;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) goto bad;
        while (*p == ' ') p++;
    }
    int n = 0;
    for (int k = 0; k < classes; k++) n += mark[k];
    if (n == 0) goto bad;
    *out = malloc(sizeof(int) * n);
    if (!*out) { free(mark); return gsl_fail(err, "%s: out of memory", file); }
    *n_out = 0;
    for (int k = 0; k < classes; k++)
        if (mark[k]) (*out)[(*n_out)++] = k;
    free(mark);
    return 0;
bad:
    free(mark);
    return gsl_fail(err, "%s:%d: key '%s': '%s' is not a class list (e.g. 0,1,2 or 0-4)", file, line, key, val);
}

void gsl_data_cfg_free(gsl_data_cfg *c)
{
    free(c->file);
    free(c->train); free(c->valid); free(c->database);
    free(c->train_labels); free(c->valid_labels); free(c->database_labels);
    free(c->labels); free(c->backup);
    free(c->train_classes); free(c->eval_classes);
    memset(c, 0, sizeof *c);
}

/* One loop over the file's lines with a branch per key, then the checks between keys: the key table reads best in
 * one place. */
/* An integer key in lo..hi: 0, or -1 with the file, line, key and range in err. */
static int int_key(const char *path, int line, const char *key, const char *val, int lo, int hi, int *out, char *err)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (*end || end == val || errno || v < lo || v > hi)
        return gsl_fail(err, "%s:%d: key '%s': '%s' is not an integer in %d..%d", path, line, key, val, lo, hi);
    *out = (int)v;
    return 0;
}

int gsl_data_cfg_read(const char *path, gsl_data_cfg *cfg, char *err)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = gsl_fopen_read(path, err);
    if (!f) return -1;
    cfg->file = strdup(path);
    char buf[4096];
    int line = 0, rc = 0;
    /* Class lists need `classes`, which may come later in the file: keep their text and line until the end. */
    char *tc = NULL, *ec = NULL;
    int tc_line = 0, ec_line = 0, valid_line = 0;
    struct { char key[32]; int line; } seen[32]; /* keys so far: every key is known and short, or an error below */
    int nseen = 0;
    cfg->holdout_seed = 1;
    struct { const char *key; char **dst; } strs[] = {
        {"train", &cfg->train}, {"valid", &cfg->valid}, {"database", &cfg->database},
        {"train_labels", &cfg->train_labels}, {"valid_labels", &cfg->valid_labels},
        {"database_labels", &cfg->database_labels}, {"labels", &cfg->labels}, {"backup", &cfg->backup},
    };
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (!strchr(buf, '\n') && !feof(f)) { rc = gsl_fail(err, "%s:%d: line too long", path, line); break; }
        char *s = buf;
        if (line == 1 && !strncmp(s, "\xef\xbb\xbf", 3)) s += 3; /* a UTF-8 byte order mark (Windows editors) */
        s = gsl_trim(s);
        if (!*s || *s == '#' || *s == ';') continue;
        char *eq = strchr(s, '=');
        if (!eq) { rc = gsl_fail(err, "%s:%d: expected key=value, got '%s'", path, line, s); break; }
        *eq = 0;
        char *key = gsl_trim(s), *val = gsl_trim(eq + 1);
        if (!*val) { rc = gsl_fail(err, "%s:%d: key '%s' has no value", path, line, key); break; }
        int dup = 0;
        for (int i = 0; i < nseen && !dup; i++)
            if (!strcmp(seen[i].key, key)) dup = seen[i].line;
        if (dup) { rc = gsl_fail(err, "%s:%d: key '%s' is given twice (first on line %d)", path, line, key, dup); break; }
        if (nseen < (int)(sizeof seen / sizeof seen[0])) {
            snprintf(seen[nseen].key, sizeof seen[nseen].key, "%s", key);
            seen[nseen++].line = line;
        }
        int known = 0;
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
            if (strcmp(key, strs[i].key) == 0) {
                free(*strs[i].dst);
                *strs[i].dst = strdup(val);
                known = 1;
            }
        }
        if (known) {
            if (!strcmp(key, "valid") || !strcmp(key, "valid_labels")) valid_line = line;
            continue;
        }
        if (strcmp(key, "holdout") == 0 || strcmp(key, "holdout_seed") == 0) {
            char *end;
            errno = 0;
            long long v = strtoll(val, &end, 10);
            int is_n = key[7] == 0;
            if (*end || end == val || errno || v < 0 || (is_n && v > INT_MAX)) {
                rc = gsl_fail(err, "%s:%d: key '%s': '%s' is not %s", path, line, key, val,
                          is_n ? "a number of samples per class (>= 0)" : "a seed (an integer >= 0)");
                break;
            }
            if (is_n) cfg->holdout = (int)v;
            else cfg->holdout_seed = (uint64_t)v;
        } else if (strcmp(key, "classes") == 0) {
            if ((rc = int_key(path, line, key, val, 1, GSL_DATA_MAX_CLASSES, &cfg->classes, err))) break;
        } else if (strcmp(key, "train_classes") == 0) {
            free(tc); tc = strdup(val); tc_line = line;
        } else if (strcmp(key, "eval_classes") == 0) {
            free(ec); ec = strdup(val); ec_line = line;
        } else if (strcmp(key, "loader_threads") == 0) {
            if ((rc = int_key(path, line, key, val, 1, GSL_LOADER_MAX_THREADS, &cfg->loader_threads, err))) break;
        } else if (strcmp(key, "unreadable") == 0) {
            if (strcmp(val, "error") && strcmp(val, "skip")) {
                rc = gsl_fail(err, "%s:%d: key 'unreadable': '%s' is not error or skip", path, line, val);
                break;
            }
            cfg->skip_unreadable = strcmp(val, "skip") == 0;
        } else if (strcmp(key, "names") == 0 || strcmp(key, "top") == 0 || strcmp(key, "eval") == 0) {
            /* Darknet's keys for other commands: accepted, unused here. */
        } else {
            rc = gsl_fail(err, "%s:%d: unknown key '%s' (known: classes, train, valid, database, train_labels, "
                           "valid_labels, database_labels, labels, backup, train_classes, eval_classes, holdout, holdout_seed, "
                           "unreadable, loader_threads)",
                      path, line, key);
            break;
        }
    }
    if (!rc && ferror(f)) rc = gsl_fail(err, "%s: read error", path);
    fclose(f);
    if (!rc && !cfg->classes) rc = gsl_fail(err, "%s: key 'classes' is required", path);
    if (!rc && !cfg->train) rc = gsl_fail(err, "%s: key 'train' is required", path);
    if (!rc && tc)
        rc = parse_class_list(path, tc_line, "train_classes", tc, cfg->classes, &cfg->train_classes,
                              &cfg->n_train_classes, err);
    if (!rc && ec)
        rc = parse_class_list(path, ec_line, "eval_classes", ec, cfg->classes, &cfg->eval_classes,
                              &cfg->n_eval_classes, err);
    if (!rc && cfg->holdout > 0) {
        /* The holdout is the validation split (the queries): a `valid` as well would be ambiguous. */
        if (valid_line)
            rc = gsl_fail(err, "%s:%d: 'valid'/'valid_labels' cannot be given with holdout=%d (the holdout carved from "
                           "'train' is the valid split)", path, valid_line, cfg->holdout);
        else {
            cfg->valid = strdup(cfg->train);
            if (cfg->train_labels) cfg->valid_labels = strdup(cfg->train_labels);
        }
    }
    if (!rc && !cfg->backup) cfg->backup = strdup("backup");
    free(tc);
    free(ec);
    if (rc) gsl_data_cfg_free(cfg);
    return rc;
}

