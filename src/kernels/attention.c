/* attention.c — portable flash-style attention for one device.
 *
 * For each (batch row, head, block of TQ queries) it walks the keys in
 * tiles of TK, keeping a running max m and running sum l per query (online
 * softmax) and an f32 output accumulator. Memory is the fixed workspace of
 * helix_attention_workspace_bytes(width): nothing grows with L. Tiles are
 * converted to f32 once; K is stored transposed so both inner loops run
 * over contiguous memory. Causal key tiles past a query block's last
 * position are never visited; only tiles crossing the diagonal are masked. */
#include "helix.h"

#include <math.h>
#include <string.h>

#define TQ HELIX_TILE_Q
#define TK HELIX_TILE_K

static int64_t al64f(int64_t n_floats) { return ((n_floats * 4 + 63) & ~(int64_t)63) / 4; }

void helix_attn_args_dense(helix_attn_args *a)
{
    a->q_sh = a->width; a->q_sl = a->H * a->width; a->q_sb = a->Lq * a->q_sl;
    a->o_sh = a->width; a->o_sl = a->H * a->width; a->o_sb = a->Lq * a->o_sl;
    a->kv_sh = a->width; a->kv_sl = a->H * a->width; a->kv_sb = a->Lk * a->kv_sl;
}

static void load_row(helix_dtype t, const void *base, int64_t off, int64_t n, float *dst)
{
    size_t es = helix_dtype_size(t);
    helix_to_f32(t, (const char *)base + (size_t)off * es, dst, n);
}

helix_status helix_attention_fwd(const helix_attn_args *a, void *workspace)
{
    if (!a || !workspace || a->B < 0 || a->Lq < 0 || a->Lk < 0 || a->H < 0 || a->width < 1)
        return HELIX_ERR_INVALID;
    const int64_t w = a->width;
    float *qt = (float *)workspace;          /* [TQ][w], pre-scaled    */
    float *kt = qt + al64f(TQ * w);          /* [w][TK], transposed    */
    float *vt = kt + al64f(w * TK);          /* [TK][w]                */
    float *s = vt + al64f(TK * w);           /* [TQ][TK]               */
    float *acc = s + al64f(TQ * TK);         /* [TQ][w]                */
    float *mx = acc + al64f(TQ * w);         /* [TQ] running max       */
    float *sum = mx + al64f(TQ);             /* [TQ] running sum       */
    float krow[1024];                        /* staging for one K row  */
    const size_t es = helix_dtype_size(a->dtype);

    for (int64_t b = 0; b < a->B; b++) {
        int64_t kv_end = a->Lk;
        if (a->kv_len && a->kv_len[b] < kv_end) kv_end = a->kv_len[b] < 0 ? 0 : a->kv_len[b];
        for (int64_t h = 0; h < a->H; h++) {
            for (int64_t q0 = 0; q0 < a->Lq; q0 += TQ) {
                const int64_t nq = a->Lq - q0 < TQ ? a->Lq - q0 : TQ;
                for (int64_t i = 0; i < nq; i++) {
                    load_row(a->dtype, a->q, b * a->q_sb + (q0 + i) * a->q_sl + h * a->q_sh, w, qt + i * w);
                    for (int64_t e = 0; e < w; e++) qt[i * w + e] *= a->scale;
                    mx[i] = -INFINITY;
                    sum[i] = 0.0f;
                }
                memset(acc, 0, sizeof(float) * (size_t)(nq * w));
                const int64_t qpos_first = a->q_pos0 + q0, qpos_last = qpos_first + nq - 1;
                int64_t kend = kv_end;
                if (a->causal && qpos_last + 1 < kend) kend = qpos_last + 1;
                for (int64_t k0 = 0; k0 < kend; k0 += TK) {
                    const int64_t nk = kend - k0 < TK ? kend - k0 : TK;
                    /* K tile transposed, V tile row-major */
                    for (int64_t jj = 0; jj < nk; jj++) {
                        const int64_t off = b * a->kv_sb + (k0 + jj) * a->kv_sl + h * a->kv_sh;
                        for (int64_t e0 = 0; e0 < w; e0 += 1024) {
                            int64_t ne = w - e0 < 1024 ? w - e0 : 1024;
                            helix_to_f32(a->dtype, (const char *)a->k + (size_t)(off + e0) * es, krow, ne);
                            for (int64_t e = 0; e < ne; e++) kt[(e0 + e) * TK + jj] = krow[e];
                        }
                        load_row(a->dtype, a->v, off, w, vt + jj * w);
                    }
                    /* S = Q K^T */
                    for (int64_t i = 0; i < nq; i++) {
                        float *si = s + i * TK;
                        for (int64_t jj = 0; jj < nk; jj++) si[jj] = 0.0f;
                        for (int64_t e = 0; e < w; e++) {
                            const float qv = qt[i * w + e];
                            const float *kr = kt + e * TK;
                            for (int64_t jj = 0; jj < nk; jj++) si[jj] += qv * kr[jj];
                        }
                    }
                    /* mask only tiles that cross the diagonal */
                    if (a->causal && k0 + nk - 1 > qpos_first)
                        for (int64_t i = 0; i < nq; i++)
                            for (int64_t jj = 0; jj < nk; jj++)
                                if (k0 + jj > qpos_first + i) s[i * TK + jj] = -INFINITY;
                    /* online softmax, then acc += P V */
                    for (int64_t i = 0; i < nq; i++) {
                        float *si = s + i * TK;
                        float mnew = mx[i];
                        for (int64_t jj = 0; jj < nk; jj++) if (si[jj] > mnew) mnew = si[jj];
                        if (mnew == -INFINITY) { for (int64_t jj = 0; jj < nk; jj++) si[jj] = 0.0f; continue; }
                        const float alpha = expf(mx[i] - mnew);
                        float ls = 0.0f;
                        for (int64_t jj = 0; jj < nk; jj++) { si[jj] = expf(si[jj] - mnew); ls += si[jj]; }
                        sum[i] = sum[i] * alpha + ls;
                        mx[i] = mnew;
                        float *ai = acc + i * w;
                        if (alpha != 1.0f) for (int64_t e = 0; e < w; e++) ai[e] *= alpha;
                        for (int64_t jj = 0; jj < nk; jj++) {
                            const float p = si[jj];
                            const float *vr = vt + jj * w;
                            for (int64_t e = 0; e < w; e++) ai[e] += p * vr[e];
                        }
                    }
                }
                for (int64_t i = 0; i < nq; i++) {
                    float *ai = acc + i * w;
                    const float inv = sum[i] > 0.0f ? 1.0f / sum[i] : 0.0f; /* no visible key: 0 */
                    for (int64_t e = 0; e < w; e++) ai[e] *= inv;
                    helix_from_f32(a->dtype, ai,
                                   (char *)a->o + (size_t)(b * a->o_sb + (q0 + i) * a->o_sl + h * a->o_sh) * es, w);
                }
            }
        }
    }
    return HELIX_OK;
}
