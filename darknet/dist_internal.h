/* Shared by darknet/dist.c, dist_single.c and dist_mpi.c; not for other files. */
#ifndef GSL_DIST_INTERNAL_H
#define GSL_DIST_INTERNAL_H

#include "gsl_dist.h"

/* How many ranks a launcher started (mpirun, PMI, srun) and which variable said so; 0 when none. */
int gsl_dist__launcher_ranks(const char **who);
/* GSL_DIST, GSL_DIST_TIMEOUT, GSL_DIST_DEBUG, GSL_DIST_PROFILE into d; *force = GSL_DIST (-1 unset). 0, or -1 with
 * err. */
int gsl_dist__read_env(gsl_dist *d, int *force, char *err);
/* The start of every gsl_dist_init: d as one process (rank 0 of 1), the environment read, and the ranks a launcher
 * started (*ranks, *who as gsl_dist__launcher_ranks). 0, or -1 with err. */
int gsl_dist__begin(gsl_dist *d, int *force, int *ranks, const char **who, char *err);

#endif
