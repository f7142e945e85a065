/* cmd_calibrate.c — `helix calibrate`: measure this machine's FP32 FMA
 * peak, 16-bit support and memory bandwidth per thread count, print them,
 * and write a hardware description (key = value) the planner can read. */
#include "cli.h"
#include "cpu.h"
#include "helix.h"
#include "helix_comm.h"
#include "helix_model.h"
#include "helix_backend.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include <getopt.h>
#include <string.h>
#include <time.h>

static const char *calibrate_help =
    "usage: helix calibrate [--out FILE] [--seconds S]\n"
    "\n"
    "Measures, for 1..all cores: the f32 FMA peak (AVX-512 or AVX2, whichever\n"
    "the CPU has) and the triad memory bandwidth; the peak of every unit present\n"
    "(AVX2 and AVX-512 f32 FMA, AVX512-BF16 vdpbf16ps, AMX-BF16 tiles, AVX512-FP16\n"
    "vfmadd231ph); then, for one device (thread) while every core computes, the\n"
    "rates helix's own projection GEMM (f32, bf16, f16) and attention kernel\n"
    "reach on the kernel path this CPU takes (medians of 5), and the in-process\n"
    "broadcast latency and bandwidth. --out writes them as the\n"
    "hardware description the planner reads (helix plan --hardware FILE).\n"
    "  --out FILE     hardware description to write        [print only]\n"
    "  --seconds S    time per FMA measurement, 0 < S <= 60 [0.3]\n";

/* helix_gemm with storage type t, one thread, B packed on every call as
 * the executor does today */
/* the median of 5 timed runs (after one warm-up): a sustained rate, as a
 * layer's GEMMs run one after another */
static double median5(double *t)
{
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) { double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x; }
    return t[2];
}

static double gemm_rate(int64_t M, int64_t N, int64_t K, helix_dtype t)
{
    const size_t es = helix_dtype_size(t);
    char *a = calloc((size_t)(M * K), es), *b = calloc((size_t)(K * N), es), *c = calloc((size_t)(M * N), es);
    void *ws = aligned_alloc(64, (size_t)helix_gemm_workspace_bytes(M, N, K, t, t, t));
    if (!a || !b || !c || !ws) { free(a); free(b); free(c); free(ws); return 0; }
    for (int64_t k = 0; k < M * K; k++) { float v = (float)(k % 7) * 0.1f; helix_from_f32(t, &v, a + (size_t)k * es, 1); }
    for (int64_t k = 0; k < K * N; k++) { float v = (float)(k % 5) * 0.1f; helix_from_f32(t, &v, b + (size_t)k * es, 1); }
    helix_gemm(M, N, K, t, a, K, t, b, N, NULL, t, c, N, ws);
    double ts[5];
    for (int it = 0; it < 5; it++) {
        double t0 = cli_now();
        helix_gemm(M, N, K, t, a, K, t, b, N, NULL, t, c, N, ws);
        ts[it] = cli_now() - t0;
    }
    free(a); free(b); free(c); free(ws);
    return 2.0 * (double)(M * N * K) / median5(ts);
}

/* A rate measured on `n` threads at once, each its own (all released
 * together): the mean per-thread rate, what one device reaches while
 * every core computes, as in a layout's forward pass (on SMT siblings or
 * a shared memory path, less than alone). 0 where the threads cannot all
 * start. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
} gate;
typedef enum { RATE_GEMM, RATE_ATTN, RATE_GELU, RATE_SCORES } rate_kind;
typedef struct { rate_kind kind; int64_t M, N, K; helix_dtype t; } rate_what;
typedef struct { gate *g; const rate_what *w; double rate; } rate_job;

static double attn_rate(int64_t width);
static double gelu_rate(void);
static double scores_rate(int64_t width);

static double rate_of(const rate_what *w)
{
    return w->kind == RATE_GEMM ? gemm_rate(w->M, w->N, w->K, w->t) : w->kind == RATE_ATTN ? attn_rate(w->M)
         : w->kind == RATE_SCORES ? scores_rate(w->M) : gelu_rate();
}

static void *rate_thread(void *p)
{
    rate_job *j = (rate_job *)p;
    pthread_mutex_lock(&j->g->mu);
    while (!j->g->go) pthread_cond_wait(&j->g->cv, &j->g->mu);
    pthread_mutex_unlock(&j->g->mu);
    j->rate = j->g->go > 0 ? rate_of(j->w) : 0;
    return NULL;
}

static double loaded_rate(int n, rate_what w)
{
    enum { MAXN = 256 };
    if (n > MAXN) n = MAXN;
    if (n <= 1) return rate_of(&w);
    pthread_t t[MAXN];
    rate_job j[MAXN];
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int started = 0;
    for (; started < n; started++) {
        j[started] = (rate_job){&g, &w, 0};
        if (pthread_create(&t[started], NULL, rate_thread, &j[started])) break;
    }
    pthread_mutex_lock(&g.mu);
    g.go = started == n ? 1 : -1;          /* -1: not all could start; the others return at once */
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    double sum = 0;
    for (int k = 0; k < started; k++) { pthread_join(t[k], NULL); sum += j[k].rate; }
    return started == n ? sum / n : 0;
}

static double attn_rate(int64_t width)
{
    helix_attn_args g;
    memset(&g, 0, sizeof g);
    g.B = 1; g.Lq = g.Lk = 1024; g.H = 4; g.width = width; g.dtype = HELIX_F32; g.scale = 0.125f; g.threads = 1;
    const size_t n = (size_t)(g.Lq * g.H * g.width);
    float *q = calloc(n, 4), *k = calloc(n, 4), *v = calloc(n, 4), *o = calloc(n, 4);
    void *ws = aligned_alloc(64, (size_t)helix_attention_workspace_bytes(g.width));
    if (!q || !k || !v || !o || !ws) { free(q); free(k); free(v); free(o); free(ws); return 0; }
    for (size_t i = 0; i < n; i++) { q[i] = (float)(i % 13) * 0.01f; k[i] = (float)(i % 11) * 0.01f; v[i] = (float)(i % 7) * 0.1f; }
    g.q = q; g.k = k; g.v = v; g.o = o;
    helix_attn_args_dense(&g);
    helix_attention_fwd(&g, ws);
    double ts[5];
    for (int it = 0; it < 5; it++) {
        double t0 = cli_now();
        helix_attention_fwd(&g, ws);
        ts[it] = cli_now() - t0;
    }
    free(q); free(k); free(v); free(o); free(ws);
    return 4.0 * (double)(g.Lq * g.Lk * g.width * g.H) / median5(ts);
}

/* exact by score reduce on one device's slice: partial scores and the
 * softmax times V for every block of queries (the all-reduce between
 * them is the executor's), L = 256, 2 heads; FLOPs counted as attention's
 * (4 L^2 width per head), so the rate compares with attn_rate's */
static double scores_rate(int64_t width)
{
    const int64_t L = 256, H = 2, TQ = HELIX_SCORES_TILE_Q, n = L * H * width;
    helix_backend *be = helix_backend_cpu();
    float *q = calloc((size_t)n, 4), *k = calloc((size_t)n, 4), *v = calloc((size_t)n, 4), *o = calloc((size_t)n, 4);
    float *sc = calloc((size_t)(H * TQ * L), 4);
    void *ws = aligned_alloc(64, (size_t)((be->ops->attention_workspace_bytes(be, width) + 63) / 64 * 64));
    if (!q || !k || !v || !o || !sc || !ws) { free(q); free(k); free(v); free(o); free(sc); free(ws); return 0; }
    for (int64_t i = 0; i < n; i++) { q[i] = (float)(i % 13) * 0.01f; k[i] = (float)(i % 11) * 0.01f; v[i] = (float)(i % 7) * 0.1f; }
    double ts[6];
    for (int it = 0; it < 6; it++) {
        const double t0 = cli_now();
        for (int64_t q0 = 0; q0 < L; q0 += TQ) {
            const helix_scores_args a = {.B = 1, .L = L, .H = H, .width = width, .dtype = HELIX_F32, .q = q, .k = k, .v = v,
                                         .o = o, .b = 0, .q0 = q0, .nq = L - q0 < TQ ? L - q0 : TQ, .lk = L,
                                         .scale = 0.25f, .sc = sc};
            be->ops->partial_scores(be, &a, ws);
            be->ops->softmax_v(be, &a, ws);
        }
        ts[it] = cli_now() - t0;
    }
    free(q); free(k); free(v); free(o); free(sc); free(ws);
    return 4.0 * (double)(L * L * width * H) / median5(ts + 1);   /* the first run warms up */
}

static double gelu_rate(void)
{
    const int64_t n = 1 << 20;
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return 0;
    double ts[5];
    for (int it = 0; it < 5; it++) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)(i % 1000) * 0.004f - 2.0f;
        double t0 = cli_now();
        helix_gelu(v, n);
        ts[it] = cli_now() - t0;
    }
    free(v);
    return (double)n / median5(ts);
}

/* In-process broadcast between two devices: latency (8 bytes) and bandwidth (16 MiB). */
typedef struct {
    helix_inproc_world_t *w;
    int rank;
    double lat, bw;
} link_arg;

static void *link_main(void *p)
{
    link_arg *a = (link_arg *)p;
    helix_comm_t *c = NULL;
    if (helix_inproc_comm(a->w, a->rank, NULL, &c)) return NULL;
    const size_t big = 16u << 20;
    char *buf = malloc(big);
    if (buf) {
        memset(buf, 1, big);
        const int ns = 400, nb = 20;
        helix_comm_bcast(c, buf, 8, 0);
        double t0 = cli_now();
        for (int i = 0; i < ns; i++) helix_comm_bcast(c, buf, 8, i & 1);
        double ts = (cli_now() - t0) / ns;
        t0 = cli_now();
        for (int i = 0; i < nb; i++) helix_comm_bcast(c, buf, big, i & 1);
        double tb = (cli_now() - t0) / nb;
        a->lat = ts;
        a->bw = (double)big / (tb > ts ? tb - ts : tb);
        free(buf);
    }
    helix_comm_free(c);
    helix_inproc_rank_done(a->w);
    return NULL;
}

static void inproc_link(double *lat, double *bw)
{
    helix_inproc_world_t *w = NULL;
    if (helix_inproc_world_new(2, 2, &w)) return;
    link_arg a[2] = {{w, 0, 0, 0}, {w, 1, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, link_main, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    helix_inproc_world_free(w);
    *lat = a[0].lat;
    *bw = a[0].bw;
}

int cmd_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    double secs = 0.3;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 's') {
            if (cli_double("--seconds", optarg, &secs)) return EXIT_USAGE;
            if (!(secs > 0 && secs <= 60)) {
                fprintf(stderr, "helix: --seconds must be > 0 and at most 60, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
        }
        else if (c == 'h') { fputs(calibrate_help, stdout); return EXIT_OK; }
        else if (c == ':') { fprintf(stderr, "helix calibrate: option %s needs a value\n", argv[optind - 1]); return EXIT_USAGE; }
        else { fprintf(stderr, "helix calibrate: unknown option '%s' (try 'helix calibrate --help')\n", argv[optind - 1]); return EXIT_USAGE; }
    }
    cpu_info ci;
    cpu_detect(&ci);
    char feat[256];
    printf("# helix %s calibrate\n# cpu: %s, %d logical CPUs\n# features: %s\n# kernels: %s path\n", HELIX_VERSION, ci.model,
           ci.cpus, cpu_features(&ci, feat, sizeof feat), helix_isa_name(helix_isa_current()));
    printf("#\n# %7s %18s %14s %14s\n", "threads", "fp32_fma", "fp32_GFLOP/s", "triad_GB/s");
    double peak1 = 0, peakn = 0, bw1 = 0, bwn = 0;
    const char *isa = "none";
    for (int t = 1; t <= ci.cpus; t++) {
        double p = cpu_fma_peak(&ci, t, secs, &isa), bw = cpu_triad_bw(t, 64L << 20, 3);
        printf("  %7d %18s %14.1f %14.1f\n", t, isa, p / 1e9, bw / 1e9);
        if (t == 1) { peak1 = p; bw1 = bw; }
        peakn = p; bwn = bw;
    }
    printf("#\n# 16-bit units: avx512_fp16 %s, avx512_bf16 %s, amx_bf16 %s\n", ci.avx512fp16 ? "present" : "absent",
           ci.avx512bf16 ? "present" : "absent", ci.amx_bf16 ? "present" : "absent");
    /* every unit this CPU has, operands in registers (and AMX with its tiles
     * loaded from L1, see cpu.h), 1 and all threads */
    printf("# %-16s %14s %14s\n", "unit", "1 thread", "all threads");
    static const char *unit_names[CPU_UNITS] = {"avx2 f32 FMA", "avx512 f32 FMA", "avx512_bf16 dp", "amx_bf16 tiles",
                                                "amx_bf16 from L1", "avx512_fp16 FMA"};
    double amx1 = 0, u1[CPU_UNITS] = {0};
    for (int u = 0; u < CPU_UNITS; u++) {
        const double p1 = u1[u] = cpu_unit_peak((cpu_unit)u, 1, secs);
        if (p1 <= 0) { printf("  %-16s %14s %14s\n", unit_names[u], "absent", "absent"); continue; }
        const double pn = ci.cpus > 1 ? cpu_unit_peak((cpu_unit)u, ci.cpus, secs) : p1;
        printf("  %-16s %9.1f GF/s %9.1f GF/s\n", unit_names[u], p1 / 1e9, pn / 1e9);
        if (u == CPU_UNIT_AMX_BF16) amx1 = p1;
    }
    const helix_isa kisa = helix_isa_current();
    /* why bf16 is widened without AMX: vdpbf16ps against the f32 FMA, measured */
    if (u1[CPU_UNIT_AVX512_BF16] > 0 && u1[CPU_UNIT_AVX512_FMA] > 0 && kisa == HELIX_ISA_AVX512) {
        const double r = u1[CPU_UNIT_AVX512_BF16] / u1[CPU_UNIT_AVX512_FMA];
        printf("# avx512_bf16 vdpbf16ps reads %.2f x the f32 FMA rate here; bf16 is widened onto the f32 FMA units (%s)\n", r,
               r > 1.0 ? "helix has no vdpbf16ps kernel: on this CPU one could be faster" : "a vdpbf16ps kernel would be slower");
    }
    /* why f16 is widened even with AVX512-FP16: its FMA accumulates in f16 */
    if (u1[CPU_UNIT_AVX512_FP16] > 0 && u1[CPU_UNIT_AVX512_FMA] > 0)
        printf("# avx512_fp16 vfmadd231ph reads %.2f x the f32 FMA rate here, but it accumulates in f16 (11-bit significand, "
               "max 65504): helix accumulates in f32, so f16 is widened onto the f32 FMA units\n",
               u1[CPU_UNIT_AVX512_FP16] / u1[CPU_UNIT_AVX512_FMA]);
    printf("# kernel path %s: f32 %s; bf16 %s; f16 %s\n", helix_isa_name(kisa), helix_kernel_path(HELIX_F32),
           helix_kernel_path(HELIX_BF16), helix_kernel_path(HELIX_F16));
    /* what the kernels reach on one device (one thread) while every core
     * computes (a layout's devices run together), as fractions of the
     * 1-thread peak; alone for comparison */
    const int n = ci.cpus;
    const double gemm_alone = gemm_rate(1024, 512, 1024, HELIX_F32);
    double gemm1 = loaded_rate(n, (rate_what){RATE_GEMM, 1024, 512, 1024, HELIX_F32});
    double gemm2 = loaded_rate(n, (rate_what){RATE_GEMM, 1024, 64, 256, HELIX_F32});
    /* 16-bit: the f32 peak scaled by how much faster the 16-bit GEMM runs at the same shape */
    const double gbf16 = loaded_rate(n, (rate_what){RATE_GEMM, 1024, 512, 1024, HELIX_BF16});
    const double gf16 = loaded_rate(n, (rate_what){RATE_GEMM, 1024, 512, 1024, HELIX_F16});
    double attn1 = loaded_rate(n, (rate_what){RATE_ATTN, 64, 0, 0, HELIX_F32});
    double attn2 = loaded_rate(n, (rate_what){RATE_ATTN, 16, 0, 0, HELIX_F32});
    const double gelu = loaded_rate(n, (rate_what){RATE_GELU, 0, 0, 0, HELIX_F32});
    const double scores16 = loaded_rate(n, (rate_what){RATE_SCORES, 16, 0, 0, HELIX_F32});
    if (!(gemm1 > 0 && gemm2 > 0 && attn1 > 0 && attn2 > 0)) {   /* the threads could not start: alone */
        gemm1 = gemm_rate(1024, 512, 1024, HELIX_F32); gemm2 = gemm_rate(1024, 64, 256, HELIX_F32);
        attn1 = attn_rate(64); attn2 = attn_rate(16);
    }
    /* The 1-thread peak is measured three times (the table at the start,
     * the unit table, again now after the kernels) and the largest is
     * used: on a shared VM one of them can fall into a slow stretch (seen:
     * 94 instead of 174 GFLOP/s), which would put every efficiency above 1. */
    {
        const char *isa_end = isa;
        const double p_unit = u1[ci.avx512f ? CPU_UNIT_AVX512_FMA : CPU_UNIT_AVX2_FMA];
        const double p_end = cpu_fma_peak(&ci, 1, secs, &isa_end), p_max = fmax(peak1, fmax(p_unit, p_end));
        if (p_max > 1.05 * fmin(peak1, fmin(p_unit, p_end)))
            printf("# the 1-thread f32 FMA peak read %.1f, %.1f and %.1f GFLOP/s (start, unit table, after the kernels): "
                   "a slow stretch; the file uses %.1f\n", peak1 / 1e9, p_unit / 1e9, p_end / 1e9, p_max / 1e9);
        peak1 = p_max;
    }
    /* devices computing at once at those rates: every logical CPU */
    const double par = (double)n, par_fma = peak1 > 0 ? peakn / peak1 : 1;
    /* efficiency e*s/(s + half) through the two points (s = 512, 64; width 64, 16) */
    double gh = 512.0 * 64 * (gemm2 - gemm1) / (gemm1 * 64 - gemm2 * 512), ah = 64.0 * 16 * (attn2 - attn1) / (attn1 * 16 - attn2 * 64);
    if (!(gh > 0)) gh = 0;
    if (!(ah > 0)) ah = 0;
    double eg = gemm1 / peak1 * (512 + gh) / 512, ea = attn1 / peak1 * (64 + ah) / 64;
    if (eg > 1 || ea > 1)
        printf("# warning: fitted efficiencies above 1 (GEMM %.2f, attention %.2f): the kernels ran in a faster stretch than "
               "every peak measurement; written as 1, rerun for a better file\n", eg, ea);
    if (eg > 1) eg = 1;
    if (ea > 1) ea = 1;
    double lat = 0, bw = 0;
    inproc_link(&lat, &bw);
    printf("#\n# one device (thread) while all %d compute: GEMM 1024x512x1024 %.1f GFLOP/s (alone %.1f), 1024x64x256 %.1f;\n"
           "#   attention width 64 %.1f GFLOP/s, width 16 %.1f (medians of 5)\n", n, gemm1 / 1e9, gemm_alone / 1e9,
           gemm2 / 1e9, attn1 / 1e9, attn2 / 1e9);
    printf("# one device, GEMM 1024x512x1024 in bf16 %.1f GFLOP/s (%.1f %% of %s), f16 %.1f\n", gbf16 / 1e9,
           amx1 > 0 && kisa == HELIX_ISA_AMX ? 100 * gbf16 / amx1 : 100 * gbf16 / peak1,
           amx1 > 0 && kisa == HELIX_ISA_AMX ? "the AMX peak" : "the f32 peak", gf16 / 1e9);
    printf("# in-process broadcast between 2 devices: latency %.2f us, bandwidth %.2f GB/s\n", lat * 1e6, bw / 1e9);
    printf("# devices computing at once at those rates: %d (the logical CPUs); all together %.1f GFLOP/s of GEMM = %.2f x one "
           "alone (the FMA loop: %.2f x)\n", n, n * gemm1 / 1e9, gemm_alone > 0 ? n * gemm1 / gemm_alone : 0, par_fma);
    int64_t avail = cli_mem_available();
    helix_wfile w;
    helix_err err = {{0}};
    if (out && helix_wfile_open(&w, out, &err)) { fprintf(stderr, "helix: --out: %s\n", err.msg); return EXIT_RUNTIME; }
    FILE *f = out ? w.f : stdout;
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    if (!out) printf("#\n# hardware description (--out FILE writes it):\n");
    fprintf(f, "# helix hardware description: measured by 'helix calibrate' on %s\n", date);
    fprintf(f, "# cpu: %s, %d logical CPUs, %s; kernels: %s path\n", ci.model, ci.cpus, isa, helix_isa_name(helix_isa_current()));
    fprintf(f, "# one device = one in-process grid thread or one MPI rank, all on this host\n");
    fprintf(f, "name = this-machine\n");
    fprintf(f, "devices_per_node = 4096        # every rank on this one host\n");
    fprintf(f, "flops_f32 = %.4g              # one device: f32 FMA loop, 1 thread\n", peak1);
    /* 16-bit on the f32 FMA path is widened while packing: the f32 rate, by
     * construction (a measured ratio would only add noise). On AMX, bf16 is
     * the f32 peak scaled by the bf16/f32 GEMM ratio measured here. */
    const int amx_bf16 = kisa == HELIX_ISA_AMX;
    const double rb16 = amx_bf16 && gemm1 > 0 ? gbf16 / gemm1 : 1;
    fprintf(f, "flops_f16 = %.4g              # the f32 rate: %s\n", peak1, helix_kernel_path(HELIX_F16));
    if (amx_bf16)
        fprintf(f, "flops_bf16 = %.4g             # f32 peak x %.2f, the bf16/f32 GEMM rate ratio here (%s)\n", peak1 * rb16,
                rb16, helix_kernel_path(HELIX_BF16));
    else
        fprintf(f, "flops_bf16 = %.4g             # the f32 rate: %s\n", peak1, helix_kernel_path(HELIX_BF16));
    fprintf(f, "parallel = %.3g                # devices computing at once at the rates below: the logical CPUs\n", par);
    fprintf(f, "eff_gemm = %.3f               # helix_gemm f32, 1 thread of %d all computing: %.3g FLOP/s at 1024x512x1024, %.3g at 1024x64x256\n",
            eg, n, gemm1, gemm2);
    fprintf(f, "gemm_half = %.4g                # ... fitted to e*s/(s + half), s = smallest dimension\n", gh);
    fprintf(f, "eff_attention = %.3f          # helix_attention_fwd f32 L=1024, 1 thread of %d: %.3g FLOP/s width 64, %.3g width 16\n",
            ea, n, attn1, attn2);
    fprintf(f, "attention_half = %.4g           # ... fitted to e*w/(w + half), w = head width\n", ah);
    if (scores16 > 0)
        fprintf(f, "eff_scores = %.4f             # exact by score reduce, f32 width 16 L=256, 1 thread of %d: %.3g FLOP/s (4 L^2 w per head)\n",
                scores16 / peak1 > 1 ? 1 : scores16 / peak1, n, scores16);
    fprintf(f, "mem_bw = %.4g                 # bytes/s, triad, 1 thread\n", bw1);
    fprintf(f, "gelu_rate = %.4g              # helix_gelu elements/s, 1 thread of %d all computing\n", gelu > 0 ? gelu : gelu_rate(), n);
    if (avail > 0) fprintf(f, "node_mem = %.4g               # MemAvailable when measured\n", (double)avail);
    fprintf(f, "intra_bw = %.4g               # in-process broadcast, 16 MiB, 2 devices\n", bw);
    fprintf(f, "intra_lat = %.3g              # in-process broadcast, 8 bytes, 2 devices\n", lat);
    fprintf(f, "inter_bw = %.4g               # one host: no links between nodes (same as inside)\n", bw);
    fprintf(f, "inter_lat = %.3g\n", lat);
    (void)bwn;
    if (out) {
        if (helix_wfile_commit(&w, &err)) { fprintf(stderr, "helix: --out: %s\n", err.msg); return EXIT_RUNTIME; }
        printf("# wrote %s\n", out);
    }
    return EXIT_OK;
}
