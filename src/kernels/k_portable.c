/* k_portable.c — the portable path: plain C the compiler may vectorize
 * for the baseline x86-64 (SSE2), the same bits on every machine. Also
 * the readable reference for the micro-kernel contract (kern-impl.h). */
#include "kern-impl.h"

#include <math.h>
#include <string.h>

#define MR 4
#define NR 16

static void ukr(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int acc)
{
    float t[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++, ap += MR, bp += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) t[i][j] += ap[i] * bp[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static void ukr_rm(int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc, int acc)
{
    float t[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++, bp += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) t[i][j] += a[i * lda + k] * bp[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static float softmax_row(float *s, int64_t n, float *m, float *l)
{
    float mnew = *m;
    for (int64_t j = 0; j < n; j++) mnew = s[j] > mnew || s[j] != s[j] ? s[j] : mnew;   /* a NaN sticks: P NaN, not 0 */
    if (mnew == -INFINITY) { memset(s, 0, sizeof(float) * (size_t)n); return 1.0f; }
    float part[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) { s[j + q] = helix_exp_neg(s[j + q] - mnew); part[q] += s[j + q]; }
    for (; j < n; j++) { s[j] = helix_exp_neg(s[j] - mnew); part[0] += s[j]; }
    const float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float alpha = *m == mnew ? 1.0f : *m == -INFINITY ? 0.0f : helix_exp_neg(*m - mnew);
    *l = *l * alpha + sum;
    *m = mnew;
    return alpha;
}

static void softmax_rows(float *s, int64_t ld, int64_t rows, int64_t n, float *m, float *l, float *alpha)
{
    for (int64_t r = 0; r < rows; r++) alpha[r] = softmax_row(s + r * ld, n, m + r, l + r);
}

static void scale_row(float *x, int64_t n, float a)
{
    for (int64_t e = 0; e < n; e++) x[e] *= a;
}

const helix_kern helix_kern_portable = {
    .isa = HELIX_ISA_PORTABLE, .mr = MR, .nr = NR, .ukr = ukr, .ukr_rm = ukr_rm,
    .softmax_rows = softmax_rows, .base2 = 0, .scale_row = scale_row};
