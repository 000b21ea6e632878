/* Files: the codebook and codes formats, .fvecs/.ivecs, label files, and the Faiss export.
 * Every file is little-endian. Readers learn the file size first and check every declared size against it before
 * allocating anything, so a hostile header cannot make us allocate or read more than the file holds. Writers write
 * PATH.tmp.PID (created exclusively), fsync it and rename it over PATH; a symbolic link at PATH is written through, a
 * device, pipe or folder there is refused. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libgslq's file code assumes a little-endian host"
#endif

#define CB_MAGIC "GSLQCB\0\0"
#define CD_MAGIC "GSLQCD\0\0"
#define FORMAT_VERSION 1u
#define CB_HEADER 28u /* magic 8, version, d, M, K, has_rotation */
#define CD_VERSION 2u   /* codes files: version 2 added the tag; version 1 files are read (tag 0) */
#define CD_HEADER_V1 32u /* magic 8, version, M, K, n (u64), codebook crc */
#define CD_HEADER 40u    /* the same, then the tag (u64) */

/* ---- writer ---- */

typedef struct {
    FILE *f;
    const char *path;
    char tmp[GSLQ_TMP_PATH_MAX];
    uint32_t crc;
    int failed;
} wr;

/* What an output path names: 0 with where the file goes in target (path itself; the file a symbolic link points to,
 * so that the link stays); an error for a folder, a device, a pipe or a socket (they are never replaced: `-out
 * /dev/null` must not turn the device into a file), a dangling link, or a folder that does not exist. */
static int resolve_output(const char *path, char *target, size_t cap, gslq_error *err)
{
    if (!path || !*path) return gslq__fail(err, GSLQ_EINVAL, "write: empty output path");
    if (strlen(path) >= cap || strlen(path) > 4096) return gslq__fail(err, GSLQ_EINVAL, "%s: path too long", path);
    struct stat st;
    snprintf(target, cap, "%s", path);
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) return gslq__fail(err, GSLQ_EIO, "%s: a symbolic link to a missing file (%s)", path, strerror(errno));
        int fits = strlen(real) < cap;
        if (fits) snprintf(target, cap, "%s", real);
        free(real);
        if (!fits) return gslq__fail(err, GSLQ_EINVAL, "%s: its link target's path is too long", path);
    }
    if (stat(target, &st) == 0) {
        if (S_ISREG(st.st_mode)) return GSLQ_OK;
        const char *what = S_ISDIR(st.st_mode) ? "a folder" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                           : S_ISFIFO(st.st_mode) ? "a named pipe" : "not a regular file";
        return gslq__fail(err, GSLQ_EINVAL, "%s is %s: an output is written as a new file, which would replace it",
                          path, what);
    }
    if (errno != ENOENT) return gslq__fail(err, GSLQ_EIO, "%s: %s", path, strerror(errno));
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", target);
    char *slash = strrchr(dir, '/');
    if (!slash) return GSLQ_OK; /* the working folder */
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return gslq__fail(err, GSLQ_EIO, "%s: the folder %s does not exist", path, dir);
    return GSLQ_OK;
}

int gslq_check_output(const char *path, gslq_error *err)
{
    char target[4200];
    int rc = resolve_output(path, target, sizeof target, err);
    if (!rc) gslq__ok(err);
    return rc;
}

/* The temporary beside `target`: TARGET.tmp.PID, or FOLDER/.gslq.PID.tmp where that name would be too long for the
 * filesystem (NAME_MAX 255). Created exclusively: a file or link already at that name is never followed. */
static FILE *open_tmp(const char *target, char *tmp, size_t cap)
{
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) + 24 <= 255) {
        snprintf(tmp, cap, "%s.tmp.%ld", target, (long)getpid());
    } else {
        snprintf(tmp, cap, "%.*s.gslq.%ld.tmp", (int)(base - target), target, (long)getpid());
    }
    unlink(tmp); /* a leftover of a killed process with this pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "wb");
    if (!f) { int e = errno; close(fd); unlink(tmp); errno = e; }
    return f;
}

FILE *gslq_create_tmp(const char *path, char *tmp, gslq_error *err)
{
    char target[4200];
    if (resolve_output(path, target, sizeof target, err)) return NULL;
    FILE *f = open_tmp(target, tmp, GSLQ_TMP_PATH_MAX);
    if (!f) gslq__fail(err, GSLQ_EIO, "cannot create %s: %s", tmp, strerror(errno));
    else gslq__ok(err);
    return f;
}

static int wr_open(wr *w, const char *path, gslq_error *err)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->f = gslq_create_tmp(path, w->tmp, err);
    return w->f ? GSLQ_OK : err ? err->code : GSLQ_EIO;
}

static void wr_bytes(wr *w, const void *p, size_t n)
{
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->failed = errno ? errno : EIO;
    w->crc = gslq_crc32(w->crc, p, n);
}

static void wr_u8(wr *w, uint8_t v) { wr_bytes(w, &v, 1); }
static void wr_u32(wr *w, uint32_t v) { wr_bytes(w, &v, 4); }
static void wr_i32(wr *w, int32_t v) { wr_bytes(w, &v, 4); }
static void wr_u64(wr *w, uint64_t v) { wr_bytes(w, &v, 8); }
static void wr_i64(wr *w, int64_t v) { wr_bytes(w, &v, 8); }

int gslq_commit_file(const char *tmp, const char *path, gslq_error *err)
{
    char target[4200];
    int rc = resolve_output(path, target, sizeof target, err); /* a device or folder put there meanwhile */
    if (rc) {
        remove(tmp);
        return rc;
    }
    int e = 0, fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd)) e = errno ? errno : EIO;
    if (fd >= 0) close(fd);
    if (!e && rename(tmp, target)) e = errno ? errno : EIO;
    if (e) {
        remove(tmp);
        return gslq__fail(err, GSLQ_EIO, "cannot write %s: %s", path, strerror(e));
    }
    /* the rename itself on disk: sync the folder (a filesystem that cannot sync folders is left as it is) */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", target);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_sweep_stale(const char *prefix)
{
    char pattern[4300];
    if (snprintf(pattern, sizeof pattern, "%s*", prefix) >= (int)sizeof pattern) return 0;
    glob_t g;
    if (glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g)) return 0;
    size_t pl = strlen(prefix);
    int removed = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *name = g.gl_pathv[i], *last = strrchr(name, '.');
        if (strncmp(name, prefix, pl) || !last || last < name + pl) continue; /* glob characters in prefix */
        /* the writer's pid: NAME.tmp.PID (a writer's temporary) or NAME.partPID (a staged member of an output set) */
        const char *digits = !strncmp(last, ".part", 5)                            ? last + 5
                             : last - 4 >= name && !strncmp(last - 4, ".tmp.", 5) ? last + 1
                                                                                   : NULL;
        char *end;
        long pid = digits ? strtol(digits, &end, 10) : 0;
        if (!digits || *end || end == digits || pid <= 0 || pid > INT32_MAX) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        removed += unlink(name) == 0;
    }
    globfree(&g);
    return removed;
}

const char *gslq_outset_add(gslq_outset *o, const char *path, gslq_error *err)
{
    if (o->n == GSLQ_OUTSET_MAX) {
        gslq__fail(err, GSLQ_EINVAL, "%s: more than %d files in one output set", path, GSLQ_OUTSET_MAX);
        return NULL;
    }
    char target[4200]; /* staged beside the file path names (a link's target): the commit renames within a folder */
    if (resolve_output(path, target, sizeof target, err)) return NULL;
    gslq_sweep_stale(target);
    /* TARGET.partPID, or FOLDER/.gslq.part.PID.I where that name would be too long for the filesystem */
    size_t cap = strlen(target) + 48;
    char *fin = strdup(path), *st = malloc(cap);
    if (!fin || !st) {
        free(fin); free(st);
        gslq__fail(err, GSLQ_ENOMEM, "out of memory");
        return NULL;
    }
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) + 24 <= 255) snprintf(st, cap, "%s.part%ld", target, (long)getpid());
    else snprintf(st, cap, "%.*s.gslq.part.%ld.%d", (int)(base - target), target, (long)getpid(), o->n);
    o->final[o->n] = fin;
    o->staged[o->n] = st;
    return o->staged[o->n++];
}

int gslq_outset_commit(gslq_outset *o, gslq_error *err)
{
    int rc = GSLQ_OK;
    for (int i = 0; i < o->n && !rc; i++) {
        rc = gslq_commit_file(o->staged[i], o->final[i], err);
        free(o->staged[i]);
        o->staged[i] = NULL; /* committed, or removed by the failing commit */
    }
    gslq_outset_free(o);
    if (!rc) gslq__ok(err);
    return rc;
}

void gslq_outset_free(gslq_outset *o)
{
    for (int i = 0; i < o->n; i++) {
        if (o->staged[i]) unlink(o->staged[i]);
        free(o->staged[i]);
        free(o->final[i]);
    }
    memset(o, 0, sizeof *o);
}

/* Closes, then commits (sync, rename, sync the folder); on any failure removes the temporary and reports. */
static int wr_close(wr *w, gslq_error *err)
{
    int e = w->failed;
    if (!e && fflush(w->f)) e = errno ? errno : EIO;
    if (fclose(w->f) && !e) e = errno ? errno : EIO;
    w->f = NULL;
    if (e) {
        remove(w->tmp);
        return gslq__fail(err, GSLQ_EIO, "cannot write %s: %s", w->path, strerror(e));
    }
    return gslq_commit_file(w->tmp, w->path, err);
}

/* ---- reader ---- */

typedef struct {
    FILE *f;
    const char *path;
    uint64_t size, pos;
    uint32_t crc;
} rd;

static int rd_open(rd *r, const char *path, gslq_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!path) return gslq__fail(err, GSLQ_EINVAL, "read: NULL path");
    /* O_NONBLOCK: opening a named pipe must not wait for a writer; it is refused below like any non-file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return gslq__fail(err, GSLQ_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return gslq__fail(err, GSLQ_EIO, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) || !(r->f = fdopen(fd, "rb"))) {
        close(fd);
        return gslq__fail(err, GSLQ_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    r->size = (uint64_t)st.st_size;
    return GSLQ_OK;
}

static int rd_bytes(rd *r, void *p, size_t n, const char *what, gslq_error *err)
{
    if (n > r->size - r->pos)
        return gslq__fail(err, GSLQ_EFORMAT, "%s: truncated: %s needs %zu bytes at offset %llu, file has %llu",
                          r->path, what, n, (unsigned long long)r->pos, (unsigned long long)r->size);
    if (n && fread(p, 1, n, r->f) != n)
        return gslq__fail(err, GSLQ_EIO, "%s: read error at offset %llu (%s)", r->path, (unsigned long long)r->pos,
                          what);
    r->pos += n;
    r->crc = gslq_crc32(r->crc, p, n);
    return GSLQ_OK;
}

static int rd_u32(rd *r, uint32_t *v, const char *what, gslq_error *err) { return rd_bytes(r, v, 4, what, err); }
static int rd_u64(rd *r, uint64_t *v, const char *what, gslq_error *err) { return rd_bytes(r, v, 8, what, err); }

/* The stored crc32 of everything before it, then the end of the file. */
static int rd_check_crc(rd *r, gslq_error *err)
{
    uint32_t want = r->crc, got;
    int rc = rd_u32(r, &got, "checksum", err);
    if (rc) return rc;
    if (got != want)
        return gslq__fail(err, GSLQ_ECHECKSUM, "%s: checksum mismatch (stored %08x, computed %08x)", r->path, got,
                          want);
    if (r->pos != r->size)
        return gslq__fail(err, GSLQ_EFORMAT, "%s: %llu unexpected bytes after the checksum", r->path,
                          (unsigned long long)(r->size - r->pos));
    return GSLQ_OK;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- codebook ---- */

static uint32_t pq_crc(const gslq_pq *pq)
{
    uint32_t c = gslq_crc32(0, pq->centroids, (size_t)pq->K * pq->d * sizeof(float));
    if (pq->rotation) c = gslq_crc32(c, pq->rotation, (size_t)pq->d * pq->d * sizeof(float));
    return c;
}

uint32_t gslq_pq_fingerprint(const gslq_pq *pq)
{
    if (!pq || !pq->centroids || gslq__check_dims(pq->d, pq->M, pq->K, NULL)) return 0;
    return pq_crc(pq);
}

int gslq_pq_save(const char *path, const gslq_pq *pq, gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "pq_save: NULL or uninitialised pq");
    int rc = gslq__check_dims(pq->d, pq->M, pq->K, err);
    if (rc) return rc;
    wr w;
    if ((rc = wr_open(&w, path, err))) return rc;
    wr_bytes(&w, CB_MAGIC, 8);
    wr_u32(&w, FORMAT_VERSION);
    wr_u32(&w, (uint32_t)pq->d);
    wr_u32(&w, (uint32_t)pq->M);
    wr_u32(&w, (uint32_t)pq->K);
    wr_u32(&w, pq->rotation ? 1u : 0u);
    wr_bytes(&w, pq->centroids, (size_t)pq->K * pq->d * sizeof(float));
    if (pq->rotation) wr_bytes(&w, pq->rotation, (size_t)pq->d * pq->d * sizeof(float));
    wr_u32(&w, w.crc);
    if ((rc = wr_close(&w, err))) return rc;
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_pq_load(const char *path, gslq_pq *pq, gslq_error *err)
{
    if (!pq) return gslq__fail(err, GSLQ_EINVAL, "pq_load: NULL pq");
    memset(pq, 0, sizeof *pq);
    rd r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    char magic[8];
    uint32_t ver, d, M, K, hasrot;
    if ((rc = rd_bytes(&r, magic, 8, "magic", err))) goto fail;
    if (memcmp(magic, CB_MAGIC, 8)) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: not a gslq codebook (bad magic)", path);
        goto fail;
    }
    if ((rc = rd_u32(&r, &ver, "version", err))) goto fail;
    if (ver != FORMAT_VERSION) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: codebook version %u not supported (expected %u)", path, ver,
                        FORMAT_VERSION);
        goto fail;
    }
    if ((rc = rd_u32(&r, &d, "d", err)) || (rc = rd_u32(&r, &M, "M", err)) || (rc = rd_u32(&r, &K, "K", err)) ||
        (rc = rd_u32(&r, &hasrot, "has_rotation", err)))
        goto fail;
    if (d > (1u << 16) || M > (1u << 16) || K > 256 || gslq__check_dims((int)d, (int)M, (int)K, NULL)) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: invalid sizes d=%u M=%u K=%u", path, d, M, K);
        goto fail;
    }
    if (hasrot > 1) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: has_rotation=%u (expected 0 or 1)", path, hasrot);
        goto fail;
    }
    uint64_t want = CB_HEADER + 4ull * K * d + (hasrot ? 4ull * d * d : 0) + 4;
    if (want != r.size) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: size %llu bytes, but d=%u M=%u K=%u%s need %llu", path,
                        (unsigned long long)r.size, d, M, K, hasrot ? " with rotation" : "",
                        (unsigned long long)want);
        goto fail;
    }
    if ((rc = gslq_pq_init(pq, (int)d, (int)M, (int)K, err))) goto fail;
    if (hasrot && !(pq->rotation = gslq__alloc(d, d, sizeof(float), 0))) {
        rc = gslq__fail(err, GSLQ_ENOMEM, "%s: out of memory for the rotation", path);
        goto fail;
    }
    if ((rc = rd_bytes(&r, pq->centroids, (size_t)K * d * sizeof(float), "centroids", err))) goto fail;
    if (hasrot && (rc = rd_bytes(&r, pq->rotation, (size_t)d * d * sizeof(float), "rotation", err))) goto fail;
    if ((rc = rd_check_crc(&r, err))) goto fail;
    if (!all_finite(pq->centroids, (size_t)K * d) || (hasrot && !all_finite(pq->rotation, (size_t)d * d))) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: non-finite values in the codebook", path);
        goto fail;
    }
    fclose(r.f);
    gslq__ok(err);
    return GSLQ_OK;
fail:
    fclose(r.f);
    gslq_pq_free(pq);
    return rc;
}

/* ---- codes ---- */

int gslq_codes_save(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, gslq_error *err)
{
    return gslq_codes_save_tagged(path, pq, codes, n, 0, err);
}

int gslq_codes_save_tagged(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, uint64_t tag,
                           gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "codes_save: NULL or uninitialised pq");
    int rc = gslq__check_dims(pq->d, pq->M, pq->K, err);
    if (rc) return rc;
    size_t bytes;
    if (n && !codes) return gslq__fail(err, GSLQ_EINVAL, "codes_save: NULL codes");
    if (gslq__mul(n, (size_t)pq->M, &bytes)) return gslq__fail(err, GSLQ_ENOMEM, "codes_save: size overflow");
    wr w;
    if ((rc = wr_open(&w, path, err))) return rc;
    wr_bytes(&w, CD_MAGIC, 8);
    wr_u32(&w, CD_VERSION);
    wr_u32(&w, (uint32_t)pq->M);
    wr_u32(&w, (uint32_t)pq->K);
    wr_u64(&w, (uint64_t)n);
    wr_u32(&w, pq_crc(pq));
    wr_u64(&w, tag);
    wr_bytes(&w, codes, bytes);
    wr_u32(&w, w.crc);
    if ((rc = wr_close(&w, err))) return rc;
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_codes_load(const char *path, const gslq_pq *pq, uint8_t **codes, size_t *n_out, int *M_out, gslq_error *err)
{
    return gslq_codes_load_tagged(path, pq, codes, n_out, M_out, NULL, err);
}

int gslq_codes_load_tagged(const char *path, const gslq_pq *pq, uint8_t **codes, size_t *n_out, int *M_out,
                           uint64_t *tag_out, gslq_error *err)
{
    if (!codes || !n_out) return gslq__fail(err, GSLQ_EINVAL, "codes_load: NULL output");
    *codes = NULL;
    rd r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    char magic[8];
    uint32_t ver, M, K, cbcrc;
    uint64_t n;
    uint8_t *c = NULL;
    if ((rc = rd_bytes(&r, magic, 8, "magic", err))) goto fail;
    if (memcmp(magic, CD_MAGIC, 8)) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: not a gslq codes file (bad magic)", path);
        goto fail;
    }
    if ((rc = rd_u32(&r, &ver, "version", err))) goto fail;
    if (ver != 1 && ver != CD_VERSION) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: codes version %u not supported (expected 1 or %u)", path, ver,
                        CD_VERSION);
        goto fail;
    }
    uint64_t tag = 0;
    uint64_t header = ver == 1 ? CD_HEADER_V1 : CD_HEADER;
    if ((rc = rd_u32(&r, &M, "M", err)) || (rc = rd_u32(&r, &K, "K", err)) || (rc = rd_u64(&r, &n, "n", err)) ||
        (rc = rd_u32(&r, &cbcrc, "codebook checksum", err)) || (ver > 1 && (rc = rd_u64(&r, &tag, "tag", err))))
        goto fail;
    if (M < 1 || M > (1u << 16) || K < 2 || K > 256) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: invalid sizes M=%u K=%u", path, M, K);
        goto fail;
    }
    if (r.size < header + 4 || n > (r.size - header - 4) / M) { /* also rejects n*M overflow */
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: declares %llu codes of %u bytes but holds %llu bytes", path,
                        (unsigned long long)n, M, (unsigned long long)r.size);
        goto fail;
    }
    if (header + n * M + 4 != r.size) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: size %llu bytes, but %llu codes of %u bytes need %llu", path,
                        (unsigned long long)r.size, (unsigned long long)n, M,
                        (unsigned long long)(header + n * M + 4));
        goto fail;
    }
    if (pq && ((int)M != pq->M || (int)K != pq->K)) {
        rc = gslq__fail(err, GSLQ_EINVAL, "%s: codes for M=%u K=%u, codebook has M=%d K=%d", path, M, K, pq->M,
                        pq->K);
        goto fail;
    }
    if (!(c = gslq__alloc((size_t)n, M, 1, 0))) {
        rc = gslq__fail(err, GSLQ_ENOMEM, "%s: out of memory for %llu codes", path, (unsigned long long)n);
        goto fail;
    }
    if ((rc = rd_bytes(&r, c, (size_t)n * M, "codes", err)) || (rc = rd_check_crc(&r, err))) goto fail;
    for (size_t i = 0; i < (size_t)n * M; i++)
        if (c[i] >= K) {
            rc = gslq__fail(err, GSLQ_EFORMAT, "%s: code %u of vector %zu >= K=%u", path, c[i], i / M, K);
            goto fail;
        }
    if (pq && !cbcrc && pq_crc(pq)) { /* every writer records it: a zero was put there to skip the check */
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: carries no codebook fingerprint, so it cannot be checked against the "
                        "codebook it is used with", path);
        goto fail;
    }
    if (pq && cbcrc != pq_crc(pq)) {
        rc = gslq__fail(err, GSLQ_EINVAL, "%s: encoded with another codebook (fingerprint %08x, codebook %08x)", path,
                        cbcrc, pq_crc(pq));
        goto fail;
    }
    fclose(r.f);
    *codes = c;
    *n_out = (size_t)n;
    if (M_out) *M_out = (int)M;
    if (tag_out) *tag_out = tag;
    gslq__ok(err);
    return GSLQ_OK;
fail:
    fclose(r.f);
    free(c);
    return rc;
}

/* ---- .fvecs / .ivecs ---- */

#define VECS_MAX_D (1 << 20)

static int vecs_read(const char *path, void **out, size_t *n_out, int *d_out, const char *kind, gslq_error *err)
{
    if (!out || !n_out || !d_out) return gslq__fail(err, GSLQ_EINVAL, "%s read: NULL output", kind);
    *out = NULL;
    rd r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    int32_t d;
    char *x = NULL;
    if (r.size == 0) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: empty %s file", path, kind);
        goto fail;
    }
    if ((rc = rd_bytes(&r, &d, 4, "dimension", err))) goto fail;
    if (d < 1 || d > VECS_MAX_D) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: dimension %d out of range 1..%d", path, d, VECS_MAX_D);
        goto fail;
    }
    uint64_t rec = 4 + 4ull * (uint64_t)d;
    if (r.size % rec) {
        rc = gslq__fail(err, GSLQ_EFORMAT, "%s: size %llu is not a multiple of the record size %llu (d=%d)", path,
                        (unsigned long long)r.size, (unsigned long long)rec, d);
        goto fail;
    }
    size_t n = (size_t)(r.size / rec);
    if (!(x = gslq__alloc(n, (size_t)d, 4, 0))) {
        rc = gslq__fail(err, GSLQ_ENOMEM, "%s: out of memory for %zu x %d", path, n, d);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t di = d;
        if (i > 0 && (rc = rd_bytes(&r, &di, 4, "dimension", err))) goto fail;
        if (di != d) {
            rc = gslq__fail(err, GSLQ_EFORMAT, "%s: vector %zu has dimension %d, vector 0 has %d", path, i, di, d);
            goto fail;
        }
        if ((rc = rd_bytes(&r, x + i * (size_t)d * 4, (size_t)d * 4, "vector", err))) goto fail;
    }
    fclose(r.f);
    *out = x;
    *n_out = n;
    *d_out = d;
    gslq__ok(err);
    return GSLQ_OK;
fail:
    fclose(r.f);
    free(x);
    return rc;
}

static int vecs_write(const char *path, const void *x, size_t n, int d, const char *kind, gslq_error *err)
{
    if (d < 1 || d > VECS_MAX_D) return gslq__fail(err, GSLQ_EINVAL, "%s write: dimension %d out of range", kind, d);
    if (n && !x) return gslq__fail(err, GSLQ_EINVAL, "%s write: NULL data", kind);
    wr w;
    int rc = wr_open(&w, path, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        wr_i32(&w, d);
        wr_bytes(&w, (const char *)x + i * (size_t)d * 4, (size_t)d * 4);
    }
    if ((rc = wr_close(&w, err))) return rc;
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_fvecs_read(const char *path, float **x, size_t *n, int *d, gslq_error *err)
{
    int rc = vecs_read(path, (void **)x, n, d, "fvecs", err);
    if (rc) return rc;
    if (!all_finite(*x, *n * (size_t)*d)) {
        free(*x);
        *x = NULL;
        return gslq__fail(err, GSLQ_EFORMAT, "%s: non-finite values", path);
    }
    return GSLQ_OK;
}

int gslq_fvecs_write(const char *path, const float *x, size_t n, int d, gslq_error *err)
{
    return vecs_write(path, x, n, d, "fvecs", err);
}

int gslq_ivecs_read(const char *path, int32_t **x, size_t *n, int *d, gslq_error *err)
{
    return vecs_read(path, (void **)x, n, d, "ivecs", err);
}

int gslq_ivecs_write(const char *path, const int32_t *x, size_t n, int d, gslq_error *err)
{
    return vecs_write(path, x, n, d, "ivecs", err);
}

#define LABEL_MAX 65536

int gslq_labels_read(const char *path, size_t expect_n, uint64_t **bits_out, size_t *n_out, int *nwords_out,
                     gslq_error *err)
{
    if (!bits_out || !n_out || !nwords_out) return gslq__fail(err, GSLQ_EINVAL, "labels read: NULL output");
    *bits_out = NULL;
    rd r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    int32_t *buf = gslq__alloc(LABEL_MAX, sizeof(int32_t), 1, 0);
    uint64_t *bits = NULL;
    size_t n = 0;
    int32_t maxc = -1;
    if (!buf) {
        rc = gslq__fail(err, GSLQ_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int pass = 0; pass < 2; pass++) { /* 1: count and validate; 2: fill */
        int nw = (maxc + 64) / 64;
        if (pass == 1) {
            if (!(bits = gslq__alloc(n, (size_t)(nw ? nw : 1), sizeof(uint64_t), 1))) {
                rc = gslq__fail(err, GSLQ_ENOMEM, "%s: out of memory for %zu label sets", path, n);
                goto fail;
            }
            if (fseek(r.f, 0, SEEK_SET)) {
                rc = gslq__fail(err, GSLQ_EIO, "%s: cannot rewind", path);
                goto fail;
            }
            r.pos = 0;
        }
        size_t i = 0;
        while (r.pos < r.size) {
            int32_t len;
            if ((rc = rd_bytes(&r, &len, 4, "label count", err))) goto fail;
            if (len < 0 || len > LABEL_MAX) {
                rc = gslq__fail(err, GSLQ_EFORMAT, "%s: record %zu has %d labels (0..%d)", path, i, len, LABEL_MAX);
                goto fail;
            }
            if ((rc = rd_bytes(&r, buf, (size_t)len * 4, "labels", err))) goto fail;
            for (int j = 0; j < len; j++) {
                if (buf[j] < 0 || buf[j] >= LABEL_MAX) {
                    rc = gslq__fail(err, GSLQ_EFORMAT, "%s: record %zu: class %d out of range 0..%d", path, i, buf[j],
                                    LABEL_MAX - 1);
                    goto fail;
                }
                if (pass == 0 && buf[j] > maxc) maxc = buf[j];
                if (pass == 1) bits[i * (size_t)nw + (size_t)(buf[j] / 64)] |= 1ull << (buf[j] % 64);
            }
            i++;
        }
        n = i;
        if (pass == 0 && expect_n && n != expect_n) {
            rc = gslq__fail(err, GSLQ_EINVAL, "%s: %zu label records for %zu items", path, n, expect_n);
            goto fail;
        }
        if (pass == 0 && n == 0) {
            rc = gslq__fail(err, GSLQ_EFORMAT, "%s: no label records", path);
            goto fail;
        }
        if (pass == 1) *nwords_out = nw ? nw : 1;
    }
    fclose(r.f);
    free(buf);
    *bits_out = bits;
    *n_out = n;
    gslq__ok(err);
    return GSLQ_OK;
fail:
    fclose(r.f);
    free(buf);
    free(bits);
    return rc;
}

/* ---- Faiss export ----
 * IndexPQ as Faiss 1.7.x writes it (impl/index_write.cpp): "IxPq", the index header (d i32, ntotal i64, two i64
 * dummies 1<<20, is_trained u8, metric i32 = 1 for L2), the ProductQuantizer (d, M, nbits as u64; centroids as a
 * u64 count and float32 (M, K, dsub)), the codes (u64 count, bytes; nbits < 8 packs codes little-endian bitwise,
 * each vector's code starting on a byte), search_type i32 = 0, encode_signs u8 = 0, polysemous_ht i32 = M*nbits+1.
 * With a rotation: "IxPT", the same header, one transform ("LTra": have_bias u8 = 0, A as u64 count + floats (d, d)
 * row-major with y = A x, b as u64 count 0, d_in i32, d_out i32, is_trained u8), then the IndexPQ. */

static void faiss_header(wr *w, const char *fourcc, int d, size_t n)
{
    wr_bytes(w, fourcc, 4);
    wr_i32(w, d);
    wr_i64(w, (int64_t)n);
    wr_i64(w, 1 << 20);
    wr_i64(w, 1 << 20);
    wr_u8(w, 1);
    wr_i32(w, 1);
}

/* Checks what both exports need: an initialised pq with K a power of two; *nbits and *csize (bytes per code). */
static int faiss_pq_check(const gslq_pq *pq, const uint8_t *codes, size_t n, int *nbits, size_t *csize,
                          gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "export_faiss: NULL or uninitialised pq");
    int rc = gslq__check_dims(pq->d, pq->M, pq->K, err);
    if (rc) return rc;
    if (n && !codes) return gslq__fail(err, GSLQ_EINVAL, "export_faiss: NULL codes");
    int b = 0;
    while ((1 << b) < pq->K) b++;
    if ((1 << b) != pq->K)
        return gslq__fail(err, GSLQ_EINVAL, "export_faiss: K=%d is not a power of two (Faiss needs K = 2^nbits)", pq->K);
    if (n > (size_t)INT64_MAX / 2) return gslq__fail(err, GSLQ_EINVAL, "export_faiss: too many codes");
    *nbits = b;
    *csize = ((size_t)pq->M * b + 7) / 8;
    size_t total;
    if (gslq__mul(n, *csize, &total)) return gslq__fail(err, GSLQ_ENOMEM, "export_faiss: size overflow");
    return GSLQ_OK;
}

/* With a rotation, the IndexPreTransform's header and its LinearTransform (the index proper follows). */
static void faiss_rotation(wr *w, const gslq_pq *pq, size_t n)
{
    int d = pq->d;
    faiss_header(w, "IxPT", d, n);
    wr_i32(w, 1);
    wr_bytes(w, "LTra", 4);
    wr_u8(w, 0);
    wr_u64(w, (uint64_t)d * d);
    wr_bytes(w, pq->rotation, (size_t)d * d * sizeof(float));
    wr_u64(w, 0);
    wr_i32(w, d);
    wr_i32(w, d);
    wr_u8(w, 1);
}

/* Faiss's ProductQuantizer: d, M, nbits (u64 each), then the centroids as a float vector (count, values). */
static void faiss_pq(wr *w, const gslq_pq *pq, int nbits)
{
    wr_u64(w, (uint64_t)pq->d);
    wr_u64(w, (uint64_t)pq->M);
    wr_u64(w, (uint64_t)nbits);
    wr_u64(w, (uint64_t)pq->K * pq->d);
    wr_bytes(w, pq->centroids, (size_t)pq->K * pq->d * sizeof(float));
}

/* Code i in Faiss's layout: M indices of nbits each, least significant bit first. */
static void faiss_pack(const gslq_pq *pq, int nbits, size_t csize, const uint8_t *code, uint8_t *packed)
{
    if (nbits == 8) {
        memcpy(packed, code, csize);
        return;
    }
    memset(packed, 0, csize);
    for (int m = 0; m < pq->M; m++) {
        unsigned v = code[m];
        for (int b = 0; b < nbits; b++) {
            size_t bit = (size_t)m * nbits + b;
            if (v >> b & 1) packed[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
}

int gslq_export_faiss(const char *path, const gslq_pq *pq, const uint8_t *codes, size_t n, gslq_error *err)
{
    int nbits;
    size_t csize;
    int rc = faiss_pq_check(pq, codes, n, &nbits, &csize, err);
    if (rc) return rc;
    uint8_t *packed = gslq__alloc(csize, 1, 1, 1);
    if (!packed) return gslq__fail(err, GSLQ_ENOMEM, "export_faiss: out of memory");
    wr w;
    if ((rc = wr_open(&w, path, err))) {
        free(packed);
        return rc;
    }
    if (pq->rotation) faiss_rotation(&w, pq, n);
    faiss_header(&w, "IxPq", pq->d, n);
    faiss_pq(&w, pq, nbits);
    wr_u64(&w, (uint64_t)(n * csize));
    for (size_t i = 0; i < n; i++) {
        faiss_pack(pq, nbits, csize, codes + i * pq->M, packed);
        wr_bytes(&w, packed, csize);
    }
    wr_i32(&w, 0);
    wr_u8(&w, 0);
    wr_i32(&w, pq->M * nbits + 1);
    free(packed);
    if ((rc = wr_close(&w, err))) return rc;
    gslq__ok(err);
    return GSLQ_OK;
}

int gslq_export_faiss_ivf(const char *path, const gslq_pq *pq, const float *coarse, int nlist, const int32_t *list_of,
                          const uint8_t *codes, size_t n, gslq_error *err)
{
    int nbits;
    size_t csize;
    int rc = faiss_pq_check(pq, codes, n, &nbits, &csize, err);
    if (rc) return rc;
    if (nlist < 1 || !coarse || (n && !list_of))
        return gslq__fail(err, GSLQ_EINVAL, "export_faiss_ivf: nlist %d, coarse %p, list_of %p", nlist,
                          (const void *)coarse, (const void *)list_of);
    for (size_t i = 0; i < n; i++)
        if (list_of[i] < 0 || list_of[i] >= nlist)
            return gslq__fail(err, GSLQ_EINVAL, "export_faiss_ivf: item %zu is in list %d of %d", i, (int)list_of[i],
                              nlist);
    int d = pq->d;
    /* the lists by a counting sort, ids ascending within a list */
    uint64_t *size = gslq__alloc((size_t)nlist, sizeof(uint64_t), 1, 1);
    size_t *start = gslq__alloc((size_t)nlist + 1, sizeof(size_t), 1, 1);
    int64_t *order = gslq__alloc(n ? n : 1, sizeof(int64_t), 1, 0);
    uint8_t *packed = gslq__alloc(csize, 1, 1, 1);
    if (!size || !start || !order || !packed) {
        free(size); free(start); free(order); free(packed);
        return gslq__fail(err, GSLQ_ENOMEM, "export_faiss_ivf: out of memory for %d lists", nlist);
    }
    for (size_t i = 0; i < n; i++) size[list_of[i]]++;
    for (int l = 0; l < nlist; l++) start[l + 1] = start[l] + size[l];
    size_t nonempty = 0;
    for (int l = 0; l < nlist; l++) nonempty += size[l] > 0;
    {
        size_t *fill = gslq__alloc((size_t)nlist, sizeof(size_t), 1, 0);
        if (!fill) {
            free(size); free(start); free(order); free(packed);
            return gslq__fail(err, GSLQ_ENOMEM, "export_faiss_ivf: out of memory");
        }
        memcpy(fill, start, sizeof(size_t) * nlist);
        for (size_t i = 0; i < n; i++) order[fill[list_of[i]]++] = (int64_t)i;
        free(fill);
    }
    wr w;
    if ((rc = wr_open(&w, path, err))) {
        free(size); free(start); free(order); free(packed);
        return rc;
    }
    if (pq->rotation) faiss_rotation(&w, pq, n);
    /* IndexIVF's header: the index header, nlist and nprobe, the coarse quantizer, an empty direct map */
    faiss_header(&w, "IwPQ", d, n);
    wr_u64(&w, (uint64_t)nlist);
    wr_u64(&w, 1);
    faiss_header(&w, "IxF2", d, (size_t)nlist);
    wr_u64(&w, (uint64_t)nlist * d);
    wr_bytes(&w, coarse, (size_t)nlist * d * sizeof(float));
    wr_u8(&w, 0);
    wr_u64(&w, 0);
    /* IndexIVFPQ: by_residual (0: the codes quantize the vectors themselves), code size, the product quantizer */
    wr_u8(&w, 0);
    wr_u64(&w, (uint64_t)csize);
    faiss_pq(&w, pq, nbits);
    /* ArrayInvertedLists: the list sizes ("full", or "sprs" pairs of (list, size) when at most half are non-empty),
     * then each non-empty list's codes and ids */
    wr_bytes(&w, "ilar", 4);
    wr_u64(&w, (uint64_t)nlist);
    wr_u64(&w, (uint64_t)csize);
    if (nonempty > (size_t)nlist / 2) {
        wr_bytes(&w, "full", 4);
        wr_u64(&w, (uint64_t)nlist);
        wr_bytes(&w, size, sizeof(uint64_t) * nlist);
    } else {
        wr_bytes(&w, "sprs", 4);
        wr_u64(&w, 2 * (uint64_t)nonempty);
        for (int l = 0; l < nlist; l++)
            if (size[l]) {
                wr_u64(&w, (uint64_t)l);
                wr_u64(&w, size[l]);
            }
    }
    for (int l = 0; l < nlist; l++) {
        if (!size[l]) continue;
        for (size_t j = start[l]; j < start[l + 1]; j++) {
            faiss_pack(pq, nbits, csize, codes + (size_t)order[j] * pq->M, packed);
            wr_bytes(&w, packed, csize);
        }
        wr_bytes(&w, order + start[l], sizeof(int64_t) * size[l]);
    }
    free(size); free(start); free(order); free(packed);
    if ((rc = wr_close(&w, err))) return rc;
    gslq__ok(err);
    return GSLQ_OK;
}
