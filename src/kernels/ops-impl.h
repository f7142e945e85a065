/* ops-impl.h — the CPU kernels the CPU backend wraps besides GEMM and
 * flash attention (helix.h): row-wise block pieces and the exact/scores
 * halves. */
#ifndef HELIX_OPS_IMPL_H
#define HELIX_OPS_IMPL_H

#include "helix_backend.h"

/* work: f32 [3 D] (layernorm), [2 D] (residual), [cols] (activate) */
void helix_cpu_layernorm(helix_dtype t, const void *x, const void *g, const void *b, void *y, int64_t rows,
                         int64_t D, float *work);
void helix_cpu_residual(helix_dtype t, void *a, const void *p, int64_t rows, int64_t D, float *work);
void helix_cpu_activate(helix_act act, helix_dtype t, void *h, int64_t rows, int64_t cols, float *work);

/* exact/scores halves (helix_backend.h); work: the attention workspace
 * of width a->width */
void helix_cpu_partial_scores(const helix_scores_args *a, void *work);
void helix_cpu_softmax_v(const helix_scores_args *a, void *work);

#endif
