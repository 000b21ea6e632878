/* Loading a split into memory: IDX files (gzip'd or not) and image lists (decoded to the network's channels), the
 * split's class subset kept and the holdout's samples removed or kept; each file's size claims checked against what
 * it holds before memory is spent on them. */
#include "gsl_data.h"
#include "gslq.h"

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
#include <zlib.h>

/* stb_image, compiled into libdarknet by Darknet's image.c. Darknet's own loaders exit(0) on a bad file; these
 * return NULL, which we report. */
unsigned char *stbi_load(char const *filename, int *x, int *y, int *comp, int req_comp);
void stbi_image_free(void *retval_from_stbi_load);
unsigned char *stbi_load_from_file(FILE *f, int *x, int *y, int *channels_in_file, int desired_channels);
const char *stbi_failure_reason(void);


/* ------------------------------------------------------------------------------------------------ allocation */

static int data_alloc(gsl_data *d, int n, int c, int h, int w, int classes, const char *what, char *err)
{
    memset(d, 0, sizeof *d);
    size_t dim = (size_t)c * h * w;
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || classes <= 0 || dim > (size_t)INT_MAX ||
        (n && dim > SIZE_MAX / sizeof(float) / (size_t)n) || (n && (size_t)classes > SIZE_MAX / (size_t)n))
        return gsl_fail(err, "%s: sizes out of range (n=%d, %dx%dx%d, %d classes)", what, n, c, h, w, classes);
    d->n = n; d->c = c; d->h = h; d->w = w; d->classes = classes;
    d->x = malloc(sizeof(float) * dim * (n ? n : 1));
    d->y = calloc((size_t)classes * (n ? n : 1), 1);
    d->label = malloc(sizeof(int) * (n ? n : 1));
    if (!d->x || !d->y || !d->label) {
        gsl_data_free(d);
        return gsl_fail(err, "%s: out of memory for %d samples of %zu floats", what, n, dim);
    }
    return 0;
}

void gsl_data_free(gsl_data *d)
{
    free(d->x); free(d->y); free(d->label);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------------------------------------ IDX */

/* Reads exactly n bytes; a short read is a truncated file. */
static int gz_read_all(gzFile g, void *buf, size_t n, const char *path, const char *what, char *err)
{
    unsigned char *p = buf;
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(g, p, chunk);
        if (r < 0) {
            int e;
            const char *m = gzerror(g, &e);
            return gsl_fail(err, "%s: read error in %s: %s", path, what, m);
        }
        if (r == 0) return gsl_fail(err, "%s: file ends inside %s (truncated, or its header lies)", path, what);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *b) { return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; }

/* Opens an IDX file and reads its header: magic must be 0x08 (unsigned byte) with `ndim` dimensions. */
static gzFile idx_open(const char *path, int ndim, uint32_t *dims, char *err)
{
    int fd = gsl_open_regular(path, err);
    if (fd < 0) return NULL;
    gzFile g = gzdopen(fd, "rb");
    if (!g) { close(fd); gsl_fail(err, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    unsigned char h[16];
    if (gz_read_all(g, h, 4, path, "the IDX header", err)) { gzclose(g); return NULL; }
    if (h[0] || h[1] || h[2] != 0x08 || h[3] != ndim) {
        gsl_fail(err, "%s: not an IDX file of unsigned bytes with %d dimensions (magic %02x%02x%02x%02x, expected "
                  "000008%02x)", path, ndim, h[0], h[1], h[2], h[3], ndim);
        gzclose(g);
        return NULL;
    }
    if (gz_read_all(g, h + 4, 4u * ndim, path, "the IDX header", err)) { gzclose(g); return NULL; }
    for (int i = 0; i < ndim; i++) dims[i] = be32(h + 4 + 4 * i);
    return g;
}

/* Reads exactly n bytes into a new *buf that grows as the data arrives, so a header's claim costs memory only
 * once the bytes exist (at most twice what the file holds). */
static int gz_read_grow(gzFile g, unsigned char **buf, size_t n, const char *path, const char *what, char *err)
{
    const size_t step = 1u << 20;
    size_t have = 0, cap = 0;
    *buf = NULL;
    while (have < n || !cap) {
        size_t chunk = n - have < step ? n - have : step;
        if (have + chunk > cap || !cap) {
            size_t nc = cap ? 2 * cap : step;
            if (nc > n) nc = n;
            if (nc < have + chunk) nc = have + chunk;
            unsigned char *p = realloc(*buf, nc ? nc : 1);
            if (!p) return gsl_fail(err, "%s: out of memory for %s", path, what);
            *buf = p;
            cap = nc ? nc : 1;
        }
        if (chunk && gz_read_all(g, *buf + have, chunk, path, what, err)) return -1;
        have += chunk;
    }
    return 0;
}

static int idx_expect_end(gzFile g, const char *path, char *err)
{
    unsigned char extra;
    int r = gzread(g, &extra, 1);
    if (r != 0) return gsl_fail(err, "%s: data continues past the size its IDX header declares", path);
    return 0;
}

int gsl_data_load_idx(const char *images, const char *labels, int classes, gsl_data *out, char *err)
{
    memset(out, 0, sizeof *out);
    uint32_t di[3], dl[1];
    gzFile gi = idx_open(images, 3, di, err);
    if (!gi) return -1;
    gzFile gl = idx_open(labels, 1, dl, err);
    if (!gl) { gzclose(gi); return -1; }
    int rc = 0;
    unsigned char *pix = NULL, *lab = NULL;
    if (di[0] != dl[0]) {
        rc = gsl_fail(err, "%s declares %u images but %s declares %u labels", images, di[0], labels, dl[0]);
        goto done;
    }
    /* Bound the declared sizes before allocating: an IDX header is untrusted input. */
    if (di[0] > (1u << 28) || di[1] == 0 || di[2] == 0 || di[1] > 65536 || di[2] > 65536 ||
        (uint64_t)di[0] * di[1] * di[2] > ((uint64_t)1 << 36)) {
        rc = gsl_fail(err, "%s: implausible IDX sizes %u x %u x %u", images, di[0], di[1], di[2]);
        goto done;
    }
    int n = (int)di[0], h = (int)di[1], w = (int)di[2];
    size_t dim = (size_t)h * w;
    /* both files read in full before the samples are allocated: memory follows what the files hold */
    if ((rc = gz_read_grow(gl, &lab, (size_t)n, labels, "the labels", err))) goto done;
    if ((rc = idx_expect_end(gl, labels, err))) goto done;
    if ((rc = gz_read_grow(gi, &pix, (size_t)n * dim, images, "the pixels", err))) goto done;
    if ((rc = idx_expect_end(gi, images, err))) goto done;
    if ((rc = data_alloc(out, n, 1, h, w, classes, images, err))) goto done;
    for (int i = 0; i < n; i++) {
        if (lab[i] >= classes) {
            rc = gsl_fail(err, "%s: label %d of sample %d is not below classes=%d", labels, lab[i], i, classes);
            goto done;
        }
        out->label[i] = lab[i];
        out->y[(size_t)i * classes + lab[i]] = 1;
    }
    for (size_t j = 0; j < (size_t)n * dim; j++) out->x[j] = pix[j] * (1.0f / 255.0f);
done:
    free(pix);
    free(lab);
    gzclose(gi);
    gzclose(gl);
    if (rc) gsl_data_free(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ image lists */

static int read_lines(const char *path, char ***lines_out, int *n_out, char *err)
{
    FILE *f = gsl_fopen_read(path, err);
    if (!f) return -1;
    char **lines = NULL;
    int n = 0, cap = 0;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        char *s = gsl_trim(buf);
        if (!*s) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 1024;
            char **nl = nc > cap ? realloc(lines, sizeof(char *) * nc) : NULL;
            if (!nl) { rc = gsl_fail(err, "%s: out of memory", path); break; }
            lines = nl;
            cap = nc;
        }
        if (!(lines[n] = strdup(s))) { rc = gsl_fail(err, "%s: out of memory", path); break; }
        n++;
    }
    if (!rc && ferror(f)) rc = gsl_fail(err, "%s: read error", path);
    free(buf);
    fclose(f);
    if (rc) {
        for (int i = 0; i < n; i++) free(lines[i]);
        free(lines);
        return rc;
    }
    *lines_out = lines;
    *n_out = n;
    return 0;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

int gsl_data_load_list(const char *list, char *const *names, int classes, int c, int h, int w, gsl_data *out,
                       char *err)
{
    memset(out, 0, sizeof *out);
    if (c != 1 && c != 3) return gsl_fail(err, "%s: images must have 1 or 3 channels, the network asks for %d", list, c);
    char **paths;
    int n;
    if (read_lines(list, &paths, &n, err)) return -1;
    int rc = data_alloc(out, n, c, h, w, classes, list, err);
    for (int i = 0; i < n && !rc; i++) {
        /* Darknet's classifier convention: the label is the class name found in the path; exactly one must be. */
        int found = -1;
        for (int k = 0; k < classes; k++) {
            if (strstr(paths[i], names[k])) {
                if (found >= 0) {
                    rc = gsl_fail(err, "%s:%d: path '%s' matches two labels, '%s' and '%s'", list, i + 1, paths[i],
                              names[found], names[k]);
                    break;
                }
                found = k;
            }
        }
        if (rc) break;
        if (found < 0) { rc = gsl_fail(err, "%s:%d: path '%s' matches no label", list, i + 1, paths[i]); break; }
        out->label[i] = found;
        out->y[(size_t)i * classes + found] = 1;
        int iw, ih, ic;
        FILE *imf = gsl_fopen_read(paths[i], err); /* a named pipe in a list must not block the run */
        if (!imf) {
            char e2[GSL_DATA_ERRLEN];
            snprintf(e2, sizeof e2, "%s", err);
            rc = gsl_fail(err, "%s:%d: %s", list, i + 1, e2);
            break;
        }
        unsigned char *img = stbi_load_from_file(imf, &iw, &ih, &ic, c);
        fclose(imf);
        if (!img) {
            rc = gsl_fail(err, "%s:%d: cannot read image '%s': %s", list, i + 1, paths[i], stbi_failure_reason());
            break;
        }
        if (iw != w || ih != h) {
            stbi_image_free(img);
            rc = gsl_fail(err, "%s:%d: image '%s' is %dx%d, the network expects %dx%d", list, i + 1, paths[i], iw, ih,
                      w, h);
            break;
        }
        /* stb gives interleaved rows (h, w, c); Darknet wants planes (c, h, w). */
        float *dst = out->x + (size_t)i * c * h * w;
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dst[((size_t)k * h + y) * w + x] = img[((size_t)y * w + x) * c + k] * (1.0f / 255.0f);
        stbi_image_free(img);
    }
    free_lines(paths, n);
    if (rc) gsl_data_free(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ splits */

int gsl_data_keep_classes(gsl_data *d, const int *keep, int n_keep, char *err)
{
    uint8_t *want = calloc(d->classes, 1);
    if (!want) return gsl_fail(err, "out of memory");
    for (int i = 0; i < n_keep; i++)
        if (keep[i] >= 0 && keep[i] < d->classes) want[keep[i]] = 1;
    size_t dim = (size_t)d->c * d->h * d->w;
    int m = 0;
    for (int i = 0; i < d->n; i++) {
        const uint8_t *y = d->y + (size_t)i * d->classes;
        int hit = -1;
        for (int k = 0; k < d->classes && hit < 0; k++)
            if (y[k] && want[k]) hit = k;
        if (hit < 0) continue;
        if (m != i) {
            memmove(d->x + (size_t)m * dim, d->x + (size_t)i * dim, sizeof(float) * dim);
            memmove(d->y + (size_t)m * d->classes, y, d->classes);
        }
        /* Group by a kept class, so the class-balanced sampler never draws a class outside the subset. */
        d->label[m] = want[d->label[i]] ? d->label[i] : hit;
        m++;
    }
    free(want);
    d->n = m;
    return 0;
}

/* Keeps the samples with mark[i] == want, in order. */
static void keep_marked(gsl_data *d, const uint8_t *mark, int want)
{
    size_t dim = (size_t)d->c * d->h * d->w;
    int m = 0;
    for (int i = 0; i < d->n; i++) {
        if (!mark[i] != !want) continue;
        if (m != i) {
            memmove(d->x + (size_t)m * dim, d->x + (size_t)i * dim, sizeof(float) * dim);
            memmove(d->y + (size_t)m * d->classes, d->y + (size_t)i * d->classes, d->classes);
            d->label[m] = d->label[i];
        }
        m++;
    }
    d->n = m;
}

int gsl_data_load(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, gsl_data *out, char *err)
{
    const char *src = split == GSL_SPLIT_TRAIN ? cfg->train : split == GSL_SPLIT_VALID ? cfg->valid : cfg->database;
    const char *lab = split == GSL_SPLIT_TRAIN   ? cfg->train_labels
                      : split == GSL_SPLIT_VALID ? cfg->valid_labels
                                                 : cfg->database_labels;
    const char *key = split == GSL_SPLIT_TRAIN ? "train" : split == GSL_SPLIT_VALID ? "valid" : "database";
    if (split == GSL_SPLIT_DATABASE && !src) { src = cfg->train; lab = cfg->train_labels; key = "train"; }
    if (!src) return gsl_fail(err, "%s: key '%s' is required for this command", cfg->file, key);
    int rc;
    if (lab) {
        if ((rc = gsl_data_load_idx(src, lab, cfg->classes, out, err))) return rc;
        if (out->c != c || out->h != h || out->w != w) {
            gsl_fail(err, "%s (key '%s'): images are %dx%dx%d, the network expects %dx%dx%d", src, key, out->w, out->h,
                 out->c, w, h, c);
            gsl_data_free(out);
            return -1;
        }
    } else {
        if (!cfg->labels)
            return gsl_fail(err, "%s: key '%s' is an image list, which needs the key 'labels' (class names)", cfg->file,
                        key);
        char **names;
        int nn;
        if (read_lines(cfg->labels, &names, &nn, err)) return -1;
        if (nn < cfg->classes) {
            free_lines(names, nn);
            return gsl_fail(err, "%s: %d names, but classes=%d in %s", cfg->labels, nn, cfg->classes, cfg->file);
        }
        rc = gsl_data_load_list(src, names, cfg->classes, c, h, w, out, err);
        free_lines(names, nn);
        if (rc) return rc;
    }
    /* The holdout is drawn on the whole train source (before any class subset), so the splits agree. */
    int from_train = split != GSL_SPLIT_DATABASE || !cfg->database;
    if (cfg->holdout > 0 && from_train) {
        uint8_t *mark = malloc(out->n ? (size_t)out->n : 1);
        if (!mark) { gsl_data_free(out); return gsl_fail(err, "%s: out of memory", cfg->file); }
        rc = gsl_data_holdout_mask(out->label, out->n, out->classes, cfg->holdout, cfg->holdout_seed, mark, err);
        if (!rc) keep_marked(out, mark, split == GSL_SPLIT_VALID);
        free(mark);
        if (rc) {
            gsl_data_free(out);
            char m[GSL_DATA_ERRLEN];
            snprintf(m, sizeof m, "%s", err);
            return gsl_fail(err, "%s: key 'holdout': %s (in %s)", cfg->file, m, src);
        }
    }
    const int *keep = split == GSL_SPLIT_TRAIN ? cfg->train_classes : cfg->eval_classes;
    int nkeep = split == GSL_SPLIT_TRAIN ? cfg->n_train_classes : cfg->n_eval_classes;
    if (keep && (rc = gsl_data_keep_classes(out, keep, nkeep, err))) { gsl_data_free(out); return rc; }
    if (out->n == 0) {
        gsl_data_free(out);
        return gsl_fail(err, "%s: split '%s' has no samples in its class subset", cfg->file, key);
    }
    return 0;
}

