/* [similarity]: CPU reference path, construction and cfg parsing. The CUDA path is similarity_layer_kernels.cu. */
#include "similarity_layer.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "gemm.h"
#include "option_list.h"
#include "registry.h"

#ifdef GPU
#include "cuda.h"
#endif

const char *sim_type_name(sim_type t)
{
    switch (t) {
    case SIM_CONTRASTIVE: return "contrastive";
    case SIM_COSINE: return "cosine";
    case SIM_TRIPLET: return "triplet";
    case SIM_NCA: return "nca";
    }
    return "?";
}

int gsl_is_similarity_layer(const layer *l) { return l && l->forward == forward_similarity_layer; }

similarity_state *similarity_layer_state(const layer *l)
{
    return gsl_is_similarity_layer(l) ? (similarity_state *)l->state : NULL;
}

layer make_similarity_layer(int batch, int inputs, int classes, sim_type type, sim_mining mining, float margin)
{
    layer l = {0};
    /* COST: Darknet's get_network_output_layer skips cost layers, so net->output is the embedding that feeds the
     * loss (network_predict returns embeddings); see docs/layers.md. */
    l.type = COST;
    l.batch = batch;
    l.inputs = l.outputs = inputs;
    l.truths = classes; /* Darknet sizes net->truth (B, truths) from the last layer's l.truths */
    l.h = l.w = l.out_h = l.out_w = 1;
    l.c = l.out_c = inputs;

    GSL_INVARIANT(batch >= 1 && inputs >= 1 && classes >= 1 && (size_t)batch <= SIZE_MAX / 8 / (size_t)batch);
    size_t bb = (size_t)batch * batch;
    size_t nf = 4 * bb + 2 * (size_t)batch;
    similarity_state *s = calloc(1, sizeof(similarity_state) + nf * sizeof(float));
    l.output = calloc((size_t)batch * inputs, sizeof(float));
    l.delta = calloc((size_t)batch * inputs, sizeof(float));
    l.cost = calloc(1, sizeof(float));
    if (!s || !l.output || !l.delta || !l.cost) {
        fprintf(stderr, "[similarity]: out of memory (batch %d, inputs %d)\n", batch, inputs);
        exit(1);
    }
    s->type = type;
    s->mining = mining;
    s->margin = margin;
    s->classes = classes;
    s->max_batch = batch;
    float *p = (float *)(s + 1);
    s->gram = p;     p += bb;
    s->same = p;     p += bb;
    s->coef = p;     p += bb;
    s->w = p;        p += bb;
    s->rowcost = p;  p += batch;
    s->rowcount = p;
    s->device = -1;
    l.state = (float *)s; /* freed by Darknet's free_layer */

    l.forward = forward_similarity_layer;
    l.backward = backward_similarity_layer;
#ifdef GPU
    l.forward_gpu = forward_similarity_layer_gpu;
    l.backward_gpu = backward_similarity_layer_gpu;
    if (gpu_index >= 0) {
        GSL_CUDA_CHECK(cudaGetDevice(&s->device));
        l.output_gpu = GSL_CUDA_ZALLOC((size_t)batch * inputs * sizeof(float));
        l.delta_gpu = GSL_CUDA_ZALLOC((size_t)batch * inputs * sizeof(float));
        float *g = GSL_CUDA_ZALLOC((nf + 4) * sizeof(float));
        l.rand_gpu = g; /* one device block, freed by Darknet's free_layer */
        s->gram_gpu = g;     g += bb;
        s->same_gpu = g;     g += bb;
        s->coef_gpu = g;     g += bb;
        s->w_gpu = g;        g += bb;
        s->rowcost_gpu = g;  g += batch;
        s->rowcount_gpu = g; g += batch;
        s->tot_gpu = g;
    }
#endif
    fprintf(stderr, "similarity   %s", sim_type_name(type));
    if (type == SIM_TRIPLET) fprintf(stderr, " (mining %s)", mining == SIM_MINING_ALL ? "all" : "hard");
    if (type != SIM_COSINE && type != SIM_NCA) fprintf(stderr, ", margin %g", margin);
    fprintf(stderr, ", %d classes, %d-d embeddings\n", classes, inputs);
    return l;
}

/* ---- coefficient matrices: dL/dX = C X ---- */

/* Contrastive and cosine: each row of C from row i of G alone. Returns the cost. */
static double contrastive_coef(similarity_state *s, int B)
{
    /* G (B, B), same (B, B) -> coef (B, B), rowcost (B) */
    const float *G = s->gram;
    float sc = 2.0f / (B - 1); /* weight of one pair in L */
    double cost = 0;
    for (int i = 0; i < B; i++) {
        double rc = 0;
        float rs = 0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            float dl;
            float D = sim_sqdist(G[i * B + i], G[j * B + j], G[i * B + j]);
            rc += sim_contrastive_pair(D, s->same[i * B + j] > 0.5f, s->margin, &dl);
            float sij = sc * dl; /* dL/dD_ij */
            s->coef[i * B + j] = -2 * sij;
            rs += sij;
        }
        s->coef[i * B + i] = 2 * rs;
        s->rowcost[i] = (float)(rc / (B - 1));
        cost += rc / (B - 1);
    }
    return cost;
}

static double cosine_coef(similarity_state *s, int B)
{
    /* G (B, B), same (B, B) -> coef (B, B), rowcost (B); n_i = sqrt(G_ii + eps) */
    const float *G = s->gram;
    float sc = 2.0f / (B - 1);
    double cost = 0;
    for (int i = 0; i < B; i++) {
        float ni = sqrtf(G[i * B + i] + SIM_EPS);
        double rc = 0;
        float diag = 0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            float nj = sqrtf(G[j * B + j] + SIM_EPS);
            float cs = G[i * B + j] / (ni * nj);
            float r = cs - s->same[i * B + j];
            rc += r * r;
            float g = sc * 2 * r;                 /* dL/dcos_ij */
            s->coef[i * B + j] = g / (ni * nj);   /* d cos_ij / dx_i = x_j/(n_i n_j) - cos_ij x_i / n_i^2 */
            diag -= g * cs / (ni * ni);
        }
        s->coef[i * B + i] = diag;
        s->rowcost[i] = (float)(rc / (B - 1));
        cost += rc / (B - 1);
    }
    return cost;
}

/* Triplet: row a of w holds dl/dD_aj summed over anchor a's terms (before normalisation). */
static void triplet_rows(similarity_state *s, int B)
{
    const float *G = s->gram;
    for (int a = 0; a < B; a++) {
        float *w = s->w + (size_t)a * B;
        memset(w, 0, B * sizeof(float));
        double loss = 0;
        float cnt = 0;
        if (s->mining == SIM_MINING_HARD) { /* farthest positive, nearest negative; ties: the lower index */
            int p = -1, n = -1;
            float Dp = 0, Dn = 0;
            for (int j = 0; j < B; j++) {
                if (j == a) continue;
                float D = sim_sqdist(G[a * B + a], G[j * B + j], G[a * B + j]);
                if (s->same[a * B + j] > 0.5f) {
                    if (p < 0 || D > Dp) { p = j; Dp = D; }
                } else if (n < 0 || D < Dn) {
                    n = j;
                    Dn = D;
                }
            }
            if (p >= 0 && n >= 0) {
                float wp, wn;
                loss = sim_triplet_term(Dp, Dn, s->margin, &wp, &wn);
                w[p] = wp;
                w[n] = wn;
                cnt = loss > 0;
            }
        } else {
            for (int p = 0; p < B; p++) {
                if (p == a || !(s->same[a * B + p] > 0.5f)) continue;
                float Dp = sim_sqdist(G[a * B + a], G[p * B + p], G[a * B + p]);
                for (int n = 0; n < B; n++) {
                    if (s->same[a * B + n] > 0.5f) continue;
                    float Dn = sim_sqdist(G[a * B + a], G[n * B + n], G[a * B + n]);
                    float wp, wn;
                    float h = sim_triplet_term(Dp, Dn, s->margin, &wp, &wn);
                    if (h > 0) {
                        loss += h;
                        cnt += 1;
                        w[p] += wp;
                        w[n] += wn;
                    }
                }
            }
        }
        s->rowcost[a] = (float)loss;
        s->rowcount[a] = cnt;
    }
}

/* NCA: row i of w holds dl_i/dD_ij, rowcost[i] = l_i. */
static void nca_rows(similarity_state *s, int B)
{
    const float *G = s->gram;
    for (int i = 0; i < B; i++) {
        float *w = s->w + (size_t)i * B;
        float Dmin = INFINITY;
        int havep = 0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            float D = sim_sqdist(G[i * B + i], G[j * B + j], G[i * B + j]);
            w[j] = D; /* the distances, for the second pass */
            if (D < Dmin) Dmin = D;
            havep |= s->same[i * B + j] > 0.5f;
        }
        w[i] = 0;
        s->rowcount[i] = 0;
        if (!havep) { /* no positive: no term */
            memset(w, 0, B * sizeof(float));
            s->rowcost[i] = 0;
            continue;
        }
        double Z = 0, Zp = 0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            float e = sim_nca_weight(w[j], Dmin);
            Z += e;
            if (s->same[i * B + j] > 0.5f) Zp += e;
            w[j] = e;
        }
        for (int j = 0; j < B; j++)
            if (j != i) w[j] = (float)((s->same[i * B + j] > 0.5f ? w[j] / Zp : 0) - w[j] / Z);
        s->rowcost[i] = (float)(log(Z) - log(Zp));
    }
}

/* C = 2 (diag(S 1) - S) with S = scale (w + w^T), the symmetric dL/dD per pair. */
static void coef_from_w(similarity_state *s, int B, float scale)
{
    for (int i = 0; i < B; i++) {
        float rs = 0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            float sij = scale * (s->w[i * B + j] + s->w[j * B + i]);
            s->coef[i * B + j] = -2 * sij;
            rs += sij;
        }
        s->coef[i * B + i] = 2 * rs;
    }
}

static double triplet_coef(similarity_state *s, int B)
{
    triplet_rows(s, B);
    double loss = 0, count = 0;
    for (int a = 0; a < B; a++) {
        loss += s->rowcost[a];
        count += s->rowcount[a];
    }
    /* hard: L = sum over anchors; all: L = B x mean over the active triplets */
    float scale = s->mining == SIM_MINING_HARD ? 1.0f : (count > 0 ? (float)(B / count) : 0.0f);
    coef_from_w(s, B, scale);
    return scale * loss;
}

static double nca_coef(similarity_state *s, int B)
{
    nca_rows(s, B);
    double loss = 0;
    for (int i = 0; i < B; i++) loss += s->rowcost[i];
    coef_from_w(s, B, 1.0f);
    return loss;
}

void forward_similarity_layer(layer l, network net)
{
    /* net.input X (B, D) -> l.output (B, D) copy; net.truth T (B, classes) -> l.cost[0] = L, l.delta = -dL/dX */
    similarity_state *s = (similarity_state *)l.state;
    int B = l.batch, D = l.inputs, C = s->classes;
    GSL_INVARIANT(B <= s->max_batch);
    memcpy(l.output, net.input, (size_t)B * D * sizeof(float));
    if (!net.truth) return; /* prediction: no labels, no loss (as Darknet's cost layers) */
    l.cost[0] = 0;
    if (B < 2) { /* no pairs */
        memset(l.delta, 0, (size_t)B * D * sizeof(float));
        return;
    }
    gemm(0, 1, B, B, D, 1, net.input, D, net.input, D, 0, s->gram, B); /* G = X X^T */
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            s->same[i * B + j] = (float)sim_share_label(net.truth + (size_t)i * C, net.truth + (size_t)j * C, C);
    double cost;
    switch (s->type) {
    case SIM_CONTRASTIVE: cost = contrastive_coef(s, B); break;
    case SIM_COSINE: cost = cosine_coef(s, B); break;
    case SIM_NCA: cost = nca_coef(s, B); break;
    default: cost = triplet_coef(s, B); break;
    }
    gemm(0, 0, B, D, B, -1, s->coef, B, net.input, D, 0, l.delta, D); /* delta = -C X */
    l.cost[0] = (float)cost;
}

void backward_similarity_layer(layer l, network net)
{
    /* l.delta (B, D) -> net.delta (B, D) += l.delta */
    if (net.delta) axpy_cpu(l.batch * l.inputs, 1, l.delta, 1, net.delta, 1);
}

/* ---- cfg ---- */

static int parse_similarity(const gsl_section *sec, layer *out, char *err)
{
    static const char *const keys[] = {"classes", "type", "margin", "mining", NULL};
    static const char *const types[] = {"contrastive", "cosine", "triplet", "nca", NULL};
    static const char *const minings[] = {"hard", "all", NULL};
    if (gsl_opt_check_unknown(sec, keys, err)) return -1;
    if (sec->net && sec->index != sec->net->n - 1) {
        snprintf(err, GSL_ERRLEN, "must be the last section (it is layer %d of %d): the loss reads net.truth and "
                                  "ends the network", sec->index, sec->net->n);
        return -1;
    }
    if (sec->inputs < 1) {
        snprintf(err, GSL_ERRLEN, "the layer before gives no inputs (inputs=%d)", sec->inputs);
        return -1;
    }
    int type, mining = SIM_MINING_HARD, classes;
    float margin = 0;
    if (gsl_opt_int(sec, "classes", 0, 1, 1, 1 << 20, &classes, err)) return -1;
    if (gsl_opt_enum(sec, "type", "contrastive", types, &type, err)) return -1;
    if (type == SIM_TRIPLET) {
        if (gsl_opt_enum(sec, "mining", "hard", minings, &mining, err)) return -1;
    } else if (option_find(sec->options, "mining")) {
        snprintf(err, GSL_ERRLEN, "key 'mining': only used by type=triplet");
        return -1;
    }
    if (type == SIM_COSINE || type == SIM_NCA) {
        if (option_find(sec->options, "margin")) {
            snprintf(err, GSL_ERRLEN, "key 'margin': not used by type=%s (%s)", sim_type_name((sim_type)type),
                     type == SIM_COSINE ? "it regresses cos to 1 or 0" : "it has no margin");
            return -1;
        }
    } else {
        if (gsl_opt_float(sec, "margin", type == SIM_TRIPLET ? 0.2f : 1.0f, 0, 0.0f, 1e6f, &margin, err)) return -1;
        if (!(margin > 0)) {
            snprintf(err, GSL_ERRLEN, "key 'margin': must be > 0");
            return -1;
        }
    }
    if (sec->batch < 1 || sec->batch > 65535) { /* 65535: a CUDA grid dimension; the B x B matrices */
        snprintf(err, GSL_ERRLEN, "batch %d: must be in [1, 65535]", sec->batch);
        return -1;
    }
    *out = make_similarity_layer(sec->batch, sec->inputs, classes, (sim_type)type, (sim_mining)mining, margin);
    return 0;
}

void similarity_layer_register(void) { gsl_registry_add("similarity", parse_similarity); }
