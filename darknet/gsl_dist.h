/* Data-parallel training across processes: one process (rank) per GPU, or per node on CPU, started by mpirun or
 * Slurm's srun. Every rank holds the whole network, takes its shard of each global batch, and the weight updates
 * are summed over the ranks before each update (MPI on CPU buffers; NCCL on GPU buffers, its communicator
 * bootstrapped through MPI), so every rank applies the identical update and stays bit-identical to the others.
 *
 * Which build does what (see docs/cluster.md):
 *   without MPI (the plain bin/darknet): gsl_dist_init finds no launcher and the run is single-process; started as
 *     one of several ranks it refuses (each would train alone and overwrite the others' files);
 *   with MPI (make MPI=1, or build/<cfg>/darknet-mpi): MPI_Init only when a launcher started it with more than one
 *     rank (OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_STEP_NUM_TASKS) or GSL_DIST=1; a plain run makes no MPI call.
 *
 * Exactness: with R ranks of `batch` x `subdivisions` samples each, a step equals one process whose cfg says
 * batch = batch*R and subdivisions = subdivisions*R (Darknet's meaning of a batch: gradients of the sub-batches
 * summed, one update scaled by the whole batch). Each rank scales its momentum buffers (weight_updates, which hold
 * momentum * previous update) by 1/R before its backward pass and the buffers are summed after it, giving momentum
 * + the gradient of the whole global batch; the layers' own update functions then run with update_args.batch =
 * batch*subdivisions*R. Batch-norm rolling statistics are averaged over the ranks at every epoch end (their update
 * is linear, so the mean equals averaging every step); the batch statistics used in training are each rank's own
 * (no synchronised batch norm), so nets with batch_normalize match the combined batch only approximately.
 *
 * Failure: every collective runs under a watchdog. A collective that has not completed after GSL_DIST_TIMEOUT
 * seconds (default 300) prints which one, on which rank, and ends the whole job (MPI_Abort); a failed collective
 * (MPI_ERRORS_RETURN) does the same at once. A rank that dies is also noticed by the launcher (mpirun, or srun
 * --kill-on-bad-exit), which stops the others; they print that they were terminated.
 *
 * Environment: GSL_DIST=0|1 (never / always initialise MPI), GSL_DIST_TIMEOUT=seconds, GSL_DIST_BACKEND=nccl|mpi
 * (GPU buffers: NCCL, or staged through host memory and MPI), GSL_DIST_DEBUG=1 (each rank prints its pid and, at
 * every epoch end, checksums of its weights, optimizer state and codebooks to stderr), GSL_DIST_PROFILE=1 (a
 * barrier before each gradient all-reduce, so that its time splits into waiting for the slowest rank and the
 * transfer itself; for benchmarks). */
#ifndef GSL_DIST_H
#define GSL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "darknet.h"
#include "gslq.h"

typedef struct gsl_dist {
    int rank, size;             /* 0 and 1 when not distributed */
    int local_rank, local_size; /* among the ranks on this node (selects the GPU) */
    int on;                     /* MPI was initialised by gsl_dist_init */
    int debug;                  /* GSL_DIST_DEBUG */
    int profile;                /* GSL_DIST_PROFILE */
    double timeout_s;           /* GSL_DIST_TIMEOUT */
    /* gradient all-reduce since the caller last zeroed these: seconds (pack, reduce, unpack, and waiting for the
     * slowest rank unless profiling), seconds waiting for the slowest rank (profiling only), bytes per rank,
     * updates */
    double comm_s, wait_s;
    double comm_bytes;
    long comm_steps;
    void *impl;                 /* MPI/NCCL state, NULL when not distributed */
} gsl_dist;

/* Decides whether this process is one of several ranks and, if so, initialises MPI (MPI_THREAD_MULTIPLE, errors
 * returned, not fatal), the watchdog and a SIGTERM notice. Returns 0, or -1 with a message (GSL_DATA_ERRLEN). */
int gsl_dist_init(gsl_dist *d, char *err);
/* A bounded barrier, then MPI_Finalize (no-op when not distributed). */
void gsl_dist_finalize(gsl_dist *d);
/* Ends the whole job with this exit code (MPI_Abort); returns only when not distributed. */
void gsl_dist_abort(gsl_dist *d, int code);

/* Checks that every layer with weights is one whose update buffers are known here (convolutional,
 * deconvolutional, connected, batchnorm), sizes the all-reduce, and sets up NCCL for a network on a GPU. */
int gsl_dist_prepare(gsl_dist *d, network *net, char *err);
/* "nccl", "mpi" (host buffers), or "none" (single process). Valid after gsl_dist_prepare. */
const char *gsl_dist_backend(const gsl_dist *d);

/* One forward/backward pass on net->input/net->truth, as train_network_datum; every `subdivisions`-th call
 * all-reduces the updates and applies them with the global batch. Returns the pass's cost. */
float gsl_dist_train_datum(gsl_dist *d, network *net);

/* Rows [*lo, *hi) of n that this rank handles. */
void gsl_dist_share(const gsl_dist *d, int n, int *lo, int *hi);

/* Collectives. A failure or timeout ends the job (with a message naming `what`), so these do not return errors.
 *   sum_doubles : v (n) summed over the ranks, on every rank
 *   bcast       : rank 0's bytes to every rank
 *   same_u32    : 1 when every rank passed the same value
 *   barrier     : every rank reached this point */
void gsl_dist_sum_doubles(gsl_dist *d, double *v, int n, const char *what);
void gsl_dist_bcast(gsl_dist *d, void *buf, size_t bytes, const char *what);
int gsl_dist_same_u32(gsl_dist *d, uint32_t v, const char *what);
void gsl_dist_barrier(gsl_dist *d, const char *what);

/* libgslq's distributed training over the ranks (MPI_Allreduce of doubles; a failure ends the job like every
 * collective here): the codebook rebuild trains on each rank's rows, k-means statistics summed every iteration. */
void gsl_dist_gslq_comm(gsl_dist *d, gslq_comm *c);

/* Averages the batch-norm rolling statistics over the ranks. */
void gsl_dist_average_stats(gsl_dist *d, network *net);
/* Copies rank 0's weights, momentum buffers and rolling statistics to every rank. */
void gsl_dist_bcast_net(gsl_dist *d, network *net);
/* CRC-32 of the weights (biases, weights, scales, rolling statistics) and of the momentum buffers, read back from
 * the GPU first for a network on one. */
void gsl_dist_net_crc(network *net, uint32_t *weights_crc, uint32_t *optim_crc);

#endif
