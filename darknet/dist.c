/* Distributed training, the part every build shares: which launcher started this process, the environment's
 * settings, each rank's share of a set, and a checksum of a network's state (see gsl_dist.h; the single-process
 * and MPI/NCCL variants are darknet/dist_single.c and darknet/dist_mpi.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "gsl_data.h"
#include "gslq.h"
#include "net_buffers.h"

static void crc_fn(gsl_buf b, void *ctx)
{
    gsl_buf_pull(b, NULL);
    *(uint32_t *)ctx = gslq_crc32(*(uint32_t *)ctx, b.cpu, b.n * sizeof(float));
}

void gsl_dist_net_crc(network *net, uint32_t *weights_crc, uint32_t *optim_crc)
{
    gsl_net_set_device(net);
    *weights_crc = *optim_crc = 0;
    gsl_net_each_buffer(net, GSL_BUF_PARAMS | GSL_BUF_STATS, crc_fn, weights_crc);
    gsl_net_each_buffer(net, GSL_BUF_GRAD, crc_fn, optim_crc);
}

void gsl_dist_share(const gsl_dist *d, int n, int *lo, int *hi)
{
    *lo = (int)((long long)n * d->rank / d->size);
    *hi = (int)((long long)n * (d->rank + 1) / d->size);
}

/* Reads GSL_DIST / GSL_DIST_TIMEOUT / GSL_DIST_DEBUG, and how many ranks a launcher started (0: none). */
int gsl_dist__launcher_ranks(const char **who)
{
    /* mpirun (Open MPI), PMI launchers (MPICH's hydra, srun --mpi=pmi2), srun */
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && end != v && !*end && n > 0) {
            *who = vars[i];
            return (int)n;
        }
    }
    *who = NULL;
    return 0;
}

int gsl_dist__read_env(gsl_dist *d, int *force, char *err)
{
    const char *f = getenv("GSL_DIST"), *t = getenv("GSL_DIST_TIMEOUT"), *g = getenv("GSL_DIST_DEBUG"),
               *pr = getenv("GSL_DIST_PROFILE");
    *force = -1;
    if (f && *f) {
        if (strcmp(f, "0") && strcmp(f, "1")) return gsl_fail(err, "GSL_DIST must be 0 or 1, got '%s'", f);
        *force = f[0] - '0';
    }
    d->timeout_s = 300;
    if (t && *t) {
        char *end;
        errno = 0;
        double x = strtod(t, &end);
        if (end == t || *end || errno || !(x > 0) || !isfinite(x))
            return gsl_fail(err, "GSL_DIST_TIMEOUT must be a positive number of seconds, got '%s'", t);
        d->timeout_s = x;
    }
    d->debug = g && *g && strcmp(g, "0") != 0;
    d->profile = pr && *pr && strcmp(pr, "0") != 0;
    return 0;
}


int gsl_dist__begin(gsl_dist *d, int *force, int *ranks, const char **who, char *err)
{
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    if (gsl_dist__read_env(d, force, err)) return -1;
    *ranks = gsl_dist__launcher_ranks(who);
    return 0;
}
