/* The whole-file check of a network cfg, before upstream's parser sees it.
 *
 * Upstream Darknet's read_cfg aborts on an empty file or one whose first section is not [net], dereferences NULL on
 * a key before the first section (a binary file), and in [net] reads a number with atoi/atof (so "abc" is 0), keeps
 * the first of two equal keys and ignores a key it does not know. This reads the file as upstream does (all spaces
 * and tabs removed from a line, '#' and ';' start comments) and refuses each of those with the file, line, section
 * and key named. Plugin sections check their own keys when parsed (layers/registry.c). */
#include "gsl_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gsl_data.h"
#include "registry.h"

#define CFG_MAX_BYTES (4 << 20)

/* Upstream's section names (src/parser.c, string_to_layer_type), and [net]'s. */
static const char *const upstream_sections[] = {
    "net", "network", "shortcut", "crop", "cost", "detection", "region", "yolo", "iseg", "local", "conv",
    "convolutional", "deconv", "deconvolutional", "activation", "logistic", "l2norm", "crnn", "gru", "lstm", "rnn",
    "conn", "connected", "max", "maxpool", "reorg", "avg", "avgpool", "dropout", "lrn", "normalization",
    "batchnorm", "soft", "softmax", "route", "upsample", NULL};

enum { K_INT, K_FLOAT, K_POLICY, K_INTS, K_FLOATS, K_REBUILD_FROM };
/* Every key [net] may hold: upstream's (parse_net_options) and gsl train's (darknet/gsl_opts.c, which also checks
 * their ranges). */
static const struct net_key {
    const char *name;
    int kind;
} net_keys[] = {
    {"batch", K_INT}, {"subdivisions", K_INT}, {"max_batches", K_INT}, {"time_steps", K_INT}, {"notruth", K_INT},
    {"random", K_INT}, {"adam", K_INT}, {"height", K_INT}, {"width", K_INT}, {"channels", K_INT}, {"inputs", K_INT},
    {"max_crop", K_INT}, {"min_crop", K_INT}, {"center", K_INT}, {"burn_in", K_INT}, {"step", K_INT},
    {"learning_rate", K_FLOAT}, {"momentum", K_FLOAT}, {"decay", K_FLOAT}, {"B1", K_FLOAT}, {"B2", K_FLOAT},
    {"eps", K_FLOAT}, {"max_ratio", K_FLOAT}, {"min_ratio", K_FLOAT}, {"clip", K_FLOAT}, {"angle", K_FLOAT},
    {"aspect", K_FLOAT}, {"saturation", K_FLOAT}, {"exposure", K_FLOAT}, {"hue", K_FLOAT}, {"power", K_FLOAT},
    {"scale", K_FLOAT}, {"gamma", K_FLOAT}, {"policy", K_POLICY}, {"steps", K_INTS}, {"scales", K_FLOATS},
    {"epochs", K_INT}, {"warmup", K_INT}, {"rebuild_every", K_INT}, {"rebuild_samples", K_INT},
    {"rebuild_iters", K_INT}, {"rebuild_from", K_REBUILD_FROM}, {"opq", K_INT}, {"classes_per_batch", K_INT},
    {"eval_queries", K_INT}, {"eval_database", K_INT}, {"log_interval", K_INT}, {"threads", K_INT}, {"flip", K_INT},
    {"shift", K_INT}, {"seed", K_INT}, {NULL, 0}};

static int is_int(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    (void)v;
    return end != s && !*end && !errno;
}

static int is_float(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return end != s && !*end && !errno && isfinite(v);
}

/* A comma-separated list of numbers (upstream's steps= and scales=). */
static int is_list(const char *s, int (*item)(const char *))
{
    char buf[256];
    while (*s) {
        size_t n = strcspn(s, ",");
        if (!n || n >= sizeof buf) return 0;
        memcpy(buf, s, n);
        buf[n] = 0;
        if (!item(buf)) return 0;
        s += n;
        if (*s == ',' && !*++s) return 0;
    }
    return 1;
}

static int net_value_ok(int kind, const char *v, const char **want)
{
    static const char *const policies[] = {"constant", "step", "exp", "poly", "steps", "sig", "random", NULL};
    static const char *const froms[] = {"training", "sample", NULL};
    const char *const *names = kind == K_POLICY ? policies : kind == K_REBUILD_FROM ? froms : NULL;
    switch (kind) {
    case K_INT: *want = "an integer"; return is_int(v);
    case K_FLOAT: *want = "a number"; return is_float(v);
    case K_INTS: *want = "a comma-separated list of integers"; return is_list(v, is_int);
    case K_FLOATS: *want = "a comma-separated list of numbers"; return is_list(v, is_float);
    default:
        *want = kind == K_POLICY ? "one of constant, step, exp, poly, steps, sig, random" : "training or sample";
        for (int i = 0; names[i]; i++)
            if (!strcmp(v, names[i])) return 1;
        return 0;
    }
}

/* The closest key of [net] by edit distance (at most 2), for "did you mean". */
static const char *closest_net_key(const char *k)
{
    const char *best = NULL;
    int bestd = 3;
    for (int i = 0; net_keys[i].name; i++) {
        const char *a = k, *b = net_keys[i].name;
        int la = (int)strlen(a), lb = (int)strlen(b);
        if (la > 40 || lb > 40 || abs(la - lb) >= bestd) continue;
        int d[41][41];
        for (int x = 0; x <= la; x++) d[x][0] = x;
        for (int y = 0; y <= lb; y++) d[0][y] = y;
        for (int x = 1; x <= la; x++)
            for (int y = 1; y <= lb; y++) {
                int c = d[x - 1][y - 1] + (a[x - 1] != b[y - 1]);
                if (d[x - 1][y] + 1 < c) c = d[x - 1][y] + 1;
                if (d[x][y - 1] + 1 < c) c = d[x][y - 1] + 1;
                d[x][y] = c;
            }
        if (d[la][lb] < bestd) { bestd = d[la][lb]; best = b; }
    }
    return best;
}

static int known_section(const char *name)
{
    for (int i = 0; upstream_sections[i]; i++)
        if (!strcmp(name, upstream_sections[i])) return 1;
    return gsl_registry_find(name) != NULL;
}

/* The keys of the section being read, for the repeat check. */
typedef struct {
    char **keys;
    int n, cap;
} keyset;

static void keys_clear(keyset *s)
{
    for (int i = 0; i < s->n; i++) free(s->keys[i]);
    s->n = 0;
}

/* One pass over the file as upstream reads it, a branch per line kind: longer than a screen so that each check sits
 * where upstream would go wrong. */
int gsl_cfg_check(const char *path, char *err)
{
    FILE *f = gsl_fopen_read(path, err);
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > CFG_MAX_BYTES) {
        fclose(f);
        return gsl_fail(err, "%s: %lld bytes: too large for a network cfg", path, (long long)st.st_size);
    }
    gsl_registry_install(); /* the plugin sections are known names */
    keyset ks = {0};
    char sec[64] = "", line[4096];
    int lineno = 0, sections = 0, rc = 0, sec_line = 0, below_loss = 0;
    while (!rc) {
        size_t n = 0;
        int c = 0;
        /* one line, byte by byte: a NUL or other control byte is a binary file, not a text cfg */
        while ((c = fgetc(f)) != EOF && c != '\n') {
            if (c == '\r') { /* upstream keeps it in the line: "[net]\r" is no section, and its parser aborts */
                rc = gsl_fail(err, "%s: line %d ends with a carriage return (Windows line ends), which Darknet's parser "
                              "reads as part of the line: convert the file (sed -i 's/\\r$//' FILE)", path, lineno + 1);
                break;
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                rc = gsl_fail(err, "%s: line %d: byte 0x%02x: not a text cfg (a binary file?)", path, lineno + 1, c);
                break;
            }
            if (c == ' ' || c == '\t') continue; /* upstream removes them all */
            if (n + 1 >= sizeof line) {
                rc = gsl_fail(err, "%s: line %d is longer than %zu characters", path, lineno + 1, sizeof line - 1);
                break;
            }
            line[n++] = (char)c;
        }
        if (rc || (c == EOF && n == 0)) break;
        line[n] = 0;
        lineno++;
        if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3)) {
            rc = gsl_fail(err, "%s: starts with a UTF-8 byte order mark (a Windows editor's), which Darknet's parser "
                          "reads as text: save the file without it", path);
            break;
        }
        if (!n || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            size_t L = strlen(line);
            if (line[L - 1] != ']' || L < 3 || L - 2 >= sizeof sec || memchr(line + 1, ']', L - 2)) {
                rc = gsl_fail(err, "%s: line %d: '%.60s' is not a section header like [convolutional]", path, lineno,
                              line);
                break;
            }
            snprintf(sec, sizeof sec, "%.*s", (int)(L - 2), line + 1);
            sec_line = lineno;
            int is_net = !strcmp(sec, "net") || !strcmp(sec, "network");
            if (!sections && !is_net)
                rc = gsl_fail(err, "%s: line %d: the first section must be [net], not [%s]", path, lineno, sec);
            else if (sections && is_net)
                rc = gsl_fail(err, "%s: line %d: a second [%s] section (the first is the network's)", path, lineno,
                              sec);
            else if (!known_section(sec))
                rc = gsl_fail(err, "%s: line %d: unknown section [%s] (Darknet's layers, or snap, similarity, "
                              "quantloss)", path, lineno, sec);
            else if (!strcmp(sec, "batchnorm")) /* upstream allocates none of its training buffers on the CPU */
                rc = gsl_fail(err, "%s: line %d: [batchnorm] as a layer of its own: Darknet's version of it crashes "
                              "when it trains (it never allocates its buffers); use batch_normalize=1 in the "
                              "[convolutional] or [connected] before it", path, lineno);
            /* Darknet's output layer is the last one that is not a loss ([cost], [similarity]); a network of losses
             * alone has none, and upstream then reads before its layer array */
            below_loss += sections && strcmp(sec, "cost") && strcmp(sec, "similarity");
            sections++;
            keys_clear(&ks);
            continue;
        }
        if (!sections) {
            rc = gsl_fail(err, "%s: line %d: '%.60s' before the first section ([net])", path, lineno, line);
            break;
        }
        char *eq = strchr(line, '=');
        if (!eq || eq == line) {
            rc = gsl_fail(err, "%s: line %d: [%s]: '%.60s' is not a key=value line", path, lineno, sec, line);
            break;
        }
        *eq = 0;
        const char *key = line, *val = eq + 1;
        if (!*val) {
            rc = gsl_fail(err, "%s: line %d: [%s]: key '%s' has no value", path, lineno, sec, key);
            break;
        }
        for (int i = 0; i < ks.n; i++)
            if (!strcmp(ks.keys[i], key)) {
                rc = gsl_fail(err, "%s: line %d: [%s] (line %d): key '%s' is given twice", path, lineno, sec,
                              sec_line, key);
                break;
            }
        if (rc) break;
        if (ks.n == ks.cap) {
            char **k2 = realloc(ks.keys, sizeof *k2 * (size_t)(ks.cap = ks.cap ? 2 * ks.cap : 16));
            if (!k2) { rc = gsl_fail(err, "out of memory"); break; }
            ks.keys = k2;
        }
        if (!(ks.keys[ks.n] = strdup(key))) { rc = gsl_fail(err, "out of memory"); break; }
        ks.n++;
        if (sections != 1) continue;
        /* [net]: every key known, every value of its type */
        int i = 0;
        while (net_keys[i].name && strcmp(net_keys[i].name, key)) i++;
        const char *want;
        if (!net_keys[i].name) {
            const char *near = closest_net_key(key);
            rc = gsl_fail(err, "%s: line %d: [net]: unknown key '%s'%s%s%s", path, lineno, key,
                          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        } else if (!net_value_ok(net_keys[i].kind, val, &want)) {
            rc = gsl_fail(err, "%s: line %d: [net]: key '%s': '%.40s' is not %s", path, lineno, key, val, want);
        } else if ((!strcmp(key, "learning_rate") || !strcmp(key, "decay")) && !(atof(val) >= 0)) {
            rc = gsl_fail(err, "%s: line %d: [net]: key '%s': %s is negative", path, lineno, key, val);
        } else if (!strcmp(key, "momentum") && !(atof(val) >= 0 && atof(val) < 1)) {
            rc = gsl_fail(err, "%s: line %d: [net]: key 'momentum': %s is outside [0, 1) (SGD with it diverges)", path,
                          lineno, val);
        }
    }
    if (!rc && ferror(f)) rc = gsl_fail(err, "%s: read failed", path);
    fclose(f);
    keys_clear(&ks);
    free(ks.keys);
    if (rc) return rc;
    if (!sections) return gsl_fail(err, "%s: no sections: an empty file, or not a network cfg", path);
    if (sections == 1) return gsl_fail(err, "%s: [net] and no layer", path);
    if (!below_loss)
        return gsl_fail(err, "%s: only loss layers ([similarity], [cost]) after [net]: the network needs layers below "
                        "its loss ([convolutional], [connected], ...)", path);
    return 0;
}

int gsl_cfg_sections(const char *path, const char *const *names)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char *w = line; /* Darknet's reader drops every space and tab */
        for (char *r = line; *r; r++)
            if (*r != ' ' && *r != '\t' && *r != '\n' && *r != '\r') *w++ = *r;
        *w = 0;
        size_t len = strlen(line);
        if (len < 3 || line[0] != '[' || line[len - 1] != ']') continue;
        for (int i = 0; names[i]; i++)
            if (strlen(names[i]) == len - 2 && !strncmp(line + 1, names[i], len - 2)) found |= 1 << i;
    }
    fclose(f);
    return found;
}
