/* seeded.c — random weights from a seed (splitmix64, helix_uniform): a
 * whole model in one f32 allocation, laid out layer after layer, or
 * generated shard by shard by the devices that use them, for whole models
 * (helix_model_weights_seeded) and one attention layer
 * (helix_attention_seeded). */
#include "helix_model.h"
#include "../core/err-impl.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Elements [pos, pos+n) of the stream that starts at state s0: the state
 * before element k is s0 + k * gamma, so any run is generated alone. */
static void gen(uint64_t s0, int64_t pos, int64_t n, float center, float a, float *dst)
{
    uint64_t st = helix_uniform_skip(s0, pos);
    for (int64_t k = 0; k < n; k++) dst[k] = center + helix_uniform(&st, a);
}

/* Where each tensor of layer l starts in the stream (the order below is
 * the order the weights are drawn), and how each is drawn. */
typedef struct {
    int64_t ln1_g, ln1_b, ln2_g, ln2_b, wq, wk, wv, wo, w1, w2, bq, bk, bv, bo, b1, b2;
    float aD, aF;
} stream_map;

static stream_map map_layer(int64_t D, int64_t F, int bias, int64_t l)
{
    const int64_t per = 4 * D + 4 * D * D + 2 * D * F + (bias ? 5 * D + F : 0);
    stream_map m;
    int64_t at = l * per;
    m.ln1_g = at; at += D; m.ln1_b = at; at += D; m.ln2_g = at; at += D; m.ln2_b = at; at += D;
    m.wq = at; at += D * D; m.wk = at; at += D * D; m.wv = at; at += D * D; m.wo = at; at += D * D;
    m.w1 = at; at += D * F; m.w2 = at; at += F * D;
    m.bq = at; at += D; m.bk = at; at += D; m.bv = at; at += D; m.bo = at; at += D; m.b1 = at; at += F; m.b2 = at;
    m.aD = 1.0f / sqrtf((float)D);
    m.aF = 1.0f / sqrtf((float)F);
    return m;
}

static uint64_t stream_start(uint64_t seed) { return seed * 0x2545f4914f6cdd1dull + 1; }

/* Point w's fields into buf, layer after layer, in the order the random
 * weights are drawn; returns the end. */
static float *carve(float *at, int64_t D, int64_t F, int bias, helix_layer_weights *w)
{
    w->ln1_g = at; at += D;
    w->ln1_b = at; at += D;
    w->ln2_g = at; at += D;
    w->ln2_b = at; at += D;
    w->wq = at; at += D * D;
    w->wk = at; at += D * D;
    w->wv = at; at += D * D;
    w->wo = at; at += D * D;
    w->w1 = at; at += D * F;
    w->w2 = at; at += F * D;
    if (bias) {
        w->bq = at; at += D;
        w->bk = at; at += D;
        w->bv = at; at += D;
        w->bo = at; at += D;
        w->b1 = at; at += F;
        w->b2 = at; at += D;
    }
    return at;
}

int64_t helix_model_weights_bytes(int64_t D, int64_t F, int64_t layers, int bias)
{
    if (D < 1 || F < 1 || layers < 1) return -1;
    const double per = 4.0 * D + 4.0 * D * D + 2.0 * D * F + (bias ? 5.0 * D + F : 0), b = per * layers * 4.0;
    return b < 9e18 ? (int64_t)b : -1;
}

helix_status helix_model_weights_alloc(int64_t D, int64_t F, int64_t layers, int bias, helix_model_weights *out,
                                       helix_err *err)
{
    memset(out, 0, sizeof *out);
    const int64_t bytes = helix_model_weights_bytes(D, F, layers, bias);
    if (bytes < 0) return helix_errf(err, HELIX_ERR_INVALID, "model weights: sizes must be positive and not overflow");
    helix_layer_weights *lw = calloc((size_t)layers, sizeof *lw);
    float *buf = (uint64_t)bytes < (uint64_t)SIZE_MAX ? calloc(1, (size_t)bytes) : NULL;
    if (!lw || !buf) {
        free(lw); free(buf);
        return helix_errf(err, HELIX_ERR_NOMEM, "model weights: cannot allocate %.3g bytes", (double)bytes);
    }
    float *at = buf;
    for (int64_t l = 0; l < layers; l++) at = carve(at, D, F, bias, &lw[l]);
    out->D = D; out->F = F; out->layers = layers; out->layer = lw;
    return HELIX_OK;
}

helix_status helix_model_weights_random(const helix_model_config *mc, uint64_t seed, helix_model_weights *out,
                                        helix_err *err)
{
    const int64_t D = mc->heads * mc->head_dim, F = mc->ffn;
    helix_status st = helix_model_weights_alloc(D, F, mc->layers, mc->bias, out, err);
    if (st) return st;
    const uint64_t s0 = stream_start(seed);
    for (int64_t l = 0; l < mc->layers; l++) {
        const helix_layer_weights *w = &out->layer[l];
        const stream_map m = map_layer(D, F, mc->bias, l);
        gen(s0, m.ln1_g, D, 1.0f, 0.1f, (float *)w->ln1_g);
        gen(s0, m.ln1_b, D, 0.0f, 0.1f, (float *)w->ln1_b);
        gen(s0, m.ln2_g, D, 1.0f, 0.1f, (float *)w->ln2_g);
        gen(s0, m.ln2_b, D, 0.0f, 0.1f, (float *)w->ln2_b);
        gen(s0, m.wq, D * D, 0, m.aD, (float *)w->wq);
        gen(s0, m.wk, D * D, 0, m.aD, (float *)w->wk);
        gen(s0, m.wv, D * D, 0, m.aD, (float *)w->wv);
        gen(s0, m.wo, D * D, 0, m.aD, (float *)w->wo);
        gen(s0, m.w1, D * F, 0, m.aD, (float *)w->w1);
        gen(s0, m.w2, F * D, 0, m.aF, (float *)w->w2);
        if (mc->bias) {
            gen(s0, m.bq, D, 0, 0.1f, (float *)w->bq);
            gen(s0, m.bk, D, 0, 0.1f, (float *)w->bk);
            gen(s0, m.bv, D, 0, 0.1f, (float *)w->bv);
            gen(s0, m.bo, D, 0, 0.1f, (float *)w->bo);
            gen(s0, m.b1, F, 0, 0.1f, (float *)w->b1);
            gen(s0, m.b2, D, 0, 0.1f, (float *)w->b2);
        }
    }
    return HELIX_OK;
}

/* n values of the stream from pos into dst (storage type t) at element
 * offset at, through the f32 row buffer */
static void put(uint64_t s0, int64_t pos, int64_t n, float center, float a, float *row, helix_dtype t, void *dst,
                int64_t at)
{
    gen(s0, pos, n, center, a, row);
    helix_from_f32(t, row, (char *)dst + (size_t)at * helix_dtype_size(t), n);
}

static helix_status seeded_load(void *ctx, const helix_model_plan *p, int64_t r, int64_t l, helix_dtype t,
                                const helix_layer_shard *s, helix_err *err)
{
    const helix_model_seeded *c = (const helix_model_seeded *)ctx;
    const int64_t D = c->D, F = c->F, fc = p->fcols, cols = p->attn.cols, ds = p->attn.ds, hg = p->attn.hg;
    if (D != p->D || F != p->F || l < 0 || l >= c->layers)
        return helix_errf(err, HELIX_ERR_INVALID, "seeded weights (D=%lld F=%lld, %lld layers) do not match the plan",
                          (long long)D, (long long)F, (long long)c->layers);
    float *row = malloc(sizeof(float) * (size_t)(D > F ? D : F));
    if (!row) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    const uint64_t s0 = stream_start(c->seed);
    const stream_map m = map_layer(D, F, c->bias, l);
    put(s0, m.ln1_g, D, 1.0f, 0.1f, row, t, s->ln1_g, 0);
    put(s0, m.ln1_b, D, 0.0f, 0.1f, row, t, s->ln1_b, 0);
    put(s0, m.ln2_g, D, 1.0f, 0.1f, row, t, s->ln2_g, 0);
    put(s0, m.ln2_b, D, 0.0f, 0.1f, row, t, s->ln2_b, 0);
    for (int64_t k = 0; k < hg; k++) {
        const int64_t c0 = helix_shard_col0(&p->attn, r, k);          /* this head's columns */
        for (int64_t i = 0; i < D; i++) {
            put(s0, m.wq + i * D + c0, ds, 0, m.aD, row, t, s->wq, i * cols + k * ds);
            put(s0, m.wk + i * D + c0, ds, 0, m.aD, row, t, s->wk, i * cols + k * ds);
            put(s0, m.wv + i * D + c0, ds, 0, m.aD, row, t, s->wv, i * cols + k * ds);
        }
        for (int64_t e = 0; e < ds; e++)                              /* W_O rows c0.. */
            put(s0, m.wo + (c0 + e) * D, D, 0, m.aD, row, t, s->wo, (k * ds + e) * D);
        if (s->bq) {
            put(s0, m.bq + c0, ds, 0, 0.1f, row, t, s->bq, k * ds);
            put(s0, m.bk + c0, ds, 0, 0.1f, row, t, s->bk, k * ds);
            put(s0, m.bv + c0, ds, 0, 0.1f, row, t, s->bv, k * ds);
        }
    }
    if (s->bo) put(s0, m.bo, D, 0, 0.1f, row, t, s->bo, 0);
    for (int64_t i = 0; i < D; i++) put(s0, m.w1 + i * F + r * fc, fc, 0, m.aD, row, t, s->w1, i * fc);
    for (int64_t i = 0; i < fc; i++) put(s0, m.w2 + (r * fc + i) * D, D, 0, m.aF, row, t, s->w2, i * D);
    if (s->b1) put(s0, m.b1 + r * fc, fc, 0, 0.1f, row, t, s->b1, 0);
    if (s->b2) put(s0, m.b2, D, 0, 0.1f, row, t, s->b2, 0);
    free(row);
    return HELIX_OK;
}

void helix_model_weights_seeded(const helix_model_config *mc, uint64_t seed, helix_model_seeded *ctx,
                                helix_model_weights *out)
{
    memset(out, 0, sizeof *out);
    ctx->seed = seed;
    ctx->D = mc->heads * mc->head_dim;
    ctx->F = mc->ffn;
    ctx->layers = mc->layers;
    ctx->bias = mc->bias;
    out->D = ctx->D;
    out->F = ctx->F;
    out->layers = mc->layers;
    out->load = seeded_load;
    out->load_ctx = ctx;
}

void helix_model_weights_free(helix_model_weights *w)
{
    if (!w || !w->layer) return;
    free((void *)w->layer[0].ln1_g);   /* the one buffer starts with layer 0's LN1 gamma */
    free((void *)w->layer);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------ one attention layer */

helix_status helix_attention_seeded_load(void *ctx, const helix_plan *p, int64_t rank, helix_dtype t, void *wq, void *wk,
                                         void *wv, void *bq, void *bk, void *bv, void *wo, void *bo, helix_err *err)
{
    const helix_attention_seeded *c = (const helix_attention_seeded *)ctx;
    const int64_t D = p->D, cols = p->cols, ds = p->ds, hg = p->hg;
    if (c->D != D) return helix_errf(err, HELIX_ERR_INVALID, "seeded weights have D=%lld, the plan D=%lld", (long long)c->D, (long long)D);
    float *row = malloc(sizeof(float) * (size_t)D);
    if (!row) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    const size_t es = helix_dtype_size(t);
    /* the stream: wq, wk, wv, wo [D, D] from c->first, then 4 biases [D] */
    const int64_t w0 = c->first, b0 = c->first + 4 * D * D;
    void *const w[3] = {wq, wk, wv}, *const b[3] = {bq, bk, bv};
#define PUT(pos, n, a, dst, at) do {                                                        \
        gen(c->state, (pos), (n), 0.0f, (a), row);                                          \
        for (int64_t q_ = 0; q_ < (n); q_++) row[q_] = helix_round_to(c->dtype, row[q_]);  \
        helix_from_f32(t, row, (char *)(dst) + (size_t)(at) * es, (n));                     \
    } while (0)
    for (int64_t k = 0; k < hg; k++) {
        const int64_t c0 = helix_shard_col0(p, rank, k);
        for (int x = 0; x < 3; x++) {
            for (int64_t i = 0; i < D; i++) PUT(w0 + x * D * D + i * D + c0, ds, c->a_weight, w[x], i * cols + k * ds);
            if (b[x]) PUT(b0 + x * D + c0, ds, c->a_bias, b[x], k * ds);
        }
        for (int64_t e = 0; wo && e < ds; e++) PUT(w0 + 3 * D * D + (c0 + e) * D, D, c->a_weight, wo, (k * ds + e) * D);
    }
    if (bo) PUT(b0 + 3 * D, D, c->a_bias, bo, 0);
#undef PUT
    free(row);
    return HELIX_OK;
}
