#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"
#include "option_list.h"
#include "weights_state.h"

/* Added to Darknet's src/parser.c by darknet/hook.sh. */
extern layer (*gsl_parse_layer_hook)(char *cfg, char *type, list *options, int index, int batch, int inputs, int h,
                                     int w, int c, network *net);

#define GSL_REGISTRY_MAX 32

static struct {
    const char *type;
    gsl_layer_parser parse;
    void (*forward)(struct layer, struct network); /* of the last layer parsed: names plugin layers */
} registry[GSL_REGISTRY_MAX];
static int registry_n;

int gsl_registry_add(const char *type, gsl_layer_parser parse)
{
    if (!type || !parse || registry_n == GSL_REGISTRY_MAX || gsl_registry_find(type)) return -1;
    registry[registry_n].type = type;
    registry[registry_n].parse = parse;
    registry_n++;
    return 0;
}

static int registry_index(const char *type)
{
    for (int i = 0; i < registry_n; i++)
        if (strcmp(registry[i].type, type) == 0) return i;
    return -1;
}

gsl_layer_parser gsl_registry_find(const char *type)
{
    int i = registry_index(type);
    return i < 0 ? NULL : registry[i].parse;
}

const char *gsl_layer_name(const layer *l)
{
    for (int i = 0; i < registry_n; i++)
        if (registry[i].forward && registry[i].forward == l->forward) return registry[i].type;
    return get_layer_string(l->type);
}

/* layers/builtin.c: registers every layer of this project. */
void gsl_register_builtin_layers(void);

void gsl_registry_install(void)
{
    static int builtins_done;
    if (!builtins_done) {
        gsl_register_builtin_layers();
        builtins_done = 1;
    }
    gsl_parse_layer_hook = gsl_registry_parse;
    gsl_weights_state_install();
}

void gsl_registry_uninstall(void)
{
    gsl_parse_layer_hook = NULL;
    gsl_weights_state_uninstall();
}

layer gsl_registry_parse(char *cfg, char *type, list *options, int index, int batch, int inputs, int h, int w, int c,
                         network *net)
{
    layer l = {0};
    char err[GSL_ERRLEN] = "";
    char name[64];
    /* Darknet passes the section header with its brackets: "[snap]". */
    size_t len = strlen(type);
    if (len >= 2 && type[0] == '[' && type[len - 1] == ']' && len - 2 < sizeof name) {
        memcpy(name, type + 1, len - 2);
        name[len - 2] = 0;
    } else {
        snprintf(name, sizeof name, "%s", type);
    }
    int i = registry_index(name);
    if (i < 0) {
        fprintf(stderr, "\n%s: layer %d [%s]: unknown section type (neither Darknet nor the gsl plugin has it)\n",
                cfg, index, name);
        exit(1);
    }
    gsl_section sec = {cfg, name, index, options, batch, inputs, h, w, c, net};
    if (registry[i].parse(&sec, &l, err) != 0) {
        fprintf(stderr, "\n%s: layer %d [%s]: %s\n", cfg, index, name, err[0] ? err : "invalid section");
        exit(1);
    }
    registry[i].forward = l.forward;
    return l;
}

int gsl_fail(char *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, GSL_ERRLEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* Finds a key and marks it used (so Darknet's option_unused stays quiet). NULL when absent. */
static const char *opt_get(const gsl_section *sec, const char *key)
{
    return option_find(sec->options, (char *)key);
}

int gsl_opt_int(const gsl_section *sec, const char *key, int def, int required, int lo, int hi, int *val, char *err)
{
    const char *s = opt_get(sec, key);
    if (!s) {
        if (required) { gsl_fail(err, "key '%s' is required", key); return -1; }
        *val = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno == ERANGE || v < INT_MIN || v > INT_MAX) {
        gsl_fail(err, "key '%s': '%s' is not an integer", key, s);
        return -1;
    }
    if (v < lo || v > hi) {
        gsl_fail(err, "key '%s': %ld is out of range [%d, %d]", key, v, lo, hi);
        return -1;
    }
    *val = (int)v;
    return 0;
}

int gsl_opt_float(const gsl_section *sec, const char *key, float def, int required, float lo, float hi, float *val,
                  char *err)
{
    const char *s = opt_get(sec, key);
    if (!s) {
        if (required) { gsl_fail(err, "key '%s' is required", key); return -1; }
        *val = def;
        return 0;
    }
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno == ERANGE || !isfinite(v)) {
        gsl_fail(err, "key '%s': '%s' is not a finite number", key, s);
        return -1;
    }
    if (v < lo || v > hi) {
        gsl_fail(err, "key '%s': %g is out of range [%g, %g]", key, v, lo, hi);
        return -1;
    }
    *val = v;
    return 0;
}

int gsl_opt_enum(const gsl_section *sec, const char *key, const char *def, const char *const *choices, int *val,
                 char *err)
{
    const char *s = opt_get(sec, key);
    if (!s) {
        if (!def) { gsl_fail(err, "key '%s' is required", key); return -1; }
        s = def;
    }
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) { *val = i; return 0; }
    char list_[256] = "";
    for (int i = 0; choices[i]; i++) {
        strncat(list_, i ? ", " : "", sizeof list_ - strlen(list_) - 1);
        strncat(list_, choices[i], sizeof list_ - strlen(list_) - 1);
    }
    gsl_fail(err, "key '%s': unknown value '%s' (expected one of: %s)", key, s, list_);
    return -1;
}

/* Keys that parse_network_cfg reads for every layer after the layer's own parser. */
static const char *const darknet_generic_keys[] = {"truth", "onlyforward", "stopbackward", "dontsave", "dontload",
                                                   "numload", "dontloadscales", "learning_rate", "smooth", NULL};

static int in_list(const char *k, const char *const *l)
{
    for (int i = 0; l && l[i]; i++)
        if (strcmp(k, l[i]) == 0) return 1;
    return 0;
}

int gsl_opt_check_unknown(const gsl_section *sec, const char *const *known, char *err)
{
    for (node *n = sec->options->front; n; n = n->next) {
        kvp *p = (kvp *)n->val;
        for (node *m = sec->options->front; m != n; m = m->next)
            if (!strcmp(((kvp *)m->val)->key, p->key)) {
                gsl_fail(err, "key '%s': given twice (Darknet would use the first, %s)", p->key, ((kvp *)m->val)->val);
                return -1;
            }
        if (!in_list(p->key, known) && !in_list(p->key, darknet_generic_keys)) {
            char list_[256] = "";
            for (int i = 0; known && known[i]; i++) {
                strncat(list_, i ? ", " : "", sizeof list_ - strlen(list_) - 1);
                strncat(list_, known[i], sizeof list_ - strlen(list_) - 1);
            }
            gsl_fail(err, "key '%s': unknown key (this section takes: %s)", p->key, list_);
            return -1;
        }
    }
    return 0;
}
