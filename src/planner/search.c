/* search.c — the planner's layout search: every legal layout of a model
 * on P devices (helix n x m sliced and exact, TP x PP, sequence parallel
 * or not, as dpK replicas or not), each with the
 * micro-batch count that fits and runs fastest under the cost model, and
 * the order they rank in. */
#include "helix_model.h"

#include <stdio.h>
#include <string.h>

int helix_candidate_cmp(const void *a, const void *b)
{
    const helix_candidate *x = (const helix_candidate *)a, *y = (const helix_candidate *)b;
    int fx = x->ok && x->pr.fits, fy = y->ok && y->pr.fits;
    if (fx != fy) return fy - fx;
    if (x->ok != y->ok) return y->ok - x->ok;
    double tx = x->ok ? x->pr.tokens_per_s : 0, ty = y->ok ? y->pr.tokens_per_s : 0;
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* Plan and predict one layout, choosing the micro-batch count: the
 * fastest that fits, else the one needing the least memory. */
void helix_candidate_evaluate(helix_candidate *c, const helix_model_config *mc, int64_t P, const helix_hw *hw, int64_t fixed_mb)
{
    helix_err e = {{0}};
    c->ok = 0;
    int have = 0;
    helix_candidate best;
    memset(&best, 0, sizeof best);
    for (int64_t k = 1; k <= mc->batch; k++) {
        if (mc->batch % k || (fixed_mb && k != fixed_mb)) continue;
        helix_layout l = c->lay;
        l.microbatches = k;
        /* the program the planner prices is the one that runs on these nodes */
        l.ranks_per_node = hw->devices_per_node > 0 && hw->devices_per_node < P ? hw->devices_per_node : 0;
        helix_model_plan pl;
        if (helix_model_plan_init(mc, &l, P, &pl, &e)) { if (!have) snprintf(c->why, sizeof c->why, "invalid: %s", e.msg); continue; }
        helix_prediction pr;
        helix_model_predict(&pl, hw, &pr);
        int better = !have || (pr.fits && (!best.pr.fits || pr.tokens_per_s > best.pr.tokens_per_s)) ||
                     (!pr.fits && !best.pr.fits && pr.mem_bytes < best.pr.mem_bytes);
        if (better) { best.plan = pl; best.pr = pr; have = 1; }
    }
    if (have) { c->plan = best.plan; c->pr = best.pr; c->ok = 1; }
}

/* The layouts of one replica on P devices: helix n x m (sliced and exact)
 * and TP x PP, each also sequence parallel when its tensor group has 2 or
 * more devices; R replicas of each. */
static int replica_layouts(helix_candidate *cs, int max, const helix_model_config *mc, int64_t P, int64_t R)
{
    int n = 0;
    helix_layout base[128];
    int nb = 0;
    for (int64_t g = 1; g <= P && nb < 128; g++) {
        if (P % g || P / g == 1) continue;                     /* helix P x 1 is tpP, listed below */
        if (mc->heads % g || mc->head_dim % (P / g)) continue;
        for (int mode = 0; mode < 2 && nb < 128; mode++) {
            helix_layout l;
            memset(&l, 0, sizeof l);
            l.kind = HELIX_LAYOUT_HELIX; l.groups = g; l.slices = P / g;
            l.mode = mode ? HELIX_MODE_EXACT : HELIX_MODE_SLICED;
            base[nb++] = l;
        }
    }
    for (int64_t t = 1; t <= P && nb < 128; t++) {
        if (P % t || mc->heads % t || mc->layers < P / t) continue;
        helix_layout l;
        memset(&l, 0, sizeof l);
        l.kind = HELIX_LAYOUT_TPPP; l.tp = t; l.pp = P / t;
        base[nb++] = l;
    }
    for (int b = 0; b < nb; b++)
        for (int sp = 0; sp < 2 && n < max; sp++) {
            const int64_t T = base[b].kind == HELIX_LAYOUT_HELIX ? P : base[b].tp;
            if (sp && T < 2) continue;
            helix_candidate *c = &cs[n++];
            memset(c, 0, sizeof *c);
            c->lay = base[b];
            c->lay.microbatches = 1;
            c->lay.replicas = R;
            c->lay.seq_parallel = sp;
        }
    return n;
}

int helix_candidates(helix_candidate *cs, int max, const helix_model_config *mc, int64_t P)
{
    int n = 0;
    for (int64_t R = 1; R <= P && n < max; R++) {
        if (P % R || mc->batch % R) continue;
        n += replica_layouts(cs + n, max - n, mc, P / R, R);
    }
    for (int k = 0; k < n; k++) helix_layout_name(&cs[k].lay, cs[k].name, sizeof cs[k].name);
    return n;
}
