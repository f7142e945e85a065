/* cli.h — shared helpers of the helix command-line tool. */
#ifndef HELIX_CLI_H
#define HELIX_CLI_H

#include "helix_io.h"

#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_CHECK = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

/* Strict integer parse: the whole string, within [lo, hi]. Prints the error. */
int cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_double(const char *opt, const char *s, double *out);

/* Monotonic wall clock, seconds. */
double cli_now(void);

/* Deterministic random numbers (splitmix64): uniform in [-a, a). */
typedef struct { uint64_t s; } cli_rng;
float cli_uniform(cli_rng *r, float a);
/* Advance as if n numbers had been drawn. */
void cli_rng_skip(cli_rng *r, uint64_t n);

/* Minimal JSON writer with comma bookkeeping. */
typedef struct {
    FILE *f;
    int depth;
    int first[32];
    int to_stdout;
    helix_wfile w;      /* a file: written all or nothing */
} jw;
void jw_begin(jw *j, FILE *f);
/* jw_begin on a new file, written all or nothing (helix_wfile; path "-":
 * standard output) / finish it; both print their error and return -1 on
 * failure, 0 otherwise. */
int jw_open(jw *j, const char *path);
int jw_close(jw *j, const char *path);
void jw_obj(jw *j, const char *key);   /* key NULL inside arrays / at top */
void jw_arr(jw *j, const char *key);
void jw_end_obj(jw *j);
void jw_end_arr(jw *j);
void jw_int(jw *j, const char *key, int64_t v);
void jw_num(jw *j, const char *key, double v);
void jw_str(jw *j, const char *key, const char *v);
void jw_bool(jw *j, const char *key, int v);

/* With "--json -" in argv, standard output carries only the JSON: it is
 * kept as cli_json_stdout and fd 1 becomes stderr for the report. Call
 * before anything is printed. */
extern FILE *cli_json_stdout;
void cli_json_to_stdout_only(int argc, char **argv);

/* A user-given name made printable ASCII (other bytes as \xNN), cut whole:
 * safe in messages and in JSON, never an invalid UTF-8 sequence. */
void cli_safe_name(const char *s, char *out, size_t n);

/* --norm pre|post, --activation gelu|gelu-tanh|relu (print the error; -1). */
int cli_norm(const char *s, helix_norm *out);
int cli_act(const char *s, helix_act *out);
/* --timeout S: 0 <= S <= 1e7 (prints the error; -1). */
int cli_timeout(const char *s, double *out);
/* Under MPI: the collective watchdog (timeout < 0: 60 s + flops at 100
 * MFLOP/s, i.e. a device 1000x slower than a CPU core still finishes); on
 * a timeout it prints the library's message to cli_stderr_fd (the stderr
 * the process started with, even where a rank's stderr is muted) and ends
 * the job with exit 3. */
extern int cli_stderr_fd;
void cli_watchdog(double timeout, double flops);
/* A test hook naming a rank (HELIX_TEST_FAIL_RANK, HELIX_TEST_STALL_RANK):
 * *rank = its value, -1 when unset; -1 returned (error printed) when it is
 * set to anything but a rank number. */
int cli_env_rank(const char *name, int *rank);

/* Without initialising MPI: the rank count mpirun/mpiexec started (0 when
 * not launched by one) and this process's rank in it. */
int cli_mpirun_ranks(void);
int cli_mpirun_rank(void);

/* Bytes of memory available on this host (MemAvailable); -1 if unknown. */
int64_t cli_mem_available(void);
/* In one process: 1 if need bytes fit in MemAvailable (or it is unknown),
 * else 0 and "needs X, Y available" in why. */
int cli_host_fits(int64_t need, char *why, size_t why_n);
/* MPI: every rank says what it needs; 0 (and a reason in why) if the ranks
 * of some host need more than it has. All ranks get the same answer. */
struct helix_comm;
int cli_mpi_fits(struct helix_comm *world, int64_t need, char *why, size_t why_n);
/* The node topology of a run: rpn_given (--ranks-per-node, 0: none)
 * emulates nodes of that many consecutive ranks; otherwise MPI takes the
 * launcher's placement (refused when it is not in blocks of consecutive
 * ranks) and in-process one node. *rpn: 0 for one node. desc: a line for
 * the output. Non-zero (message printed on root): usage error.
 * Collective under MPI. */
int cli_nodes(int mpi, int64_t rpn_given, int64_t P, int root, int64_t *rpn, char *desc, size_t n);
/* --collectives ordered|native into *native (0 / 1); -1 with a message on anything else */
int cli_collectives(const char *s, int *native);
/* What ran: "native" where it was asked for and the engine has a library
 * of its own (MPI), else "ordered"; and the header line's words for it. */
const char *cli_collectives_name(int native, int engine_has_native);
const char *cli_collectives_text(int native, int engine_has_native);

/* MPI (world NULL: rc as it is): any rank's failure is everyone's; a rank
 * that did not fail returns EXIT_USAGE and root says another rank could
 * not `what`. Collective. */
int cli_agree(struct helix_comm *world, int rc, int root, const char *what);
/* MPI: every rank checksums the file it opened (helix_st_checksum); 0 if
 * all equal rank 0's, else EXIT_USAGE and, on root, "ranks 1 3 read a
 * different FILE than rank 0". Collective. */
int cli_mpi_same_file(struct helix_comm *world, const helix_st_file *f, int root);

/* Benchmarks: qsort comparator of doubles; fill n values of type t with
 * uniform [-1, 1) from seed (f32copy: the stored values widened, or NULL). */
int bench_cmp_d(const void *a, const void *b);
#include "helix.h"
void bench_fill(void *dst, helix_dtype t, int64_t n, uint64_t seed, float *f32copy);
/* `helix bench kernels --backend cuda` (tools/cmd_bench_cuda.c). */
int bench_kernels_cuda(int64_t L, int64_t iters, int quick, const char *json);

int cmd_run(int argc, char **argv);
int cmd_layouts(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* --virtual-devices (every device in this process, on GPU 0) and --gpu
 * (under MPI, one GPU per rank) against the engine: EXIT_USAGE with the
 * message (printed where print is set), else 0. cmd names the command. */
int cli_device_flags(const char *cmd, int mpi, int virt, int gpu, int print);
/* --virtual-devices: every one of the P devices of a layout as a CUDA
 * backend on GPU 0 (threads of this process, device-to-device copies).
 * desc gets "cuda, GPU 0 <name>, P virtual devices". NULL with the
 * reason printed (no module, no GPU, out of memory). Free with
 * cli_virtual_devices_free. */
struct helix_backend;
struct helix_backend **cli_virtual_devices(int64_t P, char *desc, size_t n);
void cli_virtual_devices_free(struct helix_backend **be, int64_t P);
/* --gpu under MPI: this rank's device is a CUDA backend on a GPU of its
 * node (local rank mod the GPUs it sees), its collectives the NCCL
 * engine's, ordered on the backend's stream. Collective over world; every
 * rank fails together (EXIT_USAGE, the failing rank says why). */
typedef struct {
    struct helix_comm *comm;          /* the NCCL world                 */
    struct helix_cuda_ctx *ctx;
    struct helix_backend *be;
} cli_gpu_rank;
int cli_gpu_rank_start(struct helix_comm *world, int root, cli_gpu_rank *g);
void cli_gpu_rank_end(cli_gpu_rank *g);
/* 1 if the P device arenas (bytes[P]) fit GPU 0's memory; else 0 with why */
int cli_gpu_fits(const int64_t *bytes, int64_t P, char *why, size_t n);

/* "# cpu kernels: ..." — the path each kernel takes for dtype t */
void cli_print_kernels(helix_dtype t);

#endif
