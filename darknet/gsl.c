/* `darknet gsl`: the subcommands' table and dispatch, and `gsl info` (the processor and the BLAS kernel in use). */
#include "gsl.h"
#include "gsl_data.h"
#include "gsl_eval.h"

#include <stdio.h>
#include <string.h>

#include "gslq.h"

/* `gsl info`: what this binary runs on, as the header lines of train and eval say it. */
static int info_main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "darknet gsl info: takes no arguments\nusage: darknet gsl info\n");
        return 2;
    }
    char model[256] = "?", line[512], feat[256], blas[GSLQ_BLAS_DESCRIBE_LEN];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    unsigned fe = gslq_cpu_features();
    gslq_cpu_features_str(fe, feat, sizeof feat);
    gslq_blas_describe(blas, sizeof blas);
    const char *best = gslq_blas_best_core(fe);
    printf("processor: %s\nfeatures: %s\nbest kernel for it: %s\nblas: %s\n", model, feat, best ? best : "-", blas);
#ifdef GPU
    printf("build: GPU (CUDA)\n");
#else
    printf("build: CPU\n");
#endif
    return 0;
}

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} gsl_subcommand;

static const gsl_subcommand subcommands[] = {
    {"train", gsl_train_main, "train DATA CFG [WEIGHTS|CKPT] [-gpus 0,1] [-clear] [-seed N] [-epochs N] [-threads N]\n"
                              "                            alternate epochs of training and codebook rebuilds"},
    {"eval", gsl_eval_main, "eval DATA CFG WEIGHTS|CKPT  mAP, mAP@1000, P@100 of float features and PQ codes\n"
                            "                            (these and the next four: the network on the CPU, or\n"
                            "                            on one GPU with -gpus N in a GPU=1 build)"},
    {"embed", gsl_embed_main, "embed DATA CFG WEIGHTS -out X   float embeddings (.fvecs), labels (.ivecs), items"},
    {"encode", gsl_encode_main, "encode DATA CFG CKPT -out X     PQ codes of a split, and its items"},
    {"search", gsl_search_main, "search DATA CFG CKPT -query FILE | -out X\n"
                                "                            the nearest database items of an image or list (ADC),\n"
                                "                            or the top-k of every valid query to files"},
    {"export", gsl_export_main, "export DATA CFG CKPT -out IDX [-ivf N]   a Faiss index of the database codes"},
    {"check", gsl_check_main, "check CFG                 parse a cfg, print the layer table, train nothing"},
    {"info", info_main, "info                      the processor, its features and the BLAS kernel in use"},
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
    gsl_image_malloc_tune();
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "darknet gsl: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
