/* test_cuda.c — the GPU path against float64 on the host: every attention
 * variant of the kernel lab (widths 64-512, f16/bf16, causal or not, L not
 * a multiple of any tile, one query, L = 2048 with 8 heads), scores with
 * std 3 (a kernel that skips the softmax rescale is off by O(1)), errors
 * against max|ref| and an RMS bound, canary bytes past every output, the
 * variants cross-checked against v0, the cuBLAS GEMM (f32/f16/bf16, odd
 * shapes), and refusals of what the kernels do not take; then the CUDA
 * backend: whole layers of every layout kind as virtual devices on GPU 0
 * (helix_model_grid_run_on) against the float64 reference model, with
 * the counted bytes = the plan's, and one attention layer (kv_len,
 * q_pos0 from split queries, both attention variants forced) against the
 * CPU backend. Without CUDA in
 * the build or without a GPU it prints SKIPPED and exits 77, which ctest
 * reports as skipped (never as passed). HELIX_CUDA_TEST_SMALL=1 leaves out
 * the large shapes (for compute-sanitizer). */
#include "check.h"
#include "helix_backend.h"
#include "helix_cuda.h"
#include "helix_model.h"

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
    const double tol_max = t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 2e-2;
    const double tol_rms = t == HELIX_F32 ? 2e-5 : t == HELIX_F16 ? 1e-3 : 6e-3;
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

/* every variant on the same inputs: each against v0 (rows), element by element */
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
        CHECK(off == 0, "attention/%s vs rows, %s heads=%lld L=%lld w=%lld causal=%d: %lld values differ by more than "
              "%.0e x max|rows|", helix_cuda_attention_name(v), helix_dtype_name(t), (long long)heads, (long long)L,
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

/* ------------------------------------------------------------ the backend */

static double max_rel(const float *y, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t k = 0; k < n; k++) {
        const double d = fabs((double)y[k] - ref[k]);
        if (!(d <= num)) num = d;                  /* NaN propagates */
        if (fabs(ref[k]) > den) den = fabs(ref[k]);
    }
    return den > 0 ? num / den : num;
}

static double layer_tol(helix_dtype t) { return t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 3e-2; }

static helix_backend **gpus(int64_t P, helix_err *err)
{
    helix_backend **be = calloc((size_t)P, sizeof *be);
    for (int64_t r = 0; be && r < P; r++)
        if (helix_backend_cuda_new(0, &be[r], err)) {
            for (int64_t q = 0; q < r; q++) helix_backend_free(be[q]);
            free(be);
            return NULL;
        }
    return be;
}

static void gpus_free(helix_backend **be, int64_t P)
{
    for (int64_t r = 0; be && r < P; r++) helix_backend_free(be[r]);
    free(be);
}

/* a whole model in `layout` as P virtual devices on GPU 0 */
static void backend_layers(helix_model_config mc, const char *layout, int64_t P, const char *force)
{
    helix_layout lay;
    helix_model_plan p;
    helix_err e = {{0}};
    char name[128];
    snprintf(name, sizeof name, "cuda backend %s P=%lld %s%s%s%s%s", layout, (long long)P, helix_dtype_name(mc.dtype),
             mc.causal ? " causal" : "", mc.bias ? " bias" : "", force ? " attention " : "", force ? force : "");
    if (helix_layout_parse(layout, &lay, &e) || helix_model_plan_init(&mc, &lay, P, &p, &e)) {
        CHECK(0, "%s: %s", name, e.msg);
        return;
    }
    helix_model_weights w;
    CHECK(helix_model_weights_random(&mc, 7, &w, &e) == HELIX_OK, "%s", e.msg);
    const int64_t n = mc.batch * mc.seq * p.D;
    float *x = malloc(4 * (size_t)n), *y = calloc((size_t)n, 4), *reff = malloc(4 * (size_t)n);
    double *ref = malloc(8 * (size_t)n);
    uint64_t seed = 3;
    for (int64_t k = 0; k < n; k++) x[k] = urand(&seed);
    const int sliced = lay.kind == HELIX_LAYOUT_HELIX && lay.mode == HELIX_MODE_SLICED;
    const int64_t m = sliced ? lay.slices : 1;
    CHECK(helix_model_ref(&mc, mc.heads * m, mc.head_dim / m, &w, x, reff, &e) == HELIX_OK, "%s: ref: %s", name, e.msg);
    for (int64_t k = 0; k < n; k++) ref[k] = reff[k];
    if (force) setenv("HELIX_CUDA_ATTENTION", force, 1);
    helix_backend **be = gpus(P, &e);
    if (force) unsetenv("HELIX_CUDA_ATTENTION");
    CHECK(be != NULL, "%s: %s", name, e.msg);
    helix_model_stats *st = calloc((size_t)P, sizeof *st);
    helix_status rs = be ? helix_model_grid_run_on(&p, &w, x, y, (int)P, be, st, &e) : HELIX_ERR_UNSUPPORTED;
    CHECK(rs == HELIX_OK, "%s: run: %s", name, e.msg);
    if (!rs) {
        const double rel = max_rel(y, ref, n);
        CHECK(rel <= layer_tol(mc.dtype), "%s: max_rel_err %.3g > %.3g", name, rel, layer_tol(mc.dtype));
        int bytes = 1;
        for (int64_t r = 0; r < P; r++) {
            helix_model_device_plan dp;
            helix_model_plan_device(&p, r, &dp);
            for (int ph = 0; ph < HELIX_NPHASES; ph++) bytes &= helix_traffic_eq(&st[r].phase[ph], &dp.phase[ph]);
        }
        CHECK(bytes, "%s: counted bytes differ from the plan", name);
    }
    gpus_free(be, P);
    free(st); free(x); free(y); free(reff); free(ref);
    helix_model_weights_free(&w);
}

/* one attention layer (helix run's path) on GPUs against the CPU backend */
static void backend_attention(int64_t gn, int64_t gm, helix_mode mode, helix_exact_algo algo, helix_dtype t, int causal,
                              int padded, int64_t heads, int64_t hd, const char *force)
{
    helix_config c = helix_config_default();
    c.groups = gn; c.slices = gm; c.mode = mode; c.exact_algo = algo; c.dtype = t; c.causal = causal;
    c.heads = heads; c.head_dim = hd; c.batch = 2; c.seq = 67; c.bias = 1; c.out_proj = 1;
    const int64_t kv[2] = {67, 40};
    if (padded) c.kv_len = kv;
    helix_plan plan;
    helix_err e = {{0}};
    char name[160];
    snprintf(name, sizeof name, "cuda backend attention %lldx%lld %s%s %s h=%lld d=%lld%s%s%s%s", (long long)gn,
             (long long)gm, helix_mode_name(mode), mode == HELIX_MODE_EXACT ? helix_exact_algo_name(algo) : "",
             helix_dtype_name(t), (long long)heads, (long long)hd, causal ? " causal" : "", padded ? " kv_len" : "",
             force ? " attention " : "", force ? force : "");
    if (helix_plan_init(&c, &plan, &e)) { CHECK(0, "%s: plan: %s", name, e.msg); return; }
    const int64_t D = plan.D, nx = c.batch * c.seq * D, es = (int64_t)helix_dtype_size(t);
    float *wt = malloc(4 * (size_t)(4 * D * D + 4 * D)), *x = malloc(4 * (size_t)nx);
    uint64_t seed = 17;
    const float a = sqrtf(3.0f / (float)D) * 3.0f;   /* scores with std ~3 */
    for (int64_t k = 0; k < 4 * D * D; k++) wt[k] = a * urand(&seed);
    for (int64_t k = 0; k < 4 * D; k++) wt[4 * D * D + k] = 0.1f * urand(&seed);
    for (int64_t k = 0; k < nx; k++) x[k] = urand(&seed);
    float *bb = wt + 4 * D * D;
    helix_weights w = {D, wt, wt + D * D, wt + 2 * D * D, wt + 3 * D * D, bb, bb + D, bb + 2 * D, bb + 3 * D, NULL, NULL};
    char *y0 = calloc((size_t)nx, (size_t)es), *y1 = calloc((size_t)nx, (size_t)es);
    helix_status r0 = helix_grid_run(&plan, &w, x, y0, 2, NULL, &e);
    CHECK(r0 == HELIX_OK, "%s: cpu: %s", name, e.msg);
    if (force) setenv("HELIX_CUDA_ATTENTION", force, 1);
    helix_backend **be = gpus(plan.P, &e);
    if (force) unsetenv("HELIX_CUDA_ATTENTION");
    CHECK(be != NULL, "%s: %s", name, e.msg);
    helix_status r1 = be ? helix_grid_run_on(&plan, &w, x, y1, (int)plan.P, be, NULL, &e) : HELIX_ERR_UNSUPPORTED;
    CHECK(r1 == HELIX_OK, "%s: gpu: %s", name, e.msg);
    if (!r0 && !r1) {
        float *f1 = malloc(4 * (size_t)nx), *f0 = malloc(4 * (size_t)nx);
        double *d0 = malloc(8 * (size_t)nx);
        helix_to_f32(t, y0, f0, nx);
        helix_to_f32(t, y1, f1, nx);
        for (int64_t k = 0; k < nx; k++) d0[k] = f0[k];
        const double rel = max_rel(f1, d0, nx), tol = t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 3e-2;
        CHECK(rel <= tol, "%s: GPU vs CPU backend max_rel %.3g > %.3g", name, rel, tol);
        free(f0); free(f1); free(d0);
    }
    gpus_free(be, plan.P);
    free(wt); free(x); free(y0); free(y1);
}

static void test_backend(void)
{
    helix_model_config mc = helix_model_config_default();
    mc.heads = 8; mc.head_dim = 64; mc.ffn = 256; mc.layers = 2; mc.batch = 2; mc.seq = 70;
    const char *p4[] = {"helix2x2-sliced", "helix2x2-exact", "helix2x2-exact-scores", "tp4", "tp2pp2", "tp2pp2-sp",
                        "dp2-tp2"};
    const helix_dtype dts[] = {HELIX_F32, HELIX_BF16, HELIX_F16};
    for (size_t k = 0; k < sizeof p4 / sizeof p4[0]; k++)
        for (int di = 0; di < 3; di++) {
            helix_model_config c = mc;
            c.dtype = dts[di];
            c.causal = (int)((k + (size_t)di) % 2);
            c.bias = di != 1;
            backend_layers(c, p4[k], 4, NULL);
        }
    if (getenv("HELIX_CUDA_TEST_SMALL")) return;   /* compute-sanitizer: the small shapes only */
    /* the paper's 4x4 grid and TP8 x PP2 as 16 virtual devices */
    mc.heads = 16; mc.head_dim = 128; mc.ffn = 512; mc.seq = 64; mc.dtype = HELIX_BF16; mc.causal = 1;
    backend_layers(mc, "helix4x4-exact", 16, NULL);
    backend_layers(mc, "helix4x4-sliced", 16, NULL);
    backend_layers(mc, "tp8pp2", 16, NULL);
    backend_layers(mc, "helix4x4-exact", 16, "rows");
    /* attention: kv_len, split queries (q_pos0: h_g = 3 heads over m = 2), widths 16..512, both variants */
    backend_attention(2, 2, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_BF16, 1, 1, 6, 64, NULL);
    backend_attention(2, 2, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_F16, 0, 1, 6, 64, "rows");
    backend_attention(2, 2, HELIX_MODE_SLICED, HELIX_EXACT_REGATHER, HELIX_F32, 1, 1, 4, 32, NULL);
    backend_attention(1, 4, HELIX_MODE_SLICED, HELIX_EXACT_REGATHER, HELIX_BF16, 0, 0, 4, 64, NULL);
    backend_attention(2, 2, HELIX_MODE_EXACT, HELIX_EXACT_SCORES, HELIX_BF16, 1, 1, 4, 128, NULL);
    backend_attention(1, 1, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_BF16, 1, 1, 2, 512, NULL);
    backend_attention(1, 1, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_F16, 0, 1, 2, 512, "rows");
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
                        if (v != HELIX_CUDA_ATTN_MMA || widths[wi] <= 256)   /* mma: widths 64-256 */
                            test_attention(c, v, types[ti], 2, lens[li], widths[wi], causal);
    /* rows: the widths sliced mode gives a device, and f32 storage */
    const int64_t odd[4] = {16, 24, 48, 96};
    for (int wi = 0; wi < 4; wi++) {
        test_attention(c, HELIX_CUDA_ATTN_ROWS, HELIX_BF16, 2, 45, odd[wi], 1);
        test_attention(c, HELIX_CUDA_ATTN_ROWS, HELIX_F32, 2, 130, odd[wi], wi % 2);
    }
    test_attention(c, HELIX_CUDA_ATTN_ROWS, HELIX_F32, 2, 70, 512, 1);
    /* a longer causal row of tiles, several heads */
    test_attention(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_BF16, 3, 517, 128, 1);
    test_attention(c, HELIX_CUDA_ATTN_MMA, HELIX_F16, 3, 517, 256, 0);
    test_attention(c, HELIX_CUDA_ATTN_WMMA, HELIX_F16, 3, 517, 512, 0);
    /* the sizes the benchmark runs at: L >= 2048, 8 heads (every 31st query row checked) */
    const int small = getenv("HELIX_CUDA_TEST_SMALL") != NULL;
    for (int causal = 0; causal < 2 && !small; causal++) {
        test_attention_rows(c, HELIX_CUDA_ATTN_DEFAULT, HELIX_BF16, 8, 2048, 128, causal, 31, NULL);
        test_attention_rows(c, HELIX_CUDA_ATTN_WMMA, HELIX_F16, 8, 2048, 512, causal, 31, NULL);
    }
    /* the variants against each other on the same inputs */
    if (!small) cross_check(c, HELIX_BF16, 8, 2048, 128, 0);
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
    test_backend();
    return test_summary();
}
