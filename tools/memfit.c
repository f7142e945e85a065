/* memfit.c — where the ranks are and will they fit: the node topology of
 * a run (launched or emulated), MemAvailable of this host, and for MPI jobs
 * the sum of what the ranks on each host need against that host's memory. */
#include "helix_comm.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* MemAvailable in bytes; -1 if unknown. */
int64_t cli_mem_available(void) { return helix_mem_available_bytes(); }

int cli_host_fits(int64_t need, char *why, size_t why_n)
{
    const int64_t avail = cli_mem_available();
    if (avail <= 0 || need <= avail) return 1;
    char b1[32], b2[32];
    snprintf(why, why_n, "needs %s, %s available", run_human_bytes(need, b1), run_human_bytes(avail, b2));
    return 0;
}

/* every rank's `size` bytes, in rank order (malloc'd; NULL on failure) */
static void *gather_all(helix_comm_t *world, const void *mine, size_t size)
{
    const int n = world->size;
    char *all = calloc((size_t)n, size);
    size_t *cd = calloc(2 * (size_t)n, sizeof *cd);
    for (int p = 0; cd && p < n; p++) { cd[p] = size; cd[n + p] = (size_t)p * size; }
    if (!all || !cd || helix_comm_allgatherv(world, mine, size, all, cd, cd + n)) { free(all); all = NULL; }
    free(cd);
    return all;
}

typedef struct {
    char host[64];
    int64_t need, avail;
} mem_note;

/* MPI: each host sums what its ranks need; all ranks reach the same verdict. */
int cli_mpi_fits(helix_comm_t *world, int64_t need, char *why, size_t why_n)
{
    mem_note mine;
    memset(&mine, 0, sizeof mine);
    gethostname(mine.host, sizeof mine.host - 1);
    mine.need = need;
    mine.avail = cli_mem_available();
    const int n = world->size;
    mem_note *all = gather_all(world, &mine, sizeof mine);
    if (!all) { snprintf(why, why_n, "could not gather the ranks' memory needs"); return 0; }
    int fits = 1;
    for (int p = 0; fits && p < n; p++) {
        int64_t sum = 0, ranks = 0;
        for (int q = 0; q < n; q++)
            if (!strcmp(all[q].host, all[p].host)) { sum += all[q].need; ranks++; }
        if (all[p].avail > 0 && sum > all[p].avail) {
            char b1[32], b2[32];
            snprintf(why, why_n, "host %s needs %s for its %lld ranks but has %s available", all[p].host,
                     run_human_bytes(sum, b1), (long long)ranks, run_human_bytes(all[p].avail, b2));
            fits = 0;
        }
    }
    free(all);
    return fits;
}


int cli_mpi_same_file(helix_comm_t *world, const helix_st_file *f, int root)
{
    uint64_t mine = 0;
    helix_err err = {{0}};
    if (helix_st_checksum(f, &mine, &err)) fprintf(stderr, "helix: %s\n", err.msg);   /* 0 then differs, or fails everywhere */
    const int n = world->size;
    uint64_t *all = gather_all(world, &mine, sizeof mine);
    if (!all) {
        if (root) fprintf(stderr, "helix: --weights: could not compare %s across ranks\n", f->path);
        return EXIT_RUNTIME;
    }
    char why[600];
    size_t used = 0;
    int differ = 0;
    for (int p = 1; p < n; p++)
        if (all[p] != all[0]) {
            if (!differ) used = (size_t)snprintf(why, sizeof why, "ranks");
            if (used < sizeof why) used += (size_t)snprintf(why + used, sizeof why - used, " %d", p);
            differ++;
        }
    free(all);
    if (!differ) return EXIT_OK;
    if (root)
        fprintf(stderr, "helix: --weights: %s read a different %s than rank 0 (checksums differ): every rank must see "
                        "the same file\n", why, f->path);
    return EXIT_USAGE;
}

int cli_agree(helix_comm_t *world, int rc, int root, const char *what)
{
    if (!world) return rc;
    int any = 0;
    if (helix_comm_any(world, rc != EXIT_OK, &any)) return EXIT_RUNTIME;
    if (any && rc == EXIT_OK) {
        if (root) fprintf(stderr, "helix: another rank could not %s\n", what);
        return EXIT_USAGE;
    }
    return any ? (rc != EXIT_OK ? rc : EXIT_USAGE) : EXIT_OK;
}

int cli_nodes(int mpi, int64_t rpn_given, int64_t P, int root, int64_t *rpn, char *desc, size_t n)
{
    int launched = 0;
    if (mpi && helix_mpi_nodes(&launched)) {
        if (root) fprintf(stderr, "helix: could not ask MPI which ranks share a node\n");
        return 1;
    }
    if (rpn_given > 0) {
        *rpn = rpn_given < P ? rpn_given : 0;
        const int64_t K = (P + rpn_given - 1) / rpn_given;
        if (!*rpn) snprintf(desc, n, "one node of %lld ranks (--ranks-per-node %lld)", (long long)P, (long long)rpn_given);
        else snprintf(desc, n, "%lld nodes of %lld consecutive ranks%s (--ranks-per-node %lld, emulated%s; collectives "
                      "that span nodes run hierarchically)", (long long)K, (long long)rpn_given,
                      P % rpn_given ? ", the last one short" : "", (long long)rpn_given, mpi ? "" : " in one process");
        if (mpi && launched && launched != rpn_given && launched < P)
            snprintf(desc + strlen(desc), n - strlen(desc), "; the launcher placed %d per node", launched);
        return 0;
    }
    if (!mpi) { *rpn = 0; snprintf(desc, n, "one node of %lld ranks", (long long)P); return 0; }
    if (launched <= 0) {
        if (root)
            fprintf(stderr, "helix: the launcher did not place the ranks on nodes in blocks of consecutive ranks\n"
                            "       (e.g. mpirun --map-by slot does); name the topology to assume: --ranks-per-node K\n");
        return 1;
    }
    *rpn = launched < P ? launched : 0;
    if (!*rpn) snprintf(desc, n, "one node of %lld ranks (as launched)", (long long)P);
    else snprintf(desc, n, "%lld nodes of %d consecutive ranks (as launched)", (long long)(P / launched), launched);
    return 0;
}
