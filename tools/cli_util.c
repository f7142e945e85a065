/* cli_util.c — argument parsing, random numbers and a JSON writer. */
#include "cli.h"
#include "helix_backend.h"
#include "helix_comm.h"
#include "helix_cuda.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "helix: %s expects an integer, got '%s'\n", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "helix: %s must be in [%lld, %lld], got %lld\n", opt, (long long)lo, (long long)hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "helix: %s expects a finite number, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

float cli_uniform(cli_rng *r, float a) { return helix_uniform(&r->s, a); }

void cli_rng_skip(cli_rng *r, uint64_t n) { r->s = helix_uniform_skip(r->s, (int64_t)n); }

static void sep(jw *j, const char *key)
{
    if (!j->first[j->depth]) fputc(',', j->f);
    j->first[j->depth] = 0;
    fputc('\n', j->f);
    for (int k = 0; k < j->depth; k++) fputs("  ", j->f);
    if (key) fprintf(j->f, "\"%s\": ", key);
}

FILE *cli_json_stdout;

void cli_json_to_stdout_only(int argc, char **argv)
{
    int want = 0;
    for (int k = 1; k < argc; k++)
        want |= (!strcmp(argv[k], "--json") && k + 1 < argc && !strcmp(argv[k + 1], "-")) || !strcmp(argv[k], "--json=-");
    if (!want) return;
    fflush(stdout);
    int fd = dup(1);
    if (fd < 0 || !(cli_json_stdout = fdopen(fd, "w"))) { if (fd >= 0) close(fd); return; }
    dup2(2, 1);                           /* the report: to stderr */
}

void jw_begin(jw *j, FILE *f) { memset(j, 0, sizeof *j); j->f = f; j->depth = 0; j->first[0] = 1; }
int jw_open(jw *j, const char *path)
{
    if (!strcmp(path, "-")) {
        jw_begin(j, cli_json_stdout ? cli_json_stdout : stdout);
        j->to_stdout = 1;
        return 0;
    }
    helix_err err = {{0}};
    helix_wfile w;
    if (helix_wfile_open(&w, path, &err)) { fprintf(stderr, "helix: --json: %s\n", err.msg); return -1; }
    jw_begin(j, w.f);
    j->w = w;
    return 0;
}
int jw_close(jw *j, const char *path)
{
    helix_err err = {{0}};
    if (j->to_stdout) {
        int bad = ferror(j->f) || fflush(j->f) != 0;
        if (bad) fprintf(stderr, "helix: writing the JSON to standard output failed\n");
        return bad ? -1 : 0;
    }
    if (helix_wfile_commit(&j->w, &err)) { fprintf(stderr, "helix: --json: %s\n", err.msg); return -1; }
    (void)path;
    return 0;
}
static void open_(jw *j, const char *key, char c)
{
    if (j->depth > 0 || !j->first[0]) sep(j, key);
    fputc(c, j->f);
    j->first[0] = 0;
    j->first[++j->depth] = 1;
}
static void close_(jw *j, char c)
{
    j->depth--;
    fputc('\n', j->f);
    for (int k = 0; k < j->depth; k++) fputs("  ", j->f);
    fputc(c, j->f);
    if (j->depth == 0) fputc('\n', j->f);
}
void jw_obj(jw *j, const char *key) { open_(j, key, '{'); }
void jw_arr(jw *j, const char *key) { open_(j, key, '['); }
void jw_end_obj(jw *j) { close_(j, '}'); }
void jw_end_arr(jw *j) { close_(j, ']'); }
void jw_int(jw *j, const char *key, int64_t v) { sep(j, key); fprintf(j->f, "%lld", (long long)v); }
void jw_num(jw *j, const char *key, double v)
{
    sep(j, key);
    if (isfinite(v)) fprintf(j->f, "%.9g", v);
    else fputs("null", j->f);
}
void jw_str(jw *j, const char *key, const char *v)
{
    sep(j, key);
    fputc('"', j->f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') { fprintf(j->f, "\\%c", *p); continue; }
        if (*p < 0x20) { fprintf(j->f, "\\u%04x", *p); continue; }
        if (*p < 0x80) { fputc(*p, j->f); continue; }
        /* a UTF-8 sequence passes whole; a broken one becomes U+FFFD */
        int len = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0, k = 1;
        while (len && k < len && (p[k] & 0xc0) == 0x80) k++;
        if (len && k == len && !(len == 2 && *p < 0xc2)) { fwrite(p, 1, (size_t)len, j->f); p += len - 1; }
        else fputs("\\ufffd", j->f);
    }
    fputc('"', j->f);
}
void jw_bool(jw *j, const char *key, int v) { sep(j, key); fputs(v ? "true" : "false", j->f); }

void cli_safe_name(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f) out[k++] = (char)c;
        else k += (size_t)snprintf(out + k, n - k, "\\x%02x", c);
    }
    out[k < n ? k : n - 1] = 0;
}

int cli_collectives(const char *s, int *native)
{
    if (!strcmp(s, "native")) *native = 1;
    else if (!strcmp(s, "ordered")) *native = 0;
    else { fprintf(stderr, "helix: --collectives must be ordered or native, got '%s'\n", s); return -1; }
    return 0;
}

const char *cli_collectives_name(int native, int engine_has_native)
{
    return native && engine_has_native ? "native" : "ordered";
}

const char *cli_collectives_text(int native, int engine_has_native)
{
    if (!native) return "ordered (fixed summation order: bitwise equal on every engine for the same nodes)";
    if (!engine_has_native) return "native asked for, but the in-process engine has no library of its own: ordered";
    return "native (the engine's library: MPI_Allreduce / MPI_Reduce / MPI_Reduce_scatter, or NCCL's; fastest,\n"
           "#   not bitwise reproducible; the library's algorithms, not helix's hierarchy; bytes booked by the ordered convention)";
}

int cli_timeout(const char *s, double *out)
{
    if (cli_double("--timeout", s, out)) return -1;
    if (!(*out >= 0 && *out <= 1e7)) {
        fprintf(stderr, "helix: --timeout must be between 0 (never) and 1e7 seconds, got '%s'\n", s);
        return -1;
    }
    return 0;
}

int cli_stderr_fd = 2;

static void on_timeout(const char *msg, void *ctx)
{
    (void)ctx;
    dprintf(cli_stderr_fd, "helix: %s\n", msg);
    helix_mpi_abort(EXIT_RUNTIME);
}

void cli_watchdog(double timeout, double flops)
{
    if (timeout < 0) timeout = 60 + flops / 1e8;
    helix_mpi_watchdog(timeout, on_timeout, NULL);
}

int cli_env_rank(const char *name, int *rank)
{
    const char *v = getenv(name);
    *rank = -1;
    if (!v) return 0;
    char *end = NULL;
    long r = strtol(v, &end, 10);
    if (!*v || *end || r < 0 || r > 1 << 20) {
        fprintf(stderr, "helix: %s must be a rank number, got '%s'\n", name, v);
        return -1;
    }
    *rank = (int)r;
    return 0;
}

/* the launcher's environment: Open MPI, then MPICH / PMI, then PMIx */
static int env_int(const char *const *names, int dflt)
{
    for (int k = 0; names[k]; k++) {
        const char *v = getenv(names[k]);
        if (v && *v) return atoi(v);
    }
    return dflt;
}
int cli_mpirun_ranks(void)
{
    static const char *const n[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
    return env_int(n, helix_mpi_launched() ? 1 : 0);
}
int cli_mpirun_rank(void)
{
    static const char *const n[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    return env_int(n, 0);
}

int cli_norm(const char *s, helix_norm *out)
{
    if (!helix_norm_parse(s, out)) return 0;
    fprintf(stderr, "helix: --norm must be pre or post, got '%s'\n", s);
    return -1;
}

int cli_act(const char *s, helix_act *out)
{
    if (!helix_act_parse(s, out)) return 0;
    fprintf(stderr, "helix: --activation must be gelu, gelu-tanh or relu, got '%s'\n", s);
    return -1;
}

void cli_print_kernels(helix_dtype t)
{
    printf("# cpu kernels: %s path; attention %s: %s; projections %s: %s\n", helix_isa_name(helix_isa_current()),
           helix_dtype_name(t), helix_kernel_path(t), helix_dtype_name(t),
           helix_kernel_path(t));
}

int cli_device_flags(const char *cmd, int mpi, int virt, int gpu, int print)
{
    const char *why = virt && gpu ? "--gpu (one GPU per MPI rank) and --virtual-devices (every device on GPU 0) exclude each other"
                    : gpu && !mpi ? "--gpu puts one MPI rank's device on each GPU: start it under mpirun (one GPU, in one "
                                    "process: --virtual-devices)"
                    : virt && mpi ? "--virtual-devices runs every device in one process (--backend inproc, without mpirun)"
                                  : NULL;
    if (why && print) fprintf(stderr, "helix %s: %s\n", cmd, why);
    return why ? EXIT_USAGE : 0;
}

struct helix_backend **cli_virtual_devices(int64_t P, char *desc, size_t n)
{
    helix_err err = {{0}};
    helix_cuda_device d;
    int count = 0;
    if (helix_cuda_device_count(&count, &err) || helix_cuda_device_info(0, &d, &err)) {
        fprintf(stderr, "helix: --virtual-devices needs a GPU: %s\n", err.msg);
        return NULL;
    }
    helix_backend **be = calloc((size_t)P, sizeof *be);
    if (!be) { fprintf(stderr, "helix: out of memory\n"); return NULL; }
    for (int64_t r = 0; r < P; r++)
        if (helix_backend_cuda_new(0, &be[r], &err)) {
            fprintf(stderr, "helix: --virtual-devices: device %lld on GPU 0 (%s): %s\n", (long long)r, d.name, err.msg);
            cli_virtual_devices_free(be, r);
            return NULL;
        }
    snprintf(desc, n, "cuda, GPU 0 %s, %lld virtual devices", d.name, (long long)P);
    return be;
}

void cli_virtual_devices_free(struct helix_backend **be, int64_t P)
{
    for (int64_t r = 0; be && r < P; r++) helix_backend_free(be[r]);
    free(be);
}

int cli_gpu_fits(const int64_t *bytes, int64_t P, char *why, size_t n)
{
    helix_err err = {{0}};
    helix_cuda_device d;
    if (helix_cuda_device_info(0, &d, &err)) return 1;   /* cli_virtual_devices says why */
    double need = 0;
    for (int64_t r = 0; r < P; r++) need += (double)bytes[r] + (32 << 20);   /* + each one's cuBLASLt workspace */
    if (need <= 0.95 * d.mem_bytes) return 1;
    snprintf(why, n, "the %lld virtual devices need %.2f GB of GPU memory (arenas + 32 MiB of cuBLASLt workspace each) "
             "but GPU 0 (%s) has %.2f GB", (long long)P, need / 1e9, d.name, d.mem_bytes / 1e9);
    return 0;
}

int cli_gpu_rank_start(helix_comm_t *world, int root, cli_gpu_rank *g)
{
    memset(g, 0, sizeof *g);
    helix_err err = {{0}};
    helix_status st = helix_nccl_world(world, &g->ctx, &g->comm, &err);   /* collective; its ranks fail together */
    if (!st) st = helix_backend_cuda_on(g->ctx, &g->be, &err);
    if (st) fprintf(stderr, "helix: rank %d: --gpu: %s\n", world->rank, err.msg);
    const int rc = cli_agree(world, st ? EXIT_USAGE : EXIT_OK, root, "open its GPU (--gpu)");
    if (rc != EXIT_OK) cli_gpu_rank_end(g);
    return rc;
}

void cli_gpu_rank_end(cli_gpu_rank *g)
{
    helix_backend_free(g->be);
    helix_comm_free(g->comm);
    helix_cuda_ctx_free(g->ctx);
    memset(g, 0, sizeof *g);
}

