/* Shared by the libFuzzer harnesses in tests/fuzz/: each writes the fuzzer's bytes to files in a private scratch
 * folder and hands their paths to one reader, as a user's file would reach it. Built by `make fuzz-bins` (clang,
 * -fsanitize=fuzzer,address,undefined); run bounded by tests/test_fuzz.sh in `make test`, longer by `make fuzz`. */
#ifndef GSL_FUZZ_H
#define GSL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fuzz_dir_[256];

/* The scratch folder, made once per process. */
static const char *fuzz_dir(void)
{
    if (!fuzz_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/gsl-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_)) { perror("mkdtemp"); abort(); }
    }
    return fuzz_dir_;
}

/* Writes n bytes to NAME in the scratch folder; returns its path (a static buffer per slot 0..3). */
static const char *fuzz_file(int slot, const char *name, const uint8_t *d, size_t n)
{
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(paths[slot], "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f)) { perror(paths[slot]); abort(); }
    return paths[slot];
}

/* Splits the input at a point given by its first two bytes: the first part and the rest. */
static void fuzz_split(const uint8_t *d, size_t n, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb)
{
    size_t cut = n >= 2 ? ((size_t)d[0] << 8 | d[1]) : 0;
    d += n >= 2 ? 2 : n;
    n -= n >= 2 ? 2 : n;
    if (cut > n) cut = n;
    *a = d, *na = cut, *b = d + cut, *nb = n - cut;
}

#endif
