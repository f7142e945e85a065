/* gemm.c — C = A B (+ bias) for any mix of storage types, f32 accumulation.
 *
 * With OpenBLAS (serial; helix threads itself) f32 operands go straight to
 * cblas_sgemm and 16-bit ones are widened to f32 first: B once, A and C a
 * block of GEMM_MB rows at a time, in a workspace the plan sizes. Without
 * it, a portable blocked loop converts small blocks on the stack so the
 * inner loop is a contiguous multiply-add the compiler vectorizes. */
#include "helix.h"

#include <string.h>
#ifdef HELIX_HAVE_CBLAS
#include <cblas.h>
#endif

#define GEMM_MB 256

#ifdef HELIX_HAVE_CBLAS
#include <pthread.h>
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
/* helix runs many devices on their own threads: OpenBLAS must not add its
 * own (the pthread build is the one that is safe to call concurrently). */
void helix_blas_init(void) { pthread_once(&blas_once, blas_single); }
#else
void helix_blas_init(void) {}
#endif

int64_t helix_gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc)
{
#ifdef HELIX_HAVE_CBLAS
    int64_t mb = M < GEMM_MB ? M : GEMM_MB, f = 0;
    if (tb != HELIX_F32) f += K * N;
    if (ta != HELIX_F32) f += mb * K;
    if (tc != HELIX_F32) f += mb * N;
    return 4 * f;
#else
    (void)M; (void)N; (void)K; (void)ta; (void)tb; (void)tc;
    return 0;
#endif
}

const char *helix_blas_name(void)
{
#ifdef HELIX_HAVE_CBLAS
    return "openblas";
#else
    return "portable";
#endif
}

#ifdef HELIX_HAVE_CBLAS
void helix_gemm(int64_t M, int64_t N, int64_t K, helix_dtype ta, const void *A, int64_t lda, helix_dtype tb,
                const void *B, int64_t ldb, const void *bias, helix_dtype tc, void *C, int64_t ldc, void *work)
{
    helix_blas_init();
    const size_t ea = helix_dtype_size(ta), eb = helix_dtype_size(tb), ec = helix_dtype_size(tc);
    float *w = (float *)work;
    const float *bf = (const float *)B;
    int64_t ldbf = ldb;
    if (tb != HELIX_F32) {
        float *p = w;
        for (int64_t k = 0; k < K; k++) helix_to_f32(tb, (const char *)B + (size_t)(k * ldb) * eb, p + k * N, N);
        bf = p;
        ldbf = N;
        w += K * N;
    }
    float *af = NULL, *cf = NULL;
    const int64_t mbmax = M < GEMM_MB ? M : GEMM_MB;       /* as helix_gemm_workspace_bytes */
    if (ta != HELIX_F32) { af = w; w += mbmax * K; }
    if (tc != HELIX_F32) { cf = w; }
    for (int64_t m0 = 0; m0 < M; m0 += GEMM_MB) {
        const int64_t mb = M - m0 < GEMM_MB ? M - m0 : GEMM_MB;
        const float *a = (const float *)((const char *)A + (size_t)(m0 * lda) * ea);
        int64_t ldaf = lda;
        if (af) {
            for (int64_t i = 0; i < mb; i++) helix_to_f32(ta, (const char *)A + (size_t)((m0 + i) * lda) * ea, af + i * K, K);
            a = af;
            ldaf = K;
        }
        float *c = cf ? cf : (float *)C + m0 * ldc;
        int64_t ldcf = cf ? N : ldc;
        float beta = 0.0f;
        if (bias) {
            for (int64_t i = 0; i < mb; i++) helix_to_f32(tc, bias, c + i * ldcf, N);
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mb, (int)N, (int)K, 1.0f, a, (int)ldaf, bf,
                    (int)ldbf, beta, c, (int)ldcf);
        if (cf)
            for (int64_t i = 0; i < mb; i++)
                helix_from_f32(tc, cf + i * N, (char *)C + (size_t)((m0 + i) * ldc) * ec, N);
    }
}
#else
#define MB 16
#define NB 256
#define KB 64

void helix_gemm(int64_t M, int64_t N, int64_t K, helix_dtype ta, const void *A, int64_t lda, helix_dtype tb,
                const void *B, int64_t ldb, const void *bias, helix_dtype tc, void *C, int64_t ldc, void *work)
{
    (void)work;
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
#endif
