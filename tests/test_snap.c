/* [snap]: identity forward; bit-exact pass-through without a codebook and at alpha = 0; every mode against a
 * double-precision reference of the update, with the descent and approach properties; hand-computed 2-D examples;
 * neighbors = 1 picks the nearest codeword; the OPQ path equals rotate, snap, rotate back; statistics; codebook
 * installation; end to end through parse_network_cfg ([net] + [connected] + [snap] + [similarity]). */
#include "codebook.h"
#include "layers_testutil.h"
#include "registry.h"
#include "similarity_layer.h"
#include "snap_layer.h"
#include "test.h"

/* The reference update of one sub-vector (no rotation), in double: returns 1 when snapped and writes d' and c*. */
static int ref_snap(const gslq_pq *pq, int m, const float *x, const float *d, int mode, double alpha, double eta,
                    int k, double *dout, int *cstar)
{
    int ds = pq->dsub, K = pq->K;
    const float *cm = pq->centroids + (size_t)m * K * ds;
    double dist[256];
    int order[256];
    for (int c = 0; c < K; c++) {
        double s = 0;
        for (int j = 0; j < ds; j++) {
            double p = x[j] + (mode == SNAP_LOOKAHEAD ? eta * d[j] : 0.0);
            s += (p - cm[c * ds + j]) * (p - cm[c * ds + j]);
        }
        dist[c] = s;
        order[c] = c;
    }
    for (int i = 1; i < K; i++) /* insertion sort by distance, ties by index */
        for (int j = i; j > 0 && (dist[order[j]] < dist[order[j - 1]]); j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    int nc = mode == SNAP_LOOKAHEAD ? 1 : k;
    double dn = 0;
    for (int j = 0; j < ds; j++) dn += (double)d[j] * d[j];
    dn = sqrt(dn);
    int best = -1;
    double best_cos = 0;
    for (int i = 0; i < nc && dn > 0 && alpha > 0; i++) {
        const float *c = cm + order[i] * ds;
        double vv = 0, dv = 0;
        for (int j = 0; j < ds; j++) {
            vv += (c[j] - (double)x[j]) * (c[j] - (double)x[j]);
            dv += d[j] * (c[j] - (double)x[j]);
        }
        if (vv > 0 && dv / (sqrt(vv) * dn) > best_cos) { best = order[i]; best_cos = dv / (sqrt(vv) * dn); }
    }
    *cstar = best;
    for (int j = 0; j < ds; j++) dout[j] = d[j];
    if (best < 0) return 0;
    const float *c = cm + best * ds;
    double vn = 0, dv = 0;
    for (int j = 0; j < ds; j++) {
        vn += (c[j] - (double)x[j]) * (c[j] - (double)x[j]);
        dv += d[j] * (c[j] - (double)x[j]);
    }
    vn = sqrt(vn);
    for (int j = 0; j < ds; j++) {
        double v = c[j] - (double)x[j], u = v / vn;
        if (mode == SNAP_ROTATE) dout[j] = (1 - alpha) * d[j] + alpha * dn * u;
        else if (mode == SNAP_PROJECT) dout[j] = (1 - alpha) * d[j] + alpha * (dv / vn) * u;
        else dout[j] = d[j] + alpha * v;
    }
    return 1;
}

static void test_forward_identity(void)
{
    enum { B = 5, D = 12 };
    float x[B * D];
    unsigned long long seed = 1;
    tu_fill_randn(x, B * D, &seed, 2.0f);
    layer l = make_snap_layer(B, D, 4, 16, 4, SNAP_ROTATE, 0.5f, 1.0f);
    network net = {0};
    net.input = x;
    forward_snap_layer(l, net);
    CHECK(memcmp(l.output, x, sizeof x) == 0);
    CHECK(l.outputs == D && l.inputs == D && l.type == BLANK);
    CHECK(gsl_is_snap_layer(&l) && gsl_layer_has_codebook(&l) && !gsl_layer_codebook_installed(&l));
    free_layer(l);
}

/* Without a codebook, and with one at alpha = 0 (with and without a rotation), net.delta receives d bit for bit;
 * what net.delta held before is kept (the layer adds). */
static void test_passthrough_bit_exact(void)
{
    enum { B = 6, D = 12, M = 4, K = 16 };
    float x[B * D], d[B * D], below[B * D], before[B * D];
    unsigned long long seed = 2;
    tu_random_xd(x, d, B * D, &seed);
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 3, 1.0f);
    float *R = tu_random_rotation(D, 4);
    for (int mode = 0; mode < 3; mode++) {
        for (int variant = 0; variant < 3; variant++) { /* no codebook; alpha 0; alpha 0 with rotation */
            layer l = make_snap_layer(B, D, M, K, mode == SNAP_LOOKAHEAD ? 1 : 4, (snap_mode)mode,
                                      variant ? 0.0f : 0.7f, 1.0f);
            if (variant) CHECK(tu_set_codebook(&l, &pq, variant == 2 ? R : NULL) == 0);
            memset(below, 0, sizeof below);
            tu_forward_backward(l, x, d, below);
            CHECKF(memcmp(below, d, sizeof d) == 0, "mode %d variant %d: not bit-exact", mode, variant);
            tu_fill_randn(before, B * D, &seed, 1.0f);
            memcpy(below, before, sizeof below);
            tu_forward_backward(l, x, d, below);
            int ok = 1;
            for (int i = 0; i < B * D; i++) ok &= below[i] == before[i] + d[i];
            CHECKF(ok, "mode %d variant %d: does not add into net.delta", mode, variant);
            gsl_layer_stats st;
            CHECK(gsl_layer_get_stats(&l, &st, 0) == 0);
            CHECK(st.batches == (variant ? 2 : 0));
            CHECK(st.snapped_frac == 0);
            if (variant) CHECK(st.qerr > 0);
            free_layer(l);
        }
    }
    free(R);
    gslq_pq_free(&pq);
}

/* Every mode on random data against the double reference; for every snapped sub-vector d'.d > 0 (rotate,
 * project) and a small step along d' approaches c*; sub-vectors not snapped keep d exactly; the statistics
 * count what the reference counts. */
static void test_modes_against_reference(void)
{
    enum { B = 16, D = 12, M = 4, K = 16, DS = D / M };
    float x[B * D], d[B * D], below[B * D];
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 11, 1.0f);
    const float alphas[] = {0.3f, 1.0f};
    for (int mode = 0; mode < 3; mode++) {
        for (int ai = 0; ai < 2; ai++) {
            float alpha = alphas[ai], eta = 0.8f;
            int k = mode == SNAP_LOOKAHEAD ? 1 : 4;
            unsigned long long seed = 100 + mode * 10 + ai;
            tu_random_xd(x, d, B * D, &seed);
            layer l = make_snap_layer(B, D, M, K, k, (snap_mode)mode, alpha, eta);
            CHECK(snap_layer_set_codebook(&l, &pq, NULL) == 0);
            memset(below, 0, sizeof below);
            tu_forward_backward(l, x, d, below);
            int snapped = 0, bad = 0, descent_bad = 0, approach_bad = 0, kept_bad = 0;
            double qerr = 0;
            for (int b = 0; b < B; b++)
                for (int m = 0; m < M; m++) {
                    const float *xm = x + b * D + m * DS, *dm = d + b * D + m * DS;
                    const float *got = below + b * D + m * DS;
                    double want[DS];
                    int cs;
                    int s = ref_snap(&pq, m, xm, dm, mode, alpha, eta, k, want, &cs);
                    int nearest;
                    double w1[DS];
                    ref_snap(&pq, m, xm, dm, SNAP_ROTATE, 0, 0, 1, w1, &nearest); /* alpha 0: nothing */
                    double qmin;
                    tu_nearest(&pq, m, xm, &qmin);
                    qerr += qmin;
                    snapped += s;
                    for (int j = 0; j < DS; j++)
                        if (!(fabs(got[j] - want[j]) <= 1e-5 + 1e-4 * fabs(want[j]))) bad++;
                    if (!s) {
                        if (memcmp(got, dm, sizeof(float) * DS) != 0) kept_bad++;
                        continue;
                    }
                    const float *c = pq.centroids + (m * K + cs) * DS;
                    double dd = 0, before = 0, after = 0, t = 1e-3;
                    for (int j = 0; j < DS; j++) {
                        dd += (double)got[j] * dm[j];
                        before += (c[j] - (double)xm[j]) * (c[j] - (double)xm[j]);
                        double y = xm[j] + t * got[j];
                        after += (c[j] - y) * (c[j] - y);
                    }
                    if (mode != SNAP_LOOKAHEAD && !(dd > 0)) descent_bad++;
                    if (!(after < before)) approach_bad++;
                }
            CHECKF(bad == 0, "mode %s alpha %g: %d values differ from the reference", snap_mode_name(mode), alpha, bad);
            CHECKF(descent_bad == 0, "mode %s: %d snapped sub-vectors with d'.d <= 0", snap_mode_name(mode), descent_bad);
            CHECKF(approach_bad == 0, "mode %s: %d steps along d' move away from c*", snap_mode_name(mode),
                   approach_bad);
            CHECKF(kept_bad == 0, "mode %s: %d sub-vectors not snapped but changed", snap_mode_name(mode), kept_bad);
            CHECKF(snapped > 0 && snapped < B * M, "mode %s: snapped %d of %d (the case tests little)",
                   snap_mode_name(mode), snapped, B * M);
            gsl_layer_stats st;
            gsl_layer_get_stats(&l, &st, 0);
            CHECK(st.batches == 1);
            CHECK_CLOSE(st.snapped_frac, (double)snapped / (B * M), 1e-12, 0);
            CHECK_CLOSE(st.last_snapped_frac, (double)snapped / (B * M), 1e-12, 0);
            CHECK_CLOSE(st.qerr, qerr / B, 1e-5, 1e-5);
            CHECK_CLOSE(st.last_qerr, qerr / B, 1e-5, 1e-5);
            free_layer(l);
        }
    }
    gslq_pq_free(&pq);
}

/* One 2-D sub-vector, three codewords at x + (1, 1), x + (-1, 0), x + (3, 2.9); d = (1, 0). By distance from x:
 * (-1, 0) (1), (1, 1) (2), (3, 2.9) (17.41). Cosines with d: -1, 0.7071, 0.7190. */
static void hand_case_cb(const float *rel, snap_mode mode, int neighbors, float alpha, float eta, double w0,
                         double w1, int snapped, double qerr)
{
    const float x0 = 0.5f, x1 = -0.25f;
    float x[2] = {x0, x1}, d[2] = {1, 0}, below[2] = {0, 0};
    gslq_pq pq;
    if (gslq_pq_init(&pq, 2, 1, 3, NULL)) exit(1);
    float c[6] = {x0 + rel[0], x1 + rel[1], x0 + rel[2], x1 + rel[3], x0 + rel[4], x1 + rel[5]};
    memcpy(pq.centroids, c, sizeof c);
    layer l = make_snap_layer(1, 2, 1, 3, neighbors, mode, alpha, eta);
    CHECK(snap_layer_set_codebook(&l, &pq, NULL) == 0);
    tu_forward_backward(l, x, d, below);
    CHECKF(fabs(below[0] - w0) < 2e-6 && fabs(below[1] - w1) < 2e-6,
           "%s neighbors=%d alpha=%g eta=%g: d' = (%.8f, %.8f), by hand (%.8f, %.8f)", snap_mode_name(mode),
           neighbors, alpha, eta, below[0], below[1], w0, w1);
    gsl_layer_stats st;
    gsl_layer_get_stats(&l, &st, 0);
    CHECK(st.snapped_frac == snapped);
    CHECK_CLOSE(st.qerr, qerr, 1e-6, 0);
    free_layer(l);
    gslq_pq_free(&pq);
}

static void hand_case(snap_mode mode, int neighbors, float alpha, float eta, double w0, double w1, int snapped)
{
    const float rel[6] = {1, 1, -1, 0, 3, 2.9f};
    hand_case_cb(rel, mode, neighbors, alpha, eta, w0, w1, snapped, 1.0); /* nearest at distance 1 */
}

static void test_hand_computed_2d(void)
{
    /* rotate: d' = (1 - a) d + a |d| v/|v|; with 2 neighbours the candidates are (-1, 0) and (1, 1) */
    hand_case(SNAP_ROTATE, 2, 1.0f, 1, 0.70710678, 0.70710678, 1);
    hand_case(SNAP_ROTATE, 2, 0.5f, 1, 0.85355339, 0.35355339, 1);
    /* project: d' = (1 - a) d + a (d.u) u */
    hand_case(SNAP_PROJECT, 2, 1.0f, 1, 0.5, 0.5, 1);
    hand_case(SNAP_PROJECT, 2, 0.5f, 1, 0.75, 0.25, 1);
    /* 3 neighbours: (3, 2.9) is better aligned than (1, 1) */
    hand_case(SNAP_ROTATE, 3, 1.0f, 1, 0.71898838, 0.69502210, 1);
    hand_case(SNAP_PROJECT, 3, 1.0f, 1, 0.51694428, 0.49971281, 1);
    /* 1 neighbour: the nearest, (-1, 0), lies behind d: d passes unchanged */
    hand_case(SNAP_ROTATE, 1, 1.0f, 1, 1.0, 0.0, 0);
    /* lookahead: c* nearest to x + eta d. eta 2: (2, 0) is nearest (1, 1): d' = d + 0.5 (1, 1) */
    hand_case(SNAP_LOOKAHEAD, 1, 0.5f, 2.0f, 1.5, 0.5, 1);
    /* eta 4: (4, 0) is nearest (3, 2.9): d' = d + 0.5 (3, 2.9) */
    hand_case(SNAP_LOOKAHEAD, 1, 0.5f, 4.0f, 2.5, 1.45, 1);
    /* eta 0.1: (0.1, 0) is nearest (-1, 0), behind d: unchanged */
    hand_case(SNAP_LOOKAHEAD, 1, 0.5f, 0.1f, 1.0, 0.0, 0);
    /* codewords at (0, 1) (orthogonal to d: cosine 0 is not a descent direction), (-2, 0) and (0, -3): nothing
     * snaps in any mode (lookahead eta 1: (1, 0) is nearest (0, 1)) */
    const float ortho[6] = {0, 1, -2, 0, 0, -3};
    hand_case_cb(ortho, SNAP_ROTATE, 3, 1.0f, 1, 1.0, 0.0, 0, 1.0);
    hand_case_cb(ortho, SNAP_PROJECT, 3, 1.0f, 1, 1.0, 0.0, 0, 1.0);
    hand_case_cb(ortho, SNAP_LOOKAHEAD, 1, 1.0f, 1.0f, 1.0, 0.0, 0, 1.0);
    /* equal cosines, (1, 1) and (2, 2): the same direction whichever wins; alpha 1 rotate gives u */
    const float twin[6] = {2, 2, 1, 1, -1, 0};
    hand_case_cb(twin, SNAP_ROTATE, 3, 1.0f, 1, 0.70710678, 0.70710678, 1, 1.0);
}

/* neighbors = 1: every snapped sub-vector turns towards its nearest codeword (rotate, alpha 1: d' = |d| u). */
static void test_neighbors_one_picks_nearest(void)
{
    enum { B = 32, D = 8, M = 2, K = 32, DS = D / M };
    float x[B * D], d[B * D], below[B * D];
    unsigned long long seed = 21;
    tu_random_xd(x, d, B * D, &seed);
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 22, 1.0f);
    layer l = make_snap_layer(B, D, M, K, 1, SNAP_ROTATE, 1.0f, 1.0f);
    snap_layer_set_codebook(&l, &pq, NULL);
    memset(below, 0, sizeof below);
    tu_forward_backward(l, x, d, below);
    int snapped = 0, bad = 0;
    for (int b = 0; b < B; b++)
        for (int m = 0; m < M; m++) {
            const float *xm = x + b * D + m * DS, *dm = d + b * D + m * DS, *got = below + b * D + m * DS;
            double bd;
            int best = tu_nearest(&pq, m, xm, &bd);
            if (memcmp(got, dm, sizeof(float) * DS) == 0) continue; /* not snapped */
            snapped++;
            double vn = sqrt(bd), dn = 0;
            for (int j = 0; j < DS; j++) dn += (double)dm[j] * dm[j];
            dn = sqrt(dn);
            for (int j = 0; j < DS; j++) {
                double u = (pq.centroids[(m * K + best) * DS + j] - (double)xm[j]) / vn;
                if (fabs(got[j] - dn * u) > 1e-5) bad++;
            }
        }
    CHECKF(snapped > 0, "nothing snapped");
    CHECKF(bad == 0, "%d values not turned towards the nearest codeword", bad);
    free_layer(l);
    gslq_pq_free(&pq);
}

/* With an OPQ rotation R: net.delta = R^T snap(R x, R d) (the plain layer run on rotated inputs), for every mode. */
static void test_opq_equals_rotate_snap_unrotate(void)
{
    enum { B = 16, D = 12, M = 3, K = 16 };
    float x[B * D], d[B * D], y[B * D], e[B * D], got[B * D], plain[B * D];
    unsigned long long seed = 31;
    tu_random_xd(x, d, B * D, &seed);
    float *R = tu_random_rotation(D, 32);
    for (int b = 0; b < B; b++) {
        double xd[D], dd[D], yd[D], ed[D];
        for (int j = 0; j < D; j++) { xd[j] = x[b * D + j]; dd[j] = d[b * D + j]; }
        tu_rotate(R, xd, yd, D);
        tu_rotate(R, dd, ed, D);
        for (int j = 0; j < D; j++) { y[b * D + j] = (float)yd[j]; e[b * D + j] = (float)ed[j]; }
    }
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 33, 1.0f);
    for (int mode = 0; mode < 3; mode++) {
        int k = mode == SNAP_LOOKAHEAD ? 1 : 5;
        layer lr = make_snap_layer(B, D, M, K, k, (snap_mode)mode, 0.6f, 0.7f);
        layer lp = make_snap_layer(B, D, M, K, k, (snap_mode)mode, 0.6f, 0.7f);
        CHECK(tu_set_codebook(&lr, &pq, R) == 0);
        CHECK(tu_set_codebook(&lp, &pq, NULL) == 0);
        memset(got, 0, sizeof got);
        memset(plain, 0, sizeof plain);
        tu_forward_backward(lr, x, d, got);
        tu_forward_backward(lp, y, e, plain);
        int bad = 0;
        for (int b = 0; b < B; b++) {
            double pd[D], want[D];
            for (int j = 0; j < D; j++) pd[j] = plain[b * D + j];
            tu_unrotate(R, pd, want, D);
            for (int j = 0; j < D; j++)
                if (fabs(got[b * D + j] - want[j]) > 1e-5 + 1e-4 * fabs(want[j])) bad++;
        }
        CHECKF(bad == 0, "mode %s: %d values differ from R^T snap(R x, R d)", snap_mode_name(mode), bad);
        gsl_layer_stats sr, sp;
        gsl_layer_get_stats(&lr, &sr, 0);
        gsl_layer_get_stats(&lp, &sp, 0);
        CHECK(sr.snapped_frac == sp.snapped_frac && sr.snapped_frac > 0);
        CHECK_CLOSE(sr.qerr, sp.qerr, 1e-5, 1e-5);
        free_layer(lr);
        free_layer(lp);
    }
    free(R);
    gslq_pq_free(&pq);
}

static void test_stats_accumulate_and_reset(void)
{
    enum { B = 8, D = 6, M = 2, K = 8 };
    float x[B * D], d[B * D], below[B * D];
    unsigned long long seed = 41;
    gslq_pq pq;
    tu_random_pq(&pq, D, M, K, 42, 1.0f);
    layer l = make_snap_layer(B, D, M, K, 3, SNAP_PROJECT, 1.0f, 1.0f);
    gsl_layer_set_codebook(&l, &pq, NULL);
    double q[2];
    for (int pass = 0; pass < 2; pass++) {
        tu_fill_randn(x, B * D, &seed, 1.0f + pass);
        tu_fill_randn(d, B * D, &seed, 1.0f);
        tu_forward_backward(l, x, d, below);
        gsl_layer_stats st;
        gsl_layer_get_stats(&l, &st, 0);
        q[pass] = st.last_qerr;
    }
    gsl_layer_stats st;
    gsl_layer_get_stats(&l, &st, 1);
    CHECK(st.batches == 2);
    CHECK_CLOSE(st.qerr, (q[0] + q[1]) / 2, 1e-9, 1e-9);
    CHECK(q[1] != q[0]);
    gsl_layer_get_stats(&l, &st, 0);
    CHECK(st.batches == 0 && st.qerr == 0 && st.snapped_frac == 0);
    free_layer(l);
    gslq_pq_free(&pq);
}

static void test_codebook_install(void)
{
    layer l = make_snap_layer(2, 12, 4, 16, 4, SNAP_ROTATE, 1.0f, 1.0f);
    int d, M, K;
    CHECK(gsl_layer_codebook_shape(&l, &d, &M, &K) == 0 && d == 12 && M == 4 && K == 16);
    gslq_pq bad;
    tu_random_pq(&bad, 12, 3, 16, 1, 1.0f);
    char err[GSL_ERRLEN] = "";
    CHECK(gsl_layer_set_codebook(&l, &bad, err) == -1);
    CHECKF(strstr(err, "does not match") != NULL, "message: %s", err);
    CHECK(!gsl_layer_codebook_installed(&l));
    gslq_pq_free(&bad);
    gslq_pq good;
    tu_random_pq(&good, 12, 4, 16, 1, 1.0f);
    good.centroids[5] = NAN;
    CHECK(gsl_layer_set_codebook(&l, &good, err) == -1);
    CHECKF(strstr(err, "not finite") != NULL, "message: %s", err);
    good.centroids[5] = 0;
    CHECK(gsl_layer_set_codebook(&l, &good, err) == 0 && gsl_layer_codebook_installed(&l));
    /* the layer keeps its own copy */
    good.centroids[0] += 1;
    CHECK(snap_layer_state(&l)->cb.pq.centroids[0] != good.centroids[0]);
    CHECK(gsl_layer_set_codebook(&l, NULL, err) == 0 && !gsl_layer_codebook_installed(&l));
    gslq_pq_free(&good);
    layer sim = make_similarity_layer(2, 4, 2, SIM_COSINE, SIM_MINING_HARD, 0);
    CHECK(!gsl_layer_has_codebook(&sim) && !gsl_is_snap_layer(&sim));
    CHECK(gsl_layer_set_codebook(&sim, &good, err) == -1);
    CHECK(snap_layer_set_codebook(&sim, &good, err) == -1);
    CHECKF(strstr(err, "not a [snap] layer") != NULL, "message: %s", err);
    gsl_layer_stats st;
    CHECK(gsl_layer_get_stats(&sim, &st, 0) == -1);
    free_layer(sim);
    free_layer(l);
}

/* End to end through Darknet: [net] + [connected] + [snap] + [similarity]. Without a codebook the network trains
 * exactly as the same network without [snap]; with one, the cost is unchanged (forward is the identity), the
 * gradient reaching the connected layer changes, and the statistics count the pass. */
static void test_network_end_to_end(void)
{
    gsl_registry_install();
    srand(5);
    network *a = parse_network_cfg((char *)tu_cfg("test_snap_net.cfg"));
    srand(5);
    network *b = parse_network_cfg((char *)tu_cfg("test_snap_net_plain.cfg"));
    CHECK(a->n == 3 && b->n == 2);
    layer *snap = &a->layers[1];
    CHECK(gsl_is_snap_layer(snap) && strcmp(gsl_layer_name(snap), "snap") == 0);
    CHECK(snap_layer_state(snap)->mode == SNAP_PROJECT && snap_layer_state(snap)->neighbors == 3);
    CHECK(a->outputs == 8 && a->truths == 3);
    int nw = a->layers[0].inputs * a->layers[0].outputs;
    CHECK(memcmp(a->layers[0].weights, b->layers[0].weights, sizeof(float) * nw) == 0);
    unsigned long long seed = 55;
    tu_fill_randn(a->input, (size_t)a->inputs * a->batch, &seed, 1.0f);
    tu_random_labels(a->truth, a->batch, 3, 0, &seed);
    memcpy(b->input, a->input, sizeof(float) * a->inputs * a->batch);
    memcpy(b->truth, a->truth, sizeof(float) * a->truths * a->batch);
    a->train = b->train = 1;
    forward_network(a);
    backward_network(a);
    forward_network(b);
    backward_network(b);
    CHECK(*a->cost == *b->cost && *a->cost > 0);
    CHECK(memcmp(a->layers[0].weight_updates, b->layers[0].weight_updates, sizeof(float) * nw) == 0);
    CHECK(memcmp(a->layers[0].delta, b->layers[0].delta, sizeof(float) * a->batch * 8) == 0);

    gslq_pq pq;
    tu_random_pq(&pq, 8, 4, 16, 56, 1.0f);
    char err[GSL_ERRLEN];
    CHECK(gsl_layer_set_codebook(snap, &pq, err) == 0);
    float *wu = malloc(sizeof(float) * nw);
    memcpy(wu, a->layers[0].weight_updates, sizeof(float) * nw);
    forward_network(a);
    backward_network(a);
    CHECK(*a->cost == *b->cost);
    /* the snapped delta reached the connected layer: its weight updates (accumulated) differ from twice plain */
    int differ = 0;
    for (int i = 0; i < nw; i++) differ |= a->layers[0].weight_updates[i] != 2 * wu[i];
    CHECK(differ);
    gsl_layer_stats st;
    CHECK(gsl_layer_get_stats(snap, &st, 0) == 0);
    CHECK(st.batches == 1 && st.snapped_frac > 0 && st.qerr > 0);
    free(wu);
    gslq_pq_free(&pq);
    tu_free_network(a);
    tu_free_network(b);
}

int main(void)
{
    gpu_index = -1; /* the host path, also in GPU builds (tests/test_gpu_layers.c compares the two) */
    RUN(test_forward_identity);
    RUN(test_passthrough_bit_exact);
    RUN(test_modes_against_reference);
    RUN(test_hand_computed_2d);
    RUN(test_neighbors_one_picks_nearest);
    RUN(test_opq_equals_rotate_snap_unrotate);
    RUN(test_stats_accumulate_and_reset);
    RUN(test_codebook_install);
    RUN(test_network_end_to_end);
    return TEST_END();
}
