/* attention-impl.h — private: the layout of one attention worker's
 * workspace (helix_attention_workspace_bytes), carved in one place for the
 * kernel and for exact/scores, which reuses the same buffers. */
#ifndef HELIX_ATTENTION_IMPL_H
#define HELIX_ATTENTION_IMPL_H

#include "helix.h"

typedef struct {
    float *q;    /* [HELIX_TILE_Q][width]  query tile (16-bit inputs)   */
    float *k;    /* [HELIX_TILE_K][width]  key tile                     */
    float *v;    /* [HELIX_TILE_K][width]  value tile                   */
    float *s;    /* [HELIX_TILE_Q][HELIX_TILE_K] scores / probabilities */
    float *acc;  /* [HELIX_TILE_Q][width]  output accumulator           */
    float *mx;   /* [HELIX_TILE_Q]         running max                  */
    float *sum;  /* [HELIX_TILE_Q]         running sum                  */
} helix_attn_ws;

helix_attn_ws helix_attn_ws_carve(void *base, int64_t width);

#endif
