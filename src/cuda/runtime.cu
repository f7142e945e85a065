/* runtime.cu — devices, their peaks, the context (streams, events, cuBLAS),
 * device memory, cuBLAS GEMMs and the rank-ordered device sum that the
 * NCCL engine's reduce-scatter uses. */
#include "cuda-impl.h"
#include "elem.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" helix_status helix_cuda_check(cudaError_t e, const char *what, helix_err *err)
{
    if (e == cudaSuccess) return HELIX_OK;
    return helix_errf(err, HELIX_ERR_INTERNAL, "%s: CUDA error %d (%s: %s)", what, (int)e, cudaGetErrorName(e),
                      cudaGetErrorString(e));
}

/* Every entry point that takes a context makes its device current first:
 * the calling thread may not be the one that made the context. */
extern "C" helix_status helix_cuda_use(helix_cuda_ctx *c, helix_err *err)
{
    if (!c) return helix_errf(err, HELIX_ERR_INVALID, "no GPU context");
    return helix_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err);
}

static helix_status blas_check(cublasStatus_t s, const char *what, helix_err *err)
{
    if (s == CUBLAS_STATUS_SUCCESS) return HELIX_OK;
    const helix_status st = s == CUBLAS_STATUS_ALLOC_FAILED ? HELIX_ERR_NOMEM
                          : s == CUBLAS_STATUS_NOT_SUPPORTED ? HELIX_ERR_UNSUPPORTED : HELIX_ERR_INTERNAL;
    return helix_errf(err, st, "%s: cuBLAS status %d (%s)", what, (int)s, cublasLtGetStatusString(s));
}

extern "C" helix_status helix_cuda_device_count(int *count, helix_err *err)
{
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        return helix_errf(err, HELIX_ERR_UNSUPPORTED, "no usable CUDA device: cudaGetDeviceCount returned %d (%s: %s)",
                          (int)e, cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (*count < 1) return helix_errf(err, HELIX_ERR_UNSUPPORTED, "no CUDA device on this machine");
    return HELIX_OK;
}

/* Dense tensor-core and FP32 peaks. Table rows are published datasheet
 * figures (dense, no sparsity); other GPUs use per-SM rates x SMs x clock. */
static void peaks(helix_cuda_device *d)
{
    /* memory tells the 132-SM parts apart: H100 SXM 80 GB, H100 NVL 94 GB
     * (101e9 bytes), H200 141 GB */
    static const struct { int major, minor, sms; double min_mem, max_mem, f16, f32; const char *what; } table[] = {
        {9, 0, 132, 120e9, 1e15, 989.4e12, 66.9e12, "H200 SXM datasheet (dense bf16 989 TFLOP/s)"},
        {9, 0, 132, 90e9, 120e9, 835.5e12, 60.0e12, "H100 NVL datasheet (dense bf16 835 TFLOP/s)"},
        {9, 0, 132, 0, 90e9, 989.4e12, 66.9e12, "H100 SXM5 datasheet (dense bf16 989 TFLOP/s)"},
        {9, 0, 114, 0, 1e15, 756.5e12, 51.2e12, "H100 PCIe datasheet (dense bf16 756 TFLOP/s)"},
        {8, 0, 108, 0, 1e15, 312e12, 19.5e12, "A100 datasheet (dense bf16 312 TFLOP/s)"},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
        if (table[k].major == d->cc_major && table[k].minor == d->cc_minor && table[k].sms == d->sms &&
            d->mem_bytes >= table[k].min_mem && d->mem_bytes < table[k].max_mem) {
            d->peak_f16 = table[k].f16;
            d->peak_f32 = table[k].f32;
            d->peak_source = table[k].what;
            return;
        }
    /* per SM per clock: dense f16 FLOPs with f32 accumulation, FP32 FLOPs */
    double f16 = 512, f32 = 128;
    if (d->cc_major >= 9) { f16 = 4096; f32 = 256; }
    else if (d->cc_major == 8 && d->cc_minor == 0) { f16 = 2048; f32 = 128; }
    else if (d->cc_major == 8) { f16 = 1024; f32 = 256; }
    const double hz = d->clock_khz * 1e3;
    d->peak_f16 = f16 * d->sms * hz;
    d->peak_f32 = f32 * d->sms * hz;
    d->peak_source = "per-SM rate x SMs x clock (no table entry for this GPU)";
}

extern "C" helix_status helix_cuda_device_info(int device, helix_cuda_device *d, helix_err *err)
{
    memset(d, 0, sizeof *d);
    cudaDeviceProp p;
    helix_status st = helix_cuda_check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties", err);
    if (st) return st;
    snprintf(d->name, sizeof d->name, "%s", p.name);
    d->mem_bytes = (double)p.totalGlobalMem;
    cudaDeviceGetAttribute(&d->cc_major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&d->cc_minor, cudaDevAttrComputeCapabilityMinor, device);
    cudaDeviceGetAttribute(&d->sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&d->clock_khz, cudaDevAttrClockRate, device);
    peaks(d);
    const char *o16 = getenv("HELIX_GPU_PEAK_F16"), *o32 = getenv("HELIX_GPU_PEAK_F32");
    if (o16 && atof(o16) > 0) { d->peak_f16 = atof(o16); d->peak_source = "HELIX_GPU_PEAK_F16/F32"; }
    if (o32 && atof(o32) > 0) { d->peak_f32 = atof(o32); d->peak_source = "HELIX_GPU_PEAK_F16/F32"; }
    return HELIX_OK;
}

extern "C" helix_status helix_cuda_ctx_new(int device, helix_cuda_ctx **out, helix_err *err)
{
    *out = NULL;
    helix_cuda_ctx *c = (helix_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    c->device = device;
    helix_status st = helix_cuda_check(cudaSetDevice(device), "cudaSetDevice", err);
    if (!st) st = helix_cuda_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate", err);
    if (!st) st = helix_cuda_check(cudaStreamCreateWithFlags(&c->comm_stream, cudaStreamNonBlocking), "cudaStreamCreate", err);
    if (!st) st = helix_cuda_check(cudaEventCreate(&c->t0), "cudaEventCreate", err);
    if (!st) st = helix_cuda_check(cudaEventCreate(&c->t1), "cudaEventCreate", err);
    if (!st) st = blas_check(cublasLtCreate(&c->lt), "cublasLtCreate", err);
    if (!st) st = helix_cuda_check(cudaMalloc(&c->lt_ws, HELIX_CUDA_LT_WS), "cuBLASLt workspace (32 MiB)", err);
    if (st) { helix_cuda_ctx_free(c); return st; }
    *out = c;
    return HELIX_OK;
}

extern "C" void helix_cuda_ctx_free(helix_cuda_ctx *c)
{
    if (!c) return;
    if (c->lt_ws) cudaFree(c->lt_ws);
    if (c->lt) cublasLtDestroy(c->lt);
    if (c->t0) cudaEventDestroy(c->t0);
    if (c->t1) cudaEventDestroy(c->t1);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->comm_stream) cudaStreamDestroy(c->comm_stream);
    free(c);
}

extern "C" helix_status helix_cuda_sync(helix_cuda_ctx *c, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    helix_status st = helix_cuda_check(cudaStreamSynchronize(c->stream), "compute stream", err);
    if (!st) st = helix_cuda_check(cudaStreamSynchronize(c->comm_stream), "communication stream", err);
    return st;
}

extern "C" helix_status helix_cuda_malloc(helix_cuda_ctx *c, size_t n, void **out, helix_err *err)
{
    *out = NULL;
    if (helix_status u = helix_cuda_use(c, err)) return u;
    cudaError_t e = cudaMalloc(out, n ? n : 1);
    if (e == cudaErrorMemoryAllocation)
        return helix_errf(err, HELIX_ERR_NOMEM, "GPU out of memory allocating %zu bytes", n);
    return helix_cuda_check(e, "cudaMalloc", err);
}

extern "C" void helix_cuda_free(void *p)
{
    if (p) cudaFree(p);
}

extern "C" helix_status helix_cuda_upload(helix_cuda_ctx *c, void *dst, const void *src, size_t n, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    helix_status st = helix_cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream), "upload", err);
    return st ? st : helix_cuda_check(cudaStreamSynchronize(c->stream), "upload", err);
}

extern "C" helix_status helix_cuda_download(helix_cuda_ctx *c, void *dst, const void *src, size_t n, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    helix_status st = helix_cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream), "download", err);
    return st ? st : helix_cuda_check(cudaStreamSynchronize(c->stream), "download", err);
}

extern "C" helix_status helix_cuda_timer_start(helix_cuda_ctx *c, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    return helix_cuda_check(cudaEventRecord(c->t0, c->stream), "timer", err);
}

extern "C" helix_status helix_cuda_timer_stop(helix_cuda_ctx *c, double *seconds, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    float ms = 0;
    helix_status st = helix_cuda_check(cudaEventRecord(c->t1, c->stream), "timer", err);
    if (!st) st = helix_cuda_check(cudaEventSynchronize(c->t1), "timer", err);
    if (!st) st = helix_cuda_check(cudaEventElapsedTime(&ms, c->t0, c->t1), "timer", err);
    *seconds = ms * 1e-3;
    return st;
}

/* ------------------------------------------------------------ GEMM
 * Row-major C[M,N] = A[M,K] B[K,N] is column-major C^T = B^T A^T: the
 * cuBLASLt problem m = N, n = M, k = K with "A" = B (N x K, ld ldb), "B" =
 * A (K x M, ld lda), D = C (N x M, ld ldc); the bias is per row of C^T
 * (length N), which is CUBLASLT_EPILOGUE_BIAS. */

static cudaDataType_t cuda_type(helix_dtype t)
{
    return t == HELIX_F16 ? CUDA_R_16F : t == HELIX_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* the largest power of two (at most 256) dividing the address */
static uint32_t align_of(const void *p)
{
    uint32_t al = 256;
    while (al > 1 && (uintptr_t)p % al) al /= 2;
    return al;
}

extern "C" helix_status helix_cuda_matmul(helix_cuda_ctx *c, const helix_gemm_args *a, helix_err *err)
{
    if (a->M <= 0 || a->N <= 0) return HELIX_OK;
    if (a->ta != a->tb || a->ta != a->tc)   /* the executor's GEMMs are one type */
        return helix_errf(err, HELIX_ERR_UNSUPPORTED, "GPU GEMM: mixed storage types");
    if (helix_status u = helix_cuda_use(c, err)) return u;
    if (a->K <= 0) {   /* C = bias (or 0): nothing to multiply */
        const int64_t es = (int64_t)helix_dtype_size(a->tc);
        helix_status st = helix_cuda_check(cudaMemset2DAsync(a->C, (size_t)(a->ldc * es), 0, (size_t)(a->N * es),
                                                             (size_t)a->M, c->stream), "GEMM K=0", err);
        for (int64_t r = 0; !st && a->bias && r < a->M; r++)   /* not a path the executor takes */
            st = helix_cuda_check(cudaMemcpyAsync((char *)a->C + r * a->ldc * es, a->bias, (size_t)(a->N * es),
                                                  cudaMemcpyDeviceToDevice, c->stream), "GEMM K=0 bias", err);
        return st;
    }
    const cudaDataType_t t = cuda_type(a->tc);
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t bs = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (!bs && a->bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        bs = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (!bs) bs = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a->bias, sizeof a->bias);
        if (!bs) bs = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof t);
    }
    if (!bs) bs = cublasLtMatrixLayoutCreate(&la, t, (uint64_t)a->N, (uint64_t)a->K, a->ldb);
    if (!bs) bs = cublasLtMatrixLayoutCreate(&lb, t, (uint64_t)a->K, (uint64_t)a->M, a->lda);
    if (!bs) bs = cublasLtMatrixLayoutCreate(&lc, t, (uint64_t)a->N, (uint64_t)a->M, a->ldc);
    if (!bs) bs = cublasLtMatmulPreferenceCreate(&pref);
    const size_t ws = HELIX_CUDA_LT_WS;
    if (!bs) bs = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    /* the heuristic assumes 256-byte aligned operands unless told: the
     * executor's are arena offsets (64-byte aligned, rows within less) */
    const uint32_t al[4] = {align_of(a->B), align_of(a->A), align_of(a->C), align_of(a->C)};
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int q = 0; q < 4 && !bs; q++) bs = cublasLtMatmulPreferenceSetAttribute(pref, which[q], &al[q], sizeof al[q]);
    cublasLtMatmulHeuristicResult_t h;
    int found = 0;
    memset(&h, 0, sizeof h);
    if (!bs) bs = cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, lc, lc, pref, 1, &h, &found);
    if (!bs && found < 1) bs = CUBLAS_STATUS_NOT_SUPPORTED;
    const float one = 1.0f, zero = 0.0f;
    if (!bs)
        bs = cublasLtMatmul(c->lt, op, &one, a->B, la, a->A, lb, &zero, a->C, lc, a->C, lc, &h.algo, c->lt_ws, ws, c->stream);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    if (!bs) return HELIX_OK;
    char what[96];
    snprintf(what, sizeof what, "cuBLASLt GEMM %s %lldx%lldx%lld", helix_dtype_name(a->tc), (long long)a->M,
             (long long)a->N, (long long)a->K);
    return blas_check(bs, what, err);
}

/* the kernel lab's dense GEMM: the same call */
extern "C" helix_status helix_cuda_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K,
                                        const void *A, const void *B, void *C, helix_err *err)
{
    if (M < 1 || N < 1 || K < 1 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return helix_errf(err, HELIX_ERR_INVALID, "GEMM %lldx%lldx%lld: sizes must be in 1..2^31-1", (long long)M,
                          (long long)N, (long long)K);
    const helix_gemm_args a = {M, N, K, t, t, t, A, B, NULL, C, K, N, N};
    return helix_cuda_matmul(c, &a, err);
}

/* ------------------------------------------------ rank-ordered device sum */

template <typename T> __global__ void sum_rows_kernel(T *rows, int64_t n_rows, int64_t n)
{
    for (int64_t x = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; x < n; x += (int64_t)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (int64_t r = 0; r < n_rows; r++) acc = __fadd_rn(acc, helix_ld(rows, r * n + x));   /* no FMA contraction */
        helix_st(rows, x, acc);
    }
}

template <typename T> static cudaError_t sum_rows(cudaStream_t s, void *rows, int64_t n_rows, int64_t n)
{
    sum_rows_kernel<T><<<helix_blocks(n), 256, 0, s>>>((T *)rows, n_rows, n);
    return cudaGetLastError();
}

extern "C" helix_status helix_cuda_sum_rows(cudaStream_t s, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    if (n < 1) return HELIX_OK;
    return HELIX_BY_TYPE(t, sum_rows, s, rows, n_rows, n) == cudaSuccess ? HELIX_OK : HELIX_ERR_INTERNAL;
}
