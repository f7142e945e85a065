/* test_kernel.c — the flash kernel against a naive double-precision
 * softmax(Q K^T * scale) V over the same (rounded) inputs: widths, tile
 * edges, causal with a query offset, key padding, all three dtypes. */
#include "check.h"
#include "helix.h"

#include <math.h>
#include <stdlib.h>

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* ramp > 0: key j scaled by 1 + ramp j / Lk, so a row's max keeps jumping
 * (by more than the SIMD softmax's slack) within and across key tiles */
static double run_case_ramp(helix_dtype t, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t w, int causal,
                            int64_t q_pos0, int pad, double ramp)
{
    uint64_t seed = (uint64_t)(B * 131 + Lq * 7 + Lk * 3 + H + w * 17 + causal + q_pos0 * 5);
    const size_t es = helix_dtype_size(t);
    int64_t nq = B * Lq * H * w, nk = B * Lk * H * w;
    float *q = malloc(4 * (size_t)nq), *k = malloc(4 * (size_t)nk), *v = malloc(4 * (size_t)nk);
    void *qs = malloc(es * (size_t)nq), *ks = malloc(es * (size_t)nk), *vs = malloc(es * (size_t)nk),
         *os = malloc(es * (size_t)nq);
    void *work = aligned_alloc(64, (size_t)helix_attention_workspace_bytes(w));
    int64_t kv_len[8];
    for (int64_t b = 0; b < B; b++) kv_len[b] = pad ? (Lk - 1 - 13 * b > 1 ? Lk - 1 - 13 * b : 1) : Lk;
    for (int64_t x = 0; x < nq; x++) q[x] = 2.0f * frand(&seed);
    for (int64_t x = 0; x < nk; x++) {
        const int64_t j = x / (H * w) % Lk;
        k[x] = 2.0f * frand(&seed) * (float)(1.0 + ramp * (double)j / (double)Lk);
        v[x] = frand(&seed);
    }
    helix_from_f32(t, q, qs, nq); helix_to_f32(t, qs, q, nq);
    helix_from_f32(t, k, ks, nk); helix_to_f32(t, ks, k, nk);
    helix_from_f32(t, v, vs, nk); helix_to_f32(t, vs, v, nk);
    helix_attn_args a = {0};
    a.B = B; a.Lq = Lq; a.Lk = Lk; a.H = H; a.width = w; a.dtype = t;
    a.q = qs; a.k = ks; a.v = vs; a.o = os;
    a.scale = 1.0f / sqrtf((float)w); a.causal = causal; a.q_pos0 = q_pos0;
    a.kv_len = pad ? kv_len : NULL;
    helix_attn_args_dense(&a);
    helix_status st = helix_attention_fwd(&a, work);
    double worst = st == HELIX_OK ? 0 : INFINITY;
    double *p = malloc(sizeof(double) * (size_t)Lk);
    for (int64_t b = 0; b < B && st == HELIX_OK; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                int64_t end = kv_len[b];
                if (causal && q_pos0 + i + 1 < end) end = q_pos0 + i + 1;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < end; j++) {
                    double s = 0;
                    for (int64_t e = 0; e < w; e++)
                        s += (double)q[((b * Lq + i) * H + h) * w + e] * k[((b * Lk + j) * H + h) * w + e];
                    p[j] = s * a.scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j < end; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                for (int64_t e = 0; e < w; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < end; j++) o += p[j] * v[((b * Lk + j) * H + h) * w + e];
                    o = end > 0 ? o / sum : 0.0;
                    double got = helix_load(t, os, ((b * Lq + i) * H + h) * w + e);
                    double err = fabs(got - o);
                    if (!(err <= worst)) worst = err; /* catches NaN too */
                }
            }
    free(p); free(q); free(k); free(v); free(qs); free(ks); free(vs); free(os); free(work);
    return worst;
}

static double run_case(helix_dtype t, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t w, int causal,
                       int64_t q_pos0, int pad)
{
    return run_case_ramp(t, B, Lq, Lk, H, w, causal, q_pos0, pad, 0.0);
}

/* A NaN in query row `qrow` (or, with qrow < 0, in key row `krow`) under
 * causal attention: returns how many output rows are not as they should
 * be: all NaN where the row's scores include the NaN (that query; or the
 * queries at and after the key), all finite elsewhere. */
static int64_t nan_rows_wrong(int64_t qrow, int64_t krow)
{
    const int64_t L = 300, w = 16;
    float *q = malloc(sizeof(float) * L * w), *k = malloc(sizeof(float) * L * w), *v = malloc(sizeof(float) * L * w),
          *o = malloc(sizeof(float) * L * w);
    void *work = aligned_alloc(64, (size_t)helix_attention_workspace_bytes(w));
    uint64_t seed = 99;
    for (int64_t x = 0; x < L * w; x++) { q[x] = frand(&seed); k[x] = frand(&seed); v[x] = frand(&seed); }
    if (qrow >= 0) q[qrow * w + 3] = NAN;
    else k[krow * w + 5] = NAN;
    helix_attn_args a = {0};
    a.B = 1; a.Lq = a.Lk = L; a.H = 1; a.width = w; a.dtype = HELIX_F32;
    a.q = q; a.k = k; a.v = v; a.o = o; a.scale = 0.25f; a.causal = 1;
    helix_attn_args_dense(&a);
    int64_t wrong = helix_attention_fwd(&a, work) == HELIX_OK ? 0 : L;
    for (int64_t i = 0; i < L && !wrong; i++) {
        const int want_nan = qrow >= 0 ? i == qrow : i >= krow;
        for (int64_t e = 0; e < w; e++)
            if ((isnan(o[i * w + e]) != 0) != want_nan || (!want_nan && !isfinite(o[i * w + e]))) { wrong++; break; }
    }
    free(q); free(k); free(v); free(o); free(work);
    return wrong;
}

static const char *path = "";

static void cases(void)
{
    const helix_dtype types[3] = {HELIX_F32, HELIX_F16, HELIX_BF16};
    const double tol[3] = {2e-6, 2e-3, 1.6e-2};       /* values are O(1): absolute */
    const int64_t widths[] = {8, 16, 64, 128, 512};
    for (int ti = 0; ti < 3; ti++)
        for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
            for (int causal = 0; causal < 2; causal++) {
                int64_t w = widths[wi], L = w >= 512 ? 70 : 131;  /* 131: one full 128 tile and a part */
                double e = run_case(types[ti], 2, L, L, 2, w, causal, 0, 0);
                CHECK(e <= tol[ti], "%s w=%lld L=%lld causal=%d: max err %.3g > %.3g",
                      helix_dtype_name(types[ti]), (long long)w, (long long)L, causal, e, tol[ti]);
            }
    /* two query blocks (512 each, the second partial) and five key tiles (128, the last partial) */
    const int64_t wide[] = {128, 256, 512};
    for (int ti = 0; ti < 3; ti += 2)
        for (size_t wi = 0; wi < 3; wi++)
            for (int causal = 0; causal < 2; causal++) {
                const int64_t w = wide[wi], L = 2 * 256 + 37;
                double e = run_case(types[ti], 1, L, L, 1, w, causal, 0, 0);
                CHECK(e <= tol[ti], "%s w=%lld L=%lld (3 tiles) causal=%d: max err %.3g > %.3g",
                      helix_dtype_name(types[ti]), (long long)w, (long long)L, causal, e, tol[ti]);
            }
    /* a block of queries at an offset (exact/regather by queries) */
    for (int ti = 0; ti < 3; ti++) {
        double e = run_case(types[ti], 2, 37, 150, 3, 32, 1, 100, 0);
        CHECK(e <= tol[ti], "%s causal with q_pos0=100: %.3g", helix_dtype_name(types[ti]), e);
    }
    /* key padding lengths, with and without causal */
    for (int ti = 0; ti < 3; ti++)
        for (int causal = 0; causal < 2; causal++) {
            double e = run_case(types[ti], 3, 90, 90, 2, 16, causal, 0, 1);
            CHECK(e <= tol[ti], "%s kv_len padding causal=%d: %.3g", helix_dtype_name(types[ti]), causal, e);
            e = run_case(types[ti], 2, 300, 300, 1, 64, causal, 0, 1);   /* lengths across key tiles and strips */
            CHECK(e <= tol[ti], "%s kv_len padding L=300 causal=%d: %.3g", helix_dtype_name(types[ti]), causal, e);
        }
    /* logits growing along the keys to ~+-150: the running max moves by
     * more than the slack inside key tiles and between them (f32: the
     * error of f32 scores that large, ~1e-5) */
    const double tol_ramp[3] = {6e-5, 2e-3, 1.6e-2};
    for (int ti = 0; ti < 3; ti++)
        for (int causal = 0; causal < 2; causal++) {
            const int64_t w = causal ? 64 : 16;
            double e = run_case_ramp(types[ti], 1, 300, 300, 2, w, causal, 0, 0, 60.0);
            CHECK(e <= tol_ramp[ti], "%s w=%lld logits growing along the keys causal=%d: %.3g > %.3g",
                  helix_dtype_name(types[ti]), (long long)w, causal, e, tol_ramp[ti]);
        }
    /* a NaN input gives NaN where it enters, never a silent 0 (the row's
     * max must not skip it) */
    CHECK(nan_rows_wrong(7, -1) == 0, "NaN in query 7: %lld output rows wrong", (long long)nan_rows_wrong(7, -1));
    CHECK(nan_rows_wrong(-1, 150) == 0, "NaN in key 150 (causal): %lld output rows wrong", (long long)nan_rows_wrong(-1, 150));
    /* tiny shapes: one query, one key */
    CHECK(run_case(HELIX_F32, 1, 1, 1, 1, 4, 0, 0, 0) <= tol[0], "1x1");
    CHECK(run_case(HELIX_F32, 1, 1, 1, 1, 4, 1, 0, 0) <= tol[0], "1x1 causal");
}

/* every kernel path this CPU can run, each against the same reference */
int main(void)
{
    for (int i = 0; i < HELIX_ISA_COUNT; i++) {
        path = helix_isa_name((helix_isa)i);
        if (helix_isa_force((helix_isa)i)) {
            printf("path %s: SKIPPED: this CPU lacks %s\n", path, helix_isa_missing((helix_isa)i));
            continue;
        }
        const int before = t_fail;
        cases();
        printf("path %s: %s\n", path, t_fail == before ? "ok" : "FAILED");
    }
    return test_summary();
}
