/* comm.c — engine-independent layer over helix_comm_ops: counts each
 * collective's logical bytes into the device's per-phase counters (the
 * convention is written in helix_comm.h) and builds all-reduce and reduce
 * from all-to-all + all-gather / gather, summing in f32 in rank order, so
 * every engine produces bitwise the same sums. */
#include "helix_comm.h"

#include <stdlib.h>
#include <string.h>

static void book(helix_comm_t *c, int64_t sent, int64_t recv)
{
    if (!c->counters) return;
    helix_traffic *t = &c->counters->bytes[c->counters->phase];
    t->sent_bytes += sent;
    t->recv_bytes += recv;
}

helix_status helix_comm_bcast(helix_comm_t *c, void *buf, size_t n, int root)
{
    if (c->size == 1) return HELIX_OK;
    if (c->rank == root) book(c, (int64_t)n * (c->size - 1), 0);
    else book(c, 0, (int64_t)n);
    return c->ops->bcast(c->self, buf, n, root);
}

helix_status helix_comm_allgatherv(helix_comm_t *c, const void *send, size_t send_bytes,
                                   void *recv, const size_t *recv_bytes, const size_t *displs)
{
    int64_t in = 0;
    for (int p = 0; p < c->size; p++) if (p != c->rank) in += (int64_t)recv_bytes[p];
    book(c, (int64_t)send_bytes * (c->size - 1), in);
    return c->ops->allgatherv(c->self, send, send_bytes, recv, recv_bytes, displs);
}

helix_status helix_comm_alltoallv(helix_comm_t *c, const void *send, const size_t *send_bytes,
                                  const size_t *sdispls, void *recv, const size_t *recv_bytes,
                                  const size_t *rdispls)
{
    int64_t out = 0, in = 0;
    for (int p = 0; p < c->size; p++)
        if (p != c->rank) { out += (int64_t)send_bytes[p]; in += (int64_t)recv_bytes[p]; }
    book(c, out, in);
    return c->ops->alltoallv(c->self, send, send_bytes, sdispls, recv, recv_bytes, rdispls);
}

helix_status helix_comm_gatherv(helix_comm_t *c, const void *send, size_t send_bytes, void *recv,
                                const size_t *recv_bytes, const size_t *displs, int root)
{
    if (c->rank == root) {
        int64_t in = 0;
        for (int p = 0; p < c->size; p++) if (p != root) in += (int64_t)recv_bytes[p];
        book(c, 0, in);
    } else {
        book(c, (int64_t)send_bytes, 0);
    }
    return c->ops->gatherv(c->self, send, send_bytes, recv, recv_bytes, displs, root);
}

helix_status helix_comm_split(helix_comm_t *c, int color, int key, helix_comm_t **out)
{
    helix_status st = c->ops->split(c->self, color, key, out);
    if (st == HELIX_OK) (*out)->counters = c->counters;
    return st;
}

helix_status helix_comm_any(helix_comm_t *c, int mine, int *any) { return c->ops->any(c->self, mine, any); }

void helix_comm_free(helix_comm_t *c)
{
    if (c) c->ops->free(c->self);
}

/* ------------------------------------------------ reductions over chunks */

/* a copy inside one rank's memory: host memcpy, or the engine's own */
static helix_status local_copy(helix_comm_t *c, void *dst, const void *src, size_t n)
{
    if (c->ops->copy) return c->ops->copy(c->self, dst, src, n);
    memcpy(dst, src, n);
    return HELIX_OK;
}

static int64_t chunk_max(int64_t count, int size) { return (count + size - 1) / size; }

int64_t helix_comm_reduce_scratch_bytes(int64_t count, int size, helix_dtype t)
{
    return chunk_max(count, size) * size * (int64_t)helix_dtype_size(t);
}

helix_traffic helix_traffic_allreduce(int64_t count, int size, int rank, size_t es)
{
    helix_traffic t = {0, 0};
    if (size == 1) return t;
    int64_t b, e;
    helix_split_range(count, size, rank, &b, &e);
    int64_t mine = e - b;
    t.sent_bytes = (int64_t)es * ((count - mine) + mine * (size - 1));
    t.recv_bytes = t.sent_bytes;
    return t;
}

helix_traffic helix_traffic_reduce(int64_t count, int size, int rank, int root, size_t es)
{
    helix_traffic t = {0, 0};
    if (size == 1) return t;
    int64_t b, e;
    helix_split_range(count, size, rank, &b, &e);
    int64_t mine = e - b;
    t.sent_bytes = (int64_t)es * ((count - mine) + (rank != root ? mine : 0));
    t.recv_bytes = (int64_t)es * (mine * (size - 1) + (rank == root ? count - mine : 0));
    return t;
}

/* Reduce-scatter: rank r receives chunk r of every rank's buf into scratch
 * [size][chunk_r] and sums it, in rank order, into scratch[0..chunk_r). */
static helix_status reduce_scatter(helix_comm_t *c, const void *buf, int64_t count, helix_dtype t,
                                   void *scratch, int64_t *mine_b, int64_t *mine_n)
{
    const int size = c->size;
    const size_t es = helix_dtype_size(t);
    size_t stack_cnt[4 * 64];
    size_t *sc = stack_cnt, *heap = NULL;
    if (size > 64) {
        heap = malloc(sizeof(size_t) * 4 * (size_t)size);
        if (!heap) return HELIX_ERR_NOMEM;
        sc = heap;
    }
    size_t *scount = sc, *sdisp = sc + size, *rcount = sc + 2 * size, *rdisp = sc + 3 * size;
    int64_t b, e;
    helix_split_range(count, size, c->rank, &b, &e);
    for (int p = 0; p < size; p++) {
        int64_t pb, pe;
        helix_split_range(count, size, p, &pb, &pe);
        scount[p] = (size_t)(pe - pb) * es;
        sdisp[p] = (size_t)pb * es;
        rcount[p] = (size_t)(e - b) * es;
        rdisp[p] = (size_t)p * (size_t)(e - b) * es;
    }
    helix_status st = helix_comm_alltoallv(c, buf, scount, sdisp, scratch, rcount, rdisp);
    free(heap);
    if (st) return st;
    const int64_t n = e - b;
    *mine_b = b;
    *mine_n = n;
    if (c->ops->sum_rows) return c->ops->sum_rows(c->self, scratch, size, n, t);
    float tmp[256];
    for (int64_t x0 = 0; x0 < n; x0 += 256) {
        int64_t nx = n - x0 < 256 ? n - x0 : 256;
        for (int64_t x = 0; x < nx; x++) tmp[x] = 0.0f;
        for (int p = 0; p < size; p++)
            for (int64_t x = 0; x < nx; x++)
                tmp[x] += helix_load(t, scratch, (int64_t)p * n + x0 + x);
        helix_from_f32(t, tmp, (char *)scratch + (size_t)x0 * es, nx);
    }
    return HELIX_OK;
}

static helix_status counts_displs(int64_t count, int size, size_t es, size_t **out)
{
    size_t *v = malloc(sizeof(size_t) * 2 * (size_t)size);
    if (!v) return HELIX_ERR_NOMEM;
    for (int p = 0; p < size; p++) {
        int64_t pb, pe;
        helix_split_range(count, size, p, &pb, &pe);
        v[p] = (size_t)(pe - pb) * es;
        v[size + p] = (size_t)pb * es;
    }
    *out = v;
    return HELIX_OK;
}

helix_status helix_comm_allreduce_sum(helix_comm_t *c, void *buf, int64_t count, helix_dtype t,
                                      void *scratch)
{
    if (c->size == 1 || count == 0) return HELIX_OK;
    const size_t es = helix_dtype_size(t);
    int64_t b, n;
    helix_status st = reduce_scatter(c, buf, count, t, scratch, &b, &n);
    if (st) return st;
    if ((st = local_copy(c, (char *)buf + (size_t)b * es, scratch, (size_t)n * es))) return st;
    size_t *cd;
    if ((st = counts_displs(count, c->size, es, &cd))) return st;
    st = helix_comm_allgatherv(c, NULL, (size_t)n * es, buf, cd, cd + c->size);
    free(cd);
    return st;
}

helix_status helix_comm_reduce_sum(helix_comm_t *c, const void *send, void *recv, int64_t count,
                                   helix_dtype t, int root, void *scratch)
{
    const size_t es = helix_dtype_size(t);
    if (c->size == 1) {
        return recv != send ? local_copy(c, recv, send, (size_t)count * es) : HELIX_OK;
    }
    int64_t b, n;
    helix_status st = reduce_scatter(c, send, count, t, scratch, &b, &n);
    if (st) return st;
    size_t *cd;
    if ((st = counts_displs(count, c->size, es, &cd))) return st;
    st = helix_comm_gatherv(c, scratch, (size_t)n * es, recv, cd, cd + c->size, root);
    free(cd);
    return st;
}
