#include "gsl.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} gsl_subcommand;

static const gsl_subcommand subcommands[] = {
    {"check", gsl_check_main, "check CFG                 parse a cfg, print the layer table, train nothing"},
    {"quant", gsl_quant_main, "quant train|encode|search|eval|export ...   PQ/OPQ on .fvecs files (no network)"},
};
#define N_SUBCOMMANDS (int)(sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: darknet gsl SUBCOMMAND [ARGS]\n\nsubcommands:\n");
    for (int i = 0; i < N_SUBCOMMANDS; i++) fprintf(f, "  %s\n", subcommands[i].usage);
    fprintf(f, "  help                      this list\n\nEvery other command is Darknet's own, e.g. darknet classifier train DATA CFG\n\n");
}

int gsl_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "darknet gsl: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
