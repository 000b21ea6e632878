/* Darknet's backward_maxpool_layer, safe on a window without a maximum.
 *
 * Linked before libdarknet (whose backward_maxpool_layer is made weak), so Darknet's own commands use it too. The
 * forward pass (upstream's, and darknet/fast_conv.c's, which keeps its comparisons) records index -1 for a window
 * where no value exceeds -FLT_MAX: all NaN (a diverging run), -inf or -FLT_MAX. Upstream's backward pass then adds
 * that output's gradient at net.delta[-1], before the buffer, corrupting the heap: the diverged run that the trainer
 * stops cleanly would end in "double free or corruption" instead. Here such a window passes no gradient; every
 * other window is upstream's arithmetic, in upstream's order. */
#include "darknet.h"
#include "maxpool_layer.h"

void backward_maxpool_layer(const maxpool_layer l, network net)
{
    if (!net.delta) return; /* the network's first layer: no gradient to pass on */
    int n = l.out_h * l.out_w * l.c * l.batch;
    for (int i = 0; i < n; ++i) {
        int index = l.indexes[i];
        if (index >= 0) net.delta[index] += l.delta[i];
    }
}
