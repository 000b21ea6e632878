/* CUDA helpers shared by the plugin layers: checking macros for every CUDA runtime and cuBLAS call, the launch
 * check, and GSL_HD, which marks the small per-element functions that the CPU path and the CUDA kernels share (so
 * the kernels compute exactly what the CPU reference computes).
 *
 * Usable from C (gcc, GPU builds define GPU and see the CUDA headers) and from CUDA C++ (nvcc). Without GPU only
 * GSL_HD is defined. A failing call is a runtime error of the device, not of user input: it prints the call, the
 * file and line and the CUDA message, then exits with status 1. Define GSL_CUDA_SYNC (or set the environment
 * variable GSL_CUDA_SYNC=1) to synchronise after every launch, so that the kernel that faults is the one named.
 * GSL_INVARIANT is the layers' check of an internal invariant. */
#ifndef GSL_CUDA_H
#define GSL_CUDA_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __CUDACC__
#define GSL_HD __host__ __device__
#else
#define GSL_HD
#endif

/* Float arithmetic of the shared per-element functions: on the device each operation is rounded on its own (no
 * fused multiply-add), as the CPU build (C11, no FMA contraction) does, so both paths give the same bits. */
#ifdef __CUDA_ARCH__
#define GSL_FMUL(a, b) __fmul_rn((a), (b))
#define GSL_FADD(a, b) __fadd_rn((a), (b))
#define GSL_FSUB(a, b) __fsub_rn((a), (b))
#else
#define GSL_FMUL(a, b) ((a) * (b))
#define GSL_FADD(a, b) ((a) + (b))
#define GSL_FSUB(a, b) ((a) - (b))
#endif

/* An internal invariant of a layer (never user input): prints its location and aborts. */
#define GSL_INVARIANT(cond)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#ifdef GPU
#include <cuda_runtime.h>
#include <cublas_v2.h>

static inline const char *gsl_cublas_status_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
    }
}

static inline void gsl_cuda_check_(cudaError_t e, const char *call, const char *file, int line)
{
    if (e != cudaSuccess) {
        fprintf(stderr, "CUDA error at %s:%d: %s: %s (%s)\n", file, line, call, cudaGetErrorString(e),
                cudaGetErrorName(e));
        fflush(stderr);
        exit(1);
    }
}

static inline void gsl_cublas_check_(cublasStatus_t s, const char *call, const char *file, int line)
{
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cuBLAS error at %s:%d: %s: %s (%d)\n", file, line, call, gsl_cublas_status_name(s), (int)s);
        fflush(stderr);
        exit(1);
    }
}

static inline int gsl_cuda_sync_launches(void)
{
#ifdef GSL_CUDA_SYNC
    return 1;
#else
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("GSL_CUDA_SYNC");
        v = e && *e && *e != '0';
    }
    return v;
#endif
}

/* After a kernel launch: the launch error, and in a debug run the kernel's own error. */
static inline void gsl_launch_check_(const char *kernel, const char *file, int line)
{
    gsl_cuda_check_(cudaGetLastError(), kernel, file, line);
    if (gsl_cuda_sync_launches()) gsl_cuda_check_(cudaDeviceSynchronize(), kernel, file, line);
}

/* cudaMalloc of `bytes` zeroed bytes (a layer's device buffer). */
static inline void *gsl_cuda_zalloc_(size_t bytes, const char *file, int line)
{
    void *p = NULL;
    gsl_cuda_check_(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc", file, line);
    gsl_cuda_check_(cudaMemset(p, 0, bytes ? bytes : 1), "cudaMemset", file, line);
    return p;
}

#define GSL_CUDA_CHECK(call) gsl_cuda_check_((call), #call, __FILE__, __LINE__)
#define GSL_CUBLAS_CHECK(call) gsl_cublas_check_((call), #call, __FILE__, __LINE__)
#define GSL_LAUNCH_CHECK(kernel) gsl_launch_check_(kernel, __FILE__, __LINE__)
#define GSL_CUDA_ZALLOC(bytes) gsl_cuda_zalloc_((bytes), __FILE__, __LINE__)

#endif /* GPU */
#endif
