/* attention-impl.h — private: the layout of one attention worker's
 * workspace (helix_attention_workspace_bytes), carved in one place for the
 * kernel and for exact/scores, which reuses the same buffers. */
#ifndef HELIX_ATTENTION_IMPL_H
#define HELIX_ATTENTION_IMPL_H

#include "kern-impl.h"

/* The kernel takes blocks of HELIX_ATTN_TQ queries against key tiles of
 * T = helix_attn_tile(width) >= HELIX_ATTN_TILE_MIN keys. */
#define HELIX_ATTN_TILE_MIN 128
#define HELIX_ATTN_TQ 512
int64_t helix_attn_tile(int64_t width);

/* Query rows are padded by one micro-kernel strip,
 * widths rounded up to 32 (wr); sizes in floats; Tr = HELIX_ATTN_TQ + HELIX_MR_MAX. */
typedef struct {
    float *q;    /* [Tr][wr]  packed query block (AMX: bf16, zero-padded) */
    float *k;    /* [T][wr]   packed key tile, transposed                 */
    float *v;    /* [T][wr]   packed value tile                           */
    float *s;    /* [Tr][T]   scores / probabilities                      */
    float *p;    /* [Tr][T]   packed probabilities (AMX: bf16)            */
    float *acc;  /* [Tr][wr]  output accumulator                          */
    float *mx;   /* [Tr]      running max                                 */
    float *sum;  /* [Tr]      running sum                                 */
} helix_attn_ws;

helix_attn_ws helix_attn_ws_carve(void *base, int64_t width);

#endif
