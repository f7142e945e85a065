/* exec-impl.h — private to the executor (src/exec). */
#ifndef HELIX_EXEC_IMPL_H
#define HELIX_EXEC_IMPL_H

#include "helix.h"
#include "helix_comm.h"
#include "helix_backend.h"
#include "helix_model.h"

/* Layer loaders over weights the caller holds whole: full f32 model
 * weights (ctx: helix_model_weights), and attention weights (ctx:
 * helix_weights: its own loader when set, else cut from its matrices). */
helix_status helix_shards_from_full(void *ctx, const helix_model_plan *p, int64_t trank, int64_t layer, helix_dtype t,
                                    const helix_layer_shard *s, helix_err *err);
helix_status helix_shards_attention(void *ctx, const helix_model_plan *p, int64_t trank, int64_t layer, helix_dtype t,
                                    const helix_layer_shard *s, helix_err *err);

/* One device's part of a job; helix_exec_grid runs P of them on threads
 * over the in-process engine (threads: cap on ranks computing at once). */
typedef helix_status (*helix_exec_rank_fn)(void *ctx, helix_comm_t *comm, int rank, helix_err *err);
/* mem: [P], how rank r's engine reaches its buffers (NULL, or an entry
 * with copy NULL: host memory) */
helix_status helix_exec_grid(int P, int threads, helix_exec_rank_fn fn, void *ctx, const helix_comm_memory *mem,
                             helix_err *err);

#endif
