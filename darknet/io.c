/* Files for the gsl command, and its error convention: an error is a message naming the file (and where there is
 * one the line, section and key) written into the caller's buffer, with -1 returned; files are read only when they
 * are regular files (a named pipe never blocks a run) and written through libgslq's one atomic commit (sync, rename,
 * sync the folder). */
#include "io.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gslq.h"


int gsl_open_regular(const char *path, char *err)
{
    /* O_NONBLOCK: opening a named pipe must not wait for a writer; anything but a plain file is refused */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return gsl_fail(err, "%s: not a regular file", path), -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
        close(fd);
        return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno)), -1;
    }
    return fd;
}

FILE *gsl_fopen_read(const char *path, char *err)
{
    int fd = gsl_open_regular(path, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "r");
    if (!f) { close(fd); gsl_fail(err, "%s: cannot open: %s", path, strerror(errno)); }
    return f;
}


int gsl_mkdirs(const char *path, char *err)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return gsl_fail(err, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return gsl_fail(err, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return gsl_fail(err, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

int gsl_commit_file(const char *tmp, const char *path, char *err)
{
    gslq_error e = {0};
    if (gslq_commit_file(tmp, path, &e)) return gsl_fail(err, "%s", e.msg);
    return 0;
}

FILE *gsl_create_tmp(const char *path, char *tmp, char *err)
{
    gslq_error e = {0};
    FILE *f = gslq_create_tmp(path, tmp, &e);
    if (!f) gsl_fail(err, "%s", e.msg);
    return f;
}

int gsl_close_commit(FILE *f, const char *tmp, const char *path, char *err)
{
    int bad = ferror(f), e = 0; /* an earlier write's errno is gone by now: only the flush's and close's are named */
    if (fflush(f)) e = errno ? errno : EIO;
    if (fclose(f) && !e) e = errno ? errno : EIO;
    if (bad || e) {
        unlink(tmp);
        return gsl_fail(err, "%s: write failed%s%s", path, e ? ": " : " (disk full?)", e ? strerror(e) : "");
    }
    return gsl_commit_file(tmp, path, err);
}

int gsl_write_atomic(const char *path, const void *data, size_t n, char *err)
{
    char tmp[GSLQ_TMP_PATH_MAX];
    FILE *f = gsl_create_tmp(path, tmp, err);
    if (!f) return -1;
    fwrite(data, 1, n, f);
    return gsl_close_commit(f, tmp, path, err);
}

long long gsl_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

uint32_t gsl_fnv1a(uint32_t h, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int file_crc(const char *path, int fnv, uint32_t *crc, char *err)
{
    struct stat st;
    if (stat(path, &st)) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return gsl_fail(err, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    uint32_t c = fnv ? GSL_FNV1A_INIT : 0;
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) c = fnv ? gsl_fnv1a(c, buf, n) : gslq_crc32(c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return gsl_fail(err, "%s: read failed", path);
    *crc = c;
    return 0;
}

int gsl_file_crc(const char *path, uint32_t *crc, char *err) { return file_crc(path, 0, crc, err); }

int gsl_file_digest(const char *path, uint32_t *crc, char *err) { return file_crc(path, 1, crc, err); }


char *gsl_trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}
