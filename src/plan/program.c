/* program.c — the plan as a program (helix_program.h): one device's
 * forward pass written out as steps, with every buffer an offset into the
 * arena the plan sized.
 *
 *   per micro-batch: X in (stage 0: upload on rank 0, broadcast over the
 *   tensor group) or from the previous stage (each tensor rank's 1/T slice,
 *   then an all-gather inside the stage); the device's layers; then its
 *   slice to the next stage, or kept (last stage, for rank 0), or Y on rank 0.
 *   layer block: [LN1] attention core, all-reduce, residual, LN, FC1, act,
 *   FC2, all-reduce, residual [, LN2]
 *   attention block: attention core, then W_O partials reduced onto rank 0
 *   or the heads concatenated onto rank 0
 *   attention core: Q/K/V GEMMs; sliced: one attention call; exact by
 *   regather: all-to-alls (whole heads, or K/V all-gathered and the
 *   queries split) around one attention call; exact by scores: per batch
 *   row and block of 64 queries, partial scores, all-reduce, softmax V;
 *   then the W_O GEMM
 *
 * The same code counts a program (steps == NULL: sizes and bytes only) and
 * writes it; the bytes of each collective follow helix_comm.h's convention
 * from the step's own counts. */
#include "helix_program.h"
#include "plan-impl.h"
#include "../core/err-impl.h"
#include "../core/util-impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const helix_model_plan *p;
    helix_model_device_plan dp;
    int64_t rank;
    helix_dtype t;
    int64_t es;
    /* output: steps == NULL counts only */
    helix_step *steps;
    int64_t n, cap;
    size_t *pool;
    int64_t np, pcap;
    int write, oom;
    helix_traffic *sum;
    double *msgs;             /* per phase, or NULL */
    int64_t gsize[HELIX_NGROUPS], grank[HELIX_NGROUPS];
    helix_comm_topo topo[HELIX_NGROUPS];   /* where each group's members sit */
    /* arena offsets */
    int64_t act, xn, q, k, v, o, exch, hidden, work, partial, scratch, out, gath;
    /* sequence parallel: this device's rows of the micro-batch */
    int sp, from_root;
    int64_t rb, rn;
    helix_shard_offsets *layer;
    /* the current layer's shards */
    const helix_shard_offsets *ls;
} em;

static helix_ref A(int64_t off) { return (helix_ref){HELIX_MEM_ARENA, off}; }
static const helix_ref NONE = {HELIX_MEM_NONE, 0};

/* ------------------------------------------------------------ emitting */

static size_t *pool_get(em *e, int64_t n, int64_t *at)
{
    *at = e->np;
    if (e->write && e->np + n > e->pcap) {
        int64_t cap = e->pcap ? 2 * e->pcap : 256;
        while (cap < e->np + n) cap *= 2;
        size_t *np = realloc(e->pool, sizeof(size_t) * (size_t)cap);
        if (!np) { e->oom = 1; return NULL; }
        e->pool = np;
        e->pcap = cap;
    }
    e->np += n;
    return e->write ? e->pool + *at : NULL;
}

/* What this device sends and receives in collective s, and its latency
 * rounds (helix_comm.h's convention, on the group's topology); cnt: the
 * v-collective's [4][size] counts */
static void traffic(helix_step *s, const size_t *cnt, const helix_comm_topo *t)
{
    const int64_t size = s->group_size;
    const size_t es = helix_dtype_size(s->t);
    helix_traffic z = {0, 0, 0, 0};
    int kind = -1;
    s->bytes = z;
    switch (s->kind) {
    case HELIX_STEP_BCAST: s->bytes = helix_traffic_bcast(t, s->n, s->root); kind = HELIX_COLL_BCAST; break;
    case HELIX_STEP_ALLGATHERV: s->bytes = helix_traffic_allgatherv(t, s->n, cnt + 2 * size); kind = HELIX_COLL_ALLGATHER; break;
    case HELIX_STEP_ALLTOALLV: s->bytes = helix_traffic_alltoallv(t, cnt, cnt + 2 * size); kind = HELIX_COLL_ALLTOALL; break;
    case HELIX_STEP_GATHERV: s->bytes = helix_traffic_gatherv(t, s->n, cnt + 2 * size, s->root); kind = HELIX_COLL_GATHER; break;
    case HELIX_STEP_ALLREDUCE: s->bytes = helix_traffic_allreduce(t, s->n, es); kind = HELIX_COLL_ALLREDUCE; break;
    case HELIX_STEP_REDUCE: s->bytes = helix_traffic_reduce(t, s->n, s->root, es); kind = HELIX_COLL_REDUCE; break;
    case HELIX_STEP_REDUCE_SCATTER:
        s->bytes = helix_traffic_reduce_scatter(t, s->n, s->N, es); kind = HELIX_COLL_REDUCE_SCATTER; break;
    default: break;
    }
    s->messages = kind >= 0 ? helix_comm_messages(t, kind, s->n) : 0;
}

/* Append s (in counting mode only count it and its bytes); cnt: a
 * v-collective's counts */
static void emit_with(em *e, helix_step s, const size_t *cnt)
{
    if (s.kind >= HELIX_STEP_BCAST && s.kind <= HELIX_STEP_BARRIER) {
        s.group_size = e->gsize[s.group];
        s.group_rank = e->grank[s.group];
        traffic(&s, cnt, &e->topo[s.group]);
        helix_traffic_add(&e->sum[s.phase], &s.bytes, 1);
        if (e->msgs) e->msgs[s.phase] += (double)s.messages;
    }
    if (!e->write) { e->n++; return; }
    if (e->n == e->cap) {
        int64_t cap = e->cap ? 2 * e->cap : 64;
        helix_step *ns = realloc(e->steps, sizeof *ns * (size_t)cap);
        if (!ns) { e->oom = 1; return; }
        e->steps = ns;
        e->cap = cap;
    }
    e->steps[e->n++] = s;
}

static void emit(em *e, helix_step s) { emit_with(e, s, NULL); }

/* v-collective counts: a [4][size] block (send counts, send displs, recv
 * counts, recv displs); in count mode a scratch block the caller frees */
typedef struct { size_t *v; int64_t at; size_t *heap; } counts;

static counts counts_new(em *e, int64_t size)
{
    counts c = {NULL, 0, NULL};
    if (e->write) {
        c.v = pool_get(e, 4 * size, &c.at);
        if (c.v) memset(c.v, 0, sizeof(size_t) * 4 * (size_t)size);   /* counts not set are 0 */
    } else {
        c.v = c.heap = calloc((size_t)(4 * size), sizeof(size_t));
    }
    if (!c.v) e->oom = 1;
    return c;
}

/* receive counts and displacements of total units split over `size`
 * members, unit bytes each: member q's share split(total, size, q) */
static void recv_split(counts *c, int64_t size, int64_t total, int64_t unit)
{
    for (int64_t q = 0; c->v && q < size; q++) {
        int64_t b, e;
        helix_split_range(total, size, q, &b, &e);
        c->v[2 * size + q] = (size_t)((e - b) * unit);
        c->v[3 * size + q] = (size_t)(b * unit);
    }
}

static void counts_done(em *e, helix_step s, counts *c)
{
    if (!c->v) return;
    s.counts = c->at;
    emit_with(e, s, c->v);
    free(c->heap);
}

static helix_step step(helix_step_kind k, helix_phase ph) { helix_step s; memset(&s, 0, sizeof s); s.kind = k; s.phase = ph; return s; }

static void copy2d(em *e, helix_phase ph, int64_t dst, int64_t dpitch, int64_t src, int64_t spitch, int64_t width,
                   int64_t rows)
{
    helix_step s = step(HELIX_STEP_COPY, ph);
    s.c = A(dst); s.a = A(src); s.ldc = dpitch; s.lda = spitch; s.N = width; s.M = rows;
    emit(e, s);
}

/* "wide" [rows][n][chunk] <-> "packed" [n][rows][chunk]; split: wide -> packed */
static void split_cols(em *e, helix_phase ph, int64_t src, int64_t dst, int64_t rows, int64_t n, int64_t chunk, int split)
{
    for (int64_t c = 0; c < n; c++) {
        const int64_t packed = (split ? dst : src) + c * rows * chunk, wide = (split ? src : dst) + c * chunk;
        if (split) copy2d(e, ph, packed, chunk, wide, n * chunk, chunk, rows);
        else copy2d(e, ph, wide, n * chunk, packed, chunk, chunk, rows);
    }
}

static void gemm(em *e, helix_phase ph, int64_t M, int64_t N, int64_t K, int64_t a, int64_t lda, int64_t b, int64_t ldb,
                 int64_t bias, int64_t c, int64_t ldc)
{
    helix_step s = step(HELIX_STEP_GEMM, ph);
    s.M = M; s.N = N; s.K = K; s.a = A(a); s.lda = lda; s.b = A(b); s.ldb = ldb;
    s.d = bias >= 0 ? A(bias) : NONE; s.c = A(c); s.ldc = ldc; s.t = e->t;
    s.flops = 2.0 * (double)M * (double)N * (double)K;
    emit(e, s);
}

static void attend(em *e, int64_t q, int64_t k, int64_t v, int64_t o, int64_t Lq, int64_t q_pos0, int64_t H, int64_t width)
{
    const helix_config *c = &e->p->attn.cfg;
    helix_step s = step(HELIX_STEP_ATTENTION, HELIX_PHASE_ATTENTION);
    s.a = A(q); s.b = A(k); s.c = A(v); s.d = A(o); s.Lq = Lq; s.q_pos0 = q_pos0; s.H = H; s.width = width; s.t = e->t;
    /* (query, key) pairs: query r sits at q_pos0 + r and, causal, sees keys 0..q_pos0+r */
    const double L = (double)c->seq, nq = (double)Lq;
    const double pairs = c->causal ? nq * (double)(q_pos0 + 1) + nq * (nq - 1) / 2 : nq * L;
    s.flops = 4.0 * (double)c->batch * pairs * (double)H * (double)width;
    if (H > 0 && Lq > 0) emit(e, s);
}

static void coll(em *e, helix_step_kind k, helix_phase ph, helix_group g, int root, helix_ref a, helix_ref c, int64_t n,
                 helix_dtype t, helix_ref scratch)
{
    helix_step s = step(k, ph);
    s.group = g; s.root = root; s.a = a; s.c = c; s.n = n; s.t = t; s.d = scratch;
    emit(e, s);
}

/* -------------------------------------------------------- attention core */

/* all-to-all along the row: chunk bytes to and from every peer, in peer order */
static void alltoall_even(em *e, helix_phase ph, int64_t send, int64_t recv, int64_t chunk, int64_t m)
{
    counts c = counts_new(e, m);
    for (int64_t q = 0; c.v && q < m; q++) {
        c.v[q] = c.v[2 * m + q] = (size_t)chunk;
        c.v[m + q] = c.v[3 * m + q] = (size_t)(q * chunk);
    }
    helix_step s = step(HELIX_STEP_ALLTOALLV, ph);
    s.group = HELIX_GROUP_ROW; s.a = A(send); s.c = A(recv);
    counts_done(e, s, &c);
}

static void regather_heads(em *e)
{
    const helix_plan *p = &e->p->attn;
    const int64_t m = p->cfg.slices, BL = p->cfg.batch * p->cfg.seq, es = e->es, hh = p->hg / m;
    const int64_t chunk = BL * hh * p->ds * es, full = BL * p->cols * es, row = hh * p->ds * es;
    const int64_t send = e->exch, recv = send + full, qf = recv + full, kf = qf + full, vf = kf + full, of = vf + full;
    const int64_t src[3] = {e->q, e->k, e->v}, dst[3] = {qf, kf, vf};
    for (int x = 0; x < 3; x++) {
        /* send[peer] = my slice of peer's heads: [BL, hh, ds] */
        for (int64_t q = 0; q < m; q++)
            copy2d(e, HELIX_PHASE_REGATHER, send + q * chunk, row, src[x] + q * row, p->hg * p->ds * es, row, BL);
        alltoall_even(e, HELIX_PHASE_REGATHER, send, recv, chunk, m);
        /* recv[peer] = slice peer of my heads -> [BL, hh, d] */
        split_cols(e, HELIX_PHASE_REGATHER, recv, dst[x], BL * hh, m, p->ds * es, 0);
    }
    attend(e, qf, kf, vf, of, p->cfg.seq, 0, hh, p->cfg.head_dim);
    split_cols(e, HELIX_PHASE_RETURN, of, send, BL * hh, m, p->ds * es, 1);
    alltoall_even(e, HELIX_PHASE_RETURN, send, recv, chunk, m);
    /* recv[peer] = peer's heads, my slice: into O's columns of heads peer*hh.. */
    for (int64_t q = 0; q < m; q++)
        copy2d(e, HELIX_PHASE_RETURN, e->o + q * row, p->hg * p->ds * es, recv + q * chunk, row, row, BL);
}

static void regather_queries(em *e)
{
    const helix_plan *p = &e->p->attn;
    const int64_t m = p->cfg.slices, B = p->cfg.batch, L = p->cfg.seq, es = e->es;
    const int64_t hg = p->hg, ds = p->ds, dd = p->cfg.head_dim;
    const int64_t nq = e->dp.attn.rg_q_end - e->dp.attn.rg_q_begin, q0 = e->dp.attn.rg_q_begin;
    const int64_t slice_row = hg * ds * es;               /* one token, all heads, one slice */
    int64_t send_bytes = B * L * p->cols * es;
    if (B * nq * hg * dd * es > send_bytes) send_bytes = B * nq * hg * dd * es;
    const int64_t whole = B * L * hg * dd * es;
    const int64_t send = e->exch, recv = send + send_bytes, kf = recv + whole, vf = kf + whole, qf = vf + whole,
                  of = qf + B * nq * hg * dd * es;
    /* K, V: all-gather the slices, then [m][B*L, hg, ds] -> [B*L, hg, d] */
    const int64_t kv[2] = {e->k, e->v}, kvf[2] = {kf, vf};
    for (int x = 0; x < 2; x++) {
        counts c = counts_new(e, m);
        for (int64_t q = 0; c.v && q < m; q++) {
            c.v[2 * m + q] = (size_t)(B * L * slice_row);
            c.v[3 * m + q] = (size_t)q * c.v[2 * m + q];
        }
        helix_step s = step(HELIX_STEP_ALLGATHERV, HELIX_PHASE_REGATHER);
        s.group = HELIX_GROUP_ROW; s.a = A(kv[x]); s.c = A(recv); s.n = B * L * slice_row;
        counts_done(e, s, &c);
        split_cols(e, HELIX_PHASE_REGATHER, recv, kvf[x], B * L * hg, m, ds * es, 0);
    }
    /* Q: peer q gets my slice of its query block; I get every slice of mine */
    int64_t off = 0;
    counts c = counts_new(e, m);
    for (int64_t q = 0; q < m; q++) {
        int64_t b0, e0;
        helix_split_range(L, m, q, &b0, &e0);
        if (c.v) {
            c.v[q] = (size_t)(B * (e0 - b0) * slice_row);
            c.v[m + q] = (size_t)off;
            c.v[2 * m + q] = (size_t)(B * nq * slice_row);
            c.v[3 * m + q] = (size_t)q * c.v[2 * m + q];
        }
        /* query rows b0..e0 of every batch row, side by side */
        copy2d(e, HELIX_PHASE_REGATHER, send + off, (e0 - b0) * slice_row, e->q + b0 * slice_row, L * slice_row,
               (e0 - b0) * slice_row, B);
        off += B * (e0 - b0) * slice_row;
    }
    helix_step s = step(HELIX_STEP_ALLTOALLV, HELIX_PHASE_REGATHER);
    s.group = HELIX_GROUP_ROW; s.a = A(send); s.c = A(recv);
    counts_done(e, s, &c);
    split_cols(e, HELIX_PHASE_REGATHER, recv, qf, B * nq * hg, m, ds * es, 0);

    attend(e, qf, kf, vf, of, nq, q0, hg, dd);

    /* send[peer] = slice peer of my query block's outputs; recv[peer] = my slice of peer's block */
    split_cols(e, HELIX_PHASE_RETURN, of, send, B * nq * hg, m, ds * es, 1);
    c = counts_new(e, m);
    off = 0;
    for (int64_t q = 0; c.v && q < m; q++) {
        int64_t b0, e0;
        helix_split_range(L, m, q, &b0, &e0);
        c.v[q] = (size_t)(B * nq * slice_row);
        c.v[m + q] = (size_t)q * c.v[q];
        c.v[2 * m + q] = (size_t)(B * (e0 - b0) * slice_row);
        c.v[3 * m + q] = (size_t)off;
        off += B * (e0 - b0) * slice_row;
    }
    s = step(HELIX_STEP_ALLTOALLV, HELIX_PHASE_RETURN);
    s.group = HELIX_GROUP_ROW; s.a = A(send); s.c = A(recv);
    counts_done(e, s, &c);
    off = 0;
    for (int64_t q = 0; q < m; q++) {
        int64_t b0, e0;
        helix_split_range(L, m, q, &b0, &e0);
        copy2d(e, HELIX_PHASE_RETURN, e->o + b0 * slice_row, L * slice_row, recv + off, (e0 - b0) * slice_row,
               (e0 - b0) * slice_row, B);
        off += B * (e0 - b0) * slice_row;
    }
}

/* exact/scores: per batch row and block of queries, partial scores,
 * all-reduce over the row (f32), softmax times this slice's V */
static void scores(em *e)
{
    const helix_plan *p = &e->p->attn;
    const int64_t B = p->cfg.batch, L = p->cfg.seq, hg = p->hg, TQ = HELIX_SCORES_TILE_Q;
    const int64_t sc = e->exch, scratch = e->exch + helix_al64(hg * TQ * L * 4);
    for (int64_t b = 0; b < B; b++)
        for (int64_t q0 = 0; q0 < L; q0 += TQ) {
            helix_step s = step(HELIX_STEP_SCORES, HELIX_PHASE_ATTENTION);
            s.a = A(e->q); s.b = A(e->k); s.c = A(e->v); s.d = A(e->o); s.e = A(sc); s.t = e->t;
            s.H = hg; s.width = p->ds; s.b_row = b; s.q0 = q0; s.nq = L - q0 < TQ ? L - q0 : TQ;
            s.lk = p->cfg.causal ? q0 + s.nq : L;
            s.flops = 2.0 * (double)(hg * s.nq * s.lk * p->ds);
            emit(e, s);
            coll(e, HELIX_STEP_ALLREDUCE, HELIX_PHASE_ATTENTION, HELIX_GROUP_ROW, 0, A(sc), NONE, hg * s.nq * s.lk,
                 HELIX_F32, A(scratch));
            s.kind = HELIX_STEP_SOFTMAX_V;
            emit(e, s);
        }
}

/* Q/K/V, attention, and (partial >= 0) the W_O partial product */
static void attention_core(em *e, int64_t x, int64_t partial)
{
    const helix_plan *p = &e->p->attn;
    const helix_shard_offsets *w = e->ls;
    const int64_t D = p->D, BL = p->cfg.batch * p->cfg.seq, cols = p->cols;
    gemm(e, HELIX_PHASE_QKV, BL, cols, D, x, D, w->wq, cols, w->bq, e->q, cols);
    gemm(e, HELIX_PHASE_QKV, BL, cols, D, x, D, w->wk, cols, w->bk, e->k, cols);
    gemm(e, HELIX_PHASE_QKV, BL, cols, D, x, D, w->wv, cols, w->bv, e->v, cols);
    if (p->cfg.mode == HELIX_MODE_SLICED) attend(e, e->q, e->k, e->v, e->o, p->cfg.seq, 0, p->hg, p->ds);
    else if (p->cfg.exact_algo == HELIX_EXACT_SCORES) scores(e);
    else if (p->regather == HELIX_REGATHER_HEADS) regather_heads(e);
    else regather_queries(e);
    if (partial >= 0) gemm(e, HELIX_PHASE_OUT_PROJ, BL, D, cols, e->o, cols, w->wo, D, w->bo, partial, D);
}

/* no W_O: all-gather the slices along the row into whole heads, then
 * column 0 gathers the head groups onto rank 0 */
static void concat_heads(em *e)
{
    const helix_plan *p = &e->p->attn;
    const int64_t m = p->cfg.slices, n = p->cfg.groups, BL = p->cfg.batch * p->cfg.seq, es = e->es;
    const int64_t chunk = BL * p->cols * es, grp = BL * p->hg * p->cfg.head_dim * es;
    const int64_t recv = e->partial, whole = recv + grp, groups = whole + grp;
    counts c = counts_new(e, m);
    for (int64_t q = 0; c.v && q < m; q++) { c.v[2 * m + q] = (size_t)chunk; c.v[3 * m + q] = (size_t)(q * chunk); }
    helix_step s = step(HELIX_STEP_ALLGATHERV, HELIX_PHASE_ROW_GATHER);
    s.group = HELIX_GROUP_ROW; s.a = A(e->o); s.c = A(recv); s.n = chunk;
    counts_done(e, s, &c);
    split_cols(e, HELIX_PHASE_ROW_GATHER, recv, whole, BL * p->hg, m, p->ds * es, 0);
    if (e->dp.attn.j != 0) return;
    c = counts_new(e, n);
    for (int64_t q = 0; c.v && q < n; q++) { c.v[2 * n + q] = (size_t)grp; c.v[3 * n + q] = (size_t)(q * grp); }
    s = step(HELIX_STEP_GATHERV, HELIX_PHASE_COL_GATHER);
    s.group = HELIX_GROUP_COL; s.root = 0; s.a = A(whole); s.c = A(groups); s.n = grp;
    counts_done(e, s, &c);
    if (e->rank == 0) split_cols(e, HELIX_PHASE_COL_GATHER, groups, e->out, BL, n, grp / BL, 0);
}

/* ------------------------------------------------------------- blocks */

static void layernorm(em *e, int64_t x, int64_t g, int64_t b, int64_t y, int64_t rows)
{
    helix_step s = step(HELIX_STEP_LAYERNORM, HELIX_PHASE_NORM);
    s.a = A(x); s.b = A(g); s.c = A(b); s.d = A(y); s.M = rows; s.N = e->p->D; s.t = e->t;
    emit(e, s);
}

static void residual(em *e, int64_t a, int64_t p, int64_t rows)
{
    helix_step s = step(HELIX_STEP_RESIDUAL, HELIX_PHASE_NORM);
    s.a = A(a); s.b = A(p); s.M = rows; s.N = e->p->D; s.t = e->t;
    emit(e, s);
}

static void allreduce(em *e, helix_phase ph)
{
    coll(e, HELIX_STEP_ALLREDUCE, ph, HELIX_GROUP_TENSOR, 0, A(e->partial), NONE, e->p->Bm * e->p->model.seq * e->p->D,
         e->t, A(e->scratch));
}

/* sequence parallel: the rows of buf [rows, D] every tensor rank holds
 * (split by rows), all-gathered in place */
static void gather_rows(em *e, helix_phase ph, int64_t buf)
{
    const int64_t T = e->p->T, rows = e->p->Bm * e->p->model.seq, row = e->p->D * e->es;
    counts c = counts_new(e, T);
    recv_split(&c, T, rows, row);
    helix_step s = step(HELIX_STEP_ALLGATHERV, ph);
    s.group = HELIX_GROUP_TENSOR; s.a = NONE; s.c = A(buf); s.n = e->rn * row; s.t = e->t;
    counts_done(e, s, &c);
}

/* the partial sums: all-reduced, or (sequence parallel) reduce-scattered
 * onto this device's rows */
static void combine(em *e, helix_phase ph)
{
    if (!e->sp) { allreduce(e, ph); return; }
    helix_step s = step(HELIX_STEP_REDUCE_SCATTER, ph);
    s.group = HELIX_GROUP_TENSOR; s.a = A(e->partial); s.d = A(e->scratch); s.t = e->t;
    s.n = e->p->Bm * e->p->model.seq; s.N = e->p->D;
    emit(e, s);
}

/* Pre:  [LN1] attention, combine, residual, [LN2] MLP, combine, residual.
 * Post: attention, combine, residual, LN1, MLP, combine, residual, LN2.
 * Sequence parallel: LN and the residual on this device's rows (rb..),
 * the input of QKV and of FC1 all-gathered first (phases REDUCE and
 * MLP_REDUCE: with the reduce-scatters they carry what the all-reduces
 * would). */
static void layer_block(em *e, int64_t a)
{
    const helix_model_plan *p = e->p;
    const helix_shard_offsets *w = e->ls;
    const int64_t D = p->D, fc = p->fcols, rows = p->Bm * p->model.seq;
    const int pre = p->model.norm == HELIX_NORM_PRE;
    const int64_t off = e->sp ? e->rb * D * e->es : 0, n = e->sp ? e->rn : rows;   /* the rows LN and residual see */
    if (pre) layernorm(e, a + off, w->ln1_g, w->ln1_b, e->xn + off, n);
    if (e->sp) gather_rows(e, HELIX_PHASE_REDUCE, pre ? e->xn : a);
    attention_core(e, pre ? e->xn : a, e->partial);
    combine(e, HELIX_PHASE_REDUCE);
    residual(e, a + off, e->partial + off, n);
    if (pre) layernorm(e, a + off, w->ln2_g, w->ln2_b, e->xn + off, n);
    else layernorm(e, a + off, w->ln1_g, w->ln1_b, a + off, n);        /* post: a = LN1(a); the MLP reads a */
    const int64_t in = pre ? e->xn : a;
    if (e->sp) gather_rows(e, HELIX_PHASE_MLP_REDUCE, in);
    gemm(e, HELIX_PHASE_MLP, rows, fc, D, in, D, w->w1, fc, w->b1, e->hidden, fc);
    helix_step s = step(HELIX_STEP_ACTIVATE, HELIX_PHASE_MLP);
    s.a = A(e->hidden); s.M = rows; s.N = fc; s.t = e->t;
    s.e = A(e->work + 4 * 3 * D);                              /* f32 row after LN's three */
    emit(e, s);
    gemm(e, HELIX_PHASE_MLP, rows, D, fc, e->hidden, fc, w->w2, D, w->b2, e->partial, D);
    combine(e, HELIX_PHASE_MLP_REDUCE);
    residual(e, a + off, e->partial + off, n);
    if (!pre) layernorm(e, a + off, w->ln2_g, w->ln2_b, a + off, n);
}

static void attention_block(em *e, int64_t a)
{
    const helix_plan *ap = &e->p->attn;
    attention_core(e, a, ap->cfg.out_proj ? e->partial : -1);
    if (!ap->cfg.out_proj) { concat_heads(e); return; }
    coll(e, HELIX_STEP_REDUCE, HELIX_PHASE_REDUCE, HELIX_GROUP_TENSOR, 0, A(e->partial), A(e->out),
         ap->cfg.batch * ap->cfg.seq * ap->D, e->t, A(e->scratch));
}

/* ------------------------------------------------------------- layout */

/* The arena, in the order of the plan's sizes (src/plan/model_plan.c). */
static void carve(em *e)
{
    const helix_model_plan *p = e->p;
    const helix_model_device_plan *dp = &e->dp;
    const int64_t D = p->D, fc = p->fcols, cols = p->attn.cols, es = e->es;
    const int64_t nl = dp->layer_end - dp->layer_begin;
    const int bias = p->model.bias, t0 = dp->trank == 0, layer = p->model.block == HELIX_BLOCK_LAYER;
    const int out_proj = p->attn.cfg.out_proj;
    int64_t c = 0;
#define TAKE(f, n) do { s->f = c; c += (n) * es; } while (0)
    for (int64_t l = 0; l < nl; l++) {
        helix_shard_offsets *s = &e->layer[l], none;
        if (!e->write) s = &none;
        memset(s, 0xff, sizeof *s);                       /* -1: absent */
        TAKE(wq, D * cols); TAKE(wk, D * cols); TAKE(wv, D * cols);
        if (bias) { TAKE(bq, cols); TAKE(bk, cols); TAKE(bv, cols); }
        if (out_proj) TAKE(wo, cols * D);
        if (out_proj && bias && t0) TAKE(bo, D);
        if (!layer) continue;
        TAKE(ln1_g, D); TAKE(ln1_b, D); TAKE(ln2_g, D); TAKE(ln2_b, D);
        TAKE(w1, D * fc); TAKE(w2, fc * D);
        if (bias) TAKE(b1, fc);
        if (bias && t0) TAKE(b2, D);
    }
#undef TAKE
    const int64_t BmL = p->Bm * p->model.seq;
    c = helix_al64(dp->weight_bytes);
    e->act = c; c += helix_al64(dp->act_bytes);
    e->xn = c; c += helix_al64(dp->norm_bytes);
    e->q = c; e->k = c + BmL * cols * es; e->v = c + 2 * BmL * cols * es; c += helix_al64(dp->attn.qkv_bytes);
    e->o = c; c += helix_al64(dp->attn.o_bytes);
    e->exch = c; c += helix_al64(dp->attn.exchange_bytes);
    e->hidden = c; c += helix_al64(dp->hidden_bytes);
    e->work = c; c += helix_al64(dp->kernel_bytes);
    e->partial = c; e->scratch = c + helix_al64(BmL * D * es); c += helix_al64(dp->partial_bytes);
    e->out = dp->out_bytes ? c : -1; c += helix_al64(dp->out_bytes);
    e->gath = dp->gather_bytes ? c : -1;
}

static void groups(em *e)
{
    const helix_model_plan *p = e->p;
    const helix_model_device_plan *dp = &e->dp;
    e->gsize[HELIX_GROUP_WORLD] = p->P; e->grank[HELIX_GROUP_WORLD] = e->rank;
    e->gsize[HELIX_GROUP_TENSOR] = p->T; e->grank[HELIX_GROUP_TENSOR] = dp->trank;
    e->gsize[HELIX_GROUP_ROW] = p->attn.cfg.slices; e->grank[HELIX_GROUP_ROW] = dp->attn.j;
    e->gsize[HELIX_GROUP_COL] = p->attn.cfg.groups; e->grank[HELIX_GROUP_COL] = dp->attn.i;
    e->gsize[HELIX_GROUP_PREV] = 2; e->grank[HELIX_GROUP_PREV] = 1;
    e->gsize[HELIX_GROUP_NEXT] = 2; e->grank[HELIX_GROUP_NEXT] = 0;
    e->gsize[HELIX_GROUP_OUT] = 2; e->grank[HELIX_GROUP_OUT] = e->rank % p->Pr == 0 ? 0 : 1;
    e->gsize[HELIX_GROUP_DP] = p->R; e->grank[HELIX_GROUP_DP] = dp->replica;
    int *node = p->layout.ranks_per_node > 0 ? malloc(sizeof(int) * (size_t)p->P) : NULL;
    if (p->layout.ranks_per_node > 0 && !node) e->oom = 1;
    for (int g = 0; g < HELIX_NGROUPS; g++) {
        e->topo[g] = helix_comm_topo_one((int)e->gsize[g], (int)e->grank[g]);
        if (!node || helix_group_nodes(p, e->rank, (helix_group)g, node) != e->gsize[g]) continue;   /* one node, or a pair it is not in */
        if (helix_comm_topo_init(&e->topo[g], (int)e->gsize[g], (int)e->grank[g], node)) e->oom = 1;
    }
    free(node);
}

static void groups_free(em *e)
{
    for (int g = 0; g < HELIX_NGROUPS; g++) helix_comm_topo_free(&e->topo[g]);
}

int64_t helix_group_nodes(const helix_model_plan *p, int64_t rank, helix_group g, int *node)
{
    const int64_t T = p->T, S = p->S, Pr = p->Pr, m = p->attn.cfg.slices, n = p->attn.cfg.groups;
    const int64_t q0 = rank / Pr * Pr, loc = rank % Pr, s = loc / T, r = loc % T, i = r / m, j = r % m;
    int64_t size = 0, base = 0, stride = 1;
    switch (g) {
    case HELIX_GROUP_WORLD: size = p->P; break;
    case HELIX_GROUP_TENSOR: size = T; base = q0 + s * T; break;
    case HELIX_GROUP_ROW: size = m; base = q0 + s * T + i * m; break;
    case HELIX_GROUP_COL: size = n; base = q0 + s * T + j; stride = m; break;
    case HELIX_GROUP_PREV: if (s > 0) { size = 2; base = q0 + (s - 1) * T + r; stride = T; } break;
    case HELIX_GROUP_NEXT: if (s + 1 < S) { size = 2; base = rank; stride = T; } break;
    case HELIX_GROUP_OUT: if (S > 1 && (loc == 0 || (s == S - 1 && r == 0))) { size = 2; base = q0; stride = (S - 1) * T; } break;
    case HELIX_GROUP_DP: size = p->R; base = loc; stride = Pr; break;
    default: break;
    }
    const int64_t rpn = p->layout.ranks_per_node > 0 ? p->layout.ranks_per_node : p->P;
    if (node) for (int64_t q = 0; q < size; q++) node[q] = (int)((base + q * stride) / rpn);
    return size;
}

/* ------------------------------------------------------------ the pass */

/* Count mode only: what was emitted since `snap`, `times` times more —
 * layers and micro-batches repeat the same steps, so counting one of each
 * gives the pass's totals without walking them all (the planner counts
 * thousands of programs). */
typedef struct { helix_traffic sum[HELIX_NPHASES]; double msgs[HELIX_NPHASES]; int64_t n; } snapshot;

static snapshot snap(const em *e)
{
    snapshot t;
    memcpy(t.sum, e->sum, sizeof t.sum);
    if (e->msgs) memcpy(t.msgs, e->msgs, sizeof t.msgs);
    t.n = e->n;
    return t;
}

static void repeat(em *e, const snapshot *t, int64_t times)
{
    for (int q = 0; q < HELIX_NPHASES; q++) {
        helix_traffic d = e->sum[q];               /* what was emitted since t */
        helix_traffic_add(&d, &t->sum[q], -1);
        helix_traffic_add(&e->sum[q], &d, times);
        if (e->msgs) e->msgs[q] += (e->msgs[q] - t->msgs[q]) * (double)times;
    }
    e->n += (e->n - t->n) * times;
}

/* Y of micro-batch k of this replica, whole in buffer yb of the replica's
 * rank 0: to rank 0's Y (with replicas, gathered over the DP group first:
 * every replica's micro-batch k). Loading, not the forward pass. */
static void y_home(em *e, int64_t k, int64_t yb)
{
    const helix_model_plan *p = e->p;
    const int64_t rows = p->Bm * p->model.seq, chunk = rows * p->D * e->es, R = p->R;
    int64_t src = yb;
    helix_step s;
    if (R > 1) {
        counts c = counts_new(e, R);
        recv_split(&c, R, R, chunk);                         /* a micro-batch from each replica */
        s = step(HELIX_STEP_GATHERV, HELIX_PHASE_OUTPUT);
        s.group = HELIX_GROUP_DP; s.root = 0; s.a = A(yb); s.c = e->gath >= 0 ? A(e->gath) : NONE; s.n = chunk; s.t = e->t;
        counts_done(e, s, &c);
        src = e->gath;
    }
    if (e->rank != 0) return;
    for (int64_t q = 0; q < R; q++) {
        s = step(HELIX_STEP_DOWNLOAD, HELIX_PHASE_OUTPUT);
        s.a = A(src + q * chunk); s.c = (helix_ref){HELIX_MEM_Y, ((q * p->mb + k) * rows) * p->D * 4}; s.n = rows * p->D;
        s.t = e->t;
        emit(e, s);
    }
}

/* Micro-batch k of X into act on a first-stage device: read by the
 * device itself (replicated: its rows, sequence parallel), or uploaded on
 * rank 0 (with replicas: every replica's micro-batch k, sent to each
 * replica's rank 0 over the DP group) and broadcast over the tensor
 * group. Loading, not the forward pass. */
static void x_in(em *e, int64_t k)
{
    const helix_model_plan *p = e->p;
    const int64_t rows = p->Bm * p->model.seq, D = p->D, chunk = rows * D * e->es, R = p->R;
    const int64_t q0 = e->dp.replica;
    helix_step s;
    if (!e->from_root) {
        const int64_t r0 = e->sp ? e->rb : 0, n = e->sp ? e->rn : rows;
        s = step(HELIX_STEP_UPLOAD, HELIX_PHASE_INPUT);
        s.a = (helix_ref){HELIX_MEM_X, ((q0 * p->mb + k) * rows + r0) * D * 4}; s.c = A(e->act + r0 * D * e->es);
        s.n = n * D; s.t = e->t;
        emit(e, s);
        return;
    }
    if (e->rank == 0)
        for (int64_t q = 0; q < R; q++) {
            s = step(HELIX_STEP_UPLOAD, HELIX_PHASE_INPUT);
            s.a = (helix_ref){HELIX_MEM_X, (q * p->mb + k) * rows * D * 4}; s.c = A(R > 1 ? e->gath + q * chunk : e->act);
            s.n = rows * D; s.t = e->t;
            emit(e, s);
        }
    if (R > 1 && e->dp.trank == 0) {                         /* rank 0 -> each replica's rank 0 */
        counts c = counts_new(e, R);
        for (int64_t q = 0; c.v && q < R; q++) {
            if (e->rank == 0) { c.v[q] = (size_t)chunk; c.v[R + q] = (size_t)(q * chunk); }
            if (q == 0) c.v[2 * R] = (size_t)chunk;
        }
        s = step(HELIX_STEP_ALLTOALLV, HELIX_PHASE_INPUT);
        s.group = HELIX_GROUP_DP; s.a = e->rank == 0 ? A(e->gath) : NONE; s.c = A(e->act);
        counts_done(e, s, &c);
    }
    coll(e, HELIX_STEP_BCAST, HELIX_PHASE_INPUT, HELIX_GROUP_TENSOR, 0, A(e->act), NONE, chunk, e->t, NONE);
}

static void pass(em *e)
{
    const helix_model_plan *p = e->p;
    const helix_model_device_plan *dp = &e->dp;
    const int64_t D = p->D, S = p->S, rows = p->Bm * p->model.seq, chunk = rows * D * e->es;
    const int attn_only = p->model.block == HELIX_BLOCK_ATTENTION;
    const int home = e->rank % p->Pr == 0;                   /* the replica's rank 0 */
    /* pipeline hand-over, scatter/gather (Megatron's): tensor rank r sends
     * its 1/T slice of the micro-batch to tensor rank r of the next stage,
     * which all-gathers the slices inside its tensor group; sequence
     * parallel: its rows, which is all the next stage needs */
    int64_t sl_b, sl_e;
    helix_split_range(rows * D, p->T, dp->trank, &sl_b, &sl_e);
    if (e->sp) { sl_b = e->rb * D; sl_e = (e->rb + e->rn) * D; }
    const int64_t sl_n = (sl_e - sl_b) * e->es;
    sl_b *= e->es;
    helix_step s = step(HELIX_STEP_BARRIER, HELIX_PHASE_INPUT);
    s.group = HELIX_GROUP_WORLD; s.flags = HELIX_STEP_START | HELIX_STEP_UNTIMED;
    emit(e, s);                                              /* start together */
    snapshot mb1 = snap(e);
    for (int64_t k = 0; k < p->mb; k++) {
        if (!e->write && k == 1) mb1 = snap(e);
        if (!e->write && k == 2) { repeat(e, &mb1, p->mb - 2); break; }   /* micro-batches 2.. = 1 */
        if (dp->stage == 0) {
            x_in(e, k);
        } else {                                             /* my slice from the previous stage */
            s = step(HELIX_STEP_BCAST, HELIX_PHASE_P2P);
            s.group = HELIX_GROUP_PREV; s.root = 0; s.a = A(e->act + sl_b); s.n = sl_n; s.t = e->t;
            if (k == 0) s.flags = HELIX_STEP_BUBBLE;       /* pipeline fill */
            emit(e, s);
            if (p->T > 1 && !e->sp) {                        /* then the whole micro-batch inside the stage */
                counts c = counts_new(e, p->T);
                recv_split(&c, p->T, rows * D, e->es);
                s = step(HELIX_STEP_ALLGATHERV, HELIX_PHASE_P2P);
                s.group = HELIX_GROUP_TENSOR; s.a = NONE; s.c = A(e->act); s.n = sl_n; s.t = e->t;
                counts_done(e, s, &c);
            }
        }
        const int64_t nl = dp->layer_end - dp->layer_begin;
        const snapshot l0 = snap(e);
        for (int64_t l = 0; l < nl; l++) {
            if (!e->write && l == 1) { repeat(e, &l0, nl - 1); break; }   /* layers 1.. = layer 0 */
            e->ls = e->write ? &e->layer[l] : NULL;
            helix_shard_offsets off;
            if (!e->write) {                                  /* count mode: offsets do not matter */
                memset(&off, 0, sizeof off);
                e->ls = &off;
            }
            if (attn_only) attention_block(e, e->act);
            else layer_block(e, e->act);
        }
        if (attn_only) {
            if (e->rank == 0) {
                s = step(HELIX_STEP_DOWNLOAD, HELIX_PHASE_REDUCE);
                s.a = A(e->out); s.c = (helix_ref){HELIX_MEM_Y, 0}; s.n = rows * D; s.t = e->t;
                s.flags = HELIX_STEP_UNTIMED;
                emit(e, s);
            }
            continue;
        }
        if (dp->stage < S - 1) {                             /* my slice to my peer in the next stage */
            coll(e, HELIX_STEP_BCAST, HELIX_PHASE_P2P, HELIX_GROUP_NEXT, 0, A(e->act + sl_b), NONE, sl_n, e->t, NONE);
            continue;
        }
        /* last stage: the micro-batch whole on tensor rank 0 (sequence
         * parallel: its rows gathered there, into partial), then home */
        int64_t yb = e->act;
        if (e->sp) {
            counts c = counts_new(e, p->T);
            recv_split(&c, p->T, rows, D * e->es);
            s = step(HELIX_STEP_GATHERV, HELIX_PHASE_OUTPUT);
            s.group = HELIX_GROUP_TENSOR; s.root = 0; s.a = A(e->act + sl_b); s.c = A(e->partial); s.n = sl_n; s.t = e->t;
            counts_done(e, s, &c);
            yb = e->partial;
        }
        if (e->out >= 0) {                                   /* kept for the replica's rank 0 */
            s = step(HELIX_STEP_COPY, HELIX_PHASE_OUTPUT);
            s.c = A(e->out + k * chunk); s.a = A(yb); s.ldc = s.lda = s.N = chunk; s.M = 1;
            s.flags = HELIX_STEP_UNTIMED;
            emit(e, s);
        } else if (home) {
            y_home(e, k, yb);
        }
    }
    if (S > 1 && !attn_only) {
        s = step(HELIX_STEP_BARRIER, HELIX_PHASE_OUTPUT);
        s.group = HELIX_GROUP_WORLD;
        s.flags = dp->stage < S - 1 ? HELIX_STEP_BUBBLE : HELIX_STEP_UNTIMED;   /* pipeline drain */
        emit(e, s);
        /* Y from the last stage to the replica's rank 0, a micro-batch at a time */
        const snapshot y0 = snap(e);
        if (home || e->out >= 0)
            for (int64_t k = 0; k < p->mb; k++) {
                if (!e->write && k == 1) { repeat(e, &y0, p->mb - 1); break; }
                coll(e, HELIX_STEP_BCAST, HELIX_PHASE_OUTPUT, HELIX_GROUP_OUT, 1, A(home ? e->act : e->out + k * chunk),
                     NONE, chunk, e->t, NONE);
                if (home) y_home(e, k, e->act);
            }
    }
}

static helix_status build(const helix_model_plan *p, int64_t rank, int write, helix_program *out,
                          helix_traffic sum[HELIX_NPHASES], double *msgs, helix_err *err)
{
    if (!p || rank < 0 || rank >= p->P) return helix_errf(err, HELIX_ERR_INVALID, "program: no device %lld", (long long)rank);
    em e;
    memset(&e, 0, sizeof e);
    e.p = p;
    e.rank = rank;
    e.t = p->model.dtype;
    e.es = (int64_t)helix_dtype_size(e.t);
    e.write = write;
    e.sum = sum;
    e.msgs = msgs;
    memset(sum, 0, sizeof(helix_traffic) * HELIX_NPHASES);
    if (msgs) memset(msgs, 0, sizeof(double) * HELIX_NPHASES);
    helix_model_plan_sizes(p, rank, &e.dp);
    const int64_t nl = e.dp.layer_end - e.dp.layer_begin;
    if (write) {
        e.layer = calloc((size_t)(nl > 0 ? nl : 1), sizeof *e.layer);
        if (!e.layer) return helix_errf(err, HELIX_ERR_NOMEM, "program: out of memory");
    }
    carve(&e);
    groups(&e);
    e.from_root = p->model.block == HELIX_BLOCK_ATTENTION || p->layout.input_from_root;
    e.sp = p->layout.seq_parallel && p->model.block == HELIX_BLOCK_LAYER;
    int64_t r1;
    helix_split_range(p->Bm * p->model.seq, p->T, e.dp.trank, &e.rb, &r1);
    e.rn = r1 - e.rb;
    if (!e.oom) pass(&e);
    groups_free(&e);
    if (e.oom) {
        free(e.layer); free(e.steps); free(e.pool);
        return helix_errf(err, HELIX_ERR_NOMEM, "program of device %lld: out of memory (%lld steps)", (long long)rank,
                          (long long)e.n);
    }
    if (write) {
        memset(out, 0, sizeof *out);
        out->rank = rank;
        out->dev = e.dp;
        memcpy(out->dev.phase, sum, sizeof out->dev.phase);
        if (msgs) memcpy(out->dev.messages, msgs, sizeof out->dev.messages);
        out->arena_bytes = e.dp.peak_bytes;
        out->work = e.work;
        out->n_layers = nl;
        out->layer = e.layer;
        out->steps = e.steps;
        out->n_steps = e.n;
        out->pool = e.pool;
        out->n_pool = e.np;
    }
    return HELIX_OK;
}

helix_status helix_program_build(const helix_model_plan *p, int64_t rank, helix_program *out, helix_err *err)
{
    helix_traffic sum[HELIX_NPHASES];
    double msgs[HELIX_NPHASES];
    return build(p, rank, 1, out, sum, msgs, err);
}

helix_status helix_program_traffic(const helix_model_plan *p, int64_t rank, helix_traffic phase[HELIX_NPHASES],
                                   double msgs[HELIX_NPHASES])
{
    return build(p, rank, 0, NULL, phase, msgs, NULL);
}

void helix_program_free(helix_program *prog)
{
    if (!prog) return;
    free(prog->layer);
    free(prog->steps);
    free(prog->pool);
    memset(prog, 0, sizeof *prog);
}

const char *helix_step_name(helix_step_kind k)
{
    static const char *const names[HELIX_NSTEP_KINDS] = {
        "gemm", "attention", "scores", "softmax_v", "layernorm", "activate", "residual", "upload", "download", "copy",
        "bcast", "allgatherv", "alltoallv", "gatherv", "allreduce", "reduce", "reduce_scatter", "barrier"};
    return k >= 0 && k < HELIX_NSTEP_KINDS ? names[k] : "?";
}

int helix_step_is_compute(helix_step_kind k) { return k <= HELIX_STEP_RESIDUAL; }
