/* backend.cu — the CUDA backend (helix_backend.h): device memory from
 * cudaMalloc, one stream per instance, GEMMs by cuBLASLt (leading
 * dimensions, bias epilogue, f32 accumulation: helix_cuda_matmul, the
 * kernel lab's GEMM too), attention by the kernels
 * of attention.cu (mma, else wmma, else rows), and small kernels for
 * exact/scores, LayerNorm, activations, residual adds and conversions.
 * Several instances may share one GPU (virtual devices); copies between
 * them go device to device. Operations are asynchronous on the stream
 * except those that hand memory back to the host or to another instance
 * (copies, uploads, downloads, now), which wait for the stream. */
#include "cuda-impl.h"
#include "elem.cuh"
#include "helix_backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    helix_backend pub;
    helix_cuda_ctx *ctx;         /* stream, cuBLASLt (helix_cuda_matmul) */
    void *tmp;                   /* device scratch: conversions, kv_len */
    size_t tmp_cap;
    int attention_variant;       /* -1: the best that fits */
    int own_ctx;                 /* made here (else the NCCL engine's, shared) */
} cbe;

static cbe *C(helix_backend *be) { return (cbe *)be->self; }

static helix_status ck(cudaError_t e)
{
    return e == cudaSuccess ? HELIX_OK : e == cudaErrorMemoryAllocation ? HELIX_ERR_NOMEM : HELIX_ERR_INTERNAL;
}
#define CK(expr) do { helix_status s_ = ck(expr); if (s_) return s_; } while (0)
#define USE(b) CK(cudaSetDevice((b)->ctx->device))

static helix_status sync_stream(cbe *b) { return ck(cudaStreamSynchronize(b->ctx->stream)); }

/* device scratch of at least n bytes (the stream is idle when it grows) */
static helix_status scratch(cbe *b, size_t n, void **out)
{
    if (n > b->tmp_cap) {
        CK(cudaStreamSynchronize(b->ctx->stream));
        if (b->tmp) cudaFree(b->tmp);
        b->tmp = NULL;
        b->tmp_cap = 0;
        CK(cudaMalloc(&b->tmp, n));
        b->tmp_cap = n;
    }
    *out = b->tmp;
    return HELIX_OK;
}

/* ------------------------------------------------------------ memory */

static helix_status c_alloc(helix_backend *be, int64_t n, void **out)
{
    *out = NULL;
    if (n <= 0) return HELIX_OK;
    USE(C(be));
    return ck(cudaMalloc(out, (size_t)n));   /* 256-byte aligned */
}

static void c_free(helix_backend *be, void *p)
{
    if (!p) return;
    cudaSetDevice(C(be)->ctx->device);
    cudaFree(p);
}

static helix_status c_memset(helix_backend *be, void *p, int v, int64_t n)
{
    if (n <= 0) return HELIX_OK;
    USE(C(be));
    return ck(cudaMemsetAsync(p, v, (size_t)n, C(be)->ctx->stream));
}

static cudaMemcpyKind kind_of(helix_copy_kind k)
{
    return k == HELIX_COPY_H2D ? cudaMemcpyHostToDevice : k == HELIX_COPY_D2H ? cudaMemcpyDeviceToHost
                                                                              : cudaMemcpyDeviceToDevice;
}

/* complete on return: the engine's copies read other instances' memory
 * and the host reads what comes back */
static helix_status c_copy(helix_backend *be, void *dst, const void *src, int64_t n, helix_copy_kind k)
{
    if (n <= 0 || dst == src) return HELIX_OK;
    cbe *b = C(be);
    USE(b);
    CK(cudaMemcpyAsync(dst, src, (size_t)n, kind_of(k), b->ctx->stream));
    return sync_stream(b);
}

static helix_status c_copy2d(helix_backend *be, void *dst, int64_t dpitch, const void *src, int64_t spitch,
                             int64_t width, int64_t rows, helix_copy_kind k)
{
    if (rows <= 0 || width <= 0) return HELIX_OK;
    cbe *b = C(be);
    USE(b);
    CK(cudaMemcpy2DAsync(dst, (size_t)dpitch, src, (size_t)spitch, (size_t)width, (size_t)rows, kind_of(k),
                         b->ctx->stream));
    return k == HELIX_COPY_D2D ? HELIX_OK : sync_stream(b);
}

/* dst = src element by element, each storage type to the other through f32 */
template <typename S, typename D> __global__ void k_convert(const S *src, D *dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        helix_st(dst, i, helix_ld(src, i));
}

template <typename T> static cudaError_t from_f32(cudaStream_t s, const float *src, void *dst, int64_t n)
{
    k_convert<float, T><<<helix_blocks(n), 256, 0, s>>>(src, (T *)dst, n);
    return cudaGetLastError();
}

template <typename T> static cudaError_t to_f32(cudaStream_t s, const void *src, float *dst, int64_t n)
{
    k_convert<T, float><<<helix_blocks(n), 256, 0, s>>>((const T *)src, dst, n);
    return cudaGetLastError();
}

static helix_status c_upload(helix_backend *be, void *dst, helix_dtype t, const float *src, int64_t n)
{
    if (n <= 0) return HELIX_OK;
    if (t == HELIX_F32) return c_copy(be, dst, src, n * 4, HELIX_COPY_H2D);
    cbe *b = C(be);
    USE(b);
    void *tmp = NULL;
    helix_status st = scratch(b, (size_t)n * 4, &tmp);
    if (st) return st;
    CK(cudaMemcpyAsync(tmp, src, (size_t)n * 4, cudaMemcpyHostToDevice, b->ctx->stream));
    CK(HELIX_BY_TYPE(t, from_f32, b->ctx->stream, (const float *)tmp, dst, n));
    return sync_stream(b);
}

static helix_status c_download(helix_backend *be, float *dst, const void *src, helix_dtype t, int64_t n)
{
    if (n <= 0) return HELIX_OK;
    if (t == HELIX_F32) return c_copy(be, dst, src, n * 4, HELIX_COPY_D2H);
    cbe *b = C(be);
    USE(b);
    void *tmp = NULL;
    helix_status st = scratch(b, (size_t)n * 4, &tmp);
    if (st) return st;
    CK(HELIX_BY_TYPE(t, to_f32, b->ctx->stream, src, (float *)tmp, n));
    CK(cudaMemcpyAsync(dst, tmp, (size_t)n * 4, cudaMemcpyDeviceToHost, b->ctx->stream));
    return sync_stream(b);
}

/* ------------------------------------------------------------ GEMM */

static helix_status c_gemm(helix_backend *be, const helix_gemm_args *a, void *work)
{
    (void)work;
    return helix_cuda_matmul(C(be)->ctx, a, NULL);
}

static int64_t c_gemm_ws(helix_backend *be, const helix_gemm_args *a) { (void)be; (void)a; return 0; }

/* ------------------------------------------------------------ attention */

/* kv_len (host [n], may be NULL) on the device, ordered before the next
 * kernel on the stream (the scratch is reused only after it, in order) */
static helix_status device_kv_len(cbe *b, const int64_t *host, int64_t n, const int64_t **out)
{
    *out = NULL;
    if (!host) return HELIX_OK;
    void *d = NULL;
    helix_status st = scratch(b, sizeof(int64_t) * (size_t)n, &d);
    if (st) return st;
    CK(cudaMemcpyAsync(d, host, sizeof(int64_t) * (size_t)n, cudaMemcpyHostToDevice, b->ctx->stream));
    *out = (const int64_t *)d;
    return HELIX_OK;
}

static helix_status c_attention(helix_backend *be, const helix_attn_args *x, void *work)
{
    (void)work;
    cbe *b = C(be);
    USE(b);
    helix_cuda_attn a;
    memset(&a, 0, sizeof a);
    a.B = x->B; a.H = x->H; a.width = x->width; a.Lq = x->Lq; a.Lk = x->Lk; a.q_pos0 = x->q_pos0;
    a.q_sb = x->q_sb; a.q_sl = x->q_sl; a.q_sh = x->q_sh;
    a.kv_sb = x->kv_sb; a.kv_sl = x->kv_sl; a.kv_sh = x->kv_sh;
    a.o_sb = x->o_sb; a.o_sl = x->o_sl; a.o_sh = x->o_sh;
    a.causal = x->causal; a.scale = x->scale; a.t = x->dtype;
    a.q = x->q; a.k = x->k; a.v = x->v; a.o = x->o;
    if (x->B <= 0 || x->Lq <= 0 || x->H <= 0) return HELIX_OK;
    helix_status st = device_kv_len(b, x->kv_len, x->B, &a.kv_len);
    if (st) return st;
    int v = b->attention_variant;   /* else the first that fits of mma, wmma, rows (helix_cuda.h) */
    if (v < 0) v = helix_cuda_attention_fits(HELIX_CUDA_ATTN_MMA, &a, NULL)    ? HELIX_CUDA_ATTN_MMA
                 : helix_cuda_attention_fits(HELIX_CUDA_ATTN_WMMA, &a, NULL) ? HELIX_CUDA_ATTN_WMMA
                                                                             : HELIX_CUDA_ATTN_ROWS;
    if (!helix_cuda_attention_fits(v, &a, NULL)) return HELIX_ERR_UNSUPPORTED;
    CK(helix_cuda_attention_launch(b->ctx->stream, v, &a));
    return HELIX_OK;
}

static int64_t c_attention_ws(helix_backend *be, int64_t width) { (void)be; (void)width; return 0; }

/* exact/scores, [B, L, H, width] dense: sc[h][i][j] = q(b, q0+i, h) . k(b, j, h) */
template <typename T> __global__ void k_partial_scores(helix_scores_args a)
{
    const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, i = blockIdx.y, h = blockIdx.z;
    if (j >= a.lk) return;
    const T *q = (const T *)a.q + ((a.b * a.L + a.q0 + i) * a.H + h) * a.width;
    const T *k = (const T *)a.k + ((a.b * a.L + j) * a.H + h) * a.width;
    float s = 0.0f;
    for (int64_t e = 0; e < a.width; e++) s += helix_ld(q, e) * helix_ld(k, e);
    a.sc[(h * a.nq + i) * a.lk + j] = s;
}

template <typename T> static cudaError_t partial_scores(cudaStream_t s, const helix_scores_args *a)
{
    dim3 grid((unsigned)((a->lk + 127) / 128), (unsigned)a->nq, (unsigned)a->H);
    k_partial_scores<T><<<grid, 128, 0, s>>>(*a);
    return cudaGetLastError();
}

__device__ float block_reduce(float v, float *red, int is_max)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
    for (int off = 16; off > 0; off /= 2) {
        const float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = is_max ? fmaxf(v, o) : v + o;
    }
    __syncthreads();   /* red is free */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = is_max ? -INFINITY : 0.0f;
    for (int w = 0; w < nw; w++) r = is_max ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

/* one block per (query i, head h): the row's softmax into sc (zeros past
 * the keys it sees), then o(b, q0+i, h) = softmax . v */
template <typename T> __global__ void k_softmax_v(helix_scores_args a, const int64_t *kv_len)
{
    __shared__ float red[32];
    const int64_t i = blockIdx.x, h = blockIdx.y;
    float *si = a.sc + (h * a.nq + i) * a.lk;
    int64_t nk = a.causal ? a.q0 + i + 1 : a.lk;
    if (nk > a.lk) nk = a.lk;
    if (kv_len && kv_len[a.b] < nk) nk = kv_len[a.b];
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < nk; j += blockDim.x) mx = fmaxf(mx, si[j] * a.scale);
    mx = block_reduce(mx, red, 1);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < a.lk; j += blockDim.x) {
        const float p = j < nk ? expf(si[j] * a.scale - mx) : 0.0f;
        si[j] = p;
        sum += p;
    }
    sum = block_reduce(sum, red, 0);
    __syncthreads();   /* every p is in si */
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    T *o = (T *)a.o + ((a.b * a.L + a.q0 + i) * a.H + h) * a.width;
    for (int64_t e = threadIdx.x; e < a.width; e += blockDim.x) {
        float acc = 0.0f;
        for (int64_t j = 0; j < nk; j++) acc += si[j] * helix_ld((const T *)a.v, ((a.b * a.L + j) * a.H + h) * a.width + e);
        helix_st(o, e, acc * inv);
    }
}

template <typename T> static cudaError_t softmax_v(cudaStream_t s, const helix_scores_args *a, const int64_t *kv)
{
    dim3 grid((unsigned)a->nq, (unsigned)a->H);
    k_softmax_v<T><<<grid, 256, 0, s>>>(*a, kv);
    return cudaGetLastError();
}

static helix_status c_scores(helix_backend *be, const helix_scores_args *a, void *work)
{
    (void)work;
    if (a->nq <= 0 || a->lk <= 0 || a->H <= 0) return HELIX_OK;
    if (a->nq > 65535 || a->H > 65535) return HELIX_ERR_UNSUPPORTED;
    cbe *b = C(be);
    USE(b);
    CK(HELIX_BY_TYPE(a->dtype, partial_scores, b->ctx->stream, a));
    return HELIX_OK;
}

static helix_status c_softmax_v(helix_backend *be, const helix_scores_args *a, void *work)
{
    (void)work;
    if (a->nq <= 0 || a->H <= 0) return HELIX_OK;
    if (a->nq > 65535 || a->H > 65535) return HELIX_ERR_UNSUPPORTED;
    cbe *b = C(be);
    USE(b);
    const int64_t *kv = NULL;
    helix_status st = device_kv_len(b, a->kv_len, a->b + 1, &kv);
    if (st) return st;
    CK(HELIX_BY_TYPE(a->dtype, softmax_v, b->ctx->stream, a, kv));
    return HELIX_OK;
}

/* ------------------------------------------------------------ elementwise */

/* one block per row: mean, then variance about it (f32), then y */
template <typename T> __global__ void k_layernorm(const T *x, const T *g, const T *bb, T *y, int64_t D)
{
    __shared__ float red[32];
    const T *xr = x + blockIdx.x * D;
    T *yr = y + blockIdx.x * D;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) s += helix_ld(xr, c);
    const float mean = block_reduce(s, red, 0) / (float)D;
    float v = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
        const float d = helix_ld(xr, c) - mean;
        v += d * d;
    }
    const float inv = rsqrtf(block_reduce(v, red, 0) / (float)D + 1e-5f);
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)   /* y may be x: each element read, then written, by one thread */
        helix_st(yr, c, (helix_ld(xr, c) - mean) * inv * helix_ld(g, c) + helix_ld(bb, c));
}

template <typename T>
static cudaError_t layernorm(cudaStream_t s, const void *x, const void *g, const void *b, void *y, int64_t rows, int64_t D)
{
    k_layernorm<T><<<(unsigned)rows, 256, 0, s>>>((const T *)x, (const T *)g, (const T *)b, (T *)y, D);
    return cudaGetLastError();
}

static helix_status c_layernorm(helix_backend *be, helix_dtype t, const void *x, const void *g, const void *bb, void *y,
                                int64_t rows, int64_t D, void *work)
{
    (void)work;
    if (rows <= 0 || D <= 0) return HELIX_OK;
    if (rows > INT32_MAX) return HELIX_ERR_UNSUPPORTED;
    cbe *b = C(be);
    USE(b);
    CK(HELIX_BY_TYPE(t, layernorm, b->ctx->stream, x, g, bb, y, rows, D));
    return HELIX_OK;
}

static int64_t c_norm_ws(helix_backend *be, int64_t D) { (void)be; (void)D; return 0; }

template <typename T> __global__ void k_activate(T *h, int64_t n, int act)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = helix_ld(h, i);
        float r;
        if (act == HELIX_ACT_GELU) r = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        else if (act == HELIX_ACT_GELU_TANH) r = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        else r = v > 0.0f ? v : 0.0f;
        helix_st(h, i, r);
    }
}

template <typename T> static cudaError_t activate(cudaStream_t s, void *h, int64_t n, int act)
{
    k_activate<T><<<helix_blocks(n), 256, 0, s>>>((T *)h, n, act);
    return cudaGetLastError();
}

static helix_status c_activate(helix_backend *be, helix_act act, helix_dtype t, void *h, int64_t rows, int64_t cols,
                               void *work)
{
    (void)work;
    if (rows <= 0 || cols <= 0) return HELIX_OK;
    if (act != HELIX_ACT_GELU && act != HELIX_ACT_GELU_TANH && act != HELIX_ACT_RELU) return HELIX_ERR_INVALID;
    cbe *b = C(be);
    USE(b);
    CK(HELIX_BY_TYPE(t, activate, b->ctx->stream, h, rows * cols, (int)act));
    return HELIX_OK;
}

template <typename T> __global__ void k_residual(T *a, const T *p, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        helix_st(a, i, helix_ld(a, i) + helix_ld(p, i));
}

template <typename T> static cudaError_t residual(cudaStream_t s, void *a, const void *p, int64_t n)
{
    k_residual<T><<<helix_blocks(n), 256, 0, s>>>((T *)a, (const T *)p, n);
    return cudaGetLastError();
}

static helix_status c_residual(helix_backend *be, helix_dtype t, void *a, const void *p, int64_t rows, int64_t D,
                               void *work)
{
    (void)work;
    if (rows <= 0 || D <= 0) return HELIX_OK;
    cbe *b = C(be);
    USE(b);
    CK(HELIX_BY_TYPE(t, residual, b->ctx->stream, a, p, rows * D));
    return HELIX_OK;
}

static helix_status c_sum_rows(helix_backend *be, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    cbe *b = C(be);
    USE(b);
    helix_status st = helix_cuda_sum_rows(b->ctx->stream, rows, n_rows, n, t);
    return st ? st : sync_stream(b);   /* the engine's next copy may come from another instance */
}

static double c_now(helix_backend *be)
{
    cbe *b = C(be);
    cudaSetDevice(b->ctx->device);
    cudaStreamSynchronize(b->ctx->stream);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void c_destroy(helix_backend *be)
{
    cbe *b = C(be);
    if (!b) return;
    if (b->ctx) {
        cudaSetDevice(b->ctx->device);
        cudaStreamSynchronize(b->ctx->stream);
    }
    if (b->tmp) cudaFree(b->tmp);
    if (b->own_ctx) helix_cuda_ctx_free(b->ctx);
    free(b);
}

static const helix_backend_ops cuda_ops = {
    "cuda", 0, c_alloc, c_free, c_memset, c_copy, c_copy2d, c_upload, c_download, c_gemm, c_gemm_ws, c_attention,
    c_attention_ws, c_scores, c_softmax_v, c_layernorm, c_norm_ws, c_activate, c_residual, c_now, c_sum_rows, c_destroy,
};

/* an instance on ctx (own: made for it, freed with it) */
static helix_status make(helix_cuda_ctx *ctx, int own, helix_backend **out, helix_err *err)
{
    cbe *b = (cbe *)calloc(1, sizeof *b);
    if (!b) {
        if (own) helix_cuda_ctx_free(ctx);
        return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    }
    b->pub.ops = &cuda_ops;
    b->pub.self = b;
    b->ctx = ctx;
    b->own_ctx = own;
    b->attention_variant = -1;
    const char *force = getenv("HELIX_CUDA_ATTENTION");   /* rows | wmma | mma: the tests' cross-check */
    for (int v = 0; force && v < HELIX_CUDA_ATTN_VARIANTS; v++)
        if (!strcmp(force, helix_cuda_attention_name(v))) b->attention_variant = v;
    *out = &b->pub;
    return HELIX_OK;
}

extern "C" helix_status helix_cuda_backend_new(int device, helix_backend **out, helix_err *err)
{
    *out = NULL;
    int count = 0;
    helix_status st = helix_cuda_device_count(&count, err);
    if (st) return st;
    if (device < 0 || device >= count)
        return helix_errf(err, HELIX_ERR_INVALID, "GPU %d: this machine has %d (0..%d)", device, count, count - 1);
    helix_cuda_ctx *ctx = NULL;
    if ((st = helix_cuda_ctx_new(device, &ctx, err))) return st;
    return make(ctx, 1, out, err);
}

/* on the NCCL engine's context: its collectives are ordered against this
 * stream by events (src/comm/nccl.c) */
extern "C" helix_status helix_cuda_backend_on(helix_cuda_ctx *ctx, helix_backend **out, helix_err *err)
{
    *out = NULL;
    if (!ctx) return helix_errf(err, HELIX_ERR_INVALID, "no GPU context");
    return make(ctx, 0, out, err);
}
