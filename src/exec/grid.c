/* grid.c — run all P devices of a job inside this process, one thread per
 * device over the in-process engine. The first real failure (not the
 * ABORTED that the other devices then see) is the one reported. */
#include "exec-impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What every device thread runs: its part of the job over comm. */
typedef struct {
    helix_exec_rank_fn fn;
    void *ctx;
    helix_inproc_world_t *world;
    const helix_comm_memory *mem;
    pthread_mutex_t mu;
    helix_status first;
    helix_err err;
} grid_t;

typedef struct {
    grid_t *g;
    int rank;
} task_t;

static void *device_main(void *arg)
{
    task_t *t = (task_t *)arg;
    grid_t *g = t->g;
    helix_comm_t *comm = NULL;
    helix_err err = {{0}};
    helix_status st = helix_inproc_comm_on(g->world, t->rank, NULL, g->mem ? &g->mem[t->rank] : NULL, &comm);
    if (st == HELIX_OK)
        st = g->fn(g->ctx, comm, t->rank, &err);
    else
        snprintf(err.msg, sizeof err.msg, "device %d: could not join the in-process world", t->rank);
    if (st != HELIX_OK) {
        pthread_mutex_lock(&g->mu);
        if (g->first == HELIX_OK || (g->first == HELIX_ERR_ABORTED && st != HELIX_ERR_ABORTED)) {
            g->first = st;
            g->err = err;
        }
        pthread_mutex_unlock(&g->mu);
        helix_inproc_world_abort(g->world);
    }
    helix_comm_free(comm);
    helix_inproc_rank_done(g->world);
    return NULL;
}

helix_status helix_exec_grid(int P, int threads, helix_exec_rank_fn fn, void *ctx, const helix_comm_memory *mem,
                             helix_err *err)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    grid_t g;
    memset(&g, 0, sizeof g);
    g.fn = fn; g.ctx = ctx; g.mem = mem;
    pthread_mutex_init(&g.mu, NULL);
    helix_status st = helix_inproc_world_new(P, threads, &g.world);
    pthread_t *tid = calloc((size_t)P, sizeof *tid);
    task_t *tasks = calloc((size_t)P, sizeof *tasks);
    if (st || !tid || !tasks) {
        snprintf(err->msg, sizeof err->msg, "could not set up %d in-process devices", P);
        helix_inproc_world_free(g.world);
        free(tid); free(tasks);
        return st ? st : HELIX_ERR_NOMEM;
    }
    int started = 0;
    for (; started < P; started++) {
        tasks[started].g = &g;
        tasks[started].rank = started;
        if (pthread_create(&tid[started], NULL, device_main, &tasks[started])) break;
    }
    if (started < P) {
        g.first = HELIX_ERR_NOMEM;
        snprintf(g.err.msg, sizeof g.err.msg, "could only start %d of %d device threads", started, P);
        helix_inproc_world_abort(g.world);
    }
    for (int r = 0; r < started; r++) pthread_join(tid[r], NULL);
    helix_inproc_world_free(g.world);
    pthread_mutex_destroy(&g.mu);
    free(tid); free(tasks);
    if (g.first != HELIX_OK && err) *err = g.err;
    return g.first;
}
