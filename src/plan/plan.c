/* plan.c — validate a configuration and derive, without allocating, every
 * device's shapes, buffer sizes (its whole memory arena) and the bytes it
 * sends and receives in each phase. The executor carves its arena from the
 * same sizes; the byte counts are derived here independently of the
 * communicator, so tests can hold the two against each other. */
#include "helix.h"
#include "helix_comm.h"
#include "../core/err-impl.h"
#include "../core/util-impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Every product the plan forms stays below this (64 PiB), so sums of a few
 * dozen of them cannot overflow int64. */
#define HELIX_MAX_BYTES ((int64_t)1 << 56)
#define HELIX_MAX_DEVICES 65536

helix_config helix_config_default(void)
{
    helix_config c;
    memset(&c, 0, sizeof c);
    c.heads = 16; c.head_dim = 64; c.groups = 4; c.slices = 4;
    c.batch = 2; c.seq = 512;
    c.dtype = HELIX_F32; c.mode = HELIX_MODE_EXACT; c.exact_algo = HELIX_EXACT_REGATHER;
    c.causal = 0; c.out_proj = 1; c.bias = 0; c.scale = 0.0;
    return c;
}

/* a*b*c*... with overflow and bound checks; returns -1 if over the bound. */
static int64_t checked_prod(int count, ...)
{
    va_list ap;
    va_start(ap, count);
    int64_t acc = 1;
    for (int k = 0; k < count; k++) {
        int64_t v = va_arg(ap, int64_t);
        if (acc < 0 || __builtin_mul_overflow(acc, v, &acc) || acc > HELIX_MAX_BYTES) acc = -1;
    }
    va_end(ap);
    return acc;
}

static helix_status check_pos(const char *name, const char *flag, int64_t v, helix_err *err)
{
    if (v < 1) return helix_errf(err, HELIX_ERR_INVALID, "%s (%s) must be a positive integer, got %lld", name, flag, (long long)v);
    return HELIX_OK;
}

helix_status helix_plan_init(const helix_config *cfg, helix_plan *plan, helix_err *err)
{
    helix_status st;
    if (!cfg || !plan) return helix_errf(err, HELIX_ERR_INVALID, "helix_plan_init: NULL argument");
    if ((st = check_pos("heads h", "--heads", cfg->heads, err))) return st;
    if ((st = check_pos("head width d", "--head-dim", cfg->head_dim, err))) return st;
    if ((st = check_pos("head groups n", "--groups", cfg->groups, err))) return st;
    if ((st = check_pos("slices per head m", "--slices", cfg->slices, err))) return st;
    if ((st = check_pos("batch B", "--batch", cfg->batch, err))) return st;
    if ((st = check_pos("sequence length L", "--seq", cfg->seq, err))) return st;
    if (cfg->dtype != HELIX_F32 && cfg->dtype != HELIX_F16 && cfg->dtype != HELIX_BF16)
        return helix_errf(err, HELIX_ERR_INVALID, "unknown dtype %d (expected f32, f16 or bf16)", (int)cfg->dtype);
    if (cfg->mode != HELIX_MODE_SLICED && cfg->mode != HELIX_MODE_EXACT)
        return helix_errf(err, HELIX_ERR_INVALID, "unknown mode %d (expected sliced or exact)", (int)cfg->mode);
    if (cfg->exact_algo != HELIX_EXACT_REGATHER && cfg->exact_algo != HELIX_EXACT_SCORES)
        return helix_errf(err, HELIX_ERR_INVALID, "unknown exact algorithm %d (expected regather or scores)", (int)cfg->exact_algo);
    if (cfg->heads % cfg->groups)
        return helix_errf(err, HELIX_ERR_INVALID, "heads h=%lld is not divisible by groups n=%lld: each head group needs h/n whole heads",
                    (long long)cfg->heads, (long long)cfg->groups);
    if (cfg->head_dim % cfg->slices)
        return helix_errf(err, HELIX_ERR_INVALID, "head width d=%lld is not divisible by slices m=%lld: each slice needs d/m features",
                    (long long)cfg->head_dim, (long long)cfg->slices);
    if (!(cfg->scale >= 0.0) || !isfinite(cfg->scale))
        return helix_errf(err, HELIX_ERR_INVALID, "scale must be a finite number > 0 (or 0 for 1/sqrt(width)), got %g", cfg->scale);

    for (int64_t b = 0; cfg->kv_len && b < cfg->batch; b++)
        if (cfg->kv_len[b] < 1 || cfg->kv_len[b] > cfg->seq)
            return helix_errf(err, HELIX_ERR_INVALID,
                              "key padding length of batch row %lld (--kv-len) is %lld; it must be in 1..L=%lld",
                              (long long)b, (long long)cfg->kv_len[b], (long long)cfg->seq);

    int64_t P = checked_prod(2, cfg->groups, cfg->slices);
    if (P < 0 || P > HELIX_MAX_DEVICES)
        return helix_errf(err, HELIX_ERR_INVALID, "grid n x m = %lld x %lld has more than %d devices",
                    (long long)cfg->groups, (long long)cfg->slices, HELIX_MAX_DEVICES);
    int64_t D = checked_prod(2, cfg->heads, cfg->head_dim);
    int64_t es = (int64_t)helix_dtype_size(cfg->dtype);
    /* The largest quantities anywhere in the plan: the input broadcast, the
     * weights, and (exact/scores) the score traffic. */
    int64_t big_x = D < 0 ? -1 : checked_prod(5, cfg->batch, cfg->seq, D, es, P + 16);
    int64_t big_w = D < 0 ? -1 : checked_prod(3, D, D, 8 * es);
    int64_t big_s = checked_prod(5, cfg->batch, cfg->heads, cfg->seq, cfg->seq, 8 * (cfg->slices + 1));
    if (D < 0 || big_x < 0 || big_w < 0 || (cfg->mode == HELIX_MODE_EXACT && cfg->exact_algo == HELIX_EXACT_SCORES && big_s < 0))
        return helix_errf(err, HELIX_ERR_INVALID, "configuration too large: B=%lld L=%lld h=%lld d=%lld on %lld devices needs more than 2^56 bytes somewhere",
                    (long long)cfg->batch, (long long)cfg->seq, (long long)cfg->heads,
                    (long long)cfg->head_dim, (long long)P);

    memset(plan, 0, sizeof *plan);
    plan->cfg = *cfg;
    plan->D = D;
    plan->P = P;
    plan->hg = cfg->heads / cfg->groups;
    plan->ds = cfg->head_dim / cfg->slices;
    plan->cols = plan->hg * plan->ds;
    int64_t width = cfg->mode == HELIX_MODE_SLICED ? plan->ds : cfg->head_dim;
    plan->scale = cfg->scale > 0 ? cfg->scale : 1.0 / sqrt((double)width);
    if (cfg->mode == HELIX_MODE_EXACT && cfg->exact_algo == HELIX_EXACT_REGATHER)
        plan->regather = (plan->hg % cfg->slices == 0) ? HELIX_REGATHER_HEADS : HELIX_REGATHER_QUERIES;
    else
        plan->regather = HELIX_REGATHER_NONE;
    return HELIX_OK;
}


static void add(helix_traffic *t, helix_traffic x) { t->sent_bytes += x.sent_bytes; t->recv_bytes += x.recv_bytes; }
static helix_traffic tr(int64_t s, int64_t r) { helix_traffic t = {s, r}; return t; }

helix_status helix_plan_device(const helix_plan *plan, int64_t rank, helix_device_plan *out)
{
    if (!plan || !out || rank < 0 || rank >= plan->P) return HELIX_ERR_INVALID;
    const helix_config *c = &plan->cfg;
    const int64_t m = c->slices, n = c->groups, B = c->batch, L = c->seq, d = c->head_dim;
    const int64_t D = plan->D, P = plan->P, hg = plan->hg, ds = plan->ds, cols = plan->cols;
    const int64_t es = (int64_t)helix_dtype_size(c->dtype), BL = B * L;
    helix_device_plan *o = out;
    memset(o, 0, sizeof *o);
    o->rank = rank;
    o->i = rank / m;
    o->j = rank % m;
    o->head0 = o->i * hg;
    o->col_first = helix_shard_col0(plan, rank, 0);
    o->col_stride = helix_shard_col0(plan, rank, 1) - o->col_first;   /* = d */

    /* weights: three column blocks [D, cols], biases, W_O rows [cols, D] */
    o->weight_bytes = 3 * D * cols * es;
    if (c->bias) o->weight_bytes += 3 * cols * es;
    if (c->out_proj) o->weight_bytes += cols * D * es;
    if (c->out_proj && c->bias && rank == 0) o->weight_bytes += D * es;

    o->x_bytes = BL * D * es;
    o->qkv_bytes = 3 * BL * cols * es;
    o->o_bytes = BL * cols * es;

    /* input broadcast from rank 0 over the world */
    o->phase[HELIX_PHASE_INPUT] = rank == 0 ? tr(BL * D * es * (P - 1), 0) : tr(0, BL * D * es);

    int64_t width = ds;
    if (c->mode == HELIX_MODE_EXACT && c->exact_algo == HELIX_EXACT_REGATHER) {
        width = d;
        if (plan->regather == HELIX_REGATHER_HEADS) {
            int64_t hh = hg / m;
            o->rg_head_begin = o->j * hh;
            o->rg_head_end = o->rg_head_begin + hh;
            /* send + recv pack buffers, Qf, Kf, Vf, Of: each B*L*hh*d = B*L*cols */
            o->exchange_bytes = 6 * BL * cols * es;
            int64_t per_peer = BL * hh * ds * es;
            o->phase[HELIX_PHASE_REGATHER] = tr(3 * (m - 1) * per_peer, 3 * (m - 1) * per_peer);
            o->phase[HELIX_PHASE_RETURN] = tr((m - 1) * per_peer, (m - 1) * per_peer);
        } else {
            helix_split_range(L, m, o->j, &o->rg_q_begin, &o->rg_q_end);
            int64_t nq = o->rg_q_end - o->rg_q_begin;
            int64_t full = BL * hg * d * es;                 /* K or V, whole group */
            int64_t send = BL * cols * es;
            if (B * nq * hg * d * es > send) send = B * nq * hg * d * es;
            /* send pack, recv (K/V all-gather, reused), Kf, Vf, Qf, Of */
            o->exchange_bytes = send + full + 2 * full + 2 * B * nq * hg * d * es;
            helix_traffic t = tr(2 * (m - 1) * BL * cols * es, 2 * (m - 1) * BL * cols * es);
            add(&t, tr(B * (L - nq) * cols * es, (m - 1) * B * nq * cols * es));
            o->phase[HELIX_PHASE_REGATHER] = t;
            o->phase[HELIX_PHASE_RETURN] = tr((m - 1) * B * nq * cols * es, B * (L - nq) * cols * es);
        }
    } else if (c->mode == HELIX_MODE_EXACT) {
        /* exact/scores: for each batch row and block of queries, the partial
         * scores of all hg heads are all-reduced (f32) along the row. */
        int64_t tq = HELIX_SCORES_TILE_Q;
        int64_t sc = hg * tq * L;
        o->exchange_bytes = helix_al64(sc * 4) + helix_al64(helix_comm_reduce_scratch_bytes(sc, (int)m, HELIX_F32));
        helix_traffic t = {0, 0};
        for (int64_t q0 = 0; q0 < L; q0 += tq) {
            int64_t q1 = q0 + tq < L ? q0 + tq : L;
            int64_t lk = c->causal ? q1 : L;
            const helix_comm_topo row = helix_comm_topo_one((int)m, (int)o->j);
            helix_traffic one = helix_traffic_allreduce(&row, hg * (q1 - q0) * lk, 4);
            t.sent_bytes += B * one.sent_bytes;
            t.recv_bytes += B * one.recv_bytes;
        }
        o->phase[HELIX_PHASE_ATTENTION] = t;
    }
    /* one workspace serves the projections, attention and W_O in turn */
    o->kernel_bytes = helix_attention_workspace_bytes(width);
    int64_t g = helix_gemm_workspace_bytes(BL, cols, D, c->dtype, c->dtype, c->dtype);
    if (g > o->kernel_bytes) o->kernel_bytes = g;
    if (c->out_proj) {
        g = helix_gemm_workspace_bytes(BL, D, cols, c->dtype, c->dtype, c->dtype);
        if (g > o->kernel_bytes) o->kernel_bytes = g;
    }

    if (c->out_proj) {
        o->agg_bytes = helix_al64(BL * D * es) + helix_comm_reduce_scratch_bytes(BL * D, (int)P, c->dtype);
        const helix_comm_topo all = helix_comm_topo_one((int)P, (int)rank);
        o->phase[HELIX_PHASE_REDUCE] = helix_traffic_reduce(&all, BL * D, 0, (size_t)es);
    } else {
        int64_t grp = BL * hg * d * es;                      /* one head group, all slices */
        o->agg_bytes = 2 * grp;                              /* all-gather recv + unpacked */
        if (rank == 0) o->agg_bytes += n * grp;              /* column gather recv        */
        int64_t chunk = BL * cols * es;
        o->phase[HELIX_PHASE_ROW_GATHER] = tr((m - 1) * chunk, (m - 1) * chunk);
        if (o->j == 0) o->phase[HELIX_PHASE_COL_GATHER] = o->i == 0 ? tr(0, (n - 1) * grp) : tr(grp, 0);
    }
    o->out_bytes = rank == 0 ? BL * D * es : 0;
    o->peak_bytes = helix_al64(o->weight_bytes) + helix_al64(o->x_bytes) + helix_al64(o->qkv_bytes) + helix_al64(o->o_bytes)
                  + helix_al64(o->exchange_bytes) + helix_al64(o->kernel_bytes) + helix_al64(o->agg_bytes)
                  + helix_al64(o->out_bytes);
    return HELIX_OK;
}
