/* avx512-impl.h — private: AVX-512 pieces shared by the AVX-512 and AMX
 * paths (k_avx512.c, k_amx.c; both built with AVX-512 flags). */
#ifndef HELIX_AVX512_IMPL_H
#define HELIX_AVX512_IMPL_H

#include "kern-impl.h"

#include <immintrin.h>

/* e^v for v <= 0, sixteen lanes: the formula of helix_exp_neg */
static inline __m512 helix_exp_neg16(__m512 v)
{
    const __m512 lo = _mm512_set1_ps(HELIX_EXP_LO);
    const __m512 c = _mm512_max_ps(lo, v);
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(HELIX_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(HELIX_LN2_HI), c);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(HELIX_LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
    const __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    /* v < lo (and -inf) gives 0; NaN compares false and stays NaN */
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), e);
}

/* Transpose 16 x 16 32-bit lanes in registers: four stages of two-source
 * permutes, stage s swapping sub-blocks of 8 >> s lanes between rows i and
 * i + (8 >> s). */
static inline void helix_transpose16(__m512 r[16])
{
    static const int32_t ix[4][2][16] = {
        {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
         {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
        {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
         {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
        {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
         {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
        {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
         {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    };
    for (int s = 0; s < 4; s++) {
        const int b = 8 >> s;
        const __m512i lo = _mm512_loadu_si512(ix[s][0]), hi = _mm512_loadu_si512(ix[s][1]);
        for (int i = 0; i < 16; i++) {
            if (i & b) continue;
            const __m512 x = r[i], y = r[i + b];
            r[i] = _mm512_permutex2var_ps(x, lo, y);
            r[i + b] = _mm512_permutex2var_ps(x, hi, y);
        }
    }
}

#endif
