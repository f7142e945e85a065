/* k_avx2.c — the AVX2+FMA path (built with -mavx2 -mfma, called only
 * when the CPU has them): a 6 x 16 micro-kernel (12 ymm accumulators,
 * two B loads and one broadcast per step) and the softmax row, eight
 * lanes at a time (softmax-impl.h). */
#include "kern-impl.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define MR 6
#define NR 16
#define MR1 12   /* 12 ymm accumulators */

#define VEC __m256
#define VL 8
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, x) _mm256_storeu_ps(p, x)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#include "ukr-impl.h"

/* 2^t, t <= 126 (the softmax passes t <= HELIX_SOFTMAX_SLACK, in log2
 * units): t = k + r, |r| <= 1/2, 2^r by the same fitted degree-5
 * polynomial as the AVX-512 path (avx512-impl.h, 1.6e-7 relative), times
 * 2^k built in the exponent bits. Below -125 and at -inf exactly 0; NaN
 * stays NaN. */
static inline __m256 exp2_8(__m256 t)
{
    const __m256 lo = _mm256_set1_ps(-125.0f);
    const __m256 c = _mm256_max_ps(lo, t);               /* NaN in t stays NaN */
    const __m256 k = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(c, k);
    __m256 p = _mm256_set1_ps(1.3265771558508277e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.671548381447792e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.550730600953102e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.4022240936756134e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.931470036506653e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(t, lo, _CMP_LT_OQ), e);
}

static inline float hmax8(__m256 x)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static inline float hsum8(__m256 x)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

/* all ones in the first n lanes (0 <= n < 8) */
static inline __m256i mask8(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* the first n lanes (n may exceed 8) of p, -inf after */
static inline __m256 loadn8(const float *p, int64_t n)
{
    if (n >= 8) return _mm256_loadu_ps(p);
    const __m256i k = mask8(n < 0 ? 0 : n);
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, k), _mm256_castsi256_ps(k));
}

static inline void storen8(float *p, int64_t n, __m256 x)
{
    if (n >= 8) _mm256_storeu_ps(p, x);
    else _mm256_maskstore_ps(p, mask8(n), x);
}

#define V_SET1(x) _mm256_set1_ps(x)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_LOADN(p, n) loadn8(p, n)
#define V_STOREN(p, n, x) storen8(p, n, x)
#define V_ANY_ABOVE(x, y) (_mm256_movemask_ps(_mm256_cmp_ps(x, y, _CMP_NLE_UQ)) != 0)
#define V_ANY_NAN(x) (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0)
#define V_HMAX(x) hmax8(x)
#define V_HSUM(x) hsum8(x)
#define V_EXP(x) exp2_8(x)   /* base2: scores in units of log2 */
#define S_EXP(x) exp2f(x)
#include "softmax-impl.h"

static void scale_row(float *x, int64_t n, float a)
{
    int64_t e = 0;
    const __m256 a8 = _mm256_set1_ps(a);
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, _mm256_mul_ps(_mm256_loadu_ps(x + e), a8));
    for (; e < n; e++) x[e] *= a;
}

const helix_kern helix_kern_avx2 = {
    .isa = HELIX_ISA_AVX2, .mr = MR, .nr = NR, .ukr = ukr, .ukr_rm = ukr_rm,
    .softmax_rows = softmax_rows, .base2 = 1, .scale_row = scale_row, .mr1 = MR1, .ukr_rm1 = ukr_rm1};
