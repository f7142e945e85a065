/* inproc.c — the in-process engine: P ranks are threads of one process.
 *
 * Each collective posts pointers in the group's slot table, meets at a
 * barrier, copies straight from the peers' buffers, and meets again so no
 * buffer is reused while a peer may still read it. Barriers watch a world
 * abort flag, so a failing rank never leaves the others waiting. A
 * counting semaphore of "compute slots" bounds how many ranks compute at
 * once; a rank gives its slot away while it waits in a collective. */
#include "helix_comm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct group group_t;

typedef struct {
    const void *p;
    const size_t *a, *b;
    size_t n;
    int color, key, flag;
    group_t *made;          /* split: the new group this slot's leader made */
} slot_t;

struct group {
    helix_inproc_world_t *world;
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    unsigned long gen;
    slot_t *slots;
};

struct helix_inproc_world {
    int size;
    int aborted;
    pthread_mutex_t mu;     /* guards everything below and `aborted` */
    pthread_cond_t slot_cv;
    int slots_free;
    group_t **groups;       /* every group, to wake them on abort */
    int ngroups, cap;
    group_t *top;
};

typedef struct {
    helix_comm_t pub;
    group_t *g;
    helix_comm_memory mem;  /* copy NULL: host memory */
} inproc_comm_t;

/* n bytes from any rank's buffer into this rank's */
static helix_status xcopy(const inproc_comm_t *c, void *dst, const void *src, size_t n)
{
    if (!n || dst == src) return HELIX_OK;
    if (c->mem.copy) return c->mem.copy(c->mem.ctx, dst, src, n);
    memmove(dst, src, n);
    return HELIX_OK;
}

static _Thread_local int holds_slot;

static int world_aborted(helix_inproc_world_t *w)
{
    pthread_mutex_lock(&w->mu);
    int a = w->aborted;
    pthread_mutex_unlock(&w->mu);
    return a;
}

static void slot_release(helix_inproc_world_t *w)
{
    if (!holds_slot) return;
    pthread_mutex_lock(&w->mu);
    w->slots_free++;
    pthread_cond_signal(&w->slot_cv);
    pthread_mutex_unlock(&w->mu);
    holds_slot = 0;
}

static void slot_acquire(helix_inproc_world_t *w)
{
    if (holds_slot) return;
    pthread_mutex_lock(&w->mu);
    while (w->slots_free == 0 && !w->aborted) pthread_cond_wait(&w->slot_cv, &w->mu);
    if (!w->aborted) { w->slots_free--; holds_slot = 1; }
    pthread_mutex_unlock(&w->mu);
}

static group_t *group_new(helix_inproc_world_t *w, int size)
{
    group_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->slots = calloc((size_t)size, sizeof *g->slots);
    if (!g->slots) { free(g); return NULL; }
    g->world = w;
    g->size = size;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    pthread_mutex_lock(&w->mu);
    if (w->ngroups == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        group_t **ng = realloc(w->groups, sizeof *ng * (size_t)cap);
        if (!ng) { pthread_mutex_unlock(&w->mu); free(g->slots); free(g); return NULL; }
        w->groups = ng;
        w->cap = cap;
    }
    w->groups[w->ngroups++] = g;
    pthread_mutex_unlock(&w->mu);
    return g;
}

static void group_destroy(group_t *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->slots);
    free(g);
}

static helix_status barrier(group_t *g)
{
    helix_inproc_world_t *w = g->world;
    pthread_mutex_lock(&g->mu);
    if (world_aborted(w)) { pthread_mutex_unlock(&g->mu); return HELIX_ERR_ABORTED; }
    unsigned long gen = g->gen;
    if (++g->arrived == g->size) {
        g->arrived = 0;
        g->gen++;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (gen == g->gen && !world_aborted(w)) pthread_cond_wait(&g->cv, &g->mu);
    }
    int done = gen != g->gen;
    pthread_mutex_unlock(&g->mu);
    return done ? HELIX_OK : HELIX_ERR_ABORTED;
}

/* Every collective: give the compute slot away, post, meet, work, meet. */
#define ENTER(c) inproc_comm_t *c = (inproc_comm_t *)self; group_t *g = c->g; \
    const int me = c->pub.rank; slot_release(g->world)
#define LEAVE(st) do { helix_status st_ = (st); slot_acquire(g->world); return st_; } while (0)

static helix_status ip_bcast(void *self, void *buf, size_t n, int root)
{
    ENTER(c);
    helix_status st;
    g->slots[me].p = buf;
    if ((st = barrier(g))) LEAVE(st);
    helix_status cs = me != root ? xcopy(c, buf, g->slots[root].p, n) : HELIX_OK;
    st = barrier(g);
    LEAVE(cs ? cs : st);
}

static helix_status ip_allgatherv(void *self, const void *send, size_t send_bytes, void *recv,
                                  const size_t *recv_bytes, const size_t *displs)
{
    ENTER(c);
    helix_status st;
    char *r = (char *)recv;
    g->slots[me].p = send ? send : r + displs[me];
    g->slots[me].n = send_bytes;
    if ((st = barrier(g))) LEAVE(st);
    int bad = 0;
    helix_status cs = HELIX_OK;
    for (int p = 0; p < g->size && !cs; p++) {
        if (g->slots[p].n != recv_bytes[p]) { bad = 1; continue; }
        if (p != me) cs = xcopy(c, r + displs[p], g->slots[p].p, recv_bytes[p]);
    }
    if (!cs && send) cs = xcopy(c, r + displs[me], send, send_bytes);
    st = barrier(g);
    LEAVE(bad ? HELIX_ERR_COMM : cs ? cs : st);
}

static helix_status ip_alltoallv(void *self, const void *send, const size_t *send_bytes,
                                 const size_t *sdispls, void *recv, const size_t *recv_bytes,
                                 const size_t *rdispls)
{
    ENTER(c);
    helix_status st;
    g->slots[me].p = send;
    g->slots[me].a = send_bytes;
    g->slots[me].b = sdispls;
    if ((st = barrier(g))) LEAVE(st);
    int bad = 0;
    helix_status cs = HELIX_OK;
    for (int p = 0; p < g->size && !cs; p++) {
        const slot_t *s = &g->slots[p];
        if (s->a[me] != recv_bytes[p]) { bad = 1; continue; }
        cs = xcopy(c, (char *)recv + rdispls[p], (const char *)s->p + s->b[me], recv_bytes[p]);
    }
    st = barrier(g);
    LEAVE(bad ? HELIX_ERR_COMM : cs ? cs : st);
}

static helix_status ip_gatherv(void *self, const void *send, size_t send_bytes, void *recv,
                               const size_t *recv_bytes, const size_t *displs, int root)
{
    ENTER(c);
    helix_status st;
    g->slots[me].p = send;
    g->slots[me].n = send_bytes;
    if ((st = barrier(g))) LEAVE(st);
    int bad = 0;
    helix_status cs = HELIX_OK;
    if (me == root)
        for (int p = 0; p < g->size && !cs; p++) {
            if (g->slots[p].n != recv_bytes[p]) { bad = 1; continue; }
            cs = xcopy(c, (char *)recv + displs[p], g->slots[p].p, recv_bytes[p]);
        }
    st = barrier(g);
    LEAVE(bad ? HELIX_ERR_COMM : cs ? cs : st);
}

static helix_status ip_any(void *self, int mine, int *any)
{
    ENTER(c);
    helix_status st;
    g->slots[me].flag = mine != 0;
    if ((st = barrier(g))) LEAVE(st);
    int a = 0;
    for (int p = 0; p < g->size; p++) a |= g->slots[p].flag;
    *any = a;
    LEAVE(barrier(g));
}

static const helix_comm_ops inproc_ops, inproc_device_ops;

static helix_status wrap(group_t *g, int rank, const helix_comm_memory *mem, helix_comm_t **out)
{
    inproc_comm_t *c = calloc(1, sizeof *c);
    if (!c) return HELIX_ERR_NOMEM;
    c->g = g;
    if (mem && mem->copy) c->mem = *mem;
    c->pub.ops = c->mem.copy ? &inproc_device_ops : &inproc_ops;
    c->pub.self = c;
    c->pub.rank = rank;
    c->pub.size = g->size;
    *out = &c->pub;
    return HELIX_OK;
}

static helix_status ip_split(void *self, int color, int key, helix_comm_t **out)
{
    ENTER(c);
    helix_status st;
    slot_t *s = g->slots;
    s[me].color = color;
    s[me].key = key;
    s[me].made = NULL;
    if ((st = barrier(g))) LEAVE(st);
    int leader = -1, count = 0, newrank = 0;
    for (int p = 0; p < g->size; p++) {
        if (s[p].color != color) continue;
        if (leader < 0) leader = p;
        count++;
        if (s[p].key < key || (s[p].key == key && p < me)) newrank++;
    }
    if (leader == me) s[me].made = group_new(g->world, count);
    if ((st = barrier(g))) LEAVE(st);
    group_t *ng = s[leader].made;
    st = ng ? wrap(ng, newrank, &c->mem, out) : HELIX_ERR_NOMEM;
    helix_status st2 = barrier(g);
    LEAVE(st ? st : st2);
}

/* Groups live until the world is freed, so an abort can always reach them. */
static void ip_free(void *self) { free(self); }

/* a rank's own buffers, for the shared reductions (comm.c) */
static helix_status ip_copy(void *self, void *dst, const void *src, size_t n)
{
    return xcopy((const inproc_comm_t *)self, dst, src, n);
}

static helix_status ip_sum_rows(void *self, void *rows, int64_t n_rows, int64_t n, helix_dtype t)
{
    const inproc_comm_t *c = (const inproc_comm_t *)self;
    return c->mem.sum_rows ? c->mem.sum_rows(c->mem.ctx, rows, n_rows, n, t) : HELIX_ERR_UNSUPPORTED;
}

static const helix_comm_ops inproc_ops = {
    "inproc", ip_bcast, ip_allgatherv, ip_alltoallv, ip_gatherv, ip_split, ip_any, ip_free,
};
static const helix_comm_ops inproc_device_ops = {
    "inproc", ip_bcast, ip_allgatherv, ip_alltoallv, ip_gatherv, ip_split, ip_any, ip_free, ip_copy, ip_sum_rows,
};

helix_status helix_inproc_world_new(int size, int compute_slots, helix_inproc_world_t **out)
{
    if (size < 1) return HELIX_ERR_INVALID;
    helix_inproc_world_t *w = calloc(1, sizeof *w);
    if (!w) return HELIX_ERR_NOMEM;
    w->size = size;
    w->slots_free = compute_slots < 1 ? size : compute_slots;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->slot_cv, NULL);
    w->top = group_new(w, size);
    if (!w->top) { free(w->groups); free(w); return HELIX_ERR_NOMEM; }
    *out = w;
    return HELIX_OK;
}

helix_status helix_inproc_comm(helix_inproc_world_t *w, int rank, helix_comm_counters *counters,
                               helix_comm_t **out)
{
    return helix_inproc_comm_on(w, rank, counters, NULL, out);
}

helix_status helix_inproc_comm_on(helix_inproc_world_t *w, int rank, helix_comm_counters *counters,
                                  const helix_comm_memory *mem, helix_comm_t **out)
{
    if (rank < 0 || rank >= w->size) return HELIX_ERR_INVALID;
    if (mem && mem->copy && !mem->sum_rows) return HELIX_ERR_INVALID;
    helix_status st = wrap(w->top, rank, mem, out);
    if (st == HELIX_OK) {
        (*out)->counters = counters;
        slot_acquire(w);
    }
    return st;
}

void helix_inproc_world_abort(helix_inproc_world_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->aborted = 1;
    pthread_cond_broadcast(&w->slot_cv);
    int ng = w->ngroups;
    group_t **gs = malloc(sizeof *gs * (size_t)(ng ? ng : 1));
    if (gs) memcpy(gs, w->groups, sizeof *gs * (size_t)ng);
    pthread_mutex_unlock(&w->mu);
    /* lock order elsewhere is g->mu then w->mu: wake each group on its own */
    for (int k = 0; gs && k < ng; k++) {
        pthread_mutex_lock(&gs[k]->mu);
        pthread_cond_broadcast(&gs[k]->cv);
        pthread_mutex_unlock(&gs[k]->mu);
    }
    free(gs);
}

void helix_inproc_rank_done(helix_inproc_world_t *w) { slot_release(w); }

void helix_inproc_world_free(helix_inproc_world_t *w)
{
    if (!w) return;
    for (int k = 0; k < w->ngroups; k++) group_destroy(w->groups[k]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->slot_cv);
    free(w->groups);
    free(w);
}
