/* model_ref.c — the single-device reference for whole layers: the same
 * block as helix_model.h (pre- or post-LN; GELU, GELU-tanh or ReLU), in
 * double precision, one token at a time, attention by helix_attention_ref.
 * Slow on purpose; only plain loops. */
#include "helix_model.h"
#include "../core/err-impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double act_ref(helix_act a, double z)
{
    switch (a) {
    case HELIX_ACT_GELU_TANH: return 0.5 * z * (1.0 + tanh(0.79788456080286535588 * (z + 0.044715 * z * z * z)));
    case HELIX_ACT_RELU: return z > 0 ? z : z == z ? 0.0 : z;
    case HELIX_ACT_GELU: break;
    }
    return 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
}

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
    const int pre = mc->norm == HELIX_NORM_PRE;
    for (int64_t l = 0; l < mc->layers && st == HELIX_OK; l++) {
        const helix_layer_weights *lw = &w->layer[l];
        /* the attention's input: LN1(x) (pre) or x itself (post) */
        for (int64_t t = 0; t < BL; t++) {
            if (pre) layernorm_ref(res + t * D, lw->ln1_g, lw->ln1_b, D, xn + t * D);
            else for (int64_t c = 0; c < D; c++) xn[t * D + c] = (float)res[t * D + c];
        }
        helix_weights aw = {D, lw->wq, lw->wk, lw->wv, lw->wo, lw->bq, lw->bk, lw->bv, lw->bo, NULL, NULL};
        st = helix_attention_ref(mc->batch, mc->seq, heads, head_dim, &aw, xn, mc->causal, NULL, 0.0, att, err);
        for (int64_t k = 0; k < BL * D; k++) res[k] += att[k];
        /* the MLP's input: LN2(x) (pre), or x = LN1(x) (post) */
        for (int64_t t = 0; t < BL; t++) {
            if (pre) {
                layernorm_ref(res + t * D, lw->ln2_g, lw->ln2_b, D, xn + t * D);
            } else {
                layernorm_ref(res + t * D, lw->ln1_g, lw->ln1_b, D, xn + t * D);
                for (int64_t c = 0; c < D; c++) res[t * D + c] = xn[t * D + c];
            }
        }
        for (int64_t t = 0; t < BL; t++) {
            const float *xt = xn + t * D;
            for (int64_t f = 0; f < F; f++) h[f] = lw->b1 ? lw->b1[f] : 0;
            for (int64_t r = 0; r < D; r++) {
                const float *w1 = lw->w1 + r * F;
                for (int64_t f = 0; f < F; f++) h[f] += (double)xt[r] * w1[f];
            }
            for (int64_t f = 0; f < F; f++) h[f] = act_ref(mc->act, h[f]);
            for (int64_t c = 0; c < D; c++) o[c] = lw->b2 ? lw->b2[c] : 0;
            for (int64_t f = 0; f < F; f++) {
                const float *w2 = lw->w2 + f * D;
                for (int64_t c = 0; c < D; c++) o[c] += h[f] * w2[c];
            }
            for (int64_t c = 0; c < D; c++) res[t * D + c] += o[c];
            if (!pre) {                                   /* post: x = LN2(x) */
                float *yt = att + t * D;                  /* att is free again: a row of scratch */
                layernorm_ref(res + t * D, lw->ln2_g, lw->ln2_b, D, yt);
                for (int64_t c = 0; c < D; c++) res[t * D + c] = yt[c];
            }
        }
    }
    for (int64_t k = 0; k < BL * D; k++) y[k] = (float)res[k];
    free(res); free(xn); free(att); free(h); free(o);
    return st;
}
