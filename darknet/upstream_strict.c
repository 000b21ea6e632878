/* Darknet's cfg reader, strict where gsl commands read a cfg, and its missing-file exit status.
 *
 * Linked before libdarknet (whose copies of these are made weak). Upstream reads a cfg leniently: a key no layer
 * reads ("outptu=16" for "output=16") is only listed as "Unused field" and the layer keeps its default, and an
 * activation it does not know becomes ReLU with a line on stderr; the run then trains another network than the one
 * written. Between gsl_cfg_strict_begin and gsl_cfg_strict_end (around parse_network_cfg in gsl commands) either
 * stops the process with a message naming the file, the layer and the key, as the plugin layers' own parsers do
 * (layers/registry.c: inside Darknet's parser nothing can be returned). Darknet's own commands read a cfg that uses
 * the plugin's sections strictly too (darknet/main.c), others as upstream does. A file that cannot be opened ends
 * any command with status 1 (upstream: 0, as if it had worked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "option_list.h"
#include "upstream_strict.h"

static const char *strict_cfg; /* the cfg being read strictly, NULL otherwise */
static int layer_at;           /* the layer being parsed */

void gsl_cfg_strict_begin(const char *cfg)
{
    strict_cfg = cfg;
    layer_at = 0;
}

void gsl_cfg_strict_end(void) { strict_cfg = NULL; }

/* The section name of layer `index` of the cfg (the index-th section after [net]), "?" when it cannot be read. */
static void section_name(const char *cfg, int index, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    FILE *f = fopen(cfg, "r");
    if (!f) return;
    char line[4096];
    for (int n = -1; fgets(line, sizeof line, f);) {
        char *p = line + strspn(line, " \t");
        if (*p != '[' || ++n != index + 1) continue;
        size_t len = strcspn(p + 1, "]");
        snprintf(out, cap, "%.*s", (int)len, p + 1);
        break;
    }
    fclose(f);
}

static void stop(const char *what)
{
    char name[64];
    section_name(strict_cfg, layer_at, name, sizeof name);
    fprintf(stderr, "\n%s: layer %d [%s]: %s\n", strict_cfg, layer_at, name, what);
    exit(1);
}

/* Called by parse_network_cfg after each layer's parser, in layer order ([net] is not one of them). */
void option_unused(list *l)
{
    for (node *n = l->front; n; n = n->next) {
        kvp *p = (kvp *)n->val;
        if (p->used) continue;
        if (!strict_cfg) {
            fprintf(stderr, "Unused field: '%s = %s'\n", p->key, p->val);
            continue;
        }
        char what[600];
        snprintf(what, sizeof what, "key '%.100s' (= %.100s): no such key in this section (Darknet would ignore it)",
                 p->key, p->val);
        stop(what);
    }
    layer_at++;
}

ACTIVATION get_activation(char *s)
{
    static const struct { const char *name; ACTIVATION a; } table[] = {
        {"logistic", LOGISTIC}, {"loggy", LOGGY}, {"relu", RELU},       {"elu", ELU},         {"selu", SELU},
        {"relie", RELIE},       {"plse", PLSE},   {"hardtan", HARDTAN}, {"lhtan", LHTAN},     {"linear", LINEAR},
        {"ramp", RAMP},         {"leaky", LEAKY}, {"tanh", TANH},       {"stair", STAIR}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].name) == 0) return table[i].a;
    if (!strict_cfg) {
        fprintf(stderr, "Couldn't find activation function %s, going with ReLU\n", s);
        return RELU;
    }
    char what[600];
    snprintf(what, sizeof what, "key 'activation': '%.100s' is not one of Darknet's (logistic, loggy, relu, elu, selu, "
             "relie, plse, hardtan, lhtan, linear, ramp, leaky, tanh, stair)", s);
    stop(what);
    return RELU;
}

void file_error(char *s)
{
    fprintf(stderr, "Couldn't open file: %s\n", s);
    exit(1);
}
