/* helix_cuda.h — the GPU path: per-device attention kernels on tensor cores,
 * cuBLAS GEMMs, and an NCCL engine for helix_comm.h bootstrapped over MPI.
 *
 * Optional and loaded only when used: the kernels, cuBLAS and NCCL live in
 * a module of their own, libhelix-cuda.so (built when CMake finds nvcc and
 * the CUDA toolkit; NCCL when found), which the core library loads with
 * dlopen on the first call below. The core and the CLI never link CUDA.
 * Where the module was not built, is not found, or does not load, every
 * function returns HELIX_ERR_UNSUPPORTED saying why and helix_cuda_built()
 * is 0. With it but without a GPU, helix_cuda_device_count says so
 * (HELIX_ERR_UNSUPPORTED, the CUDA error in the message).
 *
 * Device buffers are plain pointers from helix_cuda_malloc; tensors have
 * the CPU path's layouts. All calls are on the context's stream. */
#ifndef HELIX_CUDA_H
#define HELIX_CUDA_H

#include "helix.h"
#include "helix_comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the GPU module is loaded (this loads it: cudart and cuBLAS are
 * then mapped into the process). */
int helix_cuda_built(void);
/* Where the module is and what it was built with, or why there is none
 * (into buf); 1 when loaded. Loads it, as helix_cuda_built. */
int helix_cuda_module_status(char *buf, size_t n);
/* Where the module file is and what it was built with, read from the
 * file without loading it (so the caller maps nothing of CUDA), or why
 * there is none; 1 when found. Whether it loads: helix_cuda_module_status. */
int helix_cuda_module_find(char *buf, size_t n);

typedef struct {
    char name[256];
    int cc_major, cc_minor;     /* compute capability                        */
    int sms;                    /* streaming multiprocessors                  */
    int clock_khz;              /* boost clock as the driver reports it       */
    double mem_bytes;
    double peak_f16;            /* dense f16/bf16 tensor-core FLOP/s          */
    double peak_f32;            /* FP32 FMA FLOP/s (CUDA cores)               */
    const char *peak_source;    /* where the peaks come from (table or rule)  */
} helix_cuda_device;

helix_status helix_cuda_device_count(int *count, helix_err *err);
/* Peaks: a table keyed by compute capability and SM count (H100 SXM,
 * H100 PCIe, H200, A100), else per-SM rates x SMs x clock. Overridable
 * with HELIX_GPU_PEAK_F16 / HELIX_GPU_PEAK_F32 (FLOP/s). */
helix_status helix_cuda_device_info(int device, helix_cuda_device *out, helix_err *err);

/* A device, a compute stream, a communication stream and a cuBLAS handle. */
typedef struct helix_cuda_ctx helix_cuda_ctx;
helix_status helix_cuda_ctx_new(int device, helix_cuda_ctx **out, helix_err *err);
void helix_cuda_ctx_free(helix_cuda_ctx *c);
helix_status helix_cuda_sync(helix_cuda_ctx *c, helix_err *err);

helix_status helix_cuda_malloc(helix_cuda_ctx *c, size_t n_bytes, void **out, helix_err *err);
void helix_cuda_free(void *p);
helix_status helix_cuda_upload(helix_cuda_ctx *c, void *dst, const void *src, size_t n_bytes, helix_err *err);
helix_status helix_cuda_download(helix_cuda_ctx *c, void *dst, const void *src, size_t n_bytes, helix_err *err);

/* ------------------------------------------------------------ kernel lab
 * Attention over `heads` independent heads: q, k, v, o [heads, L, width]
 * (f32 accumulation and softmax statistics), causal or not. Numbered
 * variants, each checked against the CPU reference by the tests and timed
 * by the benchmark (the CUDA backend, helix_backend.h, runs the same
 * kernels on strided [B, L, H, width] tensors with q_pos0 and kv_len):
 *   0 rows    one warp per query row, scalar f32 online softmax, K/V tiles
 *             widened in shared memory: any storage type, widths 1-512
 *   1 wmma    flash-style: a block owns a query tile, K/V tiles stream
 *             through shared memory, QK^T and PV on tensor cores (WMMA
 *             16x16x16), online softmax in f32, causal tiles skipped:
 *             f16/bf16, widths 64, 128, 256, 512
 *   2 mma     FlashAttention-2 style on mma.sync.m16n8k16: S, P and O in
 *             registers (P from S's accumulators straight into the A
 *             operand), K/V double-buffered by cp.async, padded shared
 *             rows, V through ldmatrix.trans, key tile from the device's
 *             opt-in shared memory, heaviest causal tiles first:
 *             f16/bf16, widths 64, 128, 256 */
enum { HELIX_CUDA_ATTN_ROWS = 0, HELIX_CUDA_ATTN_WMMA = 1, HELIX_CUDA_ATTN_MMA = 2, HELIX_CUDA_ATTN_VARIANTS = 3 };
/* the backend's choice: the first of mma, wmma, rows that fits (the
 * order is the design's expectation, not yet a measurement on a GPU) */
#define HELIX_CUDA_ATTN_DEFAULT HELIX_CUDA_ATTN_MMA
const char *helix_cuda_attention_name(int variant);
helix_status helix_cuda_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L,
                                  int64_t width, int causal, float scale, const void *q, const void *k,
                                  const void *v, void *o, helix_err *err);

/* C[M,N] = A[M,K] B[K,N], row-major, storage t, f32 accumulation: the
 * CUDA backend's own GEMM (cuBLASLt, CUBLAS_COMPUTE_32F), so the
 * benchmark times what the layers run. */
helix_status helix_cuda_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K, const void *A,
                             const void *B, void *C, helix_err *err);

/* Time `iters` calls of the last-launched kind of work: start/stop events
 * on the compute stream. */
helix_status helix_cuda_timer_start(helix_cuda_ctx *c, helix_err *err);
helix_status helix_cuda_timer_stop(helix_cuda_ctx *c, double *seconds, helix_err *err);

/* ------------------------------------------------------------ NCCL engine
 * A helix communicator whose buffers are device memory: NCCL grouped
 * send/recv for the primitives, a device kernel for the reduce-scatter's
 * sums (f32, rank order: bitwise what the CPU engines give), ncclCommSplit
 * for rows and columns. Created from an MPI world: rank 0 makes the id
 * (ncclGetUniqueId), MPI broadcasts it, every rank picks its GPU from the
 * ranks on its host (hash of the host name, gathered over MPI) and calls
 * ncclCommInitRank. Collectives run on the context's communication stream,
 * ordered after the compute stream's work and before its next by events.
 * More ranks on a host than GPUs is refused (NCCL cannot share a GPU). */
helix_status helix_nccl_world(helix_comm_t *mpi_world, helix_cuda_ctx **ctx, helix_comm_t **out, helix_err *err);

/* The CUDA backend (helix_backend.h) on an existing context — the NCCL
 * world's, so that its collectives and the backend's kernels are ordered
 * on the same compute stream. The context stays the caller's (free it
 * after helix_backend_free). */
struct helix_backend;
helix_status helix_backend_cuda_on(helix_cuda_ctx *ctx, struct helix_backend **out, helix_err *err);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_CUDA_H */
