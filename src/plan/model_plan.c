/* plan.c (model) — validate a model and a layout for P devices and derive,
 * without allocating, each device's layers, buffer sizes and the bytes it
 * sends and receives per phase. The attention part is helix.h's own plan
 * over one tensor group; everything else is written out below. */
#include "helix_model.h"
#include "helix_program.h"
#include "plan-impl.h"
#include "../core/err-impl.h"
#include "../core/util-impl.h"

#include <stdio.h>
#include <string.h>

#define MAX_BYTES ((int64_t)1 << 56)

helix_model_config helix_model_config_default(void)
{
    helix_model_config c;
    memset(&c, 0, sizeof c);
    c.heads = 16; c.head_dim = 64; c.ffn = 4096; c.layers = 2;
    c.batch = 2; c.seq = 256; c.dtype = HELIX_F32;
    return c;
}

helix_status helix_layout_parse(const char *s, helix_layout *l, helix_err *err)
{
    memset(l, 0, sizeof *l);
    l->microbatches = 1;
    l->replicas = 1;
    const char *whole = s;
    long long a = 0, b = 0;
    int used = 0;
    char rest[32] = "", buf[64];
    /* dpK- prefix, -sp suffix, then the layout */
    if (sscanf(s, "dp%lld%n", &a, &used) == 1 && (s[used] == 0 || s[used] == '-')) {
        if (a < 1) return helix_errf(err, HELIX_ERR_INVALID, "layout '%s': dpK needs K >= 1 replicas", whole);
        l->replicas = a;
        s = s[used] ? s + used + 1 : "tp1";
    }
    size_t len = strlen(s);
    if (len >= sizeof buf) return helix_errf(err, HELIX_ERR_INVALID, "unknown layout '%s' (too long)", whole);
    memcpy(buf, s, len + 1);
    if (len > 3 && !strcmp(buf + len - 3, "-sp")) { l->seq_parallel = 1; buf[len - 3] = 0; }
    s = buf;
    if (sscanf(s, "helix%lldx%lld%n", &a, &b, &used) == 2) {
        l->kind = HELIX_LAYOUT_HELIX;
        l->groups = a; l->slices = b;
        snprintf(rest, sizeof rest, "%s", s + used);
        if (!strcmp(rest, "-sliced")) l->mode = HELIX_MODE_SLICED;
        else if (!strcmp(rest, "-exact") || !strcmp(rest, "-exact-regather")) l->mode = HELIX_MODE_EXACT;
        else if (!strcmp(rest, "-exact-scores")) { l->mode = HELIX_MODE_EXACT; l->exact_algo = HELIX_EXACT_SCORES; }
        else return helix_errf(err, HELIX_ERR_INVALID, "layout '%s': after helixNxM write -sliced, -exact or -exact-scores", whole);
    } else if (sscanf(s, "tp%lldpp%lld%n", &a, &b, &used) == 2 && s[used] == 0) {
        l->kind = HELIX_LAYOUT_TPPP; l->tp = a; l->pp = b;
    } else if (sscanf(s, "tp%lld%n", &a, &used) == 1 && s[used] == 0) {
        l->kind = HELIX_LAYOUT_TPPP; l->tp = a; l->pp = 1;
    } else if (sscanf(s, "pp%lld%n", &a, &used) == 1 && s[used] == 0) {
        l->kind = HELIX_LAYOUT_TPPP; l->tp = 1; l->pp = a;
    } else {
        return helix_errf(err, HELIX_ERR_INVALID,
                          "unknown layout '%s' (expected helixNxM-sliced, helixNxM-exact[-scores], tpTppP, tpT or ppP, "
                          "optionally as dpK-LAYOUT and LAYOUT-sp; or dpK)", whole);
    }
    if (l->kind == HELIX_LAYOUT_HELIX ? (l->groups < 1 || l->slices < 1) : (l->tp < 1 || l->pp < 1))
        return helix_errf(err, HELIX_ERR_INVALID, "layout '%s': sizes must be positive", whole);
    return HELIX_OK;
}

void helix_layout_name(const helix_layout *l, char *out, size_t on)
{
    const int R = l->replicas > 1;
    if (R && l->kind == HELIX_LAYOUT_TPPP && l->tp == 1 && l->pp == 1 && !l->seq_parallel) {
        snprintf(out, on, "dp%lld", (long long)l->replicas);
        return;
    }
    char base[64], dp[32] = "";
    if (l->kind == HELIX_LAYOUT_HELIX)
        snprintf(base, sizeof base, "helix%lldx%lld-%s%s", (long long)l->groups, (long long)l->slices,
                 helix_mode_name(l->mode), l->mode == HELIX_MODE_EXACT && l->exact_algo == HELIX_EXACT_SCORES ? "-scores" : "");
    else if (l->pp == 1)
        snprintf(base, sizeof base, "tp%lld", (long long)l->tp);
    else if (l->tp == 1)
        snprintf(base, sizeof base, "pp%lld", (long long)l->pp);
    else
        snprintf(base, sizeof base, "tp%lldpp%lld", (long long)l->tp, (long long)l->pp);
    if (R) snprintf(dp, sizeof dp, "dp%lld-", (long long)l->replicas);
    snprintf(out, on, "%s%s%s", dp, base, l->seq_parallel ? "-sp" : "");
}

helix_status helix_norm_parse(const char *s, helix_norm *out)
{
    if (!strcmp(s, "pre")) *out = HELIX_NORM_PRE;
    else if (!strcmp(s, "post")) *out = HELIX_NORM_POST;
    else return HELIX_ERR_INVALID;
    return HELIX_OK;
}

helix_status helix_act_parse(const char *s, helix_act *out)
{
    if (!strcmp(s, "gelu")) *out = HELIX_ACT_GELU;
    else if (!strcmp(s, "gelu-tanh")) *out = HELIX_ACT_GELU_TANH;
    else if (!strcmp(s, "relu")) *out = HELIX_ACT_RELU;
    else return HELIX_ERR_INVALID;
    return HELIX_OK;
}

const char *helix_norm_name(helix_norm n) { return n == HELIX_NORM_POST ? "post" : "pre"; }
const char *helix_act_name(helix_act a)
{
    return a == HELIX_ACT_RELU ? "relu" : a == HELIX_ACT_GELU_TANH ? "gelu-tanh" : "gelu";
}

double helix_model_flops(const helix_model_config *c)
{
    const double D = (double)(c->heads * c->head_dim), BL = (double)(c->batch * c->seq), L = (double)c->seq;
    const double pairs = c->causal ? L * (L + 1) / 2 : L * L;       /* (query, key) pairs per row */
    double per_layer = 2 * BL * D * 4 * D                           /* Q, K, V, W_O          */
                     + 4 * (double)c->batch * pairs * D             /* QK^T and PV, all heads */
                     + 4 * BL * D * (double)c->ffn;                  /* FC1 and FC2           */
    return per_layer * (double)c->layers;
}

static int64_t prod(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > MAX_BYTES) return -1;
    return r;
}

helix_status helix_model_plan_init(const helix_model_config *mc, const helix_layout *lay, int64_t P,
                                   helix_model_plan *plan, helix_err *err)
{
    if (!mc || !lay || !plan) return helix_errf(err, HELIX_ERR_INVALID, "helix_model_plan_init: NULL argument");
    const struct { const char *name; int64_t v; } pos[] = {
        {"heads h (--heads)", mc->heads}, {"head width d (--head-dim)", mc->head_dim}, {"MLP width F (--ffn)", mc->ffn},
        {"layers (--layers)", mc->layers}, {"batch B (--batch)", mc->batch}, {"sequence length L (--seq)", mc->seq},
        {"devices P", P}, {"micro-batches (--microbatches)", lay->microbatches},
    };
    for (size_t k = 0; k < sizeof pos / sizeof pos[0]; k++)
        if (pos[k].v < 1) return helix_errf(err, HELIX_ERR_INVALID, "%s must be a positive integer, got %lld", pos[k].name, (long long)pos[k].v);
    if (lay->ranks_per_node < 0)
        return helix_errf(err, HELIX_ERR_INVALID, "ranks per node (--ranks-per-node) must be >= 1 (or 0: one node), got %lld",
                          (long long)lay->ranks_per_node);
    char name[64];
    helix_layout_name(lay, name, sizeof name);
    memset(plan, 0, sizeof *plan);
    plan->model = *mc;
    plan->layout = *lay;
    plan->P = P;
    const int64_t R = lay->replicas > 1 ? lay->replicas : 1;
    plan->layout.replicas = R;
    if (P % R)
        return helix_errf(err, HELIX_ERR_INVALID, "layout %s: %lld devices cannot hold %lld replicas of the same size",
                          name, (long long)P, (long long)R);
    if (mc->batch % R)
        return helix_errf(err, HELIX_ERR_INVALID, "layout %s: batch B=%lld is not divisible by the %lld replicas (each runs B/%lld sequences)",
                          name, (long long)mc->batch, (long long)R, (long long)R);
    plan->R = R;
    plan->Pr = P / R;
    const int64_t Pr = plan->Pr;
    helix_config ac = helix_config_default();
    ac.heads = mc->heads; ac.head_dim = mc->head_dim; ac.seq = mc->seq; ac.dtype = mc->dtype;
    ac.causal = mc->causal; ac.bias = mc->bias; ac.out_proj = 1; ac.scale = 0;
    if (lay->kind == HELIX_LAYOUT_HELIX) {
        if (prod(prod(lay->groups, lay->slices), R) != P)
            return helix_errf(err, HELIX_ERR_INVALID, "layout %s needs %sn*m = %lld devices, but there are %lld",
                              name, R > 1 ? "replicas*" : "", (long long)prod(prod(lay->groups, lay->slices), R), (long long)P);
        ac.groups = lay->groups; ac.slices = lay->slices; ac.mode = lay->mode; ac.exact_algo = lay->exact_algo;
        plan->T = Pr; plan->S = 1;
    } else if (lay->kind == HELIX_LAYOUT_TPPP) {
        if (prod(prod(lay->tp, lay->pp), R) != P)
            return helix_errf(err, HELIX_ERR_INVALID, "layout %s needs %st*p = %lld devices, but there are %lld",
                              name, R > 1 ? "replicas*" : "", (long long)prod(prod(lay->tp, lay->pp), R), (long long)P);
        if (mc->heads % lay->tp)
            return helix_errf(err, HELIX_ERR_INVALID, "layout %s: heads h=%lld are not divisible by tensor parallel t=%lld (each device needs whole heads)",
                              name, (long long)mc->heads, (long long)lay->tp);
        ac.groups = lay->tp; ac.slices = 1; ac.mode = HELIX_MODE_SLICED;  /* m = 1: sliced is exact */
        plan->T = lay->tp; plan->S = lay->pp;
    } else {
        return helix_errf(err, HELIX_ERR_INVALID, "unknown layout kind %d", (int)lay->kind);
    }
    if ((mc->batch / R) % lay->microbatches)
        return helix_errf(err, HELIX_ERR_INVALID, "batch B=%lld%s is not divisible by micro-batches=%lld",
                          (long long)(mc->batch / R), R > 1 ? " of a replica" : "", (long long)lay->microbatches);
    if (lay->seq_parallel && plan->T < 2)
        return helix_errf(err, HELIX_ERR_INVALID, "layout %s: sequence parallel (-sp) needs a tensor group of 2 or more devices", name);
    if (mc->ffn % plan->T)
        return helix_errf(err, HELIX_ERR_INVALID, "layout %s: MLP width F=%lld is not divisible by the %lld devices of a tensor group",
                          name, (long long)mc->ffn, (long long)plan->T);
    if (mc->layers < plan->S)
        return helix_errf(err, HELIX_ERR_INVALID, "layout %s: %lld layers cannot fill %lld pipeline stages",
                          name, (long long)mc->layers, (long long)plan->S);
    plan->mb = lay->microbatches;
    plan->Bm = mc->batch / R / plan->mb;
    ac.batch = plan->Bm;
    helix_status st = helix_plan_init(&ac, &plan->attn, err);
    if (st) return st;
    plan->D = plan->attn.D;
    plan->F = mc->ffn;
    plan->fcols = mc->ffn / plan->T;
    /* the largest products below: the model's weights, X, the MLP hidden */
    int64_t es = (int64_t)helix_dtype_size(mc->dtype);
    if (prod(prod(prod(plan->D, plan->F), 2 * es + 8), mc->layers) < 0 ||
        prod(prod(prod(mc->batch, mc->seq), plan->D + plan->F), 8 * es) < 0)
        return helix_errf(err, HELIX_ERR_INVALID, "model too large: D=%lld F=%lld, %lld layers, B=%lld L=%lld needs more than 2^56 bytes somewhere",
                          (long long)plan->D, (long long)plan->F, (long long)mc->layers, (long long)mc->batch, (long long)mc->seq);
    return HELIX_OK;
}

helix_status helix_model_plan_attention(const helix_config *cfg, helix_model_plan *plan, helix_err *err)
{
    if (!cfg || !plan) return helix_errf(err, HELIX_ERR_INVALID, "helix_model_plan_attention: NULL argument");
    memset(plan, 0, sizeof *plan);
    helix_status st = helix_plan_init(cfg, &plan->attn, err);
    if (st) return st;
    helix_model_config *mc = &plan->model;
    mc->block = HELIX_BLOCK_ATTENTION;
    mc->heads = cfg->heads; mc->head_dim = cfg->head_dim; mc->layers = 1;
    mc->batch = cfg->batch; mc->seq = cfg->seq; mc->dtype = cfg->dtype;
    mc->causal = cfg->causal; mc->bias = cfg->bias;
    plan->layout = (helix_layout){HELIX_LAYOUT_HELIX, cfg->groups, cfg->slices, cfg->mode, cfg->exact_algo, 0, 0, 1};
    plan->layout.replicas = 1;
    plan->layout.input_from_root = 1;       /* X on rank 0, broadcast */
    if (cfg->ranks_per_node < 0)
        return helix_errf(err, HELIX_ERR_INVALID, "ranks per node must be >= 1 (or 0: one node), got %lld",
                          (long long)cfg->ranks_per_node);
    plan->layout.ranks_per_node = cfg->ranks_per_node < plan->attn.P ? cfg->ranks_per_node : 0;
    plan->layout.native_collectives = cfg->native_collectives;
    plan->D = plan->attn.D;
    plan->R = 1;
    plan->P = plan->Pr = plan->T = plan->attn.P;
    plan->S = plan->mb = 1;
    plan->Bm = cfg->batch;
    return HELIX_OK;
}

/* Shapes and buffer sizes of device `rank` (everything but traffic). */
static helix_status sizes(const helix_model_plan *p, int64_t rank, helix_model_device_plan *o)
{
    if (!p || !o || rank < 0 || rank >= p->P) return HELIX_ERR_INVALID;
    const helix_model_config *c = &p->model;
    const int64_t D = p->D, T = p->T, S = p->S, fc = p->fcols, es = (int64_t)helix_dtype_size(c->dtype);
    const int64_t BL = c->batch * c->seq, BmL = p->Bm * c->seq;
    memset(o, 0, sizeof *o);
    o->rank = rank;
    o->replica = rank / p->Pr;
    o->stage = rank % p->Pr / T;
    o->trank = rank % p->Pr % T;
    helix_split_range(c->layers, S, o->stage, &o->layer_begin, &o->layer_end);
    const int64_t nl = o->layer_end - o->layer_begin;
    helix_plan_device(&p->attn, o->trank, &o->attn);
    if (c->block == HELIX_BLOCK_ATTENTION) {
        /* the attention device's own buffers, in the same arena order */
        const helix_device_plan *a = &o->attn;
        o->weight_bytes = a->weight_bytes;
        o->act_bytes = a->x_bytes;
        o->attn_bytes = helix_al64(a->qkv_bytes) + helix_al64(a->o_bytes) + helix_al64(a->exchange_bytes);
        o->kernel_bytes = a->kernel_bytes;
        o->partial_bytes = a->agg_bytes;
        o->out_bytes = a->out_bytes;
        o->peak_bytes = a->peak_bytes;
        return HELIX_OK;
    }

    /* per layer: attention shards (+ b_O on tensor rank 0), LN1/LN2 gamma
     * and beta, FC1 columns [D, fc] (+ b1), FC2 rows [fc, D] (+ b2 on
     * tensor rank 0) */
    int64_t per = o->attn.weight_bytes + 4 * D * es + 2 * D * fc * es;
    if (c->bias) per += fc * es + (o->trank == 0 ? D * es : 0);
    o->weight_bytes = nl * per;
    o->act_bytes = BmL * D * es;
    o->norm_bytes = BmL * D * es;
    o->attn_bytes = helix_al64(o->attn.qkv_bytes) + helix_al64(o->attn.o_bytes) + helix_al64(o->attn.exchange_bytes);
    o->hidden_bytes = BmL * fc * es;
    o->kernel_bytes = o->attn.kernel_bytes;
    int64_t g = helix_gemm_workspace_bytes(BmL, fc, D, c->dtype, c->dtype, c->dtype);
    if (g > o->kernel_bytes) o->kernel_bytes = g;
    g = helix_gemm_workspace_bytes(BmL, D, fc, c->dtype, c->dtype, c->dtype);
    if (g > o->kernel_bytes) o->kernel_bytes = g;
    /* LayerNorm and GELU work on f32 rows: x, gamma, beta [D] and one [fc] */
    if (4 * (3 * D + fc) > o->kernel_bytes) o->kernel_bytes = 4 * (3 * D + fc);
    int64_t scratch = helix_comm_reduce_scratch_bytes(BmL * D, (int)T, c->dtype);
    if (p->layout.seq_parallel) scratch = helix_comm_reduce_scatter_scratch_bytes(BmL, D, (int)T, c->dtype);
    o->partial_bytes = helix_al64(BmL * D * es) + scratch;
    o->out_bytes = (S > 1 && o->stage == S - 1 && o->trank == 0) ? BL / p->R * D * es : 0;
    o->gather_bytes = p->R > 1 && rank == 0 ? p->R * BmL * D * es : 0;
    o->peak_bytes = helix_al64(o->weight_bytes) + helix_al64(o->act_bytes) +
                    helix_al64(o->norm_bytes) + o->attn_bytes + helix_al64(o->hidden_bytes) +
                    helix_al64(o->kernel_bytes) + helix_al64(o->partial_bytes) + helix_al64(o->out_bytes) +
                    helix_al64(o->gather_bytes);
    return HELIX_OK;
}

helix_status helix_model_plan_device(const helix_model_plan *p, int64_t rank, helix_model_device_plan *o)
{
    helix_status st = sizes(p, rank, o);
    if (st) return st;
    /* traffic: what the device's program (src/plan/program.c) moves */
    return helix_program_traffic(p, rank, o->phase, o->messages);
}

helix_status helix_model_plan_sizes(const helix_model_plan *p, int64_t rank, helix_model_device_plan *o)
{
    return sizes(p, rank, o);
}
