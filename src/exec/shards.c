/* shards.c — the layer loaders over weights a caller holds whole: each
 * device cuts its own shards (src/plan/shard.c's layout) and converts them
 * to the run's storage type. Loaders that read a file or generate per
 * shard live with their source (src/io, src/io/seeded.c). */
#include "exec-impl.h"

/* The attention shards of device r from full f32 matrices (biases and
 * W_O only where the shard has room for them). */
static void cut_attention(const helix_plan *ap, int64_t r, helix_dtype t, const float *wq, const float *wk,
                          const float *wv, const float *wo, const float *bq, const float *bk, const float *bv,
                          const float *bo, const helix_layer_shard *s)
{
    helix_shard_cols(ap, r, wq, s->wq, t);
    helix_shard_cols(ap, r, wk, s->wk, t);
    helix_shard_cols(ap, r, wv, s->wv, t);
    if (s->wo) helix_shard_rows(ap, r, wo, s->wo, t);
    if (s->bq) {
        helix_shard_bias(ap, r, bq, s->bq, t);
        helix_shard_bias(ap, r, bk, s->bk, t);
        helix_shard_bias(ap, r, bv, s->bv, t);
    }
    if (s->bo) helix_from_f32(t, bo, s->bo, ap->D);
}

helix_status helix_shards_from_full(void *ctx, const helix_model_plan *p, int64_t r, int64_t l, helix_dtype t,
                                    const helix_layer_shard *s, helix_err *err)
{
    (void)err;
    const helix_layer_weights *w = &((const helix_model_weights *)ctx)->layer[l];
    const int64_t D = p->D, F = p->F, fc = p->fcols;
    const size_t es = helix_dtype_size(t);
    cut_attention(&p->attn, r, t, w->wq, w->wk, w->wv, w->wo, w->bq, w->bk, w->bv, w->bo, s);
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

helix_status helix_shards_attention(void *ctx, const helix_model_plan *p, int64_t r, int64_t l, helix_dtype t,
                                    const helix_layer_shard *s, helix_err *err)
{
    (void)l;
    const helix_weights *w = (const helix_weights *)ctx;
    const helix_plan *ap = &p->attn;
    if (w->load) return w->load(w->load_ctx, ap, r, t, s->wq, s->wk, s->wv, s->bq, s->bk, s->bv, s->wo, s->bo, err);
    cut_attention(ap, r, t, w->wq, w->wk, w->wv, w->wo, w->bq, w->bk, w->bv, w->bo, s);
    return HELIX_OK;
}
