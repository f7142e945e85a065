/* kern-impl.h — private: what each CPU path (isa.c) provides to the two
 * drivers, gemm.c and attention.c. A path is a micro-kernel and two row
 * helpers; the blocking, packing and threading are written once, in the
 * drivers, in portable C.
 *
 * Micro-kernel: one MR x NR tile of C from packed panels,
 *   C[i][j] (+)= sum_k ap[k*MR + i] * bp[k*NR + j],  0 <= k < kc
 * (acc = 0 stores, acc = 1 adds to what C holds; ldc in floats). The
 * drivers pad panels with zeros, so a kernel always computes a full tile;
 * edges go through a scratch tile. */
#ifndef HELIX_KERN_IMPL_H
#define HELIX_KERN_IMPL_H

#include "helix.h"

#define HELIX_MR_MAX 16
static inline int64_t helix_rup(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
#define HELIX_NR_MAX 32
/* the row stride of attention's P (its key tile, HELIX_ATTN_TILE_MIN):
 * the one-vector row micro-kernel has a copy for it (ukr-impl.h) */
#define HELIX_PV_LD 128

typedef void (*helix_ukr_fn)(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int acc);
/* the same with A unpacked, row-major (A(i, k) = a[i*lda + k]) */
typedef void (*helix_ukr_rm_fn)(int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc, int acc);

typedef struct {
    helix_isa isa;
    int mr, nr;
    helix_ukr_fn ukr;
    helix_ukr_rm_fn ukr_rm;
    /* online-softmax step on `rows` rows of n scores, ld apart (in place:
     * P), row r with its reference m[r] (-inf before the first) and sum
     * l[r]: P = e^(s - m'), l' = l alpha + sum P, alpha[r] = e^(m - m').
     * m' is the row's max (portable), or m itself while no score exceeds
     * it by more than HELIX_SOFTMAX_SLACK (softmax-impl.h); m' = -inf:
     * P = 0, alpha = 1 */
    void (*softmax_rows)(float *s, int64_t ld, int64_t rows, int64_t n, float *m, float *l, float *alpha);
    /* 1: softmax_rows takes scores in units of log2 (the callers fold
     * log2(e) into the scale), so e^ above reads 2^ and the exponential
     * needs no multiply; 0 (portable): natural units */
    int base2;
    void (*scale_row)(float *x, int64_t n, float a);
    /* optional: helix_pack_b with trans, for this path's NR */
    void (*pack_bt)(int64_t kc, int64_t n, helix_dtype t, const void *src, int64_t ld, float *dst);
    /* optional: helix_pack_a for this path's MR (the same values) */
    void (*pack_a)(int64_t rows, int64_t kc, helix_dtype t, const void *src, int64_t ld, float scale, float *dst);
    /* optional: a row micro-kernel one vector (NR / 2 columns) wide, MR1
     * rows (<= HELIX_MR_MAX), on panels NR / 2 wide: attention's P V at
     * widths <= NR / 2 */
    int mr1;
    helix_ukr_rm_fn ukr_rm1;
} helix_kern;

extern const helix_kern helix_kern_portable, helix_kern_avx2, helix_kern_avx512;
/* The f32 table of a path (AMX uses the AVX-512 one for f32 and f16). */
const helix_kern *helix_kern_for(helix_isa isa);

/* e^x for x <= 0, the portable path's (attention.c): Cody-Waite
 * reduction and a degree-6 polynomial, rel. error ~2e-7; below -87 (and
 * -inf) exactly 0. The SIMD paths take scores in log2 units (base2) and
 * compute 2^x with a fitted degree 5 of the same accuracy (avx512-impl.h,
 * k_avx2.c; AMX's softmax too). */
#define HELIX_EXP_LO (-87.0f)
#define HELIX_LOG2E 1.44269504088896341f
#define HELIX_LN2_HI 0.693145751953125f
#define HELIX_LN2_LO 1.428606765330187e-06f
float helix_exp_neg(float v);

/* the factor the scores get before this path's softmax_rows: the
 * attention scale, times log2(e) where the path works in log2 units */
static inline float helix_score_scale(const helix_kern *kn, float scale)
{
    return kn->base2 ? scale * HELIX_LOG2E : scale;
}

/* The SIMD softmax rows keep the running max m while no new score exceeds
 * it by more than this (in log2 units: P <= 2^8, sums far from f32's range):
 * the max is reduced and acc rescaled only when it grows by more. */
#define HELIX_SOFTMAX_SLACK 8.0f

/* ---- AMX bf16 (k_amx.c); only called when helix_isa_supported(AMX) ---- */
/* Tiles of 16 rows x 64 bytes; C blocks of 32 x 32 f32 (2 x 2 tiles).
 * A is packed by helix_amx_pack_a, B by helix_amx_pack_rows or _kt; both
 * are strips of 32 rows (A) or columns (B) whose every 32-deep step is two
 * contiguous 1 KiB tiles, so strip p of depth kc starts at p*rup(kc,32)*32. */
void helix_amx_begin(void);   /* load the tile configuration on this thread */
void helix_amx_end(void);     /* release the tiles */
/* C[32][32] (f32, ldc floats) (+)= Astrip[32][kc] * Bpanel[kc][32]
 * (kc a multiple of 32; acc = 0: =) */
void helix_amx_32x32(int64_t kc, const uint16_t *ap, const uint16_t *bp, float *c, int64_t ldc, int acc);
/* Bytes of one packed A or B of kc (rounded to 32) x n (rounded to 32). */
int64_t helix_amx_packed_bytes(int64_t kc, int64_t n);
/* A (rows x kc, element (i, k) = src[i*ld + k], bf16) into strips; zero
 * padding to the rounded sizes. Element (i, k) of the packed A is at
 * helix_amx_a_at(i, k, rup(kc, 32)). */
void helix_amx_pack_a(int64_t rows, int64_t kc, const uint16_t *src, int64_t ld, uint16_t *dst);
static inline int64_t helix_amx_a_at(int64_t i, int64_t k, int64_t kp)
{
    return (i / 32) * kp * 32 + (k / 32) * 1024 + ((i % 32) / 16) * 512 + (i % 16) * 32 + k % 32;
}
/* Packing from bf16 storage into the packed-B layout: for each 32-column
 * panel and 32-deep step, two 16 x 16 pair-interleaved (VNNI) tiles; panel
 * p starts at p * rup(kc, 32) * 32, zero padding to the rounded sizes.
 * _kt: B(k = e, j = key) = K[key][e] (nk keys, width w); _rows: B(k, j) =
 * src[k*ld + j] (kc = nk rows, n = w columns: a weight, or V). */
void helix_amx_pack_kt(int64_t nk, int64_t w, const uint16_t *k, int64_t ld, uint16_t *dst);
void helix_amx_pack_rows(int64_t nk, int64_t w, const uint16_t *v, int64_t ld, uint16_t *dst);
/* The online-softmax step in base 2 over a strip of rows, in three
 * calls; scores s * c (c = scale * log2(e)), m in units of log2:
 * _max: mnew[i] = max(m[i], max_j s[i*ld + j] * c), j < n;
 * _exp: one row's P = 2^(s*c - mnew) as bf16 into row p of a packed A
 *   (element j at p + helix_amx_a_at(0, j, .)), zeros in [n, np); returns
 *   the row's sum (0 and P = 0 where mnew = -inf);
 * _fold: alpha = 2^(m - mnew) (1 where m = mnew), l = l*alpha + sum,
 *   m = mnew, for rows [0, rows). */
void helix_amx_softmax_max(const float *s, int64_t ld, int64_t rows, int64_t n, float c, const float *m, float *mnew);
float helix_amx_softmax_exp(const float *s, int64_t n, float c, float mnew, uint16_t *p, int64_t np);
void helix_amx_softmax_fold(int64_t rows, const float *mnew, const float *sum, float *m, float *l, float *alpha);

/* ---- the drivers' shared pieces (gemm.c) ---- */
/* A (rows x kc, element (i, k) = src[i*ld + k]) into MR-row panels,
 * times scale; rows padded to MR with zeros. */
void helix_pack_a(const helix_kern *kn, int64_t rows, int64_t kc, helix_dtype t, const void *src, int64_t ld,
                  float scale, float *dst);
/* B (kc x n; element (k, j) = src[k*ld + j], or src[j*ld + k] with
 * trans) into NR-column panels of depth kc, padded with zeros. */
void helix_pack_b(const helix_kern *kn, int64_t kc, int64_t n, helix_dtype t, const void *src, int64_t ld, int trans,
                  float *dst);
/* C (+)= A B over whole MR x NR tiles (C's buffer padded to them). */
void helix_tile_product(const helix_kern *kn, int64_t rows, int64_t cols, int64_t kc, const float *ap, const float *bp,
                        float *c, int64_t ldc, int acc);
/* acc (+)= P V over one key tile (attention's second product, flash and
 * exact/scores alike): V (nk rows of w, element (k, e) = v[k*ld + e], type
 * t) packed into vbuf as the product wants it (one vector wide, ukr_rm1,
 * at widths <= NR / 2 where the path has it), P rows ldp apart; the rows
 * past `rows` up to HELIX_MR_MAX of P and acc are padding. */
void helix_pv_tile(const helix_kern *kn, int64_t rows, int64_t w, int64_t nk, helix_dtype t, const void *v, int64_t ld,
                   float *vbuf, const float *p, int64_t ldp, float *acc, int64_t ldacc);

#endif
