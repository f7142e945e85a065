/* cmd_run.c — `helix run`: choose the engine (threads in this process, or
 * one MPI rank per device), build the plan, refuse what will not fit, make
 * the random inputs from the seed, run, gather the per-device statistics
 * onto rank 0, check against the reference and report. */
#include "helix_comm.h"
#include "helix_io.h"
#include "helix_backend.h"
#include "helix_cuda.h"
#include "run.h"
#include "cpu.h"
#include "run_inputs.h"
#include "engine.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void round_to(helix_dtype t, float *v, int64_t n)
{
    if (t == HELIX_F32) return;
    for (int64_t k = 0; k < n; k++) v[k] = helix_round_to(t, v[k]);
}

/* Uniform values rounded to the storage type, so the reference sees
 * exactly the numbers the devices see. */
static void fill(cli_rng *r, float *v, int64_t n, float a, helix_dtype t)
{
    for (int64_t k = 0; k < n; k++) v[k] = cli_uniform(r, a);
    round_to(t, v, n);
}

/* Bytes one process needs besides the device arenas it runs. */
static int64_t host_bytes(const run_opts *o, const helix_plan *p, int root)
{
    const int64_t D = p->D, BL = o->cfg.batch * o->cfg.seq;
    /* full f32 weights: only rank 0, only for the reference (every device
     * reads or generates its own shards) */
    int64_t n = root && o->check ? 4 * D * D * 4 + 4 * D * 4 : D * 4;
    if (root) {
        n += 2 * BL * D * 4 + BL * D * (int64_t)helix_dtype_size(o->cfg.dtype); /* x, y as f32, y */
        if (o->input) n += BL * D * 4;                                         /* the file's X, f32 at most */
        if (o->check) n += 4 * BL * D * 8;                   /* the reference's f64 buffers */
    }
    return n;
}

/* Check y against the reference; prints the verdict line. */
static void check(run_result *r, const helix_weights *w, const float *x, const void *y)
{
    const run_opts *o = r->o;
    const helix_config *cfg = &o->cfg;
    const int64_t BL = cfg->batch * cfg->seq, D = r->plan->D;
    float *ref = malloc(sizeof(float) * (size_t)(BL * D)), *yf = malloc(sizeof(float) * (size_t)(BL * D));
    helix_err err = {{0}};
    int64_t rh = cfg->mode == HELIX_MODE_SLICED ? cfg->heads * cfg->slices : cfg->heads;
    int64_t rd = cfg->mode == HELIX_MODE_SLICED ? r->plan->ds : cfg->head_dim;
    r->checked = 1;
    r->passed = 0;
    if (!ref || !yf || helix_attention_ref(cfg->batch, cfg->seq, rh, rd, w, x, cfg->causal, cfg->kv_len,
                                                r->plan->scale, ref, &err)) {
        fprintf(stderr, "helix: the reference could not run: %s\n", ref && yf ? err.msg : "out of memory");
        r->max_abs = r->max_rel = INFINITY;
        free(ref); free(yf);
        return;
    }
    helix_to_f32(cfg->dtype, y, yf, BL * D);
    double mx = 0, mr = 0;
    r->finite = 1;
    for (int64_t k = 0; k < BL * D; k++) {
        if (!isfinite(yf[k])) r->finite = 0;
        double e = fabs((double)yf[k] - (double)ref[k]);
        if (!(e <= mx)) mx = e;
        if (fabs((double)ref[k]) > mr) mr = fabs((double)ref[k]);
    }
    r->max_abs = mx;
    r->max_rel = mr > 0 ? mx / mr : mx;
    r->passed = r->finite && r->max_rel <= run_tolerance(cfg->dtype);
    printf("# check vs reference (%lld heads of width %lld, float64): max_abs_err=%.3e max_rel_err=%.3e "
           "(tolerance %.0e)%s  %s\n", (long long)rh, (long long)rd, r->max_abs, r->max_rel,
           run_tolerance(cfg->dtype), r->finite ? "" : "  NON-FINITE OUTPUT", r->passed ? "PASS" : "FAIL");
    free(ref);
    free(yf);
}

/* y as .npy (bf16 widened exactly to f32: .npy has no bfloat16); the
 * message of a failure goes to stderr and to why */
static int write_output(const run_opts *o, const helix_plan *p, const void *y, char *why, size_t why_n)
{
    const int64_t shape[3] = {o->cfg.batch, o->cfg.seq, p->D}, n = shape[0] * shape[1] * shape[2];
    helix_err err = {{0}};
    helix_status st;
    if (o->cfg.dtype == HELIX_BF16) {
        float *f = malloc(sizeof(float) * (size_t)n);
        if (!f) {
            snprintf(err.msg, sizeof err.msg, "out of memory writing %s", o->output);
            st = HELIX_ERR_NOMEM;
        } else {
            helix_to_f32(HELIX_BF16, y, f, n);
            st = helix_npy_write(o->output, HELIX_F32, 3, shape, f, &err);
            free(f);
        }
    } else {
        st = helix_npy_write(o->output, o->cfg.dtype, 3, shape, y, &err);
    }
    if (st) {
        fprintf(stderr, "helix: --output: %s\n", err.msg);
        snprintf(why, why_n, "%s", err.msg);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* Non-finite values of y; the first one's flat index in *first. */
static int64_t count_nonfinite(helix_dtype t, const void *y, int64_t n, int64_t *first)
{
    int64_t bad = 0;
    *first = -1;
    for (int64_t k = 0; k < n; k++) {
        const float v = helix_load(t, y, k);
        if (!(v - v == 0)) { if (!bad++) *first = k; }
    }
    return bad;
}

int cmd_run(int argc, char **argv)
{
    run_backend backend = run_backend_peek(argc, argv);   /* a bad value: run_parse says so */
    if (backend == BACKEND_AUTO) backend = helix_mpi_built() && helix_mpi_launched() ? BACKEND_MPI : BACKEND_INPROC;
    const int mpi = backend == BACKEND_MPI;
    helix_err err = {{0}};
    cli_engine eng;
    int rc = cli_engine_start(&eng, mpi, &argc, &argv, "run ...' with P = --groups x --slices", "the whole grid", 0);
    if (rc != EXIT_OK) return rc;
    const int rank = eng.rank, size = eng.size;
    helix_comm_t *world = eng.world;
    run_opts o;
    run_files files;
    memset(&files, 0, sizeof files);
    int prc = run_parse(argc, argv, &o);
    if (prc == 0) prc = cli_device_flags("run", mpi, o.virtual_devices, o.gpu, rank == 0);
    if (prc == 0) prc = run_files_resolve(&o, &files, rank == 0, world);
    helix_plan plan;
    if (prc == 0 && helix_plan_init(&o.cfg, &plan, &err)) {
        fprintf(stderr, "helix: %s\n", err.msg);
        prc = EXIT_USAGE;
    }
    if (prc == 0 && mpi && size != plan.P) {
        fprintf(stderr, "helix: mpirun started %d ranks, but the grid n x m = %lld x %lld needs %lld "
                        "(one rank per device, rank = i*m + j): use -np %lld\n", size, (long long)o.cfg.groups,
                (long long)o.cfg.slices, (long long)plan.P, (long long)plan.P);
        prc = EXIT_USAGE;
    }
    if (prc == 0) {                        /* the nodes: given, or as the launcher placed the ranks */
        int64_t rpn = 0;
        if (cli_nodes(mpi, o.ranks_per_node, plan.P, rank == 0, &rpn, o.nodes, sizeof o.nodes)) prc = EXIT_USAGE;
        o.cfg.ranks_per_node = rpn;
        if (prc == 0 && helix_plan_init(&o.cfg, &plan, &err)) { fprintf(stderr, "helix: %s\n", err.msg); prc = EXIT_USAGE; }
    }
    cli_engine_unmute_stderr(&eng);        /* from here on only rank 0 prints, but a rank's failure is heard */
    if (prc != 0) {
        run_files_close(&files);
        return cli_engine_end(&eng, prc < 0 ? EXIT_OK : prc, 0);
    }

    const int64_t P = plan.P, D = plan.D, BL = o.cfg.batch * o.cfg.seq;
    const int64_t es = (int64_t)helix_dtype_size(o.cfg.dtype);
    /* memory: refuse before allocating anything large */
    char why[256] = "";
    int fits = 1;
    if (mpi) {
        helix_device_plan dp;
        helix_plan_device(&plan, rank, &dp);
        fits = cli_mpi_fits(world, dp.peak_bytes + host_bytes(&o, &plan, rank == 0), why, sizeof why);
    } else {
        int64_t need = host_bytes(&o, &plan, 1), avail = cli_mem_available();
        for (int64_t r = 0; r < P; r++) {
            helix_device_plan dp;
            helix_plan_device(&plan, r, &dp);
            need += dp.peak_bytes;
        }
        int64_t *arena = o.virtual_devices && P > 0 ? calloc((size_t)P, sizeof *arena) : NULL;
        for (int64_t r = 0; arena && r < P; r++) {
            helix_device_plan dp;
            helix_plan_device(&plan, r, &dp);
            arena[r] = dp.peak_bytes;
        }
        if (o.virtual_devices && !cli_gpu_fits(arena, P, why, sizeof why)) fits = 0;
        free(arena);
        if (fits && avail > 0 && need > avail) {
            char b1[32], b2[32];
            snprintf(why, sizeof why, "this run needs %s of memory (%lld devices' arenas, weights, input, output%s) "
                     "but only %s is available", run_human_bytes(need, b1), (long long)P,
                     o.check ? ", reference" : "", run_human_bytes(avail, b2));
            fits = 0;
        }
    }
    /* only now: the key padding lengths, the input's data, the NaN/Inf scans,
     * and the plan again with the lengths (it checks their range) */
    int lrc = fits ? run_files_load(&o, &files, rank == 0, world) : EXIT_USAGE;
    if (fits && lrc == EXIT_OK && o.cfg.kv_len && helix_plan_init(&o.cfg, &plan, &err)) {
        if (rank == 0) fprintf(stderr, "helix: %s\n", err.msg);
        lrc = EXIT_USAGE;
    }
    if (!fits || lrc != EXIT_OK) {
        if (!fits && rank == 0) fprintf(stderr, "helix: %s; use smaller --batch/--seq or more devices\n", why);
        run_files_close(&files);
        return cli_engine_end(&eng, fits ? lrc : EXIT_USAGE, 0);
    }

    const int root = rank == 0;
    const int full_w = root && o.check;     /* who holds the full f32 weights: the reference's rank */
    float *wbuf = full_w ? malloc(sizeof(float) * (size_t)(4 * D * D + 4 * D)) : NULL;
    float *x = root ? malloc(sizeof(float) * (size_t)(BL * D)) : NULL;
    void *y = root ? malloc((size_t)(BL * D * es)) : NULL;
    helix_device_stats *stats = calloc(root ? (size_t)P : 1, sizeof *stats);
    if ((full_w && !wbuf) || (root && (!x || !y)) || !stats) {
        fprintf(stderr, "helix: rank %d: out of memory allocating inputs\n", rank);
        if (mpi) helix_mpi_abort(EXIT_RUNTIME);
        free(wbuf); free(x); free(y); free(stats);
        run_files_close(&files);
        return EXIT_RUNTIME;
    }
    /* same random stream on every rank: x first (rank 0 keeps it), then weights */
    cli_rng rng = {(uint64_t)o.seed};
    if (root && !o.input) fill(&rng, x, BL * D, 1.0f, o.cfg.dtype);
    else cli_rng_skip(&rng, (uint64_t)(BL * D));
    if (root && o.input) {                       /* the devices see X in the run's dtype: so does the check */
        helix_to_f32(files.x_in.dtype, files.x_in.data, x, BL * D);
        round_to(o.cfg.dtype, x, BL * D);
    }
    const float wa = sqrtf(3.0f / (float)D);     /* unit-variance inputs keep q, k, v at unit scale */
    /* the devices generate their own shards of the same stream, after X */
    helix_attention_seeded seeded = {(uint64_t)o.seed, BL * D, D, wa, 0.1f, o.cfg.dtype};
    if (!o.weights && full_w) {
        fill(&rng, wbuf, 4 * D * D, wa, o.cfg.dtype);
        fill(&rng, wbuf + 4 * D * D, 4 * D, 0.1f, o.cfg.dtype);
    } else if (full_w) {
        float *bb = wbuf + 4 * D * D;
        if (helix_st_attn_full(&files.attn, wbuf, wbuf + D * D, wbuf + 2 * D * D, files.attn.o.t ? wbuf + 3 * D * D : NULL,
                               bb, bb + D, bb + 2 * D, bb + 3 * D, &err)) {
            fprintf(stderr, "helix: %s\n", err.msg);
            if (mpi) helix_mpi_abort(EXIT_RUNTIME);
            return EXIT_RUNTIME;
        }
        round_to(o.cfg.dtype, wbuf, 4 * D * D + 4 * D);
    }
    float *b = wbuf ? wbuf + 4 * D * D : NULL;
    helix_weights w = {D};
    if (wbuf) {
        w.wq = wbuf; w.wk = wbuf + D * D; w.wv = wbuf + 2 * D * D;
        w.wo = o.cfg.out_proj ? wbuf + 3 * D * D : NULL;
        if (o.cfg.bias) { w.bq = b; w.bk = b + D; w.bv = b + 2 * D; }
        if (o.cfg.bias && o.cfg.out_proj) w.bo = b + 3 * D;
    }
    helix_weights wrun = {D};                    /* what the devices use: their own shards */
    if (o.weights) { wrun.load = helix_st_attn_load; wrun.load_ctx = &files.attn; }
    else { wrun.load = helix_attention_seeded_load; wrun.load_ctx = &seeded; }

    helix_backend **gpu = NULL;                  /* --virtual-devices: one CUDA backend per device, all on GPU 0 */
    if (o.virtual_devices && !(gpu = cli_virtual_devices(P, o.device, sizeof o.device))) {
        free(wbuf); free(x); free(y); free(stats);
        run_files_close(&files);
        return EXIT_USAGE;   /* as bench kernels --backend cuda: this machine cannot run what was asked */
    }
    cli_gpu_rank grank;                          /* --gpu: this rank's GPU, the NCCL world */
    memset(&grank, 0, sizeof grank);
    if (o.gpu) {
        int grc = cli_gpu_rank_start(world, root, &grank);
        if (grc != EXIT_OK) {
            free(wbuf); free(x); free(y); free(stats);
            run_files_close(&files);
            return cli_engine_end(&eng, grc, 0);
        }
        snprintf(o.device, sizeof o.device, "cuda, one GPU per MPI rank (local rank mod its node's GPUs), NCCL engine");
    }
    const char *engine = o.gpu ? "nccl" : mpi ? "mpi" : "inproc";   /* nccl: bootstrapped over MPI */
    if (root) run_print_header(&o, &plan, engine, mpi ? helix_mpi_version() : "");

    /* Test hooks: this rank fails as if it could not read its input, or
     * stalls for good (the watchdog's test). Checked before any collective. */
    int fail_rank = -1, stall_rank = -1;
    if (cli_env_rank("HELIX_TEST_FAIL_RANK", &fail_rank) || cli_env_rank("HELIX_TEST_STALL_RANK", &stall_rank)) {
        free(wbuf); free(x); free(y); free(stats);
        run_files_close(&files);
        return cli_engine_end(&eng, EXIT_USAGE, 0);
    }
    int injected = fail_rank == rank;
    if (mpi) {
        const double D2 = (double)D * (double)D, BLd = (double)BL, Ld = (double)o.cfg.seq;
        cli_watchdog(o.timeout, (8 * BLd * D2 + 4 * (double)o.cfg.batch * Ld * Ld * (double)D) / (double)P);
    }

    double t0 = 0, elapsed = 0;
    helix_status st;
    if (mpi) {
        int any = 0;
        helix_comm_any(world, 0, &any);          /* start together */
        t0 = cli_now();
        while (stall_rank == rank) pause();      /* until the job is ended */
        if (injected) {
            snprintf(err.msg, sizeof err.msg, "injected failure (HELIX_TEST_FAIL_RANK=%d): cannot read input", rank);
            st = HELIX_ERR_IO;
        } else {
            st = helix_device_run_on(&plan, o.gpu ? grank.comm : world, grank.be, &wrun, x, y, stats, &err);
        }
        elapsed = cli_now() - t0;
        if (st) cli_engine_fail(&eng, err.msg);   /* the others may wait in a collective: ends the job */
        cli_gpu_rank_end(&grank);
        cli_engine_gather(&eng, stats, sizeof *stats);     /* every rank's statistics onto rank 0 */
    } else {
        t0 = cli_now();
        /* virtual devices: all of them issue work at once (the GPU schedules it) */
        st = helix_grid_run_on(&plan, &wrun, x, y, gpu ? (int)P : (int)o.threads, gpu, stats, &err);
        elapsed = cli_now() - t0;
        cli_virtual_devices_free(gpu, P);
        if (st) {
            cli_engine_fail(&eng, err.msg);
            free(wbuf); free(x); free(y); free(stats);
            return EXIT_RUNTIME;
        }
    }

    if (root) {
        run_result r;
        memset(&r, 0, sizeof r);
        r.o = &o; r.plan = &plan; r.engine = engine; r.stats = stats; r.elapsed_s = elapsed;
        const int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), th = o.threads > 0 ? (int)o.threads : cpus;
        if (!mpi && !o.device[0]) {   /* the peak of the kernels' path on the devices computing at once */
            r.peak_threads = th < cpus ? th : cpus;
            r.peak_flops = cpu_path_peak(helix_isa_current(), o.cfg.dtype, r.peak_threads, 0.02, &r.peak_unit);
        }
        run_print_tables(&r);
        if (o.overhead) {
            if (mpi) {
                printf("# overhead: --overhead is measured in-process only (--backend inproc)\n");
            } else {
                fprintf(stderr, "  timing the devices' kernels alone (%d at a time)...\n", th);
                r.kernels_s = run_kernels_alone(&plan, th, 3);
                if (r.kernels_s > 0)
                    printf("# overhead: %.3f s wall / %.3f s for the same kernels alone (%d devices at a time, median of 3)"
                           " = %.2f\n#   (framework cost: copies, collectives, waiting; the kernels' own time is %.0f%% of the wall)\n",
                           run_pass_s(&r), r.kernels_s, th, run_pass_s(&r) / r.kernels_s, 100 * r.kernels_s / run_pass_s(&r));
                else
                    printf("# overhead: not measured (no memory for the devices' private arenas)\n");
            }
        }
        rc = r.bytes_match ? EXIT_OK : EXIT_CHECK;
        if (o.check) {
            check(&r, &w, x, y);
            if (!r.passed) rc = EXIT_CHECK;
        }
        /* a non-finite output never passes as a success, checked or not */
        int64_t first = -1;
        r.nonfinite = count_nonfinite(o.cfg.dtype, y, BL * D, &first);
        if (r.nonfinite && !o.allow_nonfinite) {
            fprintf(stderr, "helix: the output holds %lld non-finite values (the first at [%lld, %lld, %lld]): the inputs, "
                            "weights or --scale overflow %s%s\n", (long long)r.nonfinite, (long long)(first / (o.cfg.seq * D)),
                    (long long)(first / D % o.cfg.seq), (long long)(first % D), helix_dtype_name(o.cfg.dtype),
                    o.output ? "; --output not written (--allow-nonfinite writes it)" : "");
            if (rc == EXIT_OK) rc = EXIT_CHECK;
        }
        char out_err[600] = "";
        if (o.output && (!r.nonfinite || o.allow_nonfinite) && write_output(&o, &plan, y, out_err, sizeof out_err))
            rc = EXIT_RUNTIME;
        r.output_error = out_err[0] ? out_err : NULL;
        r.output_written = o.output && !out_err[0] && (!r.nonfinite || o.allow_nonfinite);
        r.exit_code = rc;
        if (o.json && run_write_json(&r)) rc = EXIT_RUNTIME;
    }
    free(wbuf); free(x); free(y); free(stats);
    run_files_close(&files);
    return cli_engine_end(&eng, rc, 0);
}
