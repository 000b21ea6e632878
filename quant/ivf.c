/* The coarse quantizer of an inverted-file index: k-means on the vectors (rotated by the PQ's rotation when it has
 * one, the space the codes live in) and each vector's list, the nearest coarse centroid. */
#include "gslq.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int gslq_ivf_train(const gslq_pq *pq, const float *x, size_t n, int d, int nlist, const gslq_train_params *p,
                   float *coarse, int32_t *list_of, gslq_error *err)
{
    if (!pq || !pq->centroids) return gslq__fail(err, GSLQ_EINVAL, "ivf_train: NULL or uninitialised pq");
    if (d != pq->d)
        return gslq__fail(err, GSLQ_EINVAL, "ivf_train: the vectors are %d-dimensional, the codebook %d", d, pq->d);
    if (nlist < 1 || (size_t)nlist > n)
        return gslq__fail(err, GSLQ_EINVAL, "ivf_train: %d lists for %zu vectors (1 <= nlist <= n)", nlist, n);
    const float *y = x;
    float *rot = NULL;
    if (pq->rotation) {
        if (!(rot = gslq__alloc(n, (size_t)d, sizeof(float), 0)))
            return gslq__fail(err, GSLQ_ENOMEM, "ivf_train: out of memory for %zu rotated vectors", n);
        gslq_pq_rotate(pq, x, rot, n);
        y = rot;
    }
    int64_t *id = gslq__alloc(n, sizeof(int64_t), 1, 0);
    float *dist = gslq__alloc(n, sizeof(float), 1, 0);
    int rc = id && dist ? GSLQ_OK : gslq__fail(err, GSLQ_ENOMEM, "ivf_train: out of memory");
    if (!rc) rc = gslq_kmeans(y, n, d, nlist, coarse, p, NULL, NULL, err);
    if (!rc) rc = gslq_exact_search(coarse, (size_t)nlist, y, n, d, 1, id, dist, p->nthreads, err);
    if (!rc)
        for (size_t i = 0; i < n; i++) list_of[i] = (int32_t)id[i];
    free(rot);
    free(id);
    free(dist);
    if (!rc) gslq__ok(err);
    return rc;
}
