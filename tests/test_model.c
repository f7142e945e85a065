/* test_model.c — whole layers in both layouts on the in-process grid
 * against the double-precision reference model, at P = 4 and P = 16:
 * helix n x m (sliced vs the h*m-head reference, exact by regather and by
 * score reduce vs the h-head reference), TP x PP with micro-batches, pure
 * TP, pure PP; f32/bf16/f16, causal, biases. Every rank's counted bytes
 * must equal the plan's (its program's) phase by phase, the program's
 * equal a closed form written here, its arena the plan's peak; bad
 * layouts are refused with a message. */
#include "check.h"
#include "helix_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The traffic of one device in closed form, written from the layouts'
 * definitions (helix_model.h), independently of the program that src/plan
 * emits and the executor runs: the plan's prediction must equal it. */
static void add(helix_traffic *t, helix_traffic x, int64_t times)
{
    t->sent_bytes += x.sent_bytes * times;
    t->recv_bytes += x.recv_bytes * times;
}

/* rows b..e of [n] split over T: this rank's count */
static int64_t my_rows(int64_t n, int64_t T, int64_t r)
{
    int64_t b, e;
    helix_split_range(n, T, r, &b, &e);
    return e - b;
}

static void closed_form(const helix_model_plan *p, const helix_model_device_plan *o, helix_traffic ph[HELIX_NPHASES])
{
    const helix_model_config *c = &p->model;
    const int64_t D = p->D, T = p->T, S = p->S, R = p->R, es = (int64_t)helix_dtype_size(c->dtype), k = p->mb;
    const int64_t BmL = p->Bm * c->seq, nl = o->layer_end - o->layer_begin;
    const int sp = p->layout.seq_parallel, home = o->stage == 0 && o->trank == 0, root = o->rank == 0;
    memset(ph, 0, sizeof(helix_traffic) * HELIX_NPHASES);
    /* one replica's X (all its micro-batches), and one row of it */
    const int64_t X = BmL * k * D * es, row = D * es, mine = my_rows(BmL, T, o->trank);
    /* loading: replicated X costs nothing; from rank 0, each replica's
     * share to its home (rank 0 of the replica), then over the first
     * stage's tensor group */
    if (p->layout.input_from_root && o->stage == 0) {
        if (root) add(&ph[HELIX_PHASE_INPUT], (helix_traffic){X * (R - 1), 0, 0, 0}, 1);
        else if (home) add(&ph[HELIX_PHASE_INPUT], (helix_traffic){0, X, 0, 0}, 1);
        if (home) add(&ph[HELIX_PHASE_INPUT], (helix_traffic){X * (T - 1), 0, 0, 0}, 1);
        else add(&ph[HELIX_PHASE_INPUT], (helix_traffic){0, X, 0, 0}, 1);
    }
    /* each layer, each micro-batch: the attention exchange (helix_plan_device's
     * closed form), then two all-reduces of [Bm, L, D] over the tensor group,
     * or (sequence parallel) two reduce-scatters and two all-gathers by rows:
     * each sends the others' rows once and receives its own from each */
    const int64_t reps = nl * k;
    add(&ph[HELIX_PHASE_REGATHER], o->attn.phase[HELIX_PHASE_REGATHER], reps);
    add(&ph[HELIX_PHASE_ATTENTION], o->attn.phase[HELIX_PHASE_ATTENTION], reps);
    add(&ph[HELIX_PHASE_RETURN], o->attn.phase[HELIX_PHASE_RETURN], reps);
    const helix_comm_topo group = helix_comm_topo_one((int)T, (int)o->trank);
    helix_traffic ar = helix_traffic_allreduce(&group, BmL * D, (size_t)es);
    if (sp) {
        const int64_t rs_ag = (BmL - mine) * row + mine * row * (T - 1);
        ar = (helix_traffic){rs_ag, rs_ag, 0, 0};
    }
    add(&ph[HELIX_PHASE_REDUCE], ar, reps);
    add(&ph[HELIX_PHASE_MLP_REDUCE], ar, reps);
    /* pipeline: every micro-batch crosses each stage boundary once, tensor
     * rank r's 1/T slice to tensor rank r, then the next stage all-gathers
     * the slices (sequence parallel: its rows, nothing to gather) */
    int64_t sb, se;
    helix_split_range(BmL * D, T, o->trank, &sb, &se);
    const int64_t slice = (sp ? mine * row : (se - sb) * es) * k;   /* over all micro-batches */
    if (o->stage > 0) {
        ph[HELIX_PHASE_P2P].recv_bytes = sp ? slice : slice + (X - slice);   /* mine, then the others' */
        ph[HELIX_PHASE_P2P].sent_bytes = sp ? 0 : slice * (T - 1);
    }
    if (o->stage < S - 1) ph[HELIX_PHASE_P2P].sent_bytes += slice;
    /* Y home: sequence parallel, the last stage gathers its rows on tensor
     * rank 0; pipelines, that one sends it to the replica's home; replicas,
     * each home sends it to rank 0 */
    helix_traffic *y = &ph[HELIX_PHASE_OUTPUT];
    if (sp && o->stage == S - 1) {
        if (o->trank == 0) y->recv_bytes += X - slice;
        else y->sent_bytes += slice;
    }
    if (S > 1 && o->stage == S - 1 && o->trank == 0) y->sent_bytes += X;
    if (S > 1 && home) y->recv_bytes += X;
    if (R > 1 && home && !root) y->sent_bytes += X;
    if (R > 1 && root) y->recv_bytes += X * (R - 1);
}

static double tol(helix_dtype t) { return t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 3e-2; }

/* layout on P devices, nodes of rpn consecutive ranks (0: one node; the
 * closed form above is the flat one, so it is compared only then), X
 * from rank 0 or replicated */
static void one_in(helix_model_config mc, const char *layout, int64_t P, int64_t mb, int64_t rpn, int from_root)
{
    helix_layout lay;
    helix_model_plan p;
    helix_err e = {{0}};
    char name[96];
    snprintf(name, sizeof name, "%s P=%lld mb=%lld %s%s%s%s L=%lld nodes of %lld%s", layout, (long long)P, (long long)mb,
             helix_dtype_name(mc.dtype), mc.causal ? " causal" : "", mc.bias ? " bias" : "",
             mc.norm == HELIX_NORM_POST ? " post-LN" : "", (long long)mc.seq, (long long)(rpn ? rpn : P),
             from_root ? " X from rank 0" : "");
    CHECK(helix_layout_parse(layout, &lay, &e) == HELIX_OK, "%s: %s", name, e.msg);
    lay.microbatches = mb;
    lay.ranks_per_node = rpn;
    lay.input_from_root = from_root;
    if (helix_model_plan_init(&mc, &lay, P, &p, &e)) { CHECK(0, "%s: plan: %s", name, e.msg); return; }
    helix_model_weights w;
    CHECK(helix_model_weights_random(&mc, 7, &w, &e) == HELIX_OK, "%s", e.msg);
    const int64_t BL = mc.batch * mc.seq, D = p.D;
    float *x = malloc(sizeof(float) * (size_t)(BL * D)), *y = calloc((size_t)(BL * D), 4), *ref = malloc(sizeof(float) * (size_t)(BL * D));
    uint64_t s = 99;
    for (int64_t k = 0; k < BL * D; k++) { s = s * 6364136223846793005ull + 1442695040888963407ull; x[k] = (float)((s >> 40) & 0xffffff) / 8388608.0f - 1.0f; }
    int sliced = lay.kind == HELIX_LAYOUT_HELIX && lay.mode == HELIX_MODE_SLICED;
    int64_t m = sliced ? lay.slices : 1;
    CHECK(helix_model_ref(&mc, mc.heads * m, mc.head_dim / m, &w, x, ref, &e) == HELIX_OK, "%s: ref: %s", name, e.msg);
    helix_model_stats *st = calloc((size_t)P, sizeof *st);
    helix_status rs = helix_model_grid_run(&p, &w, x, y, 2, st, &e);
    CHECK(rs == HELIX_OK, "%s: run: %s", name, e.msg);
    if (rs == HELIX_OK) {
        double num = 0, den = 0;
        for (int64_t k = 0; k < BL * D; k++) {
            double dd = fabs((double)y[k] - ref[k]);
            if (!(dd <= num)) num = dd;               /* NaN propagates */
            if (fabs(ref[k]) > den) den = fabs(ref[k]);
        }
        double rel = num / den;
        CHECK(rel <= tol(mc.dtype), "%s: max_rel_err %.3g > %.3g", name, rel, tol(mc.dtype));
        int bytes_ok = 1, arena_ok = 1;
        int64_t inter = 0;
        for (int64_t r = 0; r < P; r++) {
            helix_model_device_plan dp;
            helix_model_plan_device(&p, r, &dp);
            for (int ph = 0; ph < HELIX_NPHASES; ph++)
                if (!helix_traffic_eq(&st[r].phase[ph], &dp.phase[ph])) {
                    if (bytes_ok) fprintf(stderr, "  %s rank %lld %s: counted %lld/%lld, plan %lld/%lld\n", name, (long long)r,
                                          helix_phase_name((helix_phase)ph), (long long)st[r].phase[ph].sent_bytes,
                                          (long long)st[r].phase[ph].recv_bytes, (long long)dp.phase[ph].sent_bytes,
                                          (long long)dp.phase[ph].recv_bytes);
                    bytes_ok = 0;
                }
            arena_ok &= st[r].arena_bytes == dp.peak_bytes;
            if (rpn) { inter += dp.phase[HELIX_PHASE_MLP_REDUCE].inter_sent_bytes; continue; }
            helix_traffic cf[HELIX_NPHASES];
            closed_form(&p, &dp, cf);
            int same = 1;
            for (int ph = 0; ph < HELIX_NPHASES; ph++)
                same &= cf[ph].sent_bytes == dp.phase[ph].sent_bytes && cf[ph].recv_bytes == dp.phase[ph].recv_bytes;
            CHECK(same, "%s rank %lld: the program's traffic differs from the closed form", name, (long long)r);
        }
        CHECK(bytes_ok, "%s: counted bytes differ from the plan", name);
        if (rpn && rpn < P && p.T > rpn) CHECK(inter > 0, "%s: no all-reduce bytes between nodes", name);
        CHECK(arena_ok, "%s: arena differs from the plan", name);
    }
    free(st); free(x); free(y); free(ref);
    helix_model_weights_free(&w);
}

static void one_on(helix_model_config mc, const char *layout, int64_t P, int64_t mb, int64_t rpn)
{
    one_in(mc, layout, P, mb, rpn, 0);
}
static void one(helix_model_config mc, const char *layout, int64_t P, int64_t mb) { one_on(mc, layout, P, mb, 0); }

static void refused(helix_model_config mc, const char *layout, int64_t P, int64_t mb, const char *needle)
{
    helix_layout lay;
    helix_model_plan p;
    helix_err e = {{0}};
    helix_status st = helix_layout_parse(layout, &lay, &e);
    if (st == HELIX_OK) {
        lay.microbatches = mb;
        st = helix_model_plan_init(&mc, &lay, P, &p, &e);
    }
    CHECK(st == HELIX_ERR_INVALID && strstr(e.msg, needle), "%s P=%lld: want an error about '%s', got %d '%s'",
          layout, (long long)P, needle, (int)st, e.msg);
}

int main(void)
{
    helix_model_config mc = helix_model_config_default();
    mc.heads = 4; mc.head_dim = 8; mc.ffn = 64; mc.layers = 4; mc.batch = 2; mc.seq = 20;
    const char *p4[] = {"helix2x2-sliced", "helix2x2-exact", "helix2x2-exact-scores", "helix1x4-exact",
                        "helix4x1-sliced", "tp4", "tp2pp2", "pp4", "tp1pp4"};
    const helix_dtype dts[] = {HELIX_F32, HELIX_BF16, HELIX_F16};
    for (size_t k = 0; k < sizeof p4 / sizeof p4[0]; k++)
        for (int di = 0; di < 3; di++) {
            helix_model_config c = mc;
            c.dtype = dts[di];
            c.causal = (int)(k % 2);
            c.bias = di != 1;
            one(c, p4[k], 4, 1);
        }
    one(mc, "tp2pp2", 4, 2);
    one(mc, "pp4", 4, 2);
    one(mc, "helix2x2-exact", 4, 2);

    helix_model_config m16 = mc;
    m16.heads = 16; m16.head_dim = 8; m16.ffn = 128; m16.layers = 4; m16.seq = 16; m16.bias = 1;
    const char *p16[] = {"helix4x4-sliced", "helix4x4-exact", "helix2x8-exact", "helix4x4-exact-scores",
                         "tp8pp2", "tp16", "tp4pp4"};
    for (size_t k = 0; k < sizeof p16 / sizeof p16[0]; k++) one(m16, p16[k], 16, k >= 4 ? 2 : 1);
    m16.causal = 1; m16.dtype = HELIX_BF16;
    one(m16, "helix4x4-exact", 16, 1);
    one(m16, "tp8pp2", 16, 2);
    /* two nodes of 8 (hierarchical where a group spans both), and uneven nodes of 5 (flat) */
    for (size_t k = 0; k < sizeof p16 / sizeof p16[0]; k++) one_on(m16, p16[k], 16, k >= 4 ? 2 : 1, 8);
    one_on(m16, "helix4x4-exact", 16, 1, 5);
    one_on(m16, "tp8pp2", 16, 2, 4);

    /* sequence parallel and data parallel: rows that do not split evenly
     * (B*L = 2*19 over 4, over 8), post-LN, X from rank 0 */
    helix_model_config sp = m16;
    sp.seq = 19; sp.causal = 0; sp.dtype = HELIX_F32;
    const char *psp[] = {"tp8pp2-sp", "dp2-tp8", "dp2-tp4pp2-sp", "helix4x4-exact-sp", "helix4x4-sliced-sp",
                         "dp2-helix2x4-exact-scores", "dp4-tp2pp2", "dp16", "tp16-sp"};
    sp.batch = 16;
    for (size_t k = 0; k < sizeof psp / sizeof psp[0]; k++) {
        helix_model_config c = sp;
        c.norm = k % 2 ? HELIX_NORM_POST : HELIX_NORM_PRE;
        c.dtype = k % 3 == 2 ? HELIX_BF16 : HELIX_F32;
        c.causal = k % 4 == 1;
        const int pipe = strstr(psp[k], "pp2") != NULL;
        one_in(c, psp[k], 16, pipe ? 2 : 1, 0, (int)(k % 2));
        one_in(c, psp[k], 16, pipe ? 4 : 1, 8, (int)(k % 2 == 0));
    }
    sp.batch = 2;
    one(sp, "tp4-sp", 4, 1);
    one(sp, "tp2pp2-sp", 4, 2);
    one_in(sp, "dp2-tp2", 4, 1, 0, 1);
    refused(mc, "tp1-sp", 1, 1, "sequence parallel (-sp) needs a tensor group of 2");
    refused(mc, "dp3-tp2", 6, 1, "not divisible by the 3 replicas");
    refused(mc, "dp2-tp4", 4, 1, "needs replicas*t*p = 8 devices");
    refused(mc, "dp2-tp2pp2", 8, 2, "of a replica is not divisible by micro-batches=2");
    refused(mc, "dp0-tp2", 4, 1, "dpK needs K >= 1");
    refused(mc, "helix2x2-exact", 8, 1, "needs n*m = 4 devices");
    refused(mc, "tp8", 8, 1, "not divisible by tensor parallel");
    refused(mc, "tp2pp2", 4, 3, "not divisible by micro-batches");
    refused(mc, "pp8", 8, 1, "cannot fill 8 pipeline stages");
    refused(mc, "helix1x16-exact", 16, 1, "not divisible by slices");
    helix_model_config odd = mc;
    odd.ffn = 66;
    refused(odd, "tp4", 4, 1, "MLP width F=66");
    refused(mc, "helix2x2", 4, 1, "-sliced, -exact");
    refused(mc, "ring4", 4, 1, "unknown layout");
    return test_summary();
}
