/* Checkpoint manifests (darknet/checkpoint.c): read strictly and verified against the files they name. The scratch
 * folder holds small files under the names a manifest of the seed corpus uses, so the checksum paths are reached. */
#include "fuzz.h"
#include "gsl_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int files_made;
    if (!files_made) {
        const char *names[] = {"small_e0002.weights", "small_e0002.optim", "small_e0002_cb0.codebook",
                               "small_e0002_cb0.samples.fvecs", "small_e0001_s000003.weights",
                               "small_e0001_s000003.optim", "small_e0001.weights", "small_e0001_s000003_cb0.codebook"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) fuzz_file(1, names[i], (const uint8_t *)"abcd", 4);
        files_made = 1;
    }
    const char *path = fuzz_file(0, "small.ckpt", data, size);
    gsl_ckpt ck;
    char err[GSL_DATA_ERRLEN];
    gsl_ckpt_read(path, &ck, err);
    return 0;
}
