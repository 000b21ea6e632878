/* quant/blas.c's decision, on the feature sets of processors other than this one: the kernel asked for follows the
 * features (never the model number), a kernel is never asked for on a processor without its instructions, and the
 * user's variables are kept, followed or refused as documented. The live choice on this processor is checked by
 * tests/test_blas.sh against /proc/cpuinfo. */
#include "test.h"

#include <sys/stat.h>

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

/* ---- the CPU budget (quant/cpus.c) on fake cgroup hierarchies: files under a temporary root */
static char cg_root[1024];

static void put(const char *rel, const char *text)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", cg_root, rel);
    for (char *q = p + strlen(cg_root) + 1; (q = strchr(q, '/')); q++) { *q = 0; mkdir(p, 0755); *q = '/'; }
    FILE *f = fopen(p, "w");
    CHECKF(f != NULL, "cannot write %s", p);
    if (f) { fputs(text, f); fclose(f); }
}

/* The budget for mountinfo/cgroup texts and an affinity count; the tree is rebuilt for each case. */
static gslq_cpu_budget budget(const char *mountinfo, const char *cgroup, int affinity)
{
    put("proc/mountinfo", mountinfo);
    put("proc/cgroup", cgroup);
    char mi[1100], cg[1100];
    snprintf(mi, sizeof mi, "%s/proc/mountinfo", cg_root);
    snprintf(cg, sizeof cg, "%s/proc/cgroup", cg_root);
    gslq_cpu_budget b;
    CHECK(gslq_cpu_budget_from(mi, cg, cg_root, affinity, &b) == 0);
    return b;
}

#define V2_MOUNT "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
#define V1_MOUNTS "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" \
                  "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"

static void test_cpu_budget(void)
{
    snprintf(cg_root, sizeof cg_root, "%s/cpu_budget", test_tmpdir());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cg_root);
    CHECK(system(cmd) == 0);
    mkdir(test_tmpdir(), 0755);
    mkdir(cg_root, 0755);
    /* cgroup v2, a quota of 2 CPUs at the process's own cgroup (docker --cpus 2): 2 of 16 */
    put("sys/fs/cgroup/cpu.max", "max 100000\n");
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "200000 100000\n");
    gslq_cpu_budget b = budget(V2_MOUNT, "0::/kubepods/pod1/ctr\n", 16);
    CHECKF(b.cpus == 2 && b.quota == 2 && b.affinity == 16 && !strcmp(b.source, "/sys/fs/cgroup/kubepods/pod1/ctr"),
           "cpus %d quota %g source %s", b.cpus, b.quota, b.source);
    /* the smallest quota on the path wins (the pod's 1.5 CPUs over the container's unlimited); a fraction rounds up */
    put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n");
    put("sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n");
    b = budget(V2_MOUNT, "0::/kubepods/pod1/ctr\n", 16);
    CHECKF(b.cpus == 2 && b.quota == 1.5 && !strcmp(b.source, "/sys/fs/cgroup/kubepods/pod1"), "cpus %d quota %g %s",
           b.cpus, b.quota, b.source);
    /* less than one CPU: one thread */
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "25000 100000\n");
    b = budget(V2_MOUNT, "0::/kubepods/pod1/ctr\n", 16);
    CHECKF(b.cpus == 1 && b.quota == 0.25, "cpus %d quota %g", b.cpus, b.quota);
    /* a quota above the affinity mask changes nothing; no quota at all: the mask */
    put("sys/fs/cgroup/kubepods/pod1/cpu.max", "800000 100000\n");
    b = budget(V2_MOUNT, "0::/kubepods/pod1/ctr\n", 4);
    CHECKF(b.cpus == 4 && b.quota == 8, "cpus %d quota %g", b.cpus, b.quota);
    b = budget(V2_MOUNT, "0::/elsewhere\n", 4);
    CHECKF(b.cpus == 4 && b.quota == 0, "cpus %d quota %g", b.cpus, b.quota);
    /* a container with its own cgroup namespace: "0::/" and the limit at the mount's top */
    put("sys/fs/cgroup/cpu.max", "300000 100000\n");
    b = budget(V2_MOUNT, "0::/\n", 64);
    CHECKF(b.cpus == 3 && !strcmp(b.source, "/sys/fs/cgroup"), "cpus %d source %s", b.cpus, b.source);
    /* a container that sees its host's cgroup path, not under its mount: the mount's top */
    b = budget(V2_MOUNT, "0::/system.slice/docker-abc.scope\n", 64);
    CHECKF(b.cpus == 3, "cpus %d", b.cpus);
    /* unreadable or malformed values are no quota */
    put("sys/fs/cgroup/cpu.max", "lots 100000\n");
    b = budget(V2_MOUNT, "0::/\n", 8);
    CHECKF(b.cpus == 8 && b.quota == 0, "cpus %d quota %g", b.cpus, b.quota);
    put("sys/fs/cgroup/cpu.max", "100000 0\n");
    b = budget(V2_MOUNT, "0::/\n", 8);
    CHECKF(b.cpus == 8 && b.quota == 0, "cpus %d quota %g", b.cpus, b.quota);
    b = budget("garbage\n", "nonsense\n", 8);
    CHECKF(b.cpus == 8 && b.quota == 0, "cpus %d quota %g", b.cpus, b.quota);

    /* cgroup v1: the hierarchy with the cpu controller (here co-mounted with cpuacct), quota / period, -1 = none */
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put("sys/fs/cgroup/cpu,cpuacct/job7/cpu.cfs_quota_us", "50000\n");
    put("sys/fs/cgroup/cpu,cpuacct/job7/cpu.cfs_period_us", "100000\n");
    b = budget(V1_MOUNTS, "12:cpuset:/job7\n4:cpu,cpuacct:/job7\n1:name=systemd:/\n", 2);
    CHECKF(b.cpus == 1 && b.quota == 0.5 && !strcmp(b.source, "/sys/fs/cgroup/cpu,cpuacct/job7"),
           "cpus %d quota %g source %s", b.cpus, b.quota, b.source);
    put("sys/fs/cgroup/cpu,cpuacct/job7/cpu.cfs_quota_us", "-1\n");
    b = budget(V1_MOUNTS, "4:cpu,cpuacct:/job7\n", 2);
    CHECKF(b.cpus == 2 && b.quota == 0, "cpus %d quota %g", b.cpus, b.quota);
    /* a mount point with a space in it (mountinfo writes \040) */
    put("mnt/my cg/cpu.max", "100000 100000\n");
    b = budget("30 23 0:26 / /mnt/my\\040cg rw - cgroup2 none rw\n", "0::/\n", 8);
    CHECKF(b.cpus == 1 && !strcmp(b.source, "/mnt/my cg"), "cpus %d source %s", b.cpus, b.source);
    /* this process: whatever it runs under, a budget within the mask */
    gslq_cpu_budget me;
    CHECK(gslq_cpu_budget_get(&me) == 0 && me.cpus >= 1 && me.cpus <= me.affinity);
}

int main(void)
{
    RUN(test_best_core_follows_features);
    RUN(test_fallback_raised);
    RUN(test_good_choice_kept);
    RUN(test_user_variables);
    RUN(test_features_match_cpuinfo);
    RUN(test_cpu_budget);
    return TEST_END();
}
