/* The only file that talks to BLAS/LAPACKE. With -DGSLQ_NO_BLAS the built-in blocked sgemm and one-sided Jacobi
 * SVD below are used instead (they are always compiled so a test can check that both paths agree). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef GSLQ_NO_BLAS
#include <cblas.h>
#include <lapacke.h>
#endif

int gslq__have_blas(void)
{
#ifdef GSLQ_NO_BLAS
    return 0;
#else
    return 1;
#endif
}

/* ---- built-in sgemm ----
 * Blocks of 64 columns of C are accumulated in a local buffer; B is packed k-major so the innermost loop runs over
 * contiguous columns and vectorises. Exact enough for our uses; not tuned beyond that. */
#define GB_N 64
#define GB_K 128

void gslq__sgemm_builtin(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc)
{
    float bp[GB_K * GB_N], acc[GB_N];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    if (k <= 0 || alpha == 0.0f) return;
    for (int j0 = 0; j0 < n; j0 += GB_N) {
        int nb = n - j0 < GB_N ? n - j0 : GB_N;
        for (int p0 = 0; p0 < k; p0 += GB_K) {
            int kb = k - p0 < GB_K ? k - p0 : GB_K;
            for (int p = 0; p < kb; p++) /* bp[p][j] = op(B)[p0+p][j0+j] */
                for (int j = 0; j < nb; j++)
                    bp[p * GB_N + j] = tb ? B[(size_t)(j0 + j) * ldb + p0 + p] : B[(size_t)(p0 + p) * ldb + j0 + j];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < nb; j++) acc[j] = 0.0f;
                for (int p = 0; p < kb; p++) {
                    float a = ta ? A[(size_t)(p0 + p) * lda + i] : A[(size_t)i * lda + p0 + p];
                    const float *b = bp + p * GB_N;
                    for (int j = 0; j < nb; j++) acc[j] += a * b[j];
                }
                float *c = C + (size_t)i * ldc + j0;
                for (int j = 0; j < nb; j++) c[j] += alpha * acc[j];
            }
        }
    }
}

void gslq__sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc)
{
    if (m <= 0 || n <= 0) return;
#ifdef GSLQ_NO_BLAS
    gslq__sgemm_builtin(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda,
                B, ldb, beta, C, ldc);
#endif
}

/* ---- built-in SVD: one-sided Jacobi (Hestenes) in double precision ----
 * Orthogonalises the columns of W = A by plane rotations accumulated in V; then S = column norms, U = W / S.
 * Zero singular values get U columns completed by Gram-Schmidt so U stays orthogonal (Procrustes needs it). */
int gslq__svd_builtin(int n, const float *A, float *U, float *S, float *Vt)
{
    double *W = gslq__alloc((size_t)n, (size_t)n, sizeof(double), 0);
    double *V = gslq__alloc((size_t)n, (size_t)n, sizeof(double), 1);
    double *s = gslq__alloc((size_t)n, 1, sizeof(double), 0);
    int *ord = gslq__alloc((size_t)n, 1, sizeof(int), 0);
    if (!W || !V || !s || !ord) {
        free(W); free(V); free(s); free(ord);
        return GSLQ_ENOMEM;
    }
    for (int i = 0; i < n * n; i++) W[i] = A[i];
    for (int i = 0; i < n; i++) V[i * n + i] = 1.0;
    int converged = 0;
    for (int sweep = 0; sweep < 100 && !converged; sweep++) {
        converged = 1;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double a = 0, b = 0, c = 0;
                for (int i = 0; i < n; i++) {
                    double wp = W[i * n + p], wq = W[i * n + q];
                    a += wp * wp; b += wq * wq; c += wp * wq;
                }
                if (fabs(c) <= 1e-15 * sqrt(a * b) || c == 0.0) continue;
                converged = 0;
                double zeta = (b - a) / (2.0 * c);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double cs = 1.0 / sqrt(1.0 + t * t), sn = cs * t;
                for (int i = 0; i < n; i++) {
                    double wp = W[i * n + p], wq = W[i * n + q];
                    W[i * n + p] = cs * wp - sn * wq;
                    W[i * n + q] = sn * wp + cs * wq;
                    double vp = V[i * n + p], vq = V[i * n + q];
                    V[i * n + p] = cs * vp - sn * vq;
                    V[i * n + q] = sn * vp + cs * vq;
                }
            }
    }
    for (int j = 0; j < n; j++) {
        double nn = 0;
        for (int i = 0; i < n; i++) nn += W[i * n + j] * W[i * n + j];
        s[j] = sqrt(nn);
        ord[j] = j;
    }
    /* descending singular values (insertion sort; n is small) */
    for (int i = 1; i < n; i++) {
        int o = ord[i], j = i;
        while (j > 0 && s[ord[j - 1]] < s[o]) { ord[j] = ord[j - 1]; j--; }
        ord[j] = o;
    }
    double smax = n > 0 ? s[ord[0]] : 0;
    for (int jj = 0; jj < n; jj++) {
        int j = ord[jj];
        S[jj] = (float)s[j];
        for (int i = 0; i < n; i++) Vt[jj * n + i] = (float)V[i * n + j];
        if (s[j] > 1e-12 * (smax > 0 ? smax : 1)) {
            for (int i = 0; i < n; i++) W[i * n + j] /= s[j];
        } else { /* complete with a unit vector orthogonal to the previous columns */
            for (int e = 0; e < n; e++) {
                for (int i = 0; i < n; i++) W[i * n + j] = (i == e);
                for (int pass = 0; pass < 2; pass++)
                    for (int kk = 0; kk < jj; kk++) {
                        int o = ord[kk];
                        double dot = 0;
                        for (int i = 0; i < n; i++) dot += W[i * n + o] * W[i * n + j];
                        for (int i = 0; i < n; i++) W[i * n + j] -= dot * W[i * n + o];
                    }
                double nn = 0;
                for (int i = 0; i < n; i++) nn += W[i * n + j] * W[i * n + j];
                if (nn > 1e-6) {
                    nn = sqrt(nn);
                    for (int i = 0; i < n; i++) W[i * n + j] /= nn;
                    break;
                }
            }
        }
        for (int i = 0; i < n; i++) U[i * n + jj] = (float)W[i * n + j];
    }
    free(W); free(V); free(s); free(ord);
    return converged ? GSLQ_OK : GSLQ_ELAPACK;
}

int gslq__svd(int n, const float *A, float *U, float *S, float *Vt)
{
#ifdef GSLQ_NO_BLAS
    return gslq__svd_builtin(n, A, U, S, Vt);
#else
    float *a = gslq__alloc((size_t)n, (size_t)n, sizeof(float), 0);
    float *superb = gslq__alloc((size_t)n, 1, sizeof(float), 0);
    if (!a || !superb) {
        free(a); free(superb);
        return GSLQ_ENOMEM;
    }
    memcpy(a, A, (size_t)n * n * sizeof(float));
    lapack_int info = LAPACKE_sgesvd(LAPACK_ROW_MAJOR, 'A', 'A', n, n, a, n, S, U, n, Vt, n, superb);
    free(a); free(superb);
    return info == 0 ? GSLQ_OK : GSLQ_ELAPACK;
#endif
}
