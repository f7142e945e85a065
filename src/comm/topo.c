/* topo.c — where a communicator's members sit (helix_comm_topo) and, from
 * that alone, the bytes each collective moves per link class: the one
 * place both the communicator (booking what it sends) and the program
 * (predicting it) read. Flat collectives book per peer; a hierarchical
 * one (a communicator spanning K >= 2 nodes with G >= 2 members on each)
 * is the sum of its flat parts on the node communicator (G members, all
 * inside one node) and the cross communicator (K members, one per node). */
#include "helix_comm.h"
#include "comm-impl.h"

#include <stdlib.h>
#include <string.h>

void helix_traffic_add(helix_traffic *a, const helix_traffic *b, int64_t times)
{
    a->sent_bytes += b->sent_bytes * times;
    a->recv_bytes += b->recv_bytes * times;
    a->inter_sent_bytes += b->inter_sent_bytes * times;
    a->inter_recv_bytes += b->inter_recv_bytes * times;
}

int helix_traffic_eq(const helix_traffic *a, const helix_traffic *b)
{
    return a->sent_bytes == b->sent_bytes && a->recv_bytes == b->recv_bytes &&
           a->inter_sent_bytes == b->inter_sent_bytes && a->inter_recv_bytes == b->inter_recv_bytes;
}

helix_comm_topo helix_comm_topo_one(int size, int rank)
{
    helix_comm_topo t;
    memset(&t, 0, sizeof t);
    t.size = size;
    t.rank = rank;
    t.nodes = 1;
    t.per_node = size;
    return t;
}

static helix_comm_topo topo_apart(int size, int rank)
{
    helix_comm_topo t = helix_comm_topo_one(size, rank);
    t.apart = 1;
    t.nodes = size;
    t.per_node = 1;
    return t;
}

helix_status helix_comm_topo_init(helix_comm_topo *t, int size, int rank, const int *node_of)
{
    *t = helix_comm_topo_one(size, rank);
    if (!node_of || size < 1) return HELIX_OK;
    int *v = malloc(sizeof(int) * 4 * (size_t)size), *tmp = malloc(sizeof(int) * 3 * (size_t)size);
    if (!v || !tmp) { free(v); free(tmp); return HELIX_ERR_NOMEM; }
    int *node = v, *local = v + size, *xrank = v + 2 * size, *member = v + 3 * size;
    int *ids = tmp, *per = tmp + size, *per_local = tmp + 2 * size;
    int K = 0;
    for (int q = 0; q < size; q++) {             /* dense node ids by first appearance */
        int id = K;
        for (int k = K - 1; k >= 0; k--) if (ids[k] == node_of[q]) { id = k; break; }
        if (id == K) { ids[K] = node_of[q]; per[K] = 0; K++; }
        node[q] = id;
        local[q] = per[id]++;
        per_local[q] = 0;
    }
    int G = per[0];
    for (int k = 1; k < K; k++) if (per[k] != G) G = 0;
    for (int q = 0; q < size; q++) {
        xrank[q] = per_local[local[q]]++;
        if (G > 0) member[xrank[q] * G + local[q]] = q;
    }
    free(tmp);
    t->nodes = K;
    t->per_node = G;
    t->node = node;
    t->local = local;
    t->xrank = xrank;
    t->member = member;
    t->apart = K == size;
    return HELIX_OK;
}

void helix_comm_topo_free(helix_comm_topo *t)
{
    if (t) free(t->node);   /* one allocation */
    if (t) *t = helix_comm_topo_one(t->size, t->rank);
}

int helix_comm_topo_hier(const helix_comm_topo *t) { return t->nodes > 1 && t->per_node > 1; }

int helix_comm_topo_off(const helix_comm_topo *t, int p)
{
    if (p == t->rank) return 0;
    if (t->apart) return 1;
    return t->node && t->node[p] != t->node[t->rank];
}

void helix_comm_topo_parts(const helix_comm_topo *t, helix_comm_topo *in, helix_comm_topo *x)
{
    *in = helix_comm_topo_one(t->per_node, t->local[t->rank]);
    *x = topo_apart(t->nodes, t->xrank[t->rank]);
}

static void add(helix_traffic *a, helix_traffic b) { helix_traffic_add(a, &b, 1); }

/* out bytes to member p and in bytes from it, each also as inter-node when p is elsewhere */
static void peer(helix_traffic *r, const helix_comm_topo *t, int p, int64_t out, int64_t in)
{
    r->sent_bytes += out;
    r->recv_bytes += in;
    if (helix_comm_topo_off(t, p)) { r->inter_sent_bytes += out; r->inter_recv_bytes += in; }
}

/* ---------------------------------------------------- flat, per peer */

static helix_traffic flat_bcast(const helix_comm_topo *t, int64_t n, int root)
{
    helix_traffic r = {0, 0, 0, 0};
    if (t->size <= 1) return r;
    if (t->rank != root) { peer(&r, t, root, 0, n); return r; }
    for (int p = 0; p < t->size; p++) if (p != root) peer(&r, t, p, n, 0);
    return r;
}

static helix_traffic flat_allgatherv(const helix_comm_topo *t, int64_t mine, const size_t *recv_bytes)
{
    helix_traffic r = {0, 0, 0, 0};
    for (int p = 0; p < t->size; p++) if (p != t->rank) peer(&r, t, p, mine, (int64_t)recv_bytes[p]);
    return r;
}

helix_traffic helix_traffic_alltoallv(const helix_comm_topo *t, const size_t *send_bytes, const size_t *recv_bytes)
{
    helix_traffic r = {0, 0, 0, 0};
    for (int p = 0; p < t->size; p++) if (p != t->rank) peer(&r, t, p, (int64_t)send_bytes[p], (int64_t)recv_bytes[p]);
    return r;
}

helix_traffic helix_traffic_gatherv(const helix_comm_topo *t, int64_t mine, const size_t *recv_bytes, int root)
{
    helix_traffic r = {0, 0, 0, 0};
    if (t->size <= 1) return r;
    if (t->rank != root) { peer(&r, t, root, mine, 0); return r; }
    for (int p = 0; p < t->size; p++) if (p != root) peer(&r, t, p, 0, (int64_t)recv_bytes[p]);
    return r;
}

/* The chunks c_p = split(count, size, p) of a direct exchange: gather 0,
 * a reduce-scatter (every other chunk to its owner, c_r from each peer);
 * gather 1, an all-gather of them (c_r to each peer, c_p from each). */
/* elements of member p's chunk (comm-impl.h) */
static int64_t rows_of(int64_t rows, int64_t unit, int size, int p)
{
    int64_t n;
    helix_row_chunk(rows, unit, size, p, NULL, &n);
    return n;
}

static helix_traffic flat_chunks_rows(const helix_comm_topo *t, int64_t rows, int64_t unit, size_t es, int gather)
{
    helix_traffic r = {0, 0, 0, 0};
    const int64_t mine = rows_of(rows, unit, t->size, t->rank) * (int64_t)es;
    for (int p = 0; p < t->size; p++) {
        if (p == t->rank) continue;
        const int64_t theirs = rows_of(rows, unit, t->size, p) * (int64_t)es;
        peer(&r, t, p, gather ? mine : theirs, gather ? theirs : mine);
    }
    return r;
}
static helix_traffic flat_chunks(const helix_comm_topo *t, int64_t count, size_t es, int gather)
{
    return flat_chunks_rows(t, count, 1, es, gather);
}
static helix_traffic flat_reduce_scatter(const helix_comm_topo *t, int64_t count, size_t es) { return flat_chunks(t, count, es, 0); }

/* hierarchical (comm.c reduce_scatter_hier): per node block k an in-node
 * exchange of its G chunks, then each of my K node partials to its owner */
helix_traffic helix_traffic_reduce_scatter(const helix_comm_topo *t, int64_t rows, int64_t unit, size_t es)
{
    helix_traffic r = {0, 0, 0, 0};
    if (t->size <= 1 || rows == 0 || unit == 0) return r;
    if (!helix_comm_topo_hier(t)) return flat_chunks_rows(t, rows, unit, es, 0);
    const int K = t->nodes, G = t->per_node, l = t->local[t->rank];
    helix_comm_topo in, x;
    helix_comm_topo_parts(t, &in, &x);
    const int64_t e = (int64_t)es, mine = rows_of(rows, unit, t->size, t->rank);
    for (int k = 0; k < K; k++) {
        const int64_t mk = rows_of(rows, unit, t->size, t->member[k * G + l]);
        for (int q = 0; q < G; q++)
            if (q != l) peer(&r, &in, q, rows_of(rows, unit, t->size, t->member[k * G + q]) * e, mk * e);
    }
    for (int k = 0; k < K; k++)
        if (k != x.rank) peer(&r, &x, k, rows_of(rows, unit, t->size, t->member[k * G + l]) * e, mine * e);
    return r;
}
static helix_traffic flat_allgather_chunks(const helix_comm_topo *t, int64_t count, size_t es) { return flat_chunks(t, count, es, 1); }

/* every rank's chunk to root */
static helix_traffic flat_gather_chunks(const helix_comm_topo *t, int64_t count, size_t es, int root)
{
    helix_traffic r = {0, 0, 0, 0};
    int64_t b, e;
    helix_split_range(count, t->size, t->rank, &b, &e);
    if (t->rank != root) { peer(&r, t, root, (e - b) * (int64_t)es, 0); return r; }
    for (int p = 0; p < t->size; p++) {
        if (p == root) continue;
        int64_t pb, pe;
        helix_split_range(count, t->size, p, &pb, &pe);
        peer(&r, t, p, 0, (pe - pb) * (int64_t)es);
    }
    return r;
}

/* ------------------------------------------------ flat or hierarchical */

helix_traffic helix_traffic_bcast(const helix_comm_topo *t, int64_t n, int root)
{
    if (!helix_comm_topo_hier(t)) return flat_bcast(t, n, root);
    helix_comm_topo in, x;
    helix_comm_topo_parts(t, &in, &x);
    helix_traffic r = {0, 0, 0, 0};
    const int lr = t->local[root];
    if (in.rank == lr) add(&r, flat_bcast(&x, n, t->xrank[root]));   /* across nodes */
    add(&r, flat_bcast(&in, n, lr));                                 /* inside each  */
    return r;
}

helix_traffic helix_traffic_allgatherv(const helix_comm_topo *t, int64_t mine, const size_t *recv_bytes)
{
    if (!helix_comm_topo_hier(t)) return flat_allgatherv(t, mine, recv_bytes);
    const int K = t->nodes, G = t->per_node, l = t->local[t->rank];
    helix_comm_topo in, x;
    helix_comm_topo_parts(t, &in, &x);
    helix_traffic r = {0, 0, 0, 0};
    size_t stack[64], *cnt = K > 64 || G > 64 ? malloc(sizeof(size_t) * (size_t)(K > G ? K : G)) : stack;
    if (!cnt) return r;
    for (int k = 0; k < K; k++) cnt[k] = recv_bytes[t->member[k * G + l]];
    add(&r, flat_allgatherv(&x, mine, cnt));                  /* the chunks of my local index */
    for (int k = 0; k < K; k++) {                              /* then each node row inside */
        for (int q = 0; q < G; q++) cnt[q] = recv_bytes[t->member[k * G + q]];
        add(&r, flat_allgatherv(&in, (int64_t)cnt[l], cnt));
    }
    if (cnt != stack) free(cnt);
    return r;
}

/* All-reduce (root < 0) or reduce onto root: reduce-scatter, then the
 * chunks all-gathered or gathered to root; hierarchically, the reduction
 * of chunk l across the nodes between the two in-node parts. */
static helix_traffic reduction(const helix_comm_topo *t, int64_t count, int root, size_t es)
{
    helix_traffic r = {0, 0, 0, 0};
    if (t->size <= 1 || count == 0) return r;
    if (!helix_comm_topo_hier(t)) {
        add(&r, flat_reduce_scatter(t, count, es));
        add(&r, root < 0 ? flat_allgather_chunks(t, count, es) : flat_gather_chunks(t, count, es, root));
        return r;
    }
    helix_comm_topo in, x;
    helix_comm_topo_parts(t, &in, &x);
    int64_t b, e;
    helix_split_range(count, in.size, in.rank, &b, &e);
    add(&r, flat_reduce_scatter(&in, count, es));
    add(&r, reduction(&x, e - b, root < 0 ? -1 : t->xrank[root], es));
    if (root < 0) add(&r, flat_allgather_chunks(&in, count, es));
    else if (t->node[t->rank] == t->node[root]) add(&r, flat_gather_chunks(&in, count, es, t->local[root]));
    return r;
}

helix_traffic helix_traffic_allreduce(const helix_comm_topo *t, int64_t count, size_t es) { return reduction(t, count, -1, es); }
helix_traffic helix_traffic_reduce(const helix_comm_topo *t, int64_t count, int root, size_t es)
{
    return reduction(t, count, root, es);
}

/* Latency rounds on this member's critical path: a direct all-gather,
 * all-to-all or gather one per peer, a reduce-scatter the same, a
 * broadcast log2(size) rounds; hierarchical: the sum of its parts. */
static int64_t log2up(int64_t n) { int64_t r = 0; while (((int64_t)1 << r) < n) r++; return r; }

int64_t helix_comm_messages(const helix_comm_topo *t, int kind, int64_t count)
{
    const int64_t n = t->size;
    if (n <= 1) return 0;
    const int hier = helix_comm_topo_hier(t);
    const int64_t K = t->nodes, G = t->per_node;
    switch (kind) {
    case HELIX_COLL_BCAST: return hier ? log2up(K) + log2up(G) : log2up(n);
    case HELIX_COLL_ALLGATHER: return hier ? (K - 1) + K * (G - 1) : n - 1;
    case HELIX_COLL_ALLTOALL:
    case HELIX_COLL_GATHER: return n - 1;
    case HELIX_COLL_REDUCE_SCATTER: return hier ? K * (G - 1) + (K - 1) : n - 1;
    case HELIX_COLL_ALLREDUCE: return count == 0 ? 0 : hier ? 2 * (G - 1) + 2 * (K - 1) : 2 * (n - 1);
    case HELIX_COLL_REDUCE: return hier ? 2 * (G - 1) + 2 * (K - 1) : 2 * (n - 1);
    default: return 0;
    }
}
