/* device.c — one device's forward pass: carve the arena the plan sized,
 * take the weight shards, receive X, project, attend (sliced, or exact by
 * regather or score reduce), then aggregate (row all-gather + column
 * gather, or row-parallel W_O + reduce). Each phase's wall time and bytes
 * are recorded. */
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

static void carve(helix_dev *d, char *arena)
{
    const helix_plan *p = d->plan;
    const helix_device_plan *dp = &d->dp;
    const int64_t D = p->D, cols = p->cols, es = (int64_t)d->es;
    const int64_t BL = p->cfg.batch * p->cfg.seq;
    char *c = arena;
    d->wq = c; d->wk = c + D * cols * es; d->wv = c + 2 * D * cols * es;
    char *w = c + 3 * D * cols * es;
    if (p->cfg.bias) { d->bq = w; d->bk = w + cols * es; d->bv = w + 2 * cols * es; w += 3 * cols * es; }
    if (p->cfg.out_proj) { d->wo = w; w += cols * D * es; }
    if (p->cfg.out_proj && p->cfg.bias && dp->rank == 0) { d->bo = w; }
    c += helix_al64(dp->weight_bytes);
    d->x = c; c += helix_al64(dp->x_bytes);
    d->q = c; d->k = c + BL * cols * es; d->v = c + 2 * BL * cols * es; c += helix_al64(dp->qkv_bytes);
    d->o = c; c += helix_al64(dp->o_bytes);
    d->exch = c; c += helix_al64(dp->exchange_bytes);
    d->work = c; c += helix_al64(dp->kernel_bytes);
    d->agg = c; c += helix_al64(dp->agg_bytes);
    d->out = dp->out_bytes ? c : NULL;
}

/* No W_O: all-gather the slices along the row into whole heads, then
 * column 0 gathers the head groups onto rank 0. */
static helix_status aggregate_concat(helix_dev *d)
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

helix_status helix_device_run(const helix_plan *plan, helix_comm_t *world, const helix_weights *w,
                              const float *x, void *y, helix_device_stats *stats, helix_err *err)
{
    helix_dev d;
    memset(&d, 0, sizeof d);
    helix_comm_counters ctr;
    memset(&ctr, 0, sizeof ctr);
    helix_comm_counters *saved = world->counters;
    world->counters = &ctr;
    if (stats) memset(stats, 0, sizeof *stats);
    double tm_local[HELIX_NPHASES] = {0};
    d.plan = plan;
    d.world = world;
    d.ctr = &ctr;
    d.tm = stats ? stats->time_s : tm_local;
    d.t = plan->cfg.dtype;
    d.es = helix_dtype_size(d.t);
    d.be = helix_backend_cpu();
    helix_backend *be = d.be;
    const helix_config *cfg = &plan->cfg;
    const int64_t D = plan->D, BL = cfg->batch * cfg->seq;
    helix_status st;
    char *arena = NULL;
    double t0;

    if (world->size != plan->P) {
        snprintf(err->msg, sizeof err->msg, "%d ranks, but the grid n x m = %lld x %lld needs %lld",
                 world->size, (long long)cfg->groups, (long long)cfg->slices, (long long)plan->P);
        world->counters = saved;
        return HELIX_ERR_INVALID;
    }
    helix_plan_device(plan, world->rank, &d.dp);
    if (w->D != D || (!w->load && (!w->wq || !w->wk || !w->wv || (cfg->out_proj && !w->wo) ||
        (cfg->bias && (!w->bq || !w->bk || !w->bv || (cfg->out_proj && !w->bo)))))) {
        snprintf(err->msg, sizeof err->msg, "weights do not match the plan (D=%lld, plan D=%lld, W_O %s, biases %s)",
                 (long long)w->D, (long long)D, cfg->out_proj ? "required" : "unused",
                 cfg->bias ? "required" : "unused");
        world->counters = saved;
        return HELIX_ERR_INVALID;
    }
    /* One allocation, the size the plan computed; all ranks agree it worked. */
    helix_status ast = be->ops->alloc(be, d.dp.peak_bytes, (void **)&arena);
    int any_fail = 0;
    st = helix_comm_any(world, ast != HELIX_OK || arena == NULL, &any_fail);
    if (st || any_fail) {
        snprintf(err->msg, sizeof err->msg, "%s", arena ? "another device could not allocate its memory"
                 : "could not allocate the device arena");
        if (!arena) snprintf(err->msg, sizeof err->msg, "device %d: could not allocate %lld bytes",
                             world->rank, (long long)d.dp.peak_bytes);
        be->ops->free(be, arena);
        world->counters = saved;
        return st ? st : HELIX_ERR_NOMEM;
    }
    /* touch it now: page faults belong to setup, not to the pass */
    if ((st = be->ops->memset(be, arena, 0, d.dp.peak_bytes))) goto done;
    carve(&d, arena);
    if ((st = helix_comm_split(world, (int)d.dp.i, (int)d.dp.j, &d.row)) ||
        (st = helix_comm_split(world, (int)d.dp.j, (int)d.dp.i, &d.col))) {
        snprintf(err->msg, sizeof err->msg, "device %d: could not create row/column communicators", world->rank);
        goto done;
    }
    if (!be->ops->host_memory) {
        st = HELIX_ERR_UNSUPPORTED;
        snprintf(err->msg, sizeof err->msg, "backend %s: weight shards for memory the host cannot address are not written yet",
                 be->ops->name);
        goto done;
    }
    if (w->load) {
        /* each device reads only its own shards; all agree it worked */
        helix_err lerr = {{0}};
        helix_status ls = w->load(w->load_ctx, plan, world->rank, d.t, d.wq, d.wk, d.wv, d.bq, d.bk, d.bv,
                                  d.wo, d.bo, &lerr);
        if ((st = helix_comm_any(world, ls != HELIX_OK, &any_fail)) == HELIX_OK && any_fail) st = ls ? ls : HELIX_ERR_ABORTED;
        if (st) {
            if (ls) snprintf(err->msg, sizeof err->msg, "device %d: loading weights: %.400s", world->rank, lerr.msg);
            else snprintf(err->msg, sizeof err->msg, "device %d: another device could not load its weights", world->rank);
            goto done;
        }
    } else {
        /* shards of the full weights (f32 -> storage type) */
        helix_shard_cols(plan, world->rank, w->wq, d.wq, d.t);
        helix_shard_cols(plan, world->rank, w->wk, d.wk, d.t);
        helix_shard_cols(plan, world->rank, w->wv, d.wv, d.t);
        if (cfg->bias) {
            helix_shard_bias(plan, world->rank, w->bq, d.bq, d.t);
            helix_shard_bias(plan, world->rank, w->bk, d.bk, d.t);
            helix_shard_bias(plan, world->rank, w->bv, d.bv, d.t);
        }
        if (cfg->out_proj) helix_shard_rows(plan, world->rank, w->wo, d.wo, d.t);
        if (d.bo) helix_from_f32(d.t, w->bo, d.bo, D);
    }

    /* the forward pass starts together on every device, after setup */
    int ignored = 0;
    if ((st = helix_comm_any(world, 0, &ignored))) goto comm_fail;
    const double t_pass = be->ops->now(be);
#define PHASE(ph) (t0 = helix_exec_phase(&d, (ph)))
#define TOCK(ph) helix_exec_phase_end(&d, (ph), t0)
    PHASE(HELIX_PHASE_INPUT);
    if (world->rank == 0) st = be->ops->upload_f32(be, d.x, d.t, x, BL * D);
    if (st == HELIX_OK) st = helix_comm_bcast(world, d.x, (size_t)(BL * D) * d.es, 0);
    TOCK(HELIX_PHASE_INPUT);
    if (st) goto comm_fail;

    st = helix_exec_attention_core(&d, cfg->out_proj ? d.agg : NULL);
    if (st) goto comm_fail;

    if (cfg->out_proj) {
        char *partial = d.agg, *scratch = d.agg + BL * D * d.es;
        PHASE(HELIX_PHASE_REDUCE);
        st = helix_comm_reduce_sum(world, partial, d.out, BL * D, d.t, 0, scratch);
        TOCK(HELIX_PHASE_REDUCE);
    } else {
        st = aggregate_concat(&d);
    }
    if (st) goto comm_fail;
    if (world->rank == 0 && y && (st = be->ops->copy(be, y, d.out, BL * D * (int64_t)d.es, HELIX_COPY_D2H))) goto comm_fail;
    if (stats) stats->wall_s = be->ops->now(be) - t_pass;
    goto done;
comm_fail:
    snprintf(err->msg, sizeof err->msg, "device %d: %s in phase %s", world->rank,
             helix_status_str(st), helix_phase_name(ctr.phase));
done:
    if (stats) {
        memcpy(stats->phase, ctr.bytes, sizeof ctr.bytes);
        stats->arena_bytes = d.dp.peak_bytes;
        stats->peak_rss_bytes = helix_peak_rss_bytes();
    }
    helix_comm_free(d.row);
    helix_comm_free(d.col);
    be->ops->free(be, arena);
    world->counters = saved;
    return st;
}
