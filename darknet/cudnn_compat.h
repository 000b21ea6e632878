/* cuDNN 8 and 9 for upstream Darknet's convolutions (CUDNN=1 builds; the Makefile force-includes this header into
 * upstream's sources, which stay unedited). Upstream's cudnn_convolutional_setup picks each convolution's algorithms
 * with cudnnGetConvolution{Forward,BackwardData,BackwardFilter}Algorithm and a workspace limit, queries cuDNN 8
 * removed. They are provided here on the queries cuDNN 8 and 9 have: of the algorithms cuDNN's heuristics rank
 * (cudnnGetConvolution*Algorithm_v7, ordered by expected time), the first that succeeds within the limit.
 *
 * The forward query also sets the convolution's math type to CUDNN_FMA_MATH (FP32 arithmetic, no TF32 tensor-core
 * conversions), so results agree with the non-cuDNN path to float rounding; it is the first query upstream makes
 * after setting the descriptor. GSL_CUDNN_VERBOSE=1 prints each layer's choice on stderr. A failure ends the process
 * with status 1 and cuDNN's message (upstream ignores the status and would run with no algorithm). */
#ifndef GSL_CUDNN_COMPAT_H
#define GSL_CUDNN_COMPAT_H

#ifdef CUDNN
#include <stdio.h>
#include <stdlib.h>

#include <cudnn.h>

#if CUDNN_MAJOR >= 8
#define CUDNN_CONVOLUTION_FWD_SPECIFY_WORKSPACE_LIMIT 2
#define CUDNN_CONVOLUTION_BWD_DATA_SPECIFY_WORKSPACE_LIMIT 2
#define CUDNN_CONVOLUTION_BWD_FILTER_SPECIFY_WORKSPACE_LIMIT 2

static inline void gsl_cudnn_check(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return;
    fprintf(stderr, "darknet: cuDNN %s: %s\n", what, cudnnGetErrorString(s));
    exit(1);
}

static inline void gsl_cudnn_report(const char *which, int algo, size_t memory)
{
    const char *v = getenv("GSL_CUDNN_VERBOSE");
    if (v && *v && *v != '0')
        fprintf(stderr, "cuDNN %d: %s algorithm %d (workspace %zu bytes)\n", (int)cudnnGetVersion(), which, algo,
                memory);
}

/* The first of n ranked results (status, memory fields) that succeeded within limit, or -1. */
#define GSL_CUDNN_PICK(perf, n, limit, out)                                                                         \
    do {                                                                                                            \
        (out) = -1;                                                                                                 \
        for (int i_ = 0; i_ < (n) && (out) < 0; i_++)                                                               \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && (perf)[i_].memory <= (limit)) (out) = i_;             \
    } while (0)

static inline cudnnStatus_t cudnnGetConvolutionForwardAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                                cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c,
                                                                cudnnTensorDescriptor_t y, int preference,
                                                                size_t limit, cudnnConvolutionFwdAlgo_t *algo)
{
    (void)preference;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0, k;
    gsl_cudnn_check(cudnnSetConvolutionMathType(c, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    gsl_cudnn_check(cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, c, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
                    "cudnnGetConvolutionForwardAlgorithm_v7");
    GSL_CUDNN_PICK(perf, n, limit, k);
    if (k < 0) gsl_cudnn_check(CUDNN_STATUS_NOT_SUPPORTED, "no forward algorithm within the workspace limit");
    *algo = perf[k].algo;
    gsl_cudnn_report("forward", (int)perf[k].algo, perf[k].memory);
    return CUDNN_STATUS_SUCCESS;
}

static inline cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                                     cudnnTensorDescriptor_t dy,
                                                                     cudnnConvolutionDescriptor_t c,
                                                                     cudnnTensorDescriptor_t dx, int preference,
                                                                     size_t limit, cudnnConvolutionBwdDataAlgo_t *algo)
{
    (void)preference;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0, k;
    gsl_cudnn_check(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, dy, c, dx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                &n, perf),
                    "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    GSL_CUDNN_PICK(perf, n, limit, k);
    if (k < 0) gsl_cudnn_check(CUDNN_STATUS_NOT_SUPPORTED, "no backward-data algorithm within the workspace limit");
    *algo = perf[k].algo;
    gsl_cudnn_report("backward-data", (int)perf[k].algo, perf[k].memory);
    return CUDNN_STATUS_SUCCESS;
}

static inline cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                                       cudnnTensorDescriptor_t dy,
                                                                       cudnnConvolutionDescriptor_t c,
                                                                       cudnnFilterDescriptor_t dw, int preference,
                                                                       size_t limit,
                                                                       cudnnConvolutionBwdFilterAlgo_t *algo)
{
    (void)preference;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0, k;
    gsl_cudnn_check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, dy, c, dw,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
                    "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    GSL_CUDNN_PICK(perf, n, limit, k);
    if (k < 0) gsl_cudnn_check(CUDNN_STATUS_NOT_SUPPORTED, "no backward-filter algorithm within the workspace limit");
    *algo = perf[k].algo;
    gsl_cudnn_report("backward-filter", (int)perf[k].algo, perf[k].memory);
    return CUDNN_STATUS_SUCCESS;
}
#endif /* CUDNN_MAJOR >= 8 */
#endif /* CUDNN */
#endif
