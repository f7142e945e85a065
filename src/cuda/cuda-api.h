/* cuda-api.h — the table the GPU module (libhelix-cuda.so, built from
 * src/cuda/module.c, runtime.cu, attention.cu and src/comm/nccl.c) hands
 * to the loader (src/cuda/loader.c) in the core library. The core never
 * links CUDA: a CPU run never maps cuBLAS. Bump HELIX_CUDA_API_VERSION
 * whenever a field changes. */
#ifndef HELIX_CUDA_API_H
#define HELIX_CUDA_API_H

#include "helix_cuda.h"
#include "helix_backend.h"

#define HELIX_CUDA_API_VERSION 3
#define HELIX_CUDA_MODULE_SYMBOL "helix_cuda_module"

typedef struct {
    int version;                     /* HELIX_CUDA_API_VERSION */
    const char *built_with;          /* "CUDA 13.0, sm_90, NCCL 2.28.3" */
    int has_nccl;
    helix_status (*device_count)(int *count, helix_err *err);
    helix_status (*device_info)(int device, helix_cuda_device *out, helix_err *err);
    helix_status (*ctx_new)(int device, helix_cuda_ctx **out, helix_err *err);
    void (*ctx_free)(helix_cuda_ctx *c);
    helix_status (*sync)(helix_cuda_ctx *c, helix_err *err);
    helix_status (*malloc_)(helix_cuda_ctx *c, size_t n_bytes, void **out, helix_err *err);
    void (*free_)(void *p);
    helix_status (*upload)(helix_cuda_ctx *c, void *dst, const void *src, size_t n_bytes, helix_err *err);
    helix_status (*download)(helix_cuda_ctx *c, void *dst, const void *src, size_t n_bytes, helix_err *err);
    const char *(*attention_name)(int variant);
    helix_status (*attention)(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L, int64_t width,
                              int causal, float scale, const void *q, const void *k, const void *v, void *o,
                              helix_err *err);
    helix_status (*gemm)(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K, const void *A,
                         const void *B, void *C, helix_err *err);
    helix_status (*timer_start)(helix_cuda_ctx *c, helix_err *err);
    helix_status (*timer_stop)(helix_cuda_ctx *c, double *seconds, helix_err *err);
    helix_status (*nccl_world)(helix_comm_t *mpi_world, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err);
    helix_status (*backend_new)(int device, helix_backend **out, helix_err *err);
    helix_status (*backend_on)(helix_cuda_ctx *ctx, helix_backend **out, helix_err *err);
} helix_cuda_api;

/* in the module (src/cuda/backend.cu) */
#ifdef __cplusplus
extern "C"
#endif
helix_status helix_cuda_backend_new(int device, helix_backend **out, helix_err *err);
#ifdef __cplusplus
extern "C"
#endif
helix_status helix_cuda_backend_on(helix_cuda_ctx *ctx, helix_backend **out, helix_err *err);

#endif
