/* scores.c — the two halves of exact attention by score reduction on one
 * device's slice (the reduce between them is the executor's): partial
 * scores Q_j K_jᵀ of a block of queries into f32, and, once they are
 * summed over the row, the softmax of the full row times the slice's V.
 * Plain scalar loops (this algorithm is for short sequences; its cost is
 * the O(L²) traffic). Buffers come from the attention workspace, carved
 * the kernel's way; K is stored transposed ([w][TK]), the same size. */
#include "ops-impl.h"
#include "attention-impl.h"

#include <math.h>
#include <string.h>

#define TQ HELIX_SCORES_TILE_Q
#define TK HELIX_ATTN_TILE_MIN   /* the kernel's buffers hold at least this */

/* nk keys from k0 of head h of x ([B, L, H, width], batch row a->b) as
 * f32: key jj's feature e lands at dst[jj * sj + e * se] */
static void load_tile(const helix_scores_args *a, const void *x, int64_t h, int64_t k0, int64_t nk, float *dst,
                      int64_t sj, int64_t se)
{
    const int64_t w = a->width;
    for (int64_t jj = 0; jj < nk; jj++)
        for (int64_t e = 0; e < w; e++)
            dst[jj * sj + e * se] = helix_load(a->dtype, x, ((a->b * a->L + k0 + jj) * a->H + h) * w + e);
}

void helix_cpu_partial_scores(const helix_scores_args *a, void *work)
{
    const int64_t L = a->L, hg = a->H, w = a->width, b = a->b, q0 = a->q0, nq = a->nq, lk = a->lk;
    const helix_attn_ws W = helix_attn_ws_carve(work, w);
    float *qt = W.q, *kt = W.k, *sc = a->sc;
    for (int64_t h = 0; h < hg; h++) {
        for (int64_t i = 0; i < nq; i++)
            for (int64_t e = 0; e < w; e++)
                qt[i * w + e] = helix_load(a->dtype, a->q, ((b * L + q0 + i) * hg + h) * w + e);
        for (int64_t k0 = 0; k0 < lk; k0 += TK) {
            const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
            load_tile(a, a->k, h, k0, nk, kt, 1, TK);        /* K^T: [w][TK] */
            for (int64_t i = 0; i < nq; i++) {
                float *si = sc + (h * nq + i) * lk + k0;
                for (int64_t jj = 0; jj < nk; jj++) si[jj] = 0.0f;
                for (int64_t e = 0; e < w; e++) {
                    const float qv = qt[i * w + e];
                    for (int64_t jj = 0; jj < nk; jj++) si[jj] += qv * kt[e * TK + jj];
                }
            }
        }
    }
}

void helix_cpu_softmax_v(const helix_scores_args *a, void *work)
{
    const int64_t L = a->L, hg = a->H, w = a->width, b = a->b, q0 = a->q0, nq = a->nq, lk = a->lk;
    const size_t es = helix_dtype_size(a->dtype);
    const helix_attn_ws W = helix_attn_ws_carve(work, w);
    float *vt = W.v, *acc = W.acc, *sc = a->sc;
    for (int64_t h = 0; h < hg; h++) {
        float inv[TQ];
        for (int64_t i = 0; i < nq; i++) {
            float *si = sc + (h * nq + i) * lk;
            int64_t nk = a->causal ? q0 + i + 1 : lk;   /* keys this query sees */
            if (a->kv_len && a->kv_len[b] < nk) nk = a->kv_len[b];
            float mx = -INFINITY;
            for (int64_t jj = 0; jj < nk; jj++) { si[jj] *= a->scale; if (si[jj] > mx) mx = si[jj]; }
            float s = 0.0f;
            for (int64_t jj = 0; jj < nk; jj++) { si[jj] = expf(si[jj] - mx); s += si[jj]; }
            for (int64_t jj = nk; jj < lk; jj++) si[jj] = 0.0f;
            inv[i] = 1.0f / s;
        }
        memset(acc, 0, sizeof(float) * (size_t)(nq * w));
        for (int64_t k0 = 0; k0 < lk; k0 += TK) {
            const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
            load_tile(a, a->v, h, k0, nk, vt, w, 1);         /* V: [nk][w]    */
            for (int64_t i = 0; i < nq; i++) {
                const float *si = sc + (h * nq + i) * lk + k0;
                float *ai = acc + i * w;
                for (int64_t jj = 0; jj < nk; jj++) {
                    const float pj = si[jj];
                    for (int64_t e = 0; e < w; e++) ai[e] += pj * vt[jj * w + e];
                }
            }
        }
        for (int64_t i = 0; i < nq; i++) {
            for (int64_t e = 0; e < w; e++) acc[i * w + e] *= inv[i];
            helix_from_f32(a->dtype, acc + i * w, (char *)a->o + (size_t)(((b * L + q0 + i) * hg + h) * w) * es, w);
        }
    }
}
