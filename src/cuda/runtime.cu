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
    return helix_errf(err, HELIX_ERR_INTERNAL, "%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
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
    if (!st) st = blas_check(cublasCreate(&c->blas), "cublasCreate", err);
    if (!st) st = blas_check(cublasSetStream(c->blas, c->stream), "cublasSetStream", err);
    if (st) { helix_cuda_ctx_free(c); return st; }
    *out = c;
    return HELIX_OK;
}

extern "C" void helix_cuda_ctx_free(helix_cuda_ctx *c)
{
    if (!c) return;
    if (c->blas) cublasDestroy(c->blas);
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

static cudaDataType_t cuda_type(helix_dtype t)
{
    return t == HELIX_F16 ? CUDA_R_16F : t == HELIX_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

extern "C" helix_status helix_cuda_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K,
                                        const void *A, const void *B, void *C, helix_err *err)
{
    if (helix_status u = helix_cuda_use(c, err)) return u;
    if (M < 1 || N < 1 || K < 1 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return helix_errf(err, HELIX_ERR_INVALID, "GEMM %lldx%lldx%lld: sizes must be in 1..2^31-1", (long long)M,
                          (long long)N, (long long)K);
    const float one = 1.0f, zero = 0.0f;
    const cudaDataType_t ct = cuda_type(t);
    /* row-major C = A B is column-major C^T = B^T A^T */
    return blas_check(cublasGemmEx(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one, B, ct, (int)N, A,
                                   ct, (int)K, &zero, C, ct, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "cublasGemmEx", err);
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
