/* run.c — the one executor: one device's forward pass for every plan
 * (helix_model.h), attention-only (`helix run`) or whole layers, helix
 * n x m or TP x PP. Take the shards of its layers (from a loader, or cut
 * from full weights), receive X (stage 0) or each micro-batch from the
 * previous stage, run its blocks, hand the micro-batch on, and finally
 * deliver Y on rank 0.
 *   layer block:     LN, attention core, all-reduce, residual, LN, MLP,
 *                    all-reduce, residual (pre- or post-LN)
 *   attention block: the attention core, then W_O partials reduced onto
 *                    rank 0, or (no W_O) the heads concatenated onto rank 0
 * One arena of exactly the plan's size; every phase timed through the
 * backend's clock and its bytes counted. Compute, copies and memory go
 * through helix_backend.h only. */
#include "helix_model.h"
#include "exec-impl.h"
#include "../core/err-impl.h"
#include "../core/util-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef helix_layer_shard layer_shard;

typedef struct {
    const helix_model_plan *p;
    helix_model_device_plan dp;
    helix_comm_t *world, *tg, *pair_a, *pair_b, *prev, *next, *outc;
    helix_dev ad;              /* the attention device inside the tensor group */
    helix_comm_counters ctr;
    double *tm;
    helix_dtype t;
    size_t es;
    layer_shard *ls;           /* [layers of this device] */
    char *act, *xn, *hidden, *partial, *scratch, *out;
    float *fbuf;               /* f32 rows for LN / GELU (in the kernel workspace) */
    int attn_only;             /* HELIX_BLOCK_ATTENTION                       */
} mdev;

/* ------------------------------------------------------- element-wise */

static helix_status layernorm(mdev *m, const void *a, const void *g, const void *b, void *y, int64_t rows)
{
    helix_backend *be = m->ad.be;
    return be->ops->layernorm(be, m->t, a, g, b, y, rows, m->p->D, m->fbuf);
}

/* a += p (f32 arithmetic, storage dtype) */
static helix_status residual(mdev *m, void *a, const void *p, int64_t rows)
{
    helix_backend *be = m->ad.be;
    return be->ops->residual_add(be, m->t, a, p, rows, m->p->D, m->fbuf);
}

/* ------------------------------------------------------------ layout */

static helix_status carve(mdev *m, char *arena)
{
    const helix_model_plan *p = m->p;
    const helix_model_device_plan *dp = &m->dp;
    const int64_t D = p->D, fc = p->fcols, cols = p->attn.cols, es = (int64_t)m->es;
    const int64_t nl = dp->layer_end - dp->layer_begin;
    const int bias = p->model.bias, t0 = dp->trank == 0, layer = !m->attn_only;
    const int out_proj = p->attn.cfg.out_proj;
    m->ls = calloc((size_t)(nl > 0 ? nl : 1), sizeof *m->ls);
    if (!m->ls) return HELIX_ERR_NOMEM;
    char *c = arena;
#define TAKE(ptr, n) do { (ptr) = c; c += (n) * es; } while (0)
    for (int64_t l = 0; l < nl; l++) {
        layer_shard *s = &m->ls[l];
        TAKE(s->wq, D * cols); TAKE(s->wk, D * cols); TAKE(s->wv, D * cols);
        if (bias) { TAKE(s->bq, cols); TAKE(s->bk, cols); TAKE(s->bv, cols); }
        if (out_proj) TAKE(s->wo, cols * D);
        if (out_proj && bias && t0) TAKE(s->bo, D);
        if (!layer) continue;
        TAKE(s->ln1_g, D); TAKE(s->ln1_b, D); TAKE(s->ln2_g, D); TAKE(s->ln2_b, D);
        TAKE(s->w1, D * fc); TAKE(s->w2, fc * D);
        if (bias) TAKE(s->b1, fc);
        if (bias && t0) TAKE(s->b2, D);
    }
#undef TAKE
    c = arena + helix_al64(dp->weight_bytes);
    m->act = c; c += helix_al64(dp->act_bytes);
    m->xn = c; c += helix_al64(dp->norm_bytes);
    const int64_t BmL = p->Bm * p->model.seq;
    helix_dev *d = &m->ad;
    d->q = c; d->k = c + BmL * cols * es; d->v = c + 2 * BmL * cols * es; c += helix_al64(dp->attn.qkv_bytes);
    d->o = c; c += helix_al64(dp->attn.o_bytes);
    d->exch = c; c += helix_al64(dp->attn.exchange_bytes);
    m->hidden = c; c += helix_al64(dp->hidden_bytes);
    d->work = c; m->fbuf = (float *)c; c += helix_al64(dp->kernel_bytes);
    m->partial = d->agg = c; m->scratch = c + helix_al64(BmL * D * es); c += helix_al64(dp->partial_bytes);
    m->out = d->out = dp->out_bytes ? c : NULL;
    return HELIX_OK;
}

/* Every device fills its own layers' shards (from the loader, or cut from
 * full weights); all agree it worked before anyone goes on. */
static helix_status load_shards(mdev *m, helix_layer_loader load, void *ctx, helix_err *err)
{
    const helix_model_device_plan *dp = &m->dp;
    helix_err lerr = {{0}};
    helix_status ls = HELIX_OK;
    for (int64_t l = dp->layer_begin; l < dp->layer_end && !ls; l++)
        ls = load(ctx, m->p, dp->trank, l, m->t, &m->ls[l - dp->layer_begin], &lerr);
    int any = 0;
    helix_status st = helix_comm_any(m->world, ls != HELIX_OK, &any);
    if (!st && any) st = ls ? ls : HELIX_ERR_ABORTED;
    if (st && ls) helix_errf(err, st, "device %d: loading weights: %.400s", m->world->rank, lerr.msg);
    else if (st) helix_errf(err, st, "device %d: another device could not load its weights", m->world->rank);
    return st;
}

/* ------------------------------------------------------------- block */

/* Sum the partial products [Bm*L, D] over the tensor group, booked to ph. */
static helix_status allreduce(mdev *m, helix_phase ph)
{
    double t0 = helix_exec_phase(&m->ad, ph);
    helix_status st = helix_comm_allreduce_sum(m->tg, m->partial, m->p->Bm * m->p->model.seq * m->p->D, m->t, m->scratch);
    helix_exec_phase_end(&m->ad, ph, t0);
    return st;
}

/* One block on the residual stream a. Pre-LN normalises into xn before
 * each sub-layer; post-LN feeds a itself and normalises a in place after
 * each residual add (layernorm reads a row before it writes it). */
static helix_status block(mdev *m, const layer_shard *s, void *a)
{
    const helix_model_plan *p = m->p;
    const int64_t D = p->D, fc = p->fcols, rows = p->Bm * p->model.seq;
    const int pre = p->model.norm == HELIX_NORM_PRE;
    helix_dev *d = &m->ad;
    helix_status st;
    double t0;
    if (pre) {
        t0 = helix_exec_phase(&m->ad, HELIX_PHASE_NORM);
        st = layernorm(m, a, s->ln1_g, s->ln1_b, m->xn, rows);
        helix_exec_phase_end(&m->ad, HELIX_PHASE_NORM, t0);
        if (st) return st;
    }

    d->wq = s->wq; d->wk = s->wk; d->wv = s->wv; d->wo = s->wo;
    d->bq = s->bq; d->bk = s->bk; d->bv = s->bv; d->bo = s->bo;
    d->x = pre ? m->xn : a;
    if ((st = helix_exec_attention_core(d, m->partial)) || (st = allreduce(m, HELIX_PHASE_REDUCE))) return st;

    t0 = helix_exec_phase(&m->ad, HELIX_PHASE_NORM);
    st = residual(m, a, m->partial, rows);
    if (!st && pre) st = layernorm(m, a, s->ln2_g, s->ln2_b, m->xn, rows);
    else if (!st) st = layernorm(m, a, s->ln1_g, s->ln1_b, a, rows);      /* post: a = LN1(a); the MLP reads a */
    helix_exec_phase_end(&m->ad, HELIX_PHASE_NORM, t0);
    if (st) return st;
    void *mlp_in = pre ? m->xn : a;

    t0 = helix_exec_phase(&m->ad, HELIX_PHASE_MLP);
    helix_backend *be = d->be;
    if (!(st = helix_exec_gemm(d, rows, fc, D, mlp_in, D, s->w1, fc, s->b1, m->hidden, fc)) &&
        !(st = be->ops->activate(be, p->model.act, m->t, m->hidden, rows, fc, m->fbuf + 3 * D)))
        st = helix_exec_gemm(d, rows, D, fc, m->hidden, fc, s->w2, D, s->b2, m->partial, D);
    helix_exec_phase_end(&m->ad, HELIX_PHASE_MLP, t0);
    if (st || (st = allreduce(m, HELIX_PHASE_MLP_REDUCE))) return st;

    t0 = helix_exec_phase(&m->ad, HELIX_PHASE_NORM);
    st = residual(m, a, m->partial, rows);
    if (!st && !pre) st = layernorm(m, a, s->ln2_g, s->ln2_b, a, rows);
    helix_exec_phase_end(&m->ad, HELIX_PHASE_NORM, t0);
    return st;
}

/* The attention block alone: the core, then W_O's partial products summed
 * onto rank 0, or the heads concatenated onto rank 0 (d->out). */
static helix_status attention_block(mdev *m, const layer_shard *s, void *a)
{
    helix_dev *d = &m->ad;
    const helix_plan *ap = &m->p->attn;
    d->wq = s->wq; d->wk = s->wk; d->wv = s->wv; d->wo = s->wo;
    d->bq = s->bq; d->bk = s->bk; d->bv = s->bv; d->bo = s->bo;
    d->x = a;
    helix_status st = helix_exec_attention_core(d, ap->cfg.out_proj ? m->partial : NULL);
    if (st) return st;
    if (!ap->cfg.out_proj) return helix_exec_concat_heads(d);
    double t0 = helix_exec_phase(d, HELIX_PHASE_REDUCE);
    st = helix_comm_reduce_sum(m->tg, m->partial, m->out, ap->cfg.batch * ap->cfg.seq * ap->D, m->t, 0, m->scratch);
    helix_exec_phase_end(d, HELIX_PHASE_REDUCE, t0);
    return st;
}

/* ------------------------------------------------------ communicators */

/* Tensor group (all ranks of a stage), the attention row/column inside it,
 * and for pipelines 2-rank communicators per stage boundary: boundary b
 * joins stage b (key 0, the sender) and stage b+1, tensor rank to tensor
 * rank. Even and odd boundaries need separate splits (a middle stage is in
 * two pairs). Ranks outside a pair get a communicator of their own. */
static helix_status make_comms(mdev *m)
{
    const int64_t T = m->p->T, S = m->p->S, P = m->p->P, s = m->dp.stage, r = m->dp.trank;
    const int rank = m->world->rank;
    helix_status st;
    if ((st = helix_comm_split(m->world, (int)s, (int)r, &m->tg))) return st;
    const helix_device_plan *ap = &m->dp.attn;
    if ((st = helix_comm_split(m->tg, (int)ap->i, (int)ap->j, &m->ad.row)) ||
        (st = helix_comm_split(m->tg, (int)ap->j, (int)ap->i, &m->ad.col)))
        return st;
    m->ad.world = m->tg;
    if (S == 1) return HELIX_OK;
    for (int parity = 0; parity < 2; parity++) {
        /* boundary b with b % 2 == parity: stage b sends, stage b+1 receives */
        int64_t b = -1;
        int key = 0;
        if (s % 2 == parity && s + 1 < S) { b = s; key = 0; }
        else if (s > 0 && (s - 1) % 2 == parity) { b = s - 1; key = 1; }
        int color = b >= 0 ? (int)(b * T + r) : (int)(P + rank);
        helix_comm_t **dst = parity ? &m->pair_b : &m->pair_a;
        if ((st = helix_comm_split(m->world, color, key, dst))) return st;
        if (b == s) m->next = *dst;
        else if (b >= 0) m->prev = *dst;
    }
    const int in_out = rank == 0 || (s == S - 1 && r == 0);
    return helix_comm_split(m->world, in_out ? 0 : 1 + rank, rank == 0 ? 0 : 1, &m->outc);
}

/* ----------------------------------------------------------- the pass */

/* y: f32 (layers) or the run's storage type (attention block: what the
 * reduce or the gather left in `out`, as it is). */
static helix_status forward(mdev *m, const float *x, void *y, helix_device_stats *stats)
{
    const helix_model_plan *p = m->p;
    const helix_model_device_plan *dp = &m->dp;
    const int64_t D = p->D, S = p->S, rows = p->Bm * p->model.seq;
    const size_t chunk = (size_t)(rows * D) * m->es;
    const int rank = m->world->rank;
    helix_status st;
    int any = 0;

    helix_backend *be = m->ad.be;
    if ((st = helix_comm_any(m->world, 0, &any))) return st;     /* start together */
    const double start = be->ops->now(be);
    double t0;
    for (int64_t k = 0; k < p->mb; k++) {
        char *a = m->act;
        if (dp->stage == 0) {            /* micro-batch k of X streams in from rank 0 */
            t0 = helix_exec_phase(&m->ad, HELIX_PHASE_INPUT);
            st = rank == 0 ? be->ops->upload_f32(be, a, m->t, x + k * rows * D, rows * D) : HELIX_OK;
            if (!st) st = helix_comm_bcast(m->tg, a, chunk, 0);
            helix_exec_phase_end(&m->ad, HELIX_PHASE_INPUT, t0);
        } else {
            t0 = helix_exec_phase(&m->ad, HELIX_PHASE_P2P);
            st = helix_comm_bcast(m->prev, a, chunk, 0);
            if (k == 0) stats->bubble_s += be->ops->now(be) - t0;     /* pipeline fill */
            else helix_exec_phase_end(&m->ad, HELIX_PHASE_P2P, t0);
        }
        if (st) return st;
        for (int64_t l = 0; l < dp->layer_end - dp->layer_begin; l++)
            if ((st = m->attn_only ? attention_block(m, &m->ls[l], a) : block(m, &m->ls[l], a))) return st;
        if (m->attn_only) {
            if (rank == 0 && y && (st = be->ops->copy(be, y, m->out, (int64_t)chunk, HELIX_COPY_D2H))) return st;
        } else if (dp->stage < S - 1) {
            t0 = helix_exec_phase(&m->ad, HELIX_PHASE_P2P);
            st = helix_comm_bcast(m->next, a, chunk, 0);
            helix_exec_phase_end(&m->ad, HELIX_PHASE_P2P, t0);
            if (st) return st;
        } else if (m->out) {
            if ((st = be->ops->copy(be, m->out + k * chunk, a, (int64_t)chunk, HELIX_COPY_D2D))) return st;
        } else if (rank == 0 && y) {
            if ((st = be->ops->download_f32(be, (float *)y + k * rows * D, a, m->t, rows * D))) return st;
        }
    }
    if (S > 1) {
        t0 = be->ops->now(be);
        if ((st = helix_comm_any(m->world, 0, &any))) return st;     /* end together */
        if (dp->stage < S - 1) stats->bubble_s += be->ops->now(be) - t0;   /* pipeline drain */
        /* Y from the last stage to rank 0, a micro-batch at a time */
        t0 = helix_exec_phase(&m->ad, HELIX_PHASE_OUTPUT);
        for (int64_t k = 0; k < p->mb && st == HELIX_OK; k++) {
            st = helix_comm_bcast(m->outc, rank == 0 ? m->act : m->out + k * chunk, chunk, 1);
            if (st == HELIX_OK && rank == 0 && y)
                st = be->ops->download_f32(be, (float *)y + k * rows * D, m->act, m->t, rows * D);
        }
        helix_exec_phase_end(&m->ad, HELIX_PHASE_OUTPUT, t0);
        if (st) return st;
    }
    stats->wall_s = be->ops->now(be) - start;
    return HELIX_OK;
}

/* One device's pass of plan p over world: the shards come from load(ctx). */
static helix_status run_device(const helix_model_plan *p, helix_comm_t *world, helix_layer_loader load, void *ctx,
                               const float *x, void *y, helix_device_stats *stats, helix_err *err)
{
    helix_device_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    mdev m;
    memset(&m, 0, sizeof m);
    m.p = p;
    m.world = world;
    m.t = p->model.dtype;
    m.es = helix_dtype_size(m.t);
    m.tm = stats->time_s;
    m.attn_only = p->model.block == HELIX_BLOCK_ATTENTION;
    helix_comm_counters *saved = world->counters;
    world->counters = &m.ctr;
    helix_model_plan_device(p, world->rank, &m.dp);
    helix_dev *d = &m.ad;
    d->plan = &p->attn; d->dp = m.dp.attn; d->t = m.t; d->es = m.es; d->ctr = &m.ctr; d->tm = stats->time_s;
    helix_backend *be = d->be = helix_backend_cpu();

    /* one allocation, the size the plan computed; all ranks agree it worked */
    char *arena = NULL;
    helix_status ast = be->ops->alloc(be, m.dp.peak_bytes, (void **)&arena);
    int any_fail = 0;
    helix_status st = helix_comm_any(world, ast != HELIX_OK || arena == NULL, &any_fail);
    if (st || any_fail) {
        if (!arena) helix_errf(err, HELIX_ERR_NOMEM, "device %d: could not allocate %lld bytes", world->rank, (long long)m.dp.peak_bytes);
        else helix_errf(err, HELIX_ERR_NOMEM, "device %d: another device could not allocate its memory", world->rank);
        be->ops->free(be, arena);
        world->counters = saved;
        return st ? st : HELIX_ERR_NOMEM;
    }
    if (!be->ops->host_memory) {
        st = helix_errf(err, HELIX_ERR_UNSUPPORTED, "backend %s: weight shards for memory the host cannot address are not written yet",
                        be->ops->name);
    } else if ((st = be->ops->memset(be, arena, 0, m.dp.peak_bytes))) {   /* page faults belong to setup */
        helix_errf(err, st, "device %d: could not clear its arena", world->rank);
    } else if ((st = carve(&m, arena))) {
        helix_errf(err, st, "device %d: out of memory for bookkeeping", world->rank);
    } else if ((st = make_comms(&m))) {
        helix_errf(err, st, "device %d: could not create the layout's communicators", world->rank);
    } else if ((st = load_shards(&m, load, ctx, err))) {
        /* err says which device */
    } else if ((st = forward(&m, x, y, stats))) {
        helix_errf(err, st, "device %d: %s in phase %s", world->rank, helix_status_str(st), helix_phase_name(m.ctr.phase));
    }
    memcpy(stats->phase, m.ctr.bytes, sizeof m.ctr.bytes);
    stats->arena_bytes = m.dp.peak_bytes;
    stats->peak_rss_bytes = helix_peak_rss_bytes();
    helix_comm_free(m.outc);
    helix_comm_free(m.pair_a);
    helix_comm_free(m.pair_b);
    helix_comm_free(d->row);
    helix_comm_free(d->col);
    helix_comm_free(m.tg);
    free(m.ls);
    be->ops->free(be, arena);
    world->counters = saved;
    return st;
}

static helix_status check_model(const helix_model_plan *p, int ranks, const helix_model_weights *w, helix_err *err)
{
    if (ranks != p->P)
        return helix_errf(err, HELIX_ERR_INVALID, "%d ranks, but the layout needs %lld devices", ranks, (long long)p->P);
    if (p->model.block != HELIX_BLOCK_LAYER)
        return helix_errf(err, HELIX_ERR_INVALID, "this plan is for one attention layer (helix_device_run)");
    if (!w || w->D != p->D || w->F != p->F || w->layers != p->model.layers || (!w->layer && !w->load))
        return helix_errf(err, HELIX_ERR_INVALID, "weights do not match the model (D=%lld F=%lld layers=%lld; plan D=%lld F=%lld layers=%lld)",
                          (long long)(w ? w->D : 0), (long long)(w ? w->F : 0), (long long)(w ? w->layers : 0),
                          (long long)p->D, (long long)p->F, (long long)p->model.layers);
    return HELIX_OK;
}

/* The attention weights fit the plan; mp: its one-layer attention plan. */
static helix_status check_attention(const helix_plan *plan, int ranks, const helix_weights *w, helix_model_plan *mp,
                                    helix_err *err)
{
    const helix_config *cfg = &plan->cfg;
    if (ranks != plan->P)
        return helix_errf(err, HELIX_ERR_INVALID, "%d ranks, but the grid n x m = %lld x %lld needs %lld", ranks,
                          (long long)cfg->groups, (long long)cfg->slices, (long long)plan->P);
    if (w->D != plan->D || (!w->load && (!w->wq || !w->wk || !w->wv || (cfg->out_proj && !w->wo) ||
        (cfg->bias && (!w->bq || !w->bk || !w->bv || (cfg->out_proj && !w->bo))))))
        return helix_errf(err, HELIX_ERR_INVALID, "weights do not match the plan (D=%lld, plan D=%lld, W_O %s, biases %s)",
                          (long long)w->D, (long long)plan->D, cfg->out_proj ? "required" : "unused",
                          cfg->bias ? "required" : "unused");
    return helix_model_plan_attention(cfg, mp, err);
}

helix_status helix_model_device_run(const helix_model_plan *p, helix_comm_t *world, const helix_model_weights *w,
                                    const float *x, float *y, helix_model_stats *stats, helix_err *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    helix_status st = check_model(p, world->size, w, err);
    if (st) return st;
    return run_device(p, world, w->load ? w->load : helix_shards_from_full, w->load ? w->load_ctx : (void *)w, x, y,
                      stats, err);
}

helix_status helix_device_run(const helix_plan *plan, helix_comm_t *world, const helix_weights *w, const float *x,
                              void *y, helix_device_stats *stats, helix_err *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    helix_model_plan mp;
    helix_status st = check_attention(plan, world->size, w, &mp, err);
    if (st) return st;
    return run_device(&mp, world, helix_shards_attention, (void *)w, x, y, stats, err);
}

/* All P devices of a job as threads of this process. */
typedef struct {
    const helix_model_plan *p;
    helix_layer_loader load;
    void *ctx;
    const float *x;
    void *y;
    helix_device_stats *stats;
} grid_job;

static helix_status job_rank(void *ctx, helix_comm_t *comm, int rank, helix_err *err)
{
    grid_job *j = (grid_job *)ctx;
    return run_device(j->p, comm, j->load, j->ctx, rank == 0 ? j->x : NULL, rank == 0 ? j->y : NULL,
                      j->stats ? &j->stats[rank] : NULL, err);
}

helix_status helix_grid_run(const helix_plan *plan, const helix_weights *w, const float *x, void *y,
                            int threads, helix_device_stats *stats, helix_err *err)
{
    helix_model_plan mp;
    helix_status st = check_attention(plan, (int)plan->P, w, &mp, err);
    if (st) return st;
    grid_job j = {&mp, helix_shards_attention, (void *)w, x, y, stats};
    return helix_exec_grid((int)mp.P, threads, job_rank, &j, err);
}

helix_status helix_model_grid_run(const helix_model_plan *p, const helix_model_weights *w, const float *x, float *y,
                                  int threads, helix_model_stats *stats, helix_err *err)
{
    helix_status st = check_model(p, (int)p->P, w, err);
    if (st) return st;
    grid_job j = {p, w->load ? w->load : helix_shards_from_full, w->load ? w->load_ctx : (void *)w, x, y, stats};
    return helix_exec_grid((int)p->P, threads, job_rank, &j, err);
}
