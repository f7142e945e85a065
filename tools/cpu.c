/* cpu.c — run-time CPU features and measured peaks. The FMA loops are
 * compiled for AVX2/AVX-512 with target attributes and only called when
 * the CPU reports the feature, so one binary runs anywhere. */
#include "cpu.h"
#include "cli.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The feature bits are the library's (CPUID + the OS's saved state,
 * src/kernels/isa.c); /proc/cpuinfo gives the model name only. */
void cpu_detect(cpu_info *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->cpus = n > 0 ? (int)n : 1;
    const helix_cpu_features *hf = helix_cpu_features_get();
    c->avx2 = hf->avx2; c->fma = hf->fma; c->avx512f = hf->avx512f; c->avx512bf16 = hf->avx512bf16;
    c->avx512fp16 = hf->avx512fp16; c->amx_bf16 = hf->amx_bf16; c->amx_tile = hf->amx_tile;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) { snprintf(c->model, sizeof c->model, "%s", p + 2); c->model[strcspn(c->model, "\n")] = 0; }
            break;
        }
    }
    fclose(f);
}

const char *cpu_features(const cpu_info *c, char *buf, int n)
{
    snprintf(buf, (size_t)n, "%s%s%s%s%s%s", c->avx2 ? "avx2 " : "", c->fma ? "fma " : "", c->avx512f ? "avx512f " : "",
             c->avx512bf16 ? "avx512_bf16 " : "", c->avx512fp16 ? "avx512_fp16 " : "", c->amx_bf16 ? "amx_bf16" : "");
    return buf;
}

/* 12 independent accumulators hide the FMA latency on both ISAs. */
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters)
{
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) a[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm256_fmadd_ps(a[k], x, y);
    float out[8], s = 0;
    for (int k = 0; k < 12; k++) { _mm256_storeu_ps(out, a[k]); s += out[0]; }
    return s;
}

__attribute__((target("avx512f"))) static double fma_avx512(long iters)
{
    __m512 a[12], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], x, y);
    float s = 0;
    for (int k = 0; k < 12; k++) s += _mm512_reduce_add_ps(a[k]);
    return s;
}

/* AVX512-BF16: vdpbf16ps, 16 lanes x 2 products x 2 FLOPs per instruction. */
__attribute__((target("avx512f,avx512bf16"))) static double dpbf16_loop(long iters)
{
    __m512 a[12];
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm512_dpbf16_ps(a[k], x, y);
    float s = 0;
    for (int k = 0; k < 12; k++) s += _mm512_reduce_add_ps(a[k]);
    return s;
}

/* AVX512-FP16: vfmadd231ph, 32 f16 lanes, twelve independent chains;
 * a = a/2 + 1 stays near 2 (no overflow, no subnormals). */
__attribute__((target("avx512f,avx512fp16"))) static double fp16_loop(long iters)
{
    __m512h a[12];
    const __m512h x = _mm512_set1_ph((_Float16)0.5f), y = _mm512_set1_ph((_Float16)1.0f);
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ph((_Float16)(float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ph(a[k], x, y);
    float s = 0;
    for (int k = 0; k < 12; k++) s += (float)_mm512_reduce_add_ph(a[k]);
    return s;
}

/* AMX-BF16: tdpbf16ps on tiles that stay in registers, 16 x 16 x 32 x 2
 * FLOPs each; four accumulators so consecutive products are independent.
 * The operands are ordinary numbers (values in [1, 2)): on zeros the unit
 * ran ~10 % faster here, a rate no real product sees. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;
/* all eight tiles 16 rows x 64 bytes (the peak loop uses six) */
static const amx_cfg amx_peak_cfg = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64, 0}, {16, 16, 16, 16, 16, 16, 16, 16, 0}};

__attribute__((target("amx-tile,amx-bf16"))) static double amx_loop(long iters)
{
    uint16_t ops[16 * 32];
    for (int i = 0; i < 16 * 32; i++) ops[i] = (uint16_t)(0x3f80 + (i * 37) % 128);   /* bf16 1 + i/128 */
    _tile_loadconfig(&amx_peak_cfg);
    for (int t = 0; t < 6; t++) {
        switch (t) {   /* tile numbers are immediates */
        case 0: _tile_zero(0); break;
        case 1: _tile_zero(1); break;
        case 2: _tile_zero(2); break;
        case 3: _tile_zero(3); break;
        case 4: _tile_loadd(4, ops, 64); break;
        default: _tile_loadd(5, ops, 64); break;
        }
    }
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 5);
        _tile_dpbf16ps(2, 4, 5);
        _tile_dpbf16ps(3, 4, 5);
    }
    float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}

/* AMX-BF16 fed from L1: the same four products per step, but as a GEMM
 * block runs them (helix_amx_32x32's order): every step loads its two A
 * and two B tiles, cycling through 16 KiB that stay in L1. The gap to
 * amx_loop is what feeding the tiles costs on this machine; on shared VMs
 * it swings widely (measured 20-100 % of amx_loop within minutes), with
 * the neighbours, while amx_loop barely moves. */
__attribute__((target("amx-tile,amx-bf16"))) static double amx_l1_loop(long iters)
{
    _Alignas(64) uint16_t ops[4][4][16 * 32];   /* per thread: each core's own L1 */
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < 16 * 32; i++) ops[s][t][i] = (uint16_t)(0x3f80 + (i * 37 + s * 11 + t * 5) % 128);
    _tile_loadconfig(&amx_peak_cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long i = 0; i < iters; i++) {
        const uint16_t(*o)[16 * 32] = ops[i & 3];
        _tile_loadd(4, o[0], 64);
        _tile_loadd(6, o[2], 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, o[3], 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, o[1], 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}

typedef struct {
    int wide;      /* 0 avx2 FMA, 1 avx512 FMA, 2 vdpbf16ps, 3 AMX, 4 AMX fed from L1, 5 vfmadd231ph */
    long iters;
} fma_job;

/* results go somewhere the compiler must keep, or it drops the loops */
static volatile double fma_sink;

static void *fma_run(void *arg)
{
    fma_job *j = (fma_job *)arg;
    switch (j->wide) {
    case 5: fma_sink = fp16_loop(j->iters); break;
    case 4: fma_sink = amx_l1_loop(j->iters); break;
    case 3: fma_sink = amx_loop(j->iters); break;
    case 2: fma_sink = dpbf16_loop(j->iters); break;
    case 1: fma_sink = fma_avx512(j->iters); break;
    default: fma_sink = fma_avx2(j->iters); break;
    }
    return NULL;
}

static double unit_peak(int wide, int threads, double seconds)
{
    const int amx = wide == 3 || wide == 4;
    const double flops_per_iter = amx ? 4.0 * 16 * 16 * 32 * 2 : wide == 5 ? 12.0 * 32 * 2 : wide == 2 ? 12.0 * 16 * 4
                                                                                                        : 12.0 * (wide ? 16 : 8) * 2;
    /* size the loop from a short trial */
    long iters = amx ? 1 << 14 : 1 << 20;
    double t0 = cli_now();
    fma_job trial = {wide, iters};
    fma_run(&trial);
    double dt = cli_now() - t0;
    iters = (long)((double)iters * seconds / (dt > 1e-6 ? dt : 1e-6));
    if (iters < 1) iters = 1;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[256];
        fma_job jobs[256];
        if (threads > 256) threads = 256;
        t0 = cli_now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (fma_job){wide, iters};
            if (t) pthread_create(&tid[t], NULL, fma_run, &jobs[t]);
        }
        fma_run(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        dt = cli_now() - t0;
        double r = flops_per_iter * (double)iters * threads / dt;
        if (r > best) best = r;
    }
    return best;
}

double cpu_fma_peak(const cpu_info *c, int threads, double seconds, const char **isa)
{
    int wide = c->avx512f;
    if (!wide && !(c->avx2 && c->fma)) { *isa = "none"; return 0; }
    *isa = wide ? "avx512f" : "avx2+fma";
    return unit_peak(wide, threads, seconds);
}

double cpu_unit_peak(cpu_unit u, int threads, double seconds)
{
    const helix_cpu_features *f = helix_cpu_features_get();
    switch (u) {
    case CPU_UNIT_AVX2_FMA: return f->avx2 && f->fma ? unit_peak(0, threads, seconds) : 0;
    case CPU_UNIT_AVX512_FMA: return f->avx512f ? unit_peak(1, threads, seconds) : 0;
    case CPU_UNIT_AVX512_BF16: return f->avx512f && f->avx512bf16 ? unit_peak(2, threads, seconds) : 0;
    case CPU_UNIT_AMX_BF16: return helix_isa_supported(HELIX_ISA_AMX) ? unit_peak(3, threads, seconds) : 0;
    case CPU_UNIT_AMX_BF16_L1: return helix_isa_supported(HELIX_ISA_AMX) ? unit_peak(4, threads, seconds) : 0;
    case CPU_UNIT_AVX512_FP16: return f->avx512f && f->avx512fp16 ? unit_peak(5, threads, seconds) : 0;
    }
    return 0;
}

double cpu_path_peak(helix_isa isa, helix_dtype t, int threads, double seconds, const char **unit)
{
    if (isa == HELIX_ISA_AMX && t == HELIX_BF16) { *unit = "AMX-BF16 tiles"; return cpu_unit_peak(CPU_UNIT_AMX_BF16, threads, seconds); }
    if (isa >= HELIX_ISA_AVX512) { *unit = "AVX-512 f32 FMA"; return cpu_unit_peak(CPU_UNIT_AVX512_FMA, threads, seconds); }
    if (isa == HELIX_ISA_AVX2) { *unit = "AVX2 f32 FMA"; return cpu_unit_peak(CPU_UNIT_AVX2_FMA, threads, seconds); }
    /* portable C has no FMA of its own: measured against the CPU's widest */
    const helix_cpu_features *f = helix_cpu_features_get();
    *unit = f->avx512f ? "AVX-512 f32 FMA (the CPU's; portable C does not reach it)" : "AVX2 f32 FMA (the CPU's; portable C does not reach it)";
    return cpu_unit_peak(f->avx512f ? CPU_UNIT_AVX512_FMA : CPU_UNIT_AVX2_FMA, threads, seconds);
}

typedef struct {
    float *a, *b, *c;
    long n;
    int reps;
} triad_job;

static void *triad_run(void *arg)
{
    triad_job *j = (triad_job *)arg;
    for (int r = 0; r < j->reps; r++)
        for (long i = 0; i < j->n; i++) j->a[i] = j->b[i] + 1.0001f * j->c[i];
    return NULL;
}

double cpu_triad_bw(int threads, long bytes, int reps)
{
    long n = bytes / 4;
    float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4), *c = malloc((size_t)n * 4);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    for (long i = 0; i < n; i++) { a[i] = 0; b[i] = 1; c[i] = 2; }
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t tid[256];
        triad_job jobs[256];
        if (threads > 256) threads = 256;
        long per = n / threads;
        double t0 = cli_now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (triad_job){a + t * per, b + t * per, c + t * per, per, reps};
            if (t) pthread_create(&tid[t], NULL, triad_run, &jobs[t]);
        }
        triad_run(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        double dt = cli_now() - t0, r = 3.0 * 4 * (double)per * threads * reps / dt;
        if (r > best) best = r;
    }
    free(a); free(b); free(c);
    return best;
}
