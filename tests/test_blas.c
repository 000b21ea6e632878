/* quant/blas.c's decision, on the feature sets of processors other than this one: the kernel asked for follows the
 * features (never the model number), a kernel is never asked for on a processor without its instructions, and the
 * user's variables are kept, followed or refused as documented. The live choice on this processor is checked by
 * tests/test_blas.sh against /proc/cpuinfo. */
#include "test.h"

#define SSE (GSLQ_CPU_SSE2 | GSLQ_CPU_SSE3 | GSLQ_CPU_SSSE3 | GSLQ_CPU_SSE41 | GSLQ_CPU_SSE42)
#define AVX2 (SSE | GSLQ_CPU_AVX | GSLQ_CPU_FMA | GSLQ_CPU_AVX2)
#define AVX512 (AVX2 | GSLQ_CPU_AVX512)
/* Intel Xeon family 6 model 207 (unknown to OpenBLAS 0.3.21, which picks Prescott): AVX-512, BF16, FP16 */
#define EMERALD (AVX512 | GSLQ_CPU_AVX512BF16 | GSLQ_CPU_AVX512FP16)

static int decide(const char *cur, unsigned f, const char *req, const char *ct, gslq_blas_choice *c)
{
    return gslq_blas_decide(cur, f, req, ct, c);
}

static void test_best_core_follows_features(void)
{
    CHECK(!strcmp(gslq_blas_best_core(EMERALD), "SkylakeX"));
    CHECK(!strcmp(gslq_blas_best_core(AVX512), "SkylakeX"));
    CHECK(!strcmp(gslq_blas_best_core(AVX2), "Haswell"));
    /* AVX-512 bits without the OS saving ZMM state are not reported by gslq_cpu_features: AVX2 is what remains */
    CHECK(!strcmp(gslq_blas_best_core(AVX2 | GSLQ_CPU_AVX512BF16), "Haswell"));
    CHECK(!strcmp(gslq_blas_best_core(SSE | GSLQ_CPU_AVX), "Sandybridge"));
    CHECK(!strcmp(gslq_blas_best_core(SSE | GSLQ_CPU_AVX | GSLQ_CPU_AVX2), "Sandybridge")); /* AVX2 without FMA */
    CHECK(!strcmp(gslq_blas_best_core(SSE), "Nehalem"));
    CHECK(!strcmp(gslq_blas_best_core(GSLQ_CPU_SSE2 | GSLQ_CPU_SSE3), "Prescott"));
    CHECK(gslq_blas_best_core(GSLQ_CPU_SSE2) == NULL);
    CHECK(gslq_blas_best_core(0) == NULL);
    CHECK(gslq_blas_core_level("prescott") == 0 && gslq_blas_core_level("Zen") == 3 &&
          gslq_blas_core_level("COOPERLAKE") == 4 && gslq_blas_core_level("NewCore") == -1);
}

static void test_fallback_raised(void)
{
    gslq_blas_choice c;
    /* the case that cost 3.7x: OpenBLAS does not know the processor and runs Prescott */
    CHECK(decide("Prescott", EMERALD, NULL, NULL, &c) == 0);
    CHECKF(c.action == GSLQ_BLAS_SWITCH && !strcmp(c.core, "SkylakeX"), "action %d core %s", c.action,
           c.core ? c.core : "-");
    CHECKF(strstr(c.why, "OpenBLAS chose Prescott") != NULL, "%s", c.why);
    CHECK(decide("Prescott", AVX2, "auto", NULL, &c) == 0 && c.action == GSLQ_BLAS_SWITCH &&
          !strcmp(c.core, "Haswell"));
    CHECK(decide("Nehalem", AVX2 | GSLQ_CPU_AVX512BF16, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_SWITCH &&
          !strcmp(c.core, "Haswell"));
    CHECK(decide("Sandybridge", AVX512, NULL, "", &c) == 0 && c.action == GSLQ_BLAS_SWITCH); /* empty = unset */
}

static void test_good_choice_kept(void)
{
    gslq_blas_choice c;
    CHECK(decide("Cooperlake", EMERALD, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("SkylakeX", AVX512, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("Zen", AVX2, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("Haswell", AVX2, "best", NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    /* a name unknown here (a newer OpenBLAS) is left alone; so is a processor below SSE3 */
    CHECK(decide("GraniteRapids", EMERALD, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("Prescott", GSLQ_CPU_SSE2, NULL, NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
}

static void test_user_variables(void)
{
    gslq_blas_choice c;
    /* OPENBLAS_CORETYPE is the user's: kept, with a word when slower than the processor allows */
    CHECK(decide("Prescott", EMERALD, NULL, "Prescott", &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECKF(strstr(c.why, "supports SkylakeX") != NULL, "%s", c.why);
    /* ... but never one the processor cannot run */
    CHECK(decide("Haswell", AVX2, NULL, "SkylakeX", &c) == GSLQ_EINVAL && c.action == GSLQ_BLAS_REFUSE);
    CHECKF(strstr(c.why, "OPENBLAS_CORETYPE=SkylakeX") && strstr(c.why, "AVX-512"), "%s", c.why);
    CHECK(decide("Cooperlake", AVX512 | GSLQ_CPU_AVX512BF16, NULL, "SapphireRapids", &c) == GSLQ_EINVAL);
    CHECK(decide("SkylakeX", AVX512, NULL, "Cooperlake", &c) == GSLQ_EINVAL); /* no BF16 */
    /* GSL_BLAS_CORE: keep, best, a name */
    CHECK(decide("Prescott", EMERALD, "keep", NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("Prescott", EMERALD, "best", "Prescott", &c) == 0 && c.action == GSLQ_BLAS_SWITCH &&
          !strcmp(c.core, "SkylakeX"));
    CHECK(decide("Cooperlake", EMERALD, "haswell", NULL, &c) == 0 && c.action == GSLQ_BLAS_SWITCH &&
          !strcmp(c.core, "Haswell"));
    CHECK(decide("Haswell", EMERALD, "Haswell", NULL, &c) == 0 && c.action == GSLQ_BLAS_KEEP);
    CHECK(decide("Haswell", AVX2, "SkylakeX", NULL, &c) == GSLQ_EINVAL && c.action == GSLQ_BLAS_REFUSE);
    CHECKF(strstr(c.why, "GSL_BLAS_CORE=SkylakeX") != NULL, "%s", c.why);
    CHECK(decide("Haswell", AVX2, "Skylake-X", NULL, &c) == GSLQ_EINVAL && strstr(c.why, "not an OpenBLAS kernel"));
}

/* The detection agrees with the kernel's view of the processor (/proc/cpuinfo flags). */
static void test_features_match_cpuinfo(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192], flags[8192] = " ";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5) && strchr(line, ':')) {
            snprintf(flags, sizeof flags, " %s", strchr(line, ':') + 1);
            flags[strcspn(flags, "\n")] = ' ';
            break;
        }
    fclose(f);
#define HAS(x) (strstr(flags, " " x " ") != NULL)
    unsigned fe = gslq_cpu_features();
    CHECK(!!(fe & GSLQ_CPU_SSE42) == HAS("sse4_2"));
    CHECK(!!(fe & GSLQ_CPU_AVX2) == HAS("avx2"));
    CHECK(!!(fe & GSLQ_CPU_FMA) == HAS("fma"));
    CHECK(!!(fe & GSLQ_CPU_AVX512) ==
          (HAS("avx512f") && HAS("avx512dq") && HAS("avx512cd") && HAS("avx512bw") && HAS("avx512vl")));
    CHECK(!!(fe & GSLQ_CPU_AVX512BF16) == HAS("avx512_bf16"));
#undef HAS
}

int main(void)
{
    RUN(test_best_core_follows_features);
    RUN(test_fallback_raised);
    RUN(test_good_choice_kept);
    RUN(test_user_variables);
    RUN(test_features_match_cpuinfo);
    return TEST_END();
}
