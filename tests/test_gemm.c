/* test_gemm.c — helix_gemm and the packed-weight pair (helix_gemm_pack +
 * helix_gemm_run) on every kernel path this CPU can run, against a float64
 * product of the same rounded inputs: odd shapes (edges of every
 * micro-tile, depth past one block), leading dimensions wider than the
 * matrix, every mix of storage types, with and without bias. */
#include "helix.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffff) / 65536.0f - 0.5f;
}

static void *fill(helix_dtype t, int64_t n, uint64_t seed, float *f32)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * helix_dtype_size(t));
    for (int64_t i = 0; i < n; i++) {
        float v = frand(&seed);
        helix_from_f32(t, &v, (char *)p + (size_t)i * helix_dtype_size(t), 1);
        f32[i] = helix_load(t, p, i);
    }
    return p;
}

/* max |C - ref| / (1 + sum |a b|) over all outputs */
static double run_case(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc, int bias,
                       int packed)
{
    const int64_t lda = K + 3, ldb = N + 5, ldc = N + 2;
    float *af = malloc(4 * (size_t)(M * lda + 1)), *bf = malloc(4 * (size_t)(K * ldb + 1)), *cf = malloc(4 * (size_t)(N + 1));
    void *A = fill(ta, M * lda, 11 + (uint64_t)M, af), *B = fill(tb, K * ldb, 23 + (uint64_t)N, bf);
    void *bs = fill(tc, N, 37, cf);
    const size_t ec = helix_dtype_size(tc);
    char *C = malloc((size_t)(M * ldc + 1) * ec);
    memset(C, 0x7f, (size_t)(M * ldc + 1) * ec);         /* garbage the GEMM must overwrite */
    double worst = 0;
    if (packed) {
        void *pk = aligned_alloc(64, (size_t)helix_gemm_pack_bytes(K, N, ta, tb));
        void *ws = aligned_alloc(64, (size_t)helix_gemm_run_workspace_bytes(M, N, K, ta, tb, tc));
        helix_gemm_b b;
        helix_gemm_pack(K, N, ta, tb, B, ldb, pk, &b);
        helix_gemm_run(M, &b, ta, A, lda, bias ? bs : NULL, tc, C, ldc, ws);
        free(pk); free(ws);
    } else {
        void *ws = aligned_alloc(64, (size_t)helix_gemm_workspace_bytes(M, N, K, ta, tb, tc));
        helix_gemm(M, N, K, ta, A, lda, tb, B, ldb, bias ? bs : NULL, tc, C, ldc, ws);
        free(ws);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double d = bias ? cf[j] : 0, mag = bias ? fabs(cf[j]) : 0;
            for (int64_t k = 0; k < K; k++) {
                d += (double)af[i * lda + k] * bf[k * ldb + j];
                mag += fabs((double)af[i * lda + k] * bf[k * ldb + j]);
            }
            const double err = fabs(helix_load(tc, C, i * ldc + j) - d) / (1 + mag);
            if (!(err <= worst)) worst = err;   /* NaN too */
        }
    /* the padding between rows of C is left alone */
    for (int64_t i = 0; i + 1 < M; i++)
        for (int64_t j = N; j < ldc; j++)
            if (memcmp(C + (size_t)(i * ldc + j) * ec, "\x7f\x7f\x7f\x7f", ec)) worst = INFINITY;
    free(af); free(bf); free(cf); free(A); free(B); free(bs); free(C);
    return worst;
}

static void cases(const char *path)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {37, 70, 300}, {200, 64, 513}, {64, 512, 64}, {3, 100, 0}};
    const helix_dtype types[3] = {HELIX_F32, HELIX_BF16, HELIX_F16};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ti = 0; ti < 3; ti++)
            for (int bias = 0; bias < 2; bias++) {
                const helix_dtype t = types[ti];
                const double tol = t == HELIX_F32 ? 1e-6 : t == HELIX_F16 ? 1e-3 : 8e-3;   /* C's rounding */
                const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                double e = run_case(M, N, K, t, t, t, bias, (int)(s & 1));
                CHECK(e <= tol, "[%s] %s %lldx%lldx%lld bias=%d: err %.3g > %.3g", path, helix_dtype_name(t), (long long)M,
                      (long long)N, (long long)K, bias, e, tol);
            }
    /* mixed storage: 16-bit activations and weights, f32 out, and back */
    CHECK(run_case(40, 50, 260, HELIX_BF16, HELIX_BF16, HELIX_F32, 1, 1) <= 1e-6, "[%s] bf16 x bf16 -> f32", path);
    CHECK(run_case(40, 50, 260, HELIX_F32, HELIX_F16, HELIX_F32, 1, 0) <= 1e-6, "[%s] f32 x f16 -> f32", path);
    CHECK(run_case(40, 50, 260, HELIX_F16, HELIX_F32, HELIX_BF16, 0, 1) <= 8e-3, "[%s] f16 x f32 -> bf16", path);
}

int main(void)
{
    for (int i = 0; i < HELIX_ISA_COUNT; i++) {
        const char *path = helix_isa_name((helix_isa)i);
        if (helix_isa_force((helix_isa)i)) {
            printf("path %s: SKIPPED: this CPU lacks %s\n", path, helix_isa_missing((helix_isa)i));
            continue;
        }
        const int before = t_fail;
        cases(path);
        printf("path %s: %s\n", path, t_fail == before ? "ok" : "FAILED");
    }
    /* HELIX_CPU_ISA is checked, never guessed */
    helix_isa isa;
    CHECK(helix_isa_parse("avx512", &isa) == HELIX_OK && isa == HELIX_ISA_AVX512, "parse avx512");
    CHECK(helix_isa_parse("sse9", &isa) == HELIX_ERR_INVALID, "parse sse9 refused");
    CHECK(helix_isa_force(HELIX_ISA_COUNT) == HELIX_ERR_INVALID, "force out of range refused");
    CHECK(helix_isa_supported(HELIX_ISA_PORTABLE), "portable always runs");
    return test_summary();
}
