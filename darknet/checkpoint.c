/* Checkpoints: checked Darknet weight files, the optimizer state, the manifest that commits an epoch's (or a
 * position's) files with their checksums, the backup folder's lock and the run's identity. */
#include "gsl_net.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codebook.h"
#include "net_buffers.h"
#include "registry.h"
#include "weights_state.h"


/* ------------------------------------------------------------------------------------------------ weights */

/* Bytes save_weights writes for this network, or -1 when a layer type is not sized here. */
static long long weights_bytes(const network *net)
{
    long long floats = 0;
    for (int i = 0; i < net->n; i++) {
        const layer *l = &net->layers[i];
        if (l->dontsave) continue;
        switch (l->type) {
        case CONVOLUTIONAL:
        case DECONVOLUTIONAL:
            floats += l->n + (long long)l->nweights + (l->batch_normalize ? 3LL * l->n : 0);
            break;
        case CONNECTED:
            floats += l->outputs + (long long)l->outputs * l->inputs + (l->batch_normalize ? 3LL * l->outputs : 0);
            break;
        case BATCHNORM: floats += 3LL * l->c; break;
        case RNN: case CRNN: case LSTM: case GRU: case LOCAL: return -1;
        default: break;
        }
    }
    return 3 * sizeof(int) + sizeof(size_t) + floats * (long long)sizeof(float);
}

/* A Darknet .weights file of version 0.2 or later (3 int32 then a size_t `seen`) whose every value in its first
 * `upto` bytes (all of it when < 0: the plugin state that may follow has its own checksum) is finite; the whole file's
 * CRC-32 in *crc when non-NULL. */
static int weights_scan(const char *path, long long upto, uint32_t *digest, char *err)
{
    struct stat st;
    if (stat(path, &st)) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return gsl_fail(err, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    int32_t ver[3];
    uint64_t seen;
    int rc = 0;
    if (fread(ver, sizeof ver, 1, f) != 1 || fread(&seen, sizeof seen, 1, f) != 1) {
        fclose(f);
        return gsl_fail(err, "%s: too short for a weights file", path);
    }
    /* Darknet's own test for the header with a 64-bit `seen` (what save_weights writes) */
    if (!(ver[0] >= 0 && ver[1] >= 0 && ver[0] < 1000 && ver[1] < 1000 && ver[2] >= 0 && ver[0] * 10 + ver[1] >= 2)) {
        fclose(f);
        return gsl_fail(err, "%s: damaged header (version %d.%d.%d): not a Darknet weights file of version 0.2 or "
                        "later", path, ver[0], ver[1], ver[2]);
    }
    uint32_t c = gsl_fnv1a(gsl_fnv1a(GSL_FNV1A_INIT, ver, sizeof ver), &seen, sizeof seen); /* gsl_file_digest */
    float buf[1 << 14];
    long long at = 0, bad = 0, first = -1, nvals = upto < 0 ? -1 : (upto - 20) / (long long)sizeof(float);
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0; at += (long long)(n / sizeof(float))) {
        c = gsl_fnv1a(c, buf, n);
        for (size_t i = 0; i < n / sizeof(float); i++)
            if ((nvals < 0 || at + (long long)i < nvals) && !isfinite(buf[i])) {
                bad++;
                if (first < 0) first = at + (long long)i;
            }
    }
    if (nvals >= 0 && at > nvals) at = nvals;
    if (ferror(f)) rc = gsl_fail(err, "%s: read failed", path);
    fclose(f);
    if (!rc && bad)
        rc = gsl_fail(err, "%s: %lld of %lld weights are not finite (the first is value %lld): a diverged run or a "
                      "damaged file", path, bad, at, first);
    if (!rc && digest) *digest = c;
    return rc;
}

/* The bytes of the plugin state a weights file carries for this network (0: none), checked. */
static int state_bytes(const network *net, const char *path, long long *bytes, char *err)
{
    char e2[GSL_ERRLEN] = "";
    if (gsl_weights_state_check((network *)net, path, bytes, e2)) return gsl_fail(err, "%s", e2);
    return 0;
}

int gsl_weights_check(const network *net, const char *path, char *err)
{
    int fd = gsl_open_regular(path, err); /* before anything opens it blocking: a named pipe is refused */
    if (fd < 0) return -1;
    close(fd);
    long long have = gsl_file_size(path), want = weights_bytes(net), extra = 0;
    if (have < 0) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (state_bytes(net, path, &extra, err)) return -1;
    if (want >= 0 && have != want + extra)
        return gsl_fail(err, "%s: %lld bytes, but this network's weights take %lld%s (another cfg, or a truncated "
                        "file)", path, have - extra, want, extra ? " before the plugin state" : "");
    return weights_scan(path, want >= 0 ? want : -1, NULL, err);
}

int gsl_weights_save(network *net, const char *path, uint32_t *digest, char *err)
{
    char tmp[GSLQ_TMP_PATH_MAX];
    FILE *f = gsl_create_tmp(path, tmp, err); /* Darknet's save_weights exits on an unwritable path: create it first */
    if (!f) return -1;
    save_weights(net, tmp); /* opens tmp again by its name: it must still be the file created above */
    struct stat mine, now;
    int same = fstat(fileno(f), &mine) == 0 && lstat(tmp, &now) == 0 && S_ISREG(now.st_mode) &&
               mine.st_dev == now.st_dev && mine.st_ino == now.st_ino;
    fclose(f);
    if (!same) {
        unlink(tmp);
        return gsl_fail(err, "%s: replaced by something else while the weights were written to it", tmp);
    }
    long long have = gsl_file_size(tmp), want = weights_bytes(net), extra = 0;
    if (have < 0 || state_bytes(net, tmp, &extra, err) || (want >= 0 && have != want + extra)) {
        unlink(tmp);
        return gsl_fail(err, "%s: wrote %lld of %lld bytes (disk full?)", tmp, have, want + extra);
    }
    if (weights_scan(tmp, want >= 0 ? want : -1, digest, err)) { /* nothing non-finite is ever committed */
        unlink(tmp);
        return -1;
    }
    return gsl_commit_file(tmp, path, err);
}

/* ------------------------------------------------------------------------------------------------ optimizer */

#define OPTIM_MAGIC "GSLOPTM1"

/* The momentum buffers (GSL_BUF_GRAD of darknet/net_buffers.h, in its order) written, read or counted, with the
 * CRC-32 of what passed; `bad` is set by a short read or write. */
typedef struct { FILE *f; uint32_t crc; size_t floats; int bad; } io_ctx;

static void write_buf(gsl_buf b, void *c)
{
    io_ctx *x = c;
    gsl_buf_pull(b, NULL);
    x->crc = gslq_crc32(x->crc, b.cpu, b.n * sizeof(float));
    x->floats += b.n;
    if (!x->bad && fwrite(b.cpu, sizeof(float), b.n, x->f) != b.n) x->bad = 1;
}

static void read_buf(gsl_buf b, void *c)
{
    io_ctx *x = c;
    if (x->bad || fread(b.cpu, sizeof(float), b.n, x->f) != b.n) { x->bad = 1; return; }
    x->crc = gslq_crc32(x->crc, b.cpu, b.n * sizeof(float));
    x->floats += b.n;
}

static void count_buf(gsl_buf b, void *c) { ((io_ctx *)c)->floats += b.n; }

int gsl_optim_save(network *net, const char *path, char *err)
{
    gsl_net_set_device(net);
    char tmp[GSLQ_TMP_PATH_MAX];
    io_ctx c = {gsl_create_tmp(path, tmp, err), 0, 0, 0};
    if (!c.f) return -1;
    io_ctx n = {0};
    gsl_net_each_buffer(net, GSL_BUF_GRAD, count_buf, &n);
    uint64_t count = n.floats;
    fwrite(OPTIM_MAGIC, 1, 8, c.f);
    fwrite(&count, sizeof count, 1, c.f);
    gsl_net_each_buffer(net, GSL_BUF_GRAD, write_buf, &c);
    fwrite(&c.crc, sizeof c.crc, 1, c.f); /* a short write sets the stream's error, which gsl_close_commit reports */
    return gsl_close_commit(c.f, tmp, path, err);
}

int gsl_optim_load(network *net, const char *path, char *err)
{
    FILE *f = gsl_fopen_read(path, err);
    if (!f) return -1;
    io_ctx c = {f, 0, 0, 0}, n = {0};
    char magic[8];
    uint64_t count = 0;
    uint32_t crc = 0;
    gsl_net_each_buffer(net, GSL_BUF_GRAD, count_buf, &n);
    int rc = 0;
    if (fread(magic, 1, 8, c.f) != 8 || memcmp(magic, OPTIM_MAGIC, 8)) rc = gsl_fail(err, "%s: not an optimizer state file", path);
    else if (fread(&count, sizeof count, 1, c.f) != 1 || count != n.floats)
        rc = gsl_fail(err, "%s: holds %llu floats, this network has %zu", path, (unsigned long long)count, n.floats);
    else if ((gsl_net_each_buffer(net, GSL_BUF_GRAD, read_buf, &c), c.bad) || fread(&crc, sizeof crc, 1, c.f) != 1)
        rc = gsl_fail(err, "%s: truncated", path);
    else if (crc != c.crc) rc = gsl_fail(err, "%s: checksum mismatch (corrupted)", path);
    fclose(c.f);
    if (!rc) {
        gsl_net_set_device(net);
        gsl_net_each_buffer(net, GSL_BUF_GRAD, gsl_buf_push, NULL);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------------ checkpoints */

/* Crash injection for the tests: GSL_FAULT_KILL=weights|manifest|committed kills the process with SIGKILL at that
 * point of a checkpoint save (after the weights, before the manifest, after the manifest), as a power cut or the OOM
 * killer would. */
static void fault_point(const char *where)
{
    const char *f = getenv("GSL_FAULT_KILL");
    if (f && strcmp(f, where) == 0) raise(SIGKILL);
}

static void epoch_file(char *out, size_t cap, const char *prefix, int epoch, int step, const char *what)
{
    if (step) snprintf(out, cap, "%s_e%04d_s%06d%s", prefix, epoch, step, what);
    else snprintf(out, cap, "%s_e%04d%s", prefix, epoch, what);
}

/* The files of checkpoints taken within the epoch after `epoch` (prefix_eNNNN_s*). */
static void remove_position_files(const char *prefix, int epoch)
{
    char pat[1200];
    snprintf(pat, sizeof pat, "%s_e%04d_s*", prefix, epoch);
    glob_t g;
    if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
    globfree(&g);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* A manifest's file name: relative ones are relative to the manifest's folder. */
static void resolve(char *path, size_t cap, const char *manifest)
{
    if (!path[0] || path[0] == '/') return;
    const char *slash = strrchr(manifest, '/');
    if (!slash) return;
    char buf[2100];
    int n = snprintf(buf, sizeof buf, "%.*s/%s", (int)(slash - manifest), manifest, path);
    if (n > 0 && (size_t)n < cap) memcpy(path, buf, (size_t)n + 1); /* too long: left as is, reported missing */
}

static void remove_epoch_files(const char *prefix, int epoch, int ncb)
{
    char p[1100];
    epoch_file(p, sizeof p, prefix, epoch, 0, ".weights"); unlink(p);
    epoch_file(p, sizeof p, prefix, epoch, 0, ".optim"); unlink(p);
    for (int i = 0; i < ncb; i++) {
        char what[64];
        snprintf(what, sizeof what, "_cb%d.codebook", i);
        epoch_file(p, sizeof p, prefix, epoch, 0, what);
        unlink(p);
        snprintf(what, sizeof what, "_cb%d.samples.fvecs", i);
        epoch_file(p, sizeof p, prefix, epoch, 0, what);
        unlink(p);
    }
}

int gsl_folder_lock(const char *dir, char *err)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/.gsl-train.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return gsl_fail(err, "%s: cannot create the run's lock file: %s", path, strerror(errno)), -1;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return gsl_fail(err, "%s: another training run is using this backup folder (%s); wait for it to end, or "
                            "give this run another backup folder in its .data file", dir,
                            holder[0] ? holder : "holder unknown"), -1;
        return gsl_fail(err, "%s: cannot lock: %s", path, strerror(e)), -1;
    }
    /* the kernel releases the lock when this process ends, however it ends */
    char host[128] = "?", line[256];
    gethostname(host, sizeof host - 1);
    int len = snprintf(line, sizeof line, "pid %d on %s\n", (int)getpid(), host);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)len, 0) == len) fsync(fd);
    return fd;
}

uint64_t gsl_run_id(void)
{
    uint64_t id = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&id, sizeof id, 1, f) != 1) id = 0;
        fclose(f);
    }
    if (!id) { /* no /dev/urandom: the clock and the process */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid();
    }
    return id ? id : 1;
}

int gsl_ckpt_save(network *net, const char *prefix, int epoch, uint64_t seed, uint64_t run, int ncb,
                  const int *cb_layer, gslq_pq *const *pqs, const gsl_ckpt_samples *samples,
                  const gsl_ckpt_position *pos, char *err)
{
    gsl_ckpt ck = {0};
    ck.epoch = epoch;
    ck.seed = seed;
    ck.ncb = ncb;
    int step = pos ? pos->step : 0;
    epoch_file(ck.weights, sizeof ck.weights, prefix, epoch, step, ".weights");
    epoch_file(ck.optim, sizeof ck.optim, prefix, epoch, step, ".optim");
    if (gsl_weights_save(net, ck.weights, &ck.crc_weights, err)) return -1;
    fault_point("weights");
    if (gsl_optim_save(net, ck.optim, err) || gsl_file_digest(ck.optim, &ck.crc_optim, err)) return -1;
    for (int i = 0; i < ncb; i++) {
        ck.cb_layer[i] = cb_layer[i];
        ck.cb_installed[i] = pqs[i] != NULL;
        if (!pqs[i]) continue;
        char what[64];
        snprintf(what, sizeof what, "_cb%d.codebook", i);
        epoch_file(ck.codebook[i], sizeof ck.codebook[i], prefix, epoch, step, what);
        gslq_error e = {0};
        if (gslq_pq_save(ck.codebook[i], pqs[i], &e)) return gsl_fail(err, "%s", e.msg);
        if (gsl_file_digest(ck.codebook[i], &ck.crc_codebook[i], err)) return -1;
    }
    for (int i = 0; samples && i < ncb; i++) {
        if (!samples->rows[i] || samples->n[i] <= 0) continue;
        char what[64];
        snprintf(what, sizeof what, "_cb%d.samples.fvecs", i);
        epoch_file(ck.samples[i], sizeof ck.samples[i], prefix, epoch, step, what);
        size_t cnt = (size_t)samples->n[i] * samples->d[i];
        for (size_t k = 0; k < cnt; k++)
            if (!isfinite(samples->rows[i][k]))
                return gsl_fail(err, "%s: the rebuild samples of codebook %d are not finite: not saved", prefix, i);
        gslq_error e = {0};
        if (gslq_fvecs_write(ck.samples[i], samples->rows[i], (size_t)samples->n[i], samples->d[i], &e))
            return gsl_fail(err, "%s", e.msg);
        if (gsl_file_digest(ck.samples[i], &ck.crc_samples[i], err)) return -1;
    }
    /* The manifest names its files relative to its own folder (they live beside it), so a backup folder can be
     * moved or read from another working directory; each with the CRC-32 it was written with. */
    char text[8192];
    int len = snprintf(text, sizeof text,
                       "gsl-checkpoint 3\nrun %016" PRIx64 "\nepoch %d\nseed %" PRIu64 "\nnetwork %d %08" PRIx32
                       "\nweights %s %08" PRIx32 "\noptim %s %08" PRIx32 "\ncodebooks %d\n",
                       run, epoch, seed, net->n, gsl_net_signature(net), base_name(ck.weights), ck.crc_weights,
                       base_name(ck.optim), ck.crc_optim, ncb);
    for (int i = 0; i < ncb && len < (int)sizeof text; i++) {
        if (ck.cb_installed[i])
            len += snprintf(text + len, sizeof text - len, "codebook %d %s %08" PRIx32 "\n", cb_layer[i],
                            base_name(ck.codebook[i]), ck.crc_codebook[i]);
        else
            len += snprintf(text + len, sizeof text - len, "codebook %d - -\n", cb_layer[i]);
    }
    for (int i = 0; i < ncb && len < (int)sizeof text; i++)
        if (ck.samples[i][0])
            len += snprintf(text + len, sizeof text - len, "samples %d %s %08" PRIx32 "\n", i, base_name(ck.samples[i]),
                            ck.crc_samples[i]);
    if (step && len < (int)sizeof text) /* the epoch the position is in */
        len += snprintf(text + len, sizeof text - len, "layout %d %d\n", pos->steps, pos->per_step);
    if (step && len < (int)sizeof text) { /* the loss sum in hexadecimal: exact */
        len += snprintf(text + len, sizeof text - len, "position %d %a %016" PRIx64, step, pos->loss_sum, pos->res_rng);
        for (int i = 0; i < ncb && len < (int)sizeof text; i++)
            len += snprintf(text + len, sizeof text - len, " %ld", pos->res_seen[i]);
        if (len < (int)sizeof text) len += snprintf(text + len, sizeof text - len, "\n");
    }
    if (len >= (int)sizeof text) return gsl_fail(err, "%s.ckpt: manifest too long", prefix);
    char manifest[1100];
    snprintf(manifest, sizeof manifest, "%s.ckpt", prefix);
    fault_point("manifest");
    if (gsl_write_atomic(manifest, text, (size_t)len, err)) return -1;
    fault_point("committed");
    if (step) return 0; /* taken within an epoch: the last epoch's files stay as the spare */
    /* The new manifest is in place: epoch-2's files are no longer referenced (epoch-1's are kept as a spare), nor
     * are those of checkpoints taken within the epoch just finished. */
    if (epoch >= 2) remove_epoch_files(prefix, epoch - 2, ncb);
    if (epoch >= 1) remove_position_files(prefix, epoch - 1);
    return 0;
}

/* A whole non-negative decimal integer of at most 9 digits (no sign, no junk). */
static int parse_small(const char *s, int *out)
{
    int n = 0, v = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 9) return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (!n || s[n]) return -1;
    *out = v;
    return 0;
}

/* `word` then one space-separated field per pointer (each at most 1023 characters) and nothing else. */
static int fields(const char *line, const char *word, int nf, char (*f)[1024])
{
    size_t wl = strlen(word);
    if (strncmp(line, word, wl) || line[wl] != ' ') return -1;
    const char *p = line + wl;
    for (int i = 0; i < nf; i++) {
        if (*p != ' ') return -1;
        p++;
        size_t n = strcspn(p, " ");
        if (!n || n >= 1024) return -1;
        memcpy(f[i], p, n);
        f[i][n] = 0;
        p += n;
    }
    return *p ? -1 : 0;
}

static int parse_crc(const char *s, uint32_t *out)
{
    if (strlen(s) != 8 || strspn(s, "0123456789abcdef") != 8) return -1;
    *out = (uint32_t)strtoul(s, NULL, 16);
    return 0;
}

/* The file was written for this epoch and step: its name carries _eNNNN (and _sSSSSSS) of it. */
static int names_epoch(const char *path, int epoch, int step)
{
    char tag[48];
    if (step) snprintf(tag, sizeof tag, "_e%04d_s%06d", epoch, step);
    else snprintf(tag, sizeof tag, "_e%04d", epoch);
    const char *b = base_name(path), *t = strstr(b, tag);
    if (!t) return 0;
    t += strlen(tag);
    return *t == '.' || !strncmp(t, "_cb", 3);
}

static int verify(const char *manifest, int version, const char *what, const char *path, uint32_t want, char *err)
{
    uint32_t got;
    if ((version >= 3 ? gsl_file_digest : gsl_file_crc)(path, &got, err)) return -1;
    if (got != want)
        return gsl_fail(err, "%s: its %s file %s does not match the checksum the manifest recorded (%08" PRIx32
                        ", the file has %08" PRIx32 "): damaged, or replaced by another epoch's or run's file",
                        manifest, what, path, want, got);
    return 0;
}

#define CKPT_MAX_EPOCH 10000000

/* "STEP LOSS_SUM RNG SEEN_0 .. SEEN_ncb-1" */
static int parse_position(const char *s, gsl_ckpt *ck, int have_ncb, char *err)
{
    (void)err;
    if (!have_ncb) return -1;
    char *end;
    long step = strtol(s, &end, 10);
    if (end == s || *end != ' ' || step < 1 || step > 100000000) return -1;
    ck->pos.step = (int)step;
    s = end + 1;
    ck->pos.loss_sum = strtod(s, &end);
    if (end == s || *end != ' ' || !isfinite(ck->pos.loss_sum)) return -1;
    s = end + 1;
    errno = 0;
    ck->pos.res_rng = strtoull(s, &end, 16);
    if (errno || end - s != 16) return -1;
    for (int i = 0; i < ck->ncb; i++) {
        s = end;
        if (*s != ' ') return -1;
        s++;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0) return -1;
        ck->pos.res_seen[i] = v;
    }
    return *end ? -1 : 0;
}

/* One loop over the manifest's lines with a branch per line kind, then the whole-manifest checks: longer than a
 * screen because the line kinds and their checks read best side by side. */
int gsl_ckpt_read(const char *manifest, gsl_ckpt *ck, char *err)
{
    memset(ck, 0, sizeof *ck);
    struct stat st;
    if (stat(manifest, &st)) return gsl_fail(err, "%s: cannot open: %s", manifest, strerror(errno));
    if (!S_ISREG(st.st_mode)) return gsl_fail(err, "%s: not a regular file", manifest);
    if (st.st_size > 65536) return gsl_fail(err, "%s: %lld bytes: not a gsl checkpoint manifest", manifest,
                                            (long long)st.st_size);
    FILE *f = gsl_fopen_read(manifest, err);
    if (!f) return -1;
    char line[1200], fl[3][1024];
    int got = 0, ncb_seen = 0, lineno = 0, rc = 0, samples_seen = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        size_t L = strlen(line);
        if (L && line[L - 1] == '\n') line[--L] = 0;
        else if (!feof(f)) { rc = gsl_fail(err, "%s: line %d is too long", manifest, lineno); break; }
#define ONCE(bit, key)                                                                                      \
    if (got & (bit)) { rc = gsl_fail(err, "%s: line %d: '%s' is given twice", manifest, lineno, key); break; } \
    got |= (bit)
        int v;
        if (!fields(line, "gsl-checkpoint", 1, fl)) {
            ONCE(1, "gsl-checkpoint");
            if (parse_small(fl[0], &ck->version) || ck->version < 1 || ck->version > 3)
                rc = gsl_fail(err, "%s: version '%s' (this build reads versions 1 to 3)", manifest, fl[0]);
        } else if (!fields(line, "run", 1, fl)) {
            ONCE(64, "run");
            char *end;
            errno = 0;
            ck->run = strtoull(fl[0], &end, 16);
            if (errno || *end || strlen(fl[0]) != 16) rc = gsl_fail(err, "%s: line %d: bad run id", manifest, lineno);
        } else if (!fields(line, "epoch", 1, fl)) {
            ONCE(2, "epoch");
            if (parse_small(fl[0], &ck->epoch) || ck->epoch > CKPT_MAX_EPOCH)
                rc = gsl_fail(err, "%s: line %d: epoch '%s' is not a count of epochs up to %d", manifest, lineno,
                              fl[0], CKPT_MAX_EPOCH);
        } else if (!fields(line, "seed", 1, fl)) {
            ONCE(4, "seed");
            char *end;
            errno = 0;
            ck->seed = strtoull(fl[0], &end, 10);
            if (errno || *end || fl[0][0] == '-') rc = gsl_fail(err, "%s: line %d: bad seed", manifest, lineno);
        } else if (!fields(line, "weights", 2, fl) || !fields(line, "weights", 1, fl)) {
            ONCE(8, "weights");
            snprintf(ck->weights, sizeof ck->weights, "%s", fl[0]);
            if (ck->version >= 2 && (fields(line, "weights", 2, fl) || parse_crc(fl[1], &ck->crc_weights)))
                rc = gsl_fail(err, "%s: line %d: expected 'weights FILE CRC32'", manifest, lineno);
        } else if (!fields(line, "optim", 2, fl) || !fields(line, "optim", 1, fl)) {
            ONCE(16, "optim");
            snprintf(ck->optim, sizeof ck->optim, "%s", fl[0]);
            if (ck->version >= 2 && (fields(line, "optim", 2, fl) || parse_crc(fl[1], &ck->crc_optim)))
                rc = gsl_fail(err, "%s: line %d: expected 'optim FILE CRC32'", manifest, lineno);
        } else if (!fields(line, "codebooks", 1, fl)) {
            ONCE(32, "codebooks");
            if (parse_small(fl[0], &ck->ncb) || ck->ncb > GSL_MAX_CODEBOOK_LAYERS)
                rc = gsl_fail(err, "%s: line %d: codebooks '%s' (at most %d)", manifest, lineno, fl[0],
                              GSL_MAX_CODEBOOK_LAYERS);
        } else if (!fields(line, "codebook", ck->version >= 2 ? 3 : 2, fl)) {
            if (!(got & 32) || ncb_seen >= ck->ncb) {
                rc = gsl_fail(err, "%s: line %d: more codebook lines than 'codebooks' says", manifest, lineno);
                break;
            }
            if (parse_small(fl[0], &v) || v > 65535) {
                rc = gsl_fail(err, "%s: line %d: codebook layer '%s'", manifest, lineno, fl[0]);
                break;
            }
            ck->cb_layer[ncb_seen] = v;
            ck->cb_installed[ncb_seen] = strcmp(fl[1], "-") != 0;
            if (ck->cb_installed[ncb_seen]) {
                snprintf(ck->codebook[ncb_seen], sizeof ck->codebook[0], "%s", fl[1]);
                if (ck->version >= 2 && parse_crc(fl[2], &ck->crc_codebook[ncb_seen]))
                    rc = gsl_fail(err, "%s: line %d: bad CRC32 '%s'", manifest, lineno, fl[2]);
            } else if (ck->version >= 2 && strcmp(fl[2], "-")) {
                rc = gsl_fail(err, "%s: line %d: a codebook not installed has no CRC", manifest, lineno);
            }
            ncb_seen++;
        } else if (!fields(line, "samples", ck->version >= 2 ? 3 : 2, fl)) {
            if (parse_small(fl[0], &v) || !(got & 32) || v >= ck->ncb) {
                rc = gsl_fail(err, "%s: line %d: samples of codebook '%s', which the manifest does not have", manifest,
                              lineno, fl[0]);
                break;
            }
            if (samples_seen & (1 << v)) { rc = gsl_fail(err, "%s: line %d: samples %d given twice", manifest, lineno, v); break; }
            samples_seen |= 1 << v;
            snprintf(ck->samples[v], sizeof ck->samples[0], "%s", fl[1]);
            if (ck->version >= 2 && parse_crc(fl[2], &ck->crc_samples[v]))
                rc = gsl_fail(err, "%s: line %d: bad CRC32 '%s'", manifest, lineno, fl[2]);
        } else if (ck->version >= 3 && !fields(line, "network", 2, fl)) {
            ONCE(512, "network");
            if (parse_small(fl[0], &ck->net_layers) || ck->net_layers < 1 || parse_crc(fl[1], &ck->net_signature))
                rc = gsl_fail(err, "%s: line %d: expected 'network LAYERS SIGNATURE'", manifest, lineno);
        } else if (ck->version >= 3 && !fields(line, "layout", 2, fl)) {
            ONCE(256, "layout");
            if (parse_small(fl[0], &ck->pos.steps) || parse_small(fl[1], &ck->pos.per_step) || ck->pos.steps < 1 ||
                ck->pos.per_step < 1)
                rc = gsl_fail(err, "%s: line %d: expected 'layout STEPS SAMPLES_PER_STEP'", manifest, lineno);
        } else if (ck->version >= 2 && !strncmp(line, "position ", 9)) {
            ONCE(128, "position");
            rc = parse_position(line + 9, ck, got & 32, err) ? gsl_fail(err, "%s: line %d: expected 'position STEP "
                                                                     "LOSS_SUM RNG' and one count per codebook",
                                                                     manifest, lineno) : 0;
        } else {
            rc = gsl_fail(err, "%s: line %d: unexpected line '%.80s'", manifest, lineno, line);
        }
#undef ONCE
        if (!rc && lineno == 1 && !(got & 1)) rc = gsl_fail(err, "%s: not a gsl checkpoint manifest", manifest);
    }
    fclose(f);
    if (rc) return rc;
    int need = 63 | (ck->version >= 2 ? 64 : 0) | (ck->version >= 3 ? 512 : 0);
    if ((got & need) != need) return gsl_fail(err, "%s: not a complete gsl checkpoint manifest", manifest);
    if (ck->ncb != ncb_seen)
        return gsl_fail(err, "%s: says %d codebooks but lists %d", manifest, ck->ncb, ncb_seen);
    if (ck->pos.step && (ck->version < 2)) return gsl_fail(err, "%s: inconsistent manifest", manifest);
    if (ck->version >= 3 && !ck->pos.step != !(got & 256)) /* a position and its layout come together */
        return gsl_fail(err, "%s: a 'position' line needs its 'layout' line, and the other way round", manifest);
    /* every file is this epoch's: a manifest cannot mix epochs */
    int mixed = !names_epoch(ck->weights, ck->epoch, ck->pos.step) || !names_epoch(ck->optim, ck->epoch, ck->pos.step);
    for (int i = 0; i < ck->ncb; i++) {
        mixed |= ck->cb_installed[i] && !names_epoch(ck->codebook[i], ck->epoch, ck->pos.step);
        mixed |= ck->samples[i][0] && !names_epoch(ck->samples[i], ck->epoch, ck->pos.step);
    }
    if (mixed) return gsl_fail(err, "%s: names files of another epoch than its epoch %d", manifest, ck->epoch);
    resolve(ck->weights, sizeof ck->weights, manifest);
    resolve(ck->optim, sizeof ck->optim, manifest);
    for (int i = 0; i < GSL_MAX_CODEBOOK_LAYERS; i++) {
        if (ck->cb_installed[i]) resolve(ck->codebook[i], sizeof ck->codebook[i], manifest);
        resolve(ck->samples[i], sizeof ck->samples[i], manifest);
    }
    if (gsl_file_size(ck->weights) < 0) return gsl_fail(err, "%s: its weights file %s is missing", manifest, ck->weights);
    if (gsl_file_size(ck->optim) < 0) return gsl_fail(err, "%s: its optimizer file %s is missing", manifest, ck->optim);
    for (int i = 0; i < ck->ncb; i++)
        if (ck->cb_installed[i] && gsl_file_size(ck->codebook[i]) < 0)
            return gsl_fail(err, "%s: its codebook file %s is missing", manifest, ck->codebook[i]);
    for (int i = 0; i < ck->ncb; i++)
        if (ck->samples[i][0] && gsl_file_size(ck->samples[i]) < 0)
            return gsl_fail(err, "%s: its samples file %s is missing", manifest, ck->samples[i]);
    if (ck->version < 2) return 0; /* written before checksums: the files' own checks only */
    if (verify(manifest, ck->version, "weights", ck->weights, ck->crc_weights, err) ||
        verify(manifest, ck->version, "optimizer", ck->optim, ck->crc_optim, err))
        return -1;
    for (int i = 0; i < ck->ncb; i++) {
        if (ck->cb_installed[i] && verify(manifest, ck->version, "codebook", ck->codebook[i], ck->crc_codebook[i], err))
            return -1;
        if (ck->samples[i][0] && verify(manifest, ck->version, "samples", ck->samples[i], ck->crc_samples[i], err))
            return -1;
    }
    return 0;
}

int gsl_ckpt_same_network(const gsl_ckpt *ck, const char *manifest, const network *net, const char *cfg, char *err)
{
    if (ck->version < 3) return 0; /* older manifests do not record it: the weights' size check is all there is */
    uint32_t sig = gsl_net_signature(net);
    if (ck->net_layers == net->n && ck->net_signature == sig) return 0;
    return gsl_fail(err, "%s: written by another network than %s builds (the checkpoint's: %d layers, signature "
                    "%08" PRIx32 "; the cfg's: %d layers, %08" PRIx32 "): a layer's type or size differs; use the cfg "
                    "the run was trained with", manifest, cfg, ck->net_layers, ck->net_signature, net->n, sig);
}
