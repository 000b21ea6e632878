/* Darknet's train_network, with each batch fitted to the network's input before it is copied.
 *
 * Linked before libdarknet (whose train_network is made weak), so Darknet's own commands use it too. Upstream copies
 * every row of the data whole into the network's input buffer, but its classifier loader always decodes 3 channels:
 * with a 1-channel network (28x28 greyscale, say) each row is 3 times the input, the copy runs past the buffer and
 * the run ends in a heap corruption (munmap_chunk/double free at exit), having trained on misaligned pixels. Here a
 * row of 3 planes for a 1-channel network becomes its luminance (stb's weights, as `gsl train` decodes greyscale), and
 * any other mismatch of the rows or of the labels with the network stops the run with a message saying so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"

/* row (3 planes of n values) -> out (n): (77 R + 150 G + 29 B) / 256 */
static void luminance(const float *row, int n, float *out)
{
    for (int i = 0; i < n; i++) out[i] = (77.0f * row[i] + 150.0f * row[n + i] + 29.0f * row[2 * n + i]) / 256.0f;
}

float train_network(network *net, data d)
{
    int batch = net->batch, n = d.X.rows / batch, grey = 0;
    if (d.X.rows % batch) {
        fprintf(stderr, "darknet: %d rows of data do not make whole batches of %d\n", d.X.rows, batch);
        exit(1);
    }
    if (d.X.cols != net->inputs) {
        grey = net->c == 1 && d.X.cols == 3 * net->inputs;
        if (!grey) {
            fprintf(stderr, "darknet: the data give %d values per sample, the network's input takes %d (%dx%dx%d): "
                    "check width, height and channels in the cfg's [net]\n", d.X.cols, net->inputs, net->w, net->h,
                    net->c);
            exit(1);
        }
    }
    if (net->truth && net->truths && d.y.cols > net->truths) {
        fprintf(stderr, "darknet: the data give %d label columns, the network's last layer takes %d (classes?)\n",
                d.y.cols, net->truths);
        exit(1);
    }
    float sum = 0;
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < batch; ++j) {
            int row = i * batch + j;
            float *x = net->input + (size_t)j * net->inputs;
            if (grey) luminance(d.X.vals[row], net->inputs, x);
            else memcpy(x, d.X.vals[row], sizeof(float) * net->inputs);
            if (net->truth) {
                float *y = net->truth + (size_t)j * (net->truths ? net->truths : d.y.cols);
                memcpy(y, d.y.vals[row], sizeof(float) * d.y.cols);
            }
        }
        sum += train_network_datum(net);
    }
    return sum / (n * batch);
}
