/* gemm.c — portable C = A B (+ bias) for any mix of storage types, f32
 * accumulation. Blocks of A and B are converted to f32 on the stack so the
 * inner loop is a contiguous multiply-add the compiler vectorizes. This is
 * the readable baseline; faster paths come behind the same signature. */
#include "helix.h"

#include <string.h>

#define MB 16
#define NB 256
#define KB 64

void helix_gemm(int64_t M, int64_t N, int64_t K,
                helix_dtype ta, const void *A, int64_t lda,
                helix_dtype tb, const void *B, int64_t ldb,
                const void *bias, helix_dtype tc, void *C, int64_t ldc)
{
    float acc[MB][NB], bf[KB][NB], af[MB][KB];
    const size_t ea = helix_dtype_size(ta), eb = helix_dtype_size(tb), ec = helix_dtype_size(tc);
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
        const int64_t nb = N - n0 < NB ? N - n0 : NB;
        for (int64_t m0 = 0; m0 < M; m0 += MB) {
            const int64_t mb = M - m0 < MB ? M - m0 : MB;
            for (int64_t i = 0; i < mb; i++) {
                if (bias) helix_to_f32(tc, (const char *)bias + (size_t)n0 * ec, acc[i], nb);
                else memset(acc[i], 0, sizeof(float) * (size_t)nb);
            }
            for (int64_t k0 = 0; k0 < K; k0 += KB) {
                const int64_t kb = K - k0 < KB ? K - k0 : KB;
                for (int64_t k = 0; k < kb; k++)
                    helix_to_f32(tb, (const char *)B + (size_t)((k0 + k) * ldb + n0) * eb, bf[k], nb);
                for (int64_t i = 0; i < mb; i++)
                    helix_to_f32(ta, (const char *)A + (size_t)((m0 + i) * lda + k0) * ea, af[i], kb);
                for (int64_t i = 0; i < mb; i++) {
                    float *ci = acc[i];
                    for (int64_t k = 0; k < kb; k++) {
                        const float av = af[i][k];
                        const float *bk = bf[k];
                        for (int64_t n = 0; n < nb; n++) ci[n] += av * bk[n];
                    }
                }
            }
            for (int64_t i = 0; i < mb; i++)
                helix_from_f32(tc, acc[i], (char *)C + (size_t)((m0 + i) * ldc + n0) * ec, nb);
        }
    }
}
