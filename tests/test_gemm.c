/* The OpenBLAS-backed gemm (darknet/blas_gemm.c) against Darknet's own gemm kernels (src/gemm.c), which stay in
 * libdarknet under their names gemm_nn/nt/tn/tt: all four transpose cases, odd sizes, padded leading dimensions,
 * several alpha/beta. Without OpenBLAS (BLAS=0) gemm_cpu *is* Darknet's, and the test checks that too. */
#include "test.h"

void gemm_cpu(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float BETA,
              float *C, int ldc);
void gemm(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float BETA,
          float *C, int ldc);
void gemm_nn(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_nt(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_tn(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);
void gemm_tt(int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb, float *C, int ldc);

/* Darknet's gemm_cpu, step by step: scale C by BETA, then accumulate with the transpose-specific kernel. */
static void darknet_reference(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B,
                              int ldb, float BETA, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[i * ldc + j] *= BETA;
    if (!TA && !TB) gemm_nn(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else if (TA && !TB) gemm_tn(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else if (!TA && TB) gemm_nt(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
    else gemm_tt(M, N, K, ALPHA, A, lda, B, ldb, C, ldc);
}

/* Exact double-precision product, for a tolerance independent of both float implementations. */
static double exact(int TA, int TB, int K, float ALPHA, const float *A, int lda, const float *B, int ldb,
                    float BETA, float c0, int i, int j)
{
    double s = 0;
    for (int k = 0; k < K; k++) {
        double a = TA ? A[k * lda + i] : A[i * lda + k];
        double b = TB ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
    }
    return ALPHA * s + (double)BETA * c0;
}

static unsigned long long seed = 12345;

static int check_case(int TA, int TB, int M, int N, int K, float ALPHA, float BETA, int pad,
                      void (*fn)(int, int, int, int, int, float, float *, int, float *, int, float, float *, int))
{
    int lda = (TA ? M : K) + pad, ldb = (TB ? K : N) + pad, ldc = N + pad;
    int arows = TA ? K : M, brows = TB ? N : K;
    float *A = malloc(sizeof(float) * arows * lda), *B = malloc(sizeof(float) * brows * ldb);
    float *C0 = malloc(sizeof(float) * M * ldc), *C1 = malloc(sizeof(float) * M * ldc);
    float *C2 = malloc(sizeof(float) * M * ldc);
    if (!A || !B || !C0 || !C1 || !C2) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int i = 0; i < arows * lda; i++) A[i] = test_randf(&seed, -1, 1);
    for (int i = 0; i < brows * ldb; i++) B[i] = test_randf(&seed, -1, 1);
    for (int i = 0; i < M * ldc; i++) C0[i] = C1[i] = C2[i] = test_randf(&seed, -1, 1);
    fn(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C1, ldc);
    darknet_reference(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C2, ldc);
    int bad = 0;
    for (int i = 0; i < M && bad < 3; i++) {
        for (int j = 0; j < ldc && bad < 3; j++) {
            int at = i * ldc + j;
            if (j >= N) { /* padding columns must be untouched */
                if (C1[at] != C0[at]) { bad++; CHECKF(0, "padding C[%d][%d] changed", i, j); }
                continue;
            }
            double want = exact(TA, TB, K, ALPHA, A, lda, B, ldb, BETA, C0[at], i, j);
            double tol = 1e-5 * (K + 1) * (fabs(ALPHA) + fabs(BETA) + 1);
            if (fabs(C1[at] - want) > tol || fabs(C2[at] - want) > tol || fabs(C1[at] - C2[at]) > tol) {
                bad++;
                CHECKF(0, "TA=%d TB=%d M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] ours %.7g darknet %.7g exact %.7g",
                       TA, TB, M, N, K, ALPHA, BETA, i, j, C1[at], C2[at], want);
            }
        }
    }
    free(A); free(B); free(C0); free(C1); free(C2);
    return bad;
}

static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {1, 29, 2}, {31, 37, 41}, {64, 64, 64},
                               {65, 127, 9}, {128, 300, 75}};
static const float ab[][2] = {{1, 1}, {1, 0}, {0.5f, -2}, {-1.25f, 0.75f}};

static void test_gemm_cpu_all_cases(void)
{
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (size_t a = 0; a < sizeof ab / sizeof ab[0]; a++)
                check_case(t >> 1, t & 1, sizes[s][0], sizes[s][1], sizes[s][2], ab[a][0], ab[a][1], (int)s % 3,
                           gemm_cpu);
}

static void test_gemm_entry_point(void)
{
    /* Darknet's layers call gemm(); it must reach the same result. */
    for (int t = 0; t < 4; t++) check_case(t >> 1, t & 1, 23, 19, 31, 0.7f, 0.3f, 2, gemm);
}

static void test_gemm_k_zero_scales_c(void)
{
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
    gemm_cpu(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(C[i], 0.5 * (i + 1), 0, 0);
}

int main(void)
{
    RUN(test_gemm_cpu_all_cases);
    RUN(test_gemm_entry_point);
    RUN(test_gemm_k_zero_scales_c);
    return TEST_END();
}
