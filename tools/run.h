/* run.h — the pieces of `helix run`: options, the report. */
#ifndef HELIX_RUN_H
#define HELIX_RUN_H

#include "cli.h"
#include "helix.h"

typedef enum { BACKEND_AUTO = 0, BACKEND_INPROC, BACKEND_MPI } run_backend;

typedef struct {
    helix_config cfg;
    int64_t seed, threads;
    int check;
    run_backend backend;
    const char *json;      /* NULL, "-" or a path */
    const char *output;    /* NULL or a .npy path */
    const char *weights;   /* NULL or a .safetensors path */
    const char *prefix;    /* tensor name prefix ("" if none) */
    const char *input;     /* NULL or a .npy path with X [B, L, D] */
    int allow_nonfinite;
    int overhead;          /* --overhead: time the kernels alone too */
    const char *kv_len;    /* --kv-len "N[,N...]", resolved with the files once B is known */
    double timeout;        /* --timeout S: MPI collective watchdog (0: off, <0: automatic) */
    int64_t ranks_per_node;/* --ranks-per-node K as given (0: as launched / one node) */
    char nodes[160];       /* the topology, in words, for the header */
    int virtual_devices;   /* --virtual-devices: every device on GPU 0 */
    int gpu;               /* --gpu: under MPI, each rank's device on a GPU */
    char device[200];      /* what the devices are, in words ("" : CPUs) */
    /* which sizes the user gave (files may not contradict them) */
    int given_heads, given_head_dim, given_batch, given_seq, given_dtype, given_bias, given_no_out;
} run_opts;

extern const char *run_help_text;

/* Parse `helix run` options. Returns -1 on --help (printed), EXIT_USAGE
 * on bad input (message printed), 0 otherwise. */
int run_parse(int argc, char **argv, run_opts *o);
/* The backend named on the command line, without parsing anything else. */
run_backend run_backend_peek(int argc, char **argv);

double run_tolerance(helix_dtype t);

typedef struct {
    const run_opts *o;
    const helix_plan *plan;
    const char *engine;           /* "inproc" or "mpi" */
    const char *engine_info;      /* e.g. the MPI library version */
    const helix_device_stats *stats; /* [P] */
    double elapsed_s;
    int bytes_match;
    int checked, passed, finite;
    double max_abs, max_rel;
    double kernels_s;             /* --overhead: the same kernels alone (<= 0: not measured) */
    double peak_flops;            /* the kernels' path's peak on peak_threads, measured after the pass (<= 0: not) */
    const char *peak_unit;
    int peak_threads;
    int64_t nonfinite;            /* NaN/Inf values in the output */
    int output_written;           /* --output was written */
    const char *output_error;     /* why --output could not be written, or NULL */
    int exit_code;                /* what the run will exit with (before the JSON itself) */
} run_result;

void run_print_header(const run_opts *o, const helix_plan *plan, const char *engine, const char *info);
/* Tables per phase and per rank; sets r->bytes_match. */
void run_print_tables(run_result *r);
int run_write_json(const run_result *r);
/* The forward pass's wall time: the slowest device's, from the start barrier. */
double run_pass_s(const run_result *r);   /* 0 ok, else EXIT_RUNTIME */
const char *run_human_bytes(int64_t b, char *buf32);
/* The kernels of every device of the plan run alone, `threads` devices at a
 * time, median of `reps` after a warm-up (tools/run_overhead.c); seconds, or
 * -1 where there is no single kernel per device (exact/scores) or no memory. */
double run_kernels_alone(const helix_plan *p, int threads, int reps);

#endif
