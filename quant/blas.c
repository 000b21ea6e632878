/* Which BLAS kernel the process runs on, and choosing the best one the processor supports.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels by the processor's model number when it loads. A
 * processor newer than the library is not recognised and gets the oldest x86-64 kernels (Prescott, SSE3), several
 * times slower, with no word said. The choice here is made from the processor's features (CPUID, with the operating
 * system's support for the wider registers read from XCR0), never from its model number, and only a kernel whose
 * instructions the processor has is ever asked for. OpenBLAS reads OPENBLAS_CORETYPE once, when it loads, so a
 * program that wants another kernel sets it and executes itself again (gslq_blas_select).
 *
 * The pure decision (gslq_blas_decide) is separate from the detection, so that it is tested on the feature sets of
 * other processors. The one piece of process-wide state is what gslq_blas_select decided, kept for
 * gslq_blas_describe's header line; it does not change any result of the library. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setenv, strcasecmp, execv under -std=c11 */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GSLQ_X86 1
#endif

#ifndef GSLQ_NO_BLAS
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);
#endif

/* ---------------------------------------------------------------- processor features */
unsigned gslq_cpu_features(void)
{
    unsigned f = 0;
#ifdef GSLQ_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    f |= GSLQ_CPU_SSE2 * !!(d & (1u << 26));
    f |= GSLQ_CPU_SSE3 * !!(c & 1u);
    f |= GSLQ_CPU_SSSE3 * !!(c & (1u << 9));
    f |= GSLQ_CPU_SSE41 * !!(c & (1u << 19));
    f |= GSLQ_CPU_SSE42 * !!(c & (1u << 20));
    int osxsave = !!(c & (1u << 27)), avx = !!(c & (1u << 28)), fma = !!(c & (1u << 12));
    /* The OS must save the registers: XMM|YMM state (XCR0 bits 1, 2) for AVX, opmask|ZMM (bits 5, 6, 7) for
     * AVX-512. Without OSXSAVE, xgetbv itself is not allowed. */
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    if (avx && os_avx) f |= GSLQ_CPU_AVX;
    if (fma && os_avx) f |= GSLQ_CPU_FMA;
    unsigned max = __get_cpuid_max(0, NULL);
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b & (1u << 5)) && os_avx) f |= GSLQ_CPU_AVX2;
        /* F, DQ, CD, BW, VL: the set OpenBLAS's SkylakeX kernels use */
        unsigned need = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
        if ((b & need) == need && os_avx512) f |= GSLQ_CPU_AVX512;
        if ((d & (1u << 23)) && os_avx512) f |= GSLQ_CPU_AVX512FP16;
        unsigned sub = a;
        if (sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if ((a & (1u << 5)) && os_avx512) f |= GSLQ_CPU_AVX512BF16;
        }
    }
#endif
    return f;
}

void gslq_cpu_features_str(unsigned f, char *buf, size_t cap)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {GSLQ_CPU_SSE2, "sse2"}, {GSLQ_CPU_SSE3, "sse3"}, {GSLQ_CPU_SSSE3, "ssse3"}, {GSLQ_CPU_SSE41, "sse4.1"},
        {GSLQ_CPU_SSE42, "sse4.2"}, {GSLQ_CPU_AVX, "avx"}, {GSLQ_CPU_FMA, "fma"}, {GSLQ_CPU_AVX2, "avx2"},
        {GSLQ_CPU_AVX512, "avx512"}, {GSLQ_CPU_AVX512BF16, "avx512-bf16"}, {GSLQ_CPU_AVX512FP16, "avx512-fp16"}};
    size_t used = 0;
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(f & names[i].bit)) continue;
        int w = snprintf(buf + used, cap > used ? cap - used : 0, "%s%s", used ? " " : "", names[i].name);
        if (w > 0) used += (size_t)w;
    }
    if (cap && !used) snprintf(buf, cap, "none detected");
}

/* ---------------------------------------------------------------- OpenBLAS's x86-64 kernels */
/* Every core name OpenBLAS's DYNAMIC_ARCH build may report or accept, with the instruction set its kernels need
 * (level: 0 SSE3, 1 SSE4.2, 2 AVX, 3 AVX2+FMA, 4 AVX-512) and the features that level stands for. */
static const struct blas_core {
    const char *name;
    int level;
    unsigned needs;
} cores[] = {
    {"Katmai", 0, 0}, {"Coppermine", 0, 0}, {"Northwood", 0, GSLQ_CPU_SSE2}, {"Prescott", 0, GSLQ_CPU_SSE3},
    {"Banias", 0, 0}, {"Atom", 0, GSLQ_CPU_SSSE3}, {"Core2", 0, GSLQ_CPU_SSSE3}, {"Penryn", 0, GSLQ_CPU_SSE41},
    {"Dunnington", 0, GSLQ_CPU_SSE41}, {"Athlon", 0, 0}, {"Opteron", 0, GSLQ_CPU_SSE2},
    {"Opteron(SSE3)", 0, GSLQ_CPU_SSE3}, {"Barcelona", 0, GSLQ_CPU_SSE3}, {"Nano", 0, GSLQ_CPU_SSSE3},
    {"Bobcat", 0, GSLQ_CPU_SSSE3}, {"Nehalem", 1, GSLQ_CPU_SSE42},
    {"Sandybridge", 2, GSLQ_CPU_AVX}, {"Bulldozer", 2, GSLQ_CPU_AVX}, {"Piledriver", 2, GSLQ_CPU_AVX | GSLQ_CPU_FMA},
    {"Steamroller", 2, GSLQ_CPU_AVX | GSLQ_CPU_FMA}, {"Excavator", 2, GSLQ_CPU_AVX2 | GSLQ_CPU_FMA},
    {"Haswell", 3, GSLQ_CPU_AVX2 | GSLQ_CPU_FMA}, {"Zen", 3, GSLQ_CPU_AVX2 | GSLQ_CPU_FMA},
    {"SkylakeX", 4, GSLQ_CPU_AVX512 | GSLQ_CPU_AVX2 | GSLQ_CPU_FMA},
    {"Cooperlake", 4, GSLQ_CPU_AVX512 | GSLQ_CPU_AVX512BF16 | GSLQ_CPU_AVX2 | GSLQ_CPU_FMA},
    {"SapphireRapids", 4, GSLQ_CPU_AVX512 | GSLQ_CPU_AVX512BF16 | GSLQ_CPU_AVX512FP16 | GSLQ_CPU_AVX2 | GSLQ_CPU_FMA},
};
/* What is asked for at each level: the kernels every DYNAMIC_ARCH build has carried for years. */
static const char *const best_at_level[] = {"Prescott", "Nehalem", "Sandybridge", "Haswell", "SkylakeX"};

static const struct blas_core *find_core(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(cores[i].name, name)) return &cores[i];
    return NULL;
}

int gslq_blas_core_level(const char *core)
{
    const struct blas_core *c = find_core(core);
    return c ? c->level : -1;
}

const char *gslq_blas_best_core(unsigned features)
{
    for (int lv = 4; lv >= 0; lv--) {
        const struct blas_core *c = find_core(best_at_level[lv]);
        if ((c->needs & features) == c->needs) return c->name;
    }
    return NULL; /* not even SSE3: leave OpenBLAS to itself */
}

static const char *level_name(int lv)
{
    static const char *const n[] = {"SSE3", "SSE4.2", "AVX", "AVX2", "AVX-512"};
    return lv >= 0 && lv <= 4 ? n[lv] : "?";
}

int gslq_blas_decide(const char *current, unsigned features, const char *request, const char *coretype,
                     gslq_blas_choice *out)
{
    memset(out, 0, sizeof *out);
    out->action = GSLQ_BLAS_KEEP;
    const char *best = gslq_blas_best_core(features);
    const struct blas_core *cur = find_core(current);
    int best_level = best ? find_core(best)->level : -1;
    if (request && !*request) request = NULL;
    if (coretype && !*coretype) coretype = NULL;

    /* a kernel named by the user (GSL_BLAS_CORE=NAME, or OPENBLAS_CORETYPE without GSL_BLAS_CORE) must fit */
    const char *named = request && strcasecmp(request, "auto") && strcasecmp(request, "keep") &&
                                strcasecmp(request, "best")
                            ? request
                            : (!request || !strcasecmp(request, "auto")) ? coretype : NULL;
    const char *var = named == request ? "GSL_BLAS_CORE" : "OPENBLAS_CORETYPE";
    if (named) {
        const struct blas_core *c = find_core(named);
        if (!c) {
            if (named == request) {
                out->action = GSLQ_BLAS_REFUSE;
                snprintf(out->why, sizeof out->why,
                         "GSL_BLAS_CORE=%s: not an OpenBLAS kernel (auto, keep, best, or a name such as Prescott, "
                         "Nehalem, Sandybridge, Haswell, Zen, SkylakeX, Cooperlake)", named);
                return GSLQ_EINVAL;
            }
            snprintf(out->why, sizeof out->why, "OPENBLAS_CORETYPE=%s (a name unknown here: not checked)", named);
            return GSLQ_OK;
        }
        if ((c->needs & features) != c->needs) {
            char have[160];
            gslq_cpu_features_str(features, have, sizeof have);
            out->action = GSLQ_BLAS_REFUSE;
            snprintf(out->why, sizeof out->why,
                     "%s=%s: its kernels need %s instructions that this processor (or its operating system) does "
                     "not have (it has: %s); unset %s or name a kernel it supports%s%s", var, named,
                     level_name(c->level), have, var, best ? ", e.g. " : "", best ? best : "");
            return GSLQ_EINVAL;
        }
        if (named == request && !(cur && !strcasecmp(cur->name, c->name))) {
            out->action = GSLQ_BLAS_SWITCH;
            out->core = c->name;
            snprintf(out->why, sizeof out->why, "GSL_BLAS_CORE=%s", c->name);
        } else {
            snprintf(out->why, sizeof out->why, "%s=%s", var, c->name);
            if (c->level < best_level)
                snprintf(out->why + strlen(out->why), sizeof out->why - strlen(out->why),
                         "; this processor supports %s (%s)", best, level_name(best_level));
        }
        return GSLQ_OK;
    }
    if (request && !strcasecmp(request, "keep")) {
        snprintf(out->why, sizeof out->why, "GSL_BLAS_CORE=keep: as OpenBLAS chose");
        if (cur && cur->level < best_level)
            snprintf(out->why + strlen(out->why), sizeof out->why - strlen(out->why),
                     "; this processor supports %s (%s)", best, level_name(best_level));
        return GSLQ_OK;
    }
    /* auto (OPENBLAS_CORETYPE unset) or best: raise a kernel below what the processor supports */
    if (!cur) {
        snprintf(out->why, sizeof out->why, "as OpenBLAS chose (a kernel name unknown here: not changed)");
        return GSLQ_OK;
    }
    if (!best || cur->level >= best_level) {
        snprintf(out->why, sizeof out->why, "as OpenBLAS chose%s", request ? ", already the best" : "");
        return GSLQ_OK;
    }
    out->action = GSLQ_BLAS_SWITCH;
    out->core = best;
    snprintf(out->why, sizeof out->why, "chosen from the processor's features (%s); OpenBLAS chose %s",
             level_name(best_level), cur->name);
    return GSLQ_OK;
}

/* ---------------------------------------------------------------- the running process */
static char chosen_why[512]; /* what gslq_blas_select decided, for gslq_blas_describe */
#ifndef GSLQ_NO_BLAS
static char threads_why[600]; /* why OpenBLAS runs fewer threads than it chose, for gslq_blas_describe */
void openblas_set_num_threads(int n);

/* OpenBLAS sizes its thread pool from the affinity mask; under a cgroup CPU quota that is more threads than the
 * process gets CPU time for. The user's own thread count (the variables OpenBLAS reads) is kept. */
static void fit_threads(void)
{
    const char *vars[] = {"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return;
    }
    gslq_cpu_budget b;
    gslq_cpu_budget_get(&b);
    int have = openblas_get_num_threads();
    if (b.quota > 0 && have > b.cpus) {
        openblas_set_num_threads(b.cpus);
        snprintf(threads_why, sizeof threads_why, "not %d: the CPU quota of %s allows %.3g CPU%s", have,
                 b.source[0] ? b.source : "this cgroup", b.quota, b.quota == 1 ? "" : "s");
    }
}
#endif

#define REEXEC_VAR "GSL_BLAS_REEXEC" /* set for the re-executed process: the kernel asked for and why */

/* argv of this process from /proc (for callers that have none at hand). NULL-terminated, malloc'ed. */
static char **proc_argv(void)
{
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) { char *nb = realloc(buf, cap *= 2); if (!nb) { free(buf); buf = NULL; } else buf = nb; }
    }
    fclose(f);
    if (!buf || !n) { free(buf); return NULL; }
    size_t argc = 0;
    for (size_t i = 0; i < n; i++) argc += buf[i] == 0;
    char **argv = calloc(argc + 2, sizeof *argv);
    if (!argv) { free(buf); return NULL; }
    size_t a = 0;
    for (size_t i = 0; i < n && a <= argc; i += strlen(buf + i) + 1) argv[a++] = buf + i;
    return argv;
}

int gslq_blas_select(char **argv, gslq_error *err)
{
#ifdef GSLQ_NO_BLAS
    (void)argv;
    snprintf(chosen_why, sizeof chosen_why, "built without BLAS");
    gslq__ok(err);
    return GSLQ_OK;
#else
    const char *current = openblas_get_corename();
    const char *again = getenv(REEXEC_VAR);
    if (again && *again) { /* this is the re-executed process: report, never loop */
        char want[64];
        snprintf(want, sizeof want, "%.*s", (int)strcspn(again, ";"), again);
        const char *why = strchr(again, ';');
        if (current && !strcasecmp(current, want))
            snprintf(chosen_why, sizeof chosen_why, "%s", why ? why + 1 : "chosen here");
        else
            snprintf(chosen_why, sizeof chosen_why, "asked OpenBLAS for %s, it kept %s (a build without that kernel?)",
                     want, current ? current : "?");
        unsetenv(REEXEC_VAR);
        fit_threads();
        gslq__ok(err);
        return GSLQ_OK;
    }
    gslq_blas_choice ch;
    int rc = gslq_blas_decide(current, gslq_cpu_features(), getenv("GSL_BLAS_CORE"), getenv("OPENBLAS_CORETYPE"), &ch);
    snprintf(chosen_why, sizeof chosen_why, "%s", ch.why);
    if (rc) return gslq__fail(err, rc, "%s", ch.why);
    if (ch.action != GSLQ_BLAS_SWITCH) { fit_threads(); gslq__ok(err); return GSLQ_OK; }

    char note[600];
    snprintf(note, sizeof note, "%s;%s", ch.core, ch.why);
    char **own = argv ? NULL : proc_argv();
    char **av = argv ? argv : own;
    if (!av || setenv("OPENBLAS_CORETYPE", ch.core, 1) || setenv(REEXEC_VAR, note, 1)) {
        fit_threads(); /* the program may carry on, on OpenBLAS's own kernel */
        return gslq__fail(err, GSLQ_EIO, "could not prepare to run on OpenBLAS's %s kernel (%s)", ch.core,
                          strerror(errno ? errno : ENOMEM));
    }
    fflush(NULL);
    execv("/proc/self/exe", av);
    /* still here: exec failed; carry on with the kernel OpenBLAS chose, and say so */
    int e = errno;
    unsetenv(REEXEC_VAR);
    unsetenv("OPENBLAS_CORETYPE");
    if (own) { free(own[0]); free(own); }
    fit_threads();
    snprintf(chosen_why, sizeof chosen_why, "as OpenBLAS chose: re-executing with %s failed (%s)", ch.core,
             strerror(e));
    return gslq__fail(err, GSLQ_EIO, "re-executing this program on OpenBLAS's %s kernel failed: %s", ch.core,
                      strerror(e));
#endif
}

void gslq_blas_describe(char *buf, size_t cap)
{
#ifdef GSLQ_NO_BLAS
    snprintf(buf, cap, "BLAS none (built-in loops)");
#else
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    char ver[32] = "";
    if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) snprintf(ver, sizeof ver, " %.*s", (int)strcspn(cfg + 9, " "), cfg + 9);
    int par = openblas_get_parallel();
    snprintf(buf, cap, "OpenBLAS%s (%s), kernel %s [%s], %d thread%s%s%s%s", ver,
             par == 0 ? "serial" : par == 2 ? "OpenMP" : "pthreads", core ? core : "?",
             chosen_why[0] ? chosen_why : "as OpenBLAS chose", openblas_get_num_threads(),
             openblas_get_num_threads() == 1 ? "" : "s", threads_why[0] ? " [" : "", threads_why,
             threads_why[0] ? "]" : "");
#endif
}
