/* shard.c — cut full weights into one device's blocks (SPEC "Weight
 * partition"): device (i, j) holds, for each of the hg heads k of group i,
 * the columns [(i*hg+k)*d + j*ds, +ds) of W_Q, W_K, W_V, and the same rows
 * of W_O. Exactly 1/P of each matrix. */
#include "helix.h"

/* The one place the layout's column formula is written. */
int64_t helix_shard_col0(const helix_plan *p, int64_t rank, int64_t k)
{
    int64_t m = p->cfg.slices, i = rank / m, j = rank % m;
    return (i * p->hg + k) * p->cfg.head_dim + j * p->ds;
}
#define col0 helix_shard_col0

void helix_shard_cols(const helix_plan *p, int64_t rank, const float *w, void *dst, helix_dtype t)
{
    const int64_t D = p->D, cols = p->cols, es = (int64_t)helix_dtype_size(t);
    for (int64_t r = 0; r < D; r++)
        for (int64_t k = 0; k < p->hg; k++)
            helix_from_f32(t, w + r * D + col0(p, rank, k),
                           (char *)dst + (r * cols + k * p->ds) * es, p->ds);
}

void helix_shard_bias(const helix_plan *p, int64_t rank, const float *b, void *dst, helix_dtype t)
{
    const int64_t es = (int64_t)helix_dtype_size(t);
    for (int64_t k = 0; k < p->hg; k++)
        helix_from_f32(t, b + col0(p, rank, k), (char *)dst + k * p->ds * es, p->ds);
}

void helix_shard_rows(const helix_plan *p, int64_t rank, const float *w, void *dst, helix_dtype t)
{
    const int64_t D = p->D, es = (int64_t)helix_dtype_size(t);
    for (int64_t k = 0; k < p->hg; k++)
        for (int64_t s = 0; s < p->ds; s++)
            helix_from_f32(t, w + (col0(p, rank, k) + s) * D,
                           (char *)dst + (k * p->ds + s) * D * es, D);
}
