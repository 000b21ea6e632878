/* The batch loader (loader.h): one producer thread, a ring of slots, a mutex and two condition variables. */
#include "loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io.h"

typedef struct slot {
    float *x, *y;
    int rc;
    char err[GSL_DATA_ERRLEN];
} slot;

struct gsl_loader {
    gsl_loader_fn fn;
    void *ctx;
    long njobs;
    int depth;
    slot *slots;
    long produced;  /* jobs finished by the thread */
    long consumed;  /* jobs handed to the caller; the slot of job consumed-1 is in use until the next call */
    int stop;
    int exited;     /* the thread has returned (all jobs done, an error, or stopped) */
    double wait_s;  /* the caller's time blocked in gsl_loader_next (the caller's thread alone writes it) */
    pthread_mutex_t mu;
    pthread_cond_t ready, space;
    pthread_t thread;
};

static void *run(void *arg)
{
    gsl_loader *L = arg;
    for (long j = 0; j < L->njobs; j++) {
        pthread_mutex_lock(&L->mu);
        /* the slot of job j is free once job j - depth has been handed out and the caller moved past it */
        while (!L->stop && j - L->consumed >= L->depth - 1) pthread_cond_wait(&L->space, &L->mu);
        int stop = L->stop;
        pthread_mutex_unlock(&L->mu);
        if (stop) break;
        slot *s = &L->slots[j % L->depth];
        s->err[0] = 0;
        s->rc = L->fn(L->ctx, j, s->x, s->y, s->err);
        pthread_mutex_lock(&L->mu);
        L->produced = j + 1;
        pthread_cond_signal(&L->ready);
        pthread_mutex_unlock(&L->mu);
        if (s->rc) break; /* the caller gets the error when it reaches this job */
    }
    pthread_mutex_lock(&L->mu);
    L->exited = 1;
    pthread_cond_signal(&L->ready);
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

gsl_loader *gsl_loader_start(gsl_loader_fn fn, void *ctx, long njobs, size_t xfloats, size_t yfloats, int depth,
                             char *err)
{
    if (depth < 2) depth = 2;
    gsl_loader *L = calloc(1, sizeof *L);
    if (!L || !(L->slots = calloc((size_t)depth, sizeof(slot)))) {
        free(L);
        gsl_fail(err, "out of memory for the batch loader");
        return NULL;
    }
    L->fn = fn; L->ctx = ctx; L->njobs = njobs; L->depth = depth;
    for (int i = 0; i < depth; i++) {
        L->slots[i].x = malloc(sizeof(float) * (xfloats ? xfloats : 1));
        L->slots[i].y = malloc(sizeof(float) * (yfloats ? yfloats : 1));
        if (!L->slots[i].x || !L->slots[i].y) {
            for (int k = 0; k <= i; k++) { free(L->slots[k].x); free(L->slots[k].y); }
            free(L->slots);
            free(L);
            gsl_fail(err, "out of memory for the batch loader's %d slots of %zu floats", depth, xfloats);
            return NULL;
        }
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->ready, NULL);
    pthread_cond_init(&L->space, NULL);
    if (pthread_create(&L->thread, NULL, run, L)) {
        for (int k = 0; k < depth; k++) { free(L->slots[k].x); free(L->slots[k].y); }
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->ready);
        pthread_cond_destroy(&L->space);
        free(L->slots);
        free(L);
        gsl_fail(err, "cannot start the batch loader's thread");
        return NULL;
    }
    return L;
}

int gsl_loader_next(gsl_loader *L, float **x, float **y, char *err)
{
    pthread_mutex_lock(&L->mu);
    long j = L->consumed;
    if (j >= L->njobs) {
        pthread_mutex_unlock(&L->mu);
        return gsl_fail(err, "batch loader: no job %ld (%ld jobs)", j, L->njobs);
    }
    L->consumed = j + 1; /* the previous job's slot is free now */
    pthread_cond_signal(&L->space);
    struct timespec a, b;
    int waits = L->produced <= j && !L->exited;
    if (waits) clock_gettime(CLOCK_MONOTONIC, &a);
    while (L->produced <= j && !L->exited) pthread_cond_wait(&L->ready, &L->mu);
    if (waits) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        L->wait_s += (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    }
    int have = L->produced > j;
    pthread_mutex_unlock(&L->mu);
    if (!have) return gsl_fail(err, "batch loader: stopped before job %ld (an earlier job failed)", j);
    slot *s = &L->slots[j % L->depth];
    if (s->rc) return gsl_fail(err, "%s", s->err);
    *x = s->x;
    *y = s->y;
    return 0;
}

double gsl_loader_wait_s(const gsl_loader *L) { return L ? L->wait_s : 0; }

void gsl_loader_stop(gsl_loader *L)
{
    if (!L) return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_signal(&L->space);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
    for (int k = 0; k < L->depth; k++) { free(L->slots[k].x); free(L->slots[k].y); }
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->ready);
    pthread_cond_destroy(&L->space);
    free(L->slots);
    free(L);
}
