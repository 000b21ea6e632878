/* Collectives over a caller's gslq_comm (gslq.h, "Distributed training"). Every function here is a collective: all
 * participants call it, in the same order, with the same sizes; with comm == NULL each is the one-process identity.
 * Reductions go through a fixed stack buffer or a caller's buffer, so no collective can fail on one participant alone
 * for want of memory: allocations happen before, followed by gslq__comm_agree. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK 4096 /* doubles per reduction call of the float helpers */

int gslq__comm_reduce(const gslq_comm *c, double *buf, size_t n, int op)
{
    if (!c || c->size <= 1 || n == 0) return GSLQ_OK;
    return c->allreduce(c->ctx, buf, n, op) ? GSLQ_ECOMM : GSLQ_OK;
}

int gslq__comm_agree(const gslq_comm *c, int rc)
{
    if (!c || c->size <= 1) return rc;
    double v = rc != GSLQ_OK;
    if (gslq__comm_reduce(c, &v, 1, GSLQ_REDUCE_MAX)) return GSLQ_ECOMM;
    if (rc) return rc;
    return v > 0 ? GSLQ_ECOMM : GSLQ_OK;
}

int gslq__comm_total(const gslq_comm *c, size_t n, size_t *total)
{
    double v = (double)n;
    int rc = gslq__comm_reduce(c, &v, 1, GSLQ_REDUCE_SUM);
    *total = rc ? n : (size_t)v;
    return rc;
}

/* share: participant 0's values (the others add zeros: x + 0 == x exactly); else the sum of everyone's */
static int reduce_f(const gslq_comm *c, float *v, size_t n, int share)
{
    if (!c || c->size <= 1) return GSLQ_OK;
    double buf[CHUNK];
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        for (size_t i = 0; i < m; i++) buf[i] = share && c->rank != 0 ? 0.0 : (double)v[off + i];
        if (gslq__comm_reduce(c, buf, m, GSLQ_REDUCE_SUM)) return GSLQ_ECOMM;
        for (size_t i = 0; i < m; i++) v[off + i] = (float)buf[i];
    }
    return GSLQ_OK;
}

int gslq__comm_share_f(const gslq_comm *c, float *v, size_t n) { return reduce_f(c, v, n, 1); }
int gslq__comm_sum_f(const gslq_comm *c, float *v, size_t n) { return reduce_f(c, v, n, 0); }

int gslq__comm_gather_sample(const gslq_comm *c, const float *x, size_t n, int d, size_t want, uint64_t seed,
                             float **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    int P = c->size, rc;
    double *cum = gslq__alloc((size_t)P + 1, sizeof(double), 1, 1);
    if ((rc = gslq__comm_agree(c, cum ? GSLQ_OK : GSLQ_ENOMEM))) { free(cum); return rc; }
    cum[c->rank + 1] = (double)n;
    if ((rc = gslq__comm_reduce(c, cum + 1, (size_t)P, GSLQ_REDUCE_SUM))) { free(cum); return rc; }
    for (int r = 0; r < P; r++) cum[r + 1] += cum[r];
    double total = cum[P];
    if (want > (size_t)total) want = (size_t)total;
    /* participant r gives floor(want cum[r+1] / total) - floor(want cum[r] / total) <= its n of its rows */
    size_t *off = gslq__alloc((size_t)P + 1, sizeof(size_t), 1, 0);
    double *buf = gslq__alloc(want, (size_t)d, sizeof(double), 1);
    size_t *perm = gslq__alloc(n, sizeof(size_t), 1, 0);
    rc = gslq__comm_agree(c, off && buf && perm ? GSLQ_OK : GSLQ_ENOMEM);
    if (rc) goto done;
    for (int r = 0; r <= P; r++) off[r] = total > 0 ? (size_t)floor((double)want * cum[r] / total) : 0;
    off[P] = want;
    size_t take = off[c->rank + 1] - off[c->rank];
    gslq_rng rng;
    gslq__rng_seed(&rng, seed ^ (0xA24BAED4963EE407ULL * (uint64_t)(c->rank + 1)));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < take; i++) { /* partial Fisher-Yates: `take` distinct rows; all of them in order when
                                           * the sample is the union (then it is the one process's data) */
        if (take < n) {
            size_t r = i + gslq__rng_below(&rng, n - i), t = perm[i];
            perm[i] = perm[r]; perm[r] = t;
        }
        for (int j = 0; j < d; j++) buf[(off[c->rank] + i) * (size_t)d + j] = x[perm[i] * (size_t)d + j];
    }
    for (size_t o = 0; o < want * (size_t)d && !rc; o += CHUNK) {
        size_t m = want * (size_t)d - o < CHUNK ? want * (size_t)d - o : CHUNK;
        rc = gslq__comm_reduce(c, buf + o, m, GSLQ_REDUCE_SUM);
    }
    if (rc) goto done;
    float *s = gslq__alloc(want, (size_t)d, sizeof(float), 0);
    if ((rc = gslq__comm_agree(c, s ? GSLQ_OK : GSLQ_ENOMEM))) { free(s); goto done; }
    for (size_t i = 0; i < want * (size_t)d; i++) s[i] = (float)buf[i];
    *out = s;
    *nout = want;
done:
    free(cum); free(off); free(buf); free(perm);
    return rc;
}

int gslq__comm_repair(const gslq_comm *c, const float *x, size_t n, int d, int j, const int *idx, const float *d2,
                      double *gsum, double *gcount, double *work, size_t *far, int *from)
{
    *far = n;
    *from = -1;
    size_t best = n;
    float fd = -1;
    for (size_t i = 0; i < n; i++)
        if (gcount[idx[i]] > 1 && d2[i] > fd) { fd = d2[i]; best = i; }
    double v = fd;
    int rc = gslq__comm_reduce(c, &v, 1, GSLQ_REDUCE_MAX);
    if (rc) return rc;
    if (v < 0) return GSLQ_OK; /* no cluster anywhere has two points */
    /* the lowest participant holding the farthest distance gives its point */
    double w = best < n && (double)fd == v ? (double)(c->size - c->rank) : 0.0;
    if ((rc = gslq__comm_reduce(c, &w, 1, GSLQ_REDUCE_MAX))) return rc;
    int mine = c->size - (int)w == c->rank;
    for (int t = 0; t <= d; t++) work[t] = 0;
    if (mine) {
        for (int t = 0; t < d; t++) work[t] = x[best * (size_t)d + t];
        work[d] = idx[best];
    }
    if ((rc = gslq__comm_reduce(c, work, (size_t)d + 1, GSLQ_REDUCE_SUM))) return rc;
    int f = (int)work[d];
    for (int t = 0; t < d; t++) {
        gsum[(size_t)f * d + t] -= work[t];
        gsum[(size_t)j * d + t] += work[t];
    }
    gcount[f] -= 1;
    gcount[j] = 1;
    *from = f;
    if (mine) *far = best;
    return GSLQ_OK;
}
