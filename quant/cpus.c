/* The CPUs this process may use: its affinity mask, reduced by the CPU quota of its cgroup.
 *
 * `docker run --cpus`, Kubernetes CPU limits and systemd's CPUQuota= cap a process's CPU time with a cgroup quota
 * (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us) and leave its affinity mask alone, so a program that
 * sizes its threads from the mask (OpenBLAS does) runs more threads than it gets CPU time for, and is throttled.
 * The quota of every cgroup on the path from the process's own up to the hierarchy's root applies; the smallest
 * wins, and a fraction of a CPU rounds up. Reads /proc/self/mountinfo and /proc/self/cgroup; the parser takes other
 * files and a prefix for the mount points so that it can be tested on a fake hierarchy. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PATHLEN 4096

/* Whether the comma-separated list s contains the token t. */
static int has_token(const char *s, const char *t)
{
    size_t n = strlen(t);
    for (const char *p = s; p && *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, t, n)) return 1;
        p = p[k] ? p + k + 1 : p + k;
    }
    return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else
            *w++ = *r++;
    }
    *w = 0;
}

typedef struct {
    char root[PATHLEN], point[PATHLEN]; /* the part of the hierarchy mounted, and where */
    int found;
} mount_of;

/* The cgroup2 mount, and the v1 mount whose controllers include cpu. */
static void read_mounts(const char *mountinfo, mount_of *v2, mount_of *v1)
{
    FILE *f = fopen(mountinfo, "r");
    if (!f) return;
    char line[3 * PATHLEN];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *sep = strstr(line, " - ");
        if (!sep) continue;
        *sep = 0;
        char fstype[64] = "", src[PATHLEN], super[1024] = "";
        if (sscanf(sep + 3, "%63s %4095s %1023s", fstype, src, super) < 1) continue;
        char root[PATHLEN], point[PATHLEN];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2) continue;
        mount_of *m = !strcmp(fstype, "cgroup2") ? v2 : !strcmp(fstype, "cgroup") && has_token(super, "cpu") ? v1 : NULL;
        if (!m || m->found) continue;
        unescape(root);
        unescape(point);
        snprintf(m->root, sizeof m->root, "%s", root);
        snprintf(m->point, sizeof m->point, "%s", point);
        m->found = 1;
    }
    fclose(f);
}

/* The process's cgroup paths: v2 ("0::PATH") and the v1 hierarchy with the cpu controller. */
static void read_cgroups(const char *cgroup, char *v2, char *v1)
{
    FILE *f = fopen(cgroup, "r");
    if (!f) return;
    char line[PATHLEN + 256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *a = 0;
        *b = 0;
        if (!strcmp(line, "0") && !a[1]) snprintf(v2, PATHLEN, "%s", b + 1);
        else if (has_token(a + 1, "cpu")) snprintf(v1, PATHLEN, "%s", b + 1);
    }
    fclose(f);
}

/* One cgroup's quota in CPUs (0: none or unreadable). */
static double quota_at(const char *dir, int v2)
{
    char p[3 * PATHLEN + 32], buf[128] = "";
    double q = 0;
    if (v2) {
        snprintf(p, sizeof p, "%s/cpu.max", dir);
        FILE *f = fopen(p, "r");
        if (!f) return 0;
        char a[64] = "";
        long long per = 0;
        if (fscanf(f, "%63s %lld", a, &per) == 2 && strcmp(a, "max") && per > 0) {
            char *end;
            long long quo = strtoll(a, &end, 10);
            if (!*end && quo > 0) q = (double)quo / (double)per;
        }
        fclose(f);
        return q;
    }
    long long quo = 0, per = 0;
    snprintf(p, sizeof p, "%s/cpu.cfs_quota_us", dir);
    FILE *f = fopen(p, "r");
    if (f) { if (fgets(buf, sizeof buf, f)) quo = strtoll(buf, NULL, 10); fclose(f); }
    snprintf(p, sizeof p, "%s/cpu.cfs_period_us", dir);
    if ((f = fopen(p, "r"))) { if (fgets(buf, sizeof buf, f)) per = strtoll(buf, NULL, 10); fclose(f); }
    return quo > 0 && per > 0 ? (double)quo / (double)per : 0;
}

/* The smallest quota from the process's cgroup up to the mount's top; where its cgroup is not under the mount
 * (a container that sees its host's path), the mount's top alone. */
static double quota_on_path(const char *prefix, const mount_of *m, const char *path, int v2, char *where, size_t cap)
{
    char top[2 * PATHLEN + 8], dir[3 * PATHLEN + 8];
    snprintf(top, sizeof top, "%s%s", prefix, m->point);
    size_t rl = strlen(m->root);
    const char *rel = path;
    if (strcmp(m->root, "/")) { /* a sub-tree is mounted: the path must lie in it */
        if (!strncmp(path, m->root, rl) && (path[rl] == '/' || !path[rl])) rel = path + rl;
        else rel = "";
    }
    snprintf(dir, sizeof dir, "%s%s", top, !strcmp(rel, "/") ? "" : rel);
    if (access(dir, F_OK)) snprintf(dir, sizeof dir, "%s", top);
    double best = 0;
    for (;;) {
        double q = quota_at(dir, v2);
        if (q > 0 && (best == 0 || q < best)) {
            best = q;
            snprintf(where, cap, "%s", dir + strlen(prefix));
        }
        if (strlen(dir) <= strlen(top)) break;
        char *slash = strrchr(dir, '/');
        if (!slash || slash < dir + strlen(top)) break;
        *slash = 0;
    }
    return best;
}

int gslq_cpu_budget_from(const char *mountinfo, const char *cgroup, const char *prefix, int affinity,
                         gslq_cpu_budget *out)
{
    memset(out, 0, sizeof *out);
    out->affinity = affinity < 1 ? 1 : affinity;
    out->cpus = out->affinity;
    mount_of v2 = {0}, v1 = {0};
    char p2[PATHLEN] = "", p1[PATHLEN] = "", w2[PATHLEN] = "", w1[PATHLEN] = "";
    read_mounts(mountinfo, &v2, &v1);
    read_cgroups(cgroup, p2, p1);
    if (!prefix) prefix = "";
    double q2 = v2.found && p2[0] ? quota_on_path(prefix, &v2, p2, 1, w2, sizeof w2) : 0;
    double q1 = v1.found && p1[0] ? quota_on_path(prefix, &v1, p1, 0, w1, sizeof w1) : 0;
    double q = q2 > 0 && (q1 == 0 || q2 <= q1) ? q2 : q1;
    if (q <= 0) return 0;
    out->quota = q;
    snprintf(out->source, sizeof out->source, "%s", q == q2 ? w2 : w1);
    int c = (int)ceil(q - 1e-9);
    if (c < 1) c = 1;
    if (c < out->cpus) out->cpus = c;
    return 0;
}

int gslq_cpu_budget_get(gslq_cpu_budget *out)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return gslq_cpu_budget_from("/proc/self/mountinfo", "/proc/self/cgroup", "", n, out);
}
