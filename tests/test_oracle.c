/* test_oracle.c — helix against an independent float64 NumPy MHA
 * (tests/oracle/mha.py writes the fixtures): first the reference itself,
 * then the grid in every mode that should reproduce the fixture. */
#include "check.h"
#include "helix.h"
#include "helix_io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *load(const char *dir, const char *name, int64_t want, int required)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    helix_array a;
    helix_err e = {{0}};
    if (helix_npy_read(path, &a, &e)) {
        if (required) CHECK(0, "%s", e.msg);
        return NULL;
    }
    CHECK(a.n_elems == want, "%s has %lld elements, expected %lld", path, (long long)a.n_elems, (long long)want);
    float *f = malloc(sizeof(float) * (size_t)a.n_elems);
    helix_to_f32(a.dtype, a.data, f, a.n_elems);
    helix_array_free(&a);
    return f;
}

static double rel_err(const float *y, const float *ref, int64_t n)
{
    double mx = 0, mr = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = fabs((double)y[k] - ref[k]);
        if (!(d <= mx)) mx = d;
        if (fabs(ref[k]) > mr) mr = fabs(ref[k]);
    }
    return mx / mr;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: test_oracle FIXTURE_DIR\n"); return 2; }
    char path[1400], name[256];
    snprintf(path, sizeof path, "%s/cases.txt", argv[1]);
    FILE *cf = fopen(path, "r");
    CHECK(cf != NULL, "cannot open %s (run tests/oracle/mha.py first)", path);
    if (!cf) return test_summary();
    int ncases = 0, npadded = 0;
    while (fscanf(cf, "%255s", name) == 1) {
        char dir[1300], mode[16], dt[8];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], name);
        snprintf(path, sizeof path, "%s/meta.txt", dir);
        FILE *mf = fopen(path, "r");
        long long n, m, h, d, B, L;
        int causal, out_proj, bias;
        int ok = mf && fscanf(mf, "%lld %lld %lld %lld %lld %lld %15s %d %d %d %7s", &n, &m, &h, &d, &B, &L, mode,
                              &causal, &out_proj, &bias, dt) == 11;
        if (mf) fclose(mf);
        CHECK(ok, "%s: bad meta.txt", name);
        if (!ok) continue;
        ncases++;
        const int64_t D = h * d, BL = B * L;
        const int sliced = !strcmp(mode, "sliced");
        float *x = load(dir, "x", BL * D, 1), *y = load(dir, "y", BL * D, 1);
        float *wq = load(dir, "wq", D * D, 1), *wk = load(dir, "wk", D * D, 1), *wv = load(dir, "wv", D * D, 1);
        float *wo = out_proj ? load(dir, "wo", D * D, 1) : NULL;
        float *bq = bias ? load(dir, "bq", D, 1) : NULL, *bk = bias ? load(dir, "bk", D, 1) : NULL;
        float *bv = bias ? load(dir, "bv", D, 1) : NULL, *bo = bias && out_proj ? load(dir, "bo", D, 1) : NULL;
        helix_weights w = {D, wq, wk, wv, wo, bq, bk, bv, bo};
        /* optional key padding lengths (stored as f32) */
        float *kvf = load(dir, "kv_len", B, 0);
        int64_t *kvp = kvf ? malloc(sizeof(int64_t) * (size_t)B) : NULL;
        for (int64_t b = 0; kvp && b < B; b++) kvp[b] = (int64_t)kvf[b];
        npadded += kvp != NULL;
        float *got = malloc(sizeof(float) * (size_t)BL * (size_t)D);
        helix_err e = {{0}};
        /* 1. the reference against NumPy */
        int64_t rh = sliced ? h * m : h;
        CHECK(helix_attention_ref(B, L, rh, D / rh, &w, x, causal, kvp, 0, got, &e) == HELIX_OK, "%s", e.msg);
        double er = rel_err(got, y, BL * D);
        CHECK(er <= 1e-6, "%s: reference vs NumPy float64: %.3g", name, er);
        printf("%-24s reference vs numpy: %.2e%s\n", name, er, kvp ? " (key padding)" : "");
        /* 2. the grid in f32 (and in f16 for f16 files) */
        helix_dtype types[2] = {HELIX_F32, HELIX_F16};
        int nt = !strcmp(dt, "f2") ? 2 : 1;
        for (int ti = 0; ti < nt; ti++)
            for (int algo = 0; algo < (sliced ? 1 : 2); algo++) {
                helix_config c = helix_config_default();
                c.heads = h; c.head_dim = d; c.groups = n; c.slices = m; c.batch = B; c.seq = L;
                c.mode = sliced ? HELIX_MODE_SLICED : HELIX_MODE_EXACT;
                c.exact_algo = algo ? HELIX_EXACT_SCORES : HELIX_EXACT_REGATHER;
                c.causal = causal; c.out_proj = out_proj; c.bias = bias; c.dtype = types[ti];
                c.kv_len = kvp;
                helix_plan p;
                CHECK(helix_plan_init(&c, &p, &e) == HELIX_OK, "%s", e.msg);
                void *out = malloc((size_t)(BL * D) * helix_dtype_size(c.dtype));
                CHECK(helix_grid_run(&p, &w, x, out, 0, NULL, &e) == HELIX_OK, "%s: %s", name, e.msg);
                helix_to_f32(c.dtype, out, got, BL * D);
                free(out);
                double eg = rel_err(got, y, BL * D), tol = ti ? 4e-3 : 2e-5;
                CHECK(eg <= tol, "%s %s %s: grid vs NumPy %.3g > %.1g", name, helix_dtype_name(c.dtype),
                      sliced ? "sliced" : algo ? "scores" : "regather", eg, tol);
                printf("%-24s grid %s/%s %s vs numpy: %.2e\n", name, sliced ? "sliced" : "exact",
                       sliced ? "-" : algo ? "scores" : "regather", helix_dtype_name(c.dtype), eg);
            }
        free(got); free(x); free(y); free(wq); free(wk); free(wv); free(wo);
        free(bq); free(bk); free(bv); free(bo); free(kvf); free(kvp);
    }
    fclose(cf);
    CHECK(ncases >= 5, "only %d fixture cases", ncases);
    CHECK(npadded >= 3, "only %d fixture cases with key padding", npadded);
    return test_summary();
}
