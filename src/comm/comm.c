/* comm.c — engine-independent layer over helix_comm_ops: books each
 * collective's logical bytes (per link class, topo.c) into the device's
 * per-phase counters (the convention is written in helix_comm.h) and
 * builds all-reduce and reduce from all-to-all + all-gather / gather,
 * summing in f32 in rank order, so every engine produces bitwise the same
 * sums; where the communicator spans nodes, bcast, all-gather, all-reduce
 * and reduce are composed hierarchically from the flat ones on its node
 * and cross sub-communicators. */
#include "helix_comm.h"
#include "comm-impl.h"

#include <stdlib.h>
#include <string.h>

/* c's topology, or one node when none was set */
static const helix_comm_topo *topo(const helix_comm_t *c, helix_comm_topo *tmp)
{
    if (c->topo.size == c->size && c->topo.size > 0) return &c->topo;
    *tmp = helix_comm_topo_one(c->size, c->rank);
    return tmp;
}

static int hier(const helix_comm_t *c) { return c->hnode && c->hcross; }

static void book(helix_comm_t *c, helix_traffic t)
{
    if (!c->counters) return;
    helix_traffic_add(&c->counters->bytes[c->counters->phase], &t, 1);
}

static helix_status flat_bcast(helix_comm_t *c, void *buf, size_t n, int root)
{
    if (c->size == 1) return HELIX_OK;
    helix_comm_topo tmp;
    book(c, helix_traffic_bcast(topo(c, &tmp), (int64_t)n, root));
    return c->ops->bcast(c->self, buf, n, root);
}

helix_status helix_comm_bcast(helix_comm_t *c, void *buf, size_t n, int root)
{
    if (!hier(c)) return flat_bcast(c, buf, n, root);
    const helix_comm_topo *t = &c->topo;
    helix_status st = HELIX_OK;
    if (t->local[c->rank] == t->local[root]) st = flat_bcast(c->hcross, buf, n, t->xrank[root]);
    return st ? st : flat_bcast(c->hnode, buf, n, t->local[root]);
}

static helix_status flat_allgatherv(helix_comm_t *c, const void *send, size_t send_bytes, void *recv,
                                    const size_t *recv_bytes, const size_t *displs)
{
    helix_comm_topo tmp;
    book(c, helix_traffic_allgatherv(topo(c, &tmp), (int64_t)send_bytes, recv_bytes));
    return c->ops->allgatherv(c->self, send, send_bytes, recv, recv_bytes, displs);
}

helix_status helix_comm_allgatherv(helix_comm_t *c, const void *send, size_t send_bytes,
                                   void *recv, const size_t *recv_bytes, const size_t *displs)
{
    if (!hier(c)) return flat_allgatherv(c, send, send_bytes, recv, recv_bytes, displs);
    const helix_comm_topo *t = &c->topo;
    const int K = t->nodes, G = t->per_node, l = t->local[c->rank];
    size_t *v = calloc(2 * (size_t)(K > G ? K : G), sizeof(size_t));
    if (!v) return HELIX_ERR_NOMEM;
    /* the chunks of every member with my local index, straight to their places */
    for (int k = 0; k < K; k++) { v[k] = recv_bytes[t->member[k * G + l]]; v[K + k] = displs[t->member[k * G + l]]; }
    helix_status st = flat_allgatherv(c->hcross, send, send_bytes, recv, v, v + K);
    /* then, node row by node row, the G chunks of row k inside the node (in place) */
    for (int k = 0; k < K && !st; k++) {
        for (int q = 0; q < G; q++) { v[q] = recv_bytes[t->member[k * G + q]]; v[G + q] = displs[t->member[k * G + q]]; }
        st = flat_allgatherv(c->hnode, NULL, v[l], recv, v, v + G);
    }
    free(v);
    return st;
}

helix_status helix_comm_alltoallv(helix_comm_t *c, const void *send, const size_t *send_bytes,
                                  const size_t *sdispls, void *recv, const size_t *recv_bytes,
                                  const size_t *rdispls)
{
    helix_comm_topo tmp;
    book(c, helix_traffic_alltoallv(topo(c, &tmp), send_bytes, recv_bytes));
    return c->ops->alltoallv(c->self, send, send_bytes, sdispls, recv, recv_bytes, rdispls);
}

helix_status helix_comm_gatherv(helix_comm_t *c, const void *send, size_t send_bytes, void *recv,
                                const size_t *recv_bytes, const size_t *displs, int root)
{
    helix_comm_topo tmp;
    if (c->size > 1) book(c, helix_traffic_gatherv(topo(c, &tmp), (int64_t)send_bytes, recv_bytes, root));
    return c->ops->gatherv(c->self, send, send_bytes, recv, recv_bytes, displs, root);
}

helix_status helix_comm_split(helix_comm_t *c, int color, int key, helix_comm_t **out)
{
    helix_status st = c->ops->split(c->self, color, key, out);
    if (st == HELIX_OK) { (*out)->counters = c->counters; (*out)->native = c->native; }
    return st;
}

int helix_comm_set_native(helix_comm_t *c, int native)
{
    c->native = native != 0;
    return c->ops->allreduce_native != NULL;
}

helix_status helix_comm_any(helix_comm_t *c, int mine, int *any) { return c->ops->any(c->self, mine, any); }

static void drop_topology(helix_comm_t *c)
{
    helix_comm_free(c->hnode);
    helix_comm_free(c->hcross);
    c->hnode = c->hcross = NULL;
    helix_comm_topo_free(&c->topo);
    memset(&c->topo, 0, sizeof c->topo);
}

helix_status helix_comm_set_nodes(helix_comm_t *c, const int *node_of)
{
    drop_topology(c);
    if (!node_of) return HELIX_OK;
    helix_status st = helix_comm_topo_init(&c->topo, c->size, c->rank, node_of);
    int any = 0;
    helix_status ast = helix_comm_any(c, st != HELIX_OK, &any);
    if (ast || any) { drop_topology(c); return ast ? ast : st ? st : HELIX_ERR_NOMEM; }
    helix_comm_t *in = NULL, *x = NULL;
    if (helix_comm_topo_hier(&c->topo)) {      /* the same decision on every member: it follows from node_of alone */
        const int l = c->topo.local[c->rank];
        st = helix_comm_split(c, c->topo.node[c->rank], l, &in);
        if (!st) st = helix_comm_split(c, l, c->rank, &x);
        if (!st) helix_comm_topo_parts(&c->topo, &in->topo, &x->topo);   /* ranks: l and xrank, by the keys */
    }
    ast = helix_comm_any(c, st != HELIX_OK, &any);
    if (ast || any) {
        helix_comm_free(in);
        helix_comm_free(x);
        drop_topology(c);
        return ast ? ast : st ? st : HELIX_ERR_NOMEM;
    }
    c->hnode = in;
    c->hcross = x;
    return HELIX_OK;
}

void helix_comm_free(helix_comm_t *c)
{
    if (!c) return;
    drop_topology(c);
    c->ops->free(c->self);
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

/* parts [n_parts][n] in scratch: their f32 sum in part order into
 * scratch[0, n) (the engine's own device sum where it has one) */
static helix_status sum_parts(helix_comm_t *c, void *scratch, int n_parts, int64_t n, helix_dtype t)
{
    if (c->ops->sum_rows) return c->ops->sum_rows(c->self, scratch, n_parts, n, t);
    const size_t es = helix_dtype_size(t);
    float tmp[256], part[256];
    for (int64_t x0 = 0; x0 < n; x0 += 256) {
        int64_t nx = n - x0 < 256 ? n - x0 : 256;
        for (int64_t x = 0; x < nx; x++) tmp[x] = 0.0f;
        for (int p = 0; p < n_parts; p++) {   /* a run of part p widened at once, then added */
            const char *src = (const char *)scratch + ((size_t)p * (size_t)n + (size_t)x0) * es;
            const float *v = part;
            if (t == HELIX_F32) v = (const float *)src;
            else helix_to_f32(t, src, part, nx);
            for (int64_t x = 0; x < nx; x++) tmp[x] += v[x];
        }
        helix_from_f32(t, tmp, (char *)scratch + (size_t)x0 * es, nx);
    }
    return HELIX_OK;
}

/* Reduce-scatter: rank r receives chunk r of every rank's buf into scratch
 * [size][chunk_r] and sums it, in rank order, into scratch[0..chunk_r).
 * Chunks are whole rows of `unit` elements (helix_row_chunk). */
static helix_status reduce_scatter_rows(helix_comm_t *c, const void *buf, int64_t rows, int64_t unit, helix_dtype t,
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
    int64_t b, n;
    helix_row_chunk(rows, unit, size, c->rank, &b, &n);
    for (int p = 0; p < size; p++) {
        int64_t pb, pn;
        helix_row_chunk(rows, unit, size, p, &pb, &pn);
        scount[p] = (size_t)pn * es;
        sdisp[p] = (size_t)pb * es;
        rcount[p] = (size_t)n * es;
        rdisp[p] = (size_t)p * (size_t)n * es;
    }
    helix_status st = helix_comm_alltoallv(c, buf, scount, sdisp, scratch, rcount, rdisp);
    free(heap);
    if (st) return st;
    *mine_b = b;
    *mine_n = n;
    return sum_parts(c, scratch, size, n, t);
}

static helix_status reduce_scatter(helix_comm_t *c, const void *buf, int64_t count, helix_dtype t, void *scratch,
                                   int64_t *mine_b, int64_t *mine_n)
{
    return reduce_scatter_rows(c, buf, count, 1, t, scratch, mine_b, mine_n);
}

int64_t helix_comm_reduce_scatter_scratch_bytes(int64_t rows, int64_t unit, int size, helix_dtype t)
{
    return chunk_max(rows, size) * unit * size * (int64_t)helix_dtype_size(t);
}

/* Hierarchical reduce-scatter by rows (helix_comm.h). Node block k (the
 * ranks of node k, by local index) owns G consecutive chunks: first, for
 * each k, a reduce-scatter of block k inside my node, so local index l
 * holds the node partial of chunk (k, l); then across the nodes, the K
 * partials of my local index, each to its owner (xrank k), summed in
 * cross order. Scratch: K chunks of results + max(G, K) received, within
 * the flat size (K + max(G, K) <= K*G for K, G >= 2). */
static helix_status reduce_scatter_hier(helix_comm_t *c, void *buf, int64_t rows, int64_t unit, helix_dtype t,
                                        void *scratch)
{
    const helix_comm_topo *tp = &c->topo;
    const int K = tp->nodes, G = tp->per_node, l = tp->local[c->rank];
    const size_t es = helix_dtype_size(t);
    const int64_t cmax = chunk_max(rows, c->size) * unit;
    char *res = (char *)scratch, *rcv = res + (size_t)(K * cmax) * es;
    const int M = K > G ? K : G;
    size_t *v = malloc(sizeof(size_t) * 4 * (size_t)M);
    if (!v) return HELIX_ERR_NOMEM;
    size_t *sc = v, *sd = v + M, *rc = v + 2 * M, *rd = v + 3 * M;
    helix_status st = HELIX_OK;
    for (int k = 0; k < K && !st; k++) {
        int64_t mn;
        helix_row_chunk(rows, unit, c->size, tp->member[k * G + l], NULL, &mn);
        for (int q = 0; q < G; q++) {
            int64_t qb, qn;
            helix_row_chunk(rows, unit, c->size, tp->member[k * G + q], &qb, &qn);
            sc[q] = (size_t)qn * es; sd[q] = (size_t)qb * es;
            rc[q] = (size_t)mn * es; rd[q] = (size_t)q * (size_t)mn * es;
        }
        st = helix_comm_alltoallv(c->hnode, buf, sc, sd, rcv, rc, rd);
        if (!st) st = sum_parts(c->hnode, rcv, G, mn, t);                      /* local order */
        if (!st) st = local_copy(c, res + (size_t)(k * cmax) * es, rcv, (size_t)mn * es);
    }
    int64_t b, n;
    helix_row_chunk(rows, unit, c->size, c->rank, &b, &n);
    for (int k = 0; k < K && !st; k++) {
        int64_t kn;
        helix_row_chunk(rows, unit, c->size, tp->member[k * G + l], NULL, &kn);
        sc[k] = (size_t)kn * es; sd[k] = (size_t)(k * cmax) * es;
        rc[k] = (size_t)n * es; rd[k] = (size_t)k * (size_t)n * es;
    }
    if (!st) st = helix_comm_alltoallv(c->hcross, res, sc, sd, rcv, rc, rd);
    if (!st) st = sum_parts(c->hcross, rcv, K, n, t);                          /* cross order */
    free(v);
    return st ? st : local_copy(c, (char *)buf + (size_t)b * es, rcv, (size_t)n * es);
}

/* Flat (one all-to-all of the row chunks, summed in rank order, the sum
 * copied back to this rank's rows), or hierarchical where c spans nodes. */
helix_status helix_comm_reduce_scatter_sum(helix_comm_t *c, void *buf, int64_t rows, int64_t unit, helix_dtype t,
                                           void *scratch)
{
    if (c->size == 1 || rows == 0 || unit == 0) return HELIX_OK;
    const size_t es = helix_dtype_size(t);
    int64_t b, n;
    if (c->native && c->ops->reduce_scatter_native) {
        int64_t stack[128], *cnt = c->size <= 64 ? stack : malloc(sizeof(int64_t) * 2 * (size_t)c->size);
        if (!cnt) return HELIX_ERR_NOMEM;
        for (int p = 0; p < c->size; p++) helix_row_chunk(rows, unit, c->size, p, &cnt[c->size + p], &cnt[p]);
        helix_status st = c->ops->reduce_scatter_native(c->self, buf, cnt, scratch, t);
        b = cnt[c->size + c->rank];
        n = cnt[c->rank];
        if (cnt != stack) free(cnt);
        if (st != HELIX_ERR_UNSUPPORTED) {
            helix_comm_topo tmp;
            if (!st) book(c, helix_traffic_reduce_scatter(topo(c, &tmp), rows, unit, es));
            return st ? st : local_copy(c, (char *)buf + (size_t)b * es, scratch, (size_t)n * es);
        }
    }
    if (hier(c)) return reduce_scatter_hier(c, buf, rows, unit, t, scratch);
    helix_status st = reduce_scatter_rows(c, buf, rows, unit, t, scratch, &b, &n);
    return st ? st : local_copy(c, (char *)buf + (size_t)b * es, scratch, (size_t)n * es);
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

static helix_status flat_allreduce(helix_comm_t *c, void *buf, int64_t count, helix_dtype t, void *scratch)
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

static helix_status flat_reduce(helix_comm_t *c, const void *send, void *recv, int64_t count, helix_dtype t,
                                int root, void *scratch)
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

/* Hierarchical (helix_comm.h): reduce-scatter inside the node, chunk l
 * all-reduced across the nodes in place in buf, all-gather inside. The
 * scratch the flat one needs is enough: each part's is no larger. */
helix_status helix_comm_allreduce_sum(helix_comm_t *c, void *buf, int64_t count, helix_dtype t, void *scratch)
{
    if (c->native && c->ops->allreduce_native && c->size > 1 && count > 0) {
        helix_status st = c->ops->allreduce_native(c->self, buf, count, t);
        helix_comm_topo tmp;
        if (!st) book(c, helix_traffic_allreduce(topo(c, &tmp), count, helix_dtype_size(t)));
        if (st != HELIX_ERR_UNSUPPORTED) return st;
    }
    if (!hier(c)) return flat_allreduce(c, buf, count, t, scratch);
    if (count == 0) return HELIX_OK;
    const size_t es = helix_dtype_size(t);
    helix_comm_t *in = c->hnode;
    int64_t b, n;
    helix_status st = reduce_scatter(in, buf, count, t, scratch, &b, &n);
    if (!st) st = local_copy(in, (char *)buf + (size_t)b * es, scratch, (size_t)n * es);
    if (!st) st = flat_allreduce(c->hcross, (char *)buf + (size_t)b * es, n, t, scratch);
    if (st) return st;
    size_t *cd;
    if ((st = counts_displs(count, in->size, es, &cd))) return st;
    st = flat_allgatherv(in, NULL, (size_t)n * es, buf, cd, cd + in->size);
    free(cd);
    return st;
}

/* Hierarchical: reduce-scatter inside the node into scratch[0, n); chunk
 * l reduced across the nodes onto root's node, its scratch after it
 * (chunk_max(count, K*G)*K elements in: both fit in the flat scratch when
 * G >= 2); root gathers its node's chunks. */
helix_status helix_comm_reduce_sum(helix_comm_t *c, const void *send, void *recv, int64_t count, helix_dtype t,
                                   int root, void *scratch)
{
    if (c->native && c->ops->reduce_native && c->size > 1 && count > 0) {
        helix_status st = c->ops->reduce_native(c->self, send, recv, count, t, root);
        helix_comm_topo tmp;
        if (!st) book(c, helix_traffic_reduce(topo(c, &tmp), count, root, helix_dtype_size(t)));
        if (st != HELIX_ERR_UNSUPPORTED) return st;
    }
    if (!hier(c)) return flat_reduce(c, send, recv, count, t, root, scratch);
    const helix_comm_topo *tp = &c->topo;
    const size_t es = helix_dtype_size(t);
    helix_comm_t *in = c->hnode;
    int64_t b, n;
    helix_status st = reduce_scatter(in, send, count, t, scratch, &b, &n);
    char *part = (char *)scratch, *xs = part + (size_t)(chunk_max(count, c->size) * tp->nodes) * es;
    if (!st) st = flat_reduce(c->hcross, part, part, n, t, tp->xrank[root], xs);
    if (st || tp->node[c->rank] != tp->node[root]) return st;
    size_t *cd;
    if ((st = counts_displs(count, in->size, es, &cd))) return st;
    st = helix_comm_gatherv(in, part, (size_t)n * es, recv, cd, cd + in->size, tp->local[root]);
    free(cd);
    return st;
}
