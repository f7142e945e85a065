/* weights.c (model) — full-precision weights for a whole model in one
 * allocation, laid out layer after layer; random ones from a seed
 * (splitmix64). */
#include "helix_model.h"
#include "../core/err-impl.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float uniform(uint64_t *s, float a)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return a * (2.0f * (float)((double)(z >> 11) * (1.0 / 9007199254740992.0)) - 1.0f);
}

static void fill(float *p, int64_t n, uint64_t *s, float center, float a)
{
    for (int64_t k = 0; k < n; k++) p[k] = center + uniform(s, a);
}

/* Point w's fields into buf, layer after layer, in the order the random
 * weights are drawn; returns the end. */
static float *carve(float *at, int64_t D, int64_t F, int bias, helix_layer_weights *w)
{
    w->ln1_g = at; at += D;
    w->ln1_b = at; at += D;
    w->ln2_g = at; at += D;
    w->ln2_b = at; at += D;
    w->wq = at; at += D * D;
    w->wk = at; at += D * D;
    w->wv = at; at += D * D;
    w->wo = at; at += D * D;
    w->w1 = at; at += D * F;
    w->w2 = at; at += F * D;
    if (bias) {
        w->bq = at; at += D;
        w->bk = at; at += D;
        w->bv = at; at += D;
        w->bo = at; at += D;
        w->b1 = at; at += F;
        w->b2 = at; at += D;
    }
    return at;
}

int64_t helix_model_weights_bytes(int64_t D, int64_t F, int64_t layers, int bias)
{
    if (D < 1 || F < 1 || layers < 1) return -1;
    const double per = 4.0 * D + 4.0 * D * D + 2.0 * D * F + (bias ? 5.0 * D + F : 0), b = per * layers * 4.0;
    return b < 9e18 ? (int64_t)b : -1;
}

helix_status helix_model_weights_alloc(int64_t D, int64_t F, int64_t layers, int bias, helix_model_weights *out,
                                       helix_err *err)
{
    memset(out, 0, sizeof *out);
    const int64_t bytes = helix_model_weights_bytes(D, F, layers, bias);
    if (bytes < 0) return helix_errf(err, HELIX_ERR_INVALID, "model weights: sizes must be positive and not overflow");
    helix_layer_weights *lw = calloc((size_t)layers, sizeof *lw);
    float *buf = (uint64_t)bytes < (uint64_t)SIZE_MAX ? calloc(1, (size_t)bytes) : NULL;
    if (!lw || !buf) {
        free(lw); free(buf);
        return helix_errf(err, HELIX_ERR_NOMEM, "model weights: cannot allocate %.3g bytes", (double)bytes);
    }
    float *at = buf;
    for (int64_t l = 0; l < layers; l++) at = carve(at, D, F, bias, &lw[l]);
    out->D = D; out->F = F; out->layers = layers; out->layer = lw;
    return HELIX_OK;
}

helix_status helix_model_weights_random(const helix_model_config *mc, uint64_t seed, helix_model_weights *out,
                                        helix_err *err)
{
    const int64_t D = mc->heads * mc->head_dim, F = mc->ffn;
    helix_status st = helix_model_weights_alloc(D, F, mc->layers, mc->bias, out, err);
    if (st) return st;
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
    const float aD = 1.0f / sqrtf((float)D), aF = 1.0f / sqrtf((float)F);
    for (int64_t l = 0; l < mc->layers; l++) {
        const helix_layer_weights *w = &out->layer[l];
        fill((float *)w->ln1_g, D, &s, 1.0f, 0.1f);
        fill((float *)w->ln1_b, D, &s, 0.0f, 0.1f);
        fill((float *)w->ln2_g, D, &s, 1.0f, 0.1f);
        fill((float *)w->ln2_b, D, &s, 0.0f, 0.1f);
        fill((float *)w->wq, D * D, &s, 0, aD);
        fill((float *)w->wk, D * D, &s, 0, aD);
        fill((float *)w->wv, D * D, &s, 0, aD);
        fill((float *)w->wo, D * D, &s, 0, aD);
        fill((float *)w->w1, D * F, &s, 0, aD);
        fill((float *)w->w2, F * D, &s, 0, aF);
        if (mc->bias) {
            fill((float *)w->bq, D, &s, 0, 0.1f);
            fill((float *)w->bk, D, &s, 0, 0.1f);
            fill((float *)w->bv, D, &s, 0, 0.1f);
            fill((float *)w->bo, D, &s, 0, 0.1f);
            fill((float *)w->b1, F, &s, 0, 0.1f);
            fill((float *)w->b2, D, &s, 0, 0.1f);
        }
    }
    return HELIX_OK;
}

void helix_model_weights_free(helix_model_weights *w)
{
    if (!w || !w->layer) return;
    free((void *)w->layer[0].ln1_g);   /* the one buffer starts with layer 0's LN1 gamma */
    free((void *)w->layer);
    memset(w, 0, sizeof *w);
}
