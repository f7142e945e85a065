/* helix_program.h — the plan as a program: for one device of a plan
 * (helix_model.h), the ordered steps of its forward pass. A step is a
 * compute operation with its shapes and buffers (a backend call), a copy,
 * or a collective with its communicator, counts and phase. The executor
 * runs exactly these steps; the bytes each collective step moves are
 * predicted here, from its counts, so "bytes counted at run time = bytes
 * the program predicts" is checked per rank and phase.
 *
 * Buffers are byte offsets into the device's arena (sized by the plan),
 * or into the host's X (the f32 input: on every first-stage device, or
 * on rank 0 only when it is broadcast) and Y (rank 0's output).
 * Building a program is pure: no device memory, no communication.
 */
#ifndef HELIX_PROGRAM_H
#define HELIX_PROGRAM_H

#include "helix_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HELIX_MEM_NONE = 0, HELIX_MEM_ARENA, HELIX_MEM_X, HELIX_MEM_Y } helix_mem;
typedef struct {
    helix_mem mem;
    int64_t off;             /* bytes from the start of mem */
} helix_ref;

/* The communicators a device holds (see src/exec/run.c make_comms). */
typedef enum {
    HELIX_GROUP_WORLD = 0,   /* all P devices                                 */
    HELIX_GROUP_TENSOR,      /* the devices of this pipeline stage            */
    HELIX_GROUP_ROW,         /* attention row i inside the tensor group       */
    HELIX_GROUP_COL,         /* attention column j inside the tensor group    */
    HELIX_GROUP_PREV,        /* {previous stage's tensor rank r, this device} */
    HELIX_GROUP_NEXT,        /* {this device, next stage's tensor rank r}     */
    HELIX_GROUP_OUT,         /* {replica's rank 0, its last stage's tensor rank 0} */
    HELIX_GROUP_DP,          /* the devices of the same place in every replica */
    HELIX_NGROUPS
} helix_group;

/* The node (world rank / ranks_per_node; all 0 without nodes) of each of
 * group g's members for device `rank` of p, in group rank order, into
 * node[] (may be NULL); returns how many members (0: a pipeline pair this
 * device is not in). The executor gives each communicator these nodes;
 * the program predicts its bytes per link class from the same. */
int64_t helix_group_nodes(const struct helix_model_plan_s *p, int64_t rank, helix_group g, int *node);

typedef enum {
    /* compute (backend) */
    HELIX_STEP_GEMM = 0,     /* c = a[M,K] b[K,N] (+ d) in the run's dtype               */
    HELIX_STEP_ATTENTION,    /* d = attention(q a, k b, v c), dense [B, L, H, width]      */
    HELIX_STEP_SCORES,       /* e = partial scores of a (q) and b (k); one query block   */
    HELIX_STEP_SOFTMAX_V,    /* d = softmax(e) c (v); the same block                     */
    HELIX_STEP_LAYERNORM,    /* d = LN(a) * b + c, rows x D                              */
    HELIX_STEP_ACTIVATE,     /* a = act(a), rows x cols                                  */
    HELIX_STEP_RESIDUAL,     /* a += b, rows x D                                         */
    /* data movement on the device */
    HELIX_STEP_UPLOAD,       /* c = X (host f32) in the run's dtype, n elements           */
    HELIX_STEP_DOWNLOAD,     /* Y = a: as f32 (layers) or as stored (attention), n elems */
    HELIX_STEP_COPY,         /* rows of width bytes from a (pitch spitch) to c (dpitch)  */
    /* collectives over `group` */
    HELIX_STEP_BCAST,        /* a, n bytes, from root                                    */
    HELIX_STEP_ALLGATHERV,   /* a (n bytes; NONE: in place) -> c at recv counts/displs   */
    HELIX_STEP_ALLTOALLV,    /* a at send counts/displs -> c at recv counts/displs       */
    HELIX_STEP_GATHERV,      /* a (n bytes) -> c on root at recv counts/displs           */
    HELIX_STEP_ALLREDUCE,    /* a, n elements of dtype t, summed in place; scratch d     */
    HELIX_STEP_REDUCE,       /* a summed into c on root; scratch d                       */
    HELIX_STEP_REDUCE_SCATTER, /* a: n rows of N elements, my rows summed in place; scratch d */
    HELIX_STEP_BARRIER,      /* every member arrives                                     */
    HELIX_NSTEP_KINDS
} helix_step_kind;

enum {
    HELIX_STEP_START = 1,    /* the pass's clock starts when this step ends  */
    HELIX_STEP_BUBBLE = 2,   /* its time is pipeline bubble, not its phase's */
    HELIX_STEP_UNTIMED = 4   /* its time is booked nowhere                   */
};

typedef struct {
    helix_step_kind kind;
    helix_phase phase;       /* bytes and time are booked to it */
    int flags;
    helix_group group;
    int root;
    helix_dtype t;           /* elements' type (reductions, transfers)      */
    helix_ref a, b, c, d, e; /* operands, by kind (above)                   */
    int64_t n;               /* elements or bytes, by kind                  */
    int64_t M, N, K;         /* GEMM; COPY: rows = M, width bytes = N       */
    int64_t lda, ldb, ldc;   /* GEMM; COPY: spitch = lda, dpitch = ldc      */
    int64_t Lq, H, width, q_pos0;     /* ATTENTION, SCORES, SOFTMAX_V         */
    int64_t b_row, q0, nq, lk;        /* SCORES, SOFTMAX_V: the block          */
    int64_t counts;          /* v-collectives: index of [4][size] size_t in the program's pool:
                                send counts, send displs, recv counts, recv displs */
    int64_t group_size, group_rank;
    helix_traffic bytes;     /* collectives: what this device sends / receives */
    int64_t messages;        /* collectives: latency rounds on the critical path */
    double flops;            /* compute: multiply-add = 2                   */
} helix_step;

/* Where a device's layer shards sit in its arena (-1: absent). */
typedef struct {
    int64_t ln1_g, ln1_b, ln2_g, ln2_b;
    int64_t wq, wk, wv, bq, bk, bv, wo, bo;
    int64_t w1, b1, w2, b2;
} helix_shard_offsets;

typedef struct {
    int64_t rank;
    helix_model_device_plan dev;  /* the device's plan (sizes, traffic) */
    int64_t arena_bytes;          /* = the plan's peak_bytes for this device */
    int64_t work;                 /* the kernel workspace's offset           */
    int64_t n_layers;             /* layers this device holds                */
    helix_shard_offsets *layer;   /* [n_layers]                              */
    helix_step *steps;
    int64_t n_steps;
    size_t *pool;                 /* the v-collectives' counts               */
    int64_t n_pool;
} helix_program;

/* The program of device `rank` of plan p. Allocates (free with
 * helix_program_free); NOMEM/INVALID with err filled. */
helix_status helix_program_build(const helix_model_plan *p, int64_t rank, helix_program *out, helix_err *err);
void helix_program_free(helix_program *prog);
/* Bytes per phase the program's collectives move, and (msgs, may be NULL)
 * their messages (latency rounds) summed over the pass; no allocation.
 * helix_model_plan_device fills its phase and messages with this. */
helix_status helix_program_traffic(const helix_model_plan *p, int64_t rank, helix_traffic phase[HELIX_NPHASES],
                                   double msgs[HELIX_NPHASES]);
const char *helix_step_name(helix_step_kind k);
/* Run only the compute steps of prog (GEMMs, attention, the scores
 * halves, LN, activations, residual adds) on `arena` (prog->arena_bytes
 * of be's memory, any contents), skipping copies and collectives: what a
 * device's kernels cost alone (`helix run --overhead`). */
struct helix_backend;
helix_status helix_program_run_compute(const helix_model_plan *p, const helix_program *prog, void *arena,
                                       struct helix_backend *be);
int helix_step_is_compute(helix_step_kind k);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_PROGRAM_H */
