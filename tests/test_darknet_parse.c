/* The parser hook leaves Darknet's own sections alone, and handles the rest as the plugin registry says.
 * Stock cfgs from the upstream tree ($DARKNET_SRC_TREE/cfg) parse to the same layers with and without the hook;
 * with the hook unset, an unknown section is skipped as upstream does (stock behaviour); with it set, the process
 * stops with status 1 and a message naming the file and the section. */
#include <sys/wait.h>
#include <unistd.h>

#include "darknet.h"
#include "gsl_net.h"
#include "registry.h"
#include "test.h"

static const char *src_tree(void)
{
    const char *t = getenv("DARKNET_SRC_TREE");
    return t && *t ? t : "build/darknet-src";
}

typedef struct {
    int type, inputs, outputs, out_h, out_w, out_c, nweights, nbiases;
} shape;

static int parse_shapes(const char *cfg, shape *out, int cap)
{
    network *net = parse_network_cfg((char *)cfg);
    int n = net->n;
    for (int i = 0; i < n && i < cap; i++) {
        layer *l = &net->layers[i];
        out[i] = (shape){l->type, l->inputs, l->outputs, l->out_h, l->out_w, l->out_c, l->nweights, l->nbiases};
    }
    gsl_free_network(net);
    return n;
}

static void test_stock_cfgs_same_with_and_without_hook(void)
{
    const char *cfgs[] = {"cifar.cfg", "yolov3-tiny.cfg", "resnet18.cfg", "alexnet.cfg", "rnn.cfg"};
    static shape a[512], b[512];
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/cfg/%s", src_tree(), cfgs[i]);
        FILE *f = fopen(path, "r");
        CHECKF(f != NULL, "cannot open %s", path);
        if (!f) continue;
        fclose(f);
        gsl_registry_uninstall();
        int na = parse_shapes(path, a, 512);
        gsl_registry_install();
        int nb = parse_shapes(path, b, 512);
        CHECKF(na == nb && na > 0, "%s: %d layers stock, %d hooked", cfgs[i], na, nb);
        for (int k = 0; k < na && k < nb && k < 512; k++)
            CHECKF(memcmp(&a[k], &b[k], sizeof(shape)) == 0, "%s layer %d differs", cfgs[i], k);
    }
}

static const char *write_cfg(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) { perror(path); exit(1); }
    return path;
}

static const char *bogus_cfg =
    "[net]\nbatch=2\nheight=4\nwidth=4\nchannels=1\n\n"
    "[connected]\noutput=8\nactivation=linear\n\n"
    "[bogus]\nfoo=1\n\n"
    "[connected]\noutput=3\nactivation=linear\n";

static void test_unknown_section_stock_carries_on(void)
{
    const char *path = write_cfg("bogus_stock.cfg", bogus_cfg);
    gsl_registry_uninstall();
    network *net = parse_network_cfg((char *)path);
    CHECKF(net->n == 3, "stock Darknet keeps the empty layer: n=%d", net->n);
    gsl_free_network(net);
    gsl_registry_install();
}

static void test_unknown_section_rejected_with_hook(void)
{
    const char *path = write_cfg("bogus_hooked.cfg", bogus_cfg);
    char errpath[1024];
    snprintf(errpath, sizeof errpath, "%s/bogus_hooked.err", test_tmpdir());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errpath, "w", stderr)) _exit(99);
        gsl_registry_install();
        parse_network_cfg((char *)path);
        _exit(0); /* reached only if the section was accepted */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d", WEXITSTATUS(status));
    char msg[4096] = "";
    FILE *f = fopen(errpath, "r");
    if (f) { size_t n = fread(msg, 1, sizeof msg - 1, f); msg[n] = 0; fclose(f); }
    char want[1100];
    snprintf(want, sizeof want, "%s: layer 1 [bogus]: unknown section type", path);
    CHECKF(strstr(msg, want) != NULL, "message lacks '%s':\n%s", want, msg);
}

static int dummy_parse(const gsl_section *sec, layer *out, char *err) { return 0; }

static void test_registry_add_and_find(void)
{
    gsl_registry_install();
    CHECK(gsl_registry_find("no-such-layer") == NULL);
    CHECK(gsl_registry_add("test-dummy", dummy_parse) == 0);
    CHECK(gsl_registry_find("test-dummy") == dummy_parse);
    CHECK(gsl_registry_add("test-dummy", dummy_parse) == -1); /* taken */
    CHECK(gsl_registry_add(NULL, dummy_parse) == -1);
}

int main(void)
{
    RUN(test_stock_cfgs_same_with_and_without_hook);
    RUN(test_unknown_section_stock_carries_on);
    RUN(test_unknown_section_rejected_with_hook);
    RUN(test_registry_add_and_find);
    return TEST_END();
}
