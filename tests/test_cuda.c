/* test_cuda.c — the GPU path against float64 on the host: every attention
 * variant of the kernel lab (widths 64-512, f16/bf16, causal or not, L not
 * a multiple of any tile, one query, L = 2048 with 8 heads), scores with
 * std 3 (a kernel that skips the softmax rescale is off by O(1)), errors
 * against max|ref| and an RMS bound, canary bytes past every output, the
 * variants cross-checked against v0, the cuBLAS GEMM (f32/f16/bf16, odd
 * shapes), and refusals of what the kernels do not take. Without CUDA in
 * the build or without a GPU it prints SKIPPED and exits 77, which ctest
 * reports as skipped (never as passed). */
#include "check.h"
#include "helix_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* n values of type t, uniform in (-amp, amp); f gets them as stored */
static void *make_amp(helix_dtype t, int64_t n, uint64_t seed, float amp, float *f)
{
    void *h = malloc((size_t)n * helix_dtype_size(t));
    for (int64_t k = 0; h && k < n; k++) {
        float v = amp * urand(&seed);
        helix_from_f32(t, &v, (char *)h + (size_t)k * helix_dtype_size(t), 1);
        f[k] = helix_load(t, h, k);
    }
    return h;
}
static void *make(helix_dtype t, int64_t n, uint64_t seed, float *f) { return make_amp(t, n, seed, 1.0f, f); }

#define CANARY 256   /* bytes past every output that a kernel must not touch */

/* One attention call against float64, with inputs that make a wrong
 * kernel visible: q and k uniform in (-3, 3), so the scores (scale
 * 1/sqrt(w)) have std 3 and the softmax is far from uniform (a kernel
 * that skips the online rescale, or the max, is off by O(1)); errors
 * judged against max|ref| (max) and the RMS of ref (RMS) over the rows
 * checked (every `stride`-th query row, and the last); canary bytes past
 * the output; `out` (may be NULL) keeps the output for cross-checks. */
static void test_attention_rows(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L, int64_t w,
                                int causal, int64_t stride, void *out)
{
    const int64_t n = heads * L * w;
    const size_t bytes = (size_t)n * helix_dtype_size(t);
    float *f[3];
    void *h[4], *d[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        f[k] = malloc(4 * (size_t)n);
        h[k] = make_amp(t, n, 100 + (uint64_t)k, k < 2 ? 3.0f : 1.0f, f[k]);
    }
    h[3] = malloc(bytes + CANARY);
    unsigned char canary[CANARY];
    memset(canary, 0xA5, sizeof canary);
    helix_err err = {{0}};
    helix_status st = HELIX_OK;
    for (int k = 0; !st && k < 4; k++) st = helix_cuda_malloc(c, bytes + CANARY, &d[k], &err);
    for (int k = 0; !st && k < 3; k++) st = helix_cuda_upload(c, d[k], h[k], bytes, &err);
    if (!st) st = helix_cuda_upload(c, (char *)d[3] + bytes, canary, CANARY, &err);
    if (!st) st = helix_cuda_attention(c, variant, t, heads, L, w, causal, 1.0f / sqrtf((float)w), d[0], d[1], d[2], d[3], &err);
    if (!st) st = helix_cuda_sync(c, &err);
    if (!st) st = helix_cuda_download(c, h[3], d[3], bytes + CANARY, &err);
    CHECK(st == HELIX_OK, "attention/%s %s L=%lld w=%lld: %s", helix_cuda_attention_name(variant), helix_dtype_name(t),
          (long long)L, (long long)w, err.msg);
    CHECK(st || !memcmp((char *)h[3] + bytes, canary, CANARY), "attention/%s %s L=%lld w=%lld: wrote past its output",
          helix_cuda_attention_name(variant), helix_dtype_name(t), (long long)L, (long long)w);
    /* bf16 keeps 8 bits, f16 11: the output's rounding and P's */
    const double tol_max = t == HELIX_F16 ? 4e-3 : 2e-2, tol_rms = t == HELIX_F16 ? 1e-3 : 6e-3;
    double max_ref = 0, max_err = 0, se = 0, sr = 0, *p = malloc(sizeof(double) * (size_t)L);
    int64_t checked = 0;
    for (int64_t hd = 0; !st && hd < heads; hd++)
        for (int64_t i = 0; i < L; i++) {
            if (i % stride && i != L - 1) continue;
            const int64_t end = causal ? i + 1 : L;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < end; j++) {
                double sc = 0;
                for (int64_t e = 0; e < w; e++) sc += (double)f[0][(hd * L + i) * w + e] * f[1][(hd * L + j) * w + e];
                p[j] = sc / sqrt((double)w);
                if (p[j] > mx) mx = p[j];
            }
            for (int64_t j = 0; j < end; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            for (int64_t e = 0; e < w; e++) {
                double ref = 0;
                for (int64_t j = 0; j < end; j++) ref += p[j] * f[2][(hd * L + j) * w + e];
                ref /= sum;
                const double got = helix_load(t, h[3], (hd * L + i) * w + e), dd = fabs(got - ref);
                if (!(dd <= max_err)) max_err = dd;          /* NaN sticks */
                if (fabs(ref) > max_ref) max_ref = fabs(ref);
                se += dd * dd;
                sr += ref * ref;
                checked++;
            }
        }
    const double rms_err = sqrt(se / (double)(checked ? checked : 1)), rms_ref = sqrt(sr / (double)(checked ? checked : 1));
    CHECK(st || (max_err <= tol_max * max_ref && rms_err <= tol_rms * rms_ref),
          "attention/%s %s heads=%lld L=%lld w=%lld causal=%d: max err %.3g (> %.0e x max|ref| %.3g?), rms err %.3g "
          "(> %.0e x rms(ref) %.3g?)", helix_cuda_attention_name(variant), helix_dtype_name(t), (long long)heads,
          (long long)L, (long long)w, causal, max_err, tol_max, max_ref, rms_err, tol_rms, rms_ref);
    if (out && !st) memcpy(out, h[3], bytes);
    free(p);
    for (int k = 0; k < 4; k++) { helix_cuda_free(d[k]); free(h[k]); }
    for (int k = 0; k < 3; k++) free(f[k]);
}

static void test_attention(helix_cuda_ctx *c, int variant, helix_dtype t, int64_t heads, int64_t L, int64_t w, int causal)
{
    test_attention_rows(c, variant, t, heads, L, w, causal, 1, NULL);
}

/* every variant on the same inputs: each against v0 (naive), element by element */
static void cross_check(helix_cuda_ctx *c, helix_dtype t, int64_t heads, int64_t L, int64_t w, int causal)
{
    const size_t bytes = (size_t)(heads * L * w) * helix_dtype_size(t);
    void *o[HELIX_CUDA_ATTN_VARIANTS];
    for (int v = 0; v < HELIX_CUDA_ATTN_VARIANTS; v++) {
        o[v] = calloc(1, bytes);
        test_attention_rows(c, v, t, heads, L, w, causal, 61, o[v]);
    }
    const double tol = t == HELIX_F16 ? 4e-3 : 3e-2;
    for (int v = 1; v < HELIX_CUDA_ATTN_VARIANTS; v++) {
        int64_t off = 0;
        double amax = 0;
        for (int64_t k = 0; k < heads * L * w; k++) if (fabs(helix_load(t, o[0], k)) > amax) amax = fabs(helix_load(t, o[0], k));
        for (int64_t k = 0; k < heads * L * w; k++)
            if (!(fabs(helix_load(t, o[v], k) - helix_load(t, o[0], k)) <= tol * amax)) off++;
        CHECK(off == 0, "attention/%s vs naive, %s heads=%lld L=%lld w=%lld causal=%d: %lld values differ by more than "
              "%.0e x max|naive|", helix_cuda_attention_name(v), helix_dtype_name(t), (long long)heads, (long long)L,
              (long long)w, causal, (long long)off, tol);
    }
    for (int v = 0; v < HELIX_CUDA_ATTN_VARIANTS; v++) free(o[v]);
}

static void test_gemm(helix_cuda_ctx *c, helix_dtype t, int64_t M, int64_t N, int64_t K)
{
    float *Af = malloc(4 * (size_t)(M * K)), *Bf = malloc(4 * (size_t)(K * N));
    void *A = make(t, M * K, 7, Af), *B = make(t, K * N, 8, Bf), *C = malloc((size_t)(M * N) * helix_dtype_size(t));
    void *dA = NULL, *dB = NULL, *dC = NULL;
    const size_t es = helix_dtype_size(t);
    helix_err err = {{0}};
    helix_status st = helix_cuda_malloc(c, (size_t)(M * K) * es, &dA, &err);
    if (!st) st = helix_cuda_malloc(c, (size_t)(K * N) * es, &dB, &err);
    if (!st) st = helix_cuda_malloc(c, (size_t)(M * N) * es, &dC, &err);
    if (!st) st = helix_cuda_upload(c, dA, A, (size_t)(M * K) * es, &err);
    if (!st) st = helix_cuda_upload(c, dB, B, (size_t)(K * N) * es, &err);
    if (!st) st = helix_cuda_gemm(c, t, M, N, K, dA, dB, dC, &err);
    if (!st) st = helix_cuda_download(c, C, dC, (size_t)(M * N) * es, &err);
    CHECK(st == HELIX_OK, "gemm %s %lldx%lldx%lld: %s", helix_dtype_name(t), (long long)M, (long long)N, (long long)K, err.msg);
    const double tol = t == HELIX_F32 ? 1e-5 : t == HELIX_F16 ? 2e-3 : 1e-2;
    int64_t wrong = 0;
    for (int64_t i = 0; !st && i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double d = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) { d += (double)Af[i * K + k] * Bf[k * N + j]; mag += fabs((double)Af[i * K + k] * Bf[k * N + j]); }
            if (!(fabs(helix_load(t, C, i * N + j) - d) <= tol * mag + 1e-30)) wrong++;
        }
    CHECK(wrong == 0, "gemm %s %lldx%lldx%lld: %lld values off", helix_dtype_name(t), (long long)M, (long long)N,
          (long long)K, (long long)wrong);
    helix_cuda_free(dA); helix_cuda_free(dB); helix_cuda_free(dC);
    free(A); free(B); free(C); free(Af); free(Bf);
}

int main(void)
{
    helix_err err = {{0}};
    int n = 0;
    /* skipped only where there is no GPU at all; a GPU that CUDA cannot use
     * (driver too old for the runtime, no module) is a failure */
    const int gpu_here = access("/dev/nvidia0", F_OK) == 0 || access("/proc/driver/nvidia/gpus", F_OK) == 0;
    if (!helix_cuda_built()) {
        char why[1024];
        helix_cuda_module_status(why, sizeof why);
        printf("%s: no GPU module: %s\n", gpu_here ? "FAIL" : "SKIPPED", why);
        return gpu_here ? 1 : 77;
    }
    if (helix_cuda_device_count(&n, &err)) { printf("%s: %s\n", gpu_here ? "FAIL: a GPU is here, but" : "SKIPPED", err.msg); return gpu_here ? 1 : 77; }
    helix_cuda_device d;
    helix_cuda_ctx *c = NULL;
    CHECK(helix_cuda_device_info(0, &d, &err) == HELIX_OK, "%s", err.msg);
    CHECK(helix_cuda_ctx_new(0, &c, &err) == HELIX_OK, "%s", err.msg);
    if (!c) return test_summary();
    printf("GPU 0: %s, cc %d.%d, %d SMs; peak f16 %.0f TFLOP/s (%s)\n", d.name, d.cc_major, d.cc_minor, d.sms,
           d.peak_f16 / 1e12, d.peak_source);
    CHECK(d.peak_f16 > 0 && d.peak_f32 > 0, "peaks %g %g", d.peak_f16, d.peak_f32);

    const helix_dtype types[2] = {HELIX_BF16, HELIX_F16};
    const int64_t widths[4] = {64, 128, 256, 512}, lens[3] = {1, 45, 130};
    for (int v = 0; v < HELIX_CUDA_ATTN_VARIANTS; v++)
        for (int ti = 0; ti < 2; ti++)
            for (int wi = 0; wi < 4; wi++)
                for (int li = 0; li < 3; li++)
                    for (int causal = 0; causal < 2; causal++)
                        test_attention(c, v, types[ti], 2, lens[li], widths[wi], causal);
    /* a longer causal row of tiles, several heads */
    test_attention(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_BF16, 3, 517, 128, 1);
    test_attention(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_F16, 3, 517, 512, 0);
    /* the sizes the benchmark runs at: L >= 2048, 8 heads (every 31st query row checked) */
    for (int causal = 0; causal < 2; causal++) {
        test_attention_rows(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_BF16, 8, 2048, 128, causal, 31, NULL);
        test_attention_rows(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_F16, 8, 2048, 512, causal, 31, NULL);
    }
    /* the variants against each other on the same inputs */
    cross_check(c, HELIX_BF16, 8, 2048, 128, 0);
    cross_check(c, HELIX_F16, 4, 1031, 64, 1);

    /* refusals */
    void *buf = NULL;
    CHECK(helix_cuda_malloc(c, 4096, &buf, &err) == HELIX_OK, "%s", err.msg);
    CHECK(helix_cuda_attention(c, 1, HELIX_BF16, 1, 4, 96, 0, 1, buf, buf, buf, buf, &err) == HELIX_ERR_INVALID &&
              strstr(err.msg, "96"), "width 96: %s", err.msg);
    CHECK(helix_cuda_attention(c, 1, HELIX_F32, 1, 4, 64, 0, 1, buf, buf, buf, buf, &err) == HELIX_ERR_INVALID,
          "f32: %s", err.msg);
    CHECK(helix_cuda_attention(c, 7, HELIX_BF16, 1, 4, 64, 0, 1, buf, buf, buf, buf, &err) == HELIX_ERR_INVALID,
          "variant 7: %s", err.msg);
    helix_cuda_free(buf);
    void *huge = NULL;
    CHECK(helix_cuda_malloc(c, (size_t)1 << 52, &huge, &err) == HELIX_ERR_NOMEM, "4 PiB: %s", err.msg);

    const helix_dtype gt[3] = {HELIX_F32, HELIX_F16, HELIX_BF16};
    for (int ti = 0; ti < 3; ti++) {
        test_gemm(c, gt[ti], 1, 1, 1);
        test_gemm(c, gt[ti], 33, 47, 65);
        test_gemm(c, gt[ti], 128, 64, 256);
    }
    helix_cuda_ctx_free(c);
    return test_summary();
}
