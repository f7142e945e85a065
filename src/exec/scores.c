/* scores.c — exact attention by reducing partial scores inside a row.
 *
 * Device j holds slice j of every head of its group. Q_j K_j^T is slice j's
 * share of the full-width scores Q K^T, so summing it over the row (an
 * all-reduce, f32) gives exact scores; each device then takes the softmax
 * of the full row and multiplies by its own V slice, which yields its own
 * output slice directly: nothing moves back. Traffic is O(B*hg*L^2), so
 * this is only the right choice for short sequences. Padded keys
 * (cfg.kv_len) are still scored and reduced, so the bytes are the plan's,
 * and left out of the softmax. Work goes by blocks of
 * HELIX_SCORES_TILE_Q queries: scores [hg][tq][L] live at once, O(L). */
#include "exec-impl.h"
#include "../kernels/attention-impl.h"
#include "../core/util-impl.h"

#include <math.h>
#include <string.h>

#define TQ HELIX_SCORES_TILE_Q
#define TK HELIX_ATTN_TILE_MIN   /* the kernel's buffers hold at least this */

helix_status helix_exec_scores(helix_dev *d)
{
    const helix_plan *p = d->plan;
    const int64_t B = p->cfg.batch, L = p->cfg.seq, hg = p->hg, w = p->ds;
    const float scale = (float)p->scale;
    float *sc = (float *)d->exch;                /* [hg][nq][lk] */
    void *scratch = d->exch + helix_al64(hg * TQ * L * 4);
    /* the kernel's workspace, carved the kernel's way; K is stored
     * transposed here ([w][TK]), which is the same size */
    const helix_attn_ws W = helix_attn_ws_carve(d->work, w);
    float *qt = W.q, *kt = W.k, *vt = W.v, *acc = W.acc;

    for (int64_t b = 0; b < B; b++)
        for (int64_t q0 = 0; q0 < L; q0 += TQ) {
            const int64_t nq = L - q0 < TQ ? L - q0 : TQ;
            const int64_t lk = p->cfg.causal ? q0 + nq : L;
            /* partial scores of this slice */
            for (int64_t h = 0; h < hg; h++) {
                for (int64_t i = 0; i < nq; i++)
                    for (int64_t e = 0; e < w; e++)
                        qt[i * w + e] = helix_load(d->t, d->q, ((b * L + q0 + i) * hg + h) * w + e);
                for (int64_t k0 = 0; k0 < lk; k0 += TK) {
                    const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
                    for (int64_t jj = 0; jj < nk; jj++)
                        for (int64_t e = 0; e < w; e++)
                            kt[e * TK + jj] = helix_load(d->t, d->k, ((b * L + k0 + jj) * hg + h) * w + e);
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
            helix_status st = helix_comm_allreduce_sum(d->row, sc, hg * nq * lk, HELIX_F32, scratch);
            if (st) return st;
            /* softmax over the full row, then this slice's share of P V */
            for (int64_t h = 0; h < hg; h++) {
                float inv[TQ];
                for (int64_t i = 0; i < nq; i++) {
                    float *si = sc + (h * nq + i) * lk;
                    int64_t nk = p->cfg.causal ? q0 + i + 1 : lk;   /* keys this query sees */
                    if (p->cfg.kv_len && p->cfg.kv_len[b] < nk) nk = p->cfg.kv_len[b];
                    float mx = -INFINITY;
                    for (int64_t jj = 0; jj < nk; jj++) { si[jj] *= scale; if (si[jj] > mx) mx = si[jj]; }
                    float s = 0.0f;
                    for (int64_t jj = 0; jj < nk; jj++) { si[jj] = expf(si[jj] - mx); s += si[jj]; }
                    for (int64_t jj = nk; jj < lk; jj++) si[jj] = 0.0f;
                    inv[i] = 1.0f / s;
                }
                memset(acc, 0, sizeof(float) * (size_t)(nq * w));
                for (int64_t k0 = 0; k0 < lk; k0 += TK) {
                    const int64_t nk = lk - k0 < TK ? lk - k0 : TK;
                    for (int64_t jj = 0; jj < nk; jj++)
                        for (int64_t e = 0; e < w; e++)
                            vt[jj * w + e] = helix_load(d->t, d->v, ((b * L + k0 + jj) * hg + h) * w + e);
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
                    helix_from_f32(d->t, acc + i * w,
                                   (char *)d->o + (size_t)(((b * L + q0 + i) * hg + h) * w) * d->es, w);
                }
            }
        }
    return HELIX_OK;
}
