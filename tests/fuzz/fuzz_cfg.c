/* The cfg reader with the plugin layers: the whole-file check (darknet/gsl_cfg.c), then, on what it accepts,
 * upstream's read_cfg and the registered parser of every plugin section ([snap], [similarity], [quantloss]) on a
 * 16-d input. Nothing may crash, read out of bounds or exit. */
#include "darknet.h"
#include "fuzz.h"
#include "option_list.h"
#include "gsl_cfg.h"
#include "gsl_data.h"
#include "registry.h"

/* Upstream's section record (src/parser.c keeps it private; read_cfg returns a list of them). */
typedef struct {
    char *type;
    list *options;
} cfg_section;

static void free_sections(list *sections)
{
    for (node *n = sections->front; n; n = n->next) {
        cfg_section *s = n->val;
        for (node *o = s->options->front; o; o = o->next) {
            kvp *p = o->val;
            free(p->key); /* the line; the value points into it */
            free(p);
        }
        free_list(s->options);
        free(s->type);
        free(s);
    }
    free_list(sections);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, "net.cfg", data, size);
    char err[GSL_DATA_ERRLEN];
    if (gsl_cfg_check(path, err)) return 0;
    list *sections = read_cfg((char *)path);
    int index = 0;
    for (node *n = sections->front ? sections->front->next : NULL; n; n = n->next, index++) {
        cfg_section *s = n->val;
        char name[64];
        size_t L = strlen(s->type);
        if (L < 3 || L - 2 >= sizeof name) continue;
        memcpy(name, s->type + 1, L - 2);
        name[L - 2] = 0;
        gsl_layer_parser parse = gsl_registry_find(name);
        if (!parse) continue;
        gsl_section sec = {path, name, index, s->options, 2, 16, 1, 1, 16, NULL};
        layer l = {0};
        char lerr[GSL_ERRLEN];
        if (parse(&sec, &l, lerr) == 0) free_layer(l);
    }
    free_sections(sections);
    return 0;
}
