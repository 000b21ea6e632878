/* Strict reading of a cfg by Darknet's parser (darknet/upstream_strict.c). */
#ifndef GSL_UPSTREAM_STRICT_H
#define GSL_UPSTREAM_STRICT_H

/* Around parse_network_cfg(cfg): a key no layer reads, or an activation Darknet does not know, stops the process with
 * a message naming cfg, the layer and the key (exit status 1). Weak: a build that links upstream's library without
 * the overrides (the fuzz targets) has neither, and callers skip them. */
__attribute__((weak)) void gsl_cfg_strict_begin(const char *cfg);
__attribute__((weak)) void gsl_cfg_strict_end(void);

#endif
