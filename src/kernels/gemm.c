/* gemm.c — C = A B (+ bias) for any mix of storage types, f32
 * accumulation, on the path isa.c chose. Written once for every path:
 *
 *   B is packed once, in KC-deep slices of NR-column panels, slice after
 *   slice (helix_gemm_pack: weights are packed when the shard is made;
 *   plain helix_gemm packs into its workspace). For each block of MC rows and
 *   each KC-deep slice, A is copied into f32 rows KC apart (16-bit widened
 *   on the way), then every (panel, strip) pair is one micro-kernel call: the
 *   A block stays in L2, a B panel of KC x NR in L1 across the strips.
 *   C accumulates in f32: in C itself when it is f32, else in an f32 block
 *   of the workspace converted once at the end.
 *
 * On the AMX path with bf16 A and B, the same loops run on bf16 panels
 * (B pair-interleaved for the tiles) and 32 x 32 tile blocks. */
#include "kern-impl.h"
#include "../core/util-impl.h"

#include <string.h>

#define MC 192        /* a multiple of every MR (4, 6, 12) and of 32 */
#define KC 256        /* depth of one A block */
#define KC_AMX 256    /* AMX depth; a multiple of 32 (measured: 256 beats 512 and 1024) */

static int use_amx(helix_isa isa, helix_dtype ta, helix_dtype tb)
{
    return isa == HELIX_ISA_AMX && ta == HELIX_BF16 && tb == HELIX_BF16;
}

const helix_kern *helix_kern_for(helix_isa isa)
{
    switch (isa) {
    case HELIX_ISA_AMX:
    case HELIX_ISA_AVX512: return &helix_kern_avx512;
    case HELIX_ISA_AVX2: return &helix_kern_avx2;
    default: return &helix_kern_portable;
    }
}

/* ------------------------------------------------------------ packing */

void helix_pack_a(const helix_kern *kn, int64_t rows, int64_t kc, helix_dtype t, const void *src, int64_t ld,
                  float scale, float *dst)
{
    if (kn->pack_a) { kn->pack_a(rows, kc, t, src, ld, scale, dst); return; }
    const int mr = kn->mr;
    const size_t es = helix_dtype_size(t);
    float row[4096];
    for (int64_t i0 = 0; i0 < rows; i0 += mr) {
        float *panel = dst + i0 * kc;
        const int n = rows - i0 < mr ? (int)(rows - i0) : mr;
        for (int ii = 0; ii < mr; ii++) {
            if (ii >= n) { for (int64_t k = 0; k < kc; k++) panel[k * mr + ii] = 0.0f; continue; }
            const char *s = (const char *)src + (size_t)((i0 + ii) * ld) * es;
            for (int64_t k0 = 0; k0 < kc; k0 += 4096) {
                const int64_t kb = kc - k0 < 4096 ? kc - k0 : 4096;
                const float *r = (const float *)(s + (size_t)k0 * es);
                if (t != HELIX_F32) { helix_to_f32(t, s + (size_t)k0 * es, row, kb); r = row; }
                float *p = panel + k0 * mr + ii;
                if (scale == 1.0f) for (int64_t k = 0; k < kb; k++) p[k * mr] = r[k];
                else for (int64_t k = 0; k < kb; k++) p[k * mr] = r[k] * scale;
            }
        }
    }
}

/* B (kc x n, element (k, j) = src[k*ld + j]) into panels nr columns wide */
static void pack_b_rows(int64_t nr, int64_t kc, int64_t n, helix_dtype t, const void *src, int64_t ld, float *dst)
{
    const size_t es = helix_dtype_size(t);
    for (int64_t j0 = 0; j0 < n; j0 += nr) {   /* panel by panel: the writes are sequential */
        const int64_t m = n - j0 < nr ? n - j0 : nr;
        float *p = dst + j0 * kc;
        for (int64_t k = 0; k < kc; k++, p += nr) {
            const char *s = (const char *)src + (size_t)(k * ld + j0) * es;
            if (t == HELIX_F32) for (int64_t j = 0; j < m; j++) p[j] = ((const float *)s)[j];
            else helix_to_f32(t, s, p, m);
            for (int64_t j = m; j < nr; j++) p[j] = 0.0f;
        }
    }
}

/* element (k, j) is src[k*ld + j] (trans = 0) or src[j*ld + k] (trans = 1) */
void helix_pack_b(const helix_kern *kn, int64_t kc, int64_t n, helix_dtype t, const void *src, int64_t ld, int trans,
                  float *dst)
{
    const int nr = kn->nr;
    const size_t es = helix_dtype_size(t);
    const int64_t np = helix_rup(n, nr);
    float row[4096];
    if (!trans) { pack_b_rows(nr, kc, n, t, src, ld, dst); return; }
    if (kn->pack_bt) { kn->pack_bt(kc, n, t, src, ld, dst); return; }
    for (int64_t j = 0; j < np; j++) {
        float *p = dst + (j / nr) * nr * kc + (j % nr);
        if (j >= n) { for (int64_t k = 0; k < kc; k++) p[k * nr] = 0.0f; continue; }
        const char *s = (const char *)src + (size_t)(j * ld) * es;
        for (int64_t k0 = 0; k0 < kc; k0 += 4096) {
            const int64_t kb = kc - k0 < 4096 ? kc - k0 : 4096;
            const float *r = (const float *)(s + (size_t)k0 * es);
            if (t != HELIX_F32) { helix_to_f32(t, s + (size_t)k0 * es, row, kb); r = row; }
            for (int64_t k = 0; k < kb; k++) p[(k0 + k) * nr] = r[k];
        }
    }
}

/* C (+)= A Bp over whole tiles: rows and cols rounded up to MR and NR
 * must fit in C's buffer (attention's buffers are padded). A is packed
 * (lda = 0) or read in place, row-major with row stride lda. */
static void tiles(const helix_kern *kn, int64_t rows, int64_t cols, int64_t kc, const float *a, int64_t lda,
                  const float *bp, float *c, int64_t ldc, int acc)
{
    const int mr = kn->mr, nr = kn->nr;
    for (int64_t k0 = 0; k0 < kc; k0 += KC) {
        const int64_t kb = kc - k0 < KC ? kc - k0 : KC;
        for (int64_t j0 = 0; j0 < cols; j0 += nr)
            for (int64_t i0 = 0; i0 < rows; i0 += mr) {
                const float *b = bp + j0 * kc + k0 * nr;
                float *ct = c + i0 * ldc + j0;
                if (lda) kn->ukr_rm(kb, a + i0 * lda + k0, lda, b, ct, ldc, acc || k0 > 0);
                else kn->ukr(kb, a + i0 * kc + k0 * mr, b, ct, ldc, acc || k0 > 0);
            }
    }
}

void helix_tile_product(const helix_kern *kn, int64_t rows, int64_t cols, int64_t kc, const float *ap, const float *bp,
                        float *c, int64_t ldc, int acc)
{
    tiles(kn, rows, cols, kc, ap, 0, bp, c, ldc, acc);
}

void helix_pv_tile(const helix_kern *kn, int64_t rows, int64_t w, int64_t nk, helix_dtype t, const void *v, int64_t ld,
                   float *vbuf, const float *p, int64_t ldp, float *acc, int64_t ldacc)
{
    if (kn->ukr_rm1 && w <= kn->nr / 2) {   /* narrow heads: one-vector tiles, no padded half */
        pack_b_rows(kn->nr / 2, nk, w, t, v, ld, vbuf);
        for (int64_t i0 = 0; i0 < rows; i0 += kn->mr1) kn->ukr_rm1(nk, p + i0 * ldp, ldp, vbuf, acc + i0 * ldacc, ldacc, 1);
        return;
    }
    helix_pack_b(kn, nk, w, t, v, ld, 0, vbuf);
    tiles(kn, rows, w, nk, p, ldp, vbuf, acc, ldacc, 1);
}

/* ------------------------------------------------------- packed B */

int64_t helix_gemm_pack_bytes(int64_t K, int64_t N, helix_dtype ta, helix_dtype tb)
{
    const helix_isa isa = helix_isa_current();
    if (use_amx(isa, ta, tb)) return helix_al64(helix_amx_packed_bytes(K, N));
    return helix_al64(4 * K * helix_rup(N, helix_kern_for(isa)->nr));
}

void helix_gemm_pack(int64_t K, int64_t N, helix_dtype ta, helix_dtype tb, const void *B, int64_t ldb, void *dst,
                     helix_gemm_b *out)
{
    const helix_isa isa = helix_isa_current();
    memset(out, 0, sizeof *out);
    out->K = K; out->N = N; out->tb = tb; out->isa = isa; out->data = dst;
    if (use_amx(isa, ta, tb)) {
        out->amx = 1;
        const int64_t Np = helix_rup(N, 32);   /* tb is bf16 here; slices as below */
        for (int64_t k0 = 0; k0 < K; k0 += KC_AMX)
            helix_amx_pack_rows(K - k0 < KC_AMX ? K - k0 : KC_AMX, N, (const uint16_t *)B + k0 * ldb, ldb,
                                (uint16_t *)dst + k0 * Np);
        return;
    }
    /* KC-deep slices one after another, each all NR-column panels: the
     * slice a block of A meets is contiguous (panels of the whole depth
     * lie K*NR floats apart and share the same cache sets) */
    const helix_kern *kn = helix_kern_for(isa);
    const int64_t Np = helix_rup(N, kn->nr);
    for (int64_t k0 = 0; k0 < K; k0 += KC)
        helix_pack_b(kn, K - k0 < KC ? K - k0 : KC, N, tb, (const char *)B + (size_t)(k0 * ldb) * helix_dtype_size(tb),
                     ldb, 0, (float *)dst + k0 * Np);
}

/* ------------------------------------------------------------ driver */

/* The run workspace: a packed A block (rows padded for the last strip),
 * an f32 C block (AMX, or a 16-bit C), an edge tile. */
static void ws_layout(int64_t M, int64_t N, int64_t K, int amx, helix_dtype tc, int64_t *a_bytes, int64_t *c_bytes)
{
    const int64_t kcb = amx ? KC_AMX : KC;
    const int64_t rows = (M < MC ? helix_rup(M, 32) : MC) + HELIX_MR_MAX, kc = K < kcb ? helix_rup(K, 32) : kcb;
    *a_bytes = helix_al64((amx ? 2 : 4) * rows * kc);
    *c_bytes = amx || tc != HELIX_F32 ? helix_al64(4 * rows * helix_rup(N, 32)) : 0;
}

static int64_t run_workspace(int64_t M, int64_t N, int64_t K, int amx, helix_dtype tc)
{
    int64_t a, c;
    ws_layout(M, N, K, amx, tc, &a, &c);
    return a + c + helix_al64(4 * HELIX_MR_MAX * HELIX_NR_MAX);
}

int64_t helix_gemm_run_workspace_bytes(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc)
{
    return run_workspace(M, N, K, use_amx(helix_isa_current(), ta, tb), tc);
}

int64_t helix_gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc)
{
    return helix_gemm_pack_bytes(K, N, ta, tb) + helix_gemm_run_workspace_bytes(M, N, K, ta, tb, tc);
}

/* rows [0, mb) of the f32 block c (ld) start as the bias or 0 */
static void init_rows(float *c, int64_t ld, int64_t mb, int64_t N, const void *bias, helix_dtype tc)
{
    for (int64_t i = 0; i < mb; i++) {
        if (bias) helix_to_f32(tc, bias, c + i * ld, N);
        else memset(c + i * ld, 0, sizeof(float) * (size_t)N);
    }
}

static void run_amx(int64_t M, const helix_gemm_b *b, helix_dtype ta, const void *A, int64_t lda, const void *bias,
                    helix_dtype tc, void *C, int64_t ldc, void *work)
{
    const int64_t N = b->N, K = b->K, Kp = helix_rup(K, 32), Np = helix_rup(N, 32);
    const int64_t mc = M < MC ? helix_rup(M, 32) : MC;
    int64_t a_bytes, c_bytes;
    ws_layout(M, N, K, 1, tc, &a_bytes, &c_bytes);
    uint16_t *ap = (uint16_t *)work;
    float *cf = (float *)((char *)work + a_bytes);
    const uint16_t *bp = (const uint16_t *)b->data;
    (void)ta;
    helix_amx_begin();
    for (int64_t m0 = 0; m0 < M; m0 += mc) {
        const int64_t mb = M - m0 < mc ? M - m0 : mc, mbp = helix_rup(mb, 32);
        init_rows(cf, Np, mb, N, bias, tc);
        for (int64_t i = mb; i < mbp; i++) memset(cf + i * Np, 0, sizeof(float) * (size_t)Np);
        for (int64_t k0 = 0; k0 < Kp; k0 += KC_AMX) {
            const int64_t kb = Kp - k0 < KC_AMX ? Kp - k0 : KC_AMX;   /* multiple of 32 */
            /* A block into tile strips (helix_amx_pack_a), zero-padded */
            helix_amx_pack_a(mb, K - k0 < kb ? K - k0 : kb, (const uint16_t *)A + m0 * lda + k0, lda, ap);
            for (int64_t j0 = 0; j0 < Np; j0 += 32)
                for (int64_t i0 = 0; i0 < mbp; i0 += 32)
                    helix_amx_32x32(kb, ap + i0 * kb, bp + k0 * Np + j0 * kb, cf + i0 * Np + j0, Np, 1);
        }
        for (int64_t i = 0; i < mb; i++)
            helix_from_f32(tc, cf + i * Np, (char *)C + (size_t)((m0 + i) * ldc) * helix_dtype_size(tc), N);
    }
    helix_amx_end();
}

void helix_gemm_run(int64_t M, const helix_gemm_b *b, helix_dtype ta, const void *A, int64_t lda, const void *bias,
                    helix_dtype tc, void *C, int64_t ldc, void *work)
{
    if (M <= 0 || b->N <= 0) return;
    if (b->amx) { run_amx(M, b, ta, A, lda, bias, tc, C, ldc, work); return; }
    const helix_kern *kn = helix_kern_for(b->isa);
    const int mr = kn->mr, nr = kn->nr;
    const int64_t N = b->N, K = b->K, Np = helix_rup(N, nr);
    const int64_t mc = M < MC ? helix_rup(M, 32) : MC;
    int64_t a_bytes, c_bytes;
    ws_layout(M, N, K, 0, tc, &a_bytes, &c_bytes);
    float *ap = (float *)work;
    float *cf = (float *)((char *)work + a_bytes);
    float *edge = (float *)((char *)work + a_bytes + c_bytes);
    const float *bp = (const float *)b->data;
    const size_t ea = helix_dtype_size(ta);
    for (int64_t m0 = 0; m0 < M; m0 += mc) {
        const int64_t mb = M - m0 < mc ? M - m0 : mc;
        float *c = tc == HELIX_F32 ? (float *)C + m0 * ldc : cf;
        const int64_t ld = tc == HELIX_F32 ? ldc : helix_rup(N, 32);
        init_rows(c, ld, mb, N, bias, tc);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kb = K - k0 < KC ? K - k0 : KC;
            /* the A block as f32 rows kb apart (a copy, 16-bit widened): the
             * micro-kernel broadcasts from rows as cheaply as from panels,
             * and the copy costs far less than transposing into panels
             * (measured: up to 16 % of the time at N = 128); the rows
             * padding the last strip are zeros */
            for (int64_t i = 0; i < mb; i++)
                helix_to_f32(ta, (const char *)A + (size_t)((m0 + i) * lda + k0) * ea, ap + i * kb, kb);
            memset(ap + mb * kb, 0, sizeof(float) * (size_t)((helix_rup(mb, mr) - mb) * kb));
            const int64_t strips = (mb + mr - 1) / mr, panel_bytes = 4 * nr * kb;
            const int64_t pf_step = (panel_bytes / strips + 63) / 64 * 64;
            for (int64_t j0 = 0; j0 < Np; j0 += nr) {
                const float *bj = bp + k0 * Np + j0 * kb;
                const int64_t nj = N - j0 < nr ? N - j0 : nr;
                /* the next panel (after the slice's last: the next slice's
                 * first) into L2, a share per strip: its first strip would
                 * otherwise wait on L3 (measured 4-11 % of the time) */
                const char *next = (const char *)(bj + nr * kb);
                for (int64_t i0 = 0; i0 < mb; i0 += mr) {
                    const int64_t ni = mb - i0 < mr ? mb - i0 : mr;
                    const int64_t p0 = i0 / mr * pf_step, p1 = p0 + pf_step < panel_bytes ? p0 + pf_step : panel_bytes;
                    for (int64_t o = p0; o < p1; o += 64) __builtin_prefetch(next + o, 0, 2);
                    float *ct = c + i0 * ld + j0;
                    if (ni == mr && nj == nr) { kn->ukr_rm(kb, ap + i0 * kb, kb, bj, ct, ld, 1); continue; }
                    kn->ukr_rm(kb, ap + i0 * kb, kb, bj, edge, nr, 0);
                    for (int64_t i = 0; i < ni; i++)
                        for (int64_t j = 0; j < nj; j++) ct[i * ld + j] += edge[i * nr + j];
                }
            }
        }
        if (tc != HELIX_F32)
            for (int64_t i = 0; i < mb; i++)
                helix_from_f32(tc, cf + i * ld, (char *)C + (size_t)((m0 + i) * ldc) * helix_dtype_size(tc), N);
    }
}

void helix_gemm(int64_t M, int64_t N, int64_t K, helix_dtype ta, const void *A, int64_t lda, helix_dtype tb,
                const void *B, int64_t ldb, const void *bias, helix_dtype tc, void *C, int64_t ldc, void *work)
{
    helix_gemm_b b;
    helix_gemm_pack(K, N, ta, tb, B, ldb, work, &b);
    helix_gemm_run(M, &b, ta, A, lda, bias, tc, C, ldc, (char *)work + helix_gemm_pack_bytes(K, N, ta, tb));
}
