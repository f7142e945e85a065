/* cmd_layouts.c — `helix bench layouts`: the same model, the same input
 * and the same P devices under several layouts (helix n x m, TP x PP, pure
 * TP, pure PP), nccl-tests style: tokens/s, where the time went, bytes per
 * rank by kind of collective, peak memory per device, and #wrong against
 * the float64 single-device reference. In-process or one MPI rank per
 * device; optional JSON and a gnuplot PNG. */
#include "cli.h"
#include "helix_backend.h"
#include "helix_model.h"
#include "model_inputs.h"
#include "engine.h"
#include "run.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *layouts_help =
    "usage: helix bench layouts [options]\n"
    "       mpirun -np P helix bench layouts [options]\n"
    "\n"
    "Runs whole transformer layers (LN, attention with W_O, residual, LN, MLP\n"
    "D->F->D, residual; pre- or post-LN) in several layouts on the same P devices,\n"
    "with the same weights and input, and prints per layout: tokens/s, the time\n"
    "split, bytes sent per rank by kind of collective (= the plan's prediction),\n"
    "peak memory per device, and #wrong against the float64 reference.\n"
    "  --devices P       devices; under mpirun the rank count          [16]\n"
    "  --layouts LIST    comma-separated helixNxM-sliced, helixNxM-exact,\n"
    "                    helixNxM-exact-scores, tpTppP, tpT, ppP; any of them as\n"
    "                    dpK-LAYOUT (K replicas, B/K sequences each; dpK alone:\n"
    "                    K one-device replicas) and LAYOUT-sp (sequence parallel:\n"
    "                    reduce-scatter + all-gather instead of all-reduce, LN\n"
    "                    and residual on 1/t of the tokens), e.g. dp2-tp8, tp8pp2-sp\n"
    "                    [helix n x m sliced and exact, tpP, tp(P/2)pp2, tp(P/4)pp4]\n"
    "  --heads H         attention heads                               [16]\n"
    "  --head-dim d      head width                                    [64]\n"
    "  --ffn F           MLP hidden width                              [4096]\n"
    "  --layers N        transformer blocks                            [2]\n"
    "  --batch B         sequences                                     [2]\n"
    "  --seq L           tokens per sequence                           [256]\n"
    "  --microbatches M  micro-batches of pipelined layouts (0: B)     [0]\n"
    "  --dtype T         f32, bf16 or f16 (fp32, fp16 too)             [f32]\n"
    "  --causal          causal attention\n"
    "  --bias            biases in every linear layer\n"
    "  --norm N          LayerNorm placement: pre (x + f(LN(x))) or post\n"
    "                    (LN(x + f(x)))                      [pre; --weights: required]\n"
    "  --activation A    MLP activation: gelu (erf), gelu-tanh (GPT-2) or\n"
    "                    relu                                [gelu; --weights: required]\n"
    "  --seed S          random weights and input                      [1]\n"
    "  --weights FILE    the whole model from one .safetensors file; D, F, the\n"
    "                    layers (or the first --layers), biases and dtype from it;\n"
    "                    d = D / --heads. A state_dict does not record --heads,\n"
    "                    --norm or --activation: give them, or the file's\n"
    "                    __metadata__ keys num_heads, norm, activation. Names:\n"
    "                    per-layer prefix (--layer-prefix), then norm1|ln_1,\n"
    "                    self_attn.|attn. (in_proj_weight or q/k/v_proj,\n"
    "                    out_proj|o_proj), norm2|ln_2, linear1|mlp.fc1,\n"
    "                    linear2|mlp.fc2: PyTorch nn.TransformerEncoderLayer\n"
    "                    and GPT-style names\n"
    "  --layer-prefix P  layer prefix with {i} for the index   [auto: layers.{i}.,\n"
    "                    encoder.layers.{i}., model.layers.{i}., transformer.h.{i}., ...]\n"
    "  --input FILE      X as .npy [B, L, D] (<f4 or <f2); B, L from the file\n"
    "  --output FILE     write the first layout's output [B, L, D] as .npy (f32)\n"
    "  --allow-nonfinite run even if weights or input hold NaN/Inf     [refuse]\n"
    "  --input-from W    replicated: every first-stage device reads X itself;\n"
    "                    rank0: X broadcast from rank 0. Either way loading\n"
    "                    (and Y's return to rank 0) is timed apart from the\n"
    "                    forward pass                                  [replicated]\n"
    "  --collectives C   ordered: sums in a fixed order (bitwise reproducible,\n"
    "                    hierarchical across nodes); native: all-reduce, reduce\n"
    "                    and reduce-scatter by the MPI library (fastest, not\n"
    "                    bitwise reproducible; in-process: ordered)     [ordered]\n"
    "  --ranks-per-node K  nodes of K consecutive ranks: collectives that span\n"
    "                    nodes run hierarchically, bytes are counted per link\n"
    "                    (inside a node / between nodes); emulates nodes on one\n"
    "                    host                  [mpi: as launched; else one node]\n"
    "  --threads T       in-process: devices computing at once         [all cores]\n"
    "  --virtual-devices in-process: every device of each layout on GPU 0\n"
    "                    (the CUDA backend; one GPU runs and checks whole\n"
    "                    layouts against the CPU reference)      [devices on CPUs]\n"
    "  --gpu             mpi: each rank's device on a GPU of its node (local\n"
    "                    rank mod the GPUs it sees; the CUDA backend, the NCCL\n"
    "                    engine)                                 [devices on CPUs]\n"
    "  --backend B       auto, inproc or mpi                           [auto]\n"
    "  --timeout S       mpi: end the job when a collective has waited S\n"
    "                    seconds, naming the ranks that did not arrive (0:\n"
    "                    never)        [60 + the model's FLOPs at 100 MFLOP/s]\n"
    "  --no-check        skip the reference (#wrong shows '-')\n"
    "  --quick           small model for tests: h=8 d=16 F=256 B=2 L=64\n"
    "  --json FILE       also write the rows as JSON\n"
    "  --plot FILE.png   plot tokens/s and bytes per rank per layout (gnuplot)\n";

typedef struct {
    char name[48];
    char error[600];
    helix_layout lay;
    helix_model_plan plan;
    double wall_s, compute_s, comm_s, bubble_s, idle_s, tok_s;
    double load_s;                    /* max over ranks: X in and Y home (not the forward pass) */
    int64_t b_load, b_attn, b_allreduce, b_p2p, peak;
    int64_t b_intra, b_inter;         /* max over ranks: bytes sent inside a node / to another */
    int bytes_match;
    double rel;
    int64_t wrong;
    int64_t nonfinite;                /* NaN/Inf outputs */
    float *y;
    int64_t *rank_sent, *rank_recv;   /* [P]: all phases */
    int64_t rss;                      /* max over ranks of the process's VmHWM */
    int64_t *rank_rss;                /* [P] */
} lrow;

static const helix_phase compute_ph[] = {HELIX_PHASE_QKV, HELIX_PHASE_ATTENTION, HELIX_PHASE_OUT_PROJ, HELIX_PHASE_NORM,
                                         HELIX_PHASE_MLP};
static const helix_phase comm_ph[] = {HELIX_PHASE_REGATHER, HELIX_PHASE_RETURN, HELIX_PHASE_ROW_GATHER,
                                      HELIX_PHASE_COL_GATHER, HELIX_PHASE_REDUCE, HELIX_PHASE_MLP_REDUCE, HELIX_PHASE_P2P};


/* Fill a row's numbers from every rank's statistics. */
static void summarize(lrow *r, const helix_model_stats *st)
{
    const int64_t P = r->plan.P;
    r->bytes_match = 1;
    r->rank_sent = calloc((size_t)P, sizeof(int64_t));
    r->rank_recv = calloc((size_t)P, sizeof(int64_t));
    r->rank_rss = calloc((size_t)P, sizeof(int64_t));
    for (int64_t k = 0; k < P; k++) {
        const helix_model_stats *s = &st[k];
        if (r->rank_rss) r->rank_rss[k] = s->peak_rss_bytes;
        int64_t intra = 0, inter = 0;
        for (int ph = 0; ph < HELIX_NPHASES; ph++) {
            inter += s->phase[ph].inter_sent_bytes;
            intra += s->phase[ph].sent_bytes - s->phase[ph].inter_sent_bytes;
            if (!r->rank_sent || !r->rank_recv) continue;
            r->rank_sent[k] += s->phase[ph].sent_bytes;
            r->rank_recv[k] += s->phase[ph].recv_bytes;
        }
        if (intra > r->b_intra) r->b_intra = intra;
        if (inter > r->b_inter) r->b_inter = inter;
        double comp = 0, comm = 0;
        for (size_t i = 0; i < sizeof compute_ph / sizeof compute_ph[0]; i++) comp += s->time_s[compute_ph[i]];
        for (size_t i = 0; i < sizeof comm_ph / sizeof comm_ph[0]; i++) comm += s->time_s[comm_ph[i]];
        /* loading (X in, Y home) is not the forward pass */
        const double load = s->time_s[HELIX_PHASE_INPUT] + s->time_s[HELIX_PHASE_OUTPUT];
        if (load > r->load_s) r->load_s = load;
        if (s->wall_s - load > r->wall_s) r->wall_s = s->wall_s - load;
        r->compute_s += comp / (double)P;
        r->comm_s += comm / (double)P;
        r->bubble_s += s->bubble_s / (double)P;
        const helix_traffic *t = s->phase;
        int64_t in = t[HELIX_PHASE_INPUT].sent_bytes + t[HELIX_PHASE_OUTPUT].sent_bytes;
        int64_t at = t[HELIX_PHASE_REGATHER].sent_bytes + t[HELIX_PHASE_RETURN].sent_bytes + t[HELIX_PHASE_ATTENTION].sent_bytes;
        int64_t ar = t[HELIX_PHASE_REDUCE].sent_bytes + t[HELIX_PHASE_MLP_REDUCE].sent_bytes;
        int64_t pp = t[HELIX_PHASE_P2P].sent_bytes;
        if (in > r->b_load) r->b_load = in;
        if (at > r->b_attn) r->b_attn = at;
        if (ar > r->b_allreduce) r->b_allreduce = ar;
        if (pp > r->b_p2p) r->b_p2p = pp;
        if (s->arena_bytes > r->peak) r->peak = s->arena_bytes;
        if (s->peak_rss_bytes > r->rss) r->rss = s->peak_rss_bytes;
        helix_model_device_plan dp;
        helix_model_plan_device(&r->plan, k, &dp);
        for (int ph = 0; ph < HELIX_NPHASES; ph++)
            r->bytes_match &= helix_traffic_eq(&t[ph], &dp.phase[ph]);
        r->bytes_match &= s->arena_bytes == dp.peak_bytes;
    }
    /* the mean rank's wall time not spent computing, communicating or in the bubble */
    r->idle_s = r->wall_s - r->compute_s - r->comm_s - r->bubble_s;
    if (r->idle_s < 0) r->idle_s = 0;
    r->tok_s = (double)(r->plan.model.batch * r->plan.model.seq) / r->wall_s;
}

/* float64 references, made when first needed: h heads of width d (exact,
 * TP, PP) and h*m heads of width d/m (helix sliced with m slices) */
typedef struct {
    int n;
    int64_t m[8];
    float *ref[8];
    double den[8];
} ref_cache;

static int check_row(lrow *r, ref_cache *c, const helix_model_config *mc, const helix_model_weights *w, const float *x)
{
    const int64_t m = r->lay.kind == HELIX_LAYOUT_HELIX && r->lay.mode == HELIX_MODE_SLICED ? r->lay.slices : 1;
    const int64_t n = mc->batch * mc->seq * mc->heads * mc->head_dim;
    int k = 0;
    while (k < c->n && c->m[k] != m) k++;
    if (k == c->n) {
        if (c->n == 8) return -1;
        fprintf(stderr, "        float64 reference with %lld heads of width %lld...\n", (long long)(mc->heads * m),
                (long long)(mc->head_dim / m));
        helix_err err = {{0}};
        float *ref = malloc(sizeof(float) * (size_t)n);
        if (!ref || helix_model_ref(mc, mc->heads * m, mc->head_dim / m, w, x, ref, &err)) {
            fprintf(stderr, "helix: reference: %s\n", ref ? err.msg : "out of memory");
            free(ref);
            return -1;
        }
        double den = 0;
        for (int64_t q = 0; q < n; q++) if (fabs(ref[q]) > den) den = fabs(ref[q]);
        c->m[k] = m; c->ref[k] = ref; c->den[k] = den; c->n++;
    }
    const float *ref = c->ref[k];
    double num = 0, lim = run_tolerance(mc->dtype) * c->den[k];
    r->wrong = 0;
    for (int64_t q = 0; q < n; q++) {
        double dd = fabs((double)r->y[q] - ref[q]);
        if (!(dd <= num)) num = dd;                 /* NaN propagates */
        if (!(dd <= lim)) r->wrong++;
    }
    r->rel = c->den[k] > 0 ? num / c->den[k] : num;
    return 0;
}

static void default_layouts(int64_t P, char *buf, size_t n)
{
    int64_t a = 1;
    for (int64_t k = 1; k * k <= P; k++) if (P % k == 0) a = k;     /* n <= m, as square as P allows */
    snprintf(buf, n, "helix%lldx%lld-sliced,helix%lldx%lld-exact,tp%lld", (long long)a, (long long)(P / a), (long long)a,
             (long long)(P / a), (long long)P);
    size_t used = strlen(buf);
    if (P % 2 == 0 && P >= 4) used += (size_t)snprintf(buf + used, n - used, ",tp%lldpp2", (long long)(P / 2));
    if (P % 4 == 0 && P >= 8) snprintf(buf + used, n - used, ",tp%lldpp4", (long long)(P / 4));
}

static int draw_plot(const char *png, const lrow *rows, int nr);

static double pct(double a, double w) { return w > 0 ? 100 * a / w : 0; }

static void print_row(const lrow *r)
{
    char h1[32], h2[32];
    if (r->error[0]) { printf("  %-22s  %s\n", r->name, r->error); return; }
    char wrong[24];
    if (r->wrong < 0) snprintf(wrong, sizeof wrong, "-");
    else snprintf(wrong, sizeof wrong, "%lld", (long long)r->wrong);
    printf("  %-22s %11.0f %10.1f %6.1f %6.1f %6.1f %6.1f %8.1f | %9.2f %9.2f %9.2f %9.2f %9.2f %7s | %10s %10s | %9.2e %6s\n", r->name,
           r->tok_s, 1e3 * r->wall_s, pct(r->compute_s, r->wall_s), pct(r->comm_s, r->wall_s), pct(r->bubble_s, r->wall_s),
           pct(r->idle_s, r->wall_s), 1e3 * r->load_s, r->b_load / 1e6, r->b_attn / 1e6, r->b_allreduce / 1e6, r->b_p2p / 1e6, r->b_inter / 1e6,
           r->bytes_match ? "= plan" : "DIFFERS", run_human_bytes(r->peak, h1), r->rss < 0 ? "-" : run_human_bytes(r->rss, h2),
           r->rel, wrong);
    fflush(stdout);
}

/* gnuplot draws into a temporary beside png, renamed over it once gnuplot
 * succeeded (helix_wfile): a failed plot leaves no half-drawn PNG */
static int write_plot(const char *png_path, const lrow *rows, int nr)
{
    helix_wfile pw;
    helix_err perr = {{0}};
    if (strchr(png_path, '\'')) { fprintf(stderr, "helix: --plot: a path with a quote (') is not supported\n"); return -1; }
    if (helix_wfile_open(&pw, png_path, &perr)) { fprintf(stderr, "helix: --plot: %s\n", perr.msg); return -1; }
    const char *png = pw.direct ? pw.path : pw.tmp;
    int rc = draw_plot(png, rows, nr);
    if (rc) { helix_wfile_abort(&pw); return -1; }
    if (helix_wfile_commit(&pw, &perr)) { fprintf(stderr, "helix: --plot: %s\n", perr.msg); return -1; }
    return 0;
}

static int draw_plot(const char *png, const lrow *rows, int nr)
{
    char dat[] = "/tmp/helix-plot-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    int n_ok = 0;
    for (int k = 0; k < nr; k++) {
        if (rows[k].error[0]) continue;
        fprintf(f, "\"%s\" %.6g %.6g %.6g %.6g %.6g\n", rows[k].name, rows[k].tok_s, rows[k].b_load / 1e6,
                rows[k].b_attn / 1e6, rows[k].b_allreduce / 1e6, rows[k].b_p2p / 1e6);
        n_ok++;
    }
    fclose(f);
    if (!n_ok) { unlink(dat); return -1; }
    char gp[] = "/tmp/helix-plot-gp-XXXXXX";
    fd = mkstemp(gp);
    if (fd < 0) { unlink(dat); return -1; }
    f = fdopen(fd, "w");
    fprintf(f,
            "set terminal pngcairo size 1200,500 font ',10'\n"
            "set output '%s'\n"
            "set multiplot layout 1,2 title 'helix bench layouts: %lld devices, %s'\n"
            "set style data histograms\nset style fill solid 1.0 border -1\nset boxwidth 0.7\n"
            "set xtics rotate by -30 nomirror\nset grid ytics\nset yrange [0:*]\n"
            "set title 'throughput'\nset ylabel 'tokens/s'\nunset key\n"
            "set style histogram clustered gap 1\n"
            "plot '%s' using 2:xtic(1) lc rgb '#3b6ea5'\n"
            "set title 'bytes sent per rank (max over ranks)'\nset ylabel 'MB'\nset key below horizontal\n"
            "set style histogram rowstacked\n"
            "plot '%s' using 3:xtic(1) title 'loading (X in, Y home)', '' using 4 title 'attention exchange', "
            "'' using 5 title 'all-reduce', '' using 6 title 'pipeline p2p'\n"
            "unset multiplot\n",
            png, (long long)rows[0].plan.P, helix_dtype_name(rows[0].plan.model.dtype), dat, dat);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", gp);
    int rc = system(cmd);
    unlink(dat);
    unlink(gp);
    return rc == 0 ? 0 : -1;
}

static int write_json(const char *path, const lrow *rows, int nr, const helix_model_config *mc, int64_t P,
                      const char *engine)
{
    jw j;
    if (jw_open(&j, path)) return -1;
    jw_obj(&j, NULL);
    jw_str(&j, "engine", engine); jw_int(&j, "devices", P);
    jw_int(&j, "ranks_per_node", rows[0].lay.ranks_per_node ? rows[0].lay.ranks_per_node : P);
    jw_obj(&j, "model");
    jw_int(&j, "heads", mc->heads); jw_int(&j, "head_dim", mc->head_dim); jw_int(&j, "ffn", mc->ffn);
    jw_int(&j, "layers", mc->layers); jw_int(&j, "batch", mc->batch); jw_int(&j, "seq", mc->seq);
    jw_str(&j, "dtype", helix_dtype_name(mc->dtype)); jw_bool(&j, "causal", mc->causal); jw_bool(&j, "bias", mc->bias);
    jw_str(&j, "norm", helix_norm_name(mc->norm)); jw_str(&j, "activation", helix_act_name(mc->act));
    jw_num(&j, "flops", helix_model_flops(mc));
    jw_end_obj(&j);
    jw_arr(&j, "layouts");
    for (int k = 0; k < nr; k++) {
        const lrow *r = &rows[k];
        jw_obj(&j, NULL);
        jw_str(&j, "layout", r->name);
        if (r->error[0]) { jw_str(&j, "error", r->error); jw_end_obj(&j); continue; }
        jw_int(&j, "microbatches", r->plan.mb);
        jw_num(&j, "tokens_per_s", r->tok_s); jw_num(&j, "wall_s", r->wall_s);
        jw_num(&j, "compute_s", r->compute_s); jw_num(&j, "comm_s", r->comm_s); jw_num(&j, "bubble_s", r->bubble_s);
        jw_num(&j, "idle_s", r->idle_s); jw_num(&j, "load_s", r->load_s);
        jw_bool(&j, "input_from_rank0", r->lay.input_from_root);
        jw_str(&j, "collectives", cli_collectives_name(r->lay.native_collectives, !strcmp(engine, "mpi")));
        jw_obj(&j, "sent_bytes_per_rank_max");
        jw_int(&j, "load", r->b_load); jw_int(&j, "attention_exchange", r->b_attn);
        jw_int(&j, "allreduce", r->b_allreduce); jw_int(&j, "p2p", r->b_p2p);
        jw_end_obj(&j);
        jw_int(&j, "intra_node_bytes", r->b_intra);
        jw_int(&j, "inter_node_bytes", r->b_inter);
        jw_bool(&j, "bytes_equal_plan", r->bytes_match);
        if (r->rank_sent && r->rank_recv) {
            jw_arr(&j, "sent_bytes_per_rank");
            for (int64_t q = 0; q < r->plan.P; q++) jw_int(&j, NULL, r->rank_sent[q]);
            jw_end_arr(&j);
            jw_arr(&j, "recv_bytes_per_rank");
            for (int64_t q = 0; q < r->plan.P; q++) jw_int(&j, NULL, r->rank_recv[q]);
            jw_end_arr(&j);
        }
        jw_int(&j, "peak_bytes_per_device", r->peak);
        jw_int(&j, "peak_rss_bytes", r->rss);
        if (r->rank_rss) {
            jw_arr(&j, "peak_rss_bytes_per_rank");
            for (int64_t q = 0; q < r->plan.P; q++) jw_int(&j, NULL, r->rank_rss[q]);
            jw_end_arr(&j);
        }
        if (r->wrong >= 0) { jw_num(&j, "max_rel_err", r->rel); jw_int(&j, "wrong", r->wrong); }
        jw_int(&j, "nonfinite_outputs", r->nonfinite);
        jw_end_obj(&j);
    }
    jw_end_arr(&j);
    jw_end_obj(&j);
    return jw_close(&j, path);
}

int cmd_layouts(int argc, char **argv)
{
    static const struct option opts[] = {
        {"devices", required_argument, 0, 'P'}, {"layouts", required_argument, 0, 'y'},
        {"heads", required_argument, 0, 'H'}, {"head-dim", required_argument, 0, 'd'}, {"ffn", required_argument, 0, 'F'},
        {"layers", required_argument, 0, 'N'}, {"batch", required_argument, 0, 'B'}, {"seq", required_argument, 0, 'L'},
        {"microbatches", required_argument, 0, 'M'}, {"dtype", required_argument, 0, 'T'}, {"causal", no_argument, 0, 'c'},
        {"bias", no_argument, 0, 'b'}, {"seed", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"backend", required_argument, 0, 'e'}, {"no-check", no_argument, 0, 'n'}, {"quick", no_argument, 0, 'q'},
        {"json", required_argument, 0, 'j'}, {"plot", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'},
        {"weights", required_argument, 0, 'W'}, {"layer-prefix", required_argument, 0, 'X'},
        {"input", required_argument, 0, 'I'}, {"output", required_argument, 0, 'O'},
        {"allow-nonfinite", no_argument, 0, 'A'}, {"norm", required_argument, 0, 'R'},
        {"activation", required_argument, 0, 'G'}, {"timeout", required_argument, 0, 'w'},
        {"ranks-per-node", required_argument, 0, 'K'}, {"input-from", required_argument, 0, 'i'},
        {"collectives", required_argument, 0, 'C'}, {"virtual-devices", no_argument, 0, 'V'}, {"gpu", no_argument, 0, 'U'},
        {0, 0, 0, 0}};
    helix_model_config mc = helix_model_config_default();
    mc.heads = 16; mc.head_dim = 64; mc.ffn = 4096; mc.layers = 2; mc.batch = 2; mc.seq = 256;
    int64_t P = 16, mbs = 0, seed = 1, threads = 0, rpn = 0;
    double timeout = -1;
    int check = 1, quick = 0, set_P = 0, set_norm = 0, set_act = 0, input_root = 0, native = 0, virt = 0, gpu_ranks = 0;
    const char *json = NULL, *plot = NULL, *backend_s = "auto";
    char list[1024] = "";
    int set[8] = {0};   /* which of heads, head-dim, ffn, layers, batch, seq, dtype, bias were given */
    model_inputs_opts mi;
    memset(&mi, 0, sizeof mi);
    const char *output = NULL;
    int c, bad = 0;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'P': bad = cli_int("--devices", optarg, 1, 4096, &P); set_P = 1; break;
        case 'y': snprintf(list, sizeof list, "%s", optarg); break;
        case 'H': bad = cli_int("--heads", optarg, 1, 1 << 16, &mc.heads); set[0] = 1; break;
        case 'd': bad = cli_int("--head-dim", optarg, 1, 1 << 16, &mc.head_dim); set[1] = 1; break;
        case 'F': bad = cli_int("--ffn", optarg, 1, 1 << 24, &mc.ffn); set[2] = 1; break;
        case 'N': bad = cli_int("--layers", optarg, 1, 4096, &mc.layers); set[3] = 1; break;
        case 'B': bad = cli_int("--batch", optarg, 1, 1 << 20, &mc.batch); set[4] = 1; break;
        case 'L': bad = cli_int("--seq", optarg, 1, 1 << 24, &mc.seq); set[5] = 1; break;
        case 'M': bad = cli_int("--microbatches", optarg, 0, 1 << 20, &mbs); break;
        case 'T':
            if (helix_dtype_parse(optarg, &mc.dtype)) { fprintf(stderr, "helix: --dtype: unknown '%s' (f32, bf16, f16)\n", optarg); bad = 1; }
            set[6] = 1;
            break;
        case 'c': mc.causal = 1; break;
        case 'b': mc.bias = 1; set[7] = 1; break;
        case 'R': bad = cli_norm(optarg, &mc.norm); set_norm = 1; break;
        case 'G': bad = cli_act(optarg, &mc.act); set_act = 1; break;
        case 'W': mi.weights = optarg; break;
        case 'X': mi.prefix = optarg; break;
        case 'I': mi.input = optarg; break;
        case 'O': output = optarg; break;
        case 'A': mi.allow_nonfinite = 1; break;
        case 's': bad = cli_int("--seed", optarg, 0, INT64_MAX, &seed); break;
        case 't': bad = cli_int("--threads", optarg, 1, 4096, &threads); break;
        case 'e': backend_s = optarg; break;
        case 'w': bad = cli_timeout(optarg, &timeout); break;
        case 'K': bad = cli_int("--ranks-per-node", optarg, 1, 1 << 20, &rpn); break;
        case 'C': bad = cli_collectives(optarg, &native) != 0; break;
        case 'i':
            if (!strcmp(optarg, "rank0")) input_root = 1;
            else if (!strcmp(optarg, "replicated")) input_root = 0;
            else { fprintf(stderr, "helix: --input-from: '%s' (expected replicated or rank0)\n", optarg); bad = 1; }
            break;
        case 'n': check = 0; break;
        case 'V': virt = 1; break;
        case 'U': gpu_ranks = 1; break;
        case 'q': quick = 1; break;
        case 'j': json = optarg; break;
        case 'p': plot = optarg; break;
        case 'h': fputs(layouts_help, stdout); return EXIT_OK;
        case ':': fprintf(stderr, "helix bench layouts: %s needs a value\n", argv[optind - 1]); bad = 1; break;
        default: fprintf(stderr, "helix bench layouts: unknown option '%s' (try --help)\n", argv[optind - 1]); bad = 1; break;
        }
    }
    if (bad) return EXIT_USAGE;
    if (optind < argc) { fprintf(stderr, "helix bench layouts: unexpected argument '%s'\n", argv[optind]); return EXIT_USAGE; }
    if (quick) {
        if (!set[0]) mc.heads = 8;
        if (!set[1]) mc.head_dim = 16;
        if (!set[2]) mc.ffn = 256;
        if (!set[4]) mc.batch = 2;
        if (!set[5]) mc.seq = 64;
    }
    int mpi;
    if (cli_engine_choose(backend_s, &mpi)) return EXIT_USAGE;
    if (cli_device_flags("bench layouts", mpi, virt, gpu_ranks, 1)) return EXIT_USAGE;
    helix_err err = {{0}};
    cli_engine eng;
    int erc = cli_engine_start(&eng, mpi, &argc, &argv, "bench layouts ...'", "every layout", 1);
    if (erc != EXIT_OK) return erc;
    const int rank = eng.rank, size = eng.size;
    helix_comm_t *world = eng.world;
    if (mpi) {
        if (set_P && P != size) {
            fprintf(stderr, "helix: --devices %lld, but mpirun started %d ranks\n", (long long)P, size);
            return cli_engine_end(&eng, EXIT_USAGE, 0);
        }
        P = size;
    }
    const int root = rank == 0;
    char nodes[160];
    if (cli_nodes(mpi, rpn, P, root, &rpn, nodes, sizeof nodes)) return cli_engine_end(&eng, EXIT_USAGE, 0);
    const int user_list = list[0] != 0;
    if (!user_list) default_layouts(P, list, sizeof list);

    /* the model and the input settle the sizes before any layout is planned */
    model_weights w;
    float *x = NULL;
    mi.seed = seed;
    mi.check = check;
    mi.given_heads = set[0]; mi.given_norm = set_norm; mi.given_act = set_act;
    mi.given_head_dim = set[1]; mi.given_ffn = set[2]; mi.given_layers = set[3];
    mi.given_batch = set[4]; mi.given_seq = set[5]; mi.given_dtype = set[6]; mi.given_bias = set[7];
    int rc = model_inputs_load(&mi, &mc, root, world, &w, &x);
    if (rc != EXIT_OK) {
        return cli_engine_end(&eng, rc, 0);
    }
    if (mpi && !input_root) {
        /* replicated input: every rank holds X, as if each read or generated
         * it; here rank 0 sends it once, before anything is timed */
        const size_t nx = sizeof(float) * (size_t)(mc.batch * mc.seq * mc.heads * mc.head_dim);
        if (!root) x = malloc(nx);
        rc = cli_agree(world, x ? EXIT_OK : EXIT_RUNTIME, root, "allocate the input on every rank");
        if (rc == EXIT_OK && helix_comm_bcast(world, x, nx, 0)) rc = EXIT_RUNTIME;
        if (rc != EXIT_OK) {
            model_weights_close(&w);
            free(x);
            return cli_engine_end(&eng, rc, 0);
        }
    }

    /* Plan every layout before anything runs. A layout the user named that is
     * not valid for this model and P stops the run here; from the default
     * list, the ones that do not apply (tp4pp4 of a 2-layer model) are left
     * out, and the header says so. */
    lrow rows[32];
    int nr = 0, n_invalid = 0;
    char *save = NULL, dropped[512] = "";
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nr == 32) {
            if (root) fprintf(stderr, "helix: --layouts: at most 32 layouts in one run\n");
            n_invalid++;
            break;
        }
        lrow *r = &rows[nr];
        memset(r, 0, sizeof *r);
        r->wrong = -1;
        cli_safe_name(tok, r->name, sizeof r->name);
        helix_err e = {{0}};
        int valid = helix_layout_parse(tok, &r->lay, &e) == HELIX_OK;
        if (valid) {
            int pipelined = r->lay.kind == HELIX_LAYOUT_TPPP && r->lay.pp > 1;
            const int64_t R = r->lay.replicas > 1 ? r->lay.replicas : 1;
            r->lay.microbatches = pipelined ? (mbs ? mbs : (mc.batch % R ? 1 : mc.batch / R)) : 1;
            r->lay.ranks_per_node = rpn;
            r->lay.input_from_root = input_root;
            r->lay.native_collectives = native;
            helix_layout_name(&r->lay, r->name, sizeof r->name);
            valid = helix_model_plan_init(&mc, &r->lay, P, &r->plan, &e) == HELIX_OK;
        }
        if (!valid && !user_list) {
            size_t u = strlen(dropped);
            snprintf(dropped + u, sizeof dropped - u, "%s%s", u ? ", " : "", r->name);
            continue;
        }
        if (!valid) {
            if (root) fprintf(stderr, "helix: --layouts: %s is not valid here: %s\n", r->name, e.msg);
            n_invalid++;
        }
        nr++;
    }
    if (n_invalid) {
        if (root) fprintf(stderr, "helix: nothing was run; fix or drop the layouts named above\n");
        model_weights_close(&w);
        free(x);
        return cli_engine_end(&eng, EXIT_USAGE, 0);
    }
    if (nr == 0) {
        if (root) fprintf(stderr, "helix: --layouts: no layout given\n");
        model_weights_close(&w);
        free(x);
        return cli_engine_end(&eng, EXIT_USAGE, 0);
    }

    const int64_t BL = mc.batch * mc.seq, D = mc.heads * mc.head_dim;
    const int has_native = mpi && world && world->ops->allreduce_native != NULL;
    const double flops = helix_model_flops(&mc);
    if (mpi) cli_watchdog(timeout, flops);
    char device[200] = "";
    helix_backend **gpu = NULL;   /* --virtual-devices: one CUDA backend per device, on GPU 0, for every layout */
    if (virt && !(gpu = cli_virtual_devices(P, device, sizeof device))) {
        free(x);
        model_weights_close(&w);
        return EXIT_USAGE;   /* as bench kernels --backend cuda: this machine cannot run what was asked */
    }
    cli_gpu_rank grank;   /* --gpu: this rank's GPU and the NCCL world */
    memset(&grank, 0, sizeof grank);
    if (gpu_ranks) {
        int grc = cli_gpu_rank_start(world, root, &grank);
        if (grc != EXIT_OK) {
            free(x);
            model_weights_close(&w);
            return cli_engine_end(&eng, grc, 0);
        }
        snprintf(device, sizeof device, "cuda, one GPU per MPI rank (local rank mod its node's GPUs), NCCL engine");
    }
    if (root) {
        printf("# helix %s bench layouts: %lld devices, engine %s%s%s\n", HELIX_VERSION, (long long)P,
               gpu_ranks ? "nccl over mpi" : mpi ? "mpi" : "inproc",
               mpi ? " " : "", mpi ? helix_mpi_version() : "");
        printf("# model: h=%lld d=%lld (D=%lld) F=%lld layers=%lld B=%lld L=%lld %s%s%s, %s-LN, %s; %.3g GFLOP per forward pass\n",
               (long long)mc.heads, (long long)mc.head_dim, (long long)D, (long long)mc.ffn, (long long)mc.layers,
               (long long)mc.batch, (long long)mc.seq, helix_dtype_name(mc.dtype), mc.causal ? " causal" : "",
               mc.bias ? " bias" : "", helix_norm_name(mc.norm), helix_act_name(mc.act), flops / 1e9);
        if (virt || gpu_ranks) printf("# devices: %s; the check's reference runs on the CPU\n", device);
        else cli_print_kernels(mc.dtype);
        printf("# weights: %s; input: %s\n", mi.weights ? mi.weights : "random from --seed",
               mi.input ? mi.input : "random from --seed");
        printf("# nodes: %s\n", nodes);
        printf("# collectives: %s\n", cli_collectives_text(native, has_native));
        printf("# pipeline: GPipe forward; micro-batches = %s for ppP layouts, 1 otherwise\n",
               mbs ? "--microbatches" : "B (of a replica, dpK)");
        if (dropped[0]) printf("# default layouts left out (not valid for this model on %lld devices): %s\n", (long long)P, dropped);
        printf("# input: %s; loading (X in, Y back to rank 0) is timed apart (load_ms, max rank) and is not\n"
               "#   part of time_ms (the forward pass: wall time less loading, max rank) or tokens/s\n",
               input_root ? "X broadcast from rank 0 (--input-from rank0)" : "every first-stage device reads X (replicated)");
        printf("# time split: mean over ranks, %% of the forward pass: compute, comm (collectives, incl. waiting\n"
               "#   for peers), bubble (pipeline fill + drain), idle (the rest)\n");
        printf("# bytes: MB sent per rank (max over ranks) by kind, and of all of them what went to another node (x_node);\n"
               "#   '= plan' when every rank's every phase and its arena\n"
               "#   equal the plan's prediction; arena: the largest device arena; rss: the OS's peak resident memory (VmHWM) of\n"
               "#   a rank's process, max over ranks (in-process: the one process of all devices, and the high-water mark\n"
               "#   since it started); #wrong: outputs off the float64 reference by more than %.0e x max|ref|\n#\n",
               run_tolerance(mc.dtype));
        printf("# %-22s %11s %10s %6s %6s %6s %6s %8s | %9s %9s %9s %9s %9s %7s | %10s %10s | %9s %6s\n", "layout", "tokens/s", "time_ms",
               "comp%", "comm%", "bubl%", "idle%", "load_ms", "load", "attn_xchg", "allreduce", "p2p", "x_node", "bytes", "arena", "rss", "max_err",
               "#wrong");
    }
    helix_model_stats *stats = calloc(root ? (size_t)P : 1, sizeof *stats);
    ref_cache refs;
    memset(&refs, 0, sizeof refs);
    int runtime_fail = 0, wrote_output = 0;
    for (int k = 0; k < nr; k++) {
        lrow *r = &rows[k];
        if (r->error[0]) { if (root) print_row(r); continue; }
        /* memory: refuse before allocating */
        helix_model_device_plan dp;
        helix_model_plan_device(&r->plan, rank, &dp);
        int64_t host = (root ? 3 * BL * D * 4 : input_root ? 0 : BL * D * 4);
        char why[256] = "";
        int fits = 1;
        if (mpi) {
            fits = cli_mpi_fits(world, dp.peak_bytes + host, why, sizeof why);
        } else {
            int64_t need = host, arena[4096];
            for (int64_t q = 0; q < P; q++) {
                helix_model_plan_device(&r->plan, q, &dp);
                arena[q] = dp.peak_bytes;
                need += dp.peak_bytes;
            }
            fits = virt ? cli_gpu_fits(arena, P, why, sizeof why) && cli_host_fits(need, why, sizeof why)
                        : cli_host_fits(need, why, sizeof why);
        }
        if (!fits) { snprintf(r->error, sizeof r->error, "does not fit: %s", why); if (root) print_row(r); continue; }
        if (root) fprintf(stderr, "  [%d/%d] running %s on %lld devices...\n", k + 1, nr, r->name, (long long)P);
        r->y = root ? malloc(sizeof(float) * (size_t)(BL * D)) : NULL;
        helix_status st;
        if (mpi) {
            st = helix_model_device_run_on(&r->plan, gpu_ranks ? grank.comm : world, grank.be, &w.run, x, r->y, stats, &err);
            if (st) cli_engine_fail(&eng, err.msg);     /* ends the job */
            cli_engine_gather(&eng, stats, sizeof *stats);
        } else {
            st = helix_model_grid_run_on(&r->plan, &w.run, x, r->y, gpu ? (int)P : (int)threads, gpu, stats, &err);
            if (st) { snprintf(r->error, sizeof r->error, "failed: %s", err.msg); runtime_fail = 1; print_row(r); continue; }
        }
        if (root) {
            summarize(r, stats);
            if (check && check_row(r, &refs, &mc, &w.full, x)) runtime_fail = 1;
            for (int64_t q = 0; q < BL * D; q++) r->nonfinite += !(r->y[q] - r->y[q] == 0);
            print_row(r);
            if (r->nonfinite)
                fprintf(stderr, "helix: %s: the output holds %lld non-finite values%s\n", r->name, (long long)r->nonfinite,
                        mi.allow_nonfinite ? "" : " (--allow-nonfinite accepts them)");
            if (output && !wrote_output && r->nonfinite && !mi.allow_nonfinite) {
                fprintf(stderr, "helix: --output not written: %s's output is not finite\n", r->name);
                wrote_output = 1;
            }
            if (output && !wrote_output) {
                if (model_output_write(output, &mc, r->y)) runtime_fail = 1;
                else fprintf(stderr, "  wrote %s's output to %s\n", r->name, output);
                wrote_output = 1;
            }
        }
    }
    int any_wrong = 0, any_diff = 0;
    if (root) {
        for (int k = 0; k < nr; k++) {
            any_wrong |= rows[k].wrong > 0 || (rows[k].nonfinite && !mi.allow_nonfinite);
            any_diff |= !rows[k].error[0] && !rows[k].bytes_match;
        }
        printf("#\n# fastest: ");
        int best = -1;
        for (int k = 0; k < nr; k++) if (!rows[k].error[0] && (best < 0 || rows[k].tok_s > rows[best].tok_s)) best = k;
        if (best >= 0) printf("%s, %.0f tokens/s (%.2f GFLOP/s over %lld devices)\n", rows[best].name, rows[best].tok_s,
                              flops / rows[best].wall_s / 1e9, (long long)P);
        else printf("none ran\n");
        if (mpi) printf("# reproduce: mpirun -np %lld helix bench layouts --devices %lld --layouts ", (long long)P, (long long)P);
        else printf("# reproduce: helix bench layouts --devices %lld --layouts ", (long long)P);
        for (int k = 0; k < nr; k++) printf("%s%s", k ? "," : "", rows[k].name);
        printf(" --heads %lld --head-dim %lld --ffn %lld --layers %lld --batch %lld --seq %lld --dtype %s%s%s --norm %s"
               " --activation %s%s --seed %lld",
               (long long)mc.heads, (long long)mc.head_dim, (long long)mc.ffn, (long long)mc.layers, (long long)mc.batch,
               (long long)mc.seq, helix_dtype_name(mc.dtype), mc.causal ? " --causal" : "", mc.bias ? " --bias" : "",
               helix_norm_name(mc.norm), helix_act_name(mc.act), check ? "" : " --no-check", (long long)seed);
        if (mbs) printf(" --microbatches %lld", (long long)mbs);
        if (rpn) printf(" --ranks-per-node %lld", (long long)rpn);
        if (input_root) printf(" --input-from rank0");
        if (native) printf(" --collectives native");
        if (virt) printf(" --virtual-devices");
        if (gpu_ranks) printf(" --gpu");
        if (mi.weights) printf(" --weights %s", mi.weights);
        if (mi.prefix) printf(" --layer-prefix '%s'", mi.prefix);
        if (mi.input) printf(" --input %s", mi.input);
        printf("\n");
        if (json) {
            if (write_json(json, rows, nr, &mc, P, mpi ? "mpi" : "inproc")) runtime_fail = 1;
        }
        if (plot) {
            if (write_plot(plot, rows, nr)) {
                fprintf(stderr, "helix: --plot: gnuplot could not write %s (is gnuplot installed? apt-get install gnuplot-nox)\n", plot);
                runtime_fail = 1;
            } else {
                printf("# plot: %s\n", plot);
            }
        }
    }
    cli_virtual_devices_free(gpu, P);
    cli_gpu_rank_end(&grank);
    for (int k = 0; k < nr; k++) { free(rows[k].y); free(rows[k].rank_sent); free(rows[k].rank_recv); free(rows[k].rank_rss); }
    for (int k = 0; k < refs.n; k++) free(refs.ref[k]);
    free(stats);
    free(x);
    model_weights_close(&w);
    cli_engine_end(&eng, any_wrong || any_diff || runtime_fail ? EXIT_CHECK : EXIT_OK, 1);
    int any_error = 0;
    for (int k = 0; k < nr; k++) any_error |= rows[k].error[0] != 0;
    if (runtime_fail) return EXIT_RUNTIME;
    if (any_wrong || any_diff) return EXIT_CHECK;
    return any_error ? EXIT_USAGE : EXIT_OK;
}
