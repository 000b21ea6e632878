/* Loading a split: IDX files (gzip'd or not) decoded into memory, image lists kept as paths and decoded (resized to
 * the network's input with Darknet's own resize_image) when a batch is gathered; the split's class subset kept and the
 * holdout's samples removed or kept; each file's size claims checked against what it holds before memory is spent on
 * them. */
#include "gsl_data.h"
#include "gslq.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "darknet.h"

/* stb_image, compiled into libdarknet by Darknet's image.c. Darknet's own loaders exit(0) on a bad file; these
 * return NULL, which we report. */
unsigned char *stbi_load_from_memory(unsigned char const *buffer, int len, int *x, int *y, int *comp, int req_comp);
int stbi_info_from_memory(unsigned char const *buffer, int len, int *x, int *y, int *comp);
void stbi_image_free(void *retval_from_stbi_load);
const char *stbi_failure_reason(void);

/* ------------------------------------------------------------------------------------------------ allocation */

/* In memory: x and labels for n samples. Streamed (in_memory 0): labels only. */
static int data_alloc(gsl_data *d, int n, int c, int h, int w, int classes, int in_memory, const char *what, char *err)
{
    memset(d, 0, sizeof *d);
    size_t dim = (size_t)c * h * w;
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || classes <= 0 || dim > (size_t)INT_MAX ||
        (n && dim > SIZE_MAX / sizeof(float) / (size_t)n))
        return gsl_fail(err, "%s: sizes out of range (n=%d, %dx%dx%d, %d classes)", what, n, c, h, w, classes);
    d->n = n; d->c = c; d->h = h; d->w = w; d->classes = classes;
    d->label = malloc(sizeof(int) * (n ? n : 1));
    d->source = strdup(what);
    if (in_memory) {
        d->x = malloc(sizeof(float) * dim * (n ? n : 1));
        d->record = malloc(sizeof(int) * (n ? n : 1));
    } else {
        d->path = calloc(n ? n : 1, sizeof(char *));
        d->line = malloc(sizeof(int) * (n ? n : 1));
        d->decoded = calloc(n ? n : 1, 1);
    }
    if (!d->label || !d->source || (in_memory ? !d->x || !d->record : !d->path || !d->line || !d->decoded)) {
        gsl_data_free(d);
        return gsl_fail(err, "%s: out of memory for %d samples", what, n);
    }
    if (in_memory)
        for (int i = 0; i < n; i++) d->record[i] = i;
    return 0;
}

void gsl_data_free(gsl_data *d)
{
    if (d->path)
        for (int i = 0; i < d->n; i++) free(d->path[i]);
    free(d->x); free(d->label); free(d->path); free(d->line); free(d->record); free(d->source); free(d->unreadable);
    free(d->decoded);
    memset(d, 0, sizeof *d);
}

/* The CPUs this process may use (its affinity mask and its cgroup's CPU quota), at most GSL_LOADER_AUTO_THREADS. */
static int auto_threads(void)
{
    gslq_cpu_budget b;
    gslq_cpu_budget_get(&b);
    return b.cpus > GSL_LOADER_AUTO_THREADS ? GSL_LOADER_AUTO_THREADS : b.cpus;
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
    gzFile gl = labels ? idx_open(labels, 1, dl, err) : NULL;
    if (labels && !gl) { gzclose(gi); return -1; }
    int rc = 0;
    unsigned char *pix = NULL, *lab = NULL;
    if (labels && di[0] != dl[0]) {
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
    if (gl && (rc = gz_read_grow(gl, &lab, (size_t)n, labels, "the labels", err))) goto done;
    if (gl && (rc = idx_expect_end(gl, labels, err))) goto done;
    if ((rc = gz_read_grow(gi, &pix, (size_t)n * dim, images, "the pixels", err))) goto done;
    if ((rc = idx_expect_end(gi, images, err))) goto done;
    if ((rc = data_alloc(out, n, 1, h, w, classes, 1, images, err))) goto done;
    for (int i = 0; i < n && lab; i++) {
        if (lab[i] >= classes) {
            rc = gsl_fail(err, "%s: label %d of sample %d is not below classes=%d", labels, lab[i], i, classes);
            goto done;
        }
        out->label[i] = lab[i];
    }
    for (int i = 0; i < n && !lab; i++) out->label[i] = -1;
    for (size_t j = 0; j < (size_t)n * dim; j++) out->x[j] = pix[j] * (1.0f / 255.0f);
done:
    free(pix);
    free(lab);
    gzclose(gi);
    if (gl) gzclose(gl);
    if (rc) gsl_data_free(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ image lists */

/* The non-blank lines of a text file, trimmed, and their line numbers (1-based; lineno may be NULL). */
static int read_lines(const char *path, char ***lines_out, int **lineno_out, int *n_out, char *err)
{
    FILE *f = gsl_fopen_read(path, err);
    if (!f) return -1;
    char **lines = NULL;
    int *nos = NULL;
    int n = 0, cap = 0, no = 0;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        no++;
        if (memchr(buf, 0, (size_t)len)) { rc = gsl_fail(err, "%s:%d: a NUL byte: not a text file", path, no); break; }
        char *s = buf;
        if (no == 1 && !strncmp(s, "\xef\xbb\xbf", 3)) s += 3; /* a UTF-8 byte order mark (Windows editors) */
        s = gsl_trim(s);
        if (!*s) continue;
        if (n == cap) {
            if (cap > INT_MAX / 2) { rc = gsl_fail(err, "%s: more than %d lines", path, cap); break; }
            int nc = cap ? 2 * cap : 1024;
            char **nl = realloc(lines, sizeof(char *) * nc);
            if (nl) lines = nl;
            int *nn = nl ? realloc(nos, sizeof(int) * nc) : NULL;
            if (nn) nos = nn;
            if (!nl || !nn) { rc = gsl_fail(err, "%s: out of memory", path); break; }
            cap = nc;
        }
        if (!(lines[n] = strdup(s))) { rc = gsl_fail(err, "%s: out of memory", path); break; }
        nos[n++] = no;
    }
    if (!rc && ferror(f)) rc = gsl_fail(err, "%s: read error", path);
    free(buf);
    fclose(f);
    if (rc) {
        for (int i = 0; i < n; i++) free(lines[i]);
        free(lines);
        free(nos);
        return rc;
    }
    *lines_out = lines;
    if (lineno_out) *lineno_out = nos;
    else free(nos);
    *n_out = n;
    return 0;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

int gsl_data_load_list(const char *list, char *const *names, int classes, int need_labels, int c, int h, int w,
                       gsl_data *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (c != 1 && c != 3) return gsl_fail(err, "%s: images must have 1 or 3 channels, the network asks for %d", list, c);
    char **paths;
    int *nos, n;
    if (read_lines(list, &paths, &nos, &n, err)) return -1;
    int rc = data_alloc(out, n, c, h, w, classes, 0, list, err);
    for (int i = 0; i < n && !rc; i++) {
        /* Darknet's classifier convention: the label is the class name found in the path; exactly one must be. */
        int found = -1, twice = -1;
        for (int k = 0; names && k < classes; k++) {
            if (strstr(paths[i], names[k])) {
                if (found >= 0) { twice = k; break; }
                found = k;
            }
        }
        if (need_labels && twice >= 0) {
            rc = gsl_fail(err, "%s:%d: path '%s' matches two labels, '%s' and '%s'", list, nos[i], paths[i],
                          names[found], names[twice]);
            break;
        }
        if (need_labels && found < 0) {
            rc = gsl_fail(err, "%s:%d: path '%s' matches no label", list, nos[i], paths[i]);
            break;
        }
        out->label[i] = twice >= 0 ? -1 : found;
        out->line[i] = nos[i];
        out->path[i] = paths[i];
        paths[i] = NULL;
    }
    free_lines(paths, n);
    free(nos);
    if (rc) gsl_data_free(out);
    return rc;
}

/* What the first bytes of a file say it is: 1 for an image format stb_image reads, 0 for anything else. */
static int looks_like_image(const unsigned char *b, size_t n)
{
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return 1;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return 1;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return 1;
    if (n >= 4 && !memcmp(b, "GIF8", 4)) return 1;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return 1;
    if (n >= 4 && !memcmp(b, "8BPS", 4)) return 1;
    if (n >= 10 && !memcmp(b, "#?RADIANCE", 10)) return 1;
    return 0;
}

int gsl_data_load_images(const char *file, int c, int h, int w, int skip_unreadable, int threads, gsl_data *out,
                         char *err)
{
    memset(out, 0, sizeof *out);
    int fd = gsl_open_regular(file, err);
    if (fd < 0) return -1;
    unsigned char head[16];
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    if (got < 0) return gsl_fail(err, "%s: read error: %s", file, strerror(errno));
    int rc;
    /* TGA has no magic bytes: its extension says it */
    const char *dot = strrchr(file, '.');
    int tga = dot && !strchr(dot, '/') && !strcasecmp(dot, ".tga");
    if (tga || looks_like_image(head, (size_t)got)) {
        if ((rc = data_alloc(out, 1, c, h, w, 1, 0, file, err))) return rc;
        out->label[0] = -1;
        out->line[0] = 0;
        if (!(out->path[0] = strdup(file))) { gsl_data_free(out); return gsl_fail(err, "out of memory"); }
    } else if ((rc = gsl_data_load_list(file, NULL, 1, 0, c, h, w, out, err))) {
        return rc;
    } else if (out->n == 0) {
        gsl_data_free(out);
        return gsl_fail(err, "%s: neither an image nor a list of image paths (no lines)", file);
    }
    out->skip_unreadable = skip_unreadable;
    out->threads = threads ? threads : auto_threads();
    if (skip_unreadable && !(out->unreadable = calloc((size_t)out->n, 1))) {
        gsl_data_free(out);
        return gsl_fail(err, "out of memory");
    }
    return 0;
}

/* A PNG or JPEG that ends early: stb_image decodes a truncated JPEG "successfully" (the missing rows come out grey)
 * and refuses a truncated PNG for lack of data. The end marker is looked for anywhere after the header (files may
 * carry data after it, e.g. a motion photo's video). NULL when the file has it (or is of another format). */
static const char *truncated(const unsigned char *b, size_t n)
{
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        static const unsigned char iend[8] = {'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
        for (size_t i = n - 8; i >= 8; i--)
            if (!memcmp(b + i, iend, 8)) return NULL;
        return "truncated PNG (no IEND chunk)";
    }
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8) {
        for (size_t i = n - 1; i >= 3; i--)
            if (b[i - 1] == 0xff && b[i] == 0xd9) return NULL;
        return "truncated JPEG (no end-of-image marker)";
    }
    return NULL;
}

/* A PNG's chunks and compressed pixel data, checked before stb_image decodes it: the data inflated (zlib, into a
 * scratch buffer) must end its stream and hold at least the rows the header promises. stb_image's inflater never
 * returns on some streams that are cut short (a file whose IDAT was truncated but whose IEND is intact: a partial
 * copy, a crashed writer), spinning in its loader thread where no signal reaches it. NULL when it is whole (or not a
 * kind of PNG this knows: stb then says what it thinks), else why not. */
static const char *png_incomplete(const unsigned char *b, size_t n, char *why, size_t cap)
{
    if (n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return NULL;
    uint64_t w = 0, h = 0, expected = 0, got = 0;
    int ihdr = 0, done = 0, rc = Z_OK;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return NULL;
    unsigned char scratch[1 << 15];
    size_t pos = 8;
    while (!done) {
        if (n - pos < 12) {
            snprintf(why, cap, "truncated PNG (%s)", pos == n ? "no IEND chunk" : "it ends inside a chunk header");
            break;
        }
        uint32_t len = be32(b + pos);
        const unsigned char *type = b + pos + 4, *data = b + pos + 8;
        if (len > n - pos - 12) { snprintf(why, cap, "truncated PNG (its %.4s chunk runs past the end)", type); break; }
        if (!memcmp(type, "IHDR", 4) && len >= 13 && !ihdr) {
            static const int channels[7] = {1, 0, 3, 1, 2, 0, 4};
            int bits = data[8], ct = data[9], adam7 = data[12] == 1;
            w = be32(data), h = be32(data + 4);
            if (ct > 6 || !channels[ct] || !bits || bits > 16 || w == 0 || h == 0 || w * h > GSL_IMAGE_MAX_PIXELS)
                break; /* stb judges (and refuses an image that large at once) */
            uint64_t bpp = (uint64_t)channels[ct] * bits; /* bits per pixel */
            static const int xo[7] = {0, 4, 0, 2, 0, 1, 0}, yo[7] = {0, 0, 4, 0, 2, 0, 1},
                             xs[7] = {8, 8, 4, 4, 2, 2, 1}, ys[7] = {8, 8, 8, 4, 4, 2, 2};
            for (int p = 0; p < (adam7 ? 7 : 1); p++) { /* each pass's rows: a filter byte, then the packed pixels */
                uint64_t cols = adam7 ? (w > (uint64_t)xo[p] ? (w - xo[p] + xs[p] - 1) / xs[p] : 0) : w;
                uint64_t rows = adam7 ? (h > (uint64_t)yo[p] ? (h - yo[p] + ys[p] - 1) / ys[p] : 0) : h;
                if (cols && rows) expected += rows * (1 + (cols * bpp + 7) / 8);
            }
            ihdr = 1;
        } else if (!memcmp(type, "CgBI", 4)) {
            break; /* Apple's variant (raw deflate): stb judges */
        } else if (!memcmp(type, "IDAT", 4) && ihdr && rc == Z_OK) {
            z.next_in = (unsigned char *)data;
            z.avail_in = len;
            while (rc == Z_OK && (z.avail_in || !z.avail_out)) {
                z.next_out = scratch;
                z.avail_out = sizeof scratch;
                rc = inflate(&z, Z_NO_FLUSH);
                got += sizeof scratch - z.avail_out;
                if (rc == Z_BUF_ERROR) rc = Z_OK; /* no progress possible: this chunk's input is used up */
                if (rc == Z_OK && !z.avail_in && z.avail_out) break;
                if (got > 2 * expected + sizeof scratch) { /* a bomb: far more than the header's rows */
                    rc = Z_DATA_ERROR;
                    z.msg = "more data than the header's size";
                }
            }
            /* stb ignores the stream's checksum: data that damaged only after every row was out is whole to it */
            if (rc != Z_OK && rc != Z_STREAM_END && got < expected) {
                snprintf(why, cap, "damaged PNG pixel data (zlib: %s)", z.msg ? z.msg : "error");
                break;
            }
        } else if (!memcmp(type, "IEND", 4)) {
            done = 1;
            if (!ihdr) break;
            if (got < expected)
                snprintf(why, cap, "truncated PNG (its compressed pixel data ends after %llu of %llu bytes)",
                         (unsigned long long)got, (unsigned long long)expected);
        }
        pos += (size_t)len + 12;
    }
    inflateEnd(&z);
    return why[0] ? why : NULL;
}

void gsl_image_malloc_tune(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int gsl_image_decode(const char *path, int c, int h, int w, float *row, char *err)
{
    return gsl_image_decode_again(path, c, h, w, row, 0, err);
}

int gsl_image_decode_again(const char *path, int c, int h, int w, float *row, int again, char *err)
{
    int fd = gsl_open_regular(path, err);
    if (fd < 0) {
        char cwd[1024];
        if (path[0] != '/' && access(path, F_OK) && getcwd(cwd, sizeof cwd)) { /* the usual cause: say where from */
            size_t len = strlen(err);
            snprintf(err + len, GSL_DATA_ERRLEN - len, " (a relative path is read from the working directory, %s)", cwd);
        }
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return gsl_fail(err, "%s: %s", path, strerror(e));
    }
    if (st.st_size > INT_MAX) {
        close(fd);
        return gsl_fail(err, "%s: larger than 2 GB", path);
    }
    size_t n = (size_t)st.st_size, have = 0;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) { close(fd); return gsl_fail(err, "%s: out of memory for %zu bytes", path, n); }
    while (have < n) {
        ssize_t r = read(fd, buf + have, n - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return gsl_fail(err, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0) { n = have; break; } /* shrank since fstat */
        have += (size_t)r;
    }
    close(fd);
    if (n == 0) { free(buf); return gsl_fail(err, "%s: empty file", path); }
    int iw, ih, ic;
    /* the header's size first: an image's memory is bounded before it is decoded */
    if (stbi_info_from_memory(buf, (int)n, &iw, &ih, &ic) && (size_t)iw * (size_t)ih > GSL_IMAGE_MAX_PIXELS) {
        free(buf);
        return gsl_fail(err, "%s: %dx%d pixels, more than the %d million an image may have", path, iw, ih,
                        GSL_IMAGE_MAX_PIXELS >> 20);
    }
    char pngwhy[160] = "";
    if (!again && png_incomplete(buf, n, pngwhy, sizeof pngwhy)) {
        free(buf);
        return gsl_fail(err, "%s: %s", path, pngwhy);
    }
    unsigned char *img = stbi_load_from_memory(buf, (int)n, &iw, &ih, &ic, c);
    /* the file ends early: decoded with grey rows, or refused because the data ran out */
    const char *reason = img ? NULL : stbi_failure_reason();
    const char *why = img || (reason && !strcmp(reason, "outofdata")) ? truncated(buf, n) : NULL;
    free(buf);
    if (why) { stbi_image_free(img); return gsl_fail(err, "%s: %s", path, why); }
    if (!img) return gsl_fail(err, "%s: not an image stb_image can read (%s)", path, reason ? reason : "?");
    /* stb gives interleaved rows (h, w, c); Darknet wants planes (c, h, w) */
    image im = {iw, ih, c, NULL};
    float *planes = row;
    if (iw != w || ih != h) {
        im = make_image(iw, ih, c); /* Darknet's allocation: calloc, never NULL-checked; ours is, below */
        planes = im.data;
        if (!planes) { stbi_image_free(img); return gsl_fail(err, "%s: out of memory for a %dx%d image", path, iw, ih); }
    }
    for (int k = 0; k < c; k++)
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++)
                planes[((size_t)k * ih + y) * iw + x] = img[((size_t)y * iw + x) * c + k] * (1.0f / 255.0f);
    stbi_image_free(img);
    if (planes != row) {
        image r = resize_image(im, w, h); /* Darknet's bilinear resize, as its load_image(path, w, h, c) */
        memcpy(row, r.data, sizeof(float) * (size_t)c * h * w);
        free_image(r);
        free_image(im);
    }
    return 0;
}

void gsl_data_item(const gsl_data *d, int i, char *buf, size_t cap)
{
    if (d->path) snprintf(buf, cap, "%s", d->path[i]);
    else snprintf(buf, cap, "%s#%d", d->source ? d->source : "", d->record ? d->record[i] : i);
}

int gsl_data_write_items(const char *path, const gsl_data *d, uint32_t *crc, char *err)
{
    char tmp[GSLQ_TMP_PATH_MAX];
    FILE *f = gsl_create_tmp(path, tmp, err);
    if (!f) return -1;
    char item[4200];
    uint32_t c = 0;
    for (int i = 0; i < d->n; i++) {
        gsl_data_item(d, i, item, sizeof item - 1);
        size_t n = strlen(item);
        item[n++] = '\n';
        c = gslq_crc32(c, item, n);
        fwrite(item, 1, n, f);
    }
    if (crc) *crc = c;
    return gsl_close_commit(f, tmp, path, err);
}

int gsl_data_duplicates_note(const gsl_data *d, char *buf, size_t cap)
{
    if (!d->duplicates) return 0;
    snprintf(buf, cap, "%s names %d image%s again that an earlier line names (the first at line %d): each copy is a "
             "sample of its own", d->source ? d->source : "the list", d->duplicates, d->duplicates == 1 ? "" : "s",
             d->duplicate_line);
    return 1;
}

int gsl_data_unreadable_count(const gsl_data *d)
{
    int k = 0;
    for (int i = 0; d->unreadable && i < d->n; i++) k += d->unreadable[i] != 0;
    return k;
}

/* ------------------------------------------------------------------------------------------------ splits */

/* Keeps the samples with keep[i] != 0, in order (and the matching rows of rows (n, dim), when given). */
static void compact(gsl_data *d, const uint8_t *keep, void *rows, size_t row_bytes)
{
    size_t xd = (size_t)d->c * d->h * d->w;
    int m = 0;
    for (int i = 0; i < d->n; i++) {
        if (!keep[i]) {
            if (d->path) free(d->path[i]);
            continue;
        }
        if (m != i) {
            if (d->x) memmove(d->x + (size_t)m * xd, d->x + (size_t)i * xd, sizeof(float) * xd);
            if (rows) memmove((char *)rows + (size_t)m * row_bytes, (char *)rows + (size_t)i * row_bytes, row_bytes);
            d->label[m] = d->label[i];
            if (d->path) { d->path[m] = d->path[i]; d->line[m] = d->line[i]; }
            if (d->record) d->record[m] = d->record[i];
            if (d->unreadable) d->unreadable[m] = d->unreadable[i];
            if (d->decoded) d->decoded[m] = d->decoded[i];
        }
        m++;
    }
    d->n = m;
}

void gsl_data_keep(gsl_data *d, const uint8_t *keep) { compact(d, keep, NULL, 0); }

int gsl_data_keep_classes(gsl_data *d, const int *keep, int n_keep, int keep_unlabelled, char *err)
{
    uint8_t *want = calloc(d->classes, 1), *mark = malloc(d->n ? (size_t)d->n : 1);
    if (!want || !mark) { free(want); free(mark); return gsl_fail(err, "out of memory"); }
    for (int i = 0; i < n_keep; i++)
        if (keep[i] >= 0 && keep[i] < d->classes) want[keep[i]] = 1;
    for (int i = 0; i < d->n; i++) mark[i] = d->label[i] < 0 ? keep_unlabelled != 0 : want[d->label[i]];
    compact(d, mark, NULL, 0);
    free(want);
    free(mark);
    return 0;
}

void gsl_data_drop_unreadable(gsl_data *d, void *rows, size_t row_bytes)
{
    if (!d->unreadable) return;
    for (int i = 0; i < d->n; i++) d->unreadable[i] = !d->unreadable[i]; /* now: keep */
    compact(d, d->unreadable, rows, row_bytes);
    memset(d->unreadable, 0, d->n ? (size_t)d->n : 1);
}

/* Whether a file (gzip-compressed or not) starts with the magic of an IDX file of images (unsigned bytes, 3
 * dimensions): such a source is read as IDX even without its labels file. Unreadable files are left to the loader. */
static int is_idx_images(const char *path)
{
    char err[GSL_DATA_ERRLEN];
    uint32_t dims[3];
    gzFile g = idx_open(path, 3, dims, err); /* never opens a pipe blocking: the loader reports such files */
    if (!g) return 0;
    gzclose(g);
    return 1;
}

typedef struct { const char *name; int index; } named;

static int cmp_named(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->index - y->index;
}

/* How many of names[0..n) repeat an earlier one (sorted: any n); *first: the smallest index that does, *earlier: an
 * index before it with the same name (both -1 when none). -1 without memory. */
static int repeats(char *const *names, int n, int *first, int *earlier)
{
    *first = *earlier = -1;
    named *v = malloc(sizeof *v * (n ? (size_t)n : 1));
    if (!v) return -1;
    for (int i = 0; i < n; i++) v[i] = (named){names[i], i};
    qsort(v, (size_t)n, sizeof *v, cmp_named);
    int count = 0;
    for (int i = 1, group = 0; i < n; i++) {
        if (strcmp(v[i].name, v[i - 1].name)) { group = i; continue; }
        count++;
        if (*first < 0 || v[i].index < *first) *first = v[i].index, *earlier = v[group].index;
    }
    free(v);
    return count;
}

static int load_split(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, int need_labels, gsl_data *out,
                      char *err)
{
    const char *src = split == GSL_SPLIT_TRAIN ? cfg->train : split == GSL_SPLIT_VALID ? cfg->valid : cfg->database;
    const char *lab = split == GSL_SPLIT_TRAIN   ? cfg->train_labels
                      : split == GSL_SPLIT_VALID ? cfg->valid_labels
                                                 : cfg->database_labels;
    const char *key = split == GSL_SPLIT_TRAIN ? "train" : split == GSL_SPLIT_VALID ? "valid" : "database";
    if (split == GSL_SPLIT_DATABASE && !src) { src = cfg->train; lab = cfg->train_labels; key = "train"; }
    if (!src) return gsl_fail(err, "%s: key '%s' is required for this command", cfg->file, key);
    struct stat sst;
    if (stat(src, &sst))
        return gsl_fail(err, "%s: key '%s': %s: %s%s", cfg->file, key, src, strerror(errno),
                        src[0] != '/' ? " (a relative path is read from the working directory)" : "");
    if (!S_ISREG(sst.st_mode))
        return gsl_fail(err, "%s: key '%s': %s is %s, not an image list or IDX file", cfg->file, key, src,
                        S_ISDIR(sst.st_mode) ? "a folder" : "not a regular file");
    int rc;
    if (cfg->holdout > 0) need_labels = 1; /* the holdout is drawn per class */
    int idx = lab != NULL;
    if (!idx && is_idx_images(src)) {
        if (need_labels && split == GSL_SPLIT_VALID && cfg->holdout > 0)
            return gsl_fail(err, "%s: key 'train' is an IDX file, which needs the key 'train_labels' for the holdout "
                            "(drawn per class)", cfg->file);
        if (need_labels)
            return gsl_fail(err, "%s: key '%s' is an IDX file, which needs the key '%s_labels' for this command",
                            cfg->file, key, key);
        idx = 1;
    }
    if (idx) {
        if ((rc = gsl_data_load_idx(src, lab, cfg->classes, out, err))) return rc;
        if (out->c != c || out->h != h || out->w != w) {
            gsl_fail(err, "%s (key '%s'): images are %dx%dx%d, the network expects %dx%dx%d", src, key, out->w, out->h,
                 out->c, w, h, c);
            gsl_data_free(out);
            return -1;
        }
    } else {
        if (!cfg->labels && need_labels)
            return gsl_fail(err, "%s: key '%s' is an image list, which needs the key 'labels' (class names)", cfg->file,
                        key);
        char **names = NULL;
        int nn = 0, *nos = NULL;
        if (cfg->labels && read_lines(cfg->labels, &names, &nos, &nn, err)) return -1;
        /* line i names class i: a blank line among the names would renumber the classes after it */
        for (int i = 0; i < nn; i++)
            if (nos[i] != i + 1) {
                gsl_fail(err, "%s:%d: a blank line among the class names (line i names class i; remove it)",
                         cfg->labels, nos[i] - 1);
                free_lines(names, nn);
                free(nos);
                return -1;
            }
        free(nos);
        if (cfg->labels && nn != cfg->classes) {
            free_lines(names, nn);
            return gsl_fail(err, "%s: %d names, but classes=%d in %s", cfg->labels, nn, cfg->classes, cfg->file);
        }
        int twice, once, rep = repeats(names, nn, &twice, &once);
        if (rep) {
            if (rep < 0) gsl_fail(err, "out of memory");
            else gsl_fail(err, "%s: class %d's name '%s' is also class %d's (the names tell the classes apart in the "
                          "image paths)", cfg->labels, twice, names[twice], once);
            free_lines(names, nn);
            return -1;
        }
        rc = gsl_data_load_list(src, names, cfg->classes, need_labels, c, h, w, out, err);
        free_lines(names, nn);
        if (rc) return rc;
        out->skip_unreadable = cfg->skip_unreadable;
        out->threads = cfg->loader_threads ? cfg->loader_threads : auto_threads();
        if (out->skip_unreadable && !(out->unreadable = calloc(out->n ? (size_t)out->n : 1, 1))) {
            gsl_data_free(out);
            return gsl_fail(err, "out of memory");
        }
    }
    /* The holdout is drawn on the whole train source (before any class subset), so the splits agree. */
    int from_train = split != GSL_SPLIT_DATABASE || !cfg->database;
    if (cfg->holdout > 0 && from_train) {
        uint8_t *mark = malloc(out->n ? (size_t)out->n : 1);
        if (!mark) { gsl_data_free(out); return gsl_fail(err, "%s: out of memory", cfg->file); }
        rc = gsl_data_holdout_mask(out->label, out->n, out->classes, cfg->holdout, cfg->holdout_seed, mark, err);
        if (!rc) {
            if (split != GSL_SPLIT_VALID)
                for (int i = 0; i < out->n; i++) mark[i] = !mark[i];
            compact(out, mark, NULL, 0);
        }
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
    int before = out->n;
    if (keep && (rc = gsl_data_keep_classes(out, keep, nkeep, !need_labels, err))) { gsl_data_free(out); return rc; }
    if (out->n == 0) {
        gsl_data_free(out);
        if (!before)
            return gsl_fail(err, "%s: key '%s': %s holds no samples (%s)", cfg->file, key, src,
                            cfg->holdout > 0 && from_train ? "after the holdout" : "an empty list?");
        return gsl_fail(err, "%s: split '%s' has no samples in its class subset (%s of %s)", cfg->file, key,
                        split == GSL_SPLIT_TRAIN ? "train_classes" : "eval_classes", src);
    }
    /* Every image the command uses is there before any work: a missing one would otherwise stop the run when it is
     * first read, an epoch or more later. (unreadable=skip: marked, and skipped as an unreadable image is.) */
    for (int i = 0; out->path && i < out->n; i++) {
        struct stat ist;
        int e = stat(out->path[i], &ist) ? errno : !S_ISREG(ist.st_mode) ? EISDIR : 0;
        if (!e) continue;
        if (out->unreadable) { out->unreadable[i] = 1; continue; }
        char cwd[1024] = "";
        if (out->path[i][0] != '/' && e == ENOENT && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
        gsl_fail(err, "%s:%d: cannot read image %s: %s%s%s%s", src, out->line[i], out->path[i],
                 e == EISDIR ? "not a regular file" : strerror(e), cwd[0] ? " (a relative path is read from the "
                 "working directory, " : "", cwd, cwd[0] ? ")" : "");
        gsl_data_free(out);
        return -1;
    }
    int first, earlier; /* a note only: without memory, none */
    if (out->path && (out->duplicates = repeats(out->path, out->n, &first, &earlier)) > 0)
        out->duplicate_line = out->line[first];
    else out->duplicates = 0;
    return 0;
}

int gsl_data_load(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, gsl_data *out, char *err)
{
    return load_split(cfg, split, c, h, w, 1, out, err);
}

int gsl_data_load_unlabelled(const gsl_data_cfg *cfg, gsl_split split, int c, int h, int w, gsl_data *out, char *err)
{
    return load_split(cfg, split, c, h, w, 0, out, err);
}
