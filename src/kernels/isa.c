/* isa.c — which CPU kernel path runs. Read from the CPU's feature bits
 * (CPUID) and the register state the OS saves (XGETBV), never from its
 * model number; AMX also needs the kernel's permission to use tile data
 * (arch_prctl), asked once. HELIX_CPU_ISA=portable|avx2|avx512|amx forces
 * a path; one the CPU lacks is an error, not a silent fallback. Needs only
 * libc (the I/O tests and fuzzers link it alone, with dtype.c). */
#include "helix.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *isa_names[HELIX_ISA_COUNT] = {"portable", "avx2", "avx512", "amx"};

const char *helix_isa_name(helix_isa isa)
{
    return (unsigned)isa < HELIX_ISA_COUNT ? isa_names[isa] : "?";
}

static helix_cpu_features feat;
static pthread_once_t feat_once = PTHREAD_ONCE_INIT;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static void detect(void)
{
    unsigned a, b, c, d;
    helix_cpu_features *f = &feat;
    memset(f, 0, sizeof *f);
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int osxsave = (c >> 27) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const int os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xe6) == 0xe6, os_tile = (xcr0 & 0x60000) == 0x60000;
    f->f16c = os_ymm && ((c >> 28) & 1) && ((c >> 29) & 1);   /* F16C is a VEX (AVX) encoding */
    f->fma = os_ymm && ((c >> 12) & 1);
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = os_ymm && ((b >> 5) & 1);
    f->avx512f = os_zmm && ((b >> 16) & 1);
    f->avx512dq = os_zmm && ((b >> 17) & 1);
    f->avx512bw = os_zmm && ((b >> 30) & 1);
    f->avx512vl = os_zmm && ((b >> 31) & 1);
    f->avx512fp16 = os_zmm && ((d >> 23) & 1);
    f->amx_bf16 = os_tile && ((d >> 22) & 1);
    f->amx_tile = os_tile && ((d >> 24) & 1);
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f->avx512bf16 = os_zmm && ((a1 >> 5) & 1);
    f->amx_fp16 = os_tile && ((a1 >> 21) & 1);
    /* Linux hands out the AMX tile state only on request, per process */
    if (f->amx_tile && f->amx_bf16)
        f->amx_granted = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

const helix_cpu_features *helix_cpu_features_get(void)
{
    pthread_once(&feat_once, detect);
    return &feat;
}

const char *helix_isa_missing(helix_isa isa)
{
    const helix_cpu_features *f = helix_cpu_features_get();
    if ((unsigned)isa >= HELIX_ISA_COUNT) return "a known path";
    if (isa == HELIX_ISA_PORTABLE) return NULL;
    if (!f->avx2) return "avx2";
    if (!f->fma) return "fma";
    if (!f->f16c) return "f16c";
    if (isa == HELIX_ISA_AVX2) return NULL;
    if (!f->avx512f) return "avx512f";
    if (!f->avx512bw) return "avx512bw";
    if (!f->avx512vl) return "avx512vl";
    if (!f->avx512dq) return "avx512dq";
    if (isa == HELIX_ISA_AVX512) return NULL;
    if (!f->avx512bf16) return "avx512_bf16";
    if (!f->amx_bf16) return "amx_bf16";
    if (!f->amx_tile) return "amx_tile";
    if (!f->amx_granted) return "the OS's permission for AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM refused)";
    return NULL;
}

int helix_isa_supported(helix_isa isa)
{
    return helix_isa_missing(isa) == NULL;
}

helix_isa helix_isa_best(void)
{
    for (int i = HELIX_ISA_COUNT - 1; i > 0; i--)
        if (helix_isa_supported((helix_isa)i)) return (helix_isa)i;
    return HELIX_ISA_PORTABLE;
}

helix_status helix_isa_parse(const char *s, helix_isa *out)
{
    for (int i = 0; i < HELIX_ISA_COUNT; i++)
        if (!strcmp(s, isa_names[i])) { *out = (helix_isa)i; return HELIX_OK; }
    return HELIX_ERR_INVALID;
}

static helix_isa chosen;
static helix_status chosen_st;
static char chosen_msg[200];
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static int forced = -1;   /* helix_isa_force, for benchmarks and tests */

static void choose(void)
{
    chosen = helix_isa_best();
    chosen_st = HELIX_OK;
    const char *e = getenv("HELIX_CPU_ISA");
    if (!e || !*e) return;
    helix_isa want;
    if (helix_isa_parse(e, &want)) {
        snprintf(chosen_msg, sizeof chosen_msg, "HELIX_CPU_ISA='%.40s' is not a kernel path (portable, avx2, avx512, amx)", e);
        chosen_st = HELIX_ERR_INVALID;
    } else if (!helix_isa_supported(want)) {
        snprintf(chosen_msg, sizeof chosen_msg, "HELIX_CPU_ISA=%s: this CPU (or OS) cannot run that path: it lacks %s; best here: %s",
                 e, helix_isa_missing(want), helix_isa_name(chosen));
        chosen_st = HELIX_ERR_INVALID;
    } else {
        chosen = want;
    }
}

helix_status helix_isa_select(helix_isa *isa, helix_err *err)
{
    pthread_once(&chosen_once, choose);
    if (isa) *isa = forced >= 0 ? (helix_isa)forced : chosen;
    if (chosen_st && err) snprintf(err->msg, sizeof err->msg, "%s", chosen_msg);
    return chosen_st;
}

helix_isa helix_isa_current(void)
{
    helix_isa isa;
    helix_isa_select(&isa, NULL);   /* a bad HELIX_CPU_ISA: the best path (callers check helix_isa_select first) */
    return isa;
}

helix_status helix_isa_force(helix_isa isa)
{
    if ((unsigned)isa >= HELIX_ISA_COUNT || !helix_isa_supported(isa)) return HELIX_ERR_INVALID;
    pthread_once(&chosen_once, choose);
    forced = (int)isa;
    return HELIX_OK;
}

const char *helix_kernel_path(helix_dtype t)
{
    const helix_isa isa = helix_isa_current();
    if (isa == HELIX_ISA_AMX && t == HELIX_BF16) return "amx bf16 tiles, f32 accumulation";
    switch (isa) {
    case HELIX_ISA_AMX:
    case HELIX_ISA_AVX512: return t == HELIX_F32 ? "avx512 f32 FMA" : "avx512 f32 FMA, 16-bit widened while packing";
    case HELIX_ISA_AVX2: return t == HELIX_F32 ? "avx2 f32 FMA" : "avx2 f32 FMA, 16-bit widened while packing";
    default: return t == HELIX_F32 ? "portable C" : "portable C, 16-bit widened while packing";
    }
}
