/* weights.c (model) — random full-precision weights for a whole model from
 * a seed (splitmix64), in one allocation, laid out layer after layer. */
#include "helix_model.h"
#include "../core/err-impl.h"

#include <math.h>
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

static float *fill(float **at, int64_t n, uint64_t *s, float center, float a)
{
    float *p = *at;
    for (int64_t k = 0; k < n; k++) p[k] = center + uniform(s, a);
    *at += n;
    return p;
}

helix_status helix_model_weights_random(const helix_model_config *mc, uint64_t seed, helix_model_weights *out,
                                        helix_err *err)
{
    memset(out, 0, sizeof *out);
    const int64_t D = mc->heads * mc->head_dim, F = mc->ffn, nl = mc->layers;
    if (D < 1 || F < 1 || nl < 1)
        return helix_errf(err, HELIX_ERR_INVALID, "random model weights: sizes must be positive");
    const int64_t per = 4 * D + 4 * D * D + 2 * D * F + (mc->bias ? 4 * D + F + D : 0);
    const double bytes = (double)per * (double)nl * 4.0;
    helix_layer_weights *lw = calloc((size_t)nl, sizeof *lw);
    float *buf = bytes < 1e15 ? malloc((size_t)bytes) : NULL;
    if (!lw || !buf) {
        free(lw); free(buf);
        return helix_errf(err, HELIX_ERR_NOMEM, "random model weights: cannot allocate %.3g bytes", bytes);
    }
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
    float *at = buf;
    const float aD = 1.0f / sqrtf((float)D), aF = 1.0f / sqrtf((float)F);
    for (int64_t l = 0; l < nl; l++) {
        helix_layer_weights *w = &lw[l];
        w->ln1_g = fill(&at, D, &s, 1.0f, 0.1f);
        w->ln1_b = fill(&at, D, &s, 0.0f, 0.1f);
        w->ln2_g = fill(&at, D, &s, 1.0f, 0.1f);
        w->ln2_b = fill(&at, D, &s, 0.0f, 0.1f);
        w->wq = fill(&at, D * D, &s, 0, aD);
        w->wk = fill(&at, D * D, &s, 0, aD);
        w->wv = fill(&at, D * D, &s, 0, aD);
        w->wo = fill(&at, D * D, &s, 0, aD);
        w->w1 = fill(&at, D * F, &s, 0, aD);
        w->w2 = fill(&at, F * D, &s, 0, aF);
        if (mc->bias) {
            w->bq = fill(&at, D, &s, 0, 0.1f);
            w->bk = fill(&at, D, &s, 0, 0.1f);
            w->bv = fill(&at, D, &s, 0, 0.1f);
            w->bo = fill(&at, D, &s, 0, 0.1f);
            w->b1 = fill(&at, F, &s, 0, 0.1f);
            w->b2 = fill(&at, D, &s, 0, 0.1f);
        }
    }
    out->D = D; out->F = F; out->layers = nl; out->layer = lw;
    return HELIX_OK;
}

void helix_model_weights_free(helix_model_weights *w)
{
    if (!w || !w->layer) return;
    free((void *)w->layer[0].ln1_g);   /* the one buffer starts with layer 0's LN1 gamma */
    free((void *)w->layer);
    memset(w, 0, sizeof *w);
}
