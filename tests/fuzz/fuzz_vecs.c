/* .fvecs, .ivecs and label files (libgslq's readers). */
#include "fuzz.h"
#include "gslq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, "x.vecs", data, size);
    gslq_error e;
    float *x = NULL;
    int32_t *iv = NULL;
    uint64_t *bits = NULL;
    size_t n;
    int d;
    if (gslq_fvecs_read(path, &x, &n, &d, &e) == 0) free(x);
    if (gslq_ivecs_read(path, &iv, &n, &d, &e) == 0) free(iv);
    if (gslq_labels_read(path, 0, &bits, &n, &d, &e) == 0) free(bits);
    if (gslq_labels_read(path, 7, &bits, &n, &d, &e) == 0) free(bits);
    return 0;
}
