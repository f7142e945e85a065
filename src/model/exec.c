/* exec.c (model) — one device's forward pass through whole layers, for
 * either layout (helix_model.h): take the shards of its layers, receive
 * X (stage 0) or each micro-batch from the previous stage, run its blocks
 * (LN, attention core of helix.h, all-reduce, residual, LN, MLP,
 * all-reduce, residual), hand the micro-batch on, and finally return Y to
 * rank 0. Micro-batches of X stream in from rank 0 one at a time. One
 * arena of exactly the plan's size; every phase timed and its
 * bytes counted. */
#include "helix_model.h"
#include "../exec/exec-impl.h"
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
    const int bias = p->model.bias, t0 = dp->trank == 0;
    m->ls = calloc((size_t)(nl > 0 ? nl : 1), sizeof *m->ls);
    if (!m->ls) return HELIX_ERR_NOMEM;
    char *c = arena;
#define TAKE(ptr, n) do { (ptr) = c; c += (n) * es; } while (0)
    for (int64_t l = 0; l < nl; l++) {
        layer_shard *s = &m->ls[l];
        TAKE(s->wq, D * cols); TAKE(s->wk, D * cols); TAKE(s->wv, D * cols);
        if (bias) { TAKE(s->bq, cols); TAKE(s->bk, cols); TAKE(s->bv, cols); }
        TAKE(s->wo, cols * D);
        if (bias && t0) TAKE(s->bo, D);
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
    m->partial = c; m->scratch = c + helix_al64(BmL * D * es); c += helix_al64(dp->partial_bytes);
    m->out = dp->out_bytes ? c : NULL;
    return HELIX_OK;
}

/* The loader over full f32 weights: cut this device's shards of layer l. */
static helix_status shard_full(void *ctx, const helix_model_plan *p, int64_t r, int64_t l, helix_dtype t,
                               const layer_shard *s, helix_err *err)
{
    (void)err;
    const helix_layer_weights *w = &((const helix_model_weights *)ctx)->layer[l];
    const int64_t D = p->D, F = p->F, fc = p->fcols;
    const size_t es = helix_dtype_size(t);
    const helix_plan *ap = &p->attn;
    helix_shard_cols(ap, r, w->wq, s->wq, t);
    helix_shard_cols(ap, r, w->wk, s->wk, t);
    helix_shard_cols(ap, r, w->wv, s->wv, t);
    helix_shard_rows(ap, r, w->wo, s->wo, t);
    if (s->bq) {
        helix_shard_bias(ap, r, w->bq, s->bq, t);
        helix_shard_bias(ap, r, w->bk, s->bk, t);
        helix_shard_bias(ap, r, w->bv, s->bv, t);
    }
    if (s->bo) helix_from_f32(t, w->bo, s->bo, D);
    helix_from_f32(t, w->ln1_g, s->ln1_g, D);
    helix_from_f32(t, w->ln1_b, s->ln1_b, D);
    helix_from_f32(t, w->ln2_g, s->ln2_g, D);
    helix_from_f32(t, w->ln2_b, s->ln2_b, D);
    for (int64_t k = 0; k < D; k++)          /* FC1 columns [r*fc, (r+1)*fc) */
        helix_from_f32(t, w->w1 + k * F + r * fc, (char *)s->w1 + (size_t)(k * fc) * es, fc);
    helix_from_f32(t, w->w2 + r * fc * D, s->w2, fc * D);   /* FC2 rows, contiguous */
    if (s->b1) helix_from_f32(t, w->b1 + r * fc, s->b1, fc);
    if (s->b2) helix_from_f32(t, w->b2, s->b2, D);
    return HELIX_OK;
}

/* Every device fills its own layers' shards (from the loader, or cut from
 * full weights); all agree it worked before anyone goes on. */
static helix_status load_shards(mdev *m, const helix_model_weights *w, helix_err *err)
{
    const helix_model_device_plan *dp = &m->dp;
    helix_layer_loader load = w->load ? w->load : shard_full;
    void *ctx = w->load ? w->load_ctx : (void *)w;
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

static helix_status forward(mdev *m, const float *x, float *y, helix_model_stats *stats)
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
            if ((st = block(m, &m->ls[l], a))) return st;
        if (dp->stage < S - 1) {
            t0 = helix_exec_phase(&m->ad, HELIX_PHASE_P2P);
            st = helix_comm_bcast(m->next, a, chunk, 0);
            helix_exec_phase_end(&m->ad, HELIX_PHASE_P2P, t0);
            if (st) return st;
        } else if (m->out) {
            if ((st = be->ops->copy(be, m->out + k * chunk, a, (int64_t)chunk, HELIX_COPY_D2D))) return st;
        } else if (rank == 0 && y) {
            if ((st = be->ops->download_f32(be, y + k * rows * D, a, m->t, rows * D))) return st;
        }
    }
    t0 = be->ops->now(be);
    if ((st = helix_comm_any(m->world, 0, &any))) return st;     /* end together */
    if (S > 1 && dp->stage < S - 1) stats->bubble_s += be->ops->now(be) - t0;   /* pipeline drain */
    if (S > 1) {
        /* Y from the last stage to rank 0, a micro-batch at a time */
        t0 = helix_exec_phase(&m->ad, HELIX_PHASE_OUTPUT);
        for (int64_t k = 0; k < p->mb && st == HELIX_OK; k++) {
            st = helix_comm_bcast(m->outc, rank == 0 ? m->act : m->out + k * chunk, chunk, 1);
            if (st == HELIX_OK && rank == 0 && y) st = be->ops->download_f32(be, y + k * rows * D, m->act, m->t, rows * D);
        }
        helix_exec_phase_end(&m->ad, HELIX_PHASE_OUTPUT, t0);
        if (st) return st;
    }
    stats->wall_s = be->ops->now(be) - start;
    return HELIX_OK;
}

helix_status helix_model_device_run(const helix_model_plan *p, helix_comm_t *world, const helix_model_weights *w,
                                    const float *x, float *y, helix_model_stats *stats, helix_err *err)
{
    helix_model_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (world->size != p->P)
        return helix_errf(err, HELIX_ERR_INVALID, "%d ranks, but the layout needs %lld devices", world->size, (long long)p->P);
    if (!w || w->D != p->D || w->F != p->F || w->layers != p->model.layers || (!w->layer && !w->load))
        return helix_errf(err, HELIX_ERR_INVALID, "weights do not match the model (D=%lld F=%lld layers=%lld; plan D=%lld F=%lld layers=%lld)",
                          (long long)(w ? w->D : 0), (long long)(w ? w->F : 0), (long long)(w ? w->layers : 0),
                          (long long)p->D, (long long)p->F, (long long)p->model.layers);
    mdev m;
    memset(&m, 0, sizeof m);
    m.p = p;
    m.world = world;
    m.t = p->model.dtype;
    m.es = helix_dtype_size(m.t);
    m.tm = stats->time_s;
    helix_comm_counters *saved = world->counters;
    world->counters = &m.ctr;
    helix_model_plan_device(p, world->rank, &m.dp);
    helix_dev *d = &m.ad;
    d->plan = &p->attn; d->dp = m.dp.attn; d->t = m.t; d->es = m.es; d->ctr = &m.ctr; d->tm = stats->time_s;
    helix_backend *be = d->be = helix_backend_cpu();

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
    } else if ((st = carve(&m, arena))) {
        helix_errf(err, st, "device %d: out of memory for bookkeeping", world->rank);
    } else if ((st = make_comms(&m))) {
        helix_errf(err, st, "device %d: could not create the layout's communicators", world->rank);
    } else if ((st = load_shards(&m, w, err))) {
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

typedef struct {
    const helix_model_plan *p;
    const helix_model_weights *w;
    const float *x;
    float *y;
    helix_model_stats *stats;
} model_job;

static helix_status model_rank(void *ctx, helix_comm_t *comm, int rank, helix_err *err)
{
    model_job *j = (model_job *)ctx;
    return helix_model_device_run(j->p, comm, j->w, rank == 0 ? j->x : NULL, rank == 0 ? j->y : NULL,
                                  j->stats ? &j->stats[rank] : NULL, err);
}

helix_status helix_model_grid_run(const helix_model_plan *p, const helix_model_weights *w, const float *x, float *y,
                                  int threads, helix_model_stats *stats, helix_err *err)
{
    model_job j = {p, w, x, y, stats};
    return helix_exec_grid((int)p->P, threads, model_rank, &j, err);
}
