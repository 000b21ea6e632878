/* The plugin layers' state inside Darknet's .weights files: each codebook layer's codebook and rebuild schedule.
 *
 * Upstream's save_weights skips layer types it does not know, so the state is appended after all of upstream's
 * data (darknet/hook.sh calls gsl_weights_state_save at the end of save_weights_upto and gsl_weights_state_load at the
 * end of load_weights_upto), in layer order, then a fixed trailer that says where it starts:
 *
 *   block (one per [snap]/[quantloss] layer below the cutoff with a codebook installed), little-endian:
 *     int32 layer index, d, M, K, has_rotation; int64 rebuilds so far, next rebuild's iteration, next rebuild's
 *     image count; float32 centroids (M, K, d/M); float32 rotation (d, d) when has_rotation; uint32 CRC-32 of the
 *     block's bytes before it
 *   trailer: uint64 bytes of the blocks; uint32 format version (1); 8 bytes "GSLSTATE"
 *
 * A file without the trailer (older, or written by upstream) loads as before: the layers stay pass-throughs until a
 * codebook is built. Upstream's own binary reads such a file as if the state were not there (it stops after its
 * layers), so the network's weights load either way. The round trip (load, save) gives the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codebook.h"
#include "registry.h"
#include "weights_state.h"

#define TRAILER_MAGIC "GSLSTATE"
#define TRAILER_BYTES 20
#define STATE_VERSION 1u
#define BLOCK_HEAD 44 /* 5 int32 + 3 int64 */

extern void (*gsl_save_weights_hook)(network *net, FILE *fp, int cutoff);
extern void (*gsl_load_weights_hook)(network *net, FILE *fp, char *filename, int start, int cutoff);

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void write_block(FILE *fp, int index, const gsl_codebook *cb, uint32_t *crc_out, uint64_t *bytes)
{
    unsigned char h[BLOCK_HEAD];
    long rebuilds, next_it, next_im;
    gsl_codebook_rebuild_state(cb, &rebuilds, &next_it, &next_im);
    int rot = cb->pq.rotation != NULL;
    put32(h, (uint32_t)index);
    put32(h + 4, (uint32_t)cb->d);
    put32(h + 8, (uint32_t)cb->M);
    put32(h + 12, (uint32_t)cb->K);
    put32(h + 16, (uint32_t)rot);
    put64(h + 20, (uint64_t)rebuilds);
    put64(h + 28, (uint64_t)next_it);
    put64(h + 36, (uint64_t)next_im);
    size_t nc = (size_t)cb->M * cb->K * cb->dsub, nr = rot ? (size_t)cb->d * cb->d : 0;
    uint32_t crc = gslq_crc32(0, h, sizeof h);
    crc = gslq_crc32(crc, cb->pq.centroids, nc * sizeof(float));
    if (rot) crc = gslq_crc32(crc, cb->pq.rotation, nr * sizeof(float));
    unsigned char c[4];
    put32(c, crc);
    fwrite(h, 1, sizeof h, fp);
    fwrite(cb->pq.centroids, sizeof(float), nc, fp);
    if (rot) fwrite(cb->pq.rotation, sizeof(float), nr, fp);
    fwrite(c, 1, 4, fp);
    *bytes += sizeof h + (nc + nr) * sizeof(float) + 4;
    if (crc_out) *crc_out = crc;
}

void gsl_weights_state_save(network *net, FILE *fp, int cutoff)
{
    uint64_t bytes = 0;
    for (int i = 0; i < net->n && i < cutoff; i++) {
        gsl_codebook *cb = gsl_layer_codebook(&net->layers[i]);
        if (cb && cb->installed) write_block(fp, i, cb, NULL, &bytes);
    }
    if (!bytes) return; /* nothing to keep: the file is upstream's, byte for byte */
    unsigned char t[TRAILER_BYTES];
    put64(t, bytes);
    put32(t + 8, STATE_VERSION);
    memcpy(t + 12, TRAILER_MAGIC, 8);
    fwrite(t, 1, sizeof t, fp);
}

/* Reads the state of fp (positioned anywhere) into the layers [start, cutoff) of net when install, or only checks
 * it. *bytes = the state's size with its trailer (0: none). 0, or -1 with err. */
static int read_state(network *net, FILE *fp, const char *path, int start, int cutoff, int install, long long *bytes,
                      char *err)
{
    *bytes = 0;
    if (fseek(fp, 0, SEEK_END)) return gsl_fail(err, "%s: cannot seek", path);
    long long size = ftell(fp);
    unsigned char t[TRAILER_BYTES];
    if (size < TRAILER_BYTES + 20 || fseek(fp, size - TRAILER_BYTES, SEEK_SET) || fread(t, 1, sizeof t, fp) != sizeof t ||
        memcmp(t + 12, TRAILER_MAGIC, 8))
        return 0; /* no state: an upstream or older file */
    uint64_t blocks = get64(t);
    if (get32(t + 8) != STATE_VERSION)
        return gsl_fail(err, "%s: plugin state of version %u (this build reads %u)", path, get32(t + 8),
                        STATE_VERSION);
    if (blocks > (uint64_t)(size - TRAILER_BYTES - 20))
        return gsl_fail(err, "%s: its plugin state claims %llu bytes of a %lld-byte file", path,
                        (unsigned long long)blocks, size);
    long long at = size - TRAILER_BYTES - (long long)blocks, end = size - TRAILER_BYTES;
    if (fseek(fp, at, SEEK_SET)) return gsl_fail(err, "%s: cannot seek", path);
    int last = -1;
    while (at < end) {
        unsigned char h[BLOCK_HEAD], c[4];
        if (end - at < BLOCK_HEAD + 4 || fread(h, 1, sizeof h, fp) != sizeof h)
            return gsl_fail(err, "%s: plugin state truncated", path);
        int index = (int)get32(h), d = (int)get32(h + 4), M = (int)get32(h + 8), K = (int)get32(h + 12);
        int rot = (int)get32(h + 16);
        long rebuilds = (long)get64(h + 20), next_it = (long)get64(h + 28), next_im = (long)get64(h + 36);
        if (index <= last || index >= net->n)
            return gsl_fail(err, "%s: plugin state for layer %d, which this network (%d layers) does not "
                            "have in that order", path, index, net->n);
        last = index;
        gsl_codebook *cb = gsl_layer_codebook(&net->layers[index]);
        if (!cb)
            return gsl_fail(err, "%s: a codebook for layer %d, which is not [snap] or [quantloss] in this "
                            "network (another cfg?)", path, index);
        if (d != cb->d || M != cb->M || K != cb->K || (rot != 0 && rot != 1))
            return gsl_fail(err, "%s: the codebook of layer %d is d=%d M=%d K=%d, the layer takes d=%d "
                            "M=%d K=%d", path, index, d, M, K, cb->d, cb->M, cb->K);
        size_t nc = (size_t)M * K * (d / M), nr = rot ? (size_t)d * d : 0;
        if ((unsigned long long)(end - at) < BLOCK_HEAD + (nc + nr) * sizeof(float) + 4)
            return gsl_fail(err, "%s: plugin state truncated", path);
        gslq_pq pq;
        gslq_error e;
        if (gslq_pq_init(&pq, d, M, K, &e)) return gsl_fail(err, "%s: %.900s", path, e.msg);
        if (rot && !(pq.rotation = malloc(sizeof(float) * nr))) {
            gslq_pq_free(&pq);
            return gsl_fail(err, "%s: out of memory", path);
        }
        int rc = fread(pq.centroids, sizeof(float), nc, fp) != nc || (rot && fread(pq.rotation, sizeof(float), nr, fp) != nr) ||
                 fread(c, 1, 4, fp) != 4;
        uint32_t crc = gslq_crc32(gslq_crc32(0, h, sizeof h), pq.centroids, nc * sizeof(float));
        if (rot) crc = gslq_crc32(crc, pq.rotation, nr * sizeof(float));
        if (rc) gsl_fail(err, "%s: plugin state truncated", path);
        else if (crc != get32(c)) gsl_fail(err, "%s: the codebook of layer %d fails its checksum", path, index), rc = 1;
        else if (install && index >= start && index < cutoff) {
            int was_own = cb->own_schedule;
            rc = gsl_codebook_set(cb, &pq, err) != 0;
            if (!rc && was_own) gsl_codebook_rebuild_restore(cb, rebuilds, next_it, next_im);
        }
        gslq_pq_free(&pq);
        if (rc) return -1;
        at += BLOCK_HEAD + (long long)((nc + nr) * sizeof(float)) + 4;
    }
    *bytes = (long long)blocks + TRAILER_BYTES;
    return 0;
}

void gsl_weights_state_load(network *net, FILE *fp, char *filename, int start, int cutoff)
{
    char err[GSL_ERRLEN] = "";
    long long bytes = 0;
    /* where upstream's reading ended, for a file that carries codebooks (one of ours): past the end of the file (its
     * freads came up short), or elsewhere than where the codebooks begin, it read another network's weights */
    int short_read = feof(fp) || ferror(fp);
    long long pos = ftell(fp), size = -1;
    int rc = read_state(net, fp, filename, start, cutoff, 1, &bytes, err);
    if (!rc && !fseek(fp, 0, SEEK_END)) size = ftell(fp);
    int whole = start == 0 && cutoff >= net->n; /* every layer read as a whole ([X] dontload=1 and the like: not) */
    for (int i = 0; i < net->n; i++)
        whole &= !net->layers[i].dontload && !net->layers[i].dontloadscales && !net->layers[i].numload;
    /* (a short read of a file without codebooks is upstream's fine-tuning from a cut-down file, `darknet partial`) */
    if (!rc && short_read && bytes)
        rc = gsl_fail(err, "%s: shorter than this network's weights (a truncated file, or another cfg's)", filename);
    else if (!rc && bytes && whole && size >= 0 && pos != size - bytes)
        rc = gsl_fail(err, "%s: this network's weights take %lld bytes, the file holds %lld before its plugin state "
                      "(weights of another cfg?)", filename, pos, size - bytes);
    if (rc) {
        /* inside Darknet's loader, which has no way to report: stop rather than train with a wrong codebook */
        fprintf(stderr, "\nerror: %s\n", err);
        exit(1);
    }
}

int gsl_weights_state_check(network *net, const char *path, long long *bytes, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return gsl_fail(err, "%s: cannot open", path);
    int rc = read_state(net, f, path, 0, net->n, 0, bytes, err);
    fclose(f);
    return rc;
}

void gsl_weights_state_install(void)
{
    gsl_save_weights_hook = gsl_weights_state_save;
    gsl_load_weights_hook = gsl_weights_state_load;
}

void gsl_weights_state_uninstall(void)
{
    gsl_save_weights_hook = NULL;
    gsl_load_weights_hook = NULL;
}
