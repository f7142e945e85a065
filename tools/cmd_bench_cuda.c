/* cmd_bench_cuda.c — `helix bench kernels --backend cuda`: every attention
 * variant of the GPU kernel lab and the cuBLAS projection GEMMs, timed with
 * CUDA events (median of several after a warm-up), in TFLOP/s and % of the
 * GPU's dense peak, each result checked on sampled rows against a float64
 * computation on the host (#wrong). Without CUDA, or without a GPU, it says
 * which and exits 2. */
#include "cli.h"
#include "helix_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *kernel;
    int variant;
    helix_dtype t;
    int64_t heads, L, width, causal, M, K, N;
    double med_s, spread, tflops, pct;
    int64_t wrong;
    char error[512];
} grow;

/* sampled queries of [heads, L, width] against float64 softmax(q k^T) v */
static int64_t check_attention(const grow *r, const float *q, const float *k, const float *v, const void *o)
{
    const double tol = r->t == HELIX_F16 ? 5e-3 : 3e-2;
    const int64_t L = r->L, w = r->width;
    const double scale = 1.0 / sqrt((double)w);
    double *p = malloc(sizeof(double) * (size_t)L);
    int64_t wrong = 0;
    for (int64_t h = 0; p && h < r->heads; h++)
        for (int s = 0; s < 8; s++) {
            const int64_t i = (s * (L - 1)) / 7, end = r->causal ? i + 1 : L;
            const float *qi = q + (h * L + i) * w;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < end; j++) {
                double d = 0;
                for (int64_t e = 0; e < w; e++) d += (double)qi[e] * k[(h * L + j) * w + e];
                p[j] = d * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int64_t j = 0; j < end; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            for (int64_t e = 0; e < w; e++) {
                double ref = 0;
                for (int64_t j = 0; j < end; j++) ref += p[j] * v[(h * L + j) * w + e];
                ref /= sum;
                double got = helix_load(r->t, o, (h * L + i) * w + e);
                if (!(fabs(got - ref) <= tol * (1 + fabs(ref)))) wrong++;
            }
        }
    free(p);
    return p ? wrong : -1;
}

static int64_t check_gemm(const grow *r, const float *A, const float *B, const void *C)
{
    const double tol = r->t == HELIX_F16 ? 2e-3 : 1e-2;
    int64_t wrong = 0;
    for (int s = 0; s < 64; s++) {
        const int64_t i = (s * 7919) % r->M, j = (s * 104729) % r->N;
        double d = 0, mag = 0;
        for (int64_t k = 0; k < r->K; k++) {
            d += (double)A[i * r->K + k] * B[k * r->N + j];
            mag += fabs((double)A[i * r->K + k] * B[k * r->N + j]);
        }
        if (!(fabs(helix_load(r->t, C, i * r->N + j) - d) <= tol * mag)) wrong++;
    }
    return wrong;
}

/* time `iters` runs of one row (after one warm-up) with CUDA events */
static int time_row(helix_cuda_ctx *c, grow *r, void *const *dev, int64_t iters, helix_err *err)
{
    double t[64];
    for (int64_t it = -1; it < iters; it++) {
        helix_status st = helix_cuda_timer_start(c, err);
        if (!st) {
            if (!strcmp(r->kernel, "attention"))
                st = helix_cuda_attention(c, r->variant, r->t, r->heads, r->L, r->width, (int)r->causal,
                                          1.0f / sqrtf((float)r->width), dev[0], dev[1], dev[2], dev[3], err);
            else
                st = helix_cuda_gemm(c, r->t, r->M, r->N, r->K, dev[0], dev[1], dev[2], err);
        }
        double s = 0;
        if (!st) st = helix_cuda_timer_stop(c, &s, err);
        if (st) return -1;
        if (it >= 0) t[it] = s;
    }
    qsort(t, (size_t)iters, sizeof *t, bench_cmp_d);
    r->med_s = t[iters / 2];
    r->spread = 100.0 * (t[iters - 1] - t[0]) / r->med_s;
    return 0;
}

static void run_attention(helix_cuda_ctx *c, grow *r, int64_t iters)
{
    helix_err err = {{0}};
    const int64_t n = r->heads * r->L * r->width;
    const size_t es = helix_dtype_size(r->t), bytes = (size_t)n * es;
    void *h[4] = {malloc(bytes), malloc(bytes), malloc(bytes), malloc(bytes)};
    float *f[3] = {malloc(4 * (size_t)n), malloc(4 * (size_t)n), malloc(4 * (size_t)n)};
    void *dev[4] = {NULL, NULL, NULL, NULL};
    int ok = h[0] && h[1] && h[2] && h[3] && f[0] && f[1] && f[2];
    if (!ok) snprintf(r->error, sizeof r->error, "out of host memory");
    for (int k = 0; ok && k < 3; k++) bench_fill(h[k], r->t, n, (uint64_t)k + 1, f[k]);
    for (int k = 0; ok && k < 4; k++) ok = !helix_cuda_malloc(c, bytes, &dev[k], &err);
    for (int k = 0; ok && k < 3; k++) ok = !helix_cuda_upload(c, dev[k], h[k], bytes, &err);
    if (ok) ok = !time_row(c, r, dev, iters, &err);
    if (ok) ok = !helix_cuda_download(c, h[3], dev[3], bytes, &err);
    if (ok) {
        const double flops = 4.0 * (double)r->L * r->L * r->width * r->heads * (r->causal ? 0.5 : 1.0);
        r->tflops = flops / r->med_s / 1e12;
        r->wrong = check_attention(r, f[0], f[1], f[2], h[3]);
    } else if (!r->error[0]) {
        snprintf(r->error, sizeof r->error, "%s", err.msg);
    }
    for (int k = 0; k < 4; k++) { helix_cuda_free(dev[k]); free(h[k]); }
    for (int k = 0; k < 3; k++) free(f[k]);
}

static void run_gemm(helix_cuda_ctx *c, grow *r, int64_t iters)
{
    helix_err err = {{0}};
    const size_t es = helix_dtype_size(r->t);
    const size_t ba = (size_t)(r->M * r->K) * es, bb = (size_t)(r->K * r->N) * es, bc = (size_t)(r->M * r->N) * es;
    void *A = malloc(ba), *B = malloc(bb), *C = malloc(bc);
    float *Af = malloc(4 * (size_t)(r->M * r->K)), *Bf = malloc(4 * (size_t)(r->K * r->N));
    void *dev[3] = {NULL, NULL, NULL};
    int ok = A && B && C && Af && Bf;
    if (!ok) snprintf(r->error, sizeof r->error, "out of host memory");
    if (ok) { bench_fill(A, r->t, r->M * r->K, 4, Af); bench_fill(B, r->t, r->K * r->N, 5, Bf); }
    if (ok) ok = !helix_cuda_malloc(c, ba, &dev[0], &err) && !helix_cuda_malloc(c, bb, &dev[1], &err) &&
                 !helix_cuda_malloc(c, bc, &dev[2], &err);
    if (ok) ok = !helix_cuda_upload(c, dev[0], A, ba, &err) && !helix_cuda_upload(c, dev[1], B, bb, &err);
    if (ok) ok = !time_row(c, r, dev, iters, &err);
    if (ok) ok = !helix_cuda_download(c, C, dev[2], bc, &err);
    if (ok) {
        r->tflops = 2.0 * (double)r->M * r->N * r->K / r->med_s / 1e12;
        r->wrong = check_gemm(r, Af, Bf, C);
    } else if (!r->error[0]) {
        snprintf(r->error, sizeof r->error, "%s", err.msg);
    }
    for (int k = 0; k < 3; k++) helix_cuda_free(dev[k]);
    free(A); free(B); free(C); free(Af); free(Bf);
}

static void print_row(const grow *r)
{
    char var[24];
    snprintf(var, sizeof var, "%s%s%s", r->kernel, r->variant >= 0 ? "/" : "",
             r->variant >= 0 ? helix_cuda_attention_name(r->variant) : "");
    if (r->error[0]) { printf("  %-16s %-5s  failed: %s\n", var, helix_dtype_name(r->t), r->error); fflush(stdout); return; }
    if (r->variant >= 0)
        printf("  %-16s %-5s %5lld %6lld %5lld %6s | %6s %6s %5s | %10.3f %8.1f %9.1f %6.1f %6lld\n", var,
               helix_dtype_name(r->t), (long long)r->heads, (long long)r->L, (long long)r->width, r->causal ? "yes" : "no",
               "-", "-", "-", 1e3 * r->med_s, r->spread, r->tflops, r->pct, (long long)r->wrong);
    else
        printf("  %-16s %-5s %5s %6s %5s %6s | %6lld %6lld %5lld | %10.3f %8.1f %9.1f %6.1f %6lld\n", var,
               helix_dtype_name(r->t), "-", "-", "-", "-", (long long)r->M, (long long)r->K, (long long)r->N,
               1e3 * r->med_s, r->spread, r->tflops, r->pct, (long long)r->wrong);
    fflush(stdout);
}

int bench_kernels_cuda(int64_t L, int64_t iters, int quick, const char *json)
{
    helix_err err = {{0}};
    int n = 0;
    if (helix_cuda_device_count(&n, &err)) {
        fprintf(stderr, "helix bench kernels --backend cuda: %s\n", err.msg);
        return EXIT_USAGE;
    }
    helix_cuda_device d;
    helix_cuda_ctx *c = NULL;
    if (helix_cuda_device_info(0, &d, &err) || helix_cuda_ctx_new(0, &c, &err)) {
        fprintf(stderr, "helix: GPU 0: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    printf("# helix %s bench kernels --backend cuda\n", HELIX_VERSION);
    printf("# gpu 0 of %d: %s, compute capability %d.%d, %d SMs, %.0f MHz, %.1f GiB\n", n, d.name, d.cc_major, d.cc_minor,
           d.sms, d.clock_khz / 1e3, d.mem_bytes / 1073741824.0);
    printf("# peak: dense f16/bf16 tensor cores %.1f TFLOP/s (%s)\n", d.peak_f16 / 1e12, d.peak_source);
    printf("# timed runs per row: %lld after one warm-up (CUDA events); median and (max-min)/median\n", (long long)iters);
    printf("# FLOPs: attention 4*L^2*width per head (causal: half of it); projection 2*M*N*K (cuBLASLt, f32 accumulate)\n");
    printf("# #wrong: values off a float64 computation on sampled rows (attention: 8 queries per head; projection: 64 outputs)\n#\n");
    printf("# %-16s %-5s %5s %6s %5s %6s | %6s %6s %5s | %10s %8s %9s %6s %6s\n", "kernel", "dtype", "heads", "L", "width",
           "causal", "M", "K", "N", "time_ms", "spread", "TFLOP/s", "%peak", "#wrong");
    grow rows[64];
    int nr = 0;
    const helix_dtype types[2] = {HELIX_BF16, HELIX_F16};
    const int64_t widths[2] = {128, 512};
    for (int wi = 0; wi < 2; wi++)
        for (int ti = 0; ti < 2; ti++)
            for (int causal = 0; causal < 2; causal++)
                for (int var = HELIX_CUDA_ATTN_VARIANTS - 1; var >= 0; var--) {
                    if (var == HELIX_CUDA_ATTN_MMA && widths[wi] > 256) continue;   /* mma: widths 64-256 */
                    grow *r = &rows[nr++];
                    memset(r, 0, sizeof *r);
                    r->kernel = "attention"; r->variant = var; r->t = types[ti]; r->heads = 4; r->L = L;
                    r->width = widths[wi]; r->causal = causal;
                    fprintf(stderr, "  running attention/%s %s width %lld%s...\n", helix_cuda_attention_name(var),
                            helix_dtype_name(r->t), (long long)r->width, causal ? " causal" : "");
                    run_attention(c, r, iters);
                    r->pct = 100 * r->tflops * 1e12 / d.peak_f16;
                    print_row(r);
                }
    const int64_t shapes[2][3] = {{4096, 8192, 512}, {16384, 8192, 1536}};   /* M, K, N */
    for (int si = 0; si < (quick ? 1 : 2); si++)
        for (int ti = 0; ti < 2; ti++) {
            grow *r = &rows[nr++];
            memset(r, 0, sizeof *r);
            r->kernel = "projection"; r->variant = -1; r->t = types[ti];
            r->M = quick ? 512 : shapes[si][0]; r->K = quick ? 1024 : shapes[si][1]; r->N = quick ? 256 : shapes[si][2];
            fprintf(stderr, "  running projection %s...\n", helix_dtype_name(r->t));
            run_gemm(c, r, iters);
            r->pct = 100 * r->tflops * 1e12 / d.peak_f16;
            print_row(r);
        }
    int64_t wrong = 0, failed = 0;
    for (int k = 0; k < nr; k++) { wrong += rows[k].wrong > 0 ? rows[k].wrong : 0; failed += rows[k].error[0] != 0; }
    printf("#\n# #wrong total: %lld; failed rows: %lld\n", (long long)wrong, (long long)failed);
    printf("# reproduce: helix bench kernels --backend cuda --seq %lld --iters %lld%s\n", (long long)L, (long long)iters,
           quick ? " --quick" : "");
    if (json) {
        jw j;
        if (jw_open(&j, json)) { helix_cuda_ctx_free(c); return EXIT_RUNTIME; }
        jw_obj(&j, NULL);
        jw_str(&j, "gpu", d.name); jw_int(&j, "sms", d.sms); jw_num(&j, "peak_f16_flops", d.peak_f16);
        jw_arr(&j, "rows");
        for (int k = 0; k < nr; k++) {
            const grow *r = &rows[k];
            jw_obj(&j, NULL);
            jw_str(&j, "kernel", r->kernel);
            if (r->variant >= 0) jw_str(&j, "variant", helix_cuda_attention_name(r->variant));
            jw_str(&j, "dtype", helix_dtype_name(r->t));
            jw_int(&j, "heads", r->heads); jw_int(&j, "L", r->L); jw_int(&j, "width", r->width);
            jw_bool(&j, "causal", (int)r->causal); jw_int(&j, "M", r->M); jw_int(&j, "K", r->K); jw_int(&j, "N", r->N);
            if (r->error[0]) jw_str(&j, "error", r->error);
            jw_num(&j, "time_s", r->med_s); jw_num(&j, "tflops", r->tflops); jw_num(&j, "pct_peak", r->pct);
            jw_int(&j, "wrong", r->wrong);
            jw_end_obj(&j);
        }
        jw_end_arr(&j);
        jw_end_obj(&j);
        if (jw_close(&j, json)) failed++;
    }
    helix_cuda_ctx_free(c);
    if (failed) return EXIT_RUNTIME;
    return wrong ? EXIT_CHECK : EXIT_OK;
}
