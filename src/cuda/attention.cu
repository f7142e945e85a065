/* attention.cu — the GPU attention kernel lab (see helix_cuda.h):
 *   v0 naive  one thread per query row, f32 scalar online softmax
 *   v1 wmma   flash-style tiles on tensor cores (WMMA 16x16x16, f32 accumulate)
 * Both read q, k, v [heads, L, width] and write o in the same layout. */
#include "cuda-impl.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <mma.h>

using namespace nvcuda;

template <typename T> struct cvt;
template <> struct cvt<__half> {
    static __device__ float f(__half v) { return __half2float(v); }
    static __device__ __half t(float v) { return __float2half_rn(v); }
};
template <> struct cvt<__nv_bfloat16> {
    static __device__ float f(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __device__ __nv_bfloat16 t(float v) { return __float2bfloat16_rn(v); }
};

/* ------------------------------------------------------------ v0 naive */

template <typename T, int W>
__global__ void attn_naive(const T *q, const T *k, const T *v, T *o, int L, int causal, float scale)
{
    const int h = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= L) return;
    const size_t base = (size_t)h * L * W;
    float qf[W], acc[W];
    for (int c = 0; c < W; c++) { qf[c] = cvt<T>::f(q[base + (size_t)i * W + c]) * scale; acc[c] = 0.0f; }
    float m = -INFINITY, l = 0.0f;
    const int kend = causal ? i + 1 : L;
    for (int j = 0; j < kend; j++) {
        const T *kr = k + base + (size_t)j * W, *vr = v + base + (size_t)j * W;
        float s = 0.0f;
        for (int c = 0; c < W; c++) s += qf[c] * cvt<T>::f(kr[c]);
        const float mn = fmaxf(m, s), alpha = expf(m - mn), p = expf(s - mn);
        l = l * alpha + p;
        for (int c = 0; c < W; c++) acc[c] = acc[c] * alpha + p * cvt<T>::f(vr[c]);
        m = mn;
    }
    for (int c = 0; c < W; c++) o[base + (size_t)i * W + c] = cvt<T>::t(acc[c] / l);
}

/* ------------------------------------------------------------ v1 wmma
 * A block of WARPS warps owns BM = 16*WARPS queries of one head; key tiles
 * of BN = 32 stream through shared memory. Each warp computes its 16 rows
 * of S = Q K^T on tensor cores, updates the running max / sum of its rows
 * (one lane per key), writes P in the storage type, rescales its rows of
 * the f32 output tile O and adds P V on tensor cores. Causal: key tiles
 * past the tile's last query are never loaded. */

constexpr int BN = 32;

template <typename T, int W, int WARPS> struct tile {
    static constexpr int BM = 16 * WARPS;
    static constexpr size_t bytes = sizeof(T) * (size_t)(BM * W + 2 * BN * W + BM * BN) +
                                    sizeof(float) * (size_t)(BM * BN + BM * W + 2 * BM);
};

template <typename T, int W>
__device__ void load_rows(T *dst, const T *src, int row0, int rows, int L, int tid, int nthreads)
{
    constexpr int VEC = 16 / sizeof(T);
    for (int idx = tid; idx < rows * (W / VEC); idx += nthreads) {
        const int r = idx / (W / VEC), c = (idx % (W / VEC)) * VEC;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (row0 + r < L) val = *reinterpret_cast<const uint4 *>(src + (size_t)(row0 + r) * W + c);
        *reinterpret_cast<uint4 *>(dst + r * W + c) = val;
    }
}

template <typename T, int W, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) attn_wmma(const T *q, const T *k, const T *v, T *o, int L, int causal,
                                                        float scale)
{
    constexpr int BM = tile<T, W, WARPS>::BM, NT = WARPS * 32;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = reinterpret_cast<T *>(smem);
    T *Ks = Qs + BM * W;
    T *Vs = Ks + BN * W;
    T *P = Vs + BN * W;
    float *S = reinterpret_cast<float *>(P + BM * BN);
    float *O = S + BM * BN;
    float *Mx = O + BM * W;
    float *Ls = Mx + BM;
    /* causal: the last query tiles see the most keys; blocks are scheduled
     * roughly in blockIdx.x order, so the heaviest go first */
    const int qt = causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int h = blockIdx.y, q0 = qt * BM, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const size_t base = (size_t)h * L * W;

    load_rows<T, W>(Qs, q + base, q0, BM, L, tid, NT);
    for (int x = tid; x < BM * W; x += NT) O[x] = 0.0f;
    for (int r = tid; r < BM; r += NT) { Mx[r] = -INFINITY; Ls[r] = 0.0f; }
    __syncthreads();

    const int kend = causal ? min(L, q0 + BM) : L;
    for (int k0 = 0; k0 < kend; k0 += BN) {
        load_rows<T, W>(Ks, k + base, k0, BN, L, tid, NT);
        load_rows<T, W>(Vs, v + base, k0, BN, L, tid, NT);
        __syncthreads();
        /* S[warp rows, 0:BN] = Q K^T */
        for (int j = 0; j < BN / 16; j++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < W / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(a, Qs + warp * 16 * W + kk * 16, W);
                wmma::load_matrix_sync(b, Ks + j * 16 * W + kk * 16, W);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(S + warp * 16 * BN + j * 16, acc, BN, wmma::mem_row_major);
        }
        __syncwarp();
        /* online softmax: lane = key of the tile */
        for (int rr = 0; rr < 16; rr++) {
            const int r = warp * 16 + rr, qi = q0 + r, kj = k0 + lane;
            float s = S[r * BN + lane] * scale;
            if (kj >= L || (causal && kj > qi)) s = -INFINITY;
            float mx = s;
            for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float m_old = Mx[r], m_new = fmaxf(m_old, mx);
            const float p = m_new == -INFINITY ? 0.0f : __expf(s - m_new);
            const float alpha = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
            float sum = p;
            for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            P[r * BN + lane] = cvt<T>::t(p);
            for (int c = lane; c < W; c += 32) O[r * W + c] *= alpha;
            __syncwarp();
            if (lane == 0) { Mx[r] = m_new; Ls[r] = Ls[r] * alpha + sum; }
            __syncwarp();
        }
        /* O[warp rows] += P V */
        for (int n = 0; n < W / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, O + warp * 16 * W + n * 16, W, wmma::mem_row_major);
            for (int kk = 0; kk < BN / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
                wmma::load_matrix_sync(a, P + warp * 16 * BN + kk * 16, BN);
                wmma::load_matrix_sync(b, Vs + kk * 16 * W + n * 16, W);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(O + warp * 16 * W + n * 16, acc, W, wmma::mem_row_major);
        }
        __syncthreads();   /* K/V tiles are reloaded next */
    }
    for (int x = tid; x < BM * W; x += NT) {
        const int r = x / W, c = x % W;
        if (q0 + r < L) {
            const float l = Ls[r];
            o[base + (size_t)(q0 + r) * W + c] = cvt<T>::t(l > 0.0f ? O[x] / l : 0.0f);
        }
    }
}

/* ------------------------------------------------------------ dispatch */

template <typename T, int W>
static cudaError_t launch(int variant, cudaStream_t s, int heads, int L, int causal, float scale, const void *q,
                          const void *k, const void *v, void *o)
{
    const T *Q = (const T *)q, *K = (const T *)k, *V = (const T *)v;
    T *Out = (T *)o;
    if (variant == HELIX_CUDA_ATTN_NAIVE) {
        dim3 grid((L + 127) / 128, heads);
        attn_naive<T, W><<<grid, 128, 0, s>>>(Q, K, V, Out, L, causal, scale);
        return cudaGetLastError();
    }
    constexpr int WARPS = W <= 256 ? 4 : 2;
    constexpr size_t shm = tile<T, W, WARPS>::bytes;
    /* the opt-in shared-memory size, once per kernel and device (not per launch) */
    static int set_on[64];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    if (dev < 0 || dev >= 64 || !set_on[dev]) {
        e = cudaFuncSetAttribute(attn_wmma<T, W, WARPS>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess) return e;
        if (dev >= 0 && dev < 64) set_on[dev] = 1;
    }
    dim3 grid((L + tile<T, W, WARPS>::BM - 1) / tile<T, W, WARPS>::BM, heads);
    attn_wmma<T, W, WARPS><<<grid, WARPS * 32, shm, s>>>(Q, K, V, Out, L, causal, scale);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t by_width(int variant, cudaStream_t s, int heads, int L, int width, int causal, float scale,
                            const void *q, const void *k, const void *v, void *o)
{
    switch (width) {
    case 64: return launch<T, 64>(variant, s, heads, L, causal, scale, q, k, v, o);
    case 128: return launch<T, 128>(variant, s, heads, L, causal, scale, q, k, v, o);
    case 256: return launch<T, 256>(variant, s, heads, L, causal, scale, q, k, v, o);
    default: return launch<T, 512>(variant, s, heads, L, causal, scale, q, k, v, o);
    }
}

extern "C" const char *helix_cuda_attention_name(int variant)
{
    return variant == HELIX_CUDA_ATTN_NAIVE ? "naive" : variant == HELIX_CUDA_ATTN_WMMA ? "wmma" : "?";
}

extern "C" helix_status helix_cuda_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L,
                                             int64_t width, int causal, float scale, const void *q, const void *k,
                                             const void *v, void *o, helix_err *err)
{
    if (variant < 0 || variant >= HELIX_CUDA_ATTN_VARIANTS)
        return helix_errf(err, HELIX_ERR_INVALID, "attention variant %d: there are %d (0 naive, 1 wmma)", variant,
                          HELIX_CUDA_ATTN_VARIANTS);
    if (t != HELIX_F16 && t != HELIX_BF16)
        return helix_errf(err, HELIX_ERR_INVALID, "GPU attention stores f16 or bf16, not %s", helix_dtype_name(t));
    if (width != 64 && width != 128 && width != 256 && width != 512)
        return helix_errf(err, HELIX_ERR_INVALID, "GPU attention head width %lld: 64, 128, 256 or 512", (long long)width);
    if (heads < 1 || heads > 65535 || L < 1 || L > (1 << 30))
        return helix_errf(err, HELIX_ERR_INVALID, "GPU attention: heads %lld (1..65535), L %lld (1..2^30)",
                          (long long)heads, (long long)L);
    if (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)o) % 16)
        return helix_errf(err, HELIX_ERR_INVALID, "GPU attention: buffers must be 16-byte aligned");
    if (helix_status u = helix_cuda_use(c, err)) return u;
    cudaError_t e = t == HELIX_F16
                        ? by_width<__half>(variant, c->stream, (int)heads, (int)L, (int)width, causal, scale, q, k, v, o)
                        : by_width<__nv_bfloat16>(variant, c->stream, (int)heads, (int)L, (int)width, causal, scale, q, k,
                                                  v, o);
    return helix_cuda_check(e, "attention kernel launch", err);
}
