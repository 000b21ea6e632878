/* Codebook and codes files: a codebook (the first part of the input) and a codes file (the rest), read alone and
 * against each other; a codebook that loads is used to encode, decode and search, as `gsl encode/search` would. */
#include "fuzz.h"
#include "gslq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, &a, &na, &b, &nb);
    const char *cb = fuzz_file(0, "x.codebook", a, na), *cd = fuzz_file(1, "x.codes", b, nb);
    gslq_error e;
    gslq_pq pq;
    uint8_t *codes = NULL;
    size_t n;
    int M;
    if (gslq_codes_load(cd, NULL, &codes, &n, &M, &e) == 0) free(codes);
    codes = NULL;
    if (gslq_pq_load(cb, &pq, &e)) return 0;
    if (gslq_codes_load(cd, &pq, &codes, &n, &M, &e) == 0) {
        if ((size_t)pq.d * 4 <= 4096 && n) { /* the loaded codes against 4 queries of the codebook's dimension */
            float q[4 * 1024] = {0};
            int64_t ids[8];
            float dist[8];
            gslq_adc_search(&pq, codes, n, q, 4, pq.d, 2, ids, dist, 1, &e);
            float *dec = malloc(sizeof(float) * (size_t)pq.d * (n < 4 ? n : 4));
            if (dec) gslq_pq_decode(&pq, codes, n < 4 ? n : 4, dec, &e);
            free(dec);
        }
        free(codes);
    }
    /* vectors of another dimension are refused, never read past */
    float v[64] = {0};
    uint8_t c[64];
    if (pq.d != 16 && pq.M <= 64) gslq_pq_encode(&pq, v, 1, 16, c, &e);
    gslq_pq_free(&pq);
    return 0;
}
