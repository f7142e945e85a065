/* helix_io.h — strict readers and writers for tensors on disk. */
#ifndef HELIX_IO_H
#define HELIX_IO_H

#include "helix.h"
#include "helix_model.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HELIX_MAX_NDIM 8

/* ------------------------------------------------------------- files */

/* Open path read-only if it is a regular file; a FIFO, device, socket or
 * directory is refused (HELIX_ERR_INVALID) before open, so nothing blocks;
 * a path that cannot be opened is HELIX_ERR_IO.
 * n_bytes (may be NULL): its size. */
helix_status helix_open_regular(const char *path, int *fd, uint64_t *n_bytes, helix_err *err);

/* A file written all or nothing: helix_wfile_open makes PATH.tmp-XXXXXX in
 * the same directory; write to w.f; helix_wfile_commit checks every write,
 * fsyncs, closes and renames it over PATH (on failure the temporary is
 * removed, the old PATH untouched); helix_wfile_abort discards it. A PATH
 * that exists and is not a regular file (/dev/null, a terminal) is written
 * in place, every write still checked. */
typedef struct {
    FILE *f;
    int direct;
    char path[1024], tmp[1040];
} helix_wfile;
helix_status helix_wfile_open(helix_wfile *w, const char *path, helix_err *err);
helix_status helix_wfile_commit(helix_wfile *w, helix_err *err);
void helix_wfile_abort(helix_wfile *w);

typedef struct {
    helix_dtype dtype;
    int ndim;
    int64_t shape[HELIX_MAX_NDIM];
    int64_t n_elems;
    void *data;        /* n_elems * helix_dtype_size(dtype) bytes, owned */
} helix_array;

void helix_array_free(helix_array *a);

/* .npy (NumPy format versions 1-3): little-endian '<f4' or '<f2', C order.
 * Anything else, a malformed header, a size that does not match the shape,
 * truncated data or trailing bytes is refused with a message naming the
 * file and the problem (HELIX_ERR_FORMAT; HELIX_ERR_IO if unreadable). */
helix_status helix_npy_read(const char *path, helix_array *out, helix_err *err);
/* Only the header: dtype, ndim, shape, n_elems (data NULL), with the same
 * checks, the file's size included; reads at most ~1 MB whatever its size. */
helix_status helix_npy_read_header(const char *path, helix_array *out, helix_err *err);
/* Parse from memory (what the fuzz harness calls). Copies the data out. */
helix_status helix_npy_parse(const unsigned char *buf, size_t n_bytes, const char *name,
                             helix_array *out, helix_err *err);
/* Write f32 or f16 data (bf16 has no NumPy type: refused), all or nothing
 * (helix_wfile). */
helix_status helix_npy_write(const char *path, helix_dtype t, int ndim, const int64_t *shape,
                             const void *data, helix_err *err);

/* First non-finite element of n elements (f32 view), or -1 if all finite. */
int64_t helix_first_nonfinite(helix_dtype t, const void *data, int64_t n);

/* ------------------------------------------------------------ safetensors */

#define HELIX_ST_MAX_HEADER (100 * 1000 * 1000)

typedef struct {
    char name[256];
    helix_dtype dtype;
    int ndim;
    int64_t shape[HELIX_MAX_NDIM];
    int64_t n_elems;
    uint64_t offset;           /* absolute offset of the data in the file */
    uint64_t n_bytes;
} helix_st_tensor;

typedef struct {
    char path[1024];
    int fd;                    /* -1 for a parsed in-memory header */
    int64_t n_tensors;
    helix_st_tensor *tensors;  /* sorted by offset */
    helix_st_tensor **by_name; /* [n_tensors] into tensors, sorted by name */
    void *meta;                /* the "__metadata__" object (private), or NULL */
    uint64_t file_bytes;
} helix_st_file;

/* Open and validate: header length (<= 100 MB, checked before allocating),
 * header inside the file, a JSON object without duplicate keys, known
 * dtypes F32/F16/BF16, non-negative integer shapes, sizes without overflow
 * that equal their data_offsets, offsets that tile the data region exactly
 * (no overlap, gap, trailing or missing bytes). Errors name the file, the
 * tensor and the problem (HELIX_ERR_FORMAT; HELIX_ERR_IO if unreadable). */
helix_status helix_st_open(const char *path, helix_st_file *f, helix_err *err);
/* The same validation on a whole file image in memory (fuzzing). */
helix_status helix_st_parse(const unsigned char *buf, size_t n_bytes, const char *name, helix_st_file *f,
                            helix_err *err);
void helix_st_close(helix_st_file *f);
/* The tensor called name, or NULL (binary search: O(log n_tensors)). */
const helix_st_tensor *helix_st_find(const helix_st_file *f, const char *name);
/* A string from the file's "__metadata__", or NULL. Keys helix reads:
 *   num_heads   attention heads h ("8"): PyTorch state_dicts do not record it
 *   norm        "pre" or "post": LayerNorm placement of a whole model's blocks
 *   activation  "gelu", "gelu-tanh" or "relu": the MLP's activation */
const char *helix_st_meta(const helix_st_file *f, const char *key);
/* Elements [first, first+count) of t (flat, row-major) as f32. Thread-safe
 * (pread). For parsed images, base is the image; else NULL. */
helix_status helix_st_read_f32(const helix_st_file *f, const unsigned char *base, const helix_st_tensor *t,
                               int64_t first, int64_t count, float *dst, helix_err *err);
/* Scan t in pieces; *first = flat index of its first value that is NaN/Inf
 * once stored as `as` (f16 overflows above 65504), or -1. */
helix_status helix_st_first_nonfinite(const helix_st_file *f, const helix_st_tensor *t, helix_dtype as, int64_t *first,
                                      helix_err *err);

/* A 64-bit checksum of the whole file (header and data), streamed in 1 MiB
 * pieces: ranks compare it to be sure they read the same file. Not
 * cryptographic. */
helix_status helix_st_checksum(const helix_st_file *f, uint64_t *sum, helix_err *err);

/* --------------------------------------------------- attention weights */

/* A PyTorch linear weight [out, in] (y = x W^T + b) found in a file: rows
 * [row0, row0 + D) of tensor t. A bias is elements [row0, row0 + D). */
typedef struct {
    const helix_st_tensor *t;
    int64_t row0;
} helix_st_view;

typedef struct {
    const helix_st_file *file;
    int64_t D;
    const char *layout;        /* "nn.MultiheadAttention" or "separate projections" */
    helix_st_view q, k, v, o;  /* o.t NULL if the file has no output projection */
    helix_st_view bq, bk, bv, bo; /* .t NULL when absent */
} helix_st_attn;

/* Find the attention weights under `prefix` ("" for none): in_proj_weight
 * [3D, D] (+ in_proj_bias, out_proj.weight, out_proj.bias), or q_proj /
 * k_proj / v_proj (.weight, .bias) with o_proj or out_proj. Shapes are
 * checked against each other; errors name the tensors. */
helix_status helix_st_attn_find(const helix_st_file *f, const char *prefix, helix_st_attn *a, helix_err *err);
/* Load device `rank`'s shards straight from the file (each device reads only
 * its own rows; one row of D floats is the only other memory). Signature of
 * helix_shard_loader; ctx is a helix_st_attn*. */
helix_status helix_st_attn_load(void *ctx, const helix_plan *p, int64_t rank, helix_dtype t, void *wq, void *wk,
                                void *wv, void *bq, void *bk, void *bv, void *wo, void *bo, helix_err *err);
/* The full weights in helix's [in, out] f32 layout (for the reference):
 * each buffer D*D floats, biases D (zeros when absent); wo may be NULL. */
helix_status helix_st_attn_full(const helix_st_attn *a, float *wq, float *wk, float *wv, float *wo, float *bq,
                                float *bk, float *bv, float *bo, helix_err *err);

/* ------------------------------------------------ whole-model weights */

#define HELIX_ST_MAX_LAYERS 100000

/* One pre-LN block's tensors in a file (PyTorch [out, in] linears). NULL
 * biases are absent (zeros); a missing LayerNorm bias is zeros. */
typedef struct {
    const helix_st_tensor *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    helix_st_attn attn;               /* with its output projection  */
    const helix_st_tensor *w1, *b1;   /* FC1 [F, D], [F]             */
    const helix_st_tensor *w2, *b2;   /* FC2 [D, F], [D]             */
} helix_st_layer;

typedef struct {
    const helix_st_file *file;
    char pattern[128];        /* per-layer prefix, "{i}" = layer index */
    int64_t layers, D, F;
    int bias;                 /* some linear layer has a bias          */
    helix_st_layer *layer;    /* [layers], owned                       */
} helix_st_model;

/* Find a whole model: layers 0..N-1 under the per-layer prefix `pattern`
 * (NULL or "": the first of layers.{i}., encoder.layers.{i}.,
 * model.layers.{i}., transformer.layers.{i}., transformer.h.{i}., h.{i}.,
 * blocks.{i}., {i}. that holds layer 0). Inside a layer, first match wins:
 *   LN1  norm1 | ln_1 | ln1 | input_layernorm            (.weight [, .bias])
 *   attn self_attn. | attn. | attention.   (as helix_st_attn_find; W_O needed)
 *   LN2  norm2 | ln_2 | ln2 | post_attention_layernorm
 *   FC1  linear1 | mlp.fc1 | fc1   [F, D]   FC2  linear2 | mlp.fc2 | fc2  [D, F]
 * (the first column is PyTorch's nn.TransformerEncoderLayer). D and F come
 * from layer 0; every layer's every shape is checked; a missing layer or
 * tensor is named in the error. */
helix_status helix_st_model_find(const helix_st_file *f, const char *pattern, helix_st_model *m, helix_err *err);
void helix_st_model_close(helix_st_model *m);
/* Read the first `layers` layers into f32 model weights (helix's [in, out]
 * layout; biases present when m->bias). Refuses NaN/Inf, naming the tensor
 * and the element, unless allow_nonfinite — also a finite value that
 * overflows the run's storage type `as` (f16: |v| > 65504). Allocates
 * helix_model_weights_bytes(D, F, layers, bias): check it fits first. */
helix_status helix_st_model_load(const helix_st_model *m, int64_t layers, int allow_nonfinite, helix_dtype as,
                                 helix_model_weights *out, helix_err *err);
/* The same checks as helix_st_model_load (NaN/Inf, overflow of `as`; the
 * same first offender named), streaming: nothing is kept. */
helix_status helix_st_model_check(const helix_st_model *m, int64_t layers, helix_dtype as, helix_err *err);
/* A helix_layer_loader (ctx: the helix_st_model): one device's shards of
 * one layer read straight from the file, no value checks (run
 * helix_st_model_check first). */
helix_status helix_st_model_shard_load(void *ctx, const helix_model_plan *plan, int64_t trank, int64_t layer,
                                       helix_dtype t, const helix_layer_shard *dst, helix_err *err);

#ifdef __cplusplus
}
#endif
#endif
