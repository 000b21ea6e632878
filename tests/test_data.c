/* darknet/data_cfg.c, data_load.c and sampler.c: IDX and image-list loading, .data parsing, class subsets, the batch sampler, and the bad-data
 * cases (each with its own message, never an exit). */
#include <zlib.h>

#include "gsl_data.h"
#include "test.h"

int stbi_write_png(char const *filename, int w, int h, int comp, const void *data, int stride_in_bytes);
int stbi_write_tga(char const *filename, int w, int h, int comp, const void *data);

static char err[GSL_DATA_ERRLEN];

static const char *tmp(const char *name)
{
    static char path[8][1024];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(path[slot], sizeof path[slot], "%s/%s", test_tmpdir(), name);
    return path[slot];
}

static void put32(unsigned char *b, uint32_t v) { b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }

/* Writes bytes, gzip'd when the name ends in .gz. */
static void write_bytes(const char *path, const void *data, size_t n)
{
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".gz") == 0) {
        gzFile g = gzopen(path, "wb");
        if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) { perror(path); exit(1); }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, n, f) != n || fclose(f)) { perror(path); exit(1); }
    }
}

/* IDX pair of n images h x w: pixel (i, j) = (i*7 + j) % 256, label i % classes. `lie` adds header lies. */
enum { LIE_NONE, LIE_COUNT_MISMATCH, LIE_TRUNCATED, LIE_EXTRA, LIE_MAGIC, LIE_HUGE, LIE_LABEL };
static void write_idx(const char *img, const char *lab, int n, int h, int w, int classes, int lie)
{
    size_t dim = (size_t)h * w, ni = 16 + n * dim + (lie == LIE_EXTRA ? 5 : 0);
    unsigned char *b = calloc(ni, 1);
    put32(b, lie == LIE_MAGIC ? 0x00000903 : 0x00000803);
    put32(b + 4, lie == LIE_HUGE ? 0x7fffffff : n);
    put32(b + 8, h);
    put32(b + 12, w);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) b[16 + i * dim + j] = (unsigned char)((i * 7 + j) % 256);
    write_bytes(img, b, lie == LIE_TRUNCATED ? ni - 3 : ni);
    free(b);
    unsigned char *l = calloc(8 + n, 1);
    put32(l, 0x00000801);
    put32(l + 4, lie == LIE_COUNT_MISMATCH ? n + 1 : n);
    for (int i = 0; i < n; i++) l[8 + i] = (unsigned char)(i % classes);
    if (lie == LIE_LABEL) l[8 + n - 1] = (unsigned char)classes;
    write_bytes(lab, l, 8 + n);
    free(l);
}

static void test_idx_roundtrip_gz_and_raw(void)
{
    const char *names[][2] = {{"a-images.gz", "a-labels.gz"}, {"b-images", "b-labels"}};
    for (int t = 0; t < 2; t++) {
        const char *img = tmp(names[t][0]), *lab = tmp(names[t][1]);
        write_idx(img, lab, 10, 3, 5, 4, LIE_NONE);
        gsl_data d;
        int rc = gsl_data_load_idx(img, lab, 4, &d, err);
        CHECKF(rc == 0, "%s", err);
        if (rc) continue;
        CHECK(d.n == 10 && d.c == 1 && d.h == 3 && d.w == 5 && d.classes == 4);
        CHECK_CLOSE(d.x[2 * 15 + 4], ((2 * 7 + 4) % 256) / 255.0, 1e-7, 0);
        CHECK(d.label[7] == 3 && d.record[7] == 7 && d.path == NULL);
        gsl_data_free(&d);
    }
}

static void expect_idx_error(int lie, const char *needle)
{
    const char *img = tmp("lie-images.gz"), *lab = tmp("lie-labels.gz");
    write_idx(img, lab, 6, 4, 4, 3, lie);
    gsl_data d;
    int rc = gsl_data_load_idx(img, lab, 3, &d, err);
    CHECKF(rc == -1, "lie %d accepted", lie);
    CHECKF(strstr(err, needle) != NULL, "lie %d: message '%s' lacks '%s'", lie, err, needle);
}

static void test_idx_lies_rejected(void)
{
    expect_idx_error(LIE_COUNT_MISMATCH, "declares 6 images but");
    expect_idx_error(LIE_TRUNCATED, "file ends inside the pixels");
    expect_idx_error(LIE_EXTRA, "data continues past");
    expect_idx_error(LIE_MAGIC, "not an IDX file");
    expect_idx_error(LIE_HUGE, "declares 2147483647 images");
    expect_idx_error(LIE_LABEL, "label 3 of sample 5 is not below classes=3");
    gsl_data d;
    CHECK(gsl_data_load_idx(tmp("missing-images"), tmp("missing-labels"), 3, &d, err) == -1);
    CHECKF(strstr(err, "missing-images: cannot open") != NULL, "%s", err);
    /* every truncation of a small valid pair is an error */
    const char *img = tmp("t-images"), *lab = tmp("t-labels");
    write_idx(img, lab, 2, 2, 2, 2, LIE_NONE);
    unsigned char full[16 + 8];
    FILE *f = fopen(img, "rb");
    size_t n = fread(full, 1, sizeof full, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut++) {
        write_bytes(img, full, cut);
        CHECKF(gsl_data_load_idx(img, lab, 2, &d, err) == -1, "truncated at %zu accepted", cut);
    }
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static void test_data_cfg_parse(void)
{
    const char *p = tmp("ok.data");
    write_text(p, "# comment\nclasses = 10\ntrain=a.gz\ntrain_labels=b.gz\nvalid=c\nvalid_labels=d\n"
                  "train_classes=0-4\neval_classes=5,6, 7-9\nnames=x\n");
    gsl_data_cfg c;
    int rc = gsl_data_cfg_read(p, &c, err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(c.classes == 10 && strcmp(c.train, "a.gz") == 0 && strcmp(c.valid_labels, "d") == 0);
    CHECK(strcmp(c.backup, "backup") == 0);
    CHECK(c.n_train_classes == 5 && c.train_classes[4] == 4);
    CHECK(c.n_eval_classes == 5 && c.eval_classes[0] == 5 && c.eval_classes[4] == 9);
    gsl_data_cfg_free(&c);
}

static void expect_cfg_error(const char *text, const char *needle)
{
    const char *p = tmp("bad.data");
    write_text(p, text);
    gsl_data_cfg c;
    int rc = gsl_data_cfg_read(p, &c, err);
    CHECKF(rc == -1, "accepted: %s", text);
    CHECKF(strstr(err, needle) && strstr(err, "bad.data"), "message '%s' lacks '%s' or the file name", err, needle);
}

static void test_data_cfg_errors(void)
{
    expect_cfg_error("classes=10\ntrain=a\nfoo=1\n", ":3: unknown key 'foo'");
    expect_cfg_error("classes=ten\ntrain=a\n", ":1: key 'classes': 'ten' is not an integer");
    expect_cfg_error("train=a\n", "key 'classes' is required");
    expect_cfg_error("classes=3\n", "key 'train' is required");
    expect_cfg_error("classes=3\ntrain=a\ntrain_classes=0-5\n", ":3: key 'train_classes': class range 0-5");
    expect_cfg_error("classes=3\ntrain=a\neval_classes=1;2\n", "key 'eval_classes': '1;2' is not a class list");
    expect_cfg_error("classes=3\ntrain\n", ":2: expected key=value");
    expect_cfg_error("classes=3\ntrain=a\nholdout=-1\n", ":3: key 'holdout': '-1' is not a number of samples");
    expect_cfg_error("classes=3\ntrain=a\nholdout_seed=x\n", ":3: key 'holdout_seed': 'x' is not a seed");
    expect_cfg_error("classes=3\ntrain=a\n\ntrain=b\n", ":4: key 'train' is given twice (first on line 2)");
    expect_cfg_error("classes=3\ntrain=a\nloader_threads=0\n", ":3: key 'loader_threads': '0' is not an integer in 1..64");
    expect_cfg_error("classes=3\ntrain=a\nloader_threads=2x\n", ":3: key 'loader_threads': '2x' is not an integer");
    expect_cfg_error("classes=3\ntrain=a\nvalid=b\nholdout=5\n", ":3: 'valid'/'valid_labels' cannot be given with holdout=5");
    gsl_data_cfg c;
    CHECK(gsl_data_cfg_read(tmp("no-such.data"), &c, err) == -1 && strstr(err, "no-such.data: cannot open"));
}

static void test_class_subset_and_split(void)
{
    const char *img = tmp("s-images.gz"), *lab = tmp("s-labels.gz");
    write_idx(img, lab, 40, 2, 2, 4, LIE_NONE);
    char text[4096];
    snprintf(text, sizeof text, "classes=4\ntrain=%s\ntrain_labels=%s\nvalid=%s\nvalid_labels=%s\n"
                                "train_classes=0,1\neval_classes=2-3\n", img, lab, img, lab);
    const char *p = tmp("s.data");
    write_text(p, text);
    gsl_data_cfg c;
    if (gsl_data_cfg_read(p, &c, err)) { CHECKF(0, "%s", err); return; }
    gsl_data tr, va, db;
    CHECKF(gsl_data_load(&c, GSL_SPLIT_TRAIN, 1, 2, 2, &tr, err) == 0, "%s", err);
    CHECKF(gsl_data_load(&c, GSL_SPLIT_VALID, 1, 2, 2, &va, err) == 0, "%s", err);
    CHECKF(gsl_data_load(&c, GSL_SPLIT_DATABASE, 1, 2, 2, &db, err) == 0, "%s", err);
    CHECK(tr.n == 20 && va.n == 20 && db.n == 20);
    int ok = 1;
    for (int i = 0; i < tr.n; i++) ok &= tr.label[i] <= 1;
    for (int i = 0; i < va.n; i++) ok &= va.label[i] >= 2;
    CHECK(ok);
    /* order preserved: train sample 1 is original sample 1 (label 1), sample 2 is original 4 */
    CHECK_CLOSE(tr.x[2 * 4 + 0], ((4 * 7) % 256) / 255.0, 1e-7, 0);
    gsl_data wrong;
    CHECK(gsl_data_load(&c, GSL_SPLIT_TRAIN, 1, 3, 3, &wrong, err) == -1 && strstr(err, "the network expects"));
    gsl_data_free(&tr); gsl_data_free(&va); gsl_data_free(&db);
    gsl_data_cfg_free(&c);
}

/* An IDX source without its labels file: the unlabelled commands read it (label -1, the same pixels as with labels);
 * a command that needs labels names the missing key. */
static void test_idx_without_labels(void)
{
    const char *img = tmp("u-images.gz"), *lab = tmp("u-labels.gz");
    write_idx(img, lab, 12, 2, 3, 4, LIE_NONE);
    char text[4096];
    snprintf(text, sizeof text, "classes=4\ntrain=%s\ntrain_labels=%s\ndatabase=%s\n", img, lab, img);
    const char *p = tmp("u.data");
    write_text(p, text);
    gsl_data_cfg c;
    if (gsl_data_cfg_read(p, &c, err)) { CHECKF(0, "%s", err); return; }
    gsl_data db, tr;
    int rc = gsl_data_load_unlabelled(&c, GSL_SPLIT_DATABASE, 1, 2, 3, &db, err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        CHECK(gsl_data_load(&c, GSL_SPLIT_TRAIN, 1, 2, 3, &tr, err) == 0);
        int ok = db.n == 12 && tr.n == 12 && db.path == NULL;
        for (int i = 0; ok && i < 12; i++) ok = db.label[i] == -1 && db.record[i] == i && tr.label[i] == i % 4;
        CHECK(ok);
        CHECK(ok && memcmp(db.x, tr.x, sizeof(float) * 12 * 6) == 0);
        gsl_data_free(&db);
        gsl_data_free(&tr);
    }
    gsl_data bad;
    CHECK(gsl_data_load(&c, GSL_SPLIT_DATABASE, 1, 2, 3, &bad, err) == -1 &&
          strstr(err, "key 'database' is an IDX file, which needs the key 'database_labels'"));
    gsl_data_cfg_free(&c);
}

/* Decoding on several threads (loader_threads) gives the rows, labels, marks and error of one thread: a list of 23
 * images of several sizes (resized) and classes, two of them unreadable, gathered in one batch by 1, 2, 3 and 8
 * threads, in error mode (the first unreadable row's line is named whichever thread meets it) and in skip mode. */
static void test_gather_threads(void)
{
    enum { N = 23, C = 3, H = 6, W = 5 };
    char names[256], lp[256]; /* tmp() returns the same buffer each call */
    snprintf(names, sizeof names, "%s", tmp("tn.txt"));
    write_text(names, "cat\ndog\nowl\n");
    char list[N * 80] = "", path[64];
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "tg_%s_%02d.png", i % 3 == 0 ? "cat" : i % 3 == 1 ? "dog" : "owl", i);
        const char *p = tmp(path);
        if (i == 17) {
            write_text(p, "not an image"); /* unreadable: samples 9 (truncated) and 17, lines 10 and 18 */
        } else if (i == 9) {
            unsigned char px[6 * 6 * 3] = {0}, buf[4096];
            CHECK(stbi_write_png(p, 6, 6, 3, px, 6 * 3));
            FILE *f = fopen(p, "rb");
            size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
            if (f) fclose(f);
            write_bytes(p, buf, got / 2);
        } else {
            int w = 3 + i % 4, h = 4 + i % 3;
            unsigned char px[7 * 7 * 3];
            for (int k = 0; k < w * h * 3; k++) px[k] = (unsigned char)(i * 31 + k * 7);
            CHECK(stbi_write_png(p, w, h, 3, px, w * 3));
        }
        strcat(list, p);
        strcat(list, "\n");
    }
    snprintf(lp, sizeof lp, "%s", tmp("tg.list"));
    write_text(lp, list);
    char *nm[] = {"cat", "dog", "owl"};
    int idx[N];
    for (int i = 0; i < N; i++) idx[i] = (i * 5 + 3) % N; /* a permutation: row 0 is sample 3 */
    float ref[N * C * H * W], got[N * C * H * W], tref[N * 3], tgot[N * 3];
    uint8_t mref[N];
    const int threads[] = {1, 2, 3, 8};
    for (int skip = 0; skip < 2; skip++)
        for (int t = 0; t < 4; t++) {
            gsl_data d;
            if (gsl_data_load_list(lp, nm, 3, 1, C, H, W, &d, err)) { CHECKF(0, "%s", err); return; }
            d.threads = threads[t];
            d.skip_unreadable = skip;
            if (skip && !(d.unreadable = calloc(N, 1))) { CHECK(0); gsl_data_free(&d); return; }
            float *x = t ? got : ref, *y = t ? tgot : tref;
            for (size_t k = 0; k < sizeof got / sizeof got[0]; k++) x[k] = -7.0f;
            int rc = gsl_data_gather(&d, idx, N, x, y, err);
            if (!skip) {
                /* sample 17 (text) is row 12, sample 9 (truncated) row 15, in different threads' shares from 3 threads
                 * on: row 12 is met first in row order, line 18, with its own reason whichever thread failed last */
                CHECKF(rc == -1 && strstr(err, "tg.list:18: cannot read image") &&
                           strstr(err, "tg_owl_17.png: not an image stb_image can read"),
                       "%d threads: %s", threads[t], err);
                /* the unreadable samples first: one thread stops at row 0, more decode the other shares regardless */
                int first[N];
                first[0] = 17, first[1] = 9;
                for (int i = 0, k = 2; i < N; i++)
                    if (i != 9 && i != 17) first[k++] = i;
                x[(N - 1) * C * H * W] = -7.0f;
                rc = gsl_data_gather(&d, first, N, x, y, err);
                CHECKF(rc == -1 && strstr(err, "tg.list:18:") &&
                           (x[(N - 1) * C * H * W] == -7.0f) == (threads[t] == 1),
                       "%d threads: the last row %s decoded (%s)", threads[t],
                       x[(N - 1) * C * H * W] == -7.0f ? "was not" : "was", err);
            } else if (!t) {
                CHECKF(rc == 0, "%s", err);
                memcpy(mref, d.unreadable, N);
                CHECK(mref[9] == 1 && mref[17] == 1 && gsl_data_unreadable_count(&d) == 2);
            } else {
                CHECKF(rc == 0, "%d threads: %s", threads[t], err);
                CHECKF(!memcmp(ref, got, sizeof got) && !memcmp(tref, tgot, sizeof tgot) && !memcmp(mref, d.unreadable, N),
                       "%d threads: not the rows of one thread", threads[t]);
            }
            gsl_data_free(&d);
        }
    /* the .data key sets the count; without it, the CPUs this process may use (at most GSL_LOADER_AUTO_THREADS) */
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text, "classes=3\ntrain=%s\nlabels=%s\n%s", lp, names, k ? "loader_threads=3\n" : "");
        const char *dp = tmp("tg.data");
        write_text(dp, text);
        gsl_data_cfg c;
        gsl_data d;
        if (gsl_data_cfg_read(dp, &c, err)) { CHECKF(0, "%s", err); return; }
        if (gsl_data_load(&c, GSL_SPLIT_TRAIN, C, H, W, &d, err) == 0) {
            CHECKF(k ? d.threads == 3 : d.threads >= 1 && d.threads <= GSL_LOADER_AUTO_THREADS, "threads %d", d.threads);
            gsl_data_free(&d);
        } else {
            CHECKF(0, "%s", err);
        }
        gsl_data_cfg_free(&c);
    }
}

/* Files saved by Windows editors: a UTF-8 byte order mark and CRLF line ends, in a list, a names file and a .data */
static void test_windows_text_files(void)
{
    unsigned char px[2 * 2 * 3] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    char a[256], b[256], names[256], list[256], text[1200];
    snprintf(a, sizeof a, "%s", tmp("w_cat_1.png"));
    snprintf(b, sizeof b, "%s", tmp("w_dog_2.png"));
    CHECK(stbi_write_png(a, 2, 2, 3, px, 6) && stbi_write_png(b, 2, 2, 3, px, 6));
    snprintf(names, sizeof names, "%s", tmp("w_names.txt"));
    write_text(names, "\xef\xbb\xbf" "cat\r\ndog\r\n");
    snprintf(list, sizeof list, "%s", tmp("w.list"));
    snprintf(text, sizeof text, "\xef\xbb\xbf%s\r\n%s\r\n", a, b);
    write_text(list, text);
    snprintf(text, sizeof text, "\xef\xbb\xbf" "classes=2\r\ntrain=%s\r\nlabels=%s\r\n", list, names);
    const char *dp = tmp("w.data");
    write_text(dp, text);
    gsl_data_cfg c;
    gsl_data d;
    if (gsl_data_cfg_read(dp, &c, err)) { CHECKF(0, "%s", err); return; }
    CHECK(c.classes == 2 && !strcmp(c.train, list) && !strcmp(c.labels, names));
    if (gsl_data_load(&c, GSL_SPLIT_TRAIN, 3, 2, 2, &d, err) == 0) {
        CHECK(d.n == 2 && !strcmp(d.path[0], a) && d.label[0] == 0 && d.label[1] == 1);
        float row[12];
        CHECKF(gsl_data_gather(&d, (int[]){0}, 1, row, NULL, err) == 0, "%s", err);
        gsl_data_free(&d);
    } else {
        CHECKF(0, "%s", err);
    }
    gsl_data_cfg_free(&c);
}

/* Reads a list's sample i through the gather (the only way a streamed image is decoded). */
static int gather_one(const gsl_data *d, int i, float *row, float *truth)
{
    return gsl_data_gather(d, &i, 1, row, truth, err);
}

static void test_image_list(void)
{
    /* 2 classes, 4x3 RGB images named for each class */
    const char *names = tmp("names.txt");
    write_text(names, "cat\ndog\n");
    unsigned char px[4 * 3 * 3];
    for (int i = 0; i < 36; i++) px[i] = (unsigned char)(i * 5);
    const char *a = tmp("img_cat_1.png"), *b = tmp("img_dog_2.png");
    CHECK(stbi_write_png(a, 4, 3, 3, px, 4 * 3));
    CHECK(stbi_write_png(b, 4, 3, 3, px, 4 * 3));
    char list[4096];
    snprintf(list, sizeof list, "%s\n\n%s\n", a, b);
    const char *lp = tmp("list.txt");
    write_text(lp, list);
    char *nm[2] = {"cat", "dog"};
    gsl_data d;
    float row[3 * 4 * 4], truth[2];
    int rc = gsl_data_load_list(lp, nm, 2, 1, 3, 3, 4, &d, err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        /* streamed: paths and lines kept, nothing decoded until gathered */
        CHECK(d.n == 2 && d.label[0] == 0 && d.label[1] == 1 && d.x == NULL && d.line[1] == 3);
        CHECK(strcmp(d.path[1], b) == 0);
        CHECKF(gather_one(&d, 1, row, truth) == 0, "%s", err);
        /* plane layout: channel 1, row 2, col 3 = interleaved ((2*4+3)*3+1) */
        CHECK_CLOSE(row[(1 * 3 + 2) * 4 + 3], px[(2 * 4 + 3) * 3 + 1] / 255.0, 1e-7, 0);
        CHECK(truth[0] == 0 && truth[1] == 1);
        char item[1200];
        gsl_data_item(&d, 1, item, sizeof item);
        CHECK(strcmp(item, b) == 0);
        gsl_data_free(&d);
    }
    /* two labels, no label: errors when labels are needed, unlabelled (-1, truth all zero) when not */
    char *nm2[2] = {"img", "cat"};
    CHECK(gsl_data_load_list(lp, nm2, 2, 1, 3, 3, 4, &d, err) == -1 && strstr(err, "matches two labels"));
    char *nm3[2] = {"bird", "fish"};
    CHECK(gsl_data_load_list(lp, nm3, 2, 1, 3, 3, 4, &d, err) == -1 && strstr(err, "list.txt:1: path") &&
          strstr(err, "matches no label"));
    if (gsl_data_load_list(lp, nm3, 2, 0, 3, 3, 4, &d, err) == 0) {
        CHECK(d.label[0] == -1 && d.label[1] == -1);
        truth[0] = truth[1] = 7;
        CHECK(gather_one(&d, 0, row, truth) == 0 && truth[0] == 0 && truth[1] == 0);
        gsl_data_free(&d);
    } else CHECKF(0, "unlabelled list refused: %s", err);
    if (gsl_data_load_list(lp, NULL, 2, 0, 3, 3, 4, &d, err) == 0) {
        CHECK(d.n == 2 && d.label[0] == -1);
        gsl_data_free(&d);
    } else CHECKF(0, "a list without a names file refused: %s", err);
    /* an unreadable image is found when gathered: list, line and file named */
    const char *junk = tmp("img_cat_junk.png");
    write_text(junk, "not a png");
    snprintf(list, sizeof list, "%s\n%s\n", junk, b);
    write_text(lp, list);
    if (gsl_data_load_list(lp, nm, 2, 1, 3, 3, 4, &d, err) == 0) {
        CHECK(gather_one(&d, 0, row, truth) == -1 && strstr(err, "list.txt:1: cannot read image") &&
              strstr(err, "img_cat_junk.png"));
        /* skip mode: marked, and the next readable image of the list takes its place */
        d.skip_unreadable = 1;
        d.unreadable = calloc(d.n, 1);
        float want[3 * 4 * 3];
        CHECK(gather_one(&d, 1, want, truth) == 0);
        CHECKF(gather_one(&d, 0, row, truth) == 0, "%s", err);
        CHECK(memcmp(row, want, sizeof want) == 0 && d.unreadable[0] == 1 && gsl_data_unreadable_count(&d) == 1);
        CHECKF(truth[0] == 0 && truth[1] == 1, "the stand-in's label goes with it: truth %g %g", truth[0], truth[1]);
        float rows[2] = {10, 11};
        gsl_data_drop_unreadable(&d, rows, sizeof(float));
        CHECK(d.n == 1 && strcmp(d.path[0], b) == 0 && rows[0] == 11 && d.line[0] == 2);
        gsl_data_free(&d);
    } else CHECKF(0, "%s", err);
    CHECK(gsl_data_load_list(tmp("nolist.txt"), nm, 2, 1, 3, 3, 4, &d, err) == -1 && strstr(err, "cannot open"));
}

/* Truncated and empty files are errors naming the reason (stb_image alone would decode a truncated PNG or JPEG
 * with grey rows); a resized image follows Darknet's bilinear resize_image, which maps output column x to source
 * column x*(w-1)/(W-1): a horizontal ramp stays a ramp, a constant stays constant. */
static void test_image_decode(void)
{
    enum { W = 9, H = 5 };
    unsigned char px[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (unsigned char)(x * 30);
    const char *p = tmp("ramp.png");
    CHECK(stbi_write_png(p, W, H, 1, px, W));
    float row[3 * 7 * 17];
    /* 9 -> 17 columns (sources x*0.5), 5 -> 7 rows; one channel */
    CHECKF(gsl_image_decode(p, 1, 7, 17, row, err) == 0, "%s", err);
    double worst = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 17; x++) {
            double want = 30.0 * x * (W - 1) / 16.0 / 255.0, diff = fabs(row[y * 17 + x] - want);
            if (diff > worst) worst = diff;
        }
    CHECKF(worst < 1e-5, "ramp resized: max deviation %g", worst);
    /* grey to 3 channels: every plane the same */
    CHECKF(gsl_image_decode(p, 3, H, W, row, err) == 0, "%s", err);
    CHECK(memcmp(row, row + W * H, sizeof(float) * W * H) == 0);
    CHECK_CLOSE(row[W * H + 4], px[4] / 255.0, 1e-6, 0);
    /* truncated PNG, empty file, a folder */
    FILE *f = fopen(p, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *t = tmp("cut.png");
    write_bytes(t, buf, n - 20);
    CHECK(gsl_image_decode(t, 1, H, W, row, err) == -1 && strstr(err, "cut.png") && strstr(err, "truncated PNG"));
    write_bytes(t, buf, 0);
    CHECK(gsl_image_decode(t, 1, H, W, row, err) == -1 && strstr(err, "empty file"));
    /* data after the end marker (a motion photo's video, padding) is not truncation */
    unsigned char more[4096 + 300];
    memcpy(more, buf, n);
    memset(more + n, 0x5a, 300);
    const char *pad = tmp("trailing.png");
    write_bytes(pad, more, n + 300);
    CHECKF(gsl_image_decode(pad, 1, H, W, row, err) == 0, "%s", err);
    CHECK(gsl_image_decode(test_tmpdir(), 1, H, W, row, err) == -1);
    /* a missing relative path: the message says where relative paths are read from */
    CHECK(gsl_image_decode("no/such/image.png", 1, H, W, row, err) == -1 &&
          strstr(err, "no/such/image.png") && strstr(err, "(a relative path is read from the working directory, /"));
    /* a query file: one image, or a list */
    gsl_data q;
    CHECKF(gsl_data_load_images(p, 1, H, W, 0, 0, &q, err) == 0 && q.n == 1 && strcmp(q.path[0], p) == 0, "%s", err);
    gsl_data_free(&q);
    char list[2100];
    snprintf(list, sizeof list, "%s\n%s\n", p, p);
    write_text(tmp("q.txt"), list);
    CHECKF(gsl_data_load_images(tmp("q.txt"), 1, H, W, 0, 0, &q, err) == 0 && q.n == 2 && q.label[1] == -1, "%s", err);
    gsl_data_free(&q);
    /* TGA has no magic bytes: a single .tga query is recognised by its extension, and decodes */
    unsigned char grey[W * H];
    for (int i = 0; i < W * H; i++) grey[i] = (unsigned char)(i * 9);
    char tga[1100];
    snprintf(tga, sizeof tga, "%s", tmp("query.TGA"));
    CHECK(stbi_write_tga(tga, W, H, 1, grey));
    CHECKF(gsl_data_load_images(tga, 1, H, W, 0, 0, &q, err) == 0 && q.n == 1, "%s", err);
    if (q.n == 1) {
        CHECKF(gsl_data_gather(&q, (int[]){0}, 1, row, NULL, err) == 0, "%s", err);
        CHECK_CLOSE(row[5], 45 / 255.0, 1e-6, 0);
    }
    gsl_data_free(&q);
}

static gsl_data make_labels(int n, int classes, int skew)
{
    gsl_data d = {0};
    d.n = n; d.c = 1; d.h = 1; d.w = 1; d.classes = classes;
    d.x = calloc(n, sizeof(float));
    d.label = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        d.label[i] = skew && i % 3 ? 0 : (skew ? i / 3 : i) % classes;
        d.x[i] = (float)i;
    }
    return d;
}

static void test_sampler_epoch_permutation_and_seed(void)
{
    gsl_data d = make_labels(50, 5, 0);
    gsl_sampler s1, s2, s3;
    CHECK(gsl_sampler_init(&s1, &d, 10, 0, 0, 7, err) == 0);
    CHECK(gsl_sampler_init(&s2, &d, 10, 0, 0, 7, err) == 0);
    CHECK(gsl_sampler_init(&s3, &d, 10, 0, 0, 8, err) == 0);
    int seen[50] = {0}, a[10], b[10], c[10], same = 1, differ = 0;
    for (int t = 0; t < 5; t++) {
        gsl_sampler_next(&s1, a);
        gsl_sampler_next(&s2, b);
        gsl_sampler_next(&s3, c);
        for (int i = 0; i < 10; i++) {
            seen[a[i]]++;
            same &= a[i] == b[i];
            differ |= a[i] != c[i];
        }
    }
    int perm = 1;
    for (int i = 0; i < 50; i++) perm &= seen[i] == 1;
    CHECK(perm);
    CHECK(same);
    CHECK(differ);
    CHECK(gsl_sampler_batches_per_epoch(&s1) == 5);
    gsl_sampler_free(&s1); gsl_sampler_free(&s2); gsl_sampler_free(&s3);
    gsl_data_free(&d);
}

static void test_sampler_class_balanced(void)
{
    gsl_data d = make_labels(60, 6, 1); /* class 0 dominates; classes 1..5 have few samples */
    gsl_sampler s;
    int rc = gsl_sampler_init(&s, &d, 12, 4, 3, 1, err);
    CHECKF(rc == 0, "%s", err);
    int idx[12];
    for (int t = 0; t < 20 && rc == 0; t++) {
        gsl_sampler_next(&s, idx);
        int classes_seen[6] = {0};
        for (int p = 0; p < 4; p++) {
            int k = d.label[idx[p * 3]];
            for (int q = 0; q < 3; q++) CHECK(d.label[idx[p * 3 + q]] == k);
            classes_seen[k]++;
        }
        for (int k = 0; k < 6; k++) CHECK(classes_seen[k] <= 1);
    }
    gsl_sampler_free(&s);
    CHECK(gsl_sampler_init(&s, &d, 12, 4, 4, 1, err) == -1 && strstr(err, "must equal batch=12"));
    CHECK(gsl_sampler_init(&s, &d, 14, 7, 2, 1, err) == -1 && strstr(err, "need P=7 classes (classes_per_batch)") && strstr(err, "has images of 6"));
    gsl_data_free(&d);
}

/* holdout=N: N samples per class of the train source become the valid split (seeded, the same for every split),
 * are removed from train and from the default database, and class subsets apply on top. */
static void test_holdout_split(void)
{
    const char *img = tmp("h-images.gz"), *lab = tmp("h-labels.gz");
    write_idx(img, lab, 40, 2, 2, 4, LIE_NONE); /* 10 per class */
    char text[4096];
    snprintf(text, sizeof text, "classes=4\ntrain=%s\ntrain_labels=%s\nholdout=3\nholdout_seed=5\n"
                                "train_classes=0,1\neval_classes=2-3\n", img, lab);
    const char *p = tmp("h.data");
    write_text(p, text);
    gsl_data_cfg c;
    if (gsl_data_cfg_read(p, &c, err)) { CHECKF(0, "%s", err); return; }
    CHECK(c.holdout == 3 && c.holdout_seed == 5 && c.valid && strcmp(c.valid, img) == 0);
    gsl_data tr, va, db;
    CHECKF(gsl_data_load(&c, GSL_SPLIT_TRAIN, 1, 2, 2, &tr, err) == 0, "%s", err);
    CHECKF(gsl_data_load(&c, GSL_SPLIT_VALID, 1, 2, 2, &va, err) == 0, "%s", err);
    CHECKF(gsl_data_load(&c, GSL_SPLIT_DATABASE, 1, 2, 2, &db, err) == 0, "%s", err);
    CHECK(tr.n == 14 && va.n == 6 && db.n == 14);
    /* sample i is recognised by its pixels ((i*7 + j) % 256) / 255, unique for i < 40 */
    int seen[40] = {0}, ok = 1;
    gsl_data *parts[3] = {&tr, &va, &db};
    for (int p3 = 0; p3 < 3; p3++)
        for (int i = 0; i < parts[p3]->n; i++) {
            int id = -1;
            for (int j = 0; j < 40; j++)
                if (fabs(parts[p3]->x[i * 4] - ((j * 7) % 256) / 255.0) < 1e-6 &&
                    fabs(parts[p3]->x[i * 4 + 1] - ((j * 7 + 1) % 256) / 255.0) < 1e-6) id = j;
            ok &= id >= 0 && parts[p3]->label[i] == id % 4;
            if (id >= 0) seen[id] |= 1 << p3;
        }
    CHECK(ok);
    int per_class[4] = {0}, disjoint = 1;
    for (int j = 0; j < 40; j++) {
        if (seen[j] & 2) per_class[j % 4]++;
        disjoint &= !((seen[j] & 2) && (seen[j] & 5)); /* a holdout sample is in neither train nor database */
    }
    CHECK(disjoint && per_class[0] == 0 && per_class[1] == 0 && per_class[2] == 3 && per_class[3] == 3);
    /* the same seed gives the same holdout; another seed another one (at least for some class) */
    uint8_t m1[40], m2[40], m3[40];
    int labels[40];
    for (int i = 0; i < 40; i++) labels[i] = i % 4;
    CHECK(gsl_data_holdout_mask(labels, 40, 4, 3, 5, m1, err) == 0);
    CHECK(gsl_data_holdout_mask(labels, 40, 4, 3, 5, m2, err) == 0);
    CHECK(gsl_data_holdout_mask(labels, 40, 4, 3, 6, m3, err) == 0);
    CHECK(memcmp(m1, m2, 40) == 0 && memcmp(m1, m3, 40) != 0);
    int cnt[4] = {0};
    for (int i = 0; i < 40; i++) cnt[i % 4] += m1[i];
    CHECK(cnt[0] == 3 && cnt[1] == 3 && cnt[2] == 3 && cnt[3] == 3);
    CHECK(gsl_data_holdout_mask(labels, 40, 4, 10, 5, m1, err) == -1 && strstr(err, "leave none to train on"));
    gsl_data_free(&tr); gsl_data_free(&va); gsl_data_free(&db);
    gsl_data_cfg_free(&c);
    /* too large for the data: reported when loading, naming the key */
    snprintf(text, sizeof text, "classes=4\ntrain=%s\ntrain_labels=%s\nholdout=10\n", img, lab);
    write_text(p, text);
    if (gsl_data_cfg_read(p, &c, err)) { CHECKF(0, "%s", err); return; }
    CHECK(gsl_data_load(&c, GSL_SPLIT_VALID, 1, 2, 2, &va, err) == -1 && strstr(err, "key 'holdout'"));
    gsl_data_cfg_free(&c);
}


/* ---- augmentation: every row is one of the 2 (2s+1)^2 transforms, checked against a reference that moves the
 * source pixels forward (mirror, then translate) instead of gathering them */
static gsl_data make_images(int n, int c, int h, int w)
{
    gsl_data d = {0};
    d.n = n; d.c = c; d.h = h; d.w = w; d.classes = 3;
    d.x = malloc(sizeof(float) * (size_t)n * c * h * w);
    d.label = malloc(sizeof(int) * n);
    for (size_t i = 0; i < (size_t)n * c * h * w; i++) d.x[i] = 1.0f + (float)i; /* distinct, none 0 */
    for (int i = 0; i < n; i++) d.label[i] = i % d.classes;
    return d;
}

static void reference_transform(const float *src, int c, int h, int w, int mirror, int dx, int dy, float *out)
{
    memset(out, 0, sizeof(float) * (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int ty = y + dy, tx = (mirror ? w - 1 - x : x) + dx;
                if (ty >= 0 && ty < h && tx >= 0 && tx < w)
                    out[((size_t)ch * h + ty) * w + tx] = src[((size_t)ch * h + y) * w + x];
            }
}

static void test_augment_identity_without_keys(void)
{
    gsl_data d = make_images(6, 2, 5, 7);
    int idx[4] = {5, 0, 3, 3};
    size_t dim = 2 * 5 * 7;
    float *a = malloc(sizeof(float) * 4 * dim), *b = malloc(sizeof(float) * 4 * dim);
    float ta[12], tb[12];
    gsl_augment none = {0, 0};
    CHECK(gsl_data_gather(&d, idx, 4, a, ta, err) == 0);
    CHECK(gsl_data_gather_augmented(&d, idx, 4, &none, 12345, 7, b, tb, err) == 0);
    CHECK(memcmp(a, b, sizeof(float) * 4 * dim) == 0);
    CHECK(memcmp(ta, tb, sizeof ta) == 0);
    free(a); free(b);
    gsl_data_free(&d);
}

static void test_augment_against_reference(void)
{
    enum { N = 400, C = 2, H = 5, W = 7, S = 2 };
    gsl_data d = make_images(9, C, H, W);
    size_t dim = C * H * W;
    int idx[N];
    for (int i = 0; i < N; i++) idx[i] = (i * 7) % d.n;
    float *x = malloc(sizeof(float) * N * dim), *ref = malloc(sizeof(float) * dim), truth[N * 3];
    gsl_augment a = {1, S};
    CHECK(gsl_data_gather_augmented(&d, idx, N, &a, 99, 0, x, truth, err) == 0);
    int count[2][2 * S + 1][2 * S + 1];
    memset(count, 0, sizeof count);
    int bad_range = 0, bad_pixels = 0, bad_truth = 0;
    for (int i = 0; i < N; i++) {
        int m, dx, dy;
        gsl_augment_draw(&a, 99, i, &m, &dx, &dy);
        if (m < 0 || m > 1 || dx < -S || dx > S || dy < -S || dy > S) { bad_range++; continue; }
        count[m][dx + S][dy + S]++;
        reference_transform(d.x + (size_t)idx[i] * dim, C, H, W, m, dx, dy, ref);
        bad_pixels += memcmp(ref, x + (size_t)i * dim, sizeof(float) * dim) != 0;
        for (int k = 0; k < 3; k++) bad_truth += truth[i * 3 + k] != (k == d.label[idx[i]]);
    }
    CHECKF(bad_range == 0 && bad_pixels == 0 && bad_truth == 0, "%d draws out of range, %d rows differ from the "
           "reference, %d label entries changed", bad_range, bad_pixels, bad_truth);
    /* 50 transforms, 400 draws: each expected 8 times; all must occur, none more than 4x as often */
    int lo = N, hi = 0;
    for (int m = 0; m < 2; m++)
        for (int u = 0; u < 2 * S + 1; u++)
            for (int v = 0; v < 2 * S + 1; v++) {
                lo = count[m][u][v] < lo ? count[m][u][v] : lo;
                hi = count[m][u][v] > hi ? count[m][u][v] : hi;
            }
    CHECKF(lo > 0 && hi <= 32, "transform counts between %d and %d over 400 draws", lo, hi);
    free(x); free(ref);
    gsl_data_free(&d);
}

static void test_augment_rows_independent_of_split(void)
{
    /* rows [first, first+n) of one gather equal the same rows gathered in parts (ranks, replicas, subdivisions) */
    gsl_data d = make_images(5, 1, 6, 6);
    size_t dim = 36;
    int idx[10] = {0, 1, 2, 3, 4, 4, 3, 2, 1, 0};
    float whole[10 * 36], part[10 * 36], other[10 * 36], t[30];
    gsl_augment a = {1, 3};
    CHECK(gsl_data_gather_augmented(&d, idx, 10, &a, 5, 20, whole, t, err) == 0);
    CHECK(gsl_data_gather_augmented(&d, idx, 4, &a, 5, 20, part, t, err) == 0);
    CHECK(gsl_data_gather_augmented(&d, idx + 4, 6, &a, 5, 24, part + 4 * dim, t, err) == 0);
    CHECK(memcmp(whole, part, sizeof whole) == 0);
    CHECK(gsl_data_gather_augmented(&d, idx, 10, &a, 6, 20, other, t, err) == 0); /* another epoch's key */
    CHECK(memcmp(whole, other, sizeof whole) != 0);
    gsl_data_free(&d);
}

int main(void)
{
    RUN(test_idx_roundtrip_gz_and_raw);
    RUN(test_idx_lies_rejected);
    RUN(test_data_cfg_parse);
    RUN(test_data_cfg_errors);
    RUN(test_class_subset_and_split);
    RUN(test_idx_without_labels);
    RUN(test_holdout_split);
    RUN(test_image_list);
    RUN(test_gather_threads);
    RUN(test_windows_text_files);
    RUN(test_image_decode);
    RUN(test_sampler_epoch_permutation_and_seed);
    RUN(test_sampler_class_balanced);
    RUN(test_augment_identity_without_keys);
    RUN(test_augment_against_reference);
    RUN(test_augment_rows_independent_of_split);
    return TEST_END();
}
