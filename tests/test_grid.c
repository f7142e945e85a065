/* test_grid.c — whole layouts on the in-process grid against the
 * reference: grids 1x1, 1x4, 4x1, 2x2, 4x4, 2x8 (m > h_g), both exact
 * algorithms and sliced, causal or not, W_O or not, biases, three dtypes,
 * B > 1 and L not a multiple of the tile. Sliced must equal the reference
 * with h*m heads of width d/m; exact the reference with h heads of width d.
 * Every rank's counted bytes must equal the plan's, phase by phase, and
 * each device's arena the plan's peak. */
#include "check.h"
#include "helix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int64_t n, m, h, d, B, L; } grid_case;

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static void round_to(helix_dtype t, float *v, int64_t n)
{
    void *tmp = malloc((size_t)n * 4);
    helix_from_f32(t, v, tmp, n);
    helix_to_f32(t, tmp, v, n);
    free(tmp);
}

/* returns normalised error max|y-ref|/max|ref|; -1 on failure. W_Q is
 * scaled by q_gain (1: logits O(1)). */
static double run_gain(const helix_config *cfg, int ref_sliced, int *bytes_ok, int *arena_ok, float q_gain)
{
    helix_plan p;
    helix_err e = {{0}};
    if (helix_plan_init(cfg, &p, &e)) { fprintf(stderr, "plan: %s\n", e.msg); return -1; }
    const int64_t D = p.D, BL = cfg->batch * cfg->seq, es = (int64_t)helix_dtype_size(cfg->dtype);
    uint64_t seed = (uint64_t)(D * 7 + BL + cfg->causal);
    float *w = malloc(sizeof(float) * (size_t)(4 * D * D + 4 * D)), *x = malloc(sizeof(float) * (size_t)(BL * D));
    float *ref = malloc(sizeof(float) * (size_t)(BL * D)), *yf = malloc(sizeof(float) * (size_t)(BL * D));
    void *y = malloc((size_t)(BL * D * es));
    helix_device_stats *st = calloc((size_t)p.P, sizeof *st);
    const float a = sqrtf(3.0f / (float)D);
    for (int64_t k = 0; k < 4 * D * D; k++) w[k] = a * frand(&seed) * (k < D * D ? q_gain : 1.0f);
    for (int64_t k = 0; k < 4 * D; k++) w[4 * D * D + k] = 0.1f * frand(&seed);
    for (int64_t k = 0; k < BL * D; k++) x[k] = frand(&seed);
    round_to(cfg->dtype, w, 4 * D * D + 4 * D);
    round_to(cfg->dtype, x, BL * D);
    float *bb = w + 4 * D * D;
    helix_weights hw = {D, w, w + D * D, w + 2 * D * D, cfg->out_proj ? w + 3 * D * D : NULL,
                        cfg->bias ? bb : NULL, cfg->bias ? bb + D : NULL, cfg->bias ? bb + 2 * D : NULL,
                        cfg->bias && cfg->out_proj ? bb + 3 * D : NULL};
    double err = -1;
    if (helix_grid_run(&p, &hw, x, y, 2, st, &e) != HELIX_OK) {
        fprintf(stderr, "grid run failed: %s\n", e.msg);
        goto out;
    }
    int64_t rh = ref_sliced ? cfg->heads * cfg->slices : cfg->heads;
    int64_t rd = ref_sliced ? p.ds : cfg->head_dim;
    if (helix_attention_ref(cfg->batch, cfg->seq, rh, rd, &hw, x, cfg->causal, cfg->kv_len, p.scale, ref, &e)) goto out;
    helix_to_f32(cfg->dtype, y, yf, BL * D);
    double mx = 0, mr = 0;
    for (int64_t k = 0; k < BL * D; k++) {
        double d = fabs((double)yf[k] - ref[k]);
        if (!(d <= mx)) mx = d;
        if (fabs(ref[k]) > mr) mr = fabs(ref[k]);
    }
    err = mx / mr;
    *bytes_ok = 1;
    *arena_ok = 1;
    for (int64_t r = 0; r < p.P; r++) {
        helix_device_plan dp;
        helix_plan_device(&p, r, &dp);
        for (int ph = 0; ph < HELIX_NPHASES; ph++)
            if (st[r].phase[ph].sent_bytes != dp.phase[ph].sent_bytes ||
                st[r].phase[ph].recv_bytes != dp.phase[ph].recv_bytes) {
                fprintf(stderr, "rank %lld phase %s: counted %lld/%lld, plan %lld/%lld\n", (long long)r,
                        helix_phase_name((helix_phase)ph), (long long)st[r].phase[ph].sent_bytes,
                        (long long)st[r].phase[ph].recv_bytes, (long long)dp.phase[ph].sent_bytes,
                        (long long)dp.phase[ph].recv_bytes);
                *bytes_ok = 0;
            }
        if (st[r].arena_bytes != dp.peak_bytes) *arena_ok = 0;
    }
out:
    free(w); free(x); free(ref); free(yf); free(y); free(st);
    return err;
}

static double run(const helix_config *cfg, int ref_sliced, int *bytes_ok, int *arena_ok)
{
    return run_gain(cfg, ref_sliced, bytes_ok, arena_ok, 1.0f);
}

int main(void)
{
    const grid_case cases[] = {
        {1, 1, 2, 16, 2, 67}, {1, 4, 4, 16, 2, 67}, {4, 1, 4, 16, 2, 67}, {2, 2, 4, 16, 2, 67},
        {2, 2, 6, 16, 2, 67}, {4, 4, 16, 16, 2, 67}, {2, 8, 4, 32, 2, 67}, {2, 8, 4, 32, 1, 5},
    };
    const helix_dtype types[3] = {HELIX_F32, HELIX_F16, HELIX_BF16};
    const double tol[3] = {2e-5, 4e-3, 3e-2};
    const helix_mode modes[3] = {HELIX_MODE_SLICED, HELIX_MODE_EXACT, HELIX_MODE_EXACT};
    const helix_exact_algo algos[3] = {HELIX_EXACT_REGATHER, HELIX_EXACT_REGATHER, HELIX_EXACT_SCORES};
    const char *names[3] = {"sliced", "exact/regather", "exact/scores"};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int mo = 0; mo < 3; mo++)
            for (int ti = 0; ti < 3; ti++)
                for (int causal = 0; causal < 2; causal++)
                    for (int wo = 0; wo < 2; wo++) {
                        const grid_case *g = &cases[ci];
                        helix_config c = helix_config_default();
                        c.groups = g->n; c.slices = g->m; c.heads = g->h; c.head_dim = g->d;
                        c.batch = g->B; c.seq = g->L; c.dtype = types[ti]; c.mode = modes[mo];
                        c.exact_algo = algos[mo]; c.causal = causal; c.out_proj = wo; c.bias = causal ^ wo;
                        int bytes_ok = 0, arena_ok = 0;
                        double e = run(&c, mo == 0, &bytes_ok, &arena_ok);
                        CHECK(e >= 0 && e <= tol[ti], "%lldx%lld h=%lld d=%lld B=%lld L=%lld %s %s causal=%d W_O=%d: "
                              "error %.3g > %.3g", (long long)g->n, (long long)g->m, (long long)g->h,
                              (long long)g->d, (long long)g->B, (long long)g->L, names[mo],
                              helix_dtype_name(types[ti]), causal, wo, e, tol[ti]);
                        CHECK(bytes_ok, "%lldx%lld %s %s causal=%d W_O=%d: bytes differ from the plan",
                              (long long)g->n, (long long)g->m, names[mo], helix_dtype_name(types[ti]), causal, wo);
                        CHECK(arena_ok, "arena differs from the plan's peak");
                    }
    /* logits of +-50 over rows longer than a key tile: the SIMD softmax's
     * running max moves inside rows (exact/scores takes whole rows) */
    for (int mo = 0; mo < 3; mo++)
        for (int causal = 0; causal < 2; causal++) {
            helix_config c = helix_config_default();
            c.groups = 2; c.slices = 2; c.heads = 4; c.head_dim = 16; c.batch = 1; c.seq = 300;
            c.mode = modes[mo]; c.exact_algo = algos[mo]; c.causal = causal;
            int bytes_ok = 0, arena_ok = 0;
            double e = run_gain(&c, mo == 0, &bytes_ok, &arena_ok, 40.0f);
            CHECK(e >= 0 && e <= tol[0], "large logits, L=300 %s causal=%d: error %.3g > %.3g", names[mo], causal, e, tol[0]);
        }
    /* the check can fail: sliced output is not the h-head model */
    helix_config c = helix_config_default();
    c.heads = 4; c.head_dim = 16; c.groups = 2; c.slices = 2; c.seq = 40; c.mode = HELIX_MODE_SLICED;
    int b, a;
    double e = run(&c, 0, &b, &a);
    CHECK(e > 1e-2, "sliced should NOT match the h-head reference (error %.3g)", e);
    return test_summary();
}
