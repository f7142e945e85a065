/* run_inputs.h — weights and input files for `helix run`. */
#ifndef HELIX_RUN_INPUTS_H
#define HELIX_RUN_INPUTS_H

#include "helix_comm.h"
#include "helix_io.h"
#include "run.h"

typedef struct {
    helix_st_file st;
    helix_st_attn attn;
    int have_st;
    helix_array x_in;     /* rank 0 */
    int have_x;
    int64_t *kv_len;      /* [B] from --kv-len; o->cfg.kv_len points here */
} run_files;

/* Resolve o->cfg from the files (world NULL in-process), then the key
 * padding lengths once B is known (their range 1..L is the plan's check).
 * Prints its errors; returns an exit code. */
int run_files_resolve(run_opts *o, run_files *f, int root, helix_comm_t *world);
void run_files_close(run_files *f);

/* Read X [B, L, D] from .npy (f32 or f16): D must match (d_from says where
 * D came from), B and L too when want_B / want_L are non-zero; NaN/Inf
 * refused unless allow_nonfinite. Prints its error; returns an exit code
 * (x is freed on error). */
int run_read_x(const char *path, int64_t D, const char *d_from, int64_t want_B, int64_t want_L, int allow_nonfinite,
               helix_array *x);

#endif
