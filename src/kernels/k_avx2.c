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

/* e^v, v <= 87 (the softmax passes v <= HELIX_SOFTMAX_SLACK) */
static inline __m256 exp_neg8(__m256 v)
{
    const __m256 lo = _mm256_set1_ps(HELIX_EXP_LO);
    const __m256 c = _mm256_max_ps(lo, v);               /* NaN in v stays NaN */
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(HELIX_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(HELIX_LN2_HI), c);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(HELIX_LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ), e);
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

/* the first n lanes (n may exceed 8) of p, -inf after */
static inline __m256 loadn8(const float *p, int64_t n)
{
    if (n >= 8) return _mm256_loadu_ps(p);
    const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, k), _mm256_castsi256_ps(k));
}

static inline void storen8(float *p, int64_t n, __m256 x)
{
    if (n >= 8) { _mm256_storeu_ps(p, x); return; }
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), x);
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
#define V_EXP(x) exp_neg8(x)
#define S_EXP(x) helix_exp_neg(x)
#include "softmax-impl.h"

static void scale_row(float *x, int64_t n, float a)
{
    int64_t e = 0;
    const __m256 a8 = _mm256_set1_ps(a);
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, _mm256_mul_ps(_mm256_loadu_ps(x + e), a8));
    for (; e < n; e++) x[e] *= a;
}

const helix_kern helix_kern_avx2 = {HELIX_ISA_AVX2, MR, NR, ukr, ukr_rm, softmax_rows, scale_row, NULL, NULL, MR1, ukr_rm1};
