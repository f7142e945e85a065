/* test_backend.c — the executor on a backend whose memory the host cannot
 * address, the way a GPU's is: "far" memory is host memory moved to an
 * address the host faults on (a non-canonical x86-64 / out-of-range
 * address), and every operation moves its pointers back before running
 * the CPU kernels. So any place where the executor or the in-process
 * engine touches device memory directly crashes the test, every copy is
 * checked to name the right direction, and the results must be bitwise
 * the CPU backend's: whole layers in every layout kind (helix sliced /
 * exact / scores, TP x PP, sequence parallel, replicas, X from rank 0),
 * one attention layer (helix_grid_run_on), and a run refused on an
 * engine that cannot reach the memory. What the GPU backend adds on top
 * (its kernels) is tested by test_cuda on a GPU. */
#include "check.h"
#include "helix_backend.h"
#include "helix_comm.h"
#include "helix_model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fs_sentinel;

#define FAR ((uintptr_t)1 << 62)   /* the host faults on p + FAR */

typedef struct {
    helix_backend pub;
    helix_backend *cpu;
    int wrong_kind;   /* copies whose direction does not match their pointers */
    int64_t h2d, d2h, d2d;
} far_be;

static int is_far(const void *p) { return ((uintptr_t)p & FAR) != 0; }
static void *near_(const void *p) { return p ? (void *)((uintptr_t)p & ~FAR) : NULL; }
#define NEAR(p) near_(p)
static far_be *F(helix_backend *be) { return (far_be *)be->self; }

static helix_status f_alloc(helix_backend *be, int64_t n, void **out)
{
    helix_status st = F(be)->cpu->ops->alloc(F(be)->cpu, n, out);
    if (!st && *out) *out = (void *)((uintptr_t)*out | FAR);
    return st;
}
static void f_free(helix_backend *be, void *p) { F(be)->cpu->ops->free(F(be)->cpu, NEAR(p)); }
static helix_status f_memset(helix_backend *be, void *p, int v, int64_t n)
{
    if (n > 0 && !is_far(p)) F(be)->wrong_kind++;
    return F(be)->cpu->ops->memset(F(be)->cpu, NEAR(p), v, n);
}
static void kind_check(far_be *f, const void *dst, const void *src, helix_copy_kind k)
{
    const int df = is_far(dst), sf = is_far(src);
    const int ok = k == HELIX_COPY_H2D ? df && !sf : k == HELIX_COPY_D2H ? !df && sf : df && sf;
    if (!ok) f->wrong_kind++;
    if (k == HELIX_COPY_H2D) f->h2d++;
    else if (k == HELIX_COPY_D2H) f->d2h++;
    else f->d2d++;
}
static helix_status f_copy(helix_backend *be, void *dst, const void *src, int64_t n, helix_copy_kind k)
{
    if (n > 0) kind_check(F(be), dst, src, k);
    return F(be)->cpu->ops->copy(F(be)->cpu, NEAR(dst), NEAR(src), n, k);
}
static helix_status f_copy2d(helix_backend *be, void *dst, int64_t dp, const void *src, int64_t sp, int64_t w, int64_t rows,
                             helix_copy_kind k)
{
    if (rows > 0 && w > 0) kind_check(F(be), dst, src, k);
    return F(be)->cpu->ops->copy2d(F(be)->cpu, NEAR(dst), dp, NEAR(src), sp, w, rows, k);
}
static helix_status f_upload(helix_backend *be, void *dst, helix_dtype t, const float *src, int64_t n)
{
    kind_check(F(be), dst, src, HELIX_COPY_H2D);
    return F(be)->cpu->ops->upload_f32(F(be)->cpu, NEAR(dst), t, src, n);
}
static helix_status f_download(helix_backend *be, float *dst, const void *src, helix_dtype t, int64_t n)
{
    kind_check(F(be), dst, src, HELIX_COPY_D2H);
    return F(be)->cpu->ops->download_f32(F(be)->cpu, dst, NEAR(src), t, n);
}
static helix_status f_gemm(helix_backend *be, const helix_gemm_args *a, void *work)
{
    helix_gemm_args n = *a;
    n.A = NEAR(a->A); n.B = NEAR(a->B); n.bias = NEAR(a->bias); n.C = NEAR(a->C);
    return F(be)->cpu->ops->gemm(F(be)->cpu, &n, NEAR(work));
}
static int64_t f_gemm_ws(helix_backend *be, const helix_gemm_args *a) { return F(be)->cpu->ops->gemm_workspace_bytes(F(be)->cpu, a); }
static helix_status f_attention(helix_backend *be, const helix_attn_args *a, void *work)
{
    helix_attn_args n = *a;
    n.q = NEAR(a->q); n.k = NEAR(a->k); n.v = NEAR(a->v); n.o = NEAR(a->o);   /* kv_len: host */
    return F(be)->cpu->ops->attention(F(be)->cpu, &n, NEAR(work));
}
static int64_t f_attention_ws(helix_backend *be, int64_t w) { return F(be)->cpu->ops->attention_workspace_bytes(F(be)->cpu, w); }
static helix_scores_args near_scores(const helix_scores_args *a)
{
    helix_scores_args n = *a;
    n.q = NEAR(a->q); n.k = NEAR(a->k); n.v = NEAR(a->v); n.o = NEAR(a->o); n.sc = (float *)NEAR(a->sc);
    return n;
}
static helix_status f_scores(helix_backend *be, const helix_scores_args *a, void *work)
{
    const helix_scores_args n = near_scores(a);
    return F(be)->cpu->ops->partial_scores(F(be)->cpu, &n, NEAR(work));
}
static helix_status f_softmax_v(helix_backend *be, const helix_scores_args *a, void *work)
{
    const helix_scores_args n = near_scores(a);
    return F(be)->cpu->ops->softmax_v(F(be)->cpu, &n, NEAR(work));
}
static helix_status f_layernorm(helix_backend *be, helix_dtype t, const void *x, const void *g, const void *b, void *y,
                                int64_t rows, int64_t D, void *work)
{
    return F(be)->cpu->ops->layernorm(F(be)->cpu, t, NEAR(x), NEAR(g), NEAR(b), NEAR(y), rows, D, NEAR(work));
}
static int64_t f_norm_ws(helix_backend *be, int64_t D) { return F(be)->cpu->ops->norm_workspace_bytes(F(be)->cpu, D); }
static helix_status f_activate(helix_backend *be, helix_act act, helix_dtype t, void *h, int64_t rows, int64_t cols, void *work)
{
    return F(be)->cpu->ops->activate(F(be)->cpu, act, t, NEAR(h), rows, cols, NEAR(work));
}
static helix_status f_residual(helix_backend *be, helix_dtype t, void *a, const void *p, int64_t rows, int64_t D, void *work)
{
    return F(be)->cpu->ops->residual_add(F(be)->cpu, t, NEAR(a), NEAR(p), rows, D, NEAR(work));
}
static double f_now(helix_backend *be)
{
    (void)be;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* the row-order f32 sum the host loop of the engines computes */
static helix_status f_sum_rows(helix_backend *be, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    if (!is_far(rows)) F(be)->wrong_kind++;
    char *r = (char *)NEAR(rows);
    const size_t es = helix_dtype_size(t);
    float *acc = calloc((size_t)(n ? n : 1), sizeof *acc), *tmp = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!acc || !tmp) { free(acc); free(tmp); return HELIX_ERR_NOMEM; }
    for (int64_t k = 0; k < n_rows; k++) {
        helix_to_f32(t, r + (size_t)(k * n) * es, tmp, n);
        for (int64_t x = 0; x < n; x++) acc[x] += tmp[x];
    }
    helix_from_f32(t, acc, r, n);
    free(acc); free(tmp);
    return HELIX_OK;
}

static const helix_backend_ops far_ops = {
    .name = "far (test)", .host_memory = 0,
    .alloc = f_alloc, .free = f_free, .memset = f_memset, .copy = f_copy, .copy2d = f_copy2d,
    .upload_f32 = f_upload, .download_f32 = f_download, .gemm = f_gemm, .gemm_workspace_bytes = f_gemm_ws,
    .attention = f_attention, .attention_workspace_bytes = f_attention_ws, .partial_scores = f_scores,
    .softmax_v = f_softmax_v, .layernorm = f_layernorm, .norm_workspace_bytes = f_norm_ws, .activate = f_activate,
    .residual_add = f_residual, .now = f_now, .sum_rows = f_sum_rows,
};

typedef struct {
    far_be *dev;
    helix_backend **be;
    int P;
} far_set;

static void far_set_new(far_set *s, int P)
{
    s->P = P;
    s->dev = calloc((size_t)P, sizeof *s->dev);
    s->be = calloc((size_t)P, sizeof *s->be);
    for (int r = 0; r < P; r++) {
        s->dev[r].pub.ops = &far_ops;
        s->dev[r].pub.self = &s->dev[r];
        s->dev[r].cpu = helix_backend_cpu();
        s->be[r] = &s->dev[r].pub;
    }
}
static int far_wrong(const far_set *s)
{
    int w = 0;
    for (int r = 0; r < s->P; r++) w += s->dev[r].wrong_kind;
    return w;
}
static int64_t far_h2d(const far_set *s)
{
    int64_t n = 0;
    for (int r = 0; r < s->P; r++) n += s->dev[r].h2d;
    return n;
}
static void far_set_free(far_set *s) { free(s->dev); free(s->be); }

static void layers(helix_model_config mc, const char *layout, int64_t P, int64_t rpn, int from_root)
{
    helix_layout lay;
    helix_model_plan p;
    helix_err e = {{0}};
    char name[128];
    snprintf(name, sizeof name, "%s P=%lld %s%s%s nodes of %lld%s", layout, (long long)P, helix_dtype_name(mc.dtype),
             mc.causal ? " causal" : "", mc.bias ? " bias" : "", (long long)(rpn ? rpn : P), from_root ? " X from rank 0" : "");
    CHECK(helix_layout_parse(layout, &lay, &e) == HELIX_OK, "%s: %s", name, e.msg);
    lay.ranks_per_node = rpn;
    lay.input_from_root = from_root;
    if (helix_model_plan_init(&mc, &lay, P, &p, &e)) { CHECK(0, "%s: plan: %s", name, e.msg); return; }
    helix_model_weights w;
    CHECK(helix_model_weights_random(&mc, 11, &w, &e) == HELIX_OK, "%s", e.msg);
    const int64_t n = mc.batch * mc.seq * p.D;
    float *x = malloc(sizeof(float) * (size_t)n), *y0 = calloc((size_t)n, 4), *y1 = calloc((size_t)n, 4);
    uint64_t s = 5;
    for (int64_t k = 0; k < n; k++) { s = s * 6364136223846793005ull + 1442695040888963407ull; x[k] = (float)((s >> 40) & 0xffffff) / 8388608.0f - 1.0f; }
    helix_model_stats *st0 = calloc((size_t)P, sizeof *st0), *st1 = calloc((size_t)P, sizeof *st1);
    far_set fs;
    far_set_new(&fs, (int)P);
    helix_status r0 = helix_model_grid_run(&p, &w, x, y0, 2, st0, &e);
    CHECK(r0 == HELIX_OK, "%s: cpu run: %s", name, e.msg);
    helix_status r1 = helix_model_grid_run_on(&p, &w, x, y1, 2, fs.be, st1, &e);
    CHECK(r1 == HELIX_OK, "%s: far run: %s", name, e.msg);
    if (!r0 && !r1) {
        CHECK(memcmp(y0, y1, sizeof(float) * (size_t)n) == 0, "%s: output differs from the CPU backend's", name);
        int bytes = 1;
        for (int64_t r = 0; r < P; r++)
            for (int ph = 0; ph < HELIX_NPHASES; ph++) bytes &= helix_traffic_eq(&st0[r].phase[ph], &st1[r].phase[ph]);
        CHECK(bytes, "%s: counted bytes differ from the CPU backend's", name);
        CHECK(far_wrong(&fs) == 0, "%s: %d copies or operations named the wrong memory", name, far_wrong(&fs));
        CHECK(far_h2d(&fs) >= P, "%s: %lld host-to-device copies for %lld devices (weights must be staged)", name,
              (long long)far_h2d(&fs), (long long)P);
        double ymax = 0;
        for (int64_t k = 0; k < n; k++) ymax = fmax(ymax, fabs(y1[k]));
        CHECK(ymax > 0 && isfinite(ymax), "%s: output all zeros or not finite", name);
    }
    far_set_free(&fs);
    free(st0); free(st1); free(x); free(y0); free(y1);
    helix_model_weights_free(&w);
}

/* one attention layer (helix run's path), Y as stored */
static void attention(int64_t n, int64_t m, helix_mode mode, helix_exact_algo algo, helix_dtype t, int causal)
{
    helix_config c = helix_config_default();
    c.groups = n; c.slices = m; c.mode = mode; c.exact_algo = algo; c.dtype = t; c.causal = causal;
    c.heads = 8; c.head_dim = 16; c.batch = 2; c.seq = 24; c.bias = 1; c.out_proj = 1;
    helix_plan plan;
    helix_err e = {{0}};
    char name[96];
    snprintf(name, sizeof name, "attention %lldx%lld %s%s %s%s", (long long)n, (long long)m, helix_mode_name(mode),
             mode == HELIX_MODE_EXACT ? helix_exact_algo_name(algo) : "", helix_dtype_name(t), causal ? " causal" : "");
    if (helix_plan_init(&c, &plan, &e)) { CHECK(0, "%s: plan: %s", name, e.msg); return; }
    const int64_t D = plan.D, nx = c.batch * c.seq * D, ybytes = nx * (int64_t)helix_dtype_size(t);
    float *wt = malloc(sizeof(float) * (size_t)(4 * D * D + 4 * D)), *x = malloc(sizeof(float) * (size_t)nx);
    for (int64_t k = 0; k < 4 * D * D + 4 * D; k++) wt[k] = (float)(0.2 * sin(0.71 * (double)k + 0.3));
    for (int64_t k = 0; k < nx; k++) x[k] = (float)sin(0.37 * (double)k);
    float *bb = wt + 4 * D * D;
    helix_weights w = {D, wt, wt + D * D, wt + 2 * D * D, wt + 3 * D * D, bb, bb + D, bb + 2 * D, bb + 3 * D};
    char *y0 = calloc(1, (size_t)ybytes), *y1 = calloc(1, (size_t)ybytes);
    far_set fs;
    far_set_new(&fs, (int)plan.P);
    helix_status r0 = helix_grid_run(&plan, &w, x, y0, 2, NULL, &e);
    CHECK(r0 == HELIX_OK, "%s: cpu: %s", name, e.msg);
    helix_status r1 = helix_grid_run_on(&plan, &w, x, y1, 2, fs.be, NULL, &e);
    CHECK(r1 == HELIX_OK, "%s: far: %s", name, e.msg);
    if (!r0 && !r1) {
        CHECK(memcmp(y0, y1, (size_t)ybytes) == 0, "%s: output differs from the CPU backend's", name);
        CHECK(far_wrong(&fs) == 0, "%s: %d copies named the wrong memory", name, far_wrong(&fs));
    }
    far_set_free(&fs);
    free(x); free(y0); free(y1); free(wt);
}

int main(void)
{
    helix_model_config mc = helix_model_config_default();
    mc.heads = 4; mc.head_dim = 8; mc.ffn = 32; mc.layers = 2; mc.batch = 4; mc.seq = 12;
    const char *p4[] = {"helix2x2-sliced", "helix2x2-exact", "helix2x2-exact-scores", "tp4", "tp2pp2", "tp2pp2-sp",
                        "helix2x2-exact-sp", "dp2-tp2", "dp4"};
    const helix_dtype dts[] = {HELIX_F32, HELIX_BF16, HELIX_F16};
    for (size_t k = 0; k < sizeof p4 / sizeof p4[0]; k++) {
        helix_model_config c = mc;
        c.dtype = dts[k % 3];
        c.causal = (int)(k % 2);
        c.bias = k % 3 != 1;
        layers(c, p4[k], 4, 0, 0);
    }
    layers(mc, "tp2pp2", 4, 2, 1);
    layers(mc, "helix2x4-exact", 8, 4, 0);
    attention(2, 2, HELIX_MODE_SLICED, HELIX_EXACT_REGATHER, HELIX_F32, 0);
    attention(2, 2, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_BF16, 1);
    attention(2, 2, HELIX_MODE_EXACT, HELIX_EXACT_SCORES, HELIX_F16, 0);
    attention(1, 4, HELIX_MODE_EXACT, HELIX_EXACT_REGATHER, HELIX_F32, 1);
    {
        /* a far backend over an engine that cannot reach its memory (as
         * MPI's): refused, no crash */
        helix_config c = helix_config_default();
        c.groups = 1; c.slices = 1; c.heads = 2; c.head_dim = 8; c.batch = 1; c.seq = 4;
        helix_plan plan;
        helix_err e = {{0}};
        CHECK(helix_plan_init(&c, &plan, &e) == HELIX_OK, "plan: %s", e.msg);
        float wt[4 * 16 * 16 + 4 * 16] = {0};
        helix_weights w = {plan.D, wt, wt + 256, wt + 512, wt + 768, wt + 1024, wt + 1040, wt + 1056, wt + 1072};
        helix_inproc_world_t *world = NULL;
        helix_comm_t *comm = NULL;
        CHECK(helix_inproc_world_new(1, 1, &world) == HELIX_OK && helix_inproc_comm(world, 0, NULL, &comm) == HELIX_OK,
              "world");
        far_set fs;
        far_set_new(&fs, 1);
        float x[4 * 16] = {0};
        char y[4 * 16 * 4];
        helix_status st = helix_device_run_on(&plan, comm, fs.be[0], &w, x, y, NULL, &e);
        CHECK(st == HELIX_ERR_UNSUPPORTED && strstr(e.msg, "cannot reach"), "host-memory engine with far memory: got %d '%s'",
              (int)st, e.msg);
        far_set_free(&fs);
        helix_comm_free(comm);
        helix_inproc_rank_done(world);
        helix_inproc_world_free(world);
    }
    {
        /* the GPU backend where there is no GPU (or no module): refused with the reason, nothing made */
        helix_backend *g = (helix_backend *)&fs_sentinel;
        helix_err e = {{0}};
        helix_status st = helix_backend_cuda_new(0, &g, &e);
        if (access("/dev/nvidia0", F_OK) != 0)
            CHECK(st != HELIX_OK && g == NULL && e.msg[0], "no GPU: helix_backend_cuda_new gave %d '%s'", (int)st, e.msg);
        else if (st == HELIX_OK)
            helix_backend_free(g);
        helix_backend_free(helix_backend_cpu());   /* the shared one: left alone */
        CHECK(helix_backend_cpu()->ops->alloc != NULL, "the CPU backend survives helix_backend_free");
    }
    return test_summary();
}

