/* helix_model.h — whole transformer layers on P devices, in two layouts
 * that share every kernel and every communicator:
 *
 *   helix n x m   attention on the n x m grid exactly as helix.h runs it,
 *                 W_O row-parallel + all-reduce over all P = n*m devices,
 *                 MLP split over the same P devices (FC1 by columns, FC2 by
 *                 rows, one all-reduce).
 *   TP t x PP p   Megatron: each of the p pipeline stages owns a block of
 *                 layers and runs them tensor-parallel over its t devices
 *                 (whole heads per device: the attention is helix t x 1;
 *                 MLP as above over t), micro-batches flow stage to stage:
 *                 tensor rank r sends its 1/t slice of the activations to
 *                 tensor rank r of the next stage, which all-gathers them.
 *
 * Pure TP is TP P x PP 1 (= helix P x 1); pure PP is TP 1 x PP P.
 * Either can be replicated (dpK: K copies, each on B/K of the sequences,
 * no communication between them in a forward pass) and run sequence
 * parallel (-sp, Megatron's: the residual stream between the tensor-
 * parallel parts is split by tokens over the tensor group).
 *
 * Block (forward only), pre-LN (GPT-2, norm_first=True) or post-LN (BERT,
 * PyTorch's nn.TransformerEncoderLayer default):
 *   pre:  x = x + W_O-attention(LN1(x));  x = x + FC2(act(FC1(LN2(x))))
 *   post: x = LN1(x + W_O-attention(x));  x = LN2(x + FC2(act(FC1(x))))
 * LN: eps 1e-5, gamma/beta. act: GELU 0.5 z (1 + erf(z/sqrt 2)), GELU-tanh
 * 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) (GPT-2), or ReLU.
 *
 * Activation layout between blocks: the residual stream [B, L, D] (storage
 * dtype) is replicated on every device of a tensor group (all P devices for
 * helix); each all-reduce leaves the summed partial on all of them.
 * Sequence parallel: tensor rank r holds rows split(Bm*L, T, r) of it;
 * LN's output (pre-LN) or the stream itself (post-LN) is all-gathered
 * before QKV and FC1, W_O's and FC2's partials are reduce-scattered.
 * Loading (not part of the forward pass): X is read by every first-stage
 * device (or broadcast from rank 0), Y returned to rank 0.
 * Pipeline schedule: GPipe, forward only (without a backward pass 1F1B is
 * the same schedule): stage s takes micro-batch k from stage s-1, runs its
 * layers, hands it to stage s+1. Ranks: stage s, tensor rank r is world
 * rank q*Pr + s*t + r (replica q of Pr = P/K devices).
 */
#ifndef HELIX_MODEL_H
#define HELIX_MODEL_H

#include "helix.h"
#include "helix_comm.h"
#include "helix_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HELIX_NORM_PRE = 0, HELIX_NORM_POST } helix_norm;
/* helix_act (the MLP activation) is defined in helix_backend.h */
/* "pre" / "post"; "gelu" / "gelu-tanh" / "relu" (HELIX_ERR_INVALID otherwise) */
helix_status helix_norm_parse(const char *s, helix_norm *out);
helix_status helix_act_parse(const char *s, helix_act *out);
const char *helix_norm_name(helix_norm n);
const char *helix_act_name(helix_act a);

/* What one layer of the plan is: a whole transformer block, or one
 * attention layer alone (helix.h's `helix run`: W_O's partials reduced
 * onto rank 0, or without W_O the heads concatenated onto rank 0). */
typedef enum { HELIX_BLOCK_LAYER = 0, HELIX_BLOCK_ATTENTION } helix_block;

typedef struct {
    helix_block block;         /* [LAYER]                        */
    int64_t heads, head_dim;   /* h, d: D = h*d                  */
    int64_t ffn;               /* F: MLP hidden width            */
    int64_t layers;
    int64_t batch, seq;        /* B, L                           */
    helix_dtype dtype;
    int causal;
    int bias;                  /* linear layers have biases      */
    helix_norm norm;           /* LayerNorm placement [pre]      */
    helix_act act;             /* MLP activation [gelu]          */
} helix_model_config;

typedef enum { HELIX_LAYOUT_HELIX = 0, HELIX_LAYOUT_TPPP } helix_layout_kind;

typedef struct {
    helix_layout_kind kind;
    int64_t groups, slices;        /* helix: n, m                         */
    helix_mode mode;               /* helix: sliced or exact              */
    helix_exact_algo exact_algo;
    int64_t tp, pp;                /* TP x PP: t, p                       */
    int64_t microbatches;          /* B is split into this many (>= 1)    */
    int64_t ranks_per_node;        /* consecutive world ranks share a node,
                                      this many per node (0: all on one);
                                      not part of the layout's name      */
    int64_t replicas;              /* dpK: K copies of the layout, each on
                                      B/K sequences (0 or 1: one)         */
    int seq_parallel;              /* -sp: sequence parallel (below)       */
    int input_from_root;           /* X broadcast from rank 0; else every
                                      first-stage device reads X itself
                                      (replicated); not part of the name */
    int native_collectives;        /* reductions by the engine's library
                                      where it has them (helix_comm_set_
                                      native); not part of the name      */
} helix_layout;

/* Parse "helix4x4-sliced", "helix4x4-exact", "helix4x4-exact-scores",
 * "tp8pp2", "tp16", "pp4", each optionally with a "dpK-" prefix (K data-
 * parallel replicas; "dp16" alone = 16 replicas of one device) and a
 * "-sp" suffix (sequence parallel: between the tensor-parallel parts each
 * device holds 1/t of the tokens; LayerNorm and the residual run on
 * them; an all-gather before QKV and FC1, a reduce-scatter after W_O and
 * FC2 instead of the all-reduces), e.g. "dp2-tp8", "tp8pp2-sp";
 * writes a canonical name with helix_layout_name. */
helix_status helix_layout_parse(const char *s, helix_layout *out, helix_err *err);
void helix_layout_name(const helix_layout *l, char *buf, size_t n);

typedef struct helix_model_plan_s {
    helix_model_config model;
    helix_layout layout;
    int64_t D, F, P;
    int64_t R;            /* data-parallel replicas                     */
    int64_t Pr;           /* devices per replica: P / R                 */
    int64_t T;            /* devices per tensor group (n*m, or t)       */
    int64_t S;            /* pipeline stages                            */
    int64_t mb;           /* micro-batches                              */
    int64_t Bm;           /* batch rows per micro-batch (of a replica)  */
    int64_t fcols;        /* FC1 columns (FC2 rows) per device: F/T     */
    helix_plan attn;      /* attention over one tensor group, batch Bm  */
} helix_model_plan;

typedef struct {
    int64_t rank, replica, stage, trank;   /* world rank = replica*Pr + stage*T + trank */
    int64_t layer_begin, layer_end;   /* layers this device runs       */
    helix_device_plan attn;           /* its attention share (batch Bm) */
    /* buffers (bytes); the arena is their 64-byte-rounded sum */
    int64_t weight_bytes;   /* all its layers' shards and LN params     */
    int64_t act_bytes;      /* the micro-batch in flight [Bm,L,D]       */
    int64_t norm_bytes;     /* LN output [Bm,L,D]                       */
    int64_t attn_bytes;     /* Q/K/V, O, exchange buffers               */
    int64_t hidden_bytes;   /* MLP hidden [Bm,L,F/T]                    */
    int64_t kernel_bytes;   /* attention / GEMM workspace               */
    int64_t partial_bytes;  /* partial sums + all-reduce scratch        */
    int64_t out_bytes;      /* last stage, tensor rank 0 (PP > 1): Y,
                               kept for rank 0 (not needed to compute) */
    int64_t gather_bytes;   /* rank 0 with replicas: one micro-batch of
                               each replica's X or Y (loading only)     */
    int64_t peak_bytes;
    helix_traffic phase[HELIX_NPHASES];   /* what its program's collectives move        */
    double messages[HELIX_NPHASES];       /* and their latency rounds (the cost model's) */
} helix_model_device_plan;

helix_model_config helix_model_config_default(void);
/* The plan of one attention layer alone (block ATTENTION, one layer,
 * layout helix n x m) for cfg: what helix_device_run executes. */
helix_status helix_model_plan_attention(const helix_config *cfg, helix_model_plan *plan, helix_err *err);
/* Validate model + layout for P devices and derive the plan (no allocation). */
helix_status helix_model_plan_init(const helix_model_config *mc, const helix_layout *lay, int64_t P,
                                   helix_model_plan *plan, helix_err *err);
helix_status helix_model_plan_device(const helix_model_plan *plan, int64_t rank, helix_model_device_plan *out);
/* FLOPs of one forward pass of the whole model (multiply-add = 2). */
double helix_model_flops(const helix_model_config *mc);

/* Full f32 weights of one layer, y = x W convention:
 * wq..wo [D,D], w1 [D,F], w2 [F,D]; biases may be NULL when !bias. */
typedef struct {
    const float *ln1_g, *ln1_b, *ln2_g, *ln2_b;   /* [D] */
    const float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;
    const float *w1, *b1, *w2, *b2;
} helix_layer_weights;

/* One device's shards of one layer, in the layout its kernels read
 * (storage type of the run; cols = plan->attn.cols, fc = plan->fcols, r =
 * the tensor rank): wq, wk, wv [D, cols] and wo [cols, D] as helix_shard_*
 * cut them for attention device r, bq/bk/bv [cols], ln*_g/_b [D], w1
 * [D, fc] = FC1 columns r*fc.., w2 [fc, D] = FC2 rows r*fc.., b1 [fc];
 * bo, b2 [D] on tensor rank 0 only. Unused pointers are NULL. */
typedef struct {
    void *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    void *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo;
    void *w1, *b1, *w2, *b2;
} helix_layer_shard;

struct helix_model_plan_s;
/* Fills one device's shards of layer `layer` from wherever the weights
 * live (a file, a seeded generator); called by each device for its own
 * layers only, possibly from several threads at once. */
typedef helix_status (*helix_layer_loader)(void *ctx, const struct helix_model_plan_s *plan, int64_t trank,
                                           int64_t layer, helix_dtype t, const helix_layer_shard *dst,
                                           helix_err *err);

/* Either full f32 weights (layer: [layers]) that each device cuts its
 * shards from, or a loader each device calls for its own shards (layer
 * may then be NULL: no process holds the whole model). */
typedef struct {
    int64_t D, F, layers;
    const helix_layer_weights *layer;   /* [layers], or NULL with load  */
    helix_layer_loader load;
    void *load_ctx;
} helix_model_weights;

/* One device's statistics: the same record for every plan (helix.h). */
typedef helix_device_stats helix_model_stats;

/* One device's part of the forward pass (world: size P). x: f32 [B,L,D],
 * needed on every first-stage device (replicated input) or, with
 * layout.input_from_root, on rank 0 only (NULL elsewhere); y: f32
 * [B,L,D] written on rank 0. */
helix_status helix_model_device_run(const helix_model_plan *plan, helix_comm_t *world,
                                    const helix_model_weights *w, const float *x, float *y,
                                    helix_model_stats *stats, helix_err *err);
/* All P devices in this process (threads: cap on devices computing at once). */
helix_status helix_model_grid_run(const helix_model_plan *plan, const helix_model_weights *w,
                                  const float *x, float *y, int threads, helix_model_stats *stats,
                                  helix_err *err);
/* The same with device r on backend be[r] (helix_backend.h; NULL: all on the CPU). */
helix_status helix_model_grid_run_on(const helix_model_plan *plan, const helix_model_weights *w,
                                     const float *x, float *y, int threads, helix_backend *const *be,
                                     helix_model_stats *stats, helix_err *err);
helix_status helix_model_device_run_on(const helix_model_plan *plan, helix_comm_t *world, helix_backend *be,
                                       const helix_model_weights *w, const float *x, float *y,
                                       helix_model_stats *stats, helix_err *err);

/* In place: v = 0.5 v (1 + erf(v / sqrt 2)) (exact GELU). */
void helix_gelu(float *v, int64_t n);
/* In place: the MLP activation a on n values (f32). */
void helix_activate(helix_act a, float *v, int64_t n);

/* Single-device reference in double precision. heads/head_dim may differ
 * from mc (the sliced semantics equal h*m heads of width d/m). */
helix_status helix_model_ref(const helix_model_config *mc, int64_t heads, int64_t head_dim,
                             const helix_model_weights *w, const float *x, float *y, helix_err *err);

/* Random model weights (uniform, scaled 1/sqrt(fan-in); LN gamma near 1)
 * from a seed, in one allocation; free with helix_model_weights_free. */
helix_status helix_model_weights_random(const helix_model_config *mc, uint64_t seed,
                                        helix_model_weights *out, helix_err *err);
void helix_model_weights_free(helix_model_weights *w);
/* The same numbers as helix_model_weights_random, generated per shard by
 * the devices that use them (splitmix64 is addressable: element k of the
 * stream needs no other element), so no process holds the whole model.
 * ctx is the caller's and must outlive the runs. */
typedef struct { uint64_t seed; int64_t D, F, layers; int bias; } helix_model_seeded;
void helix_model_weights_seeded(const helix_model_config *mc, uint64_t seed, helix_model_seeded *ctx,
                                helix_model_weights *out);
/* Bytes of f32 weights for D, F, layers (-1 on bad sizes or overflow), and
 * zeroed weights of that shape in one allocation (biases only when bias),
 * for filling in place (the pointers are const only to readers). */
int64_t helix_model_weights_bytes(int64_t D, int64_t F, int64_t layers, int bias);
helix_status helix_model_weights_alloc(int64_t D, int64_t F, int64_t layers, int bias, helix_model_weights *out,
                                       helix_err *err);

/* ------------------------------------------------------------ planner */

/* Efficiency by size, a table of up to 8 rows (x ascending), used instead
 * of the fitted formula where a hardware file gives one; between rows
 * linear in log2(x), beyond the ends the end rows. n = 0: none. */
typedef struct {
    int n;
    double x[8], e[8];
} helix_eff_table;
double helix_eff_table_at(const helix_eff_table *t, double x);

/* A machine, from a small text file of `key = value` lines (hw/NAME.hw). */
typedef struct {
    char name[64];
    int64_t devices_per_node;   /* consecutive ranks share a node            */
    int64_t devices_per_host;   /* consecutive ranks share one host's cores
                                   (0: devices_per_node); more than a node's
                                   where nodes are emulated on one host     */
    double flops[3];            /* peak FLOP/s of one device, by helix_dtype */
    double eff_gemm, eff_attn;  /* fraction of peak projections / attention reach */
    double gemm_half;           /* GEMM efficiency = eff_gemm * s/(s + gemm_half),
                                   s = its smallest dimension (0: constant)  */
    double attn_half;           /* same for attention over the head width    */
    helix_eff_table attn;       /* attention by head width (eff_attention_wN = e) */
    helix_eff_table gemm;       /* GEMMs by smallest dimension (eff_gemm_sN = e)  */
    double eff_scores;          /* exact by score reduce: its kernels' fraction of peak,
                                   FLOPs counted as attention's (0: the attention's) */
    double mem_bw;              /* bytes/s of one device's memory            */
    double gelu_rate;           /* GELU elements/s of one device (0: memory-bound only) */
    double device_mem;          /* bytes one device may use (0: no limit)    */
    double node_mem;            /* bytes all devices of a node may use (0: no limit) */
    double parallel;            /* devices of a node that compute at full rate at once
                                   (GPUs: devices_per_node; CPU ranks: the cores' worth) */
    double intra_bw, intra_lat; /* per device, inside a node: bytes/s, seconds */
    double inter_bw, inter_lat; /* per device, between nodes                  */
} helix_hw;

helix_status helix_hw_load(const char *path, helix_hw *hw, helix_err *err);
/* The attention efficiency the cost model uses at head width w. */
double helix_hw_attention_eff(const helix_hw *hw, double w);
helix_status helix_hw_parse(const char *text, const char *what, helix_hw *hw, helix_err *err);

/* What the cost model predicts for one forward pass of a planned layout. */
typedef struct {
    double total_s, tokens_per_s;              /* the forward pass, loading apart */
    double load_s;                             /* X in (replicated: none) and Y to rank 0 */
    double total_overlap_s, tokens_per_s_overlap;   /* the bound with perfect
                                                  compute/communication overlap */
    double compute_s, comm_s, bubble_s;        /* on the critical path      */
    double phase_s[HELIX_NPHASES];             /* slowest device, per phase */
    double intra_bytes, inter_bytes;           /* max over devices, sent in
                                                  the forward pass           */
    double load_bytes;                         /* max over devices, sent loading */
    double intra_busy_s, inter_busy_s;         /* max over devices: link busy time
                                                  (bytes / bandwidth) in the pass */
    double eff_gemm_qkv, eff_attention;        /* the efficiencies used at this
                                                  layout's shapes            */
    int64_t mem_bytes;                         /* max over devices          */
    int64_t node_mem_bytes;                    /* max over nodes            */
    int fits;
    char why[160];                             /* when it does not fit      */
    const char *bound;                         /* "compute", "communication", "bubble" */
} helix_prediction;

/* Cost model (see src/planner/cost.c for the formulas). */
void helix_model_predict(const helix_model_plan *plan, const helix_hw *hw, helix_prediction *out);

/* One layout the planner considers. */
typedef struct {
    char name[48];
    helix_layout lay;
    helix_model_plan plan;
    helix_prediction pr;
    int ok;               /* plan is legal */
    char why[600];
} helix_candidate;
/* The legal layouts of mc on P devices (at most max): helix n x m, sliced
 * and exact, and TP x PP, each also sequence parallel (tensor group >= 2)
 * and as dpK replicas of a smaller one; returns how many. */
int helix_candidates(helix_candidate *cs, int max, const helix_model_config *mc, int64_t P);
/* Plan and predict c's layout with the micro-batch count that fits and
 * runs fastest (fixed_mb > 0: that one only), else the one needing the
 * least memory; c->ok = 0 with c->why when no count gives a legal plan. */
void helix_candidate_evaluate(helix_candidate *c, const helix_model_config *mc, int64_t P, const helix_hw *hw,
                              int64_t fixed_mb);
/* qsort order: fitting before not, legal before not, then by tokens/s. */
int helix_candidate_cmp(const void *a, const void *b);

#ifdef __cplusplus
}
#endif
#endif /* HELIX_MODEL_H */
