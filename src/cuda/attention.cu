/* attention.cu — the GPU attention kernels (the kernel lab of helix_cuda.h
 * and the CUDA backend's attention), both in helix_attn_args terms
 * (strided [B, L, H, width] tensors, q_pos0, kv_len, causal):
 *   v0 rows   one warp per query row: scalar f32 online softmax, K/V tiles
 *             widened to f32 in shared memory; any storage type, widths
 *             1-512 (the reference on the GPU and the general fallback)
 *   v1 wmma   flash-style tiles on tensor cores (WMMA 16x16x16, f32
 *             accumulate): f16/bf16, widths 64/128/256/512, 16-byte
 *             aligned rows
 *   v2 mma    FlashAttention-2 style on mma.sync: S, P and O in
 *             registers, cp.async double buffering: f16/bf16, widths
 *             64/128/256, 16-byte aligned rows */
#include "cuda-impl.h"
#include "elem.cuh"

#include <math.h>
#include <mma.h>
#include <string.h>

using namespace nvcuda;

/* the keys query row r (0-based in q) of batch row b sees: [0, n) */
__device__ __forceinline__ int64_t keys_seen(const helix_cuda_attn &a, int64_t b, int64_t r)
{
    int64_t n = a.Lk;
    if (a.kv_len && a.kv_len[b] < n) n = a.kv_len[b];
    if (a.causal && a.q_pos0 + r + 1 < n) n = a.q_pos0 + r + 1;
    return n < 0 ? 0 : n;
}

/* ------------------------------------------------------------ v0 rows
 * A block of 4 warps owns 4 consecutive query rows of one (b, h); K/V
 * tiles of KT keys (KT x width = 4096 floats each) are widened into
 * shared memory by the whole block; each warp then walks its own keys:
 * lane c holds features c, c+32, ...; a dot product is a warp sum. */

constexpr int ROWS_WARPS = 4, ROWS_TILE = 4096;

__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

template <typename T, int NC>
__global__ void __launch_bounds__(ROWS_WARPS * 32) attn_rows(helix_cuda_attn a, int KT)
{
    extern __shared__ float rows_smem[];
    float *Ks = rows_smem, *Vs = rows_smem + KT * a.width;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, W = (int)a.width;
    const int64_t b = blockIdx.z, h = blockIdx.y, r0 = (int64_t)blockIdx.x * ROWS_WARPS, r = r0 + warp;
    const int64_t r_last = r0 + ROWS_WARPS - 1 < a.Lq - 1 ? r0 + ROWS_WARPS - 1 : a.Lq - 1;
    const int64_t n_blk = keys_seen(a, b, r_last), n_row = r < a.Lq ? keys_seen(a, b, r) : 0;
    const T *qr = (const T *)a.q + b * a.q_sb + h * a.q_sh + (r < a.Lq ? r : 0) * a.q_sl;
    const T *kb = (const T *)a.k + b * a.kv_sb + h * a.kv_sh, *vb = (const T *)a.v + b * a.kv_sb + h * a.kv_sh;
    float q[NC], acc[NC];
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c = lane + 32 * i;
        q[i] = (r < a.Lq && c < W) ? helix_ld(qr, c) * a.scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < n_blk; j0 += KT) {
        const int nt = (int)(n_blk - j0 < KT ? n_blk - j0 : KT);
        __syncthreads();   /* the previous tile is done with */
        for (int idx = threadIdx.x; idx < nt * W; idx += blockDim.x) {
            const int jj = idx / W, c = idx % W;
            Ks[idx] = helix_ld(kb, (j0 + jj) * a.kv_sl + c);
            Vs[idx] = helix_ld(vb, (j0 + jj) * a.kv_sl + c);
        }
        __syncthreads();
        const int64_t left = n_row - j0;
        const int mine = left <= 0 ? 0 : left < nt ? (int)left : nt;
        for (int jj = 0; jj < mine; jj++) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < NC; i++) {
                const int c = lane + 32 * i;
                if (c < W) s += q[i] * Ks[jj * W + c];
            }
            s = warp_sum(s);
            const float mn = fmaxf(m, s), alpha = expf(m - mn), p = expf(s - mn);
            l = l * alpha + p;
#pragma unroll
            for (int i = 0; i < NC; i++) {
                const int c = lane + 32 * i;
                if (c < W) acc[i] = acc[i] * alpha + p * Vs[jj * W + c];
            }
            m = mn;
        }
    }
    if (r >= a.Lq) return;
    T *orow = (T *)a.o + b * a.o_sb + h * a.o_sh + r * a.o_sl;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (int i = 0; i < NC; i++) {
        const int c = lane + 32 * i;
        if (c < W) helix_st(orow, c, acc[i] * inv);
    }
}

template <typename T, int NC> static cudaError_t rows_launch(cudaStream_t s, const helix_cuda_attn *a)
{
    int KT = ROWS_TILE / (int)a->width;
    if (KT > 64) KT = 64;
    if (KT < 1) KT = 1;
    const size_t shm = sizeof(float) * 2 * (size_t)KT * (size_t)a->width;   /* <= 32 KiB */
    dim3 grid((unsigned)((a->Lq + ROWS_WARPS - 1) / ROWS_WARPS), (unsigned)a->H, (unsigned)a->B);
    attn_rows<T, NC><<<grid, ROWS_WARPS * 32, shm, s>>>(*a, KT);
    return cudaGetLastError();
}

template <typename T> static cudaError_t rows_by_width(cudaStream_t s, const helix_cuda_attn *a)
{
    const int64_t w = a->width;
    return w <= 32 ? rows_launch<T, 1>(s, a) : w <= 64 ? rows_launch<T, 2>(s, a) : w <= 128 ? rows_launch<T, 4>(s, a)
         : w <= 256 ? rows_launch<T, 8>(s, a) : rows_launch<T, 16>(s, a);
}

/* ------------------------------------------------------------ v1 wmma
 * A block of WARPS warps owns BM = 16*WARPS queries of one (b, h); key
 * tiles of BN = 32 stream through shared memory. Each warp computes its
 * 16 rows of S = Q K^T on tensor cores, updates the running max / sum of
 * its rows (one lane per key), writes P in the storage type, rescales its
 * rows of the f32 output tile O and adds P V on tensor cores. Causal: key
 * tiles past the tile's last query are never loaded, and the heaviest
 * query tiles are launched first. */

constexpr int BN = 32;

template <typename T, int W, int WARPS> struct tile {
    static constexpr int BM = 16 * WARPS;
    static constexpr size_t bytes = sizeof(T) * (size_t)(BM * W + 2 * BN * W + BM * BN) +
                                    sizeof(float) * (size_t)(BM * BN + BM * W + 2 * BM);
};

/* rows [row0, row0+rows) of a strided matrix (ld elements between rows,
 * `valid` rows in all) into dense smem rows of W; past the end: zeros */
template <typename T, int W>
__device__ void load_rows(T *dst, const T *src, int64_t ld, int64_t row0, int rows, int64_t valid, int tid, int nthreads)
{
    constexpr int VEC = 16 / sizeof(T);
    for (int idx = tid; idx < rows * (W / VEC); idx += nthreads) {
        const int r = idx / (W / VEC), c = (idx % (W / VEC)) * VEC;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (row0 + r < valid) val = *reinterpret_cast<const uint4 *>(src + (row0 + r) * ld + c);
        *reinterpret_cast<uint4 *>(dst + r * W + c) = val;
    }
}

template <typename T, int W, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) attn_wmma(helix_cuda_attn a)
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
    const int64_t qt = a.causal ? (int64_t)gridDim.x - 1 - blockIdx.x : (int64_t)blockIdx.x;
    const int64_t b = blockIdx.z, h = blockIdx.y, q0 = qt * BM;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const T *qb = (const T *)a.q + b * a.q_sb + h * a.q_sh;
    const T *kb = (const T *)a.k + b * a.kv_sb + h * a.kv_sh, *vb = (const T *)a.v + b * a.kv_sb + h * a.kv_sh;
    int64_t lim = a.Lk;
    if (a.kv_len && a.kv_len[b] < lim) lim = a.kv_len[b];

    load_rows<T, W>(Qs, qb, a.q_sl, q0, BM, a.Lq, tid, NT);
    for (int x = tid; x < BM * W; x += NT) O[x] = 0.0f;
    for (int r = tid; r < BM; r += NT) { Mx[r] = -INFINITY; Ls[r] = 0.0f; }
    __syncthreads();

    int64_t kend = lim;
    if (a.causal && a.q_pos0 + q0 + BM < kend) kend = a.q_pos0 + q0 + BM;
    for (int64_t k0 = 0; k0 < kend; k0 += BN) {
        load_rows<T, W>(Ks, kb, a.kv_sl, k0, BN, a.Lk, tid, NT);
        load_rows<T, W>(Vs, vb, a.kv_sl, k0, BN, a.Lk, tid, NT);
        __syncthreads();
        /* S[warp rows, 0:BN] = Q K^T */
        for (int j = 0; j < BN / 16; j++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < W / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, Qs + warp * 16 * W + kk * 16, W);
                wmma::load_matrix_sync(fb, Ks + j * 16 * W + kk * 16, W);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(S + warp * 16 * BN + j * 16, acc, BN, wmma::mem_row_major);
        }
        __syncwarp();
        /* online softmax: lane = key of the tile */
        for (int rr = 0; rr < 16; rr++) {
            const int r = warp * 16 + rr;
            const int64_t qi = a.q_pos0 + q0 + r, kj = k0 + lane;
            float s = S[r * BN + lane] * a.scale;
            if (kj >= lim || (a.causal && kj > qi)) s = -INFINITY;
            float mx = s;
            for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            const float m_old = Mx[r], m_new = fmaxf(m_old, mx);
            const float p = m_new == -INFINITY ? 0.0f : __expf(s - m_new);
            const float alpha = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
            float sum = p;
            for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
            P[r * BN + lane] = helix_to<T>(p);
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
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, P + warp * 16 * BN + kk * 16, BN);
                wmma::load_matrix_sync(fb, Vs + kk * 16 * W + n * 16, W);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(O + warp * 16 * W + n * 16, acc, W, wmma::mem_row_major);
        }
        __syncthreads();   /* K/V tiles are reloaded next */
    }
    T *ob = (T *)a.o + b * a.o_sb + h * a.o_sh;
    for (int x = tid; x < BM * W; x += NT) {
        const int r = x / W, c = x % W;
        if (q0 + r < a.Lq) {
            const float l = Ls[r];
            helix_st(ob, (q0 + r) * a.o_sl + c, l > 0.0f ? O[x] / l : 0.0f);
        }
    }
}

template <typename T, int W> static cudaError_t wmma_launch(cudaStream_t s, const helix_cuda_attn *a)
{
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
    constexpr int BM = tile<T, W, WARPS>::BM;
    dim3 grid((unsigned)((a->Lq + BM - 1) / BM), (unsigned)a->H, (unsigned)a->B);
    attn_wmma<T, W, WARPS><<<grid, WARPS * 32, shm, s>>>(*a);
    return cudaGetLastError();
}

template <typename T> static cudaError_t wmma_by_width(cudaStream_t s, const helix_cuda_attn *a)
{
    switch (a->width) {
    case 64: return wmma_launch<T, 64>(s, a);
    case 128: return wmma_launch<T, 128>(s, a);
    case 256: return wmma_launch<T, 256>(s, a);
    default: return wmma_launch<T, 512>(s, a);
    }
}

/* ------------------------------------------------------------ v2 mma
 * FlashAttention-2 style on mma.sync.m16n8k16 (f32 accumulate): a block
 * of 4 warps owns 64 queries of one (b, h), each warp 16 rows. S = Q K^T,
 * the softmax statistics, P and the output O live in registers (P goes
 * from S's accumulator layout straight into the A operand of P V); K/V
 * tiles of BN keys are double-buffered in shared memory by cp.async
 * (the next tile loads while this one is used); rows padded by 16 bytes
 * (no bank conflicts on the fragment loads); V's B operand by
 * ldmatrix.trans. BN is the largest of 64/32/16 whose tiles fit the
 * device's opt-in shared memory. Causal: key tiles past the block's last
 * query are not loaded, heaviest query tiles first. Widths 64-256. */

constexpr int MMA_WARPS = 4, MMA_BM = 64;

template <int W, int BN> struct mma_tile {
    static constexpr int LD = W + 8;   /* padded row pitch, elements */
    static constexpr size_t bytes = 2 * (size_t)LD * (MMA_BM + 4 * BN);   /* Q + 2 stages of K and V (2-byte types) */
};

/* D += A B on one m16n8k16 tile (f32 accumulators), and two f32 packed
 * into the storage type's pair (the lower column in the low half) */
template <typename T> struct mma_op;
#define HELIX_MMA_OP(T, PTX, PAIR, PACK)                                                                      \
    template <> struct mma_op<T> {                                                                            \
        static __device__ __forceinline__ void run(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) \
        {                                                                                                     \
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX "." PTX ".f32 {%0,%1,%2,%3}, "          \
                         "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"                                          \
                         : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                     \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                     \
        }                                                                                                     \
        static __device__ __forceinline__ uint32_t pack(float lo, float hi)                                   \
        {                                                                                                     \
            PAIR v = PACK(lo, hi);                                                                            \
            return *reinterpret_cast<uint32_t *>(&v);                                                         \
        }                                                                                                     \
    };
HELIX_MMA_OP(__nv_bfloat16, "bf16", __nv_bfloat162, __floats2bfloat162_rn)
HELIX_MMA_OP(__half, "f16", __half2, __floats2half2_rn)
#undef HELIX_MMA_OP

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared without the registers; !valid: zeros */
__device__ __forceinline__ void cp16(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* rows [row0, row0+rows) of a strided matrix (ld elements apart, `valid`
 * rows in all) into padded shared rows of LD; past the end: zeros */
template <typename T, int W, int LD>
__device__ __forceinline__ void cp_rows(T *dst, const T *src, int64_t ld, int64_t row0, int rows, int64_t valid, int tid)
{
    constexpr int VEC = 8, PER = W / VEC;
    for (int idx = tid; idx < rows * PER; idx += MMA_WARPS * 32) {
        const int r = idx / PER, c = (idx % PER) * VEC;
        const bool ok = row0 + r < valid;
        cp16(dst + r * LD + c, ok ? src + (row0 + r) * ld + c : src, ok);
    }
}

template <typename T, int W, int BN>
__global__ void __launch_bounds__(MMA_WARPS * 32) attn_mma(helix_cuda_attn a)
{
    using M = mma_op<T>;
    constexpr int LD = mma_tile<W, BN>::LD, NS = BN / 8, NO = W / 8;
    extern __shared__ __align__(128) unsigned char mma_smem[];
    T *Qs = reinterpret_cast<T *>(mma_smem);
    T *Kst = Qs + MMA_BM * LD;             /* [2][BN][LD] */
    T *Vst = Kst + 2 * BN * LD;            /* [2][BN][LD] */
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t4 = lane % 4;
    const int64_t qt = a.causal ? (int64_t)gridDim.x - 1 - blockIdx.x : (int64_t)blockIdx.x;
    const int64_t b = blockIdx.z, h = blockIdx.y, q0 = qt * MMA_BM;
    const T *qb = (const T *)a.q + b * a.q_sb + h * a.q_sh;
    const T *kb = (const T *)a.k + b * a.kv_sb + h * a.kv_sh, *vb = (const T *)a.v + b * a.kv_sb + h * a.kv_sh;
    int64_t lim = a.Lk;
    if (a.kv_len && a.kv_len[b] < lim) lim = a.kv_len[b];
    if (lim < 0) lim = 0;
    int64_t kend = lim;
    if (a.causal && a.q_pos0 + q0 + MMA_BM < kend) kend = a.q_pos0 + q0 + MMA_BM;
    const int ntiles = (int)((kend + BN - 1) / BN);

    cp_rows<T, W, LD>(Qs, qb, a.q_sl, q0, MMA_BM, a.Lq, tid);
    if (ntiles > 0) {
        cp_rows<T, W, LD>(Kst, kb, a.kv_sl, 0, BN, a.Lk, tid);
        cp_rows<T, W, LD>(Vst, vb, a.kv_sl, 0, BN, a.Lk, tid);
    }
    cp_commit();

    float o[NO][4];
#pragma unroll
    for (int nn = 0; nn < NO; nn++) o[nn][0] = o[nn][1] = o[nn][2] = o[nn][3] = 0.0f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
    const float sl2 = a.scale * 1.4426950408889634f;          /* exp(x) = exp2(x log2 e) */
    const int64_t qi0 = a.q_pos0 + q0 + warp * 16 + g;        /* row g's position; row g+8 is 8 further */

    for (int it = 0; it < ntiles; it++) {
        const int st = it & 1;
        if (it + 1 < ntiles) {   /* the next tile loads into the other stage while this one is used */
            cp_rows<T, W, LD>(Kst + (st ^ 1) * BN * LD, kb, a.kv_sl, (int64_t)(it + 1) * BN, BN, a.Lk, tid);
            cp_rows<T, W, LD>(Vst + (st ^ 1) * BN * LD, vb, a.kv_sl, (int64_t)(it + 1) * BN, BN, a.Lk, tid);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const T *Ks = Kst + st * BN * LD, *Vs = Vst + st * BN * LD;

        /* S = Q K^T: this warp's 16 rows x BN keys, NS accumulators of 16 x 8 */
        float s[NS][4];
#pragma unroll
        for (int j = 0; j < NS; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < W / 16; kk++) {
            const T *qa = Qs + (warp * 16 + g) * LD + kk * 16 + 2 * t4;
            const uint32_t af[4] = {*reinterpret_cast<const uint32_t *>(qa), *reinterpret_cast<const uint32_t *>(qa + 8 * LD),
                                    *reinterpret_cast<const uint32_t *>(qa + 8),
                                    *reinterpret_cast<const uint32_t *>(qa + 8 * LD + 8)};
#pragma unroll
            for (int j = 0; j < NS; j++) {
                const T *kp = Ks + (j * 8 + g) * LD + kk * 16 + 2 * t4;
                M::run(s[j], af, *reinterpret_cast<const uint32_t *>(kp), *reinterpret_cast<const uint32_t *>(kp + 8));
            }
        }

        /* scale (log2 domain), mask, the rows' running max and sum; a row's
         * 8-key slices are spread over the 4 lanes of its quad */
        const int64_t k0 = (int64_t)it * BN;
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < NS; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t key = k0 + j * 8 + 2 * t4 + (e & 1), qi = qi0 + 8 * (e >> 1);
                float v = s[j][e] * sl2;
                if (key >= lim || (a.causal && key > qi)) v = -INFINITY;
                s[j][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float mnew = fmaxf(mrow[r], mx[r]);
            alpha[r] = mrow[r] == -INFINITY ? 0.0f : exp2f(mrow[r] - mnew);
            mrow[r] = mnew;
        }
        float rs[2] = {0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < NS; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = e >> 1;
                const float p = mrow[r] == -INFINITY ? 0.0f : exp2f(s[j][e] - mrow[r]);
                s[j][e] = p;
                rs[r] += p;
            }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 1);
            rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 2);
            lrow[r] = lrow[r] * alpha[r] + rs[r];
        }
#pragma unroll
        for (int nn = 0; nn < NO; nn++) {
            o[nn][0] *= alpha[0]; o[nn][1] *= alpha[0];
            o[nn][2] *= alpha[1]; o[nn][3] *= alpha[1];
        }

        /* O += P V: P's A operand is S's accumulator layout, two key slices per k16 */
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            const uint32_t pf[4] = {M::pack(s[2 * kk][0], s[2 * kk][1]), M::pack(s[2 * kk][2], s[2 * kk][3]),
                                    M::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), M::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int nn = 0; nn < NO; nn++) {
                /* lanes 0-7: keys kk*16 + 0..7 (matrix 0), lanes 8-15: + 8..15 (matrix 1); transposed, each
                 * lane gets V[2 t4 (+1)][g] of both: V's B operand */
                const T *vp = Vs + (kk * 16 + (lane & 15)) * LD + nn * 8;
                uint32_t b0, b1;
                asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                             : "=r"(b0), "=r"(b1)
                             : "r"(smem_u32(vp)));
                M::run(o[nn], pf, b0, b1);
            }
        }
        __syncthreads();   /* this stage is loaded again two tiles on */
    }

    T *ob = (T *)a.o + b * a.o_sb + h * a.o_sh;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int64_t row = q0 + warp * 16 + g + 8 * r;
        if (row >= a.Lq) continue;
        const float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
#pragma unroll
        for (int nn = 0; nn < NO; nn++) {
            const int64_t c = nn * 8 + 2 * t4;
            helix_st(ob, row * a.o_sl + c, o[nn][2 * r] * inv);
            helix_st(ob, row * a.o_sl + c + 1, o[nn][2 * r + 1] * inv);
        }
    }
}

template <typename T, int W, int BN> static cudaError_t mma_launch_bn(cudaStream_t s, const helix_cuda_attn *a, int dev)
{
    constexpr size_t shm = mma_tile<W, BN>::bytes;
    static int set_on[64];
    if (dev < 0 || dev >= 64 || !set_on[dev]) {
        cudaError_t e = cudaFuncSetAttribute(attn_mma<T, W, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess) return e;
        if (dev >= 0 && dev < 64) set_on[dev] = 1;
    }
    dim3 grid((unsigned)((a->Lq + MMA_BM - 1) / MMA_BM), (unsigned)a->H, (unsigned)a->B);
    attn_mma<T, W, BN><<<grid, MMA_WARPS * 32, shm, s>>>(*a);
    return cudaGetLastError();
}

/* the largest key tile whose shared memory the device gives a block */
template <typename T, int W> static cudaError_t mma_launch(cudaStream_t s, const helix_cuda_attn *a)
{
    int dev = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (e != cudaSuccess) return e;
    if constexpr (W <= 128)   /* at 256, 64 keys x 32 features of O per warp would not fit the registers */
        if ((size_t)optin >= mma_tile<W, 64>::bytes) return mma_launch_bn<T, W, 64>(s, a, dev);
    if ((size_t)optin >= mma_tile<W, 32>::bytes) return mma_launch_bn<T, W, 32>(s, a, dev);
    if ((size_t)optin >= mma_tile<W, 16>::bytes) return mma_launch_bn<T, W, 16>(s, a, dev);
    return cudaErrorInvalidConfiguration;
}

template <typename T> static cudaError_t mma_by_width(cudaStream_t s, const helix_cuda_attn *a)
{
    switch (a->width) {
    case 64: return mma_launch<T, 64>(s, a);
    case 128: return mma_launch<T, 128>(s, a);
    default: return mma_launch<T, 256>(s, a);
    }
}

/* ------------------------------------------------------------ dispatch */

extern "C" int helix_cuda_attention_fits(int variant, const helix_cuda_attn *a, const char **why)
{
    const char *w = NULL;
    const int64_t es = (int64_t)helix_dtype_size(a->t);
    if (a->B < 1 || a->B > 65535 || a->H < 1 || a->H > 65535 || a->Lq < 1 || a->Lk < 1 || a->Lq > ((int64_t)1 << 36))
        w = "B and heads in 1..65535, Lq and Lk at least 1";
    else if (a->width < 1 || a->width > 512) w = "head width 1..512";
    else if (variant == HELIX_CUDA_ATTN_WMMA) {
        if (a->t != HELIX_F16 && a->t != HELIX_BF16) w = "f16 or bf16 storage";
        else if (a->width != 64 && a->width != 128 && a->width != 256 && a->width != 512) w = "head width 64, 128, 256 or 512";
        else if ((((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v) % 16) ||
                 ((a->q_sb | a->q_sl | a->q_sh | a->kv_sb | a->kv_sl | a->kv_sh) * es) % 16)
            w = "16-byte aligned buffers and row, head and batch strides";
    } else if (variant == HELIX_CUDA_ATTN_MMA) {
        if (a->t != HELIX_F16 && a->t != HELIX_BF16) w = "f16 or bf16 storage";
        else if (a->width != 64 && a->width != 128 && a->width != 256) w = "head width 64, 128 or 256";
        else if ((((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v) % 16) ||
                 ((a->q_sb | a->q_sl | a->q_sh | a->kv_sb | a->kv_sl | a->kv_sh) * es) % 16)
            w = "16-byte aligned buffers and row, head and batch strides";
    } else if (variant != HELIX_CUDA_ATTN_ROWS) w = "a variant of helix_cuda.h";
    if (why) *why = w;
    return w == NULL;
}

extern "C" cudaError_t helix_cuda_attention_launch(cudaStream_t s, int variant, const helix_cuda_attn *a)
{
    if (variant == HELIX_CUDA_ATTN_WMMA) {
        if (a->t == HELIX_F16) return wmma_by_width<__half>(s, a);
        return wmma_by_width<__nv_bfloat16>(s, a);
    }
    if (variant == HELIX_CUDA_ATTN_MMA) {
        if (a->t == HELIX_F16) return mma_by_width<__half>(s, a);
        return mma_by_width<__nv_bfloat16>(s, a);
    }
    return HELIX_BY_TYPE(a->t, rows_by_width, s, a);
}

extern "C" const char *helix_cuda_attention_name(int variant)
{
    return variant == HELIX_CUDA_ATTN_ROWS ? "rows" : variant == HELIX_CUDA_ATTN_WMMA ? "wmma"
         : variant == HELIX_CUDA_ATTN_MMA ? "mma" : "?";
}

/* the kernel lab's call: dense [heads, L, width], B = 1 */
extern "C" helix_status helix_cuda_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L,
                                             int64_t width, int causal, float scale, const void *q, const void *k,
                                             const void *v, void *o, helix_err *err)
{
    if (variant < 0 || variant >= HELIX_CUDA_ATTN_VARIANTS)
        return helix_errf(err, HELIX_ERR_INVALID, "attention variant %d: there are %d (0 rows, 1 wmma, 2 mma)", variant,
                          HELIX_CUDA_ATTN_VARIANTS);
    helix_cuda_attn a;
    memset(&a, 0, sizeof a);
    a.B = 1; a.H = heads; a.width = width; a.Lq = L; a.Lk = L;
    a.q_sl = a.kv_sl = a.o_sl = width;
    a.q_sh = a.kv_sh = a.o_sh = L * width;
    a.q_sb = a.kv_sb = a.o_sb = heads * L * width;
    a.causal = causal; a.scale = scale; a.t = t;
    a.q = q; a.k = k; a.v = v; a.o = o;
    const char *why = NULL;
    if (!helix_cuda_attention_fits(variant, &a, &why))
        return helix_errf(err, HELIX_ERR_INVALID, "GPU attention/%s %s heads %lld L %lld width %lld: needs %s",
                          helix_cuda_attention_name(variant), helix_dtype_name(t), (long long)heads, (long long)L,
                          (long long)width, why);
    if (helix_status u = helix_cuda_use(c, err)) return u;
    return helix_cuda_check(helix_cuda_attention_launch(c->stream, variant, &a), "attention kernel launch", err);
}
