/* Seeded draws over a loaded set: the holdout's choice, shuffled or class-balanced batches, and the gather of a
 * batch into Darknet's buffers with each sample's own augmentation. */
#include "gsl_data.h"
#include "gslq.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Row j of the data: a copy (in memory) or the image decoded; in skip mode an unreadable image is marked and the
 * next readable one of the list takes its place (its index in *used, whose label goes with it). The marks are atomic
 * bytes: the threads of one gather read and set them (a mark only spares a decode that would fail again, so the rows
 * do not depend on which thread marked first). */
static int gather_row_marks(const gsl_data *d, int j, float *row, int *used, int use_marks, char *err)
{
    size_t dim = (size_t)d->c * d->h * d->w;
    *used = j;
    if (d->x) {
        memcpy(row, d->x + (size_t)j * dim, sizeof(float) * dim);
        return 0;
    }
    char e[GSL_DATA_ERRLEN] = "";
    for (int t = 0; t < d->n; t++) {
        int k = (j + t) % d->n;
        if (use_marks && d->unreadable && __atomic_load_n(&d->unreadable[k], __ATOMIC_RELAXED)) continue;
        int again = d->decoded && __atomic_load_n(&d->decoded[k], __ATOMIC_RELAXED);
        if (!gsl_image_decode_again(d->path[k], d->c, d->h, d->w, row, again, e)) {
            if (d->decoded && !again) __atomic_store_n(&d->decoded[k], 1, __ATOMIC_RELAXED);
            *used = k;
            return 0;
        }
        if (!d->skip_unreadable || !d->unreadable) {
            if (d->line[k] > 0)
                return gsl_fail(err, "%s:%d: cannot read image %s (the .data key unreadable=skip skips such images)",
                                d->source, d->line[k], e);
            return gsl_fail(err, "cannot read image %s", e);
        }
        __atomic_store_n(&d->unreadable[k], 1, __ATOMIC_RELAXED); /* read by the caller once the loader has stopped */
    }
    if (!e[0]) return gsl_fail(err, "%s: no image of the list can be read", d->source); /* all marked before */
    if (d->n == 1) return gsl_fail(err, "cannot read image %s", e); /* a single image, not a list */
    return gsl_fail(err, "%s: no image of the list can be read (the last: %s)", d->source, e);
}

static int gather_row(const gsl_data *d, int j, float *row, int *used, char *err)
{
    return gather_row_marks(d, j, row, used, 1, err);
}

/* Rows [lo, hi) of one gather; on the first failure, *bad is its row. */
typedef struct gather_part {
    const gsl_data *d;
    const int *idx;
    int lo, hi, bad;
    float *input;
    int *used;
    char err[GSL_DATA_ERRLEN];
} gather_part;

static void *gather_part_run(void *arg)
{
    gather_part *p = arg;
    size_t dim = (size_t)p->d->c * p->d->h * p->d->w;
    p->bad = -1;
    for (int i = p->lo; i < p->hi; i++)
        if (gather_row(p->d, p->idx[i], p->input + (size_t)i * dim, &p->used[i], p->err)) {
            p->bad = i;
            break;
        }
    return NULL;
}

/* Decodes the rows of a streamed source on up to d->threads threads, each a contiguous share of the rows (the caller
 * takes the first). The rows, the marks and the error (the first failing row's, in row order) are those of one
 * thread. 0, or -1 with err. */
static int gather_rows(const gsl_data *d, const int *idx, int n, float *input, int *used, char *err)
{
    enum { MAXT = GSL_LOADER_MAX_THREADS };
    if (n <= 0) return 0;
    int T = d->x || d->threads < 2 ? 1 : d->threads;
    if (T > n) T = n;
    if (T > MAXT) T = MAXT;
    gather_part part[MAXT];
    pthread_t th[MAXT];
    int started[MAXT] = {0};
    for (int p = 0; p < T; p++)
        part[p] = (gather_part){d, idx, (int)((long)n * p / T), (int)((long)n * (p + 1) / T), -1, input, used, ""};
    for (int p = 1; p < T; p++) started[p] = pthread_create(&th[p], NULL, gather_part_run, &part[p]) == 0;
    gather_part_run(&part[0]);
    for (int p = 1; p < T; p++) {
        if (started[p]) pthread_join(th[p], NULL);
        else gather_part_run(&part[p]); /* no thread: this one does the share */
    }
    for (int p = 0; p < T; p++) {
        if (part[p].bad < 0) continue;
        if (T == 1) return gsl_fail(err, "%s", part[p].err);
        /* Decoded again alone: stb_image keeps its failure reason in one process-wide pointer, which another
         * thread's failing decode may have overwritten; and the marks are not followed, or a row whose images
         * another thread marked first would have no reason to give. */
        size_t dim = (size_t)d->c * d->h * d->w;
        int r = part[p].bad;
        if (gather_row_marks(d, idx[r], input + (size_t)r * dim, &used[r], 0, err)) return -1;
        return gsl_fail(err, "%s", part[p].err); /* readable alone: the first reason stands */
    }
    return 0;
}

int gsl_data_gather(const gsl_data *d, const int *idx, int n, float *input, float *truth, char *err)
{
    int one, *used = n > 1 ? malloc(sizeof(int) * (size_t)n) : &one;
    if (!used) return gsl_fail(err, "%s: out of memory", d->source);
    int rc = gather_rows(d, idx, n, input, used, err);
    for (int i = 0; !rc && truth && i < n; i++) {
        float *t = truth + (size_t)i * d->classes;
        memset(t, 0, sizeof(float) * d->classes);
        if (d->label[used[i]] >= 0) t[d->label[used[i]]] = 1;
    }
    if (used != &one) free(used);
    return rc;
}

static int rng_below(uint64_t *s, int n) { return (int)(gslq_splitmix64(s) % (uint64_t)n); }

/* ------------------------------------------------------------------------------------------------ augmentation */

void gsl_augment_draw(const gsl_augment *a, uint64_t key, int i, int *mirror, int *dx, int *dy)
{
    uint64_t st = key ^ ((uint64_t)(unsigned)i * 0xd1b54a32d192ed03ULL); /* row i's own stream */
    int span = 2 * a->shift + 1;
    *mirror = a->flip ? (int)(gslq_splitmix64(&st) >> 63) : 0;
    *dx = a->shift ? rng_below(&st, span) - a->shift : 0;
    *dy = a->shift ? rng_below(&st, span) - a->shift : 0;
}

int gsl_data_gather_augmented(const gsl_data *d, const int *idx, int n, const gsl_augment *a, uint64_t key,
                              int first, float *input, float *truth, char *err)
{
    if (gsl_data_gather(d, idx, n, input, truth, err)) return -1;
    if (!a->flip && !a->shift) return 0;
    int c = d->c, h = d->h, w = d->w;
    size_t dim = (size_t)c * h * w;
    float *src = malloc(sizeof(float) * dim);
    if (!src) return gsl_fail(err, "out of memory");
    for (int i = 0; i < n; i++) {
        int mirror, dx, dy;
        gsl_augment_draw(a, key, first + i, &mirror, &dx, &dy);
        float *out = input + (size_t)i * dim;
        memcpy(src, out, sizeof(float) * dim);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++) {
                int sy = y - dy;
                float *o = out + ((size_t)ch * h + y) * w;
                if (sy < 0 || sy >= h) {
                    memset(o, 0, sizeof(float) * w);
                    continue;
                }
                const float *srow = src + ((size_t)ch * h + sy) * w;
                for (int x = 0; x < w; x++) {
                    int sx = x - dx;
                    o[x] = sx < 0 || sx >= w ? 0.0f : srow[mirror ? w - 1 - sx : sx];
                }
            }
    }
    free(src);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ sampler */

static void shuffle(int *a, int n, uint64_t *s)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(s, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int gsl_data_holdout_mask(const int *label, int n, int classes, int per_class, uint64_t seed, uint8_t *mark,
                          char *err)
{
    memset(mark, 0, n ? (size_t)n : 1);
    if (per_class <= 0) return 0;
    int *count = calloc(classes, sizeof(int)), *idx = malloc(sizeof(int) * (n ? n : 1));
    if (!count || !idx) { free(count); free(idx); return gsl_fail(err, "out of memory"); }
    for (int i = 0; i < n; i++) count[label[i]]++;
    int rc = 0;
    for (int k = 0; k < classes && !rc; k++) {
        if (!count[k]) continue;
        if (count[k] <= per_class) {
            rc = gsl_fail(err, "class %d has %d samples, so a holdout of %d per class would leave none to train on", k,
                      count[k], per_class);
            break;
        }
        int m = 0;
        for (int i = 0; i < n; i++)
            if (label[i] == k) idx[m++] = i;
        /* one stream per class, so a class's holdout does not depend on the other classes */
        uint64_t st = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)k + 1;
        for (int j = 0; j < per_class; j++) { /* partial Fisher-Yates: idx[0..per_class) is a uniform choice */
            int r = j + rng_below(&st, m - j), t = idx[j];
            idx[j] = idx[r];
            idx[r] = t;
            mark[idx[j]] = 1;
        }
    }
    free(count);
    free(idx);
    return rc;
}

void gsl_sampler_free(gsl_sampler *s)
{
    free(s->perm); free(s->class_start); free(s->by_class); free(s->class_pos); free(s->class_order);
    memset(s, 0, sizeof *s);
}

int gsl_sampler_init(gsl_sampler *s, const gsl_data *d, int batch, int P, int K, uint64_t seed, char *err)
{
    memset(s, 0, sizeof *s);
    s->d = d; s->batch = batch; s->P = P; s->K = K; s->state = seed;
    if (batch <= 0 || d->n <= 0) return gsl_fail(err, "sampler: batch %d over %d samples", batch, d->n);
    if (P == 0) {
        if (!(s->perm = malloc(sizeof(int) * d->n))) return gsl_fail(err, "out of memory");
        for (int i = 0; i < d->n; i++) s->perm[i] = i;
        shuffle(s->perm, d->n, &s->state);
        return 0;
    }
    for (int i = 0; i < d->n; i++)
        if (d->label[i] < 0 || d->label[i] >= d->classes)
            return gsl_fail(err, "class-balanced batches: sample %d has no class (an unlabelled image)", i);
    if (P < 2 || K < 1 || P * K != batch)
        return gsl_fail(err, "class-balanced batches: P=%d classes x K=%d samples must equal batch=%d, with P >= 2", P,
                    K, batch);
    s->class_start = calloc(d->classes + 1, sizeof(int));
    s->by_class = malloc(sizeof(int) * d->n);
    s->class_pos = calloc(d->classes, sizeof(int));
    s->class_order = malloc(sizeof(int) * d->classes);
    if (!s->class_start || !s->by_class || !s->class_pos || !s->class_order) {
        gsl_sampler_free(s);
        return gsl_fail(err, "out of memory");
    }
    for (int i = 0; i < d->n; i++) s->class_start[d->label[i] + 1]++;
    for (int k = 0; k < d->classes; k++) s->class_start[k + 1] += s->class_start[k];
    int *fill = s->class_pos; /* reused as a cursor, reset below */
    for (int i = 0; i < d->n; i++) s->by_class[s->class_start[d->label[i]] + fill[d->label[i]]++] = i;
    memset(s->class_pos, 0, sizeof(int) * d->classes);
    for (int k = 0; k < d->classes; k++)
        if (s->class_start[k + 1] > s->class_start[k]) s->class_order[s->nclass++] = k;
    if (s->nclass < P) {
        int have = s->nclass, empty = -1;
        for (int k = 0; k < d->classes && empty < 0; k++)
            if (s->class_start[k + 1] == s->class_start[k]) empty = k;
        gsl_sampler_free(s);
        char which[64] = "";
        if (empty >= 0) snprintf(which, sizeof which, " (none of class %d, for one)", empty);
        return gsl_fail(err, "class-balanced batches need P=%d classes (classes_per_batch), the training data (%s) has "
                        "images of %d%s", P, d->source ? d->source : "?", have, which);
    }
    for (int k = 0; k < d->classes; k++) {
        int a = s->class_start[k], b = s->class_start[k + 1];
        shuffle(s->by_class + a, b - a, &s->state);
    }
    return 0;
}

int gsl_sampler_batches_per_epoch(const gsl_sampler *s) { return (s->d->n + s->batch - 1) / s->batch; }

void gsl_sampler_next(gsl_sampler *s, int *idx)
{
    const gsl_data *d = s->d;
    if (s->P == 0) {
        for (int i = 0; i < s->batch; i++) {
            if (s->pos == d->n) {
                shuffle(s->perm, d->n, &s->state);
                s->pos = 0;
            }
            idx[i] = s->perm[s->pos++];
        }
        return;
    }
    /* P distinct classes: a partial Fisher-Yates over the classes present. */
    for (int p = 0; p < s->P; p++) {
        int j = p + rng_below(&s->state, s->nclass - p), t = s->class_order[p];
        s->class_order[p] = s->class_order[j];
        s->class_order[j] = t;
        int k = s->class_order[p], a = s->class_start[k], size = s->class_start[k + 1] - a;
        for (int q = 0; q < s->K; q++) {
            if (size < s->K) { /* too few samples: draw with replacement */
                idx[p * s->K + q] = s->by_class[a + rng_below(&s->state, size)];
                continue;
            }
            if (s->class_pos[k] == size) {
                shuffle(s->by_class + a, size, &s->state);
                s->class_pos[k] = 0;
            }
            idx[p * s->K + q] = s->by_class[a + s->class_pos[k]++];
        }
    }
}
