/* model_ref.c — the single-device reference for whole layers: the same
 * pre-LN block as helix_model.h, in double precision, one token at a time,
 * attention by helix_attention_ref. Slow on purpose; only plain loops. */
#include "helix_model.h"
#include "../core/err-impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void layernorm_ref(const double *x, const float *g, const float *b, int64_t D, float *y)
{
    double mean = 0, var = 0;
    for (int64_t c = 0; c < D; c++) mean += x[c];
    mean /= (double)D;
    for (int64_t c = 0; c < D; c++) var += (x[c] - mean) * (x[c] - mean);
    const double inv = 1.0 / sqrt(var / (double)D + 1e-5);
    for (int64_t c = 0; c < D; c++) y[c] = (float)((x[c] - mean) * inv * g[c] + b[c]);
}

helix_status helix_model_ref(const helix_model_config *mc, int64_t heads, int64_t head_dim,
                             const helix_model_weights *w, const float *x, float *y, helix_err *err)
{
    const int64_t D = heads * head_dim, F = mc->ffn, BL = mc->batch * mc->seq;
    if (!w || w->D != D || w->F != F || w->layers != mc->layers)
        return helix_errf(err, HELIX_ERR_INVALID, "model reference: weights do not match (D=%lld, h*d=%lld)",
                          (long long)(w ? w->D : -1), (long long)D);
    double *res = malloc(sizeof(double) * (size_t)(BL * D));   /* residual stream */
    float *xn = malloc(sizeof(float) * (size_t)(BL * D));      /* LN output       */
    float *att = malloc(sizeof(float) * (size_t)(BL * D));
    double *h = malloc(sizeof(double) * (size_t)F), *o = malloc(sizeof(double) * (size_t)D);
    if (!res || !xn || !att || !h || !o) {
        free(res); free(xn); free(att); free(h); free(o);
        return helix_errf(err, HELIX_ERR_NOMEM, "model reference: out of memory");
    }
    for (int64_t k = 0; k < BL * D; k++) res[k] = x[k];
    helix_status st = HELIX_OK;
    for (int64_t l = 0; l < mc->layers && st == HELIX_OK; l++) {
        const helix_layer_weights *lw = &w->layer[l];
        for (int64_t t = 0; t < BL; t++) layernorm_ref(res + t * D, lw->ln1_g, lw->ln1_b, D, xn + t * D);
        helix_weights aw = {D, lw->wq, lw->wk, lw->wv, lw->wo, lw->bq, lw->bk, lw->bv, lw->bo, NULL, NULL};
        st = helix_attention_ref(mc->batch, mc->seq, heads, head_dim, &aw, xn, mc->causal, NULL, 0.0, att, err);
        for (int64_t k = 0; k < BL * D; k++) res[k] += att[k];
        for (int64_t t = 0; t < BL; t++) layernorm_ref(res + t * D, lw->ln2_g, lw->ln2_b, D, xn + t * D);
        for (int64_t t = 0; t < BL; t++) {
            const float *xt = xn + t * D;
            for (int64_t f = 0; f < F; f++) h[f] = lw->b1 ? lw->b1[f] : 0;
            for (int64_t r = 0; r < D; r++) {
                const float *w1 = lw->w1 + r * F;
                for (int64_t f = 0; f < F; f++) h[f] += (double)xt[r] * w1[f];
            }
            for (int64_t f = 0; f < F; f++) h[f] = 0.5 * h[f] * (1.0 + erf(h[f] / sqrt(2.0)));
            for (int64_t c = 0; c < D; c++) o[c] = lw->b2 ? lw->b2[c] : 0;
            for (int64_t f = 0; f < F; f++) {
                const float *w2 = lw->w2 + f * D;
                for (int64_t c = 0; c < D; c++) o[c] += h[f] * w2[c];
            }
            for (int64_t c = 0; c < D; c++) res[t * D + c] += o[c];
        }
    }
    for (int64_t k = 0; k < BL * D; k++) y[k] = (float)res[k];
    free(res); free(xn); free(att); free(h); free(o);
    return st;
}
