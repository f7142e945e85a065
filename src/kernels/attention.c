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

/* Square tiles of T queries x T keys: 128, or 256 from width 256 up, where
 * the larger products run ~12 % faster (w512: 85 vs 75 GFLOP/s on one Zen 3
 * core) and w128 gains nothing. */
int64_t helix_attn_tile(int64_t width) { return width >= 256 ? 256 : HELIX_ATTN_TILE_MIN; }

/* Buffer sizes in bytes, in carving order (see attention-impl.h). */
static void ws_sizes(int64_t w, int64_t b[7])
{
    const int64_t T = helix_attn_tile(w);
    b[0] = helix_al64(4 * T * w);
    b[1] = helix_al64(4 * T * w);
    b[2] = helix_al64(4 * T * w);
    b[3] = helix_al64(4 * T * T);
    b[4] = helix_al64(4 * T * w);
    b[5] = b[6] = helix_al64(4 * T);
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

/* One row of a score tile, online-softmax step: s[0..n) holds scaled
 * scores; with the running max *m and sum *l it becomes
 *   m' = max(*m, max s);  s = e^(s - m');  *l = *l e^(*m - m') + sum s
 * and returns alpha = e^(*m - m') (0 when *m was -inf), by which the caller
 * rescales its accumulator. A row with no visible key yet (m' = -inf) is
 * zeroed and leaves *m, *l as they were (alpha 1).
 *
 * e^x (x <= 0): Cody-Waite range reduction and a degree-6 polynomial
 * (relative error ~2e-7); -inf and anything below -87 give exactly 0. The
 * AVX2 path (built with -march=native on a CPU that has it) computes the
 * same formula eight lanes at a time; the portable one is kept beside it. */
#define EXP_LO (-87.0f)
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f

static inline float exp_neg(float v)
{
    const float c = v < EXP_LO ? EXP_LO : v;
    const float k = rintf(c * LOG2E);
    const float r = c - k * LN2_HI - k * LN2_LO;
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
    return v < EXP_LO ? 0.0f : p * sc;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256 exp_neg8(__m256 v)
{
    const __m256 lo = _mm256_set1_ps(EXP_LO);
    const __m256 c = _mm256_max_ps(lo, v);               /* NaN in v stays NaN */
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_HI), c);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ), e);
}

static inline float hmax8(__m256 x)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static inline float hsum8(__m256 x)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

static float softmax_row(float *s, int64_t n, float *m, float *l)
{
    int64_t j = 0;
    __m256 mv = _mm256_set1_ps(*m);
    for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
    float mnew = hmax8(mv);
    for (; j < n; j++) mnew = s[j] > mnew ? s[j] : mnew;
    if (mnew == -INFINITY) { memset(s, 0, sizeof(float) * (size_t)n); return 1.0f; }
    const __m256 m8 = _mm256_set1_ps(mnew);
    __m256 sv = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256 e = exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m8));
        _mm256_storeu_ps(s + j, e);
        sv = _mm256_add_ps(sv, e);
    }
    float sum = hsum8(sv);
    for (; j < n; j++) { s[j] = exp_neg(s[j] - mnew); sum += s[j]; }
    const float alpha = *m == -INFINITY ? 0.0f : exp_neg(*m - mnew);
    *l = *l * alpha + sum;
    *m = mnew;
    return alpha;
}

static void scale_row(float *x, int64_t n, float a)
{
    int64_t e = 0;
    const __m256 a8 = _mm256_set1_ps(a);
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, _mm256_mul_ps(_mm256_loadu_ps(x + e), a8));
    for (; e < n; e++) x[e] *= a;
}
#else

static float softmax_row(float *s, int64_t n, float *m, float *l)
{
    float mnew = *m;
    for (int64_t j = 0; j < n; j++) mnew = s[j] > mnew ? s[j] : mnew;
    if (mnew == -INFINITY) { memset(s, 0, sizeof(float) * (size_t)n); return 1.0f; }
    float part[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) { s[j + q] = exp_neg(s[j + q] - mnew); part[q] += s[j + q]; }
    for (; j < n; j++) { s[j] = exp_neg(s[j] - mnew); part[0] += s[j]; }
    const float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float alpha = *m == -INFINITY ? 0.0f : exp_neg(*m - mnew);
    *l = *l * alpha + sum;
    *m = mnew;
    return alpha;
}

static void scale_row(float *x, int64_t n, float a)
{
    for (int64_t e = 0; e < n; e++) x[e] *= a;
}
#endif

/* s[nq][lds] = alpha * q[nq][w] k[nk][w]^T */
static void mm_qk(int64_t nq, int64_t nk, int64_t w, float alpha, const float *q, int64_t ldq, const float *k,
                  int64_t ldk, float *s, int64_t lds)
{
#ifdef HELIX_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)w, alpha, q, (int)ldq, k, (int)ldk,
                0.0f, s, (int)lds);
#else
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < nk; j++) {
            const float *qi = q + i * ldq, *kj = k + j * ldk;
            float acc[8] = {0};
            int64_t e = 0;
            for (; e + 8 <= w; e += 8)
                for (int l = 0; l < 8; l++) acc[l] += qi[e + l] * kj[e + l];
            for (; e < w; e++) acc[0] += qi[e] * kj[e];
            s[i * lds + j] = alpha * (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
        }
#endif
}

/* acc[nq][w] += p[nq][ldp] v[nk][w] */
static void mm_pv(int64_t nq, int64_t nk, int64_t w, const float *p, int64_t ldp, const float *v, int64_t ldv,
                  float *acc)
{
#ifdef HELIX_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)w, (int)nk, 1.0f, p, (int)ldp, v, (int)ldv, 1.0f,
                acc, (int)w);
#else
    for (int64_t i = 0; i < nq; i++) {
        float *ai = acc + i * w;
        for (int64_t j = 0; j < nk; j++) {
            const float pj = p[i * ldp + j];
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
    const int64_t w = a->width, T = helix_attn_tile(w), nq = a->Lq - q0 < T ? a->Lq - q0 : T;
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
    for (int64_t k0 = 0; k0 < kend; k0 += T) {
        const int64_t nk = kend - k0 < T ? kend - k0 : T;
        const int64_t off = b * a->kv_sb + k0 * a->kv_sl + h * a->kv_sh;
        const float *k = rows_f32(a->dtype, a->k, off, a->kv_sl, nk, w, kt, &ldk);
        const float *v = rows_f32(a->dtype, a->v, off, a->kv_sl, nk, w, vt, &ldv);
        mm_qk(nq, nk, w, a->scale, q, ldq, k, ldk, s, T);
        if (a->causal && k0 + nk - 1 > qpos_first)
            for (int64_t i = 0; i < nq; i++)
                for (int64_t j = qpos_first + i + 1 - k0; j < nk; j++)
                    if (j >= 0) s[i * T + j] = -INFINITY;
        for (int64_t i = 0; i < nq; i++) {
            const float alpha = softmax_row(s + i * T, nk, &mx[i], &sum[i]);
            if (alpha != 1.0f) scale_row(acc + i * w, w, alpha);
        }
        mm_pv(nq, nk, w, s, T, v, ldv, acc);
    }
    const size_t es = helix_dtype_size(a->dtype);
    for (int64_t i = 0; i < nq; i++) {
        float *ai = acc + i * w;
        scale_row(ai, w, sum[i] > 0.0f ? 1.0f / sum[i] : 0.0f);   /* no visible key: 0 */
        helix_from_f32(a->dtype, ai, (char *)a->o + (size_t)(b * a->o_sb + (q0 + i) * a->o_sl + h * a->o_sh) * es, w);
    }
}

typedef struct {
    const helix_attn_args *a;
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
        block(p->a, wk->ws, bh / p->a->H, bh % p->a->H, qb * p->tile);
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
    p.tile = helix_attn_tile(a->width);
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
