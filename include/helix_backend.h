/* helix_backend.h — the compute interface every device kind implements.
 *
 * The executor reaches memory, copies and kernels only through these
 * operations, the way it reaches other devices only through helix_comm.h.
 * A backend owns "device memory" (for the CPU backend that is host memory;
 * for a GPU it is the GPU's), and every pointer an operation takes is a
 * device pointer unless its name says host. Operations on one backend run
 * in issue order; `now` waits for what was issued before it reads the
 * clock, so phase times are right for asynchronous devices too.
 *
 * Numerics are the backend's contract: the CPU backend wraps the CPU
 * kernels unchanged (same bits as calling them directly).
 */
#ifndef HELIX_BACKEND_H
#define HELIX_BACKEND_H

#include "helix.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct helix_backend helix_backend;

typedef enum { HELIX_ACT_GELU = 0, HELIX_ACT_GELU_TANH, HELIX_ACT_RELU } helix_act;

/* C[M,N] = A[M,K] B[K,N] (+ bias[N]) with f32 accumulation; every
 * matrix row-major with its leading dimension in elements; storage types
 * may differ. */
typedef struct {
    int64_t M, N, K;
    helix_dtype ta, tb, tc;
    const void *A, *B, *bias;     /* bias: [N] of type tc, or NULL */
    void *C;
    int64_t lda, ldb, ldc;
} helix_gemm_args;

/* exact/scores, one block of nq queries (q0..q0+nq-1) of batch row b
 * against keys 0..lk-1, on one device's slice (width = features per
 * slice) of H heads. q, k, v, o: dense [B, L, H, width] of type dtype.
 * sc: f32 [H][nq][lk]. partial_scores writes sc = Q_j K_jᵀ (unscaled);
 * once sc holds the row's sum, softmax_v turns it into the softmax
 * (scale, causal, kv_len as in helix_attn_args) and writes this slice's
 * output rows of o. */
typedef struct {
    int64_t B, L, H, width;
    helix_dtype dtype;
    const void *q, *k, *v;
    void *o;
    int64_t b, q0, nq, lk;
    float scale;
    int causal;
    const int64_t *kv_len;
    float *sc;
} helix_scores_args;

typedef enum { HELIX_COPY_H2D = 0, HELIX_COPY_D2H, HELIX_COPY_D2D } helix_copy_kind;

typedef struct {
    const char *name;
    /* 1: device pointers are host pointers (the executor may let a weight
     * loader write straight into the arena) */
    int host_memory;

    /* memory: 64-byte aligned; alloc of 0 bytes gives NULL */
    helix_status (*alloc)(helix_backend *be, int64_t n_bytes, void **out);
    void (*free)(helix_backend *be, void *p);
    helix_status (*memset)(helix_backend *be, void *p, int value, int64_t n_bytes);

    /* copies: n bytes, or `rows` rows of width_bytes each, rows dpitch /
     * spitch bytes apart */
    helix_status (*copy)(helix_backend *be, void *dst, const void *src, int64_t n_bytes, helix_copy_kind kind);
    helix_status (*copy2d)(helix_backend *be, void *dst, int64_t dpitch, const void *src, int64_t spitch,
                           int64_t width_bytes, int64_t rows, helix_copy_kind kind);
    /* host f32 -> device storage type t (round to nearest even), and back */
    helix_status (*upload_f32)(helix_backend *be, void *dst, helix_dtype t, const float *host_src, int64_t n);
    helix_status (*download_f32)(helix_backend *be, float *host_dst, const void *src, helix_dtype t, int64_t n);

    /* compute; work: the op's workspace, sized by the *_workspace_bytes
     * query, 64-byte aligned */
    helix_status (*gemm)(helix_backend *be, const helix_gemm_args *a, void *work);
    int64_t (*gemm_workspace_bytes)(helix_backend *be, const helix_gemm_args *a);
    helix_status (*attention)(helix_backend *be, const helix_attn_args *a, void *work);
    int64_t (*attention_workspace_bytes)(helix_backend *be, int64_t width);
    helix_status (*partial_scores)(helix_backend *be, const helix_scores_args *a, void *work);
    helix_status (*softmax_v)(helix_backend *be, const helix_scores_args *a, void *work);
    /* rows of D: y = LN(x) gamma + beta, eps 1e-5, f32 arithmetic; y may
     * be x. work: norm_workspace_bytes(D). */
    helix_status (*layernorm)(helix_backend *be, helix_dtype t, const void *x, const void *gamma,
                              const void *beta, void *y, int64_t rows, int64_t D, void *work);
    int64_t (*norm_workspace_bytes)(helix_backend *be, int64_t D);
    /* in place on rows x cols elements of type t (f32 arithmetic) */
    helix_status (*activate)(helix_backend *be, helix_act act, helix_dtype t, void *h, int64_t rows,
                             int64_t cols, void *work);
    /* a += p, rows x D elements of type t (f32 arithmetic) */
    helix_status (*residual_add)(helix_backend *be, helix_dtype t, void *a, const void *p, int64_t rows,
                                 int64_t D, void *work);

    /* seconds on a monotonic clock, after everything issued so far is done */
    double (*now)(helix_backend *be);
    /* Backends whose memory the host cannot address (host_memory 0) also
     * give the communicator what it needs to move and sum their buffers:
     * sum_rows sets rows[0] = the sum of n_rows rows of n elements of type
     * t, in row order with f32 accumulation (what the host loop gives),
     * and copy (above) with HELIX_COPY_D2D must be able to read another
     * instance's memory on the same machine and be complete on return.
     * NULL on host-memory backends. */
    helix_status (*sum_rows)(helix_backend *be, void *rows, int64_t n_rows, int64_t n, helix_dtype t);
    /* frees an instance made by a constructor below; NULL: a shared one */
    void (*destroy)(helix_backend *be);
} helix_backend_ops;

struct helix_backend {
    const helix_backend_ops *ops;
    void *self;
};

/* The CPU backend (the kernels of helix.h on the path helix_isa_current()
 * names). One shared instance: it holds no per-run state. */
helix_backend *helix_backend_cpu(void);

/* A CUDA backend on GPU `device` (from the GPU module, loaded on first
 * use; HELIX_ERR_UNSUPPORTED saying why where there is none): device
 * memory from cudaMalloc, its own stream, cuBLASLt GEMMs (leading
 * dimensions, bias epilogue, f32 accumulation), the attention, scores,
 * LayerNorm, activation and residual kernels of src/cuda/backend.cu.
 * Several instances may share one GPU (virtual devices): each has its
 * own stream and handles, and their memory is reachable from the others. */
helix_status helix_backend_cuda_new(int device, helix_backend **out, helix_err *err);
/* Frees an instance from a constructor; the shared CPU backend is left. */
void helix_backend_free(helix_backend *be);

/* The runs of helix.h / helix_model.h with device r on be[r] (be NULL:
 * every device on the CPU backend, as the plain calls). Devices on a
 * backend without host memory get their weight shards staged through
 * host memory and copied once; X and Y stay host f32 (the program's
 * upload and download steps move them). In-process, the engine moves
 * and sums device buffers through the backends' copy and sum_rows; an
 * engine of its own (the MPI one) must reach device memory itself
 * (helix_comm_ops.copy), else the run is refused. */
helix_status helix_grid_run_on(const helix_plan *plan, const helix_weights *w, const float *x, void *y,
                               int threads, helix_backend *const *be, helix_device_stats *stats, helix_err *err);
helix_status helix_device_run_on(const helix_plan *plan, struct helix_comm *world, helix_backend *be,
                                 const helix_weights *w, const float *x, void *y, helix_device_stats *stats,
                                 helix_err *err);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_BACKEND_H */
