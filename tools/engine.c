/* engine.c — the engine driver shared by `helix run` and `helix bench
 * layouts` (engine.h). */
#include "engine.h"
#include "cli.h"
#include "run.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_engine_choose(const char *s, int *mpi)
{
    if (!strcmp(s, "auto")) *mpi = helix_mpi_built() && helix_mpi_launched();
    else if (!strcmp(s, "mpi")) *mpi = 1;
    else if (!strcmp(s, "inproc")) *mpi = 0;
    else { fprintf(stderr, "helix: --backend: unknown '%s' (auto, inproc, mpi)\n", s); return EXIT_USAGE; }
    return EXIT_OK;
}

const char *cli_engine_peek(int argc, char **argv)
{
    const char *b = "auto";
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--backend") && k + 1 < argc) b = argv[k + 1];
        else if (!strncmp(argv[k], "--backend=", 10)) b = argv[k] + 10;
    }
    return b;
}

int cli_engine_start(cli_engine *e, int mpi, int *argc, char ***argv, const char *usage, const char *whole,
                     int mute_stdout)
{
    memset(e, 0, sizeof *e);
    e->mpi = mpi;
    e->size = 1;
    e->saved_fd[0] = e->saved_fd[1] = -1;
    if (!mpi) {
        if (cli_mpirun_ranks() > 1) {
            if (cli_mpirun_rank() == 0)
                fprintf(stderr, "helix: --backend inproc under mpirun with several ranks would run %s in every rank: "
                                "use --backend mpi\n", whole);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    helix_err err = {{0}};
    if (helix_mpi_built() && !helix_mpi_launched()) {
        fprintf(stderr, "helix: --backend mpi: this process was not started by mpirun/mpiexec; run it as "
                        "'mpirun -np P helix %s (or use --backend inproc)\n", usage);
        return EXIT_USAGE;
    }
    if (helix_mpi_init(argc, argv, &e->rank, &e->size, &err)) {
        fprintf(stderr, "helix: --backend mpi: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (e->rank != 0) {   /* every rank does the same work; only rank 0 speaks */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            if (mute_stdout) { e->saved_fd[0] = dup(1); dup2(devnull, 1); }
            e->saved_fd[1] = dup(2);
            dup2(devnull, 2);
            close(devnull);
        }
    }
    if (helix_mpi_world(&e->world)) {
        cli_engine_unmute_stderr(e);
        fprintf(stderr, "helix: rank %d: could not create the MPI communicator\n", e->rank);
        helix_mpi_abort(EXIT_RUNTIME);
    }
    return EXIT_OK;
}

void cli_engine_unmute_stderr(cli_engine *e)
{
    if (e->saved_fd[1] >= 0) { dup2(e->saved_fd[1], 2); close(e->saved_fd[1]); e->saved_fd[1] = -1; }
}

void cli_engine_gather(cli_engine *e, void *recs, size_t bytes)
{
    if (!e->mpi) return;
    size_t *cd = calloc(2 * (size_t)e->size, sizeof *cd);
    void *mine = malloc(bytes);
    for (int p = 0; cd && p < e->size; p++) { cd[p] = bytes; cd[e->size + p] = (size_t)p * bytes; }
    if (mine) memcpy(mine, recs, bytes);
    if (!cd || !mine || helix_comm_gatherv(e->world, mine, bytes, recs, cd, cd + e->size, 0)) {
        cli_engine_unmute_stderr(e);
        fprintf(stderr, "helix: rank %d: could not gather statistics\n", e->rank);
        helix_mpi_abort(EXIT_RUNTIME);
    }
    free(cd);
    free(mine);
}

void cli_engine_fail(cli_engine *e, const char *msg)
{
    cli_engine_unmute_stderr(e);
    if (e->mpi) fprintf(stderr, "helix: rank %d failed: %s\n", e->rank, msg);
    else fprintf(stderr, "helix: run failed: %s\n", msg);
    fflush(stderr);
    if (e->mpi) helix_mpi_abort(EXIT_RUNTIME);
}

int cli_engine_end(cli_engine *e, int rc, int agree)
{
    if (e->mpi) {
        int any = 0;
        if (agree) helix_comm_any(e->world, rc != EXIT_OK, &any);
        helix_comm_free(e->world);
        e->world = NULL;
        helix_mpi_finalize();
    }
    return rc;
}
