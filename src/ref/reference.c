/* reference.c — the deliberately simple single-device multi-head attention
 * every fast path is tested against. Double precision throughout, one query
 * row at a time (O(L) memory), no tiling, no tricks. */
#include "helix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

helix_status helix_attention_ref(int64_t B, int64_t L, int64_t h, int64_t d,
                                 const helix_weights *w, const float *x, int causal,
                                 const int64_t *kv_len, double scale, float *y, helix_err *err)
{
    const int64_t D = h * d;
    if (B < 1 || L < 1 || h < 1 || d < 1 || !w || !x || !y || w->D != D) {
        if (err) snprintf(err->msg, sizeof err->msg, "reference: bad arguments (D=%lld, h*d=%lld)",
                          (long long)(w ? w->D : -1), (long long)D);
        return HELIX_ERR_INVALID;
    }
    for (int64_t b = 0; kv_len && b < B; b++)
        if (kv_len[b] < 1 || kv_len[b] > L) {
            if (err) snprintf(err->msg, sizeof err->msg, "reference: kv_len[%lld] = %lld is outside 1..%lld",
                              (long long)b, (long long)kv_len[b], (long long)L);
            return HELIX_ERR_INVALID;
        }
    if (scale <= 0) scale = 1.0 / sqrt((double)d);
    double *q = malloc(sizeof(double) * (size_t)(B * L * D)); /* [B, L, D] */
    double *k = malloc(sizeof(double) * (size_t)(B * L * D));
    double *v = malloc(sizeof(double) * (size_t)(B * L * D));
    double *att = malloc(sizeof(double) * (size_t)(B * L * D)); /* concatenated heads */
    double *p = malloc(sizeof(double) * (size_t)L);             /* one row of scores  */
    if (!q || !k || !v || !att || !p) {
        free(q); free(k); free(v); free(att); free(p);
        if (err) snprintf(err->msg, sizeof err->msg, "reference: out of memory");
        return HELIX_ERR_NOMEM;
    }
    /* projections: q = x Wq + bq, same for k, v (row by row, W read along its rows) */
    for (int64_t t = 0; t < B * L; t++) {
        double *qt = q + t * D, *kt = k + t * D, *vt = v + t * D;
        for (int64_t c = 0; c < D; c++) {
            qt[c] = w->bq ? w->bq[c] : 0;
            kt[c] = w->bk ? w->bk[c] : 0;
            vt[c] = w->bv ? w->bv[c] : 0;
        }
        for (int64_t r = 0; r < D; r++) {
            const double xv = x[t * D + r];
            const float *wq = w->wq + r * D, *wk = w->wk + r * D, *wv = w->wv + r * D;
            for (int64_t c = 0; c < D; c++) { qt[c] += xv * wq[c]; kt[c] += xv * wk[c]; vt[c] += xv * wv[c]; }
        }
    }
    /* per batch row, head, query: scores over the keys it may see (causal:
     * up to itself; padding: below kv_len[b]), softmax, weighted sum of values */
    for (int64_t b = 0; b < B; b++)
        for (int64_t hd = 0; hd < h; hd++)
            for (int64_t i = 0; i < L; i++) {
                const double *qi = q + (b * L + i) * D + hd * d;
                int64_t nk = causal ? i + 1 : L;
                if (kv_len && kv_len[b] < nk) nk = kv_len[b];
                double mx = -INFINITY;
                for (int64_t jj = 0; jj < nk; jj++) {
                    const double *kj = k + (b * L + jj) * D + hd * d;
                    double s = 0;
                    for (int64_t e = 0; e < d; e++) s += qi[e] * kj[e];
                    p[jj] = s * scale;
                    if (p[jj] > mx) mx = p[jj];
                }
                double sum = 0;
                for (int64_t jj = 0; jj < nk; jj++) { p[jj] = exp(p[jj] - mx); sum += p[jj]; }
                double *out = att + (b * L + i) * D + hd * d;
                for (int64_t e = 0; e < d; e++) out[e] = 0;
                for (int64_t jj = 0; jj < nk; jj++) {
                    const double *vj = v + (b * L + jj) * D + hd * d;
                    double pj = p[jj] / sum;
                    for (int64_t e = 0; e < d; e++) out[e] += pj * vj[e];
                }
            }
    /* output projection y = att Wo + bo (reusing q as the f64 row buffer), or
     * the concatenated heads themselves */
    for (int64_t t = 0; t < B * L; t++) {
        double *yt = q + t * D;
        const double *at = att + t * D;
        if (w->wo) {
            for (int64_t c = 0; c < D; c++) yt[c] = w->bo ? w->bo[c] : 0;
            for (int64_t r = 0; r < D; r++) {
                const float *wo = w->wo + r * D;
                for (int64_t c = 0; c < D; c++) yt[c] += at[r] * wo[c];
            }
        } else {
            for (int64_t c = 0; c < D; c++) yt[c] = at[c];
        }
        for (int64_t c = 0; c < D; c++) y[t * D + c] = (float)yt[c];
    }
    free(q); free(k); free(v); free(att); free(p);
    return HELIX_OK;
}
