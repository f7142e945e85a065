/* exec-impl.h — private state of one device while it runs a forward pass. */
#ifndef HELIX_EXEC_IMPL_H
#define HELIX_EXEC_IMPL_H

#include "helix.h"
#include "helix_comm.h"
#include "helix_backend.h"
#include "helix_model.h"

typedef struct {
    const helix_plan *plan;
    helix_device_plan dp;
    helix_comm_t *world, *row, *col;
    helix_backend *be;                           /* all compute and copies   */
    helix_dtype t;
    size_t es;
    helix_comm_counters *ctr;                    /* phase bookkeeping        */
    double *tm;                                  /* [HELIX_NPHASES] seconds  */
    /* carved from the arena, in the order of the plan's sizes */
    void *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo; /* shards                   */
    void *x;                                     /* [B, L, D]                */
    void *q, *k, *v;                             /* [B, L, hg, ds]           */
    void *o;                                     /* [B, L, hg, ds]           */
    char *exch;                                  /* exchange_bytes           */
    void *work;                                  /* kernel workspace         */
    char *agg;                                   /* aggregation              */
    void *out;                                   /* [B, L, D] on rank 0      */
} helix_dev;

/* Start a phase (bytes are booked to it from now on); returns its start. */
double helix_exec_phase(helix_dev *d, helix_phase ph);
/* Add the time since t0 to phase ph. */
void helix_exec_phase_end(helix_dev *d, helix_phase ph, double t0);

/* Projections of d->x into Q/K/V, attention (sliced, or exact by regather
 * or score reduce) into d->o and, when partial is not NULL, the W_O partial
 * product [BL, D] (+ d->bo where set). Books phases QKV .. OUT_PROJ. */
helix_status helix_exec_attention_core(helix_dev *d, void *partial);
helix_status helix_exec_regather(helix_dev *d);
/* No W_O: all-gather the slices along the row into whole heads, then
 * column 0 gathers the head groups into d->out on rank 0. */
helix_status helix_exec_concat_heads(helix_dev *d);
helix_status helix_exec_scores(helix_dev *d);

/* Reshuffle between "wide" [rows][n_chunks][chunk] and "packed"
 * [n_chunks][rows][chunk] on the device (one 2-D copy per chunk).
 * split != 0: src is wide, dst packed; split == 0: src is packed, dst
 * wide. chunk is in bytes. */
helix_status helix_exec_split_cols(helix_dev *d, const char *src, char *dst, int64_t rows, int64_t n_chunks,
                                   int64_t chunk_bytes, int split);
/* Device-to-device 2-D copy: rows of width bytes, pitches in bytes. */
helix_status helix_exec_copy2d(helix_dev *d, void *dst, int64_t dpitch, const void *src, int64_t spitch,
                               int64_t width, int64_t rows);
/* Attention on the device: the plan's scale, causal mask and key padding,
 * Lq queries from global position q_pos0 against all L keys, H heads of
 * `width`, dense [B, L, H, width] buffers. */
helix_status helix_exec_attend(helix_dev *d, const void *q, const void *k, const void *v, void *o,
                               int64_t Lq, int64_t q_pos0, int64_t H, int64_t width);
/* d->be's GEMM: C[M,N] = A[M,K] B[K,N] (+ bias), all of the run's dtype. */
helix_status helix_exec_gemm(helix_dev *d, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                             const void *B, int64_t ldb, const void *bias, void *C, int64_t ldc);

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
helix_status helix_exec_grid(int P, int threads, helix_exec_rank_fn fn, void *ctx, helix_err *err);

#endif
