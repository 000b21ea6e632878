#include "gsl_net.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codebook.h"
#include "registry.h"
#ifdef GPU
#include "connected_layer.h"
#include "convolutional_layer.h"
#endif


/* ------------------------------------------------------------------------------------------------ files */

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

static int fsync_path(const char *path, int dir, char *err)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return gsl_fail(err, "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc && !dir) return gsl_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    return 0;
}

/* tmp -> path, with the data and the folder entry on disk. */
static int commit_file(const char *tmp, const char *path, char *err)
{
    if (fsync_path(tmp, 0, err)) return -1;
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return gsl_fail(err, "%s: cannot rename into place: %s", path, strerror(e));
    }
    char d[1024];
    snprintf(d, sizeof d, "%s", path);
    fsync_path(dirname(d), 1, err);
    return 0;
}

int gsl_write_atomic(const char *path, const void *data, size_t n, char *err)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return gsl_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) {
        unlink(tmp);
        return gsl_fail(err, "%s: write failed: %s", tmp, strerror(errno));
    }
    return commit_file(tmp, path, err);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

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

int gsl_weights_check(const network *net, const char *path, char *err)
{
    long long have = file_size(path), want = weights_bytes(net);
    if (have < 0) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    FILE *f = fopen(path, "rb");
    if (!f) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    fclose(f);
    if (want >= 0 && have != want)
        return gsl_fail(err, "%s: %lld bytes, but this network's weights take %lld (another cfg, or a truncated file)",
                    path, have, want);
    return 0;
}

int gsl_weights_save(network *net, const char *path, char *err)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb"); /* Darknet's save_weights exits on an unwritable path: look first */
    if (!f) return gsl_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    fclose(f);
    save_weights(net, tmp);
    long long have = file_size(tmp), want = weights_bytes(net);
    if (have < 0 || (want >= 0 && have != want)) {
        unlink(tmp);
        return gsl_fail(err, "%s: wrote %lld of %lld bytes (disk full?)", tmp, have, want);
    }
    return commit_file(tmp, path, err);
}

/* ------------------------------------------------------------------------------------------------ optimizer */

#define OPTIM_MAGIC "GSLOPTM1"

/* Visits every momentum buffer of the network in a fixed order. */
typedef int (*buf_fn)(float *p, size_t n, void *ctx);
static int each_update_buffer(network *net, buf_fn fn, void *ctx)
{
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        size_t nb, nw;
        if (l->type == CONVOLUTIONAL || l->type == DECONVOLUTIONAL) {
            nb = (size_t)l->n;
            nw = (size_t)l->nweights;
        } else if (l->type == CONNECTED) { /* Darknet leaves nweights at 0 for connected layers */
            nb = (size_t)l->outputs;
            nw = (size_t)l->inputs * l->outputs;
        } else {
            continue;
        }
        if (l->weight_updates && fn(l->weight_updates, nw, ctx)) return -1;
        if (l->bias_updates && fn(l->bias_updates, nb, ctx)) return -1;
        if (l->batch_normalize && l->scale_updates && fn(l->scale_updates, nb, ctx)) return -1;
    }
    return 0;
}

typedef struct { FILE *f; uint32_t crc; size_t floats; } io_ctx;

static int write_buf(float *p, size_t n, void *c)
{
    io_ctx *x = c;
    x->crc = gslq_crc32(x->crc, p, n * sizeof(float));
    x->floats += n;
    return fwrite(p, sizeof(float), n, x->f) == n ? 0 : -1;
}

static int read_buf(float *p, size_t n, void *c)
{
    io_ctx *x = c;
    if (fread(p, sizeof(float), n, x->f) != n) return -1;
    x->crc = gslq_crc32(x->crc, p, n * sizeof(float));
    x->floats += n;
    return 0;
}

static int count_buf(float *p, size_t n, void *c)
{
    ((io_ctx *)c)->floats += n;
    return 0;
}

#ifdef GPU
static void pull_updates(network *net)
{
    if (net->gpu_index < 0) return;
    cuda_set_device(net->gpu_index);
    for (int i = 0; i < net->n; i++) {
        layer l = net->layers[i];
        if (l.type == CONVOLUTIONAL) pull_convolutional_layer(l);
        if (l.type == CONNECTED) pull_connected_layer(l);
    }
}
static void push_updates(network *net)
{
    if (net->gpu_index < 0) return;
    cuda_set_device(net->gpu_index);
    for (int i = 0; i < net->n; i++) {
        layer l = net->layers[i];
        if (l.type == CONVOLUTIONAL) push_convolutional_layer(l);
        if (l.type == CONNECTED) push_connected_layer(l);
    }
}
#endif

int gsl_optim_save(network *net, const char *path, char *err)
{
#ifdef GPU
    pull_updates(net);
#endif
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    io_ctx c = {fopen(tmp, "wb"), 0, 0};
    if (!c.f) return gsl_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    io_ctx n = {0};
    each_update_buffer(net, count_buf, &n);
    uint64_t count = n.floats;
    int ok = fwrite(OPTIM_MAGIC, 1, 8, c.f) == 8 && fwrite(&count, sizeof count, 1, c.f) == 1;
    ok = ok && each_update_buffer(net, write_buf, &c) == 0;
    ok = ok && fwrite(&c.crc, sizeof c.crc, 1, c.f) == 1;
    ok &= fclose(c.f) == 0;
    if (!ok) {
        unlink(tmp);
        return gsl_fail(err, "%s: write failed: %s", tmp, strerror(errno));
    }
    return commit_file(tmp, path, err);
}

int gsl_optim_load(network *net, const char *path, char *err)
{
    io_ctx c = {fopen(path, "rb"), 0, 0};
    if (!c.f) return gsl_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char magic[8];
    uint64_t count = 0;
    uint32_t crc = 0;
    io_ctx n = {0};
    each_update_buffer(net, count_buf, &n);
    int rc = 0;
    if (fread(magic, 1, 8, c.f) != 8 || memcmp(magic, OPTIM_MAGIC, 8)) rc = gsl_fail(err, "%s: not an optimizer state file", path);
    else if (fread(&count, sizeof count, 1, c.f) != 1 || count != n.floats)
        rc = gsl_fail(err, "%s: holds %llu floats, this network has %zu", path, (unsigned long long)count, n.floats);
    else if (each_update_buffer(net, read_buf, &c) || fread(&crc, sizeof crc, 1, c.f) != 1)
        rc = gsl_fail(err, "%s: truncated", path);
    else if (crc != c.crc) rc = gsl_fail(err, "%s: checksum mismatch (corrupted)", path);
    fclose(c.f);
#ifdef GPU
    if (!rc) push_updates(net);
#endif
    return rc;
}

/* ------------------------------------------------------------------------------------------------ networks */

network **gsl_net_load(const char *cfg, const char *weights, const int *gpus, int ngpus, int clear, uint64_t seed,
                       char *err)
{
    FILE *f = fopen(cfg, "r"); /* Darknet's reader exits with status 0 on a missing file */
    if (!f) { gsl_fail(err, "%s: cannot open: %s", cfg, strerror(errno)); return NULL; }
    fclose(f);
    int n = gpus ? ngpus : 1;
    network **nets = calloc(n, sizeof *nets);
    if (!nets) { gsl_fail(err, "out of memory"); return NULL; }
    for (int r = 0; r < n; r++) {
#ifdef GPU
        if (gpus) { gpu_index = gpus[r]; cuda_set_device(gpus[r]); }
        else gpu_index = -1;
#else
        if (gpus && gpus[r] >= 0) {
            gsl_fail(err, "-gpus given, but this binary was built without GPU=1");
            gsl_net_free(nets, r);
            return NULL;
        }
#endif
        srand((unsigned)seed);
        nets[r] = parse_network_cfg((char *)cfg);
        if (weights) {
            if (gsl_weights_check(nets[r], weights, err)) { gsl_net_free(nets, r + 1); return NULL; }
            load_weights(nets[r], (char *)weights);
        }
        if (clear) *nets[r]->seen = 0;
    }
    return nets;
}

void gsl_free_network(network *net)
{
    if (!net) return;
    /* Darknet's free_network leaves these behind (LeakSanitizer reports them in SANITIZE=1 builds). */
    free(net->seen);
    free(net->t);
    free(net->cost);
    free(net->steps);
    free(net->scales);
#ifdef GPU
    if (net->gpu_index >= 0) cuda_free(net->workspace);
    else
#endif
        free(net->workspace);
    free_network(net);
}

void gsl_net_free(network **nets, int n)
{
    if (!nets) return;
    for (int r = 0; r < n; r++) gsl_free_network(nets[r]);
    free(nets);
}

int gsl_net_embedding_layer(const network *net) { return net->n >= 2 ? net->n - 2 : 0; }

int gsl_net_codebook_layers(const network *net, int *idx)
{
    int k = 0;
    for (int i = 0; i < net->n && k < GSL_MAX_CODEBOOK_LAYERS; i++)
        if (gsl_layer_has_codebook(&net->layers[i])) idx[k++] = i;
    return k;
}

int gsl_net_embed(network *net, const gsl_data *d, const int *idx, int n, int upto, float *out, char *err)
{
    if (upto < 0 || upto >= net->n) return gsl_fail(err, "embed: layer %d out of range", upto);
    int B = net->batch, dim = net->inputs, od = net->layers[upto].outputs;
    if (d->c * d->h * d->w != dim)
        return gsl_fail(err, "data samples have %d values, the network's input takes %d", d->c * d->h * d->w, dim);
    int *bi = malloc(sizeof(int) * B);
    float *truth = malloc(sizeof(float) * (size_t)B * d->classes);
    if (!bi || !truth) { free(bi); free(truth); return gsl_fail(err, "out of memory"); }
    for (int s = 0; s < n; s += B) {
        int m = n - s < B ? n - s : B;
        for (int i = 0; i < B; i++) bi[i] = idx ? idx[s + (i < m ? i : m - 1)] : s + (i < m ? i : m - 1);
        gsl_data_gather(d, bi, B, net->input, truth);
        network t = *net;
        t.train = 0;
        t.truth = NULL;
        t.delta = NULL;
        t.input = net->input;
#ifdef GPU
        if (net->gpu_index >= 0) {
            cuda_set_device(net->gpu_index);
            cuda_push_array(net->input_gpu, net->input, (size_t)dim * B);
            t.input_gpu = net->input_gpu;
            t.truth_gpu = NULL;
            t.delta_gpu = NULL;
            for (int i = 0; i <= upto; i++) {
                t.index = i;
                layer l = net->layers[i];
                l.forward_gpu(l, t);
                t.input_gpu = l.output_gpu;
                t.input = l.output;
            }
            cuda_pull_array(net->layers[upto].output_gpu, net->layers[upto].output, (size_t)od * B);
        } else
#endif
        {
            for (int i = 0; i <= upto; i++) {
                t.index = i;
                layer l = net->layers[i];
                l.forward(l, t);
                t.input = l.output;
            }
        }
        memcpy(out + (size_t)s * od, net->layers[upto].output, sizeof(float) * (size_t)od * m);
    }
    free(bi);
    free(truth);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ checkpoints */

/* Crash injection for the tests: GSL_FAULT_KILL=weights|manifest kills the process with SIGKILL at that point of
 * a checkpoint save, as a power cut or the OOM killer would. */
static void fault_point(const char *where)
{
    const char *f = getenv("GSL_FAULT_KILL");
    if (f && strcmp(f, where) == 0) raise(SIGKILL);
}

static void epoch_file(char *out, size_t cap, const char *prefix, int epoch, const char *what)
{
    snprintf(out, cap, "%s_e%04d%s", prefix, epoch, what);
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
    epoch_file(p, sizeof p, prefix, epoch, ".weights"); unlink(p);
    epoch_file(p, sizeof p, prefix, epoch, ".optim"); unlink(p);
    for (int i = 0; i < ncb; i++) {
        char what[64];
        snprintf(what, sizeof what, "_cb%d.codebook", i);
        epoch_file(p, sizeof p, prefix, epoch, what);
        unlink(p);
        snprintf(what, sizeof what, "_cb%d.samples.fvecs", i);
        epoch_file(p, sizeof p, prefix, epoch, what);
        unlink(p);
    }
}

int gsl_ckpt_save(network *net, const char *prefix, int epoch, uint64_t seed, int ncb, const int *cb_layer,
                  gslq_pq *const *pqs, const gsl_ckpt_samples *samples, char *err)
{
    gsl_ckpt ck = {0};
    ck.epoch = epoch;
    ck.seed = seed;
    ck.ncb = ncb;
    epoch_file(ck.weights, sizeof ck.weights, prefix, epoch, ".weights");
    epoch_file(ck.optim, sizeof ck.optim, prefix, epoch, ".optim");
    if (gsl_weights_save(net, ck.weights, err)) return -1;
    fault_point("weights");
    if (gsl_optim_save(net, ck.optim, err)) return -1;
    for (int i = 0; i < ncb; i++) {
        ck.cb_layer[i] = cb_layer[i];
        ck.cb_installed[i] = pqs[i] != NULL;
        if (!pqs[i]) continue;
        char what[64];
        snprintf(what, sizeof what, "_cb%d.codebook", i);
        epoch_file(ck.codebook[i], sizeof ck.codebook[i], prefix, epoch, what);
        gslq_error e = {0};
        if (gslq_pq_save(ck.codebook[i], pqs[i], &e)) return gsl_fail(err, "%s", e.msg);
    }
    for (int i = 0; samples && i < ncb; i++) {
        if (!samples->rows[i] || samples->n[i] <= 0) continue;
        char what[64];
        snprintf(what, sizeof what, "_cb%d.samples.fvecs", i);
        epoch_file(ck.samples[i], sizeof ck.samples[i], prefix, epoch, what);
        gslq_error e = {0};
        if (gslq_fvecs_write(ck.samples[i], samples->rows[i], (size_t)samples->n[i], samples->d[i], &e))
            return gsl_fail(err, "%s", e.msg);
    }
    /* The manifest names its files relative to its own folder (they live beside it), so a backup folder can be
     * moved or read from another working directory. */
    char text[8192];
    int len = snprintf(text, sizeof text, "gsl-checkpoint 1\nepoch %d\nseed %llu\nweights %s\noptim %s\ncodebooks %d\n",
                       epoch, (unsigned long long)seed, base_name(ck.weights), base_name(ck.optim), ncb);
    for (int i = 0; i < ncb && len < (int)sizeof text; i++)
        len += snprintf(text + len, sizeof text - len, "codebook %d %s\n", cb_layer[i],
                        ck.cb_installed[i] ? base_name(ck.codebook[i]) : "-");
    for (int i = 0; i < ncb && len < (int)sizeof text; i++)
        if (ck.samples[i][0])
            len += snprintf(text + len, sizeof text - len, "samples %d %s\n", i, base_name(ck.samples[i]));
    if (len >= (int)sizeof text) return gsl_fail(err, "%s.ckpt: manifest too long", prefix);
    char manifest[1100];
    snprintf(manifest, sizeof manifest, "%s.ckpt", prefix);
    fault_point("manifest");
    if (gsl_write_atomic(manifest, text, (size_t)len, err)) return -1;
    /* The new manifest is in place: epoch-2's files are no longer referenced (epoch-1's are kept as a spare). */
    if (epoch >= 2) remove_epoch_files(prefix, epoch - 2, ncb);
    return 0;
}

int gsl_ckpt_read(const char *manifest, gsl_ckpt *ck, char *err)
{
    memset(ck, 0, sizeof *ck);
    FILE *f = fopen(manifest, "r");
    if (!f) return gsl_fail(err, "%s: cannot open: %s", manifest, strerror(errno));
    char line[1200];
    int version = 0, got = 0, ncb_seen = 0;
    unsigned long long seed = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        int layer_i;
        char path[1024];
        if (sscanf(line, "gsl-checkpoint %d", &version) == 1) got |= 1;
        else if (sscanf(line, "epoch %d", &ck->epoch) == 1) got |= 2;
        else if (sscanf(line, "seed %llu", &seed) == 1) got |= 4;
        else if (sscanf(line, "weights %1023s", ck->weights) == 1) got |= 8;
        else if (sscanf(line, "optim %1023s", ck->optim) == 1) got |= 16;
        else if (sscanf(line, "codebooks %d", &ck->ncb) == 1) got |= 32;
        else if (sscanf(line, "codebook %d %1023s", &layer_i, path) == 2 && ncb_seen < GSL_MAX_CODEBOOK_LAYERS) {
            ck->cb_layer[ncb_seen] = layer_i;
            ck->cb_installed[ncb_seen] = strcmp(path, "-") != 0;
            if (ck->cb_installed[ncb_seen]) snprintf(ck->codebook[ncb_seen], sizeof ck->codebook[0], "%s", path);
            ncb_seen++;
        } else if (sscanf(line, "samples %d %1023s", &layer_i, path) == 2 && layer_i >= 0 &&
                   layer_i < GSL_MAX_CODEBOOK_LAYERS) {
            snprintf(ck->samples[layer_i], sizeof ck->samples[0], "%s", path);
        } else { rc = gsl_fail(err, "%s: unexpected line '%s'", manifest, line); break; }
    }
    fclose(f);
    if (rc) return rc;
    if (got != 63 || version != 1) return gsl_fail(err, "%s: not a gsl checkpoint manifest (version 1)", manifest);
    if (ck->ncb != ncb_seen || ck->ncb > GSL_MAX_CODEBOOK_LAYERS || ck->epoch < 0)
        return gsl_fail(err, "%s: inconsistent manifest", manifest);
    ck->seed = seed;
    resolve(ck->weights, sizeof ck->weights, manifest);
    resolve(ck->optim, sizeof ck->optim, manifest);
    for (int i = 0; i < GSL_MAX_CODEBOOK_LAYERS; i++) {
        if (ck->cb_installed[i]) resolve(ck->codebook[i], sizeof ck->codebook[i], manifest);
        resolve(ck->samples[i], sizeof ck->samples[i], manifest);
    }
    if (file_size(ck->weights) < 0) return gsl_fail(err, "%s: its weights file %s is missing", manifest, ck->weights);
    if (file_size(ck->optim) < 0) return gsl_fail(err, "%s: its optimizer file %s is missing", manifest, ck->optim);
    for (int i = 0; i < ck->ncb; i++)
        if (ck->cb_installed[i] && file_size(ck->codebook[i]) < 0)
            return gsl_fail(err, "%s: its codebook file %s is missing", manifest, ck->codebook[i]);
    for (int i = 0; i < GSL_MAX_CODEBOOK_LAYERS; i++)
        if (ck->samples[i][0] && (i >= ck->ncb || file_size(ck->samples[i]) < 0))
            return gsl_fail(err, "%s: its samples file %s is missing or names no codebook layer", manifest, ck->samples[i]);
    return 0;
}
