/* engine.h — the engine driver every running command shares (in the role
 * of nccl-tests' common driver): which engine (in-process threads or one
 * MPI rank per device), MPI start-up and shutdown, silencing the ranks
 * other than 0, refusing an in-process run under mpirun, gathering every
 * rank's statistics onto rank 0, and ending the whole job when a rank
 * fails. A command is a description over it: its options, its plan, what
 * it prints. */
#ifndef HELIX_ENGINE_H
#define HELIX_ENGINE_H

#include "helix_comm.h"

typedef struct {
    int mpi;                 /* 1: one MPI rank per device              */
    int rank, size;          /* this process in the job (0, 1 in-process) */
    helix_comm_t *world;     /* MPI: every rank; NULL in-process         */
    int saved_fd[2];         /* a silenced rank's stdout, stderr (or -1) */
} cli_engine;

/* --backend NAME: auto (MPI when built and started by mpirun), inproc or
 * mpi; prints the error and returns EXIT_USAGE when unknown. */
int cli_engine_choose(const char *name, int *mpi);
/* The --backend value in argv without parsing the rest (MPI must start
 * before a command parses its options on every rank): "auto" when absent. */
const char *cli_engine_peek(int argc, char **argv);
/* Start the engine. `usage` completes "run it as 'mpirun -np P helix
 * <usage>" (with the closing quote); `whole` names what an in-process run under mpirun would
 * repeat in every rank. Ranks other than 0 are silenced: stderr, and
 * stdout too with mute_stdout. EXIT_OK, or EXIT_USAGE after a message. */
int cli_engine_start(cli_engine *e, int mpi, int *argc, char ***argv, const char *usage, const char *whole,
                     int mute_stdout);
/* Give a silenced rank its stderr back (so its own failure is heard). */
void cli_engine_unmute_stderr(cli_engine *e);
/* MPI: every rank's record of `bytes` onto rank 0 (recs: [size] there,
 * [1] elsewhere, this rank's in recs[0]); a no-op in-process. A failure
 * ends the job. */
void cli_engine_gather(cli_engine *e, void *recs, size_t bytes);
/* A rank failed inside the run: say so from this rank and, under MPI, end
 * the job (the others may wait in a collective). In-process: returns. */
void cli_engine_fail(cli_engine *e, const char *msg);
/* Shut the engine down (MPI: every rank agrees first whether any failed,
 * when agree). Returns rc. */
int cli_engine_end(cli_engine *e, int rc, int agree);

#endif
