/* The one walker over a network's float buffers (darknet/net_buffers.c), for the checkpoints' optimizer state and the
 * distributed all-reduce alike: layer after layer in a fixed order, each buffer with its host array and, for a network
 * on a GPU, its device array. */
#ifndef GSL_NET_BUFFERS_H
#define GSL_NET_BUFFERS_H

#include <stddef.h>

#include "darknet.h"

/* GRAD   momentum/gradient buffers (weight_updates, bias_updates, scale_updates)
 * STATS  batch-norm rolling statistics (rolling_mean, rolling_variance)
 * PARAMS weights, biases, scales */
enum { GSL_BUF_GRAD = 1, GSL_BUF_STATS = 2, GSL_BUF_PARAMS = 4 };
typedef struct gsl_buf {
    float *cpu, *gpu; /* gpu: NULL unless the network lives on a GPU */
    size_t n;
} gsl_buf;
typedef void (*gsl_buf_fn)(gsl_buf b, void *ctx);

/* Calls fn on every buffer of the kinds asked for (an OR of GSL_BUF_*), in layer order and, within a layer,
 * weights, biases, scales (GRAD and PARAMS) then mean, variance (STATS). Convolutional, deconvolutional, connected
 * and batch-norm layers; others hold nothing trained. */
void gsl_net_each_buffer(network *net, int kinds, gsl_buf_fn fn, void *ctx);
/* 1 when the walker knows the layer's type (0: a type with no trained buffers, or one it does not handle). */
int gsl_net_layer_handled(const layer *l);
/* The network lives on a GPU (GPU builds); selects its device. */
int gsl_net_on_gpu(const network *net);
void gsl_net_set_device(network *net);
/* Host <- device and device <- host copies of one buffer (no-ops without a device array). */
void gsl_buf_pull(gsl_buf b, void *ctx);
void gsl_buf_push(gsl_buf b, void *ctx);

#endif
