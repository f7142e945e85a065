/* test_plan.c — validation messages, the weight partition and the plan's
 * sizes. */
#include "check.h"
#include "helix_model.h"
#include "helix.h"

#include <string.h>

static void expect_invalid(helix_config c, const char *needle, const char *what)
{
    helix_plan p;
    helix_err e = {{0}};
    helix_status st = helix_plan_init(&c, &p, &e);
    CHECK(st == HELIX_ERR_INVALID && strstr(e.msg, needle), "%s: status %d, message '%s' lacks '%s'", what,
          (int)st, e.msg, needle);
}

int main(void)
{
    helix_config c = helix_config_default();
    helix_plan p;
    helix_err e;
    CHECK(helix_plan_init(&c, &p, &e) == HELIX_OK, "default config is valid: %s", e.msg);

    helix_config b = c; b.groups = 3;            expect_invalid(b, "heads h=16 is not divisible by groups n=3", "h%n");
    b = c; b.slices = 5;                         expect_invalid(b, "head width d=64 is not divisible by slices m=5", "d%m");
    b = c; b.heads = 0;                          expect_invalid(b, "--heads", "h=0");
    b = c; b.head_dim = -4;                      expect_invalid(b, "--head-dim", "d<0");
    b = c; b.batch = 0;                          expect_invalid(b, "--batch", "B=0");
    b = c; b.seq = -1;                           expect_invalid(b, "--seq", "L<0");
    b = c; b.groups = 0;                         expect_invalid(b, "--groups", "n=0");
    b = c; b.slices = 0;                         expect_invalid(b, "--slices", "m=0");
    b = c; b.dtype = (helix_dtype)7;             expect_invalid(b, "unknown dtype", "dtype");
    b = c; b.mode = (helix_mode)9;               expect_invalid(b, "unknown mode", "mode");
    b = c; b.exact_algo = (helix_exact_algo)9;   expect_invalid(b, "unknown exact algorithm", "algo");
    b = c; b.scale = -1;                         expect_invalid(b, "scale", "negative scale");
    b = c; b.seq = (int64_t)1 << 40; b.batch = (int64_t)1 << 20;
    expect_invalid(b, "too large", "overflowing B*L*D");
    b = c; b.heads = (int64_t)1 << 62; b.groups = 1;
    expect_invalid(b, "too large", "overflowing h*d");
    b = c; b.groups = 1 << 16; b.heads = 1 << 16; b.slices = 64; b.head_dim = 64;
    expect_invalid(b, "devices", "too many devices");
    const int64_t kv_zero[2] = {512, 0}, kv_long[2] = {3, 513}, kv_ok[2] = {512, 1};
    b = c; b.kv_len = kv_zero;                   expect_invalid(b, "batch row 1 (--kv-len) is 0", "kv_len 0");
    b = c; b.kv_len = kv_long;                   expect_invalid(b, "batch row 1 (--kv-len) is 513; it must be in 1..L=512", "kv_len > L");
    b = c; b.kv_len = kv_ok;
    CHECK(helix_plan_init(&b, &p, &e) == HELIX_OK, "kv_len {512, 1} is valid: %s", e.msg);

    /* weight partition: 3*D*D/P parameters per device, 16x less at P=16 */
    c = helix_config_default();
    c.heads = 16; c.head_dim = 512; c.groups = 4; c.slices = 4; c.batch = 1; c.seq = 16; c.out_proj = 0;
    helix_plan_init(&c, &p, &e);
    helix_device_plan dp;
    helix_plan_device(&p, 5, &dp);
    CHECK(dp.weight_bytes == 3LL * 8192 * 512 * 4, "paper-width shard is 8192 x 512 per matrix: %lld",
          (long long)dp.weight_bytes);
    CHECK(dp.i == 1 && dp.j == 1 && dp.col_first == 4 * 512 + 128, "device 5 is (1,1), first column %lld",
          (long long)dp.col_first);
    CHECK(p.regather == HELIX_REGATHER_HEADS, "m | hg -> heads regather");

    /* the shards tile the matrix exactly once */
    c = helix_config_default();
    c.heads = 4; c.head_dim = 6; c.groups = 2; c.slices = 3; c.out_proj = 1;
    helix_plan_init(&c, &p, &e);
    const int64_t D = p.D;
    float w[24 * 24], shard[24 * 4];
    int hits[24 * 24] = {0};
    for (int64_t k = 0; k < D * D; k++) w[k] = (float)k;
    int bad = 0;
    for (int64_t r = 0; r < p.P; r++) {
        helix_shard_cols(&p, r, w, shard, HELIX_F32);
        for (int64_t k = 0; k < D * p.cols; k++) hits[(int64_t)shard[k]]++;
        helix_shard_rows(&p, r, w, shard, HELIX_F32);
        /* rows shard holds rows of W_O whose indices are the column ranges */
        helix_plan_device(&p, r, &dp);
        for (int64_t k = 0; k < p.hg; k++)
            for (int64_t s = 0; s < p.ds; s++)
                if (shard[(k * p.ds + s) * D] != w[(dp.col_first + k * dp.col_stride + s) * D]) bad++;
    }
    for (int64_t k = 0; k < D * D; k++) if (hits[k] != 1) bad++;
    CHECK(bad == 0, "%d shard elements misplaced", bad);

    /* balanced split */
    int64_t b0, e0, total = 0;
    for (int k = 0; k < 4; k++) { helix_split_range(10, 4, k, &b0, &e0); total += e0 - b0; CHECK(e0 - b0 >= 2 && e0 - b0 <= 3, "split 10/4"); }
    CHECK(total == 10, "split covers the range");

    /* the plan's totals: sent bytes over all ranks equal received bytes */
    helix_mode modes[3] = {HELIX_MODE_SLICED, HELIX_MODE_EXACT, HELIX_MODE_EXACT};
    helix_exact_algo algos[3] = {HELIX_EXACT_REGATHER, HELIX_EXACT_REGATHER, HELIX_EXACT_SCORES};
    for (int mo = 0; mo < 3; mo++)
        for (int wo = 0; wo < 2; wo++) {
            c = helix_config_default();
            c.heads = 6; c.groups = 2; c.slices = 4; c.head_dim = 8; c.seq = 70; c.batch = 3;
            c.mode = modes[mo]; c.exact_algo = algos[mo]; c.out_proj = wo; c.causal = mo == 2;
            CHECK(helix_plan_init(&c, &p, &e) == HELIX_OK, "%s", e.msg);
            for (int ph = 0; ph < HELIX_NPHASES; ph++) {
                int64_t s = 0, rv = 0;
                for (int64_t r = 0; r < p.P; r++) {
                    helix_plan_device(&p, r, &dp);
                    s += dp.phase[ph].sent_bytes;
                    rv += dp.phase[ph].recv_bytes;
                }
                CHECK(s == rv, "mode %d wo %d phase %s: plan sends %lld but receives %lld", mo, wo,
                      helix_phase_name((helix_phase)ph), (long long)s, (long long)rv);
            }
        }

    /* the program (what the executor runs) moves exactly the bytes of the
     * attention plan's closed form, on every rank and phase */
    const int64_t grids[][2] = {{1, 1}, {1, 4}, {4, 1}, {2, 2}, {2, 4}, {4, 4}, {2, 8}};
    int checked = 0, differ = 0;
    for (size_t gi = 0; gi < sizeof grids / sizeof grids[0]; gi++)
        for (int mo = 0; mo < 3; mo++)
            for (int wo = 0; wo < 2; wo++)
                for (int ca = 0; ca < 2; ca++)
                    for (int lk = 0; lk < 2; lk++) {
                        c = helix_config_default();
                        c.heads = 8; c.head_dim = 16; c.groups = grids[gi][0]; c.slices = grids[gi][1];
                        c.seq = lk ? 70 : 5; c.batch = lk ? 1 : 3; c.dtype = lk ? HELIX_BF16 : HELIX_F32;
                        c.mode = modes[mo]; c.exact_algo = algos[mo]; c.out_proj = wo; c.causal = ca;
                        helix_model_plan mp;
                        if (helix_plan_init(&c, &p, &e) || helix_model_plan_attention(&c, &mp, &e)) {
                            CHECK(0, "grid %lldx%lld: %s", (long long)c.groups, (long long)c.slices, e.msg);
                            continue;
                        }
                        for (int64_t r = 0; r < p.P; r++) {
                            helix_model_device_plan md;
                            helix_plan_device(&p, r, &dp);
                            helix_model_plan_device(&mp, r, &md);
                            for (int ph = 0; ph < HELIX_NPHASES; ph++)
                                if (md.phase[ph].sent_bytes != dp.phase[ph].sent_bytes ||
                                    md.phase[ph].recv_bytes != dp.phase[ph].recv_bytes) {
                                    if (!differ++)
                                        fprintf(stderr, "  grid %lldx%lld mode %d wo %d causal %d L %lld rank %lld %s: "
                                                "program %lld/%lld, closed form %lld/%lld\n", (long long)c.groups,
                                                (long long)c.slices, mo, wo, ca, (long long)c.seq, (long long)r,
                                                helix_phase_name((helix_phase)ph), (long long)md.phase[ph].sent_bytes,
                                                (long long)md.phase[ph].recv_bytes, (long long)dp.phase[ph].sent_bytes,
                                                (long long)dp.phase[ph].recv_bytes);
                                }
                            CHECK(md.peak_bytes == dp.peak_bytes, "grid %lldx%lld rank %lld: arena %lld != %lld",
                                  (long long)c.groups, (long long)c.slices, (long long)r, (long long)md.peak_bytes,
                                  (long long)dp.peak_bytes);
                            checked++;
                        }
                    }
    CHECK(differ == 0, "%d of %d device programs move other bytes than the closed form", differ, checked);
    return test_summary();
}
