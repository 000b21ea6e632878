/* The .data reader (darknet/data_cfg.c): keys, class subsets, holdout. */
#include "fuzz.h"
#include "gsl_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, "set.data", data, size);
    gsl_data_cfg c;
    char err[GSL_DATA_ERRLEN];
    if (gsl_data_cfg_read(path, &c, err) == 0) gsl_data_cfg_free(&c);
    return 0;
}
