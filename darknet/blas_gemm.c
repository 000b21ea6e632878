/* Darknet's gemm/gemm_cpu, backed by OpenBLAS.
 *
 * Linked before libdarknet (whose own gemm and gemm_cpu are made weak), so every Darknet layer that multiplies on
 * the CPU lands here. Same contract as src/gemm.c: row-major, C = ALPHA op(A) op(B) + BETA C. */
#include <cblas.h>

void gemm_cpu(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float BETA,
              float *C, int ldc);

void gemm(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float BETA,
          float *C, int ldc)
{
    gemm_cpu(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc);
}

void gemm_cpu(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float BETA,
              float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* nothing to add; Darknet still scales C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(long)i * ldc + j] *= BETA;
        return;
    }
    cblas_sgemm(CblasRowMajor, TA ? CblasTrans : CblasNoTrans, TB ? CblasTrans : CblasNoTrans, M, N, K, ALPHA, A,
                lda, B, ldb, BETA, C, ldc);
}
