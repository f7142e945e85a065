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
 * HELIX_SCORES_TILE_Q queries: scores [hg][tq][L] live at once, O(L).
 * The two halves around the reduce are backend operations. */
#include "exec-impl.h"
#include "../core/util-impl.h"

helix_status helix_exec_scores(helix_dev *d)
{
    const helix_plan *p = d->plan;
    const int64_t B = p->cfg.batch, L = p->cfg.seq, hg = p->hg, TQ = HELIX_SCORES_TILE_Q;
    helix_backend *be = d->be;
    helix_scores_args a = {
        .B = B, .L = L, .H = hg, .width = p->ds, .dtype = d->t, .q = d->q, .k = d->k, .v = d->v, .o = d->o,
        .scale = (float)p->scale, .causal = p->cfg.causal, .kv_len = p->cfg.kv_len,
        .sc = (float *)d->exch,                 /* [hg][nq][lk] */
    };
    void *scratch = d->exch + helix_al64(hg * TQ * L * 4);
    helix_status st = HELIX_OK;
    for (int64_t b = 0; b < B && !st; b++)
        for (int64_t q0 = 0; q0 < L && !st; q0 += TQ) {
            a.b = b;
            a.q0 = q0;
            a.nq = L - q0 < TQ ? L - q0 : TQ;
            a.lk = p->cfg.causal ? q0 + a.nq : L;
            if ((st = be->ops->partial_scores(be, &a, d->work))) break;
            if ((st = helix_comm_allreduce_sum(d->row, a.sc, hg * a.nq * a.lk, HELIX_F32, scratch))) break;
            st = be->ops->softmax_v(be, &a, d->work);
        }
    return st;
}
