/* Image lists: a list file (the first part of the input) naming images in the scratch folder, one of which is the
 * rest of the input (any format stb decodes, or garbage); labels _cat_, _dog_. Every sample is gathered (decoded and
 * resized to 8x8), with labels required or not, unreadable images an error or skipped; then the first rows as one
 * batch on 1 and on 3 decoding threads, which must agree. */
#include "fuzz.h"
#include "gsl_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, &a, &na, &b, &nb);
    fuzz_file(1, "x_cat_1.png", b, nb);
    fuzz_file(2, "x_dog_2.jpg", b, nb);
    /* every line of the list is taken relative to the scratch folder */
    const char *dir = fuzz_dir();
    size_t dl = strlen(dir), lines = 1;
    for (size_t i = 0; i < na; i++) lines += a[i] == '\n';
    char *buf = malloc(na + lines * (dl + 1) + 1);
    if (!buf) return 0;
    size_t o = 0;
    for (size_t i = 0; i <= na; i++) {
        if (i == 0 || a[i - 1] == '\n') { memcpy(buf + o, dir, dl); o += dl; buf[o++] = '/'; }
        if (i < na) buf[o++] = (char)a[i];
    }
    const char *list = fuzz_file(0, "list.txt", (const uint8_t *)buf, o);
    free(buf);
    char *names[2] = {"_cat_", "_dog_"}; /* never in the scratch folder's own name */
    gsl_data d;
    char err[GSL_DATA_ERRLEN];
    float row[3 * 8 * 8], truth[2];
    for (int c = 1; c <= 3; c += 2) {
        if (gsl_data_load_list(list, names, 2, c == 1, c, 8, 8, &d, err)) continue;
        d.skip_unreadable = c == 3;
        if (d.skip_unreadable && !(d.unreadable = calloc(d.n ? (size_t)d.n : 1, 1))) { gsl_data_free(&d); return 0; }
        for (int i = 0; i < d.n && i < 8; i++)
            if (gsl_data_gather(&d, &i, 1, row, truth, err)) break;
        /* the first rows in one batch on 1 thread and on 3: the same outcome, the same rows and labels */
        int n = d.n < 8 ? d.n : 8, idx[8];
        for (int i = 0; i < n; i++) idx[i] = n - 1 - i;
        static float one[8][3 * 8 * 8], three[8][3 * 8 * 8], t1[8][2], t3[8][2];
        d.threads = 1;
        int r1 = gsl_data_gather(&d, idx, n, one[0], t1[0], err);
        d.threads = 3;
        int r3 = gsl_data_gather(&d, idx, n, three[0], t3[0], err);
        if (r1 != r3 || (!r1 && (memcmp(one, three, sizeof(float) * (size_t)n * 3 * 64 / (c == 1 ? 3 : 1)) ||
                                 memcmp(t1, t3, sizeof(float) * 2 * (size_t)n))))
            abort();
        gsl_data_free(&d);
    }
    return 0;
}
