/* run_report.c — what `helix run` prints: the configuration, a table per
 * phase, a line per rank, and the JSON summary. */
#include "run.h"
#include "helix_program.h"

#include <string.h>

/* Device `rank`'s plan, with its traffic as its program predicts it (what
 * the executor runs; helix_plan_device's closed form is the tests' oracle). */
static void predicted(const helix_plan *plan, int64_t rank, helix_device_plan *dp)
{
    helix_plan_device(plan, rank, dp);
    helix_model_plan mp;
    if (helix_model_plan_attention(&plan->cfg, &mp, NULL) == HELIX_OK) helix_program_traffic(&mp, rank, dp->phase, NULL);
}

const char *run_human_bytes(int64_t b, char *buf)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int k = 0;
    while (v >= 1024 && k < 5) { v /= 1024; k++; }
    snprintf(buf, 32, k ? "%.1f %s" : "%.0f %s", v, u[k]);
    return buf;
}

void run_print_header(const run_opts *o, const helix_plan *plan, const char *engine, const char *info)
{
    const helix_config *cfg = &o->cfg;
    const char *rg = plan->regather == HELIX_REGATHER_HEADS ? "/regather(heads)"
                   : plan->regather == HELIX_REGATHER_QUERIES ? "/regather(queries)"
                   : cfg->mode == HELIX_MODE_EXACT ? "/scores" : "";
    printf("# helix %s run  engine=%s  devices=%lld  threads=%lld%s%s\n", HELIX_VERSION, engine,
           (long long)plan->P, (long long)o->threads, info && *info ? "  " : "", info ? info : "");
    printf("# model: h=%lld d=%lld D=%lld  B=%lld L=%lld  dtype=%s  causal=%s  W_O=%s  bias=%s  scale=%.6g\n",
           (long long)cfg->heads, (long long)cfg->head_dim, (long long)plan->D, (long long)cfg->batch,
           (long long)cfg->seq, helix_dtype_name(cfg->dtype), cfg->causal ? "yes" : "no",
           cfg->out_proj ? "yes" : "no", cfg->bias ? "yes" : "no", plan->scale);
    if (o->device[0]) printf("# devices: %s (the check's reference runs on the CPU)\n", o->device);
    else cli_print_kernels(cfg->dtype);
    if (o->nodes[0]) printf("# nodes: %s\n", o->nodes);
    printf("# collectives: %s\n", cli_collectives_text(cfg->native_collectives, strcmp(engine, "inproc") != 0));
    if (cfg->kv_len) {
        printf("# key padding: keys seen per batch row");
        for (int64_t b = 0; b < cfg->batch && b < 16; b++) printf(" %lld", (long long)cfg->kv_len[b]);
        printf("%s (of L=%lld)\n", cfg->batch > 16 ? " ..." : "", (long long)cfg->seq);
    }
    printf("# grid: n=%lld groups x m=%lld slices  h_g=%lld heads/group  d_s=%lld features/slice  mode=%s%s\n",
           (long long)cfg->groups, (long long)cfg->slices, (long long)plan->hg, (long long)plan->ds,
           helix_mode_name(cfg->mode), rg);
    if (cfg->mode == HELIX_MODE_SLICED)
        printf("# note: sliced = MHA with %lld heads of width %lld, not the %lld-head model\n",
               (long long)(cfg->heads * cfg->slices), (long long)plan->ds, (long long)cfg->heads);
    fflush(stdout);
}

static double phase_max(const run_result *r, int ph)
{
    double t = 0;
    for (int64_t k = 0; k < r->plan->P; k++) if (r->stats[k].time_s[ph] > t) t = r->stats[k].time_s[ph];
    return t;
}

/* The model's FLOPs in one forward pass (what any layout must compute):
 * Q, K, V = X W (2 B L D hd each), attention 4 hd per (query, visible key)
 * pair, W_O 2 B L hd D. */
static double model_flops(const helix_config *cfg, int64_t D)
{
    const double hd = (double)cfg->heads * (double)cfg->head_dim, BL = (double)cfg->batch * (double)cfg->seq;
    double pairs = 0;
    for (int64_t b = 0; b < cfg->batch; b++) {
        int64_t kv = cfg->kv_len && cfg->kv_len[b] < cfg->seq ? cfg->kv_len[b] : cfg->seq;
        if (kv < 0) kv = 0;
        if (!cfg->causal) pairs += (double)cfg->seq * (double)kv;
        else pairs += (double)kv * (double)(kv + 1) / 2 + (double)(cfg->seq - kv) * (double)kv;  /* row i sees min(i+1, kv) */
    }
    return 6 * BL * (double)D * hd + 4 * hd * pairs + (cfg->out_proj ? 2 * BL * hd * (double)D : 0);
}

/* The model's FLOP rate over the pass, and the fraction of the path's
 * peak where the run measured it (in one process on the CPU). */
static void run_print_compute(const run_result *r)
{
    const double f = model_flops(&r->o->cfg, r->plan->D), t = run_pass_s(r);
    if (t <= 0) return;
    printf("# compute: %.3g GFLOP of the model (QKV, attention%s) in the pass = %.1f GFLOP/s", f / 1e9,
           r->o->cfg.out_proj ? ", W_O" : "", f / t / 1e9);
    if (r->peak_flops > 0)
        printf(",\n#   %.1f %% of the path's peak (%s, %d thread%s: %.1f GFLOP/s, measured after the pass)\n",
               100 * f / t / r->peak_flops, r->peak_unit, r->peak_threads, r->peak_threads == 1 ? "" : "s",
               r->peak_flops / 1e9);
    else printf("\n");
}

void run_print_tables(run_result *r)
{
    const int64_t P = r->plan->P;
    printf("#\n# %-11s %12s %16s %16s\n", "phase", "time_ms", "sent_bytes", "recv_bytes");
    printf("# %-11s %12s %16s %16s\n", "", "(max rank)", "(all ranks)", "(all ranks)");
    for (int ph = 0; ph < HELIX_NPHASES; ph++) {
        int64_t s = 0, rcv = 0;
        for (int64_t k = 0; k < P; k++) {
            s += r->stats[k].phase[ph].sent_bytes;
            rcv += r->stats[k].phase[ph].recv_bytes;
        }
        double t = phase_max(r, ph);
        if (t == 0 && s == 0 && rcv == 0) continue;
        printf("  %-11s %12.3f %16lld %16lld\n", helix_phase_name((helix_phase)ph), 1e3 * t, (long long)s,
               (long long)rcv);
    }
    printf("#\n# %4s %7s %16s %16s %16s %14s %14s\n", "rank", "(i,j)", "sent_bytes", "recv_bytes", "predicted",
           "arena", "rss");
    r->bytes_match = 1;
    char hb[32], hr[32];
    for (int64_t k = 0; k < P; k++) {
        helix_device_plan dp;
        predicted(r->plan, k, &dp);
        int64_t s = 0, rcv = 0;
        int same = 1;
        for (int ph = 0; ph < HELIX_NPHASES; ph++) {
            s += r->stats[k].phase[ph].sent_bytes;
            rcv += r->stats[k].phase[ph].recv_bytes;
            same &= helix_traffic_eq(&r->stats[k].phase[ph], &dp.phase[ph]);   /* per link class too */
        }
        r->bytes_match &= same;
        char ij[48];
        snprintf(ij, sizeof ij, "(%lld,%lld)", (long long)dp.i, (long long)dp.j);
        const int64_t rss = r->stats[k].peak_rss_bytes;
        printf("  %4lld %7s %16lld %16lld %16s %14s %14s\n", (long long)k, ij, (long long)s, (long long)rcv,
               same ? "= plan" : "MISMATCH", run_human_bytes(r->stats[k].arena_bytes, hb), rss < 0 ? "-" : run_human_bytes(rss, hr));
    }
    printf("#\n# time: %.3f s wall for the forward pass on %lld devices (slowest device, from a start barrier after\n"
           "#   setup); %.3f s with setup (arenas, weight shards, communicators)\n", run_pass_s(r), (long long)P,
           r->elapsed_s);
    run_print_compute(r);
    printf("# bytes: %s the plan's prediction on every rank and phase\n",
           r->bytes_match ? "match" : "DO NOT match");
    printf("# memory: arena = the device's one allocation (= plan); rss = the OS's peak resident memory (VmHWM) of\n"
           "#   its process%s\n", strcmp(r->engine, "inproc") ? "" : " (in-process: one process for all devices)");
}

double run_pass_s(const run_result *r)
{
    double t = 0;
    for (int64_t k = 0; k < r->plan->P; k++) if (r->stats[k].wall_s > t) t = r->stats[k].wall_s;
    return t;
}

int run_write_json(const run_result *r)
{
    const run_opts *o = r->o;
    const helix_config *cfg = &o->cfg;
    const int64_t P = r->plan->P;
    jw j;
    if (jw_open(&j, o->json)) return EXIT_RUNTIME;
    jw_obj(&j, NULL);
    jw_obj(&j, "config");
    jw_int(&j, "heads", cfg->heads); jw_int(&j, "head_dim", cfg->head_dim);
    jw_int(&j, "groups", cfg->groups); jw_int(&j, "slices", cfg->slices);
    jw_int(&j, "batch", cfg->batch); jw_int(&j, "seq", cfg->seq); jw_int(&j, "devices", P);
    jw_str(&j, "dtype", helix_dtype_name(cfg->dtype)); jw_str(&j, "mode", helix_mode_name(cfg->mode));
    jw_str(&j, "exact_algo", helix_exact_algo_name(cfg->exact_algo));
    jw_bool(&j, "causal", cfg->causal); jw_bool(&j, "out_proj", cfg->out_proj); jw_bool(&j, "bias", cfg->bias);
    if (cfg->kv_len) {
        jw_arr(&j, "kv_len");
        for (int64_t b = 0; b < cfg->batch; b++) jw_int(&j, NULL, cfg->kv_len[b]);
        jw_end_arr(&j);
    }
    jw_num(&j, "scale", r->plan->scale); jw_int(&j, "seed", o->seed); jw_int(&j, "threads", o->threads);
    jw_str(&j, "engine", r->engine);
    jw_str(&j, "devices", r->o->device[0] ? r->o->device : "cpu");
    jw_end_obj(&j);
    jw_obj(&j, "check");
    jw_bool(&j, "ran", r->checked);
    jw_num(&j, "max_abs_err", r->max_abs); jw_num(&j, "max_rel_err", r->max_rel);
    jw_num(&j, "tolerance", run_tolerance(cfg->dtype)); jw_bool(&j, "passed", r->checked && r->passed);
    jw_end_obj(&j);
    jw_int(&j, "exit_code", r->exit_code);
    jw_int(&j, "nonfinite_outputs", r->nonfinite);
    if (o->output) {
        jw_obj(&j, "output");
        jw_str(&j, "path", o->output);
        jw_bool(&j, "written", r->output_written);
        if (r->output_error) jw_str(&j, "error", r->output_error);
        jw_end_obj(&j);
    }
    jw_num(&j, "time_s", run_pass_s(r));
    jw_num(&j, "model_flops", model_flops(cfg, r->plan->D));
    jw_num(&j, "time_with_setup_s", r->elapsed_s);
    if (r->kernels_s > 0) { jw_num(&j, "kernels_alone_s", r->kernels_s); jw_num(&j, "overhead_ratio", run_pass_s(r) / r->kernels_s); }
    jw_arr(&j, "phases");
    for (int ph = 0; ph < HELIX_NPHASES; ph++) {
        jw_obj(&j, NULL);
        jw_str(&j, "name", helix_phase_name((helix_phase)ph));
        jw_num(&j, "time_s_max", phase_max(r, ph));
        jw_end_obj(&j);
    }
    jw_end_arr(&j);
    jw_obj(&j, "comm");
    jw_bool(&j, "matches_plan", r->bytes_match);
    jw_int(&j, "ranks_per_node", r->o->cfg.ranks_per_node ? r->o->cfg.ranks_per_node : r->plan->P);
    jw_str(&j, "collectives", cli_collectives_name(r->o->cfg.native_collectives, strcmp(r->engine, "inproc") != 0));
    jw_arr(&j, "per_rank");
    for (int64_t k = 0; k < P; k++) {
        helix_device_plan dp;
        predicted(r->plan, k, &dp);
        int64_t s = 0, rcv = 0;
        jw_obj(&j, NULL);
        jw_int(&j, "rank", k); jw_int(&j, "i", dp.i); jw_int(&j, "j", dp.j);
        jw_obj(&j, "phases");
        for (int ph = 0; ph < HELIX_NPHASES; ph++) {
            const helix_traffic *t = &r->stats[k].phase[ph];
            s += t->sent_bytes; rcv += t->recv_bytes;
            jw_obj(&j, helix_phase_name((helix_phase)ph));
            jw_int(&j, "sent_bytes", t->sent_bytes);
            jw_int(&j, "recv_bytes", t->recv_bytes);
            jw_int(&j, "predicted_sent_bytes", dp.phase[ph].sent_bytes);
            jw_int(&j, "predicted_recv_bytes", dp.phase[ph].recv_bytes);
            jw_num(&j, "time_s", r->stats[k].time_s[ph]);
            jw_end_obj(&j);
        }
        jw_end_obj(&j);
        jw_int(&j, "sent_bytes", s); jw_int(&j, "recv_bytes", rcv);
        jw_end_obj(&j);
    }
    jw_end_arr(&j);
    jw_end_obj(&j);
    jw_obj(&j, "memory");
    jw_arr(&j, "per_device_peak_bytes");
    for (int64_t k = 0; k < P; k++) jw_int(&j, NULL, r->stats[k].arena_bytes);
    jw_end_arr(&j);
    jw_arr(&j, "per_rank_peak_rss_bytes");
    for (int64_t k = 0; k < P; k++) jw_int(&j, NULL, r->stats[k].peak_rss_bytes);
    jw_end_arr(&j);
    jw_end_obj(&j);
    jw_end_obj(&j);
    return jw_close(&j, o->json) ? EXIT_RUNTIME : EXIT_OK;
}
