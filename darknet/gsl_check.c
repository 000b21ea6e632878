/* ./darknet gsl check CFG: check a cfg as gsl train would (every section and key, the trainer's keys in [net]), parse
 * it with the plugin installed, print the layer table, train nothing. */
#include <stdio.h>
#include <string.h>

#include "darknet.h"
#include "gsl.h"
#include "gsl_cfg.h"
#include "gsl_net.h"
#include "gsl_opts.h"
#include "registry.h"

int gsl_check_main(int argc, char **argv)
{
    const char *usage = "usage: darknet gsl check CFG\n"
                        "  checks CFG as gsl train does (sections, keys and values, the trainer's keys in [net]) and\n"
                        "  prints its layer table; trains nothing\n";
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "darknet gsl check: %s\n%s", argc != 2 ? "one argument, the cfg" : "takes no options", usage);
        return 2;
    }
    const char *cfg = argv[1];
    /* Darknet's read_cfg exits with status 0 on an unreadable file: look first. */
    char err[GSL_DATA_ERRLEN];
    gsl_train_keys k;
    if (gsl_cfg_check(cfg, err) || gsl_train_keys_read(cfg, &k, err)) {
        fprintf(stderr, "darknet gsl check: error: %s\n", err);
        return 1;
    }
    gsl_registry_install();
    network **nets = gsl_net_load(cfg, NULL, NULL, 0, 0, 1, err);
    network *net = nets ? nets[0] : NULL;
    if (!net || gsl_net_trainable(net, cfg, err) || gsl_train_keys_check(&k, cfg, net->h, net->w, net->batch, err)) {
        fprintf(stderr, "darknet gsl check: error: %s\n", err);
        if (nets) gsl_net_free(nets, 1);
        return 1;
    }
    printf("%s: %d layers, input %dx%dx%d, batch %d\n", cfg, net->n, net->w, net->h, net->c, net->batch);
    printf("%5s  %-14s %10s %10s\n", "layer", "type", "inputs", "outputs");
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        printf("%5d  %-14s %10d %10d\n", i, gsl_layer_name(l), l->inputs, l->outputs);
    }
    gsl_net_free(nets, 1);
    return 0;
}
