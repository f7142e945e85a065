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
    helix_array x_in;     /* rank 0: the header after resolve, the data after load */
    int have_x;           /* x_in.data is held */
    int64_t *kv_given;    /* the --kv-len entries: 1 or B */
    int64_t n_kv_given;
    int64_t *kv_len;      /* [B] from --kv-len; o->cfg.kv_len points here */
} run_files;

/* Resolve o->cfg from the files' headers (world NULL in-process) and parse
 * --kv-len: nothing large is read or allocated. Prints its errors; returns
 * an exit code (the same on every rank). */
int run_files_resolve(run_opts *o, run_files *f, int root, helix_comm_t *world);
/* After the caller's memory check: the key padding lengths [B] (their range
 * 1..L is the plan's check), the input's data (root) and the NaN/Inf scans
 * of input and weights in the run's storage type. Same contract. */
int run_files_load(run_opts *o, run_files *f, int root, helix_comm_t *world);
void run_files_close(run_files *f);

/* X [B, L, D] from .npy (f32 or f16), in two steps: the header, checked
 * against D (d_from says where D came from) and B, L when want_B / want_L
 * are non-zero; then the data, refused if a value is NaN/Inf once stored
 * as `as`, unless allow_nonfinite. Print their error; return an exit code
 * (x's data is freed on error). */
int run_read_x_header(const char *path, int64_t D, const char *d_from, int64_t want_B, int64_t want_L, helix_array *x);
int run_read_x_data(const char *path, helix_dtype as, int allow_nonfinite, helix_array *x);

#endif
