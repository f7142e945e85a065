/* run_overhead.c — `helix run --overhead`: how much of the run's wall time
 * its kernels explain. Every device's program (helix_program.h) has its
 * compute steps run again alone — the same kernel calls at the same shapes,
 * on a private arena, copies and collectives left out — with as many
 * devices at once as the grid ran (`--threads`), the way `helix bench
 * kernels` runs them; the ratio wall / kernels-alone is the framework's
 * cost (copies, collectives, waiting, scheduling). */
#include "run.h"
#include "helix_backend.h"
#include "helix_program.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const helix_model_plan *p;
    const helix_program *prog;    /* [P] */
    atomic_llong next;
    atomic_int fail;
} ov_job;

typedef struct {
    ov_job *job;
    void *arena;
} ov_worker;

static void *ov_run(void *arg)
{
    ov_worker *wk = arg;
    ov_job *j = wk->job;
    for (;;) {
        const long long rank = atomic_fetch_add(&j->next, 1);
        if (rank >= j->p->P) break;
        if (helix_program_run_compute(j->p, &j->prog[rank], wk->arena, helix_backend_cpu())) atomic_store(&j->fail, 1);
    }
    return NULL;
}

double run_kernels_alone(const helix_plan *plan, int threads, int reps)
{
    helix_model_plan p;
    helix_err err = {{0}};
    if (helix_model_plan_attention(&plan->cfg, &p, &err)) return -1;
    helix_program *prog = calloc((size_t)p.P, sizeof *prog);
    int64_t arena = 0;
    int ok = prog != NULL;
    for (int64_t r = 0; ok && r < p.P; r++) {
        ok = helix_program_build(&p, r, &prog[r], &err) == HELIX_OK;
        if (ok && prog[r].arena_bytes > arena) arena = prog[r].arena_bytes;
    }
    if (threads < 1) threads = 1;
    if (threads > p.P) threads = (int)p.P;
    helix_backend *be = helix_backend_cpu();
    ov_job job = {&p, prog, 0, 0};
    ov_worker *wk = ok ? calloc((size_t)threads, sizeof *wk) : NULL;
    ok = wk != NULL;
    const helix_dtype t = plan->cfg.dtype;
    const size_t es = helix_dtype_size(t);
    for (int k = 0; ok && k < threads; k++) {
        wk[k].job = &job;
        ok = be->ops->alloc(be, arena, &wk[k].arena) == HELIX_OK && wk[k].arena;
        /* small non-zero values, so nothing runs on denormals or zeros only */
        for (int64_t e = 0; ok && e < arena / (int64_t)es; e++) {
            float f = (float)((e % 13) - 6) * 0.01f;
            helix_from_f32(t, &f, (char *)wk[k].arena + e * (int64_t)es, 1);
        }
    }
    double best = -1;
    double *times = ok ? malloc(sizeof(double) * (size_t)(reps + 1)) : NULL;
    for (int rep = -1; ok && times && rep < reps; rep++) {   /* one warm-up */
        atomic_store(&job.next, 0);
        pthread_t tid[256];
        const int nt = threads > 256 ? 256 : threads;
        double t0 = cli_now();
        for (int k = 1; k < nt; k++) pthread_create(&tid[k], NULL, ov_run, &wk[k]);
        ov_run(&wk[0]);
        for (int k = 1; k < nt; k++) pthread_join(tid[k], NULL);
        if (rep >= 0) times[rep] = cli_now() - t0;
    }
    if (ok && times && !atomic_load(&job.fail)) {
        qsort(times, (size_t)reps, sizeof *times, bench_cmp_d);
        best = times[reps / 2];
    }
    free(times);
    for (int k = 0; wk && k < threads; k++) be->ops->free(be, wk[k].arena);
    free(wk);
    for (int64_t r = 0; prog && r < p.P; r++) helix_program_free(&prog[r]);
    free(prog);
    return best;
}
