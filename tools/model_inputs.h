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
    /* options given on the command line (checked against the files) */
    int given_heads, given_head_dim, given_ffn, given_layers, given_batch, given_seq, given_bias, given_dtype;
    int given_norm, given_act;
} model_inputs_opts;

/* Settle mc from the files, check that the weights and input fit in memory
 * (before allocating them), then load them: every rank gets the weights,
 * rank 0 (root) gets x [B, L, D] f32. Every rank calls it (world NULL
 * in-process); all return the same exit code, and print only on root. */
int model_inputs_load(const model_inputs_opts *o, helix_model_config *mc, int root, helix_comm_t *world,
                      helix_model_weights *w, float **x);

/* A setting the computation depends on that a checkpoint may not record:
 * given_text when the option was given, else the file's __metadata__ key,
 * copied to out; both present and different, or neither: prints an error
 * naming opt and returns EXIT_USAGE. */
int model_meta_settle(const helix_st_file *f, const char *key, const char *opt, const char *values, int given,
                      const char *given_text, char *out, size_t n);

/* y f32 [B, L, D] as .npy (f32). Prints its error; returns an exit code. */
int model_output_write(const char *path, const helix_model_config *mc, const float *y);

#endif
