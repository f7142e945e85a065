/* k_avx512.c — the AVX-512 path (built with -mavx512f -mavx512bw
 * -mavx512vl -mavx512dq, called only when the CPU has them): a 12 x 32
 * micro-kernel (24 zmm accumulators, two B loads and twelve broadcasts per
 * step) and the softmax row sixteen lanes at a time (softmax-impl.h). */
#include "avx512-impl.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define MR 12
#define NR 32
#define MR1 16   /* 16 zmm accumulators, 16 broadcasts and one load per step */

#define VEC __m512
#define VL 16
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, x) _mm512_storeu_ps(p, x)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#include "ukr-impl.h"

#define V_SET1(x) _mm512_set1_ps(x)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_LOADN(p, n) _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), helix_mask16((n) < 0 ? 0 : (n)), p)
#define V_STOREN(p, n, x) _mm512_mask_storeu_ps(p, helix_mask16(n), x)
#define V_ANY_ABOVE(x, y) (_mm512_cmp_ps_mask(x, y, _CMP_NLE_UQ) != 0)
#define V_ANY_NAN(x) (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) != 0)
#define V_HMAX(x) _mm512_reduce_max_ps(x)
#define V_HSUM(x) _mm512_reduce_add_ps(x)
#define V_EXP(x) helix_exp2_16(x)   /* base2: scores in units of log2 */
#define S_EXP(x) _mm512_cvtss_f32(helix_exp2_16(_mm512_set1_ps(x)))
#include "softmax-impl.h"

static void scale_row(float *x, int64_t n, float a)
{
    int64_t e = 0;
    const __m512 a16 = _mm512_set1_ps(a);
    for (; e + 16 <= n; e += 16) _mm512_storeu_ps(x + e, _mm512_mul_ps(_mm512_loadu_ps(x + e), a16));
    for (; e < n; e++) x[e] *= a;
}

/* the first n <= 16 source values from element i as f32, zeros after */
static inline __m512 load16n(helix_dtype t, const void *src, int64_t i, int64_t n)
{
    const __mmask16 m = helix_mask16(n);
    if (t == HELIX_F32) return _mm512_maskz_loadu_ps(m, (const float *)src + i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)src + i);
    if (t == HELIX_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline __m512 load16(helix_dtype t, const void *src, int64_t i) { return load16n(t, src, i, 16); }

/* B(k, j) = src[j*ld + k] into NR-column panels: 16 x 16 blocks are read
 * as rows and transposed in registers; edges go element by element. */
static void pack_bt(int64_t kc, int64_t n, helix_dtype t, const void *src, int64_t ld, float *dst)
{
    const int64_t np = (n + NR - 1) / NR * NR;
    for (int64_t j0 = 0; j0 < np; j0 += 16) {
        float *pan = dst + (j0 / NR) * NR * kc + (j0 % NR);
        for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            if (j0 + 16 <= n && k0 + 16 <= kc) {
                __m512 r[16];
                for (int i = 0; i < 16; i++) r[i] = load16(t, src, (j0 + i) * ld + k0);
                helix_transpose16(r);
                for (int i = 0; i < 16; i++) _mm512_storeu_ps(pan + (k0 + i) * NR, r[i]);
                continue;
            }
            for (int64_t k = k0; k < k0 + 16 && k < kc; k++)
                for (int64_t j = j0; j < j0 + 16; j++)
                    pan[k * NR + (j - j0)] = j < n ? helix_load(t, src, j * ld + k) : 0.0f;
        }
    }
}

/* A (element (i, k) = src[i*ld + k]) into MR-row panels times scale:
 * 16 deep at a time, the panel's rows read as vectors (zeros past the
 * last row and past kc), transposed in registers, each k's MR values
 * stored with one masked store. */
static void pack_a(int64_t rows, int64_t kc, helix_dtype t, const void *src, int64_t ld, float scale, float *dst)
{
    const __m512 sc = _mm512_set1_ps(scale);
    for (int64_t i0 = 0; i0 < rows; i0 += MR) {
        float *panel = dst + i0 * kc;
        const int64_t n = rows - i0 < MR ? rows - i0 : MR;
        for (int64_t k0 = 0; k0 < kc; k0 += 16) {
            const int64_t kb = kc - k0 < 16 ? kc - k0 : 16;
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                if (i >= n) { r[i] = _mm512_setzero_ps(); continue; }
                const __m512 x = load16n(t, src, (i0 + i) * ld + k0, kb);
                r[i] = scale == 1.0f ? x : _mm512_mul_ps(x, sc);
            }
            helix_transpose16(r);
            for (int64_t k = 0; k < kb; k++) _mm512_mask_storeu_ps(panel + (k0 + k) * MR, (__mmask16)((1u << MR) - 1), r[k]);
        }
    }
}

const helix_kern helix_kern_avx512 = {
    .isa = HELIX_ISA_AVX512, .mr = MR, .nr = NR, .ukr = ukr, .ukr_rm = ukr_rm,
    .softmax_rows = softmax_rows, .base2 = 1, .scale_row = scale_row,
    .pack_bt = pack_bt, .pack_a = pack_a, .mr1 = MR1, .ukr_rm1 = ukr_rm1};
