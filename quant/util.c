/* Errors, checked sizes, PRNG, threads, CRC-32, the top-k heap. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime under -std=c11 */
#endif
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int gslq__fail(gslq_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void gslq__ok(gslq_error *err)
{
    if (err) {
        err->code = GSLQ_OK;
        err->msg[0] = 0;
    }
}

const char *gslq_strerror(int code)
{
    switch (code) {
    case GSLQ_OK: return "ok";
    case GSLQ_EINVAL: return "invalid argument";
    case GSLQ_ENOMEM: return "out of memory or size overflow";
    case GSLQ_EIO: return "I/O error";
    case GSLQ_EFORMAT: return "malformed file";
    case GSLQ_ECHECKSUM: return "checksum mismatch";
    case GSLQ_ELAPACK: return "SVD failed";
    case GSLQ_ECOMM: return "distributed collective failed";
    default: return "unknown error";
    }
}

void gslq__die(const char *file, int line, const char *what)
{
    fprintf(stderr, "libgslq: internal error at %s:%d: %s\n", file, line, what);
    abort();
}

int gslq__mul(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int gslq__mul3(size_t a, size_t b, size_t c, size_t *out)
{
    size_t t;
    if (gslq__mul(a, b, &t)) return -1;
    return gslq__mul(t, c, out);
}

void *gslq__alloc(size_t a, size_t b, size_t c, int zero)
{
    size_t n;
    if (gslq__mul3(a, b, c, &n) || n > (size_t)PTRDIFF_MAX) return NULL;
    if (n == 0) n = 1;
    return zero ? calloc(n, 1) : malloc(n);
}

/* ---- PRNG ---- */

uint64_t gslq_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t gslq_xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void gslq__rng_seed(gslq_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = gslq_splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gslq__rng_next(gslq_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

double gslq__rng_uniform(gslq_rng *r) { return (double)(gslq__rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t gslq__rng_below(gslq_rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do v = gslq__rng_next(r); while (v >= lim);
    return v % n;
}

double gslq__rng_normal(gslq_rng *r)
{
    double u = gslq__rng_uniform(r), v = gslq__rng_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- threads ---- */

typedef struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int t, nt;
} par_job;

static void *par_entry(void *arg)
{
    par_job *j = arg;
    j->fn(j->ctx, j->t, j->nt);
    return NULL;
}

void gslq__parallel(int nthreads, void (*fn)(void *ctx, int t, int nt), void *ctx)
{
    int nt = nthreads < 1 ? 1 : nthreads;
    if (nt > 256) nt = 256;
    if (nt == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_t th[256];
    par_job job[256];
    char started[256];
    for (int t = 1; t < nt; t++) {
        job[t] = (par_job){fn, ctx, t, nt};
        started[t] = pthread_create(&th[t], NULL, par_entry, &job[t]) == 0;
    }
    fn(ctx, 0, nt);
    for (int t = 1; t < nt; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else fn(ctx, t, nt); /* same partition, run here */
    }
}

void gslq__split(size_t n, int t, int nt, size_t *begin, size_t *end)
{
    size_t q = n / (size_t)nt, r = n % (size_t)nt, tt = (size_t)t;
    *begin = tt * q + (tt < r ? tt : r);
    *end = *begin + q + (tt < r ? 1 : 0);
}

/* ---- CRC-32 (zlib's: reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF) ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

uint32_t gslq_crc32(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (!p) return 0;
    pthread_once(&crc_once, crc_init);
    uint32_t c = crc ^ 0xFFFFFFFFu;
    /* slicing-by-8, bytewise so that it is endian-neutral */
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- bounded max-heap on (dist, id) ----
 * An entry is one 64-bit key, the distance's bits (non-negative floats order like their bit patterns) above the id,
 * so the lexicographic order (dist, id) is a single integer compare and the sift loops stay branch-light. */

uint64_t gslq__key(float d, uint32_t id)
{
    uint32_t b;
    if (!(d > 0)) d = d == d ? 0.0f : INFINITY; /* -0, negatives from rounding -> 0; NaN last */
    memcpy(&b, &d, sizeof b);
    return (uint64_t)b << 32 | id;
}

float gslq__key_dist(uint64_t key)
{
    uint32_t b = (uint32_t)(key >> 32);
    float d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void sift_down(uint64_t *h, int n, int i, uint64_t key)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1;
        if (l >= n) break;
        int c = (r < n && h[r] > h[l]) ? r : l;
        if (h[c] <= key) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = key;
}

void gslq__heap_push(gslq_heap *h, uint64_t key)
{
    uint64_t *hk = h->key;
    if (h->n < h->k) { /* sift up */
        int i = h->n++;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (hk[p] >= key) break;
            hk[i] = hk[p];
            i = p;
        }
        hk[i] = key;
        return;
    }
    if (key >= hk[0]) return; /* not better than the worst kept */
    sift_down(hk, h->n, 0, key);
}

void gslq__heap_sorted(gslq_heap *h, float *dist, int64_t *ids)
{
    for (int j = h->n; j < h->k; j++) {
        if (dist) dist[j] = INFINITY;
        ids[j] = -1;
    }
    while (h->n > 0) { /* pop the maximum into the last free slot */
        int last = --h->n;
        uint64_t top = h->key[0];
        if (last > 0) sift_down(h->key, last, 0, h->key[last]);
        if (dist) dist[last] = gslq__key_dist(top);
        ids[last] = (int64_t)(uint32_t)top;
    }
}

double gslq_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
