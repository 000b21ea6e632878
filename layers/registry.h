/* Plugin layer registry: cfg section name -> parse function.
 *
 * Darknet's parse_network_cfg calls gsl_parse_layer_hook (added by darknet/hook.sh) for any section it does not
 * know. gsl_registry_install() sets that hook: a registered section is parsed by its parser; anything else is a
 * fatal error naming the cfg file and the section (stock Darknet would carry on with an empty layer).
 *
 * Parsers read their keys strictly through the gsl_opt_* helpers below: a malformed or out-of-range value, a
 * missing required key or an unknown key is an error whose message names the key. */
#ifndef GSL_REGISTRY_H
#define GSL_REGISTRY_H

#include <stddef.h>
#include "darknet.h"

/* Everything a parser may need about the section being parsed. */
typedef struct gsl_section {
    const char *cfg;    /* path of the cfg file */
    const char *type;   /* section name without brackets, e.g. "snap" */
    int index;          /* layer index: 0 is the first section after [net], as in Darknet's layer table */
    list *options;      /* Darknet's key/value list (kvp) */
    int batch;          /* net->batch */
    int inputs;         /* outputs of the previous layer (per sample) */
    int h, w, c;        /* shape of the previous layer's output */
    network *net;       /* the network being built (net->n layers in all) */
} gsl_section;

/* The project's one error convention (layers/ and darknet/ alike): a message naming the file, section and key is
 * written into the caller's buffer of GSL_ERRLEN bytes and -1 is returned (libgslq's gslq_error carries the same
 * size). err may be NULL. */
#define GSL_ERRLEN 1024
int gsl_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills *out and returns 0, or writes a message to err (GSL_ERRLEN bytes) and returns non-zero. The message need
 * not repeat the file or section: the registry prefixes both. */
typedef int (*gsl_layer_parser)(const gsl_section *sec, layer *out, char *err);

/* Registers a section name. Returns 0, or -1 when the table is full or the name is taken. */
int gsl_registry_add(const char *type, gsl_layer_parser parse);

/* Registers the project's own layers (snap, similarity, quantloss) and installs Darknet's parse hook.
 * Idempotent. */
void gsl_registry_install(void);

/* Removes the hook: Darknet parses as stock again (used by the tests). */
void gsl_registry_uninstall(void);

/* The parse function registered for `type`, or NULL. */
gsl_layer_parser gsl_registry_find(const char *type);

/* Section name of a parsed layer: a registered plugin type ("snap") or Darknet's own name ("convolutional"). */
const char *gsl_layer_name(const layer *l);

/* The hook itself (exposed for tests); exits with status 1 after printing "CFG: layer N [type]: message". */
layer gsl_registry_parse(char *cfg, char *type, list *options, int index, int batch, int inputs, int h, int w,
                         int c, network *net);

/* Strict key readers. Each returns 0 on success or -1 with a message "key 'name': ..." in err.
 * When the key is absent, *val = def and 0 is returned, unless `required`, which makes absence an error. */
int gsl_opt_int(const gsl_section *sec, const char *key, int def, int required, int lo, int hi, int *val, char *err);
int gsl_opt_float(const gsl_section *sec, const char *key, float def, int required, float lo, float hi, float *val,
                  char *err);
/* `choices` is NULL-terminated; *val is the index of the match. */
int gsl_opt_enum(const gsl_section *sec, const char *key, const char *def, const char *const *choices, int *val,
                 char *err);
/* Rejects keys that are neither in `known` (NULL-terminated) nor among Darknet's generic per-layer keys. */
int gsl_opt_check_unknown(const gsl_section *sec, const char *const *known, char *err);

#endif
