/* avx512-impl.h — private: AVX-512 pieces shared by the AVX-512 and AMX
 * paths (k_avx512.c, k_amx.c; both built with AVX-512 flags). */
#ifndef HELIX_AVX512_IMPL_H
#define HELIX_AVX512_IMPL_H

#include "kern-impl.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* the lanes of the first min(left, 16) elements */
static inline __mmask16 helix_mask16(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* 2^t for t <= 126 (the softmax passes t <= 0, or up to its slack),
 * sixteen lanes: t = k + r with k an integer and
 * |r| <= 1/2, 2^r by a degree-5 polynomial fitted for relative error on
 * [-1/2, 1/2] with p(0) = 1 (1.6e-7 evaluated in f32), times 2^k (scalef).
 * Below -125 and at -inf exactly 0; NaN stays NaN. Both softmaxes use it
 * (scores in log2 units: the callers fold log2(e) into the scale). */
static inline __m512 helix_exp2_16(__m512 t)
{
    /* r = t - round(t) in one vreduceps (AVX512DQ), then k = t - r, exact:
     * the same bits as roundscale + subtract (checked over 61 M values and
     * the specials), 7 % less time in the softmax */
    const __m512 r = _mm512_reduce_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 k = _mm512_sub_ps(t, r);   /* -inf at -inf: masked below */
    __m512 p = _mm512_set1_ps(1.3265771558508277e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.671548381447792e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550730600953102e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022240936756134e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931470036506653e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    /* not-less-than, unordered: true for NaN (kept), false for -inf */
    return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ), p, k);
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
