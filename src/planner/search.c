/* search.c — the planner's layout search: every legal layout of a model
 * on P devices (helix n x m sliced and exact, TP x PP), each with the
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

int helix_candidates(helix_candidate *cs, int max, const helix_model_config *mc, int64_t P)
{
    int n = 0;
    for (int64_t g = 1; g <= P && n + 2 < max; g++) {
        if (P % g) continue;
        for (int mode = 0; mode < 2; mode++) {
            helix_candidate *c = &cs[n];
            memset(c, 0, sizeof *c);
            c->lay.kind = HELIX_LAYOUT_HELIX; c->lay.groups = g; c->lay.slices = P / g;
            c->lay.mode = mode ? HELIX_MODE_EXACT : HELIX_MODE_SLICED; c->lay.microbatches = 1;
            if (mc->heads % g || mc->head_dim % (P / g)) continue;
            if (P / g == 1 && mode == 0) continue;             /* m = 1: sliced is exact, and = TP */
            if (P / g == 1) continue;                          /* helix P x 1 is tpP, listed below */
            n++;
        }
    }
    for (int64_t t = 1; t <= P && n < max; t++) {
        if (P % t) continue;
        helix_candidate *c = &cs[n];
        memset(c, 0, sizeof *c);
        c->lay.kind = HELIX_LAYOUT_TPPP; c->lay.tp = t; c->lay.pp = P / t; c->lay.microbatches = 1;
        if (mc->heads % t || mc->layers < P / t) continue;
        n++;
    }
    for (int k = 0; k < n; k++) helix_layout_name(&cs[k].lay, cs[k].name, sizeof cs[k].name);
    return n;
}

