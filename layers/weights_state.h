/* The plugin layers' state (codebooks and their rebuild schedules) inside Darknet's .weights files
 * (layers/weights_state.c). */
#ifndef GSL_WEIGHTS_STATE_H
#define GSL_WEIGHTS_STATE_H

#include <stdio.h>

#include "darknet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The hooks darknet/hook.sh adds to upstream's save_weights_upto and load_weights_upto (set by
 * gsl_registry_install). The loader stops the process with a message on a damaged state: it cannot report. */
void gsl_weights_state_save(network *net, FILE *fp, int cutoff);
void gsl_weights_state_load(network *net, FILE *fp, char *filename, int start, int cutoff);
void gsl_weights_state_install(void);
void gsl_weights_state_uninstall(void);
/* Checks the state a weights file carries for this network, without installing it: *bytes is its size with the
 * trailer (0 when the file has none). Returns 0, or -1 with a message in err (GSL_ERRLEN bytes). */
int gsl_weights_state_check(network *net, const char *path, long long *bytes, char *err);

#ifdef __cplusplus
}
#endif
#endif
