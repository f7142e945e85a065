/* k_amx.c — the AMX-BF16 pieces (built with -mamx-tile -mamx-bf16
 * -mavx512f -mavx512bw, called only when the CPU has AMX and Linux
 * granted the tile state, see isa.c): one tile configuration, a 32 x 32
 * f32 block product over 16 x 32 bf16 A tiles and pair-interleaved B
 * tiles, and the B packing. f32 statistics and softmax stay on AVX-512. */
#include "avx512-impl.h"

#include <math.h>
#include <string.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* Every tile 16 rows x 64 bytes: 0..3 the C block, 4..5 A, 6..7 B. The
 * config is static: gcc 12 believes _tile_loadconfig reads 8 bytes and
 * may drop stores to a stack copy (see NOTES.md). */
static const tilecfg cfg = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0}, {16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0}};

void helix_amx_begin(void) { _tile_loadconfig(&cfg); }
void helix_amx_end(void) { _tile_release(); }

void helix_amx_32x32(int64_t kc, const uint16_t *ap, const uint16_t *bp, float *c, int64_t ldc, int acc)
{
    const size_t sc = (size_t)ldc * 4;
    if (acc) {
        _tile_loadd(0, c, sc);
        _tile_loadd(1, c + 16, sc);
        _tile_loadd(2, c + 16 * ldc, sc);
        _tile_loadd(3, c + 16 * ldc + 16, sc);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t k = 0; k < kc; k += 32, ap += 1024, bp += 1024) {
        _tile_loadd(4, ap, 64);
        _tile_loadd(6, bp, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, bp + 512, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, ap + 512, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, sc);
    _tile_stored(1, c + 16, sc);
    _tile_stored(2, c + 16 * ldc, sc);
    _tile_stored(3, c + 16 * ldc + 16, sc);
}

/* A rows into strips of 32 rows: per 32-deep step two 16 x 32 tiles of
 * 1 KiB, each contiguous (row stride 64 bytes). Rows read in place would
 * be ld apart, and at power-of-two strides they crowd a few L1 sets
 * (measured: a 2048 x 8192 x 512 GEMM ran at 30 % of the AMX peak so). */
void helix_amx_pack_a(int64_t rows, int64_t kc, const uint16_t *src, int64_t ld, uint16_t *dst)
{
    const int64_t kp = helix_rup(kc, 32), rp = helix_rup(rows, 32);
    for (int64_t i = 0; i < rp; i++) {
        uint16_t *row = dst + (i / 32) * kp * 32 + ((i % 32) / 16) * 512 + (i % 16) * 32;
        for (int64_t k0 = 0; k0 < kp; k0 += 32) {
            const int64_t n = i < rows ? (kc - k0 >= 32 ? 32 : kc - k0) : 0;
            const __mmask32 m = n >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << n) - 1);
            _mm512_storeu_si512(row + k0 * 32, n ? _mm512_maskz_loadu_epi16(m, src + i * ld + k0) : _mm512_setzero_si512());
        }
    }
}

int64_t helix_amx_packed_bytes(int64_t kc, int64_t n) { return 2 * helix_rup(kc, 32) * helix_rup(n, 32); }

/* ---- packing from bf16 storage (no widening) ---- */

static inline void ld_pair(const uint16_t *row, int64_t valid, uint16_t out[2])
{
    out[0] = valid > 0 ? row[0] : 0;
    out[1] = valid > 1 ? row[1] : 0;
}

/* B(k = e, j = key) = K[key][e]: key rows hold e pairs contiguously, so
 * each 16 x 16 block of a tile is a transpose of 32-bit pairs, done in
 * registers for whole blocks and pair by pair at the edges. */
void helix_amx_pack_kt(int64_t nk, int64_t w, const uint16_t *k, int64_t ld, uint16_t *dst)
{
    const int64_t kp = helix_rup(w, 32), np = helix_rup(nk, 32);
    for (int64_t p = 0; p < np / 32; p++)
        for (int h = 0; h < 2; h++) {
            const int64_t key0 = 32 * p + 16 * h;
            for (int64_t s = 0; s < kp / 32; s++) {
                uint16_t *tile = dst + p * kp * 32 + s * 1024 + h * 512;
                if (key0 + 16 <= nk && 32 * s + 32 <= w) {
                    __m512 r[16];
                    for (int c = 0; c < 16; c++) r[c] = _mm512_castsi512_ps(_mm512_loadu_si512(k + (key0 + c) * ld + 32 * s));
                    helix_transpose16(r);
                    for (int rr = 0; rr < 16; rr++) _mm512_storeu_si512(tile + rr * 32, _mm512_castps_si512(r[rr]));
                    continue;
                }
                for (int c = 0; c < 16; c++)
                    for (int rr = 0; rr < 16; rr++)
                        for (int e = 0; e < 2; e++) {
                            const int64_t key = key0 + c, el = 32 * s + 2 * rr + e;
                            tile[rr * 32 + c * 2 + e] = key < nk && el < w ? k[key * ld + el] : 0;
                        }
            }
        }
}

/* B(k, j) = src[k*ld + j] (bf16: a weight, or V with k = key, j = e):
 * each tile row interleaves two source rows. */
void helix_amx_pack_rows(int64_t nk, int64_t w, const uint16_t *v, int64_t ld, uint16_t *dst)
{
    const int64_t kp = helix_rup(nk, 32), np = helix_rup(w, 32);
    __m512i idx;
    {
        uint16_t ix[32];
        for (int c = 0; c < 16; c++) { ix[2 * c] = (uint16_t)c; ix[2 * c + 1] = (uint16_t)(16 + c); }
        idx = _mm512_loadu_si512(ix);
    }
    const __m256i z = _mm256_setzero_si256();
    for (int64_t p = 0; p < np / 32; p++)
        for (int64_t s = 0; s < kp / 32; s++)
            for (int h = 0; h < 2; h++) {
                uint16_t *tile = dst + p * kp * 32 + s * 1024 + h * 512;
                const int64_t e0 = 32 * p + 16 * h, ne = w - e0 >= 16 ? 16 : (w - e0 > 0 ? w - e0 : 0);
                const __mmask16 m = (__mmask16)((1u << ne) - 1);
                for (int r = 0; r < 16; r++) {
                    const int64_t k0 = 32 * s + 2 * r;
                    const __m256i a = k0 < nk && ne ? _mm256_maskz_loadu_epi16(m, v + k0 * ld + e0) : z;
                    const __m256i b = k0 + 1 < nk && ne ? _mm256_maskz_loadu_epi16(m, v + (k0 + 1) * ld + e0) : z;
                    const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
                    _mm512_storeu_si512(tile + r * 32, _mm512_permutexvar_epi16(idx, x));
                }
            }
}

/* The online-softmax step for the AMX path, in base 2 over a strip of
 * rows (kern-impl.h): the maxima of all rows first, then the exponentials
 * row by row; c = scale * log2(e), so each score costs one FMA before the
 * exponential. */
void helix_amx_softmax_max(const float *s, int64_t ld, int64_t rows, int64_t n, float c, const float *m, float *mnew)
{
    const __m512 c16 = _mm512_set1_ps(c);
    for (int64_t i = 0; i < rows; i++, s += ld) {
        __m512 mv = _mm512_set1_ps(-INFINITY);
        if (c > 0.0f) {             /* max(s) * c = max(s * c): no product per score */
            int64_t j = 0;
            for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(s + j));
            if (j < n) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, helix_mask16(n - j), s + j));
            mv = _mm512_mul_ps(mv, c16);
        } else {
            for (int64_t j = 0; j < n; j += 16)
                mv = _mm512_mask_max_ps(mv, helix_mask16(n - j), mv, _mm512_mul_ps(_mm512_maskz_loadu_ps(helix_mask16(n - j), s + j), c16));
        }
        const float t = _mm512_reduce_max_ps(mv);
        mnew[i] = t > m[i] ? t : m[i];
    }
}

float helix_amx_softmax_exp(const float *s, int64_t n, float c, float mnew, uint16_t *p, int64_t np)
{
    int64_t j = 0;
    if (mnew == -INFINITY) {
        for (; j < np; j += 32) memset(p + (j / 32) * 1024, 0, 64);
        return 0.0f;
    }
    const __m512 c16 = _mm512_set1_ps(c), m16 = _mm512_set1_ps(mnew);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (; j + 32 <= n; j += 32) {
        const __m512 e0 = helix_exp2_16(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), c16, m16));
        const __m512 e1 = helix_exp2_16(_mm512_fmsub_ps(_mm512_loadu_ps(s + j + 16), c16, m16));
        _mm512_storeu_si512(p + (j / 32) * 1024, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; j < n; j += 16) {
        const __mmask16 t = helix_mask16(n - j);
        const __m512 e = _mm512_maskz_mov_ps(t, helix_exp2_16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(t, s + j), c16, m16)));
        _mm256_storeu_si256((__m256i *)(p + (j / 32) * 1024 + j % 32), (__m256i)_mm512_cvtneps_pbh(e));
        s0 = _mm512_add_ps(s0, e);
    }
    for (; j < np; j += 16) memset(p + (j / 32) * 1024 + j % 32, 0, 32);   /* j: n rounded up to 16 */
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void helix_amx_softmax_fold(int64_t rows, const float *mnew, const float *sum, float *m, float *l, float *alpha)
{
    for (int64_t i = 0; i < rows; i += 16) {
        const __mmask16 t = helix_mask16(rows - i);
        const __m512 mo = _mm512_maskz_loadu_ps(t, m + i), mn = _mm512_maskz_loadu_ps(t, mnew + i);
        /* alpha = 2^(m - mnew); 1 where the row saw no key yet (m = mnew = -inf), 0 where m was -inf */
        const __mmask16 same = _mm512_cmp_ps_mask(mo, mn, _CMP_EQ_OQ);
        const __m512 al = _mm512_mask_mov_ps(helix_exp2_16(_mm512_sub_ps(mo, mn)), same, _mm512_set1_ps(1.0f));
        _mm512_mask_storeu_ps(alpha + i, t, al);
        _mm512_mask_storeu_ps(l + i, t, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, l + i), al, _mm512_maskz_loadu_ps(t, sum + i)));
        _mm512_mask_storeu_ps(m + i, t, mn);
    }
}
