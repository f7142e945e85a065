/* cmd_bench.c — `helix bench kernels`: time the per-device kernels
 * (attention, projection GEMM) over a sweep, in nccl-tests style: '#'
 * metadata, fixed-width columns with units, a #wrong column (every timed
 * result is checked against a float64 computation on sampled rows), a
 * footer, optional JSON. Peaks are measured in the same run. */
#include "cli.h"
#include "cpu.h"
#include "helix.h"

#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef HELIX_HAVE_CBLAS
#include <cblas.h>
#endif

static const char *bench_help =
    "usage: helix bench kernels [options]\n"
    "\n"
    "Times the per-device kernels and checks every timed result against a\n"
    "float64 computation on sampled rows (#wrong). Attention: 4 heads, widths\n"
    "16 (what sliced mode gives a device at small d), 64, 128 and 512, causal\n"
    "and not, f32/bf16/f16. Projection: M x K x N = 4096 x 8192 x 512 (tokens\n"
    "x D x columns of one device).\n"
    "  --seq L        attention sequence length                 [4096]\n"
    "  --threads T    threads per kernel                        [all cores]\n"
    "  --iters N      timed runs per row (after one warm-up)    [3]\n"
    "  --quick        small shapes (L=512, projection 512x1024x256), for tests\n"
    "  --backend B    cpu, or cuda: the GPU kernel lab (every attention variant,\n"
    "                 bf16/f16) and cuBLAS projections, TFLOP/s and % of the\n"
    "                 GPU's dense peak (HELIX_GPU_PEAK_F16 overrides)  [cpu]\n"
    "                 (cuda: --seq defaults to 8192; --threads is unused)\n"
    "  --json FILE    also write the rows as JSON\n"
    "The CPU kernel path is the best this CPU's feature bits allow;\n"
    "HELIX_CPU_ISA=portable|avx2|avx512|amx forces one (refused if the CPU lacks it).\n";

int bench_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_fill(void *dst, helix_dtype t, int64_t n, uint64_t seed, float *f32copy)
{
    cli_rng r = {seed};
    for (int64_t k = 0; k < n; k++) {
        float v = cli_uniform(&r, 1.0f);
        helix_from_f32(t, &v, (char *)dst + (size_t)k * helix_dtype_size(t), 1);
        if (f32copy) f32copy[k] = helix_load(t, dst, k);
    }
}

typedef struct {
    const char *kernel;
    helix_dtype t;
    int64_t heads, L, width, causal, M, K, N;
    double med_s, spread, gflops, pct, peak;
    double fed, pct_fed;   /* amx rows: the tiles-from-L1 rate around the row (cpu.h), and % of it */
    int64_t wrong;
    const char *path;      /* "avx512", "amx", "openblas" ... */
} row_t;

/* The peak of the unit a row's path uses, measured right before and right
 * after the row and the larger taken: on a shared machine the rate of a
 * unit drifts (up to 2x within minutes on the VMs we use), and a ratio to
 * a peak taken minutes earlier would say more about the neighbours than
 * about the kernel. */
static double row_peak(helix_isa isa, const char *path, int threads)
{
    const char *unit;
    return cpu_path_peak(isa, !strcmp(path, "amx") ? HELIX_BF16 : HELIX_F32, threads, 0.04, &unit);
}

/* amx rows: the rate of the AMX products when their tiles come from L1
 * (0 for other rows), measured the same way */
static double row_fed(const char *path, int threads)
{
    return !strcmp(path, "amx") ? cpu_unit_peak(CPU_UNIT_AMX_BF16_L1, threads, 0.04) : 0;
}

/* before a row runs: its peak and fed rate */
static void row_start(row_t *r, helix_isa isa, int threads)
{
    r->peak = row_peak(isa, r->path, threads);
    r->fed = row_fed(r->path, threads);
}

/* after it ran: both again, the larger of each, and the percentages */
static void row_finish(row_t *r, helix_isa isa, int threads)
{
    const double after = row_peak(isa, r->path, threads), fed_after = row_fed(r->path, threads);
    if (after > r->peak) r->peak = after;
    if (fed_after > r->fed) r->fed = fed_after;
    r->pct = 100 * r->gflops * 1e9 / r->peak;
    r->pct_fed = r->fed > 0 ? 100 * r->gflops * 1e9 / r->fed : 0;
}

/* the %fed column: a number for amx rows, "-" for the rest */
static const char *fed_cell(const row_t *r, char *buf, size_t n)
{
    if (r->fed > 0) snprintf(buf, n, "%.1f", r->pct_fed);
    else snprintf(buf, n, "-");
    return buf;
}

/* The path a row's kernel takes: AMX only for bf16, AVX-512 for the rest. */
static const char *row_path(helix_isa isa, helix_dtype t)
{
    return isa == HELIX_ISA_AMX && t != HELIX_BF16 ? helix_isa_name(HELIX_ISA_AVX512) : helix_isa_name(isa);
}

/* ---------------------------------------------------------- attention */

static int64_t check_attention(const helix_attn_args *a, const float *q, const float *k, const float *v)
{
    const double tol = a->dtype == HELIX_F32 ? 1e-4 : a->dtype == HELIX_F16 ? 5e-3 : 3e-2;
    const int64_t L = a->Lq, w = a->width;
    double *p = malloc(sizeof(double) * (size_t)L);
    int64_t wrong = 0;
    for (int64_t h = 0; h < a->H; h++)
        for (int s = 0; s < 8; s++) {
            int64_t i = (s * (L - 1)) / 7;
            int64_t end = a->causal ? i + 1 : L;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < end; j++) {
                double d = 0;
                for (int64_t e = 0; e < w; e++) d += (double)q[(i * a->H + h) * w + e] * k[(j * a->H + h) * w + e];
                p[j] = d * a->scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int64_t j = 0; j < end; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            for (int64_t e = 0; e < w; e++) {
                double o = 0;
                for (int64_t j = 0; j < end; j++) o += p[j] * v[(j * a->H + h) * w + e];
                o /= sum;
                double got = helix_load(a->dtype, a->o, (i * a->H + h) * w + e);
                if (!(fabs(got - o) <= tol * (1 + fabs(o)))) wrong++;
            }
        }
    free(p);
    return wrong;
}

static void bench_attention(row_t *r, int threads, int iters)
{
    const int64_t n = r->heads * r->L * r->width;
    const size_t es = helix_dtype_size(r->t);
    void *q = malloc((size_t)n * es), *k = malloc((size_t)n * es), *v = malloc((size_t)n * es),
         *o = malloc((size_t)n * es);
    float *qf = malloc(4 * (size_t)n), *kf = malloc(4 * (size_t)n), *vf = malloc(4 * (size_t)n);
    void *ws = aligned_alloc(64, (size_t)(threads * helix_attention_workspace_bytes(r->width)));
    bench_fill(q, r->t, n, 1, qf); bench_fill(k, r->t, n, 2, kf); bench_fill(v, r->t, n, 3, vf);
    helix_attn_args a = {0};
    a.B = 1; a.Lq = a.Lk = r->L; a.H = r->heads; a.width = r->width; a.dtype = r->t;
    a.q = q; a.k = k; a.v = v; a.o = o; a.scale = 1.0f / sqrtf((float)r->width); a.causal = (int)r->causal;
    a.threads = threads;
    helix_attn_args_dense(&a);
    double times[64];
    helix_attention_fwd(&a, ws);                 /* warm-up */
    for (int it = 0; it < iters; it++) {
        double t0 = cli_now();
        helix_attention_fwd(&a, ws);
        times[it] = cli_now() - t0;
    }
    qsort(times, (size_t)iters, sizeof *times, bench_cmp_d);
    r->med_s = times[iters / 2];
    r->spread = 100.0 * (times[iters - 1] - times[0]) / r->med_s;
    double flops = 4.0 * (double)r->L * r->L * r->width * r->heads * (r->causal ? 0.5 : 1.0);
    r->gflops = flops / r->med_s / 1e9;
    r->wrong = check_attention(&a, qf, kf, vf);
    free(q); free(k); free(v); free(o); free(qf); free(kf); free(vf); free(ws);
}

/* --------------------------------------------------------- projection */

typedef struct {
    const row_t *r;
    const void *A, *B;
    const helix_gemm_b *packed;
    void *C, *ws;
    int64_t m0, m1;
    int blas;
} gemm_job;

static void *gemm_run(void *arg)
{
    gemm_job *j = (gemm_job *)arg;
    const row_t *r = j->r;
    const size_t es = helix_dtype_size(r->t);
#ifdef HELIX_HAVE_CBLAS
    if (j->blas) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(j->m1 - j->m0), (int)r->N, (int)r->K, 1.0f,
                    (const float *)j->A + j->m0 * r->K, (int)r->K, (const float *)j->B, (int)r->N, 0.0f,
                    (float *)j->C + j->m0 * r->N, (int)r->N);
        return NULL;
    }
#endif
    helix_gemm_run(j->m1 - j->m0, j->packed, r->t, (const char *)j->A + (size_t)(j->m0 * r->K) * es, r->K, NULL, r->t,
                   (char *)j->C + (size_t)(j->m0 * r->N) * es, r->N, j->ws);
    return NULL;
}

/* blas: time OpenBLAS's cblas_sgemm on the same f32 data instead (one
 * thread per caller, as helix's GEMM runs) */
static void bench_projection(row_t *r, int threads, int iters, int blas)
{
    const size_t es = helix_dtype_size(r->t);
    void *A = malloc((size_t)(r->M * r->K) * es), *B = malloc((size_t)(r->K * r->N) * es),
         *C = malloc((size_t)(r->M * r->N) * es);
    float *Af = malloc(4 * (size_t)(r->M * r->K)), *Bf = malloc(4 * (size_t)(r->K * r->N));
    bench_fill(A, r->t, r->M * r->K, 4, Af);
    bench_fill(B, r->t, r->K * r->N, 5, Bf);
    gemm_job jobs[256];
    if (threads > 256) threads = 256;
    /* the weight is packed once, as a shard is (not timed) */
    helix_gemm_b packed;
    void *pk = aligned_alloc(64, (size_t)helix_gemm_pack_bytes(r->K, r->N, r->t, r->t));
    helix_gemm_pack(r->K, r->N, r->t, r->t, B, r->N, pk, &packed);
    for (int t = 0; t < threads; t++) {
        int64_t b, e;
        helix_split_range(r->M, threads, t, &b, &e);
        jobs[t] = (gemm_job){r, A, B, &packed, C, NULL, b, e, blas};
        int64_t wsb = helix_gemm_run_workspace_bytes(e - b, r->N, r->K, r->t, r->t, r->t);
        jobs[t].ws = aligned_alloc(64, (size_t)wsb);
    }
    double times[64];
    for (int it = -1; it < iters; it++) {
        pthread_t tid[256];
        double t0 = cli_now();
        for (int t = 1; t < threads; t++) pthread_create(&tid[t], NULL, gemm_run, &jobs[t]);
        gemm_run(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        if (it >= 0) times[it] = cli_now() - t0;
    }
    qsort(times, (size_t)iters, sizeof *times, bench_cmp_d);
    r->med_s = times[iters / 2];
    r->spread = 100.0 * (times[iters - 1] - times[0]) / r->med_s;
    r->gflops = 2.0 * (double)r->M * r->N * r->K / r->med_s / 1e9;
    /* 64 sampled outputs against float64 dot products */
    const double tol = r->t == HELIX_F32 ? 1e-5 : r->t == HELIX_F16 ? 2e-3 : 1e-2;
    r->wrong = 0;
    for (int s = 0; s < 64; s++) {
        int64_t i = (s * 7919) % r->M, j = (s * 104729) % r->N;
        double d = 0, mag = 0;
        for (int64_t k = 0; k < r->K; k++) { d += (double)Af[i * r->K + k] * Bf[k * r->N + j]; mag += fabs((double)Af[i * r->K + k] * Bf[k * r->N + j]); }
        double got = helix_load(r->t, C, i * r->N + j);
        if (!(fabs(got - d) <= tol * mag)) r->wrong++;
    }
    for (int t = 0; t < threads; t++) free(jobs[t].ws);
    free(pk); free(A); free(B); free(C); free(Af); free(Bf);
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "layouts")) return cmd_layouts(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "kernels")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(bench_help, stdout);
            fputs("\nhelix bench layouts: whole layers in several layouts (see 'helix bench layouts --help')\n", stdout);
            return EXIT_OK;
        }
        fprintf(stderr, "helix bench: expected 'helix bench kernels' or 'helix bench layouts' (try 'helix bench --help')\n");
        return EXIT_USAGE;
    }
    static const struct option opts[] = {
        {"seq", required_argument, 0, 'L'}, {"threads", required_argument, 0, 't'}, {"iters", required_argument, 0, 'i'},
        {"quick", no_argument, 0, 'q'}, {"json", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {"backend", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    cpu_info ci;
    cpu_detect(&ci);
    int64_t L = 4096, threads = ci.cpus, iters = 3;
    int quick = 0, cuda = 0, set_L = 0;
    const char *json = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'L': bad = cli_int("--seq", optarg, 1, 1 << 20, &L); set_L = 1; break;
        case 'b':
            if (!strcmp(optarg, "cuda")) cuda = 1;
            else if (strcmp(optarg, "cpu")) { fprintf(stderr, "helix bench kernels: --backend: unknown '%s' (cpu, cuda)\n", optarg); bad = 1; }
            break;
        case 't': bad = cli_int("--threads", optarg, 1, 256, &threads); break;
        case 'i': bad = cli_int("--iters", optarg, 1, 63, &iters); break;
        case 'q': quick = 1; break;
        case 'j': json = optarg; break;
        case 'h': fputs(bench_help, stdout); return EXIT_OK;
        default: fprintf(stderr, "helix bench kernels: bad option (try --help)\n"); return EXIT_USAGE;
        }
        if (bad) return EXIT_USAGE;
    }
    if (quick) L = 512;
    if (cuda) return bench_kernels_cuda(set_L || quick ? L : 8192, iters, quick, json);
    const int64_t M = quick ? 512 : 4096, K = quick ? 1024 : 8192, N = quick ? 256 : 512;
    char feat[256];
    const helix_isa isa = helix_isa_current();
    const char *unit32 = "", *unit16 = "";
    const double peak = cpu_path_peak(isa, HELIX_F32, (int)threads, 0.2, &unit32);
    const double peak_amx = isa == HELIX_ISA_AMX ? cpu_path_peak(isa, HELIX_BF16, (int)threads, 0.2, &unit16) : 0;
    printf("# helix %s bench kernels\n# cpu: %s (%d logical CPUs); features: %s\n", HELIX_VERSION, ci.model, ci.cpus,
           cpu_features(&ci, feat, sizeof feat));
    printf("# kernel path: %s (chosen from the CPU's feature bits%s; best here: %s)\n", helix_isa_name(isa),
           getenv("HELIX_CPU_ISA") && *getenv("HELIX_CPU_ISA") ? ", forced by HELIX_CPU_ISA" : "",
           helix_isa_name(helix_isa_best()));
    for (int ti = 0; ti < 3; ti++) {
        const helix_dtype t = ti == 0 ? HELIX_F32 : ti == 1 ? HELIX_BF16 : HELIX_F16;
        printf("#   %-4s attention: %s; projection: %s\n", helix_dtype_name(t), helix_kernel_path(t),
               helix_kernel_path(t));
    }
#ifdef HELIX_HAVE_CBLAS
    printf("# beside it: OpenBLAS cblas_sgemm (%s; core it picked: %s) on the same f32 projection\n",
           openblas_get_config(), openblas_get_corename());
#endif
    printf("# threads per kernel: %lld; timed runs per row: %lld after one warm-up; median and (max-min)/median\n",
           (long long)threads, (long long)iters);
    printf("# peak at the start, %lld threads: %s %.1f GFLOP/s", (long long)threads, unit32, peak / 1e9);
    if (peak_amx > 0) printf("; %s %.1f GFLOP/s (the amx rows' peak)", unit16, peak_amx / 1e9);
    printf("\n# peak: of the unit the row's path uses, measured again just before and just after the row (the larger)\n");
    if (peak_amx > 0)
        printf("# %%fed (amx rows): %% of the rate the AMX products reach when every step loads its tiles from L1, as a GEMM\n"
               "#   feeds them (measured like peak); on shared machines this swings with the neighbours far more than peak\n");
    printf("# projection: the weight is packed once before timing, as a device packs its shards\n");
    printf("# FLOPs: attention 4*L^2*width per head (causal: half of it); projection 2*M*N*K\n");
    printf("# #wrong: values off a float64 computation on sampled rows (attention: 8 queries per head; projection: 64 outputs)\n#\n");
    printf("# %-10s %-5s %-8s %5s %6s %5s %6s | %6s %6s %5s | %10s %8s %9s %9s %6s %6s %6s\n", "kernel", "dtype", "path",
           "heads", "L", "width", "causal", "M", "K", "N", "time_ms", "spread", "GFLOP/s", "peak", "%peak", "#wrong", "%fed");
    printf("# %-10s %-5s %-8s %5s %6s %5s %6s | %6s %6s %5s | %10s %8s %9s %9s %6s %6s %6s\n", "", "", "", "", "", "", "", "", "",
           "", "(median)", "(%)", "", "(GFLOP/s)", "", "", "");
    row_t rows[32];
    int nr = 0;
    const helix_dtype types[3] = {HELIX_F32, HELIX_BF16, HELIX_F16};
    enum { NW = 4 };
    const int64_t widths[NW] = {16, 64, 128, 512};
    for (int wi = 0; wi < NW; wi++)
        for (int ti = 0; ti < 3; ti++)
            for (int causal = 0; causal < 2; causal++) {
                row_t *r = &rows[nr++];
                memset(r, 0, sizeof *r);
                r->kernel = "attention"; r->t = types[ti]; r->heads = 4; r->L = L; r->width = widths[wi]; r->causal = causal;
                fprintf(stderr, "  running attention %s width %lld %s...\n", helix_dtype_name(r->t), (long long)r->width,
                        causal ? "causal" : "");
                r->path = row_path(isa, r->t);
                row_start(r, isa, (int)threads);
                bench_attention(r, (int)threads, (int)iters);
                row_finish(r, isa, (int)threads);
                char fc[16];
                printf("  %-10s %-5s %-8s %5lld %6lld %5lld %6s | %6s %6s %5s | %10.2f %8.1f %9.1f %9.1f %6.1f %6lld %6s\n",
                       r->kernel, helix_dtype_name(r->t), r->path, (long long)r->heads, (long long)r->L,
                       (long long)r->width, causal ? "yes" : "no", "-", "-", "-", 1e3 * r->med_s, r->spread, r->gflops,
                       r->peak / 1e9, r->pct, (long long)r->wrong, fed_cell(r, fc, sizeof fc));
                fflush(stdout);
            }
    for (int ti = 0; ti < 4; ti++) {
        const int blas = ti == 3;
#ifndef HELIX_HAVE_CBLAS
        if (blas) break;
#endif
        row_t *r = &rows[nr++];
        memset(r, 0, sizeof *r);
        r->kernel = "projection"; r->t = blas ? HELIX_F32 : types[ti]; r->M = M; r->K = K; r->N = N;
        r->path = blas ? "openblas" : row_path(isa, r->t);
        fprintf(stderr, "  running projection %s%s...\n", helix_dtype_name(r->t), blas ? " (OpenBLAS)" : "");
        row_start(r, isa, (int)threads);
        bench_projection(r, (int)threads, (int)iters, blas);
        row_finish(r, isa, (int)threads);
        char fc[16];
        printf("  %-10s %-5s %-8s %5s %6s %5s %6s | %6lld %6lld %5lld | %10.2f %8.1f %9.1f %9.1f %6.1f %6lld %6s\n", r->kernel,
               helix_dtype_name(r->t), r->path, "-", "-", "-", "-", (long long)M, (long long)K, (long long)N, 1e3 * r->med_s,
               r->spread, r->gflops, r->peak / 1e9, r->pct, (long long)r->wrong, fed_cell(r, fc, sizeof fc));
    }
    int64_t wrong = 0;
    for (int k = 0; k < nr; k++) wrong += rows[k].wrong;
    printf("#\n# causal / non-causal time:");
    for (int k = 0; k + 1 < 6 * NW; k += 2)
        printf(" %s w%lld %.2f;", helix_dtype_name(rows[k].t), (long long)rows[k].width, rows[k + 1].med_s / rows[k].med_s);
    /* 16-bit against f32, the same shape (non-causal): where 16-bit is
     * widened onto the f32 units it should cost no more than f32 */
    printf("\n# 16-bit / f32 time:");
    for (int k = 0; k < nr; k++) {
        const row_t *r = &rows[k];
        if (r->t == HELIX_F32 || r->causal) continue;
        for (int f = 0; f < nr; f++) {
            const row_t *g = &rows[f];
            if (g->t != HELIX_F32 || strcmp(g->kernel, r->kernel) || g->width != r->width || g->causal ||
                !strcmp(g->path, "openblas"))
                continue;
            if (!strcmp(r->kernel, "attention")) printf(" %s w%lld %.2f;", helix_dtype_name(r->t), (long long)r->width, r->med_s / g->med_s);
            else printf(" projection %s %.2f;", helix_dtype_name(r->t), r->med_s / g->med_s);
            break;
        }
    }
    printf("\n# #wrong total: %lld\n", (long long)wrong);
    printf("# reproduce: helix bench kernels --seq %lld --threads %lld --iters %lld%s\n", (long long)L, (long long)threads,
           (long long)iters, quick ? " --quick" : "");
    if (json) {
        jw j;
        if (jw_open(&j, json)) return EXIT_RUNTIME;
        jw_obj(&j, NULL);
        jw_str(&j, "cpu", ci.model); jw_int(&j, "threads", threads); jw_str(&j, "isa", helix_isa_name(isa));
        jw_num(&j, "peak_flops", peak); jw_str(&j, "peak_unit", unit32);
        if (peak_amx > 0) jw_num(&j, "peak_amx_bf16_flops", peak_amx);
        jw_arr(&j, "rows");
        for (int k = 0; k < nr; k++) {
            row_t *r = &rows[k];
            jw_obj(&j, NULL);
            jw_str(&j, "kernel", r->kernel); jw_str(&j, "dtype", helix_dtype_name(r->t)); jw_str(&j, "path", r->path);
            jw_int(&j, "heads", r->heads); jw_int(&j, "L", r->L); jw_int(&j, "width", r->width);
            jw_bool(&j, "causal", (int)r->causal); jw_int(&j, "M", r->M); jw_int(&j, "K", r->K); jw_int(&j, "N", r->N);
            jw_num(&j, "time_s", r->med_s); jw_num(&j, "spread_pct", r->spread); jw_num(&j, "gflops", r->gflops);
            jw_num(&j, "peak_flops", r->peak); jw_num(&j, "pct_peak", r->pct); jw_int(&j, "wrong", r->wrong);
            if (r->fed > 0) { jw_num(&j, "amx_l1_fed_flops", r->fed); jw_num(&j, "pct_fed", r->pct_fed); }
            jw_end_obj(&j);
        }
        jw_end_arr(&j);
        jw_end_obj(&j);
        if (jw_close(&j, json)) return EXIT_RUNTIME;
    }
    return wrong ? EXIT_CHECK : EXIT_OK;
}
