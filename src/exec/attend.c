/* attend.c — the attention core of one device, shared by every block kind:
 * project X into its Q/K/V slices, attend (sliced, or exact by regather or
 * score reduce), and either the W_O partial product or (no W_O) the heads
 * concatenated onto rank 0 (row all-gather + column gather). The phase
 * clock and the device-side copies the exchanges use live here too. */
#include "exec-impl.h"
#include "../core/util-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

helix_status helix_exec_copy2d(helix_dev *d, void *dst, int64_t dpitch, const void *src, int64_t spitch,
                               int64_t width, int64_t rows)
{
    return d->be->ops->copy2d(d->be, dst, dpitch, src, spitch, width, rows, HELIX_COPY_D2D);
}

helix_status helix_exec_split_cols(helix_dev *d, const char *src, char *dst, int64_t rows, int64_t n_chunks,
                                   int64_t chunk, int split)
{
    helix_status st = HELIX_OK;
    for (int64_t c = 0; c < n_chunks && !st; c++) {
        char *packed = (split ? dst : (char *)src) + c * rows * chunk;
        char *wide = (split ? (char *)src : dst) + c * chunk;
        st = split ? helix_exec_copy2d(d, packed, chunk, wide, n_chunks * chunk, chunk, rows)
                   : helix_exec_copy2d(d, wide, n_chunks * chunk, packed, chunk, chunk, rows);
    }
    return st;
}

helix_status helix_exec_gemm(helix_dev *d, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                             const void *B, int64_t ldb, const void *bias, void *C, int64_t ldc)
{
    const helix_gemm_args g = {M, N, K, d->t, d->t, d->t, A, B, bias, C, lda, ldb, ldc};
    return d->be->ops->gemm(d->be, &g, d->work);
}

helix_status helix_exec_attend(helix_dev *d, const void *q, const void *k, const void *v, void *o,
                               int64_t Lq, int64_t q_pos0, int64_t H, int64_t width)
{
    const helix_plan *p = d->plan;
    helix_attn_args a;
    memset(&a, 0, sizeof a);
    a.B = p->cfg.batch; a.Lq = Lq; a.Lk = p->cfg.seq; a.H = H; a.width = width;
    a.dtype = d->t; a.q = q; a.k = k; a.v = v; a.o = o;
    a.scale = (float)p->scale; a.causal = p->cfg.causal; a.q_pos0 = q_pos0; a.kv_len = p->cfg.kv_len;
    helix_attn_args_dense(&a);
    return d->be->ops->attention(d->be, &a, d->work);
}

double helix_exec_phase(helix_dev *d, helix_phase ph)
{
    d->ctr->phase = ph;
    return d->be->ops->now(d->be);
}

void helix_exec_phase_end(helix_dev *d, helix_phase ph, double t0) { d->tm[ph] += d->be->ops->now(d->be) - t0; }

/* No W_O: all-gather the slices along the row into whole heads, then
 * column 0 gathers the head groups onto rank 0. */
helix_status helix_exec_concat_heads(helix_dev *d)
{
    const helix_plan *p = d->plan;
    const int64_t m = p->cfg.slices, n = p->cfg.groups, BL = p->cfg.batch * p->cfg.seq;
    const int64_t es = (int64_t)d->es, chunk = BL * p->cols * es, grp = BL * p->hg * p->cfg.head_dim * es;
    size_t cnt[2 * 1024], *cd = m <= 1024 && n <= 1024 ? cnt : malloc(sizeof(size_t) * 2 * (size_t)(m > n ? m : n));
    if (!cd) return HELIX_ERR_NOMEM;
    char *recv = d->agg, *whole = d->agg + grp;          /* [m][BL,hg,ds] -> [BL,hg,d] */
    double t0 = helix_exec_phase(d, HELIX_PHASE_ROW_GATHER);
    for (int64_t q = 0; q < m; q++) { cd[q] = (size_t)chunk; cd[m + q] = (size_t)(q * chunk); }
    helix_status st = helix_comm_allgatherv(d->row, d->o, (size_t)chunk, recv, cd, cd + m);
    if (st == HELIX_OK) st = helix_exec_split_cols(d, recv, whole, BL * p->hg, m, p->ds * es, 0);
    helix_exec_phase_end(d, HELIX_PHASE_ROW_GATHER, t0);
    if (st == HELIX_OK && d->dp.j == 0) {
        t0 = helix_exec_phase(d, HELIX_PHASE_COL_GATHER);
        char *groups = whole + grp;                       /* rank 0: [n][BL, hg*d] */
        for (int64_t q = 0; q < n; q++) { cd[q] = (size_t)grp; cd[n + q] = (size_t)(q * grp); }
        st = helix_comm_gatherv(d->col, whole, (size_t)grp, groups, cd, cd + n, 0);
        if (st == HELIX_OK && d->dp.rank == 0) st = helix_exec_split_cols(d, groups, d->out, BL, n, grp / BL, 0);
        helix_exec_phase_end(d, HELIX_PHASE_COL_GATHER, t0);
    }
    if (cd != cnt) free(cd);
    return st;
}

helix_status helix_exec_attention_core(helix_dev *d, void *partial)
{
    const helix_plan *plan = d->plan;
    const helix_config *cfg = &plan->cfg;
    const int64_t D = plan->D, BL = cfg->batch * cfg->seq, cols = plan->cols;
    helix_status st;
    double t0 = helix_exec_phase(d, HELIX_PHASE_QKV);
    if ((st = helix_exec_gemm(d, BL, cols, D, d->x, D, d->wq, cols, d->bq, d->q, cols)) ||
        (st = helix_exec_gemm(d, BL, cols, D, d->x, D, d->wk, cols, d->bk, d->k, cols)) ||
        (st = helix_exec_gemm(d, BL, cols, D, d->x, D, d->wv, cols, d->bv, d->v, cols)))
        return st;
    helix_exec_phase_end(d, HELIX_PHASE_QKV, t0);

    if (cfg->mode == HELIX_MODE_SLICED) {
        t0 = helix_exec_phase(d, HELIX_PHASE_ATTENTION);
        st = helix_exec_attend(d, d->q, d->k, d->v, d->o, cfg->seq, 0, plan->hg, plan->ds);
        helix_exec_phase_end(d, HELIX_PHASE_ATTENTION, t0);
    } else if (cfg->exact_algo == HELIX_EXACT_REGATHER) {
        st = helix_exec_regather(d); /* books regather, attention, return itself */
    } else {
        t0 = helix_exec_phase(d, HELIX_PHASE_ATTENTION);
        st = helix_exec_scores(d);
        helix_exec_phase_end(d, HELIX_PHASE_ATTENTION, t0);
    }
    if (st || !partial) return st;
    t0 = helix_exec_phase(d, HELIX_PHASE_OUT_PROJ);
    st = helix_exec_gemm(d, BL, D, cols, d->o, cols, d->wo, D, d->bo, partial, D);
    helix_exec_phase_end(d, HELIX_PHASE_OUT_PROJ, t0);
    return st;
}
