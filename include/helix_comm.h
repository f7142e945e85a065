/* helix_comm.h — the communicator interface every engine implements.
 *
 * An engine (in-process grid, MPI, NCCL) supplies five data-moving
 * primitives with MPI semantics; everything else (all-reduce, reduce, byte
 * counting per phase) is built on them in one place, so every engine moves
 * the same bytes and sums in the same order (unless the caller asks for
 * the library's own reductions: helix_comm_set_native).
 *
 * Byte counting convention (logical bytes, self-copies excluded; each
 * counted again as inter-node when the peer is on another node):
 *   bcast n        root sends n*(size-1); every other rank receives n
 *   allgatherv     each rank sends its chunk to size-1 peers, receives theirs
 *   alltoallv      sum over peers != self of what goes out / comes in
 *   gatherv        non-roots send their chunk; root receives the others'
 *   allreduce      direct reduce-scatter + all-gather: rank r owns chunk
 *                  c_r = split(count, size, r); sends count-c_r + c_r*(size-1)
 *                  elements, receives the same
 *   reduce(root)   reduce-scatter, then the chunks gathered to root:
 *                  sends count-c_r (+ c_r if r != root), receives
 *                  c_r*(size-1) (+ count-c_root on root)
 *   reduce-scatter by rows: rank r owns rows split(rows, size, r) (c_r
 *                  elements): sends count-c_r, receives c_r*(size-1)
 *                  (flat; hierarchical: helix_traffic_reduce_scatter)
 *
 * Topology (helix_comm_set_nodes). A communicator whose members span K >= 2
 * nodes with the same G >= 2 members on each runs bcast, allgatherv,
 * allreduce and reduce hierarchically, built from the flat ones above on
 * two sub-communicators: the node's (its G members, in rank order: local
 * index l) and the cross one (the K members with the same l, in rank
 * order). All-reduce: reduce-scatter of count into G chunks inside the
 * node, all-reduce of chunk l across the nodes, all-gather inside the node
 * (between nodes each rank sends 2(K-1)/K * count/G elements, where the flat
 * one sends about count). Reduce: the same with a reduce to root's node
 * and a gather to root inside it. All-gather: the chunks of local index l
 * across the nodes, then node row by node row inside. Broadcast: across
 * the nodes from root, then inside each. The sum order is fixed by the
 * topology (node-local partials in local order, then across nodes in
 * cross order): bitwise equal on every engine for the same topology, and
 * different in the last bits from the flat order; reduce-scatter by rows
 * likewise (below). Other communicators, and alltoallv and gatherv
 * always, are flat.
 */
#ifndef HELIX_COMM_H
#define HELIX_COMM_H

#include "helix.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct helix_comm helix_comm_t;

/* Where the members of a communicator sit (pure data). size, rank: the
 * communicator's; nodes K; per_node G when every node has as many members
 * (else 0). node/local/xrank [size]: a member's node (dense ids by first
 * appearance), its index among its node's members, its index among the
 * members with its local index; member [K*G]: the rank of (xrank k,
 * local l). All NULL: one node (or, apart = 1, every member on its own). */
typedef struct {
    int size, rank;
    int nodes, per_node, apart;
    int *node, *local, *xrank, *member;
} helix_comm_topo;
helix_comm_topo helix_comm_topo_one(int size, int rank);
/* node_of[size]: any ids, equal for members on the same node (NULL: one). */
helix_status helix_comm_topo_init(helix_comm_topo *t, int size, int rank, const int *node_of);
void helix_comm_topo_free(helix_comm_topo *t);
/* 1: the collectives run hierarchically (K >= 2 nodes of the same G >= 2) */
int helix_comm_topo_hier(const helix_comm_topo *t);
/* 1: member p is on another node than this rank */
int helix_comm_topo_off(const helix_comm_topo *t, int p);
/* Of a hierarchical t, for this rank: its node communicator's topology (G
 * members on one node, rank = local index) and the cross one's (K
 * members, each on its own node, rank = xrank). No allocation. */
void helix_comm_topo_parts(const helix_comm_topo *t, helix_comm_topo *in, helix_comm_topo *x);

/* What this rank sends and receives in each collective (the convention
 * above, flat or hierarchical as t says): the communicator books exactly
 * this, and the program predicts it with the same functions. */
helix_traffic helix_traffic_bcast(const helix_comm_topo *t, int64_t n_bytes, int root);
helix_traffic helix_traffic_allgatherv(const helix_comm_topo *t, int64_t mine_bytes, const size_t *recv_bytes);
helix_traffic helix_traffic_alltoallv(const helix_comm_topo *t, const size_t *send_bytes, const size_t *recv_bytes);
helix_traffic helix_traffic_gatherv(const helix_comm_topo *t, int64_t mine_bytes, const size_t *recv_bytes, int root);
helix_traffic helix_traffic_allreduce(const helix_comm_topo *t, int64_t count, size_t elem_bytes);
helix_traffic helix_traffic_reduce(const helix_comm_topo *t, int64_t count, int root, size_t elem_bytes);
helix_traffic helix_traffic_reduce_scatter(const helix_comm_topo *t, int64_t rows, int64_t unit, size_t elem_bytes);
enum { HELIX_COLL_BCAST = 0, HELIX_COLL_ALLGATHER, HELIX_COLL_ALLTOALL, HELIX_COLL_GATHER, HELIX_COLL_ALLREDUCE,
       HELIX_COLL_REDUCE, HELIX_COLL_REDUCE_SCATTER };
/* latency rounds of one collective on this member's critical path */
int64_t helix_comm_messages(const helix_comm_topo *t, int kind, int64_t count);

typedef struct {
    const char *name;
    helix_status (*bcast)(void *self, void *buf, size_t n_bytes, int root);
    /* recv_bytes[p], displs[p]: what rank p contributes and where it lands;
     * send == NULL: in place, this rank's chunk is already in recv. */
    helix_status (*allgatherv)(void *self, const void *send, size_t send_bytes,
                               void *recv, const size_t *recv_bytes, const size_t *displs);
    helix_status (*alltoallv)(void *self, const void *send, const size_t *send_bytes,
                              const size_t *sdispls, void *recv, const size_t *recv_bytes,
                              const size_t *rdispls);
    helix_status (*gatherv)(void *self, const void *send, size_t send_bytes, void *recv,
                            const size_t *recv_bytes, const size_t *displs, int root);
    /* Collective over self: ranks with the same color form a new communicator,
     * ordered by (key, old rank). */
    helix_status (*split)(void *self, int color, int key, helix_comm_t **out);
    /* Collective: 1 if any rank passed nonzero. Used to fail together. */
    helix_status (*any)(void *self, int mine, int *any);
    void (*free)(void *self);
    /* Optional, for engines whose buffers live in device memory (NCCL);
     * NULL: host memcpy and the host loop. copy moves n bytes between two
     * of this rank's buffers; sum_rows sets rows[0] to the sum of n_rows
     * rows of n elements, in row order with f32 accumulation. */
    helix_status (*copy)(void *self, void *dst, const void *src, size_t n_bytes);
    helix_status (*sum_rows)(void *self, void *rows, int64_t n_rows, int64_t n, helix_dtype t);
    /* Optional: the library's own reductions (`native` collectives: fastest,
     * not bitwise reproducible), NULL where the engine has none. allreduce:
     * in place; reduce: send onto recv at root; reduce_scatter: rank p's
     * counts[p] elements at displs[p] of buf summed into scratch[0, counts
     * [rank]). HELIX_ERR_UNSUPPORTED: not for these sizes (the ordered one
     * runs instead). */
    helix_status (*allreduce_native)(void *self, void *buf, int64_t count, helix_dtype t);
    helix_status (*reduce_native)(void *self, const void *send, void *recv, int64_t count, helix_dtype t, int root);
    helix_status (*reduce_scatter_native)(void *self, const void *buf, const int64_t *counts, void *scratch,
                                          helix_dtype t);
} helix_comm_ops;

/* Per-device counters, shared by all communicators of one device. */
typedef struct {
    helix_phase phase;                   /* phase new traffic is booked to */
    helix_traffic bytes[HELIX_NPHASES];
} helix_comm_counters;

struct helix_comm {
    const helix_comm_ops *ops;
    void *self;
    int rank, size;
    helix_comm_counters *counters;       /* may be NULL: nothing counted */
    /* helix_comm_set_nodes; zero: every member on one node */
    helix_comm_topo topo;
    struct helix_comm *hnode, *hcross;   /* hierarchical: node and cross sub-communicators */
    int native;                          /* reductions by the library where it has them
                                            (helix_comm_set_native); split copies it */
};

/* Wrappers: count bytes, then call the engine. */
helix_status helix_comm_bcast(helix_comm_t *c, void *buf, size_t n_bytes, int root);
helix_status helix_comm_allgatherv(helix_comm_t *c, const void *send, size_t send_bytes,
                                   void *recv, const size_t *recv_bytes, const size_t *displs);
helix_status helix_comm_alltoallv(helix_comm_t *c, const void *send, const size_t *send_bytes,
                                  const size_t *sdispls, void *recv, const size_t *recv_bytes,
                                  const size_t *rdispls);
helix_status helix_comm_gatherv(helix_comm_t *c, const void *send, size_t send_bytes, void *recv,
                                const size_t *recv_bytes, const size_t *displs, int root);
helix_status helix_comm_split(helix_comm_t *c, int color, int key, helix_comm_t **out);
helix_status helix_comm_any(helix_comm_t *c, int mine, int *any);
/* Collective over c: node_of[p] names the node of member p (NULL: forget
 * the topology). Where the collectives become hierarchical, splits the
 * node and cross sub-communicators (they share c's counters). */
helix_status helix_comm_set_nodes(helix_comm_t *c, const int *node_of);
/* Collectives `native` (1: all-reduce, reduce and reduce-scatter by the
 * engine's library where it has them: MPI_Allreduce, MPI_Reduce,
 * MPI_Reduce_scatter; not bitwise reproducible, no hierarchy of ours) or
 * `ordered` (0, the default: the fixed-order sums above). Bytes are booked
 * by the ordered convention either way (the library's algorithm may move
 * others). Returns 1 when c's engine has native reductions. Local. */
int helix_comm_set_native(helix_comm_t *c, int native);
/* frees the topology and sub-communicators too */
void         helix_comm_free(helix_comm_t *c);

/* Sum of `count` elements over all ranks, in place; f32 accumulation in
 * rank order (hierarchical: the topology's order, above), so every engine
 * gives bitwise the same result for the same topology.
 * scratch: helix_comm_reduce_scratch_bytes(...) bytes. */
helix_status helix_comm_allreduce_sum(helix_comm_t *c, void *buf, int64_t count,
                                      helix_dtype t, void *scratch);
/* Sum over all ranks of send into recv on root (recv ignored elsewhere). */
helix_status helix_comm_reduce_sum(helix_comm_t *c, const void *send, void *recv, int64_t count,
                                   helix_dtype t, int root, void *scratch);
int64_t helix_comm_reduce_scratch_bytes(int64_t count, int size, helix_dtype t);
/* Reduce-scatter by rows, in place: buf holds rows x unit elements on
 * every rank; afterwards rank r's rows split(rows, size, r) hold the sum
 * over all ranks (f32 accumulation in rank order; hierarchical: node
 * partials in local order, then across nodes), the other rows are left
 * as they were. Hierarchical where c spans nodes: per node block, an
 * in-node reduce-scatter of its chunks, then each node partial to its
 * owner across the nodes ((K-1) chunks between nodes per rank where the
 * flat one sends (K-1)*G). scratch: helix_comm_reduce_scatter_scratch_bytes. */
helix_status helix_comm_reduce_scatter_sum(helix_comm_t *c, void *buf, int64_t rows, int64_t unit,
                                           helix_dtype t, void *scratch);
int64_t helix_comm_reduce_scatter_scratch_bytes(int64_t rows, int64_t unit, int size, helix_dtype t);


/* In-process engine: a world of `size` ranks living in one process. Create
 * the shared world once, then each device thread takes its communicator.
 * At most `compute_slots` ranks run between collectives at once (a rank
 * waiting in a collective gives its slot away). */
typedef struct helix_inproc_world helix_inproc_world_t;
helix_status helix_inproc_world_new(int size, int compute_slots, helix_inproc_world_t **out);
/* Communicator for `rank`; counters may be NULL. Enters a compute slot. */
helix_status helix_inproc_comm(helix_inproc_world_t *w, int rank, helix_comm_counters *counters,
                               helix_comm_t **out);
/* A rank whose buffers the host cannot address (device memory; a GPU
 * backend's, helix_backend.h): how it copies n bytes from any rank's
 * buffer into its own (complete on return) and sums rows in place
 * (rows[0] = the sum of n_rows rows of n elements, in row order, f32
 * accumulation). The communicator and those split from it use these
 * instead of memcpy and the host loop. mem NULL: helix_inproc_comm. */
typedef struct {
    helix_status (*copy)(void *ctx, void *dst, const void *src, size_t n_bytes);
    helix_status (*sum_rows)(void *ctx, void *rows, int64_t n_rows, int64_t n, helix_dtype t);
    void *ctx;
} helix_comm_memory;
helix_status helix_inproc_comm_on(helix_inproc_world_t *w, int rank, helix_comm_counters *counters,
                                  const helix_comm_memory *mem, helix_comm_t **out);
/* Mark the world failed: every rank waiting in, or later entering, a
 * collective returns HELIX_ERR_ABORTED instead of hanging. */
void helix_inproc_world_abort(helix_inproc_world_t *w);
/* Leave the compute slot (call when a rank's thread is done). */
void helix_inproc_rank_done(helix_inproc_world_t *w);
void helix_inproc_world_free(helix_inproc_world_t *w);

/* MPI engine: one rank per device. Built when CMake finds MPI; otherwise
 * these return HELIX_ERR_UNSUPPORTED and helix_mpi_built() returns 0. */
int helix_mpi_built(void);
/* 1 if this process looks launched by mpirun/mpiexec (Open MPI, MPICH, PMIx). */
int helix_mpi_launched(void);
helix_status helix_mpi_init(int *argc, char ***argv, int *rank, int *size, helix_err *err);
/* A communicator over all ranks (a duplicate of MPI_COMM_WORLD). */
helix_status helix_mpi_world(helix_comm_t **out);
/* Collective: the ranks per node the launcher gave (MPI_COMM_TYPE_SHARED)
 * when every node holds that many consecutive world ranks; 0 when the
 * placement is not in such blocks (then name it: --ranks-per-node). */
helix_status helix_mpi_nodes(int *ranks_per_node);
/* Watch every collective of this rank: one that has not completed within
 * timeout_s seconds (0: never) calls on_timeout once, from a watchdog
 * thread, with a message naming the collective, its phase and the ranks
 * that did not arrive (every rank tells the others it is waiting; those
 * that cannot say so are named). on_timeout must end the job
 * (helix_mpi_abort); the message is the library's only output, through it. */
helix_status helix_mpi_watchdog(double timeout_s, void (*on_timeout)(const char *msg, void *ctx), void *ctx);
/* End every rank of the job now, with this exit code (for unrecoverable
 * per-rank failures: the other ranks may be waiting in a collective). */
void helix_mpi_abort(int code);
void helix_mpi_finalize(void);
/* Library version string of the MPI in use ("" without MPI). */
const char *helix_mpi_version(void);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_COMM_H */
