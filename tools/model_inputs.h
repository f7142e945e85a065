/* model_inputs.h — the model and the input of `helix bench layouts`: a whole
 * model from one safetensors file (or random from a seed), X from .npy (or
 * random), and the output written as .npy. */
#ifndef HELIX_MODEL_INPUTS_H
#define HELIX_MODEL_INPUTS_H

#include "helix_comm.h"
#include "helix_io.h"
#include "helix_model.h"

typedef struct {
    const char *weights;      /* .safetensors, or NULL: random from seed   */
    const char *prefix;       /* per-layer prefix with {i}, or NULL: auto  */
    const char *input;        /* .npy [B, L, D], or NULL: random from seed */
    int64_t seed;
    int allow_nonfinite;
    int check;                /* root keeps full f32 weights for the reference */
    /* options given on the command line (checked against the files) */
    int given_heads, given_head_dim, given_ffn, given_layers, given_batch, given_seq, given_bias, given_dtype;
    int given_norm, given_act;
} model_inputs_opts;

/* The model's weights as the run sees them: `run` is a shard loader (the
 * file's, or the seeded generator's), so every device reads or generates
 * only its own shards and no rank holds the whole model; `full` holds the
 * whole model in f32 on rank 0 only, and only for the --check reference
 * (empty elsewhere). */
typedef struct {
    helix_model_weights run, full;
    helix_st_file f;
    helix_st_model m;
    helix_model_seeded seeded;
    int have_f, have_m;
} model_weights;

/* Settle mc from the files, check that what this rank will hold fits in
 * memory (before allocating it), then open the weights (see model_weights)
 * and load x [B, L, D] f32 on rank 0 (root). Every rank calls it (world
 * NULL in-process); all return the same exit code, and print only on root.
 * A file's values are checked for NaN/Inf on root before anything runs. */
int model_inputs_load(const model_inputs_opts *o, helix_model_config *mc, int root, helix_comm_t *world,
                      model_weights *w, float **x);
void model_weights_close(model_weights *w);

/* A setting the computation depends on that a checkpoint may not record:
 * given_text when the option was given, else the file's __metadata__ key,
 * copied to out; both present and different, or neither: prints an error
 * naming opt and returns EXIT_USAGE. */
int model_meta_settle(const helix_st_file *f, const char *key, const char *opt, const char *values, int given,
                      const char *given_text, char *out, size_t n);

/* y f32 [B, L, D] as .npy (f32). Prints its error; returns an exit code. */
int model_output_write(const char *path, const helix_model_config *mc, const float *y);

#endif
