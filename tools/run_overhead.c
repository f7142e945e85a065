/* run_overhead.c — `helix run --overhead`: how much of the run's wall time
 * its kernels explain. The same kernel calls every device makes (three QKV
 * GEMMs, its attention at the shape the plan gives it, the W_O GEMM) are
 * run again alone, on private buffers, with as many devices at once as the
 * grid ran (`--threads`), the way `helix bench kernels` runs them; the
 * ratio wall / kernels-alone is the framework's cost (copies, collectives,
 * waiting, scheduling). */
#include "run.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const helix_plan *p;
    atomic_llong next;
    int fail;
} ov_job;

typedef struct {
    ov_job *job;
    char *x, *w, *q, *k, *v, *o, *part, *gws, *aws;
} ov_worker;

/* One device's attention shape (exact/scores has no single kernel call). */
static int attn_shape(const helix_plan *p, int64_t rank, int64_t *H, int64_t *Lq, int64_t *q0, int64_t *width)
{
    helix_device_plan dp;
    if (helix_plan_device(p, rank, &dp)) return -1;
    *Lq = p->cfg.seq; *q0 = 0;
    if (p->cfg.mode == HELIX_MODE_SLICED) { *H = p->hg; *width = p->ds; return 0; }
    if (p->cfg.exact_algo != HELIX_EXACT_REGATHER) return -1;
    *width = p->cfg.head_dim;
    if (p->regather == HELIX_REGATHER_HEADS) { *H = dp.rg_head_end - dp.rg_head_begin; return 0; }
    *H = p->hg; *Lq = dp.rg_q_end - dp.rg_q_begin; *q0 = dp.rg_q_begin;
    return 0;
}

static void *ov_run(void *arg)
{
    ov_worker *wk = arg;
    const helix_plan *p = wk->job->p;
    const helix_config *c = &p->cfg;
    const int64_t BL = c->batch * c->seq, D = p->D, cols = p->cols;
    const helix_dtype t = c->dtype;
    for (;;) {
        const long long rank = atomic_fetch_add(&wk->job->next, 1);
        if (rank >= p->P) break;
        helix_gemm(BL, cols, D, t, wk->x, D, t, wk->w, cols, NULL, t, wk->q, cols, wk->gws);
        helix_gemm(BL, cols, D, t, wk->x, D, t, wk->w, cols, NULL, t, wk->k, cols, wk->gws);
        helix_gemm(BL, cols, D, t, wk->x, D, t, wk->w, cols, NULL, t, wk->v, cols, wk->gws);
        int64_t H = 0, Lq = 0, q0 = 0, width = 0;
        if (attn_shape(p, rank, &H, &Lq, &q0, &width)) { wk->job->fail = 1; break; }
        helix_attn_args a;
        memset(&a, 0, sizeof a);
        a.B = c->batch; a.Lq = Lq; a.Lk = c->seq; a.H = H; a.width = width; a.dtype = t;
        a.q = wk->q; a.k = wk->k; a.v = wk->v; a.o = wk->o;
        a.scale = (float)p->scale; a.causal = c->causal; a.q_pos0 = q0; a.kv_len = c->kv_len;
        helix_attn_args_dense(&a);
        if (H > 0 && Lq > 0 && helix_attention_fwd(&a, wk->aws)) wk->job->fail = 1;
        if (c->out_proj) helix_gemm(BL, D, cols, t, wk->o, cols, t, wk->w, D, NULL, t, wk->part, D, wk->gws);
    }
    return NULL;
}

double run_kernels_alone(const helix_plan *p, int threads, int reps)
{
    for (int64_t r = 0; r < p->P; r++) {
        int64_t H, Lq, q0, width;
        if (attn_shape(p, r, &H, &Lq, &q0, &width)) return -1;
    }
    const helix_config *c = &p->cfg;
    const int64_t BL = c->batch * c->seq, D = p->D, wide = p->cols > D ? p->cols : D;
    const size_t es = helix_dtype_size(c->dtype);
    /* a device's q/k/v/o hold at most BL x (hg * head_dim) values (whole heads after a regather) */
    const int64_t qn = BL * (p->hg * c->head_dim > p->cols ? p->hg * c->head_dim : p->cols);
    int64_t gws = helix_gemm_workspace_bytes(BL, wide, wide, c->dtype, c->dtype, c->dtype);
    const int64_t aws = helix_attention_workspace_bytes(c->head_dim);
    if (threads < 1) threads = 1;
    if (threads > p->P) threads = (int)p->P;
    ov_job job = {p, 0, 0};
    ov_worker *wk = calloc((size_t)threads, sizeof *wk);
    int ok = wk != NULL;
    for (int k = 0; ok && k < threads; k++) {
        ov_worker *w = &wk[k];
        w->job = &job;
        w->x = calloc((size_t)(BL * D), es);
        w->w = calloc((size_t)(D * wide), es);
        w->q = calloc((size_t)qn, es); w->k = calloc((size_t)qn, es); w->v = calloc((size_t)qn, es);
        w->o = calloc((size_t)qn, es);
        w->part = calloc((size_t)(BL * D), es);
        w->gws = gws ? aligned_alloc(64, (size_t)((gws + 63) / 64 * 64)) : NULL;
        w->aws = aligned_alloc(64, (size_t)((aws + 63) / 64 * 64));
        ok = w->x && w->w && w->q && w->k && w->v && w->o && w->part && (!gws || w->gws) && w->aws;
        /* small non-zero values, so nothing runs on denormals or zeros only */
        for (int64_t e = 0; ok && e < BL * D; e++) { float f = (float)((e % 13) - 6) * 0.01f; helix_from_f32(c->dtype, &f, w->x + e * es, 1); }
        for (int64_t e = 0; ok && e < D * wide; e++) { float f = (float)((e % 7) - 3) * 0.01f; helix_from_f32(c->dtype, &f, w->w + e * es, 1); }
    }
    double best = -1;
    double *times = malloc(sizeof(double) * (size_t)(reps + 1));
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
    if (ok && times && !job.fail) {
        qsort(times, (size_t)reps, sizeof *times, bench_cmp_d);
        best = times[reps / 2];
    }
    free(times);
    for (int k = 0; wk && k < threads; k++) {
        ov_worker *w = &wk[k];
        free(w->x); free(w->w); free(w->q); free(w->k); free(w->v); free(w->o); free(w->part); free(w->gws); free(w->aws);
    }
    free(wk);
    return best;
}
