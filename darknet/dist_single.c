/* Distributed training in the plain bin/darknet, built without MPI: a single process, which refuses to run as one of
 * several ranks (each would train alone and overwrite the others' files). */
#include <string.h>

#include "dist_internal.h"
#include "gsl_data.h"

int gsl_dist_init(gsl_dist *d, char *err)
{
    int force, n;
    const char *who;
    if (gsl_dist__begin(d, &force, &n, &who, err)) return -1;
    if (force == 1)
        return gsl_fail(err, "GSL_DIST=1, but this binary was built without MPI (build with make MPI=1, or use "
                         "build/<config>/darknet-mpi)");
    if (force != 0 && n > 1)
        return gsl_fail(err, "started as one of %d ranks (%s), but this binary was built without MPI, so each rank "
                         "would train alone and overwrite the others' files: build with make MPI=1 (or use "
                         "build/<config>/darknet-mpi), or set GSL_DIST=0 to run independent copies on purpose",
                    n, who);
    return 0;
}

void gsl_dist_finalize(gsl_dist *d) { (void)d; }
void gsl_dist_abort(gsl_dist *d, int code) { (void)d; (void)code; }
int gsl_dist_prepare(gsl_dist *d, network *net, char *err) { return 0; }
const char *gsl_dist_backend(const gsl_dist *d) { return "none"; }
float gsl_dist_train_datum(gsl_dist *d, network *net) { return train_network_datum(net); }
void gsl_dist_sum_doubles(gsl_dist *d, double *v, int n, const char *what) {}
void gsl_dist_gslq_comm(gsl_dist *d, gslq_comm *c) { *c = (gslq_comm){0, 1, NULL, NULL}; }
void gsl_dist_bcast(gsl_dist *d, void *buf, size_t bytes, const char *what) {}
int gsl_dist_same_u32(gsl_dist *d, uint32_t v, const char *what) { return 1; }
void gsl_dist_barrier(gsl_dist *d, const char *what) {}
void gsl_dist_average_stats(gsl_dist *d, network *net) {}
void gsl_dist_bcast_net(gsl_dist *d, network *net) {}

