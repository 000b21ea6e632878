/* The IDX reader: an images file and a labels file (the input split in two), gzip'd or not. */
#include "fuzz.h"
#include "gsl_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, &a, &na, &b, &nb);
    const char *img = fuzz_file(0, "images.idx", a, na), *lab = fuzz_file(1, "labels.idx", b, nb);
    gsl_data d;
    char err[GSL_DATA_ERRLEN];
    if (gsl_data_load_idx(img, lab, 10, &d, err) == 0) gsl_data_free(&d);
    return 0;
}
