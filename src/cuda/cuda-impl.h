/* cuda-impl.h — private to the GPU path: the context, error helpers, and
 * the device reduce the NCCL engine calls. C and CUDA C++ both include it. */
#ifndef HELIX_CUDA_IMPL_H
#define HELIX_CUDA_IMPL_H

#include <cuda_runtime_api.h>
#include <cublasLt.h>

#include "helix_cuda.h"
#include "helix_backend.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "../core/err-impl.h"

struct helix_cuda_ctx {
    int device;
    cudaStream_t stream;        /* compute                                  */
    cudaStream_t comm_stream;   /* collectives                              */
    cudaEvent_t t0, t1;         /* timer                                    */
    cublasLtHandle_t lt;        /* GEMMs (helix_cuda_matmul)                */
    void *lt_ws;                /* its workspace, HELIX_CUDA_LT_WS bytes     */
};

#define HELIX_CUDA_LT_WS ((size_t)32 << 20)

/* C = A B (+ bias) of helix_gemm_args (row-major, leading dimensions, one
 * storage type, f32 accumulation) by cuBLASLt on c's stream, the bias as
 * its epilogue: the one GEMM of the GPU path (the backend's and the
 * kernel lab's). err may be NULL. */
helix_status helix_cuda_matmul(helix_cuda_ctx *c, const helix_gemm_args *a, helix_err *err);

/* cudaSetDevice(c->device): every entry point with a context calls it. */
helix_status helix_cuda_use(helix_cuda_ctx *c, helix_err *err);
/* HELIX_ERR_INTERNAL with "what: <CUDA error name and text>" unless ok. */
helix_status helix_cuda_check(cudaError_t e, const char *what, helix_err *err);

/* rows [n_rows][n] of dtype t in device memory: rows[0] = sum over the rows
 * in row order with f32 accumulation (what the CPU engines compute). */
helix_status helix_cuda_sum_rows(cudaStream_t s, void *rows, int64_t n_rows, int64_t n, helix_dtype t);

/* One attention call in helix_attn_args terms (device pointers; kv_len a
 * device array [B] or NULL). Strides in elements. */
typedef struct {
    int64_t B, H, width, Lq, Lk, q_pos0;
    int64_t q_sb, q_sl, q_sh, kv_sb, kv_sl, kv_sh, o_sb, o_sl, o_sh;
    const int64_t *kv_len;
    int causal;
    float scale;
    helix_dtype t;
    const void *q, *k, *v;
    void *o;
} helix_cuda_attn;
/* 1 when kernel-lab variant v runs a (shapes, types, alignment), else 0
 * with why (may be NULL) saying what it needs. */
int helix_cuda_attention_fits(int variant, const helix_cuda_attn *a, const char **why);
/* variant v (HELIX_CUDA_ATTN_*) on stream s; the caller checked fits */
cudaError_t helix_cuda_attention_launch(cudaStream_t s, int variant, const helix_cuda_attn *a);

#ifdef __cplusplus
}
#endif
#endif
