/* ./darknet: upstream Darknet's command line, plus `gsl ...`.
 *
 * Darknet's own main (examples/darknet.c) is linked in renamed to darknet_main; every command other than `gsl`
 * goes to it unchanged. The layer plugin is installed first either way, so a cfg with [snap] or [similarity]
 * also parses under Darknet's own commands, and an unknown section stops with an error instead of being skipped.
 * OpenBLAS's kernel is chosen before either runs (quant/blas.c: GSL_BLAS_CORE, OPENBLAS_CORETYPE). */
#include <stdio.h>
#include <string.h>

#include "gsl.h"
#include "gsl_cfg.h"
#include "gslq.h"
#include "upstream_strict.h"
#include "registry.h"

int darknet_main(int argc, char **argv);

int main(int argc, char **argv)
{
    /* Before anything else: OpenBLAS's kernel from the processor's features (may execute this program again). */
    gslq_error e = {0};
    if (gslq_blas_select(argv, &e)) {
        fprintf(stderr, "darknet: %s: %s\n", e.code == GSLQ_EINVAL ? "error" : "warning", e.msg);
        if (e.code == GSLQ_EINVAL) return 2;
    }
    gsl_registry_install();
    if (argc >= 2 && strcmp(argv[1], "gsl") == 0) return gsl_main(argc - 1, argv + 1);
    /* Darknet's classifier commands other than train read the network's output as class scores and index the label
     * names with it: the embedding of a network that ends in [similarity] has more values than there are classes,
     * and the lookup reads past the names (a crash, or scores that mean nothing). */
    int classifier = argc >= 5 && !strcmp(argv[1], "classifier") && strcmp(argv[2], "train");
    int scored = classifier ? 4 : argc >= 3 && !strcmp(argv[1], "classify") ? 2 : -1; /* its cfg argument */
    /* A cfg that uses the plugin's sections is read strictly by Darknet's own commands too (a key no layer reads, an
     * unknown activation: an error naming the file, layer and key); other cfgs keep upstream's leniency, as cfgs of
     * the other Darknet fork carry keys this one does not read. */
    static const char *const plugin[] = {"snap", "similarity", "quantloss", NULL};
    int strict = 0;
    for (int i = 2; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (i != scored && (len <= 4 || strcmp(argv[i] + len - 4, ".cfg"))) continue;
        int uses = gsl_cfg_sections(argv[i], plugin);
        if (i == scored && (uses & 2)) {
            fprintf(stderr, "darknet %s%s%s: %s ends in [similarity]: its output is an embedding, not class scores; "
                    "`darknet gsl search` finds the nearest images to a query, `darknet gsl eval` measures retrieval "
                    "(`darknet classifier train` trains it)\n", argv[1], classifier ? " " : "",
                    classifier ? argv[2] : "", argv[i]);
            return 1;
        }
        if (uses && !strict++ && gsl_cfg_strict_begin) gsl_cfg_strict_begin(argv[i]);
    }
    return darknet_main(argc, argv);
}
