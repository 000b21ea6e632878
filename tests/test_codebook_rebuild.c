/* A codebook layer's own rebuilds (layers/codebook_rebuild.c): nothing before the reservoir holds 40 rows per
 * codeword, then a codebook; a second network parsed from the same cfg (a -gpus replica) installs that very codebook
 * at its next training pass; a codebook installed from outside turns the schedule off. */
#include <unistd.h>

#include "codebook.h"
#include "darknet.h"
#include "gsl_net.h"
#include "registry.h"
#include "test.h"

static network *parse_quiet(const char *cfg)
{
    gsl_registry_install();
    int fd = dup(2);
    if (!freopen("/dev/null", "w", stderr)) return NULL;
    network *net = parse_network_cfg((char *)cfg);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    return net;
}

/* n training forward passes of the [snap] layer (layer 1: 8 inputs, batch 10) on random rows. */
static void passes(network *net, int n, size_t *seen, unsigned long long *rs)
{
    layer *l = &net->layers[1];
    float x[10 * 8];
    network t = *net;
    t.train = 1;
    t.seen = seen;
    t.input = x;
    for (int p = 0; p < n; p++) {
        for (int i = 0; i < 10 * 8; i++) x[i] = test_randn(rs);
        *seen += 10;
        l->forward(*l, t);
    }
}

static void test_rebuild_shared_by_replicas(void)
{
    network *a = parse_quiet("tests/cfg/test_snap_net.cfg"), *b = parse_quiet("tests/cfg/test_snap_net.cfg");
    CHECK(a && b);
    if (!a || !b) return;
    gsl_codebook *ca = gsl_layer_codebook(&a->layers[1]), *cb = gsl_layer_codebook(&b->layers[1]);
    CHECK(ca && cb && ca->own_schedule && cb->own_schedule && ca->K == 16);
    size_t sa = 0, sb = 0;
    unsigned long long rs = 5;
    passes(a, 63, &sa, &rs); /* 630 rows: fewer than 40 x 16 */
    CHECK(!gsl_layer_codebook_installed(&a->layers[1]));
    passes(a, 1, &sa, &rs); /* 640: the first rebuild */
    CHECK(gsl_layer_codebook_installed(&a->layers[1]));
    CHECK(!gsl_layer_codebook_installed(&b->layers[1]));
    passes(b, 1, &sb, &rs); /* the replica's next pass installs the shared codebook */
    CHECK(gsl_layer_codebook_installed(&b->layers[1]));
    CHECK(memcmp(ca->pq.centroids, cb->pq.centroids, sizeof(float) * 4 * 16 * 2) == 0);
    /* a codebook from outside: the schedule is off, later passes leave it alone */
    gslq_pq pq;
    gslq_pq_copy(&pq, &ca->pq, NULL);
    pq.centroids[0] += 1.0f;
    char err[GSL_ERRLEN];
    CHECK(gsl_layer_set_codebook(&a->layers[1], &pq, err) == 0 && !ca->own_schedule);
    passes(a, 2000, &sa, &rs); /* past the next scheduled rebuild (1000 iterations) */
    CHECK(ca->pq.centroids[0] == pq.centroids[0]);
    gslq_pq_free(&pq);
    gsl_free_network(a);
    gsl_free_network(b);
}

int main(void)
{
    RUN(test_rebuild_shared_by_replicas);
    return TEST_END();
}
