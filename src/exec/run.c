/* run.c — the one executor: it runs a device's program (helix_program.h)
 * step by step, for every plan: attention-only (`helix run`) or whole
 * layers, helix n x m or TP x PP. It allocates the arena the plan sized,
 * makes the communicators the program names, has every device fill its
 * own layer shards (from a loader, or cut from full weights), then
 * dispatches each step: compute, copies and memory to the backend
 * (helix_backend.h), collectives to the communicator (helix_comm.h). Each
 * step's time goes to its phase (or the pipeline bubble) by the backend's
 * clock; the communicator counts each step's bytes, which the caller
 * compares with the program's prediction. */
#include "helix_program.h"
#include "exec-impl.h"
#include "../core/err-impl.h"
#include "../core/util-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const helix_model_plan *p;
    helix_model_device_plan dp;
    helix_program prog;
    helix_comm_t *world, *g[HELIX_NGROUPS], *pair_a, *pair_b;
    helix_backend *be;
    helix_comm_counters ctr;
    char *arena;
} mdev;

/* ------------------------------------------------------ communicators */

/* Tensor group (all ranks of a stage), the attention row/column inside it,
 * and for pipelines 2-rank communicators per stage boundary: boundary b
 * joins stage b (key 0, the sender) and stage b+1, tensor rank to tensor
 * rank. Even and odd boundaries need separate splits (a middle stage is in
 * two pairs). Ranks outside a pair get a communicator of their own. */
static helix_status make_comms(mdev *m)
{
    const int64_t T = m->p->T, S = m->p->S, P = m->p->P, Pr = m->p->Pr, s = m->dp.stage, r = m->dp.trank;
    const int64_t q = m->dp.replica, q0 = q * Pr;
    const int rank = m->world->rank;
    helix_status st;
    helix_comm_t **g = m->g;
    g[HELIX_GROUP_WORLD] = m->world;
    if ((st = helix_comm_split(m->world, (int)(q * S + s), (int)r, &g[HELIX_GROUP_TENSOR]))) return st;
    const helix_device_plan *ap = &m->dp.attn;
    if ((st = helix_comm_split(g[HELIX_GROUP_TENSOR], (int)ap->i, (int)ap->j, &g[HELIX_GROUP_ROW])) ||
        (st = helix_comm_split(g[HELIX_GROUP_TENSOR], (int)ap->j, (int)ap->i, &g[HELIX_GROUP_COL])))
        return st;
    /* the same place in every replica */
    if (m->p->R > 1 && (st = helix_comm_split(m->world, (int)(rank - q0), (int)q, &g[HELIX_GROUP_DP]))) return st;
    if (S == 1) return HELIX_OK;
    for (int parity = 0; parity < 2; parity++) {
        /* boundary b with b % 2 == parity: stage b sends, stage b+1 receives */
        int64_t b = -1;
        int key = 0;
        if (s % 2 == parity && s + 1 < S) { b = s; key = 0; }
        else if (s > 0 && (s - 1) % 2 == parity) { b = s - 1; key = 1; }
        int color = b >= 0 ? (int)(q0 + b * T + r) : (int)(P + rank);
        helix_comm_t **dst = parity ? &m->pair_b : &m->pair_a;
        if ((st = helix_comm_split(m->world, color, key, dst))) return st;
        if (b == s) g[HELIX_GROUP_NEXT] = *dst;
        else if (b >= 0) g[HELIX_GROUP_PREV] = *dst;
    }
    const int home = rank == q0, in_out = home || (s == S - 1 && r == 0);
    return helix_comm_split(m->world, in_out ? (int)q : (int)(P + rank), home ? 0 : 1, &g[HELIX_GROUP_OUT]);
}

/* Each communicator learns its members' nodes (helix_group_nodes, as the
 * program's prediction does). Every device walks the groups in the same
 * order, so the collective calls pair up: rows and columns are disjoint,
 * pipeline pairs form a chain. */
static helix_status set_nodes(mdev *m)
{
    if (m->p->layout.ranks_per_node <= 0) return HELIX_OK;
    int *node = malloc(sizeof(int) * (size_t)m->p->P);
    helix_status st = node ? HELIX_OK : HELIX_ERR_NOMEM;
    for (int k = 0; k < HELIX_NGROUPS && !st; k++) {
        helix_comm_t *c = m->g[k];
        if (c && c->size > 1 && helix_group_nodes(m->p, m->world->rank, (helix_group)k, node) == c->size)
            st = helix_comm_set_nodes(c, node);
    }
    free(node);
    return st;
}

/* ------------------------------------------------------------ loading */

/* Every device fills its own layers' shards (where the program put them);
 * all agree it worked before anyone goes on. */
static helix_status load_shards(mdev *m, helix_layer_loader load, void *ctx, helix_err *err)
{
    const helix_model_device_plan *dp = &m->dp;
    helix_backend *be = m->be;
    helix_err lerr = {{0}};
    helix_status ls = HELIX_OK;
    /* memory the host cannot address: the shards (the arena's first
     * weight_bytes) are written into host memory, then copied over once */
    char *base = m->arena, *stage = NULL;
    if (!be->ops->host_memory && dp->weight_bytes > 0) {
        stage = calloc(1, (size_t)dp->weight_bytes);
        if (!stage) { ls = HELIX_ERR_NOMEM; helix_errf(&lerr, ls, "no host memory to stage %lld bytes of weights", (long long)dp->weight_bytes); }
        base = stage;
    }
    for (int64_t l = 0; l < m->prog.n_layers && !ls; l++) {
        const helix_shard_offsets *o = &m->prog.layer[l];
        const int64_t *off = &o->ln1_g;
        helix_layer_shard s;                  /* the same fields in the same order */
        _Static_assert(sizeof s / sizeof(void *) == sizeof *o / sizeof(int64_t), "shard fields");
        void **ptr = &s.ln1_g;
        for (size_t k = 0; k < sizeof s / sizeof(void *); k++) ptr[k] = off[k] >= 0 ? base + off[k] : NULL;
        ls = load(ctx, m->p, dp->trank, dp->layer_begin + l, m->p->model.dtype, &s, &lerr);
    }
    if (stage && !ls && (ls = be->ops->copy(be, m->arena, stage, dp->weight_bytes, HELIX_COPY_H2D)))
        helix_errf(&lerr, ls, "copying %lld bytes of weights to the %s backend's memory", (long long)dp->weight_bytes, be->ops->name);
    free(stage);
    int any = 0;
    helix_status st = helix_comm_any(m->world, ls != HELIX_OK, &any);
    if (!st && any) st = ls ? ls : HELIX_ERR_ABORTED;
    if (st && ls) helix_errf(err, st, "device %d: loading weights: %.400s", m->world->rank, lerr.msg);
    else if (st) helix_errf(err, st, "device %d: another device could not load its weights", m->world->rank);
    return st;
}

/* A device whose program reads X must have been given it; all agree. */
static helix_status needs_x(mdev *m, const float *x, helix_err *err)
{
    int missing = 0, any = 0;
    for (int64_t k = 0; k < m->prog.n_steps && !x; k++) missing |= m->prog.steps[k].a.mem == HELIX_MEM_X;
    helix_status st = helix_comm_any(m->world, missing, &any);
    if (st || !any) return st;
    if (missing)
        return helix_errf(err, HELIX_ERR_INVALID, "device %d reads the input X (%s) but was given none", m->world->rank,
                          m->p->layout.input_from_root ? "broadcast from rank 0" : "every first-stage device reads it");
    return helix_errf(err, HELIX_ERR_INVALID, "device %d: another device was given no input X", m->world->rank);
}

/* ---------------------------------------------------------- the steps */

typedef struct {
    const float *x;
    void *y;
} host_io;

static void *at(mdev *m, const host_io *io, helix_ref r)
{
    switch (r.mem) {
    case HELIX_MEM_ARENA: return m->arena + r.off;
    case HELIX_MEM_X: return io->x ? (char *)io->x + r.off : NULL;
    case HELIX_MEM_Y: return io->y ? (char *)io->y + r.off : NULL;
    default: return NULL;
    }
}

static helix_status run_step(mdev *m, const helix_step *s, const host_io *io)
{
    helix_backend *be = m->be;
    const helix_backend_ops *ops = be->ops;
    const helix_config *cfg = &m->p->attn.cfg;
    void *a = at(m, io, s->a), *b = at(m, io, s->b), *c = at(m, io, s->c), *d = at(m, io, s->d), *e = at(m, io, s->e);
    void *work = m->arena + m->prog.work;
    helix_comm_t *g = s->kind >= HELIX_STEP_BCAST ? m->g[s->group] : NULL;
    const size_t *cnt = m->prog.pool ? m->prog.pool + s->counts : NULL;   /* v-collectives only */
    const int64_t gs = s->group_size;
    switch (s->kind) {
    case HELIX_STEP_GEMM: {
        const helix_gemm_args ga = {s->M, s->N, s->K, s->t, s->t, s->t, a, b, d, c, s->lda, s->ldb, s->ldc};
        return ops->gemm(be, &ga, work);
    }
    case HELIX_STEP_ATTENTION: {
        helix_attn_args aa;
        memset(&aa, 0, sizeof aa);
        aa.B = cfg->batch; aa.Lq = s->Lq; aa.Lk = cfg->seq; aa.H = s->H; aa.width = s->width;
        aa.dtype = s->t; aa.q = a; aa.k = b; aa.v = c; aa.o = d;
        aa.scale = (float)m->p->attn.scale; aa.causal = cfg->causal; aa.q_pos0 = s->q_pos0; aa.kv_len = cfg->kv_len;
        helix_attn_args_dense(&aa);
        return ops->attention(be, &aa, work);
    }
    case HELIX_STEP_SCORES:
    case HELIX_STEP_SOFTMAX_V: {
        const helix_scores_args sa = {
            .B = cfg->batch, .L = cfg->seq, .H = s->H, .width = s->width, .dtype = s->t, .q = a, .k = b, .v = c, .o = d,
            .b = s->b_row, .q0 = s->q0, .nq = s->nq, .lk = s->lk, .scale = (float)m->p->attn.scale,
            .causal = cfg->causal, .kv_len = cfg->kv_len, .sc = (float *)e};
        return s->kind == HELIX_STEP_SCORES ? ops->partial_scores(be, &sa, work) : ops->softmax_v(be, &sa, work);
    }
    case HELIX_STEP_LAYERNORM: return ops->layernorm(be, s->t, a, b, c, d, s->M, s->N, work);
    case HELIX_STEP_ACTIVATE: return ops->activate(be, m->p->model.act, s->t, a, s->M, s->N, e);
    case HELIX_STEP_RESIDUAL: return ops->residual_add(be, s->t, a, b, s->M, s->N, work);
    case HELIX_STEP_UPLOAD: return ops->upload_f32(be, c, s->t, (const float *)a, s->n);
    case HELIX_STEP_DOWNLOAD:
        if (!c) return HELIX_OK;                                   /* the caller wants no Y */
        if (m->p->model.block == HELIX_BLOCK_ATTENTION)            /* Y as stored */
            return ops->copy(be, c, a, s->n * (int64_t)helix_dtype_size(s->t), HELIX_COPY_D2H);
        return ops->download_f32(be, (float *)c, a, s->t, s->n);
    case HELIX_STEP_COPY: return ops->copy2d(be, c, s->ldc, a, s->lda, s->N, s->M, HELIX_COPY_D2D);
    case HELIX_STEP_BCAST: return helix_comm_bcast(g, a, (size_t)s->n, s->root);
    case HELIX_STEP_ALLGATHERV: return helix_comm_allgatherv(g, a, (size_t)s->n, c, cnt + 2 * gs, cnt + 3 * gs);
    case HELIX_STEP_ALLTOALLV: return helix_comm_alltoallv(g, a, cnt, cnt + gs, c, cnt + 2 * gs, cnt + 3 * gs);
    case HELIX_STEP_GATHERV: return helix_comm_gatherv(g, a, (size_t)s->n, c, cnt + 2 * gs, cnt + 3 * gs, s->root);
    case HELIX_STEP_ALLREDUCE: return helix_comm_allreduce_sum(g, a, s->n, s->t, d);
    case HELIX_STEP_REDUCE: return helix_comm_reduce_sum(g, a, c, s->n, s->t, s->root, d);
    case HELIX_STEP_REDUCE_SCATTER: return helix_comm_reduce_scatter_sum(g, a, s->n, s->N, s->t, d);
    case HELIX_STEP_BARRIER: {
        int any = 0;
        return helix_comm_any(g, 0, &any);
    }
    default: return HELIX_ERR_INTERNAL;
    }
}

helix_status helix_program_run_compute(const helix_model_plan *p, const helix_program *prog, void *arena, helix_backend *be)
{
    mdev m;
    memset(&m, 0, sizeof m);
    m.p = p;
    m.prog = *prog;
    m.be = be;
    m.arena = arena;
    const host_io io = {NULL, NULL};
    for (int64_t k = 0; k < prog->n_steps; k++) {
        if (!helix_step_is_compute(prog->steps[k].kind)) continue;
        helix_status st = run_step(&m, &prog->steps[k], &io);
        if (st) return st;
    }
    return HELIX_OK;
}

/* The program, step by step; each step's time to its phase or the bubble. */
static helix_status forward(mdev *m, const float *x, void *y, helix_device_stats *stats)
{
    helix_backend *be = m->be;
    const host_io io = {x, y};
    double start = be->ops->now(be);
    for (int64_t k = 0; k < m->prog.n_steps; k++) {
        const helix_step *s = &m->prog.steps[k];
        m->ctr.phase = s->phase;
        const double t0 = be->ops->now(be);
        helix_status st = run_step(m, s, &io);
        if (st) return st;
        const double t1 = be->ops->now(be);
        if (s->flags & HELIX_STEP_BUBBLE) stats->bubble_s += t1 - t0;
        else if (!(s->flags & HELIX_STEP_UNTIMED)) stats->time_s[s->phase] += t1 - t0;
        if (s->flags & HELIX_STEP_START) start = t1;
    }
    stats->wall_s = be->ops->now(be) - start;
    return HELIX_OK;
}

/* How an in-process engine reaches a backend's memory (exec-impl.h). */
static helix_status be_copy(void *ctx, void *dst, const void *src, size_t n)
{
    helix_backend *be = (helix_backend *)ctx;
    return be->ops->copy(be, dst, src, (int64_t)n, HELIX_COPY_D2D);
}

static helix_status be_sum_rows(void *ctx, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    helix_backend *be = (helix_backend *)ctx;
    return be->ops->sum_rows(be, rows, n_rows, n, t);
}

/* One device's pass of plan p over world on backend be (NULL: the CPU):
 * the shards come from load(ctx). */
static helix_status run_device(const helix_model_plan *p, helix_comm_t *world, helix_backend *be,
                               helix_layer_loader load, void *ctx, const float *x, void *y,
                               helix_device_stats *stats, helix_err *err)
{
    helix_device_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    mdev m;
    memset(&m, 0, sizeof m);
    m.p = p;
    m.world = world;
    helix_comm_counters *saved = world->counters;
    const int saved_native = world->native;
    world->counters = &m.ctr;
    helix_comm_set_native(world, p->layout.native_collectives);   /* the communicators split from it inherit it */
    if (!be) be = helix_backend_cpu();
    m.be = be;
    helix_status st = HELIX_OK;
    if (!be->ops->host_memory && (!world->ops->copy || !be->ops->sum_rows))
        st = helix_errf(err, HELIX_ERR_UNSUPPORTED, "device %d: the %s engine cannot reach the %s backend's memory "
                        "(in-process runs can; under MPI the GPU needs the NCCL engine)", world->rank, world->ops->name,
                        be->ops->name);
    if (!st) st = helix_program_build(p, world->rank, &m.prog, err);
    if (!st) m.dp = m.prog.dev;            /* the device's plan comes with its program */
    /* one allocation, the size the plan computed; all ranks agree it worked */
    helix_status ast = st ? st : be->ops->alloc(be, m.dp.peak_bytes, (void **)&m.arena);
    int any_fail = 0;
    helix_status cst = helix_comm_any(world, ast != HELIX_OK || m.arena == NULL, &any_fail);
    if (cst || any_fail) {
        if (st) { /* err says why */ }
        else if (!m.arena) helix_errf(err, HELIX_ERR_NOMEM, "device %d: could not allocate %lld bytes", world->rank, (long long)m.dp.peak_bytes);
        else helix_errf(err, HELIX_ERR_NOMEM, "device %d: another device could not allocate its memory", world->rank);
        be->ops->free(be, m.arena);
        helix_program_free(&m.prog);
        world->counters = saved;
        world->native = saved_native;
        return cst ? cst : st ? st : HELIX_ERR_NOMEM;
    }
    if ((st = be->ops->memset(be, m.arena, 0, m.dp.peak_bytes))) {   /* page faults belong to setup */
        helix_errf(err, st, "device %d: could not clear its arena", world->rank);
    } else if ((st = make_comms(&m)) || (st = set_nodes(&m))) {
        helix_errf(err, st, "device %d: could not create the layout's communicators", world->rank);
    } else if ((st = needs_x(&m, x, err))) {
        /* err says which device */
    } else if ((st = load_shards(&m, load, ctx, err))) {
        /* err says which device */
    } else if ((st = forward(&m, x, y, stats))) {
        helix_errf(err, st, "device %d: %s in phase %s", world->rank, helix_status_str(st), helix_phase_name(m.ctr.phase));
    }
    memcpy(stats->phase, m.ctr.bytes, sizeof m.ctr.bytes);
    stats->arena_bytes = m.dp.peak_bytes;
    stats->peak_rss_bytes = helix_peak_rss_bytes();
    for (int k = HELIX_GROUP_TENSOR; k < HELIX_NGROUPS; k++)
        if (k != HELIX_GROUP_PREV && k != HELIX_GROUP_NEXT) helix_comm_free(m.g[k]);
    helix_comm_free(m.pair_a);
    helix_comm_free(m.pair_b);
    helix_comm_set_nodes(world, NULL);       /* the caller's world, as it came */
    helix_program_free(&m.prog);
    be->ops->free(be, m.arena);
    world->counters = saved;
    world->native = saved_native;
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

helix_status helix_model_device_run_on(const helix_model_plan *p, helix_comm_t *world, helix_backend *be,
                                       const helix_model_weights *w, const float *x, float *y, helix_model_stats *stats,
                                       helix_err *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    helix_status st = check_model(p, world->size, w, err);
    if (st) return st;
    return run_device(p, world, be, w->load ? w->load : helix_shards_from_full, w->load ? w->load_ctx : (void *)w, x,
                      y, stats, err);
}

helix_status helix_model_device_run(const helix_model_plan *p, helix_comm_t *world, const helix_model_weights *w,
                                    const float *x, float *y, helix_model_stats *stats, helix_err *err)
{
    return helix_model_device_run_on(p, world, NULL, w, x, y, stats, err);
}

helix_status helix_device_run_on(const helix_plan *plan, helix_comm_t *world, helix_backend *be, const helix_weights *w,
                                 const float *x, void *y, helix_device_stats *stats, helix_err *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    helix_model_plan mp;
    helix_status st = check_attention(plan, world->size, w, &mp, err);
    if (st) return st;
    return run_device(&mp, world, be, helix_shards_attention, (void *)w, x, y, stats, err);
}

helix_status helix_device_run(const helix_plan *plan, helix_comm_t *world, const helix_weights *w, const float *x,
                              void *y, helix_device_stats *stats, helix_err *err)
{
    return helix_device_run_on(plan, world, NULL, w, x, y, stats, err);
}

/* All P devices of a job as threads of this process. */
typedef struct {
    const helix_model_plan *p;
    helix_layer_loader load;
    void *ctx;
    const float *x;
    void *y;
    helix_backend *const *be;
    helix_device_stats *stats;
} grid_job;

static helix_status job_rank(void *ctx, helix_comm_t *comm, int rank, helix_err *err)
{
    grid_job *j = (grid_job *)ctx;
    /* X is read-only: every device that reads it (the program says which) shares it */
    return run_device(j->p, comm, j->be ? j->be[rank] : NULL, j->load, j->ctx, j->x, rank == 0 ? j->y : NULL,
                      j->stats ? &j->stats[rank] : NULL, err);
}

/* The in-process engine reaches each device's memory through its backend. */
static helix_status grid(const grid_job *j, int threads, helix_err *err)
{
    const int P = (int)j->p->P;
    helix_comm_memory *mem = NULL;
    if (j->be) {
        if (!(mem = calloc((size_t)P, sizeof *mem))) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
        for (int r = 0; r < P; r++) {
            helix_backend *be = j->be[r];
            if (be && !be->ops->host_memory && be->ops->sum_rows)
                mem[r] = (helix_comm_memory){be_copy, be_sum_rows, be};
        }
    }
    helix_status st = helix_exec_grid(P, threads, job_rank, (void *)j, mem, err);
    free(mem);
    return st;
}

helix_status helix_grid_run_on(const helix_plan *plan, const helix_weights *w, const float *x, void *y, int threads,
                               helix_backend *const *be, helix_device_stats *stats, helix_err *err)
{
    helix_model_plan mp;
    helix_status st = check_attention(plan, (int)plan->P, w, &mp, err);
    if (st) return st;
    grid_job j = {&mp, helix_shards_attention, (void *)w, x, y, be, stats};
    return grid(&j, threads, err);
}

helix_status helix_grid_run(const helix_plan *plan, const helix_weights *w, const float *x, void *y,
                            int threads, helix_device_stats *stats, helix_err *err)
{
    return helix_grid_run_on(plan, w, x, y, threads, NULL, stats, err);
}

helix_status helix_model_grid_run_on(const helix_model_plan *p, const helix_model_weights *w, const float *x, float *y,
                                     int threads, helix_backend *const *be, helix_model_stats *stats, helix_err *err)
{
    helix_status st = check_model(p, (int)p->P, w, err);
    if (st) return st;
    grid_job j = {p, w->load ? w->load : helix_shards_from_full, w->load ? w->load_ctx : (void *)w, x, y, be, stats};
    return grid(&j, threads, err);
}

helix_status helix_model_grid_run(const helix_model_plan *p, const helix_model_weights *w, const float *x, float *y,
                                  int threads, helix_model_stats *stats, helix_err *err)
{
    return helix_model_grid_run_on(p, w, x, y, threads, NULL, stats, err);
}
