/* attention-impl.h — private: the layout of one attention worker's
 * workspace (helix_attention_workspace_bytes), carved in one place for the
 * kernel and for exact/scores, which reuses the same buffers. */
#ifndef HELIX_ATTENTION_IMPL_H
#define HELIX_ATTENTION_IMPL_H

#include "helix.h"

/* The kernel's tiles are T x T, T = helix_attn_tile(width) >= this. */
#define HELIX_ATTN_TILE_MIN 128
int64_t helix_attn_tile(int64_t width);

typedef struct {
    float *q;    /* [T][width]  query tile (16-bit inputs)   */
    float *k;    /* [T][width]  key tile                     */
    float *v;    /* [T][width]  value tile                   */
    float *s;    /* [T][T]      scores / probabilities       */
    float *acc;  /* [T][width]  output accumulator           */
    float *mx;   /* [T]         running max                  */
    float *sum;  /* [T]         running sum                  */
} helix_attn_ws;

helix_attn_ws helix_attn_ws_carve(void *base, int64_t width);

#endif
