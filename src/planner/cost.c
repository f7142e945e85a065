/* cost.c — the planner's cost model. Everything it counts comes from the
 * model plan (exact bytes per phase, exact arena sizes); the machine comes
 * from a helix_hw. Formulas, per device d = (stage s, tensor rank r), for
 * one micro-batch through one of its layers (Bm sequences):
 *
 *   W_gemm = 2*Bm*L*D*(3*cols + cols) + 2*Bm*L*D*fc*2    QKV, W_O, FC1, FC2
 *   W_attn = 4*Bm*pairs*D / T                             QK^T and PV, its share
 *            (pairs = L^2, or L(L+1)/2 when causal)
 *   E      = es*Bm*L*(12*D*u + 2*fc)                      LN x2, residual x2, activation
 *            (u = 1, sequence parallel: the device's share of the rows)
 *            (+ Bm*L*fc / gelu_rate for GELU and GELU-tanh when the
 *            machine gives one: erf/tanh are not free on a CPU; ReLU is
 *            memory-bound only). Pre- and post-LN cost the same.
 *   t_comp = sum over the GEMMs of W/(F*e_g(s)) + W_attn/(F*e_a(w)) + E/mem_bw
 *            e_g(s) = eff_gemm*s/(s + gemm_half) (or the file's table by s), s = the GEMM's smallest
 *            dimension; e_a(w) = eff_attention*w/(w + attention_half) (exact by
 *            score reduce: eff_scores where the file gives it),
 *            w = the attention width (small shapes run below peak), or
 *            the hardware file's table by width (eff_attention_wN)
 *
 *   each collective c: t_c = k_c*alpha + max(intra_c/intra_bw, inter_c/inter_bw)   (alpha-beta)
 *     k_c: messages, counted from the device's program
 *     (helix_model_device_plan.messages; flat all-reduce over T: 2(T-1),
 *     hierarchical over K nodes of G: 2(G-1) + 2(K-1); regather: 3(m-1),
 *     return m-1; score reduce: 2(m-1) per block of 64 queries and batch
 *     row; broadcast (loading only): the bytes the plan books; p2p: the
 *     slice to the next stage and, middle stages, the all-gather of the
 *     slices received; the last stage's all-gather is not charged).
 *     Bytes: the program's, per phase and per link class (inside a node /
 *     between nodes: helix_traffic's inter_* fields, what the
 *     communicator books when it runs), max(sent, recv) of each class,
 *     the two classes in parallel; alpha is inter_lat when any byte
 *     leaves the node. Nodes: ranks / devices_per_node (the planner's
 *     layouts carry it, so collectives spanning nodes are hierarchical).
 *   t_stage(s) = max over its devices of  nl_s*(t_comp + sum t_c) + t_p2p
 *   (replicas dpK: each its own stages; they run side by side)
 *   pipeline (GPipe, k micro-batches, S stages):
 *     T_path  = sum_s t_stage(s) + (k-1)*max_s t_stage(s)
 *     bubble  = T_path - k*max_s t_stage(s)
 *   devices that share a node's cores (CPU ranks) cannot all run at full
 *   rate: T_share = max over hosts of (sum of its devices' busy time) / parallel
 *   (a host: devices_per_host consecutive ranks, by default a node; more
 *   where nodes are emulated on one machine)
 *   total = max(T_path, T_share): the forward pass; tokens/s = B*L / total
 *   load  = max over devices of the time of X in (input phase: none when
 *           replicated, the planner's assumption) and Y home (output phase:
 *           last stage -> replica's rank 0 -> rank 0), apart from total
 *   bound with perfect overlap (nothing in the executor overlaps; this is
 *   the figure a perfect overlap could reach): every device's t_mb becomes
 *   max(nl*t_comp, nl*sum t_c + t_p2p), the rest as above
 *
 *   per-link busy time: over the forward pass, the largest device's sum
 *   of bytes / bandwidth per link class (its collectives' ti and to)
 *   memory per device = the plan's arena, less the copies of Y (and X) the
 *   executor keeps for rank 0 (not needed to compute); fits when it is
 *   <= device_mem and each node's sum <= node_mem.
 */
#include "helix_model.h"
#include "helix_program.h"
#include "../core/util-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const helix_hw *hw;
    int64_t G;              /* devices per node */
    double bi, bx;          /* link busy time (bytes / bandwidth) booked by coll_time */
} linkctx;

/* Time of one collective of this device from its traffic t (bytes per
 * class), scaled by 1/reps, with msgs latency rounds; books the bytes it
 * sends per class into *intra_b / *inter_b. */
static double coll_time(linkctx *lc, const helix_traffic *t, double reps, double msgs, double *intra_b, double *inter_b)
{
    const double s = (double)t->sent_bytes / reps, r = (double)t->recv_bytes / reps;
    if (s == 0 && r == 0) return 0;
    const double xs = (double)t->inter_sent_bytes / reps, xr = (double)t->inter_recv_bytes / reps;
    const double is = s - xs, ir = r - xr;
    *intra_b += is;
    *inter_b += xs;
    const helix_hw *hw = lc->hw;
    const double ti = (is > ir ? is : ir) / hw->intra_bw, to = (xs > xr ? xs : xr) / hw->inter_bw;
    lc->bi += ti;
    lc->bx += to;
    return msgs * (xs > 0 || xr > 0 ? hw->inter_lat : hw->intra_lat) + (ti > to ? ti : to);
}

/* attention at head width w: the hardware file's table (linear in
 * log2 w between its rows, its ends beyond them), else the formula */
double helix_eff_table_at(const helix_eff_table *t, double x)
{
    if (x <= t->x[0]) return t->e[0];
    for (int q = 1; q < t->n; q++)
        if (x <= t->x[q]) {
            const double a = log2(t->x[q - 1]), b = log2(t->x[q]), f = (log2(x) - a) / (b - a);
            return t->e[q - 1] + f * (t->e[q] - t->e[q - 1]);
        }
    return t->e[t->n - 1];
}

double helix_hw_attention_eff(const helix_hw *hw, double w)
{
    return hw->attn.n > 0 ? helix_eff_table_at(&hw->attn, w) : hw->eff_attn * w / (w + hw->attn_half);
}

/* GPipe's critical path over S stages of per-micro-batch times t with k
 * micro-batches; *slowest (may be NULL): the slowest stage */
static double gpipe_path(const double *t, int64_t S, int64_t k, int64_t *slowest)
{
    double sum = 0;
    int64_t m = 0;
    for (int64_t s = 0; s < S; s++) { sum += t[s]; if (t[s] > t[m]) m = s; }
    if (slowest) *slowest = m;
    return sum + (double)(k - 1) * t[m];
}

/* devices of a node (G consecutive ranks) sharing its cores: the largest
 * node's busy time over the devices it runs at full rate at once */
static double node_share(const double *busy, int64_t P, int64_t G, double parallel)
{
    double share = 0;
    for (int64_t nd = 0; nd * G < P; nd++) {
        double b = 0;
        for (int64_t r = nd * G; r < P && r < (nd + 1) * G; r++) b += busy[r];
        b /= parallel > 0 ? parallel : (double)G;
        if (b > share) share = b;
    }
    return share;
}

static double gemm_eff(const helix_hw *hw, double M, double N, double K)
{
    double s = M < N ? M : N;
    if (K < s) s = K;
    return hw->gemm.n > 0 ? helix_eff_table_at(&hw->gemm, s) : hw->eff_gemm * s / (s + hw->gemm_half);
}

void helix_model_predict(const helix_model_plan *p, const helix_hw *hw, helix_prediction *o)
{
    memset(o, 0, sizeof *o);
    const helix_model_config *c = &p->model;
    const int64_t P = p->P, T = p->T, S = p->S, k = p->mb, D = p->D, fc = p->fcols, cols = p->attn.cols;
    const int64_t L = c->seq, Bm = p->Bm;
    const double es = (double)helix_dtype_size(c->dtype);
    const double BmL = (double)(Bm * L);
    const double pairs = c->causal ? (double)L * (double)(L + 1) / 2 : (double)L * (double)L;
    const double F = hw->flops[c->dtype];
    linkctx lc = {hw, hw->devices_per_node > 0 ? hw->devices_per_node : P, 0, 0};

    const double w_attn = 4 * (double)Bm * pairs * (double)D / (double)T;
    /* sequence parallel: LN and residual on a device's rows, the largest share */
    const double u = p->layout.seq_parallel ? (double)((Bm * L + T - 1) / T) / BmL : 1.0;
    const double elem = es * BmL * ((double)(12 * D) * u + (double)(2 * fc));
    const double width = p->attn.cfg.mode == HELIX_MODE_SLICED ? (double)p->attn.ds : (double)c->head_dim;
    const double e_qkv = gemm_eff(hw, BmL, (double)cols, (double)D), e_o = gemm_eff(hw, BmL, (double)D, (double)cols);
    const double e_1 = gemm_eff(hw, BmL, (double)fc, (double)D), e_2 = gemm_eff(hw, BmL, (double)D, (double)fc);
    const int by_scores = p->attn.cfg.mode == HELIX_MODE_EXACT && p->attn.cfg.exact_algo == HELIX_EXACT_SCORES;
    const double e_a = by_scores && hw->eff_scores > 0 ? hw->eff_scores : helix_hw_attention_eff(hw, width);
    const double t_qkv = 2 * BmL * (double)D * (double)(3 * cols) / (F * e_qkv);
    const double t_o = 2 * BmL * (double)D * (double)cols / (F * e_o);
    const double t_mlp = 2 * BmL * (double)D * (double)fc * (1 / (F * e_1) + 1 / (F * e_2));
    const double t_att = w_attn / (F * e_a);
    const int transcendental = c->act != HELIX_ACT_RELU;
    const double t_elem = elem / hw->mem_bw + (hw->gelu_rate > 0 && transcendental ? BmL * (double)fc / hw->gelu_rate : 0);
    const double t_comp = t_qkv + t_o + t_mlp + t_att + t_elem;
    o->eff_gemm_qkv = e_qkv;
    o->eff_attention = e_a;

    double *busy = calloc((size_t)P, sizeof *busy), *stage_t = calloc((size_t)S, sizeof *stage_t);
    double *stage_comp = calloc((size_t)S, sizeof *stage_comp), *stage_ov = calloc((size_t)S, sizeof *stage_ov);
    double *busy_ov = calloc((size_t)P, sizeof *busy_ov);
    int64_t *mem = calloc((size_t)P, sizeof *mem);
    if (!busy || !stage_t || !stage_comp || !mem || !stage_ov || !busy_ov) {
        free(busy); free(stage_t); free(stage_comp); free(mem); free(stage_ov); free(busy_ov);
        snprintf(o->why, sizeof o->why, "out of memory");
        return;
    }
    double out_t = 0, in_t = 0;
    for (int64_t r = 0; r < P; r++) {
        helix_model_device_plan dp;
        helix_model_plan_device(p, r, &dp);
        const double nl = (double)(dp.layer_end - dp.layer_begin), reps = nl * (double)k;
        double ib = 0, ob = 0, ph[HELIX_NPHASES] = {0};
        lc.bi = lc.bx = 0;
        /* per layer and micro-batch */
        const helix_traffic *t = dp.phase;
        const double *msg = dp.messages;   /* per phase, counted from the device's program */
        const helix_phase per_layer[] = {HELIX_PHASE_REGATHER, HELIX_PHASE_RETURN, HELIX_PHASE_ATTENTION, HELIX_PHASE_REDUCE,
                                         HELIX_PHASE_MLP_REDUCE};
        for (size_t q = 0; q < sizeof per_layer / sizeof per_layer[0]; q++) {
            const helix_phase f = per_layer[q];
            ph[f] = coll_time(&lc, &t[f], reps, msg[f] / reps, &ib, &ob);
        }
        const double scores = ph[HELIX_PHASE_ATTENTION];
        double per_layer_comm = ph[HELIX_PHASE_REGATHER] + ph[HELIX_PHASE_RETURN] + scores + ph[HELIX_PHASE_REDUCE] +
                                ph[HELIX_PHASE_MLP_REDUCE];
        /* bytes were booked once per layer and micro-batch: scale to the pass */
        ib *= reps; ob *= reps;
        double busy_i = lc.bi * reps, busy_x = lc.bx * reps;
        lc.bi = lc.bx = 0;
        /* per micro-batch: the hand-over to the next stage */
        double t_p2p = 0, ib1 = 0, ob1 = 0;
        if (dp.stage < S - 1) t_p2p += coll_time(&lc, &t[HELIX_PHASE_P2P], (double)k, msg[HELIX_PHASE_P2P] / (double)k, &ib1, &ob1);
        ib += ib1 * (double)k; ob += ob1 * (double)k;
        busy_i += lc.bi * (double)k; busy_x += lc.bx * (double)k;
        if (busy_i > o->intra_busy_s) o->intra_busy_s = busy_i;
        if (busy_x > o->inter_busy_s) o->inter_busy_s = busy_x;
        double t_mb = nl * (t_comp + per_layer_comm) + t_p2p;
        if (t_mb > stage_t[dp.stage]) { stage_t[dp.stage] = t_mb; stage_comp[dp.stage] = nl * t_comp; }
        busy[r] = (double)k * t_mb;
        const double c_mb = nl * t_comp, x_mb = nl * per_layer_comm + t_p2p, t_ov = c_mb > x_mb ? c_mb : x_mb;
        if (t_ov > stage_ov[dp.stage]) stage_ov[dp.stage] = t_ov;
        busy_ov[r] = (double)k * t_ov;
        /* loading: X in (none when replicated), Y home */
        double ib2 = 0, ob2 = 0;
        const double t_in = coll_time(&lc, &t[HELIX_PHASE_INPUT], 1, msg[HELIX_PHASE_INPUT], &ib2, &ob2);
        const double t_out = coll_time(&lc, &t[HELIX_PHASE_OUTPUT], 1, msg[HELIX_PHASE_OUTPUT], &ib2, &ob2);
        if (t_in > in_t) in_t = t_in;
        if (t_out > out_t) out_t = t_out;
        if (t_in + t_out > o->load_s) o->load_s = t_in + t_out;
        if (ib2 + ob2 > o->load_bytes) o->load_bytes = ib2 + ob2;
        /* the slowest device's time per phase over the whole pass */
        ph[HELIX_PHASE_ATTENTION] = scores;
        double kk = (double)k;
        double full[HELIX_NPHASES] = {0};
        for (int q = 0; q < HELIX_NPHASES; q++) full[q] = ph[q] * reps;
        full[HELIX_PHASE_QKV] = reps * t_qkv;
        full[HELIX_PHASE_ATTENTION] += reps * t_att;
        full[HELIX_PHASE_OUT_PROJ] = reps * t_o;
        full[HELIX_PHASE_MLP] = reps * t_mlp;
        full[HELIX_PHASE_NORM] = reps * t_elem;
        full[HELIX_PHASE_P2P] = kk * t_p2p;
        for (int q = 0; q < HELIX_NPHASES; q++) if (full[q] > o->phase_s[q]) o->phase_s[q] = full[q];
        if (ib > o->intra_bytes) o->intra_bytes = ib;
        if (ob > o->inter_bytes) o->inter_bytes = ob;
        mem[r] = dp.peak_bytes - helix_al64(dp.out_bytes) - helix_al64(dp.gather_bytes);
        if (mem[r] > o->mem_bytes) o->mem_bytes = mem[r];
    }
    o->phase_s[HELIX_PHASE_INPUT] = in_t;
    o->phase_s[HELIX_PHASE_OUTPUT] = out_t;
    int64_t slowest = 0;
    const double path = gpipe_path(stage_t, S, k, &slowest), tmax = stage_t[slowest], comp = stage_comp[slowest];
    const int64_t host = hw->devices_per_host > 0 ? hw->devices_per_host : lc.G;   /* devices sharing cores */
    const double share = node_share(busy, P, host, hw->parallel);
    for (int64_t nd = 0; nd * lc.G < P; nd++) {
        int64_t node_mem = 0;
        for (int64_t r = nd * lc.G; r < P && r < (nd + 1) * lc.G; r++) node_mem += mem[r];
        if (node_mem > o->node_mem_bytes) o->node_mem_bytes = node_mem;
    }
    /* the same with perfect overlap */
    const double path_ov = gpipe_path(stage_ov, S, k, NULL), share_ov = node_share(busy_ov, P, host, hw->parallel);
    o->total_overlap_s = path_ov > share_ov ? path_ov : share_ov;
    o->tokens_per_s_overlap = (double)(c->batch * c->seq) / o->total_overlap_s;
    o->compute_s = (double)k * comp;
    o->bubble_s = path - (double)k * tmax;
    o->comm_s = path - o->compute_s - o->bubble_s;
    o->total_s = path > share ? path : share;
    o->tokens_per_s = (double)(c->batch * c->seq) / o->total_s;
    o->bound = share > path ? "shared cores" : o->comm_s > o->compute_s && o->comm_s > o->bubble_s ? "communication"
             : o->bubble_s > o->compute_s ? "pipeline bubble" : "compute";
    o->fits = 1;
    if (hw->device_mem > 0 && (double)o->mem_bytes > hw->device_mem) {
        o->fits = 0;
        snprintf(o->why, sizeof o->why, "a device needs %.3g GB, has %.3g GB", o->mem_bytes / 1e9, hw->device_mem / 1e9);
    } else if (hw->node_mem > 0 && (double)o->node_mem_bytes > hw->node_mem) {
        o->fits = 0;
        snprintf(o->why, sizeof o->why, "a node's devices need %.3g GB, it has %.3g GB", o->node_mem_bytes / 1e9,
                 hw->node_mem / 1e9);
    }
    free(busy); free(stage_t); free(stage_comp); free(mem); free(stage_ov); free(busy_ov);
}
