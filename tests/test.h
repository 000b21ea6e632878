/* Minimal test harness shared by every C test program in tests/.
 *
 * A program defines test functions `static void test_xxx(void)` and a main that calls RUN(test_xxx) for each and
 * returns TEST_END(). CHECK records a failure and carries on, so one run reports every broken assertion.
 * Output: one line per test ("ok   name" / "FAIL name"), then "RESULT N passed, M failed" that tests/run.sh adds up.
 * Exit status is non-zero when any test failed. A crash leaves no RESULT line, which run.sh counts as a failure. */
#ifndef GSL_TEST_H
#define GSL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslq.h"

static int test_fails_;            /* failed checks in the running test */
static int tests_passed_, tests_failed_;

#define CHECKF(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            test_fails_++;                                                                 \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

#define CHECK(cond) CHECKF(cond, "%s", "")

/* |got - want| <= atol + rtol * |want| */
#define CHECK_CLOSE(got, want, atol, rtol)                                                 \
    do {                                                                                   \
        double g_ = (double)(got), w_ = (double)(want);                                    \
        CHECKF(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_) && g_ == g_,                    \
               "got %.9g want %.9g (atol %g rtol %g)", g_, w_, (double)(atol), (double)(rtol)); \
    } while (0)

#define RUN(fn)                                                                            \
    do {                                                                                   \
        test_fails_ = 0;                                                                   \
        fn();                                                                              \
        if (test_fails_) { tests_failed_++; printf("FAIL %s (%d checks)\n", #fn, test_fails_); } \
        else { tests_passed_++; printf("ok   %s\n", #fn); }                                \
        fflush(stdout);                                                                    \
    } while (0)

#define TEST_END()                                                                         \
    (printf("RESULT %d passed, %d failed\n", tests_passed_, tests_failed_), fflush(stdout), \
     tests_failed_ ? 1 : 0)

/* Every test and benchmark program runs on the BLAS kernel that bin/darknet would choose (quant/blas.c): chosen
 * before main, from /proc/self/cmdline, since the programs' mains differ. */
__attribute__((constructor)) static void test_blas_select_(void)
{
    gslq_error e;
    if (gslq_blas_select(NULL, &e)) {
        fprintf(stderr, "%s: %s\n", e.code == GSLQ_EINVAL ? "error" : "warning", e.msg);
        if (e.code == GSLQ_EINVAL) exit(2);
    }
}

/* Deterministic uniform floats in [lo, hi) for test inputs (xorshift64*). */
static inline float test_randf(unsigned long long *s, float lo, float hi)
{
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    unsigned long long r = *s * 2685821657736338717ULL;
    return lo + (hi - lo) * (float)((r >> 40) * (1.0 / 16777216.0));
}

/* Standard normal (Box-Muller on test_randf). */
static inline float test_randn(unsigned long long *s)
{
    float u = test_randf(s, 1e-7f, 1.0f), v = test_randf(s, 0.0f, 1.0f);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* Path of the directory holding test binaries' inputs: $GSL_TEST_TMP or "build/test-tmp". */
static inline const char *test_tmpdir(void)
{
    const char *t = getenv("GSL_TEST_TMP");
    return t && *t ? t : "build/test-tmp";
}

#endif
