/* attention.c — flash-style attention for one device.
 *
 * Work items are (batch row, head, block of T queries); `threads` workers
 * take them in turn, each with its own slice of the workspace. An item
 * walks the keys in tiles of T, keeping a running max m and running sum l
 * per query (online softmax) and an f32 output accumulator:
 *   S = scale * Q K^T            (one GEMM per tile)
 *   m' = max(m, rowmax S); P = exp(S - m'); l = l e^(m-m') + rowsum P
 *   acc = acc e^(m-m') + P V      (one GEMM per tile)
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

/* Scores of rows [0, nq) x keys [k0, k0 + nk) are in s (ld T): mask the
 * causal diagonal, take the online-softmax step, rescale acc rows. P is
 * left in s (f32), or with pb written as bf16 into pb (a packed AMX A of depth nkp, zeros past
 * nk) with the scores taken times the scale (AMX). */
/* Causal: rows before this one see no key of the tile at k0 (rounded
 * down to whole strips of `align` rows). Skipping them is exact: their
 * softmax step would leave m, l and acc as they are. */
static int64_t first_row(const blk_t *k, int64_t k0, int64_t align)
{
    const int64_t r = k->a->causal ? k0 - (k->a->q_pos0 + k->q0) : 0;
    return r > 0 ? r / align * align : 0;
}

static void softmax_tile(const blk_t *k, float *s, int64_t r0, int64_t k0, int64_t nk, float *mx, float *sum, float *acc,
                         int64_t lda, uint16_t *pb, int64_t nkp)
{
    const helix_attn_args *a = k->a;
    const int64_t T = k->T, qpos_first = a->q_pos0 + k->q0;
    if (a->causal && k0 + nk - 1 > qpos_first)
        for (int64_t i = r0; i < k->nq; i++)
            for (int64_t j = qpos_first + i + 1 - k0; j < nk; j++)
                if (j >= 0) s[i * T + j] = -INFINITY;
    for (int64_t i = r0; i < k->nq; i++) {
        const float alpha = pb ? helix_amx_softmax_row(s + i * T, nk, a->scale, &mx[i], &sum[i],
                                                     pb + helix_amx_a_at(i, 0, nkp), nkp)
                               : k->kn->softmax_row(s + i * T, nk, &mx[i], &sum[i]);
        if (alpha != 1.0f) k->kn->scale_row(acc + i * lda, a->width, alpha);
    }
}

/* f32 micro-kernels (every path; 16-bit widened while packing):
 *   Q (times scale) packed once per block; per key tile K^T and V packed,
 *   S = Q K^T, softmax, acc += P V with P read in place. */
static void block_f32(const blk_t *k, const helix_attn_ws *W)
{
    const helix_attn_args *a = k->a;
    const helix_kern *kn = k->kn;
    const int64_t w = a->width, T = k->T, nq = k->nq, wr = helix_rup(w, 32);
    const size_t es = helix_dtype_size(a->dtype);
    const char *qb = (const char *)a->q + (size_t)(k->b * a->q_sb + k->q0 * a->q_sl + k->h * a->q_sh) * es;
    helix_pack_a(kn, nq, w, a->dtype, qb, a->q_sl, a->scale, W->q);
    for (int64_t k0 = 0; k0 < k->kend; k0 += T) {
        const int64_t nk = k->kend - k0 < T ? k->kend - k0 : T;
        const size_t off = (size_t)(k->b * a->kv_sb + k0 * a->kv_sl + k->h * a->kv_sh) * es;
        const int64_t r0 = first_row(k, k0, kn->mr);
        helix_pack_b(kn, w, nk, a->dtype, (const char *)a->k + off, a->kv_sl, 1, W->k);
        helix_tile_product(kn, nq - r0, nk, w, W->q + r0 * w, W->k, W->s + r0 * T, T, 0);
        softmax_tile(k, W->s, r0, k0, nk, W->mx, W->sum, W->acc, wr, NULL, 0);
        helix_pack_b(kn, nk, w, a->dtype, (const char *)a->v + off, a->kv_sl, 0, W->v);
        helix_tile_product_rm(kn, nq - r0, w, nk, W->s + r0 * T, T, W->v, W->acc + r0 * wr, wr, 1);
    }
}

/* AMX tiles for bf16: Q, K, V read in bf16; S and the statistics f32
 * (the scale applied in the softmax); P rounded to bf16 for the second
 * product; acc f32. */
static void block_amx(const blk_t *k, const helix_attn_ws *W)
{
    const helix_attn_args *a = k->a;
    const int64_t w = a->width, T = k->T, nq = k->nq, wr = helix_rup(w, 32), nqp = helix_rup(nq, 32);
    const uint16_t *qs = (const uint16_t *)a->q + k->b * a->q_sb + k->q0 * a->q_sl + k->h * a->q_sh;
    uint16_t *qb = (uint16_t *)W->q, *kt = (uint16_t *)W->k, *vt = (uint16_t *)W->v, *pb = (uint16_t *)W->p;
    helix_amx_pack_a(nq, w, qs, a->q_sl, qb);
    helix_amx_begin();
    for (int64_t k0 = 0; k0 < k->kend; k0 += T) {
        const int64_t nk = k->kend - k0 < T ? k->kend - k0 : T, nkp = helix_rup(nk, 32);
        const int64_t off = k->b * a->kv_sb + k0 * a->kv_sl + k->h * a->kv_sh;
        const int64_t r0 = first_row(k, k0, 32);
        helix_amx_pack_kt(nk, w, (const uint16_t *)a->k + off, a->kv_sl, kt);
        for (int64_t i0 = r0; i0 < nqp; i0 += 32)             /* a Q strip stays in L1 over the key blocks */
            for (int64_t j0 = 0; j0 < nkp; j0 += 32)
                helix_amx_32x32(wr, qb + i0 * wr, kt + j0 * wr, W->s + i0 * T + j0, T, 0);
        softmax_tile(k, W->s, r0, k0, nk, W->mx, W->sum, W->acc, wr, pb, nkp);
        for (int64_t i = nq; i < nqp; i++)
            for (int64_t j = 0; j < nkp; j += 32) memset(pb + helix_amx_a_at(i, j, nkp), 0, 64);
        helix_amx_pack_rows(nk, w, (const uint16_t *)a->v + off, a->kv_sl, vt);
        for (int64_t i0 = r0; i0 < nqp; i0 += 32)             /* and a P strip over V's column blocks */
            for (int64_t j0 = 0; j0 < wr; j0 += 32)
                helix_amx_32x32(nkp, pb + i0 * nkp, vt + j0 * nkp, W->acc + i0 * wr + j0, wr, 1);
    }
    helix_amx_end();
}

static void block(const helix_attn_args *a, const helix_kern *kn, int amx, void *ws, int64_t b, int64_t h, int64_t q0)
{
    const int64_t w = a->width, T = helix_attn_tile(w), nq = a->Lq - q0 < HELIX_ATTN_TQ ? a->Lq - q0 : HELIX_ATTN_TQ;
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
