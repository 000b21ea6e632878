/* libgslq files: codebook and codes round trips, .fvecs/.ivecs, label files, the Faiss export layout, and hostile
 * files (truncated at every byte, bad magic/version/sizes/checksum, out-of-range codes): an error every time. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../quant/gslq.h"
#include "test.h"

static unsigned long long seed_ = 777;
static char dir_[512];

static const char *tmp_path(const char *name)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir_, name);
    return buf[i];
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

static void make_pq(gslq_pq *pq, int d, int M, int K, int rot)
{
    gslq_pq_init(pq, d, M, K, NULL);
    for (int i = 0; i < K * d; i++) pq->centroids[i] = test_randn(&seed_);
    if (rot) {
        pq->rotation = malloc((size_t)d * d * 4);
        for (int i = 0; i < d * d; i++) pq->rotation[i] = test_randn(&seed_);
    }
}

/* rewrites the trailing crc32 so a tampered header reaches the field checks */
static void fix_crc(unsigned char *b, size_t n)
{
    uint32_t c = gslq_crc32(0, b, n - 4);
    memcpy(b + n - 4, &c, 4);
}

static void test_codebook_roundtrip(void)
{
    for (int rot = 0; rot < 2; rot++) {
        gslq_pq pq, back;
        make_pq(&pq, 12, 4, 16, rot);
        gslq_error e;
        const char *p = tmp_path("cb.gq");
        CHECK(gslq_pq_save(p, &pq, &e) == 0);
        CHECK(gslq_pq_load(p, &back, &e) == 0);
        CHECK(back.d == 12 && back.M == 4 && back.K == 16 && back.dsub == 3);
        CHECK(memcmp(back.centroids, pq.centroids, 16 * 12 * 4) == 0);
        CHECK(rot ? (back.rotation && memcmp(back.rotation, pq.rotation, 144 * 4) == 0) : back.rotation == NULL);
        CHECK(gslq_pq_fingerprint(&back) == gslq_pq_fingerprint(&pq));
        char tmpname[1100];
        snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", p, (long)getpid());
        CHECK(access(tmpname, F_OK) != 0); /* temporary renamed away */
        gslq_pq_free(&pq); gslq_pq_free(&back);
    }
}

static void test_codes_roundtrip_and_fingerprint(void)
{
    gslq_pq pq, other;
    make_pq(&pq, 8, 2, 32, 0);
    make_pq(&other, 8, 2, 32, 0);
    uint8_t codes[50 * 2], *back = NULL;
    for (int i = 0; i < 100; i++) codes[i] = (uint8_t)(i % 32);
    gslq_error e;
    const char *p = tmp_path("codes.gc");
    CHECK(gslq_codes_save(p, &pq, codes, 50, &e) == 0);
    size_t n;
    int M;
    CHECK(gslq_codes_load(p, &pq, &back, &n, &M, &e) == 0 && n == 50 && M == 2);
    CHECK(back && memcmp(back, codes, 100) == 0);
    free(back);
    CHECK(gslq_codes_load(p, NULL, &back, &n, &M, &e) == 0);
    free(back);
    back = NULL;
    CHECK(gslq_codes_load(p, &other, &back, &n, &M, &e) == GSLQ_EINVAL && strstr(e.msg, "another codebook"));
    CHECK(back == NULL);
    gslq_pq m3;
    make_pq(&m3, 12, 3, 32, 0);
    CHECK(gslq_codes_load(p, &m3, &back, &n, &M, &e) == GSLQ_EINVAL && strstr(e.msg, "M=2"));
    /* a fingerprint zeroed (and the file's checksum made good again) does not skip the codebook check */
    FILE *f = fopen(p, "r+b");
    unsigned char buf[40 + 100 + 4];
    CHECK(f && fread(buf, 1, sizeof buf, f) == sizeof buf);
    memset(buf + 28, 0, 4);
    uint32_t crc = gslq_crc32(0, buf, 40 + 100);
    memcpy(buf + 40 + 100, &crc, 4);
    CHECK(f && fseek(f, 0, SEEK_SET) == 0 && fwrite(buf, 1, sizeof buf, f) == sizeof buf);
    if (f) fclose(f);
    CHECK(gslq_codes_load(p, NULL, &back, &n, &M, &e) == 0); /* readable without a codebook */
    free(back);
    back = NULL;
    CHECK(gslq_codes_load(p, &pq, &back, &n, &M, &e) == GSLQ_EFORMAT && strstr(e.msg, "no codebook fingerprint"));
    CHECK(back == NULL);
    /* empty code set */
    CHECK(gslq_codes_save(p, &pq, codes, 0, &e) == 0);
    CHECK(gslq_codes_load(p, &pq, &back, &n, &M, &e) == 0 && n == 0);
    free(back);
    back = NULL;
    /* the tag travels with the codes; an untagged save reads as 0 */
    uint64_t tag = 1;
    CHECK(gslq_codes_save_tagged(p, &pq, codes, 50, 0x8000000112345678ull, &e) == 0);
    CHECK(gslq_codes_load_tagged(p, &pq, &back, &n, &M, &tag, &e) == 0 && tag == 0x8000000112345678ull && n == 50 &&
          back && memcmp(back, codes, 100) == 0);
    free(back);
    back = NULL;
    CHECK(gslq_codes_save(p, &pq, codes, 50, &e) == 0);
    CHECK(gslq_codes_load_tagged(p, &pq, &back, &n, &M, &tag, &e) == 0 && tag == 0);
    free(back);
    back = NULL;
    /* a version-1 file (no tag field), as the library wrote before: read, with tag 0 */
    unsigned char v1[32 + 100 + 4];
    memcpy(v1, buf, 28); /* magic, version, M, K, n of the 50-code file above */
    uint32_t one = 1, fp = gslq_pq_fingerprint(&pq);
    memcpy(v1 + 8, &one, 4);
    memcpy(v1 + 28, &fp, 4);
    memcpy(v1 + 32, codes, 100);
    crc = gslq_crc32(0, v1, 32 + 100);
    memcpy(v1 + 32 + 100, &crc, 4);
    f = fopen(p, "wb");
    CHECK(f && fwrite(v1, 1, sizeof v1, f) == sizeof v1);
    if (f) fclose(f);
    tag = 1;
    CHECK(gslq_codes_load_tagged(p, &pq, &back, &n, &M, &tag, &e) == 0 && tag == 0 && n == 50 && M == 2 && back &&
          memcmp(back, codes, 100) == 0);
    free(back);
    gslq_pq_free(&pq); gslq_pq_free(&other); gslq_pq_free(&m3);
}

static void test_vecs_roundtrip(void)
{
    float x[5 * 3];
    int32_t iv[4 * 2] = {1, 2, 3, 4, -5, 6, 7, 8};
    for (int i = 0; i < 15; i++) x[i] = test_randn(&seed_);
    gslq_error e;
    const char *pf = tmp_path("a.fvecs"), *pi = tmp_path("a.ivecs");
    CHECK(gslq_fvecs_write(pf, x, 5, 3, &e) == 0);
    float *y = NULL;
    size_t n;
    int d;
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == 0 && n == 5 && d == 3 && memcmp(x, y, sizeof x) == 0);
    free(y);
    size_t sz;
    unsigned char *b = slurp(pf, &sz);
    CHECK(sz == 5 * 16);
    CHECK(b && memcmp(b, &(int32_t){3}, 4) == 0);
    /* a record with another dimension, a truncated file, an empty file, a NaN */
    int32_t bad = 4;
    memcpy(b + 16, &bad, 4);
    spit(pf, b, sz);
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == GSLQ_EFORMAT && strstr(e.msg, "vector 1"));
    memcpy(b + 16, &(int32_t){3}, 4);
    spit(pf, b, sz - 1);
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == GSLQ_EFORMAT);
    spit(pf, b, 0);
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == GSLQ_EFORMAT);
    float nan = NAN;
    memcpy(b + 8, &nan, 4);
    spit(pf, b, sz);
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == GSLQ_EFORMAT && strstr(e.msg, "non-finite"));
    int32_t huge = 0x7fffffff;
    memcpy(b, &huge, 4);
    spit(pf, b, sz);
    CHECK(gslq_fvecs_read(pf, &y, &n, &d, &e) == GSLQ_EFORMAT);
    free(b);
    CHECK(gslq_fvecs_read(tmp_path("missing.fvecs"), &y, &n, &d, &e) == GSLQ_EIO && strstr(e.msg, "missing.fvecs"));
    CHECK(gslq_ivecs_write(pi, iv, 4, 2, &e) == 0);
    int32_t *jv = NULL;
    CHECK(gslq_ivecs_read(pi, &jv, &n, &d, &e) == 0 && n == 4 && d == 2 && memcmp(iv, jv, sizeof iv) == 0);
    free(jv);
    CHECK(gslq_fvecs_write(tmp_path("nodir/x.fvecs"), x, 5, 3, &e) == GSLQ_EIO);
}

static void test_labels_file(void)
{
    /* records of varying length: {3}, {}, {0, 70}, {70} */
    int32_t raw[] = {1, 3, 0, 2, 0, 70, 1, 70};
    const char *p = tmp_path("labels.ivecs");
    spit(p, raw, sizeof raw);
    uint64_t *bits = NULL;
    size_t n;
    int nw;
    gslq_error e;
    CHECK(gslq_labels_read(p, 0, &bits, &n, &nw, &e) == 0);
    CHECK(n == 4 && nw == 2);
    if (bits && n == 4 && nw == 2) {
        CHECK(bits[0] == 8 && bits[1] == 0);
        CHECK(bits[2] == 0 && bits[3] == 0);
        CHECK(bits[4] == 1 && bits[5] == (1ull << 6));
        CHECK(bits[6] == 0 && bits[7] == (1ull << 6));
    }
    free(bits);
    bits = NULL;
    /* a count that does not match the items is refused before the bitsets exist */
    CHECK(gslq_labels_read(p, 3, &bits, &n, &nw, &e) == GSLQ_EINVAL && strstr(e.msg, "4 label records for 3 items"));
    CHECK(bits == NULL);
    CHECK(gslq_labels_read(p, 4, &bits, &n, &nw, &e) == 0 && n == 4);
    free(bits);
    int32_t neg[] = {1, -2};
    spit(p, neg, sizeof neg);
    CHECK(gslq_labels_read(p, 0, &bits, &n, &nw, &e) == GSLQ_EFORMAT);
    int32_t trunc[] = {3, 1, 2};
    spit(p, trunc, sizeof trunc);
    CHECK(gslq_labels_read(p, 0, &bits, &n, &nw, &e) == GSLQ_EFORMAT);
}

/* Every proper prefix of a valid file must be rejected, and so must every single-byte corruption. */
static void hostile_prefixes(const char *path, int is_codes, const gslq_pq *pq)
{
    size_t sz;
    unsigned char *b = slurp(path, &sz);
    const char *p = tmp_path("hostile.bin");
    int accepted = 0, crashed = 0;
    for (size_t cut = 0; cut < sz; cut++) {
        spit(p, b, cut);
        gslq_error e;
        int rc;
        if (is_codes) {
            uint8_t *c = NULL;
            size_t n;
            int M;
            rc = gslq_codes_load(p, pq, &c, &n, &M, &e);
            if (c) free(c);
        } else {
            gslq_pq x;
            rc = gslq_pq_load(p, &x, &e);
            if (!rc) gslq_pq_free(&x);
        }
        if (rc == 0) accepted++;
        if (rc != GSLQ_EFORMAT && rc != GSLQ_ECHECKSUM && rc != 0) crashed++;
    }
    CHECKF(accepted == 0, "%s: %d truncated files accepted", path, accepted);
    CHECKF(crashed == 0, "%s: %d truncations gave an unexpected code", path, crashed);
    /* flip each byte in turn */
    accepted = 0;
    for (size_t i = 0; i < sz; i++) {
        b[i] ^= 0x5a;
        spit(p, b, sz);
        b[i] ^= 0x5a;
        int rc;
        if (is_codes) {
            uint8_t *c = NULL;
            size_t n;
            int M;
            rc = gslq_codes_load(p, NULL, &c, &n, &M, NULL);
            free(c);
        } else {
            gslq_pq x;
            rc = gslq_pq_load(p, &x, NULL);
            if (!rc) gslq_pq_free(&x);
        }
        if (rc == 0) accepted++;
    }
    CHECKF(accepted == 0, "%s: %d corrupted files accepted", path, accepted);
    free(b);
}

static void test_hostile_codebook(void)
{
    gslq_pq pq;
    make_pq(&pq, 6, 3, 4, 1);
    const char *p = tmp_path("small.gq");
    CHECK(gslq_pq_save(p, &pq, NULL) == 0);
    hostile_prefixes(p, 0, NULL);
    size_t sz;
    unsigned char *b = slurp(p, &sz), *c = malloc(sz + 64);
    gslq_error e;
    gslq_pq x;
    const char *q = tmp_path("bad.gq");
    /* bad magic, version, sizes (with a valid checksum, so the field checks are what rejects them) */
    struct { size_t off; uint32_t val; const char *why; } cases[] = {
        {0, 0x51534c48, "magic"}, {8, 2, "version"}, {12, 0, "d"}, {12, 0x7fffffff, "d"}, {16, 4, "divisible"},
        {20, 1000, "K"}, {20, 1, "K"}, {24, 2, "has_rotation"}, {12, 1u << 16, "size"}, {20, 256, "size"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(c, b, sz);
        memcpy(c + cases[i].off, &cases[i].val, 4);
        fix_crc(c, sz);
        spit(q, c, sz);
        int rc = gslq_pq_load(q, &x, &e);
        CHECKF(rc == GSLQ_EFORMAT, "case %zu (%s): rc %d (%s)", i, cases[i].why, rc, e.msg);
        CHECKF(x.centroids == NULL, "case %zu: pq not left empty", i);
    }
    /* payload corruption with the old checksum */
    memcpy(c, b, sz);
    c[40] ^= 1;
    spit(q, c, sz);
    CHECK(gslq_pq_load(q, &x, &e) == GSLQ_ECHECKSUM && strstr(e.msg, "checksum"));
    /* trailing garbage */
    memcpy(c, b, sz);
    memset(c + sz, 0, 8);
    spit(q, c, sz + 8);
    CHECK(gslq_pq_load(q, &x, &e) == GSLQ_EFORMAT);
    /* a NaN centroid with a valid checksum */
    memcpy(c, b, sz);
    float nan = NAN;
    memcpy(c + 28, &nan, 4);
    fix_crc(c, sz);
    spit(q, c, sz);
    CHECK(gslq_pq_load(q, &x, &e) == GSLQ_EFORMAT);
    CHECK(gslq_pq_load(dir_, &x, &e) == GSLQ_EIO); /* a directory */
    free(b); free(c);
    gslq_pq_free(&pq);
}

static void test_hostile_codes(void)
{
    gslq_pq pq;
    make_pq(&pq, 4, 2, 8, 0);
    uint8_t codes[7 * 2];
    for (int i = 0; i < 14; i++) codes[i] = (uint8_t)(i % 8);
    const char *p = tmp_path("small.gc");
    CHECK(gslq_codes_save(p, &pq, codes, 7, NULL) == 0);
    hostile_prefixes(p, 1, &pq);
    size_t sz;
    unsigned char *b = slurp(p, &sz), *c = malloc(sz);
    const char *q = tmp_path("bad.gc");
    gslq_error e;
    uint8_t *out = NULL;
    size_t n;
    int M;
    struct { size_t off; uint64_t val; int width; } cases[] = {
        {0, 0x4c53, 4}, {8, 9, 4}, {12, 0, 4}, {12, 0xffffffffu, 4}, {16, 300, 4},
        {20, 0xffffffffffffffffull, 8}, {20, 1ull << 62, 8}, {20, 8, 8}, {20, 6, 8}, {40, 8, 1} /* code 8 >= K */,
        {8, 3, 4} /* a version not yet made */, {8, 1, 4} /* version 1: 8 bytes too many */};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(c, b, sz);
        memcpy(c + cases[i].off, &cases[i].val, (size_t)cases[i].width);
        fix_crc(c, sz);
        spit(q, c, sz);
        int rc = gslq_codes_load(q, NULL, &out, &n, &M, &e);
        CHECKF(rc == GSLQ_EFORMAT, "case %zu: rc %d (%s)", i, rc, e.msg);
        CHECK(out == NULL);
    }
    memcpy(c, b, sz);
    c[41] ^= 2;
    spit(q, c, sz);
    CHECK(gslq_codes_load(q, NULL, &out, &n, &M, &e) == GSLQ_ECHECKSUM);
    free(b); free(c);
    gslq_pq_free(&pq);
}

static void test_faiss_export_layout(void)
{
    /* sizes per the layout in io.c; Faiss itself reads the files in tests/test_quant_faiss.sh */
    gslq_pq pq;
    make_pq(&pq, 8, 2, 256, 0);
    uint8_t codes[3 * 2] = {1, 2, 3, 4, 5, 255};
    const char *p = tmp_path("x.faiss");
    CHECK(gslq_export_faiss(p, &pq, codes, 3, NULL) == 0);
    size_t sz;
    unsigned char *b = slurp(p, &sz);
    CHECK(sz == 37 + 24 + 8 + 256 * 8 * 4 + 8 + 6 + 9);
    CHECK(b && memcmp(b, "IxPq", 4) == 0);
    CHECK(b && memcmp(b + sz - 9 - 6, codes, 6) == 0);
    free(b);
    /* with a rotation: IndexPreTransform in front */
    pq.rotation = calloc(64, 4);
    CHECK(gslq_export_faiss(p, &pq, codes, 3, NULL) == 0);
    b = slurp(p, &sz);
    CHECK(sz == 37 + 4 + 4 + 1 + 8 + 64 * 4 + 8 + 9 + 37 + 24 + 8 + 256 * 8 * 4 + 8 + 6 + 9);
    CHECK(b && memcmp(b, "IxPT", 4) == 0 && memcmp(b + 41, "LTra", 4) == 0);
    free(b);
    gslq_pq_free(&pq);
    /* 4-bit codes pack two per byte, low bits first */
    make_pq(&pq, 6, 3, 16, 0);
    uint8_t c4[2 * 3] = {1, 2, 3, 15, 0, 9};
    CHECK(gslq_export_faiss(p, &pq, c4, 2, NULL) == 0);
    b = slurp(p, &sz);
    CHECK(sz == 37 + 24 + 8 + 16 * 6 * 4 + 8 + 4 + 9);
    if (b && sz > 13) {
        unsigned char *cc = b + sz - 9 - 4;
        CHECK(cc[0] == 0x21 && cc[1] == 0x03 && cc[2] == 0x0f && cc[3] == 0x09);
    }
    free(b);
    gslq_pq_free(&pq);
    make_pq(&pq, 6, 3, 12, 0);
    gslq_error e;
    CHECK(gslq_export_faiss(p, &pq, c4, 2, &e) == GSLQ_EINVAL && strstr(e.msg, "power of two"));
    gslq_pq_free(&pq);
}

/* entries of folder whose name contains part */
static int count_entries(const char *folder, const char *part)
{
    DIR *dp = opendir(folder);
    int n = 0;
    for (struct dirent *de; dp && (de = readdir(dp));) n += strstr(de->d_name, part) != NULL;
    if (dp) closedir(dp);
    return n;
}

static int file_is(const char *path, const char *text)
{
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    int same = b && n == strlen(text) && !memcmp(b, text, n);
    free(b);
    return same;
}

/* An output set: nothing reaches the final names before the commit; freeing without one removes what was staged
 * and keeps the old files; a commit renames them all; a bad path is refused when added. */
static void test_output_set(void)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/outset", dir_);
    mkdir(sub, 0777);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/run.ids", sub);
    snprintf(b, sizeof b, "%s/run.dist", sub);
    spit(a, "old a", 5);
    spit(b, "old b", 5);
    int32_t ids[6] = {1, 2, 3, 4, 5, 6};
    float dist[6] = {0.5f, 1, 2, 3, 4, 5};
    gslq_error e = {0};
    for (int commit = 0; commit < 2; commit++) {
        gslq_outset os = {0};
        const char *sa = gslq_outset_add(&os, a, &e), *sb = gslq_outset_add(&os, b, &e);
        CHECKF(sa && sb && strcmp(sa, a) && strcmp(sb, b), "%s", e.msg);
        if (!sa || !sb) return;
        CHECK(gslq_ivecs_write(sa, ids, 2, 3, &e) == GSLQ_OK && gslq_fvecs_write(sb, dist, 2, 3, &e) == GSLQ_OK);
        CHECK(file_is(a, "old a") && file_is(b, "old b")); /* staged only */
        CHECK(count_entries(sub, ".part") == 2);
        if (commit) CHECKF(gslq_outset_commit(&os, &e) == GSLQ_OK, "%s", e.msg);
        gslq_outset_free(&os);
        CHECK(count_entries(sub, ".part") == 0 && count_entries(sub, ".tmp") == 0);
        CHECK(commit ? !file_is(a, "old a") && !file_is(b, "old b") : file_is(a, "old a") && file_is(b, "old b"));
    }
    int32_t *got = NULL;
    size_t n = 0;
    int dd = 0;
    CHECK(gslq_ivecs_read(a, &got, &n, &dd, &e) == GSLQ_OK && n == 2 && dd == 3 && got && got[5] == 6);
    free(got);
    /* what a killed process left of its writes to a member (its staged copy, temporaries) goes when the member is
     * added again; a live process's stays, and so do other names */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[3][800], live[800], other[800];
    snprintf(stale[0], sizeof stale[0], "%s.part%d", a, (int)dead);
    snprintf(stale[1], sizeof stale[1], "%s.tmp.%d", a, (int)dead);
    snprintf(stale[2], sizeof stale[2], "%s.part%d.tmp.%d", a, (int)getpid() + 1000000, (int)dead);
    snprintf(live, sizeof live, "%s.part%d", a, (int)getppid());
    snprintf(other, sizeof other, "%s.partial", a);
    for (int i = 0; i < 3; i++) spit(stale[i], "x", 1);
    spit(live, "x", 1);
    spit(other, "x", 1);
    gslq_outset sw = {0};
    CHECKF(gslq_outset_add(&sw, a, &e) != NULL, "%s", e.msg);
    gslq_outset_free(&sw);
    for (int i = 0; i < 3; i++) CHECKF(access(stale[i], F_OK) != 0, "%s left", stale[i]);
    CHECK(access(live, F_OK) == 0 && access(other, F_OK) == 0);
    unlink(live);
    unlink(other);
    /* a folder as an output is refused when added, naming it */
    gslq_outset os = {0};
    CHECK(gslq_outset_add(&os, sub, &e) == NULL && strstr(e.msg, sub) && strstr(e.msg, "folder") && os.n == 0);
    for (int i = 0; i < GSLQ_OUTSET_MAX; i++) CHECK(gslq_outset_add(&os, a, &e) != NULL);
    CHECK(gslq_outset_add(&os, a, &e) == NULL && e.code == GSLQ_EINVAL);
    gslq_outset_free(&os);
    /* a destination turned into a folder before the commit: the commit fails, naming it, and nothing staged is left */
    const char *sa = gslq_outset_add(&os, a, &e), *sb = gslq_outset_add(&os, b, &e);
    CHECK(sa && sb && gslq_ivecs_write(sa, ids, 2, 3, &e) == GSLQ_OK && gslq_fvecs_write(sb, dist, 2, 3, &e) == 0);
    unlink(b);
    mkdir(b, 0777);
    CHECK(gslq_outset_commit(&os, &e) != GSLQ_OK && strstr(e.msg, b));
    gslq_outset_free(&os);
    CHECK(count_entries(sub, ".part") == 0);
    rmdir(b);
}

/* gslq_create_tmp writes beside the file a symbolic link names, so the commit is a rename within that folder (not
 * across filesystems) and the link stays a link. */
static void test_tmp_beside_link_target(void)
{
    char d1[600], d2[600], link[700], real[700], tmp[GSLQ_TMP_PATH_MAX];
    snprintf(d1, sizeof d1, "%s/linkdir", dir_);
    snprintf(d2, sizeof d2, "%s/targetdir", dir_);
    mkdir(d1, 0777);
    mkdir(d2, 0777);
    snprintf(link, sizeof link, "%s/out.bin", d1);
    char *ad2 = realpath(d2, NULL); /* the link holds an absolute path */
    snprintf(real, sizeof real, "%s/real.bin", ad2 ? ad2 : d2);
    free(ad2);
    spit(real, "old", 3);
    unlink(link);
    CHECK(symlink(real, link) == 0);
    gslq_error e = {0};
    FILE *f = gslq_create_tmp(link, tmp, &e);
    CHECKF(f != NULL, "%s", e.msg);
    if (!f) return;
    char *rd2 = realpath(d2, NULL);
    CHECKF(rd2 && !strncmp(tmp, rd2, strlen(rd2)), "temporary %s not in %s", tmp, d2);
    free(rd2);
    CHECK(count_entries(d2, ".tmp") == 1 && count_entries(d1, ".tmp") == 0);
    fputs("new", f);
    fclose(f);
    CHECKF(gslq_commit_file(tmp, link, &e) == GSLQ_OK, "%s", e.msg);
    struct stat st_;
    CHECK(lstat(link, &st_) == 0 && S_ISLNK(st_.st_mode) && file_is(real, "new"));
    CHECK(count_entries(d2, ".tmp") == 0);
    /* an output set stages beside the link's target too, and its commit keeps the link */
    gslq_outset os = {0};
    const char *st = gslq_outset_add(&os, link, &e);
    CHECKF(st && count_entries(d1, ".part") == 0, "%s", e.msg);
    int32_t v[2] = {7, 8};
    if (st) {
        CHECK(gslq_ivecs_write(st, v, 1, 2, &e) == GSLQ_OK && count_entries(d2, ".part") == 1);
        CHECKF(gslq_outset_commit(&os, &e) == GSLQ_OK, "%s", e.msg);
        CHECK(lstat(link, &st_) == 0 && S_ISLNK(st_.st_mode) && count_entries(d2, ".part") == 0);
    }
    gslq_outset_free(&os);
    /* a link planted at the temporary's name is not followed: the temporary is created anew, exclusively */
    char planted[800], victim[700];
    snprintf(victim, sizeof victim, "%s/victim", d2);
    spit(victim, "keep", 4);
    snprintf(planted, sizeof planted, "%s.tmp.%ld", real, (long)getpid());
    CHECK(symlink(victim, planted) == 0);
    f = gslq_create_tmp(real, tmp, &e);
    CHECKF(f != NULL && !strcmp(tmp, planted), "%s", e.msg);
    if (f) {
        fputs("newer", f);
        fclose(f);
        CHECK(gslq_commit_file(tmp, real, &e) == GSLQ_OK && file_is(real, "newer") && file_is(victim, "keep"));
    }
    /* a folder is no output */
    CHECK(gslq_create_tmp(d1, tmp, &e) == NULL && strstr(e.msg, "folder"));
}

int main(void)
{
    snprintf(dir_, sizeof dir_, "%s", test_tmpdir());
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir_);
    if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", dir_);
    RUN(test_codebook_roundtrip);
    RUN(test_codes_roundtrip_and_fingerprint);
    RUN(test_vecs_roundtrip);
    RUN(test_labels_file);
    RUN(test_hostile_codebook);
    RUN(test_hostile_codes);
    RUN(test_faiss_export_layout);
    RUN(test_output_set);
    RUN(test_tmp_beside_link_target);
    return TEST_END();
}
