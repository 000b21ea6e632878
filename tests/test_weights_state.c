/* The plugin layers' state inside .weights files (layers/weights_state.c): a codebook saved with the weights comes
 * back on load, and the round trip (save, load, save) gives the same bytes; a file without the state (older, or
 * upstream's) loads as before; upstream's own loader (the hooks unset) reads the same weights from a file that
 * carries it; a damaged state is refused; gsl_weights_check accepts the longer file and rejects a flipped bit. */
#include <sys/stat.h>
#include <unistd.h>

#include "codebook.h"
#include "darknet.h"
#include "gsl_net.h"
#include "registry.h"
#include "test.h"
#include "weights_state.h"

static const char *tmp_file(const char *name)
{
    static char path[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", test_tmpdir(), name);
    return path[k];
}

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (b && fread(b, 1, *n, f) != *n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static network *snap_net(void)
{
    gsl_registry_install();
    int fd = dup(2);
    freopen("/dev/null", "w", stderr); /* Darknet's layer table */
    network *net = parse_network_cfg("tests/cfg/test_snap_net.cfg");
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    return net;
}

/* A codebook of the snap layer's shape (d 8, M 4, K 16), installed as a layer's own rebuild would. */
static void install(network *net, unsigned long long seed)
{
    gsl_codebook *cb = gsl_layer_codebook(&net->layers[1]);
    gslq_pq pq;
    gslq_pq_init(&pq, cb->d, cb->M, cb->K, NULL);
    for (int i = 0; i < cb->M * cb->K * cb->dsub; i++) pq.centroids[i] = test_randf(&seed, -1, 1);
    char err[GSL_ERRLEN];
    CHECK(gsl_codebook_set(cb, &pq, err) == 0);
    gslq_pq_free(&pq);
}

/* save_weights or load_weights with Darknet's messages on stderr silenced */
static void quietly(void (*fn)(network *, char *), network *net, const char *p)
{
    int fd = dup(2);
    if (!freopen("/dev/null", "w", stderr)) return;
    fn(net, (char *)p);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
}
#define save_quiet(net, p) quietly(save_weights, net, p)
#define load_quiet(net, p) quietly(load_weights, net, p)

static void test_round_trip_byte_identical(void)
{
    network *a = snap_net();
    install(a, 7);
    const char *f1 = tmp_file("a.weights"), *f2 = tmp_file("b.weights");
    save_quiet(a, f1);
    network *b = snap_net();
    CHECK(!gsl_layer_codebook_installed(&b->layers[1]));
    load_quiet(b, f1);
    CHECK(gsl_layer_codebook_installed(&b->layers[1]));
    gsl_codebook *ca = gsl_layer_codebook(&a->layers[1]), *cbb = gsl_layer_codebook(&b->layers[1]);
    CHECK(memcmp(ca->pq.centroids, cbb->pq.centroids, sizeof(float) * 8 * 16 / 4 * 4) == 0);
    save_quiet(b, f2);
    size_t n1, n2;
    unsigned char *x = slurp(f1, &n1), *y = slurp(f2, &n2);
    CHECKF(x && y && n1 == n2 && memcmp(x, y, n1) == 0, "saved again: %zu and %zu bytes differ", n1, n2);
    CHECK(x && n1 > 20 && memcmp(x + n1 - 8, "GSLSTATE", 8) == 0);
    char err[GSL_DATA_ERRLEN];
    CHECKF(gsl_weights_check(b, f1, err) == 0, "%s", err);
    /* one flipped bit in the codebook: refused by the check */
    if (x && n1 > 100) {
        x[n1 - 40] ^= 0x08;
        FILE *f = fopen(f2, "wb");
        fwrite(x, 1, n1, f);
        fclose(f);
        CHECK(gsl_weights_check(b, f2, err) != 0 && strstr(err, "checksum"));
    }
    free(x); free(y);
    gsl_free_network(a); gsl_free_network(b);
}

static void test_file_without_state_loads(void)
{
    network *a = snap_net();
    const char *f1 = tmp_file("plain.weights");
    save_quiet(a, f1); /* no codebook installed: nothing appended, the file is upstream's */
    size_t n;
    unsigned char *x = slurp(f1, &n);
    CHECK(x && n >= 20 && memcmp(x + n - 8, "GSLSTATE", 8) != 0);
    free(x);
    network *b = snap_net();
    load_quiet(b, f1);
    CHECK(!gsl_layer_codebook_installed(&b->layers[1]));
    char err[GSL_DATA_ERRLEN];
    CHECKF(gsl_weights_check(b, f1, err) == 0, "%s", err);
    gsl_free_network(a); gsl_free_network(b);
}

/* Upstream's binary: it cannot parse [snap] or [similarity] (its parser leaves an unknown section a zeroed layer,
 * which its loader then divides by zero on), so it reads our file with the cfg of the network up to the embedding;
 * its loader reads the connected layer and stops, the appended state is not in its way. */
static void test_upstream_loader_reads_the_weights(void)
{
    network *a = snap_net();
    unsigned long long s = 3;
    for (int i = 0; i < a->layers[0].inputs * a->layers[0].outputs; i++) a->layers[0].weights[i] = test_randf(&s, -1, 1);
    install(a, 9);
    const char *f1 = tmp_file("with_state.weights");
    save_quiet(a, f1);
    gsl_registry_uninstall(); /* stock Darknet: no parse, save or load hooks */
    int fd = dup(2);
    freopen("/dev/null", "w", stderr);
    const char *stock = tmp_file("stock.cfg");
    FILE *f = fopen(stock, "w");
    fputs("[net]\nbatch=10\nheight=1\nwidth=1\nchannels=6\n\n[connected]\noutput=8\nactivation=linear\n", f);
    fclose(f);
    network *b = parse_network_cfg((char *)stock);
    load_weights(b, (char *)f1);
    fflush(stderr);
    dup2(fd, 2);
    close(fd);
    gsl_registry_install();
    CHECK(memcmp(a->layers[0].weights, b->layers[0].weights, sizeof(float) * 6 * 8) == 0);
    CHECK(memcmp(a->layers[0].biases, b->layers[0].biases, sizeof(float) * 8) == 0);
    CHECK(*a->seen == *b->seen);
    gsl_free_network(a);
    gsl_free_network(b);
}

int main(void)
{
    RUN(test_round_trip_byte_identical);
    RUN(test_file_without_state_loads);
    RUN(test_upstream_loader_reads_the_weights);
    return TEST_END();
}
