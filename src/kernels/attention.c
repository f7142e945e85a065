/* attention.c — flash-style attention for one device.
 *
 * Work items are (batch row, head, block of T queries); `threads` workers
 * take them in turn, each with its own slice of the workspace. An item
 * walks the keys in tiles of T, keeping a running max m and running sum l
 * per query (online softmax) and an f32 output accumulator:
 *   S = scale * Q K^T            (one GEMM per tile)
 *   m' = max(m, rowmax S); P = exp(S - m'); l = l e^(m-m') + rowsum P
 *   acc = acc e^(m-m') + P V      (one GEMM per tile)
 * (the SIMD paths keep m' = m while rowmax S <= m + HELIX_SOFTMAX_SLACK,
 * and take S in units of log2, log2(e) folded into Q's scale: 2^ for e^;
 * softmax-impl.h). The final acc / l is the same either way.
 * Memory is the fixed workspace of helix_attention_workspace_bytes(width)
 * per thread: nothing grows with L. The two products are the path's own
 * micro-kernels (kern-impl.h) on packed tiles: Q once per block (scale
 * folded in), K^T and V per key tile, P after the softmax; 16-bit inputs
 * are widened while packing. On the AMX path bf16 stays bf16 (tiles), P is
 * rounded to bf16, and S, the statistics and acc are f32. No BLAS call.
 * Causal key tiles past a block's last query are never visited; only
 * tiles crossing the diagonal are masked. */
#include "attention-impl.h"
#include "../core/util-impl.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* Blocks of TQ = 512 queries against key tiles of T = 128: each packed
 * K^T and V tile serves 512 queries (f32, 2 threads, L = 4096: ~10 %
 * faster than 256 at widths 64-512; 1024 gained nothing more), and a
 * block's buffers stay in L2. Reading f32 V in place instead of packing
 * it was tried: no faster (its rows are H*width apart). */
int64_t helix_attn_tile(int64_t width) { (void)width; return HELIX_ATTN_TILE_MIN; }
_Static_assert(HELIX_ATTN_TILE_MIN == HELIX_PV_LD, "P's rows are a key tile apart: the row kernels' fixed stride");

/* Buffer sizes in bytes, in carving order (see attention-impl.h): rows
 * padded by one micro-kernel strip, widths rounded to 32 (panels, tiles). */
static void ws_sizes(int64_t w, int64_t b[8])
{
    const int64_t T = helix_attn_tile(w), Tr = HELIX_ATTN_TQ + HELIX_MR_MAX, wr = helix_rup(w, 32);
    b[0] = helix_al64(4 * Tr * wr);   /* q   */
    b[1] = helix_al64(4 * T * wr);    /* k   */
    b[2] = helix_al64(4 * T * wr);    /* v   */
    b[3] = helix_al64(4 * Tr * T);    /* s   */
    b[4] = helix_al64(4 * Tr * T);    /* p   */
    b[5] = helix_al64(4 * Tr * wr);   /* acc */
    b[6] = b[7] = helix_al64(4 * Tr);
}

int64_t helix_attention_workspace_bytes(int64_t width)
{
    int64_t b[8], n = 0;
    ws_sizes(width, b);
    for (int k = 0; k < 8; k++) n += b[k];
    return n;
}

helix_attn_ws helix_attn_ws_carve(void *base, int64_t width)
{
    int64_t b[8];
    ws_sizes(width, b);
    float *p[8];
    char *c = (char *)base;
    for (int k = 0; k < 8; k++) { p[k] = (float *)c; c += b[k]; }
    return (helix_attn_ws){p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]};
}

void helix_attn_args_dense(helix_attn_args *a)
{
    a->q_sh = a->width; a->q_sl = a->H * a->width; a->q_sb = a->Lq * a->q_sl;
    a->o_sh = a->width; a->o_sl = a->H * a->width; a->o_sb = a->Lq * a->o_sl;
    a->kv_sh = a->width; a->kv_sl = a->H * a->width; a->kv_sb = a->Lk * a->kv_sl;
}

/* e^x (x <= 0), the scalar form of what every path computes. */
float helix_exp_neg(float v)
{
    if (v != v) return v;   /* NaN stays NaN (and never reaches the int conversion) */
    const float c = v < HELIX_EXP_LO ? HELIX_EXP_LO : v;
    const float k = rintf(c * HELIX_LOG2E);
    const float r = c - k * HELIX_LN2_HI - k * HELIX_LN2_LO;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float sc;
    memcpy(&sc, &bits, 4);
    return v < HELIX_EXP_LO ? 0.0f : p * sc;
}

typedef struct {
    const helix_attn_args *a;
    const helix_kern *kn;
    int64_t T, nq, q0, kend, b, h;
} blk_t;

/* Causal: rows before this one see no key of the tile at k0 (rounded
 * down to whole strips of `align` rows). Skipping them is exact: their
 * softmax step would leave m, l and acc as they are. */
static int64_t first_row(const blk_t *k, int64_t k0, int64_t align)
{
    const int64_t r = k->a->causal ? k0 - (k->a->q_pos0 + k->q0) : 0;
    return r > 0 ? r / align * align : 0;
}

/* Scores of query rows [r0, r1) x keys [k0, k0 + nk) are in s, row i at
 * s + (i - s0) * T: mask the causal diagonal. */
static void mask_tile(const blk_t *k, float *s, int64_t s0, int64_t r0, int64_t r1, int64_t k0, int64_t nk)
{
    const int64_t qpos_first = k->a->q_pos0 + k->q0;
    if (k->a->causal && k0 + nk - 1 > qpos_first)
        for (int64_t i = r0; i < r1; i++)
            for (int64_t j = qpos_first + i + 1 - k0; j < nk; j++)
                if (j >= 0) s[(i - s0) * k->T + j] = -INFINITY;
}

/* The next key tile's K and V rows (rows x bytes each, ld bytes apart),
 * prefetched into L2 a few lines per softmax row: they are far apart in
 * memory (H*width), which the hardware prefetchers do not follow. */
typedef struct {
    const char *k, *v;
    int64_t ld, row_lines, lines, done;
    int64_t row, line;   /* the next pair: K's and V's line `line` of key row `row` */
} kv_prefetch;

static void kv_prefetch_to(kv_prefetch *p, int64_t to)
{
    if (to > p->lines) to = p->lines;
    for (; p->done < to; p->done += 2) {   /* no divisions: this runs between softmax rows */
        const int64_t o = p->row * p->ld + p->line * 64;
        __builtin_prefetch(p->k + o, 0, 2);
        __builtin_prefetch(p->v + o, 0, 2);
        if (++p->line == p->row_lines) { p->line = 0; p->row++; }
    }
}

/* ... then take the online-softmax step (P left in s) and rescale acc. */
static void softmax_tile(const blk_t *k, float *s, int64_t r0, int64_t r1, int64_t k0, int64_t nk, float *mx,
                         float *sum, float *acc, int64_t lda, kv_prefetch *pf)
{
    enum { ROWS = 16 };   /* per call, then a share of the prefetches */
    float alpha[ROWS];
    mask_tile(k, s, 0, r0, r1, k0, nk);
    for (int64_t i0 = r0; i0 < r1; i0 += ROWS) {
        const int64_t nr = r1 - i0 < ROWS ? r1 - i0 : ROWS;
        k->kn->softmax_rows(s + i0 * k->T, k->T, nr, nk, mx + i0, sum + i0, alpha);
        for (int64_t r = 0; r < nr; r++)
            if (alpha[r] != 1.0f) k->kn->scale_row(acc + (i0 + r) * lda, k->a->width, alpha[r]);
        kv_prefetch_to(pf, pf->lines * (i0 + nr - r0) / (r1 - r0));
    }
}

/* f32 micro-kernels (every path; 16-bit widened while packing):
 *   Q (times scale) packed once per block; per key tile K^T and V packed,
 *   S = Q K^T, softmax, acc += P V with P read in place (helix_pv_tile). */
static void block_f32(const blk_t *k, const helix_attn_ws *W)
{
    const helix_attn_args *a = k->a;
    const helix_kern *kn = k->kn;
    const int64_t w = a->width, T = k->T, nq = k->nq, wr = helix_rup(w, 32);
    const size_t es = helix_dtype_size(a->dtype);
    const char *qb = (const char *)a->q + (size_t)(k->b * a->q_sb + k->q0 * a->q_sl + k->h * a->q_sh) * es;
    helix_pack_a(kn, nq, w, a->dtype, qb, a->q_sl, helix_score_scale(kn, a->scale), W->q);
    for (int64_t k0 = 0; k0 < k->kend; k0 += T) {
        const int64_t nk = k->kend - k0 < T ? k->kend - k0 : T;
        const size_t off = (size_t)(k->b * a->kv_sb + k0 * a->kv_sl + k->h * a->kv_sh) * es;
        const int64_t r0 = first_row(k, k0, kn->mr);
        helix_pack_b(kn, w, nk, a->dtype, (const char *)a->k + off, a->kv_sl, 1, W->k);
        helix_tile_product(kn, nq - r0, nk, w, W->q + r0 * w, W->k, W->s + r0 * T, T, 0);
        kv_prefetch pf = {a->k, a->v, (int64_t)((size_t)a->kv_sl * es), (int64_t)((w * es + 63) / 64), 0, 0, 0, 0};
        if (k0 + T < k->kend) {   /* the next tile */
            const int64_t nk1 = k->kend - k0 - T < T ? k->kend - k0 - T : T;
            pf.k = (const char *)a->k + off + (size_t)(T * a->kv_sl) * es;
            pf.v = (const char *)a->v + off + (size_t)(T * a->kv_sl) * es;
            pf.lines = 2 * nk1 * pf.row_lines;
        }
        softmax_tile(k, W->s, r0, nq, k0, nk, W->mx, W->sum, W->acc, wr, &pf);
        helix_pv_tile(kn, nq - r0, w, nk, a->dtype, (const char *)a->v + off, a->kv_sl, W->v, W->s + r0 * T, T,
                      W->acc + r0 * wr, wr);
    }
}

/* AMX tiles for bf16: Q, K, V read in bf16; S and the statistics f32;
 * P rounded to bf16 for the second product; acc f32. Per key tile, K^T
 * and V are packed once; then strips of 32 queries go through the two
 * products and the softmax as a pipeline over two S and two P buffers:
 * while the vector units take strip t's softmax row by row, the tile unit
 * is fed strip t+1's S = Q K^T and strip t-1's acc += P V between the rows,
 * so the two units work at once. A strip's S and P (32 x T) stay in L1;
 * only the packed tiles come from L2. */
typedef struct {
    const uint16_t *qb, *kt, *vt;
    float *s[2];
    uint16_t *p[2];
    float *acc;
    int64_t wr, T, nkp;
} amx_pipe;

/* call c of strip i0's products: c < nkp/32 is a block of S (buffer b),
 * the rest blocks of acc from P (buffer b) */
static void amx_call(const amx_pipe *q, int64_t i0, int b, int64_t c)
{
    const int64_t nqk = q->nkp / 32;
    if (c < nqk) helix_amx_32x32(q->wr, q->qb + i0 * q->wr, q->kt + c * 32 * q->wr, q->s[b] + c * 32, q->T, 0);
    else {
        const int64_t j0 = (c - nqk) * 32;
        helix_amx_32x32(q->nkp, q->p[b], q->vt + j0 * q->nkp, q->acc + i0 * q->wr + j0, q->wr, 1);
    }
}

static void block_amx(const blk_t *k, const helix_attn_ws *W)
{
    const helix_attn_args *a = k->a;
    const int64_t w = a->width, T = k->T, nq = k->nq, wr = helix_rup(w, 32), nqp = helix_rup(nq, 32);
    const uint16_t *qs = (const uint16_t *)a->q + k->b * a->q_sb + k->q0 * a->q_sl + k->h * a->q_sh;
    amx_pipe q = {(const uint16_t *)W->q, (const uint16_t *)W->k, (const uint16_t *)W->v,
                  {W->s, W->s + 32 * T}, {(uint16_t *)W->p, (uint16_t *)W->p + 32 * T}, W->acc, wr, T, 0};
    const float c = helix_score_scale(k->kn, a->scale);   /* scores in units of log2 (AVX-512 is base2) */
    helix_amx_pack_a(nq, w, qs, a->q_sl, (uint16_t *)W->q);
    helix_amx_begin();
    for (int64_t k0 = 0; k0 < k->kend; k0 += T) {
        const int64_t nk = k->kend - k0 < T ? k->kend - k0 : T, nkp = helix_rup(nk, 32);
        const int64_t off = k->b * a->kv_sb + k0 * a->kv_sl + k->h * a->kv_sh;
        helix_amx_pack_kt(nk, w, (const uint16_t *)a->k + off, a->kv_sl, (uint16_t *)W->k);
        helix_amx_pack_rows(nk, w, (const uint16_t *)a->v + off, a->kv_sl, (uint16_t *)W->v);
        q.nkp = nkp;
        const int64_t nqk = nkp / 32, npv = wr / 32, f0 = first_row(k, k0, 32);
        for (int64_t j = 0; j < nqk; j++) amx_call(&q, f0, 0, j);
        for (int64_t i0 = f0; i0 < nqp; i0 += 32) {
            const int b = (int)(((i0 - f0) / 32) & 1);
            const int next = i0 + 32 < nqp, prev = i0 > f0;
            const int64_t i1 = nq - i0 < 32 ? nq : i0 + 32, calls = (next ? nqk : 0) + (prev ? npv : 0);
            const int64_t nr = i1 - i0;
            float mnew[32], rsum[32], alpha[32];
            mask_tile(k, q.s[b], i0, i0, i1, k0, nk);
            helix_amx_softmax_max(q.s[b], T, nr, nk, c, W->mx + i0, mnew);
            int64_t done = 0;
            for (int64_t r = 0; r < nr; r++) {
                rsum[r] = helix_amx_softmax_exp(q.s[b] + r * T, nk, c, mnew[r], q.p[b] + helix_amx_a_at(r, 0, nkp), nkp);
                for (const int64_t due = calls * (r + 1) / nr; done < due; done++) {
                    if (next && done < nqk) amx_call(&q, i0 + 32, b ^ 1, done);        /* S of strip t+1 */
                    else amx_call(&q, i0 - 32, b ^ 1, nqk + done - (next ? nqk : 0));   /* acc of strip t-1 */
                }
            }
            helix_amx_softmax_fold(nr, mnew, rsum, W->mx + i0, W->sum + i0, alpha);
            for (int64_t r = 0; r < nr; r++)
                if (alpha[r] != 1.0f) k->kn->scale_row(W->acc + (i0 + r) * wr, w, alpha[r]);
            for (int64_t i = i1 - i0; i < 32; i++)          /* rows past nq: P = 0 */
                for (int64_t j = 0; j < nkp; j += 32) memset(q.p[b] + helix_amx_a_at(i, j, nkp), 0, 64);
            if (i0 + 32 >= nqp)                               /* the last strip's acc */
                for (int64_t j = 0; j < npv; j++) amx_call(&q, i0, b, nqk + j);
        }
    }
    helix_amx_end();
}

/* AMX key tiles are this many times T (measured, 2 threads, L = 4096:
 * 2 beat 1 by 10-30 % at widths 64-512; 4 would not fit the buffers) */
#define AMX_TILE_FACTOR 2
static void block(const helix_attn_args *a, const helix_kern *kn, int amx, void *ws, int64_t b, int64_t h, int64_t q0)
{
    const int64_t w = a->width, nq = a->Lq - q0 < HELIX_ATTN_TQ ? a->Lq - q0 : HELIX_ATTN_TQ;
    /* AMX: key tiles of 2T in the same buffers (bf16 K^T, V and P are half
     * the size; S holds only one 32-row strip) */
    const int64_t T = amx ? AMX_TILE_FACTOR * helix_attn_tile(w) : helix_attn_tile(w);
    const int64_t wr = helix_rup(w, 32);
    const helix_attn_ws W = helix_attn_ws_carve(ws, w);
    int64_t kv_end = a->Lk;
    if (a->kv_len && a->kv_len[b] < kv_end) kv_end = a->kv_len[b] < 0 ? 0 : a->kv_len[b];
    const int64_t qpos_last = a->q_pos0 + q0 + nq - 1;
    int64_t kend = kv_end;
    if (a->causal && qpos_last + 1 < kend) kend = qpos_last + 1;
    if (kend < 0) kend = 0;
    for (int64_t i = 0; i < nq + HELIX_MR_MAX; i++) { W.mx[i] = -INFINITY; W.sum[i] = 0.0f; }
    memset(W.acc, 0, sizeof(float) * (size_t)((nq + HELIX_MR_MAX) * wr));
    const blk_t k = {a, kn, T, nq, q0, kend, b, h};
    if (amx) block_amx(&k, &W);
    else block_f32(&k, &W);
    const size_t es = helix_dtype_size(a->dtype);
    for (int64_t i = 0; i < nq; i++) {
        float *ai = W.acc + i * wr;
        kn->scale_row(ai, w, W.sum[i] > 0.0f ? 1.0f / W.sum[i] : 0.0f);   /* no visible key: 0 */
        helix_from_f32(a->dtype, ai, (char *)a->o + (size_t)(b * a->o_sb + (q0 + i) * a->o_sl + h * a->o_sh) * es, w);
    }
}

typedef struct {
    const helix_attn_args *a;
    const helix_kern *kn;
    int amx;
    char *ws;
    int64_t items, nqb, next, tile;
    pthread_mutex_t mu;
} pool_t;

typedef struct {
    pool_t *p;
    float *ws;
} worker_t;

static void *worker(void *arg)
{
    worker_t *wk = (worker_t *)arg;
    pool_t *p = wk->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int64_t it = p->next++;
        pthread_mutex_unlock(&p->mu);
        if (it >= p->items) break;
        /* heaviest first under causal: later query blocks see more keys */
        int64_t qb = p->nqb - 1 - it % p->nqb, bh = it / p->nqb;
        block(p->a, p->kn, p->amx, wk->ws, bh / p->a->H, bh % p->a->H, qb * p->tile);
    }
    return NULL;
}

helix_status helix_attention_fwd(const helix_attn_args *a, void *workspace)
{
    if (!a || !workspace || a->B < 0 || a->Lq < 0 || a->Lk < 0 || a->H < 0 || a->width < 1)
        return HELIX_ERR_INVALID;
    pool_t p;
    p.a = a;
    const helix_isa isa = helix_isa_current();
    p.kn = helix_kern_for(isa);
    p.amx = isa == HELIX_ISA_AMX && a->dtype == HELIX_BF16;
    p.tile = HELIX_ATTN_TQ;
    p.nqb = (a->Lq + p.tile - 1) / p.tile;
    p.items = a->B * a->H * p.nqb;
    p.next = 0;
    pthread_mutex_init(&p.mu, NULL);
    int threads = a->threads < 1 ? 1 : a->threads;
    if (threads > p.items) threads = p.items > 0 ? (int)p.items : 1;
    enum { MAXT = 256 };
    if (threads > MAXT) threads = MAXT;
    pthread_t tid[MAXT];
    worker_t wk[MAXT];
    const int64_t per = helix_attention_workspace_bytes(a->width);
    int started = 1;
    for (int t = 0; t < threads; t++) { wk[t].p = &p; wk[t].ws = (float *)((char *)workspace + t * per); }
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker, &wk[started])) break;
    worker(&wk[0]);                       /* the caller works too */
    for (int t = 1; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&p.mu);
    return HELIX_OK;
}
