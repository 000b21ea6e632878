/* libgslq unit tests: CRC-32, linear algebra fallbacks, k-means, PQ/OPQ, encode/decode, tables, ADC/SDC/exact
 * search against scalar brute force, evaluation on hand-computed rankings. Files are in test_quant_io.c. */
#include <stdint.h>
#include <zlib.h>

#include "../quant/gslq.h"
#include "../quant/internal.h"
#include "test.h"

static unsigned long long seed_ = 12345;

static float *randn_buf(size_t n)
{
    float *x = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) x[i] = test_randn(&seed_);
    return x;
}

/* ---- CRC-32 ---- */

static void test_crc32_matches_zlib(void)
{
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 131 + 7);
    CHECK(gslq_crc32(0, NULL, 0) == 0);
    CHECK(gslq_crc32(0, "123456789", 9) == 0xCBF43926u);
    for (size_t len = 0; len <= 1000; len += (len < 20 ? 1 : 97)) {
        uint32_t ours = gslq_crc32(0, buf, len);
        uint32_t z = (uint32_t)crc32(0L, buf, (uInt)len);
        CHECKF(ours == z, "len %zu: %08x vs zlib %08x", len, ours, z);
        /* chaining */
        uint32_t part = gslq_crc32(gslq_crc32(0, buf, len / 3), buf + len / 3, len - len / 3);
        CHECKF(part == z, "chained len %zu", len);
    }
}

/* ---- linalg: built-in fallbacks agree with BLAS/LAPACK ---- */

static void test_sgemm_builtin_matches_blas(void)
{
    int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {64, 256, 16}, {33, 70, 130}, {5, 200, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                float *A = randn_buf((size_t)m * k), *B = randn_buf((size_t)k * n);
                float *C1 = randn_buf((size_t)m * n), *C2 = malloc((size_t)m * n * sizeof(float));
                float *C0 = malloc((size_t)m * n * sizeof(float));
                memcpy(C2, C1, (size_t)m * n * sizeof(float));
                memcpy(C0, C1, (size_t)m * n * sizeof(float));
                int lda = ta ? m : k, ldb = tb ? k : n;
                gslq__sgemm(ta, tb, m, n, k, -2.0f, A, lda, B, ldb, 0.5f, C1, n);
                gslq__sgemm_builtin(ta, tb, m, n, k, -2.0f, A, lda, B, ldb, 0.5f, C2, n);
                /* both against a scalar reference in double */
                double maxerr = 0, maxerr_ref = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double ref = 0;
                        for (int p = 0; p < k; p++)
                            ref += (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
                        maxerr = fmax(maxerr, fabs(C1[i * n + j] - C2[i * n + j]));
                        maxerr_ref = fmax(maxerr_ref, fabs(C2[i * n + j] - (-2.0 * ref + 0.5 * C0[i * n + j])));
                    }
                CHECKF(maxerr_ref <= 1e-4 * sqrt((double)k) * 4, "builtin vs double reference: %g", maxerr_ref);
                CHECKF(maxerr <= 1e-4 * sqrt((double)k) * 4, "shape %dx%dx%d ta=%d tb=%d: max diff %g", m, n, k, ta, tb,
                       maxerr);
                free(A); free(B); free(C0); free(C1); free(C2);
            }
}

static void check_svd(int n, int (*svd)(int, const float *, float *, float *, float *), const char *name)
{
    float *A = randn_buf((size_t)n * n), *U = malloc(n * n * 4), *S = malloc(n * 4), *Vt = malloc(n * n * 4);
    if (n > 2) /* make it rank-deficient: last column = first */
        for (int i = 0; i < n; i++) A[i * n + n - 1] = A[i * n];
    CHECKF(svd(n, A, U, S, Vt) == 0, "%s n=%d failed", name, n);
    double rec = 0, orth = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, uu = 0, vv = 0;
            for (int l = 0; l < n; l++) {
                s += (double)U[i * n + l] * S[l] * Vt[l * n + j];
                uu += (double)U[l * n + i] * U[l * n + j];
                vv += (double)Vt[i * n + l] * Vt[j * n + l];
            }
            rec = fmax(rec, fabs(s - A[i * n + j]));
            orth = fmax(orth, fmax(fabs(uu - (i == j)), fabs(vv - (i == j))));
        }
    for (int i = 1; i < n; i++) CHECKF(S[i] <= S[i - 1] + 1e-5f, "%s: singular values not descending", name);
    CHECKF(rec < 1e-4, "%s n=%d: reconstruction error %g", name, n, rec);
    CHECKF(orth < 1e-4, "%s n=%d: U/V not orthogonal (%g)", name, n, orth);
    free(A); free(U); free(S); free(Vt);
}

static void test_svd_builtin_and_lapack(void)
{
    int ns[] = {1, 2, 5, 16, 33};
    for (int i = 0; i < 5; i++) {
        check_svd(ns[i], gslq__svd, "gslq__svd");
        check_svd(ns[i], gslq__svd_builtin, "builtin");
    }
    /* singular values agree between the two paths */
    int n = 12;
    float *A = randn_buf(n * n), *U = malloc(n * n * 4), *S1 = malloc(n * 4), *S2 = malloc(n * 4), *Vt = malloc(n * n * 4);
    gslq__svd(n, A, U, S1, Vt);
    gslq__svd_builtin(n, A, U, S2, Vt);
    for (int i = 0; i < n; i++) CHECK_CLOSE(S2[i], S1[i], 1e-4, 1e-4);
    free(A); free(U); free(S1); free(S2); free(Vt);
}

/* ---- PQ basics ---- */

static void test_pq_init_validation(void)
{
    gslq_pq pq;
    gslq_error e;
    CHECK(gslq_pq_init(&pq, 0, 1, 16, &e) == GSLQ_EINVAL);
    CHECK(gslq_pq_init(&pq, 10, 3, 16, &e) == GSLQ_EINVAL && strstr(e.msg, "divisible"));
    CHECK(gslq_pq_init(&pq, 10, 2, 257, &e) == GSLQ_EINVAL && strstr(e.msg, "K=257"));
    CHECK(gslq_pq_init(&pq, 10, 2, 1, &e) == GSLQ_EINVAL);
    CHECK(gslq_pq_init(&pq, 10, 11, 16, &e) == GSLQ_EINVAL);
    CHECK(gslq_pq_init(&pq, 10, 5, 256, &e) == GSLQ_OK && pq.dsub == 2 && pq.rotation == NULL);
    gslq_pq cp;
    pq.rotation = calloc(100, sizeof(float));
    pq.rotation[5] = 3;
    pq.centroids[7] = 2;
    CHECK(gslq_pq_copy(&cp, &pq, &e) == GSLQ_OK);
    CHECK(cp.rotation && cp.rotation[5] == 3 && cp.centroids[7] == 2 && cp.rotation != pq.rotation);
    gslq_pq_free(&cp);
    gslq_pq_free(&pq);
    gslq_pq_free(&pq); /* idempotent */
    gslq_train_params p;
    gslq_train_params_default(&p);
    float x[20 * 10] = {0};
    CHECK(gslq_pq_init(&pq, 10, 5, 32, &e) == GSLQ_OK);
    CHECK(gslq_pq_train(&pq, x, 20, &p, &e) == GSLQ_EINVAL && strstr(e.msg, "K=32"));
    gslq_pq_free(&pq);
}

/* random centroids, optional random orthogonal rotation */
static void random_pq(gslq_pq *pq, int d, int M, int K, int rot)
{
    gslq_pq_init(pq, d, M, K, NULL);
    for (int i = 0; i < K * d; i++) pq->centroids[i] = test_randn(&seed_);
    if (rot) {
        float *A = randn_buf((size_t)d * d), *U = malloc(d * d * 4), *S = malloc(d * 4), *Vt = malloc(d * d * 4);
        gslq__svd(d, A, U, S, Vt);
        pq->rotation = malloc(d * d * 4);
        memcpy(pq->rotation, U, d * d * 4);
        free(A); free(U); free(S); free(Vt);
    }
}

static void test_roundtrip_from_centroids(void)
{
    int cfg[][4] = {{16, 4, 256, 0}, {15, 5, 37, 0}, {12, 3, 16, 1}, {7, 7, 2, 0}};
    for (int c = 0; c < 4; c++) {
        int d = cfg[c][0], M = cfg[c][1], K = cfg[c][2];
        gslq_pq pq;
        random_pq(&pq, d, M, K, cfg[c][3]);
        size_t n = 300;
        uint8_t *want = malloc(n * M), *got = malloc(n * M);
        float *y = malloc(n * d * 4), *x = malloc(n * d * 4), *back = malloc(n * d * 4);
        for (size_t i = 0; i < n * M; i++) want[i] = (uint8_t)((i * 7919 + i / M) % K);
        /* y in the rotated space from the codewords, x = R^T y */
        for (size_t i = 0; i < n; i++)
            for (int m = 0; m < M; m++)
                memcpy(y + i * d + m * pq.dsub, pq.centroids + ((size_t)m * K + want[i * M + m]) * pq.dsub,
                       pq.dsub * 4);
        gslq_pq_unrotate(&pq, y, x, n);
        gslq_error e;
        CHECK(gslq_pq_encode_mt(&pq, x, n, pq.d, got, 2, &e) == GSLQ_OK);
        CHECKF(memcmp(want, got, n * M) == 0, "config %d: codes differ", c);
        CHECK(gslq_pq_decode(&pq, got, n, back, &e) == GSLQ_OK);
        double err = 0;
        for (size_t i = 0; i < n * d; i++) err = fmax(err, fabs(back[i] - x[i]));
        CHECKF(err < (cfg[c][3] ? 1e-5 : 0.0) + 1e-12, "config %d: decode error %g", c, err);
        double mse;
        CHECK(gslq_pq_mse(&pq, x, n, pq.d, 1, &mse, &e) == 0 && mse < 1e-9);
        /* rotate/unrotate are inverse, in place too */
        memcpy(back, x, n * d * 4);
        gslq_pq_rotate(&pq, back, back, n);
        gslq_pq_unrotate(&pq, back, back, n);
        err = 0;
        for (size_t i = 0; i < n * d; i++) err = fmax(err, fabs(back[i] - x[i]));
        CHECKF(err < 1e-5, "rotate/unrotate error %g", err);
        free(want); free(got); free(y); free(x); free(back);
        gslq_pq_free(&pq);
    }
}

static void test_encode_matches_brute_force(void)
{
    /* random vectors: encode = exact nearest codeword per sub-space (ties impossible in practice) */
    gslq_pq pq;
    random_pq(&pq, 21, 7, 50, 0);
    size_t n = 500;
    float *x = randn_buf(n * 21);
    uint8_t *c1 = malloc(n * 7), *c2 = malloc(n * 7);
    gslq_pq_encode(&pq, x, n, pq.d, c1, NULL);
    gslq_pq_encode_mt(&pq, x, n, pq.d, c2, 3, NULL);
    CHECK(memcmp(c1, c2, n * 7) == 0);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < 7; m++) {
            int idx;
            float d2;
            gslq_pq_nearest(&pq, m, x + i * 21 + m * 3, 1, &idx, &d2);
            /* accept a different code only if its distance is equal within rounding */
            if (idx != c1[i * 7 + m]) {
                const float *a = pq.centroids + ((size_t)m * 50 + c1[i * 7 + m]) * 3, *xs = x + i * 21 + m * 3;
                float dd = 0;
                for (int t = 0; t < 3; t++) dd += (xs[t] - a[t]) * (xs[t] - a[t]);
                if (dd > d2 * (1 + 1e-5f) + 1e-6f) bad++;
            }
        }
    CHECKF(bad == 0, "%d sub-codes are not nearest", bad);
    free(x); free(c1); free(c2);
    gslq_pq_free(&pq);
}

static void test_nearest_k_and_ties(void)
{
    gslq_pq pq;
    gslq_pq_init(&pq, 4, 2, 8, NULL);
    /* sub-space 1: codewords at distances 0,1,1,4,... from the origin with ties */
    float cw[8][2] = {{3, 0}, {1, 0}, {0, 1}, {-1, 0}, {2, 0}, {0, 0}, {0, -1}, {0, 2}};
    memcpy(pq.centroids + 8 * 2, cw, sizeof cw);
    float xs[2] = {0, 0};
    int idx[8];
    float d2[8];
    CHECK(gslq_pq_nearest(&pq, 1, xs, 8, idx, d2) == 0);
    int want[8] = {5, 1, 2, 3, 6, 4, 7, 0};
    for (int i = 0; i < 8; i++) CHECKF(idx[i] == want[i], "rank %d: got %d want %d", i, idx[i], want[i]);
    CHECK(d2[0] == 0 && d2[1] == 1 && d2[4] == 1 && d2[5] == 4 && d2[7] == 9);
    CHECK(gslq_pq_nearest(&pq, 1, xs, 3, idx, NULL) == 0 && idx[0] == 5 && idx[1] == 1 && idx[2] == 2);
    CHECK(gslq_pq_nearest(&pq, 2, xs, 1, idx, NULL) == GSLQ_EINVAL);
    CHECK(gslq_pq_nearest(&pq, 0, xs, 9, idx, NULL) == GSLQ_EINVAL);
    gslq_pq_free(&pq);
}

/* ---- distance tables and search ---- */

static int cmp_pair(const void *a, const void *b)
{
    const double *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

static void check_adc(int d, int M, int K, int rot, size_t nb, size_t nq, int k, int nt)
{
    gslq_pq pq;
    random_pq(&pq, d, M, K, rot);
    uint8_t *codes = malloc(nb * M + 1);
    for (size_t i = 0; i < nb * M; i++) codes[i] = (uint8_t)(test_randf(&seed_, 0, (float)K - 0.01f));
    /* a few exact duplicates so that ties occur */
    for (size_t i = 1; i < nb && i < 20; i += 3) memcpy(codes + i * M, codes, M);
    float *q = randn_buf(nq * d), *table = malloc((size_t)M * K * 4), *dist = malloc(nq * k * 4);
    float *dec = malloc(nb * d * 4);
    int64_t *ids = malloc(nq * k * 8);
    double *pairs = malloc(nb * 2 * sizeof(double));
    gslq_error e;
    CHECK(gslq_adc_search(&pq, codes, nb, q, nq, pq.d, k, ids, dist, nt, &e) == 0);
    gslq_pq_decode(&pq, codes, nb, dec, NULL);
    int bad_ids = 0, bad_dist = 0, bad_table = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        gslq_pq_distance_table(&pq, q + qi * d, pq.d, table, NULL);
        /* table vs direct sub-distances in the rotated space */
        float y[64];
        gslq_pq_rotate(&pq, q + qi * d, y, 1);
        for (int m = 0; m < M; m++)
            for (int c = 0; c < K; c++) {
                double s = 0;
                for (int t = 0; t < pq.dsub; t++) {
                    double df = (double)y[m * pq.dsub + t] - pq.centroids[((size_t)m * K + c) * pq.dsub + t];
                    s += df * df;
                }
                if (fabs(s - table[m * K + c]) > 1e-4 * (1 + s)) bad_table++;
            }
        /* scalar brute force on the same tables: identical ids and distances */
        for (size_t i = 0; i < nb; i++) {
            pairs[2 * i] = gslq_adc_distance(&pq, table, codes + i * M);
            pairs[2 * i + 1] = (double)i;
        }
        qsort(pairs, nb, 2 * sizeof(double), cmp_pair);
        for (int j = 0; j < k; j++) {
            int64_t want = (size_t)j < nb ? (int64_t)pairs[2 * j + 1] : -1;
            if (ids[qi * k + j] != want) bad_ids++;
            if ((size_t)j < nb && dist[qi * k + j] != (float)pairs[2 * j]) bad_dist++;
            if ((size_t)j >= nb && !(isinf(dist[qi * k + j]))) bad_dist++;
            /* and the distance is |q - decode(code)|^2 in the input space */
            if ((size_t)j < nb) {
                double s = 0;
                for (int t = 0; t < d; t++) {
                    double df = (double)q[qi * d + t] - dec[(size_t)ids[qi * k + j] * d + t];
                    s += df * df;
                }
                if (fabs(s - dist[qi * k + j]) > 1e-3 * (1 + s)) bad_dist++;
            }
        }
    }
    CHECKF(bad_table == 0, "d=%d M=%d K=%d: %d table entries off", d, M, K, bad_table);
    CHECKF(bad_ids == 0 && bad_dist == 0, "d=%d M=%d K=%d nb=%zu k=%d: %d ids, %d distances differ", d, M, K, nb, k,
           bad_ids, bad_dist);
    free(codes); free(q); free(table); free(dist); free(dec); free(ids); free(pairs);
    gslq_pq_free(&pq);
}

static void test_adc_against_brute_force(void)
{
    check_adc(15, 5, 37, 0, 1000, 7, 10, 1);   /* odd M, odd dsub, generic kernel */
    check_adc(21, 3, 256, 1, 700, 5, 33, 2);   /* M < 4, rotation */
    check_adc(32, 4, 256, 0, 2000, 9, 100, 2); /* M=4 kernel */
    check_adc(16, 8, 256, 0, 1500, 6, 50, 3);  /* M=8 kernel */
    check_adc(48, 16, 64, 0, 900, 4, 20, 1);   /* M=16 kernel */
    check_adc(18, 9, 16, 0, 40, 3, 64, 1);     /* k > nb: -1 / +inf padding */
}

static void test_sdc_and_exact_search(void)
{
    int d = 12, M = 6, K = 20;
    size_t nb = 300, nq = 5;
    int k = 15;
    gslq_pq pq;
    random_pq(&pq, d, M, K, 0);
    uint8_t *codes = malloc(nb * M), *qc = malloc(nq * M);
    for (size_t i = 0; i < nb * M; i++) codes[i] = (uint8_t)(test_randf(&seed_, 0, K - 0.01f));
    for (size_t i = 0; i < nq * M; i++) qc[i] = (uint8_t)(test_randf(&seed_, 0, K - 0.01f));
    int64_t *ids = malloc(nq * k * 8);
    float *dist = malloc(nq * k * 4);
    CHECK(gslq_sdc_search(&pq, codes, nb, qc, nq, k, ids, dist, 2, NULL) == 0);
    double *pairs = malloc(nb * 2 * sizeof(double));
    int bad = 0;
    for (size_t q = 0; q < nq; q++) {
        for (size_t i = 0; i < nb; i++) {
            double s = 0;
            for (int m = 0; m < M; m++)
                for (int t = 0; t < 2; t++) {
                    double df = pq.centroids[((size_t)m * K + qc[q * M + m]) * 2 + t] -
                                pq.centroids[((size_t)m * K + codes[i * M + m]) * 2 + t];
                    s += df * df;
                }
            pairs[2 * i] = s;
            pairs[2 * i + 1] = (double)i;
        }
        qsort(pairs, nb, 2 * sizeof(double), cmp_pair);
        for (int j = 0; j < k; j++) {
            if (fabs(pairs[2 * j] - dist[q * k + j]) > 1e-4 * (1 + pairs[2 * j])) bad++;
            /* ids: equal unless the brute-force distance ties within rounding */
            if (ids[q * k + j] != (int64_t)pairs[2 * j + 1] &&
                fabs(pairs[2 * j] - pairs[(size_t)(2 * j + 2) < 2 * nb ? 2 * j + 2 : 2 * j]) > 1e-5 && j > 0 &&
                fabs(pairs[2 * j] - pairs[2 * j - 2]) > 1e-5)
                bad++;
        }
    }
    CHECKF(bad == 0, "SDC: %d mismatches", bad);
    /* exact search */
    float *db = randn_buf(nb * d), *q = randn_buf(nq * d);
    CHECK(gslq_exact_search(db, nb, q, nq, d, k, ids, dist, 2, NULL) == 0);
    bad = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        for (size_t i = 0; i < nb; i++) {
            double s = 0;
            for (int t = 0; t < d; t++) s += ((double)q[qi * d + t] - db[i * d + t]) * ((double)q[qi * d + t] - db[i * d + t]);
            pairs[2 * i] = s;
            pairs[2 * i + 1] = (double)i;
        }
        qsort(pairs, nb, 2 * sizeof(double), cmp_pair);
        for (int j = 0; j < k; j++) {
            if (fabs(pairs[2 * j] - dist[qi * k + j]) > 1e-4 * (1 + pairs[2 * j])) bad++;
            if (ids[qi * k + j] != (int64_t)pairs[2 * j + 1]) bad++;
        }
    }
    CHECKF(bad == 0, "exact: %d mismatches", bad);
    free(codes); free(qc); free(ids); free(dist); free(pairs); free(db); free(q);
    gslq_pq_free(&pq);
}

/* ---- k-means ---- */

static float *clustered(size_t n, int d, int nc, float spread)
{
    float *centers = randn_buf((size_t)nc * d), *x = malloc(n * d * 4);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % nc);
        for (int j = 0; j < d; j++) x[i * d + j] = 5 * centers[c * d + j] + spread * test_randn(&seed_);
    }
    free(centers);
    return x;
}

static void test_kmeans_objective_never_increases(void)
{
    size_t n = 3000;
    int d = 6, k = 40;
    float *x = clustered(n, d, 25, 1.0f);
    for (int init = 0; init < 2; init++) {
        gslq_train_params p;
        gslq_train_params_default(&p);
        p.init = init;
        p.niter = 30;
        float *c = malloc(k * d * 4);
        double trace[31];
        gslq_kmeans_stats st;
        CHECK(gslq_kmeans(x, n, d, k, c, &p, trace, &st, NULL) == 0);
        CHECK(st.iters == 30);
        for (int i = 1; i <= 30; i++)
            CHECKF(trace[i] <= trace[i - 1] * (1 + 1e-6), "init %d iter %d: %.9g > %.9g", init, i, trace[i],
                   trace[i - 1]);
        CHECKF(trace[30] < trace[0], "init %d: no progress", init);
        /* warm start from the result: starts where it ended, never worse */
        double t2[31];
        p.warm_start = 1;
        CHECK(gslq_kmeans(x, n, d, k, c, &p, t2, &st, NULL) == 0);
        CHECK_CLOSE(t2[0], trace[30], 0, 1e-5);
        CHECK(st.obj <= trace[30] * (1 + 1e-6));
        free(c);
    }
    /* tolerance stops early */
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 200;
    p.tol = 1e-3f;
    float *c = malloc(k * d * 4);
    gslq_kmeans_stats st;
    CHECK(gslq_kmeans(x, n, d, k, c, &p, NULL, &st, NULL) == 0);
    CHECKF(st.iters < 200, "tol did not stop (iters %d)", st.iters);
    free(c);
    free(x);
}

static void test_kmeans_deterministic_across_threads(void)
{
    size_t n = 5000;
    int d = 8, k = 64;
    float *x = clustered(n, d, 30, 1.0f);
    float *c1 = malloc(k * d * 4), *c2 = malloc(k * d * 4), *c3 = malloc(k * d * 4);
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 10;
    p.nthreads = 1;
    gslq_kmeans(x, n, d, k, c1, &p, NULL, NULL, NULL);
    p.nthreads = 2;
    gslq_kmeans(x, n, d, k, c2, &p, NULL, NULL, NULL);
    p.nthreads = 3;
    gslq_kmeans(x, n, d, k, c3, &p, NULL, NULL, NULL);
    CHECK(memcmp(c1, c2, k * d * 4) == 0);
    CHECK(memcmp(c1, c3, k * d * 4) == 0);
    p.seed = 99;
    gslq_kmeans(x, n, d, k, c2, &p, NULL, NULL, NULL);
    CHECK(memcmp(c1, c2, k * d * 4) != 0);
    /* PQ training too */
    gslq_pq a, b;
    gslq_pq_init(&a, 16, 4, 32, NULL);
    gslq_pq_init(&b, 16, 4, 32, NULL);
    float *y = clustered(2000, 16, 20, 1.0f);
    p.nthreads = 1;
    gslq_pq_train(&a, y, 2000, &p, NULL);
    p.nthreads = 3;
    gslq_pq_train(&b, y, 2000, &p, NULL);
    CHECK(memcmp(a.centroids, b.centroids, 32 * 16 * 4) == 0);
    gslq_pq_free(&a); gslq_pq_free(&b);
    free(x); free(y); free(c1); free(c2); free(c3);
}

static void test_kmeans_empty_cluster_repair(void)
{
    /* 400 points in 4 tight groups; warm start with 8 centroids of which 4 lie far away (they get no points) */
    size_t n = 400;
    int d = 2, k = 8;
    float *x = malloc(n * d * 4), c[16];
    for (size_t i = 0; i < n; i++) {
        x[i * 2] = (float)(i % 4) * 10 + test_randf(&seed_, -1, 1);
        x[i * 2 + 1] = test_randf(&seed_, -1, 1);
    }
    for (int j = 0; j < 4; j++) { c[2 * j] = j * 10.0f; c[2 * j + 1] = 0; }
    for (int j = 4; j < 8; j++) { c[2 * j] = 1000.0f + j; c[2 * j + 1] = 1000.0f; }
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.warm_start = 1;
    p.niter = 5;
    gslq_kmeans_stats st;
    double trace[6];
    CHECK(gslq_kmeans(x, n, d, k, c, &p, trace, &st, NULL) == 0);
    CHECKF(st.repaired >= 4, "repaired %d", st.repaired);
    for (int j = 4; j < 8; j++) CHECKF(c[2 * j] < 100, "centroid %d still at %g", j, c[2 * j]);
    for (int i = 1; i < 6; i++) CHECK(trace[i] <= trace[i - 1] * (1 + 1e-6));
    /* fewer distinct points than centroids: no crash, no NaN */
    float dup[20 * 2];
    for (int i = 0; i < 20; i++) { dup[2 * i] = (float)(i % 3); dup[2 * i + 1] = 0; }
    float c2[10 * 2];
    gslq_train_params_default(&p);
    CHECK(gslq_kmeans(dup, 20, 2, 10, c2, &p, NULL, NULL, NULL) == 0);
    for (int i = 0; i < 20; i++) CHECK(isfinite(c2[i]));
    CHECK(gslq_kmeans(dup, 5, 2, 10, c2, &p, NULL, NULL, NULL) == GSLQ_EINVAL);
    free(x);
}

/* ---- small-dimension kernels (kern.c): every SIMD level against the scalar reference ----
 * The AVX2 and AVX-512 kernels use fused multiply-adds and must give the scalar FMA reference's bits; the portable
 * kernels round multiply and add separately and must give that reference's bits. Across the two arithmetics the
 * nearest index may differ only where two centroids tie to within rounding (checked in double). */

/* |x - c|^2 in double */
static double dist2_d(const float *x, const float *c, int d)
{
    double s = 0;
    for (int t = 0; t < d; t++) s += ((double)x[t] - c[t]) * ((double)x[t] - c[t]);
    return s;
}

static int near_rows_at(int level, const float *x, size_t n, size_t ldx, int d, const float *c, int k, int *idx,
                        float *best)
{
    int kp = GSLQ_KPAD(k);
    float *ctb = malloc((size_t)kp * d * 4 + 64), *cnb = malloc((size_t)kp * 4 + 64);
    /* guard bytes after the layout: the kernels must not write there */
    memset(ctb + (size_t)kp * d, 0x5a, 64);
    gslq__blocks_layout(c, k, d, gslq__kern_bw(level), ctb, cnb);
    gslq__near_rows(level, x, n, ldx, d, ctb, cnb, kp, idx, best);
    unsigned char *g = (unsigned char *)(ctb + (size_t)kp * d);
    int ok = 1;
    for (int i = 0; i < 64; i++) ok &= g[i] == 0x5a;
    free(ctb); free(cnb);
    return ok;
}

static void test_kernel_levels_agree(void)
{
    int ds[] = {1, 2, 3, 5, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64}, ks[] = {2, 5, 8, 15, 16, 17, 37, 100, 256};
    int top = gslq__kern_level(), ties = 0;
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
        for (size_t b = 0; b < sizeof ks / sizeof *ks; b++) {
            int d = ds[a], k = ks[b];
            size_t n = 37, ldx = (size_t)d + 3; /* strided rows, odd count */
            float *x = randn_buf(n * ldx), *c = randn_buf((size_t)k * d);
            if (k >= 5) { /* exact ties: a duplicated centroid, a point on a centroid */
                memcpy(c + 4 * d, c + 1 * d, (size_t)d * 4);
                memcpy(x + 2 * ldx, c + 1 * d, (size_t)d * 4);
            }
            int *idx[3], *ref = malloc(n * sizeof(int));
            float *best[3];
            for (int lv = 0; lv <= top; lv++) {
                idx[lv] = malloc(n * sizeof(int));
                best[lv] = malloc(n * 4);
                CHECKF(near_rows_at(lv, x, n, ldx, d, c, k, idx[lv], best[lv]), "d=%d k=%d %s: wrote past the layout",
                       d, k, gslq__kern_name(lv));
                int bad = 0;
                for (size_t i = 0; i < n; i++) {
                    float bv;
                    ref[i] = gslq__near_ref(lv, x + i * ldx, d, c, k, &bv);
                    bad += ref[i] != idx[lv][i] || memcmp(&bv, &best[lv][i], 4) != 0;
                }
                CHECKF(bad == 0, "d=%d k=%d %s: %d rows differ from the scalar reference", d, k, gslq__kern_name(lv), bad);
                if (k >= 5) CHECKF(idx[lv][2] == 1, "d=%d k=%d %s: tie went to %d, not the lower index 1", d, k,
                                   gslq__kern_name(lv), idx[lv][2]);
            }
            if (top == GSLQ_KERN_AVX512)
                CHECKF(memcmp(idx[1], idx[2], n * sizeof(int)) == 0 && memcmp(best[1], best[2], n * 4) == 0,
                       "d=%d k=%d: AVX2 and AVX-512 differ", d, k);
            for (int lv = 1; lv <= top; lv++)
                for (size_t i = 0; i < n; i++) {
                    if (idx[lv][i] == idx[0][i]) continue;
                    /* a different answer is allowed only on a rounding-level tie */
                    double d0 = dist2_d(x + i * ldx, c + (size_t)idx[0][i] * d, d);
                    double d1 = dist2_d(x + i * ldx, c + (size_t)idx[lv][i] * d, d);
                    double scale = 0;
                    for (int t = 0; t < d; t++) scale += (double)x[i * ldx + t] * x[i * ldx + t];
                    CHECKF(fabs(d0 - d1) <= 1e-5 * (scale + d0 + d1 + 1), "d=%d k=%d row %zu: %d (%.9g) vs %d (%.9g)",
                           d, k, i, idx[0][i], d0, idx[lv][i], d1);
                    ties++;
                }
            /* a NaN point: index 0 everywhere, as the scalar reference */
            x[0] = NAN;
            for (int lv = 0; lv <= top; lv++) {
                near_rows_at(lv, x, 1, ldx, d, c, k, idx[lv], best[lv]);
                CHECK(idx[lv][0] == 0);
            }
            for (int lv = 0; lv <= top; lv++) { free(idx[lv]); free(best[lv]); }
            free(ref); free(x); free(c);
        }
    if (getenv("GSLQ_TEST_VERBOSE")) printf("  levels up to %s, %d rounding-level ties\n", gslq__kern_name(top), ties);
}

static void test_encode_levels_agree(void)
{
    /* odd M and dsub, K not a multiple of 8, a rotation, dsub 32 (where the AVX-512 level puts its bf16 candidate
     * filter in front of the FMA kernel, on CPUs with AVX512-BF16); then every level against brute force */
    int cfg[][4] = {{21, 7, 50, 0}, {64, 4, 256, 1}, {40, 5, 17, 0}, {130, 2, 256, 0}, {96, 3, 256, 0}};
    for (int cix = 0; cix < 5; cix++) {
        int d = cfg[cix][0], M = cfg[cix][1], K = cfg[cix][2];
        gslq_pq pq;
        random_pq(&pq, d, M, K, cfg[cix][3]);
        size_t n = 333;
        float *x = randn_buf(n * d), *y = malloc(n * d * 4);
        gslq_pq_rotate(&pq, x, y, n);
        uint8_t *codes[3];
        int top = gslq__kern_level();
        for (int lv = 0; lv <= top; lv++) {
            codes[lv] = malloc(n * M);
            CHECK(gslq__pq_encode_level(&pq, x, n, codes[lv], 1 + lv, lv, NULL) == GSLQ_OK);
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                for (int m = 0; m < M; m++) {
                    int idx;
                    float d2;
                    gslq_pq_nearest(&pq, m, y + i * d + m * pq.dsub, 1, &idx, &d2);
                    int got = codes[lv][i * M + m];
                    if (got == idx) continue;
                    double dg = dist2_d(y + i * d + m * pq.dsub, pq.centroids + ((size_t)m * K + got) * pq.dsub, pq.dsub);
                    double dn = dist2_d(y + i * d + m * pq.dsub, pq.centroids + ((size_t)m * K + idx) * pq.dsub, pq.dsub);
                    if (dg > dn * (1 + 1e-5) + 1e-5) bad++;
                }
            CHECKF(bad == 0, "config %d %s: %d sub-codes are not nearest", cix, gslq__kern_name(lv), bad);
        }
        if (top == GSLQ_KERN_AVX512) CHECKF(memcmp(codes[1], codes[2], n * M) == 0, "config %d: AVX2 and AVX-512 codes differ", cix);
        for (int lv = 0; lv <= top; lv++) free(codes[lv]);
        free(x); free(y);
        gslq_pq_free(&pq);
    }
}

static void test_kmeans_levels(void)
{
    /* the direct Lloyd iterations: the FMA levels give the same centroids for any thread count; the portable level
     * reaches the same quality */
    size_t n = 4000;
    int d = 12, k = 64, top = gslq__kern_level();
    float *x = clustered(n, d, 40, 1.0f), *c0 = malloc(k * d * 4), *c[3][2];
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 0;
    gslq_kmeans(x, n, d, k, c0, &p, NULL, NULL, NULL); /* k-means++ start */
    p.niter = 15;
    double obj[3];
    for (int lv = 0; lv <= top; lv++)
        for (int t = 0; t < 2; t++) {
            c[lv][t] = malloc(k * d * 4);
            memcpy(c[lv][t], c0, k * d * 4);
            p.nthreads = 1 + 2 * t;
            gslq_kmeans_stats st;
            CHECK(gslq__lloyd_direct(x, n, d, k, c[lv][t], &p, lv, 1, NULL, &st) == GSLQ_OK);
            obj[lv] = st.obj;
            if (t) CHECKF(memcmp(c[lv][0], c[lv][1], k * d * 4) == 0, "%s: 1 and 3 threads differ", gslq__kern_name(lv));
        }
    if (top == GSLQ_KERN_AVX512) CHECK(memcmp(c[1][0], c[2][0], k * d * 4) == 0);
    for (int lv = 1; lv <= top; lv++) CHECK_CLOSE(obj[lv], obj[0], 0, 1e-3);
    /* k-means++ seeding: the same bits at every level */
    for (int lv = 1; lv <= top; lv++) {
        size_t nb = (n + 15) / 16;
        float *xt = malloc(nb * 16 * d * 4), *m0 = malloc(nb * 16 * 4), *m1 = malloc(nb * 16 * 4);
        for (size_t i = 0; i < nb * 16; i++) {
            m0[i] = m1[i] = i % 7 ? INFINITY : 1.5f;
            for (int t = 0; t < d; t++) xt[(i / 16 * d + t) * 16 + i % 16] = i < n ? x[i * d + t] : 0.0f;
        }
        gslq__pp_update(0, xt, d, x + 5 * d, m0, 0, nb);
        gslq__pp_update(lv, xt, d, x + 5 * d, m1, 0, nb);
        CHECKF(memcmp(m0, m1, nb * 16 * 4) == 0, "k-means++ distances differ at %s", gslq__kern_name(lv));
        CHECK(m0[5] == 0.0f);
        free(xt); free(m0); free(m1);
    }
    for (int lv = 0; lv <= top; lv++) { free(c[lv][0]); free(c[lv][1]); }
    free(x); free(c0);
}

static void test_kmeans_bounds_exact(void)
{
    /* bounded k-means (Hamerly) skips points but must give brute force's assignments, hence the same centroids and
     * objective trace, at every level and thread count; data with duplicate points and a warm start that empties
     * clusters (repair) */
    size_t n = 3000;
    int d = 9, k = 48, top = gslq__kern_level();
    float *x = clustered(n, d, 30, 0.7f), *c0 = malloc(k * d * 4);
    for (size_t i = 0; i < 200; i++) memcpy(x + (i + 1000) * d, x + i * d, d * 4); /* duplicates */
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 0;
    gslq_kmeans(x, n, d, k, c0, &p, NULL, NULL, NULL);
    for (int j = k - 4; j < k; j++)
        for (int t = 0; t < d; t++) c0[j * d + t] = 1000.0f + j; /* far away: emptied, then repaired */
    p.niter = 20;
    for (int lv = 0; lv <= top; lv++)
        for (int nt = 1; nt <= 3; nt += 2) {
            float *cb = malloc(k * d * 4), *cr = malloc(k * d * 4);
            double tb[21], tr[21];
            gslq_kmeans_stats sb, sr;
            memcpy(cb, c0, k * d * 4);
            memcpy(cr, c0, k * d * 4);
            p.nthreads = nt;
            CHECK(gslq__lloyd_direct(x, n, d, k, cb, &p, lv, 0, tb, &sb) == GSLQ_OK);
            CHECK(gslq__lloyd_direct(x, n, d, k, cr, &p, lv, 1, tr, &sr) == GSLQ_OK);
            CHECKF(memcmp(cb, cr, k * d * 4) == 0, "%s, %d threads: bounded centroids differ", gslq__kern_name(lv), nt);
            CHECKF(memcmp(tb, tr, sizeof tb) == 0 && sb.repaired == sr.repaired && sb.repaired >= 4,
                   "%s, %d threads: traces differ (repaired %d / %d)", gslq__kern_name(lv), nt, sb.repaired, sr.repaired);
            free(cb); free(cr);
        }
    free(x); free(c0);
}

static void test_kmeans_sgemm_path(void)
{
    /* d > GSLQ_DIRECT_MAXD: the sgemm assignment; objective never increases, same result for every thread count */
    size_t n = 1500;
    int d = GSLQ_DIRECT_MAXD + 6, k = 20;
    float *x = clustered(n, d, 12, 1.0f), *c1 = malloc(k * d * 4), *c2 = malloc(k * d * 4);
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.niter = 8;
    double trace[9];
    CHECK(gslq_kmeans(x, n, d, k, c1, &p, trace, NULL, NULL) == 0);
    for (int i = 1; i <= 8; i++) CHECK(trace[i] <= trace[i - 1] * (1 + 1e-6));
    p.nthreads = 3;
    CHECK(gslq_kmeans(x, n, d, k, c2, &p, NULL, NULL, NULL) == 0);
    CHECK(memcmp(c1, c2, k * d * 4) == 0);
    free(x); free(c1); free(c2);
}

/* ---- PQ/OPQ quality ---- */

static void test_pq_quality_and_bits(void)
{
    size_t n = 4000;
    int d = 16;
    float *x = randn_buf(n * d);
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.nthreads = 2;
    double mse[3];
    int Ks[3] = {16, 64, 256};
    for (int i = 0; i < 3; i++) {
        gslq_pq pq;
        gslq_pq_init(&pq, d, 4, Ks[i], NULL);
        CHECK(gslq_pq_train(&pq, x, n, &p, NULL) == 0);
        gslq_pq_mse(&pq, x, n, pq.d, 2, &mse[i], NULL);
        gslq_pq_free(&pq);
    }
    /* Gaussian, dsub 4: recorded values ~9.1 / 6.6 / 4.5 (per vector, total variance 16) */
    if (getenv("GSLQ_TEST_VERBOSE")) printf("  mse K=16/64/256: %g %g %g\n", mse[0], mse[1], mse[2]);
    CHECKF(mse[0] < 9.6 && mse[1] < 7.0 && mse[2] < 4.9, "mse %g %g %g above the recorded bounds", mse[0], mse[1],
           mse[2]);
    CHECKF(mse[1] < mse[0] && mse[2] < mse[1], "more bits is worse: %g %g %g", mse[0], mse[1], mse[2]);
    /* warm start: rebuilding on the same data never increases the error */
    gslq_pq pq;
    gslq_pq_init(&pq, d, 4, 64, NULL);
    gslq_pq_train(&pq, x, n, &p, NULL);
    double before, after;
    gslq_pq_mse(&pq, x, n, pq.d, 1, &before, NULL);
    p.warm_start = 1;
    p.niter = 5;
    gslq_pq_train(&pq, x, n, &p, NULL);
    gslq_pq_mse(&pq, x, n, pq.d, 1, &after, NULL);
    CHECKF(after <= before * (1 + 1e-6), "warm start got worse: %g -> %g", before, after);
    gslq_pq_free(&pq);
    free(x);
}

static void test_opq_beats_pq_on_correlated_data(void)
{
    /* 4 latent factors spread by a random mixing over all 16 dimensions: correlations across sub-spaces */
    size_t n = 4000;
    int d = 16, L = 4;
    float *mix = randn_buf((size_t)L * d), *x = malloc(n * d * 4);
    for (size_t i = 0; i < n; i++) {
        float z[4];
        for (int l = 0; l < L; l++) z[l] = test_randn(&seed_);
        for (int j = 0; j < d; j++) {
            float s = 0.05f * test_randn(&seed_);
            for (int l = 0; l < L; l++) s += z[l] * mix[l * d + j];
            x[i * d + j] = s;
        }
    }
    gslq_train_params p;
    gslq_train_params_default(&p);
    p.nthreads = 2;
    p.opq_iter = 10;
    gslq_pq pq, opq;
    gslq_pq_init(&pq, d, 4, 16, NULL);
    gslq_pq_init(&opq, d, 4, 16, NULL);
    double e_pq, e_opq;
    CHECK(gslq_pq_train(&pq, x, n, &p, NULL) == 0);
    CHECK(gslq_opq_train(&opq, x, n, &p, NULL) == 0);
    gslq_pq_mse(&pq, x, n, pq.d, 1, &e_pq, NULL);
    gslq_pq_mse(&opq, x, n, opq.d, 1, &e_opq, NULL);
    CHECKF(e_opq < 0.9 * e_pq, "OPQ %g not below PQ %g", e_opq, e_pq);
    /* R orthogonal */
    double orth = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int l = 0; l < d; l++) s += (double)opq.rotation[i * d + l] * opq.rotation[j * d + l];
            orth = fmax(orth, fabs(s - (i == j)));
        }
    CHECKF(orth < 1e-4, "rotation not orthogonal: %g", orth);
    /* warm-started OPQ rebuild keeps the error */
    p.warm_start = 1;
    p.opq_iter = 2;
    CHECK(gslq_opq_train(&opq, x, n, &p, NULL) == 0);
    double e2;
    gslq_pq_mse(&opq, x, n, opq.d, 1, &e2, NULL);
    CHECKF(e2 <= e_opq * 1.02, "warm OPQ %g vs %g", e2, e_opq);
    gslq_pq_free(&pq); gslq_pq_free(&opq);
    free(mix); free(x);
}

/* ---- evaluation ---- */

static void test_rank_ties_by_index(void)
{
    float dist[7] = {3, 1, 2, 1, -0.5f, 2, 1};
    int64_t order[7];
    CHECK(gslq_rank(dist, 7, order, NULL) == 0);
    int64_t want[7] = {4, 1, 3, 6, 2, 5, 0};
    for (int i = 0; i < 7; i++) CHECKF(order[i] == want[i], "pos %d: %lld", i, (long long)order[i]);
}

static void test_eval_hand_computed(void)
{
    /* database of 6 items, classes: 0 1 0 2 0 1; one query of class 0 (relevant: items 0, 2, 4 -> 3 in all) */
    int dbl[6] = {0, 1, 0, 2, 0, 1}, ql[2] = {0, 1};
    gslq_labels Q = {2, 0, ql, NULL}, D = {6, 0, dbl, NULL};
    /* query 0 ranking: 2 3 0 5 4 1 -> relevant at ranks 1, 3, 5: AP = (1/1 + 2/3 + 3/5)/3
     * query 1 (class 1, relevant 1 and 5): ranking 0 1 2 3 4 5 -> ranks 2, 6: AP = (1/2 + 2/6)/2 */
    int64_t rank[12] = {2, 3, 0, 5, 4, 1, 0, 1, 2, 3, 4, 5};
    gslq_eval_result r;
    CHECK(gslq_eval_rankings(rank, 2, 6, &Q, &D, 3, &r, NULL) == 0);
    double ap0 = (1.0 + 2.0 / 3 + 3.0 / 5) / 3, ap1 = (0.5 + 2.0 / 6) / 2;
    CHECK_CLOSE(r.map, (ap0 + ap1) / 2, 1e-12, 0);
    /* R = 3: q0 hits at 1, 3 -> AP@3 = (1 + 2/3)/2, P@3 = 2/3, recall 2/3; q1 hit at 2 -> AP@3 = 1/2, P 1/3, rec 1/2 */
    CHECK_CLOSE(r.map_at_r, ((1 + 2.0 / 3) / 2 + 0.5) / 2, 1e-12, 0);
    CHECK_CLOSE(r.prec_at_r, (2.0 / 3 + 1.0 / 3) / 2, 1e-12, 0);
    CHECK_CLOSE(r.recall_at_r, (2.0 / 3 + 0.5) / 2, 1e-12, 0);
    CHECK(r.nq == 2);

    /* the same through gslq_eval_search with exact distances, including ties broken by index:
     * 1-d database at positions 5 3 1 3 9 1 (ids 0..5), query at 2: distances 9 1 1 1 49 1 -> order 1 2 3 5 0 4 */
    float db[6] = {5, 3, 1, 3, 9, 1}, q[1] = {2};
    int dbl2[6] = {0, 0, 1, 1, 0, 1}, ql2[1] = {1};
    gslq_labels Q2 = {1, 0, ql2, NULL}, D2 = {6, 0, dbl2, NULL};
    CHECK(gslq_eval_search(NULL, NULL, db, 6, 1, q, 1, &Q2, &D2, 2, 1, &r, NULL) == 0);
    /* relevant: 2, 3, 5 at ranks 2, 3, 4 -> AP = (1/2 + 2/3 + 3/4)/3; AP@2 = 1/2 / 1; P@2 = 1/2 */
    CHECK_CLOSE(r.map, (0.5 + 2.0 / 3 + 0.75) / 3, 1e-6, 0);
    CHECK_CLOSE(r.map_at_r, 0.5, 1e-6, 0);
    CHECK_CLOSE(r.prec_at_r, 0.5, 1e-6, 0);
    CHECK_CLOSE(r.recall_at_r, 1.0 / 3, 1e-6, 0);

    /* multi-label: query {0, 2}; items {1}, {2}, {0,1}, {}, {3,2} -> relevant 1, 2, 4 */
    uint64_t qb[1] = {0x5}, dbb[5] = {0x2, 0x4, 0x3, 0x0, 0xC};
    gslq_labels Q3 = {1, 1, NULL, qb}, D3 = {5, 1, NULL, dbb};
    int64_t rk[5] = {0, 1, 3, 4, 2}; /* relevant at ranks 2, 4, 5 */
    CHECK(gslq_eval_rankings(rk, 1, 5, &Q3, &D3, 2, &r, NULL) == 0);
    CHECK_CLOSE(r.map, (1.0 / 2 + 2.0 / 4 + 3.0 / 5) / 3, 1e-12, 0);
    CHECK_CLOSE(r.prec_at_r, 0.5, 1e-12, 0);
    /* a query without relevant items is skipped */
    uint64_t qn[1] = {0x100};
    gslq_labels Q4 = {1, 1, NULL, qn};
    CHECK(gslq_eval_rankings(rk, 1, 5, &Q4, &D3, 2, &r, NULL) == 0 && r.nq == 0);
    /* bad R */
    CHECK(gslq_eval_rankings(rk, 1, 5, &Q3, &D3, 6, &r, NULL) == GSLQ_EINVAL);
}

static void test_eval_adc_matches_rankings(void)
{
    /* gslq_eval_search with PQ equals gslq_eval_rankings on the rankings of the ADC distances */
    int d = 8, M = 4, K = 16;
    size_t nb = 500, nq = 9;
    gslq_pq pq;
    random_pq(&pq, d, M, K, 0);
    uint8_t *codes = malloc(nb * M);
    for (size_t i = 0; i < nb * M; i++) codes[i] = (uint8_t)test_randf(&seed_, 0, K - 0.01f);
    float *q = randn_buf(nq * d), table[4 * 16], *dd = malloc(nb * 4);
    int *dl = malloc(nb * sizeof(int)), ql[9];
    for (size_t i = 0; i < nb; i++) dl[i] = (int)(i % 5);
    for (size_t i = 0; i < nq; i++) ql[i] = (int)(i % 6) - 1; /* one unlabeled query */
    int64_t *rank = malloc(nq * nb * 8);
    for (size_t i = 0; i < nq; i++) {
        gslq_pq_distance_table(&pq, q + i * d, pq.d, table, NULL);
        for (size_t j = 0; j < nb; j++) dd[j] = gslq_adc_distance(&pq, table, codes + j * M);
        gslq_rank(dd, nb, rank + i * nb, NULL);
    }
    gslq_labels Q = {nq, 0, ql, NULL}, D = {nb, 0, dl, NULL};
    gslq_eval_result a, b;
    CHECK(gslq_eval_rankings(rank, nq, nb, &Q, &D, 25, &a, NULL) == 0);
    CHECK(gslq_eval_search(&pq, codes, NULL, nb, d, q, nq, &Q, &D, 25, 2, &b, NULL) == 0);
    CHECKF(a.nq == 7 && b.nq == 7, "nq %zu %zu", a.nq, b.nq); /* queries labelled -1 twice: skipped */
    CHECK_CLOSE(b.map, a.map, 1e-12, 0);
    CHECK_CLOSE(b.map_at_r, a.map_at_r, 1e-12, 0);
    CHECK_CLOSE(b.prec_at_r, a.prec_at_r, 1e-12, 0);
    CHECK_CLOSE(b.recall_at_r, a.recall_at_r, 1e-12, 0);
    /* several cutoffs from one ranking equal one call per cutoff, bit for bit at the same thread count (which fixes
     * the order of the sums), with ADC and with exact distances; the rankings' heads equal the top-k searches';
     * bad cutoffs and head lengths are refused */
    const size_t R[4] = {1, 25, 500, 7};
    gslq_eval_result m[4], one;
    float *db = randn_buf(nb * d), *sd = malloc(nq * 10 * sizeof(float));
    int64_t top[9 * 10], ids[9 * 10];
    for (int exact = 0; exact < 2; exact++) {
        const gslq_pq *P = exact ? NULL : &pq;
        const uint8_t *C = exact ? NULL : codes;
        CHECK(gslq_eval_search_cutoffs(P, C, exact ? db : NULL, nb, d, q, nq, &Q, &D, R, 4, top, 10, 2, m, NULL) == 0);
        CHECK((exact ? gslq_exact_search(db, nb, q, nq, d, 10, ids, sd, 1, NULL)
                     : gslq_adc_search(&pq, codes, nb, q, nq, pq.d, 10, ids, sd, 1, NULL)) == 0);
        CHECKF(memcmp(top, ids, sizeof top) == 0, "exact=%d: the ranking's top 10 differ from the search's", exact);
        if (!exact)
            for (size_t i = 0; i < nq; i++)
                CHECKF(memcmp(top + i * 10, rank + i * nb, 10 * sizeof(int64_t)) == 0, "query %zu: top 10 differ from "
                       "the ADC ranking", i);
        for (int k = 0; k < 4; k++) {
            CHECK(gslq_eval_search(P, C, exact ? db : NULL, nb, d, q, nq, &Q, &D, R[k], 2, &one, NULL) == 0);
            CHECKF(m[k].nq == one.nq && m[k].map == one.map && m[k].map_at_r == one.map_at_r &&
                       m[k].prec_at_r == one.prec_at_r && m[k].recall_at_r == one.recall_at_r,
                   "exact=%d R=%zu: cutoffs %.17g %.17g %.17g, alone %.17g %.17g %.17g", exact, R[k], m[k].map_at_r,
                   m[k].prec_at_r, m[k].recall_at_r, one.map_at_r, one.prec_at_r, one.recall_at_r);
        }
    }
    const size_t bad[2] = {25, 501};
    gslq_error e = {0};
    CHECK(gslq_eval_search_cutoffs(&pq, codes, NULL, nb, d, q, nq, &Q, &D, bad, 2, NULL, 0, 1, m, &e) == GSLQ_EINVAL);
    CHECKF(strstr(e.msg, "R=501") != NULL, "%s", e.msg);
    CHECK(gslq_eval_search_cutoffs(&pq, codes, NULL, nb, d, q, nq, &Q, &D, R, 0, NULL, 0, 1, m, &e) == GSLQ_EINVAL);
    CHECK(gslq_eval_search_cutoffs(&pq, codes, NULL, nb, d, q, nq, &Q, &D, R, GSLQ_EVAL_MAX_CUTOFFS + 1, NULL, 0, 1, m,
                                   &e) == GSLQ_EINVAL);
    CHECK(gslq_eval_search_cutoffs(&pq, codes, NULL, nb, d, q, nq, &Q, &D, R, 1, top, 501, 1, m, &e) == GSLQ_EINVAL);
    CHECKF(strstr(e.msg, "top-501") != NULL, "%s", e.msg);
    free(codes); free(q); free(dd); free(dl); free(rank); free(db); free(sd);
    gslq_pq_free(&pq);
}

static void test_nn_recall(void)
{
    int64_t gt[2 * 3] = {5, 1, 2, 7, 8, 9}, res[2 * 4] = {1, 5, 3, 4, 9, 0, 0, 7};
    CHECK_CLOSE(gslq_nn_recall(gt, 3, res, 4, 2, 1, 1), 0.0, 1e-12, 0);
    CHECK_CLOSE(gslq_nn_recall(gt, 3, res, 4, 2, 1, 2), 0.5, 1e-12, 0);
    CHECK_CLOSE(gslq_nn_recall(gt, 3, res, 4, 2, 1, 4), 1.0, 1e-12, 0);
    CHECK_CLOSE(gslq_nn_recall(gt, 3, res, 4, 2, 2, 4), (1.0 + 0.5) / 2, 1e-12, 0);
    CHECK_CLOSE(gslq_nn_recall(gt, 3, res, 4, 2, 3, 4), (2.0 / 3 + 2.0 / 3) / 2, 1e-12, 0);
}

/* A codebook of another dimension than the vectors is refused by every vector reader, before any is read (the
 * vectors here are exactly n x d floats: under ASan a read past them would be reported). */
static void test_dimension_mismatch_refused(void)
{
    gslq_pq pq;
    random_pq(&pq, 16, 4, 16, 0);
    int dims[] = {8, 12, 32};
    for (int t = 0; t < 3; t++) {
        int d = dims[t];
        size_t n = 5;
        float *x = malloc(n * d * sizeof(float)), table[4 * 16], dist[5];
        uint8_t codes[5 * 4] = {0};
        int64_t ids[5];
        double mse;
        for (size_t i = 0; i < n * d; i++) x[i] = (float)i;
        gslq_error e;
        CHECK(gslq_pq_encode(&pq, x, n, d, codes, &e) == GSLQ_EINVAL);
        CHECKF(strstr(e.msg, "dimension") && strstr(e.msg, "16"), "%s", e.msg);
        CHECK(gslq_pq_encode_mt(&pq, x, n, d, codes, 2, &e) == GSLQ_EINVAL);
        CHECK(gslq_pq_mse(&pq, x, n, d, 1, &mse, &e) == GSLQ_EINVAL);
        CHECK(gslq_pq_distance_table(&pq, x, d, table, &e) == GSLQ_EINVAL);
        CHECK(gslq_adc_search(&pq, codes, n, x, n, d, 1, ids, dist, 1, &e) == GSLQ_EINVAL);
        CHECKF(strstr(e.msg, "adc_search") != NULL, "%s", e.msg);
        free(x);
    }
    gslq_pq_free(&pq);
}

int main(void)
{
    RUN(test_crc32_matches_zlib);
    RUN(test_sgemm_builtin_matches_blas);
    RUN(test_svd_builtin_and_lapack);
    RUN(test_pq_init_validation);
    RUN(test_roundtrip_from_centroids);
    RUN(test_encode_matches_brute_force);
    RUN(test_nearest_k_and_ties);
    RUN(test_adc_against_brute_force);
    RUN(test_sdc_and_exact_search);
    RUN(test_kmeans_objective_never_increases);
    RUN(test_kmeans_deterministic_across_threads);
    RUN(test_kmeans_empty_cluster_repair);
    RUN(test_kernel_levels_agree);
    RUN(test_encode_levels_agree);
    RUN(test_kmeans_levels);
    RUN(test_kmeans_bounds_exact);
    RUN(test_kmeans_sgemm_path);
    RUN(test_pq_quality_and_bits);
    RUN(test_opq_beats_pq_on_correlated_data);
    RUN(test_rank_ties_by_index);
    RUN(test_eval_hand_computed);
    RUN(test_eval_adc_matches_rankings);
    RUN(test_nn_recall);
    RUN(test_dimension_mismatch_refused);
    return TEST_END();
}
