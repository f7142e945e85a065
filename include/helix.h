/* helix.h — public API of the helix library.
 *
 * helix runs multi-head attention partitioned over an n x m grid of devices:
 * the h heads are split into n head groups, each head's width d into m
 * slices; device (i, j) = rank i*m + j owns head group i, slice j.
 *
 * Conventions
 *   - All sizes are int64_t; counts and byte sizes never share a name.
 *   - Weights use the math convention y = x W (W is [in, out] = [D, D]).
 *     Head k owns output columns [k*d, (k+1)*d).
 *   - Tensors are row-major. Activations are [B, L, D].
 *   - The library never prints and never exits: every fallible call returns
 *     a helix_status and, where it takes one, fills a helix_err message.
 */
#ifndef HELIX_H
#define HELIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HELIX_VERSION "0.1.0"

typedef enum {
    HELIX_OK = 0,
    HELIX_ERR_INVALID,     /* bad configuration or argument (user error)      */
    HELIX_ERR_NOMEM,       /* allocation failed or layout does not fit        */
    HELIX_ERR_COMM,        /* a collective failed                             */
    HELIX_ERR_ABORTED,     /* another device failed; this one stopped cleanly */
    HELIX_ERR_IO,          /* file could not be read or written               */
    HELIX_ERR_FORMAT,      /* file is malformed                               */
    HELIX_ERR_NONFINITE,   /* NaN or Inf where finite values are required     */
    HELIX_ERR_UNSUPPORTED, /* feature not built in / not available            */
    HELIX_ERR_INTERNAL
} helix_status;

const char *helix_status_str(helix_status s);

/* A human-readable message that goes with a non-OK status. */
typedef struct {
    char msg[512];
} helix_err;

typedef enum { HELIX_F32 = 0, HELIX_F16, HELIX_BF16 } helix_dtype;
typedef enum { HELIX_MODE_SLICED = 0, HELIX_MODE_EXACT } helix_mode;
typedef enum { HELIX_EXACT_REGATHER = 0, HELIX_EXACT_SCORES } helix_exact_algo;

size_t      helix_dtype_size(helix_dtype t);
const char *helix_dtype_name(helix_dtype t);
const char *helix_mode_name(helix_mode m);
const char *helix_exact_algo_name(helix_exact_algo a);
/* Parse names ("f32", "sliced", "regather", ...). Return HELIX_ERR_INVALID if unknown. */
helix_status helix_dtype_parse(const char *s, helix_dtype *out);
helix_status helix_mode_parse(const char *s, helix_mode *out);
helix_status helix_exact_algo_parse(const char *s, helix_exact_algo *out);

/* Element conversion between storage types and f32 (round to nearest even). */
void  helix_to_f32(helix_dtype t, const void *src, float *dst, int64_t n_elems);
void  helix_from_f32(helix_dtype t, const float *src, void *dst, int64_t n_elems);
float helix_load(helix_dtype t, const void *base, int64_t idx);
uint16_t helix_f32_to_f16(float f);
float    helix_f16_to_f32(uint16_t h);
uint16_t helix_f32_to_bf16(float f);
float    helix_bf16_to_f32(uint16_t h);
/* v rounded to storage type t (f16 overflows to Inf above 65504). */
float    helix_round_to(helix_dtype t, float v);
/* First of n f32 values that is not finite once stored as t, or -1. */
int64_t  helix_first_nonfinite_as(helix_dtype t, const float *v, int64_t n);

/* ------------------------------------------------------------------ plan */

typedef struct {
    int64_t heads;      /* h                                    */
    int64_t head_dim;   /* d                                    */
    int64_t groups;     /* n: head groups (grid rows)           */
    int64_t slices;     /* m: slices per head (grid columns)    */
    int64_t batch;      /* B                                    */
    int64_t seq;        /* L                                    */
    helix_dtype dtype;  /* storage of X, weights, Q/K/V, output */
    helix_mode mode;
    helix_exact_algo exact_algo; /* used when mode == EXACT     */
    int causal;
    int out_proj;       /* 1: W_O is applied (row-parallel + reduce) */
    int bias;           /* 1: b_Q, b_K, b_V (and b_O) are present    */
    double scale;       /* 0: 1/sqrt(attention width)                */
    const int64_t *kv_len; /* optional [batch] key padding lengths: batch row
                           b attends to keys 0..kv_len[b]-1 only (each in
                           1..seq); NULL: no padding. Not copied: it must
                           outlive the plan. */
    int64_t ranks_per_node; /* devices share nodes, this many consecutive
                           ranks each (0: one node): collectives that span
                           nodes run hierarchically (helix_comm.h)   */
    int native_collectives; /* 1: reductions by the engine's library where
                           it has one (not bitwise reproducible)      */
} helix_config;

/* The default small configuration used by `helix run` with no options. */
helix_config helix_config_default(void);

/* Phases of one forward pass; bytes and time are counted per phase. */
typedef enum {
    HELIX_PHASE_INPUT = 0,  /* broadcast X from rank 0                        */
    HELIX_PHASE_QKV,        /* local projections X W^(i,j)                    */
    HELIX_PHASE_REGATHER,   /* exact/regather: slices -> full-width heads     */
    HELIX_PHASE_ATTENTION,  /* attention (exact/scores: incl. score all-reduce) */
    HELIX_PHASE_RETURN,     /* exact/regather: outputs back to (i,j) layout   */
    HELIX_PHASE_ROW_GATHER, /* no W_O: all-gather slices along the row        */
    HELIX_PHASE_COL_GATHER, /* no W_O: gather head groups down column 0       */
    HELIX_PHASE_OUT_PROJ,   /* W_O: local partial product                     */
    HELIX_PHASE_REDUCE,     /* W_O: sum partials (to rank 0; all-reduce in layers) */
    /* whole layers (helix_model.h) */
    HELIX_PHASE_NORM,       /* LayerNorms and residual adds                   */
    HELIX_PHASE_MLP,        /* FC1, GELU, FC2 partial product                 */
    HELIX_PHASE_MLP_REDUCE, /* all-reduce of the FC2 partials                 */
    HELIX_PHASE_P2P,        /* pipeline: activations between stages          */
    HELIX_PHASE_OUTPUT,     /* pipeline: final activations to rank 0          */
    HELIX_NPHASES
} helix_phase;

const char *helix_phase_name(helix_phase p);

typedef struct {
    int64_t sent_bytes;
    int64_t recv_bytes;
    int64_t inter_sent_bytes;   /* of sent_bytes, what goes to another node  */
    int64_t inter_recv_bytes;   /* of recv_bytes, what comes from another node */
} helix_traffic;
/* a += times * b, field by field; 1 if a and b are equal in every field */
void helix_traffic_add(helix_traffic *a, const helix_traffic *b, int64_t times);
int  helix_traffic_eq(const helix_traffic *a, const helix_traffic *b);

/* How exact/regather splits work inside a row. */
typedef enum {
    HELIX_REGATHER_NONE = 0,
    HELIX_REGATHER_HEADS,   /* m divides h_g: each device gets h_g/m whole heads */
    HELIX_REGATHER_QUERIES  /* otherwise: all-gather K/V, split the queries      */
} helix_regather_kind;

/* exact/scores: queries per all-reduced score block. */
#define HELIX_SCORES_TILE_Q 64

typedef struct helix_plan_s {
    helix_config cfg;
    int64_t D;      /* model width h*d           */
    int64_t P;      /* devices n*m               */
    int64_t hg;     /* heads per group h/n       */
    int64_t ds;     /* features per slice d/m    */
    int64_t cols;   /* columns per device hg*ds  */
    double  scale;  /* resolved softmax scale    */
    helix_regather_kind regather;
} helix_plan;

/* One device's share: shapes, buffers, memory and traffic. All pure. */
typedef struct {
    int64_t rank, i, j;
    /* weight shard: for local head k (0..hg-1), the columns
     * [col0(k), col0(k)+ds) of W_Q/W_K/W_V, col0(k) = (i*hg+k)*d + j*ds;
     * W_O rows follow the same ranges. */
    int64_t head0;          /* first global head of the group: i*hg       */
    int64_t col_stride;     /* col0(k+1) - col0(k) = d                    */
    int64_t col_first;      /* col0(0)                                    */
    /* exact/regather work split inside the row */
    int64_t rg_head_begin, rg_head_end;   /* HEADS: local heads owned       */
    int64_t rg_q_begin, rg_q_end;         /* QUERIES: query rows owned      */
    /* buffer sizes (bytes) */
    int64_t weight_bytes;   /* W_Q,W_K,W_V shards (+ biases, + W_O rows)   */
    int64_t x_bytes;        /* X: B*L*D                                    */
    int64_t qkv_bytes;      /* Q,K,V in (i,j) layout                       */
    int64_t o_bytes;        /* attention output in (i,j) layout            */
    int64_t exchange_bytes; /* regather/scores buffers                     */
    int64_t kernel_bytes;   /* attention kernel workspace                  */
    int64_t agg_bytes;      /* aggregation buffers                         */
    int64_t out_bytes;      /* final output [B,L,D] (rank 0 only)          */
    int64_t peak_bytes;     /* sum: the device arena                       */
    helix_traffic phase[HELIX_NPHASES];
} helix_device_plan;

/* Validate cfg and derive the plan. No allocation. On error fills err with
 * a message naming the offending value and the rule. */
helix_status helix_plan_init(const helix_config *cfg, helix_plan *plan, helix_err *err);
/* Per-device shapes, buffer sizes and its traffic in closed form (the
 * tests' oracle: the program the executor runs, helix_program.h, must
 * move exactly these bytes). rank in [0, P). */
helix_status helix_plan_device(const helix_plan *plan, int64_t rank, helix_device_plan *out);
/* Bytes of f32 workspace one attention worker needs at this head width. */
int64_t helix_attention_workspace_bytes(int64_t width);
/* Split [0, total) into parts balanced blocks; block `idx` is [*b, *e). */
void helix_split_range(int64_t total, int64_t parts, int64_t idx, int64_t *b, int64_t *e);

/* --------------------------------------------------------------- weights */

/* Fills one device's shards (the layout helix_shard_* produce) from
 * wherever the weights live, e.g. a file. Pointers the plan does not use
 * (biases without cfg.bias, wo/bo without cfg.out_proj, bo off rank 0) are
 * NULL. */
typedef helix_status (*helix_shard_loader)(void *ctx, const struct helix_plan_s *plan, int64_t rank,
                                           helix_dtype t, void *wq, void *wk, void *wv, void *bq, void *bk,
                                           void *bv, void *wo, void *bo, helix_err *err);

/* Attention weights: either full, unpartitioned f32 matrices in the y = x W
 * convention (wq, wk, wv: [D, D]; wo: [D, D] or NULL; biases: [D] or NULL),
 * or, when `load` is set, a loader each device calls for its own shards
 * (the matrices may then be NULL). */
typedef struct {
    int64_t D;
    const float *wq, *wk, *wv, *wo;
    const float *bq, *bk, *bv, *bo;
    helix_shard_loader load;
    void *load_ctx;
} helix_weights;

/* First column of W_Q/W_K/W_V (and row of W_O) that device `rank` holds
 * for its local head k: (i*hg + k)*d + j*ds. */
int64_t helix_shard_col0(const helix_plan *plan, int64_t rank, int64_t k);
/* Copy device `rank`'s column block of a [D, D] projection, converting to
 * dtype: dst is [D, hg*ds]. */
void helix_shard_cols(const helix_plan *plan, int64_t rank, const float *w,
                      void *dst, helix_dtype dtype);
/* Same for a bias [D] -> [hg*ds]. */
void helix_shard_bias(const helix_plan *plan, int64_t rank, const float *b,
                      void *dst, helix_dtype dtype);
/* Device `rank`'s rows of W_O: dst is [hg*ds, D]. */
void helix_shard_rows(const helix_plan *plan, int64_t rank, const float *w,
                      void *dst, helix_dtype dtype);

/* The seeded generator behind every random value helix makes: splitmix64,
 * uniform on [-a, a). Value k of the stream that starts at state s is
 * helix_uniform(&s', a) with s' = helix_uniform_skip(s, k): any part of a
 * stream is generated without the rest. */
float helix_uniform(uint64_t *state, float a);
uint64_t helix_uniform_skip(uint64_t state, int64_t n);

/* Random attention weights generated shard by shard (a helix_shard_loader
 * with this as ctx): from stream state `state`, skipping `first` values
 * (the input drawn before them), W_Q, W_K, W_V, W_O [D, D] uniform on
 * [-a_weight, a_weight), then b_Q, b_K, b_V, b_O [D] on [-a_bias, a_bias),
 * each value rounded to `dtype` (the run's, so a reference given the same
 * values sees what the devices see). No process holds the whole matrices. */
typedef struct {
    uint64_t state;
    int64_t first, D;
    float a_weight, a_bias;
    helix_dtype dtype;
} helix_attention_seeded;
helix_status helix_attention_seeded_load(void *ctx, const struct helix_plan_s *plan, int64_t rank, helix_dtype t,
                                         void *wq, void *wk, void *wv, void *bq, void *bk, void *bv, void *wo,
                                         void *bo, helix_err *err);

/* ------------------------------------------------------------- reference */

/* Plain single-device MHA in double precision, the oracle every fast path
 * is tested against. x: [B, L, D]; y: [B, L, D]. If w->wo is NULL the
 * output is the concatenated heads. scale <= 0 means 1/sqrt(d). kv_len:
 * optional [B] key padding lengths (as helix_config.kv_len), or NULL. */
helix_status helix_attention_ref(int64_t B, int64_t L, int64_t heads, int64_t head_dim,
                                 const helix_weights *w, const float *x, int causal,
                                 const int64_t *kv_len, double scale, float *y, helix_err *err);

/* ------------------------------------------------------------ CPU paths */

/* The CPU kernel paths, chosen at run time from the CPU's feature bits
 * (never its model number). amx: AMX-BF16 tiles for bf16 data, AVX-512
 * for the rest. */
typedef enum { HELIX_ISA_PORTABLE = 0, HELIX_ISA_AVX2, HELIX_ISA_AVX512, HELIX_ISA_AMX, HELIX_ISA_COUNT } helix_isa;

typedef struct {
    int fma, f16c, avx2, avx512f, avx512dq, avx512bw, avx512vl, avx512bf16, avx512fp16;
    int amx_tile, amx_bf16, amx_fp16;
    int amx_granted;          /* Linux allowed this process the tile state */
} helix_cpu_features;         /* each: the CPU has it and the OS saves its registers */

const helix_cpu_features *helix_cpu_features_get(void);
int helix_isa_supported(helix_isa isa);
/* The first feature this CPU (or OS) lacks for the path, in words
 * ("amx_bf16", "avx512f", ...); NULL when the path runs here. */
const char *helix_isa_missing(helix_isa isa);
helix_isa helix_isa_best(void);
const char *helix_isa_name(helix_isa isa);            /* "portable", "avx2", "avx512", "amx" */
helix_status helix_isa_parse(const char *s, helix_isa *out);
/* The path the kernels take: HELIX_CPU_ISA=portable|avx2|avx512|amx when
 * set, else the best one. An unknown name or a path this CPU cannot run
 * is HELIX_ERR_INVALID with the reason in err (*isa is then the best). */
helix_status helix_isa_select(helix_isa *isa, helix_err *err);
helix_isa helix_isa_current(void);
/* Switch paths in this process (benchmarks, tests); not while kernels run. */
helix_status helix_isa_force(helix_isa isa);
/* What the kernels (attention and GEMM alike) run for dtype t on the
 * current path, in words. */
const char *helix_kernel_path(helix_dtype t);

/* ---------------------------------------------------------------- kernel */

/* Flash-style attention on one device: key tiles, online softmax, f32
 * statistics and accumulation; workspace O(tile * width), never L x L.
 * Strides are in elements. Query row r (0-based within q) sits at global
 * position q_pos0 + r; with causal it sees keys 0..q_pos0+r.
 *   q: [B, Lq, H, width]   k, v: [B, Lk, H, width]   o: [B, Lq, H, width] */
typedef struct {
    int64_t B, Lq, Lk, H, width;
    helix_dtype dtype;
    const void *q, *k, *v;
    void *o;
    int64_t q_sb, q_sl, q_sh;   /* strides of q over b, l, h */
    int64_t kv_sb, kv_sl, kv_sh;/* strides of k and v        */
    int64_t o_sb, o_sl, o_sh;   /* strides of o              */
    float scale;
    int causal;
    int64_t q_pos0;
    const int64_t *kv_len;      /* optional [B]: keys >= kv_len[b] are padding */
    int threads;                /* workers over (b, h, query block); 0 or 1: the caller only */
} helix_attn_args;

/* Fill strides for densely packed [B, L, H, width] tensors. */
void helix_attn_args_dense(helix_attn_args *a);
/* workspace: threads * helix_attention_workspace_bytes(width) bytes, 64-byte aligned. */
helix_status helix_attention_fwd(const helix_attn_args *a, void *workspace);

/* C[M,N] = A[M,K] B[K,N] (+ bias[N], storage type tc), f32 accumulation,
 * any storage types; lda/ldb/ldc in elements. B is packed into `work`
 * first (helix_gemm_workspace_bytes() bytes, 64-byte aligned); to pack a
 * weight once and reuse it, use helix_gemm_pack + helix_gemm_run. One
 * thread: callers split M to use more. */
void helix_gemm(int64_t M, int64_t N, int64_t K,
                helix_dtype ta, const void *A, int64_t lda,
                helix_dtype tb, const void *B, int64_t ldb,
                const void *bias, helix_dtype tc, void *C, int64_t ldc, void *work);
int64_t helix_gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc);

/* A right-hand side packed for the kernels of the path chosen when it was
 * packed (panel layout; bf16 pair-interleaved on AMX). data is the
 * caller's, helix_gemm_pack_bytes() bytes, 64-byte aligned. */
typedef struct {
    int64_t K, N;
    helix_dtype tb;
    helix_isa isa;            /* the micro-kernel's panel width follows from it */
    int amx;
    void *data;
} helix_gemm_b;
int64_t helix_gemm_pack_bytes(int64_t K, int64_t N, helix_dtype ta, helix_dtype tb);
void helix_gemm_pack(int64_t K, int64_t N, helix_dtype ta, helix_dtype tb, const void *B, int64_t ldb,
                     void *dst, helix_gemm_b *out);
/* C = A B (+ bias) with a packed B; work: helix_gemm_run_workspace_bytes(). */
void helix_gemm_run(int64_t M, const helix_gemm_b *b, helix_dtype ta, const void *A, int64_t lda,
                    const void *bias, helix_dtype tc, void *C, int64_t ldc, void *work);
int64_t helix_gemm_run_workspace_bytes(int64_t M, int64_t N, int64_t K, helix_dtype ta, helix_dtype tb, helix_dtype tc);

/* ---------------------------------------------------------------- run */

typedef struct {
    double time_s[HELIX_NPHASES];
    helix_traffic phase[HELIX_NPHASES];
    int64_t arena_bytes;       /* what the device actually allocated */
    int64_t peak_rss_bytes;    /* the OS's peak resident memory (VmHWM) of
                                  this device's process when the pass ended
                                  (in-process: one process for all devices) */
    double wall_s;             /* the forward pass: from a barrier after setup
                                  (arena, weight shards, communicators) to
                                  this device's end (pipelines: to the end
                                  barrier, then Y's return to rank 0) */
    double bubble_s;           /* pipelines: fill + drain waits (0 otherwise) */
} helix_device_stats;

struct helix_comm;

/* Run one device's part of the forward pass over communicator `world`
 * (size P, rank = i*m + j). x (f32, [B,L,D]) is read on rank 0 only; y
 * (dtype, [B,L,D]) is written on rank 0 only. */
helix_status helix_device_run(const helix_plan *plan, struct helix_comm *world,
                              const helix_weights *w, const float *x, void *y,
                              helix_device_stats *stats, helix_err *err);

/* The OS's peak resident memory of this process so far (Linux VmHWM),
 * bytes; -1 where the OS does not say. */
int64_t helix_peak_rss_bytes(void);
/* Memory the OS could give this host's processes now (MemAvailable); -1 if unknown. */
int64_t helix_mem_available_bytes(void);

/* All P devices in this process, one thread each; at most `threads` of them
 * compute at the same time (0: number of online CPUs). stats: [P]. */
helix_status helix_grid_run(const helix_plan *plan, const helix_weights *w,
                            const float *x, void *y, int threads,
                            helix_device_stats *stats, helix_err *err);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_H */
