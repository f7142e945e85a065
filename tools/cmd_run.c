/* cmd_run.c — `helix run`: build a plan, make random inputs from a seed,
 * run every device of the grid, check the result against the reference,
 * and report time, bytes and memory per phase and per rank. */
#include "cli.h"
#include "helix.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *run_help =
    "usage: helix run [options]\n"
    "\n"
    "Runs one multi-head attention layer partitioned over an n x m grid of\n"
    "devices (all in this process, one thread each) on random inputs and\n"
    "weights drawn from --seed, and checks it against the single-device\n"
    "reference.\n"
    "\n"
    "model and grid:\n"
    "  --heads H          attention heads h                        [16]\n"
    "  --head-dim D       width of one head d                      [64]\n"
    "  --groups N         head groups n (grid rows), n | h         [4]\n"
    "  --slices M         slices per head m (grid columns), m | d  [4]\n"
    "  --batch B          batch size                               [2]\n"
    "  --seq L            sequence length                          [512]\n"
    "attention:\n"
    "  --mode MODE        sliced | exact                           [exact]\n"
    "                     sliced: each device runs softmax on its own d/m-wide\n"
    "                     slice = MHA with h*m heads of width d/m (not the\n"
    "                     h-head model); exact: MHA with h heads of width d\n"
    "  --exact-algo ALGO  regather | scores                        [regather]\n"
    "                     regather: move Q/K/V slices so devices own whole\n"
    "                     heads (or query blocks); scores: all-reduce partial\n"
    "                     scores (O(L^2) traffic, short sequences only)\n"
    "  --causal           causal mask                              [off]\n"
    "  --scale S          softmax scale                            [1/sqrt(width)]\n"
    "  --no-out-proj      skip W_O: concatenate heads onto rank 0  [W_O on]\n"
    "  --bias             add biases to the Q/K/V/O projections    [off]\n"
    "numbers:\n"
    "  --dtype T          f32 | f16 | bf16 storage, f32 accumulate [f32]\n"
    "  --seed S           seed of the random inputs and weights    [1]\n"
    "execution:\n"
    "  --threads T        devices computing at once (0: all cores) [0]\n"
    "  --check            compare with the reference (default)\n"
    "  --no-check         skip the reference (large runs)\n"
    "  --json FILE|-      write a JSON summary to FILE or stdout\n"
    "  --help             this text\n"
    "\n"
    "exit status: 0 ok, 1 check failed, 2 bad input or usage, 3 runtime failure\n";

enum {
    O_HEADS = 256, O_HEAD_DIM, O_GROUPS, O_SLICES, O_BATCH, O_SEQ, O_MODE, O_ALGO, O_CAUSAL,
    O_SCALE, O_NO_OUT, O_BIAS, O_DTYPE, O_SEED, O_THREADS, O_CHECK, O_NO_CHECK, O_JSON, O_HELP
};

static const struct option run_opts[] = {
    {"heads", required_argument, 0, O_HEADS},     {"head-dim", required_argument, 0, O_HEAD_DIM},
    {"groups", required_argument, 0, O_GROUPS},   {"slices", required_argument, 0, O_SLICES},
    {"batch", required_argument, 0, O_BATCH},     {"seq", required_argument, 0, O_SEQ},
    {"mode", required_argument, 0, O_MODE},       {"exact-algo", required_argument, 0, O_ALGO},
    {"causal", no_argument, 0, O_CAUSAL},         {"scale", required_argument, 0, O_SCALE},
    {"no-out-proj", no_argument, 0, O_NO_OUT},    {"bias", no_argument, 0, O_BIAS},
    {"dtype", required_argument, 0, O_DTYPE},     {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS}, {"check", no_argument, 0, O_CHECK},
    {"no-check", no_argument, 0, O_NO_CHECK},     {"json", required_argument, 0, O_JSON},
    {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0},
};

/* Relative tolerance of max|y - ref| / max|ref| per storage type (README). */
static double tolerance(helix_dtype t) { return t == HELIX_F32 ? 1e-4 : t == HELIX_F16 ? 4e-3 : 3e-2; }

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fill with uniform values and round them to the storage type, so the
 * reference sees exactly the numbers the devices see. */
static void fill(cli_rng *r, float *v, int64_t n, float a, helix_dtype t)
{
    for (int64_t k = 0; k < n; k++) v[k] = cli_uniform(r, a);
    if (t == HELIX_F32) return;
    for (int64_t k = 0; k < n; k++) {
        uint16_t h = t == HELIX_F16 ? helix_f32_to_f16(v[k]) : helix_f32_to_bf16(v[k]);
        v[k] = t == HELIX_F16 ? helix_f16_to_f32(h) : helix_bf16_to_f32(h);
    }
}

static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

static const char *human(int64_t b, char *buf)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int k = 0;
    while (v >= 1024 && k < 5) { v /= 1024; k++; }
    snprintf(buf, 32, k ? "%.1f %s" : "%.0f %s", v, u[k]);
    return buf;
}

int cmd_run(int argc, char **argv)
{
    helix_config cfg = helix_config_default();
    int64_t seed = 1, threads = 0;
    int check = 1;
    const char *json = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", run_opts, NULL)) != -1) {
        const int64_t big = (int64_t)1 << 40;
        int bad = 0;
        switch (c) {
        case O_HEADS: bad = cli_int("--heads", optarg, 1, big, &cfg.heads); break;
        case O_HEAD_DIM: bad = cli_int("--head-dim", optarg, 1, big, &cfg.head_dim); break;
        case O_GROUPS: bad = cli_int("--groups", optarg, 1, big, &cfg.groups); break;
        case O_SLICES: bad = cli_int("--slices", optarg, 1, big, &cfg.slices); break;
        case O_BATCH: bad = cli_int("--batch", optarg, 1, big, &cfg.batch); break;
        case O_SEQ: bad = cli_int("--seq", optarg, 1, big, &cfg.seq); break;
        case O_MODE:
            if (helix_mode_parse(optarg, &cfg.mode)) {
                fprintf(stderr, "helix: --mode must be sliced or exact, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case O_ALGO:
            if (helix_exact_algo_parse(optarg, &cfg.exact_algo)) {
                fprintf(stderr, "helix: --exact-algo must be regather or scores, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case O_CAUSAL: cfg.causal = 1; break;
        case O_SCALE:
            bad = cli_double("--scale", optarg, &cfg.scale);
            if (!bad && !(cfg.scale > 0)) {
                fprintf(stderr, "helix: --scale must be > 0, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case O_NO_OUT: cfg.out_proj = 0; break;
        case O_BIAS: cfg.bias = 1; break;
        case O_DTYPE:
            if (helix_dtype_parse(optarg, &cfg.dtype)) {
                fprintf(stderr, "helix: --dtype must be f32, f16 or bf16, got '%s'\n", optarg);
                bad = 1;
            }
            break;
        case O_SEED: bad = cli_int("--seed", optarg, 0, INT64_MAX, &seed); break;
        case O_THREADS: bad = cli_int("--threads", optarg, 0, 4096, &threads); break;
        case O_CHECK: check = 1; break;
        case O_NO_CHECK: check = 0; break;
        case O_JSON: json = optarg; break;
        case O_HELP: fputs(run_help, stdout); return EXIT_OK;
        case ':':
            fprintf(stderr, "helix run: option %s needs a value\n", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "helix run: unknown option '%s' (try 'helix run --help')\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (bad) return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "helix run: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }

    helix_plan plan;
    helix_err err = {{0}};
    if (helix_plan_init(&cfg, &plan, &err)) {
        fprintf(stderr, "helix: %s\n", err.msg);
        return EXIT_USAGE;
    }
    const int64_t P = plan.P, D = plan.D, BL = cfg.batch * cfg.seq;
    const int64_t es = (int64_t)helix_dtype_size(cfg.dtype);

    /* Memory: refuse before allocating anything large. */
    int64_t need = 0;
    for (int64_t r = 0; r < P; r++) {
        helix_device_plan dp;
        helix_plan_device(&plan, r, &dp);
        need += dp.peak_bytes;
    }
    need += 4 * D * D * 4 + 4 * D * 4;          /* full f32 weights and biases   */
    need += 2 * BL * D * 4 + BL * D * es;       /* x, reference output, y        */
    if (check) need += 4 * BL * D * 8;          /* the reference's f64 buffers    */
    int64_t avail = mem_available();
    if (avail > 0 && need > avail) {
        char b1[32], b2[32];
        fprintf(stderr, "helix: this run needs %s of memory (%lld devices' arenas, weights, input, output%s) "
                        "but only %s is available; use smaller --batch/--seq or fewer devices\n",
                human(need, b1), (long long)P, check ? ", reference" : "", human(avail, b2));
        return EXIT_USAGE;
    }

    float *wbuf = malloc(sizeof(float) * (size_t)(4 * D * D + 4 * D));
    float *x = malloc(sizeof(float) * (size_t)(BL * D));
    void *y = malloc((size_t)(BL * D * es));
    float *yf = malloc(sizeof(float) * (size_t)(BL * D));
    helix_device_stats *stats = calloc((size_t)P, sizeof *stats);
    if (!wbuf || !x || !y || !yf || !stats) {
        fprintf(stderr, "helix: out of memory allocating inputs\n");
        free(wbuf); free(x); free(y); free(yf); free(stats);
        return EXIT_RUNTIME;
    }
    cli_rng rng = {(uint64_t)seed};
    const float wa = sqrtf(3.0f / (float)D);    /* unit-variance inputs keep unit-scale q, k, v */
    fill(&rng, x, BL * D, 1.0f, cfg.dtype);
    fill(&rng, wbuf, 4 * D * D, wa, cfg.dtype);
    fill(&rng, wbuf + 4 * D * D, 4 * D, 0.1f, cfg.dtype);
    helix_weights w = {D, wbuf, wbuf + D * D, wbuf + 2 * D * D, cfg.out_proj ? wbuf + 3 * D * D : NULL,
                       NULL, NULL, NULL, NULL};
    if (cfg.bias) {
        float *b = wbuf + 4 * D * D;
        w.bq = b; w.bk = b + D; w.bv = b + 2 * D; w.bo = cfg.out_proj ? b + 3 * D : NULL;
    }

    const char *rg = plan.regather == HELIX_REGATHER_HEADS ? "/regather(heads)"
                   : plan.regather == HELIX_REGATHER_QUERIES ? "/regather(queries)"
                   : cfg.mode == HELIX_MODE_EXACT ? "/scores" : "";
    printf("# helix %s run  engine=inproc  devices=%lld  threads=%lld\n", HELIX_VERSION, (long long)P,
           (long long)threads);
    printf("# model: h=%lld d=%lld D=%lld  B=%lld L=%lld  dtype=%s  causal=%s  W_O=%s  bias=%s  scale=%.6g\n",
           (long long)cfg.heads, (long long)cfg.head_dim, (long long)D, (long long)cfg.batch,
           (long long)cfg.seq, helix_dtype_name(cfg.dtype), cfg.causal ? "yes" : "no",
           cfg.out_proj ? "yes" : "no", cfg.bias ? "yes" : "no", plan.scale);
    printf("# grid: n=%lld groups x m=%lld slices  h_g=%lld heads/group  d_s=%lld features/slice  mode=%s%s\n",
           (long long)cfg.groups, (long long)cfg.slices, (long long)plan.hg, (long long)plan.ds,
           helix_mode_name(cfg.mode), rg);
    if (cfg.mode == HELIX_MODE_SLICED)
        printf("# note: sliced = MHA with %lld heads of width %lld, not the %lld-head model\n",
               (long long)(cfg.heads * cfg.slices), (long long)plan.ds, (long long)cfg.heads);
    fflush(stdout);

    double t0 = wall();
    helix_status st = helix_grid_run(&plan, &w, x, y, (int)threads, stats, &err);
    double elapsed = wall() - t0;
    if (st) {
        fprintf(stderr, "helix: run failed: %s\n", err.msg);
        free(wbuf); free(x); free(y); free(yf); free(stats);
        return EXIT_RUNTIME;
    }

    /* per-phase table: time is the max over devices, bytes the sum */
    printf("#\n# %-11s %12s %16s %16s\n", "phase", "time_ms", "sent_bytes", "recv_bytes");
    printf("# %-11s %12s %16s %16s\n", "", "(max rank)", "(all ranks)", "(all ranks)");
    int bytes_match = 1;
    for (int ph = 0; ph < HELIX_NPHASES; ph++) {
        double tmax = 0;
        int64_t s = 0, rcv = 0;
        for (int64_t r = 0; r < P; r++) {
            if (stats[r].time_s[ph] > tmax) tmax = stats[r].time_s[ph];
            s += stats[r].phase[ph].sent_bytes;
            rcv += stats[r].phase[ph].recv_bytes;
        }
        if (tmax == 0 && s == 0 && rcv == 0) continue;
        printf("  %-11s %12.3f %16lld %16lld\n", helix_phase_name((helix_phase)ph), 1e3 * tmax,
               (long long)s, (long long)rcv);
    }
    printf("#\n# %4s %7s %16s %16s %16s %14s\n", "rank", "(i,j)", "sent_bytes", "recv_bytes", "predicted",
           "peak_mem");
    char hb[32];
    for (int64_t r = 0; r < P; r++) {
        helix_device_plan dp;
        helix_plan_device(&plan, r, &dp);
        int64_t s = 0, rcv = 0, ps = 0, pr = 0;
        for (int ph = 0; ph < HELIX_NPHASES; ph++) {
            s += stats[r].phase[ph].sent_bytes; rcv += stats[r].phase[ph].recv_bytes;
            ps += dp.phase[ph].sent_bytes; pr += dp.phase[ph].recv_bytes;
            if (stats[r].phase[ph].sent_bytes != dp.phase[ph].sent_bytes ||
                stats[r].phase[ph].recv_bytes != dp.phase[ph].recv_bytes) bytes_match = 0;
        }
        char ij[24];
        snprintf(ij, sizeof ij, "(%lld,%lld)", (long long)dp.i, (long long)dp.j);
        printf("  %4lld %7s %16lld %16lld %16s %14s\n", (long long)r, ij, (long long)s, (long long)rcv,
               (s == ps && rcv == pr) ? "= plan" : "MISMATCH", human(stats[r].arena_bytes, hb));
    }
    printf("#\n# time: %.3f s wall for the forward pass on %lld devices\n", elapsed, (long long)P);
    printf("# bytes: %s the plan's prediction on every rank and phase\n", bytes_match ? "match" : "DO NOT match");

    int rc = bytes_match ? EXIT_OK : EXIT_CHECK;
    double max_abs = 0, max_ref = 0, rel = 0;
    int finite = 1, passed = 1;
    if (check) {
        float *ref = malloc(sizeof(float) * (size_t)(BL * D));
        if (!ref) { fprintf(stderr, "helix: out of memory for the reference\n"); rc = EXIT_RUNTIME; goto out; }
        int64_t rh = cfg.mode == HELIX_MODE_SLICED ? cfg.heads * cfg.slices : cfg.heads;
        int64_t rd = cfg.mode == HELIX_MODE_SLICED ? plan.ds : cfg.head_dim;
        if (helix_attention_ref(cfg.batch, cfg.seq, rh, rd, &w, x, cfg.causal, plan.scale, ref, &err)) {
            fprintf(stderr, "helix: reference failed: %s\n", err.msg);
            free(ref);
            rc = EXIT_RUNTIME;
            goto out;
        }
        helix_to_f32(cfg.dtype, y, yf, BL * D);
        for (int64_t k = 0; k < BL * D; k++) {
            if (!isfinite(yf[k])) finite = 0;
            double e = fabs((double)yf[k] - (double)ref[k]);
            if (e > max_abs || e != e) max_abs = e;
            if (fabs((double)ref[k]) > max_ref) max_ref = fabs((double)ref[k]);
        }
        free(ref);
        rel = max_ref > 0 ? max_abs / max_ref : max_abs;
        passed = finite && rel <= tolerance(cfg.dtype);
        printf("# check vs reference (%lld heads of width %lld, float64): max_abs_err=%.3e max_rel_err=%.3e "
               "(tolerance %.0e)%s  %s\n", (long long)rh, (long long)rd, max_abs, rel, tolerance(cfg.dtype),
               finite ? "" : "  NON-FINITE OUTPUT", passed ? "PASS" : "FAIL");
        if (!passed) rc = EXIT_CHECK;
    }
    if (json) {
        FILE *f = strcmp(json, "-") ? fopen(json, "w") : stdout;
        if (!f) { fprintf(stderr, "helix: cannot write --json file '%s'\n", json); rc = EXIT_RUNTIME; goto out; }
        jw j;
        jw_begin(&j, f);
        jw_obj(&j, NULL);
        jw_obj(&j, "config");
        jw_int(&j, "heads", cfg.heads); jw_int(&j, "head_dim", cfg.head_dim);
        jw_int(&j, "groups", cfg.groups); jw_int(&j, "slices", cfg.slices);
        jw_int(&j, "batch", cfg.batch); jw_int(&j, "seq", cfg.seq); jw_int(&j, "devices", P);
        jw_str(&j, "dtype", helix_dtype_name(cfg.dtype)); jw_str(&j, "mode", helix_mode_name(cfg.mode));
        jw_str(&j, "exact_algo", helix_exact_algo_name(cfg.exact_algo));
        jw_bool(&j, "causal", cfg.causal); jw_bool(&j, "out_proj", cfg.out_proj); jw_bool(&j, "bias", cfg.bias);
        jw_num(&j, "scale", plan.scale); jw_int(&j, "seed", seed); jw_int(&j, "threads", threads);
        jw_str(&j, "engine", "inproc");
        jw_end_obj(&j);
        jw_obj(&j, "check");
        jw_bool(&j, "ran", check);
        jw_num(&j, "max_abs_err", max_abs); jw_num(&j, "max_rel_err", rel);
        jw_num(&j, "tolerance", tolerance(cfg.dtype)); jw_bool(&j, "passed", check ? passed : 0);
        jw_end_obj(&j);
        jw_num(&j, "time_s", elapsed);
        jw_arr(&j, "phases");
        for (int ph = 0; ph < HELIX_NPHASES; ph++) {
            double tmax = 0;
            for (int64_t r = 0; r < P; r++) if (stats[r].time_s[ph] > tmax) tmax = stats[r].time_s[ph];
            jw_obj(&j, NULL);
            jw_str(&j, "name", helix_phase_name((helix_phase)ph));
            jw_num(&j, "time_s_max", tmax);
            jw_end_obj(&j);
        }
        jw_end_arr(&j);
        jw_obj(&j, "comm");
        jw_bool(&j, "matches_plan", bytes_match);
        jw_arr(&j, "per_rank");
        for (int64_t r = 0; r < P; r++) {
            helix_device_plan dp;
            helix_plan_device(&plan, r, &dp);
            int64_t s = 0, rcv = 0;
            jw_obj(&j, NULL);
            jw_int(&j, "rank", r); jw_int(&j, "i", dp.i); jw_int(&j, "j", dp.j);
            jw_obj(&j, "phases");
            for (int ph = 0; ph < HELIX_NPHASES; ph++) {
                s += stats[r].phase[ph].sent_bytes; rcv += stats[r].phase[ph].recv_bytes;
                jw_obj(&j, helix_phase_name((helix_phase)ph));
                jw_int(&j, "sent_bytes", stats[r].phase[ph].sent_bytes);
                jw_int(&j, "recv_bytes", stats[r].phase[ph].recv_bytes);
                jw_int(&j, "predicted_sent_bytes", dp.phase[ph].sent_bytes);
                jw_int(&j, "predicted_recv_bytes", dp.phase[ph].recv_bytes);
                jw_num(&j, "time_s", stats[r].time_s[ph]);
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
        for (int64_t r = 0; r < P; r++) jw_int(&j, NULL, stats[r].arena_bytes);
        jw_end_arr(&j);
        jw_end_obj(&j);
        jw_end_obj(&j);
        if (f != stdout) fclose(f);
    }
out:
    free(wbuf); free(x); free(y); free(yf); free(stats);
    return rc;
}
