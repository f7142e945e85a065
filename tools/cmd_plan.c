/* cmd_plan.c — `helix plan`: for a model, a device count and a machine,
 * enumerate every legal layout, pick for each the micro-batch count that
 * fits and runs fastest, and print them ranked by predicted tokens/s, with
 * the time split, bytes per device by link type and memory per device.
 * `--validate` runs small layouts here (in-process and MPI, through
 * `helix bench layouts --json`) and prints predicted against measured. */
#include "cli.h"
#include "helix_model.h"
#include "run.h"
#include "cpu.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HELIX_SOURCE_DIR
#define HELIX_SOURCE_DIR "."
#endif

static const char *plan_help =
    "usage: helix plan [options]\n"
    "       helix plan --validate [--hardware FILE]\n"
    "\n"
    "Predicts, for every legal layout of a model on P devices of a machine\n"
    "(helix n x m sliced and exact, TP x PP, pure TP, pure PP; each also\n"
    "sequence parallel, -sp, and as dpK data-parallel replicas), the tokens/s of\n"
    "one forward pass (loading apart), where the time goes, the bytes each device\n"
    "sends inside and between nodes, and its memory; picks the micro-batch count\n"
    "that fits and runs fastest; ranks the layouts. Formulas: src/planner/cost.c.\n"
    "  --preset NAME     paper: h=16 d=512 F=32768 2 layers B=1024 L=10000 f16, 16 devices\n"
    "  --heads H --head-dim d --ffn F --layers N --batch B --seq L   model   [16 64 4096 2 4 1024]\n"
    "  --dtype T         f32, bf16 or f16 (fp32, fp16 too)             [f32]\n"
    "  --causal          causal attention\n"
    "  --norm N          pre or post (LayerNorm placement; same cost)  [pre]\n"
    "  --activation A    gelu, gelu-tanh or relu (ReLU: no gelu_rate)  [gelu]\n"
    "  --devices P       devices                                       [16]\n"
    "  --hardware HW     h100-dgx, h200-dgx, this-machine or a .hw file [h100-dgx]\n"
    "  --layouts LIST    only these (helixNxM-sliced, tpTppP, dp2-tp8, tp8pp2-sp,\n"
    "                    ...)                                          [all legal]\n"
    "  --microbatches M  fix the micro-batch count (0: choose)         [0]\n"
    "  --json FILE       also write the ranking as JSON\n"
    "  --validate        run small layouts on this machine, in-process and with\n"
    "                    mpirun (HELIX_MPIRUN, default 'mpirun'), and compare\n"
    "                    predicted and measured time and bytes. Calibrates this\n"
    "                    machine first, or takes --hardware FILE written here\n"
    "                    (a file from another CPU is refused). Exit 1 when the\n"
    "                    bytes differ or the median time error is above 20%\n";

typedef helix_candidate cand;

/* a path too long for the buffer is cut and then simply not found */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* hw name -> file: as given if it exists, else <dir>/<name>.hw for
 * $HELIX_HW_DIR, the binary's ../hw and ../share/helix/hw, the source tree. */
static int find_hw(const char *name, char *path, size_t n)
{
    if (access(name, R_OK) == 0) { snprintf(path, n, "%s", name); return 0; }
    char exe[PATH_MAX] = "";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) { exe[len] = 0; char *sl = strrchr(exe, '/'); if (sl) *sl = 0; }
    const char *env = getenv("HELIX_HW_DIR");
    char dirs[4][PATH_MAX + 32];
    int nd = 0;
    if (env) snprintf(dirs[nd++], sizeof dirs[0], "%s", env);
    if (len > 0) {
        snprintf(dirs[nd++], sizeof dirs[0], "%s/../hw", exe);
        snprintf(dirs[nd++], sizeof dirs[0], "%s/../share/helix/hw", exe);
    }
    snprintf(dirs[nd++], sizeof dirs[0], "%s/hw", HELIX_SOURCE_DIR);
    for (int k = 0; k < nd; k++) {
        snprintf(path, n, "%s/%s.hw", dirs[k], name);
        if (access(path, R_OK) == 0) return 0;
    }
    return -1;
}

static void print_cand(int rank, const cand *c)
{
    if (!c->ok) { printf("  %4s %-24s %s\n", "-", c->name, c->why); return; }
    const helix_prediction *p = &c->pr;
    char rk[16];
    if (rank > 0) snprintf(rk, sizeof rk, "%d", rank);
    else snprintf(rk, sizeof rk, "-");
    const int other = c->lay.kind == HELIX_LAYOUT_HELIX && c->lay.mode == HELIX_MODE_SLICED;
    printf("  %4s %-24s %5lld %12.4g %10.4g %8.3g %6.1f %6.1f %6.1f | %10.3g %10.3g | %10.3g %s%s%s\n", rk, c->name,
           (long long)c->plan.mb, p->tokens_per_s, p->total_s, p->load_s, 100 * p->compute_s / p->total_s,
           100 * p->comm_s / p->total_s, 100 * p->bubble_s / p->total_s, p->intra_bytes / 1e9, p->inter_bytes / 1e9,
           p->mem_bytes / 1e9, p->fits ? "yes" : "NO: ", p->fits ? "" : p->why, other ? "  (different model)" : "");
}

/* ------------------------------------------------------------ sensitivity */

/* the assumptions the sensitivity moves, one at a time */
static const char *const knob_names[] = {"peak FLOP/s", "GEMM efficiency", "attention efficiency", "memory bandwidth",
                                         "in-node bandwidth", "between-node bandwidth", "in-node latency",
                                         "between-node latency"};
enum { N_KNOBS = sizeof knob_names / sizeof knob_names[0] };

static void scale_table(helix_eff_table *t, double scale)
{
    for (int r = 0; r < t->n; r++) t->e[r] = t->e[r] * scale > 1 ? 1 : t->e[r] * scale;
}

/* assumption q of h times scale (efficiencies, their tables' too, capped
 * at the peak) */
static void move_knob(helix_hw *h, int q, double scale)
{
    switch (q) {
    case 0: for (int t = 0; t < 3; t++) h->flops[t] *= scale; break;
    case 1: h->eff_gemm *= scale; scale_table(&h->gemm, scale); break;
    case 2: h->eff_attn *= scale; scale_table(&h->attn, scale); break;
    case 3: h->mem_bw *= scale; break;
    case 4: h->intra_bw *= scale; break;
    case 5: h->inter_bw *= scale; break;
    case 6: h->intra_lat *= scale; break;
    default: h->inter_lat *= scale; break;
    }
}

/* The verdict with one assumption of the hardware file moved: a / b - 1
 * (tokens/s) for candidates a and b re-planned (micro-batches chosen
 * again) on the moved machine. */
static double moved_ratio(const cand *a, const cand *b, const helix_model_config *mc, int64_t P, const helix_hw *hw,
                          int knob_i, double scale, int64_t fixed_mb)
{
    helix_hw h = *hw;
    move_knob(&h, knob_i, scale);
    cand x = *a, y = *b;
    helix_candidate_evaluate(&x, mc, P, &h, fixed_mb);
    helix_candidate_evaluate(&y, mc, P, &h, fixed_mb);
    if (!x.ok || !y.ok || !x.pr.fits || !y.pr.fits) return NAN;
    return x.pr.tokens_per_s / y.pr.tokens_per_s - 1;
}

/* ------------------------------------------------------------ validate */

typedef struct {
    char name[48];
    const char *engine;
    double pred_s, meas_s, err;
    int bytes_exact;
    double inter_pred, inter_meas;   /* bytes sent between nodes, max over ranks */
} vrow;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int validate(const helix_hw *hw, const char *hwpath)
{
    /* compute-heavy enough to time, small enough for a few seconds each */
    helix_model_config mc = helix_model_config_default();
    mc.heads = 8; mc.head_dim = 32; mc.ffn = 2048; mc.layers = 4; mc.batch = 4; mc.seq = 256;
    const int64_t P = 4, rpn = 2;    /* two emulated nodes of 2 */
    const char *list = "helix2x2-sliced,helix2x2-exact,helix2x2-exact-scores,helix1x4-exact,tp4,tp2pp2,tp2pp2-sp,dp2-tp2,pp4";
    helix_hw hw2 = *hw;              /* the same machine, its ranks in nodes of 2 */
    hw2.devices_per_host = hw->devices_per_host > 0 ? hw->devices_per_host : hw->devices_per_node;   /* one host's cores */
    hw2.devices_per_node = rpn;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) { fprintf(stderr, "helix: cannot find my own executable\n"); return EXIT_RUNTIME; }
    exe[len] = 0;
    const char *mpirun = getenv("HELIX_MPIRUN") ? getenv("HELIX_MPIRUN") : "mpirun";
    /* Open MPI refuses root and more ranks than cores unless told: tell it
     * for the runs this command starts (never for the caller's own shell) */
    const int as_root = geteuid() == 0 && !getenv("OMPI_ALLOW_RUN_AS_ROOT");
    if (as_root) { setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0); setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0); }
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    printf("# helix %s plan --validate on %s (%s)\n", HELIX_VERSION, hw->name, hwpath);
    printf("# model: h=%lld d=%lld F=%lld layers=%lld B=%lld L=%lld f32 on %lld devices in 2 emulated nodes of %lld\n"
           "#   (--ranks-per-node %lld: collectives spanning them run hierarchically, bytes per link class counted);\n"
           "#   each layout timed by 'helix bench layouts' (forward pass, best of 3 runs), predicted by the cost model\n#\n",
           (long long)mc.heads, (long long)mc.head_dim, (long long)mc.ffn, (long long)mc.layers, (long long)mc.batch,
           (long long)mc.seq, (long long)P, (long long)rpn, (long long)rpn);
    if (as_root) printf("# running as root: OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 set for the mpirun runs\n#\n");
    printf("# %-8s %-24s %12s %12s %9s %14s %12s %12s\n", "engine", "layout", "predicted_ms", "measured_ms", "error", "bytes",
           "x_node_pred", "x_node_meas");
    vrow rows[64];
    int nr = 0;
    const char *engines[2] = {"inproc", "mpi"};
    for (int e = 0; e < 2; e++) {
        double best[16];
        for (int q = 0; q < 16; q++) best[q] = INFINITY;
        json_t *runs[3] = {NULL, NULL, NULL};
        int got = 0;
        for (int it = 0; it < 3; it++) {
            char tmp[] = "/tmp/helix-validate-XXXXXX";
            int fd = mkstemp(tmp);
            if (fd < 0) break;
            close(fd);
            char cmd[2 * PATH_MAX];
            snprintf(cmd, sizeof cmd,
                     "%s%s '%s' bench layouts --backend %s --devices %lld --ranks-per-node %lld --layouts %s --heads %lld "
                     "--head-dim %lld --ffn %lld --layers %lld --batch %lld --seq %lld --no-check --json %s >/dev/null 2>&1 </dev/null",
                     e ? mpirun : "", e ? " -np 4" : "", exe, engines[e], (long long)P, (long long)rpn, list, (long long)mc.heads,
                     (long long)mc.head_dim, (long long)mc.ffn, (long long)mc.layers, (long long)mc.batch,
                     (long long)mc.seq, tmp);
            fprintf(stderr, "  validate: %s run %d/3...\n", engines[e], it + 1);
            int rc = system(cmd);
            json_error_t je;
            json_t *j = rc == 0 ? json_load_file(tmp, 0, &je) : NULL;
            unlink(tmp);
            if (!j) {
                if (e) printf("  %-8s (not run: '%s -np 4 ...' failed; under root set OMPI_ALLOW_RUN_AS_ROOT=1 "
                              "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 and allow oversubscription)\n", "mpi", mpirun);
                else printf("  %-8s (not run: 'helix bench layouts' failed)\n", "inproc");
                break;
            }
            runs[got++] = j;
        }
        if (got < 3) { for (int q = 0; q < got; q++) json_decref(runs[q]); continue; }
        json_t *lays = json_object_get(runs[0], "layouts");
        for (size_t q = 0; q < json_array_size(lays) && q < 16 && nr < 64; q++) {
            json_t *r0 = json_array_get(lays, q);
            const char *name = json_string_value(json_object_get(r0, "layout"));
            if (!name || json_object_get(r0, "error")) continue;
            for (int it = 0; it < 3; it++) {
                double w = json_number_value(json_object_get(json_array_get(json_object_get(runs[it], "layouts"), q), "wall_s"));
                if (w > 0 && w < best[q]) best[q] = w;
            }
            helix_layout lay;
            helix_model_plan pl;
            helix_err err = {{0}};
            if (helix_layout_parse(name, &lay, &err)) continue;
            lay.microbatches = json_integer_value(json_object_get(r0, "microbatches"));
            lay.ranks_per_node = rpn;
            if (helix_model_plan_init(&mc, &lay, P, &pl, &err)) continue;
            helix_prediction pr;
            helix_model_predict(&pl, &hw2, &pr);
            /* bytes: every rank's measured totals against the plan's */
            int exact = json_is_true(json_object_get(r0, "bytes_equal_plan"));
            double inter_pred = 0;
            json_t *sent = json_object_get(r0, "sent_bytes_per_rank"), *recv = json_object_get(r0, "recv_bytes_per_rank");
            for (int64_t rk = 0; rk < P; rk++) {
                helix_model_device_plan dp;
                helix_model_plan_device(&pl, rk, &dp);
                int64_t s = 0, rv = 0;
                double x = 0;
                for (int ph = 0; ph < HELIX_NPHASES; ph++) {
                    s += dp.phase[ph].sent_bytes;
                    rv += dp.phase[ph].recv_bytes;
                    x += (double)dp.phase[ph].inter_sent_bytes;
                }
                if (x > inter_pred) inter_pred = x;
                exact &= json_integer_value(json_array_get(sent, (size_t)rk)) == s &&
                         json_integer_value(json_array_get(recv, (size_t)rk)) == rv;
            }
            vrow *v = &rows[nr++];
            snprintf(v->name, sizeof v->name, "%s", name);
            v->engine = engines[e];
            v->pred_s = pr.total_s;
            v->meas_s = best[q];
            v->err = (pr.total_s - best[q]) / best[q];
            v->inter_pred = inter_pred;
            v->inter_meas = json_number_value(json_object_get(r0, "inter_node_bytes"));
            v->bytes_exact = exact && v->inter_pred == v->inter_meas;
            printf("  %-8s %-24s %12.2f %12.2f %+8.1f%% %14s %12.0f %12.0f\n", v->engine, v->name, 1e3 * v->pred_s,
                   1e3 * v->meas_s, 100 * v->err, v->bytes_exact ? "exact" : "DIFFER", v->inter_pred, v->inter_meas);
            fflush(stdout);
        }
        for (int q = 0; q < got; q++) json_decref(runs[q]);
    }
    if (!nr) { printf("# nothing ran\n"); return EXIT_RUNTIME; }
    double abs_err[64], worst = 0;
    int all_exact = 1, wi = 0;
    for (int k = 0; k < nr; k++) {
        abs_err[k] = fabs(rows[k].err);
        if (abs_err[k] > worst) { worst = abs_err[k]; wi = k; }
        all_exact &= rows[k].bytes_exact;
    }
    qsort(abs_err, (size_t)nr, sizeof abs_err[0], cmp_double);
    double med = nr % 2 ? abs_err[nr / 2] : 0.5 * (abs_err[nr / 2 - 1] + abs_err[nr / 2]);
    printf("#\n# %d layouts: median |time error| %.1f%% (target <= 20%%), worst %.1f%% (%s %s); bytes %s\n", nr, 100 * med,
           100 * worst, rows[wi].engine, rows[wi].name,
           all_exact ? "predicted = measured on every rank, per phase and link class" : "DIFFER");
    if (strcmp(hwpath, "calibrated in this run")) printf("# reproduce: helix plan --validate --hardware %s\n", hwpath);
    else printf("# reproduce: helix plan --validate\n");
    return all_exact && med <= 0.20 ? EXIT_OK : EXIT_CHECK;
}

/* The CPU model a hardware file was calibrated on: its "# cpu: MODEL, ..." line. */
static int hw_cpu(const char *path, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int found = -1;
    while (found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "# cpu: ", 7)) continue;
        char *comma = strstr(line + 7, ", ");
        if (comma) *comma = 0;
        snprintf(out, n, "%s", line + 7);
        found = 0;
    }
    fclose(f);
    return found;
}

/* --validate without --hardware: calibrate this machine now (helix
 * calibrate --out into a temporary file), then validate against it */
static int validate_here(void)
{
    char exe[PATH_MAX], tmp[] = "/tmp/helix-validate-hw-XXXXXX";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) { fprintf(stderr, "helix: cannot find my own executable\n"); return EXIT_RUNTIME; }
    exe[len] = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) { fprintf(stderr, "helix: cannot make a temporary file\n"); return EXIT_RUNTIME; }
    close(fd);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "'%s' calibrate --out '%s' >/dev/null 2>&1 </dev/null", exe, tmp);
    fprintf(stderr, "  validate: calibrating this machine first (helix calibrate)...\n");
    helix_hw hw;
    helix_err err = {{0}};
    int rc = system(cmd) == 0 && helix_hw_load(tmp, &hw, &err) == HELIX_OK ? EXIT_OK : EXIT_RUNTIME;
    if (rc == EXIT_OK) rc = validate(&hw, "calibrated in this run");
    else fprintf(stderr, "helix: --validate: calibrating this machine failed%s%s\n", err.msg[0] ? ": " : "", err.msg);
    unlink(tmp);
    return rc;
}

/* ---------------------------------------------------------------- main */

/* "0.70 (constant)" or "0.70*s/(s+128)" */
static const char *eff_text(double eff, double half, const char *v, char *buf)
{
    if (half > 0) snprintf(buf, 64, "%.2f*%s/(%s+%g)", eff, v, v, half);
    else snprintf(buf, 64, "%.2f (constant)", eff);
    return buf;
}

/* an efficiency as the cost model reads it: the table by size, or the formula */
static const char *table_text(const helix_eff_table *t, const char *by, double eff, double half, const char *v,
                              char *buf, size_t n)
{
    if (t->n <= 0) return eff_text(eff, half, v, buf);
    size_t u = (size_t)snprintf(buf, n, "by %s", by);
    for (int q = 0; q < t->n && u < n; q++) u += (size_t)snprintf(buf + u, n - u, "%s %g: %.2f", q ? "," : "", t->x[q], t->e[q]);
    return buf;
}

int cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preset", required_argument, 0, 'r'}, {"heads", required_argument, 0, 'H'}, {"head-dim", required_argument, 0, 'd'},
        {"ffn", required_argument, 0, 'F'}, {"layers", required_argument, 0, 'N'}, {"batch", required_argument, 0, 'B'},
        {"seq", required_argument, 0, 'L'}, {"dtype", required_argument, 0, 'T'}, {"causal", no_argument, 0, 'c'},
        {"devices", required_argument, 0, 'P'}, {"hardware", required_argument, 0, 'w'}, {"layouts", required_argument, 0, 'y'},
        {"microbatches", required_argument, 0, 'M'}, {"json", required_argument, 0, 'j'}, {"validate", no_argument, 0, 'v'},
        {"norm", required_argument, 0, 'R'}, {"activation", required_argument, 0, 'G'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    helix_model_config mc = helix_model_config_default();
    mc.heads = 16; mc.head_dim = 64; mc.ffn = 4096; mc.layers = 2; mc.batch = 4; mc.seq = 1024;
    int64_t P = 16, fixed_mb = 0;
    const char *hwname = NULL, *json = NULL, *preset = NULL;
    char list[1024] = "";
    int do_validate = 0, c, bad = 0, set_P = 0, set_model = 0;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': preset = optarg; break;
        case 'H': bad = cli_int("--heads", optarg, 1, 1 << 16, &mc.heads); set_model = 1; break;
        case 'd': bad = cli_int("--head-dim", optarg, 1, 1 << 16, &mc.head_dim); set_model = 1; break;
        case 'F': bad = cli_int("--ffn", optarg, 1, 1 << 24, &mc.ffn); set_model = 1; break;
        case 'N': bad = cli_int("--layers", optarg, 1, 4096, &mc.layers); set_model = 1; break;
        case 'B': bad = cli_int("--batch", optarg, 1, 1 << 24, &mc.batch); set_model = 1; break;
        case 'L': bad = cli_int("--seq", optarg, 1, 1 << 24, &mc.seq); set_model = 1; break;
        case 'T':
            if (helix_dtype_parse(optarg, &mc.dtype)) { fprintf(stderr, "helix: --dtype: unknown '%s' (f32, bf16, f16)\n", optarg); bad = 1; }
            set_model = 1;
            break;
        case 'c': mc.causal = 1; set_model = 1; break;
        case 'R': bad = cli_norm(optarg, &mc.norm); set_model = 1; break;
        case 'G': bad = cli_act(optarg, &mc.act); set_model = 1; break;
        case 'P': bad = cli_int("--devices", optarg, 1, 65536, &P); set_P = 1; break;
        case 'w': hwname = optarg; break;
        case 'y': snprintf(list, sizeof list, "%s", optarg); break;
        case 'M': bad = cli_int("--microbatches", optarg, 0, 1 << 24, &fixed_mb); break;
        case 'j': json = optarg; break;
        case 'v': do_validate = 1; break;
        case 'h': fputs(plan_help, stdout); return EXIT_OK;
        case ':': fprintf(stderr, "helix plan: %s needs a value\n", argv[optind - 1]); bad = 1; break;
        default: fprintf(stderr, "helix plan: unknown option '%s' (try --help)\n", argv[optind - 1]); bad = 1; break;
        }
    }
    if (bad) return EXIT_USAGE;
    if (optind < argc) { fprintf(stderr, "helix plan: unexpected argument '%s'\n", argv[optind]); return EXIT_USAGE; }
    if (do_validate && (set_model || set_P || preset || list[0] || fixed_mb || json)) {
        fprintf(stderr, "helix: --validate runs its own small model on 4 devices of this machine: drop the model, "
                        "--devices, --preset, --layouts, --microbatches and --json options\n");
        return EXIT_USAGE;
    }
    if (do_validate && !hwname) return validate_here();
    if (!hwname) hwname = "h100-dgx";
    char hwpath[PATH_MAX + 64];
    if (find_hw(hwname, hwpath, sizeof hwpath)) {
        fprintf(stderr, "helix: --hardware: no file '%s' and no %s.hw in $HELIX_HW_DIR, next to the binary or in %s/hw%s\n",
                hwname, hwname, HELIX_SOURCE_DIR,
                !strcmp(hwname, "this-machine") ? " (write it with: helix calibrate --out hw/this-machine.hw)" : "");
        return EXIT_USAGE;
    }
    helix_hw hw;
    helix_err err = {{0}};
    if (helix_hw_load(hwpath, &hw, &err)) { fprintf(stderr, "helix: %s\n", err.msg); return EXIT_USAGE; }
    if (do_validate) {
        /* a hardware file from another CPU predicts another machine */
        char here[256], there[256];
        cpu_info ci;
        cpu_detect(&ci);
        snprintf(here, sizeof here, "%s", ci.model);
        if (hw_cpu(hwpath, there, sizeof there) || strcmp(here, there)) {
            fprintf(stderr, "helix: --validate: %s describes the CPU '%s', but this machine's is '%s': validate against "
                            "this machine (no --hardware: it calibrates first), or write one with 'helix calibrate --out FILE'\n",
                    hwpath, there[0] ? there : "(not recorded)", here);
            return EXIT_USAGE;
        }
        return validate(&hw, hwpath);
    }

    int paper = 0;
    if (preset) {
        if (strcmp(preset, "paper")) { fprintf(stderr, "helix: --preset: unknown '%s' (known: paper)\n", preset); return EXIT_USAGE; }
        if (set_model) { fprintf(stderr, "helix: --preset paper fixes the model; drop the model options\n"); return EXIT_USAGE; }
        paper = 1;
        mc.heads = 16; mc.head_dim = 512; mc.ffn = 32768; mc.layers = 2; mc.batch = 1024; mc.seq = 10000;
        mc.dtype = HELIX_F16; mc.causal = 0;
        if (!set_P) P = 16;
    }
    cand cs[256];
    int n = 0;
    if (list[0]) {
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok && n < 256; tok = strtok_r(NULL, ",", &save)) {
            cand *cd = &cs[n++];
            memset(cd, 0, sizeof *cd);
            if (helix_layout_parse(tok, &cd->lay, &err)) {
                cli_safe_name(tok, cd->name, sizeof cd->name);
                char safe[200];
                cli_safe_name(err.msg, safe, sizeof safe);
                snprintf(cd->why, sizeof cd->why, "invalid: %s", safe);
                continue;
            }
            helix_layout_name(&cd->lay, cd->name, sizeof cd->name);
        }
    } else {
        n = helix_candidates(cs, 256, &mc, P);
    }
    if (n == 0) {
        fprintf(stderr, "helix: no layout is legal for h=%lld d=%lld, %lld layers on %lld devices: helix n x m needs n | h "
                        "and m | d (n*m = P), TP t needs t | h, PP p needs p <= layers\n", (long long)mc.heads,
                (long long)mc.head_dim, (long long)mc.layers, (long long)P);
        return EXIT_USAGE;
    }
    for (int k = 0; k < n; k++) if (!cs[k].why[0]) helix_candidate_evaluate(&cs[k], &mc, P, &hw, fixed_mb);
    qsort(cs, (size_t)n, sizeof cs[0], helix_candidate_cmp);

    const int64_t D = mc.heads * mc.head_dim;
    char g_txt[200], a_txt[200];
    printf("# helix %s plan: %lld devices of %s (%lld per node; %s)\n", HELIX_VERSION, (long long)P, hw.name,
           (long long)hw.devices_per_node, hwpath);
    printf("# model%s: h=%lld d=%lld (D=%lld) F=%lld layers=%lld B=%lld L=%lld %s%s; %.4g TFLOP per forward pass\n",
           paper ? " (--preset paper)" : "", (long long)mc.heads, (long long)mc.head_dim, (long long)D, (long long)mc.ffn,
           (long long)mc.layers, (long long)mc.batch, (long long)mc.seq, helix_dtype_name(mc.dtype),
           mc.causal ? " causal" : "", helix_model_flops(&mc) / 1e12);
    printf("# assumptions (the hardware file's; edit it to move them):\n"
           "#   compute: %s peak %.4g TFLOP/s per device; GEMM efficiency %s;\n#     attention %s;\n"
           "#     memory %.4g GB/s; %.4g devices compute at once on a host of %lld devices (more on one host: they\n"
           "#     share its cores, the host's busy time over that count bounds the pass)\n"
           "#   links per device: inside a node %.4g GB/s, %.3g us per message; between nodes %.4g GB/s, %.3g us per message\n"
           "#   collectives: as the executor runs them (fixed summation order): direct reduce-scatter + all-gather, and where\n"
           "#     a group spans nodes hierarchical (in-node reduce-scatter, all-reduce of 1/G shards between nodes, in-node\n"
           "#     all-gather; sequence parallel's reduce-scatter likewise); bytes per link class are the program's\n"
           "#   pipelines: each tensor rank sends its 1/t slice to the next stage, which all-gathers it (-sp: its rows,\n"
           "#     nothing to gather)\n"
           "#   loading: X is replicated (every first-stage device reads its own); Y's return to rank 0 is load_s,\n"
           "#     apart from time_s and tokens/s; dpK replicas exchange nothing in a forward pass\n"
           "#   not modelled yet: compute/communication overlap (none is assumed; a bound with perfect overlap is shown\n"
           "#     for the verdict's layouts), efficiencies beyond the GEMM/attention fits above, assumptions moved together.\n"
           "#     Sliced layouts compute a different model (h*m heads of width d/m): marked (different model)\n",
           helix_dtype_name(mc.dtype), hw.flops[mc.dtype] / 1e12, table_text(&hw.gemm, "smallest dimension", hw.eff_gemm, hw.gemm_half, "s", g_txt, sizeof g_txt),
           table_text(&hw.attn, "head width", hw.eff_attn, hw.attn_half, "w", a_txt, sizeof a_txt), hw.mem_bw / 1e9, hw.parallel,
           (long long)(hw.devices_per_host > 0 ? hw.devices_per_host : hw.devices_per_node), hw.intra_bw / 1e9, hw.intra_lat * 1e6, hw.inter_bw / 1e9, hw.inter_lat * 1e6);
    printf("# predictions of the cost model (src/planner/cost.c): mb = micro-batches chosen (fastest that fits);\n"
           "#   time_s: the forward pass, load_s: loading apart; time split on the critical path; GB (1e9 bytes) sent per\n"
           "#   device in the forward pass inside a node / between nodes; memory per device in GB\n#\n");
    printf("# %4s %-24s %5s %12s %10s %8s %6s %6s %6s | %10s %10s | %10s %s\n", "rank", "layout", "mb", "tokens/s", "time_s",
           "load_s", "comp%", "comm%", "bubl%", "intra_GB", "inter_GB", "mem_GB", "fits");
    int rank = 0;
    for (int k = 0; k < n; k++) print_cand(cs[k].ok && cs[k].pr.fits ? ++rank : 0, &cs[k]);

    /* the verdict: best helix against the best TP x PP, and why */
    const cand *bh = NULL, *bt = NULL;
    for (int k = 0; k < n; k++) {
        const cand *x = &cs[k];
        if (!x->ok || !x->pr.fits) continue;
        if (paper ? !strcmp(x->name, "helix4x4-sliced") : (x->lay.kind == HELIX_LAYOUT_HELIX && !bh)) bh = x;
        if (paper ? !strcmp(x->name, "tp8pp2") : (x->lay.kind == HELIX_LAYOUT_TPPP && !bt)) bt = x;
    }
    printf("#\n");
    if (bh && bt) {
        printf("# verdict%s: %s predicts %.4g tokens/s, %s %.4g tokens/s: %s is %.1f%% %s\n",
               paper ? " (the paper's layouts)" : " (best helix against best TP x PP)", bh->name, bh->pr.tokens_per_s,
               bt->name, bt->pr.tokens_per_s, bh->name, 100 * fabs(bh->pr.tokens_per_s / bt->pr.tokens_per_s - 1),
               bh->pr.tokens_per_s >= bt->pr.tokens_per_s ? "faster" : "slower");
        const cand *two[2] = {bh, bt};
        for (int q = 0; q < 2; q++) {
            const helix_prediction *p = &two[q]->pr;
            printf("#   %-16s bound by %s: compute %.3g s, communication %.3g s, bubble %.3g s; %.3g GB in-node + %.3g GB\n"
                   "#   %-16s between nodes sent per device (max); links busy %.3g s in-node, %.3g s between nodes;\n"
                   "#   %-16s %.3g GB memory per device; %lld micro-batches; with perfect compute/communication overlap\n"
                   "#   %-16s (a bound; none is modelled) %.4g tokens/s\n",
                   two[q]->name, p->bound, p->compute_s, p->comm_s, p->bubble_s, p->intra_bytes / 1e9, p->inter_bytes / 1e9,
                   "", p->intra_busy_s, p->inter_busy_s, "", p->mem_bytes / 1e9, (long long)two[q]->plan.mb, "",
                   p->tokens_per_s_overlap);
        }
    } else {
        printf("# verdict: no helix or no TP x PP layout fits\n");
    }
    /* the same question with sequence parallelism on both sides */
    const cand *sh = NULL, *stp = NULL;
    for (int k = 0; k < n; k++) {
        const cand *x = &cs[k];
        if (!x->ok || !x->pr.fits || !x->lay.seq_parallel || x->plan.R > 1) continue;
        if (paper ? !strcmp(x->name, "helix4x4-sliced-sp") : (x->lay.kind == HELIX_LAYOUT_HELIX && !sh)) sh = x;
        if (paper ? !strcmp(x->name, "tp8pp2-sp") : (x->lay.kind == HELIX_LAYOUT_TPPP && !stp)) stp = x;
    }
    if (sh && stp)
        printf("#   sequence parallel on both: %s %.4g tokens/s, %s %.4g tokens/s: %.1f%% %s\n", sh->name, sh->pr.tokens_per_s,
               stp->name, stp->pr.tokens_per_s, 100 * fabs(sh->pr.tokens_per_s / stp->pr.tokens_per_s - 1),
               sh->pr.tokens_per_s >= stp->pr.tokens_per_s ? "faster" : "slower");
    /* sensitivity: the verdict with each assumption moved by -30 % / +30 % */
    double sens[N_KNOBS][2];
    if (bh && bt) {
        const double base = bh->pr.tokens_per_s / bt->pr.tokens_per_s - 1;
        int flips = 0;
        printf("# sensitivity (%s against %s, now %+.1f%%; each assumption x0.7 / x1.3, the rest as above):\n", bh->name,
               bt->name, 100 * base);
        for (int q = 0; q < N_KNOBS; q++) {
            for (int e = 0; e < 2; e++) {
                sens[q][e] = moved_ratio(bh, bt, &mc, P, &hw, q, e ? 1.3 : 0.7, fixed_mb);
                flips += !isnan(sens[q][e]) && (sens[q][e] >= 0) != (base >= 0);
            }
            char v[2][16];
            for (int e = 0; e < 2; e++)
                if (isnan(sens[q][e])) snprintf(v[e], sizeof v[e], "%8s", "no fit");
                else snprintf(v[e], sizeof v[e], "%+7.1f%%", 100 * sens[q][e]);
            printf("#   %-24s %s  %s\n", knob_names[q], v[0], v[1]);
        }
        printf("#   the verdict's sign %s\n", flips ? "flips under at least one move above" : "holds under every move above");
    }
    /* the best of all, when it is neither */
    const cand *best = NULL;                 /* the fastest that fits and computes this model (not sliced) */
    for (int k = 0; k < n && !best; k++)
        if (cs[k].ok && cs[k].pr.fits && !(cs[k].lay.kind == HELIX_LAYOUT_HELIX && cs[k].lay.mode == HELIX_MODE_SLICED))
            best = &cs[k];
    if (best && (best->lay.replicas > 1 || best->lay.seq_parallel))
        printf("# best of all (this model, not sliced): %s, %.4g tokens/s (%s%s%s) -- not a plain helix or TP x PP layout%s\n", best->name,
               best->pr.tokens_per_s, best->lay.replicas > 1 ? "data-parallel replicas: each holds a whole copy of its weights" : "",
               best->lay.replicas > 1 && best->lay.seq_parallel ? "; " : "", best->lay.seq_parallel ? "sequence parallel" : "",
               best->lay.replicas > 1 ? "; it wins where the weights fit a replica" : "");
    if (paper)
        printf("# paper's claim (reported by the source paper, not measured or modelled here): helix 4x4 ~1.58 M tokens/s, "
               "TP8+PP2 ~1.20 M tokens/s (+31.7%%) on 16 H100\n");
    if (json) {
        jw j;
        if (jw_open(&j, json)) return EXIT_RUNTIME;
        jw_obj(&j, NULL);
        jw_str(&j, "hardware", hw.name); jw_int(&j, "devices", P);
        jw_obj(&j, "assumptions");
        jw_int(&j, "devices_per_node", hw.devices_per_node);
        jw_num(&j, "peak_flops", hw.flops[mc.dtype]); jw_num(&j, "eff_gemm", hw.eff_gemm); jw_num(&j, "gemm_half", hw.gemm_half);
        jw_num(&j, "eff_attention", hw.eff_attn); jw_num(&j, "attention_half", hw.attn_half); jw_num(&j, "mem_bw", hw.mem_bw);
        const helix_eff_table *tabs[2] = {&hw.attn, &hw.gemm};
        const char *tnames[2] = {"eff_attention_by_width", "eff_gemm_by_smallest_dim"}, *tx[2] = {"width", "smallest_dim"};
        for (int ti = 0; ti < 2; ti++) {
            if (tabs[ti]->n <= 0) continue;
            jw_arr(&j, tnames[ti]);
            for (int q = 0; q < tabs[ti]->n; q++) {
                jw_obj(&j, NULL);
                jw_num(&j, tx[ti], tabs[ti]->x[q]); jw_num(&j, "eff", tabs[ti]->e[q]);
                jw_end_obj(&j);
            }
            jw_end_arr(&j);
        }
        jw_num(&j, "intra_bw", hw.intra_bw); jw_num(&j, "intra_lat_s", hw.intra_lat);
        jw_num(&j, "inter_bw", hw.inter_bw); jw_num(&j, "inter_lat_s", hw.inter_lat);
        jw_str(&j, "collectives", "ordered: direct, hierarchical where a group spans nodes");
        jw_bool(&j, "overlap", 0);
        jw_end_obj(&j);
        jw_obj(&j, "model");
        jw_int(&j, "heads", mc.heads); jw_int(&j, "head_dim", mc.head_dim); jw_int(&j, "ffn", mc.ffn);
        jw_int(&j, "layers", mc.layers); jw_int(&j, "batch", mc.batch); jw_int(&j, "seq", mc.seq);
        jw_str(&j, "dtype", helix_dtype_name(mc.dtype)); jw_bool(&j, "causal", mc.causal);
        jw_end_obj(&j);
        jw_arr(&j, "layouts");
        for (int k = 0; k < n; k++) {
            const cand *x = &cs[k];
            jw_obj(&j, NULL);
            jw_str(&j, "layout", x->name);
            if (!x->ok) { jw_str(&j, "error", x->why); jw_end_obj(&j); continue; }
            jw_int(&j, "microbatches", x->plan.mb);
            jw_bool(&j, "fits", x->pr.fits);
            if (!x->pr.fits) jw_str(&j, "why", x->pr.why);
            jw_num(&j, "tokens_per_s", x->pr.tokens_per_s); jw_num(&j, "time_s", x->pr.total_s);
            jw_num(&j, "tokens_per_s_overlap", x->pr.tokens_per_s_overlap);
            jw_num(&j, "load_s", x->pr.load_s); jw_num(&j, "load_bytes", x->pr.load_bytes);
            jw_int(&j, "replicas", x->plan.R); jw_bool(&j, "sequence_parallel", x->lay.seq_parallel);
            jw_bool(&j, "different_model", x->lay.kind == HELIX_LAYOUT_HELIX && x->lay.mode == HELIX_MODE_SLICED);
            jw_obj(&j, "assumptions");
            jw_num(&j, "peak_flops", hw.flops[mc.dtype]);
            jw_num(&j, "eff_gemm_qkv", x->pr.eff_gemm_qkv); jw_num(&j, "eff_attention", x->pr.eff_attention);
            jw_num(&j, "intra_bw", hw.intra_bw); jw_num(&j, "inter_bw", hw.inter_bw);
            jw_int(&j, "devices_per_node", x->plan.layout.ranks_per_node ? x->plan.layout.ranks_per_node : P);
            jw_str(&j, "collectives", x->plan.T > hw.devices_per_node ? "hierarchical across nodes"
                                                                     : "direct, inside a node");
            jw_str(&j, "input", "replicated");
            jw_bool(&j, "overlap", 0);
            jw_end_obj(&j);
            jw_num(&j, "compute_s", x->pr.compute_s); jw_num(&j, "comm_s", x->pr.comm_s); jw_num(&j, "bubble_s", x->pr.bubble_s);
            jw_str(&j, "bound", x->pr.bound);
            jw_num(&j, "intra_node_bytes", x->pr.intra_bytes); jw_num(&j, "inter_node_bytes", x->pr.inter_bytes);
            jw_num(&j, "intra_link_busy_s", x->pr.intra_busy_s); jw_num(&j, "inter_link_busy_s", x->pr.inter_busy_s);
            jw_int(&j, "mem_bytes_per_device", x->pr.mem_bytes);
            jw_end_obj(&j);
        }
        jw_end_arr(&j);
        if (bh && bt) {
            jw_obj(&j, "sensitivity");
            jw_str(&j, "helix", bh->name); jw_str(&j, "tp_pp", bt->name);
            jw_num(&j, "helix_vs_tp_pp", bh->pr.tokens_per_s / bt->pr.tokens_per_s - 1);
            jw_arr(&j, "moves");
            for (int q = 0; q < N_KNOBS; q++)
                for (int e = 0; e < 2; e++) {
                    jw_obj(&j, NULL);
                    jw_str(&j, "assumption", knob_names[q]); jw_num(&j, "scale", e ? 1.3 : 0.7);
                    jw_num(&j, "helix_vs_tp_pp", sens[q][e]);
                    jw_end_obj(&j);
                }
            jw_end_arr(&j);
            jw_end_obj(&j);
        }
        if (paper) {
            jw_obj(&j, "paper_claim");
            jw_num(&j, "helix_tokens_per_s", 1.58e6); jw_num(&j, "tp8pp2_tokens_per_s", 1.20e6);
            jw_str(&j, "note", "reported by the source paper; not measured or modelled here");
            jw_end_obj(&j);
        }
        jw_end_obj(&j);
        if (jw_close(&j, json)) return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
