/* dtype.c — storage types, names, and f16/bf16 <-> f32 conversion
 * (round to nearest even; NaN stays NaN, overflow goes to Inf). */
#include "helix.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define HELIX_X86 1
#endif

size_t helix_dtype_size(helix_dtype t) { return t == HELIX_F32 ? 4 : 2; }

const char *helix_dtype_name(helix_dtype t)
{
    switch (t) {
    case HELIX_F32: return "f32";
    case HELIX_F16: return "f16";
    case HELIX_BF16: return "bf16";
    }
    return "?";
}

const char *helix_mode_name(helix_mode m) { return m == HELIX_MODE_SLICED ? "sliced" : "exact"; }
const char *helix_exact_algo_name(helix_exact_algo a) { return a == HELIX_EXACT_SCORES ? "scores" : "regather"; }

helix_status helix_dtype_parse(const char *s, helix_dtype *out)
{
    if (!strcmp(s, "f32") || !strcmp(s, "fp32")) *out = HELIX_F32;
    else if (!strcmp(s, "f16") || !strcmp(s, "fp16")) *out = HELIX_F16;
    else if (!strcmp(s, "bf16")) *out = HELIX_BF16;
    else return HELIX_ERR_INVALID;
    return HELIX_OK;
}

helix_status helix_mode_parse(const char *s, helix_mode *out)
{
    if (!strcmp(s, "sliced")) *out = HELIX_MODE_SLICED;
    else if (!strcmp(s, "exact")) *out = HELIX_MODE_EXACT;
    else return HELIX_ERR_INVALID;
    return HELIX_OK;
}

helix_status helix_exact_algo_parse(const char *s, helix_exact_algo *out)
{
    if (!strcmp(s, "regather")) *out = HELIX_EXACT_REGATHER;
    else if (!strcmp(s, "scores")) *out = HELIX_EXACT_SCORES;
    else return HELIX_ERR_INVALID;
    return HELIX_OK;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t helix_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float helix_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t helix_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);           /* NaN  */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);          /* overflow (>= 65520) -> Inf */
    if (a < 0x38800000u) {                                            /* subnormal or zero in f16 */
        if (a < 0x33000000u) return (uint16_t)sign;                   /* < 2^-25: rounds to 0 */
        uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                                     /* 14..24 */
        uint32_t v = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (v & 1u))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((a >> 13) - (112u << 10));                          /* rebias 127 -> 15 */
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) v++;
    return (uint16_t)(sign | v);
}

float helix_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (e == 0) {
        if (mant == 0) return u2f(sign);
        float v = (float)mant * (1.0f / 16777216.0f);                  /* mant * 2^-24 */
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (mant << 13));
    return u2f(sign | ((e + 112u) << 23) | (mant << 13));
}

/* Element loads through memcpy: storage handed in from a file (a
 * safetensors data section may start at any byte) need not be aligned,
 * and compilers turn these into plain loads where that is allowed. */
static inline uint16_t ld16(const void *base, int64_t i)
{
    uint16_t v;
    memcpy(&v, (const char *)base + (size_t)i * 2, 2);
    return v;
}

float helix_round_to(helix_dtype t, float v)
{
    return t == HELIX_F16 ? helix_f16_to_f32(helix_f32_to_f16(v)) : t == HELIX_BF16 ? helix_bf16_to_f32(helix_f32_to_bf16(v)) : v;
}

int64_t helix_first_nonfinite_as(helix_dtype t, const float *v, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        const float r = helix_round_to(t, v[k]);
        if (!(r - r == 0)) return k;
    }
    return -1;
}

float helix_load(helix_dtype t, const void *base, int64_t idx)
{
    switch (t) {
    case HELIX_F32: { float v; memcpy(&v, (const char *)base + (size_t)idx * 4, 4); return v; }
    case HELIX_F16: return helix_f16_to_f32(ld16(base, idx));
    case HELIX_BF16: return helix_bf16_to_f32(ld16(base, idx));
    }
    return 0.0f;
}

#ifdef HELIX_X86
/* F16C converts 8 halves per instruction, exactly (f16 -> f32 is exact;
 * f32 -> f16 rounds to nearest even, like the portable code). Chosen at
 * run time: the portable loops below run anywhere. */
__attribute__((target("f16c,avx"))) static void f16_to_f32_f16c(const void *s, float *d, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const char *)s + i * 2))));
    for (; i < n; i++) d[i] = helix_f16_to_f32(ld16(s, i));
}

__attribute__((target("f16c,avx"))) static void f32_to_f16_f16c(const float *s, uint16_t *d, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(s + i);
        /* keep NaN handling identical to the portable path: let it do NaNs */
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int k = 0; k < 8; k++) d[i + k] = helix_f32_to_f16(s[i + k]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) d[i] = helix_f32_to_f16(s[i]);
}

/* bf16, 8 at a time with AVX2 integer ops: the same bits as the portable
 * code (round to nearest even; NaN -> quiet NaN, its sign and top bits
 * kept). Every layer's 16-bit output, reduction and load goes through
 * these; element by element they took 7 % of a bf16 run. */
__attribute__((target("avx2"))) static void bf16_to_f32_avx2(const void *s, float *d, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)((const char *)s + i * 2));
        _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++) d[i] = helix_bf16_to_f32(ld16(s, i));
}

__attribute__((target("avx2"))) static void f32_to_bf16_avx2(const float *s, uint16_t *d, int64_t n)
{
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(s + i));
        const __m256i hi = _mm256_srli_epi32(u, 16);
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(hi, one))), 16);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);   /* both sides < 2^31: signed compare is fine */
        const __m256i v = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), nan);
        /* 8 x 32 -> 8 x 16 (values <= 0xffff, so the unsigned saturation never bites) */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
        _mm_storeu_si128((__m128i *)(d + i), _mm256_castsi256_si128(p));
    }
    for (; i < n; i++) d[i] = helix_f32_to_bf16(s[i]);
}

/* F16C, and the AVX state saved by the OS: the library's one feature
 * reader (src/kernels/isa.c). */
static int has_f16c(void) { return helix_cpu_features_get()->f16c; }
static int has_avx2(void) { return helix_cpu_features_get()->avx2; }
#endif

void helix_to_f32(helix_dtype t, const void *src, float *dst, int64_t n)
{
    if (t == HELIX_F32) { memmove(dst, src, (size_t)n * 4); return; }
#ifdef HELIX_X86
    if (t == HELIX_F16 && has_f16c()) { f16_to_f32_f16c(src, dst, n); return; }
    if (t == HELIX_BF16 && has_avx2()) { bf16_to_f32_avx2(src, dst, n); return; }
#endif
    if (t == HELIX_BF16) for (int64_t i = 0; i < n; i++) dst[i] = helix_bf16_to_f32(ld16(src, i));
    else for (int64_t i = 0; i < n; i++) dst[i] = helix_f16_to_f32(ld16(src, i));
}

void helix_from_f32(helix_dtype t, const float *src, void *dst, int64_t n)
{
    if (t == HELIX_F32) { memmove(dst, src, (size_t)n * 4); return; }
    uint16_t *d = (uint16_t *)dst;
#ifdef HELIX_X86
    if (t == HELIX_F16 && has_f16c()) { f32_to_f16_f16c(src, d, n); return; }
    if (t == HELIX_BF16 && has_avx2()) { f32_to_bf16_avx2(src, d, n); return; }
#endif
    if (t == HELIX_BF16) for (int64_t i = 0; i < n; i++) d[i] = helix_f32_to_bf16(src[i]);
    else for (int64_t i = 0; i < n; i++) d[i] = helix_f32_to_f16(src[i]);
}
