/* elem.cuh — storage types in device code: load as f32, store from f32
 * (round to nearest even), for every kernel of the GPU module. */
#ifndef HELIX_CUDA_ELEM_CUH
#define HELIX_CUDA_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

__device__ __forceinline__ float helix_ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float helix_ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float helix_ld(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void helix_st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void helix_st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void helix_st(__nv_bfloat16 *p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ T helix_to(float v);
template <> __device__ __forceinline__ float helix_to<float>(float v) { return v; }
template <> __device__ __forceinline__ __half helix_to<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 helix_to<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/* fn<T>(args...) for the storage type t (host side) */
#define HELIX_BY_TYPE(t, fn, ...)                                            \
    ((t) == HELIX_F16 ? fn<__half>(__VA_ARGS__)                              \
     : (t) == HELIX_BF16 ? fn<__nv_bfloat16>(__VA_ARGS__) : fn<float>(__VA_ARGS__))

/* a grid-stride loop's launch: blocks of 256 for n elements (at most 4096 blocks) */
static inline int helix_blocks(int64_t n)
{
    const int64_t want = (n + 255) / 256;
    return (int)(want < 1 ? 1 : want < 4096 ? want : 4096);
}

#endif
