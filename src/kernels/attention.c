/* attention.c — flash-style attention for one device.
 *
 * Work items are (batch row, head, block of TQ queries); `threads` workers
 * take them in turn, each with its own slice of the workspace. An item
 * walks the keys in tiles of TK, keeping a running max m and running sum l
 * per query (online softmax) and an f32 output accumulator:
 *   S = scale * Q K^T            (one GEMM per tile)
 *   m' = max(m, rowmax S); P = exp(S - m'); l = l e^(m-m') + rowsum P
 *   acc = acc e^(m-m') + P V      (one GEMM per tile)
 * Memory is the fixed workspace of helix_attention_workspace_bytes(width)
 * per thread: nothing grows with L. With OpenBLAS the two products are
 * sgemm calls, straight on the inputs when they are f32 (no copies); 16-bit
 * tiles are widened first. Causal key tiles past a block's last query are
 * never visited; only tiles crossing the diagonal are masked. */
#include "attention-impl.h"
#include "../core/util-impl.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#ifdef HELIX_HAVE_CBLAS
#include <cblas.h>
#endif

#define TQ HELIX_TILE_Q
#define TK HELIX_TILE_K

/* Buffer sizes in bytes, in carving order (see attention-impl.h). */
static void ws_sizes(int64_t w, int64_t b[7])
{
    b[0] = helix_al64(4 * TQ * w);
    b[1] = helix_al64(4 * TK * w);
    b[2] = helix_al64(4 * TK * w);
    b[3] = helix_al64(4 * TQ * TK);
    b[4] = helix_al64(4 * TQ * w);
    b[5] = b[6] = helix_al64(4 * TQ);
}

int64_t helix_attention_workspace_bytes(int64_t width)
{
    int64_t b[7], n = 0;
    ws_sizes(width, b);
    for (int k = 0; k < 7; k++) n += b[k];
    return n;
}

helix_attn_ws helix_attn_ws_carve(void *base, int64_t width)
{
    int64_t b[7];
    ws_sizes(width, b);
    float *p[7];
    char *c = (char *)base;
    for (int k = 0; k < 7; k++) { p[k] = (float *)c; c += b[k]; }
    return (helix_attn_ws){p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
}

void helix_attn_args_dense(helix_attn_args *a)
{
    a->q_sh = a->width; a->q_sl = a->H * a->width; a->q_sb = a->Lq * a->q_sl;
    a->o_sh = a->width; a->o_sl = a->H * a->width; a->o_sb = a->Lq * a->o_sl;
    a->kv_sh = a->width; a->kv_sl = a->H * a->width; a->kv_sb = a->Lk * a->kv_sl;
}

/* e^x for x <= 0 (the shifted scores), written so the compiler vectorizes
 * it: Cody-Waite range reduction and a degree-6 polynomial (relative error
 * ~2e-7); -inf and anything below -87 give exactly 0. */
static void exp_shifted(float *x, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        const float v = x[j];
        const float c = v < -87.0f ? -87.0f : v;
        const float k = rintf(c * 1.44269504088896341f);
        const float r = c - k * 0.693145751953125f - k * 1.428606765330187e-06f;
        float p = 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        int32_t bits = ((int32_t)k + 127) << 23;
        float s;
        memcpy(&s, &bits, 4);
        x[j] = v < -87.0f ? 0.0f : p * s;
    }
}

static float row_max(const float *x, int64_t n)
{
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
    for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
    float r = m[0];
    for (int l = 1; l < 8; l++) r = m[l] > r ? m[l] : r;
    return r;
}

static float row_sum(const float *x, int64_t n)
{
    float s[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) s[l] += x[j + l];
    for (; j < n; j++) s[0] += x[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* s[nq][TK] = alpha * q[nq][w] k[nk][w]^T */
static void mm_qk(int64_t nq, int64_t nk, int64_t w, float alpha, const float *q, int64_t ldq, const float *k,
                  int64_t ldk, float *s)
{
#ifdef HELIX_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)w, alpha, q, (int)ldq, k, (int)ldk,
                0.0f, s, TK);
#else
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
            const float *qi = q + i * ldq, *kj = k + j * ldk;
            float acc[8] = {0};
            int64_t e = 0;
            for (; e + 8 <= w; e += 8)
                for (int l = 0; l < 8; l++) acc[l] += qi[e + l] * kj[e + l];
            for (; e < w; e++) acc[0] += qi[e] * kj[e];
            s[i * TK + j] = alpha * (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
        }
#endif
}

/* acc[nq][w] += p[nq][TK] v[nk][w] */
static void mm_pv(int64_t nq, int64_t nk, int64_t w, const float *p, const float *v, int64_t ldv, float *acc)
{
#ifdef HELIX_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)w, (int)nk, 1.0f, p, TK, v, (int)ldv, 1.0f,
                acc, (int)w);
#else
    for (int64_t i = 0; i < nq; i++) {
        float *ai = acc + i * w;
        for (int64_t j = 0; j < nk; j++) {
            const float pj = p[i * TK + j];
            const float *vr = v + j * ldv;
            for (int64_t e = 0; e < w; e++) ai[e] += pj * vr[e];
        }
    }
#endif
}

/* Rows of a strided tensor as an f32 matrix: a pointer into it when it is
 * f32 (ld = row stride), else widened into buf (ld = w). */
static const float *rows_f32(helix_dtype t, const void *base, int64_t off, int64_t stride, int64_t n, int64_t w,
                             float *buf, int64_t *ld)
{
    if (t == HELIX_F32) { *ld = stride; return (const float *)base + off; }
    const size_t es = helix_dtype_size(t);
    for (int64_t r = 0; r < n; r++) helix_to_f32(t, (const char *)base + (size_t)(off + r * stride) * es, buf + r * w, w);
    *ld = w;
    return buf;
}

static void block(const helix_attn_args *a, void *ws, int64_t b, int64_t h, int64_t q0)
{
    const int64_t w = a->width, nq = a->Lq - q0 < TQ ? a->Lq - q0 : TQ;
    const helix_attn_ws W = helix_attn_ws_carve(ws, w);
    float *qt = W.q, *kt = W.k, *vt = W.v, *s = W.s, *acc = W.acc, *mx = W.mx, *sum = W.sum;
    int64_t kv_end = a->Lk;
    if (a->kv_len && a->kv_len[b] < kv_end) kv_end = a->kv_len[b] < 0 ? 0 : a->kv_len[b];
    int64_t ldq, ldk, ldv;
    const float *q = rows_f32(a->dtype, a->q, b * a->q_sb + q0 * a->q_sl + h * a->q_sh, a->q_sl, nq, w, qt, &ldq);
    for (int64_t i = 0; i < nq; i++) { mx[i] = -INFINITY; sum[i] = 0.0f; }
    memset(acc, 0, sizeof(float) * (size_t)(nq * w));
    const int64_t qpos_first = a->q_pos0 + q0, qpos_last = qpos_first + nq - 1;
    int64_t kend = kv_end;
    if (a->causal && qpos_last + 1 < kend) kend = qpos_last + 1;
    for (int64_t k0 = 0; k0 < kend; k0 += TK) {
        const int64_t nk = kend - k0 < TK ? kend - k0 : TK;
        const int64_t off = b * a->kv_sb + k0 * a->kv_sl + h * a->kv_sh;
        const float *k = rows_f32(a->dtype, a->k, off, a->kv_sl, nk, w, kt, &ldk);
        const float *v = rows_f32(a->dtype, a->v, off, a->kv_sl, nk, w, vt, &ldv);
        mm_qk(nq, nk, w, a->scale, q, ldq, k, ldk, s);
        if (a->causal && k0 + nk - 1 > qpos_first)
            for (int64_t i = 0; i < nq; i++)
                for (int64_t j = qpos_first + i + 1 - k0; j < nk; j++)
                    if (j >= 0) s[i * TK + j] = -INFINITY;
        for (int64_t i = 0; i < nq; i++) {
            float *si = s + i * TK;
            const float mnew = fmaxf(mx[i], row_max(si, nk));
            if (mnew == -INFINITY) { memset(si, 0, sizeof(float) * (size_t)nk); continue; }
            for (int64_t j = 0; j < nk; j++) si[j] -= mnew;
            exp_shifted(si, nk);
            const float alpha = mx[i] == -INFINITY ? 0.0f : expf(mx[i] - mnew);
            sum[i] = sum[i] * alpha + row_sum(si, nk);
            mx[i] = mnew;
            if (alpha != 1.0f) {
                float *ai = acc + i * w;
                for (int64_t e = 0; e < w; e++) ai[e] *= alpha;
            }
        }
        mm_pv(nq, nk, w, s, v, ldv, acc);
    }
    const size_t es = helix_dtype_size(a->dtype);
    for (int64_t i = 0; i < nq; i++) {
        float *ai = acc + i * w;
        const float inv = sum[i] > 0.0f ? 1.0f / sum[i] : 0.0f;   /* no visible key: 0 */
        for (int64_t e = 0; e < w; e++) ai[e] *= inv;
        helix_from_f32(a->dtype, ai, (char *)a->o + (size_t)(b * a->o_sb + (q0 + i) * a->o_sl + h * a->o_sh) * es, w);
    }
}

typedef struct {
    const helix_attn_args *a;
    char *ws;
    int64_t items, nqb, next;
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
        block(p->a, wk->ws, bh / p->a->H, bh % p->a->H, qb * TQ);
    }
    return NULL;
}

helix_status helix_attention_fwd(const helix_attn_args *a, void *workspace)
{
    if (!a || !workspace || a->B < 0 || a->Lq < 0 || a->Lk < 0 || a->H < 0 || a->width < 1)
        return HELIX_ERR_INVALID;
    helix_blas_init();
    pool_t p;
    p.a = a;
    p.nqb = (a->Lq + TQ - 1) / TQ;
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
