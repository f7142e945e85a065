/* regather.c — exact attention by regathering whole heads inside a row.
 *
 * m | hg ("heads"): device j of the row gets hg/m whole heads. For each of
 *   Q, K, V it sends peer p its own slice of p's heads (all-to-all), and
 *   puts the slices it receives side by side into full-width heads. After
 *   attention the outputs travel back the same way.
 * otherwise ("queries"): K and V are all-gathered along the row (every
 *   device sees all hg heads at full width), the queries are split into m
 *   blocks and Q is all-to-all'ed so device j owns query block j at full
 *   width; the outputs travel back by all-to-all.
 * Both run the ordinary kernel at width d with scale 1/sqrt(d). */
#include "exec-impl.h"

#include <stdlib.h>
#include <string.h>

static helix_status by_heads(helix_dev *d)
{
    const helix_plan *p = d->plan;
    const int64_t m = p->cfg.slices, BL = p->cfg.batch * p->cfg.seq, es = (int64_t)d->es;
    const int64_t hh = p->hg / m;
    const int64_t chunk = BL * hh * p->ds * es, full = BL * p->cols * es;
    char *send = d->exch, *recv = send + full, *qf = recv + full, *kf = qf + full, *vf = kf + full,
         *of = vf + full;
    size_t *cnt = malloc(sizeof(size_t) * 2 * (size_t)m);
    if (!cnt) return HELIX_ERR_NOMEM;
    for (int64_t q = 0; q < m; q++) { cnt[q] = (size_t)chunk; cnt[m + q] = (size_t)(q * chunk); }
    helix_status st = HELIX_OK;

    double t0 = helix_exec_phase(d, HELIX_PHASE_REGATHER);
    const void *src[3] = {d->q, d->k, d->v};
    char *dst[3] = {qf, kf, vf};
    for (int x = 0; x < 3 && !st; x++) {
        /* send[p] = my slice of p's heads: [BL, hh, ds] (rows of src are hg*ds) */
        for (int64_t q = 0; q < m && !st; q++)
            st = helix_exec_copy2d(d, send + q * chunk, hh * p->ds * es, (const char *)src[x] + q * hh * p->ds * es,
                                   p->hg * p->ds * es, hh * p->ds * es, BL);
        if (!st) st = helix_comm_alltoallv(d->row, send, cnt, cnt + m, recv, cnt, cnt + m);
        /* recv[p] = slice p of my heads: [BL, hh, ds] -> [BL, hh, d] */
        if (!st) st = helix_exec_split_cols(d, recv, dst[x], BL * hh, m, p->ds * es, 0);
    }
    helix_exec_phase_end(d, HELIX_PHASE_REGATHER, t0);
    if (st) goto out;

    t0 = helix_exec_phase(d, HELIX_PHASE_ATTENTION);
    st = helix_exec_attend(d, qf, kf, vf, of, p->cfg.seq, 0, hh, p->cfg.head_dim);
    helix_exec_phase_end(d, HELIX_PHASE_ATTENTION, t0);
    if (st) goto out;

    t0 = helix_exec_phase(d, HELIX_PHASE_RETURN);
    st = helix_exec_split_cols(d, of, send, BL * hh, m, p->ds * es, 1);    /* send[p] = slice p of my heads */
    if (!st) st = helix_comm_alltoallv(d->row, send, cnt, cnt + m, recv, cnt, cnt + m);
    /* recv[p] = p's heads, my slice: into columns of heads p*hh.. of O */
    for (int64_t q = 0; q < m && !st; q++)
        st = helix_exec_copy2d(d, (char *)d->o + q * hh * p->ds * es, p->hg * p->ds * es, recv + q * chunk,
                               hh * p->ds * es, hh * p->ds * es, BL);
    helix_exec_phase_end(d, HELIX_PHASE_RETURN, t0);
out:
    free(cnt);
    return st;
}

static helix_status by_queries(helix_dev *d)
{
    const helix_plan *p = d->plan;
    const int64_t m = p->cfg.slices, B = p->cfg.batch, L = p->cfg.seq, es = (int64_t)d->es;
    const int64_t hg = p->hg, ds = p->ds, dd = p->cfg.head_dim;
    const int64_t nq = d->dp.rg_q_end - d->dp.rg_q_begin, q0 = d->dp.rg_q_begin;
    const int64_t slice_row = hg * ds * es;               /* one token, all heads, one slice */
    int64_t send_bytes = B * L * p->cols * es;
    if (B * nq * hg * dd * es > send_bytes) send_bytes = B * nq * hg * dd * es;
    const int64_t whole = B * L * hg * dd * es;
    char *send = d->exch, *recv = send + send_bytes, *kf = recv + whole, *vf = kf + whole,
         *qf = vf + whole, *of = qf + B * nq * hg * dd * es;
    size_t *cnt = malloc(sizeof(size_t) * 4 * (size_t)m);
    if (!cnt) return HELIX_ERR_NOMEM;
    size_t *sc = cnt, *sd = cnt + m, *rc = cnt + 2 * m, *rd = cnt + 3 * m;
    helix_status st = HELIX_OK;

    double t0 = helix_exec_phase(d, HELIX_PHASE_REGATHER);
    /* K, V: all-gather the slices, then [m][B*L, hg, ds] -> [B*L, hg, d] */
    for (int64_t q = 0; q < m; q++) { rc[q] = (size_t)(B * L * slice_row); rd[q] = (size_t)q * rc[q]; }
    st = helix_comm_allgatherv(d->row, d->k, rc[0], recv, rc, rd);
    if (!st) st = helix_exec_split_cols(d, recv, kf, B * L * hg, m, ds * es, 0);
    if (!st) st = helix_comm_allgatherv(d->row, d->v, rc[0], recv, rc, rd);
    if (!st) st = helix_exec_split_cols(d, recv, vf, B * L * hg, m, ds * es, 0);
    /* Q: peer p gets my slice of its query block; I get every slice of mine */
    if (!st) {
        size_t off = 0;
        for (int64_t q = 0; q < m && !st; q++) {
            int64_t b0, e0;
            helix_split_range(L, m, q, &b0, &e0);
            sc[q] = (size_t)(B * (e0 - b0) * slice_row);
            sd[q] = off;
            /* query rows b0..e0 of every batch row, side by side */
            st = helix_exec_copy2d(d, send + off, (e0 - b0) * slice_row, (const char *)d->q + b0 * slice_row,
                                   L * slice_row, (e0 - b0) * slice_row, B);
            off += sc[q];
            rc[q] = (size_t)(B * nq * slice_row);
            rd[q] = (size_t)q * rc[q];
        }
        if (!st) st = helix_comm_alltoallv(d->row, send, sc, sd, recv, rc, rd);
        if (!st) st = helix_exec_split_cols(d, recv, qf, B * nq * hg, m, ds * es, 0);
    }
    helix_exec_phase_end(d, HELIX_PHASE_REGATHER, t0);
    if (st) goto out;

    t0 = helix_exec_phase(d, HELIX_PHASE_ATTENTION);
    st = helix_exec_attend(d, qf, kf, vf, of, nq, q0, hg, dd);
    helix_exec_phase_end(d, HELIX_PHASE_ATTENTION, t0);
    if (st) goto out;

    t0 = helix_exec_phase(d, HELIX_PHASE_RETURN);
    /* send[p] = slice p of my query block's outputs; recv[p] = my slice of p's block */
    st = helix_exec_split_cols(d, of, send, B * nq * hg, m, ds * es, 1);
    size_t off = 0;
    for (int64_t q = 0; q < m; q++) {
        int64_t b0, e0;
        helix_split_range(L, m, q, &b0, &e0);
        sc[q] = (size_t)(B * nq * slice_row);
        sd[q] = (size_t)q * sc[q];
        rc[q] = (size_t)(B * (e0 - b0) * slice_row);
        rd[q] = off;
        off += rc[q];
    }
    if (!st) st = helix_comm_alltoallv(d->row, send, sc, sd, recv, rc, rd);
    for (int64_t q = 0; q < m && !st; q++) {
        int64_t b0, e0;
        helix_split_range(L, m, q, &b0, &e0);
        st = helix_exec_copy2d(d, (char *)d->o + b0 * slice_row, L * slice_row, recv + rd[q],
                               (e0 - b0) * slice_row, (e0 - b0) * slice_row, B);
    }
    helix_exec_phase_end(d, HELIX_PHASE_RETURN, t0);
out:
    free(cnt);
    return st;
}

helix_status helix_exec_regather(helix_dev *d)
{
    return d->plan->regather == HELIX_REGATHER_HEADS ? by_heads(d) : by_queries(d);
}
