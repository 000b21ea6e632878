/* A batch loader that runs ahead of its consumer: a background thread produces jobs 0, 1, ... njobs-1 in order (each
 * fills an input buffer and a truth buffer, e.g. a batch decoded from image files and augmented) into a ring of
 * `depth` slots, while the caller trains or embeds the batch before. Jobs come back in order; a job's error comes back
 * when the caller reaches that job. */
#ifndef GSL_LOADER_H
#define GSL_LOADER_H

#include <stddef.h>

/* Fills x (xfloats) and y (yfloats) for job `job`. Runs on the loader's thread. Returns 0, or -1 with err. */
typedef int (*gsl_loader_fn)(void *ctx, long job, float *x, float *y, char *err);

typedef struct gsl_loader gsl_loader;

/* Starts the thread. depth >= 2 (one slot consumed while the others fill). NULL with err on failure. */
gsl_loader *gsl_loader_start(gsl_loader_fn fn, void *ctx, long njobs, size_t xfloats, size_t yfloats, int depth,
                             char *err);
/* Waits for the next job's buffers (valid until the next call or gsl_loader_stop). Returns 0, or -1 with the job's
 * error (or "no more jobs"). */
int gsl_loader_next(gsl_loader *L, float **x, float **y, char *err);
/* Seconds the caller has spent waiting in gsl_loader_next for jobs not ready yet (the loader is the bottleneck when
 * this is a large share of the caller's time). Call from the caller's thread. */
double gsl_loader_wait_s(const gsl_loader *L);
/* Stops the thread (a job in progress finishes first) and frees everything. NULL is a no-op. */
void gsl_loader_stop(gsl_loader *L);

#endif
