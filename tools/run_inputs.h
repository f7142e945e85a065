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
} run_files;

/* Resolve o->cfg from the files (world NULL in-process). Prints its errors;
 * returns an exit code. */
int run_files_resolve(run_opts *o, run_files *f, int root, helix_comm_t *world);
void run_files_close(run_files *f);

#endif
