/* scores.c — the two halves of exact attention by score reduction on one
 * device's slice (the reduce between them is the executor's): partial
 * scores Q_j K_jᵀ of a block of queries into f32, and, once they are
 * summed over the row, the softmax of the full row times the slice's V.
 * Both products run on the path's micro-kernels, packed as the flash
 * kernel packs them (Q once per head, Kᵀ and V per key tile of TK), and
 * the softmax on the path's softmax row; the buffers are the attention
 * workspace, carved the kernel's way. Products go through the workspace's
 * S buffer, padded to whole tiles, never past the rows of sc. */
#include "ops-impl.h"
#include "attention-impl.h"

#include <math.h>
#include <string.h>

#define TQ HELIX_SCORES_TILE_Q
#define TK HELIX_ATTN_TILE_MIN   /* the kernel's buffers hold at least this */

/* head h's rows from query/key row r0 of batch row a->b: their first
 * element, as the packing helpers take it (rows hg * width apart) */
static const void *rows_of(const helix_scores_args *a, const void *x, int64_t h, int64_t r0)
{
    return (const char *)x + (size_t)(((a->b * a->L + r0) * a->H + h) * a->width) * helix_dtype_size(a->dtype);
}

void helix_cpu_partial_scores(const helix_scores_args *a, void *work)
{
    const helix_kern *kn = helix_kern_for(helix_isa_current());
    const int64_t hg = a->H, w = a->width, nq = a->nq, lk = a->lk, ld = hg * w;
    const helix_attn_ws W = helix_attn_ws_carve(work, w);
    for (int64_t h = 0; h < hg; h++) {
        helix_pack_a(kn, nq, w, a->dtype, rows_of(a, a->q, h, a->q0), ld, 1.0f, W.q);
        for (int64_t k0 = 0; k0 < lk; k0 += TK) {
            const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
            helix_pack_b(kn, w, nk, a->dtype, rows_of(a, a->k, h, k0), ld, 1, W.k);   /* Kᵀ */
            helix_tile_product(kn, nq, nk, w, W.q, W.k, W.s, TK, 0);
            for (int64_t i = 0; i < nq; i++)
                memcpy(a->sc + (h * nq + i) * lk + k0, W.s + i * TK, sizeof(float) * (size_t)nk);
        }
    }
}

void helix_cpu_softmax_v(const helix_scores_args *a, void *work)
{
    const helix_kern *kn = helix_kern_for(helix_isa_current());
    const int64_t hg = a->H, w = a->width, b = a->b, q0 = a->q0, nq = a->nq, lk = a->lk, ld = hg * w;
    const int64_t wr = helix_rup(w, 32), rows = nq + HELIX_MR_MAX;   /* P and acc rows, the last strip's padding too */
    const size_t es = helix_dtype_size(a->dtype);
    const helix_attn_ws W = helix_attn_ws_carve(work, w);
    const float sc = helix_score_scale(kn, a->scale);   /* the path's units */
    for (int64_t h = 0; h < hg; h++) {
        float inv[TQ];
        for (int64_t i = 0; i < nq; i++) {
            float *si = a->sc + (h * nq + i) * lk;
            int64_t nk = a->causal ? q0 + i + 1 : lk;   /* keys this query sees */
            if (a->kv_len && a->kv_len[b] < nk) nk = a->kv_len[b];
            if (nk > lk) nk = lk;
            if (nk < 0) nk = 0;
            for (int64_t jj = 0; jj < nk; jj++) si[jj] *= sc;
            float m = -INFINITY, l = 0.0f, alpha;
            kn->softmax_rows(si, 0, 1, nk, &m, &l, &alpha);
            memset(si + nk, 0, sizeof(float) * (size_t)(lk - nk));
            inv[i] = l > 0.0f ? 1.0f / l : 0.0f;   /* no visible key: 0 */
        }
        memset(W.acc, 0, sizeof(float) * (size_t)(rows * wr));
        for (int64_t k0 = 0; k0 < lk; k0 += TK) {
            const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
            /* P's rows of this tile, whole strips (the padding rows zero) */
            for (int64_t i = 0; i < rows; i++) {
                if (i < nq) memcpy(W.s + i * TK, a->sc + (h * nq + i) * lk + k0, sizeof(float) * (size_t)nk);
                else memset(W.s + i * TK, 0, sizeof(float) * (size_t)nk);
            }
            helix_pv_tile(kn, nq, w, nk, a->dtype, rows_of(a, a->v, h, k0), ld, W.v, W.s, TK, W.acc, wr);
        }
        for (int64_t i = 0; i < nq; i++) {
            float *ai = W.acc + i * wr;
            kn->scale_row(ai, w, inv[i]);
            helix_from_f32(a->dtype, ai, (char *)a->o + (size_t)(((b * a->L + q0 + i) * hg + h) * w) * es, w);
        }
    }
}
